"""A function's signature as a pydantic model: the payload's fields, types, defaults,
``Annotated`` constraints and docstring descriptions, with unknown fields refused. The model
validates each call and its JSON schema is what ``/schemas`` and discovery show."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict


class Payload:
    """A function's payload model and how a validated payload becomes its keyword arguments."""

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        # A wrapper (the series adapter's error translation) is described by what it wraps.
        target = inspect.unwrap(function)
        summary, descriptions = parse_docstring(inspect.getdoc(target) or "")
        try:
            hints = typing.get_type_hints(target, include_extras=True)
        except Exception as error:  # a hint that does not resolve names what is missing
            raise TypeError(f"algorithm {name}: cannot resolve its type hints: {error}") from error
        fields: dict[str, Any] = {}
        # Internal field names are positional so a parameter called `json` or `schema` cannot
        # shadow a BaseModel attribute; the alias is the name on the wire.
        self._names: list[tuple[str, str]] = []
        for index, parameter in enumerate(inspect.signature(target).parameters.values()):
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(
                    f"algorithm {name}: *{parameter.name} has no schema; name every field"
                )
            if parameter.kind is parameter.POSITIONAL_ONLY:
                raise TypeError(
                    f"algorithm {name}: {parameter.name} is positional-only; fields are passed by name"
                )
            internal = f"field_{index}"
            default = ... if parameter.default is parameter.empty else parameter.default
            info = pydantic.Field(
                default, alias=parameter.name, description=descriptions.get(parameter.name)
            )
            fields[internal] = (hints.get(parameter.name, Any), info)
            self._names.append((internal, parameter.name))
        # Strict: the schema is the contract, so "3" is not an integer here either, as it is not
        # for up's API or a producer's check, which validate against the same schema.
        config = ConfigDict(extra="forbid", title=name, validate_by_name=False, strict=True)
        model: type[BaseModel] = pydantic.create_model(
            f"{name}_payload", __config__=config, __doc__=summary or None, **fields
        )
        self.model = model
        self.schema: dict[str, Any] = model.model_json_schema(by_alias=True)
        self.fields = sorted(alias for _, alias in self._names)

    def arguments(self, validated: BaseModel) -> dict[str, Any]:
        return {alias: getattr(validated, internal) for internal, alias in self._names}


_GOOGLE_SECTION = re.compile(r"^(Args|Arguments|Parameters|Params):\s*$")
_GOOGLE_ITEM = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]+\s+)?(\w+):\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The summary (the text before any section) and each parameter's description, from
    Google-style ``Args:`` sections or Sphinx ``:param x:`` lines."""
    summary: list[str] = []
    descriptions: dict[str, str] = {}
    current: str | None = None
    in_args = False
    item_indent = -1
    for raw in doc.splitlines():
        line = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if match := _SPHINX_PARAM.match(line):
            current = match.group(1)
            descriptions[current] = match.group(2)
            in_args = False
            continue
        if _GOOGLE_SECTION.match(line):
            in_args, current, item_indent = True, None, -1
            continue
        if in_args:
            if not line:
                current = None
                continue
            if indent == 0 and line.endswith(":"):
                in_args, current = False, None
                continue
            match = _GOOGLE_ITEM.match(line)
            if match and (item_indent < 0 or indent <= item_indent):
                item_indent = indent
                current = match.group(1)
                descriptions[current] = match.group(3)
            elif current is not None:
                descriptions[current] = f"{descriptions[current]} {line}".strip()
            continue
        if current is not None and line and not line.startswith(":"):
            descriptions[current] = f"{descriptions[current]} {line}".strip()
            continue
        current = None
        if not descriptions and not line.endswith(":") and not line.startswith(":"):
            summary.append(line)
        elif line.endswith(":") and indent == 0:
            # Any other section (Returns:, Raises:) ends the summary.
            break
    return " ".join(part for part in summary if part).strip(), descriptions


