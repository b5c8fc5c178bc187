"""`switchyard up` with a Python runner plugged into its discovery: the algorithm is listed like
a built-in one, and the Python client round-trips through the HTTP task API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from switchyard import AsyncClient, Client, PayloadRefused, Rejected
from support import REPO, Runner, Up, eventually


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Up, Runner]]:
    started = Up(tmp_path_factory.mktemp("up-data"))
    runner = Runner("sample", "--discovery", started.discovery, "--algorithms", "classify,shout,fails")

    def listed() -> None:
        names = [a["name"] for a in httpx.get(f"{started.url}/v1/algorithms").json()]
        assert "shout" in names and "echo" in names

    eventually(listed, timeout=20)
    yield started, runner
    runner.process.stop()
    started.process.stop()


def test_a_python_algorithm_is_listed_like_a_built_in_one(up: tuple[Up, Runner]) -> None:
    server, runner = up
    listing = {a["name"]: a for a in httpx.get(f"{server.url}/v1/algorithms").json()}
    assert set(listing["shout"]) == set(listing["echo"]) >= {"name", "schema", "replicas"}
    assert listing["shout"]["schema"] == httpx.get(f"{runner.url}/schemas").json()["shout"]
    assert [r["base_url"] for r in listing["classify"]["replicas"]] == [runner.url]
    schemas = httpx.get(f"{server.url}/v1/schemas").json()
    assert schemas["classify"]["properties"]["top_k"]["maximum"] == 10


def test_the_client_round_trips_through_the_api(up: tuple[Up, Runner]) -> None:
    server, runner = up
    with Client(server.url) as client:
        assert client.submit("shout", {"text": "hey"}, wait=True).result() == {"text": "HEY", "length": 3}
        assert client.submit("echo", {"text": "hey"}, ttl=60, priority=3).result(timeout=30)["length"] == 3
        handle = client.submit("classify", {"image_url": "x"})
        assert handle.outcome(timeout=30).runner == runner.url
        with pytest.raises(PayloadRefused, match="top_k"):
            client.submit("classify", {"image_url": "x", "top_k": 99})
        with pytest.raises(PayloadRefused, match="unknown algorithm 'nope'"):
            client.submit("nope", {})
        with pytest.raises(Rejected) as rejected:
            client.submit("fails", {"kind": "bad_input"}).result(timeout=30)
        assert rejected.value.status == 400


def test_the_async_client_round_trips_through_the_api(up: tuple[Up, Runner]) -> None:
    server, _ = up

    async def scenario() -> list[object]:
        async with AsyncClient(server.url) as client:
            handles = await client.submit_many([("shout", {"text": str(n)}) for n in range(10)])
            return [(await handle.result(timeout=30))["text"] for handle in handles]

    assert asyncio.run(scenario()) == [str(n) for n in range(10)]


def test_the_client_sends_an_image_from_a_file_or_bytes(tmp_path: Path) -> None:
    coffee = REPO / "crates/algorithms/testdata/images/coffee.png"
    server = Up(tmp_path / "data", algorithms="image_classifier")
    try:
        with Client(server.url) as client:
            answer = client.submit("image_classifier", {"top_k": 2}, image=coffee, wait=True).result()
            assert answer["label"] == "espresso" and len(answer["top"]) == 2, answer
            from_bytes = client.submit("image_classifier", {}, image=coffee.read_bytes(), wait=True)
            assert from_bytes.result()["label"] == "espresso"
            with pytest.raises(ValueError, match="leave 'image_url' out"):
                client.submit("image_classifier", {"image_url": "http://example.org/x.jpg"}, image=coffee)
            with pytest.raises(ValueError, match="empty"):
                client.submit("image_classifier", {}, image=b"")
            with pytest.raises(TypeError, match="JSON object"):
                client.submit("image_classifier", [1], image=coffee)
            with pytest.raises(FileNotFoundError):
                client.submit("image_classifier", {}, image=tmp_path / "none.jpg")

        async def from_async() -> object:
            async with AsyncClient(server.url) as client:
                handle = await client.submit("image_classifier", {}, image=str(coffee))
                return (await handle.result(timeout=60))["label"]

        assert asyncio.run(from_async()) == "espresso"
    finally:
        server.process.stop()
