"""Two algorithms in Python: `word_count`, a plain function, and `keywords`, which loads its
state once at start. docs/writing-an-algorithm.md walks through this file.

    python -m switchyard.runner word_count --discovery http://127.0.0.1:8500 --listen 127.0.0.1:8091
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Annotated

from pydantic import BaseModel, Field

from switchyard import BadInput, algorithm


class WordCount(BaseModel):
    words: int
    distinct: int


@algorithm
def word_count(text: str) -> WordCount:
    """Counts the words of a text, and how many differ (ignoring case).

    Args:
        text: The text to count.
    """
    words = [word.lower() for word in text.split()]
    return WordCount(words=len(words), distinct=len(set(words)))


STOP_WORDS: set[str] = set()


def load() -> None:
    """Runs once before the runner says it is ready (and in each worker of a process pool)."""
    path = os.environ.get("SWITCHYARD_STOPWORDS")
    text = open(path).read() if path else "a an and are as at be by for in is it of on or the to was with"
    STOP_WORDS.update(word.strip().lower() for word in text.split())


@algorithm(concurrency=4, queue=64)
def keywords(text: str, top: Annotated[int, Field(ge=1, le=50)] = 5) -> list[str]:
    """The most frequent words of a text that are not stop words, most frequent first.

    Args:
        text: The text.
        top: How many keywords to return.
    """
    words = [w.lower() for w in "".join(c if c.isalnum() else " " for c in text).split()]
    if not words:
        raise BadInput("text has no words")
    counts = Counter(sorted(w for w in words if w not in STOP_WORDS))
    return [word for word, _ in counts.most_common(top)]
