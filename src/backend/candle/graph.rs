//! Loading a model into an execution plan: opset check, initializers and `Constant`
//! nodes decoded once, every node validated and built (so that an unsupported op,
//! attribute or opset semantic is refused at load time), a topological order, and value
//! slots with the step after which each intermediate can be freed.

use super::error::OpError;
use super::exec::PlannedSubgraph;
use super::ops::{self, implicit_inputs, Built, Ctx, Op, Subgraph, Subgraphs};
use super::plan::{Plan, Step};
use super::proto::value_from_proto;
use super::value::{storage_dtype, Value};
use crate::backend::{BackendError, IoSpec};
use crate::formats::onnx_model::{graph_inputs, read_model};
use crate::formats::onnx_pb::{GraphProto, ModelProto, NodeProto};
use candle_core::Device;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

/// The newest ai.onnx opset whose operator versions this backend was checked against
/// (onnx 1.23.2). A newer opset may change any op's semantics, so it is refused.
pub(crate) const MAX_OPSET: i64 = 28;

struct Slots(HashMap<String, usize>);

/// A built node waiting for its place in the order: the node, every name it reads
/// (explicit inputs, then the outer values its subgraphs read), its op type, label and op.
type Pending<'g> = (&'g NodeProto, Vec<String>, String, String, Box<dyn Op>);

impl Slots {
    fn get_or_add(&mut self, name: &str) -> usize {
        let n = self.0.len();
        *self.0.entry(name.to_string()).or_insert(n)
    }
}

fn load_error(what: &str, e: OpError) -> BackendError {
    match e {
        OpError::Unsupported(m) | OpError::Failed(m) => BackendError::new(format!("{what}: {m}")),
    }
}

/// Reads, validates and plans the model at `path` for `device` (where initializers and
/// constants are put once).
pub(crate) fn load(path: &Path, device: &Device) -> Result<Plan, BackendError> {
    let (model, _) = read_model(path).map_err(|e| BackendError::new(e.to_string()))?;
    plan(&model, path, device)
}

/// [`load`] on a decoded model; `path` names it in errors.
pub(crate) fn plan(model: &ModelProto, path: &Path, device: &Device) -> Result<Plan, BackendError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| BackendError::new("the model has no graph"))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain(), "" | "ai.onnx"))
        .map(|o| o.version());
    if let Some(opset) = opset.filter(|&v| v > MAX_OPSET) {
        return Err(BackendError::new(format!(
            "ai.onnx opset {opset} is newer than the newest this backend knows ({MAX_OPSET})"
        )));
    }
    plan_graph(graph, opset, path, device, None)
}

/// Plans one graph: the model's (`outer` = `None`), or a subgraph whose free names
/// `outer` lists: those are bound after its formal inputs (`input_slots` holds both),
/// and its inputs and outputs may leave their dtype to the values they get.
pub(crate) fn plan_graph(
    graph: &GraphProto,
    opset: Option<i64>,
    path: &Path,
    device: &Device,
    outer: Option<&[String]>,
) -> Result<Plan, BackendError> {
    if !graph.sparse_initializer.is_empty() {
        return Err(BackendError::new("sparse initializers are not supported"));
    }

    let mut slots = Slots(HashMap::new());
    let mut constants = Vec::new();
    // Only initializers something reads are decoded: an unused one of a dtype this
    // backend cannot hold (strings, say) does not stop the model.
    let reads: Vec<Vec<String>> = graph
        .node
        .iter()
        .map(|n| n.input.iter().cloned().chain(implicit_inputs(n)).collect())
        .collect();
    let used: HashSet<&str> = reads
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(graph.output.iter().map(|o| o.name()))
        .collect();
    for t in graph.initializer.iter().filter(|t| used.contains(t.name())) {
        let v = value_from_proto(t, path, device)
            .map_err(|e| load_error(&format!("initializer `{}`", t.name()), e))?;
        constants.push((slots.get_or_add(t.name()), v));
    }
    let inputs = graph_inputs(graph);
    let mut input_slots = Vec::new();
    for spec in &inputs {
        if outer.is_none() || spec.dtype.is_some() {
            check_io_dtype("input", spec)?;
        }
        input_slots.push(slots.get_or_add(&spec.name));
    }
    for name in outer.unwrap_or_default() {
        input_slots.push(slots.get_or_add(name));
    }

    // Validate and build every node before ordering them, so refusals come first.
    let mut pending = Vec::new();
    for (node, reads) in graph.node.iter().zip(reads) {
        let op_type = node.op_type().to_string();
        let label = match node.name() {
            "" => node
                .output
                .iter()
                .find(|o| !o.is_empty())
                .cloned()
                .unwrap_or_default(),
            n => n.to_string(),
        };
        let microsoft = node.domain() == ops::MICROSOFT;
        if microsoft && !ops::microsoft_ops().contains(&op_type.as_str()) {
            return Err(BackendError::unsupported_op(
                op_type,
                format!(
                    "domain `{}` is not supported beyond its QOperator ops {} (node `{label}`)",
                    ops::MICROSOFT,
                    ops::microsoft_ops().join(", ")
                ),
            ));
        }
        if !microsoft && !matches!(node.domain(), "" | "ai.onnx") {
            return Err(BackendError::unsupported_op(
                op_type,
                format!(
                    "domain `{}` is not supported (node `{label}`)",
                    node.domain()
                ),
            ));
        }
        // Every com.microsoft op this backend runs is version 1 of that domain.
        let opset = if microsoft {
            1
        } else {
            opset.ok_or_else(|| {
                BackendError::new(format!(
                    "node `{label}` ({op_type}) is in ai.onnx, which the model does not import"
                ))
            })?
        };
        let planner = Planner { path, device };
        let ctx = Ctx {
            node,
            opset,
            path,
            device,
            subgraphs: &planner,
        };
        let built = if microsoft {
            ops::build_microsoft(&ctx).unwrap_or_else(|| {
                Err(super::error::OpError::Unsupported(
                    "the op is not implemented by candle-cpu".into(),
                ))
            })
        } else {
            ops::build(&ctx)
        };
        match built.map_err(|e| e.into_backend(&op_type, &label))? {
            Built::Constant(v) => {
                let out = node
                    .output
                    .first()
                    .filter(|o| !o.is_empty())
                    .ok_or_else(|| {
                        BackendError::new(format!("Constant node `{label}` has no output"))
                    })?;
                constants.push((slots.get_or_add(out), v));
            }
            Built::Op(op) => pending.push((node, reads, op_type, label, op)),
        }
    }
    let order = topological_order(graph, &pending, &constants, &input_slots, &mut slots)?;

    let output_specs = graph_outputs(graph);
    let mut output_slots = Vec::new();
    for spec in &output_specs {
        if outer.is_none() || spec.dtype.is_some() {
            check_io_dtype("output", spec)?;
        }
        let slot = *slots.0.get(&spec.name).ok_or_else(|| {
            BackendError::new(format!(
                "graph output `{}` is not produced by any node",
                spec.name
            ))
        })?;
        output_slots.push(slot);
    }

    // Build the steps in order and compute when each slot is last read.
    let mut steps: Vec<Step> = Vec::with_capacity(order.len());
    let mut pending: Vec<Option<_>> = pending.into_iter().map(Some).collect();
    for i in order {
        let Some((node, reads, op_type, label, op)) = pending[i].take() else {
            return Err(BackendError::new(
                "internal error: a node was scheduled twice",
            ));
        };
        let slot_of = |n: &String| (!n.is_empty()).then(|| slots.0.get(n).copied()).flatten();
        steps.push(Step {
            op,
            op_type,
            label,
            inputs: reads.iter().map(slot_of).collect(),
            outputs: node.output.iter().map(slot_of).collect(),
            free_after: Vec::new(),
        });
    }
    let mut last_use: HashMap<usize, usize> = HashMap::new();
    for (si, s) in steps.iter().enumerate() {
        for slot in s.inputs.iter().flatten() {
            last_use.insert(*slot, si);
        }
    }
    let is_output: HashSet<usize> = output_slots.iter().copied().collect();
    for (slot, si) in last_use {
        if !is_output.contains(&slot) {
            steps[si].free_after.push(slot);
        }
    }
    Ok(Plan {
        device: device.clone(),
        n_slots: slots.0.len(),
        constants,
        inputs,
        input_slots,
        outputs: output_specs,
        output_slots,
        steps,
    })
}

/// Kahn's algorithm, keeping the file's order among ready nodes. Assigns a slot to every
/// node output and checks that every input is produced.
fn topological_order(
    _graph: &GraphProto,
    nodes: &[Pending<'_>],
    constants: &[(usize, Value)],
    input_slots: &[usize],
    slots: &mut Slots,
) -> Result<Vec<usize>, BackendError> {
    // Slots set before the first step, looked up rather than scanned for every node
    // input and output (a model of 20,000 constants took seconds, quadratically).
    let preset: HashSet<usize> = constants
        .iter()
        .map(|c| c.0)
        .chain(input_slots.iter().copied())
        .collect();
    let mut producer: HashMap<String, usize> = HashMap::new();
    for (i, (node, _, _, label, _)) in nodes.iter().enumerate() {
        for out in node.output.iter().filter(|o| !o.is_empty()) {
            let slot = slots.get_or_add(out);
            if preset.contains(&slot) || producer.insert(out.clone(), i).is_some() {
                return Err(BackendError::new(format!(
                    "value `{out}` (node `{label}`) is produced twice"
                )));
            }
        }
    }
    let mut deps: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); nodes.len()];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, (_, reads, _, label, _)) in nodes.iter().enumerate() {
        for name in reads.iter().filter(|n| !n.is_empty()) {
            match producer.get(name) {
                Some(&p) => {
                    if deps[i].insert(p) {
                        users[p].push(i);
                    }
                }
                None => {
                    let known = slots.0.get(name).is_some_and(|s| preset.contains(s));
                    if !known {
                        return Err(BackendError::new(format!(
                            "input `{name}` of node `{label}` is not a graph input, initializer, node output or outer-scope value"
                        )));
                    }
                }
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..nodes.len()).filter(|&i| deps[i].is_empty()).collect();
    let mut order = Vec::with_capacity(nodes.len());
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &u in &users[i] {
            deps[u].remove(&i);
            if deps[u].is_empty() {
                ready.insert(u);
            }
        }
    }
    if order.len() != nodes.len() {
        return Err(BackendError::new("the graph has a cycle"));
    }
    Ok(order)
}

/// The graph's outputs as [`IoSpec`]s (the schema reader exposes the conversion for
/// inputs only, so the outputs are read through it as if they were inputs).
fn graph_outputs(graph: &GraphProto) -> Vec<IoSpec> {
    let as_inputs = GraphProto {
        input: graph.output.clone(),
        ..Default::default()
    };
    graph_inputs(&as_inputs)
}

fn check_io_dtype(kind: &str, spec: &IoSpec) -> Result<(), BackendError> {
    match spec.dtype {
        Some(d) if storage_dtype(d).is_some() => Ok(()),
        Some(d) => Err(BackendError::new(format!("{kind} `{}` has dtype {d}, which is not supported", spec.name))),
        None => Err(BackendError::new(format!(
            "{kind} `{}` is not a tensor of a supported dtype (strings, sequences, maps are not supported)",
            spec.name
        ))),
    }
}

/// Plans the subgraphs of control-flow nodes for [`ops`], which may not depend on this
/// module: the same planning as the model's, run by [`super::exec`].
struct Planner<'p> {
    path: &'p Path,
    device: &'p Device,
}

impl Subgraphs for Planner<'_> {
    fn plan(
        &self,
        graph: &GraphProto,
        outer: &[String],
        opset: i64,
    ) -> Result<Box<dyn Subgraph>, BackendError> {
        let plan = plan_graph(graph, Some(opset), self.path, self.device, Some(outer))?;
        Ok(Box::new(PlannedSubgraph(plan)))
    }
}
