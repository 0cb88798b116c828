//! The schema of an ONNX model as parity needs it without running it: inputs and outputs
//! (with symbolic dims), opsets, an op histogram, size and sha256. Used by `inspect`, by
//! suite loading (to order and name tensors) and by backends that interpret the graph.

use super::onnx_pb::{tensor_shape_proto::dimension, type_proto, GraphProto, ModelProto};
use crate::error::{Error, Result};
use crate::schema::{Dim, IoSpec};
use crate::tensor::DType;
use prost::Message;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Everything `inspect` prints and suites need about a model file.
#[derive(Debug, Clone, Default)]
pub struct ModelInfo {
    /// Graph inputs that are not initializers, in graph order.
    pub inputs: Vec<IoSpec>,
    /// Graph outputs in graph order.
    pub outputs: Vec<IoSpec>,
    /// (domain, version) pairs; the default domain is printed as `ai.onnx`.
    pub opsets: Vec<(String, i64)>,
    /// Op type → node count, including nodes inside subgraphs (If/Loop/Scan bodies).
    pub ops: BTreeMap<String, usize>,
    /// Size of the model file in bytes.
    pub size: u64,
    /// Hex sha256 of the model file.
    pub sha256: String,
    /// The producer recorded in the model (`pytorch 2.1`, `onnx-example`), if any.
    pub producer: String,
}

/// Reads and decodes a model file, naming it in errors.
pub fn read_model(path: &Path) -> Result<(ModelProto, Vec<u8>)> {
    let bytes = super::read_file(path)?;
    Ok((decode_model(&bytes, path)?, bytes))
}

/// Decodes the bytes of a model file (it must have a graph); `path` names it in errors.
pub fn decode_model(bytes: &[u8], path: &Path) -> Result<ModelProto> {
    let model = ModelProto::decode(bytes)
        .map_err(|e| Error::file(path, format!("not a valid ONNX model: {e}")))?;
    if model.graph.is_none() {
        return Err(Error::file(path, "not a valid ONNX model: it has no graph"));
    }
    Ok(model)
}

/// Reads a model and summarises its schema.
pub fn inspect(path: &Path) -> Result<ModelInfo> {
    let (model, bytes) = read_model(path)?;
    summarise(&model, &bytes, path)
}

/// The schema summary of `model`, decoded from `bytes`; `path` names it in errors.
pub fn summarise(model: &ModelProto, bytes: &[u8], path: &Path) -> Result<ModelInfo> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| Error::file(path, "model has no graph"))?;
    // Checked here, once, so every backend says the same (tract panics on it).
    let defined: HashSet<&str> = (graph.node.iter().flat_map(|n| n.output.iter()))
        .map(String::as_str)
        .chain(graph.input.iter().map(|v| v.name()))
        .chain(graph.initializer.iter().map(|t| t.name()))
        .collect();
    if let Some(o) = graph.output.iter().find(|o| !defined.contains(o.name())) {
        let problem = "is produced by no node and is not an input or initializer";
        return Err(Error::file(
            path,
            format!("graph output `{}` {problem}", o.name()),
        ));
    }
    let mut ops = BTreeMap::new();
    count_ops(graph, &mut ops);
    let opsets = model
        .opset_import
        .iter()
        .map(|o| {
            let domain = match o.domain() {
                "" => "ai.onnx".to_string(),
                d => d.to_string(),
            };
            (domain, o.version())
        })
        .collect();
    let producer = format!("{} {}", model.producer_name(), model.producer_version())
        .trim()
        .to_string();
    Ok(ModelInfo {
        inputs: graph_inputs(graph),
        outputs: graph.output.iter().map(io_spec).collect(),
        opsets,
        ops,
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        producer,
    })
}

/// Graph inputs minus the ones that are initializers (older exporters list both).
pub fn graph_inputs(graph: &GraphProto) -> Vec<IoSpec> {
    let init: HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    graph
        .input
        .iter()
        .filter(|v| !init.contains(v.name()))
        .map(io_spec)
        .collect()
}

fn io_spec(v: &super::onnx_pb::ValueInfoProto) -> IoSpec {
    let tensor = v.r#type.as_ref().and_then(|t| match &t.value {
        Some(type_proto::Value::TensorType(tt)) => Some(tt),
        _ => None,
    });
    let dtype = tensor.and_then(|t| DType::from_onnx_code(t.elem_type()));
    let dims = tensor.and_then(|t| t.shape.as_ref()).map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                Some(dimension::Value::DimParam(p)) if !p.is_empty() => Dim::Symbolic(p.clone()),
                _ => Dim::Unknown,
            })
            .collect()
    });
    IoSpec {
        name: v.name().to_string(),
        dtype,
        dims,
    }
}

fn count_ops(graph: &GraphProto, ops: &mut BTreeMap<String, usize>) {
    for node in &graph.node {
        let name = match node.domain() {
            "" | "ai.onnx" => node.op_type().to_string(),
            d => format!("{d}.{}", node.op_type()),
        };
        *ops.entry(name).or_default() += 1;
        for attr in &node.attribute {
            if let Some(g) = &attr.g {
                count_ops(g, ops);
            }
            for g in &attr.graphs {
                count_ops(g, ops);
            }
        }
    }
}

/// Hex sha256 of bytes (model and data-file provenance).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_not_a_model() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.onnx");
        std::fs::write(&p, [0xffu8, 0xff, 0xff, 0x01]).unwrap();
        let err = inspect(&p).unwrap_err().to_string();
        assert!(err.starts_with(&p.display().to_string()), "{err}");
        assert!(err.contains("not a valid ONNX model"), "{err}");
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// The fuzzer's kept inputs (fuzz/corpus/onnx_model) decode, summarise, convert
    /// their initializers and promote to f64, or fail with an error.
    #[test]
    fn fuzz_corpus_replays() {
        for (path, bytes) in crate::formats::test_util::fuzz_corpus("onnx_model") {
            let Ok(mut model) = decode_model(&bytes, &path) else {
                continue;
            };
            let _ = summarise(&model, &bytes, &path);
            for t in model.graph.iter().flat_map(|g| &g.initializer) {
                let _ = crate::formats::pb::tensor_from_proto(t, &path);
            }
            let _ = crate::formats::onnx_f64::promote_to_f64(&mut model, &path);
        }
    }
}
