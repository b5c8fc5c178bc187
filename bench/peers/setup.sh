#!/usr/bin/env bash
# Makes bench/peers/.venv with the peers' pinned requirements (from PyPI, once; a no-op after).
set -euo pipefail
cd "$(dirname "$0")"
stamp="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ -f .venv/.stamp ] && [ "$(cat .venv/.stamp)" = "$stamp" ]; then
  exit 0
fi
echo "bench/peers: installing the peers' requirements into bench/peers/.venv" >&2
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet -r requirements.txt
echo "$stamp" > .venv/.stamp
