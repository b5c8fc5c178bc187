"""Logging that never stalls a call: records go through a queue to a writer thread, as the Rust
binary hands its lines to one, so a slow disk or a full pipe behind stderr never blocks the
event loop."""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys


def setup(level: str) -> logging.handlers.QueueListener:
    """Routes every record of the process to stderr through a writer thread; returns the
    listener, to be stopped (flushed) at exit."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    listener = logging.handlers.QueueListener(records, stderr, respect_handler_level=False)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level.upper())
    # uvicorn's own access log would be a second line per call; ours carries the task id.
    logging.getLogger("uvicorn.access").disabled = True
    listener.start()
    return listener
