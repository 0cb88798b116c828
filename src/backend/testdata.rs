//! Test-only helpers shared by the backend tests: the ONNX backend-test data that ships
//! in the `onnx` wheel of the project virtualenv (read with `formats::read_tensor`), a
//! numpy-`isclose` assertion, and a writer for tiny one-node models
//! (built with parity's own ONNX protobuf types) to exercise every dtype.
//!
//! Tests that need the wheel's data fail when it is absent: the README's test command
//! runs `scripts/setup.sh`, which installs it into `.venv`.

use crate::formats::onnx_pb::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use crate::tensor::{DType, Tensor};
use prost::Message;
use std::path::{Path, PathBuf};

/// `site-packages/onnx/backend/test/data` of the project virtualenv, if installed.
/// `PARITY_ONNX_TEST_DATA` overrides the location.
pub fn onnx_data_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PARITY_ONNX_TEST_DATA") {
        return Some(PathBuf::from(p));
    }
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    let mut pythons: Vec<_> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    pythons.sort();
    pythons
        .into_iter()
        .map(|p| p.join("site-packages/onnx/backend/test/data"))
        .find(|p| p.is_dir())
}

/// One case directory (e.g. `simple/test_single_relu_model`).
pub fn case_dir(rel: &str) -> PathBuf {
    match onnx_data_dir() {
        Some(d) if d.join(rel).is_dir() => d.join(rel),
        // The test command runs scripts/setup.sh first; missing data is a broken setup,
        // never a reason to pass.
        _ => panic!("ONNX backend-test data ({rel}) not found: run scripts/setup.sh"),
    }
}

/// Reads a serialized `TensorProto` with parity's own reader.
pub fn read_pb(path: &Path) -> Tensor {
    crate::formats::read_tensor(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .1
}

/// Inputs and expected outputs of `test_data_set_N` in a case directory.
pub fn data_set(case: &Path, n: usize) -> (Vec<Tensor>, Vec<Tensor>) {
    let dir = case.join(format!("test_data_set_{n}"));
    let read = |prefix: &str| {
        (0..)
            .map(|k| dir.join(format!("{prefix}_{k}.pb")))
            .take_while(|p| p.is_file())
            .map(|p| read_pb(&p))
            .collect::<Vec<_>>()
    };
    (read("input"), read("output"))
}

/// numpy `isclose` with the reference on the right, element-wise; exact for non-floats.
pub fn assert_close(name: &str, actual: &Tensor, expected: &Tensor, rtol: f64, atol: f64) {
    assert_eq!(actual.dtype(), expected.dtype(), "{name}: dtype");
    assert_eq!(actual.shape(), expected.shape(), "{name}: shape");
    for i in 0..expected.numel() {
        let (a, e) = (actual.get_f64(i), expected.get_f64(i));
        let ok = if expected.dtype().is_float() {
            (a.is_nan() && e.is_nan()) || a == e || (a - e).abs() <= atol + rtol * e.abs()
        } else {
            a == e
        };
        assert!(ok, "{name}[{i}]: actual {a}, expected {e}");
    }
}

/// A value info with an ONNX element type and dims (`Ok` = fixed, `Err` = named symbol).
pub fn value_info(name: &str, onnx_type: i32, dims: &[Result<i64, &str>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: None,
            value: Some(match d {
                Ok(v) => dimension::Value::DimValue(*v),
                Err(s) => dimension::Value::DimParam(s.to_string()),
            }),
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(onnx_type),
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        ..Default::default()
    }
}

/// Writes a model with one node `op(inputs) -> outputs` at the given ai.onnx opset into
/// `dir/name.onnx` and returns its path.
pub fn write_model(
    dir: &Path,
    name: &str,
    op: &str,
    opset: i64,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
) -> PathBuf {
    let node = NodeProto {
        input: inputs.iter().map(|v| v.name().to_string()).collect(),
        output: outputs.iter().map(|v| v.name().to_string()).collect(),
        op_type: Some(op.into()),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        producer_name: Some("parity-tests".into()),
        graph: Some(GraphProto {
            node: vec![node],
            name: Some(name.into()),
            input: inputs,
            output: outputs,
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.join(format!("{name}.onnx"));
    std::fs::write(&path, model.encode_to_vec()).expect("write test model");
    path
}

/// A small deterministic tensor of any dtype with a mix of signs and magnitudes.
pub fn sample(dtype: DType, shape: Vec<usize>) -> Tensor {
    let n: usize = shape.iter().product();
    let f = |i: usize| (i as f64 - n as f64 / 2.0) * 1.25;
    match dtype {
        DType::F32 => Tensor::from_vec(shape, (0..n).map(|i| f(i) as f32).collect()),
        DType::F64 => Tensor::from_vec(shape, (0..n).map(f).collect()),
        DType::F16 => Tensor::from_vec(shape, (0..n).map(|i| half::f16::from_f64(f(i))).collect()),
        DType::BF16 => {
            Tensor::from_vec(shape, (0..n).map(|i| half::bf16::from_f64(f(i))).collect())
        }
        DType::I8 => Tensor::from_vec(shape, (0..n).map(|i| i as i8 - 3).collect()),
        DType::I16 => Tensor::from_vec(shape, (0..n).map(|i| i as i16 * -300).collect()),
        DType::I32 => Tensor::from_vec(shape, (0..n).map(|i| i as i32 * -70_000).collect()),
        DType::I64 => Tensor::from_vec(shape, (0..n).map(|i| i as i64 * -(1 << 40)).collect()),
        DType::U8 => Tensor::from_vec(shape, (0..n).map(|i| (i * 37) as u8).collect()),
        DType::U16 => Tensor::from_vec(shape, (0..n).map(|i| (i * 9000) as u16).collect()),
        DType::U32 => Tensor::from_vec(shape, (0..n).map(|i| i as u32 * 3_000_000).collect()),
        DType::U64 => Tensor::from_vec(shape, (0..n).map(|i| u64::MAX - i as u64).collect()),
        DType::Bool => Tensor::from_bools(shape, &(0..n).map(|i| i % 3 == 0).collect::<Vec<_>>()),
    }
    .expect("sample tensor")
}

/// Runs every shipped backend-test case (`pytorch-converted`, `pytorch-operator`,
/// `simple`) on a backend and prints one line per case plus a summary: the conformance
/// numbers quoted in `docs/backends.md`. Decoding failures of the data (strings,
/// sequences) count as errors of the harness, not of the backend.
pub fn sweep(backend: &dyn super::Backend) -> (usize, usize, usize) {
    let Some(root) = onnx_data_dir() else {
        eprintln!("skipped: no ONNX backend-test data");
        return (0, 0, 0);
    };
    let (mut pass, mut mismatch, mut error) = (0, 0, 0);
    for suite in ["pytorch-converted", "pytorch-operator", "simple"] {
        let mut cases: Vec<_> = std::fs::read_dir(root.join(suite))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        cases.sort();
        for case in cases {
            let name = format!(
                "{suite}/{}",
                case.file_name().unwrap_or_default().to_string_lossy()
            );
            let data = std::panic::catch_unwind(|| data_set(&case, 0));
            let Ok((inputs, expected)) = data else {
                println!("ERROR    {name}: test data not decodable by this harness");
                error += 1;
                continue;
            };
            let started = std::time::Instant::now();
            let result = backend
                .load(
                    &case.join("model.onnx"),
                    &super::LoadOptions {
                        threads: Some(1),
                        ..Default::default()
                    },
                )
                .and_then(|mut s| s.run(&inputs));
            let ms = started.elapsed().as_secs_f64() * 1e3;
            match result {
                Err(e) => {
                    println!("ERROR    {name}: [op {:?}] {}", e.op, e.message);
                    error += 1;
                }
                Ok(outputs) => {
                    let ok = outputs.len() == expected.len()
                        && outputs.iter().zip(&expected).all(|((_, a), e)| {
                            std::panic::catch_unwind(|| assert_close("", a, e, 1e-3, 1e-5)).is_ok()
                        });
                    if ok {
                        println!("PASS     {name} ({ms:.1} ms load+run)");
                        pass += 1;
                    } else {
                        println!("MISMATCH {name}");
                        mismatch += 1;
                    }
                }
            }
        }
    }
    println!(
        "{}: pass {pass}, mismatch {mismatch}, error {error}",
        backend.name()
    );
    (pass, mismatch, error)
}

/// Load time and median run latency of a few backend-test cases on a backend (one
/// warm-up, then `runs` timed runs), printed for `docs/backends.md`.
pub fn timings(backend: &dyn super::Backend, threads: Option<usize>, cases: &[&str], runs: usize) {
    for rel in cases {
        let dir = case_dir(rel);
        let (inputs, _) = data_set(&dir, 0);
        let started = std::time::Instant::now();
        let loaded = backend.load(
            &dir.join("model.onnx"),
            &super::LoadOptions {
                threads,
                ..Default::default()
            },
        );
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut session = match loaded {
            Ok(s) => s,
            Err(e) => {
                println!("{} {rel}: {}", backend.name(), e.message);
                continue;
            }
        };
        let _ = session.run(&inputs);
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = std::time::Instant::now();
                let _ = session.run(&inputs);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{} threads={threads:?} {rel}: load {load_ms:.1} ms, run p50 {:.3} ms (min {:.3})",
            backend.name(),
            times[times.len() / 2],
            times[0]
        );
    }
}

/// Runs a one-node `Xor` model on bool inputs: the same check for every backend that
/// claims bool support.
pub fn assert_bool_xor(backend: &dyn super::Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let b = |n: &str| value_info(n, DType::Bool.onnx_code(), &[Ok(4)]);
    let model = write_model(
        tmp.path(),
        "xor",
        "Xor",
        7,
        vec![b("a"), b("b")],
        vec![b("y")],
    );
    let mut session = backend
        .load(
            &model,
            &super::LoadOptions {
                threads: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
    let a = Tensor::from_bools(vec![4], &[true, true, false, false]).unwrap();
    let c = Tensor::from_bools(vec![4], &[true, false, true, false]).unwrap();
    let out = session.run(&[a, c]).unwrap();
    assert_eq!(out[0].1.bools().unwrap(), [false, true, true, false]);
}
