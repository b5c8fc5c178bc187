#!/usr/bin/env python3
"""A runner written the series' way, in plain Python (standard library only).

It proves that runners from the Python series plug into Switchyard unchanged: it speaks only the
series' protocol, nothing Switchyard added.

    python3 tests/python/legacy_runner.py [--discovery URL] [--port PORT] [--bind ADDRESS] [--token TOKEN]

    --discovery URL   register with this discovery service at start (omit to run unregistered)
    --port PORT       port to listen on; 0 (the default) picks a free one
    --bind ADDRESS    address to listen on and to register (default 127.0.0.1)
    --token TOKEN     sent as `Authorization: Bearer` when registering (default: $SWITCHYARD_TOKEN);
                      the series has no token, this only lets the runner join a locked discovery

Once it listens (and, with --discovery, has registered), it prints its port alone on the first
line of stdout and flushes it, so a test reads one line and can call it at once. It runs until
killed. Exit status 1 when registration fails.

Protocol (the series' runner library):
    GET  /schemas              -> {"word_count": <JSON schema of the payload>}
    POST /run/word_count       {"text": "<string>"}
                               -> 200 {"result": {"words": <int>, "counts": {"<word>": <int>, ...}}}
                               -> 400 {"message": ...} body not JSON, not an object, field missing,
                                      unknown field, or text not a string
    POST /run/<other>          -> 404 {"message": "Unknown algorithm '<other>'"}
    At start: POST {discovery}/algorithms {"algorithm": "word_count", "host": "http://<bind>:<port>"}
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORD_COUNT_SCHEMA = {
    "title": "word_count",
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
}


class BadPayload(Exception):
    """A payload the algorithm refuses: answered 400 with this message."""


def run_word_count(payload):
    if not isinstance(payload, dict):
        raise BadPayload("Task body must be a JSON object")
    if "text" not in payload:
        raise BadPayload("Task body missing field 'text'")
    unknown = sorted(set(payload) - set(WORD_COUNT_SCHEMA["properties"]))
    if unknown:
        raise BadPayload("Task body has unknown field '%s'" % unknown[0])
    text = payload["text"]
    if not isinstance(text, str):
        raise BadPayload("Field 'text' must be a string")
    counts = Counter(word.lower() for word in text.split())
    return {"words": sum(counts.values()), "counts": dict(counts)}


ALGORITHMS = {"word_count": (run_word_count, WORD_COUNT_SCHEMA)}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/schemas":
            self.answer(200, {name: schema for name, (_, schema) in ALGORITHMS.items()})
        else:
            self.answer(404, {"message": "Not found: %s" % self.path})

    def do_POST(self):
        prefix = "/run/"
        if not self.path.startswith(prefix):
            self.answer(404, {"message": "Not found: %s" % self.path})
            return
        name = self.path[len(prefix):]
        if name not in ALGORITHMS:
            self.answer(404, {"message": "Unknown algorithm '%s'" % name})
            return
        run, _ = ALGORITHMS[name]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body)
        except ValueError as error:
            self.answer(400, {"message": "Task body not valid JSON: %s" % error})
            return
        try:
            self.answer(200, {"result": run(payload)})
        except BadPayload as error:
            self.answer(400, {"message": str(error)})
        except Exception as error:  # the series answers every other failure as a 500
            self.answer(500, {"message": "Internal error", "error": repr(error)})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        sys.stderr.write("legacy_runner: %s\n" % (format % args))


def register(discovery, host, token, deadline_seconds=10.0):
    """Registers every algorithm, retrying while discovery is still starting."""
    deadline = time.monotonic() + deadline_seconds
    for name in ALGORITHMS:
        body = json.dumps({"algorithm": name, "host": host}).encode()
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        while True:
            request = urllib.request.Request(
                discovery.rstrip("/") + "/algorithms", data=body, headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
                break
            except urllib.error.HTTPError as error:
                # An answer, not an outage: retrying the same body cannot help.
                raise SystemExit(
                    "legacy_runner: discovery refused %s: %s %s" % (name, error.code, error.read().decode())
                )
            except OSError as error:
                if time.monotonic() > deadline:
                    raise SystemExit("legacy_runner: discovery unreachable: %s" % error)
                time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description="A series-style Python runner hosting word_count.")
    parser.add_argument("--discovery")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--token", default=os.environ.get("SWITCHYARD_TOKEN"))
    args = parser.parse_args()

    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    port = server.server_address[1]
    if args.discovery:
        register(args.discovery, "http://%s:%d" % (args.bind, port), args.token)
    print(port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
