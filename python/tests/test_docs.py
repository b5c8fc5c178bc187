"""docs/writing-an-algorithm.md's Python example is the file it quotes, and it serves."""

from __future__ import annotations

import sys
from pathlib import Path

from support import REPO, Process, wait_http
import httpx

EXAMPLE = REPO / "python" / "examples" / "word_count.py"


def test_the_page_quotes_the_example_exactly() -> None:
    page = (REPO / "docs" / "writing-an-algorithm.md").read_text()
    assert f"```python\n{EXAMPLE.read_text()}```" in page


def test_the_example_serves_what_the_page_says(tmp_path: Path) -> None:
    process = Process([sys.executable, "-m", "switchyard.runner", "word_count", "--standalone",
                       "--listen", "127.0.0.1:0"], cwd=EXAMPLE.parent)
    try:
        url = "http://" + process.wait_for(r"runner listening.* address=(\S+)").group(1)
        wait_http(f"{url}/ready")
        counted = httpx.post(f"{url}/run/word_count", json={"text": "the cat saw the dog"})
        assert counted.json() == {"result": {"words": 5, "distinct": 4}}
        found = httpx.post(f"{url}/run/keywords", json={"text": "the cat saw the dog and the cat"})
        assert found.json() == {"result": ["cat", "dog", "saw"]}
        assert httpx.post(f"{url}/run/keywords", json={"text": "?!"}).status_code == 400
        assert httpx.post(f"{url}/run/keywords", json={"text": "a", "top": 0}).status_code == 400
    finally:
        process.stop()
