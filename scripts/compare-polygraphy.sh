#!/usr/bin/env bash
# Runs scripts/compare-polygraphy.py with its own virtualenv, .venv-polygraphy (made here
# on first use, kept out of .venv so that Polygraphy and its dependencies never touch the
# environment parity and its tests use): NVIDIA Polygraphy plus the same ONNX Runtime,
# onnx and numpy that requirements.txt pins for parity. Idempotent: re-running only
# installs what is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-polygraphy"
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c '
import sys, importlib.metadata as m
want = {"polygraphy": "0.53.6", "onnxruntime": "1.31.1", "onnx": "1.23.2", "numpy": "2.4.6"}
sys.exit(any(m.version(name) != version for name, version in want.items()))' 2>/dev/null; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    polygraphy==0.53.6 onnxruntime==1.31.1 onnx==1.23.2 numpy==2.4.6
  echo "compare-polygraphy: installed Polygraphy 0.53.6 and ONNX Runtime 1.31.1 into $venv" >&2
fi
exec "$venv/bin/python" "$root/scripts/compare-polygraphy.py" "$@"
