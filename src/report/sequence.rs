//! Stateful suites in a report: per suite and backend, the error of every step of the
//! stream (the curve that shows error growing as each backend carries its own state)
//! and the first step out of tolerance. Derived from the case rows, so every report
//! format, and `parity merge`, carry the same figures.

use super::{CaseReport, CaseVerdict};
use serde::{Deserialize, Serialize};

/// One stream (suite × backend) of a stateful suite.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SequenceSummary {
    /// The suite directory, as in `cases[].suite`.
    pub suite: String,
    /// The backend that carried its own state.
    pub backend: String,
    /// `golden` or the reference backend.
    pub reference: String,
    /// Steps reported.
    pub steps: usize,
    /// The first step with an output out of tolerance.
    pub first_step_out_of_tolerance: Option<usize>,
    /// The first step that could not be evaluated (later steps have no state).
    pub first_error_step: Option<usize>,
    /// The largest error of the last compared step over that of the first one with a
    /// non-zero error: how much the error grew along the stream (`null` when no step
    /// erred or fewer than two were compared).
    pub error_growth: Option<f64>,
    /// Every step, in order.
    pub curve: Vec<StepPoint>,
}

/// One step of a stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepPoint {
    /// 0-based.
    pub step: usize,
    /// The case's verdict.
    pub verdict: CaseVerdict,
    /// The largest `max_abs_err` over the step's outputs (`null`: nothing compared, or
    /// a non-finite mismatch).
    pub max_abs_err: Option<f64>,
    /// The largest share of tolerance used over its outputs.
    pub tolerance_used: Option<f64>,
}

/// The streams among `cases`, in first-seen order.
pub fn sequences(cases: &[CaseReport]) -> Vec<SequenceSummary> {
    let mut found: Vec<SequenceSummary> = Vec::new();
    for case in cases {
        let Some(step) = case.step else { continue };
        let i = match found
            .iter()
            .position(|s| s.suite == case.suite && s.backend == case.backend)
        {
            Some(i) => i,
            None => {
                found.push(SequenceSummary {
                    suite: case.suite.clone(),
                    backend: case.backend.clone(),
                    reference: case.reference.clone(),
                    steps: 0,
                    first_step_out_of_tolerance: None,
                    first_error_step: None,
                    error_growth: None,
                    curve: Vec::new(),
                });
                found.len() - 1
            }
        };
        let max_abs_err = case
            .outputs
            .iter()
            .map(|o| o.comparison.max_abs_err)
            .reduce(f64::max)
            .filter(|v| v.is_finite());
        found[i].curve.push(StepPoint {
            step,
            verdict: case.verdict,
            max_abs_err,
            tolerance_used: case.tolerance_used(),
        });
    }
    for s in &mut found {
        s.curve.sort_by_key(|p| p.step);
        s.steps = s.curve.len();
        let first = |v: CaseVerdict| s.curve.iter().find(|p| p.verdict == v).map(|p| p.step);
        s.first_step_out_of_tolerance = first(CaseVerdict::Fail);
        s.first_error_step = first(CaseVerdict::Error);
        let compared: Vec<f64> = s.curve.iter().filter_map(|p| p.max_abs_err).collect();
        let base = compared.iter().copied().find(|&e| e > 0.0);
        s.error_growth = match (base, compared.last()) {
            (Some(b), Some(&last)) if compared.len() > 1 => Some(last / b),
            _ => None,
        };
    }
    found
}

impl SequenceSummary {
    /// One line for text and Markdown reports.
    pub fn line(&self) -> String {
        let points: Vec<&StepPoint> = self
            .curve
            .iter()
            .filter(|p| p.max_abs_err.is_some())
            .collect();
        let span = match (points.first(), points.last()) {
            (Some(a), Some(b)) => format!(
                "max abs err {:.3e} at step {} -> {:.3e} at step {}{}",
                a.max_abs_err.unwrap_or(0.0),
                a.step,
                b.max_abs_err.unwrap_or(0.0),
                b.step,
                self.error_growth
                    .map_or(String::new(), |g| format!(" (x{g:.3})"))
            ),
            _ => "no step compared".to_string(),
        };
        let worst = self
            .curve
            .iter()
            .filter_map(|p| p.tolerance_used)
            .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.max(u))));
        let first = match (self.first_step_out_of_tolerance, self.first_error_step) {
            (Some(f), _) => format!("first step out of tolerance: {f}"),
            (None, Some(e)) => format!("first step that could not run: {e}"),
            (None, None) => "every step within tolerance".to_string(),
        };
        format!(
            "sequence {} on {} ({} steps): {span}; tolerance used up to {}; {first}",
            self.suite,
            self.backend,
            self.steps,
            worst.map_or("-".to_string(), |u| format!("{:.1}%", u * 100.0)),
        )
    }
}
