//! A verdict is only as good as what it compared: partial goldens, skipped outputs,
//! vanished backends, colliding or empty data sets, typos in `parity.toml` (issue 13).

use crate::common::*;
use std::path::Path;

fn check_json(suite: &Path, extra: &[&str]) -> (Outcome, serde_json::Value) {
    let mut args = vec!["check", s(suite), "--format", "json"];
    args.extend_from_slice(extra);
    let o = parity(&args);
    let r = serde_json::from_str(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o, r)
}

#[test]
fn a_partial_golden_fails_the_case_naming_the_output() {
    // mlp has two outputs (logits, probs); data set 1 loses its golden for probs.
    let (_tmp, suite) = copy_suite("mlp");
    std::fs::remove_file(suite.join("test_data_set_1/output_1.pb")).unwrap();
    let (o, r) = check_json(&suite, &["--backend", "tract-cpu"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(r["summary"]["passed"], 2, "{r}");
    assert_eq!(r["summary"]["failed"], 1, "{r}");
    let case = &r["cases"][1];
    assert_eq!(case["verdict"], "fail");
    let probs = case["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "probs")
        .unwrap();
    assert_eq!(probs["verdict"], "fail");
    assert_eq!(probs["problem"], "missing golden for output probs");
    assert_eq!(
        case["outputs"][0]["verdict"], "pass",
        "logits still compared"
    );
    assert_schema(&r, "report.schema.json");
    // The text report says it too.
    let o = parity(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("probs: missing golden for output probs"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_partial_golden_in_an_archive_fails_too() {
    let (_tmp, suite) = copy_suite("mlp");
    let dir = suite.join("test_data_set_0");
    // Rewrite data set 0 as an .npz holding the input and logits only.
    let (_, x) = parity::formats::read_tensor(&dir.join("input_0.pb")).unwrap();
    let (_, logits) = parity::formats::read_tensor(&dir.join("output_0.pb")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let npz = parity::formats::npz::encode(&[("x".to_string(), x), ("logits".to_string(), logits)]);
    std::fs::write(suite.join("test_data_set_0.npz"), npz.unwrap()).unwrap();
    let (o, r) = check_json(&suite, &["--backend", "tract-cpu"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(
        r["cases"][0]["outputs"][1]["problem"],
        "missing golden for output probs"
    );
}

#[test]
fn skipped_outputs_are_named_and_never_passed() {
    let (_tmp, suite) = copy_suite("mlp");
    std::fs::write(
        suite.join("parity.toml"),
        "[outputs.probs]\nmode = \"skip\"\n",
    )
    .unwrap();
    let (o, r) = check_json(&suite, &["--backend", "tract-cpu"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    for case in r["cases"].as_array().unwrap() {
        let names: Vec<&str> = case["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["logits"]);
        assert_eq!(case["skipped_outputs"][0]["name"], "probs");
        assert!(case["skipped_outputs"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("skip"));
    }
    assert_schema(&r, "report.schema.json");
    let o = parity(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert!(
        o.stdout.contains("not compared: output `probs`") && o.stdout.contains("in 3 case(s)"),
        "{}",
        o.stdout
    );
    for format in ["markdown", "html", "junit"] {
        let o = parity(&[
            "check",
            s(&suite),
            "--backend",
            "tract-cpu",
            "--format",
            format,
        ]);
        assert!(o.stdout.contains("probs"), "{format}: {}", o.stdout);
    }
}

#[test]
fn a_case_that_compares_nothing_is_an_error() {
    let (_tmp, suite) = copy_suite("mlp");
    std::fs::write(
        suite.join("parity.toml"),
        "[outputs.logits]\nskip = true\n[outputs.probs]\nmode = \"skip\"\n",
    )
    .unwrap();
    for extra in [
        &["--backend", "tract-cpu"][..],
        &["--backend", "tract-cpu", "--reference", "ort-cpu"],
        &["--backend", "tract-cpu", "--backend", "ort-cpu", "--matrix"],
    ] {
        let (o, r) = check_json(&suite, extra);
        assert_eq!(o.code, 2, "{extra:?}: {}", o.stdout);
        assert_eq!(r["summary"]["passed"], 0, "{extra:?}");
        assert_eq!(r["verdict"], "error");
        let error = r["cases"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("nothing compared") && error.contains("logits, probs"),
            "{error}"
        );
    }
}

#[test]
fn a_typo_in_an_output_table_is_an_error_naming_the_real_outputs() {
    let (_tmp, suite) = copy_suite("mlp");
    std::fs::write(suite.join("parity.toml"), "[outputs.logit]\nrtol = 0.5\n").unwrap();
    let o = parity(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_clean_error(
        &o,
        "parity.toml: [outputs.logit]: the model has no output `logit`",
    );
    assert!(o.stderr.contains("logits, probs"), "{}", o.stderr);
    std::fs::write(suite.join("parity.toml"), "[inputs.y]\nmin = 0.0\n").unwrap();
    let o = parity(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_clean_error(&o, "[inputs.y]: the model has no input `y`");
}

#[test]
fn two_sources_of_one_data_set_are_an_error() {
    let (_tmp, suite) = copy_suite("mlp");
    let dir = suite.join("test_data_set_0");
    let (_, x) = parity::formats::read_tensor(&dir.join("input_0.pb")).unwrap();
    let npz = parity::formats::npz::encode(&[("x".to_string(), x)]).unwrap();
    std::fs::write(suite.join("test_data_set_0.npz"), npz).unwrap();
    let o = parity(&["check", s(&suite), "--backend", "tract-cpu"]);
    assert_clean_error(&o, "data set `test_data_set_0` is stored twice");
    assert!(
        o.stderr
            .contains("(test_data_set_0/ and test_data_set_0.npz)"),
        "{}",
        o.stderr
    );
}

#[test]
fn empty_data_set_directories_are_reported_not_skipped() {
    let (_tmp, suite) = copy_suite("mlp");
    for n in 3..8 {
        std::fs::create_dir(suite.join(format!("test_data_set_{n}"))).unwrap();
    }
    let (o, r) = check_json(&suite, &["--backend", "tract-cpu"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(r["summary"]["cases"], 8);
    assert_eq!(r["summary"]["passed"], 3);
    assert_eq!(r["summary"]["errors"], 5);
    let error = r["cases"][7]["error"].as_str().unwrap();
    assert!(
        error.contains("test_data_set_7") && error.contains("empty data set"),
        "{error}"
    );
}

#[test]
fn a_model_file_that_is_a_directory_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = tmp.path().join("s");
    std::fs::create_dir_all(suite.join("model.onnx")).unwrap();
    let o = parity(&["check", s(&suite)]);
    assert_clean_error(&o, "model.onnx: not a regular file (a directory)");
}

/// A suite whose goldens say they came from ort-cpu, checked where ONNX Runtime is gone.
fn recorded_on_ort() -> (tempfile::TempDir, std::path::PathBuf) {
    let (tmp, suite) = copy_suite("mlp");
    std::fs::write(
        suite.join("parity.toml"),
        "[provenance]\nbackend = \"ort-cpu\"\n",
    )
    .unwrap();
    (tmp, suite)
}

const NO_ORT: (&str, &str) = ("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so");

#[test]
fn a_run_without_the_recording_backend_is_an_error_unless_allowed() {
    let (_tmp, suite) = recorded_on_ort();
    let o = parity_env(&["check", s(&suite)], &[NO_ORT]);
    assert_clean_error(
        &o,
        "goldens recorded on ort-cpu, which will not run (unavailable:",
    );
    assert!(o.stderr.contains("--allow-missing-backend"), "{}", o.stderr);

    let o = parity_env(
        &[
            "check",
            s(&suite),
            "--allow-missing-backend",
            "--format",
            "json",
        ],
        &[NO_ORT],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    let skipped = r["environment"]["skipped_backends"].as_array().unwrap();
    let ort = skipped.iter().find(|b| b["name"] == "ort-cpu").unwrap();
    assert!(
        ort["reason"].as_str().unwrap().starts_with("unavailable:"),
        "{ort}"
    );
    assert!(r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["backend"] != "ort-cpu"));
    assert_schema(&r, "report.schema.json");

    // Choosing the backends is choosing: no error, the skip is still named.
    let o = parity_env(&["check", s(&suite), "--backend", "tract-cpu"], &[NO_ORT]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("not run: ") && o.stdout.contains("ort-cpu"),
        "{}",
        o.stdout
    );
}

#[test]
fn every_report_names_the_backends_it_did_not_run() {
    let o = parity(&[
        "check",
        s(&models().join("mlp")),
        "--backend",
        "tract-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    let skipped: Vec<(&str, &str)> = r["environment"]["skipped_backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["reason"].as_str().unwrap()))
        .collect();
    assert!(
        skipped.contains(&("ort-cpu", "not requested (--backend)")),
        "{skipped:?}"
    );
    assert!(
        skipped.contains(&("candle-cpu", "not requested (--backend)")),
        "{skipped:?}"
    );
    assert!(
        skipped
            .iter()
            .any(|(n, r)| *n == "candle-cuda" && r.starts_with("unavailable:")),
        "{skipped:?}"
    );
}

#[test]
fn a_required_backend_must_run() {
    let mlp = models().join("mlp");
    let o = parity_env(
        &["check", s(&mlp), "--require-backend", "ort-cpu"],
        &[NO_ORT],
    );
    assert_eq!(o.code, 2, "{}", o.stdout);
    assert!(o.stderr.contains("ort-cpu"), "{}", o.stderr);
    // With --backend, a required one joins the run.
    let o = parity(&[
        "check",
        s(&mlp),
        "--backend",
        "tract-cpu",
        "--require-backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    let mut backends: Vec<&str> = r["environment"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap())
        .collect();
    backends.sort_unstable();
    assert_eq!(backends, ["ort-cpu", "tract-cpu"]);
}

#[test]
fn compare_of_directories_fails_a_candidate_file_without_a_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    copy_dir(&models().join("mlp/test_data_set_0"), &a);
    copy_dir(&models().join("mlp/test_data_set_0"), &b);
    let o = parity(&["compare", s(&a), s(&b)]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    std::fs::remove_file(a.join("output_1.pb")).unwrap();
    let o = parity(&["compare", s(&a), s(&b), "--format", "json"]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let r = json(&o);
    let case = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case"] == "output_1.pb")
        .unwrap();
    assert_eq!(case["verdict"], "fail");
    assert_eq!(
        case["outputs"][0]["problem"],
        "missing golden for output probs"
    );
}

/// `--jobs` changes how many suites and backends run at once, never the report: the
/// same rows in the same order (suite, case, backend), the same verdicts and figures
/// (issue 14: checks that use every core).
#[test]
fn the_report_does_not_depend_on_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let damaged = tmp.path().join("mlp-damaged");
    copy_dir(&models().join("mlp"), &damaged);
    // One golden 1 % off, so the run holds a failure too.
    let path = damaged.join("test_data_set_1/output_0.pb");
    let (name, t) = parity::formats::read_tensor(&path).unwrap();
    let mut v = t.values::<f32>().unwrap().into_owned();
    v[3] *= 1.01;
    let t = parity::tensor::Tensor::from_vec(t.shape().to_vec(), v).unwrap();
    parity::formats::write_tensor(&path, name.as_deref().unwrap_or("logits"), &t).unwrap();
    let run = |jobs: &str| {
        let o = parity(&[
            "check",
            s(&models().join("mlp")),
            s(&models().join("cnn")),
            s(&damaged),
            s(&models().join("transformer")),
            "--matrix",
            "--jobs",
            jobs,
            "--format",
            "json",
        ]);
        assert_eq!(o.code, 1, "{}", o.stderr);
        let mut r = json(&o);
        for case in r["cases"].as_array_mut().unwrap() {
            case["latency_ms"] = serde_json::Value::Null;
        }
        r
    };
    let one = run("1");
    let rows = |r: &serde_json::Value| -> Vec<String> {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {}",
                    c["suite"], c["case"], c["backend"], c["verdict"]
                )
            })
            .collect()
    };
    assert!(one["cases"].as_array().unwrap().len() >= 24);
    assert!(rows(&one)
        .iter()
        .any(|r| r.contains("mlp-damaged") && r.ends_with("\"fail\"")));
    for jobs in ["2", "7"] {
        let many = run(jobs);
        assert_eq!(rows(&many), rows(&one), "--jobs {jobs}");
        assert_eq!(many["cases"], one["cases"], "--jobs {jobs}");
        assert_eq!(many["matrix"], one["matrix"], "--jobs {jobs}");
        assert_eq!(many["summary"], one["summary"]);
    }
    // Overlapping inference: the same report, and no latency (it would include the
    // other jobs' load); without it every case that ran has one.
    let timed = |r: &serde_json::Value| {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["latency_ms"].is_number())
            .count()
    };
    let mlp = models().join("mlp");
    let args = |extra: &[&str]| {
        let mut a = vec!["check", s(&mlp), s(&damaged), "--format", "json"];
        a.extend_from_slice(extra);
        json(&parity(&a))
    };
    let exclusive = args(&["--jobs", "3"]);
    let overlapped = args(&["--jobs", "3", "--overlap-inference"]);
    assert_eq!(rows(&overlapped), rows(&exclusive));
    assert_eq!(
        timed(&exclusive),
        exclusive["cases"].as_array().unwrap().len()
    );
    assert_eq!(timed(&overlapped), 0);

    let o = parity(&["check", s(&models().join("mlp")), "--jobs", "0"]);
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--jobs"), "{}", o.stderr);
}
