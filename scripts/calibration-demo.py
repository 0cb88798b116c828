#!/usr/bin/env python3
"""Demonstrates `parity record --calibrate` (issue 4) and writes docs/calibration.md.

For each bundled model and each ONNX backend-test case of the conformance set
(`pytorch-converted`, `pytorch-operator`, `simple` from the onnx wheel):

1. `parity record MODEL --inputs SRC --calibrate` records goldens (ort-cpu, or
   candle-cpu where ort-cpu cannot run the model) with calibrated tolerances;
2. `parity check` of that suite on every available backend must pass;
3. for every f32 output, one golden element is moved by 1e-3 relative (its sha256 in
   parity.toml updated, so the change is a fault, not corruption): the element is the
   largest |e| at which parity's default f32 tolerance (atol 1e-5, rtol 1e-4) cannot see
   a 1e-3 relative change, |e| <= 1e-5 / (1e-3 - 1e-4) = 0.0111. The faulty suite is
   checked twice on every backend: with the calibrated tolerances (must fail) and with
   `--atol 1e-5 --rtol 1e-4`, the defaults (which pass it).

An output has no such element when all its values are larger than 0.0111 (the default
catches a 1e-3 fault there too) or smaller than the calibrated tolerance's own
threshold atol / (1e-3 - rtol) (there a 1e-3 change is within the natural error, so no
honest tolerance sees it). Both thresholds are printed for every output.

Usage: scripts/calibration-demo.sh [--parity BIN] [--out docs/calibration.md]
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parent.parent
FAULT = 1e-3
DEFAULT_ATOL, DEFAULT_RTOL = 1e-5, 1e-4
DEFAULT_THRESHOLD = DEFAULT_ATOL / (FAULT - DEFAULT_RTOL)


def run(cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


def check(parity, suite, *extra):
    """Exit code and per-backend verdicts of `parity check SUITE` on every backend."""
    p = run([parity, "check", suite, "--format", "json", *extra])
    verdicts = {}
    try:
        report = json.loads(p.stdout)
        for case in report["cases"]:
            b = case["backend"]
            worst = {"pass": 0, "fail": 1, "error": 2}[case["verdict"]]
            verdicts[b] = max(verdicts.get(b, 0), worst)
    except (json.JSONDecodeError, KeyError):
        pass
    return p.returncode, verdicts, p.stderr.strip()


def goldens(suite, k):
    """All data sets' expected output k, as (file, array, name)."""
    out = []
    for d in sorted(suite.glob("test_data_set_*")):
        f = d / f"output_{k}.pb"
        t = onnx.TensorProto()
        t.ParseFromString(f.read_bytes())
        out.append((f, numpy_helper.to_array(t), t.name))
    return out


def inject(suite, fault_dir, k):
    """Copies the suite and moves one golden element of output k by FAULT relative.
    Returns (|e|, file, index) or None when no element is below the default threshold."""
    best = None
    for f, a, _ in goldens(suite, k):
        flat = np.abs(a.astype(np.float64)).ravel()
        ok = np.where((flat <= DEFAULT_THRESHOLD * 0.9) & (flat > 0))[0]
        if ok.size:
            i = ok[np.argmax(flat[ok])]
            if best is None or flat[i] > best[0]:
                best = (float(flat[i]), f, int(i))
    if best is None:
        return None
    mag, f, i = best
    shutil.copytree(suite, fault_dir)
    target = fault_dir / f.relative_to(suite)
    t = onnx.TensorProto()
    t.ParseFromString(target.read_bytes())
    a = numpy_helper.to_array(t).copy()
    flat = a.reshape(-1)
    flat[i] = flat[i] * np.float32(1 + FAULT)
    new = numpy_helper.from_array(a, t.name)
    data = new.SerializeToString()
    target.write_bytes(data)
    key = str(target.relative_to(fault_dir))
    manifest = fault_dir / "parity.toml"
    text = manifest.read_text()
    old = tomllib.loads(text)["files"][key]
    manifest.write_text(text.replace(old, hashlib.sha256(data).hexdigest()))
    return mag, key, i


def demo(parity, name, model, source, work, backend):
    """Records MODEL with calibration from `source` (record's input arguments), checks it,
    and injects the fault into each f32 output."""
    suite = work / name
    rec = run([parity, "record", model, "--out", suite, *source, "--calibrate", "--backend", backend, "-q"])
    if rec.returncode != 0:
        lines = rec.stderr.strip().splitlines()
        why = lines[-1].replace(f"{ROOT}/", "") if lines else f"exit {rec.returncode}"
        return {"name": name, "error": why}
    manifest = tomllib.loads((suite / "parity.toml").read_text())
    rc, verdicts, err = check(parity, suite)
    # Backends that cannot run the model at all (unsupported op or dtype: verdict error)
    # are left out of the fault checks; the unchanged check's verdict names them.
    running = [arg for b, v in verdicts.items() if v != 2 for arg in ("--backend", b)]
    row = {
        "name": name,
        "golden": backend,
        "oracle": (manifest["calibration"]["oracle"] or ["none"])[0],
        "check_rc": rc,
        "check": verdicts,
        "check_err": err,
        "outputs": [],
    }
    model_proto = onnx.load(str(model), load_external_data=False)
    for k, out in enumerate(model_proto.graph.output):
        if out.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            continue
        tol = manifest["outputs"].get(out.name)
        if tol is None:
            continue
        atol, rtol = tol["atol"], tol["rtol"]
        threshold = atol / (FAULT - rtol) if rtol < FAULT else float("inf")
        entry = {"output": out.name, "atol": atol, "rtol": rtol, "threshold": threshold}
        fault_dir = work / f"{name}-fault-{k}"
        injected = inject(suite, fault_dir, k) if threshold < DEFAULT_THRESHOLD and running else None
        if injected is None or injected[0] <= threshold:
            entry["fault"] = None
            if injected is not None:
                entry["smallest_default_miss"] = injected[0]
        else:
            mag, key, i = injected
            cal_rc, cal, _ = check(parity, fault_dir, *running)
            def_rc, dft, _ = check(parity, fault_dir, *running, "--atol", DEFAULT_ATOL, "--rtol", DEFAULT_RTOL)
            entry["fault"] = {
                "magnitude": mag,
                "file": key,
                "index": i,
                "calibrated_rc": cal_rc,
                "calibrated": cal,
                "default_rc": def_rc,
                "default": dft,
            }
        row["outputs"].append(entry)
    return row


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def verdict_word(v):
    return {0: "pass", 1: "fail", 2: "error"}.get(v, "?")


def per_backend(verdicts):
    return ", ".join(f"{b} {verdict_word(v)}" for b, v in verdicts.items())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parity", default=None)
    ap.add_argument("--out", default=str(ROOT / "docs/calibration.md"))
    args = ap.parse_args()
    built = [p for p in [ROOT / "target/release/parity", ROOT / "target/debug/parity"] if p.exists()]
    # The most recently built binary, so a stale release build is not demonstrated.
    parity = args.parity or max(built, key=lambda p: p.stat().st_mtime, default=None)
    if parity is None:
        sys.exit("calibration-demo: build parity first (cargo build --release)")
    data = Path(onnx.__file__).parent / "backend/test/data"
    # (group, name, model, record's input arguments): the bundled models with their own
    # inputs and with 8 generated data sets of batch 16 (more elements near zero, where the
    # default tolerance is blind); each conformance case with its stored inputs.
    cases = []
    for m in ["mlp", "cnn", "transformer"]:
        src = ROOT / "models" / m
        cases.append(("bundled", m, src / "model.onnx", ["--inputs", src]))
        dims = ["--dim", "batch=16"] + (["--dim", "seq=16"] if m == "transformer" else [])
        generated = ["--random", "8", "--seed", "7", *dims]
        cases.append(("bundled", f"{m} (random 8 x batch 16)", src / "model.onnx", generated))
    for group in ["pytorch-converted", "pytorch-operator", "simple"]:
        for d in sorted((data / group).iterdir()):
            if (d / "model.onnx").exists():
                cases.append((group, d.name, d / "model.onnx", ["--inputs", d]))

    rows = []
    with tempfile.TemporaryDirectory(prefix="parity-calibration-") as tmp:
        work = Path(tmp)
        for n, (group, name, model, source) in enumerate(cases):
            row = None
            for backend in ["ort-cpu", "candle-cpu"]:
                row = demo(parity, f"{n}-{backend}", model, source, work, backend)
                if "error" not in row:
                    break
            row["group"], row["short"] = group, name
            rows.append(row)
            print(json.dumps(row), flush=True)

    write_doc(Path(args.out), rows, parity)


def write_doc(path, rows, parity):
    version = run([parity, "--version"]).stdout.strip()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    recorded = [r for r in rows if "error" not in r]
    passed = [r for r in recorded if 1 not in r["check"].values() and 0 in r["check"].values()]
    outputs = [o for r in recorded for o in r["outputs"]]
    faults = [o for o in outputs if o.get("fault")]
    caught = [o for o in faults if o["fault"]["calibrated"] and all(v == 1 for v in o["fault"]["calibrated"].values())]
    missed_by_default = [o for o in faults if o["fault"]["default"] and all(v == 0 for v in o["fault"]["default"].values())]
    L = [
        "# Calibrated tolerances: demonstration",
        "",
        f"Generated by `scripts/calibration-demo.sh` on {now} with {version}; "
        f"{cpu_model()}, {os.cpu_count()} CPUs. See docs/suites.md "
        "(\"Calibrated tolerances\") for what `parity record --calibrate` does.",
        "",
        "For each model: `parity record MODEL --inputs SRC --calibrate` (goldens from ort-cpu, or candle-cpu "
        "where ort-cpu cannot run the model), then `parity check` on every backend. Then, per f32 output, one "
        f"golden element is moved by {FAULT:g} relative: the largest |e| ≤ 0.9 × {DEFAULT_THRESHOLD:.4f}, where "
        f"the default f32 tolerance (atol {DEFAULT_ATOL:g}, rtol {DEFAULT_RTOL:g}) cannot see it. The faulty suite is "
        "checked with the calibrated tolerances and with `--atol 1e-5 --rtol 1e-4`.",
        "",
        "## Totals",
        "",
        f"- Models: {len(rows)}; recorded with calibration: {len(recorded)}; "
        f"the others cannot be run by ort-cpu or candle-cpu (strings, sequences, training ops).",
        f"- Calibrated suites passing `parity check` on every backend that runs them: **{len(passed)} of {len(recorded)}** "
        "(a backend that cannot run a model at all, for an unsupported op or dtype, shows `error`; "
        "docs/conformance.md has the reasons).",
        f"- f32 outputs: {len(outputs)}; with an element in the window where the default misses a {FAULT:g} fault "
        f"and the calibrated tolerance can see it: {len(faults)}.",
        f"- Of those, the fault is caught by the calibrated tolerances on every backend: **{len(caught)} of {len(faults)}**; "
        f"missed by the default tolerance: **{len(missed_by_default)} of {len(faults)}**.",
        "",
        "`threshold` is the smallest |e| at which the calibrated tolerance flags a 1e-3 relative change, "
        "atol / (1e-3 − rtol); the default's is 0.0111.",
        "",
        "| model | golden | oracle | check (calibrated, unchanged) | output | atol | rtol | threshold | faulty element | check (calibrated, fault) | check (default, fault) |",
        "|---|---|---|---|---|---:|---:|---:|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            continue
        for o in r["outputs"] or [None]:
            cells = [
                f"{r['group']}/{r['short']}",
                r["golden"],
                r["oracle"],
                per_backend(r["check"]),
            ]
            if o is None:
                cells += ["(no f32 output)", "", "", "", "", "", ""]
            else:
                f = o.get("fault")
                fault = "none in window" if f is None else f"{f['file']}[{f['index']}], abs {f['magnitude']:.3g}"
                cal = "" if f is None else per_backend(f["calibrated"])
                dft = "" if f is None else per_backend(f["default"])
                cells += [o["output"], f"{o['atol']:.2g}", f"{o['rtol']:.2g}", f"{o['threshold']:.3g}", fault, cal, dft]
            L.append("| " + " | ".join(cells) + " |")
    errors = [r for r in rows if "error" in r]
    if errors:
        L += ["", "## Not recorded", ""]
        L += [f"- `{r['group']}/{r['short']}`: {r['error']}" for r in errors]
    path.write_text("\n".join(L) + "\n")
    print(f"wrote {path}: {len(passed)}/{len(recorded)} calibrated suites pass; faults caught {len(caught)}/{len(faults)}, default missed {len(missed_by_default)}/{len(faults)}")


if __name__ == "__main__":
    main()
