from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import ALGORITHMS, Discovery, Vhost  # noqa: E402

sys.path.insert(0, str(ALGORITHMS))


@pytest.fixture
def discovery() -> Iterator[Discovery]:
    started = Discovery()
    yield started
    started.process.stop()


@pytest.fixture
def vhost() -> Iterator[Vhost]:
    made = Vhost()
    yield made
    made.delete()
