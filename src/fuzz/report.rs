//! The fuzz report: `parity.fuzz/v1` JSON (documented in docs/fuzz.md) and its text
//! rendering. Findings first (what a person acts on), then every case with every
//! backend's status.

use super::run::{CaseResult, Finding, FindingKind, Skipped, Status};
use crate::report::Environment;
use serde::Serialize;

/// Schema identifier of `parity fuzz --format json`.
pub const SCHEMA: &str = "parity.fuzz/v1";

/// Counts by finding kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FuzzSummary {
    pub cases: usize,
    pub findings: usize,
    pub crashes: usize,
    pub timeouts: usize,
    pub errors: usize,
    pub non_finite: usize,
    pub mismatches: usize,
}

/// Worker limits as reported.
#[derive(Debug, Clone, Serialize)]
pub struct IsolationInfo {
    pub timeout_s: f64,
    pub memory_limit_bytes: Option<u64>,
}

/// The whole fuzz run.
#[derive(Debug, Clone, Serialize)]
pub struct FuzzReport {
    pub schema: &'static str,
    /// `pass` (no finding) or `fail`.
    pub verdict: &'static str,
    pub environment: Environment,
    pub model: String,
    pub model_sha256: String,
    pub seed: u64,
    pub max_bytes: usize,
    /// `--finite-inputs`: no NaN or ±Inf was put in any input.
    pub finite_inputs: bool,
    /// The backend the others are compared with.
    pub reference: String,
    /// Worker limits, or null with `--no-isolate`.
    pub isolation: Option<IsolationInfo>,
    pub summary: FuzzSummary,
    /// Backends that could not load the model (not run).
    pub skipped: Vec<Skipped>,
    pub findings: Vec<Finding>,
    pub cases: Vec<CaseResult>,
}

impl FuzzSummary {
    /// Counts the cases and findings.
    pub fn new(cases: usize, findings: &[Finding]) -> FuzzSummary {
        let count = |k| findings.iter().filter(|f| f.kind == k).count();
        FuzzSummary {
            cases,
            findings: findings.len(),
            crashes: count(FindingKind::Crash),
            timeouts: count(FindingKind::Timeout),
            errors: count(FindingKind::Error),
            non_finite: count(FindingKind::NonFinite),
            mismatches: count(FindingKind::Mismatch),
        }
    }
}

impl FuzzReport {
    /// JSON text (non-finite numbers as `null`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The exit code: 1 with findings, 0 without.
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.findings.is_empty())
    }

    /// Text for people: header, skipped backends, findings, (verbose) every case, verdict.
    pub fn to_text(&self, quiet: bool, verbose: bool) -> String {
        let mut s = String::new();
        let backends: Vec<&str> = self
            .environment
            .backends
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        let isolation = match &self.isolation {
            Some(i) => format!(
                "isolated (timeout {} s, memory limit {})",
                i.timeout_s,
                i.memory_limit_bytes
                    .map_or("none".to_string(), |b| format!("{} MiB", b >> 20))
            ),
            None => "in-process (--no-isolate)".to_string(),
        };
        if !quiet {
            s += &format!(
                "parity fuzz {}: {} cases, seed {}, backends {} (reference {}), {isolation}\n",
                self.model,
                self.summary.cases,
                self.seed,
                backends.join(", "),
                self.reference
            );
            for sk in &self.skipped {
                s += &format!("skipped {}: {}\n", sk.backend, sk.reason);
            }
            if verbose {
                for c in &self.cases {
                    let runs: Vec<String> = c
                        .results
                        .iter()
                        .map(|r| format!("{} {}", r.backend, status_name(r.status)))
                        .collect();
                    s += &format!(
                        "  {} {:<18} {}\n",
                        c.case.case,
                        c.case.recipe,
                        runs.join(", ")
                    );
                }
            }
            for f in &self.findings {
                s += &format!(
                    "{} {} {} {}: {}",
                    f.kind.name(),
                    f.case,
                    f.recipe,
                    f.backend,
                    f.detail
                );
                if let Some(saved) = &f.saved {
                    s += &format!(" [saved: {saved}]");
                }
                s += "\n";
            }
        }
        let sm = &self.summary;
        s += &format!(
            "{}: {} findings in {} cases ({} crash, {} timeout, {} error, {} non-finite, {} mismatch)\n",
            if self.findings.is_empty() { "PASS" } else { "FAIL" },
            sm.findings,
            sm.cases,
            sm.crashes,
            sm.timeouts,
            sm.errors,
            sm.non_finite,
            sm.mismatches
        );
        s
    }
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Error => "error",
        Status::Crash => "crash",
        Status::Timeout => "timeout",
    }
}
