"""The same no-op served the series' way (Part III's runnerlib): FastAPI and uvicorn, a
pydantic model created from the handler's signature, validation of the dict payload, the
handler called with its fields, and one registration with discovery's series route.

    python fastapi_runner.py --port PORT --discovery URL
"""

from __future__ import annotations

import argparse
import inspect
import traceback
from enum import Enum
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import ConfigDict, ValidationError, create_model


def run_echo(text: str) -> dict[str, Any]:
    return {"text": text, "length": len(text)}


handlers = {"echo": run_echo}
models = {
    name: create_model(f"AlgorithmRequestModel_{name}", __config__=ConfigDict(extra="forbid"),
                       **{field: (hint, ...) for field, hint in inspect.getfullargspec(handler).annotations.items()
                          if field != "return"})
    for name, handler in handlers.items()
}
SupportedAlgorithm = Enum("SupportedAlgorithm", {name: name for name in handlers})  # type: ignore[misc]
app = FastAPI()


@app.post("/run/{algorithm}")
async def run_algorithm(algorithm: SupportedAlgorithm, payload: dict[str, Any]) -> dict[str, Any]:  # type: ignore[valid-type]
    name = algorithm.value  # type: ignore[attr-defined]
    try:
        models[name].model_validate(payload)
    except ValidationError as error:
        raise HTTPException(status_code=400, detail=str(error)) from error
    try:
        return {"result": handlers[name](**payload)}
    except Exception:
        raise HTTPException(status_code=500, detail=traceback.format_exc()) from None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--discovery", required=True)
    args = parser.parse_args()
    host = f"http://127.0.0.1:{args.port}"
    for name in handlers:
        httpx.post(f"{args.discovery}/algorithms", json={"algorithm": name, "host": host}).raise_for_status()
    uvicorn.run(app, host="127.0.0.1", port=args.port, http="httptools")


if __name__ == "__main__":
    main()
