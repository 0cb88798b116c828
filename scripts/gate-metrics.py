#!/usr/bin/env python3
"""Dataset-level release-gate metrics of a candidate model against a suite's goldens,
computed independently of parity (numpy + onnxruntime), to cross-check what parity reports
(issue 18).

    .venv/bin/python scripts/gate-metrics.py SUITE_DIR CANDIDATE.onnx --output NAME
        [--axis -1] [--k 5] [--labels SUITE_DIR/labels.csv]

SUITE_DIR is a suite written by `parity record`: model.onnx, and data sets
test_data_set_N/input_K.pb + output_K.pb (ONNX TensorProto; K in the order of model.onnx's
inputs/outputs) or test_data_set_N.npz (inputs and outputs keyed by name). For each data
set in numeric order of N: e = the golden tensor of output NAME, a = that output of
CANDIDATE run by onnxruntime (CPUExecutionProvider, default session options) on the data
set's inputs; both as float64. Over all data sets (elements flattened in C order):

  top1_agreement   rows = every position except along --axis; per row argmax of a and of
                   e (first maximum on ties); value = equal rows / rows
  topk_agreement   per row, e's top-1 class is among a's k largest (ties: lower index)
  label_accuracy   with labels: per data set (its output must hold one row, e.g. [1, C]),
                   argmax(a) == label; reference_label_accuracy: argmax(e) == label
  (each rate: value, successes, n and a Wilson 95% interval [lo, hi], z = 1.959963984540054)
  sqnr_db          10 log10(sum e^2 / sum (a-e)^2)
  psnr_db          10 log10(R^2 / MSE), R = max(e) - min(e) over every element of every
                   data set, MSE = sum (a-e)^2 / N
  cosine_mean/min  per data set sum(a e) / sqrt(sum a^2 sum e^2) (1 when both are all
                   zero, 0 when one is), mean and minimum over data sets
  mean_abs_err     sum |a-e| / N; max_abs_err
  elements         N

The same metrics per slice (labels.csv's `slice` column), and `disparity`: per metric,
max - min of the slices' values (a rate's `value`).

labels.csv: header `case,label,slice` (`slice` optional): `test_data_set_N`, the integer
class index of the true label on the output's class axis, a slice name. Default:
SUITE_DIR/labels.csv when it exists. Every data set must have a row.

Output: one JSON object on stdout, {"output", "data_sets", "overall", "slices",
"disparity"} (slices/disparity empty without slices); floats are Python's repr (shortest
round-tripping, full float64); a non-finite value (sqnr when a == e everywhere, psnr when
MSE is 0, a disparity between two infinite values) is written as the string "inf", "-inf"
or "nan", so that the output stays strict JSON.

Exit status: 0 printed; 2 bad arguments, a suite or labels file that cannot be read, or a
candidate that does not run or lacks the output.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

Z = 1.959963984540054
DATA_SET = re.compile(r"^test_data_set_(\d+)(\.npz)?$")


def die(msg: str) -> None:
    print(f"gate-metrics: {msg}", file=sys.stderr)
    sys.exit(2)


def model_io(path: str) -> tuple[list[str], list[str]]:
    m = onnx.load(path, load_external_data=False)
    init = {i.name for i in m.graph.initializer}
    return ([i.name for i in m.graph.input if i.name not in init],
            [o.name for o in m.graph.output])


def numbered(d: str, prefix: str, names: list[str]) -> dict[str, np.ndarray]:
    files = {}
    for f in os.listdir(d):
        m = re.fullmatch(prefix + r"_(\d+)\.pb", f)
        if m:
            files[int(m.group(1))] = os.path.join(d, f)
    out = {}
    for k in sorted(files):
        t = onnx.load_tensor(files[k])
        if k >= len(names):
            die(f"{files[k]}: the model has only {len(names)} {prefix}s")
        out[names[k]] = numpy_helper.to_array(t)  # K follows the model's order
    return out


def data_sets(suite: str, in_names: list[str], out_names: list[str]):
    """(name, inputs, goldens) per data set, in numeric order."""
    found = []
    for f in os.listdir(suite):
        m = DATA_SET.match(f)
        if m:
            found.append((int(m.group(1)), f))
    if not found:
        die(f"{suite}: no test_data_set_N data sets")
    found.sort()
    for _, f in found:
        path = os.path.join(suite, f)
        name = f.split(".")[0]
        if f.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            yield (name, {k: v for k, v in arrays.items() if k in in_names},
                   {k: v for k, v in arrays.items() if k in out_names})
        elif os.path.isdir(path):
            yield name, numbered(path, "input", in_names), numbered(path, "output", out_names)


def rate(x: int, n: int) -> dict:
    if n == 0:
        return {"value": float("nan"), "successes": 0, "n": 0, "wilson_lo": float("nan"),
                "wilson_hi": float("nan")}
    p = x / n
    denom = 1 + Z * Z / n
    center = (p + Z * Z / (2 * n)) / denom
    half = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / denom
    # The bounds at 0 and n successes are exactly 0 and 1 (the formula rounds to 1e-17
    # and 0.9999999999999999 there); parity reports the same.
    lo = 0.0 if x == 0 else max(0.0, center - half)
    hi = 1.0 if x == n else min(1.0, center + half)
    return {"value": p, "successes": x, "n": n, "wilson_lo": lo, "wilson_hi": hi}


def db(num: float, den: float) -> float:
    if den == 0:
        return float("inf") if num > 0 else float("nan")
    if num == 0:
        return float("-inf")
    return 10 * math.log10(num / den)


def topk(rows: np.ndarray, k: int) -> np.ndarray:
    """Indices of each row's k largest values, ties broken by the lower index."""
    return np.argsort(-rows, axis=1, kind="stable")[:, :k]


def metrics(cases: list[dict], k: int, with_labels: bool) -> dict:
    e_all = np.concatenate([c["e"].ravel() for c in cases])
    a_all = np.concatenate([c["a"].ravel() for c in cases])
    ea = np.concatenate([c["e_rows"] for c in cases])
    aa = np.concatenate([c["a_rows"] for c in cases])
    top_e, top_a = np.argmax(ea, axis=1), np.argmax(aa, axis=1)
    in_k = (topk(aa, k) == top_e[:, None]).any(axis=1)
    d = a_all - e_all
    sse = float(np.sum(d * d))
    n = e_all.size
    r = float(e_all.max() - e_all.min())
    mse = sse / n
    cos = []
    for c in cases:
        a, e = c["a"].ravel(), c["e"].ravel()
        aa2, ee2 = float(np.sum(a * a)), float(np.sum(e * e))
        if aa2 == 0 and ee2 == 0:
            cos.append(1.0)
        elif aa2 == 0 or ee2 == 0:
            cos.append(0.0)
        else:
            cos.append(float(np.sum(a * e)) / math.sqrt(aa2 * ee2))
    out = {
        "data_sets": len(cases),
        "top1_agreement": rate(int(np.sum(top_a == top_e)), len(top_e)),
        "topk_agreement": dict(rate(int(np.sum(in_k)), len(top_e)), k=k),
    }
    if with_labels:
        lab = np.array([c["label"] for c in cases])
        pa = np.array([int(np.argmax(c["a_rows"][0])) for c in cases])
        pe = np.array([int(np.argmax(c["e_rows"][0])) for c in cases])
        out["label_accuracy"] = rate(int(np.sum(pa == lab)), len(cases))
        out["reference_label_accuracy"] = rate(int(np.sum(pe == lab)), len(cases))
    out.update({
        "sqnr_db": db(float(np.sum(e_all * e_all)), sse),
        "psnr_db": db(r * r, mse),
        "cosine_mean": float(np.mean(cos)),
        "cosine_min": float(np.min(cos)),
        "mean_abs_err": float(np.sum(np.abs(d))) / n,
        "max_abs_err": float(np.max(np.abs(d))),
        "elements": n,
    })
    return out


def scalar_metrics(m: dict) -> dict:
    return {key: (v["value"] if isinstance(v, dict) else v) for key, v in m.items()
            if key not in ("data_sets", "elements")}


def finite(x):
    """Non-finite floats as strings, so that the JSON stays strict."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("suite")
    p.add_argument("candidate")
    p.add_argument("--output", required=True, help="the output compared")
    p.add_argument("--axis", type=int, default=-1, help="the class axis (default -1)")
    p.add_argument("--k", type=int, default=5, help="k of topk_agreement (default 5)")
    p.add_argument("--labels", help="labels.csv (default: SUITE/labels.csv when present)")
    a = p.parse_args()
    if a.k < 1:
        die("--k must be at least 1")
    golden_model = os.path.join(a.suite, "model.onnx")
    if not os.path.isfile(golden_model):
        die(f"{a.suite}: no model.onnx (not a suite)")
    in_names, out_names = model_io(golden_model)
    if a.output not in out_names:
        die(f"{golden_model} has no output {a.output} (outputs: {', '.join(out_names)})")

    labels_path = a.labels
    if labels_path is None and os.path.isfile(os.path.join(a.suite, "labels.csv")):
        labels_path = os.path.join(a.suite, "labels.csv")
    labels, slices = {}, {}
    if labels_path:
        try:
            with open(labels_path, newline="") as fh:
                reader = csv.DictReader(fh)
                if not reader.fieldnames or "case" not in reader.fieldnames \
                        or "label" not in reader.fieldnames:
                    die(f"{labels_path}: expected a header case,label[,slice]")
                for row in reader:
                    labels[row["case"]] = int(row["label"])
                    if row.get("slice"):
                        slices[row["case"]] = row["slice"]
        except OSError as e:
            die(f"{labels_path}: {e.strerror}")

    try:
        sess = ort.InferenceSession(a.candidate, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - any load failure is exit 2
        die(f"{a.candidate}: onnxruntime cannot load it: {e}")
    cand_inputs = [i.name for i in sess.get_inputs()]
    if a.output not in [o.name for o in sess.get_outputs()]:
        die(f"{a.candidate} has no output {a.output}")

    cases = []
    for name, inputs, goldens in data_sets(a.suite, in_names, out_names):
        if a.output not in goldens:
            die(f"{a.suite}/{name}: no golden {a.output}")
        missing = [n for n in cand_inputs if n not in inputs]
        if missing:
            die(f"{a.suite}/{name}: no input {', '.join(missing)} the candidate takes")
        actual = sess.run([a.output], {n: inputs[n] for n in cand_inputs})[0]
        e = np.asarray(goldens[a.output]).astype(np.float64)
        act = np.asarray(actual).astype(np.float64)
        if act.shape != e.shape:
            die(f"{name}: candidate {a.output} has shape {list(act.shape)}, golden {list(e.shape)}")
        if e.ndim == 0:
            die(f"{name}: {a.output} is a scalar; it has no class axis")
        axis = a.axis if a.axis >= 0 else e.ndim + a.axis
        if not 0 <= axis < e.ndim:
            die(f"--axis {a.axis} is out of range for {a.output}'s rank {e.ndim}")
        c = {"name": name, "e": e, "a": act,
             "e_rows": np.moveaxis(e, axis, -1).reshape(-1, e.shape[axis]),
             "a_rows": np.moveaxis(act, axis, -1).reshape(-1, e.shape[axis])}
        if labels:
            if name not in labels:
                die(f"{labels_path}: no row for {name}")
            if c["e_rows"].shape[0] != 1:
                die(f"{name}: label accuracy needs one row per data set, "
                    f"{a.output} has {c['e_rows'].shape[0]}")
            c["label"] = labels[name]
            c["slice"] = slices.get(name)
        cases.append(c)

    with_labels = bool(labels)
    report = {"output": a.output, "data_sets": len(cases),
              "overall": metrics(cases, a.k, with_labels), "slices": {}, "disparity": {}}
    names = sorted({c["slice"] for c in cases if c.get("slice")})
    if names:
        if any(not c.get("slice") for c in cases):
            die(f"{labels_path}: every data set needs a slice when one has")
        for s in names:
            report["slices"][s] = metrics([c for c in cases if c["slice"] == s], a.k,
                                          with_labels)
        per = [scalar_metrics(report["slices"][s]) for s in names]
        for key in per[0]:
            vals = [m[key] for m in per]
            report["disparity"][key] = max(vals) - min(vals)
    print(json.dumps(finite(report), indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
