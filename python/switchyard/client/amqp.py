"""Publishing tasks to RabbitMQ as ``switchyard submit --amqp`` does: the body
``{"algorithm", "payload"}``, persistent, ``mandatory``, ``message_id`` = the task id, and
``reply_to`` + ``correlation_id`` naming this client's exclusive reply queue, each publish
confirmed by the broker before ``submit`` returns.

pika's blocking connection is not thread-safe, so one lock guards it; waiting for results
pumps it in short slices so other threads can publish meanwhile.

A lost connection (RabbitMQ restarted, a node failed over, connections closed by an operator)
is opened again, with backoff, for up to ``reconnect_timeout`` seconds, by whichever call met
it: a publish whose confirm was lost is published again (at-least-once, under the same task
id), and a wait goes on waiting. The reply queue is named, durable and expires only after
``REPLY_QUEUE_EXPIRES_MS`` unused, so results published while the client reconnects wait for
it instead of being dropped with an exclusive queue."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import pika  # type: ignore[import-untyped]  # pika ships no type hints
import pika.exceptions  # type: ignore[import-untyped]
from pika.adapters.blocking_connection import BlockingChannel  # type: ignore[import-untyped]

from .common import MAX_PRIORITY, SendOptions
from .errors import SubmitFailed
from .outcome import Outcome, from_result_message

# The longest a result waiter holds the connection before letting a publisher in.
_PUMP_SLICE = 0.05

# The deadline the controller honours (crates/wire/src/headers.rs): Unix ms, past which the
# task is not run and its result is ``expired``.
DEADLINE_HEADER = "x-switchyard-deadline-ms"

# How long the reply queue outlives its client's connection: long enough for any reconnection,
# short enough that a client that died does not leave it behind for good.
REPLY_QUEUE_EXPIRES_MS = 10 * 60 * 1000

# How many connections one publish is tried on while the broker nacks it: a nack that a new
# connection cures (a quorum queue's new leader) goes on the second.
_NACK_TRIES = 3

# What says the connection, not the request, failed: worth opening it again. A channel the
# broker closed for a reason of its own (a missing queue: 404) is not among them.
_CONNECTION_LOST = (pika.exceptions.AMQPConnectionError, pika.exceptions.ConnectionWrongStateError,
                    pika.exceptions.ChannelWrongStateError, pika.exceptions.StreamLostError)

log = logging.getLogger("switchyard.client")


class AmqpTransport:
    def __init__(self, url: str, queue: str, queue_type: str, reconnect_timeout: float = 30.0) -> None:
        self.queue = queue
        self.reply_to = f"switchyard.reply.{uuid.uuid4().hex}"
        self._url = url
        self._queue_type = queue_type
        self._reconnect_timeout = reconnect_timeout
        self._lock = threading.Lock()
        self._outcomes: dict[str, Outcome] = {}
        try:
            self._open()
        except pika.exceptions.AMQPError as error:
            raise SubmitFailed(f"cannot open RabbitMQ at {_redacted(url)}: {error!r}") from error

    def _open(self) -> None:
        self._connection = pika.BlockingConnection(pika.URLParameters(self._url))
        self._channel: BlockingChannel = self._connection.channel()
        self._declare(self._queue_type)
        self._channel.confirm_delivery()
        self._channel.queue_declare(self.reply_to, durable=True,
                                    arguments={"x-expires": REPLY_QUEUE_EXPIRES_MS})
        self._channel.basic_consume(self.reply_to, self._on_result, auto_ack=True)

    def _reconnect(self, lost: Exception, why: str = "lost RabbitMQ") -> None:
        """Opens the connection again, with backoff, or raises ``SubmitFailed`` once
        ``reconnect_timeout`` has passed. Called with the lock held."""
        log.warning("%s (%r): reconnecting", why, lost)
        deadline = time.monotonic() + self._reconnect_timeout
        delay = 0.1
        while True:
            try:
                self._open()
                log.info("connected to RabbitMQ again")
                return
            except pika.exceptions.AMQPError as error:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SubmitFailed(f"RabbitMQ at {_redacted(self._url)} unreachable for "
                                       f"{self._reconnect_timeout:g}s: {error!r}") from error
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)

    def _close_quietly(self) -> None:
        """Closes a connection that is still open but no longer trusted."""
        try:
            self._connection.close()
        except pika.exceptions.AMQPError:
            pass

    def _declare(self, queue_type: str) -> None:
        """The task queue as the controller declares it, so a task published before any
        controller started waits in it instead of being unroutable. A queue that exists is used
        as it is (as the controller adopts it): declaring it again with other arguments, such as
        a series producer's plain queue, would be refused."""
        # On a channel of its own: a queue that is missing closes the channel it is asked on.
        probe = self._connection.channel()
        try:
            probe.queue_declare(self.queue, passive=True)
            probe.close()
            return
        except pika.exceptions.ChannelClosedByBroker as error:
            if error.reply_code != 404:
                raise
        dead_letter_exchange = f"{self.queue}.dlx"
        self._channel.exchange_declare(dead_letter_exchange, "fanout", durable=True)
        arguments: dict[str, Any] = {"x-dead-letter-exchange": dead_letter_exchange}
        if queue_type == "quorum":
            arguments["x-queue-type"] = "quorum"
        else:
            # As crates/broker/src/amqp/topology.rs: quorum queues refuse it on RabbitMQ 3.10.
            arguments["x-max-priority"] = MAX_PRIORITY
        self._channel.queue_declare(self.queue, durable=True, arguments=arguments)

    def _on_result(self, _channel: Any, _method: Any, properties: Any, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            return  # not a result; nothing this client can do with it
        if not isinstance(message, dict):
            return
        task_id = properties.correlation_id or message.get("id")
        # Delivery is at-least-once: the first result of an id is the one kept.
        if isinstance(task_id, str) and task_id not in self._outcomes:
            self._outcomes[task_id] = from_result_message(message)

    def publish(self, task_id: str, algorithm: str, payload: Any, options: SendOptions = SendOptions()) -> None:
        body = json.dumps({"algorithm": algorithm, "payload": payload}).encode()
        headers = None if options.deadline_ms is None else {DEADLINE_HEADER: str(options.deadline_ms)}
        properties = pika.BasicProperties(message_id=task_id, reply_to=self.reply_to,
                                          correlation_id=task_id, delivery_mode=2, headers=headers,
                                          priority=options.priority or None)
        nacks = 0
        with self._lock:
            while True:
                try:
                    self._channel.basic_publish("", self.queue, body, properties, mandatory=True)
                    return
                except pika.exceptions.UnroutableError as error:
                    raise SubmitFailed(f"task {task_id}: queue '{self.queue}' does not exist") from error
                except pika.exceptions.NackError as error:
                    nacks += 1
                    if nacks >= _NACK_TRIES:
                        raise SubmitFailed(f"task {task_id}: the broker did not confirm it, "
                                           f"on {nacks} connections") from error
                    # A channel that saw a quorum queue's leader die can go on nacking publishes
                    # to it after a new leader is elected; a new connection's channel is not.
                    self._close_quietly()
                    self._reconnect(error, "RabbitMQ nacked a publish")
                except _CONNECTION_LOST as lost:
                    self._reconnect(lost)
                except pika.exceptions.AMQPError as error:
                    raise SubmitFailed(f"task {task_id}: publishing failed: {error!r}") from error

    def wait(self, task_id: str, timeout: float) -> Outcome | None:
        deadline = time.monotonic() + timeout
        while True:
            outcome = self._outcomes.get(task_id)
            if outcome is not None:
                return outcome
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with self._lock:
                if task_id in self._outcomes:
                    continue
                try:
                    self._connection.process_data_events(time_limit=min(remaining, _PUMP_SLICE))
                except _CONNECTION_LOST as lost:
                    self._reconnect(lost)
                except pika.exceptions.AMQPError as error:
                    raise SubmitFailed(f"the connection to RabbitMQ broke while waiting for "
                                       f"task {task_id}: {error!r}") from error

    def close(self) -> None:
        with self._lock:
            if self._connection.is_open:
                try:
                    self._channel.queue_delete(self.reply_to)
                    self._connection.close()
                except pika.exceptions.AMQPError:
                    pass  # closing a broken connection: the reply queue expires by itself


def _redacted(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.split(':')[0]}:***@{host}" if at else url
