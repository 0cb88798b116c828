#!/usr/bin/env bash
# One command for a GPU machine: checks the prebuilt binaries there and writes every
# result to one Markdown file (ready to paste into docs/gpu-results.md).
#
#   ci/gpu-check.sh PARITY_BIN PARITY_CUDA_BIN [OUT_FILE]
#
#   PARITY_BIN       the default `parity` build (target/release/parity)
#   PARITY_CUDA_BIN  the candle-cuda build (dist/parity-cuda from ci/build-cuda.sh)
#   OUT_FILE         the results file (default gpu-results.md); the JSON reports go
#                    next to it, in OUT_FILE's name with .d appended
#
# Needs: an NVIDIA driver for CUDA 13 (libcuda.so.1, nvidia-smi) and the CUDA 13
# libraries (cudart, cublas, curand, nvrtc), found in the Python environment's
# site-packages/nvidia/*/lib (e.g. torch's cu130 wheels; PYTHON picks the interpreter,
# default python3) or already on LD_LIBRARY_PATH. No Rust, no network.
#
# Steps: device, driver and library versions; `backends` of both binaries; every suite
# under SUITES (default: the repository's models/) on candle-cuda, and on ort-cuda when
# that binary reports it available, against the suites' CPU goldens; parity-gpu-probe
# (copy and comparison-kernel bandwidth, CPU/GPU agreement) when it lies next to either
# binary; a benchmark of candle-cuda against candle-cpu on models/{mlp,cnn,transformer}.
# Exit status: 0 when every step passed, 1 when any failed, 2 on bad arguments.
set -uo pipefail

usage() {
    sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
die() {
    printf 'gpu-check: %s\n' "$*" >&2
    exit 2
}

case "${1:-}" in -h | --help) usage ;; esac
[ $# -ge 2 ] && [ $# -le 3 ] || usage
parity=$1
cuda=$2
out=${3:-gpu-results.md}
for bin in "$parity" "$cuda"; do
    [ -f "$bin" ] || die "$bin: no such file"
    [ -x "$bin" ] || die "$bin: not executable (chmod +x it)"
done
case "$parity" in */*) ;; *) parity=./$parity ;; esac
case "$cuda" in */*) ;; *) cuda=./$cuda ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
suites=${SUITES:-$root/models}
bench_models=("$suites/mlp" "$suites/cnn" "$suites/transformer")
python=${PYTHON:-python3}
details=$out.d
mkdir -p "$details" || die "cannot create $details"
: >"$out" || die "cannot write $out"

failures=()
fail() {
    failures+=("$1")
    printf 'gpu-check: FAILED: %s\n' "$1" >&2
}
md() { printf '%s\n' "$@" >>"$out"; }

# Runs a command, appends its output to the results file as a code block, returns its
# exit status.
block() {
    local title=$1 log
    shift
    log=$(mktemp)
    printf '== %s\n' "$title" >&2
    "$@" >"$log" 2>&1
    local rc=$?
    md "" "### $title" "" '```' "\$ ${*/#$root\//}" "$(cat "$log")" '```'
    [ "$rc" -eq 0 ] || md "" "exit status $rc"
    cat "$log" >&2
    rm -f "$log"
    return "$rc"
}

# CUDA libraries of the Python environment (torch's cu130 wheels put them in
# site-packages/nvidia/<name>/lib; the CUDA 13 wheels in site-packages/nvidia/cu13/lib).
nvlibs=""
if command -v "$python" >/dev/null 2>&1; then
    nvlibs=$("$python" - <<'EOF' 2>/dev/null
import glob, os, site, sysconfig
roots = set(site.getsitepackages()) | {site.getusersitepackages(), sysconfig.get_paths()["purelib"]}
dirs = sorted({d for r in roots for d in glob.glob(os.path.join(r, "nvidia", "*", "lib"))})
print(":".join(dirs))
EOF
    )
fi
[ -n "$nvlibs" ] && export LD_LIBRARY_PATH="$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

md "# parity GPU check" "" \
    "- date: $(date -u '+%Y-%m-%d %H:%M UTC')" \
    "- host: $(uname -n), $(uname -sr), $(nproc) CPUs" \
    "- parity: \`$parity\`, parity-cuda: \`$cuda\`" \
    "- suites: \`$suites\`" \
    "- CUDA libraries from: ${nvlibs:-(none found with $python; LD_LIBRARY_PATH as given)}"

# --- 1. device, driver, libraries ------------------------------------------------------
md "" "## Device, driver and libraries"
if command -v nvidia-smi >/dev/null 2>&1; then
    block "nvidia-smi" nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap,clocks.max.memory \
        --format=csv || fail "nvidia-smi could not query the GPU (driver not loaded?)"
else
    md "" "nvidia-smi: **not found** (no NVIDIA driver on this machine)"
    fail "nvidia-smi not found: this machine has no NVIDIA driver"
fi
libcuda=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}')
if [ -z "$libcuda" ]; then
    for d in ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }}; do
        [ -e "$d/libcuda.so.1" ] && libcuda=$d/libcuda.so.1 && break
    done
fi
if [ -n "$libcuda" ]; then
    md "" "- libcuda.so.1: \`$(readlink -f "$libcuda")\`"
else
    md "" "- libcuda.so.1: **not found** (the driver's library; parity-cuda cannot start without it)"
    fail "libcuda.so.1 not found: install the NVIDIA driver (CUDA 13, driver >= 580)"
fi
if ldd "$cuda" >"$details/ldd.txt" 2>&1; then
    md "" "Libraries parity-cuda resolves:" "" '```'
    grep -E 'libcuda|libcublas|libcurand|libcudart|libnvrtc|not found' "$details/ldd.txt" >>"$out"
    md '```'
    if grep -q 'not found' "$details/ldd.txt"; then
        fail "parity-cuda needs libraries that are not found: $(grep 'not found' "$details/ldd.txt" | awk '{print $1}' | tr '\n' ' ')"
    fi
else
    fail "ldd cannot read $cuda"
fi
if command -v "$python" >/dev/null 2>&1; then
    pkgs=$("$python" -m pip list --disable-pip-version-check 2>/dev/null |
        grep -iE '^(nvidia-|torch |onnxruntime)' || true)
    md "" "Python packages (\`$python -m pip list\`):" "" '```' "${pkgs:-(none)}" '```'
fi

# --- 2. backends -----------------------------------------------------------------------
md "" "## Backends"
block "parity backends (default build)" "$parity" backends || fail "parity backends failed"
if block "parity-cuda backends" "$cuda" backends; then
    "$cuda" backends >"$details/backends.txt" 2>&1
else
    : >"$details/backends.txt"
    fail "parity-cuda cannot start or list its backends (see the output above)"
fi
gpu_backends=()
for b in candle-cuda ort-cuda; do
    if grep -qE "^$b +available" "$details/backends.txt"; then
        gpu_backends+=("$b")
    elif [ "$b" = candle-cuda ] && [ -s "$details/backends.txt" ]; then
        why=$(grep -E "^$b " "$details/backends.txt" | tr -s ' ')
        fail "candle-cuda is not available in parity-cuda (${why:-not listed: is it the candle-cuda build?})"
    else
        md "" "ort-cuda is not available in parity-cuda: not checked."
    fi
done

# --- 3. suites on the GPU backends against the CPU goldens ------------------------------
md "" "## Suites on the GPU backends (reference: the suites' CPU goldens)"
for b in "${gpu_backends[@]}"; do
    json=$details/check-$b.json
    block "parity check on $b" "$cuda" check "$suites" --backend "$b" --format json --out "$json"
    rc=$?
    if [ -s "$json" ]; then
        block "report ($b)" "$parity" merge "$json" --format text
        "$parity" merge "$json" --format markdown >>"$out" 2>&1
    fi
    [ "$rc" -eq 0 ] || fail "parity check on $b: exit status $rc (1 mismatch, 2 could not evaluate)"
done

# --- 4. comparison kernels' bandwidth -------------------------------------------------
md "" "## Comparison kernels on the GPU (parity-gpu-probe)"
probe=""
for d in "$(dirname "$cuda")" "$(dirname "$parity")"; do
    [ -x "$d/parity-gpu-probe" ] && probe=$d/parity-gpu-probe && break
done
if [ -n "$probe" ]; then
    block "parity-gpu-probe" "$probe" || fail "parity-gpu-probe failed"
else
    md "" "parity-gpu-probe is not next to either binary: skipped."
    printf 'gpu-check: parity-gpu-probe not found next to %s or %s: skipped\n' "$cuda" "$parity" >&2
fi

# --- 5. candle-cuda against candle-cpu --------------------------------------------------
md "" "## Benchmark: candle-cuda against candle-cpu"
if [ "${#gpu_backends[@]}" -gt 0 ] && [ "${gpu_backends[0]}" = candle-cuda ]; then
    block "parity bench" "$cuda" bench "${bench_models[@]}" --backend candle-cuda --backend candle-cpu \
        --save-baseline "$details/bench.json" || fail "parity bench failed"
    # Every candle-cuda result must carry the device memory it used (gpu_memory_bytes).
    gpu_memory=$(python3 -c 'import json, sys
rs = [r for r in json.load(open(sys.argv[1]))["results"] if r["backend"] == "candle-cuda"]
bad = [r["model_name"] for r in rs if not r.get("gpu_memory_bytes")]
print(", ".join("%s %s B" % (r["model_name"], r["gpu_memory_bytes"] or 0) for r in rs))
sys.exit(1 if bad or not rs else 0)' "$details/bench.json" 2>&1)
    rc=$?
    md "" "GPU memory reported by candle-cuda: $gpu_memory"
    [ "$rc" -eq 0 ] || fail "candle-cuda results without gpu_memory_bytes: $gpu_memory"
else
    md "" "candle-cuda is not available: skipped."
fi

# --- verdict ---------------------------------------------------------------------------
md "" "## Verdict" ""
if [ "${#failures[@]}" -eq 0 ]; then
    md "PASS: every step passed. JSON reports: \`$details/\`."
    printf 'gpu-check: PASS (results in %s)\n' "$out" >&2
    exit 0
fi
md "FAIL:"
for f in "${failures[@]}"; do md "- $f"; done
printf 'gpu-check: FAIL, %d problem(s); results in %s\n' "${#failures[@]}" "$out" >&2
exit 1
