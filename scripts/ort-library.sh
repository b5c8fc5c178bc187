#!/usr/bin/env bash
# Prints the path of the ONNX Runtime shared library that PyPI's onnxruntime wheel ships,
# or nothing when the wheel is not installed.
python3 - <<'PY' 2>/dev/null || true
import glob, os
import onnxruntime
capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
libs = sorted(glob.glob(os.path.join(capi, "libonnxruntime.so*")), key=len, reverse=True)
print(libs[0] if libs else "")
PY
