"""The peer `switchyard bench` measures classification against: what an ML engineer writes
instead of Switchyard, a FastAPI service around onnxruntime, Pillow and numpy, with the same
model file, the same images and the same preprocessing as Switchyard's `image_classifier`
(shorter side to 256, bilinear; centre 224x224; (x - 127) / 128; NCHW).

    bench/peers/.venv/bin/python bench/peers/classifier_peer.py --model M.onnx --labels L.txt --port P

`POST /classify` takes `{"image_base64": "..."}` and answers `{"label", "score"}`. As many
uvicorn workers as cores, each with a one-thread onnxruntime session (the configuration its
documentation recommends when processes, not threads, use the cores) that runs inline in the
worker's event loop, so no more inferences run at once than there are cores."""

from __future__ import annotations

import argparse
import base64
import io
import os

import numpy as np
import onnxruntime
import uvicorn
from fastapi import FastAPI, HTTPException
from PIL import Image
from pydantic import BaseModel

RESIZE = 256
CROP = 224


class Request(BaseModel):
    image_base64: str


class Prediction(BaseModel):
    label: str
    score: float


def session(model: str) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def preprocess(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    # JPEG's DCT-domain scaling: decode at the smallest 1/N scale that still covers the resize.
    image.draft("RGB", (RESIZE, RESIZE))
    image = image.convert("RGB")
    width, height = image.size
    scale = RESIZE / min(width, height)
    resized = image.resize((max(RESIZE, int(width * scale)), max(RESIZE, int(height * scale))),
                           Image.Resampling.BILINEAR)
    left = (resized.width - CROP) // 2
    top = (resized.height - CROP) // 2
    crop = resized.crop((left, top, left + CROP, top + CROP))
    pixels = (np.asarray(crop, dtype=np.float32) - 127.0) / 128.0
    return pixels.transpose(2, 0, 1)[np.newaxis]


def make_app(model: str, labels_path: str) -> FastAPI:
    inference = session(model)
    input_name = inference.get_inputs()[0].name
    with open(labels_path, encoding="utf-8") as file:
        labels = [line.strip() for line in file if line.strip()]
    app = FastAPI()

    @app.post("/classify")
    async def classify(request: Request) -> Prediction:
        try:
            data = base64.b64decode(request.image_base64, validate=True)
            tensor = preprocess(data)
        except (ValueError, OSError) as error:
            raise HTTPException(status_code=400, detail=f"not an image: {error}") from error
        logits = inference.run(None, {input_name: tensor})[0][0]
        exp = np.exp(logits - logits.max())
        probabilities = exp / exp.sum()
        best = int(probabilities.argmax())
        return Prediction(label=labels[best], score=float(probabilities[best]))

    return app


def app() -> FastAPI:
    """uvicorn's factory: each worker process builds its own session from the environment."""
    return make_app(os.environ["PEER_MODEL"], os.environ["PEER_LABELS"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    os.environ["PEER_MODEL"] = args.model
    os.environ["PEER_LABELS"] = args.labels
    uvicorn.run("classifier_peer:app", factory=True, host="127.0.0.1", port=args.port,
                workers=args.workers, http="httptools", log_level="warning",
                app_dir=os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    main()
