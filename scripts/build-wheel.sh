#!/usr/bin/env bash
# Builds the `parity` wheel (pyproject.toml: maturin, bindings = "bin") into dist/.
#
#   scripts/build-wheel.sh [--profile release|dev] [extra maturin/cargo args, e.g. -j2]
#
# --profile release (default): the shipped build. --profile dev reuses what `cargo test`
# already built in target/debug (CI: only the binary is linked again); both are stripped.
#
# The wheel holds the stripped `parity` binary (installed as PREFIX/bin/parity), the demo
# suites of models/ (installed as PREFIX/share/parity/models, where `parity demo` looks)
# and depends on onnxruntime==1.31.1, whose libonnxruntime.so parity finds in the same
# environment. Its platform tag is the lowest manylinux tag auditwheel verifies for the
# binary's glibc symbols (maturin's default); pass `--compatibility TAG` to ask for another.
#
# Environment:
#   WHEEL_VENV  where pinned maturin is installed (default .venv-build, gitignored)
#   PYTHON      the interpreter that creates that venv (default python3)
#
# Idempotent: the venv is reused, the staging directory (target/wheel-data) is laid anew
# and dist/parity-*.whl is replaced.
set -euo pipefail

profile=release
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) [ $# -ge 2 ] || { echo "build-wheel: --profile needs release or dev" >&2; exit 2; }
                   profile=$2; shift 2 ;;
        --profile=*) profile=${1#--profile=}; shift ;;
        *) extra+=("$1"); shift ;;
    esac
done
case "$profile" in
    release | dev) ;;
    *) echo "build-wheel: unknown profile '$profile' (known: release, dev)" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '== %s\n' "$*"; }
die() {
    printf 'build-wheel: %s\n' "$*" >&2
    exit 1
}
command -v cargo >/dev/null || die "cargo is not on PATH (install Rust: https://rustup.rs)"

# maturin, pinned: the version pyproject.toml's build-system names (one place to change).
maturin_version=$(sed -n 's/.*"maturin==\([0-9][0-9.]*\)".*/\1/p' pyproject.toml | head -n 1)
[ -n "$maturin_version" ] || die "pyproject.toml does not pin maturin==VERSION in build-system.requires"
venv=${WHEEL_VENV:-$root/.venv-build}
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv" || die "cannot create a venv at $venv"
fi
if [ "$("$venv/bin/maturin" --version 2>/dev/null)" != "maturin $maturin_version" ]; then
    step "maturin $maturin_version into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "maturin==$maturin_version" ||
        die "pip could not install maturin==$maturin_version (network or index?)"
fi

# The wheel's .data directory (pyproject.toml: [tool.maturin] data): data/ is installed
# under the environment's prefix. Only the suites (directories with a model.onnx), not
# models/make_models.py or models/README.md.
stage=target/wheel-data
step "staging the demo suites in $stage/data/share/parity/models"
rm -rf "$stage"
mkdir -p "$stage/data/share/parity/models"
suites=()
for dir in models/*/; do
    [ -f "$dir/model.onnx" ] || continue
    cp -R "$dir" "$stage/data/share/parity/models/"
    suites+=("$(basename "$dir")")
done
[ ${#suites[@]} -gt 0 ] || die "no suites (models/*/model.onnx) to stage"
step "suites: ${suites[*]}"

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
mkdir -p dist
rm -f dist/parity-"$version"-*.whl
step "maturin build --profile $profile --strip ${extra[*]}"
start=$(date +%s)
"$venv/bin/maturin" build --locked --profile "$profile" --strip --out dist "${extra[@]}"
took=$(($(date +%s) - start))

wheels=(dist/parity-"$version"-*.whl)
[ -f "${wheels[0]}" ] || die "maturin wrote no dist/parity-$version-*.whl"
wheel=${wheels[0]}
# The wheel must hold the binary and the demo suites where `parity demo` looks.
"$venv/bin/python" - "$wheel" "${suites[@]}" <<'EOF' || die "$wheel is incomplete"
import sys, zipfile
wheel, suites = sys.argv[1], sys.argv[2:]
names = zipfile.ZipFile(wheel).namelist()
need = [n for n in names if n.endswith(".data/scripts/parity")][:1] or ["<.data/scripts/parity>"]
need += [f"/data/share/parity/models/{s}/model.onnx" for s in suites]
missing = [m for m in need if not any(n.endswith(m) or n == m for n in names)]
for m in missing:
    print(f"build-wheel: missing from the wheel: {m}", file=sys.stderr)
sys.exit(1 if missing else 0)
EOF
step "built in $took s: $wheel ($(du -h "$wheel" | cut -f1), $(stat -c %s "$wheel") bytes)"
echo "$wheel"
