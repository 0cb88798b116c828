#!/usr/bin/env bash
# Tests the pytest plugin in python/pytest-parity (package pytest_parity) against a parity
# binary:
#
#   scripts/test-pytest-plugin.sh PARITY_BINARY [PYTEST_ARGS...]
#
# Creates (once) a virtualenv at .venv-pytest, installs the pinned pytest of
# python/pytest-parity/requirements-test.txt and the plugin itself (`pip install
# ./python/pytest-parity`, not editable, built by the pinned hatchling of its
# pyproject.toml), then runs python/pytest-parity/tests with PARITY_BIN set to the binary.
# ORT_DYLIB_PATH is passed through; when it is unset and the project's .venv holds the
# pinned ONNX Runtime (scripts/setup.sh), it points there, for the ort-cpu backend.
# Idempotent and fast on a second run: the installs are redone only when the pins or the
# plugin's sources change (a sha256 stamp in the venv).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 PARITY_BINARY [PYTEST_ARGS...]" >&2
  exit 2
fi
bin=$1
shift
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
  echo "test-pytest-plugin: $bin is not an executable file" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
plugin=python/pytest-parity
venv=.venv-pytest
python=${PYTHON:-python3}

if ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
# keep the virtualenv out of `git status` whatever .gitignore says
[ -f "$venv/.gitignore" ] || echo '*' > "$venv/.gitignore"

stamp="$venv/.pytest-parity.sha256"
want=$(
  {
    "$venv/bin/python" --version
    cat "$plugin/requirements-test.txt"
    find "$plugin/pyproject.toml" "$plugin/README.md" "$plugin/src" -type f ! -name '*.pyc' -print0 |
      LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  rm -f "$stamp"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$plugin/requirements-test.txt"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --force-reinstall "./$plugin"
  echo "$want" > "$stamp"
  echo "test-pytest-plugin: installed $("$venv/bin/python" -m pytest --version 2>&1) and pytest-parity from $plugin into $venv"
fi

if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  lib=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -n 1 || true)
  if [ -n "$lib" ]; then
    export ORT_DYLIB_PATH="$root/$lib"
  fi
fi
export PARITY_BIN="$bin"
echo "test-pytest-plugin: PARITY_BIN=$PARITY_BIN ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-(unset)}"
# no .pytest_cache in the source tree; pytester's runs live under the system temp dir
exec "$venv/bin/python" -m pytest "$plugin/tests" -p no:cacheprovider "$@"
