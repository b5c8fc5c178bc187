#!/usr/bin/env bash
# Installs the system packages the tests need (the build needs none), and only those that are
# missing, so running it again is cheap. Debian/Ubuntu (apt); uses sudo only when not already root.
set -euo pipefail

packages=(
  # The `ocr` algorithm loads Tesseract's library at run time (nothing is needed to build it);
  # the tests read text with it and its English model.
  libtesseract5 tesseract-ocr-eng
  # The OCR tests render their images with ImageMagick and the DejaVu fonts.
  imagemagick fonts-dejavu-core
  # The broker tests talk to a real RabbitMQ (scripts/ensure-rabbitmq.sh starts it).
  rabbitmq-server
  # The dashboard is tested in a real headless browser, driven over WebDriver; Debian's own
  # packages, so nothing downloads a browser at test time.
  chromium chromium-driver
)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
# The Kubernetes manifests are rendered with `kubectl kustomize`: any kubectl will do, Debian's
# kubernetes-client when there is none.
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The `onnxruntime` feature loads ONNX Runtime from PyPI's wheel (scripts/ort-library.sh finds it).
if ! python3 -c 'import onnxruntime' >/dev/null 2>&1; then
  echo "installing the onnxruntime wheel" >&2
  # A distribution's own Python refuses system-wide installs (PEP 668): fall back to the user site.
  python3 -m pip install --quiet onnxruntime ||
    python3 -m pip install --quiet --user --break-system-packages onnxruntime
fi
