"""Finding what a module serves: its ``@algorithm`` functions, or, for a series adapter, its
``run_<name>`` functions (the series' runnerlib convention), and its optional ``load()`` hook."""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .algorithm import Limits, Spec, spec_of

SERIES_PREFIX = "run_"


def decorated(module: ModuleType) -> list[Spec]:
    """Every ``@algorithm`` function the module defines or imports, in definition order."""
    specs: list[Spec] = []
    for value in vars(module).values():
        if callable(value) and (spec := spec_of(value)) is not None and spec not in specs:
            specs.append(spec)
    return specs


def series_adapter(module: ModuleType) -> list[Spec]:
    """The series' runnerlib picks every function of ``runner_adapter`` whose name starts with
    ``run_`` (its regex also matched ``runner...``, whose name then failed to split: only
    ``run_`` names ever worked) and calls it with the payload's fields as keyword arguments. An
    ``@algorithm`` on such a function still sets its limits."""
    specs: list[Spec] = []
    for attribute, value in inspect.getmembers(module, inspect.isfunction):
        if not attribute.startswith(SERIES_PREFIX) or len(attribute) == len(SERIES_PREFIX):
            continue
        spec = spec_of(value)
        name = attribute[len(SERIES_PREFIX):]
        if spec is None:
            spec = Spec(name, value, Limits.default(), "thread")
        specs.append(Spec(name, series_errors(value), spec.limits, spec.executor)
                     if not spec.is_async else Spec(name, value, spec.limits, spec.executor))
    return specs


def series_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """The series' runnerlib answered its ``exceptions.RequestError`` (an image fetch that got
    an error status) with 400; every other exception was a 500. Kept, so adapters that raise it
    keep their meaning."""
    from .errors import ClientError

    def call(**arguments: Any) -> Any:
        try:
            return function(**arguments)
        except Exception as error:
            status = getattr(getattr(error, "response", None), "status_code", None)
            if type(error).__name__ == "RequestError" and isinstance(status, int):
                raise ClientError(400, f"Error fetching request image, received {status}") from error
            raise

    return functools.wraps(function)(call)


def load_hook(module: ModuleType) -> Callable[[], Any] | None:
    hook = getattr(module, "load", None)
    if hook is None:
        return None
    if not callable(hook):
        raise TypeError(f"{module.__name__}.load is not a function")
    return hook  # type: ignore[no-any-return]


def import_module(name: str) -> ModuleType:
    return importlib.import_module(name)
