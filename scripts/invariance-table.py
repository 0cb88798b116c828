#!/usr/bin/env python3
"""Summarises `parity invariance --format json` reports as the Markdown table of
docs/invariance.md: per model, backend and check, how many data sets were bitwise,
within tolerance or out, and the largest deviation (max abs error and share of
tolerance used, with the variant that gave it); then what did not apply.

Usage: scripts/invariance-table.py REPORT.json [REPORT.json ...]
"""

import json
import sys
from pathlib import Path

CHECKS = ["repeat", "session", "threads", "batch", "optimization"]


def cell(results):
    """`bitwise 3/3`, or the counts and the worst deviation."""
    n = len(results)
    counts = {o: sum(1 for r in results if r["outcome"] == o) for o in ("bitwise", "within", "out")}
    errors = sum(1 for r in results if r["outcome"] is None)
    if counts["bitwise"] == n:
        return f"bitwise {n}/{n}"
    parts = [f"{k} {v}" for k, v in counts.items() if v] + ([f"error {errors}"] if errors else [])
    worst = None
    for r in results:
        for o in r["outputs"]:
            if o["outcome"] == "bitwise":
                continue
            used = o.get("tolerance_used")
            key = ({"within": 1, "out": 2}[o["outcome"]], used if used is not None else float("inf"))
            if worst is None or key > worst[0]:
                worst = (key, o)
    if worst:
        o = worst[1]
        used = o.get("tolerance_used")
        share = "unbounded" if used is None else f"{used * 100:.2g}%"
        parts.append(f"max abs {o['max_abs_err']:.2g} ({share} of tol., {o['variant']})")
    return ", ".join(parts)


def main(paths):
    rows = {}
    not_applicable = set()
    for path in paths:
        report = json.loads(Path(path).read_text())
        for r in report["results"]:
            model = Path(r["suite"]).name
            rows.setdefault((model, r["backend"]), {}).setdefault(r["check"], []).append(r)
        for n in report["not_applicable"]:
            suite = Path(n["suite"]).name if n["suite"] else "every model"
            not_applicable.add((n["backend"], n["check"], suite, n["reason"]))
    print("| model | backend | " + " | ".join(CHECKS) + " |")
    print("|---|---|" + "---|" * len(CHECKS))
    for (model, backend), checks in rows.items():
        cells = [cell(checks[c]) if c in checks else "n/a" for c in CHECKS]
        print(f"| {model} | {backend} | " + " | ".join(cells) + " |")
    if not_applicable:
        print("\nNot applicable:\n")
        for backend, check, suite, reason in sorted(not_applicable):
            print(f"- {check} on {backend} ({suite}): {reason}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
