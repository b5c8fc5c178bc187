"""A payload checked against an algorithm's JSON schema before it is published, so a mistake is
an exception at the producer rather than a dead letter later.

It covers the keywords pydantic and schemars emit (types, properties, required,
additionalProperties, enum/const, bounds, lengths, pattern, items, anyOf/oneOf/allOf, local
``$ref``). A keyword it does not know is not checked: the runner validates every call anyway, so
this check may only ever let through what the runner then refuses, never refuse what the runner
would take. A dependency on a full validator would buy nothing more."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


def _anything(_value: Any) -> bool:
    return True


def problems(schema: Any, value: Any, limit: int = 5) -> list[str]:
    """The first ``limit`` reasons ``value`` does not fit ``schema``, each naming where."""
    found: list[str] = []
    _check(schema, value, "", schema, found)
    return found[:limit]


def _check(schema: Any, value: Any, path: str, root: Any, found: list[str]) -> None:
    if schema is True or not isinstance(schema, dict):
        return
    if schema is False:
        found.append(_at(path, "no value is allowed here"))
        return
    if "$ref" in schema:
        target = _resolve(root, schema["$ref"])
        if target is not None:
            _check(target, value, path, root, found)
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_TYPES.get(name, _anything)(value) for name in names):
            found.append(_at(path, f"{_show(value)} is not of type {' or '.join(map(repr, names))}"))
            return
    if "enum" in schema and value not in schema["enum"]:
        found.append(_at(path, f"{_show(value)} is not one of {schema['enum']!r}"))
    if "const" in schema and value != schema["const"]:
        found.append(_at(path, f"{_show(value)} is not {schema['const']!r}"))
    for keyword in ("allOf",):
        for sub in schema.get(keyword, []):
            _check(sub, value, path, root, found)
    for keyword in ("anyOf", "oneOf"):
        options = schema.get(keyword)
        if options:
            matching = sum(1 for sub in options if not problems_of(sub, value, path, root))
            if matching == 0 or (keyword == "oneOf" and matching > 1):
                found.append(_at(path, f"{_show(value)} matches {matching} of the {keyword} options"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        _bounds(schema, value, path, found)
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            found.append(_at(path, f"{_show(value)} is shorter than {schema['minLength']}"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            found.append(_at(path, f"{_show(value)} is longer than {schema['maxLength']}"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(_at(path, f"{_show(value)} does not match {schema['pattern']!r}"))
    if isinstance(value, list):
        _array(schema, value, path, root, found)
    if isinstance(value, dict):
        _object(schema, value, path, root, found)


def problems_of(schema: Any, value: Any, path: str, root: Any) -> list[str]:
    found: list[str] = []
    _check(schema, value, path, root, found)
    return found


def _bounds(schema: dict[str, Any], value: float, path: str, found: list[str]) -> None:
    checks: tuple[tuple[str, Callable[[float], bool], str], ...] = (
        ("minimum", lambda bound: value >= bound, "less than"),
        ("maximum", lambda bound: value <= bound, "greater than"),
        ("exclusiveMinimum", lambda bound: value > bound, "less than or equal to"),
        ("exclusiveMaximum", lambda bound: value < bound, "greater than or equal to"),
    )
    for keyword, holds, words in checks:
        bound = schema.get(keyword)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and not holds(bound):
            found.append(_at(path, f"{value} is {words} the {keyword} of {bound}"))
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0:
        quotient = value / step
        if not math.isclose(quotient, round(quotient), abs_tol=1e-9):
            found.append(_at(path, f"{value} is not a multiple of {step}"))


def _array(schema: dict[str, Any], value: list[Any], path: str, root: Any, found: list[str]) -> None:
    if len(value) < schema.get("minItems", 0):
        found.append(_at(path, f"has fewer than {schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        found.append(_at(path, f"has more than {schema['maxItems']} items"))
    prefix = schema.get("prefixItems", [])
    for index, item in enumerate(value):
        sub = prefix[index] if index < len(prefix) else schema.get("items", True)
        _check(sub, item, f"{path}/{index}", root, found)


def _object(schema: dict[str, Any], value: dict[str, Any], path: str, root: Any,
            found: list[str]) -> None:
    properties: dict[str, Any] = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            found.append(_at(path, f"'{name}' is a required property"))
    additional = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            _check(properties[name], item, f"{path}/{name}", root, found)
        elif additional is False:
            found.append(_at(path, f"additional property '{name}' is not allowed "
                                   f"(expected one of: {', '.join(sorted(properties))})"))
        else:
            _check(additional, item, f"{path}/{name}", root, found)


def _resolve(root: Any, reference: str) -> Any:
    if not reference.startswith("#"):
        return None  # a remote schema: not checked here, the runner checks it
    target = root
    for part in reference[1:].strip("/").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return None
        target = target[part]
    return target


def _at(path: str, message: str) -> str:
    return f"at '{path}': {message}" if path else message


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
