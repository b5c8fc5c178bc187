"""The runner's command line: the Rust runner's flags and ``SWITCHYARD_*`` variables, so one
deployment manifest style fits runners in either language."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass

DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Config:
    module: str | None
    series_adapter: str | None
    listen: tuple[str, int]
    discovery: str | None
    advertise: str | None
    default_algorithm: str | None
    token: str | None
    max_body_bytes: int
    grace_period: float
    algorithms: list[str]
    log_level: str


def parse(argv: list[str] | None = None) -> Config:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        prog="python -m switchyard.runner",
        description="Serve a module's @algorithm functions (or a series adapter's run_<name> "
        "functions) over Switchyard's runner protocol, announced to discovery.",
    )
    parser.add_argument("module", nargs="?", help="module whose @algorithm functions to serve")
    parser.add_argument("--series-adapter", metavar="MODULE", default=env("SWITCHYARD_SERIES_ADAPTER"),
                        help="serve this module's run_<name> functions, as the series' runnerlib "
                        "does (e.g. runner_adapter) [SWITCHYARD_SERIES_ADAPTER]")
    parser.add_argument("--listen", default=env("SWITCHYARD_LISTEN", "127.0.0.1:8080"),
                        help="address to listen on; port 0 picks a free one [SWITCHYARD_LISTEN]")
    parser.add_argument("--discovery", default=env("SWITCHYARD_DISCOVERY", "http://127.0.0.1:8500"),
                        help="discovery's base URL; unreachable is fine, the runner serves anyway "
                        "[SWITCHYARD_DISCOVERY]")
    parser.add_argument("--standalone", action="store_true", default=_flag(env("SWITCHYARD_STANDALONE")),
                        help="serve without registering with discovery [SWITCHYARD_STANDALONE]")
    parser.add_argument("--advertise", default=env("SWITCHYARD_ADVERTISE"),
                        help="base URL registered with discovery [default: http://<listen "
                        "address>; a wildcard address becomes the host name] [SWITCHYARD_ADVERTISE]")
    parser.add_argument("--default-algorithm", default=env("SWITCHYARD_DEFAULT_ALGORITHM"),
                        help="algorithm that POST / runs [SWITCHYARD_DEFAULT_ALGORITHM]")
    parser.add_argument("--token", default=env("SWITCHYARD_TOKEN"),
                        help="shared secret: calls need 'Authorization: Bearer <token>', and it "
                        "is sent to discovery [SWITCHYARD_TOKEN]")
    parser.add_argument("--max-body-bytes", type=int,
                        default=int(env("SWITCHYARD_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES))),
                        help="larger request bodies are refused with 413 [SWITCHYARD_MAX_BODY_BYTES]")
    parser.add_argument("--grace-period", type=parse_duration,
                        default=parse_duration(env("SWITCHYARD_GRACE_PERIOD", "10s")),
                        help="on shutdown, how long calls in flight may take to finish (10s, "
                        "500ms, 2m, or seconds) [SWITCHYARD_GRACE_PERIOD]")
    parser.add_argument("--algorithms", default=env("SWITCHYARD_ALGORITHMS", ""),
                        help="serve only these, comma-separated [SWITCHYARD_ALGORITHMS]")
    parser.add_argument("--log-level", default=env("SWITCHYARD_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"], help="[SWITCHYARD_LOG_LEVEL]")
    args = parser.parse_args(argv)
    if (args.module is None) == (args.series_adapter is None):
        parser.error("give a MODULE of @algorithm functions, or --series-adapter MODULE (not both)")
    if args.token == "":
        parser.error("--token (SWITCHYARD_TOKEN) is empty: set a secret, or unset it")
    if args.max_body_bytes < 1:
        parser.error("--max-body-bytes must be at least 1")
    try:
        listen = parse_address(args.listen)
    except ValueError as error:
        parser.error(str(error))
    return Config(
        module=args.module,
        series_adapter=args.series_adapter,
        listen=listen,
        discovery=None if args.standalone else args.discovery,
        advertise=args.advertise.rstrip("/") if args.advertise else None,
        default_algorithm=args.default_algorithm,
        token=args.token,
        max_body_bytes=args.max_body_bytes,
        grace_period=args.grace_period,
        algorithms=[name.strip() for name in args.algorithms.split(",") if name.strip()],
        log_level=args.log_level,
    )


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true", "yes", "on")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds, from ``10s``, ``500ms``, ``2m``, ``1h`` or a bare number of seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration (e.g. 10s, 500ms, 2m)")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * scale


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--listen '{text}' is not HOST:PORT")
    return host.strip("[]"), int(port)
