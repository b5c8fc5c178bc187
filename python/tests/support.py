"""Processes the tests start: the real switchyard binary's components, Python runners, and
RabbitMQ vhosts, each stopped by its own handle."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
ALGORITHMS = HERE / "algorithms"
REPO = HERE.parent.parent


def binary() -> str:
    path = os.environ.get("SWITCHYARD_BIN", str(REPO / "target" / "debug" / "switchyard"))
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no switchyard binary at {path}: build it (cargo build) or set SWITCHYARD_BIN")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Process:
    """A child whose stderr and stdout are collected line by line, so a test can wait for a
    line and a failing test can show what the child said."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.args = args
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, **(env or {})}, cwd=cwd,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    if match := regex.search(line):
                        return match
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.popen.poll() is not None and seen == len(self.lines)):
                    raise AssertionError(f"no line matching {pattern!r} from {self.args[:3]}:\n{self.output()}")
                self._changed.wait(min(remaining, 0.2))

    def output(self) -> str:
        return "\n".join(self.lines)

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        return self.popen.wait(timeout)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def wait_http(url: str, status: int = 200, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == status:
                return response
            last = response.status_code
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s (last: {last})")


def eventually(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


class Discovery:
    def __init__(self, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process([binary(), "discovery", "--listen", f"127.0.0.1:{self.port}",
                                "--heartbeat-interval", "200ms", "--ttl", "2s", *extra])
        wait_http(f"{self.url}/health")

    def runners(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/runners", timeout=5)
        response.raise_for_status()
        runners: list[dict[str, Any]] = response.json()
        return runners


class Runner:
    """``python -m switchyard.runner`` on a free port, ready when this returns (unless told
    not to wait)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, ready: bool = True) -> None:
        command = [sys.executable, "-m", "switchyard.runner", *args]
        if "--listen" not in args:
            command += ["--listen", "127.0.0.1:0"]
        self.process = Process(command, env={"PYTHONPATH": str(ALGORITHMS), **(env or {})},
                               cwd=ALGORITHMS)
        match = self.process.wait_for(r"runner listening.* address=(\S+)")
        self.url = f"http://{match.group(1)}"
        if ready:
            wait_http(f"{self.url}/ready")

    def post(self, path: str, body: Any = None, **options: Any) -> httpx.Response:
        if "content" not in options:
            options["json"] = body
        return httpx.post(f"{self.url}{path}", timeout=30, **options)

    def metric(self, line_start: str) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


class Vhost:
    """A fresh RabbitMQ vhost, as the Rust end-to-end tests make one, deleted afterwards."""

    def __init__(self) -> None:
        self.name = f"switchyard-py-{uuid.uuid4().hex}"
        rabbitmqctl("add_vhost", self.name)
        rabbitmqctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        self.url = f"amqp://guest:guest@127.0.0.1:5672/{self.name}"

    def delete(self) -> None:
        rabbitmqctl("delete_vhost", self.name)

    def close_connections(self) -> int:
        """Closes every client connection of this vhost, as an operator or a failing node
        would, and says how many there were."""
        listing = subprocess.run(["rabbitmqctl", "-q", "list_connections", "vhost", "pid"],
                                 capture_output=True, text=True, check=True, timeout=60).stdout
        pids = [pid for vhost, _, pid in (line.partition("\t") for line in listing.splitlines())
                if vhost == self.name]
        for pid in pids:
            rabbitmqctl("close_connection", pid, "closed by a test")
        return len(pids)


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


class Controller:
    def __init__(self, vhost: Vhost, discovery: Discovery, *extra: str) -> None:
        self.process = Process([binary(), "controller", "--amqp", vhost.url, "--discovery",
                                discovery.url, "--registry-refresh", "200ms",
                                "--backoff-base", "50ms", "--backoff-cap", "200ms", *extra])


class Up:
    """`switchyard up` hosting `algorithms` on free ports, ready (its algorithms loaded) when this
    returns; with `token`, it requires that token of changes. `restart` stops it and starts it
    again on the same ports and data."""

    def __init__(self, data: Path, algorithms: str = "echo", token: str | None = None) -> None:
        self.data = data
        self.algorithms = algorithms
        self.url = f"http://127.0.0.1:{free_port()}"
        self.discovery = f"http://127.0.0.1:{free_port()}"
        self.env = {"SWITCHYARD_TOKEN": token} if token else {}
        self.process = self._start()

    def _start(self) -> Process:
        process = Process([binary(), "up", "--listen", self.url[len("http://"):],
                           "--discovery-listen", self.discovery[len("http://"):],
                           "--data", str(self.data), "--algorithms", self.algorithms],
                          env=self.env)
        wait_http(f"{self.url}/ready", timeout=120)
        return process

    def restart(self, while_down: Any) -> None:
        """Stops it, calls `while_down()`, and starts it again."""
        self.process.stop()
        while_down()
        self.process = self._start()
