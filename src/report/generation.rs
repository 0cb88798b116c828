//! Token-level results of a greedy generation compared with its reference, as reports
//! carry them: the per-step error curve, the first step out of tolerance and the first
//! differing token (`parity generate`, and generation suites in `check` reports, where
//! they are a case's `generation`). Computed by `generate::verdict`.

use crate::compare::Verdict;
use serde::{Deserialize, Serialize};

/// The error of one compared step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepError {
    /// 0 is the step that read the prompt.
    pub step: usize,
    /// Whether the step's logits are within tolerance.
    pub verdict: Verdict,
    /// Largest `|a - e|` over the vocabulary (+inf on a NaN/Inf mismatch; JSON null).
    #[serde(deserialize_with = "crate::compare::deserialize_f64_or_inf")]
    pub max_abs_err: f64,
    /// Share of tolerance the worst logit used (1 = the edge; null unbounded).
    pub tolerance_used: Option<f64>,
    /// The worst logit: its token id, expected and actual values.
    pub worst_token: Option<usize>,
    /// Reference logit of `worst_token`.
    pub expected: Option<f64>,
    /// Candidate logit of `worst_token`.
    pub actual: Option<f64>,
}

/// A token with its log-probability on one side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// Token id.
    pub token: i64,
    /// `log_softmax` of the logits at it.
    pub logprob: f64,
}

/// The first step where the two sides chose different tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    /// The step.
    pub step: usize,
    /// The reference's token.
    pub expected: i64,
    /// The candidate's token.
    pub actual: i64,
    /// Reference logit of `expected` minus reference logit of `actual` (>= 0).
    #[serde(deserialize_with = "crate::compare::deserialize_f64_or_inf")]
    pub gap: f64,
    /// The gap a near-tie may have: the logits' tolerance at the reference's value.
    pub allowed_gap: f64,
    /// Whether the two tokens are a near-tie (then the divergence passes).
    pub near_tie: bool,
    /// The reference's top-k at this step.
    pub expected_top: Vec<Ranked>,
    /// The candidate's top-k at this step.
    pub actual_top: Vec<Ranked>,
}

/// The verdict on one candidate generation against its reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// Pass: every compared step within tolerance and no divergence but a near-tie
    /// (the report's entry carries it as its own `verdict`).
    #[serde(skip, default = "failed")]
    pub verdict: Verdict,
    /// Steps whose logits were compared (up to and including a divergence).
    pub steps_compared: usize,
    /// The first step whose logits are out of tolerance.
    pub first_step_out_of_tolerance: Option<usize>,
    /// The first differing token, if any.
    pub divergence: Option<Divergence>,
    /// Every compared step's error, in order: the error curve.
    pub steps: Vec<StepError>,
    /// What else is wrong in one line (lengths differ, vocabularies differ).
    pub problem: Option<String>,
}

impl Judgement {
    /// The error curve on one line: the share of tolerance each compared step used, in
    /// step order (`-` where unbounded), so growth over the steps reads at a glance in
    /// text, Markdown and JUnit.
    pub fn curve_line(&self) -> String {
        let used: Vec<String> = self
            .steps
            .iter()
            .map(|s| match s.tolerance_used {
                Some(u) if u.is_finite() => format!("{:.0}", u * 100.0),
                _ => "-".to_string(),
            })
            .collect();
        format!(
            "tolerance used per step (%, steps 0-{}): {}",
            self.steps.len().saturating_sub(1),
            used.join(" ")
        )
    }
}

/// A judgement read back from a report has no verdict of its own (its case has).
fn failed() -> Verdict {
    Verdict::Fail
}

/// A generation suite's case: the prompt, the two generations and their judgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationCase {
    /// The prompt's token ids.
    pub prompt: Vec<i64>,
    /// The reference's tokens (the goldens or the reference backend's).
    pub expected_tokens: Vec<i64>,
    /// The backend's tokens.
    pub actual_tokens: Vec<i64>,
    /// The comparison.
    #[serde(flatten)]
    pub judgement: Judgement,
}

impl GenerationCase {
    /// One line on the tokens: all equal, or where and how they first differ, and the
    /// first step whose logits are out of tolerance. Text, Markdown and JUnit show it.
    pub fn line(&self) -> String {
        let j = &self.judgement;
        let n = self.expected_tokens.len();
        let mut s = match &j.divergence {
            None if self.actual_tokens == self.expected_tokens => {
                format!("tokens: {n}/{n} equal")
            }
            None => format!(
                "tokens: {} generated, the reference has {n}",
                self.actual_tokens.len()
            ),
            Some(d) => {
                let why = if d.near_tie {
                    "a near-tie: passes, nothing compared after it".to_string()
                } else {
                    let mut why = Vec::new();
                    if d.gap.abs() > d.allowed_gap || d.gap.is_nan() {
                        why.push(format!("gap above the allowed {:.3e}", d.allowed_gap));
                    }
                    if !d.expected_top.iter().any(|r| r.token == d.actual) {
                        why.push(format!(
                            "{} not in the reference's top {}",
                            d.actual,
                            d.expected_top.len()
                        ));
                    }
                    if !d.actual_top.iter().any(|r| r.token == d.expected) {
                        why.push(format!(
                            "{} not in the backend's top {}",
                            d.expected,
                            d.actual_top.len()
                        ));
                    }
                    format!("not a near-tie: {}", why.join(", "))
                };
                format!(
                    "tokens: equal up to step {}, where the reference chose {} and the backend {} (reference logit gap {:.3e}; {why})",
                    d.step, d.expected, d.actual, d.gap
                )
            }
        };
        if let Some(step) = j.first_step_out_of_tolerance {
            let st = &j.steps[step];
            let v = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.6}"));
            s += &format!(
                "; logits out of tolerance from step {step} (worst at token {}: expected {}, actual {})",
                st.worst_token.map_or("-".to_string(), |t| t.to_string()),
                v(st.expected),
                v(st.actual)
            );
        }
        s
    }

    /// Whether a reader should see [`GenerationCase::line`] without asking for detail:
    /// a failure or a near-tie.
    pub fn notable(&self) -> bool {
        self.judgement.divergence.is_some()
            || self.judgement.first_step_out_of_tolerance.is_some()
            || self.actual_tokens != self.expected_tokens
    }
}

/// Token ids on one line, space-separated, as every report format shows them.
pub fn token_ids(t: &[i64]) -> String {
    t.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
