"""Tests of pytest-parity with pytest's `pytester`, against a real parity binary.

PARITY_BIN names the binary (scripts/test-pytest-plugin.sh sets it); ORT_DYLIB_PATH is
passed through to it for the ort-cpu backend. The bundled suites are the repository's
models/ (PARITY_MODELS overrides). Expected items and messages always come from a JSON
run of the same binary made by the test itself, never from hard-coded counts.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

BACKENDS = ["ort-cpu", "tract-cpu"]
BACKEND_ARGS = [arg for b in BACKENDS for arg in ("--parity-backend", b)]
MODELS = Path(os.environ.get("PARITY_MODELS", Path(__file__).resolve().parents[3] / "models"))


@pytest.fixture(scope="session")
def parity_bin() -> str:
    value = os.environ.get("PARITY_BIN")
    if not value:
        pytest.fail("set PARITY_BIN to a parity binary (scripts/test-pytest-plugin.sh does)", pytrace=False)
    path = Path(value).resolve()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"PARITY_BIN={value} is not an executable file", pytrace=False)
    return str(path)


def parity_json(parity_bin: str, cwd: Path, *suites: str, extra: tuple[str, ...] = ()) -> dict:
    """The report the plugin should map, from our own run of the same binary."""
    cmd = [parity_bin, "check", *suites]
    for backend in BACKENDS:
        cmd += ["--backend", backend]
    cmd += [*extra, "--format", "json"]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode in (0, 1, 2), proc.stderr
    return json.loads(proc.stdout)


def case_nodeid(row: dict) -> str:
    return f"parity::{row['suite']}::{row['case']}[{row['backend']}]"


def copy_suites(dest: Path, *names: str) -> None:
    for name in names:
        shutil.copytree(MODELS / name, dest / name)


def outcomes(reprec: pytest.HookRecorder) -> dict[str, set[str]]:
    passed, skipped, failed = reprec.listoutcomes()
    return {
        "passed": {r.nodeid for r in passed},
        "skipped": {r.nodeid for r in skipped},
        "failed": {r.nodeid for r in failed},
    }


# ---- damaging a golden: a TensorProto read with nothing but the standard library ----


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def scale_largest_float(path: Path, factor: float) -> None:
    """Multiply the largest-magnitude element of a float32 TensorProto (raw_data) in place.

    Walks the protobuf wire format: field 2 data_type (1 = FLOAT), field 9 raw_data
    (little-endian). Same length after the change, so nothing else in the file moves.
    """
    buf = bytearray(path.read_bytes())
    pos, dtype, span = 0, None, None
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            if field == 2:
                dtype = value
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if field == 9:
                span = (pos, pos + length)
            pos += length
        else:
            raise ValueError(f"{path}: unexpected wire type {wire}")
    assert dtype == 1 and span is not None, f"{path}: not a float32 tensor in raw_data"
    count = (span[1] - span[0]) // 4
    values = list(struct.unpack_from(f"<{count}f", buf, span[0]))
    i = max(range(count), key=lambda k: abs(values[k]))
    struct.pack_into("<f", buf, span[0] + 4 * i, values[i] * factor)
    path.write_bytes(bytes(buf))


def _key(field: int, wire: int) -> bytes:
    return _encode_varint(field << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def write_float_tensor(path: Path, name: str, dims: list[int]) -> None:
    """A zero float32 TensorProto: dims (1), data_type FLOAT (2), name (8), raw_data (9)."""
    count = 1
    for d in dims:
        count *= d
    raw = bytes(4 * count)
    buf = b"".join(_key(1, 0) + _encode_varint(d) for d in dims)
    buf += _key(2, 0) + _encode_varint(1)
    buf += _key(8, 2) + _encode_varint(len(name)) + name.encode()
    buf += _key(9, 2) + _encode_varint(len(raw)) + raw
    path.write_bytes(buf)


# ------------------------------------------------------------------------------ tests


def test_bundled_suites_one_passing_item_per_case_and_backend(pytester, parity_bin):
    suites = sorted(p.name for p in MODELS.iterdir() if (p / "model.onnx").is_file())
    assert suites, f"no suites under {MODELS}"
    copy_suites(pytester.path / "models", *suites)
    report = parity_json(parity_bin, pytester.path, "models")
    assert report["verdict"] == "pass"
    assert {Path(c["suite"]).name for c in report["cases"]} == set(suites)
    expected = {case_nodeid(c) for c in report["cases"]}
    assert len(expected) == len(report["cases"]) == report["summary"]["cases"]

    # a wrapper that counts its runs: parity must run once for the whole session
    counter = pytester.path / "runs.txt"
    wrapper = pytester.path / "parity-wrapper"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{counter}"\nexec "{parity_bin}" "$@"\n')
    wrapper.chmod(0o755)

    reprec = pytester.inline_run("--parity", "models", *BACKEND_ARGS, "--parity-bin", str(wrapper))
    got = outcomes(reprec)
    assert got["passed"] == expected
    assert not got["failed"] and not got["skipped"]
    assert reprec.ret == 0
    assert counter.read_text().splitlines() == ["run"]


def test_damaged_golden_fails_exactly_that_case_with_parity_message(pytester, parity_bin):
    copy_suites(pytester.path, "mlp")
    damaged = pytester.path / "mlp" / "test_data_set_1" / "output_0.pb"
    scale_largest_float(damaged, 1.01)
    toml = pytester.path / "mlp" / "parity.toml"
    if toml.exists():  # a recorded suite lists its data files' hashes: unlist the damaged one
        lines = toml.read_text().splitlines(keepends=True)
        toml.write_text("".join(line for line in lines if "test_data_set_1/output_0.pb" not in line))

    report = parity_json(parity_bin, pytester.path, "mlp")
    failed_rows = [c for c in report["cases"] if c["verdict"] == "fail"]
    assert {(c["case"], c["backend"]) for c in failed_rows} == {
        ("test_data_set_1", b) for b in BACKENDS
    }
    messages = {case_nodeid(c): c["message"] for c in failed_rows}
    assert all(m.startswith("logits: ") for m in messages.values()), messages

    junit = pytester.path / "junit.xml"
    reprec = pytester.inline_run("--parity", "mlp", *BACKEND_ARGS, f"--junitxml={junit}")
    got = outcomes(reprec)
    assert got["failed"] == set(messages)
    assert got["passed"] == {case_nodeid(c) for c in report["cases"]} - set(messages)
    assert reprec.ret == 1
    for rep in reprec.getfailures():
        assert rep.longrepr.reprcrash.message == messages[rep.nodeid]
        assert str(rep.longrepr).splitlines()[0] == messages[rep.nodeid]
        assert "logits: fail f32" in str(rep.longrepr)

    # pytest's own --junitxml: failure message is parity's line, properties carry the row
    root = ET.parse(junit).getroot()
    cases = {
        f"{tc.get('classname')}::{tc.get('name')}": tc for tc in root.iter("testcase")
    }
    assert len(cases) == len(report["cases"])
    for row in report["cases"]:
        tc = cases[f"parity.{row['suite']}::{row['case']}[{row['backend']}]"]
        props = {p.get("name"): p.get("value") for p in tc.iter("property")}
        assert props["backend"] == row["backend"]
        assert props["reference"] == "golden"
        assert props["device"] == row["device"]
        assert float(props["latency_ms"]) > 0  # measured again in the plugin's own run
        assert {"output.logits", "output.probs"} <= set(props)
        failure = tc.find("failure")
        if row["verdict"] == "fail":
            assert failure is not None and failure.get("message") == row["message"]
            assert props["output.logits"].startswith("fail ")
        else:
            assert failure is None
    suite_props = {p.get("name"): p.get("value") for p in root.find("testsuite/properties")}
    assert suite_props["parity.schema"] == "parity.report/v1"
    assert suite_props["parity.exit_code"] == "1"

    # the terminal's short summary carries the same line
    result = pytester.runpytest("--parity", "mlp", *BACKEND_ARGS, "-rf", "-vv")
    for nodeid, message in messages.items():
        assert f"FAILED {nodeid} - {message}" in result.stdout.str()


def test_k_selects_by_case_and_by_backend(pytester, parity_bin):
    copy_suites(pytester.path, "mlp", "cnn")
    report = parity_json(parity_bin, pytester.path, "mlp", "cnn")
    total = len(report["cases"])

    for expr, keep in [
        ("test_data_set_0", lambda c: c["case"] == "test_data_set_0"),
        ("tract-cpu", lambda c: c["backend"] == "tract-cpu"),
        ("test_data_set_1 and ort-cpu and mlp", lambda c: (c["case"], c["backend"], c["suite"])
         == ("test_data_set_1", "ort-cpu", "mlp")),
    ]:
        selected = {case_nodeid(c) for c in report["cases"] if keep(c)}
        assert selected
        reprec = pytester.inline_run("--parity", "mlp", "--parity", "cnn", *BACKEND_ARGS, "-k", expr)
        got = outcomes(reprec)
        assert got["passed"] == selected, expr
        assert len(reprec.getcalls("pytest_deselected")[0].items) == total - len(selected)


def test_bad_suite_path_is_a_collection_error_naming_it(pytester, parity_bin):
    result = pytester.runpytest("--parity", "no/such/suite", *BACKEND_ARGS)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    out = result.stdout.str()
    assert "ERROR collecting parity" in out
    assert "parity check exited 2: error: no/such/suite" in out
    assert "INTERNALERROR" not in out and "Traceback" not in out
    result.stdout.fnmatch_lines(["ERROR parity - parity check exited 2: error: no/such/suite*"])


def test_errored_case_is_a_pytest_error_with_parity_error(pytester, parity_bin):
    """A case parity could not evaluate: exit 2 *with* a report, mapped row by row."""
    copy_suites(pytester.path, "mlp")
    # x is f32 [batch, 64]: give data set 2 a [16, 63] input, which no backend can run
    write_float_tensor(pytester.path / "mlp" / "test_data_set_2" / "input_0.pb", "x", [16, 63])
    report = parity_json(parity_bin, pytester.path, "mlp")
    errored = {case_nodeid(c): c["error"] for c in report["cases"] if c["verdict"] == "error"}
    assert {n.split("::")[-1] for n in errored} == {f"test_data_set_2[{b}]" for b in BACKENDS}

    reprec = pytester.inline_run("--parity", "mlp", *BACKEND_ARGS)
    errors = [r for r in reprec.getreports("pytest_runtest_logreport") if r.when == "setup" and r.failed]
    assert {r.nodeid: r.longrepr.reprcrash.message for r in errors} == errored
    assert len(outcomes(reprec)["passed"]) == len(report["cases"]) - len(errored)


def test_gates_are_items(pytester, parity_bin):
    copy_suites(pytester.path, "mlp")
    gates = ("--gate=probs:top1_agreement>=0.99", "--gate=probs:top1_agreement<=0.5")
    report = parity_json(parity_bin, pytester.path, "mlp", extra=gates)
    assert len(report["gates"]) == 2 * len(BACKENDS)
    reprec = pytester.inline_run(
        "--parity", "mlp", *BACKEND_ARGS, *(f"--parity-arg={g}" for g in gates), "-k", "gate"
    )
    got = outcomes(reprec)
    want = {
        f"parity::mlp::gate:{g['gate']}[{g['backend']}]": g for g in report["gates"]
    }
    assert got["passed"] | got["failed"] == set(want)
    assert got["failed"] == {n for n, g in want.items() if g["verdict"] == "fail"}
    assert got["failed"] and got["passed"]
    for rep in reprec.getfailures():
        assert rep.longrepr.reprcrash.message == want[rep.nodeid]["message"]


# ---- the mapping itself, with a stand-in binary that prints a fixed report ----


def fake_parity(pytester: pytest.Pytester, report: dict | None, code: int, stderr: str = "") -> str:
    data = pytester.path / "fake-report.json"
    data.write_text(json.dumps(report) if report is not None else "")
    script = pytester.path / "fake-parity"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.stdout.write(open({str(data)!r}).read())\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.exit({code})\n"
    )
    script.chmod(0o755)
    return str(script)


def row(case: str, verdict: str, **extra) -> dict:
    base = {
        "suite": "s", "case": case, "backend": "ort-cpu", "reference": "golden",
        "verdict": verdict, "error": None, "latency_ms": 1.5, "device": "cpu", "outputs": [],
    }
    base.update(extra)
    return base


def test_report_written_before_message_existed(pytester):
    failing = {
        "name": "probs", "verdict": "fail", "dtype": "f32", "shape": [1, 10], "atol": 1e-5,
        "rtol": 1e-4, "max_abs_err": 0.1, "max_rel_err": 1.0, "mismatched": 3, "total": 10,
        "worst_index": [0, 4], "expected": 0.1, "actual": 0.2,
    }
    report = {
        "schema": "parity.report/v1", "verdict": "error",
        "environment": {"parity": "0.0.9", "backends": []},
        "summary": {"cases": 3, "passed": 1, "failed": 1, "errors": 1},
        "cases": [
            row("test_data_set_0", "pass"),
            row("test_data_set_1", "fail", outputs=[failing]),
            row("test_data_set_2", "error", error="tract: unsupported op Foo", latency_ms=None),
        ],
        "gates": [{
            "suite": "s", "backend": "ort-cpu", "reference": "golden", "gate": "probs:top1_agreement>=0.99",
            "output": "probs", "metric": "top1_agreement", "scope": "slice", "slice": "night",
            "value": 0.5, "n": 2, "verdict": "fail", "message": "probs:top1_agreement>=0.99 [slice night]: fail 0.5",
        }],
    }
    binary = fake_parity(pytester, report, 2)
    reprec = pytester.inline_run("--parity", "s", "--parity-bin", binary)
    got = outcomes(reprec)
    assert got["passed"] == {"parity::s::test_data_set_0[ort-cpu]"}
    fails = {r.nodeid: r.longrepr.reprcrash.message for r in reprec.getfailures() if r.when == "call"}
    assert fails == {
        "parity::s::test_data_set_1[ort-cpu]":
            "probs: 3/10 mismatched, worst [0, 4]: expected 0.1, actual 0.2 (atol 1e-5, rtol 0.0001)",
        "parity::s::gate:probs:top1_agreement>=0.99@night[ort-cpu]":
            "probs:top1_agreement>=0.99 [slice night]: fail 0.5",
    }
    errors = {r.nodeid: r.longrepr.reprcrash.message for r in reprec.getfailures() if r.when == "setup"}
    assert errors == {"parity::s::test_data_set_2[ort-cpu]": "tract: unsupported op Foo"}


def test_nonzero_exit_with_all_rows_passing_still_fails(pytester):
    report = {
        "schema": "parity.report/v1", "verdict": "fail", "environment": {},
        "summary": {"cases": 1, "passed": 1, "failed": 0, "errors": 0},
        "cases": [row("test_data_set_0", "pass")],
    }
    binary = fake_parity(pytester, report, 1, stderr="something went wrong\n")
    reprec = pytester.inline_run("--parity", "s", "--parity-bin", binary)
    got = outcomes(reprec)
    assert got["failed"] == {"parity::exit_status"}
    assert reprec.ret == 1


def test_crash_without_report_is_a_collection_error(pytester):
    binary = fake_parity(pytester, None, 101, stderr="thread 'main' panicked at src/x.rs:1:1\n")
    result = pytester.runpytest("--parity", "s", "--parity-bin", binary)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*parity check exited 101: thread 'main' panicked*"])


def test_missing_binary_and_reserved_args_are_clear_errors(pytester):
    result = pytester.runpytest("--parity", "s", "--parity-bin", "does/not/exist")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*parity binary does/not/exist (from --parity-bin) is not an executable file*"])

    result = pytester.runpytest("--parity", "s", "--parity-arg=--format=junit")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*pytest-parity sets --format itself*"])
