"""Pydantic 1 request models made at import time from the adapter's handler signatures.

Import only after `discovery.register_all()`: the models are built from what it found.
"""

import inspect
from enum import Enum
from typing import Any, Dict, Tuple, Type

from pydantic import BaseModel, Extra, create_model

from .discovery import handlers_by_algorithm

if handlers_by_algorithm is None:
    raise ImportError("runnerlib.models imported before discovery.register_all() ran")

request_models_by_algorithm: Dict[str, Type[BaseModel]] = {}


class Config:
    # The series refuses payload fields its handler does not take.
    extra = Extra.forbid


for _name, _handler in handlers_by_algorithm.items():
    _annotations = inspect.getfullargspec(_handler).annotations
    # Every annotated argument is a required field of its type. A return annotation is not an
    # argument: the series' adapters have none, so leaving it out changes nothing for them.
    _fields: Dict[str, Tuple[Any, Any]] = {
        field: (hint, ...) for field, hint in _annotations.items() if field != "return"
    }
    request_models_by_algorithm[_name] = create_model(
        f"AlgorithmRequestModel_{_name}", __config__=Config, **_fields  # type: ignore[call-overload]
    )

# A path parameter of this type makes FastAPI refuse an algorithm the runner does not host.
SupportedAlgorithm = Enum(  # type: ignore[misc]
    "SupportedAlgorithm", {name: name for name in request_models_by_algorithm}
)


def get_model_schemas() -> Dict[str, Dict[str, Any]]:
    return {name: model.schema() for name, model in request_models_by_algorithm.items()}
