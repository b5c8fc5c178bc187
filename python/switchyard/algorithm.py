"""``@algorithm``: marks a typed function as an algorithm a runner serves, with its limits.

The function is returned unchanged, so it stays callable (and picklable, for a process pool) as
the author wrote it; the runner finds it through the registry kept here."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

Executor = Literal["thread", "process"]
F = TypeVar("F", bound=Callable[..., Any])


def _cores() -> int:
    return os.cpu_count() or 2


@dataclass(frozen=True)
class Limits:
    """Calls running at once, and calls allowed to wait for a slot; beyond both the runner
    answers 503 with ``Retry-After``. The defaults are the Rust runner's: one call per core, 16
    waiting per core."""

    concurrency: int
    queue: int

    @staticmethod
    def default() -> Limits:
        return Limits(concurrency=_cores(), queue=_cores() * 16)


@dataclass(frozen=True)
class Spec:
    """What the runner needs to serve one function."""

    name: str
    function: Callable[..., Any]
    limits: Limits
    # Where a sync function runs: a thread (the default; fine for NumPy, PyTorch and anything
    # else that releases the GIL) or a process (pure-Python CPU-bound work). Async functions
    # run on the event loop.
    executor: Executor

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)


_registry: dict[Callable[..., Any], Spec] = {}


def spec_of(function: Callable[..., Any]) -> Spec | None:
    return _registry.get(function)


@overload
def algorithm(function: F, /) -> F: ...


@overload
def algorithm(
    *,
    name: str | None = None,
    concurrency: int | None = None,
    queue: int | None = None,
    executor: Executor = "thread",
) -> Callable[[F], F]: ...


def algorithm(
    function: F | None = None,
    /,
    *,
    name: str | None = None,
    concurrency: int | None = None,
    queue: int | None = None,
    executor: Executor = "thread",
) -> F | Callable[[F], F]:
    """Serve ``function`` as the algorithm ``name`` (default: the function's name). Its
    parameters are the payload's fields; its return value, any JSON-serialisable value or
    pydantic model, is the result."""

    def register(function: F) -> F:
        defaults = Limits.default()
        limits = Limits(
            concurrency=defaults.concurrency if concurrency is None else concurrency,
            queue=defaults.queue if queue is None else queue,
        )
        if limits.concurrency < 1 or limits.queue < 0:
            raise ValueError(
                f"algorithm {function.__name__}: concurrency must be at least 1 and queue at least 0"
            )
        if executor not in ("thread", "process"):
            raise ValueError(f"algorithm {function.__name__}: executor must be 'thread' or 'process'")
        if executor == "process" and inspect.iscoroutinefunction(function):
            raise ValueError(
                f"algorithm {function.__name__}: an async function runs on the event loop, not in a process"
            )
        _registry[function] = Spec(name or function.__name__, function, limits, executor)
        return function

    if function is not None:
        return register(function)
    return register
