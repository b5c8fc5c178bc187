"""A runner's life, as the Rust runner lives it: serve at once (probes answer while loading),
run the ``load()`` hook, then announce to discovery; on SIGTERM or SIGINT turn ``/ready`` 503,
deregister, stop accepting, and give calls in flight the grace period to finish; calls still
running then are answered 503 so their callers retry elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import uuid
from collections.abc import Generator
from types import ModuleType
from typing import NamedTuple

import uvicorn

from ..algorithm import Spec
from ..discover import decorated, load_hook, series_adapter
from .announce import Announcer
from .app import RunnerApp
from .config import Config
from .hosted import Hosted
from .metrics import Metrics
from .workers import CONTEXT, init_worker, run_load_hook, warm

log = logging.getLogger("switchyard.runner")

# How long abandoned calls get to deliver their 503 before the runner stops regardless.
ABANDON_TIMEOUT = 2.0
_NAME_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class Stopped(NamedTuple):
    status: int
    # Calls were abandoned: threads may still run them, and would hold the interpreter's exit
    # until they finish although their callers have their 503 already.
    abandoned: bool


class StartError(Exception):
    """The runner cannot start as configured; the message says what to change."""


class _Server(uvicorn.Server):
    # The lifecycle owns SIGTERM and SIGINT: uvicorn's handlers would stop accepting before
    # the runner has deregistered, and re-raise the signal once it returns.
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def select(module: ModuleType, config: Config) -> list[Spec]:
    specs = series_adapter(module) if config.series_adapter else decorated(module)
    if not specs:
        what = "run_<name> functions" if config.series_adapter else "@algorithm functions"
        raise StartError(f"module {module.__name__} has no {what}")
    if config.algorithms:
        known = {spec.name for spec in specs}
        missing = [name for name in config.algorithms if name not in known]
        if missing:
            raise StartError(f"--algorithms names {', '.join(missing)}, which {module.__name__} "
                             f"does not define; it defines: {', '.join(sorted(known))}")
        specs = [spec for spec in specs if spec.name in config.algorithms]
    seen: set[str] = set()
    for spec in specs:
        if not spec.name or len(spec.name) > 128 or not set(spec.name) <= _NAME_CHARACTERS:
            raise StartError(f"algorithm name '{spec.name}' must be 1 to 128 characters of A-Z, "
                             "a-z, 0-9, '_', '.', '-': it is a URL path segment")
        if spec.name in seen:
            raise StartError(f"algorithm '{spec.name}' is defined twice")
        seen.add(spec.name)
    if config.default_algorithm is not None and config.default_algorithm not in seen:
        raise StartError(f"default algorithm '{config.default_algorithm}' is not hosted by this "
                         f"runner; it hosts: {', '.join(sorted(seen))}")
    return specs


def advertise_url(local: tuple[str, int], configured: str | None) -> str:
    """A wildcard bind address cannot be called: it becomes the host name (what other
    containers resolve), else the loopback address."""
    if configured:
        return configured
    host, port = local[0], local[1]
    if host not in ("0.0.0.0", "::"):
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    name = socket.gethostname().strip()
    return f"http://{name or '127.0.0.1'}:{port}"


async def run(config: Config, module: ModuleType) -> Stopped:
    specs = select(module, config)
    hook = load_hook(module)
    metrics = Metrics([spec.name for spec in specs])
    pooled = any(spec.executor == "process" and not spec.is_async for spec in specs)
    initializer = functools.partial(init_worker, module.__name__) if pooled else None
    hosted = {spec.name: Hosted(spec, metrics, initializer, CONTEXT) for spec in specs}
    app = RunnerApp(hosted, runner_id=f"runner-{uuid.uuid4().hex}",
                    default_algorithm=config.default_algorithm, token=config.token,
                    max_body_bytes=config.max_body_bytes, metrics=metrics)
    listener = _bind(config.listen)
    local = listener.getsockname()
    base_url = advertise_url(local, config.advertise)
    server = _Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                                    http="httptools", timeout_graceful_shutdown=int(config.grace_period + ABANDON_TIMEOUT) + 1,
                                    timeout_keep_alive=75))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    address = f"[{local[0]}]:{local[1]}" if ":" in local[0] else f"{local[0]}:{local[1]}"
    log.info("runner listening; loading algorithms address=%s advertise_url=%s runner_id=%s "
             "algorithms=%s", address, base_url, app.runner_id, ",".join(app.names))
    try:
        if not await _load(hook, hosted, stop):
            return await _stop(server, serving, app, hosted, config.grace_period, status=0)
    except Exception as error:
        log.error("a load() hook failed; the runner stops: %s", error, exc_info=error)
        return await _stop(server, serving, app, hosted, config.grace_period, status=1)
    app.loaded = True
    log.info("runner ready")
    announcing = None
    if config.discovery:
        registration = {
            "id": app.runner_id,
            "base_url": base_url,
            "algorithms": [{"name": h.name, "schema": h.schema} for h in app.hosted.values()],
            "capacity": sum(h.limits.concurrency for h in hosted.values()),
        }
        announcer = Announcer(config.discovery, config.token, registration)
        announcing = asyncio.create_task(announcer.run(stop))
    else:
        log.info("no discovery configured: serving standalone")
    await stop.wait()
    app.draining = True
    if announcing is not None:
        await announcing
    log.info("shutting down: no new calls, finishing those in flight grace_period=%ss",
             config.grace_period)
    return await _stop(server, serving, app, hosted, config.grace_period, status=0)


async def _load(hook: object, hosted: dict[str, Hosted], stop: asyncio.Event) -> bool:
    """Runs the load hook off the event loop and starts every process pool's workers (each runs
    the hook too); False when shutdown came first."""

    async def everything() -> None:
        if hook is not None and any(not h.in_processes for h in hosted.values()):
            await asyncio.to_thread(run_load_hook, hook)
        for each in hosted.values():
            await each.warm(warm)

    loading = asyncio.create_task(everything())
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({loading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if loading in done:
        stopping.cancel()
        loading.result()
        return True
    loading.cancel()
    return False


async def _stop(server: _Server, serving: asyncio.Task[None], app: RunnerApp,
                hosted: dict[str, Hosted], grace_period: float, status: int) -> Stopped:
    server.should_exit = True
    done, _ = await asyncio.wait({serving}, timeout=grace_period)
    abandoned = not done
    if abandoned:
        log.warning("grace period over: answering calls still running with 503 "
                    "grace_period=%ss calls=%d", grace_period, app.calls_in_flight)
        app.abandon()
        await asyncio.wait({serving}, timeout=ABANDON_TIMEOUT)
    for each in hosted.values():
        each.close()
    log.info("runner stopped")
    return Stopped(status, abandoned)


def _bind(address: tuple[str, int]) -> socket.socket:
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY on accepted connections only when
    # the socket says it is TCP, and without it every answer (headers, then body) waits out
    # Nagle against the caller's delayed ACK, 40 ms a call.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise StartError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    listener.listen(1024)
    listener.set_inheritable(True)
    return listener


