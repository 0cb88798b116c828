#!/usr/bin/env bash
# Builds the release artifacts of parity into dist/ (emptied first), smoke-tests them and
# writes dist/SHA256SUMS over them. ci/release.yml runs it on a version tag.
#
#   ci/release.sh [--cuda] [--no-smoke] [extra cargo args, e.g. -j2]
#
# Artifacts (VERSION is Cargo.toml's, TRIPLE x86_64-unknown-linux-gnu):
#   parity-VERSION-py3-none-manylinux_*_x86_64.whl   scripts/build-wheel.sh, release profile
#   parity-VERSION-TRIPLE.tar.gz                      that wheel's binary, README.md,
#                      docs/install.md, LICENSE* (if any) and models/, in parity-VERSION-TRIPLE/
#   parity-cuda-VERSION-TRIPLE-sm_CAP.tar.gz          only when nvcc is on PATH or --cuda is
#                      given: ci/build-cuda.sh's candle-cuda binary (CUDA_COMPUTE_CAP, default 90)
#                      with the same files
#   SHA256SUMS                                        `sha256sum -c SHA256SUMS` in dist/
#
# ci/build-cuda.sh brings its own nvcc (PyPI's CUDA 13 wheels, about 1.2 GB, 8-10 min on
# two cores), so a machine without CUDA can build it with --cuda; without --cuda it is
# built only where nvcc is on PATH (a CUDA build machine).
#
# The smoke test (skip with --no-smoke; needs PyPI for onnxruntime) installs the wheel
# into a fresh venv and runs `parity backends` and `parity demo` from outside the
# repository, then the tarball's binary on the demo with that venv's ONNX Runtime.
set -euo pipefail

cuda=auto
smoke=true
extra=()
for arg in "$@"; do
    case "$arg" in
        --cuda) cuda=yes ;;
        --no-smoke) smoke=false ;;
        *) extra+=("$arg") ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '== release: %s\n' "$*"; }
die() {
    printf 'release: %s\n' "$*" >&2
    exit 1
}

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || die "no version in Cargo.toml"
triple=x86_64-unknown-linux-gnu
[ "$(uname -m)-$(uname -s)" = "x86_64-Linux" ] || die "builds the $triple artifacts: run it on x86_64 Linux"
# Reproducible tarballs: every file's mtime is the commit's time. Not exported: the cc
# crate's build scripts (tract-linalg) track SOURCE_DATE_EPOCH, so exporting it would
# rebuild tract and everything above it (8-9 min on two cores) on every run.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
step "parity $version ($triple), tarball mtimes @$epoch"

step "dist/ emptied"
rm -rf dist
mkdir -p dist

# 1. The wheel (release profile, stripped).
scripts/build-wheel.sh --profile release "${extra[@]}"
wheels=(dist/parity-"$version"-*.whl)
wheel=${wheels[0]}
[ -f "$wheel" ] || die "no wheel in dist/"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A binary tarball: parity-VERSION-TRIPLE/{BINARY, README.md, docs/install.md, LICENSE*,
# models/}. `parity demo` finds models/ next to the binary.
tarball() { # NAME BINARY
    local name=$1 binary=$2 dir=$work/$1
    rm -rf "$dir"
    mkdir -p "$dir/docs"
    install -m 755 "$binary" "$dir/$(basename "$binary")"
    cp README.md "$dir/"
    cp docs/install.md "$dir/docs/"
    for license in LICENSE*; do
        [ -f "$license" ] && cp "$license" "$dir/"
    done
    cp -R models "$dir/models"
    find "$dir/models" -name __pycache__ -prune -exec rm -rf {} +
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
        -C "$work" -cf - "$name" | gzip -9n >"dist/$name.tar.gz"
    step "dist/$name.tar.gz ($(du -h "dist/$name.tar.gz" | cut -f1))"
}

# 2. The binary tarball, with the wheel's binary (the same bytes pip installs).
mkdir -p "$work/bin"
python3 - "$wheel" "$work/bin/parity" <<'EOF'
import sys, zipfile
wheel, out = sys.argv[1:]
z = zipfile.ZipFile(wheel)
name = next(n for n in z.namelist() if n.endswith(".data/scripts/parity"))
open(out, "wb").write(z.read(name))
EOF
tarball "parity-$version-$triple" "$work/bin/parity"

# 3. The candle-cuda binary tarball.
cap=${CUDA_COMPUTE_CAP:-90}
if [ ! -x ci/build-cuda.sh ]; then
    step "candle-cuda tarball skipped: ci/build-cuda.sh is missing"
elif [ "$cuda" = auto ] && ! command -v nvcc >/dev/null; then
    step "candle-cuda tarball skipped: nvcc is not on PATH (pass --cuda to build it anyway; ci/build-cuda.sh installs nvcc from PyPI's CUDA 13 wheels, about 1.2 GB, 8-10 min)"
else
    CUDA_COMPUTE_CAP=$cap ci/build-cuda.sh "${extra[@]}"
    mkdir -p "$work/cuda"
    mv dist/parity-cuda "$work/cuda/parity-cuda"
    tarball "parity-cuda-$version-$triple-sm_$cap" "$work/cuda/parity-cuda"
fi

# 4. Smoke test: what a user does.
if $smoke; then
    step "smoke test: pip install $wheel into a fresh venv, parity backends and demo outside the repository"
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
    mkdir -p "$work/cwd"
    (
        cd "$work/cwd"
        unset ORT_DYLIB_PATH ORT_CUDA_DYLIB_PATH VIRTUAL_ENV PARITY_MODELS
        "$work/venv/bin/parity" backends --backend ort-cpu | tee "$work/backends.txt"
        grep -q '^ort-cpu *available' "$work/backends.txt" || die "the installed wheel does not find ONNX Runtime"
        "$work/venv/bin/parity" demo
        tar -xzf "$root/dist/parity-$version-$triple.tar.gz"
        [ -f "parity-$version-$triple/models/mlp/model.onnx" ] || die "the tarball has no models/mlp"
        ORT_DYLIB_PATH=$(ls "$work"/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*) \
            "parity-$version-$triple/parity" demo --quiet
    ) || die "smoke test failed"
fi

# 5. Checksums over everything in dist/.
(
    cd dist
    rm -f SHA256SUMS
    files=(*)
    sha256sum -- "${files[@]}" >SHA256SUMS
    sha256sum --quiet -c SHA256SUMS
)
step "artifacts in dist/:"
(cd dist && ls -l --time-style=+ -- * | awk '{print "   ", $5, $NF}')
step "dist/SHA256SUMS:"
sed 's/^/    /' dist/SHA256SUMS
