//! The generate report, schema `parity.generate/v1`: per prompt the reference's tokens
//! and each backend's verdict with its tokens, error curve and first divergence; per
//! backend its decoding speed. Rendered as JSON or as text for people.

use super::decode::Generation;
use super::verdict::Judgement;
use crate::compare::Verdict;
use crate::report::generation::{token_ids as ids, GenerationCase};
use crate::report::{CaseVerdict, Environment};
use serde::Serialize;

/// The JSON schema identifier of generate reports.
pub const SCHEMA: &str = "parity.generate/v1";

/// `parity.generate/v1`.
#[derive(Debug, Serialize)]
pub struct GenerateReport {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// `pass`, `fail` (a result out of tolerance), or `error` (a backend could not decode).
    pub verdict: CaseVerdict,
    /// The model decoded.
    pub model: String,
    /// The backend whose generations are expected.
    pub reference: String,
    /// Tokens generated per prompt.
    pub max_new_tokens: usize,
    /// The k of the near-tie rule.
    pub top_logprobs: usize,
    /// Prompts decoded together (left-padded).
    pub batch: usize,
    /// Tolerance overrides; `null` means the logits' dtype default.
    pub atol: Option<f64>,
    /// See `atol`.
    pub rtol: Option<f64>,
    /// Counts over every (prompt, backend) result.
    pub summary: Summary,
    /// Each backend's run, the reference first.
    pub backends: Vec<BackendRun>,
    /// Each prompt with every backend's result.
    pub prompts: Vec<PromptEntry>,
    /// The machine and the backends.
    pub environment: Environment,
}

/// Counts of results.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Prompts decoded.
    pub prompts: usize,
    /// (prompt, candidate backend) results.
    pub results: usize,
    /// Results that pass.
    pub passed: usize,
    /// Results that fail.
    pub failed: usize,
    /// Results a backend could not produce.
    pub errors: usize,
    /// Passing results that diverged at a near-tie.
    pub near_ties: usize,
}

/// One backend's decoding run over every prompt.
#[derive(Debug, Serialize)]
pub struct BackendRun {
    /// Backend name.
    pub name: String,
    /// Why it could not decode, if it could not.
    pub error: Option<String>,
    /// Tokens generated (over every prompt).
    pub generated_tokens: usize,
    /// Generated tokens per second of decoding (batches one after another).
    pub tokens_per_s: Option<f64>,
    /// Mean time of the first step (the prompt), milliseconds.
    pub first_token_ms: Option<f64>,
}

/// One prompt and its results.
#[derive(Debug, Serialize)]
pub struct PromptEntry {
    /// The prompt's token ids.
    pub prompt: Vec<i64>,
    /// The reference's tokens (`null` when the reference could not decode).
    pub reference_tokens: Option<Vec<i64>>,
    /// Every other backend's result.
    pub results: Vec<ResultEntry>,
}

/// One backend's result on one prompt.
#[derive(Debug, Serialize)]
pub struct ResultEntry {
    /// Backend name.
    pub backend: String,
    /// `pass`, `fail` or `error`.
    pub verdict: CaseVerdict,
    /// Why there is no result.
    pub error: Option<String>,
    /// Its tokens.
    pub tokens: Vec<i64>,
    /// The comparison with the reference.
    #[serde(flatten)]
    pub judgement: Option<Judgement>,
}

/// One backend's outcome, before the report is assembled.
pub struct BackendOutcome {
    /// Backend name.
    pub name: String,
    /// Per prompt, in prompt order; or why the backend could not decode.
    pub generations: Result<Vec<Generation>, String>,
}

impl GenerateReport {
    /// Assembles the report; `judge` compares a candidate with the reference generation.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: String,
        reference: &BackendOutcome,
        candidates: &[BackendOutcome],
        settings: Settings,
        environment: Environment,
        judge: impl Fn(&Generation, &Generation) -> Judgement,
    ) -> GenerateReport {
        let mut summary = Summary {
            prompts: settings.prompts.len(),
            ..Summary::default()
        };
        let prompts = settings
            .prompts
            .iter()
            .enumerate()
            .map(|(p, prompt)| {
                let expected = reference.generations.as_ref().ok().map(|g| &g[p]);
                let results = candidates
                    .iter()
                    .map(|c| {
                        let entry = result(c, p, expected, &reference.name, &judge);
                        summary.results += 1;
                        match entry.verdict {
                            CaseVerdict::Pass => summary.passed += 1,
                            CaseVerdict::Fail => summary.failed += 1,
                            CaseVerdict::Error => summary.errors += 1,
                        }
                        let tie = entry
                            .judgement
                            .as_ref()
                            .is_some_and(|j| j.verdict == Verdict::Pass && j.divergence.is_some());
                        summary.near_ties += usize::from(tie);
                        entry
                    })
                    .collect();
                PromptEntry {
                    prompt: prompt.clone(),
                    reference_tokens: expected.map(|g| g.tokens.clone()),
                    results,
                }
            })
            .collect();
        let verdict = if summary.errors > 0 || reference.generations.is_err() {
            CaseVerdict::Error
        } else if summary.failed > 0 {
            CaseVerdict::Fail
        } else {
            CaseVerdict::Pass
        };
        GenerateReport {
            schema: SCHEMA,
            verdict,
            model,
            reference: reference.name.clone(),
            max_new_tokens: settings.max_new_tokens,
            top_logprobs: settings.top_logprobs,
            batch: settings.batch,
            atol: settings.atol,
            rtol: settings.rtol,
            summary,
            backends: std::iter::once(reference)
                .chain(candidates)
                .map(backend_run)
                .collect(),
            prompts,
            environment,
        }
    }

    /// 0 every result passes, 1 a result fails, 2 a backend could not decode.
    pub fn exit_code(&self) -> u8 {
        self.verdict.exit_code()
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The text report: per prompt the reference tokens and one line per backend, then
    /// the speed table and the verdict; every step's error with `verbose`.
    pub fn to_text(&self, verbose: bool) -> String {
        let mut s = format!(
            "generate {}: {} prompt{} x {} new tokens (batch {}), reference {}, near-ties within the top {}\n",
            self.model,
            self.prompts.len(),
            if self.prompts.len() == 1 { "" } else { "s" },
            self.max_new_tokens,
            self.batch,
            self.reference,
            self.top_logprobs
        );
        let width = self
            .backends
            .iter()
            .map(|b| b.name.len())
            .max()
            .unwrap_or(0);
        for (i, p) in self.prompts.iter().enumerate() {
            s += &format!("\nprompt {i} {:?}\n", p.prompt);
            match &p.reference_tokens {
                Some(t) => s += &format!("  {:width$}  reference  {}\n", self.reference, ids(t)),
                None => s += &format!("  {:width$}  reference  (no tokens)\n", self.reference),
            }
            for r in &p.results {
                s += &format!(
                    "  {:width$}  {:9}  {}\n",
                    r.backend,
                    r.verdict.name().to_uppercase(),
                    line(
                        r,
                        &p.prompt,
                        p.reference_tokens.as_deref().unwrap_or_default()
                    )
                );
                if verbose {
                    for st in r.judgement.iter().flat_map(|j| &j.steps) {
                        s += &format!(
                            "  {:width$}  step {:>3}  max abs err {:.3e}  tolerance used {}\n",
                            "",
                            st.step,
                            st.max_abs_err,
                            st.tolerance_used
                                .map_or("unbounded".into(), |u| format!("{:.1}%", u * 100.0))
                        );
                    }
                } else if let Some(j) = r
                    .judgement
                    .as_ref()
                    .filter(|_| r.verdict != CaseVerdict::Pass)
                {
                    s += &format!("  {:width$}  {}\n", "", j.curve_line());
                }
            }
        }
        s += &format!(
            "\n  {:width$}  {:>10}  {:>14}\n",
            "backend", "tokens/s", "first step ms"
        );
        for b in &self.backends {
            match &b.error {
                Some(e) => s += &format!("  {:width$}  error: {e}\n", b.name),
                None => {
                    s += &format!(
                        "  {:width$}  {:>10}  {:>14}\n",
                        b.name,
                        b.tokens_per_s.map_or("-".into(), |v| format!("{v:.1}")),
                        b.first_token_ms.map_or("-".into(), |v| format!("{v:.2}"))
                    )
                }
            }
        }
        let skipped: Vec<String> = self
            .environment
            .skipped_backends
            .iter()
            .map(|b| format!("{} ({})", b.name, b.reason))
            .collect();
        if !skipped.is_empty() {
            s += &format!("skipped backends: {}\n", skipped.join(", "));
        }
        s += &format!(
            "\nverdict: {} ({} result{}: {} passed, {} near-ties among them, {} failed, {} errors)\n",
            self.verdict.name(),
            self.summary.results,
            if self.summary.results == 1 { "" } else { "s" },
            self.summary.passed,
            self.summary.near_ties,
            self.summary.failed,
            self.summary.errors
        );
        s
    }
}

/// The run's settings, echoed in the report.
pub struct Settings {
    /// The prompts, in order.
    pub prompts: Vec<Vec<i64>>,
    /// Tokens per prompt.
    pub max_new_tokens: usize,
    /// k of the near-tie rule.
    pub top_logprobs: usize,
    /// Prompts per batch.
    pub batch: usize,
    /// `--atol`.
    pub atol: Option<f64>,
    /// `--rtol`.
    pub rtol: Option<f64>,
}

fn result(
    c: &BackendOutcome,
    p: usize,
    expected: Option<&Generation>,
    reference: &str,
    judge: &impl Fn(&Generation, &Generation) -> Judgement,
) -> ResultEntry {
    let error = |e: String| ResultEntry {
        backend: c.name.clone(),
        verdict: CaseVerdict::Error,
        error: Some(e),
        tokens: Vec::new(),
        judgement: None,
    };
    let actual = match &c.generations {
        Ok(g) => &g[p],
        Err(e) => return error(e.clone()),
    };
    let Some(expected) = expected else {
        return ResultEntry {
            tokens: actual.tokens.clone(),
            ..error(format!("the reference {reference} could not decode"))
        };
    };
    let j = judge(expected, actual);
    ResultEntry {
        backend: c.name.clone(),
        verdict: if j.verdict == Verdict::Pass {
            CaseVerdict::Pass
        } else {
            CaseVerdict::Fail
        },
        error: None,
        tokens: actual.tokens.clone(),
        judgement: Some(j),
    }
}

fn backend_run(o: &BackendOutcome) -> BackendRun {
    match &o.generations {
        Err(e) => BackendRun {
            name: o.name.clone(),
            error: Some(e.clone()),
            generated_tokens: 0,
            tokens_per_s: None,
            first_token_ms: None,
        },
        Ok(gens) => {
            let tokens: usize = gens.iter().map(|g| g.tokens.len()).sum();
            // Prompts of one batch share their steps' times: count each batch once.
            let mut seconds = 0.0;
            let mut firsts = Vec::new();
            let mut last: Option<&[f64]> = None;
            for g in gens {
                if last != Some(g.step_seconds.as_slice()) {
                    seconds += g.step_seconds.iter().sum::<f64>();
                    firsts.extend(g.step_seconds.first().copied());
                }
                last = Some(&g.step_seconds);
            }
            BackendRun {
                name: o.name.clone(),
                error: None,
                generated_tokens: tokens,
                tokens_per_s: (seconds > 0.0).then(|| tokens as f64 / seconds),
                first_token_ms: (!firsts.is_empty())
                    .then(|| firsts.iter().sum::<f64>() / firsts.len() as f64 * 1e3),
            }
        }
    }
}

/// What a result line says: the tokens' verdict line of check reports, with the
/// logits' largest error.
fn line(r: &ResultEntry, prompt: &[i64], expected: &[i64]) -> String {
    if let Some(e) = &r.error {
        return e.clone();
    }
    let Some(j) = &r.judgement else {
        return String::new();
    };
    let worst = j
        .steps
        .iter()
        .map(|s| s.tolerance_used.unwrap_or(f64::INFINITY))
        .fold(0.0, f64::max);
    let err = j.steps.iter().map(|s| s.max_abs_err).fold(0.0, f64::max);
    let case = GenerationCase {
        prompt: prompt.to_vec(),
        expected_tokens: expected.to_vec(),
        actual_tokens: r.tokens.clone(),
        judgement: j.clone(),
    };
    let mut s = format!(
        "{}; logits max abs err {err:.3e} ({})",
        case.line(),
        used(worst)
    );
    if let Some(p) = &j.problem {
        s += &format!("; {p}");
    }
    s
}

fn used(u: f64) -> String {
    if u.is_finite() {
        format!("{:.1}% of tolerance", u * 100.0)
    } else {
        "unbounded".into()
    }
}
