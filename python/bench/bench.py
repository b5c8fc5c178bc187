"""Tasks/s of a no-op through the whole worker (RabbitMQ, the Rust controller, discovery, one
runner), with three runners in turn, round after round in one run: the switchyard Python
runner, the series' FastAPI + uvicorn + pydantic design, and the Rust runner's `echo`; then
the same three runners called directly over HTTP, with nothing else on the machine's cores.

    .venv/bin/pip install -r python/bench/requirements.txt   # and wrk (apt-get install wrk)
    SWITCHYARD_BIN=target/release/switchyard .venv/bin/python python/bench/bench.py --tasks 3000 --rounds 3

Each worker turn publishes every task at once (no confirms, so the producer is never the
bottleneck), each with `reply_to`, and times from the first publish to the last result. Each
direct turn is wrk (one thread, one core) POSTing to `/run/echo` over `--connections` keep-alive
connections for `--seconds`: the runner alone, the figure the worker's own cost hides."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pika  # type: ignore[import-untyped]

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))
from support import Process, binary, free_port, rabbitmqctl, wait_http  # noqa: E402

DESIGNS = ("python", "fastapi", "rust")


def start_runner(design: str, discovery: str) -> Process:
    port = free_port()
    quiet = {"PYTHONPATH": str(HERE)}
    if design == "python":
        return Process([sys.executable, "-m", "switchyard.runner", "noop", "--listen",
                        f"127.0.0.1:{port}", "--discovery", discovery], env=quiet, cwd=HERE)
    if design == "fastapi":
        return Process([sys.executable, str(HERE / "fastapi_runner.py"), "--port", str(port),
                        "--discovery", discovery], env=quiet, cwd=HERE)
    return Process([binary(), "runner", "--listen", f"127.0.0.1:{port}", "--discovery", discovery,
                    "--algorithms", "echo"])


class Producer:
    def __init__(self, url: str, queue: str) -> None:
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()
        self.queue = queue
        self.reply_to = self.channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self.received = 0
        self.channel.basic_consume(self.reply_to, self._on_result, auto_ack=True)

    def _on_result(self, *_: Any) -> None:
        self.received += 1

    def run(self, tasks: int, timeout: float = 300) -> float:
        """Seconds from the first publish to the last of `tasks` results."""
        self.received = 0
        body = json.dumps({"algorithm": "echo", "payload": {"text": "hello"}}).encode()
        started = time.perf_counter()
        for _ in range(tasks):
            task_id = str(uuid.uuid4())
            self.channel.basic_publish("", self.queue, body, pika.BasicProperties(
                message_id=task_id, correlation_id=task_id, reply_to=self.reply_to, delivery_mode=2))
        while self.received < tasks:
            self.connection.process_data_events(time_limit=0.05)
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{self.received} of {tasks} results")
        return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: what the runner itself spent, whatever
    else shares the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def registered_runner(design: str, started: list[Process]) -> tuple[str, str]:
    """Starts discovery then `design`'s runner (appended to `started`, runner second) and waits
    until it registered `echo`; gives discovery's URL and the runner's."""
    discovery_port = free_port()
    discovery_url = f"http://127.0.0.1:{discovery_port}"
    started.append(Process([binary(), "discovery", "--listen", f"127.0.0.1:{discovery_port}"]))
    wait_http(f"{discovery_url}/health")
    started.append(start_runner(design, discovery_url))
    deadline = time.monotonic() + 60
    while "echo" not in (hosts := httpx.get(f"{discovery_url}/algorithms").json()):
        assert time.monotonic() < deadline, f"{design} never registered"
        time.sleep(0.05)
    return discovery_url, str(hosts["echo"])


def turn(design: str, vhost_url: str, tasks: int, concurrency: int) -> tuple[float, float]:
    queue = f"bench-{design}-{uuid.uuid4().hex[:8]}"
    started: list[Process] = []
    try:
        discovery_url, _ = registered_runner(design, started)
        started.append(Process([binary(), "controller", "--amqp", vhost_url, "--queue", queue,
                                "--discovery", discovery_url, "--concurrency", str(concurrency)]))
        time.sleep(1.0)  # the controller declares the queue
        producer = Producer(vhost_url, queue)
        producer.run(min(200, tasks))  # warm-up: connections, caches
        runner_pid = started[1].popen.pid
        cpu_before = cpu_seconds(runner_pid)
        elapsed = producer.run(tasks)
        cpu_ms = (cpu_seconds(runner_pid) - cpu_before) * 1000 / tasks
        producer.connection.close()
        return tasks / elapsed, cpu_ms
    finally:
        for process in reversed(started):
            process.stop()


def direct_turn(design: str, seconds: float, connections: int) -> dict[str, float]:
    """Requests/s, latency and CPU per request of one runner called directly by wrk."""
    started: list[Process] = []
    try:
        _, host = registered_runner(design, started)
        runner_pid = started[1].popen.pid
        url = f"{host}/run/echo"
        answering(url)
        wrk(url, 1.0, connections)  # warm-up: connections, caches
        cpu_before = cpu_seconds(runner_pid)
        figures = wrk(url, seconds, connections)
        figures["cpu_ms"] = (cpu_seconds(runner_pid) - cpu_before) * 1000 / figures["requests"]
        return figures
    finally:
        for process in reversed(started):
            process.stop()


def answering(url: str, timeout: float = 30.0) -> None:
    """Waits for the runner to answer a call: the series' design registers before it listens."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.post(url, json={"text": "ready?"}, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered"
        time.sleep(0.05)


def wrk(url: str, seconds: float, connections: int) -> dict[str, float]:
    """One wrk run against a runner's no-op; every answer must have been a 2xx."""
    ran = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(HERE / "wrk_post.lua"), url],
        capture_output=True, text=True)
    if ran.returncode != 0:
        raise RuntimeError(f"wrk failed against {url}: {ran.stdout}{ran.stderr}")
    output = ran.stdout
    figures: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    if figures["non_2xx"] or figures["errors"]:
        raise RuntimeError(f"{url}: {figures['non_2xx']} non-2xx answers, {figures['errors']} errors")
    figures["rps"] = figures["requests"] / figures["seconds"]
    return figures


def report_direct(direct: dict[str, list[dict[str, float]]], seconds: float, connections: int) -> None:
    print(f"\nDirect: wrk, 1 thread, {connections} connections, {seconds:g} s per turn; median of rounds:")
    medians = {}
    for design, runs in direct.items():
        medians[design] = statistics.median(run["rps"] for run in runs)
        p50 = statistics.median(run["p50_us"] for run in runs) / 1000
        p99 = statistics.median(run["p99_us"] for run in runs) / 1000
        cpu_ms = statistics.median(run["cpu_ms"] for run in runs)
        rounds = ", ".join(f"{run['rps']:.0f}" for run in runs)
        print(f"  {design:8} {medians[design]:8.0f} requests/s   p50 {p50:.2f} ms   p99 {p99:.2f} ms   "
              f"runner CPU {cpu_ms:.3f} ms/request   (rounds: {rounds})")
    print(f"  requests/s: python / fastapi = {medians['python'] / medians['fastapi']:.2f}x, "
          f"python / rust = {medians['python'] / medians['rust']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="the controller's --concurrency")
    parser.add_argument("--seconds", type=float, default=10, help="each direct turn's length")
    parser.add_argument("--connections", type=int, default=32, help="wrk's connections in a direct turn")
    parser.add_argument("--direct-only", action="store_true", help="skip the whole-worker turns")
    args = parser.parse_args()
    direct: dict[str, list[dict[str, float]]] = {design: [] for design in DESIGNS}
    for round_number in range(1, args.rounds + 1):
        for design in DESIGNS:
            measured = direct_turn(design, args.seconds, args.connections)
            direct[design].append(measured)
            print(f"round {round_number} {design:8} direct {measured['rps']:8.0f} requests/s  runner CPU "
                  f"{measured['cpu_ms']:.3f} ms/request", flush=True)
    report_direct(direct, args.seconds, args.connections)
    if args.direct_only:
        return
    vhost = f"switchyard-bench-{uuid.uuid4().hex}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    figures: dict[str, list[float]] = {design: [] for design in DESIGNS}
    cpu: dict[str, list[float]] = {design: [] for design in DESIGNS}
    try:
        for round_number in range(1, args.rounds + 1):
            for design in DESIGNS:
                rate, cpu_ms = turn(design, f"amqp://guest:guest@127.0.0.1:5672/{vhost}", args.tasks,
                                    args.concurrency)
                figures[design].append(rate)
                cpu[design].append(cpu_ms)
                print(f"round {round_number} {design:8} {rate:8.0f} tasks/s  runner CPU "
                      f"{cpu_ms:.3f} ms/task", flush=True)
    finally:
        rabbitmqctl("delete_vhost", vhost)
    medians = {design: statistics.median(rates) for design, rates in figures.items()}
    cpu_medians = {design: statistics.median(values) for design, values in cpu.items()}
    print(f"\n{args.tasks} tasks per turn, {args.rounds} rounds, controller --concurrency "
          f"{args.concurrency}, {os.cpu_count()} cores; median tasks/s:")
    for design in DESIGNS:
        print(f"  {design:8} {medians[design]:8.0f}   runner CPU {cpu_medians[design]:.3f} ms/task   "
              f"(rounds: {', '.join(f'{r:.0f}' for r in figures[design])})")
    print(f"  tasks/s: python / fastapi = {medians['python'] / medians['fastapi']:.2f}x, "
          f"python / rust = {medians['python'] / medians['rust']:.2f}x")
    print(f"  runner CPU per task: fastapi / python = {cpu_medians['fastapi'] / cpu_medians['python']:.2f}x")


if __name__ == "__main__":
    main()
