#!/usr/bin/env python3
"""Measure how far parity's CPU backends naturally disagree, per dtype, and write docs/tolerances.md.

Everything in the document comes from `parity check` runs made by this script:

* Natural differences. Suites run on ort-cpu, candle-cpu and tract-cpu, against their goldens
  and against each other (candle and tract against ort, tract against candle):
  - bundled: models/{mlp,cnn,transformer} as shipped, f32, goldens from a float64 numpy reference;
  - bundled as f16/bf16/f64: the same three models with weights, inputs and outputs cast to the
    dtype, goldens from the same float64 reference (models/make_models.py) rounded to it, with
    extra data sets;
  - conformance: the ONNX backend-test cases in the onnx wheel (pytorch-converted,
    pytorch-operator, simple), goldens from PyTorch.
  For each (source, dtype, comparison): max abs and max rel error (a run at --atol 0 --rtol 0),
  the share of the default tolerance that the worst element uses, and the tightest atol (at the
  default rtol) and rtol (at the default atol) that still pass, bisected over parity runs.
* Sensitivity. Copies of the bundled suites (f32, and converted) in which the largest-magnitude
  element of one expected output is moved by a relative fault; parity must report that element
  as the worst, with mismatched == 1, and exit 1, on every backend that runs the suite.

The defaults are read from src/compare/tolerance.rs and passed to parity with --atol/--rtol, so
the evidence is about the table in this checkout whichever build of parity runs it.

Run: .venv/bin/python scripts/tolerance-evidence.py --parity target/release/parity
Exit status: 0, or 1 when a natural difference fails a default (the document is written either
way), or 2 when parity or a backend is missing.
"""

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("ort-cpu", "candle-cpu", "tract-cpu")
GOLDEN = "golden"
FLOAT_DTYPES = ("f64", "f32", "f16", "bf16")
NUMPY_DTYPE = {"f64": np.float64, "f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}
ONNX_DTYPE = {"f64": TensorProto.DOUBLE, "f16": TensorProto.FLOAT16, "bf16": TensorProto.BFLOAT16}
# bf16 Conv, MaxPool and AveragePool exist from opset 22 on; the other dtypes keep the bundled opset.
OPSET = {"f64": (17, 8), "f16": (17, 8), "bf16": (22, 10)}  # (opset, IR version)
# Initializers of the bundled models that stand for an irrational constant: written from the
# exact value at the target precision (not from its f32 rounding) so that the model computes
# what the float64 reference computes.
EXACT_CONSTANTS = {"inv_sqrt2": 1.0 / math.sqrt(2.0)}
CONFORMANCE_SETS = ("pytorch-converted", "pytorch-operator", "simple")
EXTRA_DATA_SETS = 20  # per converted suite, besides the shipped ones (see data_sets)
EXTRA_SEED = 4242

FAULT = 1e-2  # the relative fault the defaults must catch (the requirement)
BISECT_RATIO = 1.05  # tightest tolerances are found to within 5%
BISECT_SPAN = 1e-6  # ... searching down to this fraction of the upper bound


# ---------------------------------------------------------------------------
# Running parity
# ---------------------------------------------------------------------------


class Parity:
    """Runs `parity check --format json` and returns (exit code, report)."""

    def __init__(self, exe, env):
        self.exe = exe
        self.env = env
        self.runs = 0

    def check(self, suites, backend, reference, tolerance):
        """One run of the suites on one backend against `reference` at (atol, rtol)."""
        cmd = [str(self.exe), "check", *map(str, suites), "--backend", backend, "--format", "json",
               "--atol", repr(tolerance[0]), "--rtol", repr(tolerance[1])]
        if reference != GOLDEN:
            cmd += ["--reference", reference]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=False)
        self.runs += 1
        if proc.returncode not in (0, 1, 2) or not proc.stdout:
            die(f"parity failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
        return proc.returncode, json.loads(proc.stdout)

    def text(self, *args):
        return subprocess.run([str(self.exe), *args], capture_output=True, text=True,
                              env=self.env, check=True).stdout.strip()


def die(message):
    print(message, file=sys.stderr)
    sys.exit(2)


def ort_environment(env):
    """parity finds ONNX Runtime through ORT_DYLIB_PATH first; point it at this Python's wheel."""
    env = dict(env)
    if env.get("ORT_DYLIB_PATH"):
        return env
    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return env
    libs = sorted(Path(spec.submodule_search_locations[0], "capi").glob("libonnxruntime.so.*"))
    if libs:
        env["ORT_DYLIB_PATH"] = str(libs[0])
    return env


def read_defaults(path):
    """The per-dtype (atol, rtol) table of Tolerance::default_for, as written in the source."""
    rows = re.findall(r"DType::(F64|F32|F16|BF16) => \(([-+.e0-9]+), ([-+.e0-9]+)\)", path.read_text())
    found = {dtype.lower(): (float(atol), float(rtol)) for dtype, atol, rtol in rows}
    if set(found) != set(FLOAT_DTYPES):
        die(f"{path}: could not read the default tolerance table (found {sorted(found)})")
    return found


# ---------------------------------------------------------------------------
# Suites
# ---------------------------------------------------------------------------


def write_tensor(path, array, name):
    path.write_bytes(numpy_helper.from_array(array, name).SerializeToString())


def read_tensor(path):
    proto = onnx.TensorProto()
    proto.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(proto), proto.name


def convert_model(model, dtype):
    """The model with every f32 initializer, input and output in `dtype`."""
    target = NUMPY_DTYPE[dtype]
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    graph = converted.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            value = np.asarray(EXACT_CONSTANTS.get(init.name, numpy_helper.to_array(init)))
            init.CopyFrom(numpy_helper.from_array(value.astype(target), init.name))
    for info in [*graph.input, *graph.output]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT:
            info.type.tensor_type.elem_type = ONNX_DTYPE[dtype]
    converted.opset_import[0].version, converted.ir_version = OPSET[dtype]
    onnx.checker.check_model(converted, full_check=True)
    return converted


def data_sets(make_inputs):
    """The shipped data sets of a bundled model, then EXTRA_DATA_SETS more: each a seeded
    permutation of the values of the largest shipped one (same shapes and value distribution,
    new samples), so that the tail of the natural differences shows."""
    shipped = make_inputs()
    largest = max(shipped, key=lambda inputs: sum(x.size for x in inputs))
    rng = np.random.default_rng(EXTRA_SEED)
    extra = [[rng.permutation(x.ravel()).reshape(x.shape) for x in largest] for _ in range(EXTRA_DATA_SETS)]
    return shipped + extra


def write_converted_suites(root):
    """models/make_models.py's three models in f16, bf16 and f64, goldens from its float64 reference."""
    sys.path.insert(0, str(REPO / "models"))
    import make_models  # noqa: E402  (the bundled models' builders and float64 references)

    # ONNX float attributes are float32: the models' normalization epsilons are f32(1e-5), so the
    # float64 reference uses that value too (it matters in f64 only).
    make_models.BN_EPSILON = float(np.float32(make_models.BN_EPSILON))
    make_models.LN_EPSILON = float(np.float32(make_models.LN_EPSILON))
    suites = defaultdict(list)
    for dtype in ("f16", "bf16", "f64"):
        target = NUMPY_DTYPE[dtype]
        for name, build, reference, make_inputs in make_models.MODELS:
            model, weights = build()
            model = convert_model(model, dtype)
            weights = {k: np.asarray(EXACT_CONSTANTS.get(k, v)).astype(target) if v.dtype == np.float32
                       else v for k, v in weights.items()}
            suite = root / f"{name}-{dtype}"
            suite.mkdir(parents=True)
            (suite / "model.onnx").write_bytes(model.SerializeToString())
            input_names = [i.name for i in model.graph.input]
            outputs = [o.name for o in model.graph.output]
            for n, inputs in enumerate(data_sets(make_inputs)):
                inputs = [x.astype(target) for x in inputs]
                data_set = suite / f"test_data_set_{n}"
                data_set.mkdir()
                for k, (input_name, x) in enumerate(zip(input_names, inputs)):
                    write_tensor(data_set / f"input_{k}.pb", x, input_name)
                for k, (output_name, y) in enumerate(zip(outputs, reference(weights, *inputs))):
                    write_tensor(data_set / f"output_{k}.pb", y.astype(target), output_name)
            suites[dtype].append(suite)
    return suites


def conformance_suites():
    data = Path(onnx.__file__).resolve().parent / "backend" / "test" / "data"
    return sorted(p.parent for s in CONFORMANCE_SETS for p in (data / s).glob("*/model.onnx"))


@dataclass
class Source:
    name: str
    description: str
    suites: list


def sources(work):
    converted = write_converted_suites(work / "converted")
    return [
        Source("bundled", "`models/{mlp,cnn,transformer}` as shipped: f32, goldens from a float64 numpy "
               "reference", [REPO / "models" / n for n in ("mlp", "cnn", "transformer")]),
        *[Source(f"bundled as {dtype}", "the same three models with weights, inputs and outputs in that "
                 "dtype, goldens from the same float64 reference rounded to it; the shipped data sets plus "
                 f"{EXTRA_DATA_SETS} more per model whose inputs are seeded permutations of the values of the "
                 "largest shipped one", converted[dtype])
          for dtype in ("f16", "bf16", "f64")],
        Source("conformance", "the ONNX backend-test cases in the onnx wheel (" + ", ".join(CONFORMANCE_SETS)
               + "); goldens from PyTorch", conformance_suites()),
    ]


# ---------------------------------------------------------------------------
# Natural differences
# ---------------------------------------------------------------------------


def comparisons():
    """(backend, reference): each backend against the goldens, then each pair of backends."""
    return [(b, GOLDEN) for b in BACKENDS] + [
        (b, r) for i, r in enumerate(BACKENDS) for b in BACKENDS[i + 1:]]


def usage(output):
    """The share of its allowance that the output's worst element uses (<= 1 passes)."""
    if output["max_abs_err"] == 0:
        return 0.0
    if output["expected"] is None or output["actual"] is None:  # a NaN/Inf on one side only
        return math.inf
    error = abs(output["actual"] - output["expected"])
    allowed = output["atol"] + output["rtol"] * abs(output["expected"])
    return error / allowed if allowed > 0 else math.inf


def finite_max(values):
    """The maximum, where parity's null (an infinite error) counts as infinity."""
    return max((math.inf if v is None else v for v in values), default=0.0)


@dataclass
class Group:
    """The outputs of one dtype that one comparison produced over one source."""
    source: str
    dtype: str
    backend: str
    reference: str
    suites: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    default_usage: float = 0.0
    default_worst: tuple = None  # (case, output) whose worst element uses the most of the default
    tightest_atol: float = None
    tightest_rtol: float = None

    @property
    def elements(self):
        return sum(o["total"] for o in self.outputs)

    @property
    def max_abs(self):
        return finite_max(o["max_abs_err"] for o in self.outputs)

    @property
    def max_rel(self):
        return finite_max(o["max_rel_err"] for o in self.outputs)


def outputs_of(report, dtype):
    return [(c, o) for c in report["cases"] if c["verdict"] != "error"
            for o in c["outputs"] if o["dtype"] == dtype]


def measure(parity, source, defaults, runs_on):
    """Groups of outputs per (dtype, comparison), and the cases that could not run against the
    goldens; adds to runs_on[suite] each backend that ran every case of the suite."""
    groups, errors = [], []
    for backend, reference in comparisons():
        _, report = parity.check(source.suites, backend, reference, (0.0, 0.0))
        if reference == GOLDEN:
            failed = {c["suite"] for c in report["cases"] if c["verdict"] == "error"}
            errors += [(backend, c) for c in report["cases"] if c["verdict"] == "error"]
            for suite in {c["suite"] for c in report["cases"]} - failed:
                runs_on[suite].add(backend)
        by_dtype = defaultdict(list)
        for case in report["cases"]:
            for output in case["outputs"] if case["verdict"] != "error" else []:
                by_dtype[output["dtype"]].append((case, output))
        for dtype, pairs in sorted(by_dtype.items()):
            group = Group(source.name, dtype, backend, reference)
            group.suites = sorted({c["suite"] for c, _ in pairs})
            group.outputs = [o for _, o in pairs]
            groups.append(group)
    for group in groups:
        judge(parity, group, defaults.get(group.dtype, (0.0, 0.0)))
    return groups, errors


def group_passes(parity, group, atol, rtol):
    _, report = parity.check(group.suites, group.backend, group.reference, (atol, rtol))
    return all(o["verdict"] == "pass" for _, o in outputs_of(report, group.dtype))


def smallest_passing(passes, upper):
    """The smallest x >= 0 with passes(x), to within BISECT_RATIO; None if not even `upper` passes."""
    if passes(0.0):
        return 0.0
    if not passes(upper):
        return None
    low, high = upper * BISECT_SPAN, upper
    if passes(low):
        return low
    while high / low > BISECT_RATIO:
        middle = math.sqrt(low * high)
        low, high = (low, middle) if passes(middle) else (middle, high)
    return high


def judge(parity, group, default):
    """Tolerance used at the default, and the tightest atol and rtol around it."""
    atol, rtol = default
    _, report = parity.check(group.suites, group.backend, group.reference, default)
    group.default_worst = max(outputs_of(report, group.dtype), key=lambda pair: usage(pair[1]))
    group.default_usage = usage(group.default_worst[1])
    if group.dtype not in FLOAT_DTYPES:
        return
    if math.isfinite(group.max_abs):
        group.tightest_atol = smallest_passing(lambda a: group_passes(parity, group, a, rtol), group.max_abs)
    if math.isfinite(group.max_rel):
        upper = max(group.max_rel, rtol)
        group.tightest_rtol = smallest_passing(lambda r: group_passes(parity, group, atol, r), upper)


# ---------------------------------------------------------------------------
# Sensitivity: a fault in one expected element
# ---------------------------------------------------------------------------


@dataclass
class Site:
    """One faulted element: the largest-magnitude element of one expected output of one data set."""
    index: tuple
    expected: float
    faulty: float

    @property
    def applied(self):
        """The relative fault after rounding to the dtype."""
        return (self.faulty - self.expected) / self.expected


@dataclass
class Fault:
    """A relative fault `delta` in one output of a suite, written to `copy`."""
    suite: Path  # the original suite
    output: str
    delta: float
    copy: Path = None
    sites: dict = field(default_factory=dict)  # data set name -> Site


def inject(fault, output_index, root):
    """A copy of the suite whose output `output_index` has its largest element moved by fault.delta."""
    fault.copy = root / f"{fault.suite.name}.{fault.output}.{fault.delta:g}"
    shutil.copytree(fault.suite, fault.copy)
    for path in sorted(fault.copy.glob(f"test_data_set_*/output_{output_index}.pb")):
        expected, name = read_tensor(path)
        wide = expected.astype(np.float64)
        index = np.unravel_index(int(np.argmax(np.abs(wide))), wide.shape)
        faulty = expected.copy()
        faulty[index] = np.asarray(wide[index] * (1.0 + fault.delta)).astype(expected.dtype)
        write_tensor(path, faulty, name)
        fault.sites[path.parent.name] = Site(tuple(int(i) for i in index), float(wide[index]),
                                             float(faulty[index].astype(np.float64)))
    return fault


def output_names(suite):
    model = onnx.load(str(suite / "model.onnx"), load_external_data=False)
    return [o.name for o in model.graph.output]


def fault_ladder(rtol):
    """Relative faults 1e-1, 5e-2, 3e-2, 2e-2, 1.5e-2, 1e-2, 5e-3, ... down to the last above rtol,
    and FAULT in any case."""
    ladder = [float(f"{m}e-{e}") for e in range(2, 18) for m in ("10", "5", "3", "2", "1.5")]
    return [d for d in ladder if d > rtol or d == FAULT]


@dataclass
class Verdict:
    """How one backend's run judged one fault in one data set."""
    fault: Fault
    backend: str
    site: Site
    caught: bool  # the faulted output fails, mismatched == 1, the worst element is the faulted one
    others_pass: bool  # every other output of the case passes
    exit_code: int

    @property
    def ok(self):
        return self.caught and self.others_pass and self.exit_code == 1


def check_fault(parity, fault, backend, tolerance):
    """Run one faulty copy on one backend; one Verdict per data set."""
    code, report = parity.check([fault.copy], backend, GOLDEN, tolerance)
    verdicts = []
    for case in report["cases"]:
        site = fault.sites[case["case"]]
        hit = [o for o in case["outputs"] if o["name"] == fault.output]
        caught = (bool(hit) and hit[0]["verdict"] == "fail" and hit[0]["mismatched"] == 1
                  and tuple(hit[0]["worst_index"] or ()) == site.index)
        others = all(o["verdict"] == "pass" for o in case["outputs"] if o["name"] != fault.output)
        verdicts.append(Verdict(fault, backend, site, caught, others, code))
    return verdicts


def sensitivity(parity, suites_by_dtype, runs_on, defaults, root):
    """(dtype, suite, output) -> [(fault, verdicts)]: every fault of the ladder down to FAULT, then
    on down to the first one that is not caught on every backend that runs the suite."""
    results = {}
    for dtype, suites in suites_by_dtype.items():
        tolerance = defaults[dtype]
        for suite in suites:
            backends = [b for b in BACKENDS if b in runs_on[str(suite)]]
            for k, name in enumerate(output_names(suite) if backends else []):
                steps = results[(dtype, suite, name)] = []
                for delta in fault_ladder(tolerance[1]):
                    fault = inject(Fault(suite, name, delta), k, root)
                    verdicts = [v for b in backends for v in check_fault(parity, fault, b, tolerance)]
                    steps.append((delta, verdicts))
                    if delta < FAULT and not all(v.ok for v in verdicts):
                        break
    return results


def golden_magnitudes(suites):
    """|expected| of every element of every expected output of the suites."""
    paths = sorted(p for s in suites for p in s.glob("test_data_set_*/output_*.pb"))
    return np.concatenate([np.abs(read_tensor(p)[0].astype(np.float64)).ravel() for p in paths])


# ---------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------

EPS = {"f64": 2.0 ** -52, "f32": 2.0 ** -23, "f16": 2.0 ** -10, "bf16": 2.0 ** -7}


def sci(x, digits=2):
    """1.2e-6 style; 0, None (not measured) and infinity spelled out."""
    if x is None:
        return "—"
    if x == 0:
        return "0"
    if math.isinf(x):
        return "∞"
    mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def tol(x):
    """A tolerance with as few digits as it needs: 4e-3, 1.6e-2, 3.90625e-3."""
    for digits in range(1, 9):
        if float(sci(x, digits)) == x:
            break
    return sci(x, digits)


def percent(share):
    if share is None or math.isinf(share):
        return "∞"
    if share == 0:
        return "0"
    return f"{100 * share:.2g}%" if share >= 1e-4 else f"{sci(100 * share)}%"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def compared(group):
    return f"{group.backend} vs {group.reference}"


def relative_suite(path):
    path = Path(path)
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else path.name


def blind_spot(default):
    """Below this |e| a single element off by FAULT (relative) fits inside atol + rtol*|e|."""
    atol, rtol = default
    return atol / (FAULT - rtol) if rtol < FAULT else math.inf


def smallest_caught(steps):
    """The smallest fault that was caught everywhere, as was every larger fault tried."""
    smallest = None
    for delta, verdicts in steps:
        if not all(v.ok for v in verdicts):
            break
        smallest = delta
    return smallest


def first_missed(steps):
    return next(((d, vs) for d, vs in steps if not all(v.ok for v in vs)), None)


@dataclass
class Evidence:
    defaults: dict
    sources: list
    groups: list
    errors: list  # (source name, backend, case) that could not run against the goldens
    faults: dict  # (dtype, suite, output) -> [(fault, verdicts)]
    magnitudes: dict  # dtype -> |expected| of every golden element of the suites faulted
    environment: dict

    def of(self, dtype):
        return [g for g in self.groups if g.dtype == dtype]

    def worst(self, dtype):
        """The group whose worst element uses the largest share of the default."""
        return max(self.of(dtype), key=lambda g: g.default_usage, default=None)

    def neediest(self, dtype):
        """The group that needs the largest atol at the default rtol."""
        return max(self.of(dtype), key=lambda g: g.tightest_atol or 0.0, default=None)

    def faults_of(self, dtype):
        return {(suite, output): steps for (d, suite, output), steps in self.faults.items() if d == dtype}

    def failing(self):
        return [g for g in self.groups if g.default_usage > 1]


def render(ev):
    sections = [intro, summary, reasons, requirement, natural, not_run, sensitivity_section, reproduce]
    text = "\n\n".join("\n".join(section(ev)) for section in sections)
    return "\n\n".join(reflow(block) for block in text.split("\n\n")) + "\n"


WIDTH = 100


UNBROKEN = re.compile(r"\[[^\]]*\]\([^)]*\)|`[^`]*`")  # links and code spans stay on one line


def fill(text, **indent):
    glued = UNBROKEN.sub(lambda m: m.group(0).replace(" ", "\0"), " ".join(text.split()))
    wrapped = textwrap.fill(glued, width=WIDTH, break_long_words=False, break_on_hyphens=False, **indent)
    return wrapped.replace("\0", " ")


def reflow(block):
    """Paragraphs and bullet lists re-wrapped to WIDTH; headings, tables, code and HTML as they are."""
    lines = block.split("\n")
    if any(line.startswith(("#", "|", "```", "<")) for line in lines):
        return block
    if lines[0].startswith("- "):
        items = block.split("\n- ")
        return "\n".join(fill(item.removeprefix("- "), initial_indent="- ", subsequent_indent="  ")
                         for item in items)
    return fill(block)


def intro(ev):
    return [
        "# Default tolerances",
        "",
        "<!-- Written by scripts/tolerance-evidence.py from the table in src/compare/tolerance.rs;",
        "     re-run the script rather than editing this file. -->",
        "",
        "parity passes an element when `|actual - expected| <= atol + rtol * |expected|`. When neither",
        "the command line (`--atol`/`--rtol`) nor the suite's `parity.toml` sets a tolerance, the",
        "output's dtype picks one (`Tolerance::default_for` in `src/compare/tolerance.rs`). This page",
        "gives those defaults, why each was chosen, and the measurements behind them, all produced by",
        "one run of `scripts/tolerance-evidence.py` (see [Reproducing](#reproducing)).",
        "",
        "Two requirements set them: the defaults must pass the *natural* differences between ort-cpu,",
        "candle-cpu and tract-cpu on real models (different kernels, summation orders and intermediate",
        "precisions, none of them wrong), and still catch a single element that is off by",
        f"{tol(FAULT)} relative.",
    ]


def margin(share):
    if not share:
        return "—"
    return f"{1 / share:.1f}×" if 1 / share < 100 else f"{sci(1 / share, 1)}×"


def caught_range(ev, dtype):
    """The smallest fault caught on the largest element, over the outputs tried."""
    values = [smallest_caught(steps) for steps in ev.faults_of(dtype).values()]
    if not values:
        return "—"
    if None in values:
        return f"{sci(min(v for v in values if v is not None))} to never (see below)"
    low, high = min(values), max(values)
    return sci(low) if low == high else f"{sci(low)} to {sci(high)}"


def summary(ev):
    rows = []
    for dtype in FLOAT_DTYPES:
        atol, rtol = ev.defaults[dtype]
        worst = ev.worst(dtype)
        rows.append([
            dtype, tol(atol), tol(rtol), sci(EPS[dtype]),
            f"{percent(worst.default_usage)} ({worst.source}, {compared(worst)})" if worst else "not measured",
            margin(worst.default_usage) if worst else "—",
            sci(blind_spot((atol, rtol))),
            caught_range(ev, dtype),
        ])
    rows.append(["integers, bool", "0", "0", "exact", "0 (every integer output agreed exactly)", "—", "—", "—"])
    return [
        "## The defaults",
        "",
        *table(["dtype", "atol", "rtol", "eps", "worst natural difference: share of the allowance used",
                "margin", f"a {tol(FAULT)} fault goes unseen where \\|e\\| <",
                "smallest fault caught on the largest element"], rows),
        "",
        "- *eps*: the distance from 1 to the next value of the dtype; an ulp of x is eps × 2^⌊log2 |x|⌋.",
        "- *share of the allowance used*: over every compared output, the largest",
        "  `|a - e| / (atol + rtol * |e|)` at the defaults (100% is the edge of passing); *margin* is",
        "  its inverse.",
        f"- *unseen where |e| <*: `atol / ({tol(FAULT)} - rtol)`: below it a single element off by {tol(FAULT)}",
        "  relative still fits inside its allowance (see [The 1e-2 requirement](#the-1e-2-requirement)).",
        "- *smallest fault caught*: per output of the bundled models, the smallest relative change of its",
        "  largest-magnitude expected element that every backend flagged (every larger change tried was",
        "  flagged too); the range is over outputs (see [Sensitivity](#sensitivity)).",
    ]


def reasons(ev):
    return ["## Why these values", "", *reason_f32(ev), "", *reason_f64(ev), "", *reason_f16(ev), "",
            *reason_bf16(ev), "", "### Integers and bool: exact", "",
            "Every integer output measured (i64, conformance) was identical on every backend; integer results",
            "have no rounding to forgive, so any difference is a real one."]


def defaults_line(ev, dtype, state):
    atol, rtol = ev.defaults[dtype]
    return f"### {dtype}: atol {tol(atol)}, rtol {tol(rtol)} ({state})"


def reason_f32(ev):
    worst, needy = ev.worst("f32"), ev.neediest("f32")
    atol, rtol = ev.defaults["f32"]
    max_abs = max(g.max_abs for g in ev.of("f32"))
    return [
        defaults_line(ev, "f32", "unchanged"),
        "",
        f"The largest f32 difference measured is {sci(max_abs)} absolute; relative to its allowance the worst",
        f"element uses {percent(worst.default_usage)} of it ({worst.source}, {compared(worst)}), a margin of",
        f"{margin(worst.default_usage)}. At rtol {tol(rtol)} an atol of {sci(needy.tightest_atol)} would already pass",
        f"everything ({needy.source}, {compared(needy)}).",
        "The defaults stay well above that on purpose: this evidence is one x86 machine, three CPU engines",
        "and small models, while other instruction sets (GEMM blockings for AVX2, NEON), thread counts,",
        "deeper models and the GPU backends parity also targets change summation orders and grow these",
        f"errors. rtol {tol(rtol)} is about {round(rtol / EPS['f32'], -1):.0f} eps. The pair still catches a {tol(FAULT)} fault on",
        f"any element with |e| ≥ {sci(blind_spot((atol, rtol)))}, and on the largest element of every bundled",
        f"output faults down to {caught_range(ev, 'f32')}, the smallest tried above rtol.",
    ]


def reason_f64(ev):
    worst = ev.worst("f64")
    atol, rtol = ev.defaults["f64"]
    max_abs = max(g.max_abs for g in ev.of("f64"))
    max_rel = max(g.max_rel for g in ev.of("f64"))
    return [
        defaults_line(ev, "f64", "unchanged"),
        "",
        f"f64 differences are summation-order noise: at most {sci(max_abs)} absolute and {sci(max_rel)}",
        f"relative (the latter on an element near zero); the worst element uses {percent(worst.default_usage)}",
        f"of its allowance. The defaults are far looser than f64 needs, and that costs nothing the",
        f"requirement asks for: a {tol(FAULT)} fault is caught wherever |e| ≥ {sci(blind_spot((atol, rtol)))}, and on",
        f"the largest element of every bundled output down to {caught_range(ev, 'f64')}, the smallest fault",
        f"tried above rtol. rtol {tol(rtol)} sits just below f32's eps ({sci(EPS['f32'])}), so an f64 result that",
        "agrees only to f32 precision is not comfortably inside it. ort-cpu lacks f64 `Conv` and `Erf`",
        "and tract-cpu cannot run the bundled models in f64 (see [What could not run](#what-could-not-run)),",
        "so the f64 evidence is candle-cpu on the three models, ort-cpu on the mlp, and the few f64",
        "conformance outputs.",
    ]


def reason_f16(ev):
    worst, needy = ev.worst("f16"), ev.neediest("f16")
    atol, rtol = ev.defaults["f16"]
    eps = EPS["f16"]
    return [
        defaults_line(ev, "f16", "changed from atol 1e-3, rtol 5e-3"),
        "",
        "candle-cpu and tract-cpu compute an f16 model in f16, rounding every op's output to f16. A",
        "result that comes out small from O(1) intermediates (a residual sum, a logit near zero) then",
        f"carries an absolute error of about one ulp of those intermediates ({sci(2 * eps, 3)} at magnitude",
        "2 to 4), whatever its own size; large results are off by one or two ulps of themselves. The",
        "errors measured are whole ulps of that kind (tightest atol against the goldens:",
        f"{against_goldens(ev, 'f16')}; ort-cpu stays closer, as if it computed part of the work in",
        "f32). The previous defaults (atol 1e-3, rtol 5e-3) failed these differences, for instance",
        "candle-cpu on the cnn and the transformer in f16 and tract-cpu on the transformer.",
        "",
        f"Since the error is whole ulps of the activations, the new pair is counted in eps: atol {tol(atol)} is",
        f"one ulp at magnitude 4 (4 eps = {tol(4 * eps)}) and rtol {tol(rtol)} is 2 eps ({tol(2 * eps)}), each",
        f"rounded up to two digits. At rtol {tol(rtol)} the tightest passing atol is {sci(needy.tightest_atol)}",
        f"({needy.source}, {compared(needy)}); the worst element uses {percent(worst.default_usage)} of its allowance",
        f"({compared(worst)}), a margin of {margin(worst.default_usage)}. Against the old pair, the allowance is the",
        f"same at |e| = 1 ({sci(atol + rtol, 1)}), larger below and smaller above (at |e| = 4: {sci(atol + 4 * rtol)}",
        "instead of 2.1e-2): the tolerance now follows where f16 errors are.",
    ]


def against_goldens(ev, dtype):
    """Each backend's tightest atol against the goldens, e.g. `ort-cpu 7.3e-4, candle-cpu 1.8e-3`."""
    return ", ".join(f"{g.backend} {sci(g.tightest_atol)}" for g in ev.of(dtype) if g.reference == GOLDEN)


def reason_bf16(ev):
    worst, needy = ev.worst("bf16"), ev.neediest("bf16")
    atol, rtol = ev.defaults["bf16"]
    eps = EPS["bf16"]
    backends = sorted({g.backend for g in ev.of("bf16")})
    return [
        defaults_line(ev, "bf16", "changed from atol 1e-2, rtol 2e-2"),
        "",
        f"Only {', '.join(backends)} runs bf16 on CPU: ort-cpu has no bf16 kernels for `MatMul`, `Gemm` or",
        "`Conv`, and tract-cpu has no bf16 type. So bf16 evidence is that backend against exact goldens",
        "only; no two backends could be compared. The mechanism is the one of f16, with a coarser format:",
        f"errors are one ulp of the activations ({sci(2 * eps, 3)} at magnitude 2 to 4). The previous defaults",
        "failed it (candle-cpu on the transformer in bf16).",
        "",
        f"The same rule as f16 gives atol {tol(atol)} (4 eps = {tol(4 * eps)}) and rtol {tol(rtol)}",
        f"(2 eps = {tol(2 * eps)}; also PyTorch's default rtol for bf16 in `torch.testing.assert_close`).",
        f"The tightest passing atol at that rtol is {sci(needy.tightest_atol)}; the worst element uses",
        f"{percent(worst.default_usage)} of its allowance, a margin of {margin(worst.default_usage)}. Differences between two",
        "bf16 backends are not measured; in f16, comparing two backends needed at most",
        f"{cross_to_golden(ev, 'f16'):.1f}× the atol that the worst backend against the goldens needed, which",
        "this margin would absorb.",
    ]


def cross_to_golden(ev, dtype):
    """Tightest atol of the worst backend-against-backend comparison over that of the worst
    backend-against-goldens one."""
    def needed(groups):
        return max(g.tightest_atol or 0.0 for g in groups)
    groups = ev.of(dtype)
    return needed([g for g in groups if g.reference != GOLDEN]) / needed([g for g in groups if g.reference == GOLDEN])


def faulted_magnitudes(steps):
    """|e| of the faulted elements (the same for every fault of the ladder)."""
    return [abs(site.expected) for site in steps[0][1][0].fault.sites.values()]


def outputs_at_fault(ev, dtype):
    """Outputs whose FAULT was caught in every case, and the others, as `suite` `output` labels with
    the range of |e| faulted."""
    caught, missed = [], []
    for (suite, output), steps in ev.faults_of(dtype).items():
        magnitudes = faulted_magnitudes(steps)
        label = f"`{relative_suite(suite)}` `{output}` (|e| {min(magnitudes):.2g} to {max(magnitudes):.2g})"
        (caught if all(v.ok for v in dict(steps)[FAULT]) else missed).append((label, min(magnitudes)))
    return caught, missed


def requirement(ev):
    rows = []
    for dtype in FLOAT_DTYPES:
        threshold = blind_spot(ev.defaults[dtype])
        magnitudes = ev.magnitudes[dtype]
        verdicts = [v for steps in ev.faults_of(dtype).values() for v in dict(steps)[FAULT]]
        rows.append([dtype, sci(threshold), f"{100 * np.mean(magnitudes < threshold):.1f}% of {magnitudes.size}",
                     f"{sum(v.ok for v in verdicts)} of {len(verdicts)}"])
    lines = [
        "## The 1e-2 requirement",
        "",
        f"A single element off by {tol(FAULT)} relative differs from its reference by {tol(FAULT)}·|e|, and is caught",
        "when that exceeds `atol + rtol·|e|` plus the backend's own natural error there. So it goes unseen",
        f"below |e| = `atol / ({tol(FAULT)} - rtol)` whatever the backend: that is the price of atol, which exists",
        "because results near zero carry absolute, not relative, error.",
        "",
        *table(["dtype", "unseen where \\|e\\| <", "golden elements of the bundled models below that",
                f"{tol(FAULT)} faults on the largest element caught (output × data set × backend)"], rows),
        "",
    ]
    for dtype in FLOAT_DTYPES:
        caught, missed = outputs_at_fault(ev, dtype)
        rtol = ev.defaults[dtype][1]
        if not missed:
            lines.append(f"- **{dtype}**: caught on the largest element of every output.")
        elif not caught:
            lines.append(f"- **{dtype}**: missed on every output: rtol {tol(rtol)} alone allows more than {tol(FAULT)}.")
        else:
            smallest = min(m for _, m in missed)
            lines.append(f"- **{dtype}**: caught on the largest element of " + "; ".join(c for c, _ in caught)
                         + ". Missed on " + "; ".join(m for m, _ in missed)
                         + f": {tol(FAULT)} of {smallest:.2g} is {sci(FAULT * smallest)}.")
    f16_needed = ev.neediest("f16").tightest_atol
    bf16_eps = EPS["bf16"]
    lines += [
        "",
        f"In f16 a fault that small is the size of the natural differences themselves (the tightest",
        f"passing atol measured is {sci(f16_needed)}, at small elements), so no default that passes those",
        "can also catch it with a margin. For outputs whose values are all small, such as softmax",
        "probabilities, set an `atol` for that output in `parity.toml` (`[outputs.probs]`) where the",
        "backends compared allow it, or accept that f16 cannot resolve the fault there.",
        "",
        f"In bf16 the requirement is not met, by the format's resolution: an ulp of x is 2^-8 to 2^-7 of x",
        f"({sci(bf16_eps / 2)} to {sci(bf16_eps)} relative), so {tol(FAULT)} relative is 1.3 to 2.6 ulps, and",
        "rounding the faulty expected value to bf16 often leaves a single ulp; the natural difference",
        "at the largest elements is already one ulp. No bf16 tolerance that passes the natural",
        "differences can tell such a fault from them.",
    ]
    return lines


def worst_line(group):
    case, output = group.default_worst
    digits = {"f64": 17, "f32": 9, "f16": 5, "bf16": 4}[group.dtype]
    return (f"Worst element at the defaults: {group.source}, {compared(group)}, "
            f"`{relative_suite(case['suite'])}` {case['case']}, output `{output['name']}` "
            f"at {output['worst_index']}: expected {output['expected']:.{digits}g}, "
            f"actual {output['actual']:.{digits}g}.")


def natural(ev):
    lines = [
        "## Natural differences",
        "",
        "Sources of suites:",
        "",
        *source_bullets(ev.sources),
        "",
        "Each source ran on every backend against its goldens, and backend against backend on the same",
        "inputs (`--reference`). Cases a backend cannot run are left out (see",
        "[What could not run](#what-could-not-run)). Columns: *max abs/rel err* from a run at",
        "`--atol 0 --rtol 0` (max rel skips elements whose reference is 0, and is large on elements",
        "near 0); *share used* as above; *tightest atol* at the default rtol and *tightest rtol* at the",
        "default atol: the smallest values with which every output still passes, bisected over parity",
        f"runs to within {100 * (BISECT_RATIO - 1):.0f}% (0: the other half of the default passes on its own).",
        "Every comparison of integer outputs (i64, conformance) agreed exactly.",
    ]
    if all(g.tightest_rtol == 0 for g in ev.groups if g.dtype in FLOAT_DTYPES):
        crossover = ", ".join(f"{d} {sci(a / r, 1)}" for d, (a, r) in ev.defaults.items())
        lines += ["", "Every *tightest rtol* is 0: the largest absolute error of every comparison is below the",
                  "default atol, so atol alone passes every element measured. rtol is what widens the allowance",
                  f"for larger outputs; it outweighs atol above |e| = atol/rtol ({crossover})."]
    for dtype in FLOAT_DTYPES:
        groups = ev.of(dtype)
        atol, rtol = ev.defaults[dtype]
        lines += ["", f"### {dtype} (defaults atol {tol(atol)}, rtol {tol(rtol)})", ""]
        if not groups:
            lines.append("No backend ran an output of this dtype.")
            continue
        lines += table(
            ["source", "compared", "outputs", "elements", "max abs err", "max rel err", "share used",
             f"tightest atol (rtol {tol(rtol)})", f"tightest rtol (atol {tol(atol)})"],
            [[g.source, compared(g), len(g.outputs), g.elements, sci(g.max_abs), sci(g.max_rel),
              percent(g.default_usage), sci(g.tightest_atol), sci(g.tightest_rtol)] for g in groups])
        if ev.worst(dtype).default_usage > 0:
            lines += ["", worst_line(ev.worst(dtype))]
    return lines


def source_bullets(sources):
    """One bullet per description: the converted sources share one."""
    by_description = defaultdict(list)
    for source in sources:
        by_description[source.description].append(source)
    return [f"- {', '.join(f'**{s.name}**' for s in same)}: {description} "
            f"({len(same[0].suites)} suites{' each' if len(same) > 1 else ''})."
            for description, same in by_description.items()]


def short_reason(case):
    """The error without the suite's path, cut to a length that groups the same cause together."""
    text = case["error"].replace(case["suite"] + "/", "").replace(case["suite"], "<suite>")
    return text if len(text) <= 90 else text[:87] + "..."


def not_run(ev):
    counts = defaultdict(int)
    for source, backend, case in ev.errors:
        counts[(source, backend, short_reason(case))] += 1
    rows = [[source, backend, n, f"`{reason}`"] for (source, backend, reason), n in counts.items()]
    return [
        "## What could not run",
        "",
        "Cases (data sets) a backend could not evaluate against the goldens, and why; they are not part",
        "of the evidence above. ort-cpu has no kernels for the oldest opset versions some conformance",
        "models use, for f64 `Conv` and `Erf`, or for bf16 `MatMul`, `Gemm` and `Conv`; tract-cpu has no",
        "bf16 type and no f64 `Erf`, and fails to translate `Gemm` with f16 or f64 operands; string",
        "tensors are outside parity's dtypes.",
        "",
        f"<details><summary>{sum(counts.values())} cases</summary>",
        "",
        *table(["source", "backend", "cases", "error"], rows),
        "",
        "</details>",
    ]


def sensitivity_section(ev):
    lines = [
        "## Sensitivity",
        "",
        "For every suite of the bundled models (f32 as shipped, and converted to f16, bf16 and f64) and",
        "every output, a copy of the suite is written in which, in each data set, the largest-magnitude",
        "element of that expected output is multiplied by (1 + fault) and rounded to the dtype. Each",
        "copy runs at the defaults on every backend that runs the suite. A fault counts as caught in a",
        "case when that output fails with `mismatched == 1`, its reported worst element is the faulted",
        "one, every other output passes, and parity exits 1.",
        "",
        f"### A single element off by {tol(FAULT)}",
        "",
    ]
    rows = []
    for dtype in FLOAT_DTYPES:
        for (suite, output), steps in ev.faults_of(dtype).items():
            verdicts = dict(steps)[FAULT]
            sites = list(verdicts[0].fault.sites.values())
            cells = []
            for backend in BACKENDS:
                mine = [v for v in verdicts if v.backend == backend]
                codes = ",".join(str(c) for c in sorted({v.exit_code for v in mine}))
                cells.append(f"{sum(v.ok for v in mine)}/{len(mine)}, exit {codes}" if mine else "—")
            rows.append([dtype, f"`{relative_suite(suite)}`", f"`{output}`",
                         f"{min(abs(s.expected) for s in sites):.3g} to {max(abs(s.expected) for s in sites):.3g}",
                         f"{sci(min(s.applied for s in sites))} to {sci(max(s.applied for s in sites))}",
                         *cells])
    lines += table(["dtype", "suite", "output", "\\|e\\| faulted", "fault after rounding", *BACKENDS], rows)
    lines += [
        "",
        "*k/n*: data sets in which the fault was caught, of those run; — : the backend cannot run the suite.",
        "",
        "### Smallest fault caught",
        "",
        "Faults tried: 1e-1, 5e-2, 3e-2, 2e-2, 1.5e-2, 1e-2, 5e-3, ... down to the first one below 1e-2",
        "that is not caught in every case, or to the last one above rtol. *allowance* is",
        "`atol/|e| + rtol` at the smallest |e| faulted: the relative fault that the tolerance alone",
        "absorbs there, before the backend's own error adds or subtracts.",
        "",
    ]
    rows = []
    for dtype in FLOAT_DTYPES:
        atol, rtol = ev.defaults[dtype]
        for (suite, output), steps in ev.faults_of(dtype).items():
            smallest_e = min(faulted_magnitudes(steps))
            missed = first_missed(steps)
            where = "none, down to the last fault above rtol"
            if missed:
                delta, verdicts = missed
                backends = sorted({v.backend for v in verdicts if not v.ok})
                where = (f"{sci(delta)}, missed in {sum(not v.ok for v in verdicts)} of {len(verdicts)} cases "
                         f"({', '.join(backends)})")
            rows.append([dtype, f"`{relative_suite(suite)}`", f"`{output}`",
                         sci(atol / smallest_e + rtol),
                         sci(smallest_caught(steps)) if smallest_caught(steps) else "none", where])
    lines += table(["dtype", "suite", "output", "allowance", "smallest fault caught", "first fault missed"], rows)
    return lines


def reproduce(ev):
    env = ev.environment
    return [
        "## Reproducing",
        "",
        "```",
        env["command"],
        "```",
        "",
        f"- Date: {env['date']}",
        f"- Machine: {env['cpu']}; {env['os']}",
        f"- parity: `{env['exe']}`, {env['parity']}; ONNX Runtime library: `{env['ort']}`",
        f"- Python {env['python']}: {env['packages']}",
        f"- {env['runs']} `parity check` runs",
        "",
        "`parity backends` on that machine:",
        "",
        "```",
        env["backends"],
        "```",
        "",
        "The script builds the converted suites and the faulty copies in a temporary directory, reads",
        "the defaults from `src/compare/tolerance.rs` and passes them to every run with `--atol/--rtol`,",
        "so the evidence is about the table in the checkout, whichever build of parity runs it. It",
        "exits 1 when a natural difference fails a default.",
    ]


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def cpu_description():
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = [line.split(":", 1) for line in text.splitlines() if ":" in line]
    model = next((v.strip() for k, v in fields if k.strip() == "model name"), platform.processor() or "unknown")
    count = sum(1 for k, _ in fields if k.strip() == "processor")
    flags = set(next((v.split() for k, v in fields if k.strip() == "flags"), []))
    isa = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512_fp16", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {count} logical CPUs, " + (" ".join(isa) if isa else "none of avx2/fma/f16c/avx512")


def environment(parity, args):
    packages = ", ".join(f"{name} {importlib.metadata.version(name)}"
                         for name in ("numpy", "onnx", "onnxruntime", "ml_dtypes"))
    return {
        "command": " ".join(["python3", "scripts/tolerance-evidence.py", *sys.argv[1:]]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "cpu": cpu_description(),
        "os": platform.platform(),
        "exe": str(args.parity),
        "parity": parity.text("--version"),
        "ort": parity.env.get("ORT_DYLIB_PATH", "found by parity"),
        "python": platform.python_version(),
        "packages": packages,
        "backends": parity.text("backends"),
    }


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parity", type=Path, default=REPO / "target" / "release" / "parity",
                        help="the parity executable (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "tolerances.md",
                        help="where to write the document (default: %(default)s)")
    return parser.parse_args()


def main():
    args = parse_args()
    if not args.parity.is_file():
        die(f"{args.parity}: no parity executable (build it, or pass --parity PATH)")
    parity = Parity(args.parity.resolve(), ort_environment(os.environ))
    unavailable = [line for line in parity.text("backends").splitlines()
                   if line.split()[0] in BACKENDS and line.split()[1] != "available"]
    if unavailable:
        die("every CPU backend must be available:\n" + "\n".join(unavailable))
    defaults = read_defaults(REPO / "src" / "compare" / "tolerance.rs")
    env = environment(parity, args)

    with tempfile.TemporaryDirectory(prefix="tolerance-evidence-") as tmp:
        work = Path(tmp)
        all_sources = sources(work)
        groups, errors, runs_on = [], [], defaultdict(set)
        for source in all_sources:
            print(f"measuring {source.name} ({len(source.suites)} suites)", file=sys.stderr)
            found, failed = measure(parity, source, defaults, runs_on)
            groups += found
            errors += [(source.name, backend, case) for backend, case in failed]
        by_dtype = {"f32": all_sources[0].suites, **{d: s.suites for d, s in zip(("f16", "bf16", "f64"),
                                                                                  all_sources[1:4])}}
        print("injecting faults", file=sys.stderr)
        faults = sensitivity(parity, by_dtype, runs_on, defaults, work / "faults")
        magnitudes = {d: golden_magnitudes(s) for d, s in by_dtype.items()}
    env["runs"] = parity.runs
    evidence = Evidence(defaults, all_sources, groups, errors, faults, magnitudes, env)
    args.out.write_text(render(evidence))
    print(f"wrote {args.out}", file=sys.stderr)

    failing = evidence.failing()
    for g in failing:
        print(f"natural difference fails the {g.dtype} default: {g.source}, {compared(g)} "
              f"uses {percent(g.default_usage)} of the allowance", file=sys.stderr)
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
