//! What a bench query feeds the model: a suite's first data set, or inputs generated
//! from the model's schema (as `parity record --random` makes them), tiled along the
//! batch dimension to `--batch B` where the model allows it.

use crate::backend::{Dim, IoSpec};
use crate::error::{Error, Result};
use crate::formats::onnx_model::{self, ModelInfo};
use crate::suite::record::{generate, DimValue};
use crate::suite::{self, MODEL_FILE};
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

/// A model to bench and the inputs of one query.
#[derive(Debug)]
pub struct Target {
    /// The path as given on the command line.
    pub label: String,
    /// The name baselines match on: the file stem, or the directory's name for
    /// `model.onnx` and suites.
    pub name: String,
    /// The ONNX file.
    pub model: PathBuf,
    pub info: ModelInfo,
    /// One query's inputs, in model input order.
    pub inputs: Vec<Tensor>,
    /// Where the inputs came from, for the report (`test_data_set_0`, `generated`).
    pub origin: String,
}

/// Opens `path` (a model file, or a suite directory) and picks the query inputs: the
/// suite's first data set when it has one, else inputs generated from the schema with
/// `seed` and `dims` (symbolic dims without a `--dim` value are an error naming them).
/// `decodes` (the generate scenario, which builds every step's inputs itself): none.
pub fn target(path: &Path, seed: u64, dims: &[DimValue], decodes: bool) -> Result<Target> {
    let label = path.display().to_string();
    let (model, suite_dir) = if path.is_dir() {
        (path.join(MODEL_FILE), Some(path))
    } else {
        (path.to_path_buf(), None)
    };
    if !model.exists() {
        return Err(Error::file(
            path,
            "holds no model.onnx (give an ONNX file or a suite directory)",
        ));
    }
    let info = onnx_model::inspect(&model)?;
    let name = model_name(&model);
    if decodes {
        return Ok(Target {
            label,
            name,
            model,
            info,
            inputs: Vec::new(),
            origin: "each decoding step's own".to_string(),
        });
    }
    if let Some(dir) = suite_dir.filter(|_| dims.is_empty()) {
        let suite = suite::open(dir)?;
        if suite.manifest.generate.is_some() {
            return Err(Error::file(
                dir,
                "a generation suite holds prompts, not inputs: bench it with --scenario generate",
            ));
        }
        if let Some(first) = suite.cases.first() {
            let case = suite.load_case(first)?;
            return Ok(Target {
                label,
                name,
                model,
                info,
                inputs: case.inputs,
                origin: first.name.clone(),
            });
        }
    }
    let mut sets = generate(&info, 1, seed, dims).map_err(|msg| Error::file(&model, msg))?;
    let inputs = sets.pop().map(|s| s.tensors).unwrap_or_default();
    Ok(Target {
        label,
        name,
        model,
        info,
        inputs,
        origin: format!("generated (seed {seed})"),
    })
}

impl Target {
    /// The directory holding the model: the suite, when the target is one.
    pub fn model_dir(&self) -> PathBuf {
        self.model
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}

/// Gives the targets of one run distinct names: a name two targets share (`a/mel` and
/// `b/mel` are both `mel`) becomes the shortest trailing part of their paths that tells
/// them apart (`a/mel`, `b/mel`), so their results, baselines and labels never merge.
/// Names nobody shares stay as they are, so existing baselines keep matching.
pub fn disambiguate(targets: &mut [Target]) {
    let parts: Vec<Vec<String>> = targets.iter().map(|t| name_parts(&t.model)).collect();
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    let suffix = |i: usize, k: usize| {
        let p = &parts[i];
        p[p.len().saturating_sub(k)..].join("/")
    };
    for (i, t) in targets.iter_mut().enumerate() {
        let rivals: Vec<usize> = (0..names.len())
            .filter(|&j| j != i && names[j] == names[i])
            .collect();
        if rivals.is_empty() {
            continue;
        }
        t.name = (1..=parts[i].len())
            .map(|k| (k, suffix(i, k)))
            .find(|(k, s)| rivals.iter().all(|&j| suffix(j, *k) != *s))
            .map_or_else(|| t.label.clone(), |(_, s)| s);
    }
}

/// The path a model's name is the tail of: its directory's for `model.onnx`, else the
/// file's without its extension (`x/y/model.onnx` → `x, y`; `x/r.onnx` → `x, r`).
fn name_parts(model: &Path) -> Vec<String> {
    let stem_path = if model.file_stem().is_some_and(|s| s == "model") {
        model.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        model.with_extension("")
    };
    stem_path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// `models/mlp/model.onnx` → `mlp`; `exports/resnet50.onnx` → `resnet50`.
pub fn model_name(model: &Path) -> String {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if stem == "model" {
        if let Some(dir) = model.parent().and_then(Path::file_name) {
            return dir.to_string_lossy().into_owned();
        }
    }
    stem
}

/// Samples per query: the leading dim of the first input (1 for a scalar input).
pub fn batch_of(inputs: &[Tensor]) -> usize {
    inputs
        .first()
        .and_then(|t| t.shape().first().copied())
        .unwrap_or(1)
}

/// The inputs with every batched input tiled (rows repeated cyclically) to `batch`
/// rows. An input is batched when its declared leading dim is symbolic or unknown; a
/// fixed leading dim must already equal `batch`.
pub fn tile(
    specs: &[IoSpec],
    inputs: &[Tensor],
    batch: usize,
) -> std::result::Result<Vec<Tensor>, String> {
    specs
        .iter()
        .zip(inputs)
        .map(|(spec, t)| {
            let lead = spec.dims.as_ref().and_then(|d| d.first());
            match (lead, t.shape().first()) {
                (_, None) => Err(format!(
                    "input `{}` is a scalar; it has no batch dimension",
                    spec.name
                )),
                (Some(Dim::Fixed(n)), _) if *n == batch => Ok(t.clone()),
                (Some(Dim::Fixed(n)), _) => Err(format!(
                    "input `{}` has a fixed batch dimension of {n}; --batch {batch} is not possible",
                    spec.name
                )),
                (_, Some(&rows)) if rows == batch => Ok(t.clone()),
                (_, Some(&0)) => Err(format!("input `{}` has no rows to repeat", spec.name)),
                (_, Some(&rows)) => {
                    let row_bytes = t.bytes().len() / rows;
                    let limit = crate::suite::record::MAX_TENSOR_BYTES;
                    if row_bytes.checked_mul(batch).is_none_or(|n| n > limit) {
                        return Err(format!(
                            "input `{}` tiled to --batch {batch} would take more than the {limit} bytes (2 GiB) parity builds one input of",
                            spec.name
                        ));
                    }
                    let mut bytes = Vec::with_capacity(row_bytes * batch);
                    for r in 0..batch {
                        let at = (r % rows) * row_bytes;
                        bytes.extend_from_slice(&t.bytes()[at..at + row_bytes]);
                    }
                    let mut shape = t.shape().to_vec();
                    shape[0] = batch;
                    Tensor::from_bytes(t.dtype(), shape, bytes).map_err(|e| e.to_string())
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;

    fn spec(name: &str, lead: Dim) -> IoSpec {
        IoSpec {
            name: name.into(),
            dtype: Some(DType::F32),
            dims: Some(vec![lead, Dim::Fixed(2)]),
        }
    }

    #[test]
    fn tiling_repeats_rows_cyclically() {
        let t = Tensor::from_vec(vec![2, 2], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
        let out = tile(
            &[spec("x", Dim::Symbolic("batch".into()))],
            std::slice::from_ref(&t),
            5,
        )
        .unwrap();
        assert_eq!(out[0].shape(), [5, 2]);
        assert_eq!(
            out[0].values::<f32>().unwrap().as_ref(),
            &[1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 1.0, 2.0]
        );
        let err = tile(&[spec("x", Dim::Fixed(2))], std::slice::from_ref(&t), 4).unwrap_err();
        assert!(err.contains("fixed batch dimension of 2"), "{err}");
        assert_eq!(
            tile(&[spec("x", Dim::Fixed(2))], &[t], 2).unwrap()[0].shape(),
            [2, 2]
        );
    }

    #[test]
    fn names_come_from_the_file_or_its_directory() {
        assert_eq!(model_name(Path::new("models/mlp/model.onnx")), "mlp");
        assert_eq!(model_name(Path::new("x/resnet50.onnx")), "resnet50");
    }

    #[test]
    fn models_that_share_a_name_get_the_path_that_tells_them_apart() {
        let target = |model: &str| Target {
            label: model.to_string(),
            name: model_name(Path::new(model)),
            model: PathBuf::from(model),
            info: ModelInfo::default(),
            inputs: Vec::new(),
            origin: String::new(),
        };
        let mut ts: Vec<Target> = [
            "a/mel/model.onnx",
            "b/mel/model.onnx",
            "models/mlp/model.onnx",
            "x/deep/r.onnx",
            "y/deep/r.onnx",
            "z/r.onnx",
        ]
        .map(target)
        .into_iter()
        .collect();
        disambiguate(&mut ts);
        let names: Vec<&str> = ts.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["a/mel", "b/mel", "mlp", "x/deep/r", "y/deep/r", "z/r"]
        );
        assert_eq!(
            batch_of(&[Tensor::from_vec(vec![3, 1], vec![0.0f32; 3]).unwrap()]),
            3
        );
    }
}
