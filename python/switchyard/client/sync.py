"""``Client``: submit tasks to RabbitMQ or to ``up``'s task API and wait for their results."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpx

from .amqp import AmqpTransport
from .api import ApiTransport
from .catalog import Catalog
from .common import (DISCOVERY_TIMEOUT, ImageSource, SendOptions, as_json, discovery_for, is_amqp, refresh,
                     send_options)
from .errors import ResultTimeout
from .ids import new_task_id
from .outcome import Outcome

DEFAULT_TIMEOUT = 60.0


class TaskHandle:
    """A submitted task. ``result()`` returns its result or raises ``TaskFailed`` (a subclass
    per reason: ``Rejected``, ``NoRunner``, ``Unavailable``...) or ``ResultTimeout``."""

    def __init__(self, client: Client, task_id: str, algorithm: str, api_id: str | None) -> None:
        self.id = task_id
        self.algorithm = algorithm
        self._client = client
        self._api_id = api_id
        self._outcome: Outcome | None = None

    def outcome(self, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
        if self._outcome is None:
            found = self._client._wait(self.id, self._api_id, timeout)
            if found is None:
                raise ResultTimeout(f"no result for task {self.id} ({self.algorithm}) within {timeout}s")
            self._outcome = found
        return self._outcome

    def result(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        return self.outcome(timeout).value()

    def __repr__(self) -> str:
        return f"TaskHandle(id={self.id!r}, algorithm={self.algorithm!r})"


class Client:
    """``Client("amqp://guest:guest@127.0.0.1:5672/%2f")`` publishes to the task queue (with
    ``discovery=`` or ``SWITCHYARD_DISCOVERY``, payloads are checked against their schemas
    first); ``Client("http://127.0.0.1:8080")`` submits through ``up``'s task API, with
    ``token=`` (or ``SWITCHYARD_TOKEN``) when ``up`` requires one."""

    def __init__(self, url: str, *, discovery: str | None = None, queue: str = "tasks",
                 queue_type: str = "classic", token: str | None = None) -> None:
        self._discovery = discovery_for(url, discovery)
        self._catalog = Catalog()
        self._amqp: AmqpTransport | None = None
        self._api: ApiTransport | None = None
        if is_amqp(url):
            self._amqp = AmqpTransport(url, queue, queue_type)
        else:
            self._api = ApiTransport(url, DEFAULT_TIMEOUT, token)

    def submit(self, algorithm: str, payload: Any, *, wait: bool = False,
               timeout: float = DEFAULT_TIMEOUT, task_id: str | None = None,
               ttl: float | None = None, priority: int = 0,
               image: ImageSource | None = None) -> TaskHandle:
        """Publishes one task (confirmed by the broker, or accepted by the API) and returns its
        handle; with ``wait=True`` the handle holds the outcome already (a failure is raised
        by ``result()``, not here). With ``ttl`` (seconds), a task not answered in time is not
        run and ``result()`` raises ``Expired``. With ``image`` (a file's path, or its bytes), the
        image goes as the payload's ``image_base64``."""
        payload = as_json(payload, image)
        options = send_options(ttl, priority)
        self._check(algorithm, payload)
        handle = self._publish(task_id or new_task_id(), algorithm, payload, options)
        if wait:
            handle.outcome(timeout)
        return handle

    def submit_many(self, tasks: Iterable[tuple[str, Any]], *, ttl: float | None = None,
                    priority: int = 0) -> list[TaskHandle]:
        """Publishes every ``(algorithm, payload)``, each confirmed; nothing is published unless
        every payload passes the schema check. ``ttl`` as for ``submit``, from now for all."""
        options = send_options(ttl, priority)
        checked = [(algorithm, as_json(payload)) for algorithm, payload in tasks]
        for algorithm, payload in checked:
            self._check(algorithm, payload)
        return [self._publish(new_task_id(), algorithm, payload, options) for algorithm, payload in checked]

    def _check(self, algorithm: str, payload: Any) -> None:
        if self._discovery is None:
            return
        if self._catalog.needs_fetch(algorithm):
            try:
                response = httpx.get(f"{self._discovery.rstrip('/')}/runners", timeout=DISCOVERY_TIMEOUT)
            except httpx.HTTPError as error:
                refresh(self._catalog, self._discovery, None, error)
                return
            if not refresh(self._catalog, self._discovery, response, None):
                return
        self._catalog.check(algorithm, payload)

    def _publish(self, task_id: str, algorithm: str, payload: Any, options: SendOptions) -> TaskHandle:
        if self._amqp is not None:
            self._amqp.publish(task_id, algorithm, payload, options)
            return TaskHandle(self, task_id, algorithm, None)
        assert self._api is not None
        api_id = self._api.publish(task_id, algorithm, payload, options)
        return TaskHandle(self, task_id, algorithm, api_id)

    def _wait(self, task_id: str, api_id: str | None, timeout: float) -> Outcome | None:
        if self._amqp is not None:
            return self._amqp.wait(task_id, timeout)
        assert self._api is not None and api_id is not None
        return self._api.wait(task_id, api_id, timeout)

    def close(self) -> None:
        if self._amqp is not None:
            self._amqp.close()
        if self._api is not None:
            self._api.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
