//! Dataset metrics and gates (docs/gates.md) on a public model and on made-to-measure
//! ones. magika 1.0.3's content-type classifier (PyPI wheel, sha256 pinned in
//! requirements-test-models.txt) gets a suite of 160 real files (scripts/make-gate-suite.py:
//! labels from file extensions, slices `text`/`binary`) and an int8 QDQ copy made by
//! onnxruntime.quantization.quantize_static: element-wise it fails, a top-1 agreement
//! gate below its measured agreement passes and one above fails, and every metric equals
//! an independent numpy computation (scripts/gate-metrics.py). A sharded run merges to
//! the metrics of the unsharded run; a candidate degraded on one slice fails that slice's
//! gate and the disparity gate while the overall gate passes.

use crate::common::{
    assert_clean_error, assert_schema, json, models, parity, python, python_script, s,
};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The magika suite (ort-cpu goldens, labels.csv) with its int8 QDQ copy and an ONNX
/// Runtime offline-optimised float re-export.
struct Magika {
    _tmp: tempfile::TempDir,
    suite: PathBuf,
    qdq: PathBuf,
    reexport: PathBuf,
}

fn magika() -> Magika {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    let suite = tmp.path().join("suite");
    python_script("make-gate-suite.py", &["--out", s(&source)]);
    let o = parity(&[
        "record",
        s(&source.join("model.onnx")),
        "--inputs",
        s(&source),
        "--backend",
        "ort-cpu",
        "--out",
        s(&suite),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    std::fs::copy(source.join("labels.csv"), suite.join("labels.csv")).unwrap();
    let (qdq, reexport) = (
        tmp.path().join("qdq.onnx"),
        tmp.path().join("reexport.onnx"),
    );
    // int8 weights and activations on the convolutions and matrix products (the form
    // teams ship: magika spells out LayerNorm in elementwise ops, whose variance of ~1e-6
    // does not survive 8 bits).
    python_script(
        "make-qdq-model.py",
        &[s(&suite), s(&qdq), "--op-types", "Conv,MatMul"],
    );
    python_script(
        "make-qdq-model.py",
        &[s(&suite), s(&reexport), "--format", "optimized"],
    );
    Magika {
        _tmp: tmp,
        suite,
        qdq,
        reexport,
    }
}

const OUTPUT: &str = "target_label";

/// `check SUITE --model CANDIDATE --backend ort-cpu --format json` plus `extra`.
fn check(suite: &Path, candidate: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "check",
        s(suite),
        "--model",
        s(candidate),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let o = parity(&args);
    assert!(o.code == 0 || o.code == 1, "{}", o.stderr);
    let report = json(&o);
    assert_schema(&report, "report.schema.json");
    (o.code, report)
}

/// The overall metrics of `output` on `backend`.
fn metrics<'a>(report: &'a Value, backend: &str, output: &str) -> &'a Value {
    report["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["backend"] == backend && m["output"] == output)
        .unwrap_or_else(|| panic!("no metrics of {output} on {backend}"))
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs())
}

#[test]
fn int8_magika_fails_element_wise_passes_a_gate_below_its_agreement_and_matches_numpy() {
    let m = magika();
    // Element-wise, the int8 model fails: every logit moves.
    let (code, plain) = check(&m.suite, &m.qdq, &[]);
    assert_eq!(code, 1);
    assert!(plain["summary"]["failed"].as_u64().unwrap() > 0);
    assert!(plain["gates"].is_null(), "no gate was asked for");

    let values = &metrics(&plain, "ort-cpu", OUTPUT)["values"];
    let top1 = &values["top1_agreement"];
    let agreement = top1["value"].as_f64().unwrap();
    assert_eq!(top1["n"], 160);
    assert!(agreement > 0.9 && agreement < 1.0, "{top1}");

    // The same metrics by numpy, from onnxruntime's outputs on the same inputs.
    let numpy: Value = serde_json::from_str(&python_script(
        "gate-metrics.py",
        &[
            s(&m.suite),
            s(&m.qdq),
            "--output",
            OUTPUT,
            "--labels",
            s(&m.suite.join("labels.csv")),
        ],
    ))
    .unwrap();
    let all = &numpy["overall"];
    for rate in [
        "top1_agreement",
        "topk_agreement",
        "label_accuracy",
        "reference_label_accuracy",
    ] {
        for key in ["successes", "n", "value"] {
            assert_eq!(values[rate][key], all[rate][key], "{rate} {key}");
        }
        let [lo, hi] = [&values[rate]["interval"][0], &values[rate]["interval"][1]];
        assert!(close(
            lo.as_f64().unwrap(),
            all[rate]["wilson_lo"].as_f64().unwrap(),
            1e-12
        ));
        assert!(close(
            hi.as_f64().unwrap(),
            all[rate]["wilson_hi"].as_f64().unwrap(),
            1e-12
        ));
    }
    for (ours, theirs, rel) in [
        ("sqnr_db", "sqnr_db", 1e-6),
        ("psnr_db", "psnr_db", 1e-6),
        ("cosine_mean", "cosine_mean", 1e-9),
        ("cosine_min", "cosine_min", 1e-9),
        ("mean_abs_err", "mean_abs_err", 1e-9),
        ("max_abs_err", "max_abs_err", 0.0),
    ] {
        let (a, b) = (
            values[ours]["value"].as_f64().unwrap(),
            all[theirs].as_f64().unwrap(),
        );
        assert!(close(a, b, rel), "{ours}: parity {a}, numpy {b}");
    }
    // Per slice too.
    let slices = metrics(&plain, "ort-cpu", OUTPUT)["slices"]
        .as_array()
        .unwrap();
    assert_eq!(slices.len(), 2);
    for slice in slices {
        let name = slice["slice"].as_str().unwrap();
        let theirs = &numpy["slices"][name];
        assert_eq!(
            slice["values"]["top1_agreement"]["successes"], theirs["top1_agreement"]["successes"],
            "{name}"
        );
        let (a, b) = (
            slice["values"]["sqnr_db"]["value"].as_f64().unwrap(),
            theirs["sqnr_db"].as_f64().unwrap(),
        );
        assert!(close(a, b, 1e-6), "{name} sqnr: {a} vs {b}");
    }

    // A gate below the measured agreement passes; the gated output no longer fails
    // its cases element-wise, yet its element-wise errors are still reported.
    let below = format!("{OUTPUT}:top1_agreement>={}", agreement - 0.01);
    let (code, gated) = check(&m.suite, &m.qdq, &["--gate", &below]);
    assert_eq!(code, 0, "{}", gated["gates"]);
    assert_eq!(gated["summary"]["failed"], 0);
    let row = &gated["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["outputs"][0]["mismatched"].as_u64().unwrap() > 0);
    let row = row.expect("an element-wise miss is still reported");
    assert_eq!(row["outputs"][0]["gated"], true);
    assert_eq!(row["outputs"][0]["verdict"], "pass");
    let gates = gated["gates"].as_array().unwrap();
    // The dataset and each of the two slices.
    assert_eq!(gates.len(), 3);
    assert!(gates.iter().all(|g| g["verdict"] == "pass"), "{gates:?}");
    assert_eq!(gated["summary"]["gates"]["passed"], 3);

    // Above it fails, naming the gate, the value and the interval.
    let above = format!("{OUTPUT}:top1_agreement>={}", agreement + 0.001);
    let (code, failed) = check(&m.suite, &m.qdq, &["--gate", &above]);
    assert_eq!(code, 1);
    let dataset = &failed["gates"][0];
    assert_eq!(
        (dataset["scope"].as_str(), dataset["verdict"].as_str()),
        (Some("dataset"), Some("fail"))
    );
    assert_eq!(dataset["value"].as_f64(), Some(agreement));
    let msg = dataset["message"].as_str().unwrap();
    assert!(
        msg.contains(&above) && msg.contains("95% interval"),
        "{msg}"
    );

    // The float re-export passes element-wise at default tolerances.
    let o = parity(&[
        "check",
        s(&m.suite),
        "--model",
        s(&m.reexport),
        "--backend",
        "ort-cpu",
        "--backend",
        "tract-cpu",
        "-q",
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
}

#[test]
fn sharded_runs_merge_to_the_dataset_metrics_and_gates_of_the_unsharded_run() {
    let m = magika();
    let gates = [
        "--gate",
        "target_label:top1_agreement>=0.9",
        "--gate",
        "target_label:sqnr_db>=20",
        "--gate",
        "target_label:label_accuracy:disparity<=0.5",
    ];
    let (_, whole) = check(&m.suite, &m.qdq, &gates);
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let mut extra = gates.to_vec();
        extra.extend(["--shard", &shard]);
        let (_, part) = check(&m.suite, &m.qdq, &extra);
        let file = dir.path().join(format!("shard-{i}.json"));
        std::fs::write(&file, part.to_string()).unwrap();
        files.push(file);
    }
    let mut args = vec!["merge", "--format", "json"];
    args.extend(files.iter().map(|f| s(f)));
    let o = parity(&args);
    let merged = json(&o);
    assert_schema(&merged, "report.schema.json");
    assert_eq!(merged["metrics"], whole["metrics"]);
    assert_eq!(merged["gates"], whole["gates"]);
    assert_eq!(merged["summary"]["gates"], whole["summary"]["gates"]);
    assert_eq!(merged["verdict"], whole["verdict"]);
    assert_eq!(o.code, if whole["verdict"] == "pass" { 0 } else { 1 });
}

/// The bundled MLP with its input clipped to [-1, 1]: the same function on data sets
/// whose values stay inside, another one on data sets that go outside.
fn clipped(dir: &Path) -> PathBuf {
    let out = dir.join("mlp-clipped.onnx");
    python(
        "import sys, onnx\n\
         from onnx import helper, numpy_helper\n\
         import numpy as np\n\
         m = onnx.load(sys.argv[1])\n\
         g = m.graph\n\
         for n in g.node:\n\
         \x20   n.input[:] = ['x_clipped' if i == 'x' else i for i in n.input]\n\
         g.initializer.extend([numpy_helper.from_array(np.float32(-1), 'lo'), numpy_helper.from_array(np.float32(1), 'hi')])\n\
         g.node.insert(0, helper.make_node('Clip', ['x', 'lo', 'hi'], ['x_clipped']))\n\
         onnx.save(m, sys.argv[2])",
        &[&models().join("mlp/model.onnx"), &out],
    );
    out
}

/// A suite of the bundled MLP on 60 data sets in two slices: `inside` (|x| < 1) and
/// `outside` (|x| up to 4), recorded by ort-cpu; `[slices]` in parity.toml.
fn sliced_suite(dir: &Path) -> PathBuf {
    let inputs = dir.join("inputs");
    python(
        "import sys, os, numpy as np\n\
         os.makedirs(sys.argv[1])\n\
         rng = np.random.default_rng(7)\n\
         for i in range(60):\n\
         \x20   scale = 0.9 if i % 2 == 0 else 4.0\n\
         \x20   x = rng.uniform(-scale, scale, (1, 64)).astype(np.float32)\n\
         \x20   np.savez(os.path.join(sys.argv[1], f'test_data_set_{i}.npz'), x=x)",
        &[&inputs],
    );
    let suite = dir.join("suite");
    let mut args = vec![
        "record".to_string(),
        models().join("mlp/model.onnx").display().to_string(),
        "--backend".into(),
        "ort-cpu".into(),
        "--out".into(),
        suite.display().to_string(),
    ];
    for i in 0..60 {
        args.push("--inputs".into());
        args.push(
            inputs
                .join(format!("test_data_set_{i}.npz"))
                .display()
                .to_string(),
        );
    }
    let o = parity(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mut toml = std::fs::read_to_string(suite.join("parity.toml")).unwrap();
    toml.push_str("\n[slices]\n");
    for i in 0..60 {
        let slice = if i % 2 == 0 { "inside" } else { "outside" };
        toml.push_str(&format!("test_data_set_{i} = \"{slice}\"\n"));
    }
    std::fs::write(suite.join("parity.toml"), toml).unwrap();
    suite
}

#[test]
fn a_candidate_degraded_on_one_slice_fails_that_slice_and_the_disparity_gate() {
    let dir = tempfile::tempdir().unwrap();
    let suite = sliced_suite(dir.path());
    let candidate = clipped(dir.path());
    let (code, report) = check(
        &suite,
        &candidate,
        &[
            "--gate",
            "probs:top1_agreement>=0.5",
            "--gate",
            "probs:top1_agreement:disparity<=0.1",
        ],
    );
    assert_eq!(code, 1);
    let m = metrics(&report, "ort-cpu", "probs");
    let slice = |name: &str| {
        m["slices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["slice"] == name)
            .unwrap()["values"]["top1_agreement"]["value"]
            .as_f64()
            .unwrap()
    };
    let (inside, outside) = (slice("inside"), slice("outside"));
    let overall = m["values"]["top1_agreement"]["value"].as_f64().unwrap();
    // Inside [-1, 1] the clip changes nothing.
    assert_eq!(inside, 1.0);
    assert!(outside < 0.5 && overall >= 0.5, "{overall} {outside}");
    let gates = report["gates"].as_array().unwrap();
    let find = |scope: &str, slice: Option<&str>| {
        gates
            .iter()
            .find(|g| g["scope"] == scope && g["slice"].as_str() == slice)
            .unwrap_or_else(|| panic!("no {scope} gate {slice:?}: {gates:?}"))
    };
    assert_eq!(find("dataset", None)["verdict"], "pass");
    assert_eq!(find("slice", Some("inside"))["verdict"], "pass");
    let failed = find("slice", Some("outside"));
    assert_eq!(failed["verdict"], "fail");
    assert!(failed["message"]
        .as_str()
        .unwrap()
        .contains("on slice `outside`"));
    let disparity = find("disparity", Some("outside"));
    assert_eq!(disparity["verdict"], "fail");
    assert_eq!(disparity["value"].as_f64(), Some(inside - outside));
    assert_eq!(disparity["n"], 30);
    let msg = disparity["message"].as_str().unwrap();
    assert!(
        msg.contains("`outside`") && msg.contains("smallest slice n = 30"),
        "{msg}"
    );
}

#[test]
fn gates_that_cannot_judge_anything_are_usage_errors() {
    let mlp = models().join("mlp");
    for (gate, says) in [
        (
            "nope:top1_agreement>=0.9",
            "no suite of this run has an output `nope`",
        ),
        (
            "probs:label_accuracy>=0.9",
            "has no labels for output `probs`",
        ),
        ("probs:accuracy>=0.9", "unknown metric `accuracy`"),
    ] {
        let o = parity(&["check", s(&mlp), "--backend", "ort-cpu", "--gate", gate]);
        assert_eq!(o.code, 2, "{gate}: {}", o.stderr);
        assert!(o.stderr.contains(says), "{gate}: {}", o.stderr);
    }
}

#[test]
fn labels_and_gates_in_the_suite_are_checked_when_it_is_opened() {
    for (file, text, says) in [
        (
            "labels.csv",
            "case,label\ntest_data_set_9,1\n",
            "data set `test_data_set_9` is not in the suite",
        ),
        (
            "labels.csv",
            "case,label\ntest_data_set_0,x\n",
            "label `x`: expected class indices",
        ),
        (
            "labels.csv",
            "case,label,colour\n",
            "unknown column `colour`",
        ),
        (
            "parity.toml",
            "\n[gates]\nprobs = [\"top1_agreemnt>=0.9\"]\n",
            "unknown metric `top1_agreemnt`",
        ),
        (
            "parity.toml",
            "\n[gates]\nprob = [\"top1_agreement>=0.9\"]\n",
            "output `prob`",
        ),
        (
            "parity.toml",
            "\n[slices]\ntest_data_set_0 = \"a\"\n",
            "`test_data_set_1` has none",
        ),
        (
            "parity.toml",
            "\n[labels.cases]\ntest_data_set_0 = 1\n",
            "labels need [labels] output",
        ),
    ] {
        let (_tmp, suite) = crate::common::copy_suite("mlp");
        let path = suite.join(file);
        let mut content = std::fs::read_to_string(&path).unwrap_or_default();
        content.push_str(text);
        std::fs::write(&path, content).unwrap();
        let o = parity(&["check", s(&suite), "--backend", "ort-cpu"]);
        assert_clean_error(&o, says);
        assert!(o.stderr.contains(file), "{}", o.stderr);
    }
    // A label that is not a class of the output is the case's error, naming the output.
    let (_tmp, suite) = crate::common::copy_suite("mlp");
    let csv = "case,label\ntest_data_set_0,99\n";
    std::fs::write(suite.join("labels.csv"), csv).unwrap();
    std::fs::write(suite.join("parity.toml"), "[labels]\noutput = \"probs\"\n").unwrap();
    let o = parity(&[
        "check",
        s(&suite),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    let report = json(&o);
    assert_eq!(o.code, 2);
    let first = &report["cases"][0];
    assert_eq!(first["verdict"], "error");
    let error = first["error"].as_str().unwrap();
    assert!(
        error.contains("label 99 is not a class") && error.contains("`probs`"),
        "{error}"
    );
}
