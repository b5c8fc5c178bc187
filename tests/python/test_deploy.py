"""The container image's ONNX Runtime step, run here: deploy/install-onnxruntime.sh puts the
library from PyPI's wheel where the image's ORT_DYLIB_PATH points, and the binary classifies with
it. (No Docker engine runs on CI's machines; this is the part of the image that is not a Debian
package.)"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from series_harness import switchyard_binary

REPO = Path(__file__).resolve().parents[2]
COFFEE = REPO / "crates/algorithms/testdata/images/coffee.png"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_the_images_onnxruntime_library_classifies(tmp_path: Path) -> None:
    installed = subprocess.run(
        [str(REPO / "deploy/install-onnxruntime.sh"), str(tmp_path / "onnxruntime")],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert installed.returncode == 0, installed.stderr
    library = Path(installed.stdout.strip())
    assert library.is_file() and library.name.startswith("libonnxruntime.so."), installed.stdout

    port = free_port()
    log = tmp_path / "runner.log"
    with log.open("w") as sink:
        runner = subprocess.Popen(
            [str(switchyard_binary()), "runner", "--listen", f"127.0.0.1:{port}",
             "--algorithms", "image_classifier", "--classifier-engine", "onnxruntime"],
            stdout=sink, stderr=subprocess.STDOUT,
            env={"ORT_DYLIB_PATH": str(library), "SWITCHYARD_CONFIG": "/nonexistent.toml",
                 "PATH": "/usr/bin:/bin"},
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert runner.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"runner not ready:\n{log.read_text()}"
                time.sleep(0.2)
        body = json.dumps({"image_base64": base64.b64encode(COFFEE.read_bytes()).decode()}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/run/image_classifier", data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert answer["result"]["label"] == "espresso", answer
        assert f"ONNX Runtime loaded library={library}" in log.read_text()
    finally:
        runner.kill()
        runner.wait()
