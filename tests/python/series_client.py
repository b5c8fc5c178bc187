#!/usr/bin/env python3
"""A client written to the series' runner contract, in plain Python (standard library only).

It proves that callers written for the Python series keep working against a Switchyard runner:
it expects only what the series promised, nothing Switchyard added.

    python3 tests/python/series_client.py RUNNER_URL IMAGE_URL MISSING_IMAGE_URL

The runner under test must host:
    - a default algorithm taking {"url": "<image url>"} (the series' Part II runner, `POST /`),
      also reachable as `POST /run/image_facts`, answering
      {"result": {"bytes": <size of the image>, "content_type": "<its type>"}} and, when the
      image cannot be fetched, the fetch's status with {"message": "Error fetching request image, received <code>"};
    - `shout`, taking {"text": ...} and answering the text upper-cased;
    - `explode`, failing unexpectedly (a 500 in the series' shape).
IMAGE_URL serves an image; MISSING_IMAGE_URL answers 404.

Prints one line per check ("ok - name" or "FAIL - name: why") and a summary; exits 0 when
every check holds, 1 otherwise.
"""

import json
import sys
import urllib.error
import urllib.request


def request(method, url, body=None):
    """Sends a request; returns (status, parsed JSON body). HTTP errors are answers, not failures."""
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post_json(url, payload):
    return request("POST", url, json.dumps(payload).encode())


def expect(condition, why):
    if not condition:
        raise AssertionError(why)


def checks(runner, image_url, missing_url):
    with urllib.request.urlopen(image_url, timeout=10) as response:
        image = response.read()
        image_type = response.headers.get("Content-Type")
    facts = {"bytes": len(image), "content_type": image_type}

    def root_runs_the_default_algorithm():
        status, body = post_json(runner + "/", {"url": image_url})
        expect(status == 200, f"status {status}: {body}")
        expect(body == {"result": facts}, f"body {body}, expected {{'result': {facts}}}")

    def run_names_the_algorithm():
        status, body = post_json(runner + "/run/image_facts", {"url": image_url})
        expect((status, body) == (200, {"result": facts}), f"{status} {body}")

    def a_failed_fetch_passes_its_status_through():
        status, body = post_json(runner + "/", {"url": missing_url})
        expected = {"message": "Error fetching request image, received 404"}
        expect((status, body) == (404, expected), f"{status} {body}")

    def a_body_that_is_not_json_is_a_400():
        status, body = request("POST", runner + "/", b"this is not json")
        expect(status == 400, f"status {status}")
        expect(body["message"].startswith("Task body not valid JSON"), body["message"])

    def a_missing_field_is_a_400_naming_it():
        status, body = post_json(runner + "/", {})
        expect(status == 400 and "url" in body["message"], f"{status} {body}")

    def an_unknown_field_is_a_400_naming_it():
        status, body = post_json(runner + "/", {"url": image_url, "size": 150})
        expect(status == 400 and "size" in body["message"], f"{status} {body}")

    def another_algorithm_answers_on_its_path():
        status, body = post_json(runner + "/run/shout", {"text": "plug and play"})
        expect((status, body) == (200, {"result": "PLUG AND PLAY"}), f"{status} {body}")

    def an_unknown_algorithm_is_a_404():
        status, body = post_json(runner + "/run/meme_classifier", {"url": image_url})
        expect(status == 404 and "meme_classifier" in body["message"], f"{status} {body}")

    def an_unexpected_failure_is_a_500_in_the_series_shape():
        status, body = post_json(runner + "/run/explode", {"text": "boom"})
        expect(status == 500, f"status {status}")
        expect(body.get("message") == "Internal error" and body.get("error"), f"body {body}")

    def schemas_describe_every_algorithm():
        status, schemas = request("GET", runner + "/schemas")
        expect(status == 200, f"status {status}")
        expect({"image_facts", "shout", "explode"} <= set(schemas), f"algorithms {sorted(schemas)}")
        expect("url" in schemas["image_facts"]["properties"], f"{schemas['image_facts']}")
        expect(schemas["image_facts"].get("required") == ["url"], f"{schemas['image_facts']}")

    return [
        root_runs_the_default_algorithm,
        run_names_the_algorithm,
        a_failed_fetch_passes_its_status_through,
        a_body_that_is_not_json_is_a_400,
        a_missing_field_is_a_400_naming_it,
        an_unknown_field_is_a_400_naming_it,
        another_algorithm_answers_on_its_path,
        an_unknown_algorithm_is_a_404,
        an_unexpected_failure_is_a_500_in_the_series_shape,
        schemas_describe_every_algorithm,
    ]


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    runner, image_url, missing_url = argv[1].rstrip("/"), argv[2], argv[3]
    failed = 0
    all_checks = checks(runner, image_url, missing_url)
    for check in all_checks:
        try:
            check()
            print(f"ok - {check.__name__}")
        except Exception as error:  # a crash in one check is that check's failure
            failed += 1
            print(f"FAIL - {check.__name__}: {type(error).__name__}: {error}")
    print(f"series client: {len(all_checks)} checks, {failed} failing")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
