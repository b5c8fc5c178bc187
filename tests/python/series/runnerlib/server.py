"""The runner's HTTP server: `POST /run/{algorithm}` and `GET /schemas`."""

import logging
import traceback
from typing import Any, Dict

import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic.error_wrappers import ValidationError

from .discovery import get_handler
from .exceptions import RequestError
from .models import SupportedAlgorithm, get_model_schemas, request_models_by_algorithm
from .settings import settings

logger = logging.getLogger("Server")

app = FastAPI()


@app.post("/run/{algorithm}")
async def run_algorithm(algorithm: SupportedAlgorithm, payload: Dict[str, Any]) -> Dict[str, Any]:
    logger.info(f"Received request to run algorithm {algorithm} on payload {payload}")
    name: str = algorithm.value
    request_model = request_models_by_algorithm[name]
    try:
        request_model.validate(payload)
    except ValidationError as error:
        logger.debug(f"Validation failed for payload {payload} against model {request_model.__name__}")
        # The series answers pydantic's own text: "N validation error(s) for <Model>\n<field>\n  <msg> (type=...)".
        raise HTTPException(status_code=400, detail=str(error))

    handler = get_handler(name)
    assert handler is not None  # the path's enum only admits algorithms that have one
    try:
        # As in the series: the handler gets the payload as sent, not the model's coerced values.
        return {"result": handler(**payload)}
    except RequestError as error:
        raise HTTPException(
            status_code=400, detail=f"Error fetching request image, received {error.response.status_code}"
        )
    except Exception:
        raise HTTPException(status_code=500, detail=traceback.format_exc())


@app.get("/schemas")
async def get_schemas() -> Dict[str, Dict[str, Any]]:
    return get_model_schemas()


def run_server() -> None:
    logger.debug(f"request_models_by_algorithm: {request_models_by_algorithm}")
    uvicorn.run(app, host="0.0.0.0", port=settings.port)
