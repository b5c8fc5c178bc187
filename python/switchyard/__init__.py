"""Switchyard for Python: write algorithms as typed functions (``@algorithm``), serve them with
``python -m switchyard.runner MODULE``, and submit tasks with ``Client``."""

from .algorithm import Limits, algorithm
from .errors import BadInput, ClientError

__all__ = ["BadInput", "ClientError", "Limits", "algorithm"]
