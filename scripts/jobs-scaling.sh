#!/usr/bin/env bash
# `parity check --jobs 1` against the default (--jobs = cores) on the same suites, run
# alternately ROUNDS times in one go so that both see the same machine; prints the
# median and the fastest wall time of each and their ratio. Usage:
#   scripts/jobs-scaling.sh [-r ROUNDS] [-p PARITY] -- CHECK-ARGS...
# e.g. scripts/jobs-scaling.sh -- models/mlp models/cnn models/transformer
set -euo pipefail
rounds=7
parity=target/release/parity
while getopts "r:p:" opt; do
  case $opt in
    r) rounds=$OPTARG ;;
    p) parity=$OPTARG ;;
    *) echo "usage: $0 [-r ROUNDS] [-p PARITY] -- CHECK-ARGS..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "jobs-scaling: give the check arguments after --" >&2; exit 2; }
[ -x "$parity" ] || { echo "jobs-scaling: $parity is not built (cargo build --release)" >&2; exit 2; }
one=() ; many=()
wall() { # prints the wall seconds of one `parity check "$@" -q` (its exit code may be 1 or 2)
  local start end
  start=$(date +%s.%N)
  "$parity" check "$@" -q >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}
for ((i = 0; i < rounds; i++)); do
  if ((i % 2 == 0)); then
    one+=("$(wall "$@" --jobs 1)"); many+=("$(wall "$@")")
  else
    many+=("$(wall "$@")"); one+=("$(wall "$@" --jobs 1)")
  fi
done
python3 - "$(nproc)" "${one[*]}" "${many[*]}" <<'PY'
import statistics, sys
cores, one, many = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
m1, mn = statistics.median(one), statistics.median(many)
print(f"--jobs 1: median {m1:.3f} s, min {min(one):.3f} s")
print(f"--jobs {cores} (default): median {mn:.3f} s, min {min(many):.3f} s")
print(f"speed-up (median): {m1 / mn:.2f}x over {len(one)} alternating rounds")
PY
