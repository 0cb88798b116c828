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

use super::integrity;
use super::manifest::{Calibration, Provenance, MANIFEST_FILE};
use super::staging::{self, Staging};
use super::{CaseFiles, DATA_SET_PREFIX, MODEL_FILE};
use crate::backend::{self, Dim, IoSpec, LoadOptions};
use crate::compare::Tolerance;
use crate::error::{Error, Result};
use crate::formats::{self, onnx_model, onnx_model::ModelInfo};
use crate::report::Environment;
use crate::tensor::{checked_nbytes, checked_numel, DType, Tensor, TensorError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Generated integers are drawn from `[0, INT_HIGH)`: integer inputs are most often
/// indices (token ids, gather positions), and small non-negative values are valid
/// indices into most tables. Wider ranges need `--inputs`.
pub const INT_HIGH: u64 = 10;

/// The largest tensor a `.pb` file can hold (protobuf messages stop at 2 GiB).
pub(crate) const MAX_TENSOR_BYTES: usize = (2 << 30) - 1024;

/// `--dim NAME=VALUE`: the size of a symbolic dimension (`batch=4`), or of an unnamed
/// dynamic axis given by position (`INPUT:AXIS=VALUE`, e.g. `x:0=4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimValue {
    /// The symbolic dim's name, or `INPUT:AXIS`.
    pub name: String,
    /// Its size, at least 1.
    pub value: usize,
}

impl std::str::FromStr for DimValue {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (name, value) = s
            .rsplit_once('=')
            .ok_or_else(|| format!("`{s}` is not NAME=VALUE (e.g. batch=4)"))?;
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{s}` has no dim name before `=`"));
        }
        match value.trim().parse::<usize>() {
            Ok(v) if v >= 1 => Ok(DimValue {
                name: name.to_string(),
                value: v,
            }),
            _ => Err(format!("`{s}`: the size must be an integer ≥ 1")),
        }
    }
}

impl std::fmt::Display for DimValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// Where the inputs of the recorded data sets come from.
#[derive(Debug, Clone)]
pub enum InputPlan {
    /// Reuse the inputs stored at these paths, in order (suite directories, data-set
    /// directories, `.npz`/`.safetensors` files).
    Reuse(Vec<PathBuf>),
    /// Generate `count` data sets from the model's input schema.
    Random {
        count: usize,
        seed: u64,
        dims: Vec<DimValue>,
    },
}

impl InputPlan {
    /// One line for `[provenance] inputs`.
    pub fn describe(&self) -> String {
        match self {
            InputPlan::Reuse(paths) => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                format!("reused from {}", paths.join(", "))
            }
            InputPlan::Random { seed, dims, .. } => {
                let mut s = format!("random (seed {seed}");
                if !dims.is_empty() {
                    let dims: Vec<String> = dims.iter().map(ToString::to_string).collect();
                    s += &format!(", dims {}", dims.join(" "));
                }
                s + ")"
            }
        }
    }
}

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
}

/// One data set's inputs, in model input order.
#[derive(Debug, Clone)]
pub struct InputSet {
    /// Where it came from, for messages (`models/mlp/test_data_set_0`, `random data set 2`).
    pub origin: String,
    /// The tensors, in model input order.
    pub tensors: Vec<Tensor>,
    /// For each tensor, the bytes of the `.pb` file it came from when that file can be
    /// copied as is (its stored name is the model input's), so reused inputs stay
    /// byte-identical.
    pub verbatim: Vec<Option<Vec<u8>>>,
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
    /// The evidence of `--calibrate`.
    pub calibration: Option<Calibration>,
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
    let (outputs, selected_version, selected_device) = run_backend(model, &info, &sets, options)?;
    let source = GoldenSource {
        backend_version: selected_version,
        device: selected_device,
        inputs: plan.describe(),
        finite_outputs: Vec::new(),
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

    let env = Environment::detect(Vec::new());
    let provenance = Provenance {
        parity_version: Some(env.parity),
        backend: Some(options.backend.clone()),
        backend_version: Some(source.backend_version.clone()),
        device: Some(source.device.clone()),
        host: Some(env.host),
        cpu: Some(env.cpu),
        gpu: env.gpu,
        os: Some(env.os),
        date: Some(iso8601_utc(SystemTime::now())),
        model_sha256: Some(onnx_model::sha256_hex(&model_bytes)),
        inputs: Some(source.inputs.clone()),
    };

    let staging = Staging::create(out)?;
    let files = write_data(staging.path(), &model_bytes, info, sets, outputs)?;
    let (tolerances, calibration) = match options.calibrate {
        Some(margin) => {
            let c = super::calibrate::calibrate(
                model,
                info,
                sets,
                outputs,
                &options.backend,
                &options.load,
                margin,
            )?;
            warnings.extend(c.warnings);
            (c.tolerances, Some(c.evidence))
        }
        None => (tolerances(info, outputs, options), None),
    };
    let manifest = manifest_text(
        &tolerances,
        &source.finite_outputs,
        &provenance,
        &files,
        calibration.as_ref(),
    )?;
    write_synced(&staging.path().join(MANIFEST_FILE), manifest.as_bytes())?;
    warnings.extend(staging.commit(out, options.force)?);
    Ok(Recorded {
        dir: out.to_path_buf(),
        data_sets: sets.len(),
        provenance,
        warnings,
        tolerances,
        calibration,
    })
}

/// Outputs of every data set, in model output order.
pub type Outputs = Vec<Vec<(String, Tensor)>>;

/// Runs the recording backend on every data set.
fn run_backend(
    model: &Path,
    info: &ModelInfo,
    sets: &[InputSet],
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
    let all = run_all(session.as_mut(), info, sets, |t| Ok(t.clone()))
        .map_err(|msg| Error::file(model, format!("{name} failed {msg}")))?;
    Ok((all, selected.version, selected.device))
}

/// Runs `session` on every data set (each input passed through `prepare` first) and
/// orders its outputs as the model declares them. The error says which data set failed
/// and why, to follow "BACKEND failed ".
pub(super) fn run_all(
    session: &mut dyn backend::Session,
    info: &ModelInfo,
    sets: &[InputSet],
    prepare: impl Fn(&Tensor) -> std::result::Result<Tensor, TensorError>,
) -> std::result::Result<Outputs, String> {
    let mut all = Vec::with_capacity(sets.len());
    for (n, set) in sets.iter().enumerate() {
        let on_set = |msg: String| format!("on data set {n} (inputs from {}): {msg}", set.origin);
        let inputs = set
            .tensors
            .iter()
            .map(&prepare)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| on_set(e.to_string()))?;
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

// ---------------------------------------------------------------------------------------
// Inputs from files

/// Reads the inputs of every data set stored at `paths`, matched to the model's inputs
/// by name. A source that lacks a model input, or holds an input the model does not
/// take, is an error naming it.
pub fn load_inputs(info: &ModelInfo, paths: &[PathBuf]) -> Result<Vec<InputSet>> {
    let mut sets = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| Error::file(path, formats::io_problem(&e)))?;
        if meta.is_dir() && path.join(MODEL_FILE).is_file() {
            let suite = super::open(path)?;
            for case in &suite.cases {
                let origin = case_origin(path, &case.name);
                let named = read_case_inputs(&suite, &case.files)?;
                sets.push(match_inputs(info, named, origin)?);
            }
        } else if meta.is_dir() {
            let files = super::data_set_dir(path)?.ok_or_else(|| {
                Error::file(
                    path,
                    "holds neither model.onnx nor input_K files nor one .npz/.safetensors (expected a suite or a data-set directory)",
                )
            })?;
            let named = match &files {
                CaseFiles::Numbered { inputs, .. } => read_numbered_inputs(inputs, &info.inputs)?,
                CaseFiles::Archive(archive) => read_archive_inputs(archive, info)?,
            };
            sets.push(match_inputs(info, named, path.display().to_string())?);
        } else if matches!(
            formats::extension(path).as_deref(),
            Some("npz" | "safetensors")
        ) {
            let named = read_archive_inputs(path, info)?;
            sets.push(match_inputs(info, named, path.display().to_string())?);
        } else {
            return Err(Error::file(
                path,
                "not a suite, a data-set directory, or an .npz/.safetensors file",
            ));
        }
    }
    Ok(sets)
}

fn case_origin(suite: &Path, case: &str) -> String {
    suite.join(case).display().to_string()
}

/// An input read from a file: name, tensor, and the file's bytes when they can be copied.
type NamedInput = (String, Tensor, Option<Vec<u8>>);

/// The inputs of one data set of an existing suite, named after that suite's model.
/// Listed files are checked against the suite's `[files]` digests first.
fn read_case_inputs(suite: &super::Suite, files: &CaseFiles) -> Result<Vec<NamedInput>> {
    match files {
        CaseFiles::Numbered { inputs, .. } => {
            for path in inputs {
                verify_listed(suite, path)?;
            }
            read_numbered_inputs(inputs, &suite.info.inputs)
        }
        CaseFiles::Archive(path) => {
            verify_listed(suite, path)?;
            read_archive_inputs(path, &suite.info)
        }
    }
}

/// Checks a source file's sha256 when the source suite's `[files]` lists it.
fn verify_listed(suite: &super::Suite, path: &Path) -> Result<()> {
    let Some(key) = integrity::relative_key(&suite.dir, path) else {
        return Ok(());
    };
    match suite.manifest.files.get(&key) {
        Some(recorded) => integrity::verify_file(&suite.dir, &key, recorded),
        None => Ok(()),
    }
}

/// `input_K` files named after the K-th of `specs`; a `.pb` whose stored name is that
/// name keeps its bytes for a verbatim copy.
fn read_numbered_inputs(files: &[PathBuf], specs: &[IoSpec]) -> Result<Vec<NamedInput>> {
    let mut named = Vec::with_capacity(files.len());
    for (k, path) in files.iter().enumerate() {
        let spec = specs.get(k).ok_or_else(|| {
            Error::file(path, format!("the model has only {} inputs", specs.len()))
        })?;
        if formats::extension(path).as_deref() == Some("pb") {
            let bytes = formats::read_file(path)?;
            let (stored, tensor) = formats::pb::decode(&bytes, path)?;
            match stored {
                Some(s) if s != spec.name => {
                    return Err(Error::file(
                        path,
                        format!("holds tensor `{s}` but model input {k} is `{}`", spec.name),
                    ))
                }
                Some(_) => named.push((spec.name.clone(), tensor, Some(bytes))),
                None => named.push((spec.name.clone(), tensor, None)),
            }
        } else {
            let (_, tensor) = formats::read_tensor(path)?;
            named.push((spec.name.clone(), tensor, None));
        }
    }
    Ok(named)
}

/// The inputs of an archive keyed by name: keys naming a model output (the old expected
/// outputs of a data set) are skipped, keys naming neither are an error.
fn read_archive_inputs(path: &Path, info: &ModelInfo) -> Result<Vec<NamedInput>> {
    let mut named = Vec::new();
    for (name, tensor) in formats::read_tensor_map(path)? {
        if info.inputs.iter().any(|s| s.name == name) {
            named.push((name, tensor, None));
        } else if !info.outputs.iter().any(|s| s.name == name) {
            return Err(Error::file(
                path,
                format!("holds `{name}`, which is neither an input nor an output of the model"),
            ));
        }
    }
    Ok(named)
}

/// Puts named inputs into the recorded model's input order.
fn match_inputs(info: &ModelInfo, mut named: Vec<NamedInput>, origin: String) -> Result<InputSet> {
    let mut tensors = Vec::with_capacity(info.inputs.len());
    let mut verbatim = Vec::with_capacity(info.inputs.len());
    for spec in &info.inputs {
        let pos = named
            .iter()
            .position(|(n, _, _)| *n == spec.name)
            .ok_or_else(|| {
                Error::file(&origin, format!("no data for model input `{}`", spec.name))
            })?;
        let (_, tensor, bytes) = named.swap_remove(pos);
        tensors.push(tensor);
        verbatim.push(bytes);
    }
    if let Some((extra, _, _)) = named.first() {
        return Err(Error::file(
            &origin,
            format!("holds input `{extra}`, which the recorded model does not take"),
        ));
    }
    Ok(InputSet {
        origin,
        tensors,
        verbatim,
    })
}

// ---------------------------------------------------------------------------------------
// Generated inputs

/// Generates `count` data sets from the model's declared inputs: floats standard normal,
/// integers uniform in `[0, INT_HIGH)`, bools 50/50. Symbolic dims take their size from
/// `dims` (`batch=2`); unnamed dynamic axes from `INPUT:AXIS=N`. Errors are one line
/// naming the input and the dim (the caller adds the model path).
pub fn generate(
    info: &ModelInfo,
    count: usize,
    seed: u64,
    dims: &[DimValue],
) -> std::result::Result<Vec<InputSet>, String> {
    let shapes = resolve_shapes(&info.inputs, dims)?;
    let mut sets = Vec::with_capacity(count);
    for n in 0..count {
        let mut tensors = Vec::with_capacity(shapes.len());
        for (k, (spec, (dtype, shape))) in info.inputs.iter().zip(&shapes).enumerate() {
            let mut rng = SplitMix64::stream(seed, n as u64, k as u64);
            let tensor = random_tensor(*dtype, shape.clone(), &mut rng)
                .map_err(|e| format!("input `{}`: {e}", spec.name))?;
            tensors.push(tensor);
        }
        sets.push(InputSet {
            origin: format!("random data set {n}"),
            verbatim: vec![None; tensors.len()],
            tensors,
        });
    }
    Ok(sets)
}

/// The dtype and concrete shape of every input, or why one cannot be generated.
fn resolve_shapes(
    specs: &[IoSpec],
    dims: &[DimValue],
) -> std::result::Result<Vec<(DType, Vec<usize>)>, String> {
    let mut given: BTreeMap<&str, usize> = BTreeMap::new();
    for d in dims {
        if let Some(old) = given.insert(&d.name, d.value) {
            if old != d.value {
                return Err(format!(
                    "--dim {} is given twice ({old} and {})",
                    d.name, d.value
                ));
            }
        }
    }
    // Every --dim must name something the model has.
    let symbolic: Vec<&str> = specs
        .iter()
        .flat_map(|s| s.dims.iter().flatten())
        .filter_map(|d| match d {
            Dim::Symbolic(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
    for name in given.keys() {
        if symbolic.contains(name) {
            continue;
        }
        let positional = name.rsplit_once(':').and_then(|(input, axis)| {
            let axis: usize = axis.parse().ok()?;
            let spec = specs.iter().find(|s| s.name == input)?;
            Some((spec, axis))
        });
        match positional {
            // Any dynamic axis may be sized by position, whatever its dim_param (two
            // axes both named `?` are two different sizes).
            Some((spec, axis)) => match spec.dims.as_ref().and_then(|d| d.get(axis)) {
                Some(Dim::Unknown | Dim::Symbolic(_)) => {}
                Some(Dim::Fixed(f)) => {
                    return Err(format!(
                        "--dim {name}: axis {axis} of input `{}` is fixed at {f}",
                        spec.name
                    ))
                }
                None => {
                    return Err(format!(
                        "--dim {name}: input `{}` has no axis {axis}",
                        spec.name
                    ))
                }
            },
            None => {
                let mut known: Vec<&str> = symbolic.clone();
                known.sort_unstable();
                known.dedup();
                let known = if known.is_empty() {
                    "the model has no symbolic dims".to_string()
                } else {
                    format!("its symbolic dims: {}", known.join(", "))
                };
                return Err(format!("--dim {name}: the model has no such dim ({known})"));
            }
        }
    }
    specs
        .iter()
        .map(|spec| {
            let dtype = spec.dtype.ok_or_else(|| {
                format!(
                    "input `{}` is not a numeric or bool tensor; give its data with --inputs",
                    spec.name
                )
            })?;
            let declared = spec.dims.as_ref().ok_or_else(|| {
                format!(
                    "input `{}` declares no shape (rank unknown); give its data with --inputs",
                    spec.name
                )
            })?;
            let mut shape = Vec::with_capacity(declared.len());
            for (axis, d) in declared.iter().enumerate() {
                let key = format!("{}:{axis}", spec.name);
                // By position first: it names exactly this axis.
                let by_position = given.get(key.as_str()).copied();
                shape.push(match d {
                    Dim::Fixed(n) => *n,
                    Dim::Symbolic(s) => by_position
                        .or_else(|| given.get(s.as_str()).copied())
                        .ok_or_else(|| {
                            format!(
                                "input `{}` axis {axis} is the symbolic dim `{s}`; give --dim {s}=N (every axis named `{s}`) or --dim {key}=N (this axis)",
                                spec.name
                            )
                        })?,
                    Dim::Unknown => by_position.ok_or_else(|| {
                        format!(
                            "input `{}` axis {axis} is dynamic without a name; give --dim {key}=N",
                            spec.name
                        )
                    })?,
                });
            }
            match checked_nbytes(dtype, &shape) {
                Some(n) if n <= MAX_TENSOR_BYTES => Ok((dtype, shape)),
                _ => Err(format!(
                    "input `{}` of shape {shape:?} ({dtype}) is larger than the 2 GiB a .pb file holds",
                    spec.name
                )),
            }
        })
        .collect()
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for test inputs.
/// Self-contained so that recorded inputs never change with a dependency's version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The stream of input `k` of data set `n`: independent of the other inputs' shapes,
    /// so adding an input or changing one's dims leaves the others' values alone.
    pub fn stream(seed: u64, n: u64, k: u64) -> Self {
        let mut mix = SplitMix64::new(seed);
        let a = mix.next_u64();
        let mut mix = SplitMix64::new(a ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
        let b = mix.next_u64();
        let mut mix = SplitMix64::new(b ^ k.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7));
        SplitMix64::new(mix.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `n` standard normal values (Box–Muller, both values of each pair used).
    pub fn normals(&mut self, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            let u1 = 1.0 - self.unit(); // (0, 1]: ln never sees 0
            let u2 = self.unit();
            let r = (-2.0 * u1.ln()).sqrt();
            let theta = std::f64::consts::TAU * u2;
            out.push(r * theta.cos());
            out.push(r * theta.sin());
        }
        out.truncate(n);
        out
    }
}

/// One generated tensor of `dtype` and `shape`.
fn random_tensor(
    dtype: DType,
    shape: Vec<usize>,
    rng: &mut SplitMix64,
) -> std::result::Result<Tensor, TensorError> {
    let n = checked_numel(&shape).ok_or_else(|| TensorError::Overflow(shape.clone()))?;
    if dtype.is_float() {
        if let Some(t) = Tensor::from_f64_values(dtype, shape.clone(), rng.normals(n)) {
            return t;
        }
    }
    macro_rules! ints {
        ($t:ty) => {
            Tensor::from_vec::<$t>(
                shape,
                (0..n).map(|_| (rng.next_u64() % INT_HIGH) as $t).collect(),
            )
        };
    }
    match dtype {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
            unreachable!("float tensors are built above")
        }
        DType::I8 => ints!(i8),
        DType::I16 => ints!(i16),
        DType::I32 => ints!(i32),
        DType::I64 => ints!(i64),
        DType::U8 => ints!(u8),
        DType::U16 => ints!(u16),
        DType::U32 => ints!(u32),
        DType::U64 => ints!(u64),
        DType::Bool => {
            let values: Vec<bool> = (0..n).map(|_| rng.next_u64() >> 63 == 1).collect();
            Tensor::from_bools(shape, &values)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Writing

/// Writes `model.onnx` and every data set into `dir`; returns `[files]`: relative path →
/// sha256 of the bytes on disk.
fn write_data(
    dir: &Path,
    model_bytes: &[u8],
    info: &ModelInfo,
    sets: &[InputSet],
    outputs: &Outputs,
) -> Result<BTreeMap<String, String>> {
    let model_path = dir.join(MODEL_FILE);
    write_synced(&model_path, model_bytes)?;
    // Tensor writers create private (0600) temporary files; give the data files the
    // mode of a file created normally here (umask honoured), like model.onnx.
    let mode = std::fs::metadata(&model_path)
        .map_err(|e| Error::file(&model_path, formats::io_problem(&e)))?
        .permissions();
    let mut files = BTreeMap::new();
    files.insert(MODEL_FILE.to_string(), onnx_model::sha256_hex(model_bytes));
    for (n, (set, produced)) in sets.iter().zip(outputs).enumerate() {
        let case = format!("{DATA_SET_PREFIX}{n}");
        let case_dir = dir.join(&case);
        std::fs::create_dir(&case_dir)
            .map_err(|e| Error::file(&case_dir, formats::io_problem(&e)))?;
        let mut written = Vec::new();
        for (k, (spec, tensor)) in info.inputs.iter().zip(&set.tensors).enumerate() {
            let file = format!("input_{k}.pb");
            let path = case_dir.join(&file);
            match set.verbatim.get(k).and_then(Option::as_ref) {
                Some(bytes) => write_synced(&path, bytes)?,
                None => formats::write_tensor(&path, &spec.name, tensor)?,
            }
            written.push((format!("{case}/{file}"), path));
        }
        for (k, (name, tensor)) in produced.iter().enumerate() {
            let file = format!("output_{k}.pb");
            let path = case_dir.join(&file);
            formats::write_tensor(&path, name, tensor)?;
            written.push((format!("{case}/{file}"), path));
        }
        for (key, path) in written {
            std::fs::set_permissions(&path, mode.clone())
                .map_err(|e| Error::file(&path, formats::io_problem(&e)))?;
            files.insert(key, integrity::sha256_file(&path)?);
        }
    }
    Ok(files)
}

/// `parity.toml` as written by `record`.
#[derive(Serialize)]
struct ManifestOut<'a> {
    outputs: BTreeMap<&'a str, OutputOut>,
    provenance: &'a Provenance,
    files: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    calibration: Option<&'a Calibration>,
}

/// One `[outputs.NAME]` table as written.
#[derive(Serialize)]
struct OutputOut {
    atol: f64,
    rtol: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    finite: Option<bool>,
}

/// The manifest text: a header saying what each table is for, then the tables.
/// Outputs named in `finite` get `finite = true`.
fn manifest_text(
    tolerances: &BTreeMap<String, Tolerance>,
    finite: &[String],
    provenance: &Provenance,
    files: &BTreeMap<String, String>,
    calibration: Option<&Calibration>,
) -> Result<String> {
    let body = toml::to_string(&ManifestOut {
        outputs: tolerances
            .iter()
            .map(|(k, v)| {
                let out = OutputOut {
                    atol: v.atol,
                    rtol: v.rtol,
                    finite: finite.contains(k).then_some(true),
                };
                (k.as_str(), out)
            })
            .collect(),
        provenance,
        files,
        calibration,
    })
    .map_err(|e| Error::Usage(format!("cannot write parity.toml: {e}")))?;
    Ok(format!(
        "# Golden suite written by `parity record`.\n\
         # [outputs.NAME]  tolerances `parity check` applies to each output (the dtype defaults\n\
         #                 when recorded, --atol/--rtol, or calibrated); edit to loosen or tighten.\n\
         # [provenance]    what produced the expected outputs, where and when.\n\
         # [files]         sha256 of every file; `parity check` refuses a data file that\n\
         #                 changed and warns when model.onnx is not the recorded model.\n\
         # [calibration]   with --calibrate: how [outputs] were derived and the errors measured\n\
         #                 per backend and against the f64 oracle (informative).\n\n{body}"
    ))
}

/// Creates `path` with `bytes` and flushes it to disk (the suite directory as a whole is
/// what is renamed atomically, so files inside need no rename of their own).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let fail = |e: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let mut file = std::fs::File::create(path).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

/// `t` as UTC ISO 8601 with seconds (`2026-11-25T18:33:07Z`); times before 1970 print
/// as the epoch.
pub fn iso8601_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::manifest::{ErrorEvidence, Manifest, OutputEvidence};

    fn spec(name: &str, dtype: Option<DType>, dims: Option<Vec<Dim>>) -> IoSpec {
        IoSpec {
            name: name.to_string(),
            dtype,
            dims,
        }
    }

    fn info(inputs: Vec<IoSpec>) -> ModelInfo {
        ModelInfo {
            inputs,
            outputs: vec![spec("y", Some(DType::F32), Some(vec![Dim::Fixed(1)]))],
            opsets: Vec::new(),
            ops: BTreeMap::new(),
            size: 0,
            sha256: String::new(),
            producer: String::new(),
        }
    }

    fn dims(list: &[&str]) -> Vec<DimValue> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn sym(s: &str) -> Dim {
        Dim::Symbolic(s.to_string())
    }

    #[test]
    fn dim_values_parse() {
        assert_eq!(
            "batch=4".parse::<DimValue>().unwrap(),
            DimValue {
                name: "batch".into(),
                value: 4
            }
        );
        assert_eq!("x:0=2".parse::<DimValue>().unwrap().name, "x:0");
        assert!("batch"
            .parse::<DimValue>()
            .unwrap_err()
            .contains("NAME=VALUE"));
        assert!("batch=0".parse::<DimValue>().unwrap_err().contains("≥ 1"));
        assert!("batch=-1".parse::<DimValue>().is_err());
        assert!("=3"
            .parse::<DimValue>()
            .unwrap_err()
            .contains("no dim name"));
    }

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference implementation).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn normals_have_mean_0_and_variance_1() {
        let v = SplitMix64::new(7).normals(20_001);
        assert_eq!(v.len(), 20_001);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn generated_inputs_follow_dtype_and_shape() {
        let m = info(vec![
            spec(
                "x",
                Some(DType::F32),
                Some(vec![sym("batch"), Dim::Fixed(3)]),
            ),
            spec(
                "ids",
                Some(DType::I64),
                Some(vec![sym("batch"), sym("seq")]),
            ),
            spec("mask", Some(DType::Bool), Some(vec![Dim::Unknown])),
            spec("h", Some(DType::F16), Some(vec![])),
        ]);
        let sets = generate(&m, 2, 1, &dims(&["batch=2", "seq=50", "mask:0=64"])).unwrap();
        assert_eq!(sets.len(), 2);
        let t = &sets[0].tensors;
        assert_eq!(t[0].shape(), [2, 3]);
        assert_eq!(t[0].dtype(), DType::F32);
        assert_eq!(t[1].shape(), [2, 50]);
        let ids = t[1].values::<i64>().unwrap();
        assert!(ids.iter().all(|&i| (0..INT_HIGH as i64).contains(&i)));
        assert!(ids.contains(&0) && ids.contains(&9));
        let mask = t[2].bools().unwrap();
        assert_eq!(mask.len(), 64);
        assert!(mask.iter().any(|&b| b) && mask.iter().any(|&b| !b));
        assert_eq!(t[3].shape(), [] as [usize; 0]);
        assert_eq!(t[3].dtype(), DType::F16);
        // Data sets differ from each other, and each is reproducible.
        assert_ne!(sets[0].tensors[0].bytes(), sets[1].tensors[0].bytes());
        let again = generate(&m, 2, 1, &dims(&["batch=2", "seq=50", "mask:0=64"])).unwrap();
        for (a, b) in sets.iter().zip(&again) {
            for (x, y) in a.tensors.iter().zip(&b.tensors) {
                assert_eq!(x.bytes(), y.bytes());
            }
        }
        let other = generate(&m, 1, 2, &dims(&["batch=2", "seq=50", "mask:0=64"])).unwrap();
        assert_ne!(other[0].tensors[0].bytes(), sets[0].tensors[0].bytes());
    }

    #[test]
    fn an_input_keeps_its_values_when_another_input_changes_shape() {
        let m = info(vec![
            spec("a", Some(DType::F32), Some(vec![sym("n")])),
            spec("b", Some(DType::F32), Some(vec![Dim::Fixed(4)])),
        ]);
        let small = generate(&m, 1, 3, &dims(&["n=2"])).unwrap();
        let large = generate(&m, 1, 3, &dims(&["n=200"])).unwrap();
        assert_eq!(small[0].tensors[1].bytes(), large[0].tensors[1].bytes());
    }

    #[test]
    fn every_dynamic_axis_can_be_sized_by_position() {
        // Two spatial axes whose dim_param is `?` in both: `--dim ?=N` would set both;
        // INPUT:AXIS sets each one, and takes precedence over the name.
        let m = info(vec![spec(
            "img",
            Some(DType::F32),
            Some(vec![sym("batch"), Dim::Fixed(3), sym("?"), sym("?")]),
        )]);
        let sets = generate(&m, 1, 0, &dims(&["batch=2", "img:2=5", "img:3=7"])).unwrap();
        assert_eq!(sets[0].tensors[0].shape(), &[2, 3, 5, 7]);
        let sets = generate(&m, 1, 0, &dims(&["img:0=1", "?=4", "img:3=6"])).unwrap();
        assert_eq!(sets[0].tensors[0].shape(), &[1, 3, 4, 6]);
        let e = generate(&m, 1, 0, &dims(&["batch=2", "img:2=5"])).unwrap_err();
        assert!(
            e.contains("axis 3") && e.contains("--dim ?=N") && e.contains("--dim img:3=N"),
            "{e}"
        );
        let e = generate(&m, 1, 0, &dims(&["batch=2", "?=4", "img:1=5"])).unwrap_err();
        assert!(e.contains("axis 1 of input `img` is fixed at 3"), "{e}");
    }

    #[test]
    fn dims_that_cannot_be_resolved_are_named() {
        let m = info(vec![spec(
            "x",
            Some(DType::F32),
            Some(vec![sym("batch"), Dim::Unknown]),
        )]);
        let err = |d: &[&str]| generate(&m, 1, 0, &dims(d)).unwrap_err();
        let e = err(&["x:1=3"]);
        assert!(
            e.contains("input `x`") && e.contains("`batch`") && e.contains("--dim batch=N"),
            "{e}"
        );
        let e = err(&["batch=2"]);
        assert!(e.contains("axis 1") && e.contains("--dim x:1=N"), "{e}");
        let e = err(&["batch=2", "x:1=3", "seq=8"]);
        assert!(
            e.contains("--dim seq") && e.contains("symbolic dims: batch"),
            "{e}"
        );
        let e = err(&["x:0=3"]);
        assert!(e.contains("axis 1") && e.contains("--dim x:1=N"), "{e}");
        let e = err(&["batch=2", "batch=3", "x:1=3"]);
        assert!(e.contains("twice"), "{e}");
        let e = err(&["batch=2", "x:7=3"]);
        assert!(e.contains("no axis 7"), "{e}");
        let big = err(&["batch=100000", "x:1=100000"]);
        assert!(big.contains("2 GiB"), "{big}");
        let no_rank = info(vec![spec("x", Some(DType::F32), None)]);
        let e = generate(&no_rank, 1, 0, &[]).unwrap_err();
        assert!(
            e.contains("input `x` declares no shape") && e.contains("--inputs"),
            "{e}"
        );
        let no_dtype = info(vec![spec("s", None, Some(vec![]))]);
        let e = generate(&no_dtype, 1, 0, &[]).unwrap_err();
        assert!(e.contains("input `s` is not a numeric"), "{e}");
    }

    #[test]
    fn dates_are_utc_iso8601() {
        let at = |s: u64| iso8601_utc(UNIX_EPOCH + std::time::Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(at(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn the_written_manifest_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut tol = BTreeMap::new();
        tol.insert("output.1".to_string(), Tolerance::default_for(DType::F32));
        tol.insert("ids".to_string(), Tolerance::default_for(DType::I64));
        let prov = Provenance {
            backend: Some("ort-cpu".into()),
            model_sha256: Some("ab".repeat(32)),
            ..Default::default()
        };
        let mut files = BTreeMap::new();
        files.insert("model.onnx".to_string(), "ab".repeat(32));
        files.insert("test_data_set_0/input_0.pb".to_string(), "cd".repeat(32));
        let mut sources = BTreeMap::new();
        sources.insert(
            "candle-cpu".to_string(),
            ErrorEvidence {
                max_abs_err: 3e-7,
                max_rel_err: 2e-6,
                vs_oracle_max_abs_err: Some(1e-7),
                vs_oracle_max_rel_err: Some(1e-6),
                ..Default::default()
            },
        );
        let mut outputs = BTreeMap::new();
        outputs.insert(
            "output.1".to_string(),
            OutputEvidence {
                dtype: "f32".into(),
                median_abs: 0.5,
                max_abs: 2.0,
                rtol_floor: Some(4.8e-7),
                atol_floor: Some(9.6e-7),
                sources,
            },
        );
        let calibration = Calibration {
            margin: 4.0,
            golden: "ort-cpu".into(),
            backends: vec!["ort-cpu".into(), "candle-cpu".into()],
            oracle: vec!["candle-cpu".into()],
            excluded: vec!["f64-oracle on ort-cpu: \"quoted\" reason".into()],
            data_sets: 2,
            rule: "rule".into(),
            outputs,
        };
        for calibrated in [None, Some(&calibration)] {
            let text = manifest_text(&tol, &[], &prov, &files, calibrated).unwrap();
            std::fs::write(dir.path().join(MANIFEST_FILE), &text).unwrap();
            let m = Manifest::read_or_default(dir.path()).unwrap();
            assert_eq!(m.tolerance_for("output.1").rtol, Some(1e-4));
            assert_eq!(m.tolerance_for("ids").atol, Some(0.0));
            assert_eq!(m.provenance.as_ref(), Some(&prov));
            assert_eq!(m.files, files);
            assert_eq!(m.calibration.as_ref(), calibrated);
        }
    }
}
