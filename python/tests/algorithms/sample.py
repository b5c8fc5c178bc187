"""Algorithms the tests serve: one per behaviour the runner must get right."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Annotated, Any

from pydantic import BaseModel, Field

from switchyard import BadInput, ClientError, algorithm

state: dict[str, Any] = {"loaded_in": None}


def load() -> None:
    # Slow enough that a test sees /ready answer 503 first.
    time.sleep(float(os.environ.get("SAMPLE_LOAD_SECONDS", "0")))
    if os.environ.get("SAMPLE_LOAD_FAILS"):
        raise RuntimeError("the model file is missing")
    state["loaded_in"] = os.getpid()


class Box(BaseModel):
    x: int
    y: int


class Prediction(BaseModel):
    label: str
    score: float
    loaded: bool


@algorithm
def classify(
    image_url: str,
    top_k: Annotated[int, Field(ge=1, le=10)] = 5,
    box: Box | None = None,
) -> Prediction:
    """Classifies an image.

    Args:
        image_url: Where the image is.
        top_k: How many labels to return.
    """
    return Prediction(label=f"{image_url}:{top_k}", score=0.5, loaded=state["loaded_in"] is not None)


@algorithm
async def shout(text: str) -> dict[str, Any]:
    return {"text": text.upper(), "length": len(text)}


@algorithm(concurrency=1, queue=0)
async def busy(seconds: float) -> dict[str, float]:
    """Holds its only slot for a while: a second call meanwhile is refused with 503."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@algorithm(concurrency=1, queue=8)
def blocking_sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@algorithm(executor="process", concurrency=2)
def in_process(n: int) -> dict[str, Any]:
    return {"pid": os.getpid(), "loaded_in": state["loaded_in"], "square": n * n}


@algorithm
def fails(kind: str) -> None:
    if kind == "bad_input":
        raise BadInput("kind must be something else")
    if kind == "gone":
        raise ClientError(410, "the image is gone")
    if kind == "not_an_error":
        raise ClientError(200, "odd status")
    raise ValueError("secret-detail-in-exception")


@algorithm
def unserialisable() -> object:
    return object()
