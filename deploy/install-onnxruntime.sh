#!/usr/bin/env bash
# Installs ONNX Runtime's shared library from PyPI's onnxruntime wheel (the one registry package
# that ships it for every platform) into DEST, without Python at run time, and prints the
# library's path. Used by deploy/Dockerfile; the tests run it too (tests/python/test_deploy.py).
#   deploy/install-onnxruntime.sh DEST [VERSION]
set -euo pipefail
dest=${1:?usage: install-onnxruntime.sh DEST [VERSION]}
version=${2:-1.32.0}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "onnxruntime==$version"
mkdir -p "$dest"
python3 - "$work" "$dest" <<'PY'
import glob, os, shutil, sys, zipfile
work, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(work, "onnxruntime-*.whl"))
with zipfile.ZipFile(wheel) as archive:
    libraries = [name for name in archive.namelist()
                 if name.startswith("onnxruntime/capi/libonnxruntime") and ".so" in name]
    if not libraries:
        sys.exit(f"no libonnxruntime in {os.path.basename(wheel)}")
    for name in libraries:
        with archive.open(name) as source, open(os.path.join(dest, os.path.basename(name)), "wb") as target:
            shutil.copyfileobj(source, target)
main = max((os.path.basename(name) for name in libraries if "providers" not in name), key=len)
print(os.path.join(dest, main))
PY
