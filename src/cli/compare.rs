//! `parity compare REFERENCE CANDIDATE`: compare saved tensors with the same engine as
//! `check` — two files, two archives, or two directories matched by relative path.

use super::check::non_negative;
use super::output::OutputArgs;
use super::Global;
use crate::compare::{self, Tolerance};
use crate::error::{Error, Result};
use crate::formats;
use crate::report::{CaseId, CaseReport, Environment, OutputReport, Report};
use crate::tensor::Tensor;
use std::path::{Path, PathBuf};

/// Compare two tensor files (.pb .npy .npz .safetensors) or two directories of them.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  parity compare golden/logits.npy candidate/logits.npy --rtol 1e-3"
)]
pub struct CompareArgs {
    /// The expected tensors (file or directory).
    reference: PathBuf,
    /// The tensors to check (same kind as REFERENCE).
    candidate: PathBuf,
    /// Absolute tolerance (default: per dtype).
    #[arg(long, value_name = "F", value_parser = non_negative)]
    atol: Option<f64>,
    /// Relative tolerance (default: per dtype).
    #[arg(long, value_name = "F", value_parser = non_negative)]
    rtol: Option<f64>,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(args: CompareArgs, global: Global) -> Result<u8> {
    args.output
        .refuse_inputs([args.reference.as_path(), args.candidate.as_path()])?;
    let pairs = pair_files(&args.reference, &args.candidate)?;
    let mut rows = Vec::new();
    for (rel, reference, candidate) in pairs {
        let id = CaseId {
            suite: args.reference.display().to_string(),
            case: rel,
            backend: args.candidate.display().to_string(),
            reference: args.reference.display().to_string(),
        };
        let outputs = match (reference, candidate) {
            (Some(reference), Some(candidate)) => compare_files(&reference, &candidate, &args)?,
            (Some(reference), None) => {
                rows.push(CaseReport::errored(
                    id,
                    format!("{}: no such file in the candidate", reference.display()),
                    None,
                ));
                continue;
            }
            // A candidate file with no reference: every tensor in it lacks a golden.
            (None, Some(candidate)) => read_named(&candidate)?
                .iter()
                .map(|(name, got)| missing_golden(name, got, &args))
                .collect(),
            (None, None) => continue,
        };
        rows.push(CaseReport::compared(id, None, None, outputs));
    }
    let report = Report::new(Environment::detect(Vec::new()), rows);
    args.output.emit_report(&report, global)
}

/// A reference file and a candidate file under one relative name; either may be absent.
type Pair = (String, Option<PathBuf>, Option<PathBuf>);

/// Pairs reference files with candidate files by relative path, in path order; a file
/// present on one side only is paired with `None`.
fn pair_files(reference: &Path, candidate: &Path) -> Result<Vec<Pair>> {
    let meta = |p: &Path| std::fs::metadata(p).map_err(|e| Error::file(p, formats::io_problem(&e)));
    let (a, b) = (meta(reference)?, meta(candidate)?);
    match (a.is_dir(), b.is_dir()) {
        (false, false) => Ok(vec![(
            file_name(reference),
            Some(reference.to_path_buf()),
            Some(candidate.to_path_buf()),
        )]),
        (true, true) => {
            let mut files = Vec::new();
            tensor_files(reference, reference, &mut files)?;
            if files.is_empty() {
                return Err(Error::file(
                    reference,
                    "holds no tensor files (.pb .npy .npz .safetensors)",
                ));
            }
            let mut extra = Vec::new();
            tensor_files(candidate, candidate, &mut extra)?;
            let mut all: std::collections::BTreeSet<PathBuf> = files.into_iter().collect();
            let reference_files = all.clone();
            all.extend(extra.iter().cloned());
            let extra: std::collections::BTreeSet<PathBuf> = extra.into_iter().collect();
            Ok(all
                .into_iter()
                .map(|rel| {
                    let r = reference_files.contains(&rel).then(|| reference.join(&rel));
                    let c = extra.contains(&rel).then(|| candidate.join(&rel));
                    (rel.display().to_string(), r, c)
                })
                .collect())
        }
        _ => Err(Error::Usage(format!(
            "{} and {} must both be files or both be directories",
            reference.display(),
            candidate.display()
        ))),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn tensor_files(root: &Path, dir: &Path, found: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::file(dir, formats::io_problem(&e)))? {
        let path = entry
            .map_err(|e| Error::file(dir, formats::io_problem(&e)))?
            .path();
        if path.is_dir() {
            tensor_files(root, &path, found)?;
        } else if matches!(
            formats::extension(&path).as_deref(),
            Some("pb" | "npy" | "npz" | "safetensors")
        ) {
            if let Ok(rel) = path.strip_prefix(root) {
                found.push(rel.to_path_buf());
            }
        }
    }
    Ok(())
}

/// Named tensors of a file: one for .pb/.npy (named after the file's stem), several for archives.
fn read_named(path: &Path) -> Result<Vec<(String, Tensor)>> {
    match formats::extension(path).as_deref() {
        Some("npz" | "safetensors") => formats::read_tensor_map(path),
        _ => {
            let (name, tensor) = formats::read_tensor(path)?;
            let stem = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            Ok(vec![(name.unwrap_or(stem), tensor)])
        }
    }
}

fn compare_files(
    reference: &Path,
    candidate: &Path,
    args: &CompareArgs,
) -> Result<Vec<OutputReport>> {
    let expected = read_named(reference)?;
    let actual = read_named(candidate)?;
    let single = expected.len() == 1 && actual.len() == 1;
    let mut outputs: Vec<OutputReport> = expected
        .iter()
        .map(|(name, want)| {
            let tol = tolerance(want.dtype(), args);
            // Two single-tensor files are compared whatever their stored names.
            let got = if single {
                actual.first()
            } else {
                actual.iter().find(|(n, _)| n == name)
            };
            let comparison = match got {
                Some((_, got)) => compare::compare(want, got, tol),
                None => compare::OutputComparison::missing(want, tol),
            };
            OutputReport {
                name: name.clone(),
                comparison,
                error_histogram: got
                    .filter(|_| args.output.wants_histograms())
                    .and_then(|(_, got)| compare::error_histogram(want, got, tol)),
                stats: None,
                gated: false,
            }
        })
        .collect();
    // Tensors of a candidate archive that the reference lacks are not passed over.
    if !single {
        for (name, got) in &actual {
            if !expected.iter().any(|(n, _)| n == name) {
                outputs.push(missing_golden(name, got, args));
            }
        }
    }
    Ok(outputs)
}

/// `--atol`/`--rtol` over the dtype's defaults.
fn tolerance(dtype: crate::tensor::DType, args: &CompareArgs) -> Tolerance {
    let default = Tolerance::default_for(dtype);
    Tolerance {
        atol: args.atol.unwrap_or(default.atol),
        rtol: args.rtol.unwrap_or(default.rtol),
    }
}

/// A candidate tensor with no reference tensor of its name: a failure.
fn missing_golden(name: &str, got: &Tensor, args: &CompareArgs) -> OutputReport {
    let tol = tolerance(got.dtype(), args);
    OutputReport {
        name: name.to_string(),
        comparison: compare::OutputComparison::missing_golden(name, got.dtype(), Some(got), tol),
        error_histogram: None,
        stats: None,
        gated: false,
    }
}
