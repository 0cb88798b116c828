#!/usr/bin/env python3
"""ONNX backend-test conformance of parity's backends.

Runs `parity check DIR --backend B --format json` over the backend test cases that the
onnx wheel ships (onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple}),
once per backend per directory, cross-checks every case with the onnxruntime Python
package, and writes docs/conformance.md: totals, the most common unsupported ops, a
per-case verdict table with a reason for every non-pass, and explanations.

If a parity process dies (signal, timeout, no report), the directory is re-run one
suite per process, so one crash cannot hide the other cases.

Exit status: 0 when the report was written (backend mismatches are data, not failures
of this script); 1 when the harness itself failed (no parity binary, a requested backend
unavailable, parity produced no report at all for a backend).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper

REPO = Path(__file__).resolve().parent.parent
SUITE_DIRS = ("pytorch-converted", "pytorch-operator", "simple")
BACKENDS = ("ort-cpu", "candle-cpu", "tract-cpu")
# Tolerances of the onnxruntime Python cross-check (the ones ONNX's own runner uses).
RTOL, ATOL = 1e-3, 1e-5
# The project's target for the non-ORT backends, in passing cases out of 140.
TARGET_PASSES = 110
VERDICT_RANK = {"pass": 0, "fail": 1, "error": 2}
REASON_CHARS = 140

_ORT_OPSET = (
    "ort-cpu: the model is stamped opset 6 or older and ONNX Runtime has no CPU kernel for "
    "this op at that opset (it guarantees opset >= 7 only), so the session fails to load, "
    "exactly as in Python ORT."
)
_PRELU_MULTIPARAM = _ORT_OPSET + (
    " tract-cpu: opset-6 PRelu applies a slope of shape [C] along the channel axis; tract "
    "broadcasts it numpy-style (opset 7+) against the last axis and cannot type the node."
)
_EXPAND_SHAPE_INPUT = (
    "tract-cpu: tract-onnx 0.23.9 types Expand only when its `shape` operand is a constant; "
    "here it is a graph input (declared [2]), and tract reports it as of variable length, so "
    "the output rank is unknown and the model does not compile. ort-cpu and candle-cpu pass."
)
_STRINGS = (
    "StringNormalizer over string tensors: parity does not read string tensors (its tensors "
    "are numeric and bool), so every parity backend errors on `input_0.pb` (\"unsupported "
    "data type STRING\"). Python ORT runs the two cases with no case change; the others "
    "need the en_US.UTF-8 locale, which this machine lacks."
)
_GRADIENT = (
    "Uses Gradient from the ai.onnx.preview.training domain, a training op that ONNX "
    "Runtime's inference build does not register (Python ORT fails the same way), and "
    "neither tract-onnx nor parity's candle-cpu interpreter implements."
)
_SEQUENCES = (
    "Tensor inputs and outputs, but Sequence* ops inside the graph: ort-cpu runs them; "
    "tract-onnx 0.23.9 and parity's candle-cpu interpreter implement no Sequence* op."
)
_OLD_OPSET_CASES = [
    "test_AvgPool1d", "test_AvgPool1d_stride", "test_AvgPool2d", "test_AvgPool2d_stride",
    "test_AvgPool3d", "test_AvgPool3d_stride", "test_AvgPool3d_stride1_pad0_gpu_input",
    "test_BatchNorm1d_3d_input_eval", "test_BatchNorm2d_eval", "test_BatchNorm2d_momentum_eval",
    "test_BatchNorm3d_eval", "test_BatchNorm3d_momentum_eval", "test_GLU", "test_GLU_dim",
    "test_Linear", "test_PReLU_1d", "test_PReLU_2d", "test_PReLU_3d",
    "test_PoissonNLLLLoss_no_reduce", "test_Softsign", "test_operator_add_broadcast",
    "test_operator_add_size1_broadcast", "test_operator_add_size1_right_broadcast",
    "test_operator_add_size1_singleton_broadcast", "test_operator_addconstant",
    "test_operator_addmm", "test_operator_basic", "test_operator_mm",
    "test_operator_non_float_params", "test_operator_params", "test_operator_pow",
]
EXPLANATIONS: dict[str, str] = {
    **dict.fromkeys(_OLD_OPSET_CASES, _ORT_OPSET),
    **dict.fromkeys([f"test_PReLU_{n}d_multiparam" for n in (1, 2, 3)], _PRELU_MULTIPARAM),
    **dict.fromkeys([f"test_expand_shape_model{i}" for i in range(1, 5)], _EXPAND_SHAPE_INPUT),
    **dict.fromkeys(
        [
            "test_strnorm_model_monday_casesensintive_lower",
            "test_strnorm_model_monday_casesensintive_nochangecase",
            "test_strnorm_model_monday_casesensintive_upper",
            "test_strnorm_model_monday_empty_output",
            "test_strnorm_model_monday_insensintive_upper_twodim",
            "test_strnorm_model_nostopwords_nochangecase",
        ],
        _STRINGS,
    ),
    **dict.fromkeys(["test_gradient_of_add", "test_gradient_of_add_and_mul"], _GRADIENT),
    **dict.fromkeys([f"test_sequence_model{i}" for i in range(1, 9)], _SEQUENCES),
}


@dataclasses.dataclass(frozen=True)
class Result:
    """One backend's verdict on one case (a suite directory), with why it did not pass."""

    verdict: str
    reason: str = ""
    op: str | None = None


@dataclasses.dataclass
class RunInfo:
    """What the parity reports said about the environment they ran in."""

    parity: str = "?"
    cpu: str = "?"
    backends: dict[str, str] = dataclasses.field(default_factory=dict)


class HarnessError(Exception):
    """The measurement itself could not be made (as opposed to a backend failing a case)."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parity", type=Path, default=REPO / "target/release/parity",
                        help="parity binary (default: %(default)s)")
    parser.add_argument("--backend", dest="backends", action="append", choices=BACKENDS,
                        help="backend to run (repeatable; default: all of %s)" % ", ".join(BACKENDS))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="ONNX backend test data (default: the one in the installed onnx package)")
    parser.add_argument("--out", type=Path, default=REPO / "docs/conformance.md",
                        help="Markdown report to write (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=1800,
                        help="seconds one parity process may run (default: %(default)s)")
    args = parser.parse_args()
    args.backends = args.backends or list(BACKENDS)
    args.data_dir = args.data_dir or Path(onnx.__file__).parent / "backend/test/data"
    return args


def discover_cases(data_dir: Path) -> dict[str, list[str]]:
    """Suite directory names under each test directory, sorted."""
    cases = {}
    for name in SUITE_DIRS:
        directory = data_dir / name
        found = sorted(p.name for p in directory.iterdir() if (p / "model.onnx").is_file()) \
            if directory.is_dir() else []
        if not found:
            raise HarnessError(f"{directory}: no ONNX backend test cases found")
        cases[name] = found
    return cases


def available_backends(parity: Path) -> dict[str, dict]:
    """`parity backends --format json`, keyed by backend name."""
    if not os.access(parity, os.X_OK):
        raise HarnessError(f"{parity}: no parity binary (build it with `cargo build --release`)")
    proc = subprocess.run([str(parity), "backends", "--format", "json"],
                          capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode != 0:
        raise HarnessError(f"`parity backends` exited {proc.returncode}: {proc.stderr.strip()}")
    return {b["name"]: b for b in json.loads(proc.stdout)["backends"]}


def run_parity(parity: Path, suite: Path, backend: str, timeout: float) -> tuple[dict | None, str]:
    """Runs one `parity check`; returns (report, "") or (None, why there is no report)."""
    command = [str(parity), "check", str(suite), "--backend", backend, "--format", "json"]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                              check=False)
    except subprocess.TimeoutExpired:
        return None, f"process timed out after {timeout:g} s"
    if proc.returncode < 0:
        return None, f"process crashed (signal {-proc.returncode})"
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = None
    if not isinstance(report, dict) or report.get("schema") != "parity.report/v1":
        last = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return None, f"no report (exit {proc.returncode}): {last[0]}"
    return report, ""


def unsupported_op(row: dict) -> str | None:
    """The op a case failed on: `error_op`, else parsed from the engine's message."""
    if row.get("error_op"):
        return row["error_op"]
    patterns = (
        r"unsupported op (\w+)",
        r"Could not find an implementation for (\w+)\(",
        r"[Uu]nimplemented[^A-Za-z]+(\w+)",
        r"op(?:erator)? [`'\"]?(\w+)[`'\"]? (?:is )?not (?:supported|implemented)",
    )
    for pattern in patterns:
        match = re.search(pattern, row.get("error") or "")
        if match:
            return match.group(1)
    return None


def shorten(text: str, case: str) -> str:
    """One line of at most REASON_CHARS, without the path of the case's own directory."""
    text = re.sub(rf"\S*/{re.escape(case)}/", "", " ".join(text.split()))
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def failure_reason(row: dict) -> str:
    """One line on why a compared case failed: its first failing output."""
    for out in row.get("outputs", []):
        if out.get("verdict") != "fail":
            continue
        if out.get("problem"):
            return f"{out['name']}: {out['problem']}"
        return (f"{out['name']}: {out['mismatched']}/{out['total']} off, max abs err "
                f"{fmt(out['max_abs_err'])} at {out['worst_index']} (expected "
                f"{fmt(out['expected'])}, got {fmt(out['actual'])}; atol {out['atol']:g}, "
                f"rtol {out['rtol']:g})")
    return "failed (no failing output in the report)"


def case_result(name: str, rows: list[dict]) -> Result:
    """The verdict of a suite: the worst of its data sets, with that data set's reason."""
    worst = max(rows, key=lambda r: VERDICT_RANK[r["verdict"]])
    if worst["verdict"] == "pass":
        return Result("pass")
    if worst["verdict"] == "fail":
        return Result("fail", shorten(failure_reason(worst), name))
    return Result("error", shorten(worst.get("error") or "error (no message)", name), unsupported_op(worst))


def note_environment(report: dict, info: RunInfo) -> None:
    env = report["environment"]
    info.parity, info.cpu = env["parity"], env["cpu"]
    for b in env["backends"]:
        info.backends[b["name"]] = f"{b['version']} on {b['device']}"


def results_from_report(report: dict, names: list[str]) -> dict[str, Result]:
    """Case results of one report, for the expected suite names; missing ones are errors."""
    rows = collections.defaultdict(list)
    for row in report["cases"]:
        rows[Path(row["suite"]).name].append(row)
    return {name: case_result(name, rows[name]) if rows[name]
            else Result("error", "missing from parity's report") for name in names}


def run_directory(args, backend: str, directory: Path, names: list[str],
                  info: RunInfo) -> dict[str, Result]:
    """Runs one directory in one process, or one process per suite if that one died."""
    report, why = run_parity(args.parity, directory, backend, args.timeout)
    if report is not None:
        note_environment(report, info)
        return results_from_report(report, names)
    print(f"  {backend} {directory.name}: {why}; re-running one suite per process", file=sys.stderr)
    results = {}
    for name in names:
        report, why = run_parity(args.parity, directory / name, backend, args.timeout)
        if report is None:
            results[name] = Result("error", why)
        else:
            note_environment(report, info)
            results.update(results_from_report(report, [name]))
    return results


def load_tensor(path: Path) -> np.ndarray:
    proto = onnx.TensorProto()
    proto.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(proto)


def outputs_match(actual: np.ndarray, expected: np.ndarray) -> bool:
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return False
    if expected.dtype.kind in "fc":
        return bool(np.allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=True))
    return bool(np.array_equal(actual, expected))


def ort_python_case(suite: Path) -> Result:
    """Runs one suite's data sets with onnxruntime's Python package (CPU provider)."""
    model = onnx.load(suite / "model.onnx")
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    try:
        session = onnxruntime.InferenceSession(str(suite / "model.onnx"),
                                               providers=["CPUExecutionProvider"])
        for data_set in sorted(suite.glob("test_data_set_*")):
            feeds = {name: load_tensor(data_set / f"input_{k}.pb") for k, name in enumerate(inputs)}
            actual = session.run(None, feeds)
            for k, got in enumerate(actual):
                if not outputs_match(np.asarray(got), load_tensor(data_set / f"output_{k}.pb")):
                    return Result("fail", f"{data_set.name} output {k} differs beyond rtol {RTOL:g}, atol {ATOL:g}")
    except Exception as error:  # onnxruntime raises several unrelated exception types
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        return Result("error", shorten(re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", message), suite.name))
    return Result("pass")


def machine() -> str:
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    return f"{platform.node()}, {platform.system()} {platform.release()}, {mem_kib / 2**20:.1f} GiB memory"


def cell(result: Result) -> str:
    text = result.verdict if result.verdict == "pass" else f"**{result.verdict}**: {result.reason}"
    return text.replace("|", "\\|")


def render(args, cases, results, python_ort, info: RunInfo) -> str:
    """docs/conformance.md."""
    backends = args.backends
    all_cases = [(d, n) for d in SUITE_DIRS for n in cases[d]]
    data_sets = sum(len(list((args.data_dir / d / n).glob("test_data_set_*"))) for d, n in all_cases)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = shlex.join(["scripts/conformance.sh", *sys.argv[1:]])
    lines = [
        "# Conformance: ONNX backend test cases",
        "",
        f"Generated by `scripts/conformance.py` on {now}; regenerate with `{command}`.",
        "",
        f"Each backend runs `parity check DIR --backend B --format json` once per directory "
        f"below (directories of `onnx/backend/test/data/` from the onnx {onnx.__version__} "
        f"wheel: {len(all_cases)} cases, {data_sets} data sets). A case passes when every output "
        f"of every data set is within parity's per-dtype tolerances of the expected outputs "
        f"stored with it.",
        "",
        f"- parity {info.parity}; backends: "
        + ", ".join(f"{b} {info.backends.get(b, '?')}" for b in backends),
        f"- Python cross-check: onnxruntime {onnxruntime.__version__} (CPU provider), "
        f"numpy {np.__version__}, onnx {onnx.__version__}",
        f"- Machine: {info.cpu}; {machine()}",
        "",
        "## Totals",
        "",
        "| directory | cases | " + " | ".join(f"{b} pass / fail / error" for b in backends)
        + " | Python ORT pass / fail / error |",
        "|---|---:|" + "---:|" * (len(backends) + 1),
    ]
    for directory in [*SUITE_DIRS, None]:
        names = [(d, n) for d, n in all_cases if directory in (None, d)]
        columns = [results[b] for b in backends] + [python_ort]
        counts = [collections.Counter(col[key].verdict for key in names) for col in columns]
        label = f"`{directory}`" if directory else "**total**"
        lines.append(f"| {label} | {len(names)} | "
                     + " | ".join(f"{c['pass']} / {c['fail']} / {c['error']}" for c in counts) + " |")
    lines += ["", *render_targets(backends, all_cases, results, python_ort),
              "", *render_ops(backends, all_cases, results),
              "", *render_explanations(backends, all_cases, results, python_ort),
              "", "## Every case", "",
              "Non-pass cells give the first line of parity's error, or the first failing output.",
              "",
              "| case | directory | " + " | ".join(backends) + " | Python ORT |",
              "|---|---|" + "---|" * (len(backends) + 1)]
    for key in all_cases:
        lines.append(f"| {key[1]} | {key[0]} | "
                     + " | ".join(cell(results[b][key]) for b in backends)
                     + f" | {cell(python_ort[key])} |")
    return "\n".join(lines) + "\n"


def render_targets(backends, all_cases, results, python_ort) -> list[str]:
    """The project's targets, and every case where parity's ort-cpu and Python ORT disagree."""
    ort_runs = [k for k in all_cases if python_ort[k].verdict == "pass"]
    lines = ["## Targets", "",
             f"Python onnxruntime runs and matches (rtol {RTOL:g}, atol {ATOL:g}) "
             f"{len(ort_runs)} of {len(all_cases)} cases."]
    if "ort-cpu" in backends:
        missed = [k for k in ort_runs if results["ort-cpu"][k].verdict != "pass"]
        extra = [k for k in all_cases if results["ort-cpu"][k].verdict == "pass"
                 and python_ort[k].verdict != "pass"]
        passes = len(ort_runs) - len(missed)
        unexplained = [k for k in missed if k[1] not in EXPLANATIONS]
        verdict = "met" if not missed else (
            f"not met: {len(missed) - len(unexplained)} explained below, {len(unexplained)} unexplained")
        lines += ["", f"- ort-cpu passes {passes} of those {len(ort_runs)} (target: all): **{verdict}**."]
        for key in missed:
            lines.append(f"  - `{key[1]}` ({key[0]}): Python ORT passes, ort-cpu "
                         f"{results['ort-cpu'][key].verdict}: {results['ort-cpu'][key].reason}"
                         + ("" if key[1] in EXPLANATIONS else " — unexplained, a parity bug candidate"))
        for key in extra:
            lines.append(f"  - `{key[1]}` ({key[0]}): ort-cpu passes where Python ORT "
                         f"{python_ort[key].verdict}s: {python_ort[key].reason}")
    for backend in (b for b in backends if b != "ort-cpu"):
        passes = sum(results[backend][k].verdict == "pass" for k in all_cases)
        lines.append(f"- {backend} passes {passes} of {len(all_cases)} (target: ≥ {TARGET_PASSES}): "
                     f"**{'met' if passes >= TARGET_PASSES else 'not met'}**.")
    return lines


def render_ops(backends, all_cases, results) -> list[str]:
    """The ops most often named as the cause of an error, per backend."""
    lines = ["## Most common unsupported ops", "",
             "From each error's `error_op`, else parsed from the engine's message.", ""]
    for backend in backends:
        ops = collections.defaultdict(list)
        for key in all_cases:
            if results[backend][key].op:
                ops[results[backend][key].op].append(key[1])
        ranked = sorted(ops.items(), key=lambda item: (-len(item[1]), item[0]))
        lines.append(f"- **{backend}**: " + (", ".join(f"{op} ({len(names)})" for op, names in ranked[:10])
                                             if ranked else "none"))
    return lines


def render_explanations(backends, all_cases, results, python_ort) -> list[str]:
    """Known reasons for non-passes, grouped by reason, and the non-passes none covers yet."""
    by_reason = collections.defaultdict(list)
    unexplained = []
    for key in all_cases:
        missing = [b for b in backends if results[b][key].verdict != "pass"]
        if python_ort[key].verdict != "pass":
            missing.append("Python ORT")
        if not missing:
            continue
        entry = f"`{key[1]}` ({', '.join(missing)})"
        if key[1] in EXPLANATIONS:
            by_reason[EXPLANATIONS[key[1]]].append(entry)
        else:
            unexplained.append(f"- {entry}, in {key[0]}")
    lines = ["## Explanations", "",
             "Each reason, then the cases it explains with the runtimes that do not pass them.", ""]
    for reason, entries in by_reason.items():
        lines += [f"- {reason}", f"  Cases: {', '.join(entries)}."]
    lines += ["", "### Not yet explained", "",
              "Non-passes with no entry in `EXPLANATIONS` (scripts/conformance.py); their "
              "reasons are in the table below.", ""]
    return lines + (unexplained or ["None."])


def main() -> int:
    args = parse_args()
    try:
        cases = discover_cases(args.data_dir)
        available = available_backends(args.parity)
        for backend in args.backends:
            if not available.get(backend, {}).get("available"):
                reason = available.get(backend, {}).get("reason", "unknown to this parity")
                raise HarnessError(f"backend {backend} is unavailable: {reason}")
        info = RunInfo()
        results = {}
        for backend in args.backends:
            results[backend] = {}
            for directory in SUITE_DIRS:
                found = run_directory(args, backend, args.data_dir / directory, cases[directory], info)
                results[backend].update({(directory, name): r for name, r in found.items()})
                counts = collections.Counter(r.verdict for r in found.values())
                print(f"{backend} {directory}: {counts['pass']} pass, {counts['fail']} fail, "
                      f"{counts['error']} error", file=sys.stderr)
            if backend not in info.backends:
                raise HarnessError(f"parity produced no report for any case on {backend}")
    except HarnessError as error:
        print(f"conformance: {error}", file=sys.stderr)
        return 1
    onnxruntime.set_default_logger_severity(4)
    python_ort = {(d, n): ort_python_case(args.data_dir / d / n) for d in SUITE_DIRS for n in cases[d]}
    args.out.write_text(render(args, cases, results, python_ort, info))
    print(f"conformance: wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
