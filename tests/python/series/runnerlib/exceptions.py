"""Failures an algorithm may raise that the server answers as the request's fault (400)."""

from typing import Protocol


class _Response(Protocol):
    status_code: int


class RequestError(Exception):
    """Fetching the task's input (an image URL) failed with `response`'s status."""

    def __init__(self, message: str, response: _Response) -> None:
        super().__init__(message)
        self.response = response
