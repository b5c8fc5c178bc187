"""What a producer can get instead of a result. A task that failed carries the controller's
verdict: its ``kind`` is the dead-letter reason the controller recorded (``rejected``,
``no_runner``, ``unavailable``...), with the runner's message and status."""

from __future__ import annotations

from typing import Any


class SwitchyardError(Exception):
    """Anything the client raises."""


class PayloadRefused(SwitchyardError, ValueError):
    """Refused before anything was published: the algorithm is unknown or the payload does not
    fit its schema. Nothing was queued; fix the payload and submit again."""


class SubmitFailed(SwitchyardError):
    """The broker or the API did not take the task (unreachable, refused, not confirmed). The
    task may be submitted again safely under the same id."""


class ResultTimeout(SwitchyardError, TimeoutError):
    """No result within the timeout. The task may still finish: ask again."""


class TaskFailed(SwitchyardError):
    """The worker gave up on the task; ``kind`` says why."""

    def __init__(self, task_id: str, algorithm: str, error: dict[str, Any], attempts: int,
                 runner: str | None) -> None:
        self.task_id = task_id
        self.algorithm = algorithm
        self.kind: str = str(error.get("kind", "unknown"))
        self.message: str = str(error.get("message", ""))
        status = error.get("status")
        self.status: int | None = status if isinstance(status, int) else None
        self.attempts = attempts
        self.runner = runner
        super().__init__(f"task {task_id} ({algorithm}) failed: {self.kind}: {self.message}")

    @property
    def reason(self) -> str:
        return self.kind


class Rejected(TaskFailed):
    """The runner refused the payload (a 4xx): retrying it unchanged fails again."""


class NoRunner(TaskFailed):
    """No runner hosted the algorithm within the controller's routing deadline."""


class Unavailable(TaskFailed):
    """Every attempt failed transiently (unreachable, 5xx, saturated) until attempts ran out."""


class InvalidTask(TaskFailed):
    """The queued body was not a task."""


class BadResponse(TaskFailed):
    """The runner answered 2xx with a body that is not ``{"result": ...}``."""


class Expired(TaskFailed):
    """The task's ``ttl`` ran out before a runner answered it: it was not run (or its last try
    was cut at the deadline). Not dead-lettered: nobody waits for the answer any more."""


_BY_KIND: dict[str, type[TaskFailed]] = {
    "rejected": Rejected,
    "no_runner": NoRunner,
    "unavailable": Unavailable,
    "invalid_task": InvalidTask,
    "bad_response": BadResponse,
    "expired": Expired,
}


def task_failed(task_id: str, algorithm: str, error: dict[str, Any], attempts: int,
                runner: str | None) -> TaskFailed:
    cls = _BY_KIND.get(str(error.get("kind")), TaskFailed)
    return cls(task_id, algorithm, error, attempts, runner)
