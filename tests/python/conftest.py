"""Fixtures for the series-compatibility tests (test_series_*.py); the machinery is in
series_harness.py.

Every test gets a RabbitMQ vhost of its own, so queues declared with one set of properties in one
test cannot collide with another's; every process a test starts is killed when it ends.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Generator, Iterator

import pytest

from series_harness import (
    BROKER_HOST,
    BROKER_PORT,
    Broker,
    Components,
    Deployment,
    ensure_series_venv,
    rabbitmqctl,
    switchyard_binary,
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failing test's report carries every component's log (stdout and stderr), whatever the
    assertion that failed, so no failure needs rerunning to see what the binary said."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    deployment = getattr(item, "funcargs", {}).get("deployment")
    if report.when == "call" and report.failed and isinstance(deployment, Deployment):
        report.sections.append(("component logs", deployment.components.describe_all()))


@pytest.fixture
def broker() -> Iterator[Broker]:
    vhost = f"switchyard-py-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        broker = Broker(vhost=vhost, url=f"amqp://guest:guest@{BROKER_HOST}:{BROKER_PORT}/{vhost}")
        try:
            yield broker
        finally:
            broker.close()
    finally:
        rabbitmqctl("delete_vhost", vhost)


@pytest.fixture(scope="session")
def switchyard_bin() -> Path:
    return switchyard_binary()


@pytest.fixture(scope="session")
def series_python() -> Path:
    return ensure_series_venv()


@pytest.fixture
def deployment(switchyard_bin: Path, series_python: Path, broker: Broker, tmp_path: Path) -> Iterator[Deployment]:
    log_dir = tmp_path / "logs"
    work_dir = tmp_path / "work"
    log_dir.mkdir()
    work_dir.mkdir()
    components = Components(log_dir)
    try:
        yield Deployment(switchyard_bin, series_python, broker, components, work_dir)
    finally:
        components.stop_all()
