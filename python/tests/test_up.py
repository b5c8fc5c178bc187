"""`switchyard up` with a Python runner plugged into its discovery: the algorithm is listed like
a built-in one, and the Python client round-trips through the HTTP task API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from switchyard import AsyncClient, Client, PayloadRefused, Rejected
from support import Runner, Up, eventually


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
