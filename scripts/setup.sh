#!/usr/bin/env bash
# Sets up what parity needs at run time and in its tests: a project-local virtualenv
# (.venv) with the pinned ONNX Runtime library (onnxruntime==1.31.1 wheel, whose
# capi/libonnxruntime.so.1.31.1 parity loads) plus numpy and onnx for the scripts.
# With --test, also what only the test suite needs: NVRTC from the CUDA 13 wheel
# nvidia-cuda-nvrtc==13.0.88 (into .venv, ~60 MB; tests/it/kernels.rs compiles the CUDA
# comparison kernels with it, no GPU needed) and headless Chromium (Debian package
# `chromium`, for tests/it/html.rs; `groff-base` for tests/it/cli.rs's man pages),
# installed with apt-get as root or through sudo;
# prometheus-client (tests/it/openmetrics.rs); silero-vad's and magika's models (tests/it/sequence.rs, gates.rs); MLServer 1.7.1 into a second virtualenv,
# .venv-serve, from requirements-serve.txt (tests/it/kserve.rs).
# Idempotent: re-running only installs what is missing.
set -euo pipefail
tests=false
for arg in "$@"; do
  case "$arg" in
    --test) tests=true ;;
    *) echo "setup: unknown argument $arg (known: --test)" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if ! .venv/bin/python -c 'import onnxruntime, onnx, numpy, xmlschema, yaml, jsonschema, sys; sys.exit(onnxruntime.__version__ != "1.31.1")' 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
fi
lib=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -n 1)
echo "setup: ONNX Runtime library at $lib"
if $tests && ! ls .venv/lib/python3*/site-packages/nvidia/cu13/lib/libnvrtc.so.13 >/dev/null 2>&1; then
  .venv/bin/pip install --quiet --disable-pip-version-check nvidia-cuda-nvrtc==13.0.88
  echo "setup: installed NVRTC (nvidia-cuda-nvrtc 13.0.88) for tests/it/kernels.rs"
fi
# Debian packages: chromium (tests/it/html.rs), groff-base (tests/it/cli.rs renders
# `parity man` pages as man(1) does).
packages=()
if $tests && ! command -v chromium >/dev/null; then packages+=(chromium); fi
if $tests && ! command -v groff >/dev/null; then packages+=(groff-base); fi
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo=sudo; else
      echo "setup: the tests need the Debian packages ${packages[*]} (needs root)" >&2
      exit 1
    fi
  fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  echo "setup: installed ${packages[*]}"
fi
# tests/it/openmetrics.rs parses `--format openmetrics` with a real OpenMetrics parser:
# prometheus_client's (pure Python), pinned, into .venv.
if $tests && ! .venv/bin/python -c 'import sys, importlib.metadata as m; sys.exit(m.version("prometheus-client") != "0.23.1")' 2>/dev/null; then
  .venv/bin/pip install --quiet --disable-pip-version-check prometheus-client==0.23.1
  echo "setup: installed prometheus-client 0.23.1 for tests/it/openmetrics.rs"
fi
# Public models from PyPI wheels (requirements-test-models.txt pins each wheel's sha256;
# --no-deps: only their model files are used), into .venv: silero-vad 6.2.3's
# silero_vad.onnx (tests/it/sequence.rs, a streaming model with recurrent state) and
# magika 1.0.3's content-type classifier (tests/it/gates.rs, dataset gates on an int8 copy).
if $tests && ! { ls .venv/lib/python3*/site-packages/silero_vad/data/silero_vad.onnx \
    && ls .venv/lib/python3*/site-packages/magika/models/standard_v3_3/model.onnx; } >/dev/null 2>&1; then
  .venv/bin/pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r requirements-test-models.txt
  echo "setup: installed silero-vad 6.2.3 and magika 1.0.3 (their ONNX models) for tests/it/sequence.rs and tests/it/gates.rs"
fi
# tests/it/kserve.rs starts a real Open Inference Protocol server: MLServer 1.7.1 with
# onnxruntime 1.31.1, in its own virtualenv .venv-serve (many dependencies, kept out of .venv).
if $tests && ! .venv-serve/bin/python -c 'import mlserver, onnxruntime, sys; sys.exit(mlserver.__version__ != "1.7.1")' 2>/dev/null; then
  [ -x .venv-serve/bin/python ] || "$python" -m venv .venv-serve
  .venv-serve/bin/pip install --quiet --disable-pip-version-check -r requirements-serve.txt
  echo "setup: installed MLServer 1.7.1 into .venv-serve for tests/it/kserve.rs"
fi
