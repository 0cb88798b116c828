//! `parity invariance SUITE... --backend B --check repeat,threads,batch`: the same answer
//! when nothing that should matter changes (docs/invariance.md).

use super::limits::WorkerLimits;
use super::output::{InvarianceFormat, OutputArgs, Progress};
use super::Global;
use crate::backend::{self, LoadOptions};
use crate::error::{Error, Result};
use crate::invariance::report::{InvarianceReport, NotApplicable};
use crate::invariance::{read_data_sets, run_suite, Check, DataSet, Options};
use crate::suite::execution::RunOptions;
use crate::suite::record::{generate, DimValue};
use crate::suite::Suite;
use std::path::PathBuf;

/// Same answers across repeats, sessions, threads, batches and optimisation levels.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Every check compares a backend with itself: each output of each data set is \
bitwise (identical bytes), within (inside the output's tolerance) or out. A check a backend cannot vary \
is reported as not applicable, with the reason.\n\n\
Exit codes: 0 nothing out (with --bitwise: everything bitwise), 1 something out, 2 could not evaluate.\n\n\
A model given as a file is checked on --random data sets (default 3) generated from its input schema \
(--seed, --dim as in `record`).\n\n\
Examples:\n  parity invariance models/mlp --backend ort-cpu --check threads,batch --threads-list 2,4 --batch-sizes 4,16\n  \
parity invariance model.onnx --dim batch=2 --check repeat,batch"
)]
pub struct InvarianceArgs {
    /// Suite directories (or directories holding suites), or ONNX models, checked on
    /// --random data sets generated from their input schema.
    #[arg(value_name = "SUITE|MODEL", required = true)]
    paths: Vec<PathBuf>,
    /// Data sets generated for a model given as a file.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    random: u32,
    /// Seed of the generated data sets.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Size of a dynamic dim of the generated data sets (repeatable; as `record --dim`:
    /// NAME=VALUE or INPUT:AXIS=VALUE).
    #[arg(long = "dim", value_name = "NAME=VALUE")]
    dims: Vec<DimValue>,
    /// A backend to check (repeatable; default: every available backend).
    #[arg(long = "backend", value_name = "B")]
    backends: Vec<String>,
    /// The checks, comma-separated: repeat, session, threads, batch, optimization
    /// (default: all; those that do not apply are reported as such).
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = check)]
    check: Vec<Check>,
    /// Runs of one session for `repeat`; fresh sessions for `session` are one fewer.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(2..=1000))]
    repeats: u32,
    /// Thread counts `threads` compares with 1.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "2,4", value_parser = super::limits::threads)]
    threads_list: Vec<usize>,
    /// Batch sizes `batch` places each data set's rows in.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "2,4,8", value_parser = clap::value_parser!(u32).range(1..=65536))]
    batch_sizes: Vec<u32>,
    /// The batch axis of every input and output (default: each one's first symbolic dim).
    #[arg(long, value_name = "AXIS", value_parser = clap::value_parser!(u32).range(0..64))]
    batch_axis: Option<u32>,
    /// With everything else: fail unless every output is bitwise identical.
    #[arg(long)]
    bitwise: bool,
    /// Absolute tolerance (default: the suite's, then per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    atol: Option<f64>,
    /// Relative tolerance (default: the suite's, then per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    rtol: Option<f64>,
    /// Intra-op threads of the reference sessions (default: each engine's own choice).
    #[arg(long, value_name = "N", value_parser = super::limits::threads)]
    pub(super) threads: Option<usize>,
    /// Run each backend's sessions in worker processes under --timeout and
    /// --memory-limit (see docs/isolation.md): a crash is an error, the run goes on.
    #[arg(long)]
    isolate: bool,
    #[command(flatten)]
    limits: WorkerLimits,
    #[command(flatten)]
    output: OutputArgs<InvarianceFormat>,
}

/// What each path stands for: a suite and its data sets read from its files, or a
/// model (a file) with data sets generated from its input schema and no goldens.
fn subjects(args: &InvarianceArgs) -> Result<Vec<(Suite, Vec<DataSet>)>> {
    let mut out = Vec::new();
    for path in &args.paths {
        if !path.is_file() {
            for suite in crate::suite::discover(std::slice::from_ref(path))? {
                let data = read_data_sets(&suite);
                out.push((suite, data));
            }
            continue;
        }
        let info = crate::formats::onnx_model::inspect(path)?;
        let sets = generate(&info, args.random as usize, args.seed, &args.dims)
            .map_err(|e| Error::file(path, e))?;
        let data = sets
            .into_iter()
            .enumerate()
            .map(|(n, set)| DataSet {
                name: format!("random {n}"),
                inputs: Ok(set.tensors),
            })
            .collect();
        let suite = Suite {
            dir: path.clone(),
            model: path.clone(),
            info,
            manifest: Default::default(),
            cases: Vec::new(),
            gating: Default::default(),
            candidate: None,
        };
        out.push((suite, data));
    }
    Ok(out)
}

/// A check's name.
fn check(s: &str) -> std::result::Result<Check, String> {
    Check::parse(s).ok_or_else(|| {
        let known: Vec<&str> = Check::ALL.iter().map(|c| c.name()).collect();
        format!("unknown check `{s}` (known: {})", known.join(", "))
    })
}

pub fn run(args: InvarianceArgs, global: Global) -> Result<u8> {
    let subjects = subjects(&args)?;
    let mut selected = backend::select(&args.backends)?;
    let mut checks = if args.check.is_empty() {
        Check::ALL.to_vec()
    } else {
        args.check.clone()
    };
    checks.sort();
    checks.dedup();
    if checks.contains(&Check::Threads) && args.threads_list.iter().all(|&t| t == 1) {
        return Err(Error::Usage(
            "--threads-list needs a thread count other than 1 to compare with 1".into(),
        ));
    }
    let load = LoadOptions {
        threads: args.threads,
        ..Default::default()
    };
    if args.isolate {
        selected = crate::isolate::isolate(selected, &args.limits.options(&load));
    }
    let options = Options {
        checks,
        repeats: args.repeats as usize,
        threads_list: args.threads_list.clone(),
        batch_sizes: args.batch_sizes.iter().map(|&b| b as usize).collect(),
        batch_axis: args.batch_axis.map(|a| a as usize),
        run: RunOptions {
            atol: args.atol,
            rtol: args.rtol,
            load,
            histograms: false,
            overlap_inference: false,
        },
    };
    let total = subjects.iter().map(|(_, d)| d.len()).sum::<usize>()
        * selected.len()
        * options.checks.len();
    let mut progress = Progress::new(
        total as u64,
        args.output.general().progress_allowed(global.quiet),
    );
    let mut results = Vec::new();
    let mut not_applicable = Vec::new();
    for (suite, data) in &subjects {
        for s in &selected {
            let (r, na) = run_suite(suite, data, s, &options, &mut |r| {
                progress.step(&format!("{} {} {}", r.case, r.backend, r.check))
            });
            results.extend(r);
            // A backend's own reason is listed once, whatever the number of suites.
            for n in na {
                let seen = not_applicable.iter().any(|m: &NotApplicable| {
                    m.suite.is_none()
                        && n.suite.is_none()
                        && m.backend == n.backend
                        && m.check == n.check
                });
                if !seen {
                    not_applicable.push(n);
                }
            }
        }
    }
    progress.finish();
    let report = InvarianceReport::new(
        super::run_environment(&selected),
        results,
        not_applicable,
        args.bitwise,
    );
    let text = match args.output.format {
        InvarianceFormat::Json => report.to_json() + "\n",
        InvarianceFormat::Text => report.to_text(global.verbose),
        InvarianceFormat::Junit => report.to_junit(),
        InvarianceFormat::Markdown => report.to_markdown(),
        InvarianceFormat::Html => report.to_html(),
    };
    args.output.general().emit(&text)?;
    Ok(report.exit_code())
}
