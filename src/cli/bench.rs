//! `parity bench MODEL|SUITE... --backend B...`: latency and throughput on this machine,
//! in MLPerf LoadGen's scenarios, with a noise-aware gate against a saved baseline.

use super::output::{emit_to, progress_wanted, refuse_inputs_as_outputs, Progress};
use super::seconds;
use super::Global;
use crate::backend;
use crate::bench::baseline::{self, Gate};
use crate::bench::inputs;
use crate::bench::report::{self, BenchReport, Scenario, BENCH_SCHEMA};
use crate::bench::runner::{self, Plan};
use crate::bench::scenario::Settings;
use crate::error::{Error, Result};
use crate::formats::atomic::write_atomic;
use crate::suite::record::DimValue;
use std::path::PathBuf;
use std::time::Duration;

/// `--format` of `bench`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    /// A table for people.
    Text,
    /// `parity.bench/v1` JSON (also what --save-baseline writes).
    Json,
    /// One row per result, for spreadsheets and plotting.
    Csv,
    /// One self-contained HTML page with latency charts (inline SVG).
    Html,
    /// OpenMetrics text (latency summary, throughput, stability, regression) for Prometheus.
    Openmetrics,
}

/// Benchmark models on backends: latency (single-stream), throughput (offline), latency under load (server), token generation (generate).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
parity bench models/mlp --backend ort-cpu --backend candle-cpu\n  \
parity bench models/cnn --scenario offline --batch 1 --batch 8 --batch 32\n  \
parity bench models/mlp --scenario server --qps 2000 --p99-ms 1\n  \
parity bench models/mlp --scenario server --find-max-qps --p99-ms 0.5\n  \
parity bench models/mlp --save-baseline base.json   # later: --baseline base.json\n  \
parity bench lm.onnx --scenario generate --prompt-len 16 --max-new-tokens 32\n\n\
A measurement runs --warmup queries per worker, then until both --min-queries and\n\
--min-duration are reached (at most --max-duration). The run is split into --windows\n\
parts; if their median latencies differ by more than --stability-pct the result is\n\
marked unstable. Exit codes: 0 done (no regression), 1 regression against --baseline\n\
or (--verify) a response that mismatched the golden or failed,\n\
2 could not run (bad flags, unreadable model, a backend that cannot run it).")]
pub struct BenchArgs {
    /// ONNX models or suite directories (a suite's first data set is the query).
    #[arg(required = true, value_name = "MODEL|SUITE")]
    models: Vec<PathBuf>,
    /// Backend (repeatable); default: every available backend. Each is compared with the first.
    #[arg(long = "backend", value_name = "B")]
    backends: Vec<String>,
    /// Scenario.
    #[arg(long, value_enum, default_value_t = Scenario::SingleStream)]
    scenario: Scenario,
    /// Untimed queries per worker first (repeated for at least 100 ms; 0: no warm-up).
    #[arg(long, default_value_t = 10, value_name = "N")]
    warmup: usize,
    /// Measure at least N queries (per batch size or rate).
    #[arg(long, default_value_t = 200, value_name = "N")]
    min_queries: usize,
    /// ...and at least this many seconds.
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS", value_parser = seconds)]
    min_duration: f64,
    /// Stop after this many seconds even if --min-queries is not reached (marked "cut short").
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS", value_parser = seconds)]
    max_duration: f64,
    /// Intra-op threads per session (default: the engine's choice).
    #[arg(long, value_name = "N", value_parser = super::limits::threads)]
    pub(super) threads: Option<usize>,
    /// Parallel workers issuing queries.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = super::limits::concurrency)]
    concurrency: usize,
    /// Sessions the workers share (default: one per worker).
    #[arg(long, value_name = "N", value_parser = positive)]
    sessions: Option<usize>,
    /// Batch size to tile the inputs to along their batch dimension (repeatable; default: the inputs as they are).
    #[arg(long = "batch", value_name = "N", value_parser = positive)]
    batches: Vec<usize>,
    /// Server: offered Poisson rate, queries/s.
    #[arg(long, value_name = "Q", value_parser = positive_f64, conflicts_with = "find_max_qps")]
    qps: Option<f64>,
    /// Server: search the highest rate whose p99 latency stays within --p99-ms.
    #[arg(long, requires = "p99_ms")]
    find_max_qps: bool,
    /// Server: latency bound in ms (late queries; the criterion of --find-max-qps).
    #[arg(long, value_name = "MS", value_parser = positive_f64)]
    p99_ms: Option<f64>,
    /// Seed of generated inputs and of the arrival process.
    #[arg(long, default_value_t = 0, value_name = "S")]
    seed: u64,
    /// Symbolic dim size for generated inputs (repeatable): NAME=VALUE.
    #[arg(long = "dim", value_name = "NAME=VALUE")]
    dims: Vec<DimValue>,
    /// Windows the run is split into for the stability check.
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = positive)]
    windows: usize,
    /// Largest spread between windows' median latencies, in %, of a stable run.
    #[arg(long, default_value_t = 10.0, value_name = "PCT", value_parser = positive_f64)]
    stability_pct: f64,
    /// Write this run as a baseline (atomically).
    #[arg(long, value_name = "FILE", value_parser = super::output::writable_file)]
    save_baseline: Option<PathBuf>,
    /// Gate against a saved baseline: exit 1 on a regression.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Smallest slowdown that is a regression, in %.
    #[arg(long, default_value_t = 5.0, value_name = "PCT", value_parser = positive_f64)]
    threshold_pct: f64,
    /// A regression must also exceed this multiple of the measured noise (window spread).
    #[arg(long, default_value_t = 3.0, value_name = "K", value_parser = positive_f64)]
    noise_multiple: f64,
    /// With --baseline: a baseline result this run did not re-measure (a model or
    /// backend left out or failing) fails the gate (exit 1) instead of a warning.
    #[arg(long, requires = "baseline")]
    strict: bool,
    /// Check every response against the suite's golden outputs (of the data set queried)
    /// within its tolerances; count mismatches and errors (then not fatal); exit 1 on any.
    #[arg(long, conflicts_with_all = ["batches", "dims"])]
    verify: bool,
    /// Generate scenario: tokens in each (random) prompt.
    #[arg(long, value_name = "P", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=crate::generate::MAX_TOKENS as i64))]
    prompt_len: u32,
    /// Generate scenario: tokens generated per query.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=crate::generate::MAX_TOKENS as i64))]
    max_new_tokens: u32,
    /// Report format.
    #[arg(long, value_enum, default_value_t = BenchFormat::Text)]
    format: BenchFormat,
    /// Write the report to FILE (atomically) instead of standard output.
    #[arg(long, value_name = "FILE", value_parser = super::output::writable_file)]
    out: Option<PathBuf>,
}

fn positive(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number ≥ 1")),
    }
}

fn positive_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number > 0")),
    }
}

/// Runs the benchmark, prints the report, saves/gates the baseline; exit 1 on a regression.
pub fn run(args: BenchArgs, global: Global) -> Result<u8> {
    crate::interrupt::install();
    if args.scenario == Scenario::Server && args.qps.is_none() && !args.find_max_qps {
        return Err(Error::Usage(
            "--scenario server needs --qps Q or --find-max-qps --p99-ms MS".to_string(),
        ));
    }
    if args.scenario != Scenario::Server && (args.qps.is_some() || args.find_max_qps) {
        return Err(Error::Usage(
            "--qps and --find-max-qps are for --scenario server".to_string(),
        ));
    }
    if args.scenario == Scenario::Generate && !args.batches.is_empty() {
        return Err(Error::Usage(
            "--batch is not used by --scenario generate (each worker decodes one stream)".into(),
        ));
    }
    let sessions = args.sessions.unwrap_or(args.concurrency);
    if sessions > args.concurrency {
        return Err(Error::Usage(format!(
            "--sessions {sessions} is more than --concurrency {}: a session would be idle",
            args.concurrency
        )));
    }
    let outputs = [
        ("--out", args.out.as_deref()),
        ("--save-baseline", args.save_baseline.as_deref()),
    ];
    refuse_inputs_as_outputs(
        &outputs,
        args.models
            .iter()
            .map(PathBuf::as_path)
            .chain(args.baseline.as_deref()),
    )?;
    // Read the baseline before spending minutes measuring.
    let baseline = match &args.baseline {
        Some(path) => Some((path, baseline::read(path)?)),
        None => None,
    };
    if args.verify {
        if let Some(m) = args.models.iter().find(|m| !m.is_dir()) {
            return Err(Error::file(
                m,
                "--verify needs a suite (a directory with model.onnx and data sets) to know the expected outputs",
            ));
        }
    }
    let mut targets = args
        .models
        .iter()
        .map(|m| {
            inputs::target(
                m,
                args.seed,
                &args.dims,
                args.scenario == Scenario::Generate,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    inputs::disambiguate(&mut targets);
    // After Ctrl-C or SIGTERM, measurements stop and nothing more is loaded.
    let selected = crate::interrupt::observe(backend::select(&args.backends)?);
    let plan = Plan {
        scenario: args.scenario,
        settings: Settings {
            warmup: args.warmup,
            min_queries: args.min_queries,
            min_duration: Duration::from_secs_f64(args.min_duration),
            max_duration: Duration::from_secs_f64(args.max_duration.max(args.min_duration)),
            concurrency: args.concurrency,
        },
        batches: args.batches.clone(),
        sessions,
        threads: args.threads,
        qps: args.qps,
        find_max_qps: args.find_max_qps,
        p99_ms: args.p99_ms,
        seed: args.seed,
        windows: args.windows,
        stability_limit: args.stability_pct / 100.0,
        verify: args.verify,
        prompt_len: args.prompt_len as usize,
        max_new_tokens: args.max_new_tokens as usize,
    };
    let allowed =
        args.format == BenchFormat::Text && args.out.is_none() && progress_wanted(global.quiet);
    let units = targets.len() * selected.len() * args.batches.len().max(1);
    let mut progress = Progress::new(units as u64, allowed);
    let mut results = Vec::new();
    for target in &targets {
        for s in &selected {
            results.extend(runner::bench(target, s, &plan, &mut |msg| {
                progress.step(msg)
            }));
        }
    }
    progress.finish();
    if let Some(signal) = crate::interrupt::pending() {
        // A partial benchmark is no result: no report, and above all no baseline.
        eprintln!("parity: interrupted by {signal}; no report or baseline written");
        return Ok(signal.exit_code());
    }
    if let Some(first) = selected.first() {
        runner::relate_to_first(&mut results, first.backend.name());
    }
    let mut bench = BenchReport {
        schema: BENCH_SCHEMA.to_string(),
        environment: super::run_environment(&selected),
        results,
        baseline: None,
    };
    if let Some(path) = &args.save_baseline {
        let json = bench.to_json() + "\n";
        write_atomic(path, |w| w.write_all(json.as_bytes()))?;
    }
    if let Some((path, before)) = &baseline {
        let gate = Gate {
            threshold: args.threshold_pct / 100.0,
            noise_multiple: args.noise_multiple,
            strict: args.strict,
        };
        bench.baseline = Some(baseline::check(path, before, &bench, gate));
    }
    let rendered = match args.format {
        BenchFormat::Text => report::render_text(&bench),
        BenchFormat::Json => bench.to_json() + "\n",
        BenchFormat::Csv => report::render_csv(&bench),
        BenchFormat::Html => crate::bench::html::render(&bench),
        BenchFormat::Openmetrics => crate::bench::openmetrics::render(&bench),
    };
    emit_to(args.out.as_deref(), &rendered)?;
    let failed = bench.results.iter().any(|r| r.error.is_some());
    for r in bench.results.iter().filter(|r| r.error.is_some()) {
        if args.format != BenchFormat::Text || args.out.is_some() {
            eprintln!(
                "error: {} on {}: {}",
                r.model,
                r.backend,
                r.error.as_deref().unwrap_or_default()
            );
        }
    }
    let unverified = bench
        .results
        .iter()
        .any(|r| r.verify.as_ref().is_some_and(|v| v.bad() > 0));
    let code = match (&bench.baseline, failed) {
        (_, true) => 2,
        _ if unverified => 1,
        (Some(b), _) if b.fails() => 1,
        _ => 0,
    };
    Ok(crate::interrupt::exit_code(code))
}
