//! Promotion of an ONNX model's floating-point computation to f64, for the oracle of
//! `parity record --calibrate`: the same graph, every f32/f16/bf16 tensor (initializers,
//! constants, declared types, casts to a float type) widened to f64, so a backend that
//! runs the promoted model computes the model's function with ~2^-52 rounding instead of
//! ~2^-23. Its outputs, rounded back to the output dtype, are what an exact
//! implementation would answer.
//!
//! What cannot be promoted faithfully is refused with a reason (external or sparse float
//! data); ops a backend cannot run in f64 (ONNX Runtime's CPU Conv, for one) show up when
//! that backend loads the promoted model, and calibration then tries the next backend.

use super::onnx_pb::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, TensorProto, TypeProto,
};
use super::pb::tensor_from_proto;
use crate::tensor::{DType, Tensor};
use std::path::Path;

/// Promotes `model` in place. `path` names the model file in errors.
pub fn promote_to_f64(model: &mut ModelProto, path: &Path) -> Result<(), String> {
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| "the model has no graph".to_string())?;
    promote_graph(graph, path)
}

/// The element types widened to f64.
fn is_narrow_float(code: i32) -> bool {
    matches!(
        DType::from_onnx_code(code),
        Some(DType::F32 | DType::F16 | DType::BF16)
    )
}

fn promote_graph(graph: &mut GraphProto, path: &Path) -> Result<(), String> {
    if graph.sparse_initializer.iter().any(sparse_is_float) {
        return Err("a float sparse initializer cannot be promoted to f64".to_string());
    }
    for t in &mut graph.initializer {
        promote_tensor(t, path)?;
    }
    for info in graph
        .input
        .iter_mut()
        .chain(&mut graph.output)
        .chain(&mut graph.value_info)
    {
        if let Some(tp) = info.r#type.as_mut() {
            promote_type(tp);
        }
    }
    for node in &mut graph.node {
        promote_node(node, path)?;
    }
    Ok(())
}

fn sparse_is_float(s: &super::onnx_pb::SparseTensorProto) -> bool {
    s.values
        .as_ref()
        .is_some_and(|v| is_narrow_float(v.data_type.unwrap_or(0)))
}

/// Widens a float tensor's data to f64 (stored as `raw_data`); other tensors are left
/// as they are.
fn promote_tensor(t: &mut TensorProto, path: &Path) -> Result<(), String> {
    if !is_narrow_float(t.data_type.unwrap_or(0)) {
        return Ok(());
    }
    let name = t.name.clone().unwrap_or_default();
    if t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty() {
        return Err(format!(
            "tensor '{name}' keeps its data outside the model file, which the f64 oracle does not read"
        ));
    }
    let tensor = tensor_from_proto(t, path).map_err(|e| e.to_string())?;
    let widened = tensor.to_f64().map_err(|e| e.to_string())?;
    t.data_type = Some(DType::F64.onnx_code());
    t.float_data.clear();
    t.int32_data.clear();
    t.double_data.clear();
    t.raw_data = Some(widened.bytes().to_vec());
    Ok(())
}

/// Widens the float element types inside a declared type (tensors, and the element
/// types of sequences, optionals and map values).
fn promote_type(tp: &mut TypeProto) {
    match tp.value.as_mut() {
        Some(type_proto::Value::TensorType(t)) => promote_code(&mut t.elem_type),
        Some(type_proto::Value::SparseTensorType(t)) => promote_code(&mut t.elem_type),
        Some(type_proto::Value::SequenceType(s)) => {
            if let Some(e) = s.elem_type.as_mut() {
                promote_type(e);
            }
        }
        Some(type_proto::Value::OptionalType(o)) => {
            if let Some(e) = o.elem_type.as_mut() {
                promote_type(e);
            }
        }
        Some(type_proto::Value::MapType(m)) => {
            if let Some(v) = m.value_type.as_mut() {
                promote_type(v);
            }
        }
        Some(type_proto::Value::OpaqueType(_)) | None => {}
    }
}

fn promote_code(code: &mut Option<i32>) {
    if code.is_some_and(is_narrow_float) {
        *code = Some(DType::F64.onnx_code());
    }
}

/// Integer attributes that name an output element type, and the float type the op
/// uses when the attribute is absent (`None`: the type follows an input instead).
const DTYPE_ATTRIBUTES: &[(&str, &str, Option<DType>)] = &[
    ("Cast", "to", None),
    ("EyeLike", "dtype", None),
    ("Bernoulli", "dtype", None),
    ("RandomNormalLike", "dtype", None),
    ("RandomUniformLike", "dtype", None),
    ("RandomNormal", "dtype", Some(DType::F32)),
    ("RandomUniform", "dtype", Some(DType::F32)),
    ("HannWindow", "output_datatype", Some(DType::F32)),
    ("HammingWindow", "output_datatype", Some(DType::F32)),
    ("BlackmanWindow", "output_datatype", Some(DType::F32)),
    ("MelWeightMatrix", "output_datatype", Some(DType::F32)),
];

fn promote_node(node: &mut NodeProto, path: &Path) -> Result<(), String> {
    let op = node.op_type.clone().unwrap_or_default();
    if node
        .domain
        .as_deref()
        .is_some_and(|d| !d.is_empty() && d != "ai.onnx")
    {
        // Custom-domain ops have their own typing rules; leave them to the backend.
        return Ok(());
    }
    for attr in &mut node.attribute {
        promote_attribute(&op, attr, path)?;
    }
    for &(dtype_op, key, default) in DTYPE_ATTRIBUTES {
        let present = node.attribute.iter().any(|a| a.name() == key);
        if op == dtype_op && !present && default.is_some_and(DType::is_float) {
            node.attribute
                .push(int_attribute(key, DType::F64.onnx_code().into()));
        }
    }
    if op == "ConstantOfShape" && !node.attribute.iter().any(|a| a.name() == "value") {
        // The default fill is an f32 zero.
        let zero = Tensor::from_vec(vec![1], vec![0.0f64]).map_err(|e| e.to_string())?;
        node.attribute.push(tensor_attribute("value", &zero));
    }
    Ok(())
}

fn promote_attribute(op: &str, attr: &mut AttributeProto, path: &Path) -> Result<(), String> {
    if let Some(t) = attr.t.as_mut() {
        promote_tensor(t, path)?;
    }
    for t in &mut attr.tensors {
        promote_tensor(t, path)?;
    }
    if let Some(g) = attr.g.as_mut() {
        promote_graph(g, path)?;
    }
    for g in &mut attr.graphs {
        promote_graph(g, path)?;
    }
    if let Some(tp) = attr.tp.as_mut() {
        promote_type(tp);
    }
    for tp in &mut attr.type_protos {
        promote_type(tp);
    }
    if attr
        .sparse_tensor
        .iter()
        .chain(&attr.sparse_tensors)
        .any(sparse_is_float)
    {
        return Err(format!(
            "{op}: a float sparse tensor attribute cannot be promoted to f64"
        ));
    }
    let names_dtype = DTYPE_ATTRIBUTES
        .iter()
        .any(|&(o, key, _)| o == op && key == attr.name());
    if names_dtype {
        if let Some(code) = attr.i {
            if i32::try_from(code).is_ok_and(is_narrow_float) {
                attr.i = Some(DType::F64.onnx_code().into());
            }
        }
    }
    if op == "Constant" {
        // `value_float(s)` make an f32 scalar (vector): rewrite them as an f64 `value`.
        let values = match attr.name() {
            "value_float" => attr.f.map(|f| (vec![], vec![f64::from(f)])),
            "value_floats" => Some((
                vec![attr.floats.len()],
                attr.floats.iter().copied().map(f64::from).collect(),
            )),
            _ => None,
        };
        if let Some((shape, values)) = values {
            let t = Tensor::from_vec(shape, values).map_err(|e| e.to_string())?;
            *attr = tensor_attribute("value", &t);
        }
    }
    Ok(())
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn tensor_attribute(name: &str, t: &Tensor) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(TensorProto {
            dims: t.shape().iter().map(|&d| d as i64).collect(),
            data_type: Some(t.dtype().onnx_code()),
            raw_data: Some(t.bytes().to_vec()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::onnx_pb::{type_proto, ValueInfoProto};

    fn f32_tensor(name: &str, values: &[f32]) -> TensorProto {
        TensorProto {
            dims: vec![values.len() as i64],
            data_type: Some(DType::F32.onnx_code()),
            float_data: values.to_vec(),
            name: Some(name.to_string()),
            ..Default::default()
        }
    }

    fn typed(name: &str, code: i32) -> ValueInfoProto {
        ValueInfoProto {
            name: Some(name.to_string()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(code),
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node(op: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            op_type: Some(op.to_string()),
            attribute,
            ..Default::default()
        }
    }

    fn elem_type(info: &ValueInfoProto) -> Option<i32> {
        match info.r#type.as_ref()?.value.as_ref()? {
            type_proto::Value::TensorType(t) => t.elem_type,
            _ => None,
        }
    }

    fn model(graph: GraphProto) -> ModelProto {
        ModelProto {
            graph: Some(graph),
            ..Default::default()
        }
    }

    #[test]
    fn widens_initializers_types_casts_and_constants() {
        let f32c = DType::F32.onnx_code();
        let i64c = DType::I64.onnx_code();
        let mut m = model(GraphProto {
            initializer: vec![
                f32_tensor("w", &[0.1, -2.5]),
                TensorProto {
                    dims: vec![1],
                    data_type: Some(i64c),
                    int64_data: vec![7],
                    ..Default::default()
                },
            ],
            input: vec![typed("x", f32c), typed("ids", i64c)],
            output: vec![typed("y", f32c)],
            node: vec![
                node("Cast", vec![int_attribute("to", f32c.into())]),
                node("Cast", vec![int_attribute("to", i64c.into())]),
                node(
                    "Constant",
                    vec![AttributeProto {
                        name: Some("value_float".into()),
                        f: Some(1.5),
                        ..Default::default()
                    }],
                ),
                node("ConstantOfShape", vec![]),
                node("RandomNormal", vec![]),
            ],
            ..Default::default()
        });
        promote_to_f64(&mut m, Path::new("m.onnx")).unwrap();
        let g = m.graph.unwrap();
        let f64c = DType::F64.onnx_code();
        let w = tensor_from_proto(&g.initializer[0], Path::new("m.onnx")).unwrap();
        assert_eq!(w.dtype(), DType::F64);
        assert_eq!(
            w.values::<f64>().unwrap().as_ref(),
            &[f64::from(0.1f32), -2.5]
        );
        assert_eq!(g.initializer[1].data_type, Some(i64c), "ints stay");
        assert_eq!(elem_type(&g.input[0]), Some(f64c));
        assert_eq!(elem_type(&g.input[1]), Some(i64c));
        assert_eq!(elem_type(&g.output[0]), Some(f64c));
        assert_eq!(g.node[0].attribute[0].i, Some(f64c.into()));
        assert_eq!(
            g.node[1].attribute[0].i,
            Some(i64c.into()),
            "Cast to int stays"
        );
        let constant = &g.node[2].attribute[0];
        assert_eq!(constant.name(), "value");
        let c = tensor_from_proto(constant.t.as_ref().unwrap(), Path::new("m.onnx")).unwrap();
        assert_eq!(
            (c.dtype(), c.shape(), c.get_f64(0)),
            (DType::F64, &[][..], 1.5)
        );
        let fill = g.node[3].attribute[0].t.as_ref().unwrap();
        assert_eq!(
            fill.data_type,
            Some(f64c),
            "ConstantOfShape's default f32 zero"
        );
        assert_eq!(
            g.node[4].attribute[0].i,
            Some(f64c.into()),
            "RandomNormal default"
        );
    }

    #[test]
    fn promotes_subgraphs() {
        let body = GraphProto {
            initializer: vec![f32_tensor("b", &[1.0])],
            ..Default::default()
        };
        let mut m = model(GraphProto {
            node: vec![node(
                "If",
                vec![AttributeProto {
                    name: Some("then_branch".into()),
                    g: Some(body),
                    ..Default::default()
                }],
            )],
            ..Default::default()
        });
        promote_to_f64(&mut m, Path::new("m.onnx")).unwrap();
        let g = m.graph.unwrap();
        let b = &g.node[0].attribute[0].g.as_ref().unwrap().initializer[0];
        assert_eq!(b.data_type, Some(DType::F64.onnx_code()));
    }

    #[test]
    fn refuses_external_float_data() {
        let mut t = f32_tensor("big", &[]);
        t.data_location = Some(DataLocation::External as i32);
        let mut m = model(GraphProto {
            initializer: vec![t],
            ..Default::default()
        });
        let err = promote_to_f64(&mut m, Path::new("m.onnx")).unwrap_err();
        assert!(err.contains("'big'") && err.contains("outside"), "{err}");
    }
}
