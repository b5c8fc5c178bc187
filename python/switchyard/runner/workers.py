"""What runs inside a process pool's worker: the module imported by name and its ``load()`` hook
run once, so each worker holds its own model before it takes a call."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import multiprocessing
from typing import Any


def init_worker(module_name: str) -> None:
    module = importlib.import_module(module_name)
    run_load_hook(getattr(module, "load", None))


def run_load_hook(hook: Any) -> None:
    if hook is None:
        return
    outcome = hook()
    if inspect.isawaitable(outcome):
        asyncio.run(_wait(outcome))


async def _wait(awaitable: Any) -> None:
    await awaitable


def warm(seconds: float) -> None:
    """A task that keeps a worker busy a moment, so warming N workers starts N processes."""
    import time

    time.sleep(seconds)


# Spawned, not forked: the runner process has an event loop and a log writer thread, which a
# fork would copy in whatever state they were in.
CONTEXT = multiprocessing.get_context("spawn")
