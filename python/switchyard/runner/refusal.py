"""A refused or failed call, answered in the series' ``{"message": ...}`` shape with the Rust
runner's statuses and messages, and the ``kind`` label of the errors metric."""

from __future__ import annotations

import json
import traceback

from pydantic import ValidationError

from ..errors import ClientError

# Loading and saturation clear within moments; a second keeps callers from spinning.
RETRY_AFTER_SECONDS = "1"


class Refusal(Exception):
    def __init__(self, status: int, kind: str, message: str, error: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.error = error

    def body(self) -> bytes:
        body: dict[str, str] = {"message": self.message}
        if self.error is not None:
            body["error"] = self.error
        return json.dumps(body).encode()


def unauthorized() -> Refusal:
    return Refusal(401, "unauthorized",
                   "missing or wrong token: calls need 'Authorization: Bearer <token>'")


def unknown_algorithm(name: str, hosted: list[str]) -> Refusal:
    return Refusal(404, "unknown_algorithm",
                   f"algorithm '{name}' is not hosted by this runner; it hosts: {', '.join(hosted)}")


def no_default(hosted: list[str]) -> Refusal:
    return Refusal(404, "unknown_algorithm",
                   "this runner has no default algorithm: POST /run/{algorithm} with one of: "
                   f"{', '.join(hosted)} (or start it with --default-algorithm)")


def loading(name: str) -> Refusal:
    return Refusal(503, "loading", f"algorithm '{name}' is still loading; retry shortly")


def saturated(name: str, concurrency: int, queue: int) -> Refusal:
    return Refusal(503, "saturated",
                   f"algorithm '{name}' is saturated ({concurrency} running, {queue} waiting); retry shortly")


def abandoned() -> Refusal:
    return Refusal(503, "abandoned", "the runner shut down before the call finished; retry it elsewhere")


def too_large(limit: int) -> Refusal:
    return Refusal(413, "too_large", f"Task body is larger than {limit} bytes")


def unreadable(reason: str) -> Refusal:
    return Refusal(400, "invalid_payload", f"Task body could not be read: {reason}")


def invalid_payload(error: ValidationError, fields: list[str]) -> Refusal:
    """The first problem pydantic found, worded as the Rust runner words serde's, naming the
    field: `invalid payload: missing field `text``, `invalid payload at 'top_k': ...`."""
    first = error.errors(include_url=False)[0]
    kind = first["type"]
    location = ".".join(str(part) for part in first["loc"])
    if kind == "json_invalid":
        return Refusal(400, "invalid_payload", f"Task body not valid JSON: {first['msg']}")
    if kind == "model_type" or (kind == "model_attributes_type" and not location):
        got = _json_type_name(first.get("input"))
        return Refusal(400, "invalid_payload",
                       f"invalid payload: expected a JSON object of fields, got {got}")
    if kind == "extra_forbidden" and "." not in location:
        expected = ", ".join(f"`{field}`" for field in fields)
        return Refusal(400, "invalid_payload",
                       f"invalid payload: unknown field `{location}`, expected one of: {expected}")
    if kind == "missing" and "." not in location:
        return Refusal(400, "invalid_payload", f"invalid payload: missing field `{location}`")
    return Refusal(400, "invalid_payload", f"invalid payload at '{location}': {first['msg']}")


def from_exception(error: BaseException) -> Refusal:
    if isinstance(error, ClientError):
        status = error.status if 400 <= error.status <= 599 else 400
        return Refusal(status, "client", error.message)
    # The series' shape for unexpected failures: a fixed message, the exception beside it. The
    # traceback is logged by the caller, never sent: it can hold paths, data and secrets.
    return internal(f"{type(error).__name__}: {error}")


def internal(detail: str) -> Refusal:
    return Refusal(500, "internal", "Internal error", detail)


def no_route(method: str, path: str) -> Refusal:
    return Refusal(404, "no_route", f"no route for {method} {path}")


def method_not_allowed(method: str, path: str) -> Refusal:
    return Refusal(405, "no_route", f"{method} is not allowed on {path}")


def _json_type_name(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return "an object"


def format_traceback(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)).rstrip()
