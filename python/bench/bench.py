"""Tasks/s of a no-op through the whole worker (RabbitMQ, the Rust controller, discovery, one
runner), with three runners in turn, round after round in one run: the switchyard Python
runner, the series' FastAPI + uvicorn + pydantic design, and the Rust runner's `echo`.

    .venv/bin/pip install -r python/bench/requirements.txt
    SWITCHYARD_BIN=target/release/switchyard .venv/bin/python python/bench/bench.py --tasks 3000 --rounds 3

Each turn publishes every task at once (no confirms, so the producer is never the bottleneck),
each with `reply_to`, and times from the first publish to the last result."""

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


def turn(design: str, vhost_url: str, tasks: int, concurrency: int) -> tuple[float, float]:
    discovery_port = free_port()
    discovery_url = f"http://127.0.0.1:{discovery_port}"
    queue = f"bench-{design}-{uuid.uuid4().hex[:8]}"
    started: list[Process] = []
    try:
        started.append(Process([binary(), "discovery", "--listen", f"127.0.0.1:{discovery_port}"]))
        wait_http(f"{discovery_url}/health")
        started.append(start_runner(design, discovery_url))
        deadline = time.monotonic() + 60
        while "echo" not in httpx.get(f"{discovery_url}/algorithms").json():
            assert time.monotonic() < deadline, f"{design} never registered"
            time.sleep(0.05)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="the controller's --concurrency")
    args = parser.parse_args()
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
