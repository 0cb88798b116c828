//! Runs suites on backends and compares every output: the engine behind `check` and
//! `demo`. Rows come back ordered suite × case × backend. Nothing here prints; progress
//! is reported through a callback so the CLI decides how to show it.

pub use super::execution::{guarded, run_guarded, OutputsObserver, Reference, RunOptions};
use super::execution::{inference_turn, tolerance};
use super::manifest::OutputRule;
use super::{Case, NamedTensors, Suite};
use crate::backend::IoSpec;
use crate::backend::{BackendError, Selected, Session};
use crate::compare::{self, OutputComparison, Policy};
use crate::report::{CaseId, CaseReport, OutputReport, SkippedOutput};
use crate::tensor::{DType, Tensor};
use std::time::Instant;

/// Runs every case of every suite on every candidate backend.
/// `reference` must be present in `candidates` when it names a backend; it is not
/// compared against itself. `on_case` sees each row as soon as it is decided.
pub fn run(
    suites: &[Suite],
    candidates: &[Selected],
    reference: &Reference,
    options: &RunOptions,
    on_case: &mut dyn FnMut(&CaseReport),
) -> Vec<CaseReport> {
    run_observed(
        suites,
        candidates,
        reference,
        options,
        on_case,
        &mut |_, _, _, _| {},
    )
}

/// [`run`], also handing every backend's actual outputs on every case that ran to
/// `on_outputs` (the reference backend's too, when `reference` names one), so that
/// callers such as the cross-backend matrix reuse the same runs. A case that errored on
/// a backend (unreadable data, a load or run failure) produces no call.
pub fn run_observed(
    suites: &[Suite],
    candidates: &[Selected],
    reference: &Reference,
    options: &RunOptions,
    on_case: &mut dyn FnMut(&CaseReport),
    on_outputs: OutputsObserver<'_>,
) -> Vec<CaseReport> {
    let mut rows = Vec::new();
    for suite in suites {
        let mut suite_rows = run_unit(
            suite, candidates, None, reference, options, on_case, on_outputs,
        );
        suite_rows.sort_by_key(|(c, b, _)| (*c, *b));
        rows.extend(suite_rows.into_iter().map(|(_, _, r)| r));
    }
    rows
}

/// [`run_observed`] on `jobs` threads (`check --jobs`): the work is cut into units, one
/// per suite and compared backend (one per suite when the reference is a backend, which
/// every unit of that suite would otherwise rerun), taken in order by the threads. The
/// rows come back per suite, in the same order as [`run_observed`] gives them, whatever
/// the timing. The callbacks are called from the worker threads ([`crate::jobs`]).
///
/// Latencies stay free of the other jobs' inference: every timed engine call takes the
/// process-wide inference turn ([`run_timed`]), so at most one inference runs at a time
/// while the other threads load sessions, read data and compare outputs; with
/// `options.overlap_inference` inference overlaps too and latencies are not reported.
pub fn run_jobs(
    suites: &[&Suite],
    candidates: &[Selected],
    reference: &Reference,
    options: &RunOptions,
    jobs: usize,
    on_case: &(dyn Fn(&CaseReport) + Sync),
    on_outputs: &(dyn Fn(usize, usize, &str, NamedTensors) + Sync),
) -> Vec<Vec<CaseReport>> {
    let compared: Vec<Option<usize>> = match reference {
        Reference::Golden => (0..candidates.len()).map(Some).collect(),
        Reference::Backend(_) => vec![None],
    };
    let units: Vec<(usize, Option<usize>)> = (0..suites.len())
        .flat_map(|s| compared.iter().map(move |&b| (s, b)))
        .collect();
    let ran = crate::jobs::par_map(&units, jobs, |&(s, only)| {
        let mut case_seen = |row: &CaseReport| on_case(row);
        let mut outputs_seen = |_: &Suite, case: usize, backend: &str, out: NamedTensors| {
            on_outputs(s, case, backend, out)
        };
        run_unit(
            suites[s],
            candidates,
            only,
            reference,
            options,
            &mut case_seen,
            &mut outputs_seen,
        )
    });
    let mut per_suite: Vec<Vec<(usize, usize, CaseReport)>> =
        suites.iter().map(|_| Vec::new()).collect();
    for (&(s, _), rows) in units.iter().zip(ran) {
        per_suite[s].extend(rows);
    }
    per_suite
        .into_iter()
        .map(|mut rows| {
            rows.sort_by_key(|(c, b, _)| (*c, *b));
            rows.into_iter().map(|(_, _, r)| r).collect()
        })
        .collect()
}

/// Runs one case on a session inside the process-wide inference turn; returns the
/// outputs and the wall time of the call alone, in milliseconds. With
/// `overlap` the call takes no turn and is not timed (`None`).
fn run_timed(
    session: &mut dyn Session,
    inputs: &[Tensor],
    overlap: bool,
) -> (Result<NamedTensors, BackendError>, Option<f64>) {
    if overlap {
        return (run_guarded(session, inputs), None);
    }
    let _turn = inference_turn(false);
    let start = Instant::now();
    let result = run_guarded(session, inputs);
    (result, Some(start.elapsed().as_secs_f64() * 1e3))
}

/// One suite on the compared backends (`only`: just that one), each row keyed by case
/// and backend index for ordering.
fn run_unit(
    suite: &Suite,
    candidates: &[Selected],
    only: Option<usize>,
    reference: &Reference,
    options: &RunOptions,
    on_case: &mut dyn FnMut(&CaseReport),
    on_outputs: OutputsObserver<'_>,
) -> Vec<(usize, usize, CaseReport)> {
    if suite.manifest.generate.is_some() {
        return super::generation::run_unit(
            suite, candidates, only, reference, options, on_case, on_outputs,
        );
    }
    let cases: Vec<Result<Case, String>> = suite
        .cases
        .iter()
        .map(|c| suite.load_case(c).map_err(|e| e.to_string()))
        .collect();
    let expected = match reference {
        Reference::Golden => cases
            .iter()
            .map(|c| match c {
                // Nothing to compare is not a pass (docs/design.md).
                Ok(c) if c.expected.is_empty() => Err(
                    "this data set holds no expected outputs (output_*.pb), so there is nothing to compare; use --reference BACKEND to compare against a backend"
                        .to_string(),
                ),
                Ok(c) => Ok(c.expected.clone()),
                Err(e) => Err(e.clone()),
            })
            .collect(),
        Reference::Backend(name) => {
            let outputs = reference_outputs(suite, &cases, candidates, name, options);
            for (c, out) in outputs.iter().enumerate() {
                if let Ok(out) = out {
                    on_outputs(suite, c, name, out.clone());
                }
            }
            outputs
        }
    };
    let mut suite_rows: Vec<(usize, usize, CaseReport)> = Vec::new();
    for (b, selected) in candidates.iter().enumerate() {
        if only.is_some_and(|o| o != b)
            || Reference::Backend(selected.backend.name().to_string()) == *reference
        {
            continue;
        }
        let session = selected.backend.load(&suite.model, &options.load);
        let mut session = session.map_err(|e| (e.message, e.op));
        // A stateful suite's previous step's outputs, this backend's own.
        let mut state: Option<NamedTensors> = None;
        for (c, (case, expected)) in cases.iter().zip(&expected).enumerate() {
            let id = CaseId {
                suite: suite.dir.display().to_string(),
                case: suite.cases[c].name.clone(),
                backend: selected.backend.name().to_string(),
                reference: reference.name().to_string(),
            };
            let inputs = case
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|case| suite.step_inputs(case, c, state.as_ref()));
            state = None;
            let mut row = match (&mut session, inputs.as_ref(), expected) {
                (_, Err(e), _) | (_, _, Err(e)) => CaseReport::errored(id, e.clone(), None),
                (Err((msg, op)), _, _) => CaseReport::errored(id, msg.clone(), op.clone()),
                (Ok(session), Ok(inputs), Ok(expected)) => {
                    let (row, actual) = run_case(
                        suite,
                        session.as_mut(),
                        inputs,
                        expected,
                        id,
                        &selected.device,
                        options,
                    );
                    if let Some(actual) = actual {
                        if suite.is_sequence() {
                            state = Some(actual.clone());
                        }
                        on_outputs(suite, c, selected.backend.name(), actual);
                    }
                    row
                }
            };
            row.step = suite.is_sequence().then_some(c);
            row.slice = suite
                .gating
                .slice_of(&suite.cases[c].name)
                .map(str::to_string);
            on_case(&row);
            suite_rows.push((c, b, row));
        }
    }
    suite_rows
}

/// Runs the reference backend on each case to produce expected outputs.
fn reference_outputs(
    suite: &Suite,
    cases: &[Result<Case, String>],
    candidates: &[Selected],
    name: &str,
    options: &RunOptions,
) -> Vec<Result<Vec<(String, Tensor)>, String>> {
    let Some(reference) = candidates.iter().find(|s| s.backend.name() == name) else {
        return cases
            .iter()
            .map(|_| Err(format!("reference backend {name} was not selected")))
            .collect();
    };
    let mut session = reference.backend.load(&suite.model, &options.load);
    let mut state: Option<NamedTensors> = None;
    cases
        .iter()
        .enumerate()
        .map(|(c, case)| {
            let case = case.as_ref().map_err(Clone::clone)?;
            let inputs = suite
                .step_inputs(case, c, state.take().as_ref())
                .map_err(|e| format!("reference {name}: {e}"))?;
            let session = session
                .as_mut()
                .map_err(|e| format!("reference {name}: {}", e.message))?;
            let out = run_timed(session.as_mut(), &inputs, options.overlap_inference)
                .0
                .map(|out| suite.suite_names(out))
                .map_err(|e| format!("reference {name}: {}", e.message))?;
            if suite.is_sequence() {
                state = Some(out.clone());
            }
            Ok(out)
        })
        .collect()
}

/// Runs one case and compares its outputs; also returns the actual outputs when the
/// backend produced them.
fn run_case(
    suite: &Suite,
    session: &mut dyn Session,
    inputs: &[Tensor],
    expected: &[(String, Tensor)],
    id: CaseId,
    device: &str,
    options: &RunOptions,
) -> (CaseReport, Option<NamedTensors>) {
    let (result, latency_ms) = run_timed(session, inputs, options.overlap_inference);
    let actual = match result {
        Ok(a) => suite.suite_names(a),
        Err(e) => return (CaseReport::errored(id, e.message, e.op), None),
    };
    // A backend's own tolerances are fitted against the goldens: only there do they apply.
    let against_goldens = (id.reference == Reference::Golden.name()).then_some(id.backend.as_str());
    let mut outputs = compare_outputs(suite, against_goldens, expected, &actual, options);
    if let Err(problem) = measure(suite, &id.case, &mut outputs, expected, &actual) {
        let mut row = CaseReport::errored(id, problem, None);
        row.latency_ms = latency_ms;
        row.device = Some(device.to_string());
        return (row, Some(actual));
    }
    let skipped = skipped_outputs(suite);
    let mut row = if outputs.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|s| s.name.as_str()).collect();
        let mut row = CaseReport::errored(
            id,
            format!(
                "nothing compared: parity.toml skips every output of the model ({})",
                names.join(", ")
            ),
            None,
        );
        row.latency_ms = latency_ms;
        row.device = Some(device.to_string());
        row
    } else {
        CaseReport::compared(id, latency_ms, Some(device.to_string()), outputs)
    };
    row.skipped_outputs = skipped;
    (row, Some(actual))
}

/// Compares a case's actual outputs with the expected ones under the suite's rules and
/// tolerances (and the command line's overrides): what `check` reports for one case,
/// and what `bench --verify` checks every response with. `backend` names the backend
/// whose answers are compared with the goldens, for its own `[outputs.NAME.backends]`
/// tolerance; `None` applies the output's.
///
/// Every output the model declares is accounted for: compared, skipped by
/// `parity.toml` (see [`skipped_outputs`]), or failed as `missing golden` when the
/// expected outputs lack it, so a partial golden never passes silently.
pub fn compare_outputs(
    suite: &Suite,
    backend: Option<&str>,
    expected: &[(String, Tensor)],
    actual: &[(String, Tensor)],
    options: &RunOptions,
) -> Vec<OutputReport> {
    suite
        .info
        .outputs
        .iter()
        .filter_map(|spec| {
            let name = &spec.name;
            let OutputRule::Compare {
                mode,
                outlier_fraction,
            } = suite.manifest.rule_for(name)
            else {
                return None;
            };
            let got = actual.iter().find(|(n, _)| n == name).map(|(_, t)| t);
            let Some(want) = expected.iter().find(|(n, _)| n == name).map(|(_, t)| t) else {
                return Some(missing_golden(suite, backend, spec, got, options));
            };
            let policy = Policy {
                tolerance: tolerance(suite, name, backend, want.dtype(), options),
                mode,
                outlier_fraction,
            };
            let comparison = match got {
                Some(got) => compare::compare_with(want, got, &policy),
                None => OutputComparison::missing_with(want, &policy),
            };
            let comparison = match got {
                Some(got) if suite.manifest.requires_finite(name) => {
                    require_finite(comparison, got)
                }
                _ => comparison,
            };
            Some(OutputReport {
                name: name.clone(),
                comparison,
                error_histogram: got
                    .filter(|_| options.histograms)
                    .and_then(|got| compare::error_histogram(want, got, policy.tolerance)),
                stats: None,
                gated: false,
            })
        })
        .collect()
}

/// Dataset statistics and gates (docs/gates.md): every output compared with equal
/// dtype and shape gets what this case adds to its dataset metrics; an output with
/// gates is judged by them, so its element-wise misses no longer fail the case (a shape,
/// dtype or NaN/Inf problem, or a missing output, still does). Labels that do not fit
/// the output are the case's error, naming where they come from.
fn measure(
    suite: &Suite,
    case: &str,
    outputs: &mut [OutputReport],
    expected: &[(String, Tensor)],
    actual: &[(String, Tensor)],
) -> Result<(), String> {
    fn find<'a>(list: &'a [(String, Tensor)], name: &str) -> Option<&'a Tensor> {
        list.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }
    for o in outputs.iter_mut() {
        let (Some(want), Some(got)) = (find(expected, &o.name), find(actual, &o.name)) else {
            continue;
        };
        let classes = suite.gating.classes.get(&o.name).copied();
        let labels = suite.gating.labels_for(case, &o.name);
        o.stats = match compare::metrics::OutputStats::measure(want, got, classes, labels) {
            Some(Ok(stats)) => Some(stats),
            Some(Err(e)) => {
                return Err(format!(
                "output `{}`: {e} (labels: {}/labels.csv or parity.toml; class axis: [metrics.{}])",
                o.name,
                suite.dir.display(),
                o.name
            ))
            }
            None => None,
        };
        if !suite.gating.gates_output(&o.name) {
            continue;
        }
        o.gated = true;
        let Some(stats) = &o.stats else { continue };
        let c = &mut o.comparison;
        // Only precision is the gates' to judge: not a NaN/Inf problem (an infinite
        // max_abs_err, or any NaN/Inf where `finite = true`) nor allclose/ulp's own
        // problem lines; in cosine/topk mode the problem line is the mode's miss.
        let mode_miss = !matches!(c.mode, compare::Mode::AllClose | compare::Mode::Ulp { .. });
        let finite_problem = stats.non_finite > 0 && suite.manifest.requires_finite(&o.name);
        if c.max_abs_err.is_finite() && (c.problem.is_none() || mode_miss) && !finite_problem {
            c.verdict = compare::Verdict::Pass;
        }
    }
    Ok(())
}

/// The model outputs `parity.toml` leaves out of every comparison, in model order.
pub fn skipped_outputs(suite: &Suite) -> Vec<SkippedOutput> {
    suite
        .info
        .outputs
        .iter()
        .filter(|spec| suite.manifest.skips(&spec.name))
        .map(|spec| SkippedOutput {
            name: spec.name.clone(),
            reason: "parity.toml: mode = \"skip\"".to_string(),
        })
        .collect()
}

/// The report of a model output that has no expected value: a failure naming it.
fn missing_golden(
    suite: &Suite,
    backend: Option<&str>,
    spec: &IoSpec,
    actual: Option<&Tensor>,
    options: &RunOptions,
) -> OutputReport {
    let dtype = spec
        .dtype
        .or(actual.map(Tensor::dtype))
        .unwrap_or(DType::F32);
    let tolerance = tolerance(suite, &spec.name, backend, dtype, options);
    OutputReport {
        name: spec.name.clone(),
        comparison: OutputComparison::missing_golden(&spec.name, dtype, actual, tolerance),
        error_histogram: None,
        stats: None,
        gated: false,
    }
}

/// `finite = true`: NaN/±Inf in `actual` fails the output whatever the golden holds.
fn require_finite(mut comparison: OutputComparison, actual: &Tensor) -> OutputComparison {
    if !actual.dtype().is_float() {
        return comparison;
    }
    let bad = (0..actual.numel())
        .filter(|&i| !actual.get_f64(i).is_finite())
        .count();
    if bad > 0 {
        comparison.verdict = compare::Verdict::Fail;
        comparison.tolerance_used = Some(f64::INFINITY);
        comparison.problem = Some(format!(
            "{bad} NaN/Inf of {} values where parity.toml requires finite values (finite = true)",
            actual.numel()
        ));
    }
    comparison
}
