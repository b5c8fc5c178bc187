"""The runner protocol, call by call, as crates/runner/tests/router.rs checks the Rust runner:
the same statuses, bodies, headers and metric names."""

from __future__ import annotations

import concurrent.futures
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from support import Runner, wait_http


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    started = Runner("sample", "--standalone", "--default-algorithm", "shout",
                     "--max-body-bytes", "4096")
    yield started
    started.process.stop()


def test_a_call_answers_its_result(runner: Runner) -> None:
    answer = runner.post("/run/classify", {"image_url": "cat.jpg", "top_k": 3})
    assert answer.status_code == 200
    assert answer.json() == {"result": {"label": "cat.jpg:3", "score": 0.5, "loaded": True}}
    assert runner.post("/run/shout", {"text": "hi"}).json() == {"result": {"text": "HI", "length": 2}}


def test_post_root_runs_the_default_algorithm(runner: Runner) -> None:
    assert runner.post("/", {"text": "abc"}).json()["result"]["text"] == "ABC"


@pytest.mark.parametrize(("body", "message"), [
    ({}, "invalid payload: missing field `image_url`"),
    ({"image_url": "a", "colour": 1},
     "invalid payload: unknown field `colour`, expected one of: `box`, `image_url`, `top_k`"),
    ({"image_url": "a", "top_k": 11}, "invalid payload at 'top_k': Input should be less than or equal to 10"),
    ({"image_url": "a", "top_k": "3"}, "invalid payload at 'top_k': Input should be a valid integer"),
    ({"image_url": "a", "box": {"x": 1}}, "invalid payload at 'box.y': Field required"),
    (["a"], "invalid payload: expected a JSON object of fields, got an array"),
])
def test_a_payload_that_does_not_fit_is_refused_naming_the_field(
        runner: Runner, body: object, message: str) -> None:
    answer = runner.post("/run/classify", body)
    assert answer.status_code == 400
    assert answer.json() == {"message": message}


def test_a_body_that_is_not_json_is_refused(runner: Runner) -> None:
    answer = runner.post("/run/classify", content=b"{not json")
    assert answer.status_code == 400
    assert answer.json()["message"].startswith("Task body not valid JSON: ")


def test_a_body_over_the_limit_is_refused_with_413(runner: Runner) -> None:
    answer = runner.post("/run/shout", {"text": "x" * 5000})
    assert answer.status_code == 413
    assert answer.json() == {"message": "Task body is larger than 4096 bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    answer = runner.post("/run/shout", content=chunks())
    assert answer.status_code == 413


def test_unknown_algorithms_list_what_is_hosted(runner: Runner) -> None:
    answer = runner.post("/run/nope", {})
    assert answer.status_code == 404
    assert answer.json() == {"message": "algorithm 'nope' is not hosted by this runner; it hosts: "
                                        "blocking_sleep, busy, classify, fails, in_process, shout, unserialisable"}


def test_routes_and_methods(runner: Runner) -> None:
    assert httpx.get(f"{runner.url}/run/shout").status_code == 405
    assert httpx.get(f"{runner.url}/run/shout").json() == {"message": "GET is not allowed on /run/shout"}
    assert httpx.post(f"{runner.url}/schemas").status_code == 405
    missing = httpx.get(f"{runner.url}/nowhere")
    assert (missing.status_code, missing.json()) == (404, {"message": "no route for GET /nowhere"})


@pytest.mark.parametrize(("kind", "status", "message"), [
    ("bad_input", 400, "kind must be something else"),
    ("gone", 410, "the image is gone"),
    ("not_an_error", 400, "odd status"),
])
def test_client_errors_keep_their_status(runner: Runner, kind: str, status: int, message: str) -> None:
    answer = runner.post("/run/fails", {"kind": kind})
    assert (answer.status_code, answer.json()) == (status, {"message": message})


def test_an_unexpected_exception_is_a_500_with_the_traceback_logged_not_sent(runner: Runner) -> None:
    answer = runner.post("/run/fails", {"kind": "crash"})
    assert answer.status_code == 500
    assert answer.json() == {"message": "Internal error", "error": "ValueError: secret-detail-in-exception"}
    assert "Traceback" not in answer.text
    runner.process.wait_for(r'File ".*sample.py", line \d+, in fails')
    unserialisable = runner.post("/run/unserialisable", {})
    assert unserialisable.status_code == 500
    assert unserialisable.json()["error"].startswith("result does not serialise")


def test_schemas_health_and_metrics(runner: Runner) -> None:
    schemas = httpx.get(f"{runner.url}/schemas").json()
    assert schemas["classify"]["properties"]["image_url"]["description"] == "Where the image is."
    assert schemas["busy"]["description"].startswith("Holds its only slot")
    health = httpx.get(f"{runner.url}/health").json()
    assert health["status"] == "alive" and health["runner_id"].startswith("runner-")
    runner.post("/run/shout", {"text": "m"})
    text = httpx.get(f"{runner.url}/metrics").text
    for line in ('switchyard_runner_requests_total{algorithm="shout",status="200"}',
                 'switchyard_runner_errors_total{algorithm="classify",kind="invalid_payload"}',
                 'switchyard_runner_errors_total{algorithm="unknown",kind="unknown_algorithm"}',
                 'switchyard_runner_request_duration_seconds_bucket{algorithm="shout",le="+Inf"}',
                 'switchyard_runner_in_flight{algorithm="busy"} 0',
                 'switchyard_runner_queued{algorithm="busy"} 0',
                 "# TYPE switchyard_runner_request_duration_seconds histogram"):
        assert line in text, line


def test_a_full_algorithm_answers_503_with_retry_after(runner: Runner) -> None:
    with concurrent.futures.ThreadPoolExecutor() as pool:
        holding = pool.submit(runner.post, "/run/busy", {"seconds": 1.0})
        deadline = time.monotonic() + 5
        while runner.metric('switchyard_runner_in_flight{algorithm="busy"}') < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        refused = runner.post("/run/busy", {"seconds": 0})
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json() == {"message": "algorithm 'busy' is saturated (1 running, 0 waiting); retry shortly"}
        # Other algorithms and the probes are not held up.
        assert runner.post("/run/shout", {"text": "x"}).status_code == 200
        assert holding.result().status_code == 200
    assert runner.metric('switchyard_runner_queue_rejections_total{algorithm="busy"}') >= 1


def test_a_blocking_call_never_blocks_the_probes(runner: Runner) -> None:
    with concurrent.futures.ThreadPoolExecutor() as pool:
        sleeping = pool.submit(runner.post, "/run/blocking_sleep", {"seconds": 1.0})
        time.sleep(0.2)
        started = time.monotonic()
        assert httpx.get(f"{runner.url}/health").status_code == 200
        assert time.monotonic() - started < 0.5
        assert sleeping.result().json() == {"result": 1.0}


def test_process_executor_workers_ran_the_load_hook(runner: Runner) -> None:
    answers = [runner.post("/run/in_process", {"n": n}).json()["result"] for n in range(4)]
    assert [answer["square"] for answer in answers] == [0, 1, 4, 9]
    parent = runner.process.popen.pid
    assert all(answer["pid"] != parent for answer in answers)
    assert all(answer["loaded_in"] == answer["pid"] for answer in answers)


def test_the_token_guards_calls_but_not_probes() -> None:
    runner = Runner("sample", "--standalone", "--algorithms", "shout", env={"SWITCHYARD_TOKEN": "s3cret"})
    try:
        assert runner.post("/run/shout", {"text": "a"}).status_code == 401
        wrong = runner.post("/run/shout", {"text": "a"}, headers={"authorization": "Bearer s3cre"})
        assert wrong.status_code == 401
        assert wrong.json()["message"].startswith("missing or wrong token")
        right = runner.post("/run/shout", {"text": "a"}, headers={"authorization": "Bearer s3cret"})
        assert right.status_code == 200
        assert httpx.get(f"{runner.url}/schemas").status_code == 200
    finally:
        runner.process.stop()


def test_ready_only_after_load_and_not_while_draining() -> None:
    runner = Runner("sample", "--standalone", "--algorithms", "shout,busy",
                    env={"SAMPLE_LOAD_SECONDS": "1.5"}, ready=False)
    try:
        wait_http(f"{runner.url}/health")
        loading = httpx.get(f"{runner.url}/ready")
        assert loading.status_code == 503
        assert loading.json()["loading"] == ["busy", "shout"]
        call = runner.post("/run/shout", {"text": "a"})
        assert (call.status_code, call.headers["retry-after"]) == (503, "1")
        assert call.json() == {"message": "algorithm 'shout' is still loading; retry shortly"}
        wait_http(f"{runner.url}/ready", timeout=10)
        assert runner.post("/run/shout", {"text": "a"}).status_code == 200
    finally:
        runner.process.stop()


def test_a_failed_load_stops_the_runner() -> None:
    runner = Runner("sample", "--standalone", "--algorithms", "shout", env={"SAMPLE_LOAD_FAILS": "1"},
                    ready=False)
    assert runner.process.wait() == 1
    assert "the model file is missing" in runner.process.output()


def test_sigterm_lets_a_call_in_flight_finish() -> None:
    runner = Runner("sample", "--standalone", "--grace-period", "5s", "--algorithms", "busy")
    with concurrent.futures.ThreadPoolExecutor() as pool:
        call = pool.submit(runner.post, "/run/busy", {"seconds": 1.0})
        time.sleep(0.3)
        runner.process.signal(signal.SIGTERM)
        assert call.result().json() == {"result": {"slept": 1.0}}
    assert runner.process.wait() == 0


def test_past_the_grace_period_calls_are_answered_503() -> None:
    runner = Runner("sample", "--standalone", "--grace-period", "300ms", "--algorithms", "blocking_sleep")
    with concurrent.futures.ThreadPoolExecutor() as pool:
        call = pool.submit(runner.post, "/run/blocking_sleep", {"seconds": 5})
        time.sleep(0.3)
        started = time.monotonic()
        runner.process.signal(signal.SIGTERM)
        answer = call.result()
        assert answer.status_code == 503
        assert answer.json() == {"message": "the runner shut down before the call finished; retry it elsewhere"}
    assert runner.process.wait() == 0
    assert time.monotonic() - started < 4


@pytest.mark.parametrize(("args", "message"), [
    (["sample", "--standalone", "--default-algorithm", "nope"], "default algorithm 'nope' is not hosted"),
    (["sample", "--standalone", "--algorithms", "shout,nope"], "--algorithms names nope"),
    (["no_such_module", "--standalone"], "cannot import module no_such_module"),
    (["runner_adapter", "--standalone"], "module runner_adapter has no @algorithm functions"),
])
def test_bad_configurations_stop_with_a_reason(args: list[str], message: str) -> None:
    from support import ALGORITHMS, Process
    import sys

    process = Process([sys.executable, "-m", "switchyard.runner", *args, "--listen", "127.0.0.1:0"],
                      env={"PYTHONPATH": str(ALGORITHMS)}, cwd=ALGORITHMS)
    assert process.wait() == 2
    assert message in process.output()
