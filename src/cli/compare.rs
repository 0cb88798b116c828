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
        let Some(candidate) = candidate else {
            rows.push(CaseReport::errored(
                id,
                format!("{}: no such file in the candidate", reference.display()),
                None,
            ));
            continue;
        };
        let outputs = compare_files(&reference, &candidate, &args)?;
        rows.push(CaseReport::compared(id, None, None, outputs));
    }
    let report = Report::new(Environment::detect(Vec::new()), rows);
    args.output.emit_report(&report, global)
}

/// Pairs reference files with candidate files: (relative name, reference, candidate if present).
fn pair_files(
    reference: &Path,
    candidate: &Path,
) -> Result<Vec<(String, PathBuf, Option<PathBuf>)>> {
    let meta = |p: &Path| std::fs::metadata(p).map_err(|e| Error::file(p, formats::io_problem(&e)));
    let (a, b) = (meta(reference)?, meta(candidate)?);
    match (a.is_dir(), b.is_dir()) {
        (false, false) => Ok(vec![(
            file_name(reference),
            reference.to_path_buf(),
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
            files.sort();
            Ok(files
                .into_iter()
                .map(|rel| {
                    let c = candidate.join(&rel);
                    let c = c.exists().then_some(c);
                    (rel.display().to_string(), reference.join(&rel), c)
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
    Ok(expected
        .iter()
        .map(|(name, want)| {
            let default = Tolerance::default_for(want.dtype());
            let tol = Tolerance {
                atol: args.atol.unwrap_or(default.atol),
                rtol: args.rtol.unwrap_or(default.rtol),
            };
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
            }
        })
        .collect())
}
