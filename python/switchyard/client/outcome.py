"""A task's final outcome, from either wire form: the controller's result message
(``{"status": "ok"|"error", ...}``) or a task record of ``up``'s API (``done``, ``failed``,
``dead``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import TaskFailed, task_failed


@dataclass(frozen=True)
class Outcome:
    task_id: str
    algorithm: str
    ok: bool
    result: Any
    error: dict[str, Any] | None
    attempts: int
    runner: str | None

    def value(self) -> Any:
        if self.ok:
            return self.result
        raise self.failure()

    def failure(self) -> TaskFailed:
        return task_failed(self.task_id, self.algorithm, self.error or {}, self.attempts, self.runner)


def from_result_message(message: dict[str, Any]) -> Outcome:
    ok = message.get("status") == "ok"
    return Outcome(
        task_id=str(message.get("id", "")),
        algorithm=str(message.get("algorithm", "")),
        ok=ok,
        result=message.get("result") if ok else None,
        error=None if ok else dict(message.get("error") or {}),
        attempts=int(message.get("attempts") or 0),
        runner=message.get("runner"),
    )


def from_api_record(record: dict[str, Any], task_id: str) -> Outcome | None:
    """None while the task is not final (queued, running)."""
    status = record.get("status")
    if status not in ("done", "failed", "dead"):
        return None
    ok = status == "done"
    return Outcome(
        task_id=task_id,
        algorithm=str(record.get("algorithm", "")),
        ok=ok,
        result=record.get("result") if ok else None,
        error=None if ok else dict(record.get("error") or {}),
        attempts=int(record.get("attempts") or 0),
        runner=record.get("runner"),
    )
