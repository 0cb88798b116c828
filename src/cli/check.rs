//! `parity check SUITE...`: run golden suites on backends and compare every output.
//! Recorded suites are verified first (sha256 of data files and model, see
//! `suite::integrity`): findings about the suite are warnings, carried by the report
//! (and printed on stderr unless the report is text on stdout), or make every case of
//! the suite an error with `--strict`.

use super::limits::WorkerLimits;
use super::output::{OutputArgs, Progress};
use super::Global;
use crate::backend::{self, LoadOptions};
use crate::error::{Error, Result};
use crate::formats::onnx_model::sha256_hex;
use crate::interrupt;
use crate::panic_guard::lock;
use crate::report::gates::{Gate, SuiteGates};
use crate::report::{
    CandidateModel, CaseId, CaseReport, CaseVerdict, Incomplete, Report, SuiteAudit, Warning,
};
use crate::suite::integrity::{self, Finding};
use crate::suite::matrix::SuiteMatrix;
use crate::suite::runner::{self, Reference, RunOptions};
use crate::suite::shard::{case_key, Shard};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// Integrity warnings printed per suite before the rest are summarised in one line.
const MAX_WARNINGS: usize = 10;

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
    /// A backend that must run (repeatable): the run fails with exit 2 when it is
    /// unavailable, whatever else is selected. For pipelines that must test a given set.
    #[arg(long = "require-backend", value_name = "B")]
    require_backends: Vec<String>,
    /// Check a suite even when the backend its goldens were recorded on
    /// (`[provenance] backend`) is not available here; without it, and without
    /// --backend, such a run is an error (exit 2) rather than a pass on other runtimes.
    #[arg(long)]
    allow_missing_backend: bool,
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
    #[arg(long, value_name = "N", value_parser = super::limits::threads)]
    pub(super) threads: Option<usize>,
    /// Suites and backends checked at once (default: the number of cores). The report's
    /// order does not depend on it; inferences never overlap (unless
    /// --overlap-inference), so latencies are measured alone; --jobs 1 also keeps
    /// session loading off the cores while timing.
    #[arg(long, value_name = "N", value_parser = super::limits::jobs)]
    jobs: Option<usize>,
    /// Let the inference calls of different jobs overlap too: faster where engines leave
    /// cores idle (small models, single-threaded engines); no latency is reported then,
    /// since it would include the other jobs' load.
    #[arg(long)]
    overlap_inference: bool,
    /// A recorded suite whose model.onnx is not the recorded model, or whose data files
    /// are not all listed in parity.toml, is an error (exit 2) instead of a warning.
    #[arg(long)]
    strict: bool,
    /// Also compare every backend with every other (not only with the reference) and
    /// report, per suite × output, an N×N table of max relative error (text and JSON).
    #[arg(long)]
    matrix: bool,
    /// Run only shard I of N (1-based, 1 <= I <= N): each case goes to one shard by a
    /// stable hash of its suite path and data-set name, the same on every machine.
    /// Combine the shards' JSON reports with `parity merge` (see docs/ci.md).
    #[arg(long, value_name = "I/N", value_parser = Shard::parse)]
    shard: Option<Shard>,
    /// Run each backend in a worker process (parity re-executing itself) under
    /// --timeout and --memory-limit: a segfault, abort or hang in a runtime becomes an
    /// `error` case naming the signal, and the run goes on (see docs/isolation.md).
    #[arg(long)]
    isolate: bool,
    #[command(flatten)]
    limits: WorkerLimits,
    /// Run this model file instead of each suite's model.onnx (a re-export, a quantized
    /// or pruned version) and compare it with the suite's goldens: it must take the same
    /// inputs and give every output the suite compares. The report names both models.
    #[arg(long, value_name = "CANDIDATE.onnx")]
    model: Option<PathBuf>,
    /// A dataset gate (repeatable): `OUTPUT:METRIC>=VALUE` or `<=` (top1_agreement,
    /// topk_agreement, label_accuracy, label_accuracy_drop, sqnr_db, psnr_db,
    /// cosine_mean, cosine_min, mean_abs_err, max_abs_err, out_of_tolerance), or
    /// `OUTPUT:METRIC:disparity<=VALUE` across slices. An output with a gate is judged
    /// by its gates instead of element-wise tolerances; see docs/gates.md.
    #[arg(long = "gate", value_name = "OUTPUT:METRIC>=VALUE", value_parser = Gate::parse)]
    gates: Vec<Gate>,
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
    interrupt::install();
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
    // Required backends must be available (select says why not) and join the run.
    if !args.require_backends.is_empty() {
        backend::select(&args.require_backends)?;
    }
    if !names.is_empty() {
        for r in &args.require_backends {
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
    }
    let mut selected = backend::select(&names)?;
    if args.isolate {
        let load = LoadOptions {
            threads: args.threads,
            ..Default::default()
        };
        selected = crate::isolate::isolate(selected, &args.limits.options(&load));
    }
    // After Ctrl-C or SIGTERM, the remaining cases are refused instead of run.
    let selected = interrupt::observe(selected);
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
    let jobs = args.jobs.unwrap_or_else(crate::jobs::default_jobs);
    let mut suites = Vec::new();
    let discovered = crate::suite::discover_each(&args.suites, jobs)?;
    for (root, mut found) in args.suites.iter().zip(discovered) {
        if let Some(shard) = args.shard {
            for suite in &mut found {
                let dir = suite.dir.clone();
                // A stateful suite's steps stay together: its first data set decides.
                let whole = suite
                    .cases
                    .first()
                    .filter(|_| suite.is_sequence())
                    .map(|c| c.name.clone());
                suite.cases.retain(|c| {
                    shard.contains(&case_key(root, &dir, whole.as_deref().unwrap_or(&c.name)))
                });
            }
            found.retain(|s| !s.cases.is_empty());
        }
        suites.extend(found);
    }
    let candidate = match &args.model {
        Some(path) => Some((path, crate::formats::onnx_model::inspect(path)?)),
        None => None,
    };
    let mut candidate_warnings = Vec::new();
    if let Some((path, info)) = &candidate {
        for suite in &mut suites {
            let (io, warned) = crate::suite::candidate::check_schema(
                &suite.info.inputs,
                &suite.info.outputs,
                &info.inputs,
                &info.outputs,
                &suite.manifest.candidate,
            )
            .map_err(|e| Error::file(path, format!("{e}, against {}", suite.model.display())))?;
            suite.candidate = Some(io);
            candidate_warnings.extend(warned.into_iter().map(|message| Warning {
                suite: Some(suite.dir.display().to_string()),
                message: format!("{}: {message}", path.display()),
            }));
            suite.model = path.to_path_buf();
        }
    }
    add_gates(&mut suites, &args.gates)?;
    if reference == Reference::Golden && args.backends.is_empty() && !args.allow_missing_backend {
        require_recorded_backends(&suites, &selected)?;
    }
    args.output.refuse_inputs(
        suites
            .iter()
            .map(|s| s.dir.as_path())
            .chain(args.model.as_deref()),
    )?;
    let findings: Vec<Vec<Finding>> = suites.iter().map(integrity::audit).collect();
    let mut warnings = candidate_warnings;
    if !args.strict {
        for (suite, suite_findings) in suites.iter().zip(&findings) {
            warnings.extend(suite_findings.iter().map(|f| Warning {
                suite: Some(suite.dir.display().to_string()),
                message: f.to_string(),
            }));
        }
    }
    let warn_on_stderr = !args.output.text_on_stdout();
    if !args.strict && warn_on_stderr {
        for suite_findings in &findings {
            for f in suite_findings.iter().take(MAX_WARNINGS) {
                eprintln!("warning: {f}");
            }
            if suite_findings.len() > MAX_WARNINGS {
                eprintln!(
                    "warning: ... and {} more like these",
                    suite_findings.len() - MAX_WARNINGS
                );
            }
        }
    }
    let options = RunOptions {
        atol: args.atol,
        rtol: args.rtol,
        load: LoadOptions {
            threads: args.threads,
            ..Default::default()
        },
        histograms: args.output.wants_histograms(),
        overlap_inference: args.overlap_inference,
    };
    let candidates = selected
        .iter()
        .filter(|s| Reference::Backend(s.backend.name().to_string()) != reference)
        .count();
    let total: usize = suites.iter().map(|s| s.cases.len() * candidates).sum();
    let progress = Progress::new(total as u64, args.output.progress_allowed(global.quiet));
    let mut rows = Vec::new();
    let backend_names: Vec<String> = selected
        .iter()
        .map(|s| s.backend.name().to_string())
        .collect();
    // Suites whose integrity audit fails under --strict are not run; the others are
    // run `--jobs` at a time, their rows and matrices put back in suite order.
    let strict_failures: Vec<Option<&Finding>> = suites
        .iter()
        .zip(&findings)
        .map(|(_, f)| f.first().filter(|_| args.strict))
        .collect();
    let runnable: Vec<&crate::suite::Suite> = suites
        .iter()
        .zip(&strict_failures)
        .filter(|(_, f)| f.is_none())
        .map(|(s, _)| s)
        .collect();
    let matrices: Vec<Mutex<SuiteMatrix>> = runnable
        .iter()
        .map(|s| Mutex::new(SuiteMatrix::new(s, &backend_names, &options)))
        .collect();
    let progress = Mutex::new(progress);
    let step = |row: &CaseReport| {
        lock(&progress).step(&format!("{} {} {}", row.suite, row.case, row.backend));
    };
    let observe = |s: usize, case: usize, backend: &str, outputs| {
        if args.matrix {
            lock(&matrices[s]).add(case, backend, outputs);
        }
    };
    let mut ran = runner::run_jobs(
        &runnable, &selected, &reference, &options, jobs, &step, &observe,
    )
    .into_iter();
    let mut matrices = matrices.into_iter();
    let mut matrix = Vec::new();
    for (suite, (strict_failure, findings)) in
        suites.iter().zip(strict_failures.iter().zip(&findings))
    {
        let Some(first) = strict_failure else {
            rows.extend(ran.next().unwrap_or_default());
            if let Some(m) = matrices.next().filter(|_| args.matrix) {
                matrix.extend(
                    m.into_inner()
                        .unwrap_or_else(PoisonError::into_inner)
                        .finish(),
                );
            }
            continue;
        };
        let more = match findings.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        let msg = format!("{first}{more} [--strict]");
        for case in &suite.cases {
            for s in &selected {
                let backend = s.backend.name().to_string();
                if Reference::Backend(backend.clone()) == reference {
                    continue;
                }
                let id = CaseId {
                    suite: suite.dir.display().to_string(),
                    case: case.name.clone(),
                    backend,
                    reference: reference.name().to_string(),
                };
                let row = CaseReport::errored(id, msg.clone(), None);
                step(&row);
                rows.push(row);
            }
        }
        if args.matrix {
            // Nothing ran: the suite's matrix says so, as before.
            matrix.extend(SuiteMatrix::new(suite, &backend_names, &options).finish());
        }
    }
    let progress = progress
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    progress.finish();
    let mut report = Report::new(super::run_environment(&selected), rows);
    report.suites = suites
        .iter()
        .map(|s| {
            audit(s).map(|mut a| {
                a.candidate = candidate.as_ref().map(|(path, info)| CandidateModel {
                    path: path.display().to_string(),
                    sha256: info.sha256.clone(),
                });
                a
            })
        })
        .collect::<Result<_>>()?;
    let suite_names: Vec<String> = suites.iter().map(|s| s.dir.display().to_string()).collect();
    let gated: Vec<SuiteGates> = suites
        .iter()
        .zip(&suite_names)
        .map(|(s, name)| SuiteGates {
            suite: name,
            gates: &s.gating.gates,
        })
        .collect();
    report.judge_gates(&gated);
    if args.matrix {
        report.matrix = Some(matrix);
    }
    if let Some(shard) = args.shard {
        report.shard = Some(shard.to_string());
        if report.cases.is_empty() {
            // More shards than cases: an empty shard is a legitimate pass (docs/ci.md);
            // `parity merge` still fails a run whose shards select nothing at all.
            let message = format!("shard {shard} selects no case");
            if warn_on_stderr {
                eprintln!("warning: {message}");
            }
            warnings.push(Warning {
                suite: None,
                message,
            });
            report.verdict = CaseVerdict::Pass;
        }
    }
    report.warnings = warnings;
    if let Some(signal) = interrupt::pending() {
        eprintln!("parity: interrupted by {signal}; the cases not run are errors and the report is marked incomplete");
        report.incomplete = Some(Incomplete {
            signal: signal.name(),
        });
    }
    let code = args.output.emit_report(&report, global)?;
    Ok(interrupt::exit_code(code))
}

/// Gives each suite the command line's gates on its outputs. A gate that names an
/// output no suite has, a label gate on a suite without labels for that output, or any
/// gate on a generation suite, is a usage error (exit 2): a gate that judges nothing
/// must never read as a pass.
fn add_gates(suites: &mut [crate::suite::Suite], gates: &[Gate]) -> Result<()> {
    for gate in gates {
        let mut used = false;
        for suite in suites.iter_mut() {
            if !suite.info.outputs.iter().any(|o| o.name == gate.output) {
                continue;
            }
            let text = gate.text();
            if suite.manifest.generate.is_some() {
                return Err(Error::Usage(format!(
                    "--gate {text}: {} is a generation suite, judged token by token (docs/generate.md), not by dataset gates",
                    suite.dir.display()
                )));
            }
            if gate.metric.needs_labels()
                && suite.gating.labelled_output.as_deref() != Some(gate.output.as_str())
            {
                return Err(Error::Usage(format!(
                    "--gate {text}: {} has no labels for output `{}` (labels.csv or [labels], docs/gates.md)",
                    suite.dir.display(),
                    gate.output
                )));
            }
            suite.gating.add_gate(gate.clone());
            used = true;
        }
        if !used {
            return Err(Error::Usage(format!(
                "--gate {}: no suite of this run has an output `{}`",
                gate.text(),
                gate.output
            )));
        }
    }
    Ok(())
}

/// A run that chose its backends by availability must include the backend each suite's
/// goldens were recorded on (`[provenance] backend`, when it is a built-in backend):
/// otherwise a gate that lost its production runtime (a missing library) would pass on
/// the others without a word. `--backend` or `--allow-missing-backend` lift this.
fn require_recorded_backends(
    suites: &[crate::suite::Suite],
    selected: &[backend::Selected],
) -> Result<()> {
    let skipped = backend::skipped(selected);
    for suite in suites {
        let Some(recorded) = suite
            .manifest
            .provenance
            .as_ref()
            .and_then(|p| p.backend.as_deref())
        else {
            continue;
        };
        if selected.iter().any(|s| s.backend.name() == recorded) {
            continue;
        }
        // Only built-in backends are expected on every machine; goldens from an
        // endpoint or an exec runner are checked on whatever runs here.
        let Some((_, reason)) = skipped.iter().find(|(name, _)| name == recorded) else {
            continue;
        };
        return Err(Error::file(
            suite.dir.join(crate::suite::manifest::MANIFEST_FILE),
            format!(
                "goldens recorded on {recorded}, which will not run ({reason}); pass --allow-missing-backend to check on the other backends, or choose them with --backend"
            ),
        ));
    }
    Ok(())
}

/// The hashes that tie a suite's verdicts to the exact model and manifest checked.
fn audit(suite: &crate::suite::Suite) -> Result<SuiteAudit> {
    let manifest = suite.dir.join(crate::suite::manifest::MANIFEST_FILE);
    let manifest_sha256 = match manifest.exists() {
        true => Some(sha256_hex(&crate::formats::read_file(&manifest)?)),
        false => None,
    };
    Ok(SuiteAudit {
        suite: suite.dir.display().to_string(),
        model_sha256: suite.info.sha256.clone(),
        manifest_sha256,
        provenance: suite.manifest.provenance.clone(),
        candidate: None,
    })
}
