#!/usr/bin/env bash
# Runs scripts/make-tiny-lm.py in its own virtualenv (.venv-lm, git-ignored; torch and
# transformers from PyPI, pinned): scripts/make-tiny-lm.sh OUT_DIR.
# LM_VENV names another virtualenv that already has them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${LM_VENV:-$root/.venv-lm}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    torch==2.15.0 transformers==5.25.0 onnx==1.23.2 onnxscript==0.7.2 numpy==2.4.6
fi
exec "$venv/bin/python" "$root/scripts/make-tiny-lm.py" "$@"
