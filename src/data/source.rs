//! Where `data validate` and `data drift` read their data: tensor files (`.npy`, `.pb`,
//! `.npz`, `.safetensors`), data-set directories (`input_K` files or one archive),
//! whole suites (each `test_data_set_N`, inputs only), or one table (`.csv`, `.jsonl`).

use super::tabular::{self, Table};
use crate::error::{Error, Result};
use crate::formats;
use crate::suite::{self, CaseFiles};
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

/// A tensor read from a file, named after the model input it is meant for.
#[derive(Debug, Clone)]
pub struct Named {
    /// The input name: a `.pb`'s stored name, an archive key, the K-th model input for
    /// `input_K`, else the file stem.
    pub name: String,
    /// The tensor.
    pub tensor: Tensor,
    /// The file it came from, for messages.
    pub file: PathBuf,
}

/// Tensors meant to be fed to the model together (one data set).
#[derive(Debug, Clone)]
pub struct DataSet {
    /// The file or directory the data set is, for messages.
    pub origin: PathBuf,
    /// Its tensors, in file order.
    pub tensors: Vec<Named>,
}

/// What one path on the command line holds.
#[derive(Debug)]
pub enum Source {
    /// One or more data sets of tensors.
    Sets(Vec<DataSet>),
    /// A table for a tabular model.
    Table(Table),
}

/// Reads `path`. `inputs` are the model's input names (empty without a model), used to
/// name `input_K` files; archive keys listed in `outputs` (expected outputs stored beside
/// the inputs) are left out.
pub fn read(path: &Path, inputs: &[String], outputs: &[String]) -> Result<Source> {
    if tabular::is_table(path) {
        return Ok(Source::Table(tabular::read(path)?));
    }
    let meta = std::fs::metadata(path).map_err(|e| Error::file(path, formats::io_problem(&e)))?;
    if meta.is_dir() && path.join(suite::MODEL_FILE).is_file() {
        let suite = suite::open(path)?;
        let names: Vec<String> = suite.info.inputs.iter().map(|s| s.name.clone()).collect();
        let outs: Vec<String> = suite.info.outputs.iter().map(|s| s.name.clone()).collect();
        let sets = suite
            .cases
            .iter()
            .map(|case| read_files(&path.join(&case.name), &case.files, &names, &outs))
            .collect::<Result<_>>()?;
        return Ok(Source::Sets(sets));
    }
    if meta.is_dir() {
        let files = suite::data_set_dir(path)?.ok_or_else(|| {
            Error::file(
                path,
                "holds neither model.onnx nor input_K files nor one .npz/.safetensors (expected a suite or a data-set directory)",
            )
        })?;
        return Ok(Source::Sets(vec![read_files(
            path, &files, inputs, outputs,
        )?]));
    }
    let files = match formats::extension(path).as_deref() {
        Some("npz" | "safetensors") => CaseFiles::Archive(path.to_path_buf()),
        Some("pb" | "npy") => {
            let (name, tensor) = read_lone(path, inputs)?;
            return Ok(Source::Sets(vec![DataSet {
                origin: path.to_path_buf(),
                tensors: vec![Named {
                    name,
                    tensor,
                    file: path.to_path_buf(),
                }],
            }]));
        }
        _ => {
            return Err(Error::file(
                path,
                "not a data file (expected .npy, .pb, .npz, .safetensors, .csv, .jsonl, a data-set directory or a suite)",
            ))
        }
    };
    Ok(Source::Sets(vec![read_files(
        path, &files, inputs, outputs,
    )?]))
}

fn read_files(
    origin: &Path,
    files: &CaseFiles,
    inputs: &[String],
    outputs: &[String],
) -> Result<DataSet> {
    let tensors = match files {
        CaseFiles::Numbered { inputs: paths, .. } => paths
            .iter()
            .map(|p| {
                let (name, tensor) = read_single(p, inputs)?;
                Ok(Named {
                    name,
                    tensor,
                    file: p.clone(),
                })
            })
            .collect::<Result<_>>()?,
        CaseFiles::Archive(p) => formats::read_tensor_map(p)?
            .into_iter()
            .filter(|(name, _)| !outputs.contains(name))
            .map(|(name, tensor)| Named {
                name,
                tensor,
                file: p.clone(),
            })
            .collect(),
    };
    Ok(DataSet {
        origin: origin.to_path_buf(),
        tensors,
    })
}

/// When each side holds tensors of one name only, and the names differ (`ref.npy` and
/// `cur.npy`), the current side's tensors take the reference's name, so the two compare.
pub fn pair_single_tensors(reference: &Source, current: &mut Source) {
    let (Source::Sets(r), Source::Sets(c)) = (reference, current) else {
        return;
    };
    let only = |sets: &[DataSet]| {
        let mut names = sets
            .iter()
            .flat_map(|s| s.tensors.iter().map(|t| t.name.clone()));
        let first = names.next()?;
        names.all(|n| n == first).then_some(first)
    };
    if let (Some(name), Some(_)) = (only(r), only(c)) {
        for t in c.iter_mut().flat_map(|s| s.tensors.iter_mut()) {
            t.name = name.clone();
        }
    }
}

/// A `.pb`/`.npy` given on its own: named as in a data set, except that a name the
/// model does not take is the input of a one-input model; with several inputs the
/// error says how to name the data.
fn read_lone(path: &Path, inputs: &[String]) -> Result<(String, Tensor)> {
    let (name, tensor) = read_single(path, inputs)?;
    if inputs.is_empty() || inputs.contains(&name) {
        return Ok((name, tensor));
    }
    match inputs {
        [only] => Ok((only.clone(), tensor)),
        _ => Err(Error::file(
            path,
            format!(
                "holds `{name}` (its stored or file name), which is not one of the model's {} inputs ({}): name the file after the input it is for (`{}.npy`), or give an .npz/.safetensors keyed by input name, or a data-set directory of input_0, input_1, ... files",
                inputs.len(),
                inputs.join(", "),
                inputs[0]
            ),
        )),
    }
}

/// A `.pb`/`.npy` file and the input it is for.
fn read_single(path: &Path, inputs: &[String]) -> Result<(String, Tensor)> {
    let (stored, tensor) = formats::read_tensor(path)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let numbered = stem
        .strip_prefix("input_")
        .and_then(|k| k.parse::<usize>().ok())
        .and_then(|k| inputs.get(k).cloned());
    let name = stored
        .filter(|s| !s.is_empty())
        .or(numbered)
        .unwrap_or_else(|| stem.to_string());
    Ok((name, tensor))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` of a 2×3 f32 tensor at `dir/file`.
    fn npy(dir: &Path, file: &str) -> std::path::PathBuf {
        let p = dir.join(file);
        let t = Tensor::from_vec(vec![2, 3], vec![0f32; 6]).unwrap();
        formats::npy::write(&p, &t).unwrap();
        p
    }

    fn names(source: &Source) -> Vec<String> {
        match source {
            Source::Sets(sets) => sets
                .iter()
                .flat_map(|s| s.tensors.iter().map(|t| t.name.clone()))
                .collect(),
            Source::Table(_) => Vec::new(),
        }
    }

    #[test]
    fn a_lone_npy_is_the_input_of_a_one_input_model() {
        let dir = tempfile::tempdir().unwrap();
        let p = npy(dir.path(), "batch.npy");
        let one = ["x".to_string()];
        assert_eq!(names(&read(&p, &one, &[]).unwrap()), ["x"]);
        // Without a model (data drift), the file's name stands.
        assert_eq!(names(&read(&p, &[], &[]).unwrap()), ["batch"]);
        // Several inputs: named after one of them, it is that one; otherwise an error
        // that says how to name the data.
        let two = ["a".to_string(), "b".to_string()];
        let named = npy(dir.path(), "b.npy");
        assert_eq!(names(&read(&named, &two, &[]).unwrap()), ["b"]);
        let msg = read(&p, &two, &[]).unwrap_err().to_string();
        assert!(
            msg.ends_with("batch.npy: holds `batch` (its stored or file name), which is not one of the model's 2 inputs (a, b): name the file after the input it is for (`a.npy`), or give an .npz/.safetensors keyed by input name, or a data-set directory of input_0, input_1, ... files"),
            "{msg}"
        );
    }
}
