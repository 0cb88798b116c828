//! Where a recording's inputs come from (`InputPlan`) and reading them from existing
//! suites, data-set directories and `.npz`/`.safetensors` files, matched to the model's
//! inputs by name or position.

use super::dims::DimValue;
use crate::error::{Error, Result};
use crate::formats::{self, onnx_model::ModelInfo};
use crate::schema::IoSpec;
use crate::suite::{self, integrity, CaseFiles, MODEL_FILE};
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

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

/// Reads the inputs of every data set stored at `paths`, matched to the model's inputs
/// by name. A source that lacks a model input, or holds an input the model does not
/// take, is an error naming it.
pub fn load_inputs(info: &ModelInfo, paths: &[PathBuf]) -> Result<Vec<InputSet>> {
    let mut sets = Vec::new();
    for path in paths {
        let meta =
            std::fs::metadata(path).map_err(|e| Error::file(path, formats::io_problem(&e)))?;
        if meta.is_dir() && path.join(MODEL_FILE).is_file() {
            let suite = suite::open(path)?;
            for case in &suite.cases {
                let origin = case_origin(path, &case.name);
                let named = read_case_inputs(&suite, &case.files)?;
                sets.push(match_inputs(info, named, origin)?);
            }
        } else if meta.is_dir() {
            let files = suite::data_set_dir(path)?.ok_or_else(|| {
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
        } else if matches!(formats::extension(path).as_deref(), Some("npy" | "pb")) {
            let named = read_lone_tensor(path, info)?;
            sets.push(match_inputs(info, named, path.display().to_string())?);
        } else {
            return Err(Error::file(
                path,
                "not a suite, a data-set directory, an .npz/.safetensors file, or an .npy/.pb of a one-input model",
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
fn read_case_inputs(suite: &suite::Suite, files: &CaseFiles) -> Result<Vec<NamedInput>> {
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
fn verify_listed(suite: &suite::Suite, path: &Path) -> Result<()> {
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

/// A lone `.npy` or `.pb` is the input of a one-input model (a `.pb` that stores another
/// name is refused, as in a data set). With several inputs one tensor cannot say which
/// it is: the error says how to name them.
fn read_lone_tensor(path: &Path, info: &ModelInfo) -> Result<Vec<NamedInput>> {
    if info.inputs.len() == 1 {
        return read_numbered_inputs(std::slice::from_ref(&path.to_path_buf()), &info.inputs);
    }
    let names: Vec<&str> = info.inputs.iter().map(|s| s.name.as_str()).collect();
    Err(Error::file(
        path,
        format!(
            "one tensor, but the model takes {} inputs ({}): give an .npz or .safetensors keyed by input name, or a data-set directory of input_0, input_1, ... files",
            names.len(),
            names.join(", ")
        ),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::IoSpec;
    use crate::tensor::DType;

    fn info(inputs: &[&str]) -> ModelInfo {
        ModelInfo {
            inputs: inputs
                .iter()
                .map(|n| IoSpec {
                    name: n.to_string(),
                    dtype: Some(DType::F32),
                    dims: None,
                })
                .collect(),
            ..ModelInfo::default()
        }
    }

    #[test]
    fn a_lone_npy_feeds_a_one_input_model_and_several_inputs_say_how_to_name_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("batch.npy");
        let t = Tensor::from_vec(vec![2, 3], vec![1f32; 6]).unwrap();
        formats::npy::write(&p, &t).unwrap();
        let sets = load_inputs(&info(&["x"]), std::slice::from_ref(&p)).unwrap();
        assert_eq!((sets.len(), sets[0].tensors[0].shape()), (1, &[2, 3][..]));
        let msg = load_inputs(&info(&["a", "b"]), &[p])
            .unwrap_err()
            .to_string();
        assert!(
            msg.ends_with("batch.npy: one tensor, but the model takes 2 inputs (a, b): give an .npz or .safetensors keyed by input name, or a data-set directory of input_0, input_1, ... files"),
            "{msg}"
        );
    }
}
