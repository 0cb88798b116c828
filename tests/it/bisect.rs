//! `parity bisect`: names the node whose constant was changed by 1e-3 relative, runs
//! between every pair of CPU backends, gives the same answer in small chunks, and
//! refuses bad input with one line and exit 2.

use crate::common::{assert_clean_error, json, models, parity, s};
use parity::formats::onnx_pb::ModelProto;
use parity::formats::pb::tensor_from_proto;
use parity::tensor::DType;
use prost::Message;
use serde_json::Value;
use std::path::{Path, PathBuf};

const BACKENDS: [&str; 3] = ["ort-cpu", "candle-cpu", "tract-cpu"];

/// Copies bundled `model` into `dir` with initializer `name` multiplied by 1 + 1e-3.
fn with_scaled_constant(model: &str, name: &str, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(models().join(model).join("model.onnx")).unwrap();
    let mut m = ModelProto::decode(bytes.as_slice()).unwrap();
    let graph = m.graph.as_mut().unwrap();
    let init = graph
        .initializer
        .iter_mut()
        .find(|t| t.name() == name)
        .unwrap_or_else(|| panic!("{model} has no initializer {name}"));
    let t = tensor_from_proto(init, Path::new(name)).unwrap();
    assert_eq!(t.dtype(), DType::F32);
    let scaled: Vec<u8> = t
        .values::<f32>()
        .unwrap()
        .iter()
        .flat_map(|v| (v * 1.001f32).to_le_bytes())
        .collect();
    init.float_data.clear();
    init.raw_data = Some(scaled);
    let out = dir.join(format!("{model}-scaled.onnx"));
    std::fs::write(&out, m.encode_to_vec()).unwrap();
    out
}

fn bisect_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["bisect"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let o = parity(&all);
    assert!(
        o.code == 0 || o.code == 1,
        "exit {}: {}{}",
        o.code,
        o.stdout,
        o.stderr
    );
    (o.code, json(&o))
}

#[test]
fn names_the_node_whose_constant_changed_by_1e_3_relative() {
    let tmp = tempfile::tempdir().unwrap();
    // (bundled model, initializer, the only node that reads it, backend)
    let cases = [
        ("transformer", "ff1.bias", "Add#24", "ort-cpu"),
        ("cnn", "conv1.weight", "Conv#4", "candle-cpu"),
        ("mlp", "fc1.bias", "Gemm#2", "tract-cpu"),
    ];
    for (model, constant, node, backend) in cases {
        let changed = with_scaled_constant(model, constant, tmp.path());
        let original = models().join(model);
        let (code, r) = bisect_json(&[
            s(&original),
            "--reference-model",
            s(&changed),
            "--backend",
            backend,
        ]);
        assert_eq!(code, 1, "{model}: {r}");
        assert_eq!(r["verdict"], "diverge");
        assert_eq!(r["changed_initializers"], serde_json::json!([constant]));
        let first = &r["first_divergence"];
        assert_eq!(first["name"], node, "{model}: {first}");
        assert_eq!(first["local"], true);
        assert!(first["input_usage"].as_f64().unwrap() <= 1.0, "{first}");
        assert!(first["output_usage"].as_f64().unwrap() > 1.0, "{first}");
        assert_eq!(r["top_growth"][0]["name"], node, "{model}");
        // Every node before it agrees.
        let nodes = r["nodes"].as_array().unwrap();
        let at = nodes.iter().position(|n| n["name"] == node).unwrap();
        assert!(
            nodes[..at].iter().all(|n| n["verdict"] == "pass"),
            "{model}"
        );

        // The same model on both sides agrees.
        let (code, r) = bisect_json(&[
            s(&original),
            "--reference-model",
            s(&original),
            "--backend",
            backend,
        ]);
        assert_eq!(code, 0, "{model}: {r}");
        assert_eq!(r["first_divergence"], Value::Null);
    }
}

#[test]
fn text_report_names_the_node_and_the_constant() {
    let tmp = tempfile::tempdir().unwrap();
    let changed = with_scaled_constant("transformer", "ff1.bias", tmp.path());
    let model = models().join("transformer");
    let bisect = |extra: &[&str]| {
        let mut args = vec![
            "bisect",
            s(&model),
            "--reference-model",
            s(&changed),
            "--backend",
            "ort-cpu",
            "--cumulative",
        ];
        args.extend_from_slice(extra);
        parity(&args)
    };
    let o = bisect(&[]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout
            .contains("first node out of tolerance: node `Add#24` (Add, #24)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout
            .contains("it reads constants that differ in the reference model: ff1.bias"),
        "{}",
        o.stdout
    );
    // The 8 nodes after it fail only because their inputs do: counted as inherited,
    // not listed next to the culprit.
    assert!(
        o.stdout.contains(
            "  8 node(s) downstream are out of tolerance only because their inputs are (inherited; -v lists them)\n"
        ),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("also out of tolerance"), "{}", o.stdout);
    let v = bisect(&["-v"]);
    let inherit_rows = v
        .stdout
        .lines()
        .skip_while(|l| *l != "every node:")
        .filter(|l| l.split_whitespace().nth(2) == Some("inherit"))
        .count();
    assert_eq!(inherit_rows, 8, "{}", v.stdout);
}

#[test]
fn runs_between_every_pair_of_cpu_backends() {
    let model = models().join("transformer");
    for (i, a) in BACKENDS.iter().enumerate() {
        for b in &BACKENDS[i + 1..] {
            let (code, r) = bisect_json(&[s(&model), "--backend", a, "--reference", b]);
            let nodes = r["nodes"].as_array().unwrap();
            assert_eq!(nodes.len(), 33);
            assert_eq!(r["compared"], 33, "{a} vs {b}");
            assert_eq!(r["runs"], 1);
            assert!(
                nodes.iter().all(|n| n["verdict"] != "skipped"),
                "{a} vs {b}"
            );
            let env: Vec<&str> = r["environment"]["backends"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["name"].as_str().unwrap())
                .collect();
            assert_eq!(env, [*a, *b]);
            match code {
                // At the f32 defaults the engines' rounding stays inside tolerance.
                0 => {
                    assert_eq!(r["verdict"], "agree");
                    assert!(nodes
                        .iter()
                        .all(|n| n["output_usage"].as_f64().unwrap() <= 1.0));
                }
                _ => {
                    assert_eq!(r["verdict"], "diverge");
                    assert_eq!(r["first_divergence"]["local"], true);
                }
            }
        }
    }
}

#[test]
fn small_chunks_give_the_same_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let changed = with_scaled_constant("transformer", "ff1.bias", tmp.path());
    let model = models().join("transformer");
    let args = |chunk: Option<&'static str>| {
        let mut v = vec![
            s(&model).to_string(),
            "--reference-model".into(),
            s(&changed).to_string(),
            "--backend".into(),
            "ort-cpu".into(),
        ];
        if let Some(c) = chunk {
            v.extend(["--chunk".to_string(), c.to_string()]);
        }
        v
    };
    let run = |chunk| {
        let a = args(chunk);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        bisect_json(&refs)
    };
    let (code, whole) = run(None);
    let (code5, chunked) = run(Some("5"));
    assert_eq!((code, code5), (1, 1));
    assert_eq!(whole["runs"], 1);
    assert_eq!(chunked["runs"], 7, "33 values, 5 per run");
    assert_eq!(chunked["first_divergence"]["name"], "Add#24");
    let usages = |r: &Value| -> Vec<Value> {
        r["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["output_usage"].clone())
            .collect()
    };
    assert_eq!(usages(&whole), usages(&chunked));
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let model = models().join("mlp");
    let o = parity(&[
        "bisect",
        s(&model),
        "--backend",
        "ort-cpu",
        "--reference",
        "ort-cpu",
    ]);
    assert_clean_error(&o, "--reference ort-cpu is the backend under test");
    let o = parity(&[
        "bisect",
        s(&model),
        "--backend",
        "ort-cpu",
        "--reference-model",
        "/nonexistent/other.onnx",
    ]);
    assert_clean_error(&o, "/nonexistent/other.onnx: no such file or directory");
    let o = parity(&[
        "bisect",
        s(&model),
        "--backend",
        "ort-cpu",
        "--reference",
        "tract-cpu",
        "--data-set",
        "7",
    ]);
    assert_clean_error(&o, "holds 3 data sets, --data-set 7 asks for another");
    // A model whose inputs the reference model does not take.
    let other = models().join("cnn").join("model.onnx");
    let o = parity(&[
        "bisect",
        s(&model),
        "--backend",
        "ort-cpu",
        "--reference-model",
        s(&other),
    ]);
    assert_clean_error(&o, "no input tensor named");
    let o = parity(&[
        "bisect",
        s(&model),
        "--backend",
        "ort-cpu",
        "--reference",
        "tract-cpu",
        "--format",
        "junit",
    ]);
    assert_clean_error(&o, "[possible values: text, json]");
}
