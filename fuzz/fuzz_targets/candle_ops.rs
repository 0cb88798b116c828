//! The candle interpreter on small well-formed models built from the fuzz input: one or
//! two nodes of any op it implements, at any opset, with fuzzed attributes, inputs that
//! are graph inputs, initializers or omitted, then planned and run once. Byte-level
//! mutation of `model.onnx` (target `candle_load`) rarely gets past decoding and op
//! validation; this target starts past them. A panic that a real run would turn into
//! "candle panicked in OP" is reported here as the crash it is.
//! `PARITY_FUZZ_SHOW=1` prints the model an input stands for.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use parity::formats::onnx_pb::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use parity::tensor::{DType, Tensor};
use prost::Message;

const DTYPES: [DType; 11] = [
    DType::F32,
    DType::F32,
    DType::F32,
    DType::I64,
    DType::I64,
    DType::I32,
    DType::Bool,
    DType::F16,
    DType::F64,
    DType::U8,
    DType::I8,
];
const INTS: [i64; 14] = [-3, -2, -1, 0, 0, 1, 1, 1, 2, 2, 3, 4, 5, 6];
const FLOATS: [f32; 12] = [
    0.0,
    1.0,
    -1.0,
    0.5,
    2.0,
    3.0,
    -2.5,
    1e-3,
    f32::NAN,
    f32::INFINITY,
    f32::NEG_INFINITY,
    1e30,
];
const NAMES: &[&str] = &[
    "axis",
    "axes",
    "alpha",
    "beta",
    "gamma",
    "mode",
    "epsilon",
    "to",
    "keepdims",
    "perm",
    "pads",
    "strides",
    "kernel_shape",
    "dilations",
    "group",
    "auto_pad",
    "ceil_mode",
    "transA",
    "transB",
    "value",
    "value_float",
    "value_int",
    "value_ints",
    "value_floats",
    "split",
    "num_outputs",
    "starts",
    "ends",
    "shape",
    "scales",
    "sizes",
    "k",
    "largest",
    "sorted",
    "p",
    "bias",
    "lambd",
    "min",
    "max",
    "upper",
    "equation",
    "blocksize",
    "batch_dims",
    "reduction",
    "count_include_pad",
    "output_shape",
    "output_padding",
    "allowzero",
    "coordinate_transformation_mode",
    "nearest_mode",
    "cubic_coeff_a",
    "exclude_outside",
    "keep_aspect_ratio_policy",
    "antialias",
    "approximate",
    "detect_positive",
    "detect_negative",
    "fmod",
    "noop_with_empty_axes",
    "select_last_index",
    "stash_type",
    "num_groups",
    "spatial",
    "training_mode",
    "is_test",
    "size",
    "dtype",
    "direction",
    "exclusive",
    "reverse",
    "broadcast",
    "start",
    "end",
    "sparse_value",
];
const STRINGS: &[&str] = &[
    "NOTSET",
    "SAME_UPPER",
    "SAME_LOWER",
    "VALID",
    "constant",
    "reflect",
    "edge",
    "wrap",
    "nearest",
    "linear",
    "cubic",
    "half_pixel",
    "asymmetric",
    "align_corners",
    "pytorch_half_pixel",
    "tf_crop_and_resize",
    "round_prefer_floor",
    "round_prefer_ceil",
    "floor",
    "ceil",
    "none",
    "tanh",
    "add",
    "mul",
    "max",
    "min",
    "DCR",
    "CRD",
    "stretch",
    "not_larger",
    "not_smaller",
    "ij,jk->ik",
    "i,i->",
    "ii->i",
    "bij,bjk->bik",
    "...i,i->...",
    "ab->ba",
    "",
    "x",
];

fn pick<T: Copy>(u: &mut Unstructured, from: &[T]) -> Result<T> {
    u.choose(from).copied()
}

/// A small tensor of `dtype`: dims 0..=3 on up to 3 axes, values from the tables.
fn tensor(u: &mut Unstructured, dtype: DType, rank: usize) -> Result<Tensor> {
    let mut shape = Vec::with_capacity(rank);
    for _ in 0..rank {
        shape.push(u.int_in_range(0..=3)?);
    }
    let n: usize = shape.iter().product();
    let mut bytes = Vec::with_capacity(n * dtype.size());
    for _ in 0..n {
        let i = pick(u, &INTS)?;
        let f = pick(u, &FLOATS)?;
        match dtype {
            DType::F32 => bytes.extend(f.to_le_bytes()),
            DType::F64 => bytes.extend(f64::from(f).to_le_bytes()),
            DType::F16 => bytes.extend(half::f16::from_f32(f).to_le_bytes()),
            DType::I64 => bytes.extend(i.to_le_bytes()),
            DType::I32 => bytes.extend((i as i32).to_le_bytes()),
            DType::I8 => bytes.push(i as i8 as u8),
            DType::U8 => bytes.push(i.unsigned_abs() as u8),
            DType::Bool => bytes.push(u8::from(i > 0)),
            _ => bytes.resize(bytes.len() + dtype.size(), 0),
        }
    }
    Ok(Tensor::from_bytes(dtype, shape, bytes).expect("built to size"))
}

fn proto(name: &str, t: &Tensor) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(t.dtype().onnx_code()),
        raw_data: Some(t.bytes().to_vec()),
        ..Default::default()
    }
}

/// A tensor's declaration: `dtype`, and the shape when given (outputs have none).
fn value_info(name: &str, dtype: DType, shape: Option<&[usize]>) -> ValueInfoProto {
    let shape = shape.map(|shape| TensorShapeProto {
        dim: shape
            .iter()
            .map(|&d| Dimension {
                value: Some(dimension::Value::DimValue(d as i64)),
                ..Default::default()
            })
            .collect(),
    });
    let r#type = TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: Some(dtype.onnx_code()),
            shape,
        })),
        ..Default::default()
    };
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(r#type),
        ..Default::default()
    }
}

fn attribute(u: &mut Unstructured) -> Result<AttributeProto> {
    let mut a = AttributeProto {
        name: Some(pick(u, NAMES)?.to_string()),
        ..Default::default()
    };
    let len = u.int_in_range(0..=4)?;
    match u.int_in_range(0..=5)? {
        0 => (a.r#type, a.i) = (Some(2), Some(pick(u, &INTS)?)),
        1 => (a.r#type, a.f) = (Some(1), Some(pick(u, &FLOATS)?)),
        2 => (a.r#type, a.s) = (Some(3), Some(pick(u, STRINGS)?.as_bytes().to_vec())),
        3 => {
            a.r#type = Some(7);
            for _ in 0..len {
                a.ints.push(pick(u, &INTS)?);
            }
        }
        4 => {
            a.r#type = Some(6);
            for _ in 0..len {
                a.floats.push(pick(u, &FLOATS)?);
            }
        }
        _ => {
            let dtype = pick(u, &DTYPES)?;
            let rank = u.int_in_range(0..=2)?;
            a.r#type = Some(4);
            a.t = Some(proto("", &tensor(u, dtype, rank)?));
        }
    }
    Ok(a)
}

/// The model and the inputs to run it on.
fn model(u: &mut Unstructured, ops: &[&str]) -> Result<(ModelProto, Vec<Tensor>)> {
    let mut graph = GraphProto::default();
    let mut inputs = Vec::new();
    let mut produced: Vec<String> = Vec::new();
    for n in 0..u.int_in_range(1..=2)? {
        let mut node = NodeProto {
            op_type: Some(pick(u, ops)?.to_string()),
            name: Some(format!("n{n}")),
            ..Default::default()
        };
        for i in 0..u.int_in_range(0..=4)? {
            let name = format!("x{n}_{i}");
            match u.int_in_range(0..=4)? {
                0 => node.input.push(String::new()),
                1 if !produced.is_empty() => node.input.push(u.choose(&produced)?.clone()),
                1 | 2 => {
                    let rank = u.int_in_range(0..=3)?;
                    let dtype = pick(u, &DTYPES)?;
                    let t = tensor(u, dtype, rank)?;
                    graph
                        .input
                        .push(value_info(&name, t.dtype(), Some(t.shape())));
                    inputs.push(t);
                    node.input.push(name);
                }
                _ => {
                    let rank = u.int_in_range(0..=2)?;
                    let dtype = pick(u, &DTYPES)?;
                    let t = tensor(u, dtype, rank)?;
                    graph.initializer.push(proto(&name, &t));
                    node.input.push(name);
                }
            }
        }
        for _ in 0..u.int_in_range(0..=3)? {
            node.attribute.push(attribute(u)?);
        }
        for o in 0..u.int_in_range(1..=3)? {
            let name = format!("y{n}_{o}");
            node.output.push(name.clone());
            produced.push(name);
        }
        graph.node.push(node);
    }
    // Outputs must declare a dtype; a wrong guess fails the run after the ops ran.
    for name in &produced {
        graph.output.push(value_info(name, pick(u, &DTYPES)?, None));
    }
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(u.int_in_range(1..=28)?),
        }],
        graph: Some(graph),
        ..Default::default()
    };
    Ok((model, inputs))
}

fuzz_target!(|data: &[u8]| {
    let ops = parity::backend::candle::supported_ops();
    let Ok((model, inputs)) = model(&mut Unstructured::new(data), &ops) else {
        return;
    };
    if std::env::var_os("PARITY_FUZZ_SHOW").is_some() {
        eprintln!("{model:#?}\ninputs: {inputs:?}");
    }
    if let Err(e) = parity::backend::candle::plan_unguarded(&model.encode_to_vec(), Some(&inputs)) {
        assert!(!e.to_string().contains("panicked"), "{e}");
    }
});
