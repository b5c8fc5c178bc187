"""The runner's HTTP surface as a bare ASGI application: the series' ``POST /run/{algorithm}``,
``POST /`` and ``GET /schemas``, the probes and the metrics. A bare application rather than a
framework because the hot path is one dict lookup, one pydantic validation and one
serialisation, which is where the throughput over a FastAPI runner comes from."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import pydantic_core
from pydantic import ValidationError

from . import refusal
from .hosted import Hosted
from .metrics import UNKNOWN_ALGORITHM, Metrics
from .refusal import Refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("switchyard.runner")
_JSON = [(b"content-type", b"application/json")]
_METRICS_TYPE = [(b"content-type", b"text/plain; version=0.0.4")]


class RunnerApp:
    def __init__(
        self,
        hosted: dict[str, Hosted],
        *,
        runner_id: str,
        default_algorithm: str | None,
        token: str | None,
        max_body_bytes: int,
        metrics: Metrics,
    ) -> None:
        self.hosted = dict(sorted(hosted.items()))
        self.names = list(self.hosted)
        self.runner_id = runner_id
        self.default_algorithm = default_algorithm
        self._token = token.encode() if token is not None else None
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        # Set by the lifecycle: loaded once every load() hook has returned; draining once
        # shutdown starts, so /ready turns 503 and load balancers stop sending work.
        self.loaded = False
        self.draining = False
        self._calls: set[asyncio.Task[Any]] = set()
        self._abandoning = False
        self._schemas = json.dumps({name: h.schema for name, h in self.hosted.items()}).encode()

    @property
    def calls_in_flight(self) -> int:
        return len(self._calls)

    def abandon(self) -> None:
        """The grace period is over: calls still running are answered 503, so their callers
        retry elsewhere and the runner can stop."""
        self._abandoning = True
        for task in list(self._calls):
            task.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        method: str = scope["method"]
        path: str = scope["path"]
        if path == "/" or path.startswith("/run/"):
            name = None if path == "/" else path[len("/run/"):]
            if name is not None and (not name or "/" in name):
                await _refuse(send, refusal.no_route(method, path))
            elif method != "POST":
                await _refuse(send, refusal.method_not_allowed(method, path))
            else:
                await self._answer(scope, receive, send, name)
            return
        route = _GETS.get(path)
        if route is None:
            await _refuse(send, refusal.no_route(method, path))
        elif method != "GET":
            await _refuse(send, refusal.method_not_allowed(method, path))
        else:
            await route(self, send)

    async def _schemas_route(self, send: Send) -> None:
        await _respond(send, 200, self._schemas)

    async def _health(self, send: Send) -> None:
        body = {"status": "alive", "runner_id": self.runner_id}
        await _respond(send, 200, json.dumps(body).encode())

    async def _ready(self, send: Send) -> None:
        ready = self.loaded and not self.draining
        loading = [] if self.loaded else self.names
        body = {"ready": ready, "loading": loading, "draining": self.draining}
        status = 200 if ready else 503
        await _respond(send, status, json.dumps(body).encode(), _retry_after(status))

    async def _metrics(self, send: Send) -> None:
        await _respond(send, 200, self.metrics.render().encode(), _METRICS_TYPE)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, name: str | None) -> None:
        started = time.perf_counter()
        headers = dict(scope["headers"])
        task = asyncio.current_task()
        label = self._label(name)
        try:
            if task is not None:
                self._calls.add(task)
            try:
                status, body = 200, await self._call(headers, receive, name)
                error: Refusal | None = None
            except asyncio.CancelledError:
                if not self._abandoning:
                    raise
                error = refusal.abandoned()
                status, body = error.status, error.body()
            except Refusal as refused:
                error = refused
                status, body = refused.status, refused.body()
        finally:
            if task is not None:
                self._calls.discard(task)
        elapsed = time.perf_counter() - started
        self.metrics.record(label, status, elapsed, error.kind if error else None)
        _log_call(name or self.default_algorithm or "(no default)", status, elapsed, headers, error)
        await _respond(send, status, body, _retry_after(status))

    async def _call(self, headers: dict[bytes, bytes], receive: Receive, name: str | None) -> bytes:
        self._authorize(headers)
        hosted = self._lookup(name)
        if not self.loaded:
            raise refusal.loading(hosted.name)
        # Admitted before the body is read: a refused call never buffers its body.
        if not hosted.admit():
            raise refusal.saturated(hosted.name, hosted.limits.concurrency, hosted.limits.queue)
        try:
            body = await self._read_body(headers, receive)
            try:
                validated = hosted.payload.model.model_validate_json(body)
            except ValidationError as invalid:
                raise refusal.invalid_payload(invalid, hosted.payload.fields) from None
        except BaseException:
            hosted.leave()
            raise
        try:
            result = await hosted.run(hosted.payload.arguments(validated))
        except (Refusal, asyncio.CancelledError):
            raise
        except Exception as failure:
            refused = refusal.from_exception(failure)
            if refused.status >= 500:
                log.warning("algorithm %s raised:\n%s", hosted.name, refusal.format_traceback(failure))
            raise refused from None
        try:
            return pydantic_core.to_json({"result": result})
        except Exception as unserialisable:
            raise refusal.internal(f"result does not serialise: {unserialisable}") from None

    def _authorize(self, headers: dict[bytes, bytes]) -> None:
        if self._token is None:
            return
        presented = headers.get(b"authorization", b"")
        if not presented.startswith(b"Bearer "):
            raise refusal.unauthorized()
        if not hmac.compare_digest(presented[len(b"Bearer "):].strip(), self._token):
            raise refusal.unauthorized()

    def _lookup(self, name: str | None) -> Hosted:
        if name is None:
            if self.default_algorithm is None:
                raise refusal.no_default(self.names)
            return self.hosted[self.default_algorithm]
        hosted = self.hosted.get(name)
        if hosted is None:
            raise refusal.unknown_algorithm(name, self.names)
        return hosted

    def _label(self, name: str | None) -> str:
        resolved = self.default_algorithm if name is None else name
        return resolved if resolved in self.hosted else UNKNOWN_ALGORITHM

    async def _read_body(self, headers: dict[bytes, bytes], receive: Receive) -> bytes:
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise refusal.too_large(self.max_body_bytes)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise refusal.unreadable("the caller disconnected")
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise refusal.too_large(self.max_body_bytes)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_GETS: dict[str, Callable[[RunnerApp, Send], Awaitable[None]]] = {
    "/schemas": RunnerApp._schemas_route,
    "/health": RunnerApp._health,
    "/ready": RunnerApp._ready,
    "/metrics": RunnerApp._metrics,
}


def _retry_after(status: int) -> list[tuple[bytes, bytes]]:
    if status == 503:
        return [*_JSON, (b"retry-after", refusal.RETRY_AFTER_SECONDS.encode())]
    return _JSON


async def _refuse(send: Send, refused: Refusal) -> None:
    await _respond(send, refused.status, refused.body())


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = _JSON
) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _log_call(
    algorithm: str, status: int, elapsed: float, headers: dict[bytes, bytes], error: Refusal | None
) -> None:
    """The call's one log line, as the Rust runner writes it; a failure's detail is here."""
    if not log.isEnabledFor(logging.INFO):
        return
    task_id = headers.get(b"x-switchyard-task-id", b"-").decode(errors="replace")
    traceparent = headers.get(b"traceparent", b"-").decode(errors="replace")
    duration_ms = round(elapsed * 1000, 3)
    if error is None:
        log.info("call answered algorithm=%s status=%d duration_ms=%s task_id=%s traceparent=%s",
                 algorithm, status, duration_ms, task_id, traceparent)
    elif status >= 500:
        log.warning("call failed algorithm=%s status=%d duration_ms=%s task_id=%s traceparent=%s error=%s",
                    algorithm, status, duration_ms, task_id, traceparent, error.error or error.message)
    else:
        log.info("call refused algorithm=%s status=%d duration_ms=%s task_id=%s traceparent=%s error=%s",
                 algorithm, status, duration_ms, task_id, traceparent, error.message)
