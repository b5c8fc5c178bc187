"""``AsyncClient``: the asyncio twin of ``Client``. The task API is spoken with httpx's async
client; RabbitMQ through the sync client's blocking connection on a worker thread, since pika
has no awaitable API and a second AMQP library is not worth its weight for a producer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import httpx

from .amqp import AmqpTransport
from .api import AsyncApiTransport
from .catalog import Catalog
from .common import (DISCOVERY_TIMEOUT, ImageSource, SendOptions, as_json, discovery_for, is_amqp, refresh,
                     send_options)
from .errors import ResultTimeout
from .ids import new_task_id
from .outcome import Outcome
from .sync import DEFAULT_TIMEOUT


class AsyncTaskHandle:
    def __init__(self, client: AsyncClient, task_id: str, algorithm: str, api_id: str | None) -> None:
        self.id = task_id
        self.algorithm = algorithm
        self._client = client
        self._api_id = api_id
        self._outcome: Outcome | None = None

    async def outcome(self, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
        if self._outcome is None:
            found = await self._client._wait(self.id, self._api_id, timeout)
            if found is None:
                raise ResultTimeout(f"no result for task {self.id} ({self.algorithm}) within {timeout}s")
            self._outcome = found
        return self._outcome

    async def result(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        return (await self.outcome(timeout)).value()

    def __repr__(self) -> str:
        return f"AsyncTaskHandle(id={self.id!r}, algorithm={self.algorithm!r})"


class AsyncClient:
    """Open with ``await AsyncClient.connect(url, ...)`` (connecting to RabbitMQ blocks), or
    use ``async with AsyncClient(url) as client``."""

    def __init__(self, url: str, *, discovery: str | None = None, queue: str = "tasks",
                 queue_type: str = "classic", token: str | None = None) -> None:
        self._url = url
        self._queue = queue
        self._queue_type = queue_type
        self._discovery = discovery_for(url, discovery)
        self._catalog = Catalog()
        self._amqp: AmqpTransport | None = None
        self._api: AsyncApiTransport | None = None
        if not is_amqp(url):
            self._api = AsyncApiTransport(url, DEFAULT_TIMEOUT, token)

    @classmethod
    async def connect(cls, url: str, **options: Any) -> AsyncClient:
        client = cls(url, **options)
        await client._open()
        return client

    async def _open(self) -> None:
        if self._api is None and self._amqp is None:
            self._amqp = await asyncio.to_thread(AmqpTransport, self._url, self._queue, self._queue_type)

    async def submit(self, algorithm: str, payload: Any, *, wait: bool = False,
                     timeout: float = DEFAULT_TIMEOUT, task_id: str | None = None,
                     ttl: float | None = None, priority: int = 0,
                     image: ImageSource | None = None) -> AsyncTaskHandle:
        payload = as_json(payload, image)
        options = send_options(ttl, priority)
        await self._check(algorithm, payload)
        handle = await self._publish(task_id or new_task_id(), algorithm, payload, options)
        if wait:
            await handle.outcome(timeout)
        return handle

    async def submit_many(self, tasks: Iterable[tuple[str, Any]], *,
                          ttl: float | None = None, priority: int = 0) -> list[AsyncTaskHandle]:
        options = send_options(ttl, priority)
        checked = [(algorithm, as_json(payload)) for algorithm, payload in tasks]
        for algorithm, payload in checked:
            await self._check(algorithm, payload)
        if self._api is not None:
            # The API confirms each submit itself; posting them together hides the round trips.
            return list(await asyncio.gather(
                *(self._publish(new_task_id(), a, p, options) for a, p in checked)))
        return [await self._publish(new_task_id(), a, p, options) for a, p in checked]

    async def _check(self, algorithm: str, payload: Any) -> None:
        if self._discovery is None:
            return
        if self._catalog.needs_fetch(algorithm):
            try:
                async with httpx.AsyncClient(timeout=DISCOVERY_TIMEOUT) as http:
                    response = await http.get(f"{self._discovery.rstrip('/')}/runners")
            except httpx.HTTPError as error:
                refresh(self._catalog, self._discovery, None, error)
                return
            if not refresh(self._catalog, self._discovery, response, None):
                return
        self._catalog.check(algorithm, payload)

    async def _publish(self, task_id: str, algorithm: str, payload: Any,
                       options: SendOptions) -> AsyncTaskHandle:
        if self._api is not None:
            api_id = await self._api.publish(task_id, algorithm, payload, options)
            return AsyncTaskHandle(self, task_id, algorithm, api_id)
        await self._open()
        assert self._amqp is not None
        await asyncio.to_thread(self._amqp.publish, task_id, algorithm, payload, options)
        return AsyncTaskHandle(self, task_id, algorithm, None)

    async def _wait(self, task_id: str, api_id: str | None, timeout: float) -> Outcome | None:
        if self._api is not None:
            assert api_id is not None
            return await self._api.wait(task_id, api_id, timeout)
        assert self._amqp is not None
        return await asyncio.to_thread(self._amqp.wait, task_id, timeout)

    async def aclose(self) -> None:
        if self._amqp is not None:
            await asyncio.to_thread(self._amqp.close)
        if self._api is not None:
            await self._api.aclose()

    async def __aenter__(self) -> AsyncClient:
        await self._open()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.aclose()
