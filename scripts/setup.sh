#!/usr/bin/env bash
# Sets up what parity needs at run time and in its tests: a project-local virtualenv
# (.venv) with the pinned ONNX Runtime library (onnxruntime==1.31.1 wheel, whose
# capi/libonnxruntime.so.1.31.1 parity loads) plus numpy and onnx for the scripts.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if ! .venv/bin/python -c 'import onnxruntime, onnx, numpy, xmlschema, yaml, sys; sys.exit(onnxruntime.__version__ != "1.31.1")' 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
fi
lib=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
echo "setup: ONNX Runtime library at $lib"
