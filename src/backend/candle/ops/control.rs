//! Control flow: `If`, `Loop` and `Scan` (opset 9 on). Each subgraph is planned at load
//! time like the model itself (`graph::plan_graph`: every node validated and built, so what
//! this backend cannot run inside a branch or body is refused when the model loads),
//! and reads the values of enclosing scopes it names: the planner hands them to the
//! node after its explicit inputs ([`implicit_inputs`]), nested subgraphs included.
//! Planning and running go through [`super::Subgraphs`] and [`Subgraph`].

use super::{input, norm_axis, op, opt_input, Built, Ctx, Subgraph};
use crate::backend::candle::error::{failed, unsupported, OpError, OpResult};
use crate::backend::candle::value::Value;
use crate::backend::BackendError;
use crate::formats::onnx_pb::{GraphProto, NodeProto};
use crate::tensor::DType;
use candle_core::Tensor as CTensor;
use std::collections::HashSet;

/// Op types of this family with the first opset defining each (Scan-8's batched form is
/// refused in [`build`]).
pub(crate) const OPS: &[(&str, i64)] = &[("If", 1), ("Loop", 1), ("Scan", 8)];

/// The most iterations a `Loop` may run: a trip count or condition read from the data
/// must not hang the process.
const MAX_ITERATIONS: i64 = 1 << 24;

/// A planned subgraph and where its outer-scope values come from.
struct Sub {
    plan: Box<dyn Subgraph>,
    /// For each outer name the subgraph reads, its index among the node's implicit inputs.
    outer: Vec<usize>,
}

impl Sub {
    /// Plans graph attribute `name` of the node.
    fn build(
        ctx: &Ctx,
        graph: Option<&crate::formats::onnx_pb::GraphProto>,
        name: &str,
    ) -> OpResult<Sub> {
        let graph = graph.ok_or_else(|| failed!("attribute `{name}` (a graph) is required"))?;
        let free = free_names(graph);
        let implicit = implicit_inputs(ctx.node);
        let plan = ctx
            .subgraphs
            .plan(graph, &free, ctx.opset)
            .map_err(|e| inside(name, e))?;
        let outer = free
            .iter()
            .map(|n| {
                implicit.iter().position(|m| m == n).ok_or_else(|| {
                    failed!("outer value `{n}` of `{name}` is not among the node's inputs")
                })
            })
            .collect::<OpResult<Vec<_>>>()?;
        Ok(Sub { plan, outer })
    }

    /// Runs the subgraph on its formal inputs and the node's implicit inputs.
    fn run(
        &self,
        formal: Vec<Value>,
        implicit: &[Option<&Value>],
        name: &str,
    ) -> OpResult<Vec<Value>> {
        let mut values = formal;
        for &i in &self.outer {
            let v = implicit
                .get(i)
                .copied()
                .flatten()
                .ok_or_else(|| failed!("an outer value of `{name}` is missing"))?;
            values.push(v.clone());
        }
        self.plan.run(values).map_err(|e| inside(name, e))
    }

    /// Formal inputs the subgraph declares.
    fn arity(&self) -> usize {
        self.plan.inputs() - self.outer.len()
    }
}

/// An error of a subgraph, as an error of the node holding it: a refusal stays one.
fn inside(name: &str, e: BackendError) -> OpError {
    let msg = format!("in `{name}`: {}", e.message);
    match e.op {
        Some(_) => OpError::Unsupported(msg),
        None => OpError::Failed(msg),
    }
}

/// The names a graph reads from enclosing scopes: read by its nodes (or by their own
/// subgraphs) and defined neither by its inputs, initializers nor nodes; in order of
/// first reading.
pub(crate) fn free_names(graph: &GraphProto) -> Vec<String> {
    let defined: HashSet<&str> = graph
        .input
        .iter()
        .map(|v| v.name())
        .chain(graph.initializer.iter().map(|t| t.name()))
        .chain(
            graph
                .node
                .iter()
                .flat_map(|n| n.output.iter().map(String::as_str)),
        )
        .collect();
    let mut free: Vec<String> = Vec::new();
    let reads = graph.node.iter().flat_map(|n| {
        n.input
            .iter()
            .cloned()
            .chain(implicit_inputs(n))
            .collect::<Vec<_>>()
    });
    for name in reads.chain(graph.output.iter().map(|o| o.name().to_string())) {
        if !name.is_empty() && !defined.contains(name.as_str()) && !free.contains(&name) {
            free.push(name);
        }
    }
    free
}

/// What a node reads through its subgraph attributes (If's branches, Loop's and Scan's
/// body) from the scope it sits in: run time inputs after its explicit ones.
pub(crate) fn implicit_inputs(node: &NodeProto) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in &node.attribute {
        for g in a.g.iter().chain(&a.graphs) {
            for name in free_names(g) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "If" => build_if(ctx),
        "Loop" => build_loop(ctx),
        "Scan" => build_scan(ctx),
        other => Err(unsupported!("op {other} is not a control-flow op")),
    }
}

/// A bool (or number) value holding one element, as a condition.
fn truth(v: &Value, what: &str) -> OpResult<bool> {
    match v.f64s()?.as_slice() {
        [c] => Ok(*c != 0.0),
        other => Err(failed!("{what} must hold one value, got {}", other.len())),
    }
}

fn bool_scalar(b: bool, dev: &candle_core::Device) -> OpResult<Value> {
    Ok(Value::new(
        CTensor::from_vec(vec![u8::from(b)], (), dev)?,
        DType::Bool,
    ))
}

fn build_if(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (1, usize::MAX))?;
    let a = ctx.attrs(&["then_branch", "else_branch"])?;
    let then = Sub::build(ctx, a.graph("then_branch")?, "then_branch")?;
    let els = Sub::build(ctx, a.graph("else_branch")?, "else_branch")?;
    let outputs = ctx.node.output.len();
    for (sub, name) in [(&then, "then_branch"), (&els, "else_branch")] {
        if sub.plan.outputs() != outputs {
            return Err(failed!(
                "`{name}` has {} outputs, the node {outputs}",
                sub.plan.outputs()
            ));
        }
        if sub.arity() != 0 {
            return Err(failed!("`{name}` must take no inputs"));
        }
    }
    op(move |inputs| {
        let (sub, name) = if truth(input(inputs, 0)?, "cond")? {
            (&then, "then_branch")
        } else {
            (&els, "else_branch")
        };
        sub.run(Vec::new(), &inputs[1..], name)
    })
}

fn build_loop(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((2, usize::MAX), (0, usize::MAX))?;
    let a = ctx.attrs(&["body"])?;
    let body = Sub::build(ctx, a.graph("body")?, "body")?;
    let explicit = ctx.node.input.len();
    let carried = explicit - 2;
    if body.arity() != carried + 2 {
        return Err(failed!(
            "`body` takes {} inputs, expected {} (iteration, condition and {carried} loop-carried values)",
            body.arity(),
            carried + 2
        ));
    }
    let scans = body
        .plan
        .outputs()
        .checked_sub(1 + carried)
        .ok_or_else(|| failed!("`body` has too few outputs for {carried} loop-carried values"))?;
    if ctx.node.output.len() > carried + scans {
        return Err(failed!(
            "the node has {} outputs, `body` gives {carried} loop-carried and {scans} scan outputs",
            ctx.node.output.len()
        ));
    }
    let device = ctx.device.clone();
    op(move |inputs| {
        let trip = match opt_input(inputs, 0) {
            Some(m) => Some(
                m.i64s("M")?
                    .first()
                    .copied()
                    .ok_or_else(|| failed!("M is empty"))?,
            ),
            None => None,
        };
        let mut cond = match opt_input(inputs, 1) {
            Some(c) => Some(truth(c, "cond")?),
            None => None,
        };
        if trip.is_none() && cond.is_none() {
            return Err(unsupported!(
                "a Loop with neither a trip count nor a condition never ends"
            ));
        }
        let mut values: Vec<Value> = (0..carried)
            .map(|k| input(inputs, 2 + k).cloned())
            .collect::<OpResult<_>>()?;
        let mut scanned: Vec<Vec<CTensor>> = vec![Vec::new(); scans];
        let mut dtypes = vec![DType::F32; scans];
        let mut i: i64 = 0;
        while trip.is_none_or(|m| i < m) && cond != Some(false) {
            if i >= MAX_ITERATIONS {
                return Err(failed!(
                    "the loop ran {MAX_ITERATIONS} iterations without ending"
                ));
            }
            let mut formal = vec![
                Value::scalar_i64(i, &device)?,
                bool_scalar(cond.unwrap_or(true), &device)?,
            ];
            formal.extend(values);
            let mut out = body.run(formal, &inputs[explicit..], "body")?.into_iter();
            let c = out
                .next()
                .ok_or_else(|| failed!("`body` gave no condition"))?;
            // Without a `cond` input the body's condition is ignored (a for loop).
            if cond.is_some() {
                cond = Some(truth(&c, "the body's condition")?);
            }
            values = out.by_ref().take(carried).collect();
            for (k, v) in out.enumerate() {
                if v.seq.is_some() {
                    return Err(unsupported!("scan output {k} is a sequence"));
                }
                dtypes[k] = v.dtype;
                scanned[k].push(v.t);
            }
            i += 1;
        }
        if i == 0 && scans > 0 {
            return Err(unsupported!(
                "a Loop that runs no iteration has scan outputs of unknown shape"
            ));
        }
        for (k, parts) in scanned.into_iter().enumerate() {
            let stacked = CTensor::stack(&parts, 0)
                .map_err(|e| failed!("scan output {k} changes shape between iterations: {e}"))?;
            values.push(Value::new(stacked, dtypes[k]));
        }
        Ok(values)
    })
}

/// One scan direction setting: forward or reverse.
fn directions(v: Option<Vec<i64>>, n: usize, name: &str) -> OpResult<Vec<bool>> {
    match v {
        None => Ok(vec![false; n]),
        Some(v) if v.len() == n => v
            .into_iter()
            .map(|d| match d {
                0 => Ok(false),
                1 => Ok(true),
                d => Err(unsupported!(
                    "attribute `{name}` value {d} is not supported"
                )),
            })
            .collect(),
        Some(v) => Err(failed!(
            "attribute `{name}` has {} values, expected {n}",
            v.len()
        )),
    }
}

fn build_scan(ctx: &Ctx) -> OpResult<Built> {
    if ctx.opset < 9 {
        return Err(unsupported!(
            "Scan before opset 9 (batched, with sequence_lens) is not supported"
        ));
    }
    let a = ctx.attrs(&[
        "body",
        "num_scan_inputs",
        "scan_input_axes",
        "scan_input_directions",
        "scan_output_axes",
        "scan_output_directions",
    ])?;
    let body = Sub::build(ctx, a.graph("body")?, "body")?;
    let explicit = ctx.node.input.len();
    let m = a
        .opt_int("num_scan_inputs")?
        .and_then(|m| usize::try_from(m).ok())
        .filter(|&m| m >= 1 && m <= explicit)
        .ok_or_else(|| {
            failed!("attribute `num_scan_inputs` must be between 1 and the number of inputs")
        })?;
    let n = explicit - m;
    if body.arity() != explicit {
        return Err(failed!(
            "`body` takes {} inputs, expected {explicit}",
            body.arity()
        ));
    }
    let k = body
        .plan
        .outputs()
        .checked_sub(n)
        .ok_or_else(|| failed!("`body` has fewer outputs than the {n} state values"))?;
    let in_axes = a.ints("scan_input_axes")?.unwrap_or_else(|| vec![0; m]);
    let out_axes = a.ints("scan_output_axes")?.unwrap_or_else(|| vec![0; k]);
    if in_axes.len() != m || out_axes.len() != k {
        return Err(failed!(
            "scan_input_axes/scan_output_axes do not match the scan inputs/outputs"
        ));
    }
    let in_rev = directions(a.ints("scan_input_directions")?, m, "scan_input_directions")?;
    let out_rev = directions(
        a.ints("scan_output_directions")?,
        k,
        "scan_output_directions",
    )?;
    op(move |inputs| {
        let mut states: Vec<Value> = (0..n)
            .map(|i| input(inputs, i).cloned())
            .collect::<OpResult<_>>()?;
        let mut seqs = Vec::with_capacity(m);
        let mut len = None;
        for (j, &in_axis) in in_axes.iter().enumerate() {
            let x = input(inputs, n + j)?;
            let axis = norm_axis(in_axis, x.rank())?;
            let l = x.shape()[axis];
            if len.is_some_and(|len| len != l) {
                return Err(failed!(
                    "scan inputs have different lengths along their axes"
                ));
            }
            len = Some(l);
            seqs.push((x, axis));
        }
        let len = len.unwrap_or(0);
        if len == 0 && k > 0 {
            return Err(unsupported!(
                "a Scan over an empty sequence has scan outputs of unknown shape"
            ));
        }
        let mut scanned: Vec<Vec<Value>> = vec![Vec::new(); k];
        for t in 0..len {
            let mut formal = states;
            for (j, (x, axis)) in seqs.iter().enumerate() {
                let at = if in_rev[j] { len - 1 - t } else { t };
                formal.push(Value::new(
                    x.t.narrow(*axis, at, 1)?.squeeze(*axis)?,
                    x.dtype,
                ));
            }
            let mut out = body.run(formal, &inputs[explicit..], "body")?.into_iter();
            states = out.by_ref().take(n).collect();
            for (i, v) in out.enumerate() {
                if v.seq.is_some() {
                    return Err(unsupported!("scan output {i} is a sequence"));
                }
                scanned[i].push(v);
            }
        }
        for (i, mut parts) in scanned.into_iter().enumerate() {
            if out_rev[i] {
                parts.reverse();
            }
            let dtype = parts.first().map_or(DType::F32, |v| v.dtype);
            let rank = parts.first().map_or(0, Value::rank) + 1;
            let axis = norm_axis(out_axes[i], rank)?;
            let tensors: Vec<CTensor> = parts.into_iter().map(|v| v.t).collect();
            let stacked = CTensor::stack(&tensors, axis)
                .map_err(|e| failed!("scan output {i} changes shape between iterations: {e}"))?;
            states.push(Value::new(stacked, dtype));
        }
        Ok(states)
    })
}
