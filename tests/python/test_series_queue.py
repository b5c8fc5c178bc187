"""The series' producer and Switchyard's controller on one `tasks` queue, in both start orders.

The producer (tests/python/series/producer.py) is the series' own, run in the series' venv: it
declares `tasks` with no properties (not durable, no arguments) and publishes
`{"algorithm", "payload"}` with no message id. RabbitMQ refuses to declare one queue two ways
(PRECONDITION_FAILED), so:
- producer first: the controller must adopt the queue as it is, serve what waits on it and what
  comes later, and say once in its log that it adopted it and what that costs;
- controller first with `--task-queue-properties series`: it declares `tasks` the series' way,
  and the producer's declaration matches;
- controller first with the default (`switchyard`) properties: the producer's declaration fails.
  That is the documented reason for the setting.

These use the built-in `echo` algorithm, so they depend on no series runner.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from series_harness import TASK_QUEUE, Component, Deployment

ADOPTION_LOG = "adopted existing queue 'tasks'"


def echo_texts(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Results by the text they echo (the series' producer sets no message id to match on)."""
    return {str((result.get("result") or {}).get("text")): result for result in results}


def assert_echoed(results: list[dict[str, Any]], texts: list[str]) -> None:
    seen = echo_texts(results)
    assert sorted(seen) == sorted(texts), f"expected results echoing {sorted(texts)}, saw {results}"
    for text in texts:
        result = seen[text]
        assert result.get("status") == "ok" and result["result"] == {"text": text, "length": len(text)}, (
            f"expected an ok echo result {{'text': {text!r}, 'length': {len(text)}}}, saw {result}"
        )
        assert result.get("id"), f"expected the controller to give an id-less task an id, saw {result}"
    ids = [result["id"] for result in results]
    assert len(set(ids)) == len(ids), f"expected a distinct id per task, saw {ids}"


def lines_with(component: Component, text: str) -> list[str]:
    return [line for line in component.log().splitlines() if text in line]


def test_the_controller_adopts_the_queue_the_series_producer_declared(deployment: Deployment) -> None:
    discovery = deployment.discovery()
    deployment.echo_runner(discovery)

    waiting = [f"waiting {number}" for number in range(3)]
    for text in waiting:
        deployment.produce_ok("echo", {"text": text})
    queue = deployment.broker.queues().get(TASK_QUEUE)
    assert queue is not None and (queue.durable, queue.arguments, queue.messages) == (False, {}, len(waiting)), (
        f"expected the series' producer to leave a non-durable '{TASK_QUEUE}' without arguments holding "
        f"{len(waiting)} tasks, saw {queue}"
    )

    controller = deployment.controller(discovery)
    assert_echoed(deployment.results(len(waiting), must_stay_up=[controller]), waiting)

    # It keeps serving the producer, whose declaration still matches the queue as it is.
    later = [f"later {number}" for number in range(2)]
    for text in later:
        deployment.produce_ok("echo", {"text": text})
    assert_echoed(deployment.results(len(later), must_stay_up=[controller]), later)

    queue = deployment.broker.queues().get(TASK_QUEUE)
    assert queue is not None and (queue.durable, queue.arguments) == (False, {}), (
        f"expected the controller to adopt '{TASK_QUEUE}' as it was (not durable, no arguments), saw {queue}"
    )
    adopted = lines_with(controller, ADOPTION_LOG)
    assert len(adopted) == 1, (
        f"expected the controller to log {ADOPTION_LOG!r} exactly once, saw {len(adopted)} such lines\n"
        f"{controller.describe()}"
    )
    line = adopted[0]
    assert "WARN" in line and "durable" in line, (
        f"expected the adoption line at WARN, naming the property that differs (durable), saw {line!r}"
    )


def test_a_controller_declaring_the_series_way_serves_the_series_producer(deployment: Deployment) -> None:
    discovery = deployment.discovery()
    deployment.echo_runner(discovery)

    controller = deployment.controller(discovery, "--task-queue-properties", "series")
    deployment.wait_queue(controller)
    queue = deployment.broker.queues().get(TASK_QUEUE)
    assert queue is not None and (queue.durable, queue.arguments) == (False, {}), (
        f"expected `--task-queue-properties series` to declare '{TASK_QUEUE}' as the series does "
        f"(not durable, no arguments), saw {queue}"
    )

    texts = [f"series {number}" for number in range(3)]
    for text in texts:
        deployment.produce_ok("echo", {"text": text})
    assert_echoed(deployment.results(len(texts), must_stay_up=[controller]), texts)

    adopted = lines_with(controller, ADOPTION_LOG)
    assert adopted == [], f"expected no adoption: the controller declared '{TASK_QUEUE}' itself; saw {adopted}"


def test_the_default_queue_properties_make_the_series_producer_fail(deployment: Deployment) -> None:
    discovery = deployment.discovery()
    controller = deployment.controller(discovery)
    deployment.wait_queue(controller)
    queue = deployment.broker.queues().get(TASK_QUEUE)
    assert queue is not None and queue.durable, (
        f"expected the default controller to declare a durable '{TASK_QUEUE}', saw {queue}"
    )

    completed = deployment.produce("echo", {"text": "refused"})
    assert completed.returncode != 0 and "PRECONDITION_FAILED" in completed.stderr, (
        "expected the series' producer to fail declaring the controller's durable queue with "
        f"PRECONDITION_FAILED; it exited {completed.returncode}\nstdout: {completed.stdout}\n"
        f"stderr: {completed.stderr}"
    )
    assert "durable" in completed.stderr, (
        f"expected RabbitMQ's refusal to name the property that differs (durable), saw {completed.stderr}"
    )

    # A producer's failure is its own: the controller keeps serving.
    if controller.exited() is not None:
        pytest.fail(f"expected the controller to keep running\n{controller.describe()}", pytrace=False)


def test_a_refused_series_task_on_the_adopted_queue_is_a_dead_letter_under_its_result_id(
    deployment: Deployment,
) -> None:
    discovery = deployment.discovery()
    deployment.echo_runner(discovery)
    # The series' producer gives no message id: the controller's generated one must tie the
    # error result to the dead letter, the only handle a user has to replay it.
    deployment.produce_ok("echo", {"txt": "a misspelt field"})
    controller = deployment.controller(discovery)
    [result] = deployment.results(1, must_stay_up=[controller])
    error = result.get("error") or {}
    assert (result.get("status"), result.get("attempts"), error.get("kind"), error.get("status")) == (
        "error",
        1,
        "rejected",
        400,
    ) and "txt" in error.get("message", ""), (
        f"expected an error result after 1 attempt, kind 'rejected', status 400, naming the field 'txt'; saw {result}"
    )

    # Listing dead letters works on the adopted queue too, without any extra setting.
    listed = deployment.run_cli("dead-letters", "list", "--json", "--amqp", deployment.broker.url)
    letters = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
    assert listed.returncode == 0 and [(letter["key"], letter["reason"]) for letter in letters] == [
        (result["id"], "rejected")
    ], (
        f"expected `switchyard dead-letters list` to exit 0 and list one letter keyed {result['id']!r}, "
        f"the result's id; it exited {listed.returncode}, listed {letters}\nstderr: {listed.stderr}"
    )
    assert json.loads(letters[0]["body"]) == {"algorithm": "echo", "payload": {"txt": "a misspelt field"}}, (
        f"expected the dead letter to keep the series' body, saw {letters[0]['body']!r}"
    )


def test_adopting_the_queue_is_said_once_without_error_lines(deployment: Deployment) -> None:
    """An adopted queue is the supported migration path, not a failure: the controller says so in
    its one WARN line, and nothing in its log calls it an error (RabbitMQ's PRECONDITION_FAILED
    while probing the queue is expected, and already quoted in that line)."""
    discovery = deployment.discovery()
    deployment.echo_runner(discovery)
    deployment.produce_ok("echo", {"text": "waiting"})
    controller = deployment.controller(discovery)
    assert_echoed(deployment.results(1, must_stay_up=[controller]), ["waiting"])

    errors = lines_with(controller, " ERROR ")
    assert len(lines_with(controller, ADOPTION_LOG)) == 1 and errors == [], (
        f"expected one {ADOPTION_LOG!r} line and no ERROR line in the controller's log, saw "
        f"{len(errors)} ERROR line(s):\n" + "\n".join(errors)
    )
