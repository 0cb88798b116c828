//! What `parity invariance` reports (`parity.invariance/v1`, docs/invariance.schema.json):
//! per suite, case, backend and check, each output's worst deviation over the check's
//! variants, classified `bitwise`, `within` or `out`; checks that do not apply, with
//! the reason.

use crate::compare::OutputComparison;
use crate::report::{text, CaseVerdict, Environment};
use serde::Serialize;

/// How far a variant's output is from the reference run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Identical dtype, shape and bytes.
    Bitwise,
    /// Different bytes, every element within the output's tolerance.
    Within,
    /// Out of tolerance (or another shape or dtype).
    Out,
}

impl Outcome {
    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Bitwise => "bitwise",
            Outcome::Within => "within",
            Outcome::Out => "out",
        }
    }
}

/// One output's worst deviation over a check's variants.
#[derive(Debug, Clone, Serialize)]
pub struct OutputDeviation {
    /// The output.
    pub name: String,
    /// The worst outcome over the variants.
    pub outcome: Outcome,
    /// The variant that gave it (`run 3`, `threads 4`, `batch 8 at row 7`, `basic`).
    pub variant: String,
    /// Variants compared.
    pub variants: usize,
    /// The comparison of that variant with the reference run (as in `check`).
    #[serde(flatten)]
    pub comparison: OutputComparison,
}

/// One check of one case on one backend.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The suite directory.
    pub suite: String,
    /// The data set.
    pub case: String,
    /// The backend.
    pub backend: String,
    /// `repeat`, `session`, `threads`, `batch` or `optimization`.
    pub check: &'static str,
    /// What every variant is compared against (`run 1`, `threads 1`, `alone`, `all`).
    pub reference: String,
    /// The worst output's outcome; `None` when the check could not run (`error`).
    pub outcome: Option<Outcome>,
    /// Why the check could not run.
    pub error: Option<String>,
    /// Every compared output.
    pub outputs: Vec<OutputDeviation>,
    /// Outputs the check leaves out, with the reason (no batch axis, `mode = "skip"`).
    pub skipped_outputs: Vec<Skipped>,
}

/// Something named with the reason it was left out.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The output.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// A check that does not apply to a backend (or a suite), never counted as a pass.
#[derive(Debug, Clone, Serialize)]
pub struct NotApplicable {
    /// The suite, when the reason is the suite's (no batch axis); `None`: every suite.
    pub suite: Option<String>,
    /// The backend.
    pub backend: String,
    /// The check.
    pub check: &'static str,
    /// Why.
    pub reason: String,
}

/// Counts over the results.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Check results (suite × case × backend × check that ran or errored).
    pub results: usize,
    /// Every output bitwise identical.
    pub bitwise: usize,
    /// Within tolerance, not bitwise.
    pub within: usize,
    /// Out of tolerance.
    pub out: usize,
    /// Could not run.
    pub errors: usize,
    /// Checks that did not apply.
    pub not_applicable: usize,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct InvarianceReport {
    /// `parity.invariance/v1`.
    pub schema: &'static str,
    /// `pass`, `fail` or `error`.
    pub verdict: CaseVerdict,
    /// `--bitwise`: anything not bitwise fails.
    pub bitwise_required: bool,
    /// Host and backends.
    pub environment: Environment,
    /// Counts.
    pub summary: Summary,
    /// Every check result, in suite × case × backend × check order.
    pub results: Vec<CheckResult>,
    /// Checks that did not apply.
    pub not_applicable: Vec<NotApplicable>,
}

impl InvarianceReport {
    /// The report of `results`; the verdict follows the exit-code rules of
    /// docs/invariance.md.
    pub fn new(
        environment: Environment,
        results: Vec<CheckResult>,
        not_applicable: Vec<NotApplicable>,
        bitwise_required: bool,
    ) -> InvarianceReport {
        let count = |o: Outcome| results.iter().filter(|r| r.outcome == Some(o)).count();
        let summary = Summary {
            results: results.len(),
            bitwise: count(Outcome::Bitwise),
            within: count(Outcome::Within),
            out: count(Outcome::Out),
            errors: results.iter().filter(|r| r.outcome.is_none()).count(),
            not_applicable: not_applicable.len(),
        };
        let failed = summary.out > 0 || (bitwise_required && summary.within > 0);
        let evaluated = summary.bitwise + summary.within + summary.out;
        let verdict = if failed {
            CaseVerdict::Fail
        } else if summary.errors > 0 || evaluated == 0 {
            // Nothing compared is never a pass.
            CaseVerdict::Error
        } else {
            CaseVerdict::Pass
        };
        InvarianceReport {
            schema: "parity.invariance/v1",
            verdict,
            bitwise_required,
            environment,
            summary,
            results,
            not_applicable,
        }
    }

    /// 0 pass, 1 something out (or not bitwise under `--bitwise`), 2 nothing evaluated
    /// or an error.
    pub fn exit_code(&self) -> u8 {
        self.verdict.exit_code()
    }

    /// JSON, pretty-printed.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A table of results, the largest deviation per output where not bitwise, what did
    /// not apply and a summary line.
    pub fn to_text(&self, verbose: bool) -> String {
        let mut rows = vec![[
            "SUITE",
            "CASE",
            "BACKEND",
            "CHECK",
            "OUTCOME",
            "MAX ABS",
            "MAX REL",
            "TOL USED",
            "WORST VARIANT",
        ]
        .map(String::from)
        .to_vec()];
        let mut details = Vec::new();
        for r in &self.results {
            let worst = r
                .outputs
                .iter()
                .max_by(|a, b| a.outcome.cmp(&b.outcome).then(used(a).total_cmp(&used(b))));
            let suite = short(&r.suite);
            rows.push(vec![
                suite.clone(),
                r.case.clone(),
                r.backend.clone(),
                r.check.to_string(),
                r.outcome.map_or("error", Outcome::name).to_string(),
                worst.map_or("-".into(), |w| text::num(Some(w.comparison.max_abs_err))),
                worst.map_or("-".into(), |w| text::num(Some(w.comparison.max_rel_err))),
                worst
                    .and_then(|w| w.comparison.tolerance_used)
                    .map_or("-".into(), |u| text::share(Some(u))),
                worst.map_or("-".into(), |w| format!("{} vs {}", w.variant, r.reference)),
            ]);
            if let Some(e) = &r.error {
                details.push(format!("{suite} {} {} {}: {e}", r.case, r.backend, r.check));
            }
            for o in &r.outputs {
                if verbose || o.outcome == Outcome::Out {
                    details.push(r.deviation_line(o));
                }
            }
            for s in r.skipped_outputs.iter().filter(|_| verbose) {
                details.push(format!(
                    "{suite} {} {} {}: output {} not compared: {}",
                    r.case, r.backend, r.check, s.name, s.reason
                ));
            }
        }
        let mut out = text::table(&rows);
        for d in details {
            out += &format!("  {d}\n");
        }
        for n in &self.not_applicable {
            out += &format!(
                "not applicable: {} on {}{}: {}\n",
                n.check,
                n.backend,
                n.suite
                    .as_deref()
                    .map_or(String::new(), |s| format!(" ({})", short(s))),
                n.reason
            );
        }
        let skipped: Vec<String> = self
            .environment
            .skipped_backends
            .iter()
            .map(|b| format!("{} ({})", b.name, b.reason))
            .collect();
        if !skipped.is_empty() {
            out += &format!("not run: {}\n", skipped.join(", "));
        }
        out += &format!(
            "{} -> {}\n",
            self.summary_line(),
            self.verdict.name().to_uppercase()
        );
        out
    }
}

impl InvarianceReport {
    /// The counts in one line, as every format shows them.
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        format!(
            "{} results: {} bitwise, {} within tolerance, {} out, {} errors; {} not applicable{}",
            s.results,
            s.bitwise,
            s.within,
            s.out,
            s.errors,
            s.not_applicable,
            if self.bitwise_required {
                " (--bitwise)"
            } else {
                ""
            }
        )
    }
}

impl CheckResult {
    /// One output's deviation in one line, as text, JUnit and Markdown show it.
    pub fn deviation_line(&self, o: &OutputDeviation) -> String {
        let c = &o.comparison;
        let worst = match (&c.worst_index, c.expected, c.actual) {
            (Some(i), Some(e), Some(a)) => {
                let (e, a) = text::num_pair(Some(e), Some(a));
                format!(", worst {i:?}: reference {e}, variant {a}")
            }
            _ => String::new(),
        };
        format!(
            "{} {} {} {} {}: {} at {} vs {} ({} variant{}): max abs err {}, max rel err {}, tolerance used {}, {}/{} elements differ beyond tolerance{worst}{}",
            short(&self.suite),
            self.case,
            self.backend,
            self.check,
            o.name,
            o.outcome.name(),
            o.variant,
            self.reference,
            o.variants,
            if o.variants == 1 { "" } else { "s" },
            text::num(Some(c.max_abs_err)),
            text::num(Some(c.max_rel_err)),
            text::share(c.tolerance_used),
            c.mismatched,
            c.total,
            c.problem.as_deref().map(|p| format!("; {p}")).unwrap_or_default()
        )
    }
}

/// A deviation's share of tolerance used, for ordering (unbounded is largest).
fn used(o: &OutputDeviation) -> f64 {
    o.comparison.tolerance_used.unwrap_or(f64::INFINITY)
}

/// A suite path as tables show it: its last component.
fn short(suite: &str) -> String {
    std::path::Path::new(suite)
        .file_name()
        .map_or_else(|| suite.to_string(), |n| n.to_string_lossy().into_owned())
}
