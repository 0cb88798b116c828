//! `parity invariance`: every check on the bundled models and every CPU backend; a model
//! made batch-dependent on purpose (`out` under `batch`, bitwise under `repeat` and
//! `session`); a model with a nondeterministic op (`RandomNormalLike`, caught by
//! `repeat` on ONNX Runtime); checks that do not apply; `--bitwise`; bad flags.

use crate::common::{assert_clean_error, assert_schema, json, models, parity, s};
use parity::formats::onnx_pb::{
    attribute_proto, tensor_shape_proto::dimension, tensor_shape_proto::Dimension, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use prost::Message;
use serde_json::Value;
use std::path::{Path, PathBuf};

const BACKENDS: [&str; 3] = ["ort-cpu", "candle-cpu", "tract-cpu"];

/// An f32 value info; `None` dims are the symbol `N`.
fn f32_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: None,
            value: Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("N".into()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attrs,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(attribute_proto::AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// A suite recorded by ort-cpu from `nodes` (x -> y, opset 17) with 3 random data sets.
fn suite(dir: &Path, name: &str, nodes: Vec<NodeProto>, dims: &[Option<i64>]) -> PathBuf {
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some(name.into()),
            node: nodes,
            input: vec![f32_info("x", dims)],
            output: vec![f32_info("y", dims)],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let out = dir.join(name);
    let mut args = vec!["record", s(&path), "--random", "3", "--backend", "ort-cpu"];
    if dims.contains(&None) {
        args.extend(["--dim", "N=2"]);
    }
    args.extend(["--out", s(&out)]);
    let o = parity(&args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    out
}

fn invariance(paths: &[&Path], backends: &[&str], extra: &[&str]) -> (u8, Value) {
    let mut args = vec!["invariance"];
    args.extend(paths.iter().map(|p| s(p)));
    for b in backends {
        args.extend(["--backend", b]);
    }
    args.extend(extra);
    args.extend(["--format", "json"]);
    let o = parity(&args);
    assert!(o.code <= 2, "{}", o.stderr);
    let r = json(&o);
    assert_schema(&r, "invariance.schema.json");
    (o.code as u8, r)
}

fn results<'a>(r: &'a Value, check: &str) -> Vec<&'a Value> {
    r["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["check"] == check)
        .collect()
}

#[test]
fn every_check_runs_on_the_bundled_models_and_what_cannot_apply_says_why() {
    let m = models();
    let (code, r) = invariance(&[&m.join("mlp"), &m.join("cnn")], &BACKENDS, &[]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["verdict"], "pass");
    // 2 models x 3 data sets; ort-cpu runs 5 checks, candle-cpu 4, tract-cpu 4.
    assert_eq!(r["summary"]["results"], 6 * 13, "{}", r["summary"]);
    assert_eq!(r["summary"]["errors"], 0);
    assert_eq!(r["summary"]["out"], 0);
    let na: Vec<(String, String)> = r["not_applicable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert!(n["reason"].as_str().unwrap().len() > 10, "{n}");
            (
                n["backend"].as_str().unwrap().to_string(),
                n["check"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        na,
        [
            ("candle-cpu".to_string(), "optimization".to_string()),
            ("tract-cpu".to_string(), "threads".to_string())
        ]
    );
    // Repeating a run, in the same or a fresh session, is bitwise on every engine here.
    for check in ["repeat", "session"] {
        let rs = results(&r, check);
        assert_eq!(rs.len(), 18, "{check}");
        for x in rs {
            assert_eq!(x["outcome"], "bitwise", "{x:#}");
            assert_eq!(x["outputs"][0]["max_abs_err"], 0.0);
        }
    }
    for x in results(&r, "batch") {
        let o = &x["outputs"][0];
        assert!(o["variants"].as_u64().unwrap() >= 2, "{x:#}");
        // Within tolerance, with the figures: never out, never uncompared.
        assert!(o["total"].as_u64().unwrap() > 0);
        assert!(matches!(x["outcome"].as_str(), Some("bitwise" | "within")));
    }
    // ONNX Runtime's levels: every one but the default is compared with it.
    let levels: Vec<&str> = results(&r, "optimization")
        .iter()
        .filter(|x| x["backend"] == "ort-cpu")
        .map(|x| x["reference"].as_str().unwrap())
        .collect();
    assert_eq!(levels, ["all"; 6]);
}

#[test]
fn a_batch_dependent_model_is_out_under_batch_on_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    // y = x - mean(x over the batch): each row's output depends on the other rows.
    let nodes = vec![
        node(
            "ReduceMean",
            &["x"],
            "m",
            vec![ints("axes", &[0]), {
                AttributeProto {
                    name: Some("keepdims".into()),
                    r#type: Some(attribute_proto::AttributeType::Int as i32),
                    i: Some(1),
                    ..Default::default()
                }
            }],
        ),
        node("Sub", &["x", "m"], "y", vec![]),
    ];
    let suite = suite(dir.path(), "batchdep", nodes, &[None, Some(4)]);
    let (code, r) = invariance(&[&suite], &BACKENDS, &["--check", "repeat,session,batch"]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["verdict"], "fail");
    for b in BACKENDS {
        let mine = |check| -> Vec<&Value> {
            results(&r, check)
                .into_iter()
                .filter(|x| x["backend"] == b)
                .collect()
        };
        assert_eq!(mine("batch").len(), 3, "{b}");
        for x in mine("batch") {
            assert_eq!(x["outcome"], "out", "{b}: {x:#}");
            let o = &x["outputs"][0];
            assert!(o["mismatched"].as_u64().unwrap() > 0, "{o}");
            assert!(o["worst_index"].is_array() && o["expected"].is_f64());
        }
        for x in mine("repeat").into_iter().chain(mine("session")) {
            assert_eq!(x["outcome"], "bitwise", "{b}: {x:#}");
        }
    }
    let o = parity(&[
        "invariance",
        s(&suite),
        "--check",
        "batch",
        "--backend",
        "ort-cpu",
    ]);
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains(" out "), "{}", o.stdout);
    assert!(
        o.stdout.contains("elements differ beyond tolerance"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.trim_end().ends_with("FAIL"), "{}", o.stdout);
}

#[test]
fn a_nondeterministic_op_is_caught_by_repeat() {
    let dir = tempfile::tempdir().unwrap();
    // y = x + RandomNormalLike(x) without a seed: a fresh draw on every run.
    let nodes = vec![
        node("RandomNormalLike", &["x"], "r", vec![]),
        node("Add", &["x", "r"], "y", vec![]),
    ];
    let suite = suite(dir.path(), "noisy", nodes, &[Some(2), Some(3)]);
    let (code, r) = invariance(
        &[&suite],
        &["ort-cpu"],
        &["--check", "repeat,session,batch"],
    );
    assert_eq!(code, 1, "{r:#}");
    for x in results(&r, "repeat") {
        assert_eq!(x["outcome"], "out", "{x:#}");
        assert_eq!(x["outputs"][0]["variants"], 4, "--repeats 5: runs 2 to 5");
    }
    // Every dim fixed: batch does not apply, and says why.
    let na = &r["not_applicable"][0];
    assert_eq!(na["check"], "batch");
    assert!(
        na["reason"]
            .as_str()
            .unwrap()
            .contains("input `x` has no symbolic dim"),
        "{na}"
    );
}

#[test]
fn bitwise_fails_what_is_only_within_tolerance() {
    let m = models().join("cnn");
    let args = ["--check", "optimization"];
    let (code, r) = invariance(&[&m], &["ort-cpu"], &args);
    assert_eq!(code, 0);
    assert!(r["summary"]["within"].as_u64().unwrap() > 0, "{r:#}");
    let (code, r) = invariance(&[&m], &["ort-cpu"], &[&args[..], &["--bitwise"]].concat());
    assert_eq!(code, 1);
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["bitwise_required"], true);
}

#[test]
fn bad_flags_are_one_line_errors() {
    let m = models().join("mlp");
    let o = parity(&["invariance", s(&m), "--check", "colour"]);
    assert_clean_error(&o, "unknown check `colour`");
    let o = parity(&[
        "invariance",
        s(&m),
        "--check",
        "threads",
        "--threads-list",
        "1",
    ]);
    assert_clean_error(&o, "--threads-list needs a thread count other than 1");
    let o = parity(&["invariance", s(&m.join("nope"))]);
    assert_eq!(o.code, 2);
}

#[test]
fn junit_markdown_and_html_carry_the_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let m = models().join("cnn");
    let args = |format: &'static str| {
        vec![
            "invariance",
            s(&m),
            "--backend",
            "ort-cpu",
            "--backend",
            "tract-cpu",
            "--check",
            "repeat,threads,optimization",
            "--bitwise",
            "--format",
            format,
        ]
    };
    // --bitwise: ONNX Runtime's and tract's levels differ within tolerance: failures.
    let o = parity(&args("junit"));
    assert_eq!(o.code, 1, "{}", o.stderr);
    crate::reports::assert_valid(&o.stdout);
    let x = &o.stdout;
    // 3 data sets x (3 checks on ort-cpu, 2 on tract-cpu) + tract's threads skipped.
    assert!(
        x.contains("<testsuites name=\"parity invariance\" tests=\"16\""),
        "{x}"
    );
    assert!(
        x.contains("<skipped message=\"tract-cpu has no intra-op thread setting"),
        "{x}"
    );
    assert!(x.contains("<failure message=\""), "{x}");
    assert!(x.contains("test_data_set_0 optimization"), "{x}");

    let o = parity(&args("markdown"));
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.starts_with("## parity invariance: FAIL"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("### Not bitwise"), "{}", o.stdout);
    assert!(o.stdout.contains("### Not applicable"), "{}", o.stdout);

    let page = dir.path().join("invariance.html");
    let mut html = args("html");
    html.extend(["--out", s(&page)]);
    let o = parity(&html);
    assert_eq!(o.code, 1, "{}", o.stderr);
    crate::html::dom_has(
        dir.path(),
        &page,
        &[
            "<h1>parity invariance: FAIL</h1>",
            "<th>suite</th><th>backend</th><th>check</th><th>bitwise</th>",
            "<h2>Not bitwise</h2>",
            "<h2>Not applicable</h2>",
            "decluttered vs optimized",
        ],
    );
}

#[test]
fn isolated_workers_vary_threads_and_levels_too() {
    let m = models().join("mlp");
    let checks = ["--check", "repeat,session,threads,optimization"];
    let (code, direct) = invariance(&[&m], &["ort-cpu"], &checks);
    assert_eq!(code, 0);
    let (code, isolated) = invariance(&[&m], &["ort-cpu"], &[&checks[..], &["--isolate"]].concat());
    assert_eq!(code, 0, "{isolated:#}");
    assert_eq!(isolated["summary"]["results"], 12);
    assert_eq!(isolated["summary"]["errors"], 0);
    // The same sessions in worker processes: the same outcomes.
    let outcomes = |r: &Value| -> Vec<String> {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| format!("{} {} {}", x["case"], x["check"], x["outcome"]))
            .collect()
    };
    assert_eq!(outcomes(&direct), outcomes(&isolated));
}

#[test]
fn a_bare_model_is_checked_on_generated_data_sets() {
    let model = models().join("mlp/model.onnx");
    let (code, r) = invariance(
        &[&model],
        &["ort-cpu"],
        &[
            "--random",
            "2",
            "--dim",
            "batch=3",
            "--check",
            "repeat,batch",
        ],
    );
    assert_eq!(code, 0, "{r:#}");
    let cases: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["case"].as_str().unwrap())
        .collect();
    assert_eq!(cases, ["random 0", "random 0", "random 1", "random 1"]);
    for x in r["results"].as_array().unwrap() {
        assert_eq!(
            x["outputs"].as_array().unwrap().len(),
            2,
            "logits and probs"
        );
    }
    let o = parity(&["invariance", s(&model), "--dim", "nope=3"]);
    assert_clean_error(&o, "--dim nope: the model has no such dim");
}
