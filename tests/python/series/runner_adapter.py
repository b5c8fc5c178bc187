"""The adapter module the series' convention asks of a runner project: one `run_<algorithm>`
function per algorithm, arguments typed with JSON-compatible types, a JSON-compatible result.

`runnerlib` derives each algorithm's payload model from these signatures, so `word_count` takes
`{"text": <string>}` and `fibonacci` `{"n": <integer>}`, and nothing else.
"""

from collections import Counter
from typing import Dict, Union


def run_word_count(text: str) -> Dict[str, Union[int, Dict[str, int]]]:
    counts = Counter(word.lower() for word in text.split())
    return {"words": sum(counts.values()), "counts": dict(counts)}


def run_fibonacci(n: int) -> int:
    """The n-th Fibonacci number (F(0) = 0): a bare number as the result, not an object."""
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    current, following = 0, 1
    for _ in range(n):
        current, following = following, current + following
    return current
