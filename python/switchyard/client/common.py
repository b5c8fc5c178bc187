"""What the sync and async clients share: which transport a URL means, payloads as JSON
values, and the schema check against discovery's catalog."""

from __future__ import annotations

import time

import logging
import os
from typing import Any

import httpx
from pydantic import BaseModel

from .catalog import Catalog

log = logging.getLogger("switchyard.client")
DISCOVERY_TIMEOUT = 2.0


def is_amqp(url: str) -> bool:
    if url.startswith(("amqp://", "amqps://")):
        return True
    if url.startswith(("http://", "https://")):
        return False
    raise ValueError(f"'{url}' is neither an amqp:// broker nor an http:// task API")


def discovery_for(url: str, discovery: str | None) -> str | None:
    """Only an AMQP client checks payloads itself (the API checks them on submit); by default
    against ``SWITCHYARD_DISCOVERY``, as the other components find discovery."""
    if not is_amqp(url):
        return None
    return discovery or os.environ.get("SWITCHYARD_DISCOVERY")


def as_json(payload: Any) -> Any:
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json", by_alias=True)
    return payload


def refresh(catalog: Catalog, discovery: str, response: httpx.Response | None,
            failure: Exception | None) -> bool:
    """Takes discovery's answer into the catalog; False when discovery could not be read, and
    the payload goes unchecked (the runner still validates it)."""
    if failure is not None or response is None or response.status_code != 200:
        reason = failure if failure is not None else (response.status_code if response else "?")
        log.warning("discovery at %s did not list its runners (%s): publishing unchecked",
                    discovery, reason)
        return False
    runners = response.json()
    catalog.update(runners if isinstance(runners, list) else [])
    return True


def deadline_after(ttl: float | None) -> int | None:
    """Unix ms ``ttl`` seconds from now: past it the controller does not run the task and its
    result is ``expired``."""
    if ttl is None:
        return None
    if not ttl > 0:
        raise ValueError(f"ttl must be more than 0 seconds, got {ttl!r}")
    return int(time.time() * 1000 + ttl * 1000)
