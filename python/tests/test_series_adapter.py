"""A series adapter module (``run_<name>`` functions) served unchanged, with everything else."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from support import Discovery, Runner, eventually


@pytest.fixture
def adapter(discovery: Discovery) -> Iterator[Runner]:
    started = Runner("--series-adapter", "runner_adapter", "--discovery", discovery.url)
    yield started
    started.process.stop()


def test_run_functions_are_the_algorithms(adapter: Runner, discovery: Discovery) -> None:
    assert sorted(httpx.get(f"{adapter.url}/schemas").json()) == ["meme_classifier", "ocr"]
    answer = adapter.post("/run/meme_classifier", {"image_url": "https://x/cat.jpg"})
    assert answer.json() == {"result": {"label": "matrix_morpheus", "score": 0.99998}}
    assert adapter.post("/run/ocr", {"image_url": "u"}).json() == {"result": "text of u in eng"}
    refused = adapter.post("/run/meme_classifier", {"image_url": "u", "extra": 1})
    assert refused.status_code == 400

    def registered() -> None:
        names = {a["name"] for r in discovery.runners() for a in r["algorithms"]}
        assert names == {"meme_classifier", "ocr"}

    eventually(registered)


def test_the_series_request_error_is_a_400(adapter: Runner) -> None:
    answer = adapter.post("/run/meme_classifier", {"image_url": "https://x/missing.jpg"})
    assert (answer.status_code, answer.json()) == (400, {"message": "Error fetching request image, received 404"})
