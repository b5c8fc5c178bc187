"""`python -m runnerlib`: register the adapter's algorithms, then serve them.

The order matters: `server` imports `models`, which are built from what `register_all` found.
"""

from .discovery import register_all

register_all()

from .server import run_server  # noqa: E402

run_server()
