//! `parity record`: make a golden suite from a model. Inputs are reused from existing
//! suites, data-set directories or `.npz`/`.safetensors` files, or generated from the
//! model's input schema; one backend computes the expected outputs; the suite is written
//! in the ONNX backend-test layout with a `parity.toml` holding the tolerances used, the
//! provenance and the sha256 of every file.
//!
//! Writing is atomic: the suite is built in a hidden directory next to `--out` and
//! moved into place only when complete; an existing suite is replaced only with
//! `force`, in one atomic exchange (see `super::staging`).
//!
//! Generated inputs are deterministic: each (data set, input) pair draws from its own
//! SplitMix64 stream derived from the seed, so the same seed, shapes and parity version
//! give the same bytes on every machine.
//!
//! One job per module: [`dims`] (`--dim` values and concrete input shapes),
//! [`inputs`] (inputs read from files), [`generate`](mod@generate) (inputs drawn from the schema),
//! [`write`](mod@write) (the data files and `parity.toml`), [`calibrate`] (`--calibrate`); this
//! module runs the backend and puts a suite together; `super::staging` moves it into place.

pub mod calibrate;
pub mod dims;
pub mod generate;
pub mod generation;
pub mod inputs;
pub mod propose;
pub mod sequence;
pub mod write;

use super::manifest::{Calibration, Provenance, MANIFEST_FILE};
use super::staging::{self, Staging};
use super::DATA_SET_PREFIX;
use crate::backend::{self, IoSpec, LoadOptions};
use crate::compare::Tolerance;
use crate::error::{Error, Result};
use crate::formats::{self, onnx_model, onnx_model::ModelInfo};
use crate::report::Environment;
use crate::tensor::{Tensor, TensorError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use dims::DimValue;
pub use generate::{generate, INT_HIGH};
pub use inputs::{load_inputs, InputPlan, InputSet};
use write::{manifest_text, write_data, write_synced, ManifestTables};

/// The largest tensor a `.pb` file can hold (protobuf messages stop at 2 GiB).
pub(crate) const MAX_TENSOR_BYTES: usize = (2 << 30) - 1024;

/// How to record: the backend whose outputs become the goldens, and what to write.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// Backend name (`ort-cpu`); it must be available, nothing falls back.
    pub backend: String,
    /// Passed to the backend.
    pub load: LoadOptions,
    /// Written as every output's atol instead of the dtype default.
    pub atol: Option<f64>,
    /// Written as every output's rtol instead of the dtype default.
    pub rtol: Option<f64>,
    /// Replace an existing suite at the destination.
    pub force: bool,
    /// Calibrate the tolerances with this margin over the worst observed natural
    /// error (`--calibrate`), instead of writing the dtype defaults or `atol`/`rtol`.
    pub calibrate: Option<f64>,
    /// `--sequence`: record the data sets as consecutive steps of one stream.
    pub sequence: Option<SequencePlan>,
}

/// How the steps of a stateful suite are chained.
#[derive(Debug, Clone)]
pub enum SequencePlan {
    /// Inferred from the model's names, dtypes and dims ([`sequence::infer`]).
    Infer,
    /// Named by the user (`--carry OUT=IN`): output → input.
    Carry(BTreeMap<String, String>),
}

/// What `record` wrote.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The suite directory.
    pub dir: PathBuf,
    /// Number of data sets written.
    pub data_sets: usize,
    /// The `[provenance]` table written.
    pub provenance: Provenance,
    /// Things the user should know (NaN/Inf in goldens, an old suite left behind).
    pub warnings: Vec<String>,
    /// The tolerance written for each output.
    pub tolerances: BTreeMap<String, Tolerance>,
    /// Output → backend → the backend's own tolerance (`--calibrate`), written under
    /// `[outputs.NAME.backends]`.
    pub per_backend: BTreeMap<String, BTreeMap<String, Tolerance>>,
    /// The evidence of `--calibrate`.
    pub calibration: Option<Calibration>,
    /// `--sequence`: the carry map written under `[sequence.carry]` (output → input).
    pub carry: BTreeMap<String, String>,
}

/// Records a golden suite for `model` at `out`.
pub fn record(
    model: &Path,
    out: &Path,
    plan: &InputPlan,
    options: &RecordOptions,
) -> Result<Recorded> {
    staging::prepare_destination(out, options.force)?;
    let info = onnx_model::inspect(model)?;
    let sets = match plan {
        InputPlan::Reuse(paths) => load_inputs(&info, paths)?,
        InputPlan::Random { count, seed, dims } => {
            generate(&info, *count, *seed, dims).map_err(|msg| Error::file(model, msg))?
        }
    };
    if sets.is_empty() {
        return Err(Error::Usage(
            "no data sets to record (give --inputs PATH or --random N with N ≥ 1)".to_string(),
        ));
    }
    for set in &sets {
        backend::check_inputs(&info.inputs, &set.tensors).map_err(|e| {
            Error::file(model, format!("inputs from {}: {}", set.origin, e.message))
        })?;
    }
    let carry = match &options.sequence {
        None => BTreeMap::new(),
        Some(SequencePlan::Infer) => {
            sequence::infer(&info.inputs, &info.outputs).map_err(|msg| Error::file(model, msg))?
        }
        Some(SequencePlan::Carry(map)) => {
            sequence::validate(map, &info.inputs, &info.outputs)
                .map_err(|msg| Error::file(model, msg))?;
            map.clone()
        }
    };
    let mut sets = sets;
    if matches!(plan, InputPlan::Random { .. }) {
        // A generated stream starts from a zero state, as streaming models do.
        for input in carry.values() {
            if let Some(i) = info.inputs.iter().position(|s| &s.name == input) {
                let t = &sets[0].tensors[i];
                sets[0].tensors[i] =
                    Tensor::from_bytes(t.dtype(), t.shape().to_vec(), vec![0; t.bytes().len()])
                        .map_err(|e| Error::file(model, e.to_string()))?;
            }
        }
    }
    let (outputs, selected_version, selected_device) =
        run_backend(model, &info, &sets, &carry, options)?;
    // The data sets hold what each step was fed: the carried state of the step before.
    let carried: Vec<usize> = carry
        .values()
        .filter_map(|input| info.inputs.iter().position(|s| &s.name == input))
        .collect();
    for n in 1..sets.len() {
        let set = &mut sets[n];
        super::carry_into(&carry, &info.inputs, &mut set.tensors, &outputs[n - 1])
            .map_err(|msg| Error::file(model, msg))?;
        for &i in &carried {
            set.verbatim[i] = None;
        }
    }
    let source = GoldenSource {
        backend_version: selected_version,
        device: selected_device,
        inputs: plan.describe(),
        finite_outputs: Vec::new(),
        carry,
    };
    write_suite(model, out, &info, &sets, &outputs, &source, options)
}

/// Who computed a suite's expected outputs, for `[provenance]` (the backend's name is
/// [`RecordOptions::backend`]).
#[derive(Debug, Clone)]
pub struct GoldenSource {
    /// The backend's engine version.
    pub backend_version: String,
    /// The device that ran it.
    pub device: String,
    /// Where the inputs came from, one line (`[provenance] inputs`).
    pub inputs: String,
    /// Outputs written with `finite = true` (NaN/Inf fails them even against a NaN/Inf
    /// golden).
    pub finite_outputs: Vec<String>,
    /// A stateful suite's carry map (output → input; empty: independent data sets).
    pub carry: BTreeMap<String, String>,
}

/// Writes a suite from inputs and expected outputs computed already: the second half of
/// [`record`], also used by `parity fuzz --save` to store a failing input with the
/// outputs its run produced. Same atomicity and `force` rules as `record`.
pub fn write_suite(
    model: &Path,
    out: &Path,
    info: &ModelInfo,
    sets: &[InputSet],
    outputs: &Outputs,
    source: &GoldenSource,
    options: &RecordOptions,
) -> Result<Recorded> {
    staging::prepare_destination(out, options.force)?;
    let model_bytes = formats::read_file(model)?;
    let mut warnings = non_finite_warnings(out, outputs);

    let provenance = provenance(&options.backend, source, &model_bytes);

    let staging = Staging::create(out)?;
    let files = write_data(staging.path(), &model_bytes, info, sets, outputs)?;
    let (tolerances, per_backend, calibration) = match options.calibrate {
        Some(margin) => {
            let c = calibrate::calibrate(
                model,
                info,
                sets,
                outputs,
                &options.backend,
                &options.load,
                margin,
            )?;
            warnings.extend(c.warnings);
            (c.tolerances, c.per_backend, Some(c.evidence))
        }
        None => (tolerances(info, outputs, options), BTreeMap::new(), None),
    };
    let manifest = manifest_text(&ManifestTables {
        tolerances: &tolerances,
        per_backend: &per_backend,
        finite: &source.finite_outputs,
        provenance: &provenance,
        files: &files,
        calibration: calibration.as_ref(),
        carry: &source.carry,
        generate: None,
    })?;
    write_synced(&staging.path().join(MANIFEST_FILE), manifest.as_bytes())?;
    warnings.extend(staging.commit(out, options.force)?);
    Ok(Recorded {
        dir: out.to_path_buf(),
        data_sets: sets.len(),
        provenance,
        warnings,
        tolerances,
        per_backend,
        calibration,
        carry: source.carry.clone(),
    })
}

/// The `[provenance]` of goldens computed now by `backend` on this machine.
fn provenance(backend: &str, source: &GoldenSource, model_bytes: &[u8]) -> Provenance {
    let env = Environment::detect(Vec::new());
    Provenance {
        parity_version: Some(env.parity),
        backend: Some(backend.to_string()),
        backend_version: Some(source.backend_version.clone()),
        device: Some(source.device.clone()),
        host: Some(env.host),
        cpu: Some(env.cpu),
        gpu: env.gpu,
        os: Some(env.os),
        date: Some(crate::time::iso8601_utc(SystemTime::now())),
        model_sha256: Some(onnx_model::sha256_hex(model_bytes)),
        inputs: Some(source.inputs.clone()),
    }
}

/// Outputs of every data set, in model output order.
pub type Outputs = Vec<Vec<(String, Tensor)>>;

/// Runs the recording backend on every data set.
fn run_backend(
    model: &Path,
    info: &ModelInfo,
    sets: &[InputSet],
    carry: &BTreeMap<String, String>,
    options: &RecordOptions,
) -> Result<(Outputs, String, String)> {
    let mut selected =
        crate::interrupt::observe(backend::select(std::slice::from_ref(&options.backend))?);
    let selected = selected
        .pop()
        .ok_or_else(|| Error::Usage(format!("backend {} was not selected", options.backend)))?;
    let name = selected.backend.name();
    let mut session = selected.backend.load(model, &options.load).map_err(|e| {
        Error::file(
            model,
            format!("{name} cannot load the model: {}", e.message),
        )
    })?;
    let all = run_all(session.as_mut(), info, sets, carry, |t| Ok(t.clone()))
        .map_err(|msg| Error::file(model, format!("{name} failed {msg}")))?;
    Ok((all, selected.version, selected.device))
}

/// Runs `session` on every data set (each input passed through `prepare` first) and
/// orders its outputs as the model declares them; with a `carry` map (a stateful suite)
/// each data set after the first takes the carried inputs from the outputs before. The
/// error says which data set failed and why, to follow "BACKEND failed ".
pub(super) fn run_all(
    session: &mut dyn backend::Session,
    info: &ModelInfo,
    sets: &[InputSet],
    carry: &BTreeMap<String, String>,
    prepare: impl Fn(&Tensor) -> std::result::Result<Tensor, TensorError>,
) -> std::result::Result<Outputs, String> {
    let mut all: Outputs = Vec::with_capacity(sets.len());
    for (n, set) in sets.iter().enumerate() {
        let on_set = |msg: String| format!("on data set {n} (inputs from {}): {msg}", set.origin);
        let mut inputs = set
            .tensors
            .iter()
            .map(&prepare)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| on_set(e.to_string()))?;
        if let Some(previous) = all.last().filter(|_| !carry.is_empty()) {
            super::carry_into(carry, &info.inputs, &mut inputs, previous).map_err(on_set)?;
        }
        let produced =
            super::runner::run_guarded(session, &inputs).map_err(|e| on_set(e.message))?;
        let mut ordered = Vec::with_capacity(info.outputs.len());
        for spec in &info.outputs {
            let tensor = produced
                .iter()
                .find(|(o, _)| *o == spec.name)
                .map(|(_, t)| t.clone())
                .ok_or_else(|| on_set(format!("no output `{}`", spec.name)))?;
            // Rank and fixed dims as declared; not the dtype, which the f64 oracle's run
            // (calibration) widens on purpose.
            let shape_only = IoSpec {
                dtype: None,
                ..spec.clone()
            };
            backend::check_tensor("output", &shape_only, &tensor).map_err(|e| on_set(e.message))?;
            ordered.push((spec.name.clone(), tensor));
        }
        all.push(ordered);
    }
    Ok(all)
}

/// Warns about goldens holding NaN or ±Inf: valid (they match only the same value), but
/// most often a sign that generated inputs are outside the model's domain.
fn non_finite_warnings(out: &Path, outputs: &Outputs) -> Vec<String> {
    let mut warnings = Vec::new();
    for (n, set) in outputs.iter().enumerate() {
        for (k, (name, t)) in set.iter().enumerate() {
            if !t.dtype().is_float() {
                continue;
            }
            let bad = (0..t.numel())
                .filter(|&i| !t.get_f64(i).is_finite())
                .count();
            if bad > 0 {
                let file = out
                    .join(format!("{DATA_SET_PREFIX}{n}"))
                    .join(format!("output_{k}.pb"));
                warnings.push(format!(
                    "{}: output `{name}` holds {bad} NaN/Inf of {} values; recorded as they are (NaN matches only NaN)",
                    file.display(),
                    t.numel()
                ));
            }
        }
    }
    warnings
}

/// The tolerance written for each output: `--atol`/`--rtol`, else the dtype default.
fn tolerances(
    info: &ModelInfo,
    outputs: &Outputs,
    options: &RecordOptions,
) -> BTreeMap<String, Tolerance> {
    info.outputs
        .iter()
        .enumerate()
        .filter_map(|(k, spec)| {
            let dtype = outputs
                .first()
                .and_then(|o| o.get(k))
                .map(|(_, t)| t.dtype())?;
            let default = Tolerance::default_for(dtype);
            let tol = Tolerance {
                atol: options.atol.unwrap_or(default.atol),
                rtol: options.rtol.unwrap_or(default.rtol),
            };
            Some((spec.name.clone(), tol))
        })
        .collect()
}
