"""``python -m switchyard.runner``: parse the flags, set up logging, import the module, run."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from .. import discover
from . import lifecycle, logs
from .config import parse


def main(argv: list[str] | None = None) -> int:
    config = parse(argv)
    listener = logs.setup(config.log_level)
    log = logging.getLogger("switchyard.runner")
    # `python -m` puts the working directory on the path; the console script does not, and the
    # module named on the command line is the author's, usually right there.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    stopped = None
    try:
        name = config.module or config.series_adapter
        assert name is not None
        try:
            module = discover.import_module(name)
        except ImportError as error:
            log.error("cannot import module %s: %s", name, error)
            return 2
        stopped = asyncio.run(lifecycle.run(config, module))
        return stopped.status
    except lifecycle.StartError as error:
        log.error("%s", error)
        return 2
    except TypeError as error:  # a signature the schema cannot describe
        log.error("%s", error)
        return 2
    finally:
        listener.stop()
        if stopped is not None and stopped.abandoned:
            sys.stderr.flush()
            os._exit(stopped.status)
