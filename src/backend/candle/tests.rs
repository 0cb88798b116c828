//! Tests of the candle-cpu interpreter: real ONNX backend-test models against their
//! expected outputs (several op families), opset-dependent semantics and refusals on tiny
//! models built here, dtype round trips, and an ignored sweep over all 140 shipped cases
//! that prints the conformance numbers and the most common refusals.

use super::CandleCpu;
use crate::backend::testdata::{assert_close, case_dir, data_set, onnx_data_dir, value_info};
use crate::backend::{Backend, BackendError, LoadOptions};
use crate::formats::onnx_pb::{
    attribute_proto::AttributeType, AttributeProto, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, ValueInfoProto,
};
use crate::tensor::{DType, Tensor};
use prost::Message;
use std::path::{Path, PathBuf};

const F32: i32 = 1;
const I64: i32 = 7;
const I32: i32 = 6;
const BOOL: i32 = 9;

/// Runs test_data_set_0 of a shipped case and compares with rtol 1e-3, atol 1e-5.
fn check_case(rel: &str) {
    let dir = case_dir(rel);
    let (inputs, expected) = data_set(&dir, 0);
    let mut s = CandleCpu
        .load(&dir.join("model.onnx"), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{rel}: load: {}", e.message));
    let out = s
        .run(&inputs)
        .unwrap_or_else(|e| panic!("{rel}: run: {}", e.message));
    assert_eq!(out.len(), expected.len(), "{rel}: output count");
    for ((name, a), e) in out.iter().zip(&expected) {
        assert_close(&format!("{rel}:{name}"), a, e, 1e-3, 1e-5);
    }
}

#[test]
fn conv_cases_match_expected_outputs() {
    for c in [
        "pytorch-converted/test_Conv1d_dilated",
        "pytorch-converted/test_Conv1d_groups",
        "pytorch-converted/test_Conv2d_depthwise_padded",
        "pytorch-converted/test_Conv2d_groups",
        "pytorch-converted/test_Conv2d_dilated",
        "pytorch-converted/test_Conv3d_stride_padding",
        "pytorch-converted/test_ConvTranspose2d",
        "pytorch-operator/test_operator_convtranspose",
    ] {
        check_case(c);
    }
}

#[test]
fn pool_cases_match_expected_outputs() {
    for c in [
        "pytorch-converted/test_AvgPool1d_stride",
        "pytorch-converted/test_AvgPool3d_stride1_pad0_gpu_input",
        "pytorch-converted/test_MaxPool2d",
        "pytorch-converted/test_MaxPool3d_stride_padding",
        "pytorch-converted/test_MaxPool1d_stride_padding_dilation",
    ] {
        check_case(c);
    }
}

#[test]
fn gemm_softmax_norm_cases_match_expected_outputs() {
    for c in [
        "pytorch-converted/test_Linear",
        "pytorch-operator/test_operator_addmm",
        "pytorch-operator/test_operator_mm",
        "pytorch-converted/test_Softmax",
        "pytorch-converted/test_log_softmax_dim3",
        "pytorch-converted/test_softmax_functional_dim3",
        "pytorch-converted/test_BatchNorm3d_momentum_eval",
        "pytorch-operator/test_operator_symbolic_override",
    ] {
        check_case(c);
    }
}

#[test]
fn shape_pad_slice_cases_match_expected_outputs() {
    for c in [
        "pytorch-converted/test_ReflectionPad2d",
        "pytorch-converted/test_ReplicationPad2d",
        "pytorch-converted/test_ConstantPad2d",
        "pytorch-operator/test_operator_index",
        "pytorch-operator/test_operator_chunk",
        "pytorch-converted/test_PixelShuffle",
        "pytorch-operator/test_operator_repeat_dim_overflow",
        "simple/test_expand_shape_model3",
        "pytorch-converted/test_Embedding",
        "pytorch-converted/test_GLU_dim",
    ] {
        check_case(c);
    }
}

#[test]
fn legacy_broadcast_and_activation_cases_match_expected_outputs() {
    for c in [
        "pytorch-operator/test_operator_add_size1_broadcast",
        "pytorch-operator/test_operator_add_broadcast",
        "pytorch-operator/test_operator_clip",
        "pytorch-operator/test_operator_reduced_sum",
        "pytorch-operator/test_operator_pow",
        "pytorch-converted/test_PReLU_2d_multiparam",
        "pytorch-converted/test_SELU",
        "pytorch-converted/test_Softplus",
        "simple/test_shrink",
        "simple/test_sign_model",
    ] {
        check_case(c);
    }
}

// ---- tiny models built in the test ----

fn attr(name: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        ..Default::default()
    }
}
fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        i: Some(v),
        r#type: Some(AttributeType::Int as i32),
        ..attr(name)
    }
}
fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        f: Some(v),
        r#type: Some(AttributeType::Float as i32),
        ..attr(name)
    }
}
fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        ints: v.to_vec(),
        r#type: Some(AttributeType::Ints as i32),
        ..attr(name)
    }
}
fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        s: Some(v.as_bytes().to_vec()),
        r#type: Some(AttributeType::String as i32),
        ..attr(name)
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        op_type: Some(op.into()),
        attribute: attrs,
        ..Default::default()
    }
}

fn init_i64(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: vec![v.len() as i64],
        data_type: Some(I64),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

struct Tiny {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn model(
    opset: i64,
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
) -> Tiny {
    let dir = tempfile::tempdir().expect("tempdir");
    let m = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            node: nodes,
            input: inputs,
            output: outputs,
            initializer: inits,
            ..Default::default()
        }),
        ..Default::default()
    };
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, m.encode_to_vec()).expect("write model");
    Tiny { _dir: dir, path }
}

fn load(path: &Path) -> Result<Box<dyn crate::backend::Session>, BackendError> {
    CandleCpu.load(path, &LoadOptions::default())
}

/// The error of a result that must fail.
fn refused<T>(r: Result<T, BackendError>) -> BackendError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn run1(t: &Tiny, inputs: &[Tensor]) -> Result<Tensor, BackendError> {
    let mut s = load(&t.path)?;
    Ok(s.run(inputs)?.remove(0).1)
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), v.to_vec()).expect("tensor")
}

fn vals(t: &Tensor) -> Vec<f64> {
    (0..t.numel()).map(|i| t.get_f64(i)).collect()
}

/// A one-node model `y = op(x)` on f32 [n].
fn unary(op: &str, opset: i64, n: i64, attrs: Vec<AttributeProto>) -> Tiny {
    model(
        opset,
        vec![node(op, &["x"], &["y"], attrs)],
        vec![value_info("x", F32, &[Ok(n)])],
        vec![value_info("y", F32, &[Ok(n)])],
        vec![],
    )
}

#[test]
fn clip_opset6_honours_attributes_and_refuses_unknown_ones() {
    let x = f32s(&[4], &[-2.0, -0.25, 0.25, 2.0]);
    let m = unary("Clip", 6, 4, vec![attr_f("min", -0.5), attr_f("max", 0.5)]);
    assert_eq!(
        vals(&run1(&m, std::slice::from_ref(&x)).expect("run")),
        [-0.5, -0.25, 0.25, 0.5]
    );
    // Opset 6 defaults are +-FLT_MAX: infinities are clipped, not passed through.
    let inf = f32s(&[4], &[f32::NEG_INFINITY, 0.0, 1.0, f32::INFINITY]);
    let m = unary("Clip", 6, 4, vec![]);
    assert_eq!(
        vals(&run1(&m, &[inf]).expect("run")),
        [f32::MIN as f64, 0.0, 1.0, f32::MAX as f64]
    );
    // An attribute this backend does not know is refused, naming op and attribute.
    let m = unary(
        "Clip",
        6,
        4,
        vec![attr_f("min", -0.5), attr_f("fancy", 1.0)],
    );
    let e = refused(load(&m.path));
    assert_eq!(e.op.as_deref(), Some("Clip"));
    assert!(
        e.message.contains("attribute `fancy` is not supported"),
        "{}",
        e.message
    );
    // At opset 11 min/max are inputs; the attribute no longer exists.
    let m = unary("Clip", 11, 4, vec![attr_f("min", -0.5)]);
    let e = refused(load(&m.path));
    assert!(
        e.message.contains("attribute `min` is not supported"),
        "{}",
        e.message
    );
}

#[test]
fn unsupported_attribute_values_and_ops_are_refused_with_names() {
    let cases: Vec<(Tiny, &str, &str)> = vec![
        (
            unary("Gelu", 20, 4, vec![attr_s("approximate", "fast")]),
            "Gelu",
            "attribute `approximate` = \"fast\"",
        ),
        (unary("Unique", 13, 4, vec![]), "Unique", "not implemented"),
        (
            unary("Relu", 13, 4, vec![attr_i("inplace", 1)]),
            "Relu",
            "attribute `inplace` is not supported",
        ),
        (unary("Erf", 8, 4, vec![]), "Erf", "not defined at opset 8"),
        (
            unary("Gelu", 19, 4, vec![]),
            "Gelu",
            "not defined at opset 19",
        ),
        (
            unary("BatchNormalization", 6, 4, vec![attr_i("is_test", 0)]),
            "BatchNormalization",
            "attribute `is_test` = 0",
        ),
        (
            unary("Dropout", 6, 4, vec![]),
            "Dropout",
            "`is_test` = 0 (training mode)",
        ),
    ];
    for (m, op, msg) in cases {
        let e = load(&m.path)
            .err()
            .unwrap_or_else(|| panic!("{op}: not refused"));
        assert_eq!(e.op.as_deref(), Some(op), "{}", e.message);
        assert!(e.message.contains(msg), "{op}: {}", e.message);
    }
    // Pad modes and BatchNormalization spatial = 0.
    let m = model(
        11,
        vec![node(
            "Pad",
            &["x", "p"],
            &["y"],
            vec![attr_s("mode", "wrap")],
        )],
        vec![value_info("x", F32, &[Ok(4)])],
        vec![value_info("y", F32, &[Ok(6)])],
        vec![init_i64("p", &[1, 1])],
    );
    let e = refused(load(&m.path));
    assert!(
        e.message
            .contains("attribute `mode` = \"wrap\" is not supported"),
        "{}",
        e.message
    );
    // A node in another domain names the domain.
    let mut n = node("FusedGemm", &["x"], &["y"], vec![]);
    n.domain = Some("com.microsoft".into());
    let m = model(
        13,
        vec![n],
        vec![value_info("x", F32, &[Ok(4)])],
        vec![value_info("y", F32, &[Ok(4)])],
        vec![],
    );
    let e = refused(load(&m.path));
    assert!(
        e.message.contains("FusedGemm")
            && e.message
                .contains("domain `com.microsoft` is not supported beyond")
            && e.message.contains("QLinearSoftmax"),
        "{}",
        e.message
    );
    // A newer opset than this backend knows.
    let m = unary("Relu", 29, 4, vec![]);
    assert!(refused(load(&m.path)).message.contains("opset 29"));
}

/// Integer reductions wrap on overflow, as ONNX Runtime's C++ and
/// `np.sum(x, dtype=np.uint8)` do, in the test build as in the release build. The
/// fuzzer (`candle_ops`, docs/reliability.md) found a uint8 `ReduceSumSquare` that
/// candle-core's overflow check turned into "candle panicked"; the dev profile now
/// builds candle-core without overflow checks, as release does.
#[test]
fn integer_reductions_wrap_on_overflow() {
    const U8: i32 = 2;
    let x = Tensor::from_vec(vec![3], vec![200u8, 100, 16]).expect("x");
    let reduce = |op: &str| {
        let m = model(
            13,
            vec![node(op, &["x"], &["y"], vec![attr_i("keepdims", 0)])],
            vec![value_info("x", U8, &[Ok(3)])],
            vec![value_info("y", U8, &[])],
            vec![],
        );
        vals(&run1(&m, std::slice::from_ref(&x)).expect("run"))
    };
    // 200 + 100 + 16 = 316 = 256 + 60.
    assert_eq!(reduce("ReduceSum"), [60.0]);
    // 40000 + 10000 + 256 wrap to 64 + 16 + 0 (each square wraps before the sum).
    assert_eq!(reduce("ReduceSumSquare"), [80.0]);
}

#[test]
fn opset_switches_of_reduce_split_and_squeeze_are_honoured() {
    let x = Tensor::from_vec(vec![2, 3], (0..6).map(|v| v as f32).collect()).expect("x");
    // ReduceSum: axes attribute at opset 11, input at opset 13.
    let m11 = model(
        11,
        vec![node(
            "ReduceSum",
            &["x"],
            &["y"],
            vec![attr_ints("axes", &[1]), attr_i("keepdims", 0)],
        )],
        vec![value_info("x", F32, &[Ok(2), Ok(3)])],
        vec![value_info("y", F32, &[Ok(2)])],
        vec![],
    );
    assert_eq!(
        vals(&run1(&m11, std::slice::from_ref(&x)).expect("run")),
        [3.0, 12.0]
    );
    let m13 = model(
        13,
        vec![node(
            "ReduceSum",
            &["x", "a"],
            &["y"],
            vec![attr_i("keepdims", 0)],
        )],
        vec![value_info("x", F32, &[Ok(2), Ok(3)])],
        vec![value_info("y", F32, &[Ok(3)])],
        vec![init_i64("a", &[0])],
    );
    assert_eq!(
        vals(&run1(&m13, std::slice::from_ref(&x)).expect("run")),
        [3.0, 5.0, 7.0]
    );
    // The opset-11 attribute is refused at opset 13 rather than ignored.
    let bad = model(
        13,
        vec![node(
            "ReduceSum",
            &["x"],
            &["y"],
            vec![attr_ints("axes", &[1])],
        )],
        vec![value_info("x", F32, &[Ok(2), Ok(3)])],
        vec![value_info("y", F32, &[Ok(2), Ok(1)])],
        vec![],
    );
    let e = refused(load(&bad.path));
    assert!(
        e.message.contains("attribute `axes` is not supported"),
        "{}",
        e.message
    );
    // Split: `split` attribute (opset 11) vs input (opset 13); uneven num_outputs (18).
    let split =
        |opset: i64, attrs: Vec<AttributeProto>, inputs: &[&str], inits: Vec<TensorProto>| {
            model(
                opset,
                vec![node("Split", inputs, &["a", "b"], attrs)],
                vec![value_info("x", F32, &[Ok(2), Ok(3)])],
                vec![
                    value_info("a", F32, &[Ok(2), Err("n")]),
                    value_info("b", F32, &[Ok(2), Err("m")]),
                ],
                inits,
            )
        };
    for m in [
        split(
            11,
            vec![attr_i("axis", 1), attr_ints("split", &[1, 2])],
            &["x"],
            vec![],
        ),
        split(
            13,
            vec![attr_i("axis", 1)],
            &["x", "s"],
            vec![init_i64("s", &[1, 2])],
        ),
        split(
            18,
            vec![attr_i("axis", 1), attr_i("num_outputs", 2)],
            &["x"],
            vec![],
        ),
    ] {
        let out = load(&m.path)
            .expect("load")
            .run(std::slice::from_ref(&x))
            .expect("run");
        let (a, b) = (&out[0].1, &out[1].1);
        let expect_a: &[usize] = if vals(a).len() == 2 { &[2, 1] } else { &[2, 2] };
        assert_eq!(a.shape(), expect_a);
        assert_eq!(a.numel() + b.numel(), 6);
    }
}

#[test]
fn softmax_axis_semantics_change_at_opset_13() {
    let x = Tensor::from_vec(vec![1, 2, 2], vec![0f32, 1.0, 2.0, 3.0]).expect("x");
    let sm = |opset| {
        model(
            opset,
            vec![node("Softmax", &["x"], &["y"], vec![attr_i("axis", 1)])],
            vec![value_info("x", F32, &[Ok(1), Ok(2), Ok(2)])],
            vec![value_info("y", F32, &[Ok(1), Ok(2), Ok(2)])],
            vec![],
        )
    };
    // Opset 11: softmax over the flattened [2*2] block.
    let y11 = vals(&run1(&sm(11), std::slice::from_ref(&x)).expect("run"));
    let z: f64 = (0..4).map(|i| (i as f64).exp()).sum();
    for (i, y) in y11.iter().enumerate() {
        assert!((y - (i as f64).exp() / z).abs() < 1e-6);
    }
    // Opset 13: softmax over axis 1 only.
    let y13 = vals(&run1(&sm(13), &[x]).expect("run"));
    let s = 1.0 / (1.0 + 2f64.exp());
    assert!(
        (y13[0] - s).abs() < 1e-6 && (y13[2] - (1.0 - s)).abs() < 1e-6,
        "{y13:?}"
    );
}

#[test]
fn elementwise_semantics_match_onnx_not_candle_shortcuts() {
    // Pow with a negative base (candle's pow is exp(y ln x) = NaN).
    let m = model(
        13,
        vec![node("Pow", &["x", "e"], &["y"], vec![])],
        vec![
            value_info("x", F32, &[Ok(3)]),
            value_info("e", F32, &[Ok(3)]),
        ],
        vec![value_info("y", F32, &[Ok(3)])],
        vec![],
    );
    let y = run1(
        &m,
        &[f32s(&[3], &[-2.0, -3.0, 0.0]), f32s(&[3], &[2.0, 3.0, 0.0])],
    )
    .expect("run");
    assert_eq!(vals(&y), [4.0, -27.0, 1.0]);
    // Round is half-to-even; Relu and Clip keep NaN.
    let y = run1(
        &unary("Round", 11, 4, vec![]),
        &[f32s(&[4], &[0.5, 1.5, 2.5, -0.5])],
    )
    .expect("run");
    assert_eq!(vals(&y), [0.0, 2.0, 2.0, -0.0]);
    let y = run1(
        &unary("Relu", 14, 2, vec![]),
        &[f32s(&[2], &[f32::NAN, -1.0])],
    )
    .expect("run");
    assert!(vals(&y)[0].is_nan() && vals(&y)[1] == 0.0);
    // Int32 arithmetic wraps like int32.
    let m = model(
        14,
        vec![node("Add", &["a", "b"], &["y"], vec![])],
        vec![
            value_info("a", I32, &[Ok(2)]),
            value_info("b", I32, &[Ok(2)]),
        ],
        vec![value_info("y", I32, &[Ok(2)])],
        vec![],
    );
    let a = Tensor::from_vec(vec![2], vec![i32::MAX, -5]).expect("a");
    let b = Tensor::from_vec(vec![2], vec![1i32, 2]).expect("b");
    let y = run1(&m, &[a, b]).expect("run");
    assert_eq!(y.dtype(), DType::I32);
    assert_eq!(y.values::<i32>().expect("i32").as_ref(), &[i32::MIN, -3]);
    // Integer division by zero is an error, not a panic.
    let m = model(
        14,
        vec![node("Div", &["a", "b"], &["y"], vec![])],
        vec![
            value_info("a", I64, &[Ok(1)]),
            value_info("b", I64, &[Ok(1)]),
        ],
        vec![value_info("y", I64, &[Ok(1)])],
        vec![],
    );
    let one = Tensor::from_vec(vec![1], vec![1i64]).expect("t");
    let zero = Tensor::from_vec(vec![1], vec![0i64]).expect("t");
    assert!(refused(run1(&m, &[one, zero]))
        .message
        .contains("division by zero"));
}

#[test]
fn shape_subgraph_bool_and_gather_work_with_integers() {
    // Shape -> Gather(-1) -> Unsqueeze -> Concat -> Reshape, plus Greater -> Where.
    let m = model(
        13,
        vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Gather", &["s", "last"], &["n"], vec![attr_i("axis", 0)]),
            node("Unsqueeze", &["n", "zero"], &["n1"], vec![]),
            node(
                "Concat",
                &["n1", "minus1"],
                &["shape"],
                vec![attr_i("axis", 0)],
            ),
            node("Reshape", &["x", "shape"], &["r"], vec![]),
            node("Greater", &["r", "z"], &["c"], vec![]),
            node("Where", &["c", "r", "z"], &["y"], vec![]),
        ],
        vec![value_info("x", F32, &[Ok(2), Ok(3)])],
        vec![
            value_info("y", F32, &[Ok(3), Ok(2)]),
            value_info("c", BOOL, &[Ok(3), Ok(2)]),
        ],
        vec![
            TensorProto {
                name: Some("last".into()),
                data_type: Some(I64),
                int64_data: vec![-1],
                ..Default::default()
            },
            init_i64("zero", &[0]),
            init_i64("minus1", &[-1]),
            TensorProto {
                name: Some("z".into()),
                data_type: Some(F32),
                float_data: vec![0.0],
                ..Default::default()
            },
        ],
    );
    let x = f32s(&[2, 3], &[1.0, -2.0, 3.0, -4.0, 5.0, -6.0]);
    let out = load(&m.path).expect("load").run(&[x]).expect("run");
    assert_eq!(out[0].1.shape(), [3, 2]);
    assert_eq!(vals(&out[0].1), [1.0, 0.0, 3.0, 0.0, 5.0, 0.0]);
    assert_eq!(
        out[1].1.bools().expect("bool"),
        [true, false, true, false, true, false]
    );
}

#[test]
fn values_round_trip_every_supported_dtype() {
    use super::value::Value;
    for d in DType::ALL {
        let t = crate::backend::testdata::sample(d, vec![2, 3]);
        match Value::from_tensor(&t, &candle_core::Device::Cpu) {
            Ok(v) => {
                let back = v.to_tensor().expect("back");
                assert_eq!(back.dtype(), d);
                assert_eq!(back.bytes(), t.bytes(), "{d}");
            }
            Err(_) => assert_eq!(d, DType::U64, "only u64 is refused"),
        }
    }
}

#[test]
fn input_schema_is_checked() {
    let m = unary("Relu", 14, 4, vec![]);
    let e = refused(run1(&m, &[f32s(&[3], &[1.0, 2.0, 3.0])]));
    assert!(e.message.contains("has shape [3]"), "{}", e.message);
    let e = refused(run1(
        &m,
        &[Tensor::from_vec(vec![4], vec![1f64; 4]).expect("t")],
    ));
    assert!(e.message.contains("dtype f64"), "{}", e.message);
}

#[test]
fn threads_option_runs_in_own_pool() {
    let dir = case_dir("pytorch-operator/test_operator_conv");
    let (inputs, expected) = data_set(&dir, 0);
    let mut s = CandleCpu
        .load(
            &dir.join("model.onnx"),
            &LoadOptions {
                threads: Some(1),
                ..Default::default()
            },
        )
        .expect("load");
    let out = s.run(&inputs).expect("run");
    assert_close("conv", &out[0].1, &expected[0], 1e-3, 1e-5);
}

/// All 140 shipped cases: `cargo test --lib backend::candle -- --ignored --nocapture`.
#[test]
#[ignore]
fn conformance_sweep() {
    let Some(root) = onnx_data_dir() else { return };
    let (_, mismatch, _) = sweep(&root, &["pytorch-converted", "pytorch-operator", "simple"]);
    assert_eq!(mismatch, 0, "a mismatch is a silently wrong answer");
}

/// The ONNX node tests (about 1,860 one-op models), when generated into
/// `$PARITY_ONNX_NODE_DATA/node` (e.g. with `onnx.backend.test.case.node.collect_testcases`).
#[test]
#[ignore]
fn node_test_sweep() {
    let Some(root) = std::env::var_os("PARITY_ONNX_NODE_DATA") else {
        eprintln!("skipped: PARITY_ONNX_NODE_DATA is not set");
        return;
    };
    sweep(Path::new(&root), &["node"]);
}

/// Runs test_data_set_0 of every case under `root/suite`, prints a line per case, the
/// most common refusals and the totals.
fn sweep(root: &Path, suites: &[&str]) -> (usize, usize, usize) {
    let (mut pass, mut mismatch, mut error) = (0, 0, 0);
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    // The harness's decoder panics on tensors it cannot hold (strings, float8); keep quiet.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for suite in suites {
        let mut cases: Vec<_> = std::fs::read_dir(root.join(suite))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        cases.sort();
        for case in cases {
            let name = format!(
                "{suite}/{}",
                case.file_name().unwrap_or_default().to_string_lossy()
            );
            let Ok((inputs, expected)) = std::panic::catch_unwind(|| data_set(&case, 0)) else {
                println!("ERROR    {name}: test data not decodable (strings/sequences)");
                *reasons.entry("undecodable test data".into()).or_default() += 1;
                error += 1;
                continue;
            };
            match load(&case.join("model.onnx")).and_then(|mut s| s.run(&inputs)) {
                Err(e) => {
                    println!("ERROR    {name}: {}", e.message);
                    let key = match &e.op {
                        Some(op) => format!("unsupported {op}"),
                        None => e.message.chars().take(70).collect(),
                    };
                    *reasons.entry(key).or_default() += 1;
                    error += 1;
                }
                Ok(out) => {
                    let mut why = String::new();
                    let ok = out.len() == expected.len()
                        && out.iter().zip(&expected).all(|((n, a), e)| {
                            std::panic::catch_unwind(|| {
                                let (rtol, atol) = match e.dtype() {
                                    DType::F16 => (1e-2, 1e-3),
                                    DType::BF16 => (2e-2, 1e-2),
                                    _ => (1e-3, 1e-5),
                                };
                                assert_close(n, a, e, rtol, atol)
                            })
                            .map_err(|p| {
                                why = p
                                    .downcast_ref::<String>()
                                    .cloned()
                                    .unwrap_or_default()
                                    .chars()
                                    .take(200)
                                    .collect()
                            })
                            .is_ok()
                        });
                    if ok {
                        println!("PASS     {name}");
                        pass += 1;
                    } else {
                        println!("MISMATCH {name}: {why}");
                        mismatch += 1;
                    }
                }
            }
        }
    }
    std::panic::set_hook(hook);
    let mut top: Vec<_> = reasons.into_iter().collect();
    top.sort_by_key(|r| std::cmp::Reverse(r.1));
    for (r, n) in top.iter().take(40) {
        println!("{n:4}  {r}");
    }
    println!(
        "candle-cpu {suites:?}: pass {pass}, mismatch {mismatch}, error {error} of {}",
        pass + mismatch + error
    );
    (pass, mismatch, error)
}

/// The bundled models (`models/{mlp,cnn,transformer}`), every data set, when present.
#[test]
fn bundled_models_match_goldens() {
    let root = std::env::var_os("PARITY_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    for name in ["mlp", "cnn", "transformer"] {
        let dir = root.join(name);
        // The bundled models ship with the repository: a missing one is a failure.
        assert!(
            dir.join("model.onnx").is_file(),
            "bundled model {name} not found"
        );
        let mut s =
            load(&dir.join("model.onnx")).unwrap_or_else(|e| panic!("{name}: {}", e.message));
        let mut n = 0;
        while dir.join(format!("test_data_set_{n}")).is_dir() {
            let (inputs, expected) = data_set(&dir, n);
            let out = s
                .run(&inputs)
                .unwrap_or_else(|e| panic!("{name}: {}", e.message));
            for ((o, a), e) in out.iter().zip(&expected) {
                assert_close(&format!("{name}/{n}/{o}"), a, e, 1e-3, 1e-5);
            }
            n += 1;
        }
        assert!(n > 0, "{name}: no data sets");
    }
}

/// Load and run times of the bundled models and a few heavier shipped cases:
/// `cargo test --lib backend::candle::tests::timings -- --ignored --nocapture`.
#[test]
#[ignore]
fn timings() {
    let models = std::env::var_os("PARITY_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    let mut dirs: Vec<PathBuf> = ["mlp", "cnn", "transformer"]
        .iter()
        .map(|m| models.join(m))
        .collect();
    if let Some(root) = onnx_data_dir() {
        for c in [
            "pytorch-operator/test_operator_conv",
            "pytorch-converted/test_MaxPool2d_stride_padding_dilation",
        ] {
            dirs.push(root.join(c));
        }
    }
    for threads in [Some(1), None] {
        for dir in &dirs {
            if !dir.join("model.onnx").is_file() {
                continue;
            }
            let (inputs, _) = data_set(dir, 0);
            let t = std::time::Instant::now();
            let mut s = CandleCpu
                .load(
                    &dir.join("model.onnx"),
                    &LoadOptions {
                        threads,
                        ..Default::default()
                    },
                )
                .expect("load");
            let load_ms = t.elapsed().as_secs_f64() * 1e3;
            s.run(&inputs).expect("warm-up");
            let mut times: Vec<f64> = (0..10)
                .map(|_| {
                    let t = std::time::Instant::now();
                    s.run(&inputs).expect("run");
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "threads={threads:?} {}: load {load_ms:.1} ms, run p50 {:.2} ms",
                dir.display(),
                times[5]
            );
        }
    }
}

fn init_f32(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(F32),
        float_data: v.to_vec(),
        ..Default::default()
    }
}

#[test]
fn ambiguous_or_oversized_requests_are_refused_not_guessed() {
    // Resize align_corners with a scale giving a fractional output length: the spec and
    // the ONNX reference disagree, so there is no single right answer.
    let m = model(
        13,
        vec![node(
            "Resize",
            &["x", "", "s"],
            &["y"],
            vec![
                attr_s("mode", "linear"),
                attr_s("coordinate_transformation_mode", "align_corners"),
            ],
        )],
        vec![value_info("x", F32, &[Ok(1), Ok(1), Ok(1), Ok(5)])],
        vec![value_info("y", F32, &[Ok(1), Ok(1), Ok(1), Err("w")])],
        vec![init_f32("s", &[4], &[1.0, 1.0, 1.0, 0.45])],
    );
    let e = refused(run1(&m, &[f32s(&[1, 1, 1, 5], &[1.0, 2.0, 3.0, 4.0, 5.0])]));
    assert_eq!(e.op.as_deref(), Some("Resize"), "{}", e.message);
    assert!(e.message.contains("ambiguous"), "{}", e.message);
    // TopK with sorted = 0 has an unspecified order.
    let m = model(
        11,
        vec![node(
            "TopK",
            &["x", "k"],
            &["v", "i"],
            vec![attr_i("sorted", 0)],
        )],
        vec![value_info("x", F32, &[Ok(4)])],
        vec![
            value_info("v", F32, &[Ok(2)]),
            value_info("i", I64, &[Ok(2)]),
        ],
        vec![init_i64("k", &[2])],
    );
    assert!(refused(load(&m.path))
        .message
        .contains("attribute `sorted` = 0"));
    // An attribute without a type whose wanted field is unset is not read as 0.
    let untyped = AttributeProto {
        name: Some("alpha".into()),
        f: None,
        i: Some(3),
        ..Default::default()
    };
    let m = unary("LeakyRelu", 16, 4, vec![untyped]);
    assert!(refused(load(&m.path))
        .message
        .contains("attribute `alpha` has type UNDEFINED"));
    // A data-dependent size that would exhaust memory fails instead of aborting.
    let m = model(
        13,
        vec![node("Expand", &["x", "s"], &["y"], vec![])],
        vec![value_info("x", F32, &[Ok(1)])],
        vec![value_info("y", F32, &[Err("a"), Err("b")])],
        vec![init_i64("s", &[1 << 31, 1 << 31])],
    );
    assert!(refused(run1(&m, &[f32s(&[1], &[1.0])]))
        .message
        .contains("too large"));
}

#[test]
fn resize_topk_trilu_and_cumsum_give_exact_values() {
    // Nearest upsampling by 2 (asymmetric, floor) repeats elements.
    let m = model(
        13,
        vec![node(
            "Resize",
            &["x", "", "s"],
            &["y"],
            vec![
                attr_s("coordinate_transformation_mode", "asymmetric"),
                attr_s("nearest_mode", "floor"),
            ],
        )],
        vec![value_info("x", F32, &[Ok(1), Ok(3)])],
        vec![value_info("y", F32, &[Ok(1), Ok(6)])],
        vec![init_f32("s", &[2], &[1.0, 2.0])],
    );
    let y = run1(&m, &[f32s(&[1, 3], &[1.0, 2.0, 3.0])]).expect("run");
    assert_eq!(vals(&y), [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    // TopK: ties keep the lower index first.
    let m = model(
        11,
        vec![node("TopK", &["x", "k"], &["v", "i"], vec![])],
        vec![value_info("x", F32, &[Ok(5)])],
        vec![
            value_info("v", F32, &[Ok(3)]),
            value_info("i", I64, &[Ok(3)]),
        ],
        vec![init_i64("k", &[3])],
    );
    let out = load(&m.path)
        .expect("load")
        .run(&[f32s(&[5], &[1.0, 7.0, 3.0, 7.0, 2.0])])
        .expect("run");
    assert_eq!(vals(&out[0].1), [7.0, 7.0, 3.0]);
    assert_eq!(vals(&out[1].1), [1.0, 3.0, 2.0]);
    // Trilu (upper, k = 1) and CumSum (exclusive, reversed).
    let m = model(
        14,
        vec![node("Trilu", &["x", "k"], &["y"], vec![])],
        vec![value_info("x", F32, &[Ok(2), Ok(3)])],
        vec![value_info("y", F32, &[Ok(2), Ok(3)])],
        vec![TensorProto {
            name: Some("k".into()),
            data_type: Some(I64),
            int64_data: vec![1],
            ..Default::default()
        }],
    );
    let y = run1(&m, &[f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]).expect("run");
    assert_eq!(vals(&y), [0.0, 2.0, 3.0, 0.0, 0.0, 6.0]);
    let m = model(
        14,
        vec![node(
            "CumSum",
            &["x", "a"],
            &["y"],
            vec![attr_i("exclusive", 1), attr_i("reverse", 1)],
        )],
        vec![value_info("x", F32, &[Ok(4)])],
        vec![value_info("y", F32, &[Ok(4)])],
        vec![TensorProto {
            name: Some("a".into()),
            data_type: Some(I64),
            int64_data: vec![0],
            ..Default::default()
        }],
    );
    let y = run1(&m, &[f32s(&[4], &[1.0, 2.0, 3.0, 4.0])]).expect("run");
    assert_eq!(vals(&y), [9.0, 7.0, 4.0, 0.0]);
}

/// The fuzzer's kept inputs (fuzz/corpus/candle_load) plan or fail with an error.
#[test]
fn fuzz_corpus_replays() {
    for (_, bytes) in crate::formats::test_util::fuzz_corpus("candle_load") {
        let _ = super::plan_unguarded(&bytes, None);
    }
}

/// Found by a large-input probe of the fuzz target (docs/reliability.md): planning
/// scanned every constant and every output for each node's inputs and outputs, so a
/// model of 20,000 constants took seconds and one of 200,000 minutes.
#[test]
fn many_constants_are_planned_in_linear_time() {
    let n = 120_000;
    let names: Vec<(String, String)> = (0..n).map(|i| (format!("c{i}"), format!("y{i}"))).collect();
    let nodes = names
        .iter()
        .map(|(c, y)| node("Identity", &[c], &[y], vec![]))
        .collect();
    let outputs = names
        .iter()
        .map(|(_, y)| value_info(y, I64, &[Ok(1)]))
        .collect();
    let inits = names.iter().map(|(c, _)| init_i64(c, &[1])).collect();
    let m = model(13, nodes, vec![], outputs, inits);
    let planned = crate::formats::test_util::within(60, move || {
        load(&m.path)
            .map(|s| s.outputs().len())
            .map_err(|e| e.to_string())
    });
    assert_eq!(planned, Ok(n));
}

/// An RNN worked by hand: `Relu` keeps the arithmetic exact, `sequence_lens` stops the
/// second entry after 2 steps, and `reverse` starts each entry at its own last step.
#[test]
fn recurrent_layers_honour_lengths_direction_and_activations() {
    let weight = |name: &str, v: f32| TensorProto {
        name: Some(name.into()),
        dims: vec![1, 1, 1],
        data_type: Some(F32),
        float_data: vec![v],
        ..Default::default()
    };
    let rnn = |attrs: Vec<AttributeProto>, opset: i64| {
        model(
            opset,
            vec![node(
                "RNN",
                &["x", "w", "r", "", "lens"],
                &["y", "y_h"],
                attrs,
            )],
            vec![
                value_info("x", F32, &[Ok(3), Ok(2), Ok(1)]),
                value_info("lens", I32, &[Ok(2)]),
            ],
            vec![
                value_info("y", F32, &[Ok(3), Ok(1), Ok(2), Ok(1)]),
                value_info("y_h", F32, &[Ok(1), Ok(2), Ok(1)]),
            ],
            vec![weight("w", 1.0), weight("r", 0.5)],
        )
    };
    let relu = AttributeProto {
        strings: vec![b"Relu".to_vec()],
        r#type: Some(AttributeType::Strings as i32),
        ..attr("activations")
    };
    let base = || {
        vec![
            attr_i("hidden_size", 1),
            relu.clone(),
            attr_s("direction", "reverse"),
        ]
    };
    let x = f32s(&[3, 2, 1], &[1.0, 10.0, 2.0, 20.0, 3.0, 30.0]);
    let lens = Tensor::from_vec(vec![2], vec![3i32, 2]).expect("lens");
    let m = rnn(base(), 14);
    let out = load(&m.path).expect("load").run(&[x, lens]).expect("run");
    // Entry 0: h = 3, then 2 + 0.5·3 = 3.5, then 1 + 0.5·3.5 = 2.75 (stored in input
    // order). Entry 1: 20, then 10 + 0.5·20 = 20; its third step is past its length: 0.
    assert_eq!(vals(&out[0].1), [2.75, 20.0, 3.5, 20.0, 3.0, 0.0]);
    assert_eq!(out[0].1.shape(), [3, 1, 2, 1]);
    assert_eq!(vals(&out[1].1), [2.75, 20.0]);

    // What is not honoured is refused, naming the attribute.
    let mut bad = base();
    bad.push(attr_i("layout", 2));
    let e = refused(load(&rnn(bad, 14).path));
    assert!(
        e.message.contains("attribute `layout` = 2"),
        "{}",
        e.message
    );
    let mut bad = base();
    bad[1].strings = vec![b"Swish".to_vec()];
    let e = refused(load(&rnn(bad, 14).path));
    assert!(e.message.contains("`Swish`"), "{}", e.message);
    let e = refused(load(&rnn(base(), 6).path));
    assert!(e.message.contains("before opset 7"), "{}", e.message);
    // `layout` only exists from opset 14.
    let mut old = base();
    old.push(attr_i("layout", 0));
    let e = refused(load(&rnn(old, 13).path));
    assert!(
        e.message.contains("attribute `layout` is not supported"),
        "{}",
        e.message
    );
}

/// If's branches read values of the enclosing graph; what a branch cannot run is
/// refused when the model loads, naming the op inside it.
#[test]
fn control_flow_reads_outer_values_and_validates_subgraphs() {
    let branch = |name: &str, nodes: Vec<NodeProto>, out: &str| AttributeProto {
        g: Some(GraphProto {
            node: nodes,
            output: vec![value_info(out, F32, &[Ok(2)])],
            ..Default::default()
        }),
        r#type: Some(AttributeType::Graph as i32),
        ..attr(name)
    };
    let if_model = |else_op: &str| {
        model(
            13,
            vec![node(
                "If",
                &["c"],
                &["y"],
                vec![
                    branch(
                        "then_branch",
                        vec![node("Add", &["x", "x"], &["t"], vec![])],
                        "t",
                    ),
                    branch(
                        "else_branch",
                        vec![node(else_op, &["x"], &["e"], vec![])],
                        "e",
                    ),
                ],
            )],
            vec![value_info("c", BOOL, &[]), value_info("x", F32, &[Ok(2)])],
            vec![value_info("y", F32, &[Ok(2)])],
            vec![],
        )
    };
    let m = if_model("Neg");
    let x = f32s(&[2], &[1.5, -2.0]);
    let run = |c: bool| {
        let c = Tensor::from_bools(vec![], &[c]).expect("cond");
        let out = load(&m.path)
            .expect("load")
            .run(&[c, x.clone()])
            .expect("run");
        vals(&out[0].1)
    };
    assert_eq!(run(true), [3.0, -4.0]);
    assert_eq!(run(false), [-1.5, 2.0]);
    let e = refused(load(&if_model("Frobnicate").path));
    assert_eq!(e.op.as_deref(), Some("If"), "{}", e.message);
    assert!(
        e.message.contains("in `else_branch`") && e.message.contains("Frobnicate"),
        "{}",
        e.message
    );
}

/// QuantizeLinear rounds half to even and saturates; DequantizeLinear per axis.
#[test]
fn quantize_rounds_half_to_even_saturates_and_dequantizes_per_axis() {
    let scalar_f32 = |name: &str, v: f32| TensorProto {
        name: Some(name.into()),
        data_type: Some(F32),
        float_data: vec![v],
        ..Default::default()
    };
    let int8_zero = TensorProto {
        name: Some("zp".into()),
        data_type: Some(3),
        int32_data: vec![-1],
        ..Default::default()
    };
    let q = model(
        13,
        vec![node("QuantizeLinear", &["x", "s", "zp"], &["y"], vec![])],
        vec![value_info("x", F32, &[Ok(6)])],
        vec![value_info("y", 3, &[Ok(6)])],
        vec![scalar_f32("s", 0.5), int8_zero],
    );
    let x = f32s(&[6], &[0.25, 0.75, 1.25, -0.25, 100.0, -100.0]);
    let y = run1(&q, &[x]).expect("run");
    assert_eq!(y.dtype(), DType::I8);
    // x / 0.5 = 0.5, 1.5, 2.5, -0.5 round to 0, 2, 2, -0 (ties to even); then + (-1);
    // ±200 saturate.
    assert_eq!(vals(&y), [-1.0, 1.0, 1.0, -1.0, 127.0, -128.0]);

    let scales = TensorProto {
        name: Some("s".into()),
        dims: vec![2],
        data_type: Some(F32),
        float_data: vec![0.5, 2.0],
        ..Default::default()
    };
    let dq = model(
        13,
        vec![node(
            "DequantizeLinear",
            &["x", "s"],
            &["y"],
            vec![attr_i("axis", 0)],
        )],
        vec![value_info("x", 2, &[Ok(2), Ok(2)])],
        vec![value_info("y", F32, &[Ok(2), Ok(2)])],
        vec![scales],
    );
    let x = Tensor::from_vec(vec![2, 2], vec![3u8, 255, 3, 255]).expect("x");
    assert_eq!(
        vals(&run1(&dq, &[x]).expect("run")),
        [1.5, 127.5, 6.0, 510.0]
    );
}

/// An empty batch pools to an empty result of the output shape (found by `parity fuzz`'s
/// `empty-dims` case: candle cannot reduce an empty tensor, ONNX Runtime answers).
#[test]
fn pooling_an_empty_batch_gives_an_empty_output() {
    let m = model(
        13,
        vec![node(
            "MaxPool",
            &["x"],
            &["y"],
            vec![attr_ints("kernel_shape", &[2])],
        )],
        vec![value_info("x", F32, &[Err("N"), Ok(1), Ok(4)])],
        vec![value_info("y", F32, &[Err("N"), Ok(1), Ok(3)])],
        vec![],
    );
    let x = f32s(&[0, 1, 4], &[]);
    let y = run1(&m, &[x]).expect("run");
    assert_eq!(y.shape(), [0, 1, 3]);
}

/// Attention (opset 23) against a direct computation: grouped-query heads sharing one KV
/// head, a past cache, the causal frontier shifted by the cache length, and the softmax
/// probabilities exposed through `qk_matmul_output` (mode 3).
#[test]
fn attention_with_cache_gqa_and_causal_mask_matches_a_direct_computation() {
    // Q: (1, 2 heads, 2 queries, 2); K/V: (1, 1 head, 1 new key, 2) after a 2-key past.
    let m = model(
        23,
        vec![node(
            "Attention",
            &["q", "k", "v", "", "pk", "pv"],
            &["y", "present_k", "present_v", "probs"],
            vec![attr_i("is_causal", 1), attr_i("qk_matmul_output_mode", 3)],
        )],
        vec![
            value_info("q", F32, &[Ok(1), Ok(2), Ok(2), Ok(2)]),
            value_info("k", F32, &[Ok(1), Ok(1), Ok(2), Ok(2)]),
            value_info("v", F32, &[Ok(1), Ok(1), Ok(2), Ok(2)]),
            value_info("pk", F32, &[Ok(1), Ok(1), Ok(1), Ok(2)]),
            value_info("pv", F32, &[Ok(1), Ok(1), Ok(1), Ok(2)]),
        ],
        vec![
            value_info("y", F32, &[Ok(1), Ok(2), Ok(2), Ok(2)]),
            value_info("present_k", F32, &[Ok(1), Ok(1), Ok(3), Ok(2)]),
            value_info("present_v", F32, &[Ok(1), Ok(1), Ok(3), Ok(2)]),
            value_info("probs", F32, &[Ok(1), Ok(2), Ok(2), Ok(3)]),
        ],
        vec![],
    );
    let q = [0.5f32, -1.0, 1.5, 0.25, -0.75, 2.0, 1.0, 1.0];
    let (k, v) = ([1.0f32, 0.5, -1.0, 2.0], [0.1f32, 0.2, 0.3, 0.4]);
    let (pk, pv) = ([0.25f32, -0.5], [-1.0f32, 1.0]);
    let inputs = [
        f32s(&[1, 2, 2, 2], &q),
        f32s(&[1, 1, 2, 2], &k),
        f32s(&[1, 1, 2, 2], &v),
        f32s(&[1, 1, 1, 2], &pk),
        f32s(&[1, 1, 1, 2], &pv),
    ];
    let out = load(&m.path).expect("load").run(&inputs).expect("run");
    let keys = [pk[0], pk[1], k[0], k[1], k[2], k[3]];
    let values = [pv[0], pv[1], v[0], v[1], v[2], v[3]];
    assert_eq!(vals(&out[1].1), keys.map(f64::from));
    assert_eq!(vals(&out[2].1), values.map(f64::from));
    // Query i (0-based, after a 1-key past) sees keys 0..=i+1; both heads read KV head 0.
    let (mut y, mut probs) = (vec![], vec![]);
    for h in 0..2 {
        for i in 0..2 {
            let qv = &q[(h * 2 + i) * 2..][..2];
            let scores: Vec<f64> = (0..3)
                .map(|j| {
                    if j <= i + 1 {
                        (qv[0] * keys[2 * j] + qv[1] * keys[2 * j + 1]) as f64 / 2f64.sqrt()
                    } else {
                        f64::NEG_INFINITY
                    }
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let p: Vec<f64> = e.iter().map(|x| x / e.iter().sum::<f64>()).collect();
            for d in 0..2 {
                y.push((0..3).map(|j| p[j] * values[2 * j + d] as f64).sum::<f64>());
            }
            probs.extend(p);
        }
    }
    for (name, got, want) in [("y", &out[0].1, &y), ("probs", &out[3].1, &probs)] {
        for (g, w) in vals(got).iter().zip(want.iter()) {
            assert!((g - w).abs() < 1e-5, "{name}: {g} vs {w}");
        }
    }
}

/// A query row that a boolean mask forbids every key gives zeros, not NaN.
#[test]
fn attention_row_masked_everywhere_is_zero() {
    let m = model(
        23,
        vec![node("Attention", &["q", "k", "v", "mask"], &["y"], vec![])],
        vec![
            value_info("q", F32, &[Ok(1), Ok(1), Ok(2), Ok(1)]),
            value_info("k", F32, &[Ok(1), Ok(1), Ok(2), Ok(1)]),
            value_info("v", F32, &[Ok(1), Ok(1), Ok(2), Ok(1)]),
            value_info("mask", BOOL, &[Ok(2), Ok(2)]),
        ],
        vec![value_info("y", F32, &[Ok(1), Ok(1), Ok(2), Ok(1)])],
        vec![],
    );
    let x = f32s(&[1, 1, 2, 1], &[1.0, 2.0]);
    let mask = Tensor::from_bools(vec![2, 2], &[true, false, false, false]).expect("mask");
    let out = load(&m.path)
        .expect("load")
        .run(&[x.clone(), x.clone(), x, mask])
        .expect("run");
    // Row 0 attends key 0 only (value 1); row 1 attends nothing.
    assert_eq!(vals(&out[0].1), [1.0, 0.0]);
}

/// NegativeLogLikelihoodLoss with class weights and an ignored target (weighted mean),
/// and SoftmaxCrossEntropyLoss's log-probabilities.
#[test]
fn losses_weight_ignore_and_reduce() {
    let i64s =
        |shape: &[usize], v: &[i64]| Tensor::from_vec(shape.to_vec(), v.to_vec()).expect("t");
    let nll = model(
        13,
        vec![node(
            "NegativeLogLikelihoodLoss",
            &["x", "t", "w"],
            &["loss"],
            vec![attr_i("ignore_index", 2)],
        )],
        vec![
            value_info("x", F32, &[Ok(3), Ok(3)]),
            value_info("t", I64, &[Ok(3)]),
            value_info("w", F32, &[Ok(3)]),
        ],
        vec![value_info("loss", F32, &[])],
        vec![],
    );
    let x = f32s(
        &[3, 3],
        &[-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0, -9.0],
    );
    let w = f32s(&[3], &[1.0, 3.0, 10.0]);
    let out = load(&nll.path)
        .expect("load")
        .run(&[x.clone(), i64s(&[3], &[1, 0, 2]), w])
        .expect("run");
    // Row 0: class 1, -(-2) * 3 = 6; row 1: class 0, 4 * 1 = 4; row 2 ignored.
    // Mean over the applied weights: (6 + 4) / (3 + 1).
    assert_eq!(vals(&out[0].1), [2.5]);

    let sce = model(
        13,
        vec![node(
            "SoftmaxCrossEntropyLoss",
            &["x", "t"],
            &["loss", "log_prob"],
            vec![attr_s("reduction", "none")],
        )],
        vec![
            value_info("x", F32, &[Ok(3), Ok(3)]),
            value_info("t", I64, &[Ok(3)]),
        ],
        vec![
            value_info("loss", F32, &[Ok(3)]),
            value_info("log_prob", F32, &[Ok(3), Ok(3)]),
        ],
        vec![],
    );
    let out = load(&sce.path)
        .expect("load")
        .run(&[x, i64s(&[3], &[0, 1, 2])])
        .expect("run");
    // Each row is (a, a-1, a-2): log-softmax = (0, -1, -2) - ln(1 + e^-1 + e^-2).
    let lse = (1.0 + (-1f64).exp() + (-2f64).exp()).ln();
    let want_lp: Vec<f64> = (0..9).map(|i| -((i % 3) as f64) - lse).collect();
    for (g, w) in vals(&out[1].1).iter().zip(&want_lp) {
        assert!((g - w).abs() < 1e-6, "log_prob {g} vs {w}");
    }
    for (g, w) in vals(&out[0].1).iter().zip([lse, 1.0 + lse, 2.0 + lse]) {
        assert!((g - w).abs() < 1e-6, "loss {g} vs {w}");
    }
    let bad = refused(
        load(&sce.path)
            .expect("load")
            .run(&[f32s(&[3, 3], &[0.0; 9]), i64s(&[3], &[0, 3, 1])]),
    );
    assert!(
        bad.message.contains("target class 3 is outside 0..3"),
        "{}",
        bad.message
    );
}

/// BitShift on a narrow signed type: bits shifted past the sign are lost, right shifts
/// keep the sign, and out-of-range shift amounts give the sign fill.
#[test]
fn bitshift_keeps_onnx_width_rules() {
    let shift = |dir: &str| {
        model(
            11,
            vec![node(
                "BitShift",
                &["x", "s"],
                &["y"],
                vec![attr_s("direction", dir)],
            )],
            vec![value_info("x", 3, &[Ok(4)]), value_info("s", 3, &[Ok(4)])],
            vec![value_info("y", 3, &[Ok(4)])],
            vec![],
        )
    };
    let x = Tensor::from_vec(vec![4], vec![-128i8, 65, -3, 5]).expect("x");
    let s = Tensor::from_vec(vec![4], vec![1i8, 1, 8, -1]).expect("s");
    let run = |dir: &str| {
        let m = shift(dir);
        let y = load(&m.path)
            .expect("load")
            .run(&[x.clone(), s.clone()])
            .expect("run")
            .remove(0)
            .1;
        assert_eq!(y.dtype(), DType::I8);
        vals(&y)
    };
    assert_eq!(run("LEFT"), [0.0, -126.0, 0.0, 0.0]);
    assert_eq!(run("RIGHT"), [-64.0, 32.0, -1.0, 0.0]);
}

/// Depthwise convolutions (the CPU's direct kernel) and grouped ones (strided views)
/// against a direct computation, with strides, dilations and asymmetric pads.
#[test]
fn depthwise_and_grouped_convs_match_a_direct_computation() {
    // X (1, 2, 5, 6), W (2 or 4, 1, 2, 3), stride (2, 1), dilation (1, 2),
    // pads (top 1, left 2, bottom 0, right 1).
    let (h, w, kh, kw) = (5usize, 6usize, 2usize, 3usize);
    let (sh, sw, dh, dw, pt, pl, pb, pr) = (
        2usize, 1usize, 1usize, 2usize, 1usize, 2usize, 0usize, 1usize,
    );
    let oh = (h + pt + pb - ((kh - 1) * dh + 1)) / sh + 1;
    let ow = (w + pl + pr - ((kw - 1) * dw + 1)) / sw + 1;
    let xv: Vec<f32> = (0..2 * h * w)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
        .collect();
    for m in [2usize, 4] {
        let wv: Vec<f32> = (0..m * kh * kw)
            .map(|i| ((i * 5 % 7) as f32 - 3.0) / 2.0)
            .collect();
        let conv = model(
            13,
            vec![node(
                "Conv",
                &["x", "w"],
                &["y"],
                vec![
                    attr_i("group", 2),
                    attr_ints("strides", &[sh as i64, sw as i64]),
                    attr_ints("dilations", &[dh as i64, dw as i64]),
                    attr_ints("pads", &[pt as i64, pl as i64, pb as i64, pr as i64]),
                ],
            )],
            vec![
                value_info("x", F32, &[Ok(1), Ok(2), Ok(h as i64), Ok(w as i64)]),
                value_info(
                    "w",
                    F32,
                    &[Ok(m as i64), Ok(1), Ok(kh as i64), Ok(kw as i64)],
                ),
            ],
            vec![value_info(
                "y",
                F32,
                &[Ok(1), Ok(m as i64), Ok(oh as i64), Ok(ow as i64)],
            )],
            vec![],
        );
        let y = load(&conv.path)
            .expect("load")
            .run(&[f32s(&[1, 2, h, w], &xv), f32s(&[m, 1, kh, kw], &wv)])
            .expect("run")
            .remove(0)
            .1;
        assert_eq!(y.shape(), [1, m, oh, ow]);
        let mut want = vec![];
        for o in 0..m {
            let ci = o / (m / 2);
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0f64;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * sh + ky * dh) as i64 - pt as i64;
                            let ix = (ox * sw + kx * dw) as i64 - pl as i64;
                            if (0..h as i64).contains(&iy) && (0..w as i64).contains(&ix) {
                                acc += (xv[ci * h * w + iy as usize * w + ix as usize]
                                    * wv[(o * kh + ky) * kw + kx])
                                    as f64;
                            }
                        }
                    }
                    want.push(acc);
                }
            }
        }
        for (g, w) in vals(&y).iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-5,
                "group conv with {m} outputs: {g} vs {w}"
            );
        }
    }
}

/// MatMulInteger with a per-column zero point gives the exact int32 product;
/// QLinearMatMul requantizes it with ties to even and saturation.
#[test]
fn integer_matmuls_are_exact_and_requantize_half_to_even() {
    let u8s = |shape: &[usize], v: &[u8]| Tensor::from_vec(shape.to_vec(), v.to_vec()).expect("t");
    let scalar = |name: &str, dtype: i32, v: f32| TensorProto {
        name: Some(name.into()),
        data_type: Some(dtype),
        float_data: if dtype == F32 { vec![v] } else { vec![] },
        int32_data: if dtype == F32 { vec![] } else { vec![v as i32] },
        ..Default::default()
    };
    let bzp = TensorProto {
        name: Some("bzp".into()),
        dims: vec![2],
        data_type: Some(2),
        int32_data: vec![1, 3],
        ..Default::default()
    };
    let mmi = model(
        10,
        vec![node(
            "MatMulInteger",
            &["a", "b", "azp", "bzp"],
            &["y"],
            vec![],
        )],
        vec![
            value_info("a", 2, &[Ok(1), Ok(2)]),
            value_info("b", 2, &[Ok(2), Ok(2)]),
        ],
        vec![value_info("y", I32, &[Ok(1), Ok(2)])],
        vec![scalar("azp", 2, 2.0), bzp],
    );
    let (a, b) = (u8s(&[1, 2], &[255, 4]), u8s(&[2, 2], &[3, 0, 5, 7]));
    let y = run1(&mmi, &[a.clone(), b.clone()]).expect("run");
    assert_eq!(y.dtype(), DType::I32);
    // (253, 2) @ ((2, -3), (4, 4)) = (514, -751).
    assert_eq!(vals(&y), [514.0, -751.0]);

    // Without zero points: (255, 4) @ ((3, 0), (5, 7)) = (785, 28); scales 0.5 * 0.25 / 1
    // make 98.125 and 3.5: 98 and 4 (ties to even), + 200 saturates the first at 255.
    let qmm = model(
        10,
        vec![node(
            "QLinearMatMul",
            &["a", "as", "azp", "b", "bs", "bzp", "ys", "yzp"],
            &["y"],
            vec![],
        )],
        vec![
            value_info("a", 2, &[Ok(1), Ok(2)]),
            value_info("b", 2, &[Ok(2), Ok(2)]),
        ],
        vec![value_info("y", 2, &[Ok(1), Ok(2)])],
        vec![
            scalar("as", F32, 0.5),
            scalar("azp", 2, 0.0),
            scalar("bs", F32, 0.25),
            scalar("bzp", 2, 0.0),
            scalar("ys", F32, 1.0),
            scalar("yzp", 2, 200.0),
        ],
    );
    assert_eq!(vals(&run1(&qmm, &[a, b]).expect("run")), [255.0, 204.0]);
}

/// A sequence built, edited and joined inside a graph whose inputs and outputs are
/// tensors; and a sequence given to a tensor op is refused, naming the op.
#[test]
fn sequences_split_edit_and_join_inside_a_graph() {
    let m = model(
        13,
        vec![
            node(
                "SplitToSequence",
                &["x"],
                &["cols"],
                vec![attr_i("axis", 1), attr_i("keepdims", 0)],
            ),
            node("SequenceErase", &["cols", "zero"], &["rest"], vec![]),
            node("SequenceAt", &["cols", "zero"], &["first"], vec![]),
            node("SequenceInsert", &["rest", "first"], &["rotated"], vec![]),
            node(
                "ConcatFromSequence",
                &["rotated"],
                &["y"],
                vec![attr_i("axis", -1), attr_i("new_axis", 1)],
            ),
            node("SequenceLength", &["rotated"], &["n"], vec![]),
        ],
        vec![value_info("x", F32, &[Ok(2), Ok(3)])],
        vec![
            value_info("y", F32, &[Ok(2), Ok(3)]),
            value_info("n", I64, &[]),
        ],
        vec![TensorProto {
            name: Some("zero".into()),
            data_type: Some(I64),
            int64_data: vec![0],
            ..Default::default()
        }],
    );
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let out = load(&m.path)
        .expect("load")
        .run(std::slice::from_ref(&x))
        .expect("run");
    // Columns (1,4), (2,5), (3,6): the first moved to the end, stacked as columns again.
    assert_eq!(vals(&out[0].1), [2.0, 3.0, 1.0, 5.0, 6.0, 4.0]);
    assert_eq!(vals(&out[1].1), [3.0]);

    let bad = model(
        13,
        vec![
            node("SequenceConstruct", &["x"], &["s"], vec![]),
            node("Relu", &["s"], &["y"], vec![]),
        ],
        vec![value_info("x", F32, &[Ok(2), Ok(3)])],
        vec![value_info("y", F32, &[Ok(2), Ok(3)])],
        vec![],
    );
    let e = refused(load(&bad.path).expect("load").run(&[x]));
    assert!(
        e.message.contains("Relu (node `y`) was given a sequence"),
        "{}",
        e.message
    );
}

/// Sizes a model can claim without the data to back them are refused or handled without
/// allocating for them: a pooling stride far beyond the input (one output position),
/// a `group` that overflows, attention over zero keys, a loss over zero classes.
#[test]
fn hostile_windows_groups_and_empty_axes_are_errors_not_crashes() {
    let pool = model(
        13,
        vec![node(
            "MaxPool",
            &["x"],
            &["y"],
            vec![
                attr_ints("kernel_shape", &[1, 1]),
                attr_ints("strides", &[1 << 40, 1 << 40]),
            ],
        )],
        vec![value_info("x", F32, &[Ok(1), Ok(1), Ok(2), Ok(2)])],
        vec![value_info("y", F32, &[Ok(1), Ok(1), Ok(1), Ok(1)])],
        vec![],
    );
    let y = run1(&pool, &[f32s(&[1, 1, 2, 2], &[3.0, 1.0, 2.0, 4.0])]).expect("run");
    assert_eq!(vals(&y), [3.0]);

    let conv = model(
        13,
        vec![node(
            "Conv",
            &["x", "w"],
            &["y"],
            vec![attr_i("group", 1 << 62)],
        )],
        vec![
            value_info("x", F32, &[Ok(1), Ok(0), Ok(2)]),
            value_info("w", F32, &[Ok(4), Ok(2), Ok(1)]),
        ],
        vec![value_info("y", F32, &[Ok(1), Ok(4), Ok(2)])],
        vec![],
    );
    let e = refused(run1(
        &conv,
        &[f32s(&[1, 0, 2], &[]), f32s(&[4, 2, 1], &[0.0; 8])],
    ));
    assert!(e.message.contains("does not fit"), "{}", e.message);

    let att = model(
        23,
        vec![node("Attention", &["q", "k", "v"], &["y"], vec![])],
        vec![
            value_info("q", F32, &[Ok(1), Ok(1), Ok(2), Ok(2)]),
            value_info("k", F32, &[Ok(1), Ok(1), Ok(0), Ok(2)]),
            value_info("v", F32, &[Ok(1), Ok(1), Ok(0), Ok(2)]),
        ],
        vec![value_info("y", F32, &[Ok(1), Ok(1), Ok(2), Ok(2)])],
        vec![],
    );
    let empty = f32s(&[1, 1, 0, 2], &[]);
    let e = refused(run1(
        &att,
        &[f32s(&[1, 1, 2, 2], &[0.0; 4]), empty.clone(), empty],
    ));
    assert!(
        e.message.contains("no positions to attend"),
        "{}",
        e.message
    );

    let sce = model(
        13,
        vec![node(
            "SoftmaxCrossEntropyLoss",
            &["x", "t"],
            &["loss"],
            vec![],
        )],
        vec![
            value_info("x", F32, &[Ok(2), Ok(0)]),
            value_info("t", I64, &[Ok(2)]),
        ],
        vec![value_info("loss", F32, &[])],
        vec![],
    );
    let t = Tensor::from_vec(vec![2], vec![0i64, 0]).expect("t");
    let e = refused(run1(&sce, &[f32s(&[2, 0], &[]), t]));
    assert!(e.message.contains("no classes"), "{}", e.message);
}
