"""Finds the adapter's algorithms and registers them with Runner Discovery."""

import inspect
import logging
import re
import traceback
from types import FunctionType
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urljoin

import requests

from .settings import settings

logger = logging.getLogger("Discovery")

Handler = Callable[..., Any]

# None until `register_all` ran: `models` reads it at import, so it must be imported after.
handlers_by_algorithm: Optional[Dict[str, Handler]] = None

# The series matches `run_*` and splits on the first `run_`; anchoring the whole name gives the
# same algorithms for any adapter that follows the convention, without its IndexError on a name
# like `runner`.
_HANDLER_NAME = re.compile(r"^run_(?P<algorithm>.+)$")


def _register_single(algorithm_name: str) -> None:
    body = {"algorithm": algorithm_name, "host": settings.host}
    response = requests.post(urljoin(settings.runner_discovery_uri, "algorithms"), json=body)
    response.raise_for_status()


def register_all() -> None:
    logger.info("Loading runner adapter...")
    import runner_adapter  # the runner project's module, found on the working directory's path

    logger.info("Loading runner adapter members...")
    found: List[tuple[str, FunctionType]] = inspect.getmembers(
        runner_adapter,
        predicate=lambda member: inspect.isfunction(member) and bool(_HANDLER_NAME.match(member.__name__)),
    )
    logger.info(f'Found handlers: {", ".join(name for name, _ in found)}')

    global handlers_by_algorithm
    handlers_by_algorithm = {}
    for name, function in found:
        match = _HANDLER_NAME.match(name)
        assert match is not None  # the predicate above matched it
        handlers_by_algorithm[match.group("algorithm")] = function

    # As in the series, a failed registration is logged and the runner serves anyway: it can
    # still be called directly, and the log says which algorithms discovery does not know.
    unsuccessful: List[str] = []
    for name in handlers_by_algorithm:
        try:
            logger.info(f"Registering algorithm {name}")
            _register_single(name)
        except Exception:
            unsuccessful.append(name)
            traceback.print_exc()
    if unsuccessful:
        logger.error(f'Unable to register algorithms {", ".join(unsuccessful)}')


def get_handler(algorithm: str) -> Optional[Handler]:
    assert handlers_by_algorithm is not None, "register_all() has not run"
    return handlers_by_algorithm.get(algorithm, None)
