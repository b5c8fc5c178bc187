"""The algorithms discovery knows, with their schemas, as ``up``'s API caches them: fetched
again when older than two seconds, and at once (at most every 250 ms) for an unknown name, so a
runner that registered a moment ago is accepted."""

from __future__ import annotations

import time
from typing import Any

from . import jsonschema
from .errors import PayloadRefused

MAX_AGE = 2.0
MIN_REFRESH = 0.25


class Catalog:
    def __init__(self) -> None:
        self._schemas: dict[str, Any] = {}
        self._fetched_at: float | None = None

    def needs_fetch(self, algorithm: str) -> bool:
        if self._fetched_at is None:
            return True
        age = time.monotonic() - self._fetched_at
        return age > MAX_AGE or (algorithm not in self._schemas and age > MIN_REFRESH)

    def update(self, runners: list[dict[str, Any]]) -> None:
        """From discovery's ``GET /runners``; the first replica with a schema provides it (a
        legacy runner publishes none: the runner alone decides then)."""
        schemas: dict[str, Any] = {}
        for runner in runners:
            for entry in runner.get("algorithms", []):
                name = entry.get("name")
                if isinstance(name, str) and schemas.get(name) is None:
                    schemas[name] = entry.get("schema")
        self._schemas = schemas
        self._fetched_at = time.monotonic()

    def check(self, algorithm: str, payload: Any) -> None:
        if algorithm not in self._schemas:
            known = ", ".join(sorted(self._schemas)) or "none"
            raise PayloadRefused(f"unknown algorithm '{algorithm}'; registered: {known}")
        schema = self._schemas[algorithm]
        if schema is None:
            return
        found = jsonschema.problems(schema, payload)
        if found:
            raise PayloadRefused(
                f"payload does not match the schema of '{algorithm}': {'; '.join(found)}"
            )
