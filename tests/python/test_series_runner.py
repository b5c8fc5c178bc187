"""The series' Part III runner library, unchanged, behind Switchyard's discovery and controller.

The library (tests/python/series/runnerlib, FastAPI 0.68 + pydantic 1 in a venv of the series'
pinned versions) registers its adapter's algorithms with `POST /algorithms` and answers
`POST /run/{name}`; Switchyard must route tasks to it, deliver its results, and treat its
refusals (400 with pydantic's text, 422 from FastAPI, both `{"detail": ...}`) as permanent: one
attempt, a dead letter carrying the detail, and an error result saying the same.
"""

from __future__ import annotations

import json
from typing import Any

from series_harness import DEAD_QUEUE, Deployment, http_json


def by_id(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {result["id"]: result for result in results}


def test_the_series_runner_library_registers_and_serves_tasks(deployment: Deployment) -> None:
    discovery = deployment.discovery()
    runner = deployment.series_runner(discovery)

    # The registry exactly as the series' controller reads it: algorithm -> the runner's host.
    status, listing = http_json("GET", discovery + "/algorithms")
    assert (status, listing) == (200, {"word_count": runner.url, "fibonacci": runner.url}), (
        f"expected discovery to list both series algorithms at {runner.url}, saw {status} {listing}"
    )
    status, schemas = http_json("GET", runner.url + "/schemas")
    assert status == 200 and schemas["fibonacci"] == {
        "title": "AlgorithmRequestModel_fibonacci",
        "type": "object",
        "properties": {"n": {"title": "N", "type": "integer"}},
        "required": ["n"],
        "additionalProperties": False,
    }, f"expected the pydantic 1 schema of run_fibonacci(n: int), saw {status} {schemas}"

    controller = deployment.controller(discovery)
    deployment.wait_queue(controller)
    tasks = {
        "wc-1": {"algorithm": "word_count", "payload": {"text": "The cat and the hat"}},
        "fib-1": {"algorithm": "fibonacci", "payload": {"n": 10}},
        "fib-2": {"algorithm": "fibonacci", "payload": {"n": 0}},
    }
    for task_id, body in tasks.items():
        deployment.broker.publish(body, message_id=task_id)

    results = by_id(deployment.results(len(tasks), must_stay_up=[controller, runner.component]))
    expected = {
        "wc-1": {"words": 5, "counts": {"the": 2, "cat": 1, "and": 1, "hat": 1}},
        "fib-1": 55,
        "fib-2": 0,
    }
    for task_id, value in expected.items():
        result = results.get(task_id)
        assert result is not None, f"expected a result for {task_id}, saw results for {sorted(results)}"
        seen = {key: result.get(key) for key in ("status", "algorithm", "result", "attempts", "runner")}
        wanted = {
            "status": "ok",
            "algorithm": tasks[task_id]["algorithm"],
            "result": value,
            "attempts": 1,
            "runner": runner.url,
        }
        assert seen == wanted, f"expected {task_id}'s result {wanted}, saw {result}"


# What the series' library answers for each payload it refuses, exactly: 400 with pydantic 1's
# text for a payload its model rejects, FastAPI's 422 for a body that is not an object.
REFUSED: dict[str, tuple[str, Any, int, Any]] = {
    "bad-type": (
        "fibonacci",
        {"n": "ten"},
        400,
        "1 validation error for AlgorithmRequestModel_fibonacci\nn\n  value is not a valid integer (type=type_error.integer)",
    ),
    "unknown-field": (
        "word_count",
        {"text": "hello", "language": "en"},
        400,
        "1 validation error for AlgorithmRequestModel_word_count\nlanguage\n"
        "  extra fields not permitted (type=value_error.extra)",
    ),
    "missing-field": (
        "word_count",
        {},
        400,
        "1 validation error for AlgorithmRequestModel_word_count\ntext\n  field required (type=value_error.missing)",
    ),
    "not-an-object": (
        "word_count",
        ["hello"],
        422,
        [{"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}],
    ),
}


def detail_text(detail: Any) -> str:
    """The detail as text: a string as it is, FastAPI's list as JSON."""
    return detail if isinstance(detail, str) else json.dumps(detail)


def same_detail(seen: str, detail: Any) -> bool:
    # Switchyard may re-serialise a structured detail (spacing, key order): compare its meaning.
    if isinstance(detail, str):
        return seen == detail
    try:
        return bool(json.loads(seen) == detail)
    except ValueError:
        return False


def test_a_payload_pydantic_refuses_is_dead_lettered_after_one_attempt(deployment: Deployment) -> None:
    discovery = deployment.discovery()
    runner = deployment.series_runner(discovery)

    # First the library itself, called directly: these are the answers Switchyard gets.
    for task_id, (algorithm, payload, status, detail) in REFUSED.items():
        seen = http_json("POST", f"{runner.url}/run/{algorithm}", payload)
        assert seen == (status, {"detail": detail}), (
            f"expected the series' library to answer {task_id} with {status} {{'detail': {detail!r}}}, saw {seen}"
        )

    controller = deployment.controller(discovery)
    deployment.wait_queue(controller)
    for task_id, (algorithm, payload, _, _) in REFUSED.items():
        deployment.broker.publish({"algorithm": algorithm, "payload": payload}, message_id=task_id)

    results = by_id(deployment.results(len(REFUSED), must_stay_up=[controller, runner.component]))

    # The producer-facing error result names the refusal in the library's own words.
    for task_id, (algorithm, payload, status, detail) in REFUSED.items():
        result = results.get(task_id)
        assert result is not None, f"expected a result for {task_id}, saw results for {sorted(results)}"
        error = result.get("error") or {}
        assert (result.get("status"), result.get("attempts"), error.get("kind"), error.get("status")) == (
            "error",
            1,
            "rejected",
            status,
        ), f"expected {task_id}: an error result after 1 attempt, kind 'rejected', status {status}; saw {result}"
        assert same_detail(error.get("message", ""), detail), (
            f"expected {task_id}'s error message to be the runner's detail {detail_text(detail)!r}, "
            f"saw {error.get('message')!r}"
        )

    # The dead letters, as an operator lists them: each once, the original body, the detail.
    listed = deployment.run_cli("dead-letters", "list", "--json", "--amqp", deployment.broker.url)
    assert listed.returncode == 0, (
        f"expected `switchyard dead-letters list` to exit 0, it exited {listed.returncode}: {listed.stderr}"
    )
    letters = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    letters_by_id = {letter["id"]: letter for letter in letters}
    assert sorted(letter["id"] for letter in letters) == sorted(REFUSED), (
        f"expected exactly one dead letter per refused task {sorted(REFUSED)}, saw {letters}"
    )
    for task_id, (algorithm, payload, _, detail) in REFUSED.items():
        letter = letters_by_id[task_id]
        assert (letter["reason"], letter["attempts"]) == ("rejected", 1), (
            f"expected {task_id}'s dead letter to say reason 'rejected' after 1 attempt, saw {letter}"
        )
        assert same_detail(letter["last_error"], detail), (
            f"expected {task_id}'s dead letter to carry the runner's detail {detail_text(detail)!r}, "
            f"saw {letter['last_error']!r}"
        )
        assert json.loads(letter["body"]) == {"algorithm": algorithm, "payload": payload}, (
            f"expected {task_id}'s dead letter to keep the task's body, saw {letter['body']!r}"
        )

    # And on the queue itself, where a consumer of `tasks.dead` reads the same in headers.
    on_queue = deployment.broker.take(DEAD_QUEUE)
    headers = {properties.message_id: properties.headers or {} for properties, _ in on_queue}
    for task_id, (_, _, _, detail) in REFUSED.items():
        letter_headers = headers.get(task_id, {})
        last_error = letter_headers.get("x-switchyard-last-error")
        last_error = last_error.decode() if isinstance(last_error, bytes) else last_error
        assert letter_headers.get("x-switchyard-dead-reason") in ("rejected", b"rejected") and same_detail(
            last_error or "", detail
        ), f"expected {task_id} on '{DEAD_QUEUE}' with reason 'rejected' and the detail, saw headers {letter_headers}"

    # Not retried: the runner saw each refused task exactly once. Every task is settled (its
    # error result is out), so no retry of it can still be on its way.
    log = runner.component.log()
    calls = {
        code: sum(f'"POST /run/{name} HTTP/1.1" {code}' in line for line in log.splitlines() for name in ("fibonacci", "word_count"))
        for code in (400, 422)
    }
    assert calls == {400: 3 + 3, 422: 1 + 1}, (
        "expected the runner to see each refused payload once from the test and once from the "
        f"controller (400: 6, 422: 2), saw {calls}\n{runner.component.describe()}"
    )
