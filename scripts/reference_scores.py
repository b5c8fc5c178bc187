#!/usr/bin/env python3
"""Reference top-5 scores of the image classifier, from Python ONNX Runtime and PIL.

The Rust engines are tested against this file's output (crates/algorithms/testdata/reference_scores.json):
the same model, the same preprocessing, an independent implementation of both.

Preprocessing, as the Rust classifier does it: decode, convert to RGB, resize the shorter side to 256
(bilinear, antialiased, PIL's BILINEAR), keep the centre 224x224 (offsets rounded down), scale each value
as (x - 127) / 128, lay out NCHW float32. Softmax on the logits.

    pip install onnxruntime pillow numpy
    python3 scripts/reference_scores.py > crates/algorithms/testdata/reference_scores.json
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

CRATE = Path(__file__).resolve().parent.parent / "crates" / "algorithms"
MODEL = CRATE / "models" / "efficientnet-lite0" / "efficientnet_lite0.onnx"
LABELS = CRATE / "models" / "efficientnet-lite0" / "imagenet_classes.txt"
IMAGES = CRATE / "testdata" / "images"
RESIZE = 256
CROP = 224
MEAN = 127.0
STD = 128.0
TOP = 5


def preprocess(path: Path) -> np.ndarray:
    image = Image.open(path).convert("RGB")
    width, height = image.size
    # Integer arithmetic, as in Rust: the long side is rounded down.
    if width <= height:
        size = (RESIZE, RESIZE * height // width)
    else:
        size = (RESIZE * width // height, RESIZE)
    image = image.resize(size, Image.BILINEAR)
    left = (size[0] - CROP) // 2
    top = (size[1] - CROP) // 2
    image = image.crop((left, top, left + CROP, top + CROP))
    pixels = (np.asarray(image, dtype=np.float32) - MEAN) / STD
    return pixels.transpose(2, 0, 1)[np.newaxis]


def softmax(logits: np.ndarray) -> np.ndarray:
    exps = np.exp(logits - logits.max())
    return exps / exps.sum()


def main() -> None:
    labels = LABELS.read_text().splitlines()
    session = onnxruntime.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    images = {}
    for path in sorted(IMAGES.glob("*")):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        (logits,) = session.run(None, {input_name: preprocess(path)})
        scores = softmax(logits[0].astype(np.float64))
        best = np.argsort(-scores)[:TOP]
        images[path.name] = [{"label": labels[i], "score": round(float(scores[i]), 6)} for i in best]
    json.dump(
        {
            "model_sha256": hashlib.sha256(MODEL.read_bytes()).hexdigest(),
            "onnxruntime": onnxruntime.__version__,
            "pillow": Image.__version__,
            "preprocessing": {"resize": RESIZE, "crop": CROP, "mean": MEAN, "std": STD, "filter": "PIL BILINEAR"},
            "images": images,
        },
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
