"""One algorithm as the running server holds it: its payload model, the gates that bound its
concurrency and its wait queue, and where its calls run (the event loop, a thread pool or a
process pool)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib
import inspect
from collections.abc import Callable
from multiprocessing.context import BaseContext
from typing import Any

from ..algorithm import Spec
from ..schema import Payload
from .metrics import Metrics


class Hosted:
    def __init__(self, spec: Spec, metrics: Metrics, worker_init: Callable[[], None] | None,
                 context: BaseContext) -> None:
        self.spec = spec
        self.name = spec.name
        self.payload = Payload(spec.name, spec.function)
        self.schema = self.payload.schema
        self.limits = spec.limits
        self._metrics = metrics
        # Admitted calls (running or waiting) are counted, not queued in a structure: a call
        # that finds every place taken is refused before its body is read, so memory stays
        # bounded by concurrency + queue bodies.
        self._admitted = 0
        self._running = asyncio.Semaphore(spec.limits.concurrency)
        self._executor: concurrent.futures.Executor | None = None
        if not spec.is_async:
            if spec.executor == "process":
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    max_workers=spec.limits.concurrency, initializer=worker_init,
                    mp_context=context,
                )
            else:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=spec.limits.concurrency, thread_name_prefix=f"algorithm-{spec.name}"
                )

    @property
    def in_processes(self) -> bool:
        return isinstance(self._executor, concurrent.futures.ProcessPoolExecutor)

    async def warm(self, task: Callable[[float], None]) -> None:
        """Starts every worker of a process pool (each runs the load hook) before the runner
        says it is ready, so no call waits for a model to load; a failed hook fails here."""
        if not isinstance(self._executor, concurrent.futures.ProcessPoolExecutor):
            return
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, task, 0.2)
                               for _ in range(self.limits.concurrency)))

    def admit(self) -> bool:
        if self._admitted >= self.limits.concurrency + self.limits.queue:
            return False
        self._admitted += 1
        self._metrics.queued[self.name] += 1
        return True

    def leave(self) -> None:
        """Gives back a place in line that never got to run (a refused body, a bad payload)."""
        self._admitted -= 1
        self._metrics.queued[self.name] -= 1

    async def run(self, arguments: dict[str, Any]) -> Any:
        """Waits for a slot, then runs the function; the place in line is given back either way,
        a cancelled (abandoned) call included."""
        started = False
        try:
            async with self._running:
                started = True
                self._metrics.queued[self.name] -= 1
                self._metrics.in_flight[self.name] += 1
                try:
                    return await self._call(arguments)
                finally:
                    self._metrics.in_flight[self.name] -= 1
        finally:
            if not started:
                self._metrics.queued[self.name] -= 1
            self._admitted -= 1

    async def _call(self, arguments: dict[str, Any]) -> Any:
        function = self.spec.function
        if self._executor is None:
            result = function(**arguments)
            return await result if inspect.isawaitable(result) else result
        loop = asyncio.get_running_loop()
        if isinstance(self._executor, concurrent.futures.ProcessPoolExecutor):
            call = functools.partial(
                _call_by_name, function.__module__, function.__qualname__, arguments
            )
        else:
            call = functools.partial(function, **arguments)
        return await loop.run_in_executor(self._executor, call)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _call_by_name(module: str, qualname: str, arguments: dict[str, Any]) -> Any:
    """Runs in a pool process: finds the function by name there, since the decorated function
    object of the parent cannot travel."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target(**arguments)
