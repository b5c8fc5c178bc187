"""How an algorithm says a call failed, so the controller decides the same way as for a Rust
runner: a client error is the request's fault (dead-lettered, never retried); anything else
raised is a 500, which the controller retries, on another replica if there is one."""

from __future__ import annotations


class ClientError(Exception):
    """The request cannot succeed as sent. ``status`` is the HTTP status answered: a 4xx, or the
    status an upstream fetch received (the series passes a failed image fetch's status through).
    A status that is not an error status is still the caller's fault and is answered 400."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class BadInput(ClientError):
    """Invalid input: 400."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)
