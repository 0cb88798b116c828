#!/usr/bin/env python3
"""Throughput of `parity compare` against numpy.allclose and plain memory copy.

Writes 64 Mi-element f32 .npy files into a temporary directory (a reference and two
candidates: one with a few perturbed elements, one where every element also differs within
tolerance), then times, side by side on this machine, for each candidate:
  (a) the whole `parity compare a.npy b.npy --format json` process,
  (b) np.load of both files plus np.allclose, in this Python process,
and once:
  (c) np.copyto of a 256 MiB buffer (the memory-bandwidth yardstick),
runs `cargo bench --bench compare` (criterion) unless --no-cargo-bench, and writes
docs/compare-throughput.md (and only that file).

Bandwidth convention: GB/s = bytes *read* / seconds, GB = 1e9 bytes. A compare reads both
files (2 x 256 MiB); a copy reads its source (256 MiB), so the two rates are comparable.

Exit status: 0 when the report was written; 1 when a measurement could not be made
(no parity binary, parity's verdict or mismatch count is not the expected one, cargo
bench failed).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHAPE = (8192, 8192)  # 64 Mi f32 elements, 256 MiB per file
PERTURBED = 7  # elements of each candidate moved far outside tolerance
# Candidates compared with a.npy: the same values but for the perturbed elements, and every
# value also scaled by 1 + 1e-6 (within tolerance), which leaves no element bit-identical.
CANDIDATES = {"b.npy": "few elements differ", "c.npy": "every element differs"}
# parity's defaults for f32, passed explicitly so numpy uses the very same test.
RTOL, ATOL = 1e-4, 1e-5
COPY_BYTES = 256 * 2**20
TARGET_SPEEDUP, TARGET_FRACTION = 5.0, 0.5


class HarnessError(Exception):
    """A figure could not be measured."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parity", type=Path, default=REPO / "target/release/parity",
                        help="parity binary (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=5,
                        help="timed runs of each measurement, after one warm-up (default: %(default)s)")
    parser.add_argument("--tmpdir", type=Path, default=None,
                        help="where to write the two .npy files (default: the system temp dir)")
    parser.add_argument("--out", type=Path, default=REPO / "docs/compare-throughput.md",
                        help="Markdown report to write (default: %(default)s)")
    parser.add_argument("--no-cargo-bench", dest="cargo_bench", action="store_false",
                        help="skip `cargo bench --bench compare`")
    return parser.parse_args()


def write_inputs(directory: Path) -> tuple[Path, list[Path]]:
    """a.npy (seeded standard normals) and the CANDIDATES, each with PERTURBED elements
    moved by 1.0 at the same seeded positions."""
    rng = np.random.default_rng(20261125)
    a = rng.standard_normal(SHAPE, dtype=np.float32)
    flat = rng.choice(a.size, size=PERTURBED, replace=False)
    np.save(directory / "a.npy", a)
    for name, values in zip(CANDIDATES, (a.copy(), a * np.float32(1 + 1e-6))):
        values.reshape(-1)[flat] += 1.0
        np.save(directory / name, values)
    return directory / "a.npy", [directory / name for name in CANDIDATES]


def timed(action, runs: int) -> list[float]:
    """Seconds of each of `runs` calls of `action`, after one untimed warm-up call."""
    action()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def parity_command(parity: Path, a: Path, b: Path) -> list[str]:
    return [str(parity), "compare", str(a), str(b), "--rtol", f"{RTOL:g}", "--atol", f"{ATOL:g}",
            "--format", "json"]


def verify_parity(parity: Path, a: Path, b: Path) -> None:
    """One compare whose report must find exactly the perturbed elements (exit 1)."""
    if not os.access(parity, os.X_OK):
        raise HarnessError(f"{parity}: no parity binary (build it with `cargo build --release`)")
    proc = subprocess.run(parity_command(parity, a, b), capture_output=True, text=True, cwd=REPO,
                          check=False)
    if proc.returncode != 1:
        raise HarnessError(f"parity compare exited {proc.returncode}, expected 1: {proc.stderr.strip()}")
    mismatched = sum(o["mismatched"] for c in json.loads(proc.stdout)["cases"] for o in c["outputs"])
    if mismatched != PERTURBED:
        raise HarnessError(f"parity compare found {mismatched} mismatches, expected {PERTURBED}")


def time_parity(parity: Path, a: Path, b: Path, runs: int) -> list[float]:
    """The whole `parity compare` process, report to /dev/null; every run must exit 1."""
    command = parity_command(parity, a, b)

    def run():
        code = subprocess.run(command, stdout=subprocess.DEVNULL, cwd=REPO, check=False).returncode
        if code != 1:
            raise HarnessError(f"parity compare exited {code} in a timed run, expected 1")

    return timed(run, runs)


def time_process_start(parity: Path, runs: int) -> list[float]:
    """`parity --version`: the fixed cost of starting the process."""
    return timed(lambda: subprocess.run([str(parity), "--version"], stdout=subprocess.DEVNULL,
                                        check=True), runs)


def verify_numpy(a: Path, b: Path) -> None:
    x, y = np.load(a), np.load(b)
    mismatched = int(np.count_nonzero(~np.isclose(y, x, rtol=RTOL, atol=ATOL)))
    if mismatched != PERTURBED:
        raise HarnessError(f"numpy found {mismatched} mismatches, expected {PERTURBED}")


def time_numpy_with_reads(a: Path, b: Path, runs: int) -> list[float]:
    return timed(lambda: np.allclose(np.load(b), np.load(a), rtol=RTOL, atol=ATOL), runs)


def time_numpy_in_memory(a: Path, b: Path, runs: int) -> list[float]:
    x, y = np.load(a), np.load(b)
    return timed(lambda: np.allclose(y, x, rtol=RTOL, atol=ATOL), runs)


def time_copy(runs: int, threads: int) -> list[float]:
    """np.copyto of COPY_BYTES, split into `threads` equal slices copied concurrently
    (numpy releases the GIL while copying)."""
    src = np.random.default_rng(1).random(COPY_BYTES // 4, dtype=np.float32)
    dst = np.empty_like(src)
    if threads == 1:
        return timed(lambda: np.copyto(dst, src), runs)
    bounds = np.linspace(0, src.size, threads + 1, dtype=np.int64)
    slices = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return timed(lambda: list(pool.map(lambda s: np.copyto(dst[s], src[s]), slices)), runs)


def cargo_bench() -> tuple[str, list[str]]:
    """Runs criterion's `compare` bench; returns the command and its result lines."""
    command = ["cargo", "bench", "--bench", "compare"]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise HarnessError(f"`{shlex.join(command)}` exited {proc.returncode}:\n{tail}")
    return (cargo_env() + shlex.join(command), criterion_estimates(proc.stdout))


def criterion_estimates(output: str) -> list[str]:
    """`name: time [lo mid hi]  thrpt [lo mid hi]` per benchmark, from criterion's stdout,
    leaving out the `change:` block (a comparison with whatever run came before)."""
    results, name, in_change = {}, None, False
    for line in output.splitlines():
        if line and not line[0].isspace():
            name, in_change = line.split()[0], False
        elif line.strip().startswith("change:"):
            in_change = True
        measure = re.search(r"(time|thrpt):\s+\[(.*)\]", line)
        if name and measure and not in_change:
            results.setdefault(name, []).append(f"{measure.group(1)} [{measure.group(2).strip()}]")
    return [f"{name}: {'  '.join(measures)}" for name, measures in results.items()]


def cargo_env() -> str:
    """The CARGO_TARGET_DIR the bench ran with, as a command prefix (empty if unset)."""
    target = os.environ.get("CARGO_TARGET_DIR")
    return f"CARGO_TARGET_DIR={target} " if target else ""


def cores() -> int:
    return len(os.sched_getaffinity(0))


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(load_at_start: str) -> list[str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    mem_kib = int(re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M).group(1))
    return [
        f"- CPU: {model.group(1) if model else platform.machine()}, "
        f"{cores()} cores available ({os.cpu_count()} logical in the machine)",
        f"- Memory: {mem_kib / 2**20:.1f} GiB; OS: {platform.system()} {platform.release()}",
        f"- Load average (1, 5, 15 min): {load_at_start} before the measurements, "
        f"{load_average()} after (the machine is shared; figures move with its load)",
        f"- Python {platform.python_version()}, numpy {np.__version__}",
    ]


def gbps(bytes_read: int, seconds: float) -> float:
    return bytes_read / seconds / 1e9


def row(label: str, command: str, times: list[float], bytes_read: int) -> str:
    best, median = min(times), statistics.median(times)
    return (f"| {label} | `{command}` | {best:.3f} | {median:.3f} | {bytes_read / 2**20:.0f} MiB | "
            f"{gbps(bytes_read, best):.2f} |")


def render(args, parity_version: str, load_at_start: str, figures: dict,
           bench: tuple[str, list[str]] | None) -> str:
    file_bytes = int(np.prod(SHAPE)) * 4
    read = 2 * file_bytes
    best = {k: min(v) for k, v in figures.items()}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["scripts/compare-throughput.sh", *sys.argv[1:]])
    rows, ratios = [], []
    for name, what in CANDIDATES.items():
        compare = shlex.join(parity_command(Path("parity"), Path("a.npy"), Path(name))) + " > /dev/null"
        rows += [
            row(f"(a) parity compare, whole process; {what}", compare, figures[("parity", name)], read),
            row(f"(b) numpy load both + allclose; {what}",
                f"np.allclose(np.load('{name}'), np.load('a.npy'), rtol, atol)",
                figures[("numpy", name)], read),
            row(f"numpy allclose only, arrays in memory; {what}",
                f"np.allclose({name[0]}, a, rtol, atol)", figures[("numpy_memory", name)], read),
        ]
        speedup = best[("numpy", name)] / best[("parity", name)]
        parity_rate = gbps(read, best[("parity", name)])
        fraction = parity_rate / gbps(COPY_BYTES, best["copy"])
        fraction_threads = parity_rate / gbps(COPY_BYTES, best["copy_threads"])
        ratios += [
            f"- {what} (`{name}`): parity speed-up over numpy (load + allclose time / parity "
            f"time) **{speedup:.1f}x** (target ≥ {TARGET_SPEEDUP:g}x: "
            f"{'met' if speedup >= TARGET_SPEEDUP else 'not met'}); parity reads at "
            f"**{fraction:.0%}** of copy bandwidth (target ≥ {TARGET_FRACTION:.0%}: "
            f"{'met' if fraction >= TARGET_FRACTION else 'not met'}), {fraction_threads:.0%} of "
            f"the {cores()}-thread copy.",
        ]
    lines = [
        "# Compare throughput",
        "",
        "The speed of parity's own comparison engine: `parity compare` on large tensors, "
        "measured against numpy and against the machine's memory-copy bandwidth, and the "
        "criterion benchmarks of the engine in `benches/compare.rs` "
        "(`cargo bench --bench compare`). The other performance figures are in "
        "[performance.md](performance.md).",
        "",
        f"Every figure below comes from one run of `{command}` on {now} "
        f"(parity {parity_version}). Regenerate this file with that command after "
        "`scripts/setup.sh` and `cargo build --release`.",
        "",
        "## Machine",
        "",
        *machine(load_at_start),
        "",
        "## Compare throughput",
        "",
        f"Inputs: .npy files of {SHAPE[0]} x {SHAPE[1]} f32 ({file_bytes / 2**20:.0f} MiB "
        f"each). `a.npy` holds seeded standard normals. `b.npy` is a copy with {PERTURBED} "
        "elements moved by 1.0: the case asked for, where almost every element is "
        "bit-identical. `c.npy` also scales every element by 1 + 1e-6 (within tolerance), so no "
        "element is identical: what a real candidate from another runtime looks like. Both "
        f"tools must report exactly {PERTURBED} mismatches for each (checked before timing). "
        f"Test: `|b - a| <= {ATOL:g} + {RTOL:g} * |a|` (parity's f32 default, passed "
        "explicitly to both).",
        "",
        f"Each measurement runs once untimed to warm up, then {args.runs} times; so the files are "
        "read from the page cache in every timed run, never from disk. Best and median are "
        "wall-clock seconds. GB/s counts bytes *read* (GB = 10^9 B): a compare reads "
        "both files, a copy reads its source once (its equal-sized write is not counted), so the "
        "rates compare directly.",
        "",
        "| measurement | command | best s | median s | bytes read | GB/s (best) |",
        "|---|---|---:|---:|---:|---:|",
        *rows,
        row("(c) memory copy", "np.copyto(dst, src)  # 256 MiB f32", figures["copy"], COPY_BYTES),
        row(f"memory copy, {cores()} threads", f"np.copyto on {cores()} slices in parallel",
            figures["copy_threads"], COPY_BYTES),
        f"| parity process start | `parity --version` | {best['start']:.4f} | "
        f"{statistics.median(figures['start']):.4f} | – | – |",
        "",
        *ratios,
        "",
        "Notes:",
        "",
        "- (a) is the whole process: start-up, reading and validating both files, the "
        "comparison, and writing the JSON report (to /dev/null through stdout). parity does not "
        "report the time of the comparison alone yet; the criterion benchmark "
        "`cargo bench --bench compare` measures it.",
        "- `b.npy` may favour parity (almost every element is bit-identical to `a.npy`); "
        "`c.npy`, with no identical element, is closer to comparing the outputs of two "
        "runtimes. Both are measured so any difference shows; on a loaded machine it is "
        "within run-to-run noise.",
        "- (b) and (c) run inside one Python process, so they include no interpreter start-up. "
        "np.allclose is element-wise ufuncs on one thread; it does not call BLAS, so "
        "OPENBLAS_NUM_THREADS and similar settings do not change it.",
        "- (c) is numpy's single-threaded `np.copyto`, the yardstick the target is set against; "
        f"parity's compare runs on every core (rayon), so the {cores()}-thread copy is shown as "
        "well. Both copies' destinations are touched by the warm-up run, so no page faults are timed.",
    ]
    if bench:
        lines += ["", "## Criterion: `benches/compare.rs`", "",
                  f"Command: `{bench[0]}`. Throughput counts the bytes of both tensors for "
                  "`compare` and the source for `memcpy` (same convention as above; criterion's "
                  "GiB/s are 2^30 B).", "", "```", *bench[1], "```"]
    return "\n".join(lines) + "\n"


def parity_version(parity: Path) -> str:
    out = subprocess.run([str(parity), "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().removeprefix("parity ")


def main() -> int:
    args = parse_args()
    load_at_start = load_average()
    try:
        with tempfile.TemporaryDirectory(prefix="parity-throughput-", dir=args.tmpdir) as tmp:
            a, candidates = write_inputs(Path(tmp))
            figures = {}
            for b in candidates:
                verify_parity(args.parity, a, b)
                verify_numpy(a, b)
                figures[("parity", b.name)] = time_parity(args.parity, a, b, args.runs)
                figures[("numpy", b.name)] = time_numpy_with_reads(a, b, args.runs)
                figures[("numpy_memory", b.name)] = time_numpy_in_memory(a, b, args.runs)
            figures["copy"] = time_copy(args.runs, 1)
            figures["copy_threads"] = time_copy(args.runs, cores())
            figures["start"] = time_process_start(args.parity, args.runs)
        bench = cargo_bench() if args.cargo_bench else None
    except HarnessError as error:
        print(f"compare-throughput: {error}", file=sys.stderr)
        return 1
    args.out.write_text(render(args, parity_version(args.parity), load_at_start, figures, bench))
    for key, times in figures.items():
        label = " ".join(key) if isinstance(key, tuple) else key
        print(f"{label}: best {min(times):.4f} s, median {statistics.median(times):.4f} s", file=sys.stderr)
    print(f"compare-throughput: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
