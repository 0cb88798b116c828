//! `parity fuzz MODEL`: edge-case inputs from the model's schema on every backend, each
//! backend in a worker process unless `--no-isolate`; findings make the exit code 1.

use super::limits::WorkerLimits;
use super::output::{Format, OutputArgs, Progress};
use super::Global;
use crate::backend::{self, LoadOptions};
use crate::error::{Error, Result};
use crate::formats::onnx_model;
use crate::fuzz::plan;
use crate::fuzz::report::{group, FuzzReport, FuzzSummary, IsolationInfo, SCHEMA};
use crate::fuzz::run::{self, FuzzOptions};
use crate::fuzz::save::{self, SaveContext};
use crate::suite::manifest::Manifest;
use crate::suite::record::{dims, DimValue};
use std::path::PathBuf;

/// Generate edge-case inputs from the model's schema and run them on every backend.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 no finding, 1 findings (crash, timeout, error, NaN/Inf, mismatch), 2 could not evaluate.\n\nA suite directory is fuzzed through its model.onnx with its parity.toml: each output's mode and tolerance, and the [inputs.NAME] ranges the generated values keep to.\n\nExamples:\n  parity fuzz model.onnx --backend ort-cpu --backend tract-cpu --cases 64 --seed 1 --save fuzz-cases/\n  parity fuzz goldens/mlp --dim batch=4 --finite-inputs --format junit --out fuzz.xml"
)]
pub struct FuzzArgs {
    /// The ONNX model, or a suite directory (its model.onnx and parity.toml).
    model: PathBuf,
    /// Size of a dynamic dim (repeatable), as in `record`: NAME=VALUE for every axis with
    /// that dim_param, INPUT:AXIS=VALUE for one axis. A dim given here stays at that
    /// size in every case; the others are varied (1, empty, largest batch).
    #[arg(long = "dim", value_name = "NAME=VALUE")]
    dims: Vec<DimValue>,
    /// Backend to run (repeatable); default: every available backend.
    #[arg(long = "backend", value_name = "B")]
    backends: Vec<String>,
    /// The backend the others are compared with (default: the first one).
    #[arg(long, value_name = "B")]
    reference: Option<String>,
    /// Number of cases: the fixed edge cases first, then random combinations.
    #[arg(long, default_value_t = 32, value_name = "N")]
    cases: usize,
    /// Seed of the random values and combinations.
    #[arg(long, default_value_t = 0, value_name = "S")]
    seed: u64,
    /// Budget of one case's inputs in bytes (K/M/G suffixes); the `max-batch` case
    /// grows the first symbolic dim up to it.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = max_bytes)]
    max_bytes: usize,
    /// Absolute tolerance of the cross-backend comparison (default: per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    atol: Option<f64>,
    /// Relative tolerance of the cross-backend comparison (default: per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    rtol: Option<f64>,
    /// Intra-op threads for every backend.
    #[arg(long, value_name = "N", value_parser = super::limits::threads)]
    pub(super) threads: Option<usize>,
    /// Run the backends inside this process (a crash then ends the run).
    #[arg(long)]
    no_isolate: bool,
    /// Leave NaN and ±Inf out of the inputs (the nan, pos-inf and neg-inf cases and the
    /// mixed fill), for a model whose contract excludes them.
    #[arg(long)]
    finite_inputs: bool,
    #[command(flatten)]
    limits: WorkerLimits,
    /// Write each case with a finding as a suite DIR/CASE_RECIPE that `parity check`
    /// replays (expected outputs: the reference's).
    #[arg(long, value_name = "DIR")]
    save: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs<FuzzFormat>,
}

/// `--format` of `fuzz`: text, JSON, or JUnit XML for CI (one test case per case and
/// backend; a documented refusal is a skipped test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FuzzFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
    /// JUnit XML for CI test reporters.
    Junit,
}

impl From<FuzzFormat> for Format {
    fn from(f: FuzzFormat) -> Format {
        match f {
            FuzzFormat::Text => Format::Text,
            FuzzFormat::Json => Format::Json,
            FuzzFormat::Junit => Format::Junit,
        }
    }
}

/// `--max-bytes`: at most the 2 GiB one input can take (a saved case is a `.pb` file).
fn max_bytes(s: &str) -> std::result::Result<usize, String> {
    let limit = crate::suite::record::MAX_TENSOR_BYTES;
    match crate::isolate::parse_size(s, 1)? {
        Some(n) if usize::try_from(n).is_ok_and(|n| n <= limit) => Ok(n as usize),
        Some(_) => Err(format!(
            "`{s}` is more than the {limit} bytes (2 GiB) one input can take"
        )),
        None => Err("--max-bytes needs a size".to_string()),
    }
}

pub fn run(args: FuzzArgs, global: Global) -> Result<u8> {
    let output = args.output.general();
    output.refuse_inputs([args.model.as_path()])?;
    if args.cases == 0 {
        return Err(Error::Usage("--cases must be at least 1".to_string()));
    }
    // A suite is fuzzed through its model, as every other verb takes one.
    let (model, manifest) = if args.model.is_dir() {
        let manifest = Manifest::read_or_default(&args.model)?;
        (args.model.join(crate::suite::MODEL_FILE), manifest)
    } else {
        (args.model.clone(), Manifest::default())
    };
    let model_bytes = crate::formats::read_file(&model)?;
    let info = onnx_model::inspect(&model)?;
    let names =
        |specs: &[crate::backend::IoSpec]| specs.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    manifest.check_names(&args.model, &names(&info.inputs), &names(&info.outputs))?;
    let specs = dims::pin_dims(&info.inputs, &args.dims).map_err(|m| Error::file(&model, m))?;
    let domain = plan::Domain {
        finite_only: args.finite_inputs,
        ranges: manifest.inputs.clone(),
    };
    let cases = plan::plan(&specs, args.cases, args.seed, args.max_bytes, &domain)
        .map_err(|m| Error::file(&model, m))?;
    let mut selected = backend::select(&args.backends)?;
    if let Some(r) = &args.reference {
        match selected.iter().position(|s| s.backend.name() == r) {
            Some(i) => selected[..=i].rotate_right(1),
            None => {
                let mut reference = backend::select(std::slice::from_ref(r))?;
                reference.append(&mut selected);
                selected = reference;
            }
        }
    }
    let load = LoadOptions {
        threads: args.threads,
        ..Default::default()
    };
    let options = FuzzOptions {
        atol: args.atol,
        rtol: args.rtol,
        isolate: (!args.no_isolate).then(|| args.limits.options(&load)),
        load,
        manifest,
    };
    let mut progress = Progress::new(cases.len() as u64, output.progress_allowed(global.quiet));
    let outcome = run::run(&model, &selected, &cases, args.seed, &options, &mut |c| {
        progress.step(&format!("{} {}", c.case.case, c.case.recipe))
    })
    .map_err(|m| Error::file(&model, m))?;
    progress.finish();
    let reference_ran = |c: &run::CaseResult| {
        c.results
            .first()
            .is_some_and(|r| r.status == run::Status::Ok)
    };
    if outcome.findings.is_empty() && !outcome.cases.iter().any(reference_ran) {
        // Every input was refused by the reference: nothing was judged, which is not a pass.
        let first = outcome
            .cases
            .iter()
            .find_map(|c| c.results.first().and_then(|r| r.error.clone()))
            .unwrap_or_else(|| "no case ran".to_string());
        return Err(Error::file(
            &model,
            format!(
                "the reference backend ran none of the {} cases, so nothing was compared (first error: {first})",
                outcome.cases.len()
            ),
        ));
    }
    let mut findings = outcome.findings;
    if let Some(dir) = &args.save {
        let ctx = SaveContext {
            dir,
            model: &model,
            info: &info,
            seed: args.seed,
            backends: &selected,
            atol: args.atol,
            rtol: args.rtol,
        };
        for result in &outcome.cases {
            if !findings.iter().any(|f| f.case == result.case.case) {
                continue;
            }
            match save::save(&ctx, result)? {
                Some((path, warnings)) => {
                    for w in warnings {
                        eprintln!("note: {w}");
                    }
                    let shown = path.display().to_string();
                    for f in findings.iter_mut().filter(|f| f.case == result.case.case) {
                        f.saved = Some(shown.clone());
                    }
                }
                None => eprintln!(
                    "note: {} not saved: no backend produced its outputs",
                    result.case.case
                ),
            }
        }
    }
    let report = FuzzReport {
        schema: SCHEMA,
        verdict: if findings.is_empty() { "pass" } else { "fail" },
        environment: super::run_environment(&selected),
        model: model.display().to_string(),
        model_sha256: onnx_model::sha256_hex(&model_bytes),
        seed: args.seed,
        max_bytes: args.max_bytes,
        finite_inputs: args.finite_inputs,
        reference: selected
            .first()
            .map(|s| s.backend.name().to_string())
            .unwrap_or_default(),
        isolation: options.isolate.as_ref().map(|i| IsolationInfo {
            timeout_s: i.timeout.as_secs_f64(),
            memory_limit_bytes: i.memory_limit,
        }),
        dims: args.dims.iter().map(ToString::to_string).collect(),
        summary: FuzzSummary::new(outcome.cases.len(), &findings, &outcome.notes),
        groups: group(&findings),
        note_groups: group(&outcome.notes),
        skipped: outcome.skipped,
        findings,
        notes: outcome.notes,
        cases: outcome.cases,
    };
    let text = match args.output.format {
        FuzzFormat::Json => report.to_json() + "\n",
        FuzzFormat::Junit => report.to_junit(),
        FuzzFormat::Text => report.to_text(global.quiet, global.verbose),
    };
    output.emit(&text)?;
    Ok(report.exit_code())
}
