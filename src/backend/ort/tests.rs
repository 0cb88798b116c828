//! Tests of `ort-cpu` against the ONNX backend-test data and tiny generated models.
//! They need ONNX Runtime (found as in production: `.venv` of the checkout) and skip with
//! a note when it or the test data is missing.

use super::*;
use crate::backend::testdata::{self, assert_close, case_dir, data_set, sample, value_info};
use crate::formats::onnx_pb::{
    attribute_proto::AttributeType, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TypeProto, ValueInfoProto,
};
use prost::Message;

/// The runtime, or `None` (test skipped) when ONNX Runtime is not installed here.
/// scripts/setup.sh installs the library; without it these tests must fail, not skip.
fn require_ort() {
    if let Err(reason) = runtime() {
        panic!("ONNX Runtime unavailable (run scripts/setup.sh): {reason}");
    }
}

fn load(model: &Path) -> Result<Box<dyn Session>, BackendError> {
    OrtCpu.load(
        model,
        &LoadOptions {
            threads: Some(1),
            ..Default::default()
        },
    )
}

/// Runs test_data_set_0 of a backend-test case and compares every output.
fn check_case(rel: &str) {
    let dir = case_dir(rel);
    require_ort();
    let mut session = load(&dir.join("model.onnx")).unwrap_or_else(|e| panic!("{rel}: {e}"));
    let (inputs, expected) = data_set(&dir, 0);
    let outputs = session
        .run(&inputs)
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(outputs.len(), expected.len(), "{rel}: output count");
    for ((name, actual), (spec, want)) in
        outputs.iter().zip(session.outputs().iter().zip(&expected))
    {
        assert_eq!(name, &spec.name);
        assert_close(&format!("{rel}:{name}"), actual, want, 1e-3, 1e-5);
    }
}

#[test]
fn probe_reports_the_loaded_version() {
    require_ort();
    let rt = runtime().unwrap();
    assert!(rt.library.path.to_string_lossy().contains("onnxruntime"));
    assert!(!rt.library.build_info.is_empty());
    match OrtCpu.probe() {
        Availability::Available { version, device } => {
            assert_eq!(device, "cpu");
            assert_eq!(version, version_label(&rt.library.version));
            assert!(version.starts_with("1."), "{version}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn version_label_flags_unexpected_releases() {
    assert_eq!(version_label("1.31.1"), "1.31.1");
    assert_eq!(version_label("1.32.0"), "1.32.0 (expected 1.31.1)");
}

#[test]
fn single_relu_model() {
    check_case("simple/test_single_relu_model");
}

#[test]
fn sign_and_shrink_models() {
    check_case("simple/test_sign_model");
    check_case("simple/test_shrink");
}

#[test]
fn pixel_shuffle_and_repeat() {
    check_case("pytorch-converted/test_PixelShuffle");
    check_case("pytorch-operator/test_operator_repeat");
}

#[test]
fn i64_input_expand() {
    // x: f32[1,3,1], shape: i64[2] -> f32[1,3,3]
    check_case("simple/test_expand_shape_model2");
}

#[test]
fn i64_scalar_output_from_a_sequence_model() {
    // SequenceLength of a sequence built inside the graph: an i64 scalar comes back.
    check_case("simple/test_sequence_model6");
}

#[test]
fn describe_inputs_and_outputs() {
    let dir = case_dir("simple/test_expand_shape_model2");
    require_ort();
    let session = load(&dir.join("model.onnx")).unwrap();
    let spec = |n: &str, d: DType, dims: &[usize]| IoSpec {
        name: n.into(),
        dtype: Some(d),
        dims: Some(dims.iter().map(|&x| Dim::Fixed(x)).collect()),
    };
    assert_eq!(
        session.inputs(),
        [
            spec("X", DType::F32, &[1, 3, 1]),
            spec("shape", DType::I64, &[2])
        ]
    );
    assert_eq!(session.outputs(), [spec("Y", DType::F32, &[1, 3, 3])]);
}

#[test]
fn symbolic_and_unknown_dims_are_described() {
    require_ort();
    let tmp = tempfile::tempdir().unwrap();
    let mut x = value_info("x", 1, &[Err("batch"), Ok(3)]);
    // An unnamed dynamic dim: a Dimension with neither value nor param.
    if let Some(TypeProto {
        value: Some(type_proto::Value::TensorType(t)),
        ..
    }) = x.r#type.as_mut()
    {
        t.shape.as_mut().unwrap().dim.push(Default::default());
    }
    let y = value_info("y", 1, &[Err("batch"), Ok(3), Err("w")]);
    let model = testdata::write_model(tmp.path(), "relu", "Relu", 14, vec![x], vec![y]);
    let mut session = load(&model).unwrap();
    assert_eq!(
        session.inputs()[0].dims,
        Some(vec![
            Dim::Symbolic("batch".into()),
            Dim::Fixed(3),
            Dim::Unknown
        ])
    );
    // Different batch sizes run through the same session.
    for batch in [1, 4] {
        let x = sample(DType::F32, vec![batch, 3, 2]);
        let out = session.run(std::slice::from_ref(&x)).unwrap();
        assert_eq!(out[0].1.shape(), [batch, 3, 2]);
        for i in 0..x.numel() {
            assert_eq!(out[0].1.get_f64(i), x.get_f64(i).max(0.0));
        }
    }
}

#[test]
fn every_dtype_round_trips_through_identity() {
    require_ort();
    let tmp = tempfile::tempdir().unwrap();
    for dtype in DType::ALL {
        let code = dtype.onnx_code();
        let dims = [Ok(2), Ok(3)];
        let model = testdata::write_model(
            tmp.path(),
            dtype.name(),
            "Identity",
            21,
            vec![value_info("x", code, &dims)],
            vec![value_info("y", code, &dims)],
        );
        let mut session = load(&model).unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert_eq!(session.inputs()[0].dtype, Some(dtype));
        let x = sample(dtype, vec![2, 3]);
        let out = session
            .run(std::slice::from_ref(&x))
            .unwrap_or_else(|e| panic!("{dtype}: {e}"));
        assert_eq!(out[0].0, "y");
        assert_eq!(out[0].1.dtype(), dtype);
        assert_eq!(out[0].1.shape(), [2, 3]);
        assert_eq!(out[0].1.bytes(), x.bytes(), "{dtype}");
    }
}

#[test]
fn bool_logic_runs() {
    require_ort();
    testdata::assert_bool_xor(&OrtCpu);
}

#[test]
fn opset_6_model_is_an_error_naming_the_op() {
    let dir = case_dir("pytorch-operator/test_operator_add_broadcast");
    require_ort();
    let err = load(&dir.join("model.onnx"))
        .err()
        .expect("ORT 1.31 has no Add(6) kernel");
    assert_eq!(err.op.as_deref(), Some("Add"), "{err:?}");
    assert!(err.message.contains("Add(6)"), "{}", err.message);
    assert!(!err.message.contains('\n'));
}

#[test]
fn op_names_are_found_in_ort_messages() {
    assert_eq!(
        op_in_message("Could not find an implementation for AveragePool(1) node with name ''"),
        Some("AveragePool".into())
    );
    assert_eq!(
        op_in_message(
            "Load model from m.onnx failed:Fatal error: ai.onnx.preview.training:Gradient(-1) is not a registered function/op"
        ),
        Some("Gradient".into())
    );
    assert_eq!(
        op_in_message("No Op registered for Frobnicate with domain_version of 13"),
        Some("Frobnicate".into())
    );
    assert_eq!(op_in_message("Got invalid dimensions for input: x"), None);
}

#[test]
fn wrong_input_dtype_and_count_are_errors() {
    let dir = case_dir("simple/test_single_relu_model");
    require_ort();
    let mut session = load(&dir.join("model.onnx")).unwrap();
    let err = session.run(&[sample(DType::F64, vec![1, 2])]).unwrap_err();
    assert!(
        err.message
            .contains("has dtype f64, the model declares f32"),
        "{}",
        err.message
    );
    let err = session.run(&[]).unwrap_err();
    assert!(
        err.message.contains("1 inputs, 0 were given"),
        "{}",
        err.message
    );
    // A wrong shape is refused before ONNX Runtime sees it, in the words every backend uses.
    let err = session.run(&[sample(DType::F32, vec![3, 2])]).unwrap_err();
    assert!(
        err.message.contains("has shape [3, 2], the model declares"),
        "{}",
        err.message
    );
}

/// A model whose output is a sequence, or a string tensor: both refused by name.
#[test]
fn non_tensor_and_string_outputs_are_refused_by_name() {
    require_ort();
    let tmp = tempfile::tempdir().unwrap();
    let x = value_info("x", 1, &[Ok(2)]);
    let seq = ValueInfoProto {
        name: Some("seq".into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::SequenceType(Box::new(
                type_proto::Sequence {
                    elem_type: Some(Box::new(x.r#type.clone().unwrap())),
                },
            ))),
        }),
        ..Default::default()
    };
    let model = testdata::write_model(
        tmp.path(),
        "seq",
        "SequenceConstruct",
        11,
        vec![x.clone()],
        vec![seq],
    );
    let mut session = load(&model).unwrap();
    assert_eq!(session.outputs()[0].dtype, None);
    let err = session.run(&[sample(DType::F32, vec![2])]).unwrap_err();
    assert!(
        err.message.contains("output seq is a sequence"),
        "{}",
        err.message
    );

    let cast = NodeProto {
        input: vec!["x".into()],
        output: vec!["s".into()],
        op_type: Some("Cast".into()),
        attribute: vec![AttributeProto {
            name: Some("to".into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(8),
            ..Default::default()
        }],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node: vec![cast],
            name: Some("to_string".into()),
            input: vec![x],
            output: vec![value_info("s", 8, &[Ok(2)])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = tmp.path().join("to_string.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let mut session = load(&path).unwrap();
    let err = session.run(&[sample(DType::F32, vec![2])]).unwrap_err();
    assert!(
        err.message.contains("output s is a string tensor"),
        "{}",
        err.message
    );
}

#[test]
fn missing_model_file_is_an_error() {
    require_ort();
    let err = load(Path::new("/nonexistent/model.onnx")).err().unwrap();
    assert!(
        err.message.contains("/nonexistent/model.onnx"),
        "{}",
        err.message
    );
}
/// `cargo test --release --lib ort::tests::timings -- --ignored --nocapture`
#[test]
#[ignore = "timing, run by hand"]
fn timings() {
    require_ort();
    const TIMED: &[&str] = &[
        "simple/test_single_relu_model",
        "pytorch-converted/test_Conv2d",
        "pytorch-converted/test_MaxPool2d_stride_padding_dilation",
        "pytorch-operator/test_operator_conv",
    ];
    for threads in [Some(1), None] {
        testdata::timings(&OrtCpu, threads, TIMED, 50);
    }
}

/// `cargo test --lib ort::tests::conformance -- --ignored --nocapture`
#[test]
#[ignore = "sweeps all 140 shipped cases; run by hand"]
fn conformance() {
    require_ort();
    testdata::sweep(&OrtCpu);
}

/// Re-runs one test of this binary in a child process with extra environment variables,
/// for checks that depend on the process-wide ONNX Runtime state (loaded once) or on
/// `PATH`. The child test does nothing unless `PARITY_TEST_CHILD` is set.
fn run_child(test: &str, envs: &[(&str, &str)]) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env("PARITY_TEST_CHILD", "1");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run child test");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child {test} failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "child {test} did not run:\n{text}"
    );
}

fn in_child() -> bool {
    std::env::var_os("PARITY_TEST_CHILD").is_some()
}

#[test]
fn missing_ort_dylib_path_makes_the_backend_unavailable() {
    run_child(
        "backend::ort::tests::child_missing_dylib",
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")],
    );
}

#[test]
fn child_missing_dylib() {
    if !in_child() {
        return;
    }
    match OrtCpu.probe() {
        Availability::Unavailable { reason } => {
            assert!(
                reason.contains("ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so.1.31.1"),
                "{reason}"
            );
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    // Loading then fails cleanly instead of panicking inside ort.
    let err = OrtCpu
        .load(Path::new("model.onnx"), &LoadOptions::default())
        .err()
        .expect("unavailable backend cannot load");
    assert!(
        err.message.starts_with("ort-cpu is unavailable"),
        "{}",
        err.message
    );
}

#[test]
fn python_probe_finds_the_venv_package() {
    let Some(dir) = testdata::onnx_data_dir() else {
        return;
    };
    // .../.venv/lib/python3.X/site-packages/onnx/backend/test/data -> .../.venv/bin
    let Some(venv) = dir.ancestors().nth(7) else {
        return;
    };
    require_ort();
    if !venv.join("bin/python3").exists() {
        return;
    }
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_child(
        "backend::ort::tests::child_python_probe",
        &[("PATH", &path)],
    );
}

#[test]
fn child_python_probe() {
    if !in_child() {
        return;
    }
    let pkg = locate::python_onnxruntime_dir(locate::PYTHON_TIMEOUT)
        .expect("python3 runs")
        .expect("onnxruntime is installed");
    assert!(
        pkg.ends_with("site-packages/onnxruntime"),
        "{}",
        pkg.display()
    );
}

#[test]
fn unaligned_input_bytes_are_fed_correctly() {
    let dir = case_dir("simple/test_single_relu_model");
    require_ort();
    // An f32 tensor mapped at an odd offset: not aligned, so it is copied before feeding.
    let x = sample(DType::F32, vec![1, 2]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.bin");
    std::fs::write(&file, [&[0u8][..], x.bytes()].concat()).unwrap();
    let map = unsafe { memmap2::Mmap::map(&std::fs::File::open(&file).unwrap()).unwrap() };
    let unaligned =
        Tensor::from_mapped(DType::F32, vec![1, 2], std::sync::Arc::new(map), 1).unwrap();
    assert!(matches!(unaligned.values::<f32>(), Some(Cow::Owned(_))));
    let mut session = load(&dir.join("model.onnx")).unwrap();
    let out = session.run(&[unaligned]).unwrap();
    for i in 0..2 {
        assert_eq!(out[0].1.get_f64(i), x.get_f64(i).max(0.0));
    }
}

#[test]
fn bound_runs_match_plain_runs_and_reuse_their_output_buffers() {
    require_ort();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/cnn");
    let rt = runtime().unwrap();
    let options = LoadOptions {
        threads: Some(1),
        ..Default::default()
    };
    let mut session =
        OrtSession::open(&rt.env, &dir.join("model.onnx"), &options, Provider::Cpu).unwrap();
    assert!(session.run_bound().is_err(), "nothing is bound yet");
    let runs: Vec<_> = (0..2)
        .map(|n| {
            let (inputs, _) = data_set(&dir, n);
            let plain = session.run(&inputs).unwrap();
            assert!(session.bind(&inputs).unwrap());
            let bound: Vec<_> = (0..2)
                .map(|_| {
                    session
                        .with_bound_outputs(|specs, out| {
                            let buffer = out["logits"].try_extract_tensor::<f32>().unwrap().1;
                            Ok((extract_all(specs, out)?, buffer.as_ptr() as usize))
                        })
                        .unwrap()
                })
                .collect();
            for (outputs, _) in &bound {
                assert_eq!(outputs.len(), 1);
                assert_eq!(outputs[0].0, "logits");
                assert_eq!(outputs[0].1.bytes(), plain[0].1.bytes());
                assert_eq!(outputs[0].1.shape(), plain[0].1.shape());
            }
            assert_eq!(
                bound[0].1, bound[1].1,
                "Run wrote into the preallocated buffer"
            );
            plain[0].1.bytes().to_vec()
        })
        .collect();
    assert_ne!(runs[0], runs[1], "rebinding ran the new inputs");
}
