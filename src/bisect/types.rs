//! The element type of every node output, inferred without running the model: an exposed
//! intermediate must be declared with its type, since candle-cpu converts each output
//! by its declared dtype (ONNX Runtime and tract infer a missing one themselves).
//!
//! Most ai.onnx ops produce the type of their first input; this table lists the ones
//! that do not. Outputs of subgraph ops (If, Loop, Scan), sequence/optional/string ops
//! and custom domains stay unknown unless the model declares them in `value_info`.

use crate::formats::onnx_pb::NodeProto;
use crate::tensor::DType;
use std::collections::HashMap;

/// ONNX element type codes of named values, as far as they are known.
pub type Known = HashMap<String, i32>;

/// The element type code of each of `node`'s outputs (`None`: not inferable here).
pub fn infer(node: &NodeProto, known: &Known) -> Vec<Option<i32>> {
    let n = node.output.len();
    if !matches!(node.domain(), "" | "ai.onnx") {
        return vec![None; n];
    }
    let input = |k: usize| {
        node.input
            .get(k)
            .filter(|s| !s.is_empty())
            .and_then(|s| known.get(s).copied())
    };
    let attr = |name: &str| node.attribute.iter().find(|a| a.name() == name);
    let int_attr = |name: &str| {
        attr(name)
            .and_then(|a| a.i)
            .and_then(|i| i32::try_from(i).ok())
            .filter(|&c| c != 0)
    };
    let code = |d: DType| Some(d.onnx_code());
    let (f32c, i64c, boolc, u8c) = (
        code(DType::F32),
        code(DType::I64),
        code(DType::Bool),
        code(DType::U8),
    );
    let op = node.op_type();
    let first = match op {
        "Cast" => int_attr("to"),
        "CastLike" => input(1),
        "Constant" => constant_type(node),
        "ConstantOfShape" => attr("value")
            .and_then(|a| a.t.as_ref())
            .and_then(|t| t.data_type)
            .or(f32c),
        "Shape" | "Size" | "NonZero" | "ArgMax" | "ArgMin" | "NonMaxSuppression" => i64c,
        "Equal" | "Less" | "Greater" | "LessOrEqual" | "GreaterOrEqual" | "Not" | "And" | "Or"
        | "Xor" | "IsNaN" | "IsInf" => boolc,
        "EyeLike" | "RandomNormalLike" | "RandomUniformLike" | "Bernoulli" => {
            int_attr("dtype").or(input(0))
        }
        "RandomNormal" | "RandomUniform" => int_attr("dtype").or(f32c),
        "Multinomial" => int_attr("dtype").or(code(DType::I32)),
        "HannWindow" | "HammingWindow" | "BlackmanWindow" | "MelWeightMatrix" => {
            int_attr("output_datatype").or(f32c)
        }
        "QuantizeLinear" => input(2).or(int_attr("output_dtype")).or(u8c),
        "DequantizeLinear" => input(1),
        "DynamicQuantizeLinear" => u8c,
        "MatMulInteger" | "ConvInteger" => code(DType::I32),
        "QLinearMatMul" | "QLinearConv" => input(7),
        "Where" => input(1),
        "OneHot" => input(2),
        "If" | "Loop" | "Scan" | "SequenceAt" | "ConcatFromSequence" | "SplitToSequence"
        | "SequenceConstruct" | "SequenceEmpty" | "SequenceInsert" | "SequenceErase"
        | "SequenceLength" | "SequenceMap" | "Optional" | "OptionalGetElement"
        | "OptionalHasElement" | "StringNormalizer" | "StringConcat" | "StringSplit"
        | "RegexFullMatch" | "TfIdfVectorizer" => None,
        _ => input(0),
    };
    (0..n)
        .map(|k| match (op, k) {
            (_, 0) => first,
            ("TopK" | "Unique" | "MaxPool", _) => i64c,
            ("DynamicQuantizeLinear", 1) => f32c,
            ("DynamicQuantizeLinear", _) => u8c,
            ("LayerNormalization", _) => int_attr("stash_type").or(f32c),
            ("Dropout", _) => boolc,
            _ => first,
        })
        .collect()
}

/// The type of a `Constant` node's value, whichever attribute holds it.
fn constant_type(node: &NodeProto) -> Option<i32> {
    let a = node.attribute.first()?;
    match a.name() {
        "value" => a.t.as_ref().and_then(|t| t.data_type),
        "value_float" | "value_floats" => Some(DType::F32.onnx_code()),
        "value_int" | "value_ints" => Some(DType::I64.onnx_code()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::onnx_pb::AttributeProto;

    fn node(
        op: &str,
        inputs: &[&str],
        outputs: usize,
        attribute: Vec<AttributeProto>,
    ) -> NodeProto {
        NodeProto {
            op_type: Some(op.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: (0..outputs).map(|k| format!("{op}_{k}")).collect(),
            attribute,
            ..Default::default()
        }
    }

    #[test]
    fn follows_inputs_and_the_exceptions() {
        let f16 = DType::F16.onnx_code();
        let known: Known = [
            ("x".to_string(), f16),
            ("c".to_string(), DType::Bool.onnx_code()),
        ]
        .into_iter()
        .collect();
        let i64c = Some(DType::I64.onnx_code());
        assert_eq!(infer(&node("Relu", &["x"], 1, vec![]), &known), [Some(f16)]);
        assert_eq!(infer(&node("Shape", &["x"], 1, vec![]), &known), [i64c]);
        assert_eq!(
            infer(&node("TopK", &["x", "k"], 2, vec![]), &known),
            [Some(f16), i64c]
        );
        assert_eq!(
            infer(&node("Where", &["c", "x", "x"], 1, vec![]), &known),
            [Some(f16)]
        );
        assert_eq!(
            infer(&node("Less", &["x", "x"], 1, vec![]), &known),
            [Some(DType::Bool.onnx_code())]
        );
        let to_i32 = AttributeProto {
            name: Some("to".into()),
            i: Some(DType::I32.onnx_code().into()),
            ..Default::default()
        };
        assert_eq!(
            infer(&node("Cast", &["x"], 1, vec![to_i32]), &known),
            [Some(DType::I32.onnx_code())]
        );
        assert_eq!(
            infer(&node("Relu", &["unknown"], 1, vec![]), &known),
            [None]
        );
        assert_eq!(infer(&node("If", &["c"], 2, vec![]), &known), [None, None]);
        let mut custom = node("Relu", &["x"], 1, vec![]);
        custom.domain = Some("com.microsoft".into());
        assert_eq!(infer(&custom, &known), [None]);
    }
}
