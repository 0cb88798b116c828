//! `parity fuzz --save DIR`: each case with a finding becomes a suite (ONNX backend-test
//! layout plus `parity.toml`, written atomically by the `record` writer) whose inputs
//! are the case's and whose expected outputs are the reference's (or, when the reference
//! produced none, the first backend's that did), so `parity check` replays it.

use super::run::CaseResult;
use crate::backend::Selected;
use crate::error::{Error, Result};
use crate::formats::onnx_model::ModelInfo;
use crate::suite::record::{self, GoldenSource, InputSet, RecordOptions};
use std::path::{Path, PathBuf};

/// What a fuzz run saves with: the model, the run's seed and tolerances.
pub struct SaveContext<'a> {
    pub dir: &'a Path,
    pub model: &'a Path,
    pub info: &'a ModelInfo,
    pub seed: u64,
    pub backends: &'a [Selected],
    pub atol: Option<f64>,
    pub rtol: Option<f64>,
}

/// The outputs to mark `finite = true`: those of the reference that went non-finite
/// from finite inputs (with the expected value NaN, plain comparison would pass).
fn finite_outputs(result: &CaseResult) -> Vec<String> {
    if !result.case.finite_inputs() {
        return Vec::new();
    }
    let Some(produced) = result.results.first().and_then(|r| r.produced.as_ref()) else {
        return Vec::new();
    };
    produced
        .iter()
        .filter(|(_, t)| t.dtype().is_float() && (0..t.numel()).any(|i| !t.get_f64(i).is_finite()))
        .map(|(n, _)| n.clone())
        .collect()
}

/// Writes `result` as the suite `DIR/CASE_RECIPE`; returns its path and the writer's
/// warnings (NaN/Inf in the expected outputs). `Ok(None)` when no backend produced
/// outputs to serve as expected values.
pub fn save(ctx: &SaveContext, result: &CaseResult) -> Result<Option<(PathBuf, Vec<String>)>> {
    let Some(run) = result.results.iter().find(|r| r.produced.is_some()) else {
        return Ok(None);
    };
    let Some(produced) = &run.produced else {
        return Ok(None);
    };
    let mut ordered = Vec::with_capacity(ctx.info.outputs.len());
    for spec in &ctx.info.outputs {
        let Some((_, t)) = produced.iter().find(|(n, _)| *n == spec.name) else {
            return Ok(None);
        };
        ordered.push((spec.name.clone(), t.clone()));
    }
    let selected = ctx
        .backends
        .iter()
        .find(|s| s.backend.name() == run.backend)
        .ok_or_else(|| Error::Usage(format!("backend {} was not selected", run.backend)))?;
    // `random(x=max,ids=zeros)` → `random-x-max-ids-zeros`: a plain directory name.
    let recipe = result
        .case
        .recipe
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let out = ctx.dir.join(format!("{}_{recipe}", result.case.case));
    let set = InputSet {
        origin: format!("parity fuzz {}", result.case.case),
        verbatim: vec![None; result.tensors.len()],
        tensors: result.tensors.clone(),
    };
    let source = GoldenSource {
        backend_version: selected.version.clone(),
        device: selected.device.clone(),
        inputs: format!(
            "parity fuzz case {} ({}), seed {}",
            result.case.case, result.case.recipe, ctx.seed
        ),
        finite_outputs: finite_outputs(result),
        carry: Default::default(),
    };
    let options = RecordOptions {
        backend: run.backend.clone(),
        load: Default::default(),
        atol: ctx.atol,
        rtol: ctx.rtol,
        force: true,
        calibrate: None,
        sequence: None,
    };
    let recorded = record::write_suite(
        ctx.model,
        &out,
        ctx.info,
        std::slice::from_ref(&set),
        &vec![ordered],
        &source,
        &options,
    )?;
    Ok(Some((recorded.dir, recorded.warnings)))
}
