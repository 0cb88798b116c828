"""pytest plugin: `parity check` cases and dataset gates as pytest items.

``pytest --parity SUITE_DIR [--parity-backend B ...]`` runs

    parity check SUITE_DIR... [--backend B ...] [PARITY_ARGS...] --format json

once per session, at collection time, and turns every row of the
``parity.report/v1`` JSON into a pytest item:

* ``cases[]``: one item per case x backend, ``parity::SUITE::CASE[BACKEND]``.
  ``pass`` passes, ``fail`` fails with parity's one-line verdict (``message``),
  ``error`` is a pytest error with parity's ``error``.
* ``gates[]``: one item per gate result, ``parity::SUITE::gate:GATE[BACKEND]``
  (``@SLICE`` before the backend for a slice's result), judged by its ``verdict``
  with the gate's ``message``.

The plugin never compares tensors itself: every verdict, figure and message is
parity's. See the package README for the full mapping.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import pytest

try:  # pytest's own failure-representation classes (stable since pytest 3, not re-exported)
    from _pytest._code.code import ReprFileLocation, TerminalRepr
except ImportError:  # pragma: no cover - duck-typed fallback for a future pytest
    ReprFileLocation = None  # type: ignore[assignment,misc]
    TerminalRepr = object  # type: ignore[assignment,misc]

REPORT_SCHEMA = "parity.report/v1"
# Flags the plugin sets itself: a --parity-arg may not override them.
_RESERVED_ARGS = ("--format", "--out", "--help", "-h")
# Exit codes after which parity has written a report to read: 0 pass, 1 fail,
# 2 some case or gate could not be evaluated (or a usage error: then no report),
# 130/143 stopped by a signal (the report is marked "incomplete").
_REPORT_EXIT_CODES = (0, 1, 2, 130, 143)
_STDERR_LINES = 20

_run_key = pytest.StashKey["ParityRun"]()


# --------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("parity", "parity golden-suite checks (pytest-parity)")
    group.addoption(
        "--parity",
        action="append",
        dest="parity_suites",
        default=[],
        metavar="SUITE_DIR",
        help="run `parity check` on this suite (or parent directory of suites; repeatable) "
        "and collect every case x backend and dataset gate as a test item",
    )
    group.addoption(
        "--parity-backend",
        action="append",
        dest="parity_backends",
        default=[],
        metavar="B",
        help="backend to run (repeatable; passed to parity as --backend B); "
        "default: every backend available to parity",
    )
    group.addoption(
        "--parity-bin",
        dest="parity_bin",
        default=None,
        metavar="PATH",
        help="the parity binary (default: $PARITY_BIN, else `parity` on PATH)",
    )
    group.addoption(
        "--parity-arg",
        action="append",
        dest="parity_args",
        default=[],
        metavar="ARG",
        help="extra argument(s) for `parity check` (repeatable; split like a shell word list), "
        "e.g. --parity-arg=--atol=1e-4 or --parity-arg='--gate probs:top1_agreement>=0.99'",
    )


def _extra_args(config: pytest.Config) -> list[str]:
    args: list[str] = []
    for value in config.getoption("parity_args") or []:
        args.extend(shlex.split(value))
    return args


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "parity: a case or dataset gate of a `parity check` run (pytest-parity)"
    )
    if not config.getoption("parity_suites"):
        return
    try:
        extra = _extra_args(config)
    except ValueError as e:
        raise pytest.UsageError(f"--parity-arg: {e}") from None
    for arg in extra:
        name = arg.split("=", 1)[0]
        if name in _RESERVED_ARGS:
            raise pytest.UsageError(
                f"--parity-arg {arg!r}: pytest-parity sets {name} itself "
                "(it reads parity's JSON report; use pytest's --junitxml for a JUnit file)"
            )


# --------------------------------------------------------------------------- running parity


class ParityRunError(Exception):
    """parity could not be run, or did not produce a report: a collection error.

    ``headline`` is the one line for the short summary (and JUnit's message); ``str()``
    is the whole explanation: parity's stderr and the command.
    """

    def __init__(self, headline: str, details: list[str] | None = None) -> None:
        super().__init__("\n".join([headline] + (details or [])))
        self.headline = headline


class ParityRun:
    """One `parity check` invocation and the report it printed."""

    def __init__(
        self, command: list[str], returncode: int, stderr: str, report: dict, seconds: float
    ) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr
        self.report = report
        self.seconds = seconds

    @property
    def command_line(self) -> str:
        return " ".join(shlex.quote(a) for a in self.command)


def _find_binary(config: pytest.Config) -> str:
    option = config.getoption("parity_bin")
    if option:
        source, candidate = "--parity-bin", option
    elif os.environ.get("PARITY_BIN"):
        source, candidate = "PARITY_BIN", os.environ["PARITY_BIN"]
    else:
        source, candidate = "PATH", "parity"
    if os.sep in candidate or (os.altsep and os.altsep in candidate):
        path = Path(candidate)
        if not path.is_absolute():
            path = config.invocation_params.dir / path
        if not path.is_file() or not os.access(path, os.X_OK):
            raise ParityRunError(f"parity binary {candidate} (from {source}) is not an executable file")
        return str(path)
    found = shutil.which(candidate)
    if found is None:
        raise ParityRunError(
            f"parity binary not found: no `{candidate}` on PATH, and neither --parity-bin "
            "nor PARITY_BIN names one"
        )
    return found


def _tail(text: str, lines: int = _STDERR_LINES) -> list[str]:
    rows = [line.rstrip() for line in text.strip().splitlines()]
    if len(rows) > lines:
        rows = [f"... ({len(rows) - lines} earlier lines left out)"] + rows[-lines:]
    return rows


def _run_parity(config: pytest.Config) -> ParityRun:
    binary = _find_binary(config)
    command = [binary, "check", *config.getoption("parity_suites")]
    for backend in config.getoption("parity_backends") or []:
        command += ["--backend", backend]
    command += _extra_args(config)
    command += ["--format", "json"]
    printable = " ".join(shlex.quote(a) for a in command)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command,
            cwd=str(config.invocation_params.dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as e:
        raise ParityRunError(f"could not start {binary}: {e}", [f"command: {printable}"]) from None
    seconds = time.monotonic() - started
    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")

    report: Any = None
    if stdout.strip():
        try:
            report = json.loads(stdout)
        except ValueError:
            report = None
    schema = report.get("schema") if isinstance(report, dict) else None
    is_report = (
        isinstance(schema, str)
        and schema.startswith("parity.report/")
        and isinstance(report.get("cases"), list)
    )
    rc = proc.returncode
    if is_report and rc in _REPORT_EXIT_CODES:
        if schema != REPORT_SCHEMA:
            raise ParityRunError(
                f"parity wrote a {schema} report; this pytest-parity reads {REPORT_SCHEMA}",
                [f"command: {printable}"],
            )
        return ParityRun(command, rc, stderr, report, seconds)

    if rc < 0:
        what = f"parity check was killed by signal {-rc}"
    elif rc == 2:
        what = "parity check exited 2"
    elif rc in (0, 1):
        what = f"parity check exited {rc} but printed no {REPORT_SCHEMA} JSON report"
    else:
        what = f"parity check exited {rc}"
    lines = _tail(stderr)
    # the headline carries parity's own error line (`error: no/such/suite: no such file...`)
    errors = [line for line in lines if line.startswith("error")]
    cause = errors[0] if errors else (lines[-1] if lines else "")
    headline = f"{what}: {cause}" if cause else what
    details = ["stderr:"] + ["  " + line for line in lines] if lines else []
    if not stderr.strip() and stdout.strip():
        details += ["stdout:"] + ["  " + line for line in _tail(stdout)]
    details.append(f"command: {printable}")
    raise ParityRunError(headline, details)


# --------------------------------------------------------------------------- formatting


def _num(value: Any) -> str:
    """A report number as text: JSON's shortest round-trip form; null for None."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return str(value)


def _short(value: Any) -> str:
    """A number for a one-line message: 5 significant digits, `1e-5` rather than `1e-05`."""
    if isinstance(value, float):
        text = f"{value:.5g}"
        return re.sub(r"e([+-])0*(\d)", lambda m: "e" + m.group(1).lstrip("+") + m.group(2), text)
    return _num(value)


def _index(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return _num(value)


def _output_message(out: dict) -> str:
    """One line for a failing output, for reports written before cases[].message existed."""
    name = out.get("name", "?")
    if out.get("problem"):
        return f"{name}: {out['problem']}"
    return (
        f"{name}: {_num(out.get('mismatched'))}/{_num(out.get('total'))} mismatched, "
        f"worst {_index(out.get('worst_index'))}: expected {_short(out.get('expected'))}, "
        f"actual {_short(out.get('actual'))} "
        f"(atol {_short(out.get('atol'))}, rtol {_short(out.get('rtol'))})"
    )


def _generation_message(gen: dict) -> str | None:
    if gen.get("problem"):
        return f"generation: {gen['problem']}"
    div = gen.get("divergence")
    if isinstance(div, dict):
        return (
            f"generation diverges at step {_num(div.get('step'))}: expected token "
            f"{_num(div.get('expected'))}, actual {_num(div.get('actual'))}"
        )
    if gen.get("first_step_out_of_tolerance") is not None:
        return f"generation: logits out of tolerance from step {gen['first_step_out_of_tolerance']}"
    return None


def case_failure_message(row: dict) -> str:
    """A failed case's one-line verdict: parity's `message`, else built from its outputs."""
    message = row.get("message")
    if isinstance(message, str) and message:
        return message
    failing = [o for o in row.get("outputs") or [] if o.get("verdict") == "fail"]
    if failing:
        line = _output_message(failing[0])
        if len(failing) > 1:
            line += f" (+{len(failing) - 1} more failing outputs)"
        return line
    gen = row.get("generation")
    if isinstance(gen, dict):
        line = _generation_message(gen)
        if line:
            return line
    return "failed (the report names no failing output)"


def case_error_message(row: dict) -> str:
    error = row.get("error")
    return error if isinstance(error, str) and error else "error (parity gave no message)"


def gate_message(row: dict) -> str:
    message = row.get("message")
    if isinstance(message, str) and message:
        return message
    return f"{row.get('gate', '?')}: {row.get('verdict', '?')} {_num(row.get('value'))}"


def output_summary(out: dict) -> str:
    """Every figure of one output row, on one line (JUnit property and failure body)."""
    parts = [str(out.get("verdict", "?"))]
    if out.get("dtype"):
        parts.append(str(out["dtype"]))
    if "shape" in out:
        parts.append(_index(out.get("shape")))
    if out.get("mode"):
        parts.append(f"mode {out['mode']}")
    if out.get("gated"):
        parts.append("gated")
    text = " ".join(parts) + ":"
    figures = [f"{_num(out.get('mismatched'))}/{_num(out.get('total'))} mismatched"]
    for key in ("max_abs_err", "max_rel_err", "mean_abs_err", "cosine"):
        if key in out:
            figures.append(f"{key} {_num(out[key])}")
    if "worst_index" in out:
        figures.append(
            f"worst {_index(out.get('worst_index'))}: expected {_num(out.get('expected'))}, "
            f"actual {_num(out.get('actual'))}"
        )
    for key in ("atol", "rtol", "max_ulp", "ulp_limit", "min_cosine", "k", "topk_agreement"):
        if key in out:
            figures.append(f"{key} {_num(out[key])}")
    if "tolerance_used" in out:
        figures.append(f"tolerance_used {_num(out['tolerance_used'])}")
    if out.get("problem"):
        figures.append(f"problem: {out['problem']}")
    return text + " " + ", ".join(figures)


def generation_summary(gen: dict) -> str:
    parts = [
        f"steps_compared {_num(gen.get('steps_compared'))}",
        f"first_step_out_of_tolerance {_num(gen.get('first_step_out_of_tolerance'))}",
    ]
    div = gen.get("divergence")
    if isinstance(div, dict):
        parts.append(
            f"divergence at step {_num(div.get('step'))} (expected {_num(div.get('expected'))}, "
            f"actual {_num(div.get('actual'))}, near_tie {_num(div.get('near_tie'))})"
        )
    else:
        parts.append("divergence null")
    if gen.get("problem"):
        parts.append(f"problem: {gen['problem']}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- failure repr


class ParityOutcome(Exception):
    """Raised by an item whose row parity judged fail or error."""

    def __init__(self, message: str, lines: list[str], path: str) -> None:
        super().__init__(message)
        self.message = message
        self.lines = lines
        self.path = path


class ParityMismatch(ParityOutcome):
    """parity verdict `fail`: raised in the call phase, a pytest failure."""


class ParityCaseError(ParityOutcome):
    """parity verdict `error`: raised in the setup phase, a pytest error."""


class _Crash:
    def __init__(self, path: str, lineno: int, message: str) -> None:
        self.path, self.lineno, self.message = path, lineno, message

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ParityRepr(TerminalRepr):  # type: ignore[misc,valid-type]
    """A failure shown as parity's words only: the one-line verdict, then the details.

    ``reprcrash.message`` is the one-line verdict, which pytest uses for the short test
    summary (``FAILED nodeid - MESSAGE``) and for JUnit's ``failure message=``; the
    lines are the body (terminal and JUnit ``<failure>`` text).
    """

    def __init__(self, message: str, lines: list[str], path: str) -> None:
        if ReprFileLocation is not None:
            self.reprcrash = ReprFileLocation(path, 0, message)
        else:  # pragma: no cover
            self.reprcrash = _Crash(path, 0, message)
        self.lines = lines

    def toterminal(self, tw: Any) -> None:
        for line in self.lines:
            tw.line(line)

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        return f"<ParityRepr {self.reprcrash.message!r}>"


# --------------------------------------------------------------------------- nodes


def _display_suite(suite: str, config: pytest.Config) -> str:
    """The suite as a node name: relative to pytest's rootdir when inside it."""
    absolute = Path(os.path.normpath(config.invocation_params.dir / suite))
    try:
        rel = absolute.relative_to(config.rootpath)
    except ValueError:
        return Path(os.path.normpath(suite)).as_posix()
    return rel.as_posix() or "."


class ParityCollector(pytest.Collector):
    """The `parity` node: runs parity (once) and yields one collector per suite."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        run = _run_parity(self.config)
        self.config.stash[_run_key] = run
        _add_junit_globals(self.config, run)
        report = run.report
        env = report.get("environment") or {}
        suites_meta = {s.get("suite"): s for s in report.get("suites") or [] if isinstance(s, dict)}

        rows: dict[str, list[tuple[str, dict]]] = {}
        for row in report.get("cases") or []:
            rows.setdefault(str(row.get("suite", "?")), []).append(("case", row))
        for row in report.get("gates") or []:
            rows.setdefault(str(row.get("suite", "?")), []).append(("gate", row))

        nodes: list[pytest.Item | pytest.Collector] = []
        for suite, suite_rows in rows.items():
            nodes.append(
                SuiteCollector.from_parent(
                    self,
                    name=_display_suite(suite, self.config),
                    path=Path(os.path.normpath(self.config.invocation_params.dir / suite)),
                    suite=suite,
                    rows=suite_rows,
                    suite_meta=suites_meta.get(suite) or {},
                    environment=env,
                )
            )
        if run.returncode != 0 and not _any_not_passing(report):
            # parity said "not all good" but no row says why: never let pytest pass.
            nodes.append(RunItem.from_parent(self, name="exit_status", run=run))
        return nodes

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException]
    ) -> Any:
        if isinstance(excinfo.value, ParityRunError):
            return ParityRepr(
                excinfo.value.headline, str(excinfo.value).splitlines(), str(self.path)
            )
        return super().repr_failure(excinfo)


def _any_not_passing(report: dict) -> bool:
    rows = list(report.get("cases") or []) + list(report.get("gates") or [])
    return any(r.get("verdict") != "pass" for r in rows)


class SuiteCollector(pytest.Collector):
    """One suite directory of the report: its case and gate rows, in report order."""

    def __init__(
        self,
        *,
        suite: str,
        rows: list[tuple[str, dict]],
        suite_meta: dict,
        environment: dict,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.rows = rows
        self.suite_meta = suite_meta
        self.environment = environment

    def collect(self) -> Iterable[pytest.Item]:
        seen: dict[str, int] = {}
        for kind, row in self.rows:
            backend = str(row.get("backend", "?"))
            if kind == "case":
                base = str(row.get("case", "?"))
            else:
                base = "gate:" + "".join(str(row.get("gate", "?")).split())
                if row.get("scope") == "slice" and row.get("slice") is not None:
                    base += f"@{row['slice']}"
            name = f"{base}[{backend}]"
            seen[name] = seen.get(name, 0) + 1
            if seen[name] > 1:  # never two items with one node id
                name = f"{base}[{backend}-{seen[name]}]"
            cls = CaseItem if kind == "case" else GateItem
            yield cls.from_parent(self, name=name, row=row)


class ParityItem(pytest.Item):
    """A row of the parity report. Subclasses say how the row is worded."""

    def __init__(self, *, row: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.row = row
        self.verdict = row.get("verdict")
        self.add_marker("parity")
        self.user_properties.extend(self.properties())

    @property
    def suite_node(self) -> SuiteCollector:
        assert isinstance(self.parent, SuiteCollector)
        return self.parent

    def properties(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def failure_message(self) -> str:
        raise NotImplementedError

    def error_message(self) -> str:
        raise NotImplementedError

    def details(self) -> list[str]:
        raise NotImplementedError

    @property
    def latency_s(self) -> float | None:
        return None

    def setup(self) -> None:
        if self.verdict == "error":
            message = self.error_message()
            raise ParityCaseError(message, [message] + self.details(), str(self.path))
        if self.verdict not in ("pass", "fail"):
            message = f"parity reported an unknown verdict {self.verdict!r}"
            raise ParityCaseError(message, [message] + self.details(), str(self.path))

    def runtest(self) -> None:
        if self.verdict == "fail":
            message = self.failure_message()
            raise ParityMismatch(message, [message] + self.details(), str(self.path))

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> Any:
        if isinstance(excinfo.value, ParityOutcome):
            value = excinfo.value
            return ParityRepr(value.message, value.lines, value.path)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.suite_node.name}::{self.name}"


class CaseItem(ParityItem):
    """cases[]: one data set of a suite on one backend."""

    @property
    def latency_s(self) -> float | None:
        latency = self.row.get("latency_ms")
        return latency / 1000.0 if isinstance(latency, (int, float)) else None

    def failure_message(self) -> str:
        return case_failure_message(self.row)

    def error_message(self) -> str:
        return case_error_message(self.row)

    def properties(self) -> list[tuple[str, str]]:
        row = self.row
        props = [
            ("suite", str(row.get("suite"))),
            ("case", str(row.get("case"))),
            ("backend", str(row.get("backend"))),
            ("reference", str(row.get("reference"))),
            ("device", _num(row.get("device"))),
            ("latency_ms", _num(row.get("latency_ms"))),
            ("verdict", str(row.get("verdict"))),
        ]
        for key in ("step", "slice"):
            if key in row:
                props.append((key, _num(row[key])))
        if row.get("error") is not None:
            props.append(("error", str(row["error"])))
        if row.get("error_op") is not None:
            props.append(("error_op", str(row["error_op"])))
        for out in row.get("outputs") or []:
            props.append((f"output.{out.get('name', '?')}", output_summary(out)))
        for skipped in row.get("skipped_outputs") or []:
            props.append((f"skipped_output.{skipped.get('name', '?')}", str(skipped.get("reason"))))
        if isinstance(row.get("generation"), dict):
            props.append(("generation", generation_summary(row["generation"])))
        meta = self.suite_node.suite_meta
        if meta.get("model_sha256"):
            props.append(("model_sha256", str(meta["model_sha256"])))
        if isinstance(meta.get("candidate"), dict):
            props.append(("candidate", str(meta["candidate"].get("path"))))
        return props

    def details(self) -> list[str]:
        row = self.row
        head = (
            f"suite {row.get('suite')}, case {row.get('case')}, backend {row.get('backend')} "
            f"({_num(row.get('device'))}), reference {row.get('reference')}"
        )
        for key in ("step", "slice"):
            if key in row:
                head += f", {key} {_num(row[key])}"
        lines = [head, f"latency_ms: {_num(row.get('latency_ms'))}"]
        if row.get("error_op"):
            lines.append(f"error_op: {row['error_op']}")
        outputs = row.get("outputs") or []
        if outputs:
            lines.append("outputs:")
            lines += [f"  {o.get('name', '?')}: {output_summary(o)}" for o in outputs]
        for skipped in row.get("skipped_outputs") or []:
            lines.append(f"skipped output {skipped.get('name')}: {skipped.get('reason')}")
        if isinstance(row.get("generation"), dict):
            lines.append(f"generation: {generation_summary(row['generation'])}")
        return lines


class GateItem(ParityItem):
    """gates[]: one dataset gate result (dataset, one slice, or disparity)."""

    def failure_message(self) -> str:
        return gate_message(self.row)

    def error_message(self) -> str:
        return gate_message(self.row)

    def properties(self) -> list[tuple[str, str]]:
        row = self.row
        props = [
            (key, _num(row.get(key)))
            for key in ("suite", "backend", "reference", "gate", "output", "metric", "scope")
        ]
        if "slice" in row:
            props.append(("slice", _num(row["slice"])))
        props += [("value", _num(row.get("value"))), ("n", _num(row.get("n")))]
        if isinstance(row.get("interval"), list):
            props.append(("interval", _index(row["interval"])))
        props += [("verdict", str(row.get("verdict"))), ("message", gate_message(row))]
        return props

    def details(self) -> list[str]:
        row = self.row
        head = (
            f"suite {row.get('suite')}, gate {row.get('gate')}, backend {row.get('backend')}, "
            f"reference {row.get('reference')}, scope {row.get('scope')}"
        )
        if "slice" in row:
            head += f", slice {row['slice']}"
        line = f"value {_num(row.get('value'))}, n {_num(row.get('n'))}"
        if isinstance(row.get("interval"), list):
            line += f", 95% interval {_index(row['interval'])}"
        return [head, line]


class RunItem(pytest.Item):
    """Only when parity exited non-zero but no case or gate row failed: says so."""

    def __init__(self, *, run: ParityRun, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.add_marker("parity")
        self.user_properties.append(("command", run.command_line))
        self.user_properties.append(("exit_code", str(run.returncode)))

    def runtest(self) -> None:
        message = (
            f"parity check exited {self.run.returncode} although every case and gate "
            f"of its report passed (report verdict {self.run.report.get('verdict')!r})"
        )
        lines = [message] + ["  " + line for line in _tail(self.run.stderr)]
        lines.append(f"command: {self.run.command_line}")
        raise ParityMismatch(message, lines, str(self.path))

    def repr_failure(  # type: ignore[override]
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> Any:
        if isinstance(excinfo.value, ParityOutcome):
            return ParityRepr(excinfo.value.message, excinfo.value.lines, excinfo.value.path)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


# --------------------------------------------------------------------------- hooks


def _parity_only(config: pytest.Config) -> bool:
    """No test paths on the command line: collect the parity items only.

    `pytest --parity models/` checks suites; it does not also collect the rootdir's (or
    testpaths') Python tests. Name test paths to get both: `pytest tests/ --parity models/`.
    """
    source = getattr(config, "args_source", None)
    return source is not None and source != pytest.Config.ArgsSource.ARGS


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[Any]:
    rep = yield
    if isinstance(collector, pytest.Session) and collector.config.getoption("parity_suites"):
        node = ParityCollector.from_parent(
            collector, name="parity", nodeid="parity", path=collector.config.rootpath
        )
        if _parity_only(collector.config):
            rep.result = [node]
        else:
            rep.result.append(node)
    return rep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    rep = yield
    if isinstance(item, ParityItem):
        excinfo = call.excinfo
        if excinfo is not None and isinstance(excinfo.value, ParityOutcome) and call.when != "call":
            # an errored row raises in setup, where pytest would print a traceback
            rep.longrepr = item.repr_failure(excinfo)
        if call.when == "call" and item.latency_s is not None:
            # the case's inference time as parity measured it (parity's own JUnit `time`)
            rep.duration = item.latency_s
    return rep


def _add_junit_globals(config: pytest.Config, run: ParityRun) -> None:
    """The run's environment as <testsuite> properties of pytest's --junitxml."""
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    report = run.report
    env = report.get("environment") or {}
    props: list[tuple[str, str]] = [
        ("parity.schema", str(report.get("schema"))),
        ("parity.version", _num(env.get("parity"))),
        ("parity.command", run.command_line),
        ("parity.exit_code", str(run.returncode)),
        ("parity.verdict", str(report.get("verdict"))),
    ]
    for key in ("host", "cpu", "os", "gpu"):
        if key in env:
            props.append((key, _num(env[key])))
    for backend in env.get("backends") or []:
        name = backend.get("name", "?")
        props.append((f"backend.{name}.version", _num(backend.get("version"))))
        props.append((f"backend.{name}.device", _num(backend.get("device"))))
    for skipped in env.get("skipped_backends") or []:
        props.append((f"skipped_backend.{skipped.get('name', '?')}", str(skipped.get("reason"))))
    for i, warning in enumerate(report.get("warnings") or []):
        text = warning.get("message", "")
        if warning.get("suite"):
            text = f"{warning['suite']}: {text}"
        props.append((f"warning.{i}", text))
    if isinstance(report.get("incomplete"), dict):
        props.append(("incomplete", str(report["incomplete"].get("signal"))))
    for name, value in props:
        xml.add_global_property(name, value)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    run = terminalreporter.config.stash.get(_run_key, None)
    if run is None:
        return
    report = run.report
    env = report.get("environment") or {}
    summary = report.get("summary") or {}
    tr = terminalreporter
    tr.section("parity")
    tr.write_line(
        f"ran once: {run.command_line} (exit {run.returncode}, {run.seconds:.2f} s, "
        f"parity {env.get('parity', '?')})"
    )
    line = (
        f"report: verdict {report.get('verdict')}, {summary.get('cases', '?')} cases: "
        f"{summary.get('passed', '?')} passed, {summary.get('failed', '?')} failed, "
        f"{summary.get('errors', '?')} errors"
    )
    gates = summary.get("gates")
    if isinstance(gates, dict):
        line += (
            f"; {gates.get('total', '?')} gates: {gates.get('passed', '?')} passed, "
            f"{gates.get('failed', '?')} failed, {gates.get('errors', '?')} errors"
        )
    tr.write_line(line)
    if isinstance(report.get("incomplete"), dict):
        tr.write_line(f"incomplete: stopped by {report['incomplete'].get('signal')}")
    if not terminalreporter.config.getoption("parity_backends"):
        # parity chose the backends: say which it could not run, and why
        for skipped in env.get("skipped_backends") or []:
            reason = str(skipped.get("reason", ""))
            if not reason.startswith("not requested"):
                tr.write_line(f"not run: {skipped.get('name')} ({reason})")
    for warning in report.get("warnings") or []:
        prefix = f"{warning['suite']}: " if warning.get("suite") else ""
        tr.write_line(f"warning: {prefix}{warning.get('message', '')}")
