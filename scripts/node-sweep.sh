#!/usr/bin/env bash
# Runs scripts/node-sweep.py with the project's virtualenv (made by scripts/setup.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$root/.venv/bin/python" ]; then
  echo "node-sweep: $root/.venv is missing; run scripts/setup.sh first" >&2
  exit 1
fi
exec "$root/.venv/bin/python" "$root/scripts/node-sweep.py" "$@"
