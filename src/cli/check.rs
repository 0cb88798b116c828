//! `parity check SUITE...`: run golden suites on backends and compare every output.

use super::output::{OutputArgs, Progress};
use super::Global;
use crate::backend::{self, LoadOptions};
use crate::error::{Error, Result};
use crate::report::{BackendInfo, Environment, Report};
use crate::suite::runner::{self, Reference, RunOptions};
use std::path::PathBuf;

/// Run golden suites on backends and compare every output.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  parity check models/ --backend ort-cpu --backend tract-cpu --format json --out report.json"
)]
pub struct CheckArgs {
    /// Suite directories, or parent directories searched recursively for suites.
    #[arg(required = true, value_name = "SUITE")]
    suites: Vec<PathBuf>,
    /// Backend to run (repeatable); default: every available backend.
    #[arg(long = "backend", value_name = "B")]
    backends: Vec<String>,
    /// Compare against the suite's expected outputs (`golden`) or another backend's.
    #[arg(long, default_value = "golden", value_name = "golden|BACKEND")]
    reference: String,
    /// Absolute tolerance for every output (overrides parity.toml and dtype defaults).
    #[arg(long, value_name = "F", value_parser = non_negative)]
    atol: Option<f64>,
    /// Relative tolerance for every output (overrides parity.toml and dtype defaults).
    #[arg(long, value_name = "F", value_parser = non_negative)]
    rtol: Option<f64>,
    /// Intra-op threads for every backend (default: each engine's own choice).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Parses a tolerance: a finite number ≥ 0.
pub fn non_negative(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a finite number ≥ 0")),
    }
}

pub fn run(args: CheckArgs, global: Global) -> Result<u8> {
    let reference = match args.reference.as_str() {
        "golden" => Reference::Golden,
        name => Reference::Backend(name.to_string()),
    };
    let mut names = args.backends.clone();
    if let Reference::Backend(r) = &reference {
        if !names.is_empty() && !names.contains(r) {
            names.push(r.clone());
        }
    }
    let selected = backend::select(&names)?;
    if let Reference::Backend(r) = &reference {
        if !selected.iter().any(|s| s.backend.name() == r) {
            // Not among the available ones: say why (unknown or unavailable).
            backend::select(std::slice::from_ref(r))?;
        }
        if selected.iter().all(|s| s.backend.name() == r) {
            return Err(Error::Usage(format!(
                "--reference {r} leaves no other backend to compare (add --backend)"
            )));
        }
    }
    let suites = crate::suite::discover(&args.suites)?;
    let options = RunOptions {
        atol: args.atol,
        rtol: args.rtol,
        load: LoadOptions {
            threads: args.threads,
        },
    };
    let candidates = selected
        .iter()
        .filter(|s| Reference::Backend(s.backend.name().to_string()) != reference)
        .count();
    let total: usize = suites.iter().map(|s| s.cases.len() * candidates).sum();
    let mut progress = Progress::new(total as u64, args.output.progress_allowed(global.quiet));
    let rows = runner::run(&suites, &selected, &reference, &options, &mut |row| {
        progress.step(&format!("{} {} {}", row.suite, row.case, row.backend));
    });
    progress.finish();
    let infos = selected
        .iter()
        .map(|s| BackendInfo {
            name: s.backend.name().to_string(),
            version: s.version.clone(),
            device: s.device.clone(),
        })
        .collect();
    let report = Report::new(Environment::detect(infos), rows);
    args.output.emit_report(&report, global)
}
