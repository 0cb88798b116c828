//! `parity bisect`: where do two runs of a model start to diverge? Two backends on one
//! model, or one backend on two versions of a model whose node output names match.
//!
//! Every top-level node output whose element type is known is exposed as a graph output
//! ([`expose`]), in chunks when needed ([`run`]); both sides run the same inputs; each
//! value is compared with the reference side as the expected one, and the walk in
//! topological order ([`compare`]) names the first node out of tolerance whose inputs
//! agree (or, `--cumulative`, the first out of tolerance at all). See docs/bisect.md.

pub mod compare;
pub mod expose;
pub mod report;
pub mod run;
mod types;

use crate::backend::LoadOptions;
use crate::compare::Tolerance;
use crate::error::{Error, Result};
use crate::suite::runner::run_guarded;
use crate::tensor::Tensor;
use compare::{Attribution, Mode};
use run::{ChunkPlan, Measured, Side};
use std::collections::{HashMap, HashSet};

/// Everything one bisection needs.
pub struct Request<'a> {
    /// The side under test.
    pub candidate: Side<'a>,
    /// The side whose values are the expected ones.
    pub reference: Side<'a>,
    /// Model inputs by name, fed to both sides.
    pub inputs: Vec<(String, Tensor)>,
    /// `--atol`, overriding the dtype default of every value.
    pub atol: Option<f64>,
    /// `--rtol`, overriding the dtype default of every value.
    pub rtol: Option<f64>,
    /// How many values each run exposes.
    pub plan: ChunkPlan,
    /// Which node is the first divergence.
    pub mode: Mode,
    /// Threads for both engines.
    pub load: LoadOptions,
}

/// What a bisection found.
pub struct Outcome {
    /// Every node judged, and the first divergence.
    pub attribution: Attribution,
    /// Runs per side (chunks, retries included), not counting the first full-model run.
    pub runs: usize,
    /// Values compared.
    pub compared: usize,
    /// Values exposed (compared or failed).
    pub exposed: usize,
    /// Initializers whose contents differ between the two model versions.
    pub changed_initializers: Vec<String>,
}

/// Runs the bisection. Errors: a side that cannot run the model as it is (exit 2).
pub fn bisect(req: &Request) -> Result<Outcome> {
    for side in [&req.candidate, &req.reference] {
        preflight(side, &req.inputs, &req.load)?;
    }
    let same_model = std::ptr::eq(req.candidate.model, req.reference.model);
    let in_reference: HashSet<&str> = req
        .reference
        .model
        .nodes()
        .iter()
        .flat_map(|n| n.outputs.iter().map(String::as_str))
        .collect();
    let mut values = Vec::new();
    let mut missing = HashMap::new();
    for name in req.candidate.model.nodes().iter().flat_map(|n| &n.outputs) {
        let typed = |m: &expose::Exposable| m.dtype(name).is_some();
        if !in_reference.contains(name.as_str()) {
            missing.insert(
                name.clone(),
                "no node of the reference model produces it".to_string(),
            );
        } else if !typed(req.candidate.model) || !(same_model || typed(req.reference.model)) {
            missing.insert(
                name.clone(),
                "not exposed: its element type is unknown or not numeric".to_string(),
            );
        } else {
            values.push(name.clone());
        }
    }
    if values.is_empty() {
        return Err(Error::file(
            req.candidate.model.path(),
            "no node output can be exposed and matched with the reference",
        ));
    }
    let (atol, rtol) = (req.atol, req.rtol);
    let tolerance = move |t: &Tensor| {
        let d = Tolerance::default_for(t.dtype());
        Tolerance {
            atol: atol.unwrap_or(d.atol),
            rtol: rtol.unwrap_or(d.rtol),
        }
    };
    let measured = run::measure(
        &req.candidate,
        &req.reference,
        &req.inputs,
        &values,
        req.plan,
        &tolerance,
        &req.load,
    )?;
    let compared = measured
        .values
        .values()
        .filter(|m| matches!(m, Measured::Compared(_)))
        .count();
    if compared == 0 {
        let why = measured.values.values().find_map(|m| match m {
            Measured::Failed(why) => Some(why.clone()),
            Measured::Compared(_) => None,
        });
        return Err(Error::Usage(format!(
            "no intermediate value could be compared: {}",
            why.unwrap_or_default()
        )));
    }
    let attribution = compare::attribute(
        req.candidate.model.nodes(),
        &measured.values,
        &missing,
        req.mode,
    );
    Ok(Outcome {
        attribution,
        runs: measured.runs,
        compared,
        exposed: values.len(),
        changed_initializers: if same_model {
            Vec::new()
        } else {
            req.candidate
                .model
                .changed_initializers(req.reference.model)
        },
    })
}

/// Loads and runs a side's model as it is, so a model or input the backend cannot take
/// is an error of the run (exit 2) before any chunk is tried.
fn preflight(side: &Side, inputs: &[(String, Tensor)], load: &LoadOptions) -> Result<()> {
    let name = side.backend.name();
    let path = side.model.path();
    let fail = |msg: String| Error::file(path, format!("{name} cannot run it: {msg}"));
    let mut session = side.backend.load(path, load).map_err(|e| fail(e.message))?;
    let mut ordered = Vec::new();
    for spec in session.inputs() {
        let t = inputs
            .iter()
            .find(|(n, _)| *n == spec.name)
            .ok_or_else(|| fail(format!("no input tensor named `{}` was given", spec.name)))?;
        ordered.push(t.1.clone());
    }
    run_guarded(session.as_mut(), &ordered).map_err(|e| fail(e.message))?;
    Ok(())
}
