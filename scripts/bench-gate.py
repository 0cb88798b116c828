#!/usr/bin/env python3
"""Demonstrates the baseline gate of `parity bench` (issue 5) and prints a Markdown report.

1. `parity bench SUITE --save-baseline base.json` (ort-cpu, single-stream, 1 thread);
2. the unchanged model re-benched against the baseline `--reruns` times (noise only:
   must never exit 1);
3. a slower variant (scripts/make-slow-variant.py: extra exact Mul nodes, same name and
   outputs) against the same baseline: must exit 1.

Usage: scripts/bench-gate.sh [--parity BIN] [--suite models/mlp] [--reruns 10] [--pairs 10]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(parity, suite, extra, args):
    cmd = [str(parity), "bench", str(suite), "--backend", args.backend, "--threads", "1",
           "--min-duration", str(args.min_duration), "--min-queries", "1000", "--warmup", "100",
           "--format", "json", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode == 2:
        sys.exit(f"bench-gate: {' '.join(cmd)} failed: {p.stderr.strip()}")
    return p.returncode, json.loads(p.stdout), cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parity", default=None)
    ap.add_argument("--suite", default=str(ROOT / "models/mlp"))
    ap.add_argument("--backend", default="ort-cpu")
    ap.add_argument("--reruns", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=10)
    ap.add_argument("--min-duration", type=float, default=2.0)
    args = ap.parse_args()
    built = [p for p in [ROOT / "target/release/parity", ROOT / "target/debug/parity"] if p.exists()]
    parity = Path(args.parity) if args.parity else max(built, key=lambda p: p.stat().st_mtime, default=None)
    if parity is None:
        sys.exit("bench-gate: build parity first (cargo build --release)")
    suite = Path(args.suite)
    with tempfile.TemporaryDirectory(prefix="parity-gate-") as tmp:
        tmp = Path(tmp)
        base = tmp / "base.json"
        rc, report, cmd = bench(parity, suite, ["--save-baseline", base], args)
        r = report["results"][0]
        rows = [("baseline", rc, r["latency_ms"]["p50"], r["stability"]["spread"], None, None)]
        print(f"# {' '.join(map(str, cmd))}", file=sys.stderr)
        for i in range(args.reruns):
            rc, report, _ = bench(parity, suite, ["--baseline", base], args)
            g = report["baseline"]["comparisons"][0]
            rows.append((f"rerun {i + 1}", rc, g["current"], report["results"][0]["stability"]["spread"], g["slowdown"], g["limit"]))
            print(f"rerun {i + 1}: exit {rc}, slowdown {g['slowdown']:+.1%}, limit {g['limit']:.1%}", file=sys.stderr)
        variant = tmp / "variant" / suite.name
        subprocess.run([sys.executable, str(ROOT / "scripts/make-slow-variant.py"), str(suite), str(variant),
                        "--pairs", str(args.pairs)], check=True, capture_output=True)
        rc, report, _ = bench(parity, variant, ["--baseline", base], args)
        g = report["baseline"]["comparisons"][0]
        rows.append((f"variant (+{2 * args.pairs} Mul nodes)", rc, g["current"], report["results"][0]["stability"]["spread"], g["slowdown"], g["limit"]))
        env = report["environment"]
    noise_exits = [row[1] for row in rows[1:-1]]
    print(f"Machine: {env['cpu']}, {env['os']}; parity {env['parity']}; backend {args.backend}, "
          f"single-stream, 1 thread, ≥ {args.min_duration} s and ≥ 1000 queries per run; "
          f"gate: slowdown > max(5%, 3 × noise).\n")
    print("| run | exit | p50 ms | window spread | slowdown vs baseline | limit |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rc, p50, spread, slow, limit in rows:
        fmt = lambda v: "" if v is None else f"{v:+.1%}"
        print(f"| {name} | {rc} | {p50:.5f} | {spread:.1%} | {fmt(slow)} | {'' if limit is None else f'{limit:.1%}'} |")
    print(f"\nNoise-only reruns exiting 1: **{noise_exits.count(1)} of {len(noise_exits)}**; "
          f"the slower variant exits **{rows[-1][1]}** ({rows[-1][4]:+.0%}).")


if __name__ == "__main__":
    main()
