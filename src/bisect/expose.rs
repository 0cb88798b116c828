//! Rewriting a model so that intermediate values become graph outputs: the model's
//! top-level nodes in topological order, the element type of each node output
//! ([`super::types`]), and a copy of the model whose outputs are exactly the values of
//! one chunk (so the engines compute only what that chunk needs).

use super::types::{self, Known};
use crate::error::{Error, Result};
use crate::formats::onnx_model::read_model;
use crate::formats::onnx_pb::{
    tensor_proto::DataLocation, type_proto, GraphProto, ModelProto, TypeProto, ValueInfoProto,
};
use crate::tensor::DType;
use prost::Message;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

/// One top-level node as bisect reports it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Position in the graph's node list.
    pub index: usize,
    /// The node's name, or `OpType#index` when it has none.
    pub label: String,
    /// The op type (with its domain when not ai.onnx).
    pub op: String,
    /// Input value names (omitted optional inputs left out).
    pub inputs: Vec<String>,
    /// Output value names (omitted optional outputs left out).
    pub outputs: Vec<String>,
}

/// A model ready to have its intermediates exposed.
pub struct Exposable {
    path: PathBuf,
    model: ModelProto,
    /// Top-level nodes in topological order.
    nodes: Vec<Node>,
    /// Element type of every value whose type is known.
    types: Known,
}

impl Exposable {
    /// Reads `path`; a model whose tensors live in external files is refused, since
    /// the rewritten copies are written elsewhere.
    pub fn open(path: &Path) -> Result<Exposable> {
        let (model, _) = read_model(path)?;
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| Error::file(path, "not a valid ONNX model: it has no graph"))?;
        if graph.initializer.iter().any(|t| {
            t.data_location == Some(DataLocation::External as i32) || !t.external_data.is_empty()
        }) {
            return Err(Error::file(
                path,
                "keeps tensors in external data files, which bisect does not support",
            ));
        }
        let order = topological_order(graph);
        let mut types = declared_types(graph);
        let mut nodes = Vec::with_capacity(order.len());
        for i in order {
            let node = &graph.node[i];
            for (name, code) in node.output.iter().zip(types::infer(node, &types)) {
                if let (false, Some(code)) = (name.is_empty(), code) {
                    types.entry(name.clone()).or_insert(code);
                }
            }
            let op = match node.domain() {
                "" | "ai.onnx" => node.op_type().to_string(),
                d => format!("{d}.{}", node.op_type()),
            };
            let nonempty = |v: &[String]| v.iter().filter(|s| !s.is_empty()).cloned().collect();
            nodes.push(Node {
                index: i,
                label: match node.name() {
                    "" => format!("{}#{i}", node.op_type()),
                    n => n.to_string(),
                },
                op,
                inputs: nonempty(&node.input),
                outputs: nonempty(&node.output),
            });
        }
        Ok(Exposable {
            path: path.to_path_buf(),
            model,
            nodes,
            types,
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Top-level nodes in topological order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Initializers of this model that the `other` model also has, with other contents:
    /// the constants a model edit changed.
    pub fn changed_initializers(&self, other: &Exposable) -> Vec<String> {
        let (Some(mine), Some(theirs)) = (self.model.graph.as_ref(), other.model.graph.as_ref())
        else {
            return Vec::new();
        };
        mine.initializer
            .iter()
            .filter(|t| {
                theirs
                    .initializer
                    .iter()
                    .any(|u| u.name == t.name && u != *t)
            })
            .map(|t| t.name().to_string())
            .collect()
    }

    /// The element type of a value, when it is a numeric or bool tensor parity knows.
    pub fn dtype(&self, value: &str) -> Option<DType> {
        self.types
            .get(value)
            .copied()
            .and_then(DType::from_onnx_code)
    }

    /// Writes into `dir` a copy of the model whose graph outputs are `values` (each
    /// declared with its element type), and returns its path.
    pub fn write_exposing(&self, values: &[String], dir: &Path, stem: &str) -> Result<PathBuf> {
        let mut model = self.model.clone();
        if let Some(graph) = model.graph.as_mut() {
            graph.output = values
                .iter()
                .map(|name| ValueInfoProto {
                    name: Some(name.clone()),
                    r#type: self.types.get(name).map(|&code| TypeProto {
                        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                            elem_type: Some(code),
                            shape: None,
                        })),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect();
        }
        let path = dir.join(format!("{stem}.onnx"));
        std::fs::write(&path, model.encode_to_vec()).map_err(|e| Error::Write {
            path: path.clone(),
            source: e,
        })?;
        Ok(path)
    }
}

/// Types the model states: graph inputs and outputs, `value_info`, initializers.
fn declared_types(graph: &GraphProto) -> Known {
    let mut known = Known::new();
    for v in graph
        .input
        .iter()
        .chain(&graph.output)
        .chain(&graph.value_info)
    {
        if let Some(type_proto::Value::TensorType(t)) =
            v.r#type.as_ref().and_then(|t| t.value.as_ref())
        {
            if let Some(code) = t.elem_type.filter(|&c| c != 0) {
                known.insert(v.name().to_string(), code);
            }
        }
    }
    for t in &graph.initializer {
        if let Some(code) = t.data_type {
            known.insert(t.name().to_string(), code);
        }
    }
    known
}

/// Node indices in a topological order that keeps the graph's own order wherever it
/// allows (ONNX requires sorted graphs, but not every exporter obeys). Nodes caught in
/// a cycle or reading a value nothing produces keep their place at the end; the
/// engines refuse such models with their own words.
fn topological_order(graph: &GraphProto) -> Vec<usize> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, node) in graph.node.iter().enumerate() {
        for o in node.output.iter().filter(|o| !o.is_empty()) {
            producer.entry(o.as_str()).or_insert(i);
        }
    }
    let n = graph.node.len();
    let mut waiting = vec![0usize; n];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in graph.node.iter().enumerate() {
        for input in &node.input {
            if let Some(&p) = producer.get(input.as_str()).filter(|&&p| p != i) {
                waiting[i] += 1;
                readers[p].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    let mut placed = vec![false; n];
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        placed[i] = true;
        for &r in &readers[i] {
            waiting[r] -= 1;
            if waiting[r] == 0 {
                ready.push(Reverse(r));
            }
        }
    }
    order.extend((0..n).filter(|&i| !placed[i]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::onnx_pb::NodeProto;

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            op_type: Some(op.to_string()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn orders_unsorted_graphs_and_keeps_sorted_ones() {
        let graph = GraphProto {
            node: vec![
                node("Relu", &["b"], &["c"]),
                node("Neg", &["x"], &["a"]),
                node("Abs", &["a"], &["b"]),
                node("Exp", &["x"], &["d"]),
            ],
            ..Default::default()
        };
        assert_eq!(topological_order(&graph), [1, 2, 0, 3]);
        let cyclic = GraphProto {
            node: vec![node("Neg", &["b"], &["a"]), node("Neg", &["a"], &["b"])],
            ..Default::default()
        };
        assert_eq!(topological_order(&cyclic), [0, 1]);
    }
}
