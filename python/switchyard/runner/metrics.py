"""The runner's Prometheus metrics, under the Rust runner's names and labels, so one dashboard
and one alert cover runners written in either language. Rendered by hand in the text format:
six series do not need a client library."""

from __future__ import annotations

import math
import threading
from collections import defaultdict

# The Rust runner's buckets: algorithms range from microseconds (echo) to a minute (OCR).
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# The `algorithm` label of calls to an algorithm this runner does not host: one fixed value,
# so callers cannot grow the label set.
UNKNOWN_ALGORITHM = "unknown"


class Metrics:
    def __init__(self, algorithms: list[str]) -> None:
        # Calls are recorded from the event loop only; the lock keeps a render from another
        # thread (none today) consistent anyway, at no measurable cost.
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, int], int] = defaultdict(int)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.rejections: dict[str, int] = {name: 0 for name in algorithms}
        self.in_flight: dict[str, int] = {name: 0 for name in algorithms}
        self.queued: dict[str, int] = {name: 0 for name in algorithms}
        self._buckets: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)

    def record(self, algorithm: str, status: int, seconds: float, error_kind: str | None) -> None:
        with self._lock:
            self.requests[(algorithm, status)] += 1
            buckets = self._buckets.setdefault(algorithm, [0] * len(BUCKETS))
            for index, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    buckets[index] += 1
            self._sum[algorithm] += seconds
            self._count[algorithm] += 1
            if error_kind is not None:
                self.errors[(algorithm, error_kind)] += 1
                if error_kind == "saturated":
                    self.rejections[algorithm] = self.rejections.get(algorithm, 0) + 1

    def render(self) -> str:
        with self._lock:
            lines: list[str] = []
            _family(lines, "switchyard_runner_errors_total", "counter",
                    "Calls that failed, by algorithm and kind of failure.",
                    [(f'algorithm="{a}",kind="{k}"', v) for (a, k), v in sorted(self.errors.items())])
            _family(lines, "switchyard_runner_in_flight", "gauge", "Calls running now.",
                    [(f'algorithm="{a}"', v) for a, v in sorted(self.in_flight.items())])
            _family(lines, "switchyard_runner_queue_rejections_total", "counter",
                    "Calls refused with 503 because the algorithm's queue was full.",
                    [(f'algorithm="{a}"', v) for a, v in sorted(self.rejections.items())])
            _family(lines, "switchyard_runner_queued", "gauge",
                    "Calls admitted and waiting for a slot.",
                    [(f'algorithm="{a}"', v) for a, v in sorted(self.queued.items())])
            self._histogram(lines)
            _family(lines, "switchyard_runner_requests_total", "counter",
                    "Calls answered, by algorithm and HTTP status.",
                    [(f'algorithm="{a}",status="{s}"', v)
                     for (a, s), v in sorted(self.requests.items())])
            return "".join(lines)

    def _histogram(self, lines: list[str]) -> None:
        if not self._buckets:
            return
        name = "switchyard_runner_request_duration_seconds"
        lines.append(f"# HELP {name} Time from request to answer, waiting for a slot included.\n")
        lines.append(f"# TYPE {name} histogram\n")
        for algorithm, buckets in sorted(self._buckets.items()):
            for bound, count in zip(BUCKETS, buckets):
                lines.append(f'{name}_bucket{{algorithm="{algorithm}",le="{_number(bound)}"}} {count}\n')
            count = self._count[algorithm]
            lines.append(f'{name}_bucket{{algorithm="{algorithm}",le="+Inf"}} {count}\n')
            lines.append(f'{name}_sum{{algorithm="{algorithm}"}} {_number(self._sum[algorithm])}\n')
            lines.append(f'{name}_count{{algorithm="{algorithm}"}} {count}\n')


def _family(lines: list[str], name: str, kind: str, help_text: str,
            samples: list[tuple[str, int]]) -> None:
    if not samples:
        return
    lines.append(f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n")
    lines.extend(f"{name}{{{labels}}} {value}\n" for labels, value in samples)


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text
