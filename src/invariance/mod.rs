//! `parity invariance`: does a backend give the same answer when nothing that should
//! matter changes? Each check runs a suite's data sets several ways on one backend and
//! compares every variant's outputs with a reference run of the same backend
//! (docs/invariance.md):
//!
//! - `repeat`: the same session, run again (`--repeats` runs in all);
//! - `session`: fresh sessions of the same model and options;
//! - `threads`: intra-op threads 1 against each of `--threads-list`;
//! - `batch`: the data set alone against its rows placed among other rows in batches of
//!   `--batch-sizes`, first, last and in the middle, its outputs cut back out;
//! - `optimization`: the engine's default optimisation level against each other level.
//!
//! A check a backend cannot vary (no thread setting, no levels, no batch axis) is not
//! applicable, with the reason, never a pass.

pub mod batch;
mod render;
pub mod report;

use crate::backend::{BackendError, LoadOptions, Selected, Session};
use crate::compare::{self, OutputComparison};
use crate::suite::execution::{guarded, tolerance, RunOptions};
use crate::suite::manifest::OutputRule;
use crate::suite::{NamedTensors, Suite};
use crate::tensor::Tensor;
use report::{CheckResult, NotApplicable, Outcome, OutputDeviation, Skipped};
use std::collections::BTreeMap;

/// One of the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// The same session, run again.
    Repeat,
    /// A fresh session.
    Session,
    /// Other intra-op thread counts.
    Threads,
    /// Other batch sizes and positions.
    Batch,
    /// Other optimisation levels.
    Optimization,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 5] = [
        Check::Repeat,
        Check::Session,
        Check::Threads,
        Check::Batch,
        Check::Optimization,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Check::Repeat => "repeat",
            Check::Session => "session",
            Check::Threads => "threads",
            Check::Batch => "batch",
            Check::Optimization => "optimization",
        }
    }

    /// The check named `name`.
    pub fn parse(name: &str) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What to check and how hard.
#[derive(Debug, Clone)]
pub struct Options {
    /// The checks to run, in report order.
    pub checks: Vec<Check>,
    /// Runs of the same session for `repeat` (the first is the reference), and fresh
    /// sessions for `session` (besides the reference's).
    pub repeats: usize,
    /// Thread counts compared with 1 by `threads`.
    pub threads_list: Vec<usize>,
    /// Batch sizes of `batch`.
    pub batch_sizes: Vec<usize>,
    /// `--batch-axis`: the batch axis of every input and output (default: each one's
    /// first symbolic dim).
    pub batch_axis: Option<usize>,
    /// Tolerance overrides and the reference run's threads (`--threads`).
    pub run: RunOptions,
}

/// One data set's inputs (in model input order), or why they could not be read.
#[derive(Debug, Clone)]
pub struct DataSet {
    /// `test_data_set_N`, or `random N` for generated inputs.
    pub name: String,
    /// The inputs.
    pub inputs: Result<Vec<Tensor>, String>,
}

/// Every data set of `suite`, read from its files.
pub fn read_data_sets(suite: &Suite) -> Vec<DataSet> {
    suite
        .cases
        .iter()
        .map(|c| DataSet {
            name: c.name.clone(),
            inputs: suite
                .load_case(c)
                .map(|c| c.inputs)
                .map_err(|e| e.to_string()),
        })
        .collect()
}

/// Every check of every data set of `suite` on one backend, and the checks that do not
/// apply to it. `on_step` sees each check as it finishes.
pub fn run_suite(
    suite: &Suite,
    data: &[DataSet],
    selected: &Selected,
    options: &Options,
    on_step: &mut dyn FnMut(&CheckResult),
) -> (Vec<CheckResult>, Vec<NotApplicable>) {
    let backend = selected.backend.name().to_string();
    let knobs = selected.backend.knobs();
    let dir = suite.dir.display().to_string();
    let mut not_applicable = Vec::new();
    let mut na = |check: Check, suite: Option<&str>, reason: String| {
        not_applicable.push(NotApplicable {
            suite: suite.map(str::to_string),
            backend: backend.clone(),
            check: check.name(),
            reason,
        });
    };
    let mut checks = Vec::new();
    for &check in &options.checks {
        let reason = match check {
            _ if suite.is_sequence() => Some(
                "a stateful suite's steps depend on each other ([sequence]); invariance runs independent data sets"
                    .to_string(),
            ),
            _ if suite.manifest.generate.is_some() => Some(
                "a generation suite is decoded token by token; `parity generate --batch` checks batching"
                    .to_string(),
            ),
            Check::Session if !knobs.fresh_session => Some(format!(
                "{backend} is a deployed endpoint: loading again connects to the same server session"
            )),
            Check::Threads if !knobs.threads => Some(format!(
                "{backend} has no intra-op thread setting that parity can change"
            )),
            Check::Optimization if knobs.optimization_levels.len() < 2 => Some(format!(
                "{backend} has no optimisation levels to compare"
            )),
            Check::Batch => batch::axes(&suite.info.inputs, options.batch_axis)
                .err()
                .map(|e| format!("no batch axis: {e}")),
            _ => None,
        };
        match reason {
            // A suite's own reason names the suite; a backend's holds for every suite.
            Some(r)
                if matches!(check, Check::Batch)
                    || suite.is_sequence()
                    || suite.manifest.generate.is_some() =>
            {
                na(check, Some(&dir), r)
            }
            Some(r) => na(check, None, r),
            None => checks.push(check),
        }
    }
    let mut results = Vec::new();
    if checks.is_empty() {
        return (results, not_applicable);
    }
    let mut runner = Runner::new(suite, data, selected, options);
    for case in data {
        for &check in &checks {
            let mut result = CheckResult {
                suite: dir.clone(),
                case: case.name.clone(),
                backend: backend.clone(),
                check: check.name(),
                reference: reference_label(check, knobs.optimization_levels),
                outcome: None,
                error: None,
                outputs: Vec::new(),
                skipped_outputs: Vec::new(),
            };
            let variants = case
                .inputs
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|inputs| runner.variants(check, &case.name, inputs));
            match variants {
                Ok(v) => runner.judge(&mut result, v),
                Err(e) => result.error = Some(e),
            }
            on_step(&result);
            results.push(result);
        }
    }
    (results, not_applicable)
}

/// What each check compares against (`optimization`: the backend's default level,
/// the last of its levels).
fn reference_label(check: Check, levels: &[&str]) -> String {
    match check {
        Check::Repeat => "run 1".to_string(),
        Check::Session => "session 1".to_string(),
        Check::Threads => "threads 1".to_string(),
        Check::Batch => "alone".to_string(),
        Check::Optimization => levels.last().copied().unwrap_or("default").to_string(),
    }
}

/// A reference run and its variants: `(label, outputs)`; outputs the check cannot cut
/// back (batch) are listed with the reason.
struct Variants {
    reference: NamedTensors,
    runs: Vec<(String, Result<NamedTensors, String>)>,
    skipped: Vec<Skipped>,
}

/// A session, or why it could not be loaded.
type Loaded = Result<Box<dyn Session>, String>;

/// The sessions of one suite on one backend, loaded once and reused by every case.
struct Runner<'a> {
    suite: &'a Suite,
    selected: &'a Selected,
    options: &'a Options,
    /// The reference session: default level, `--threads`.
    base: Option<Loaded>,
    /// The base session's first run of the current data set (by name), the reference
    /// of every check but `threads`: run once per data set.
    base_run: Option<(String, Result<NamedTensors, String>)>,
    /// The labelled sessions `session`, `threads` (1 first) and `optimization` compare.
    sessions: BTreeMap<Check, Vec<(String, Loaded)>>,
    /// Every data set: the other rows of `batch`.
    data: &'a [DataSet],
}

impl<'a> Runner<'a> {
    fn new(
        suite: &'a Suite,
        data: &'a [DataSet],
        selected: &'a Selected,
        options: &'a Options,
    ) -> Runner<'a> {
        Runner {
            suite,
            selected,
            options,
            base: None,
            base_run: None,
            sessions: BTreeMap::new(),
            data,
        }
    }

    fn load(&self, load: &LoadOptions) -> Loaded {
        guarded(|| self.selected.backend.load(&self.suite.model, load))
            .map_err(|e| format!("load: {}", e.message))
    }

    /// The inputs of every other readable data set.
    fn fillers_except(&self, case: &str) -> Vec<Vec<Tensor>> {
        self.data
            .iter()
            .filter(|d| d.name != case)
            .filter_map(|d| d.inputs.as_ref().ok().cloned())
            .collect()
    }

    /// The base session, loaded on first use.
    fn base(&mut self) -> Result<&mut Box<dyn Session>, String> {
        if self.base.is_none() {
            self.base = Some(self.load(&self.options.run.load));
        }
        match self.base.as_mut() {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(e.clone()),
            None => Err("internal: no base session".to_string()),
        }
    }

    /// The base session's run of data set `case` (the first one, kept for its other
    /// checks).
    fn base_run(&mut self, case: &str, inputs: &[Tensor]) -> Result<NamedTensors, String> {
        if let Some((name, out)) = &self.base_run {
            if name == case {
                return out.clone();
            }
        }
        let out = self.base().and_then(|s| run(s.as_mut(), inputs));
        self.base_run = Some((case.to_string(), out.clone()));
        out
    }

    /// The labelled load options of the sessions `check` compares besides the base
    /// one: fresh sessions, thread counts (1 first, the check's reference), or the
    /// levels other than the default.
    fn plans(&self, check: Check) -> Vec<(String, LoadOptions)> {
        let base = &self.options.run.load;
        match check {
            Check::Session => (2..=self.options.repeats.max(2))
                .map(|i| (format!("session {i}"), base.clone()))
                .collect(),
            Check::Threads => std::iter::once(1)
                .chain(
                    self.options
                        .threads_list
                        .iter()
                        .copied()
                        .filter(|&t| t != 1),
                )
                .map(|t| {
                    let load = LoadOptions {
                        threads: Some(t),
                        ..base.clone()
                    };
                    (format!("threads {t}"), load)
                })
                .collect(),
            Check::Optimization => {
                let all = self.selected.backend.knobs().optimization_levels;
                all[..all.len().saturating_sub(1)]
                    .iter()
                    .map(|&level| {
                        let load = LoadOptions {
                            optimization: Some(level.to_string()),
                            ..base.clone()
                        };
                        (level.to_string(), load)
                    })
                    .collect()
            }
            Check::Repeat | Check::Batch => Vec::new(),
        }
    }

    /// `inputs` run on each of `check`'s sessions (loaded on first use), labelled.
    fn run_sessions(
        &mut self,
        check: Check,
        inputs: &[Tensor],
    ) -> Vec<(String, Result<NamedTensors, String>)> {
        if !self.sessions.contains_key(&check) {
            let loaded = self
                .plans(check)
                .into_iter()
                .map(|(label, load)| (label, self.load(&load)))
                .collect();
            self.sessions.insert(check, loaded);
        }
        let sessions = self
            .sessions
            .get_mut(&check)
            .map_or(&mut [][..], |v| &mut v[..]);
        sessions
            .iter_mut()
            .map(|(label, s)| {
                let out = match s {
                    Ok(s) => run(s.as_mut(), inputs),
                    Err(e) => Err(e.clone()),
                };
                (label.clone(), out)
            })
            .collect()
    }

    /// The reference run and every variant of `check` on one data set's inputs.
    fn variants(
        &mut self,
        check: Check,
        case: &str,
        inputs: &[Tensor],
    ) -> Result<Variants, String> {
        if check == Check::Threads {
            // threads 1 is this check's reference.
            let mut runs = self.run_sessions(check, inputs);
            if runs.is_empty() {
                return Err("internal: no thread counts".to_string());
            }
            let (_, one) = runs.remove(0);
            return Ok(Variants {
                reference: one?,
                runs,
                skipped: Vec::new(),
            });
        }
        let reference = self.base_run(case, inputs)?;
        let options = self.options;
        let mut skipped = Vec::new();
        let runs = match check {
            Check::Threads | Check::Session | Check::Optimization => {
                self.run_sessions(check, inputs)
            }
            Check::Repeat => {
                let base = self.base()?;
                (2..=options.repeats.max(2))
                    .map(|i| (format!("run {i}"), run(base.as_mut(), inputs)))
                    .collect()
            }
            Check::Batch => {
                let fillers = self.fillers_except(case);
                let input_axes = batch::axes(&self.suite.info.inputs, options.batch_axis)?;
                let rows = batch::batch_rows(inputs, &input_axes)?;
                let sizes = &options.batch_sizes;
                let base = self.base()?;
                let mut runs = Vec::new();
                let mut uncut: Vec<String> = Vec::new();
                let mut keep = |out: Result<batch::Cut, String>| {
                    out.map(|(kept, lost)| {
                        for name in lost {
                            if !uncut.contains(&name) {
                                uncut.push(name);
                            }
                        }
                        kept
                    })
                };
                for &size in sizes.iter().filter(|&&size| size != rows) {
                    if size < rows {
                        // A data set larger than the batch: run in batches of `size`
                        // rows, the outputs joined back.
                        let out = batch::chunked(inputs, &input_axes, &reference, size, |part| {
                            run(base.as_mut(), part)
                        });
                        runs.push((format!("in batches of {size}"), keep(out)));
                        continue;
                    }
                    for at in batch::positions(size, rows) {
                        let out = batch::place(inputs, &input_axes, &fillers, size, at)
                            .and_then(|stacked| run(base.as_mut(), &stacked))
                            .and_then(|outs| batch::cut(&reference, outs, rows, size, at));
                        runs.push((format!("batch {size} at row {at}"), keep(out)));
                    }
                }
                for name in uncut {
                    skipped.push(Skipped {
                        name,
                        reason: "no axis of this output grows with the batch, so the data set's rows cannot be cut back out".to_string(),
                    });
                }
                if runs.is_empty() {
                    return Err(format!(
                        "every size in --batch-sizes is the data set's own {rows} rows"
                    ));
                }
                runs
            }
        };
        Ok(Variants {
            reference,
            runs,
            skipped,
        })
    }

    /// Classifies every output of every variant against the reference and keeps each
    /// output's worst; the check's outcome is the worst output's.
    fn judge(&self, result: &mut CheckResult, variants: Variants) {
        result.skipped_outputs = variants.skipped;
        let mut errors = Vec::new();
        for (name, expected) in &variants.reference {
            if matches!(self.suite.manifest.rule_for(name), OutputRule::Skip) {
                result.skipped_outputs.push(Skipped {
                    name: name.clone(),
                    reason: "mode = \"skip\" in parity.toml".to_string(),
                });
                continue;
            }
            if result.skipped_outputs.iter().any(|s| &s.name == name) {
                continue;
            }
            let tol = tolerance(self.suite, name, None, expected.dtype(), &self.options.run);
            let mut worst: Option<OutputDeviation> = None;
            let mut compared = 0;
            for (label, run) in &variants.runs {
                let Ok(outs) = run else { continue };
                let Some((_, actual)) = outs.iter().find(|(n, _)| n == name) else {
                    continue;
                };
                compared += 1;
                let (outcome, comparison) = classify(expected, actual, tol);
                let worse = worst.as_ref().is_none_or(|w| {
                    (outcome, used(&comparison)) > (w.outcome, used(&w.comparison))
                });
                if worse {
                    worst = Some(OutputDeviation {
                        name: name.clone(),
                        outcome,
                        variant: label.clone(),
                        variants: 0,
                        comparison,
                    });
                }
            }
            if let Some(mut w) = worst {
                w.variants = compared;
                result.outputs.push(w);
            }
        }
        for (label, run) in &variants.runs {
            if let Err(e) = run {
                errors.push(format!("{label}: {e}"));
            }
        }
        if !errors.is_empty() {
            result.error = Some(errors.join("; "));
        } else if result.outputs.is_empty() {
            result.error = Some("no output was compared".to_string());
        } else {
            result.outcome = result.outputs.iter().map(|o| o.outcome).max();
        }
    }
}

/// A deviation's share of tolerance used, for ordering (unbounded is largest).
fn used(c: &OutputComparison) -> f64 {
    c.tolerance_used.unwrap_or(f64::INFINITY)
}

/// One run of `inputs`, panics and errors as one-line messages.
fn run(session: &mut dyn Session, inputs: &[Tensor]) -> Result<NamedTensors, String> {
    guarded(|| session.run(inputs)).map_err(|e: BackendError| e.message)
}

/// Bitwise when dtype, shape and bytes are identical; otherwise within or out of
/// `tol`, with `check`'s comparison figures.
pub fn classify(
    expected: &Tensor,
    actual: &Tensor,
    tol: compare::Tolerance,
) -> (Outcome, OutputComparison) {
    let comparison = compare::compare(expected, actual, tol);
    let identical = expected.dtype() == actual.dtype()
        && expected.shape() == actual.shape()
        && expected.bytes() == actual.bytes();
    let outcome = if identical {
        Outcome::Bitwise
    } else if comparison.verdict == compare::Verdict::Pass {
        Outcome::Within
    } else {
        Outcome::Out
    };
    (outcome, comparison)
}
