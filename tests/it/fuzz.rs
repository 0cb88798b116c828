//! `parity fuzz` and `--isolate` on real models: a planted NaN-producing model (y = log x,
//! made here with the `onnx` package of `.venv`), backends that really crash inside their
//! worker processes (the `PARITY_WORKER_FAULT` test hook: abort, segfault, hang, running
//! out of memory), and the suites `--save` writes replayed by `parity check`.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Writes a one-node model `y = OP(x)` with x, y: f32 [N, 4].
fn one_node_model(dir: &Path, op: &str) -> PathBuf {
    let path = dir.join(format!("{}.onnx", op.to_lowercase()));
    python_model(
        &path,
        &format!(
            r#"
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
g = helper.make_graph([helper.make_node("{op}", ["x"], ["y"])], "planted", [x], [y])
"#
        ),
    );
    path
}

/// Saves the opset-13 model whose graph `g` the Python lines `graph` build (with
/// `helper` and `TensorProto` imported) at `path`, with the `onnx` package of `.venv`.
fn python_model(path: &Path, graph: &str) {
    let script = format!(
        r#"
import onnx
from onnx import helper, TensorProto
{graph}
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.save(m, r"{}")
"#,
        path.display()
    );
    let made = std::process::Command::new(root().join(".venv/bin/python"))
        .args(["-c", &script])
        .output()
        .expect("run .venv/bin/python (scripts/setup.sh)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}

/// Validates a report against docs/fuzz.schema.json.
fn validate(report: &Value) {
    assert_schema(report, "fuzz.schema.json");
}

fn findings(r: &Value) -> &Vec<Value> {
    r["findings"].as_array().unwrap()
}

fn find<'a>(r: &'a Value, recipe: &str, backend: &str) -> Option<&'a Value> {
    findings(r)
        .iter()
        .find(|f| f["recipe"] == recipe && f["backend"] == backend)
}

/// The status of `backend` on every case, in case order.
fn statuses(r: &Value, backend: &str) -> Vec<String> {
    r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let run = c["results"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["backend"] == backend)
                .unwrap();
            run["status"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_planted_nan_is_found_and_the_saved_case_replays_it() {
    let tmp = tempfile::tempdir().unwrap();
    let model = one_node_model(tmp.path(), "Log");
    let saved = tmp.path().join("saved");
    let args = [
        "fuzz",
        s(&model),
        "--backend",
        "ort-cpu",
        "--backend",
        "tract-cpu",
        "--cases",
        "20",
        "--seed",
        "4",
        "--format",
        "json",
    ];
    let o = parity(&[&args[..], &["--save", s(&saved)]].concat());
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    validate(&r);
    assert_eq!(r["schema"], "parity.fuzz/v1");
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["reference"], "ort-cpu");
    assert_eq!(r["summary"]["cases"], 20);
    // log(-1) = NaN and log(0) = -Inf from finite inputs: found on the reference.
    let neg = find(&r, "neg-ones", "ort-cpu").expect("log(-1) found");
    assert_eq!(neg["kind"], "non-finite");
    assert_eq!(
        neg["detail"],
        "from finite inputs: output `y` holds 4 NaN, 0 ±Inf of 4"
    );
    let zeros = find(&r, "zeros", "ort-cpu").expect("log(0) found");
    assert_eq!(
        zeros["detail"],
        "from finite inputs: output `y` holds 0 NaN, 4 ±Inf of 4"
    );
    // NaN in, NaN out is no finding; neither is log of positive values; tract agrees.
    assert!(find(&r, "nan", "ort-cpu").is_none());
    assert!(find(&r, "ones", "ort-cpu").is_none());
    assert!(find(&r, "max", "ort-cpu").is_none());
    assert!(findings(&r).iter().all(|f| f["backend"] == "ort-cpu"));
    assert!(statuses(&r, "tract-cpu").iter().all(|st| st == "ok"));
    assert_eq!(r["summary"]["findings"], findings(&r).len());
    // The empty and largest-batch shapes were tried (16 MiB of f32 [N, 4]: N = 2^20).
    let recipes: Vec<&str> = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["recipe"].as_str().unwrap())
        .collect();
    assert!(recipes.contains(&"empty-dims"));
    assert!(recipes.contains(&"max-batch-N-1048576"));

    // The saved case replays the finding in `parity check`.
    let dir = PathBuf::from(neg["saved"].as_str().expect("saved"));
    assert_eq!(dir, saved.join("fuzz_0006_neg-ones"));
    let manifest = std::fs::read_to_string(dir.join("parity.toml")).unwrap();
    assert!(manifest.contains("finite = true"), "{manifest}");
    let c = parity(&[
        "check",
        s(&dir),
        "--backend",
        "tract-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(c.code, 1, "{}\n{}", c.stdout, c.stderr);
    let cr = json(&c);
    let problem = cr["cases"][0]["outputs"][0]["problem"].as_str().unwrap();
    assert!(problem.starts_with("4 NaN/Inf of 4 values"), "{problem}");

    // Same seed, same findings.
    let again = json(&parity(&args));
    let key = |r: &Value| -> Vec<String> {
        findings(r)
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} {}",
                    f["case"], f["backend"], f["kind"], f["detail"]
                )
            })
            .collect()
    };
    assert_eq!(key(&r), key(&again));
}

#[test]
fn a_model_without_edge_problems_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = one_node_model(tmp.path(), "Neg");
    let o = parity(&[
        "fuzz",
        s(&model),
        "--backend",
        "ort-cpu",
        "--backend",
        "tract-cpu",
        "--cases",
        "16",
    ]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout
            .contains("PASS: 0 findings (0 distinct) in 16 cases"),
        "{}",
        o.stdout
    );
}

#[test]
fn crashing_and_hanging_backends_are_errors_and_the_run_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let model = one_node_model(tmp.path(), "Log");
    let saved = tmp.path().join("saved");
    let fault = [("PARITY_WORKER_FAULT", "tract-cpu:abort")];
    let o = parity_env(
        &[
            "fuzz",
            s(&model),
            "--backend",
            "ort-cpu",
            "--backend",
            "candle-cpu",
            "--backend",
            "tract-cpu",
            "--cases",
            "3",
            "--format",
            "json",
            "--save",
            s(&saved),
        ],
        &fault,
    );
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    validate(&r);
    // Every case ran to the end: tract's worker died each time (a fresh one each case),
    // the others answered.
    assert_eq!(statuses(&r, "tract-cpu"), ["crash", "crash", "crash"]);
    assert_eq!(statuses(&r, "ort-cpu"), ["ok", "ok", "ok"]);
    assert_eq!(statuses(&r, "candle-cpu"), ["ok", "ok", "ok"]);
    let crashes: Vec<&Value> = findings(&r)
        .iter()
        .filter(|f| f["kind"] == "crash")
        .collect();
    assert_eq!(crashes.len(), 3);
    for f in &crashes {
        assert_eq!(f["backend"], "tract-cpu");
        assert_eq!(f["detail"], "crashed: worker killed by signal 6 (SIGABRT)");
    }
    assert_eq!(r["summary"]["crashes"], 3);

    // The saved crash replays as an error naming the signal in `check --isolate`.
    let dir = crashes[1]["saved"].as_str().unwrap();
    let c = parity_env(
        &[
            "check",
            dir,
            "--backend",
            "tract-cpu",
            "--isolate",
            "--format",
            "json",
        ],
        &fault,
    );
    assert_eq!(c.code, 2, "{}\n{}", c.stdout, c.stderr);
    let cr = json(&c);
    assert_eq!(cr["cases"][0]["verdict"], "error");
    assert!(cr["cases"][0]["error"]
        .as_str()
        .unwrap()
        .contains("signal 6 (SIGABRT)"));

    // A segfault, and a hang cut by --timeout.
    let o = parity_env(
        &[
            "fuzz",
            s(&model),
            "--backend",
            "ort-cpu",
            "--backend",
            "candle-cpu",
            "--backend",
            "tract-cpu",
            "--cases",
            "2",
            "--timeout",
            "1",
            "--format",
            "json",
        ],
        &[("PARITY_WORKER_FAULT", "candle-cpu:segv,tract-cpu:hang")],
    );
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    validate(&r);
    assert_eq!(statuses(&r, "candle-cpu"), ["crash", "crash"]);
    assert_eq!(statuses(&r, "tract-cpu"), ["timeout", "timeout"]);
    assert_eq!(statuses(&r, "ort-cpu"), ["ok", "ok"]);
    let f = find(&r, "zeros", "candle-cpu").unwrap();
    assert_eq!(f["detail"], "crashed: worker killed by signal 11 (SIGSEGV)");
    let f = find(&r, "zeros", "tract-cpu").unwrap();
    assert_eq!(f["kind"], "timeout");
    assert_eq!(f["detail"], "timed out after 1 s (worker killed)");
}

#[test]
fn the_memory_limit_stops_a_runaway_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let model = one_node_model(tmp.path(), "Neg");
    let o = parity_env(
        &[
            "fuzz",
            s(&model),
            "--backend",
            "ort-cpu",
            "--backend",
            "tract-cpu",
            "--cases",
            "1",
            "--memory-limit",
            "1G",
            "--format",
            "json",
        ],
        &[("PARITY_WORKER_FAULT", "tract-cpu:oom")],
    );
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    assert_eq!(r["isolation"]["memory_limit_bytes"], 1u64 << 30);
    let f = find(&r, "zeros", "tract-cpu").unwrap();
    let detail = f["detail"].as_str().unwrap();
    assert!(
        detail.starts_with(
            "crashed: worker killed by signal 6 (SIGABRT); its last words: memory allocation of"
        ),
        "{detail}"
    );
}

#[test]
fn check_isolate_reports_a_crash_per_case_and_passes_without_one() {
    let mlp = models().join("mlp");
    let args = [
        "check",
        s(&mlp),
        "--backend",
        "ort-cpu",
        "--backend",
        "tract-cpu",
        "--isolate",
        "--format",
        "json",
    ];
    let o = parity(&args);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let o = parity_env(&args, &[("PARITY_WORKER_FAULT", "tract-cpu:segv")]);
    assert_eq!(o.code, 2, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    let cases = r["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        match c["backend"].as_str().unwrap() {
            "tract-cpu" => {
                assert_eq!(c["verdict"], "error");
                assert!(c["error"].as_str().unwrap().contains("SIGSEGV"), "{c}");
            }
            _ => assert_eq!(c["verdict"], "pass"),
        }
    }
}

#[test]
fn bad_input_is_a_clean_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing.onnx");
    assert_clean_error(&parity(&["fuzz", s(&missing)]), "missing.onnx");
    let model = one_node_model(tmp.path(), "Neg");
    assert_clean_error(
        &parity(&["fuzz", s(&model), "--cases", "0"]),
        "--cases must be at least 1",
    );
    assert_clean_error(
        &parity(&["fuzz", s(&model), "--max-bytes", "8"]),
        "--max-bytes 8",
    );
    assert_clean_error(
        &parity(&["fuzz", s(&model), "--max-bytes", "999999G"]),
        "is more than the 2147482624 bytes (2 GiB) one input can take",
    );
    assert_clean_error(
        &parity(&["fuzz", s(&model), "--backend", "nope"]),
        "unknown backend `nope`",
    );
    let o = parity(&["fuzz", s(&model), "--timeout", "0"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--timeout"), "{}", o.stderr);
}

/// A suite directory is fuzzed through its model, and `--finite-inputs` keeps NaN and
/// ±Inf out of every case (issue 14: a team whose model's contract excludes them).
#[test]
fn a_suite_is_fuzzed_through_its_model_and_finite_inputs_stay_finite() {
    let suite = models().join("mlp");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "fuzz",
            s(&suite),
            "--backend",
            "ort-cpu",
            "--backend",
            "tract-cpu",
            "--cases",
            "24",
            "--no-isolate",
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let o = parity(&args);
        assert!(o.code <= 1, "{}\n{}", o.stdout, o.stderr);
        let r = json(&o);
        validate(&r);
        r
    };
    let recipes = |r: &serde_json::Value| -> Vec<String> {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["recipe"].as_str().unwrap().to_string())
            .collect()
    };
    let finite = run(&["--finite-inputs"]);
    assert_eq!(finite["finite_inputs"], true);
    assert!(finite["model"]
        .as_str()
        .unwrap()
        .ends_with("mlp/model.onnx"));
    let non_finite = ["nan", "pos-inf", "neg-inf", "=mixed"];
    for recipe in recipes(&finite) {
        assert!(!non_finite.iter().any(|n| recipe.contains(n)), "{recipe}");
    }
    let all = run(&[]);
    assert_eq!(all["finite_inputs"], false);
    assert!(recipes(&all).iter().any(|r| r == "nan"));
}

/// A suite's parity.toml drives the fuzz run: outputs it skips are not compared, each
/// output's mode and tolerance apply, `[inputs.NAME]` bounds every generated value, and
/// `--dim` pins a dim in every case (issue 14).
#[test]
fn a_suite_brings_its_tolerances_modes_and_input_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("mlp");
    std::fs::create_dir(&suite).unwrap();
    std::fs::copy(models().join("mlp/model.onnx"), suite.join("model.onnx")).unwrap();
    std::fs::write(
        suite.join("parity.toml"),
        "[outputs.logits]\natol = 0.25\nrtol = 0.0\n[outputs.probs]\nmode = \"skip\"\n\
         [inputs.x]\nmin = -1.0\nmax = 2.0\n",
    )
    .unwrap();
    let o = parity(&[
        "fuzz",
        s(&suite),
        "--backend",
        "ort-cpu",
        "--backend",
        "tract-cpu",
        "--dim",
        "batch=3",
        "--cases",
        "20",
        "--no-isolate",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    validate(&r);
    assert_eq!(r["dims"], serde_json::json!(["batch=3"]));
    let cases = r["cases"].as_array().unwrap();
    let recipes: Vec<&str> = cases
        .iter()
        .map(|c| c["recipe"].as_str().unwrap())
        .collect();
    // x declares no NaN/Inf: those cases are gone; batch is pinned: no shape cases.
    for gone in ["nan", "pos-inf", "neg-inf", "empty-dims"] {
        assert!(!recipes.contains(&gone), "{gone} in {recipes:?}");
    }
    assert!(!recipes.iter().any(|r| r.starts_with("max-batch")));
    for c in cases {
        let input = &c["inputs"][0];
        assert_eq!(input["shape"], serde_json::json!([3, 64]));
        assert_eq!(input["range"]["max"], 2.0);
        let tract = &c["results"][1];
        assert_eq!(tract["backend"], "tract-cpu");
        let outputs = tract["outputs"].as_array().unwrap();
        // probs is skipped; logits is compared under the suite's tolerance.
        assert_eq!(outputs.len(), 1, "{outputs:?}");
        assert_eq!(outputs[0]["name"], "logits");
        assert_eq!(
            (outputs[0]["atol"].as_f64(), outputs[0]["rtol"].as_f64()),
            (Some(0.25), Some(0.0))
        );
    }
    let max = cases.iter().find(|c| c["recipe"] == "max").unwrap();
    assert_eq!(max["inputs"][0]["fill"], "max");
    // The `max` case fed 2.0 (the range's max), not f32::MAX: logits stay finite.
    assert!(r["findings"].as_array().unwrap().is_empty());

    // A --dim the model does not have is refused.
    let o = parity(&["fuzz", s(&suite), "--dim", "seq=4"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("--dim seq: the model has no such dim (its symbolic dims: batch)"),
        "{}",
        o.stderr
    );
    // So is a name parity.toml has that the model lacks, as in `check`.
    std::fs::write(suite.join("parity.toml"), "[inputs.y]\nmin = 0.0\n").unwrap();
    let o = parity(&["fuzz", s(&suite), "--cases", "2", "--no-isolate"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("[inputs.y]"), "{}", o.stderr);
}

/// One behaviour found by several cases is one group; a backend's documented refusal
/// (candle-cpu refuses NaN in MaxPool) is a note, not a finding; JUnit has a test case
/// per case and backend, the refusal skipped (issue 14).
#[test]
fn findings_are_grouped_refusals_are_notes_and_junit_reports_both() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("maxpool.onnx");
    python_model(
        &model,
        r#"
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 1, 3])
z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["N", 1, 4])
nodes = [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2]), helper.make_node("Log", ["x"], ["z"])]
g = helper.make_graph(nodes, "g", [x], [y, z])
"#,
    );
    let args = |format: &str| {
        vec![
            "fuzz".to_string(),
            model.display().to_string(),
            "--backend".into(),
            "ort-cpu".into(),
            "--backend".into(),
            "candle-cpu".into(),
            "--cases".into(),
            "24".into(),
            "--no-isolate".into(),
            "--format".into(),
            format.into(),
        ]
    };
    let run = |format: &str| {
        let a = args(format);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        parity(&a)
    };
    let o = run("json");
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    validate(&r);
    // Log of finite inputs <= 0 gives NaN/-Inf on the reference: one behaviour (the same
    // cause) however many cases found it.
    let groups = r["groups"].as_array().unwrap();
    let log = groups
        .iter()
        .find(|g| g["cause"] == "NaN/Inf from finite inputs in output `z`")
        .expect("the Log group");
    let log_findings = findings(&r)
        .iter()
        .filter(|f| f["cause"] == log["cause"])
        .count();
    assert!(log_findings >= 3, "{log_findings}");
    assert_eq!(log["cases"].as_array().unwrap().len(), log_findings);
    assert_eq!(r["summary"]["groups"], groups.len());
    assert!(groups.len() < findings(&r).len());
    // candle refuses NaN in MaxPool: notes, never findings.
    let notes = r["notes"].as_array().unwrap();
    assert!(!notes.is_empty());
    assert!(notes
        .iter()
        .all(|n| n["kind"] == "refused" && n["backend"] == "candle-cpu"));
    assert!(findings(&r).iter().all(|f| f["kind"] != "refused"));
    assert!(findings(&r).iter().all(|f| !f["detail"]
        .as_str()
        .unwrap()
        .contains("NaN inputs are not supported")));
    let nan = notes
        .iter()
        .find(|n| n["recipe"] == "nan")
        .expect("nan refused");
    assert!(nan["detail"]
        .as_str()
        .unwrap()
        .contains("unsupported op MaxPool: NaN inputs"));
    assert_eq!(r["summary"]["notes"], notes.len());
    assert_eq!(r["note_groups"].as_array().unwrap().len(), 1);

    let text = run("text");
    assert!(
        text.stdout.contains("notes (documented refusals"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!("{} notes", notes.len())),
        "{}",
        text.stdout
    );

    let junit = run("junit");
    assert_eq!(junit.code, 1);
    let x = &junit.stdout;
    assert!(x.starts_with("<?xml"), "{x}");
    // 24 cases x 2 backends; the refusal is skipped on candle's suite.
    assert_eq!(x.matches("<testcase ").count(), 48, "{x}");
    assert!(
        x.contains("<testsuite name=\"fuzz candle-cpu (reference ort-cpu)\" tests=\"24\""),
        "{x}"
    );
    assert_eq!(x.matches("<skipped ").count(), notes.len());
    let failing: std::collections::BTreeSet<(&str, &str)> = findings(&r)
        .iter()
        .map(|f| (f["case"].as_str().unwrap(), f["backend"].as_str().unwrap()))
        .collect();
    assert_eq!(
        x.matches("<failure ").count(),
        failing.len(),
        "one failure per case and backend with findings"
    );
    assert!(
        x.contains("classname=\"parity.fuzz.ort-cpu\" name=\"fuzz_0000 zeros\""),
        "{x}"
    );
}
