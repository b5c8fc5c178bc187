"""Schemas from signatures: what an author writes is what discovery and producers see."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, Field, ValidationError

from switchyard.schema import Payload, parse_docstring


class Point(BaseModel):
    x: int
    y: int


def detect(image_url: str, threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5,
           region: Point | None = None, json: bool = False) -> list[str]:
    """Finds faces.

    Longer text that is still the summary.

    Args:
        image_url: Where the image is,
            fetched over HTTP.
        threshold: Minimum confidence.

    Returns:
        The faces.
    """
    return []


def test_fields_defaults_constraints_and_descriptions() -> None:
    schema = Payload("detect", detect).schema
    assert schema["title"] == "detect"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["image_url"]
    assert schema["description"] == "Finds faces. Longer text that is still the summary."
    properties = schema["properties"]
    assert properties["image_url"]["description"] == "Where the image is, fetched over HTTP."
    assert properties["threshold"] == {
        "default": 0.5, "description": "Minimum confidence.", "exclusiveMaximum": 1,
        "exclusiveMinimum": 0, "title": "Threshold", "type": "number"}
    assert properties["region"]["anyOf"][0] == {"$ref": "#/$defs/Point"}
    assert schema["$defs"]["Point"]["required"] == ["x", "y"]
    # A field named like a BaseModel attribute is an ordinary field.
    assert properties["json"]["default"] is False


def test_validation_gives_the_functions_keyword_arguments() -> None:
    payload = Payload("detect", detect)
    validated = payload.model.model_validate_json(b'{"image_url": "u", "region": {"x": 1, "y": 2}}')
    assert payload.arguments(validated) == {
        "image_url": "u", "threshold": 0.5, "region": Point(x=1, y=2), "json": False}
    for body in (b'{"image_url": "u", "colour": 1}', b'{"image_url": "u", "threshold": 1}', b"{}"):
        with pytest.raises(ValidationError):
            payload.model.model_validate_json(body)


def test_signatures_without_a_schema_are_refused() -> None:
    def star(*images: str) -> None: ...

    def positional(image: str, /) -> None: ...

    for function in (star, positional):
        with pytest.raises(TypeError, match=function.__name__ == "star" and r"\*images" or "positional-only"):
            Payload("bad", function)


def test_unresolvable_hints_name_the_algorithm() -> None:
    def broken(x: "NoSuchType") -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match="algorithm broken"):
        Payload("broken", broken)


def test_sphinx_docstrings() -> None:
    summary, fields = parse_docstring("Counts words.\n\n:param text: The text.\n:param int n: How many.\n")
    assert summary == "Counts words."
    assert fields == {"text": "The text.", "n": "How many."}
