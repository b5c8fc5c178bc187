"""Switchyard for Python: write algorithms as typed functions (``@algorithm``), serve them with
``python -m switchyard.runner MODULE``, and submit tasks with ``Client`` or ``AsyncClient``."""

from .algorithm import Limits, algorithm
from .client.aio import AsyncClient, AsyncTaskHandle
from .client.errors import (
    BadResponse,
    Expired,
    InvalidTask,
    NoRunner,
    PayloadRefused,
    Rejected,
    ResultTimeout,
    SubmitFailed,
    SwitchyardError,
    TaskFailed,
    Unavailable,
)
from .client.outcome import Outcome
from .client.sync import Client, TaskHandle
from .errors import BadInput, ClientError

__all__ = [
    "AsyncClient", "AsyncTaskHandle", "BadInput", "BadResponse", "Client", "ClientError",
    "Expired", "InvalidTask", "Limits", "NoRunner", "Outcome", "PayloadRefused", "Rejected",
    "ResultTimeout", "SubmitFailed", "SwitchyardError", "TaskFailed", "TaskHandle",
    "Unavailable", "algorithm",
]
