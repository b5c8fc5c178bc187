"""What the series-compatibility tests drive: the real `switchyard` binary, the real RabbitMQ, and
the series' own Python code (tests/python/series) in a venv of its pinned versions.

A module of its own rather than conftest.py, so test modules can import it by a name no other
test directory's conftest.py shadows. The fixtures (conftest.py) put these together per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, TypeVar

import pika
import pika.exceptions
import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO = TESTS_DIR.parents[1]
SERIES_DIR = TESTS_DIR / "series"
SERIES_REQUIREMENTS = SERIES_DIR / "requirements.txt"
SERIES_VENV = REPO / "target" / "series-venv"
DEFAULT_BIN = REPO / "target" / "debug" / "switchyard"

BROKER_HOST = "127.0.0.1"
BROKER_PORT = 5672

TASK_QUEUE = "tasks"
RESULTS_QUEUE = "tasks.results"
DEAD_QUEUE = "tasks.dead"

# Generous for a loaded 2-core machine sharing a Rust build; a passing test takes far less, since
# every wait polls and returns as soon as its condition holds.
STARTUP_TIMEOUT = 30.0
RESULT_TIMEOUT = 30.0
POLL_INTERVAL = 0.05

T = TypeVar("T")


# --- Processes ------------------------------------------------------------------------------


@dataclass
class Component:
    """A long-running process a test started, its stdout and stderr in one log file."""

    name: str
    argv: list[str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def exited(self) -> Optional[int]:
        return self.process.poll()

    def describe(self) -> str:
        code = self.exited()
        state = "running" if code is None else f"exited with status {code}"
        return f"--- {self.name} (pid {self.process.pid}, {state}): {' '.join(self.argv)}\n{self.log()}"


class Components:
    """Starts processes and kills every one of them at teardown, by its own process group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Component] = []

    def start(self, name: str, argv: Sequence[str], env: dict[str, str], cwd: Path) -> Component:
        log_path = self.log_dir / f"{len(self.started):02d}-{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # A group of its own, so teardown can end it (and anything it spawned) by id.
                start_new_session=True,
            )
        component = Component(name, list(argv), process, log_path)
        self.started.append(component)
        return component

    def describe_all(self) -> str:
        return "\n".join(component.describe() for component in self.started)

    def stop_all(self) -> None:
        for component in reversed(self.started):
            if component.exited() is None:
                _signal_group(component.process, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for component in reversed(self.started):
            remaining = max(0.0, deadline - time.monotonic())
            try:
                component.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                _signal_group(component.process, signal.SIGKILL)
                component.process.wait(timeout=5.0)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # already gone


def wait_until(
    what: str,
    check: Callable[[], Optional[T]],
    timeout: float = STARTUP_TIMEOUT,
    must_stay_up: Sequence[Component] = (),
) -> T:
    """Polls `check` until it returns something other than None.

    Fails at the deadline, or at once when one of `must_stay_up` exits, saying what was awaited
    and what `check` last saw (its last exception); conftest's report hook adds every log.
    """
    deadline = time.monotonic() + timeout
    last_seen = "nothing yet"
    while True:
        for component in must_stay_up:
            if component.exited() is not None:
                pytest.fail(
                    f"expected {what}, but {component.name} exited with status {component.exited()}",
                    pytrace=False,
                )
        try:
            value = check()
            if value is not None:
                return value
        except Exception as error:  # not there yet: an answer we keep for the failure message
            last_seen = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            pytest.fail(f"expected {what} within {timeout:.0f}s; last seen: {last_seen}", pytrace=False)
        time.sleep(POLL_INTERVAL)


def free_port() -> int:
    """A port nothing listens on now. The component binds it a moment later; on a test machine
    nothing else takes it in between."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_json(method: str, url: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    """(status, parsed JSON body); an HTTP error status is an answer, not an exception."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: ours without any SWITCHYARD_* setting (a developer's shell
    must not change what the binary under test does) or Python path, plus `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SWITCHYARD_") and name not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


# --- RabbitMQ -------------------------------------------------------------------------------


def rabbitmqctl(*args: str) -> str:
    completed = subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"rabbitmqctl {' '.join(args)} exited {completed.returncode}: {completed.stderr.strip()}"
        )
    return completed.stdout


@dataclass(frozen=True)
class QueueInfo:
    name: str
    durable: bool
    arguments: dict[str, Any]
    messages: int


@dataclass
class Broker:
    """One test's vhost on the real RabbitMQ, and a test-side AMQP client on it."""

    vhost: str
    url: str
    _connection: Optional[pika.BlockingConnection] = field(default=None, repr=False)

    def channel(self) -> Any:
        """A fresh channel: a broker error (a queue not there yet) closes only that channel."""
        if self._connection is None or self._connection.is_closed:
            self._connection = pika.BlockingConnection(pika.URLParameters(self.url))
        return self._connection.channel()

    def close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def queues(self) -> dict[str, QueueInfo]:
        """Every queue of the vhost as RabbitMQ describes it (the properties a client declared)."""
        text = rabbitmqctl(
            "list_queues", "-q", "-p", self.vhost, "--formatter", "json", "name", "durable", "arguments", "messages"
        )
        rows = json.loads(text) if text.strip() else []
        return {
            row["name"]: QueueInfo(
                name=row["name"],
                durable=bool(row["durable"]),
                # rabbitmqctl lists arguments as [name, type, value] triples.
                arguments={argument[0]: argument[2] for argument in row["arguments"]},
                messages=int(row["messages"]),
            )
            for row in rows
        }

    def queue_exists(self, name: str) -> Optional[int]:
        """The queue's message count when it exists, else None (a passive declare creates nothing)."""
        channel = self.channel()
        try:
            declared = channel.queue_declare(queue=name, passive=True)
            count: int = declared.method.message_count
            return count
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == 404:
                return None
            raise
        finally:
            if channel.is_open:
                channel.close()

    def publish(self, body: Any, message_id: str, queue: str = TASK_QUEUE) -> None:
        """Publishes to an existing queue without declaring it (confirmed, so it is on the queue
        when this returns), the way a Switchyard-aware producer would."""
        channel = self.channel()
        try:
            channel.confirm_delivery()
            channel.basic_publish(
                exchange="",
                routing_key=queue,
                body=json.dumps(body).encode(),
                properties=pika.BasicProperties(message_id=message_id, delivery_mode=2),
                mandatory=True,
            )
        finally:
            channel.close()

    def take(self, queue: str) -> list[tuple[Any, bytes]]:
        """Removes and returns every message on `queue` now, as (properties, body); none when the
        queue does not exist yet."""
        taken: list[tuple[Any, bytes]] = []
        channel = self.channel()
        try:
            while True:
                method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
                if method is None:
                    return taken
                taken.append((properties, body))
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code == 404:
                return taken
            raise
        finally:
            if channel.is_open:
                channel.close()


# --- The binary and the series' venv ----------------------------------------------------------


def _requirements_stamp() -> str:
    # The interpreter's version is part of it: a venv made by another Python is not reusable.
    digest = hashlib.sha256(SERIES_REQUIREMENTS.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_series_venv() -> Path:
    """The Python of target/series-venv, with the series' pinned versions installed.

    Made on first use, and again only when tests/python/series/requirements.txt (or the Python
    running the tests) changed: the stamp is written last, so an install that failed halfway is
    redone rather than trusted.
    """
    python = SERIES_VENV / "bin" / "python"
    stamp_path = SERIES_VENV / ".requirements-stamp"
    stamp = _requirements_stamp()
    if python.exists() and stamp_path.exists() and stamp_path.read_text().strip() == stamp:
        return python
    if SERIES_VENV.exists():
        shutil.rmtree(SERIES_VENV)
    # The interpreter running the tests makes the venv: its version is the one the stamp names.
    steps = [
        [sys.executable, "-m", "venv", str(SERIES_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(SERIES_REQUIREMENTS)],
    ]
    for step in steps:
        completed = subprocess.run(step, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
        if completed.returncode != 0:
            pytest.fail(
                f"expected `{' '.join(step)}` to succeed, it exited {completed.returncode}:\n"
                f"{completed.stdout}\n{completed.stderr}",
                pytrace=False,
            )
    stamp_path.write_text(stamp + "\n")
    return python


def switchyard_binary() -> Path:
    path = Path(os.environ.get("SWITCHYARD_BIN", str(DEFAULT_BIN)))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"expected the switchyard binary at {path} (set SWITCHYARD_BIN, or build it with "
            f"`cargo build`), found none",
            pytrace=False,
        )
    return path


# --- A whole deployment, piece by piece ---------------------------------------------------------


@dataclass
class SeriesRunner:
    component: Component
    url: str


class Deployment:
    """Starts Switchyard's components and the series' runner and producer against one vhost."""

    def __init__(self, bin_path: Path, series_python: Path, broker: Broker, components: Components, work_dir: Path):
        self.bin = bin_path
        self.series_python = series_python
        self.broker = broker
        self.components = components
        # The binary reads ./switchyard.toml when there is one: run it where there is none.
        self.work_dir = work_dir

    def switchyard(self, name: str, *args: str) -> Component:
        return self.components.start(name, [str(self.bin), *args], child_env(), self.work_dir)

    def discovery(self) -> str:
        port = free_port()
        component = self.switchyard("discovery", "discovery", "--listen", f"127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}"
        wait_until(
            f"discovery to answer GET {url}/health",
            lambda: True if http_json("GET", url + "/health")[0] == 200 else None,
            must_stay_up=[component],
        )
        return url

    def echo_runner(self, discovery: str) -> str:
        port = free_port()
        component = self.switchyard(
            "echo-runner", "runner", "--listen", f"127.0.0.1:{port}", "--discovery", discovery, "--algorithms", "echo"
        )
        url = f"http://127.0.0.1:{port}"
        self.wait_registered(discovery, {"echo": url}, component)
        return url

    def series_runner(self, discovery: str) -> SeriesRunner:
        port = free_port()
        discovery_port = discovery.rsplit(":", 1)[1]
        env = child_env(
            CONTAINER_NAME="127.0.0.1",
            PORT=str(port),
            RUNNER_DISCOVERY_CONTAINER_NAME="127.0.0.1",
            RUNNER_DISCOVERY_PORT=discovery_port,
            LOG_LEVEL="INFO",
        )
        # `python -m runnerlib` from the adapter's directory, as the series' containers run it.
        component = self.components.start(
            "series-runner", [str(self.series_python), "-m", "runnerlib"], env, SERIES_DIR
        )
        url = f"http://127.0.0.1:{port}"
        # The series registers before it listens: wait for both, so a task is never sent to a
        # runner still starting (that would be a retry, and the tests count attempts).
        wait_until(
            f"the series' runner to answer GET {url}/schemas",
            lambda: True if http_json("GET", url + "/schemas")[0] == 200 else None,
            must_stay_up=[component],
        )
        self.wait_registered(discovery, {"word_count": url, "fibonacci": url}, component)
        return SeriesRunner(component, url)

    def wait_registered(self, discovery: str, expected: dict[str, str], component: Component) -> None:
        def registered() -> Optional[bool]:
            status, listing = http_json("GET", discovery + "/algorithms")
            if status == 200 and all(listing.get(name) == host for name, host in expected.items()):
                return True
            raise AssertionError(f"GET {discovery}/algorithms answered {status} {listing}")

        wait_until(
            f"discovery's GET /algorithms to list {expected}", registered, must_stay_up=[component]
        )

    def controller(self, discovery: str, *extra: str) -> Component:
        # Retries fast, so a test that sees one does not wait the default backoff for it.
        return self.switchyard(
            "controller",
            "controller",
            "--amqp",
            self.broker.url,
            "--discovery",
            discovery,
            "--backoff-base",
            "100ms",
            "--backoff-cap",
            "1s",
            *extra,
        )

    def wait_queue(self, component: Component, name: str = TASK_QUEUE) -> None:
        wait_until(
            f"queue '{name}' to exist in vhost {self.broker.vhost}",
            lambda: True if self.broker.queue_exists(name) is not None else None,
            must_stay_up=[component],
        )

    def produce(self, algorithm: str, payload: Any) -> subprocess.CompletedProcess[str]:
        """Runs the series' producer once, in the series' venv; returns how it ended."""
        return subprocess.run(
            [str(self.series_python), str(SERIES_DIR / "producer.py"), algorithm, json.dumps(payload)],
            env=child_env(AMQP_URL=self.broker.url),
            cwd=SERIES_DIR,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )

    def produce_ok(self, algorithm: str, payload: Any) -> None:
        completed = self.produce(algorithm, payload)
        if completed.returncode != 0:
            pytest.fail(
                f"expected the series' producer to publish {algorithm} {payload} and exit 0; it exited "
                f"{completed.returncode}:\nstdout: {completed.stdout}\nstderr: {completed.stderr}",
                pytrace=False,
            )

    def results(
        self, count: int, must_stay_up: Sequence[Component], timeout: float = RESULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Waits for `count` results on tasks.results (taking them off it), and returns them."""
        results: list[dict[str, Any]] = []

        def enough() -> Optional[list[dict[str, Any]]]:
            results.extend(json.loads(body) for _, body in self.broker.take(RESULTS_QUEUE))
            if len(results) >= count:
                return results
            raise AssertionError(f"{len(results)} result(s): {results}")

        return wait_until(
            f"{count} result(s) on '{RESULTS_QUEUE}'", enough, timeout, must_stay_up
        )

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin), *args],
            env=child_env(),
            cwd=self.work_dir,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )


