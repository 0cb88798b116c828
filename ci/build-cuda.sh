#!/usr/bin/env bash
# Builds the candle-cuda binary (`parity` with the cargo feature `candle-cuda`) on a
# machine with no GPU and no CUDA installed, from PyPI's CUDA 13 wheels.
#
#   ci/build-cuda.sh [extra cargo args, e.g. -j2]
#
# Result: dist/parity-cuda (the same CLI as `parity`, with the candle-cuda backend). It is
# linked against the CUDA driver and libraries, so it starts only where libcuda.so.1 (a
# CUDA 13 driver) and libcudart/libcublas/libcurand 13 are found (ci/gpu-check.sh sets
# LD_LIBRARY_PATH from the Python environment's nvidia wheels).
#
# Environment:
#   CUDA_COMPUTE_CAP  GPU architecture the kernels are compiled for (default 90, Hopper:
#                     H100/H200). 80: A100; 86: A10, RTX 30xx; 89: L4, L40, RTX 40xx (Ada);
#                     100: B200; 120: RTX 50xx. Below 90 the kernels are plain PTX, which
#                     the driver also JIT-compiles for newer GPUs; from 90 on candle builds
#                     compute_XXa PTX, which runs on exactly that architecture. Build one
#                     binary per architecture; `parity-cuda backends` refuses a mismatch.
#   CUDA_VENV         where the wheels are installed (default .venv-cuda, gitignored).
#   PYTHON            the interpreter that creates the venv (default python3).
#
# The build goes to target/cuda (CARGO_TARGET_DIR), so the default build in target/ is
# never touched. First build: about 8-10 minutes on 2 cores (candle-kernels' build script
# compiles its .cu files with nvcc, single-threaded, for about 6 of them).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

venv=${CUDA_VENV:-$root/.venv-cuda}
python=${PYTHON:-python3}
# Pinned: the set measured to build candle-kernels (docs/backends.md, candle-cuda).
wheels=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
)

step() { printf '== %s\n' "$*"; }
die() {
    printf 'build-cuda: %s\n' "$*" >&2
    exit 1
}

command -v cargo >/dev/null || die "cargo is not on PATH (install Rust: https://rustup.rs)"
command -v cc >/dev/null || die "no C compiler (cc) on PATH: nvcc needs a host compiler"

step "CUDA 13 wheels in $venv (about 1.2 GB)"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" || die "cannot create a venv with $python"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${wheels[@]}" ||
    die "pip could not install the CUDA 13 wheels (network or index?)"
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Every CUDA 13 wheel installs into the same tree: bin/, include/, lib/, nvvm/.
c13=$site/nvidia/cu13
[ -x "$c13/bin/nvcc" ] || die "nvcc is missing from $c13/bin after pip install"
[ -f "$c13/include/cuda.h" ] || die "cuda.h is missing from $c13/include"

target=$root/target/cuda
link=$target/cuda-link
step "link directory $link (unversioned .so links, stub libcuda.so)"
rm -rf "$link"
mkdir -p "$link"
# The wheels ship only versioned sonames (libcublas.so.13); the linker wants libcublas.so.
for lib in "$c13"/lib/lib*.so.*; do
    base=$(basename "$lib")
    ln -sf "$lib" "$link/${base%%.so.*}.so"
done
# libcuda comes with the driver, not with any wheel. The linker only needs the symbols
# to exist: a stub defining every cu* name that cuda.h declares, with the driver's
# soname, so the binary asks for the real libcuda.so.1 at start. The stub lives here
# only, never on a run-time library path.
grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b' "$c13/include/cuda.h" | sort -u |
    sed 's/.*/void &(void) {}/' >"$link/cuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$link/libcuda.so" "$link/cuda_stub.c" ||
    die "cannot build the stub libcuda.so"

export PATH="$c13/bin:$PATH"
export CUDA_HOME="$c13" CUDA_PATH="$c13"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH="$link${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CARGO_TARGET_DIR=$target

step "nvcc: $(nvcc --version | grep -m1 release)"
step "cargo build --release --features candle-cuda (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)"
start=$(date +%s)
cargo build --release --locked --features candle-cuda --bin parity "$@"
step "built in $(($(date +%s) - start)) s"

mkdir -p dist
cp "$target/release/parity" dist/parity-cuda
step "dist/parity-cuda: $(du -h dist/parity-cuda | cut -f1) (sm_$CUDA_COMPUTE_CAP)"
step "CUDA libraries it needs at start (ldd; 'not found' is expected without a driver):"
ldd dist/parity-cuda | grep -E 'libcuda|libcublas|libcurand|libcudart|libnvrtc|not found' || true
