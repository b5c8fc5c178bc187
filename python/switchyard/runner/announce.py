"""Keeping discovery informed, as the Rust runner does: register, heartbeat at the interval
discovery asks for, register again when it has forgotten the runner (a heartbeat answered 404:
discovery restarted, or the entry expired), deregister on shutdown.

Discovery being unreachable never stops the runner: calls already routed to it keep working,
and it retries with capped, jittered backoff, logging each change of state once."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

log = logging.getLogger("switchyard.runner.discovery")

# Discovery's requested interval is honoured, but never faster than this.
MIN_HEARTBEAT = 0.05
# How long shutdown waits for discovery to acknowledge the deregistration.
DEREGISTER_TIMEOUT = 3.0
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0


class Backoff:
    """Exponential from 100 ms to 5 s, each wait drawn from its upper half, so runners
    restarted together do not retry in step."""

    def __init__(self) -> None:
        self._ceiling = FIRST_BACKOFF

    def next(self) -> float:
        ceiling = self._ceiling
        self._ceiling = min(ceiling * 2, MAX_BACKOFF)
        return ceiling / 2 + random.random() * ceiling / 2

    def reset(self) -> None:
        self._ceiling = FIRST_BACKOFF


class Announcer:
    def __init__(self, discovery_url: str, token: str | None, registration: dict[str, Any]) -> None:
        self.base_url = discovery_url.rstrip("/")
        self.registration = registration
        self.runner_id: str = registration["id"]
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=5.0)
        self._link = "unknown"
        self.registrations = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Runs until ``stop`` is set, then deregisters if discovery ever knew the runner."""
        backoff = Backoff()
        try:
            while not stop.is_set():
                interval = await self._register(backoff, stop)
                if interval is None:
                    break
                if not await self._heartbeat(interval, backoff, stop):
                    break
        finally:
            if self.registrations:
                await self._deregister()
            await self._http.aclose()

    async def _register(self, backoff: Backoff, stop: asyncio.Event) -> float | None:
        """Registers, retrying; the heartbeat interval, or None when stopped first."""
        while not stop.is_set():
            try:
                response = await self._http.post("/runners", json=self.registration)
                if response.status_code in (200, 201):
                    ack = response.json()
                    interval = max(float(ack["heartbeat_interval_ms"]) / 1000, MIN_HEARTBEAT)
                    backoff.reset()
                    self._up()
                    self.registrations += 1
                    log.info("registered with discovery discovery=%s runner_id=%s base_url=%s "
                             "heartbeat_interval_ms=%s", self.base_url, self.runner_id,
                             self.registration["base_url"], ack["heartbeat_interval_ms"])
                    return interval
                self._down(_refusal_kind(response), f"discovery answered {response.status_code}: "
                           f"{response.text[:300]}")
            except (httpx.HTTPError, ValueError, KeyError) as error:
                self._down("unreachable", f"discovery at {self.base_url} is unreachable: {error!r}")
            if await _pause(backoff.next(), stop):
                return None
        return None

    async def _heartbeat(self, interval: float, backoff: Backoff, stop: asyncio.Event) -> bool:
        """Heartbeats until discovery forgets the runner (True: register again) or ``stop``."""
        wait = interval
        while not await _pause(wait, stop):
            try:
                response = await self._http.put(f"/runners/{self.runner_id}/heartbeat")
            except httpx.HTTPError as error:
                self._down("unreachable", f"discovery at {self.base_url} is unreachable: {error!r}")
                wait = backoff.next()
                continue
            if response.status_code == 404:
                self._up()
                log.info("discovery no longer knows this runner (restarted, or the entry "
                         "expired): registering again discovery=%s", self.base_url)
                return True
            if response.is_success:
                backoff.reset()
                self._up()
                wait = interval
            else:
                self._down(_refusal_kind(response), f"discovery answered {response.status_code}")
                wait = backoff.next()
        return False

    async def _deregister(self) -> None:
        try:
            response = await asyncio.wait_for(
                self._http.delete(f"/runners/{self.runner_id}"), DEREGISTER_TIMEOUT
            )
            if response.is_success or response.status_code == 404:
                log.info("deregistered from discovery discovery=%s runner_id=%s",
                         self.base_url, self.runner_id)
                return
            log.warning("could not deregister (discovery answered %s); discovery drops this "
                        "runner when its heartbeats stop", response.status_code)
        except (httpx.HTTPError, asyncio.TimeoutError) as error:
            log.warning("could not deregister (%r); discovery drops this runner when its "
                        "heartbeats stop", error)

    def _up(self) -> None:
        if self._link.startswith("down"):
            log.info("discovery answers again discovery=%s", self.base_url)
        self._link = "up"

    def _down(self, kind: str, message: str) -> None:
        advice = {
            "unreachable": "serving anyway; retrying",
            "unauthorized": "check SWITCHYARD_TOKEN; retrying",
            "no_runners_route": "is this a Switchyard discovery? retrying",
        }.get(kind, "retrying")
        if self._link != f"down:{kind}":
            log.warning("%s: %s (logged again when this changes)", message, advice)
        self._link = f"down:{kind}"


def _refusal_kind(response: httpx.Response) -> str:
    if response.status_code == 401:
        return "unauthorized"
    if response.status_code == 404:
        return "no_runners_route"
    return "unexpected"


async def _pause(seconds: float, stop: asyncio.Event) -> bool:
    """Sleeps; True if ``stop`` was set meanwhile."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
        return True
    except asyncio.TimeoutError:
        return False
