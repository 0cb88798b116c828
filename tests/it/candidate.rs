//! `check --model CANDIDATE.onnx`: a suite's goldens against another model file. An
//! ONNX Runtime offline-optimised copy of the bundled MLP passes element-wise; a copy
//! with a weight moved by 1% fails; a model with other inputs is a one-line error; the
//! report names both models with their sha256.

use crate::common::{assert_clean_error, assert_schema, json, models, parity, python, s};
use std::path::{Path, PathBuf};

/// The bundled MLP saved by ONNX Runtime after its basic graph optimisations: another
/// file (other bytes, other sha256) computing the same function.
fn optimised(dir: &Path) -> PathBuf {
    let out = dir.join("mlp-ort-basic.onnx");
    python(
        "import sys, onnxruntime as ort\n\
         o = ort.SessionOptions()\n\
         o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC\n\
         o.optimized_model_filepath = sys.argv[2]\n\
         ort.InferenceSession(sys.argv[1], o, providers=['CPUExecutionProvider'])",
        &[&models().join("mlp/model.onnx"), &out],
    );
    out
}

/// The bundled MLP with its last layer's weights scaled by 1.01.
fn moved(dir: &Path) -> PathBuf {
    let out = dir.join("mlp-moved.onnx");
    python(
        "import sys, onnx, numpy as np\n\
         from onnx import numpy_helper\n\
         m = onnx.load(sys.argv[1])\n\
         for t in m.graph.initializer:\n\
         \x20   if t.name == 'fc2.weight':\n\
         \x20       t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t) * np.float32(1.01), t.name))\n\
         onnx.save(m, sys.argv[2])",
        &[&models().join("mlp/model.onnx"), &out],
    );
    out
}

fn check(candidate: &Path) -> (i32, serde_json::Value) {
    let suite = models().join("mlp");
    let o = parity(&[
        "check",
        s(&suite),
        "--model",
        s(candidate),
        "--backend",
        "ort-cpu",
        "--backend",
        "tract-cpu",
        "--format",
        "json",
    ]);
    assert!(o.code <= 1, "{}", o.stderr);
    let r = json(&o);
    assert_schema(&r, "report.schema.json");
    (o.code, r)
}

#[test]
fn an_optimised_re_export_passes_and_both_models_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = optimised(dir.path());
    let (code, r) = check(&candidate);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["summary"]["passed"], 6);
    let audit = &r["suites"][0];
    let bytes = std::fs::read(&candidate).unwrap();
    let original = std::fs::read(models().join("mlp/model.onnx")).unwrap();
    let sha = parity::formats::onnx_model::sha256_hex;
    assert_ne!(sha(&bytes), sha(&original), "a different file");
    assert_eq!(audit["candidate"]["sha256"], sha(&bytes));
    assert_eq!(audit["candidate"]["path"], s(&candidate));
    assert_eq!(audit["model_sha256"], sha(&original));
    let o = parity(&[
        "check",
        s(&models().join("mlp")),
        "--model",
        s(&candidate),
        "--backend",
        "ort-cpu",
    ]);
    assert_eq!(o.code, 0);
    assert!(
        o.stdout.contains(&format!(
            "candidate model {} (sha256 {}) ran against the goldens of",
            candidate.display(),
            sha(&bytes)
        )),
        "{}",
        o.stdout
    );
}

#[test]
fn a_candidate_with_moved_weights_fails_element_wise() {
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = check(&moved(dir.path()));
    assert_eq!(code, 1, "{r:#}");
    for case in r["cases"].as_array().unwrap() {
        assert_eq!(case["verdict"], "fail", "{case:#}");
        let logits = &case["outputs"][0];
        assert_eq!(logits["name"], "logits");
        assert!(logits["mismatched"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_candidate_with_other_inputs_is_refused() {
    let mlp = models().join("mlp");
    let cnn = models().join("cnn/model.onnx");
    let o = parity(&["check", s(&mlp), "--model", s(&cnn)]);
    assert_clean_error(&o, "the candidate has no input `x` (its inputs: image)");
    assert!(o.stderr.contains("cnn/model.onnx"), "{}", o.stderr);
    let o = parity(&["check", s(&mlp), "--model", s(&mlp.join("nope.onnx"))]);
    assert_clean_error(&o, "nope.onnx");
}

/// `y = a - b`, with its inputs declared in `order` under `names` (a's, b's) and its
/// output called `out`.
fn difference(path: &Path, names: [&str; 2], first: usize, out: &str) {
    let code = format!(
        "import sys, onnx\n\
         from onnx import helper, TensorProto\n\
         a, b = {names:?}\n\
         ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ['n', 4]) for n in (a, b)]\n\
         if {first} == 1: ins.reverse()\n\
         g = helper.make_graph([helper.make_node('Sub', [a, b], ['{out}'])], 'g', ins,\n\
         \x20   [helper.make_tensor_value_info('{out}', TensorProto.FLOAT, ['n', 4])])\n\
         onnx.save(helper.make_model(g, ir_version=8, opset_imports=[helper.make_opsetid('', 17)]), sys.argv[1])"
    );
    python(&code, &[path]);
}

#[test]
fn inputs_are_fed_by_name_and_renamed_io_is_matched_through_parity_toml() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = dir.path().join("shipped.onnx");
    difference(&shipped, ["a", "b"], 0, "y");
    let suite = dir.path().join("suite");
    let o = parity(&[
        "record",
        s(&shipped),
        "--random",
        "3",
        "--dim",
        "n=2",
        "--backend",
        "ort-cpu",
        "--out",
        s(&suite),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let check = |candidate: &Path| {
        parity(&[
            "check",
            s(&suite),
            "--model",
            s(candidate),
            "--backend",
            "ort-cpu",
            "--backend",
            "candle-cpu",
        ])
    };
    // The same inputs declared in the other order: fed by name, not by position.
    let swapped = dir.path().join("swapped.onnx");
    difference(&swapped, ["a", "b"], 1, "y");
    let o = check(&swapped);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    // An exporter that renamed everything: refused until parity.toml maps the names.
    let renamed = dir.path().join("renamed.onnx");
    difference(&renamed, ["in_a", "in_b"], 1, "out");
    assert_clean_error(&check(&renamed), "the candidate has no input `a`");
    let mut toml = std::fs::read_to_string(suite.join("parity.toml")).unwrap();
    toml.push_str(
        "\n[candidate.inputs]\na = \"in_a\"\nb = \"in_b\"\n\n[candidate.outputs]\ny = \"out\"\n",
    );
    std::fs::write(suite.join("parity.toml"), toml).unwrap();
    let o = check(&renamed);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("6 cases: 6 passed"), "{}", o.stdout);
}
