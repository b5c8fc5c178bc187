"""The whole worker on RabbitMQ: the Python client publishes, the Rust controller routes to
Python runners found through discovery, retries what is transient, dead-letters what is not,
and the client gets each result or a typed failure."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import subprocess
import time
from collections.abc import Iterator

import pika  # type: ignore[import-untyped]
import pytest

import switchyard
from switchyard import AsyncClient, Client, Expired, PayloadRefused, Rejected, ResultTimeout, SubmitFailed, Unavailable
from switchyard.client.amqp import AmqpTransport
from support import Controller, Discovery, Runner, Vhost, eventually, rabbitmqctl
from sample import Box


@pytest.fixture
def worker(vhost: Vhost, discovery: Discovery) -> Iterator[tuple[Runner, Controller]]:
    runner = Runner("sample", "--discovery", discovery.url, "--algorithms", "classify,shout,fails")
    controller = Controller(vhost, discovery, "--max-attempts", "2")
    yield runner, controller
    controller.process.stop()
    runner.process.stop()


def queued(vhost: Vhost, queue: str = "tasks") -> int:
    listing = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost.name, "name", "messages"],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    for line in listing.splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count)
    return 0


def test_tasks_round_trip(worker: tuple[Runner, Controller], vhost: Vhost, discovery: Discovery) -> None:
    runner, _ = worker
    with Client(vhost.url, discovery=discovery.url) as client:
        handle = client.submit("classify", {"image_url": "cat.jpg", "box": Box(x=1, y=2).model_dump()},
                               wait=True, timeout=30)
        assert handle.result() == {"label": "cat.jpg:5", "score": 0.5, "loaded": True}
        outcome = handle.outcome()
        assert (outcome.task_id, outcome.attempts, outcome.runner) == (handle.id, 1, runner.url)
        handles = client.submit_many([("shout", {"text": f"t{n}"}) for n in range(20)])
        assert [h.result(timeout=30)["text"] for h in handles] == [f"T{n}" for n in range(20)]


def test_the_async_client_round_trips(worker: tuple[Runner, Controller], vhost: Vhost) -> None:
    async def scenario() -> list[object]:
        async with AsyncClient(vhost.url) as client:
            handles = await client.submit_many([("shout", {"text": "a"}), ("shout", {"text": "bb"})])
            return [await handle.result(timeout=30) for handle in handles]

    assert asyncio.run(scenario()) == [{"text": "A", "length": 1}, {"text": "BB", "length": 2}]


def test_failures_are_typed_with_the_dead_letter_reason(worker: tuple[Runner, Controller], vhost: Vhost) -> None:
    runner, _ = worker
    with Client(vhost.url) as client:
        with pytest.raises(Rejected) as rejected:
            client.submit("fails", {"kind": "gone"}).result(timeout=30)
        assert (rejected.value.kind, rejected.value.reason, rejected.value.status) == ("rejected", "rejected", 410)
        assert rejected.value.message.endswith("the image is gone")
        assert rejected.value.attempts == 1
        # A 500 is retried, here up to --max-attempts 2, then given up on.
        with pytest.raises(Unavailable) as unavailable:
            client.submit("fails", {"kind": "crash"}).result(timeout=30)
        assert unavailable.value.attempts == 2 and unavailable.value.status == 500
        assert runner.metric('switchyard_runner_errors_total{algorithm="fails",kind="internal"}') == 2
        assert isinstance(unavailable.value, switchyard.TaskFailed)


def test_payloads_are_checked_before_anything_is_published(vhost: Vhost, discovery: Discovery) -> None:
    runner = Runner("sample", "--discovery", discovery.url, "--algorithms", "classify")
    try:
        eventually(lambda: discovery.runners() or (_ for _ in ()).throw(AssertionError()))
        with Client(vhost.url, discovery=discovery.url) as client:
            with pytest.raises(PayloadRefused, match=r"at '/top_k': 0 is less than the minimum of 1"):
                client.submit("classify", {"image_url": "a", "top_k": 0})
            with pytest.raises(PayloadRefused, match="unknown algorithm 'nope'; registered: classify"):
                client.submit("nope", {})
            with pytest.raises(PayloadRefused):
                client.submit_many([("classify", {"image_url": "a"}), ("classify", {})])
            assert queued(vhost) == 0
            client.submit("classify", {"image_url": "a"})
            assert queued(vhost) == 1
            # No controller runs: the result cannot come.
            with pytest.raises(ResultTimeout):
                client.submit("classify", {"image_url": "b"}).result(timeout=0.3)
        with Client(vhost.url, discovery="http://127.0.0.1:9") as unchecked:
            unchecked.submit("classify", {"top_k": 0})  # discovery unreachable: published anyway
        assert queued(vhost) == 3
    finally:
        runner.process.stop()


def test_an_overloaded_replica_answers_503_and_the_controller_retries_elsewhere(
        vhost: Vhost, discovery: Discovery) -> None:
    # Stopped by abandoning the call that holds it, so the test never waits that call out.
    full = Runner("sample", "--discovery", discovery.url, "--algorithms", "busy", "--grace-period", "100ms")
    free = Runner("sample", "--discovery", discovery.url, "--algorithms", "busy")
    controller = Controller(vhost, discovery, "--max-attempts", "30")
    try:
        eventually(lambda: len(discovery.runners()) == 2 or (_ for _ in ()).throw(AssertionError()))
        with concurrent.futures.ThreadPoolExecutor() as pool, Client(vhost.url) as client:
            # Hold the one slot of `full` for the whole test: the controller does not know.
            holding = pool.submit(full.post, "/run/busy", {"seconds": 20.0})
            eventually(lambda: full.metric('switchyard_runner_in_flight{algorithm="busy"}') == 1
                       or (_ for _ in ()).throw(AssertionError()))
            handles = client.submit_many([("busy", {"seconds": 0.05}) for _ in range(6)])
            outcomes = [handle.outcome(timeout=30) for handle in handles]
            assert not holding.done(), "`full` was held throughout"
            assert all(outcome.ok for outcome in outcomes)
            assert {outcome.runner for outcome in outcomes} == {free.url}
            assert full.metric('switchyard_runner_queue_rejections_total{algorithm="busy"}') >= 1
            assert any(outcome.attempts > 1 for outcome in outcomes)
            full.process.stop()
            assert holding.result().status_code == 503
    finally:
        controller.process.stop()
        full.process.stop()
        free.process.stop()


def test_a_task_past_its_ttl_is_not_run_and_raises_expired(vhost: Vhost, discovery: Discovery) -> None:
    runner = Runner("sample", "--discovery", discovery.url, "--algorithms", "shout")
    try:
        with Client(vhost.url) as client:
            with pytest.raises(ValueError, match="ttl must be more than 0 seconds"):
                client.submit("shout", {"text": "x"}, ttl=0)
            # No controller yet: the short task waits on the queue past its ttl.
            late = client.submit("shout", {"text": "late"}, ttl=0.2)
            in_time = client.submit("shout", {"text": "in time"}, ttl=300)
            time.sleep(0.4)
            controller = Controller(vhost, discovery)
            try:
                assert in_time.result(timeout=30) == {"text": "IN TIME", "length": 7}
                with pytest.raises(Expired) as expired:
                    late.result(timeout=30)
                assert expired.value.kind == "expired" and expired.value.attempts == 0
                assert "it was not run" in expired.value.message
            finally:
                controller.process.stop()
        assert runner.metric('switchyard_runner_requests_total{algorithm="shout",status="200"}') == 1
    finally:
        runner.process.stop()


def test_priority_and_ttl_travel_as_the_controller_reads_them(vhost: Vhost) -> None:
    with Client(vhost.url) as client:
        for wrong in (10, -1, True, 1.5):
            with pytest.raises(ValueError, match="priority must be an integer from 0 to 9"):
                client.submit("shout", {"text": "x"}, priority=wrong)  # type: ignore[arg-type]
        client.submit("shout", {"text": "urgent"}, priority=7, ttl=60)
        client.submit("shout", {"text": "plain"})
    connection = pika.BlockingConnection(pika.URLParameters(vhost.url))
    try:
        channel = connection.channel()
        # The queue takes priorities (x-max-priority), so the urgent task comes out first.
        urgent = channel.basic_get("tasks", auto_ack=True)
        plain = channel.basic_get("tasks", auto_ack=True)
    finally:
        connection.close()
    assert urgent[0] is not None and plain[0] is not None
    assert json.loads(urgent[2])["payload"] == {"text": "urgent"}
    assert urgent[1].priority == 7
    deadline = int(urgent[1].headers["x-switchyard-deadline-ms"])
    assert 0 < deadline - time.time() * 1000 <= 60_000
    assert plain[1].priority is None and not plain[1].headers


def test_the_client_reconnects_and_keeps_results_published_while_it_was_away(
        vhost: Vhost, discovery: Discovery, caplog: pytest.LogCaptureFixture) -> None:
    runner = Runner("sample", "--discovery", discovery.url, "--algorithms", "shout")
    caplog.set_level(logging.INFO, logger="switchyard.client")
    try:
        with Client(vhost.url) as client:
            queued_first = client.submit("shout", {"text": "before"})
            assert vhost.close_connections() == 1
            # The result is published while the client's connection is gone: it waits in the
            # reply queue, which outlives the connection.
            controller = Controller(vhost, discovery)
            reply_to = client._amqp.reply_to if client._amqp else ""

            def result_waiting() -> None:
                assert queued(vhost, reply_to) == 1

            eventually(result_waiting, timeout=30)
            assert queued_first.result(timeout=30) == {"text": "BEFORE", "length": 6}
            assert vhost.close_connections() >= 1
            # A publish on the broken connection reconnects and is confirmed.
            assert client.submit("shout", {"text": "after"}).result(timeout=30) == {"text": "AFTER", "length": 5}
        messages = [record.getMessage() for record in caplog.records]
        assert sum(m.startswith("lost RabbitMQ") for m in messages) == 2, messages
        assert messages.count("connected to RabbitMQ again") == 2, messages
        controller.process.stop()
    finally:
        runner.process.stop()


def test_a_client_that_cannot_reconnect_says_so_after_its_timeout() -> None:
    gone = Vhost()
    transport = AmqpTransport(gone.url, "tasks", "classic", reconnect_timeout=1.0)
    gone.delete()  # closes the connection, and no connection to it can be opened again
    started = time.monotonic()
    with pytest.raises(SubmitFailed, match=r"unreachable for 1s"):
        transport.publish("t-1", "shout", {"text": "x"})
    assert 0.9 < time.monotonic() - started < 10
    transport.close()


def test_a_nacked_publish_is_tried_on_new_connections_then_refused(
        vhost: Vhost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchyard.client")
    with Client(vhost.url) as client:
        # A full queue that refuses publishes: RabbitMQ nacks every one.
        rabbitmqctl("set_policy", "-p", vhost.name, "full", "^tasks$",
                    '{"max-length": 0, "overflow": "reject-publish"}', "--apply-to", "queues")
        try:
            with pytest.raises(SubmitFailed, match="did not confirm it, on 3 connections"):
                client.submit("shout", {"text": "refused"})
        finally:
            rabbitmqctl("clear_policy", "-p", vhost.name, "full")
        messages = [record.getMessage() for record in caplog.records]
        assert sum(m.startswith("RabbitMQ nacked a publish") for m in messages) == 2, messages
        # The client goes on, on its new connection.
        client.submit("shout", {"text": "taken"})
    assert queued(vhost, "tasks") == 1
