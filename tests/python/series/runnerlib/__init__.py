"""A re-implementation of the series' `runnerlib` (Plug & Play Worker Pattern, Part III).

It behaves as the series' library does, so Switchyard's compatibility tests exercise what a
user migrating from the series actually runs:

- `python -m runnerlib`, run from a directory holding a `runner_adapter` module, finds every
  `run_<name>` function in it, registers each `<name>` with discovery
  (`POST {discovery}/algorithms {"algorithm": name, "host": "http://CONTAINER_NAME:PORT"}`), then
  serves on 0.0.0.0:PORT;
- `POST /run/{name}`: the path must name a found algorithm and the body must be a JSON object
  (else FastAPI's 422 `{"detail": [...]}`); the body is validated against a pydantic 1 model made
  from the function's signature, unknown fields refused (else 400 `{"detail": str(ValidationError)}`);
  then the function runs on the body's fields and the answer is `{"result": ...}`;
- `GET /schemas`: each algorithm's model schema.

Configuration comes from the series' environment variables (see `settings`).
"""

import logging
import os

# The series configures logging when the package is imported: every module logs through it.
_level_name: str = os.environ.get("LOG_LEVEL", "")
logging.basicConfig(
    level=getattr(logging, _level_name, logging.DEBUG),
    format="%(levelname)s :: [%(name)s] :: %(message)s",
)
logging.getLogger("uvicorn").setLevel(logging.WARN)
