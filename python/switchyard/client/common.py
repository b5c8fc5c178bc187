"""What the sync and async clients share: which transport a URL means, payloads as JSON
values, and the schema check against discovery's catalog."""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import httpx
from pydantic import BaseModel

from .catalog import Catalog

log = logging.getLogger("switchyard.client")

#: An image for `submit(image=...)`: a file's path, or the image's bytes.
ImageSource: TypeAlias = "str | os.PathLike[str] | bytes"
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


def as_json(payload: Any, image: ImageSource | None = None) -> Any:
    """The payload as a JSON value; with `image` (a file's path, or its bytes), that image as
    the payload's ``image_base64``, the field the image algorithms read."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json", by_alias=True)
    if image is None:
        return payload
    if not isinstance(payload, dict):
        raise TypeError("a payload that goes with an image must be a JSON object (a dict)")
    given = [field for field in ("image_base64", "image_url") if field in payload]
    if given:
        raise ValueError(f"the image is given as `image`: leave {given[0]!r} out of the payload")
    data = image if isinstance(image, bytes) else Path(image).read_bytes()
    if not data:
        raise ValueError("the image is empty")
    return {**payload, "image_base64": base64.b64encode(data).decode("ascii")}


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


@dataclass(frozen=True)
class SendOptions:
    """What a task carries besides its body: when its answer stops being useful (Unix ms; past
    it the controller does not run it and its result is ``expired``) and its priority (0-9,
    highest first)."""

    deadline_ms: int | None = None
    priority: int = 0


MAX_PRIORITY = 9


def send_options(ttl: float | None, priority: int) -> SendOptions:
    """Checks ``ttl`` (seconds, more than 0) and ``priority`` (an integer from 0 to 9)."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority must be an integer from 0 to {MAX_PRIORITY}, got {priority!r}")
    if ttl is None:
        return SendOptions(priority=priority)
    if not ttl > 0:
        raise ValueError(f"ttl must be more than 0 seconds, got {ttl!r}")
    return SendOptions(deadline_ms=int(time.time() * 1000 + ttl * 1000), priority=priority)
