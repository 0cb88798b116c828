#!/usr/bin/env bash
# The candle-onnx anchor (issue 15, docs/performance.md): for each suite, the p50 of
# candle-onnx's `simple_eval` (the same candle kernels, its own graph walking) next to
# parity's candle-cpu (`parity bench --threads 1`), both single-threaded, run one after
# the other on the same first data set. The ratio is the interpreter's own overhead.
#
#   scripts/candle-onnx-anchor.sh SUITE_DIR...
#
# Builds scripts/candle-onnx-anchor (candle-onnx 0.11.1) into target/candle-onnx-anchor
# first; candle-onnx's build script needs `protoc` (Debian: apt-get install
# protobuf-compiler). Uses target/release/parity (cargo build --release).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
parity="$root/target/release/parity"
queries=${QUERIES:-50}
if [ $# -eq 0 ]; then
  echo "usage: $0 SUITE_DIR..." >&2
  exit 2
fi
if ! command -v protoc >/dev/null; then
  echo "candle-onnx-anchor: protoc is missing (apt-get install protobuf-compiler)" >&2
  exit 1
fi
[ -x "$parity" ] || { echo "candle-onnx-anchor: build parity first (cargo build --release)" >&2; exit 1; }
CARGO_TARGET_DIR="$root/target/candle-onnx-anchor" cargo build --release -q \
  --manifest-path "$root/scripts/candle-onnx-anchor/Cargo.toml"
anchor="$root/target/candle-onnx-anchor/release/candle-onnx-anchor"
printf '%-14s %16s %16s %8s\n' MODEL "candle-onnx P50" "candle-cpu P50" RATIO
for suite in "$@"; do
  name=$(basename "$suite")
  line=$(RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 "$anchor" "$suite" "$queries" || true)
  ours=$("$parity" bench "$suite" --backend candle-cpu --threads 1 --min-queries "$queries" \
           --min-duration 1 --format json -q 2>/dev/null \
         | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["latency_ms"]["p50"])')
  case "$line" in
    p50_ms=*)
      theirs=${line#p50_ms=}; theirs=${theirs%% *}
      ratio=$(python3 -c "print(f'{$ours / $theirs:.2f}x')")
      printf '%-14s %13.4f ms %13.4f ms %8s\n' "$name" "$theirs" "$ours" "$ratio" ;;
    *)
      reason=${line#error=}
      printf '%-14s %16s %13.4f ms %8s   (candle-onnx: %.110s)\n' "$name" "cannot run" "$ours" "-" "$reason" ;;
  esac
done
