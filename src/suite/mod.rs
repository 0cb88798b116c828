//! Golden suites: finding them on disk and loading their cases.
//!
//! A suite is a directory with `model.onnx` and data sets in the ONNX backend-test layout
//! (`test_data_set_N/input_K.pb|npy`, `output_K.pb|npy`), or data sets stored as one
//! `.npz`/`.safetensors` per data set keyed by input/output name (`test_data_set_N.npz`,
//! or a `test_data_set_N/` directory holding exactly one such file), plus an optional
//! `parity.toml` manifest. Paths given by the user may be parent directories.
//! `parity record` writes suites ([`record`]); the digests it stores are checked when a
//! suite is opened and when each case is loaded ([`integrity`]).

pub mod candidate;
pub mod execution;
pub mod gating;
pub mod generation;
pub mod integrity;
pub mod manifest;
pub mod matrix;
pub mod record;
pub mod runner;
pub mod shard;
pub mod staging;

use crate::backend::IoSpec;
use crate::error::{Error, Result};
use crate::formats::{self, onnx_model::ModelInfo};
use crate::tensor::Tensor;
use manifest::Manifest;
use std::path::{Path, PathBuf};

/// The file name a suite's model must have.
pub const MODEL_FILE: &str = "model.onnx";
/// Data-set directories (or archives) start with this prefix.
pub const DATA_SET_PREFIX: &str = "test_data_set_";

/// Tensors paired with their model input/output names.
pub type NamedTensors = Vec<(String, Tensor)>;

/// A suite found on disk: its model's schema, its manifest and its data sets (not yet read).
#[derive(Debug)]
pub struct Suite {
    /// The suite directory.
    pub dir: PathBuf,
    /// `dir/model.onnx`.
    pub model: PathBuf,
    /// The model's inputs/outputs, read without any backend.
    pub info: ModelInfo,
    /// `parity.toml`, or defaults.
    pub manifest: Manifest,
    /// Data sets in numeric order.
    pub cases: Vec<CaseSource>,
    /// Labels, slices, class outputs and gates of the dataset (docs/gates.md).
    pub gating: gating::Gating,
    /// With `check --model`: how the candidate in `model` is fed and named.
    pub candidate: Option<candidate::CandidateIo>,
}

/// Where one data set's tensors are stored.
#[derive(Debug, Clone)]
pub enum CaseFiles {
    /// `input_K` / `output_K` files (`.pb` or `.npy`), indexed by K.
    Numbered {
        inputs: Vec<PathBuf>,
        outputs: Vec<PathBuf>,
    },
    /// One `.npz` or `.safetensors` keyed by input/output name.
    Archive(PathBuf),
}

/// One data set of a suite, before its tensors are read.
#[derive(Debug, Clone)]
pub struct CaseSource {
    /// `test_data_set_N`.
    pub name: String,
    /// Its files.
    pub files: CaseFiles,
}

/// A data set with its tensors read: inputs in model input order, expected outputs named.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub inputs: Vec<Tensor>,
    pub expected: Vec<(String, Tensor)>,
}

impl Suite {
    /// Whether the data sets are consecutive steps of one stream (`[sequence]`).
    pub fn is_sequence(&self) -> bool {
        self.manifest.sequence.is_some()
    }

    /// The inputs of `case` as run at its step, in the order the session's model takes
    /// them: the data set's own, except in a stateful suite after the first step, where
    /// every carried input is the backend's own output of the step before (`previous`;
    /// `None` when that step produced nothing, which leaves this step unrunnable).
    pub fn step_inputs<'a>(
        &self,
        case: &'a Case,
        step: usize,
        previous: Option<&NamedTensors>,
    ) -> std::result::Result<std::borrow::Cow<'a, [Tensor]>, String> {
        let inputs = self.carried_inputs(case, step, previous)?;
        Ok(match &self.candidate {
            Some(io) => io.feed(inputs),
            None => inputs,
        })
    }

    /// A session's outputs under the suite model's names (a `check --model` candidate
    /// may call them otherwise, `[candidate.outputs]`).
    pub fn suite_names(&self, outputs: NamedTensors) -> NamedTensors {
        match &self.candidate {
            Some(io) => io.rename(outputs),
            None => outputs,
        }
    }

    /// [`Suite::step_inputs`] in the suite model's input order.
    fn carried_inputs<'a>(
        &self,
        case: &'a Case,
        step: usize,
        previous: Option<&NamedTensors>,
    ) -> std::result::Result<std::borrow::Cow<'a, [Tensor]>, String> {
        let Some(sequence) = self.manifest.sequence.as_ref().filter(|_| step > 0) else {
            return Ok(std::borrow::Cow::Borrowed(&case.inputs));
        };
        let Some(previous) = previous else {
            return Err(format!(
                "not run: step {} produced no outputs to carry into this step",
                step - 1
            ));
        };
        let mut inputs = case.inputs.clone();
        carry_into(&sequence.carry, &self.info.inputs, &mut inputs, previous)
            .map_err(|e| format!("step {}: {e}", step - 1))?;
        Ok(std::borrow::Cow::Owned(inputs))
    }
}

/// Replaces each carried input of `inputs` (in `specs` order) by the output of
/// `previous` that feeds it (`carry`: output → input), as a stateful suite's next step
/// reads it.
pub fn carry_into(
    carry: &std::collections::BTreeMap<String, String>,
    specs: &[IoSpec],
    inputs: &mut [Tensor],
    previous: &[(String, Tensor)],
) -> std::result::Result<(), String> {
    for (output, input) in carry {
        let at = specs.iter().position(|s| &s.name == input);
        let value = previous.iter().find(|(n, _)| n == output).map(|(_, t)| t);
        match (at, value) {
            (Some(i), Some(t)) if i < inputs.len() => inputs[i] = t.clone(),
            _ => {
                return Err(format!(
                    "no output `{output}` to carry into input `{input}`"
                ))
            }
        }
    }
    Ok(())
}

/// Finds every suite under the given paths. A path that is itself a suite is taken as
/// is; otherwise it is searched recursively. A path holding no suite is an error.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Suite>> {
    Ok(discover_each(paths, 1)?.into_iter().flatten().collect())
}

/// [`discover`] per path, the suites of each path in the same order, opened (model
/// decoded, manifest and listing checked) on up to `jobs` threads. The first path or
/// suite in order that fails is the error, whatever the threads did.
pub fn discover_each(paths: &[PathBuf], jobs: usize) -> Result<Vec<Vec<Suite>>> {
    let mut dirs: Vec<(usize, PathBuf)> = Vec::new();
    for (p, path) in paths.iter().enumerate() {
        let meta =
            std::fs::metadata(path).map_err(|e| Error::file(path, formats::io_problem(&e)))?;
        if !meta.is_dir() {
            return Err(Error::file(
                path,
                "not a directory (a suite is a directory with model.onnx and test_data_set_N)",
            ));
        }
        let mut found = Vec::new();
        find_suite_dirs(path, &mut found)?;
        if found.is_empty() {
            return Err(Error::file(
                path,
                "holds no suite (no model.onnx found below it)",
            ));
        }
        dirs.extend(found.into_iter().map(|d| (p, d)));
    }
    let opened = crate::jobs::par_map(&dirs, jobs, |(_, dir)| open(dir));
    let mut suites: Vec<Vec<Suite>> = paths.iter().map(|_| Vec::new()).collect();
    for ((p, _), suite) in dirs.iter().zip(opened) {
        suites[*p].push(suite?);
    }
    Ok(suites)
}

fn find_suite_dirs(dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    let model = dir.join(MODEL_FILE);
    match std::fs::metadata(&model) {
        Ok(meta) if meta.is_file() => {
            found.push(dir.to_path_buf());
            return Ok(());
        }
        // A `model.onnx` that is a directory, FIFO or device is a broken suite, not
        // a parent directory to search.
        Ok(meta) => return formats::open::require_regular(&model, &meta),
        Err(_) => {}
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::file(dir, formats::io_problem(&e)))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Hidden directories (.git, .venv, an interrupted `record`'s staging directory)
        // are never searched; a hidden suite can still be named directly.
        .filter(|p| p.is_dir() && !is_hidden(p))
        .collect();
    children.sort();
    for child in children {
        find_suite_dirs(&child, found)?;
    }
    Ok(())
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Opens one suite directory: reads the model schema, the manifest and lists data sets.
pub fn open(dir: &Path) -> Result<Suite> {
    let model = dir.join(MODEL_FILE);
    let info = formats::onnx_model::inspect(&model)?;
    let manifest = Manifest::read_or_default(dir)?;
    let names = |specs: &[IoSpec]| specs.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let (inputs, outputs) = (names(&info.inputs), names(&info.outputs));
    manifest.check_names(dir, &inputs, &outputs)?;
    let cases = list_cases(dir)?;
    if cases.is_empty() {
        return Err(Error::file(dir, "suite has no data sets (expected test_data_set_N directories or .npz/.safetensors files)"));
    }
    integrity::verify_listing(dir, &manifest, &cases)?;
    let gating = gating::Gating::load(dir, &manifest, &outputs, &cases)?;
    Ok(Suite {
        dir: dir.to_path_buf(),
        model,
        info,
        manifest,
        cases,
        gating,
        candidate: None,
    })
}

fn list_cases(dir: &Path) -> Result<Vec<CaseSource>> {
    let mut cases: Vec<CaseSource> = Vec::new();
    // Where each data-set name came from, so two sources of one name are refused.
    let mut seen: std::collections::BTreeMap<String, PathBuf> = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::file(dir, formats::io_problem(&e)))? {
        let path = entry
            .map_err(|e| Error::file(dir, formats::io_problem(&e)))?
            .path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !file_name.starts_with(DATA_SET_PREFIX) {
            continue;
        }
        let source = if path.is_dir() {
            // An empty data-set directory is a case that cannot be evaluated, reported
            // as such (see `Suite::load_case`), never silently dropped.
            Some(data_set_dir(&path)?.unwrap_or(CaseFiles::Numbered {
                inputs: Vec::new(),
                outputs: Vec::new(),
            }))
        } else if matches!(
            formats::extension(&path).as_deref(),
            Some("npz" | "safetensors")
        ) {
            Some(CaseFiles::Archive(path.clone()))
        } else {
            None
        };
        if let Some(files) = source {
            let stem = file_name.split('.').next().unwrap_or(file_name).to_string();
            if let Some(other) = seen.insert(stem.clone(), path.clone()) {
                let (a, b) = if other < path {
                    (&other, &path)
                } else {
                    (&path, &other)
                };
                return Err(Error::file(
                    dir,
                    format!(
                        "data set `{stem}` is stored twice ({} and {}); keep one",
                        name_of(a),
                        name_of(b)
                    ),
                ));
            }
            cases.push(CaseSource { name: stem, files });
        }
    }
    cases.sort_by_key(|c| (numeric_suffix(&c.name), c.name.clone()));
    Ok(cases)
}

/// The last component of a path, for messages (`test_data_set_0.npz`, `test_data_set_0/`).
fn name_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if path.is_dir() {
        format!("{name}/")
    } else {
        name
    }
}

fn numeric_suffix(name: &str) -> u64 {
    name.trim_start_matches(DATA_SET_PREFIX)
        .parse()
        .unwrap_or(u64::MAX)
}

/// Lists a `test_data_set_N` directory: numbered files, or exactly one archive.
pub(crate) fn data_set_dir(dir: &Path) -> Result<Option<CaseFiles>> {
    let mut inputs: Vec<(usize, PathBuf)> = Vec::new();
    let mut outputs: Vec<(usize, PathBuf)> = Vec::new();
    let mut archives = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::file(dir, formats::io_problem(&e)))? {
        let path = entry
            .map_err(|e| Error::file(dir, formats::io_problem(&e)))?
            .path();
        let ext = formats::extension(&path);
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        match ext.as_deref() {
            Some("pb" | "npy") => {
                let slot = if let Some(k) = stem.strip_prefix("input_") {
                    Some((&mut inputs, k))
                } else {
                    stem.strip_prefix("output_").map(|k| (&mut outputs, k))
                };
                if let Some((list, k)) = slot {
                    let k: usize = k.parse().map_err(|_| {
                        Error::file(&path, "expected input_K/output_K with a number K")
                    })?;
                    list.push((k, path.clone()));
                }
            }
            Some("npz" | "safetensors") => archives.push(path.clone()),
            _ => {}
        }
    }
    if !archives.is_empty() {
        if archives.len() > 1 || !inputs.is_empty() || !outputs.is_empty() {
            return Err(Error::file(dir, "a data set holds either input_K/output_K files or one .npz/.safetensors, not both or several"));
        }
        return Ok(archives.pop().map(CaseFiles::Archive));
    }
    if inputs.is_empty() && outputs.is_empty() {
        return Ok(None);
    }
    Ok(Some(CaseFiles::Numbered {
        inputs: dense(dir, "input", inputs)?,
        outputs: dense(dir, "output", outputs)?,
    }))
}

/// Checks that K runs 0..n without gaps or duplicates and returns the paths in K order.
fn dense(dir: &Path, kind: &str, mut files: Vec<(usize, PathBuf)>) -> Result<Vec<PathBuf>> {
    files.sort();
    for (i, (k, path)) in files.iter().enumerate() {
        if *k != i {
            let msg = if *k < i {
                format!("two {kind} files for {kind}_{k}")
            } else {
                format!("{kind}_{i} is missing ({} exists)", path.display())
            };
            return Err(Error::file(dir, msg));
        }
    }
    Ok(files.into_iter().map(|(_, p)| p).collect())
}

impl Suite {
    /// Reads a data set's tensors and matches them to the model's inputs and outputs,
    /// after checking the sha256 of its files when `parity.toml` lists them.
    pub fn load_case(&self, source: &CaseSource) -> Result<Case> {
        integrity::verify_case(self, source)?;
        let (inputs, expected) = match &source.files {
            CaseFiles::Numbered { inputs, outputs } if inputs.is_empty() && outputs.is_empty() => {
                return Err(Error::file(
                    self.dir.join(&source.name),
                    "empty data set: no input_K/output_K files and no .npz/.safetensors",
                ))
            }
            CaseFiles::Numbered { inputs, outputs } => (
                read_numbered(inputs, &self.info.inputs, "input")?,
                read_numbered(outputs, &self.info.outputs, "output")?,
            ),
            CaseFiles::Archive(path) => self.read_archive(path)?,
        };
        let inputs = self.order_inputs(&source.name, inputs)?;
        Ok(Case {
            name: source.name.clone(),
            inputs,
            expected,
        })
    }

    /// Puts named inputs into model input order; every model input must be present.
    fn order_inputs(&self, case: &str, mut named: Vec<(String, Tensor)>) -> Result<Vec<Tensor>> {
        let mut ordered = Vec::with_capacity(self.info.inputs.len());
        for spec in &self.info.inputs {
            let pos = named
                .iter()
                .position(|(n, _)| n == &spec.name)
                .ok_or_else(|| {
                    Error::file(
                        self.dir.join(case),
                        format!("no data for model input `{}`", spec.name),
                    )
                })?;
            ordered.push(named.swap_remove(pos).1);
        }
        Ok(ordered)
    }

    fn read_archive(&self, path: &Path) -> Result<(NamedTensors, NamedTensors)> {
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for (name, tensor) in formats::read_tensor_map(path)? {
            if self.info.inputs.iter().any(|s| s.name == name) {
                inputs.push((name, tensor));
            } else if self.info.outputs.iter().any(|s| s.name == name) {
                outputs.push((name, tensor));
            } else {
                return Err(Error::file(
                    path,
                    format!("holds `{name}`, which is neither an input nor an output of the model"),
                ));
            }
        }
        // Expected outputs in model output order, like the numbered layout.
        outputs.sort_by_key(|(n, _)| self.info.outputs.iter().position(|s| &s.name == n));
        Ok((inputs, outputs))
    }
}

/// Reads `input_K`/`output_K` files and names them after the K-th model input/output.
/// A name stored in the file must match the model's.
fn read_numbered(files: &[PathBuf], specs: &[IoSpec], kind: &str) -> Result<Vec<(String, Tensor)>> {
    if files.len() > specs.len() {
        return Err(Error::file(
            &files[specs.len()],
            format!("the model has only {} {kind}s", specs.len()),
        ));
    }
    files
        .iter()
        .zip(specs)
        .map(|(path, spec)| {
            let (stored, tensor) = formats::read_tensor(path)?;
            match stored {
                Some(name) if name != spec.name => Err(Error::file(
                    path,
                    format!(
                        "holds tensor `{name}` but model {kind} {} is `{}`",
                        specs.iter().position(|s| s.name == spec.name).unwrap_or(0),
                        spec.name
                    ),
                )),
                _ => Ok((spec.name.clone(), tensor)),
            }
        })
        .collect()
}
