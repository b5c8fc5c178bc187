"""Submitting through ``switchyard up``'s task API: ``POST /v1/tasks`` with the task id as the
``Idempotency-Key`` (so a blind retry of a submit is safe), results by long-polling
``GET /v1/tasks/{id}?wait=``. The API checks the payload against the schema itself and answers
400, so the client checks nothing before it posts."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from .common import SendOptions
from .errors import PayloadRefused, SubmitFailed
from .outcome import Outcome, from_api_record

# One long poll's length: under proxies' usual idle timeouts.
POLL = 30.0


def submit_request(task_id: str, algorithm: str, payload: Any,
                   options: SendOptions = SendOptions()) -> dict[str, Any]:
    body: dict[str, Any] = {"algorithm": algorithm, "payload": payload}
    if options.deadline_ms is not None:
        # The API counts a ttl from its own clock: send what is left of ours.
        body["ttl"] = f"{max(1, options.deadline_ms - int(time.time() * 1000))}ms"
    if options.priority:
        body["priority"] = options.priority
    return {"url": "/v1/tasks", "json": body, "headers": {"idempotency-key": task_id}}


def accepted(response: httpx.Response, task_id: str) -> str:
    """The API's id for the task, or the error its answer means."""
    if response.status_code in (200, 202):
        api_id = response.json().get("id")
        if isinstance(api_id, str):
            return api_id
        raise SubmitFailed(f"task {task_id}: the API answered without an id")
    message = _message(response)
    if response.status_code == 400:
        raise PayloadRefused(message)
    raise SubmitFailed(f"task {task_id}: the API answered {response.status_code}: {message}")


def poll_request(api_id: str, remaining: float) -> str:
    wait_ms = max(0, int(min(remaining, POLL) * 1000))
    return f"/v1/tasks/{api_id}?wait={wait_ms}ms"


def outcome_of(response: httpx.Response, task_id: str) -> Outcome | None:
    if response.status_code != 200:
        raise SubmitFailed(f"task {task_id}: reading it answered {response.status_code}: "
                           f"{_message(response)}")
    return from_api_record(response.json(), task_id)


def auth_headers(token: str | None) -> dict[str, str]:
    """The header ``up`` requires of submits when it runs with ``SWITCHYARD_TOKEN``: the
    ``token`` given, else that variable's value, else none."""
    token = token or os.environ.get("SWITCHYARD_TOKEN") or None
    return {"Authorization": f"Bearer {token}"} if token else {}


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message", response.text))
    except ValueError:
        return response.text[:300]


class ApiTransport:
    def __init__(self, url: str, timeout: float, token: str | None = None) -> None:
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=POLL + timeout,
                                  headers=auth_headers(token))

    def publish(self, task_id: str, algorithm: str, payload: Any, options: SendOptions = SendOptions()) -> str:
        try:
            response = self._http.post(**submit_request(task_id, algorithm, payload, options))
        except httpx.HTTPError as error:
            raise SubmitFailed(f"task {task_id}: the API is unreachable: {error!r}") from error
        return accepted(response, task_id)

    def wait(self, task_id: str, api_id: str, timeout: float) -> Outcome | None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                response = self._http.get(poll_request(api_id, remaining))
            except httpx.HTTPError as error:
                raise SubmitFailed(f"task {task_id}: the API is unreachable: {error!r}") from error
            outcome = outcome_of(response, task_id)
            if outcome is not None or deadline - time.monotonic() <= 0:
                return outcome

    def close(self) -> None:
        self._http.close()


class AsyncApiTransport:
    def __init__(self, url: str, timeout: float, token: str | None = None) -> None:
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), timeout=POLL + timeout,
                                       headers=auth_headers(token))

    async def publish(self, task_id: str, algorithm: str, payload: Any,
                      options: SendOptions = SendOptions()) -> str:
        try:
            response = await self._http.post(**submit_request(task_id, algorithm, payload, options))
        except httpx.HTTPError as error:
            raise SubmitFailed(f"task {task_id}: the API is unreachable: {error!r}") from error
        return accepted(response, task_id)

    async def wait(self, task_id: str, api_id: str, timeout: float) -> Outcome | None:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                response = await self._http.get(poll_request(api_id, remaining))
            except httpx.HTTPError as error:
                raise SubmitFailed(f"task {task_id}: the API is unreachable: {error!r}") from error
            outcome = outcome_of(response, task_id)
            if outcome is not None or deadline - time.monotonic() <= 0:
                return outcome

    async def aclose(self) -> None:
        await self._http.aclose()
