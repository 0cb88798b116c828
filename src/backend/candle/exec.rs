//! Running a plan on one case: inputs checked against the declared schema and converted,
//! nodes executed in order with intermediates freed after their last use, outputs checked
//! against their declared dtype and converted back. A panic inside candle becomes an
//! error naming the node that was running.

use super::ops::contiguous;
use super::ops::Subgraph;
use super::plan::Plan;
use super::value::Value;
use crate::backend::BackendError;
use crate::tensor::Tensor;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs one case; `inputs` follow the plan's inputs.
pub(crate) fn run(plan: &Plan, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
    crate::backend::check_inputs(&plan.inputs, inputs)?;
    let mut env: Vec<Option<Value>> = vec![None; plan.n_slots];
    for (slot, v) in &plan.constants {
        env[*slot] = Some(v.clone());
    }
    for ((spec, t), &slot) in plan.inputs.iter().zip(inputs).zip(&plan.input_slots) {
        let v =
            Value::from_tensor(t, &plan.device).map_err(|e| e.into_backend("input", &spec.name))?;
        env[slot] = Some(v);
    }
    let mut current: Option<usize> = None;
    let result = catch_unwind(AssertUnwindSafe(|| execute(plan, &mut env, &mut current)));
    match result {
        Ok(r) => r?,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let at = match current.and_then(|i| plan.steps.get(i)) {
                Some(s) => format!("{} (node `{}`)", s.op_type, s.label),
                None => "the interpreter".to_string(),
            };
            return Err(BackendError::new(format!("candle panicked in {at}: {msg}")));
        }
    }
    let mut out = Vec::with_capacity(plan.outputs.len());
    for (spec, &slot) in plan.outputs.iter().zip(&plan.output_slots) {
        let v = env[slot]
            .as_ref()
            .ok_or_else(|| BackendError::new(format!("output `{}` was not computed", spec.name)))?;
        if let Some(d) = spec.dtype {
            if d != v.dtype {
                return Err(BackendError::new(format!(
                    "output `{}` was computed as {} but the model declares {d}",
                    spec.name, v.dtype
                )));
            }
        }
        if v.seq.is_some() {
            return Err(BackendError::new(format!(
                "output `{}` is a sequence; parity compares tensors",
                spec.name
            )));
        }
        let t = v
            .to_tensor()
            .map_err(|e| e.into_backend("output", &spec.name))?;
        out.push((spec.name.clone(), t));
    }
    Ok(out)
}

/// A planned subgraph (If's branches, Loop's and Scan's body), run on values already on
/// its device. A panic inside is caught by the top-level [`run`], which names the node
/// that holds the subgraph.
pub(crate) struct PlannedSubgraph(pub Plan);

impl Subgraph for PlannedSubgraph {
    fn run(&self, inputs: Vec<Value>) -> Result<Vec<Value>, BackendError> {
        run_subgraph(&self.0, inputs)
    }

    fn inputs(&self) -> usize {
        self.0.input_slots.len()
    }

    fn outputs(&self) -> usize {
        self.0.outputs.len()
    }
}

/// Runs a subgraph's plan: `inputs` follow its `input_slots` (formal inputs, then the
/// outer-scope values it reads). Returns its outputs in order.
fn run_subgraph(plan: &Plan, inputs: Vec<Value>) -> Result<Vec<Value>, BackendError> {
    if inputs.len() != plan.input_slots.len() {
        return Err(BackendError::new(format!(
            "the subgraph takes {} values, got {}",
            plan.input_slots.len(),
            inputs.len()
        )));
    }
    let mut env: Vec<Option<Value>> = vec![None; plan.n_slots];
    for (slot, v) in &plan.constants {
        env[*slot] = Some(v.clone());
    }
    for (v, &slot) in inputs.into_iter().zip(&plan.input_slots) {
        env[slot] = Some(v);
    }
    let mut current = None;
    execute(plan, &mut env, &mut current)?;
    plan.outputs
        .iter()
        .zip(&plan.output_slots)
        .map(|(spec, &slot)| {
            env[slot].clone().ok_or_else(|| {
                BackendError::new(format!("subgraph output `{}` was not computed", spec.name))
            })
        })
        .collect()
}

fn execute(
    plan: &Plan,
    env: &mut [Option<Value>],
    current: &mut Option<usize>,
) -> Result<(), BackendError> {
    for (si, step) in plan.steps.iter().enumerate() {
        *current = Some(si);
        let args: Vec<Option<&Value>> = step
            .inputs
            .iter()
            .map(|s| s.and_then(|s| env[s].as_ref()))
            .collect();
        if !takes_sequences(&step.op_type) && args.iter().flatten().any(|v| v.seq.is_some()) {
            return Err(BackendError::new(format!(
                "{} (node `{}`) was given a sequence where it takes tensors",
                step.op_type, step.label
            )));
        }
        let outs = step
            .op
            .run(&args)
            .map_err(|e| e.into_backend(&step.op_type, &step.label))?;
        for (i, slot) in step.outputs.iter().enumerate() {
            let Some(slot) = slot else { continue };
            let v = outs.get(i).cloned().ok_or_else(|| {
                BackendError::new(format!(
                    "{} (node `{}`) produced no output {i}",
                    step.op_type, step.label
                ))
            })?;
            // Later ops (index_select, index_add, reshape views) want contiguous data.
            let t = contiguous(v.t).map_err(|e| e.into_backend(&step.op_type, &step.label))?;
            env[*slot] = Some(Value { t, ..v });
        }
        for &s in &step.free_after {
            env[s] = None;
        }
    }
    *current = None;
    Ok(())
}

/// Ops that may be given a sequence: the sequence ops, Identity, and If and Loop, whose
/// subgraphs take and give values as they are (Loop refuses a sequence scan output).
fn takes_sequences(op_type: &str) -> bool {
    op_type.starts_with("Sequence")
        || matches!(op_type, "ConcatFromSequence" | "Identity" | "If" | "Loop")
}
