"""A Python runner and the real discovery: registration, what `switchyard schemas` shows,
surviving a discovery killed with -9, and leaving on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import concurrent.futures
import time

from support import Discovery, Runner, binary, eventually


def entry(discovery: Discovery, runner: Runner) -> dict[str, object]:
    for candidate in discovery.runners():
        if candidate["base_url"] == runner.url:
            return candidate
    raise AssertionError(f"{runner.url} is not registered: {discovery.runners()}")


def test_registers_with_its_capacity_and_schemas_and_heartbeats(discovery: Discovery) -> None:
    runner = Runner("sample", "--discovery", discovery.url, "--algorithms", "shout,busy")
    try:
        registered = eventually(lambda: entry(discovery, runner))
        assert sorted(a["name"] for a in registered["algorithms"]) == ["busy", "shout"]  # type: ignore[index]
        assert registered["capacity"] >= 2 and registered["legacy"] is False  # type: ignore[operator]
        time.sleep(1.0)  # five heartbeat intervals: still healthy
        assert entry(discovery, runner)["healthy"] is True
        shown = subprocess.run([binary(), "schemas", "--discovery", discovery.url],
                               capture_output=True, text=True, timeout=30)
        assert shown.returncode == 0, shown.stderr
        assert "shout" in shown.stdout and "busy" in shown.stdout
        assert "Holds its only slot" in shown.stdout
    finally:
        runner.process.stop()


def test_registers_again_after_discovery_is_killed(discovery: Discovery) -> None:
    runner = Runner("sample", "--discovery", discovery.url, "--algorithms", "shout")
    try:
        eventually(lambda: entry(discovery, runner))
        discovery.process.popen.kill()
        discovery.process.popen.wait()
        time.sleep(0.5)  # heartbeats fail meanwhile; the runner keeps serving
        assert runner.post("/run/shout", {"text": "still"}).status_code == 200
        restarted = Discovery(discovery.port)
        try:
            eventually(lambda: entry(restarted, runner), timeout=10)
            runner.process.wait_for("registering again|registered with discovery.*")
            assert "discovery answers again" in runner.process.output() or \
                "registering again" in runner.process.output()
        finally:
            restarted.process.stop()
    finally:
        runner.process.stop()


def test_sigterm_deregisters_after_calls_in_flight_finish(discovery: Discovery) -> None:
    runner = Runner("sample", "--discovery", discovery.url, "--grace-period", "5s", "--algorithms", "busy")
    eventually(lambda: entry(discovery, runner))
    with concurrent.futures.ThreadPoolExecutor() as pool:
        call = pool.submit(runner.post, "/run/busy", {"seconds": 1.0})
        time.sleep(0.3)
        runner.process.signal(signal.SIGTERM)

        def gone() -> None:
            assert all(r["base_url"] != runner.url for r in discovery.runners())

        eventually(gone, timeout=3)
        assert call.result().json() == {"result": {"slept": 1.0}}
    assert runner.process.wait() == 0
    output = runner.process.output()
    assert output.index("deregistered from discovery") < output.index("runner stopped")


def test_a_token_is_sent_to_discovery() -> None:
    locked = Discovery(None, "--token", "t0ken")
    try:
        refused = Runner("sample", "--discovery", locked.url, "--algorithms", "shout")
        refused.process.wait_for("check SWITCHYARD_TOKEN")
        refused.process.stop()
        runner = Runner("sample", "--discovery", locked.url, "--algorithms", "shout",
                        env={"SWITCHYARD_TOKEN": "t0ken"})
        try:
            eventually(lambda: entry(locked, runner))
        finally:
            runner.process.stop()
    finally:
        locked.process.stop()


