//! Runs the planned cases on every backend and turns what happened into findings:
//! crashes, timeouts, engine errors where the reference ran, NaN/Inf where the
//! reference is finite (or from finite inputs at all), and disagreement beyond tolerance
//! (the suite's per-output mode and tolerance when fuzzing a suite). A backend's
//! documented refusal (an `unsupported op` error, such as candle-cpu refusing NaN in a
//! max pooling) is a note, not a finding. Every finding and note carries a `cause`
//! that does not depend on the case, so reports can group the same behaviour.

use super::plan::FuzzCase;
use crate::backend::{LoadOptions, Selected, Session};
use crate::compare::{self, OutputComparison, Policy, Verdict};
use crate::isolate::{IsolateOptions, IsolatedSession, RunFailure};
use crate::report::OutputReport;
use crate::suite::manifest::{Manifest, OutputRule, ToleranceOverride};
use crate::tensor::Tensor;
use std::path::Path;
use std::time::Instant;

/// How a fuzz run compares and isolates.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// `--atol`, replacing the dtype default.
    pub atol: Option<f64>,
    /// `--rtol`, replacing the dtype default.
    pub rtol: Option<f64>,
    /// Worker limits; `None` runs the backends in this process (`--no-isolate`).
    pub isolate: Option<IsolateOptions>,
    /// The fuzzed suite's `parity.toml` (default settings for a bare model): each
    /// output's mode, outlier fraction and tolerance, below `--atol`/`--rtol`.
    pub manifest: Manifest,
    /// Passed to every backend.
    pub load: LoadOptions,
}

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// The backend's process died (signal or exit).
    Crash,
    /// The backend did not answer within `--timeout`.
    Timeout,
    /// The backend refused inputs that the reference ran.
    Error,
    /// NaN/Inf in an output where the reference is finite, or from finite inputs.
    NonFinite,
    /// Outputs differ from the reference beyond tolerance.
    Mismatch,
    /// A documented refusal (`unsupported op`) of inputs the reference ran: a note.
    Refused,
}

impl FindingKind {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::Crash => "crash",
            FindingKind::Timeout => "timeout",
            FindingKind::Error => "error",
            FindingKind::NonFinite => "non-finite",
            FindingKind::Mismatch => "mismatch",
            FindingKind::Refused => "refused",
        }
    }
}

/// One problem found: which case, which backend, what.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    /// The case (`fuzz_0001`), or `load` for a crash while loading the model.
    pub case: String,
    /// The case's recipe (`nan`).
    pub recipe: String,
    pub backend: String,
    pub kind: FindingKind,
    /// One line: the signal, the error, the output and its values.
    pub detail: String,
    /// What happened, without what varies between cases (counts, values, indices): the
    /// same cause on the same backend is one behaviour, found by several cases.
    pub cause: String,
    /// The suite `--save` wrote for this case, when it did.
    pub saved: Option<String>,
}

/// How one backend's run of a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Outputs were produced.
    Ok,
    /// The engine refused (a clean error).
    Error,
    /// The worker died.
    Crash,
    /// The worker was killed after `--timeout`.
    Timeout,
}

/// One backend's run of one case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendRun {
    pub backend: String,
    pub status: Status,
    /// The error, crash or timeout, one line.
    pub error: Option<String>,
    /// The op of an `unsupported op` refusal: the backend documents that it does not
    /// implement these inputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_op: Option<String>,
    pub latency_ms: Option<f64>,
    /// Each output compared with the reference's (empty for the reference itself).
    pub outputs: Vec<OutputReport>,
    /// The outputs, for `--save`.
    #[serde(skip)]
    pub produced: Option<Vec<(String, Tensor)>>,
}

/// A case with every backend's run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    #[serde(flatten)]
    pub case: FuzzCase,
    /// The reference first, then the other backends in the order given.
    pub results: Vec<BackendRun>,
    /// The inputs, for `--save`.
    #[serde(skip)]
    pub tensors: Vec<Tensor>,
}

/// A backend that could not load the model at all (its cases are not run).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    pub backend: String,
    pub reason: String,
}

/// A loaded backend: in a worker, or in this process.
enum Target {
    Isolated(Box<IsolatedSession>),
    InProcess(Box<dyn Session>),
}

impl Target {
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, RunFailure> {
        match self {
            Target::Isolated(s) => s.run_isolated(inputs),
            Target::InProcess(s) => {
                crate::suite::runner::run_guarded(s.as_mut(), inputs).map_err(RunFailure::Engine)
            }
        }
    }
}

/// Everything a fuzz run produced.
pub struct Outcome {
    pub cases: Vec<CaseResult>,
    pub findings: Vec<Finding>,
    /// Documented refusals (kind `refused`): reported, never a failure.
    pub notes: Vec<Finding>,
    pub skipped: Vec<Skipped>,
}

/// Loads the model on every backend (reference first in `backends`) and runs every case.
/// `on_case` sees each case once all backends ran it. Fails only when the reference
/// cannot load the model (nothing could be judged).
pub fn run(
    model: &Path,
    backends: &[Selected],
    cases: &[FuzzCase],
    seed: u64,
    options: &FuzzOptions,
    on_case: &mut dyn FnMut(&CaseResult),
) -> Result<Outcome, String> {
    let mut targets = Vec::new();
    let mut findings = Vec::new();
    let mut notes = Vec::new();
    let mut skipped = Vec::new();
    for (i, s) in backends.iter().enumerate() {
        let name = s.backend.name().to_string();
        let loaded = match &options.isolate {
            Some(iso) => {
                let iso = IsolateOptions {
                    load: options.load.clone(),
                    ..iso.clone()
                };
                IsolatedSession::start(&name, model, &iso).map(|s| Target::Isolated(Box::new(s)))
            }
            None => crate::suite::runner::guarded(|| s.backend.load(model, &options.load))
                .map(Target::InProcess)
                .map_err(RunFailure::Engine),
        };
        match loaded {
            Ok(t) => targets.push((name, t)),
            Err(RunFailure::Engine(e)) if i == 0 => {
                return Err(format!(
                    "reference {name} cannot load the model: {}",
                    e.message
                ))
            }
            Err(RunFailure::Engine(e)) => skipped.push(Skipped {
                backend: name,
                reason: e.message,
            }),
            Err(f) => {
                let detail = format!("loading the model: {f}");
                findings.push(Finding {
                    case: "load".to_string(),
                    recipe: "load".to_string(),
                    backend: name.clone(),
                    kind: kind_of(&f),
                    cause: generic(&detail),
                    detail,
                    saved: None,
                });
                if i == 0 {
                    return Err(format!("reference {name} cannot load the model: {f}"));
                }
                skipped.push(Skipped {
                    backend: name,
                    reason: f.to_string(),
                });
            }
        }
    }
    let mut results = Vec::with_capacity(cases.len());
    for case in cases {
        let tensors = case.tensors(seed)?;
        let mut runs: Vec<BackendRun> = Vec::with_capacity(targets.len());
        for (name, target) in &mut targets {
            let start = Instant::now();
            let result = target.run(&tensors);
            let latency_ms = start.elapsed().as_secs_f64() * 1e3;
            runs.push(match result {
                Ok(outputs) => BackendRun {
                    backend: name.clone(),
                    status: Status::Ok,
                    error: None,
                    refused_op: None,
                    latency_ms: Some(latency_ms),
                    outputs: Vec::new(),
                    produced: Some(outputs),
                },
                Err(f) => BackendRun {
                    backend: name.clone(),
                    status: match f {
                        RunFailure::Engine(_) => Status::Error,
                        RunFailure::Crashed(_) => Status::Crash,
                        RunFailure::TimedOut(_) => Status::Timeout,
                    },
                    refused_op: match &f {
                        RunFailure::Engine(e) => e.op.clone(),
                        _ => None,
                    },
                    error: Some(f.to_string()),
                    latency_ms: None,
                    outputs: Vec::new(),
                    produced: None,
                },
            });
        }
        for f in judge(case, &mut runs, options) {
            match f.kind {
                FindingKind::Refused => notes.push(f),
                _ => findings.push(f),
            }
        }
        let result = CaseResult {
            case: case.clone(),
            results: runs,
            tensors,
        };
        on_case(&result);
        results.push(result);
    }
    Ok(Outcome {
        cases: results,
        findings,
        notes,
        skipped,
    })
}

fn kind_of(f: &RunFailure) -> FindingKind {
    match f {
        RunFailure::Engine(_) => FindingKind::Error,
        RunFailure::Crashed(_) => FindingKind::Crash,
        RunFailure::TimedOut(_) => FindingKind::Timeout,
    }
}

/// Compares every backend with the reference (`runs[0]`) and lists the findings (and
/// notes, kind `refused`) of the case.
fn judge(case: &FuzzCase, runs: &mut [BackendRun], options: &FuzzOptions) -> Vec<Finding> {
    let mut findings = Vec::new();
    let finding = |backend: &str, kind, detail: String, cause: String| Finding {
        case: case.case.clone(),
        recipe: case.recipe.clone(),
        backend: backend.to_string(),
        kind,
        detail,
        cause,
        saved: None,
    };
    let Some((reference, others)) = runs.split_first_mut() else {
        return findings;
    };
    let ref_name = reference.backend.clone();
    let failed = |run: &BackendRun, kind| finding(&run.backend, kind, err(run), generic(&err(run)));
    match (&reference.status, &reference.produced) {
        (Status::Crash, _) => findings.push(failed(reference, FindingKind::Crash)),
        (Status::Timeout, _) => findings.push(failed(reference, FindingKind::Timeout)),
        (Status::Ok, Some(outputs)) if case.finite_inputs() => {
            let bad: Vec<&(String, Tensor)> = outputs
                .iter()
                .filter(|o| non_finite_note(o).is_some())
                .collect();
            if !bad.is_empty() {
                let notes: Vec<String> = bad.iter().filter_map(|o| non_finite_note(o)).collect();
                let names: Vec<String> = bad.iter().map(|(n, _)| format!("`{n}`")).collect();
                findings.push(finding(
                    &ref_name,
                    FindingKind::NonFinite,
                    format!("from finite inputs: {}", notes.join("; ")),
                    format!("NaN/Inf from finite inputs in output {}", names.join(", ")),
                ));
            }
        }
        _ => {}
    }
    for run in others {
        match run.status {
            Status::Crash => findings.push(failed(run, FindingKind::Crash)),
            Status::Timeout => findings.push(failed(run, FindingKind::Timeout)),
            // A refusal the backend documents (`unsupported op`) is a limit, not a bug.
            Status::Error if reference.status == Status::Ok && run.refused_op.is_some() => {
                findings.push(failed(run, FindingKind::Refused))
            }
            // An input the reference refused too is outside the model's domain, not a bug.
            Status::Error if reference.status == Status::Ok => findings.push(finding(
                &run.backend,
                FindingKind::Error,
                format!("{} (the reference {ref_name} ran it)", err(run)),
                generic(&err(run)),
            )),
            Status::Error => {}
            Status::Ok => {
                let (Some(expected), Some(actual)) = (&reference.produced, &run.produced) else {
                    continue;
                };
                run.outputs = compare_outputs(expected, actual, options);
                let failing: Vec<&OutputReport> = run
                    .outputs
                    .iter()
                    .filter(|o| o.comparison.verdict == Verdict::Fail)
                    .collect();
                if failing.is_empty() {
                    continue;
                }
                let mut kind = FindingKind::Mismatch;
                let mut notes = Vec::new();
                let mut causes = Vec::new();
                for o in &failing {
                    let want = expected.iter().find(|(n, _)| *n == o.name).map(|(_, t)| t);
                    let got = actual.iter().find(|(n, _)| *n == o.name).map(|(_, t)| t);
                    let new_non_finite = match (want, got) {
                        (Some(w), Some(g)) => count_new_non_finite(w, g),
                        _ => 0,
                    };
                    if new_non_finite > 0 {
                        kind = FindingKind::NonFinite;
                        causes.push(format!("`{}` NaN/Inf where {ref_name} is finite", o.name));
                        notes.push(format!(
                            "output `{}`: {new_non_finite} NaN/Inf where {ref_name} is finite",
                            o.name
                        ));
                    } else {
                        causes.push(match &o.comparison.problem {
                            Some(p) => format!("`{}`: {}", o.name, generic(p)),
                            None => format!("`{}` out of tolerance", o.name),
                        });
                        notes.push(describe_mismatch(o));
                    }
                }
                if notes.len() > 3 {
                    let more = notes.len() - 3;
                    notes.truncate(3);
                    notes.push(format!("and {more} more outputs"));
                }
                findings.push(finding(
                    &run.backend,
                    kind,
                    notes.join("; "),
                    format!("output {}", causes.join(", ")),
                ));
            }
        }
    }
    findings
}

/// `text` with every run of digits replaced by `#`: what stays the same when only
/// counts, values, indices or shapes change between cases.
pub fn generic(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

fn err(run: &BackendRun) -> String {
    run.error.clone().unwrap_or_default()
}

/// Each reference output compared with the backend's output of the same name, under
/// the output's rule in `parity.toml` (outputs it skips are left out) and its tolerance
/// with `--atol`/`--rtol` on top. Backend against backend: no backend's own tolerance.
fn compare_outputs(
    expected: &[(String, Tensor)],
    actual: &[(String, Tensor)],
    options: &FuzzOptions,
) -> Vec<OutputReport> {
    expected
        .iter()
        .filter_map(|(name, want)| {
            let OutputRule::Compare {
                mode,
                outlier_fraction,
            } = options.manifest.rule_for(name)
            else {
                return None;
            };
            let set = options.manifest.tolerance_for(name, None);
            let tolerance = ToleranceOverride {
                atol: options.atol.or(set.atol),
                rtol: options.rtol.or(set.rtol),
            }
            .resolve(want.dtype());
            let policy = Policy {
                tolerance,
                mode,
                outlier_fraction,
            };
            let comparison = match actual.iter().find(|(n, _)| n == name) {
                Some((_, got)) => compare::compare_with(want, got, &policy),
                None => OutputComparison::missing_with(want, &policy),
            };
            Some(OutputReport {
                name: name.clone(),
                comparison,
                error_histogram: None,
                stats: None,
                gated: false,
            })
        })
        .collect()
}

/// `output `y`: 2 NaN, 1 ±Inf of 4` for a float output holding non-finite values.
fn non_finite_note((name, t): &(String, Tensor)) -> Option<String> {
    if !t.dtype().is_float() {
        return None;
    }
    let (mut nan, mut inf) = (0usize, 0usize);
    for i in 0..t.numel() {
        let v = t.get_f64(i);
        if v.is_nan() {
            nan += 1;
        } else if v.is_infinite() {
            inf += 1;
        }
    }
    (nan + inf > 0).then(|| {
        format!(
            "output `{name}` holds {nan} NaN, {inf} ±Inf of {}",
            t.numel()
        )
    })
}

/// Elements that are NaN/Inf in `actual` where `expected` is finite (same layout only).
fn count_new_non_finite(expected: &Tensor, actual: &Tensor) -> usize {
    if !expected.dtype().is_float()
        || expected.dtype() != actual.dtype()
        || expected.shape() != actual.shape()
    {
        return 0;
    }
    (0..expected.numel())
        .filter(|&i| expected.get_f64(i).is_finite() && !actual.get_f64(i).is_finite())
        .count()
}

fn describe_mismatch(o: &OutputReport) -> String {
    let c = &o.comparison;
    match &c.problem {
        Some(p) => format!("output `{}`: {p}", o.name),
        None => format!(
            "output `{}`: {} of {} out of tolerance, max abs err {:e}",
            o.name, c.mismatched, c.total, c.max_abs_err
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_are_counted_and_described() {
        let e = Tensor::from_vec(vec![4], vec![1.0f32, f32::NAN, 2.0, 3.0]).unwrap();
        let a = Tensor::from_vec(vec![4], vec![f32::NAN, f32::NAN, f32::INFINITY, 3.0]).unwrap();
        assert_eq!(count_new_non_finite(&e, &a), 2);
        assert_eq!(
            non_finite_note(&("y".to_string(), a)).unwrap(),
            "output `y` holds 2 NaN, 1 ±Inf of 4"
        );
        let ints = Tensor::from_vec(vec![1], vec![3i64]).unwrap();
        assert!(non_finite_note(&("k".to_string(), ints)).is_none());
    }
}
