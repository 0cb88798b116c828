//! Stateful suites (`[sequence]`): `record --sequence` infers and writes the carry map,
//! `check` runs the steps in order with each backend feeding back its own state, reports
//! the per-step error curve and names the first step out of tolerance. On a public
//! streaming model (silero-vad 6.2.3 from its PyPI wheel, 24 chunks of 512 samples) and
//! on a hand-made accumulator whose state update a variant changes.

use crate::common::{assert_clean_error, assert_schema, json, parity, root, s};
use parity::formats::onnx_pb::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use parity::tensor::Tensor;
use prost::Message;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// silero-vad's model, installed into .venv by `scripts/setup.sh --test`.
fn silero() -> PathBuf {
    let lib = root().join(".venv/lib");
    std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| {
            e.path()
                .join("site-packages/silero_vad/data/silero_vad.onnx")
        })
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("silero-vad is not installed: run scripts/setup.sh --test"))
}

/// `n` data-set directories of a 16 kHz stream: a 220 Hz tone switched on and off
/// every second plus a little deterministic noise, 512 samples per chunk, zero state.
fn audio_chunks(dir: &Path, n: usize) -> Vec<PathBuf> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|c| {
            let samples: Vec<f32> = (0..512)
                .map(|i| {
                    let t = (c * 512 + i) as f32 / 16000.0;
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let noise = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.04;
                    let on = ((t * 2.0) as usize).is_multiple_of(2);
                    f32::from(u8::from(on)) * 0.3 * (t * 220.0 * std::f32::consts::TAU).sin()
                        + noise
                })
                .collect();
            let d = dir.join(format!("chunk{c:02}"));
            std::fs::create_dir_all(&d).unwrap();
            let write = |k: usize, name: &str, t: Tensor| {
                parity::formats::write_tensor(&d.join(format!("input_{k}.pb")), name, &t).unwrap()
            };
            write(0, "input", Tensor::from_vec(vec![1, 512], samples).unwrap());
            write(
                1,
                "state",
                Tensor::from_vec(vec![2, 1, 128], vec![0f32; 256]).unwrap(),
            );
            write(2, "sr", Tensor::from_vec(vec![], vec![16000i64]).unwrap());
            d
        })
        .collect()
}

fn record_stream(model: &str, chunks: &[PathBuf], out: &Path, extra: &[&str]) -> String {
    let mut args = vec!["record", model, "--out", s(out), "--sequence"];
    for c in chunks {
        args.extend(["--inputs", s(c)]);
    }
    args.extend(extra);
    let o = parity(&args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    o.stdout
}

fn check_json(suite: &Path, backends: &[&str]) -> (i32, Value) {
    let mut args = vec!["check", s(suite), "--format", "json"];
    for b in backends {
        args.extend(["--backend", b]);
    }
    let o = parity(&args);
    (o.code, json(&o))
}

#[test]
fn silero_vad_streams_24_chunks_with_each_backend_carrying_its_own_state() {
    let dir = tempfile::tempdir().unwrap();
    let chunks = audio_chunks(dir.path(), 24);
    let suite = dir.path().join("vad");
    let model = silero();
    let stdout = record_stream(s(&model), &chunks, &suite, &[]);
    assert!(
        stdout.contains("carrying (inferred): stateN -> state"),
        "{stdout}"
    );
    let manifest = std::fs::read_to_string(suite.join("parity.toml")).unwrap();
    assert!(
        manifest.contains("[sequence.carry]\nstateN = \"state\""),
        "{manifest}"
    );
    // The stored state of step 1 is what ort-cpu carried out of step 0, not the zeros given.
    let state1 = parity::formats::read_tensor(&suite.join("test_data_set_1/input_1.pb"))
        .unwrap()
        .1;
    assert!(state1.values::<f32>().unwrap().iter().any(|&v| v != 0.0));
    // tract-cpu 0.23 cannot analyse silero-vad's If branches; the other CPU backends run it.
    let (code, r) = check_json(&suite, &["ort-cpu", "candle-cpu"]);
    assert_eq!(code, 0, "{r:#}");
    assert_schema(&r, "report.schema.json");
    let seqs = r["sequences"].as_array().unwrap();
    assert_eq!(seqs.len(), 2);
    for seq in seqs {
        assert_eq!(seq["steps"], 24);
        assert_eq!(seq["first_step_out_of_tolerance"], Value::Null);
        let curve = seq["curve"].as_array().unwrap();
        assert_eq!(curve.len(), 24);
        assert!(curve
            .iter()
            .enumerate()
            .all(|(i, p)| p["step"] == i && p["verdict"] == "pass"));
    }
    let cases = r["cases"].as_array().unwrap();
    assert!(cases.iter().all(|c| c["step"].is_u64()));
    let o = parity(&["check", s(&suite), "--backend", "candle-cpu"]);
    assert!(
        o.stdout.contains("on candle-cpu (24 steps)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("every step within tolerance"),
        "{}",
        o.stdout
    );
}

/// `y = x + state`, `stateN = y * k`: with k = 1 the state is the running sum.
fn accumulator(path: &Path, k: f32) {
    let vi = |name: &str| ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: vec![Dimension {
                        value: Some(dimension::Value::DimValue(1)),
                        ..Default::default()
                    }],
                }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    };
    let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(GraphProto {
            name: Some("accumulator".into()),
            node: vec![
                node("Add", &["x", "state"], "y"),
                node("Mul", &["y", "k"], "stateN"),
            ],
            initializer: vec![TensorProto {
                name: Some("k".into()),
                data_type: Some(1),
                dims: vec![1],
                float_data: vec![k],
                ..Default::default()
            }],
            input: vec![vi("x"), vi("state")],
            output: vec![vi("y"), vi("stateN")],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).unwrap();
}

#[test]
fn a_changed_state_update_fails_at_the_first_step_that_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("acc.onnx");
    accumulator(&model, 1.0);
    let suite = dir.path().join("acc");
    let o = parity(&[
        "record",
        s(&model),
        "--out",
        s(&suite),
        "--sequence",
        "--random",
        "6",
        "--carry",
        "stateN=state",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout.contains("carrying (--carry): stateN -> state"),
        "{}",
        o.stdout
    );
    let (code, r) = check_json(&suite, &["ort-cpu", "candle-cpu", "tract-cpu"]);
    assert_eq!(code, 0, "{r:#}");
    // The state update changes (x1.5) and only `y` is compared (the state is internal, as
    // in most streaming suites): `y` of step 0 does not depend on it, every later step
    // reads the backend's own state, so step 1 is the first out of tolerance. Had the
    // check fed the stored (golden) states, every step would pass.
    let toml = suite.join("parity.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    let start = text.find("[outputs.stateN]").unwrap();
    let end = start + text[start..].find("\n\n").unwrap();
    let text = format!(
        "{}[outputs.stateN]\nmode = \"skip\"{}",
        &text[..start],
        &text[end..]
    );
    std::fs::write(&toml, text).unwrap();
    accumulator(&suite.join("model.onnx"), 1.5);
    let (code, r) = check_json(&suite, &["ort-cpu", "candle-cpu", "tract-cpu"]);
    assert_eq!(code, 1, "{r:#}");
    for seq in r["sequences"].as_array().unwrap() {
        assert_eq!(seq["first_step_out_of_tolerance"], 1, "{seq:#}");
        assert_eq!(seq["curve"][0]["verdict"], "pass");
    }
    let o = parity(&["check", s(&suite), "--backend", "ort-cpu"]);
    assert!(
        o.stdout.contains("first step out of tolerance: 1"),
        "{}",
        o.stdout
    );
}

#[test]
fn a_carry_map_that_does_not_fit_the_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("acc.onnx");
    accumulator(&model, 1.0);
    let out = dir.path().join("s");
    let o = parity(&[
        "record",
        s(&model),
        "--out",
        s(&out),
        "--sequence",
        "--random",
        "2",
        "--carry",
        "z=state",
    ]);
    assert_clean_error(&o, "--carry z=state: the model has no output `z`");
    let o = parity(&[
        "record",
        s(&model),
        "--out",
        s(&out),
        "--random",
        "2",
        "--carry",
        "y=state",
    ]);
    assert_eq!(o.code, 2, "--carry needs --sequence: {}", o.stderr);
    let suite = dir.path().join("acc");
    let o = parity(&[
        "record",
        s(&model),
        "--out",
        s(&suite),
        "--sequence",
        "--random",
        "2",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let toml = suite.join("parity.toml");
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("stateN = \"state\"", "stateN = \"nope\"");
    std::fs::write(&toml, text).unwrap();
    let o = parity(&["check", s(&suite), "--backend", "ort-cpu"]);
    assert_clean_error(
        &o,
        "[sequence.carry] \"stateN\" = \"nope\": the model has no input `nope`",
    );
}
