"""The producer's pre-publish check agrees with the runner's pydantic validation on the schemas
pydantic emits: what pydantic refuses is refused, what it takes is taken."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from switchyard.client import jsonschema
from switchyard.schema import Payload


class Region(BaseModel):
    x: Annotated[int, Field(ge=0)]
    label: str | None = None


def sample(
    text: Annotated[str, Field(min_length=2, max_length=5, pattern="^[a-z]+$")],
    mode: Literal["fast", "slow"] = "fast",
    count: Annotated[int, Field(gt=0, le=3, multiple_of=1)] = 1,
    ratio: float = 0.5,
    tags: Annotated[list[str], Field(max_length=2)] = [],
    regions: list[Region] = [],
    pair: tuple[int, str] | None = None,
) -> None: ...


PAYLOAD = Payload("sample", sample)

CASES: list[dict[str, Any]] = [
    {"text": "ab"},
    {"text": "abcde", "mode": "slow", "count": 3, "ratio": 1, "tags": ["a"], "regions": [{"x": 0}]},
    {"text": "ab", "pair": [1, "a"]},
    {"text": "a"},
    {"text": "abcdef"},
    {"text": "AB"},
    {"text": 5},
    {},
    {"text": "ab", "extra": 1},
    {"text": "ab", "mode": "medium"},
    {"text": "ab", "count": 0},
    {"text": "ab", "count": 4},
    {"text": "ab", "count": True},
    {"text": "ab", "count": "2"},
    {"text": "ab", "ratio": 2},
    {"text": "ab", "ratio": "x"},
    {"text": "ab", "tags": ["a", "b", "c"]},
    {"text": "ab", "regions": [{"x": -1}]},
    {"text": "ab", "regions": [{"x": 1, "label": 3}]},
    {"text": "ab", "pair": [1, 2]},
]


def pydantic_takes(payload: Any) -> bool:
    try:
        PAYLOAD.model.model_validate_json(json.dumps(payload))
        return True
    except ValidationError:
        return False


@pytest.mark.parametrize("payload", CASES, ids=[str(case) for case in CASES])
def test_agrees_with_pydantic(payload: dict[str, Any]) -> None:
    found = jsonschema.problems(PAYLOAD.schema, payload)
    assert (not found) == pydantic_takes(payload), found


def test_problems_name_where() -> None:
    found = jsonschema.problems(PAYLOAD.schema, {"text": "ab", "regions": [{"x": -1}]})
    assert found == ["at '/regions/0/x': -1 is less than the minimum of 0"]
    found = jsonschema.problems(PAYLOAD.schema, {"txt": "ab"})
    assert "'text' is a required property" in found
    assert any("additional property 'txt' is not allowed" in problem for problem in found)


def test_what_it_does_not_know_it_lets_through() -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": "http://elsewhere/x"}},
              "x-unknown-keyword": True}
    assert jsonschema.problems(schema, {"a": 1}) == []
