//! The fuzz report: `parity.fuzz/v1` JSON (documented in docs/fuzz.md), its text
//! rendering and JUnit XML. Findings are grouped by backend, kind and cause (one
//! behaviour found by several cases is one group listing them), documented refusals are
//! notes, then every case with every backend's status.

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
    /// Distinct behaviours: findings grouped by backend, kind and cause.
    pub groups: usize,
    /// Documented refusals (not findings).
    pub notes: usize,
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
    /// The `--dim` sizes every case kept (`batch=4`).
    pub dims: Vec<String>,
    pub summary: FuzzSummary,
    /// Backends that could not load the model (not run).
    pub skipped: Vec<Skipped>,
    /// The findings grouped: one entry per backend, kind and cause.
    pub groups: Vec<FindingGroup>,
    /// The notes grouped the same way.
    pub note_groups: Vec<FindingGroup>,
    pub findings: Vec<Finding>,
    /// Documented refusals of inputs the reference ran (kind `refused`).
    pub notes: Vec<Finding>,
    pub cases: Vec<CaseResult>,
}

/// Findings of one behaviour: the same kind and cause on the same backend.
#[derive(Debug, Clone, Serialize)]
pub struct FindingGroup {
    pub kind: FindingKind,
    pub backend: String,
    /// The cause the findings share (counts and values replaced by `#`).
    pub cause: String,
    /// The cases that found it, in run order, each with its recipe (`fuzz_0001 nan`).
    pub cases: Vec<String>,
    /// The first finding's detail, with its real values.
    pub example: String,
}

/// Groups findings by (kind, backend, cause); groups in order of kind, then of first
/// appearance.
pub fn group(findings: &[Finding]) -> Vec<FindingGroup> {
    let mut groups: Vec<FindingGroup> = Vec::new();
    for f in findings {
        let case = format!("{} {}", f.case, f.recipe);
        let same = |g: &&mut FindingGroup| {
            g.kind == f.kind && g.backend == f.backend && g.cause == f.cause
        };
        match groups.iter_mut().find(same) {
            Some(g) => g.cases.push(case),
            None => groups.push(FindingGroup {
                kind: f.kind,
                backend: f.backend.clone(),
                cause: f.cause.clone(),
                cases: vec![case],
                example: f.detail.clone(),
            }),
        }
    }
    groups.sort_by_key(|g| g.kind);
    groups
}

impl FuzzSummary {
    /// Counts the cases, findings, their groups and the notes.
    pub fn new(cases: usize, findings: &[Finding], notes: &[Finding]) -> FuzzSummary {
        let count = |k| findings.iter().filter(|f| f.kind == k).count();
        FuzzSummary {
            cases,
            findings: findings.len(),
            groups: group(findings).len(),
            notes: notes.len(),
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
            if verbose {
                for f in &self.findings {
                    s += &finding_line(f);
                }
            }
            for g in &self.groups {
                s += &group_lines(g, &self.findings);
            }
            if !self.note_groups.is_empty() {
                s += "notes (documented refusals of inputs the reference ran; not findings):\n";
                for g in &self.note_groups {
                    s += &group_lines(g, &[]);
                }
            }
        }
        let sm = &self.summary;
        let notes = match sm.notes {
            0 => String::new(),
            n => format!(", {n} notes"),
        };
        s += &format!(
            "{}: {} findings ({} distinct) in {} cases ({} crash, {} timeout, {} error, {} non-finite, {} mismatch){notes}\n",
            if self.findings.is_empty() { "PASS" } else { "FAIL" },
            sm.findings,
            sm.groups,
            sm.cases,
            sm.crashes,
            sm.timeouts,
            sm.errors,
            sm.non_finite,
            sm.mismatches
        );
        s
    }

    /// JUnit XML: one test suite per backend, one test case per fuzz case; a case with
    /// a finding on that backend fails with the finding, a documented refusal is
    /// skipped with its reason, a backend that could not load the model is one errored
    /// test case.
    pub fn to_junit(&self) -> String {
        use crate::report::junit::{attr, text};
        let mut backends: Vec<&str> = Vec::new();
        for c in &self.cases {
            for r in &c.results {
                if !backends.contains(&r.backend.as_str()) {
                    backends.push(&r.backend);
                }
            }
        }
        let mut x = String::new();
        let mut total_failures = 0;
        for backend in &backends {
            let found = |case: &str| -> Vec<&Finding> {
                self.findings
                    .iter()
                    .filter(|f| f.backend == *backend && f.case == case)
                    .collect()
            };
            let failures = self
                .cases
                .iter()
                .filter(|c| !found(&c.case.case).is_empty())
                .count();
            total_failures += failures;
            let refused = |case: &str| {
                self.notes
                    .iter()
                    .find(|f| f.backend == *backend && f.case == case)
            };
            let skipped = self
                .cases
                .iter()
                .filter(|c| refused(&c.case.case).is_some())
                .count();
            x += &format!(
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">\n",
                attr(&format!("fuzz {backend} (reference {})", self.reference)),
                self.cases.len()
            );
            for c in &self.cases {
                let name = format!("{} {}", c.case.case, c.case.recipe);
                x += &format!(
                    "    <testcase classname=\"{}\" name=\"{}\">",
                    attr(&format!("parity.fuzz.{backend}")),
                    attr(&name)
                );
                let mine = found(&c.case.case);
                if let Some(first) = mine.first() {
                    let body: Vec<String> = mine.iter().map(|f| finding_line(f)).collect();
                    x += &format!(
                        "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    ",
                        attr(&first.detail),
                        first.kind.name(),
                        text(&body.concat())
                    );
                } else if let Some(note) = refused(&c.case.case) {
                    x += &format!(
                        "\n      <skipped message=\"{}\"/>\n    ",
                        attr(&note.detail)
                    );
                }
                x += "</testcase>\n";
            }
            x += "  </testsuite>\n";
        }
        for sk in &self.skipped {
            x += &format!(
                "  <testsuite name=\"{}\" tests=\"1\" failures=\"0\" errors=\"1\">\n    <testcase classname=\"{}\" name=\"load\">\n      <error message=\"{}\"/>\n    </testcase>\n  </testsuite>\n",
                attr(&format!("fuzz {}", sk.backend)),
                attr(&format!("parity.fuzz.{}", sk.backend)),
                attr(&sk.reason)
            );
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"{}\" tests=\"{}\" failures=\"{total_failures}\" errors=\"{}\">\n{x}</testsuites>\n",
            attr(&format!("parity fuzz {}", self.model)),
            self.cases.len() * backends.len() + self.skipped.len(),
            self.skipped.len()
        )
    }
}

/// One finding on one line (`-v`, JUnit bodies).
fn finding_line(f: &Finding) -> String {
    let saved = f
        .saved
        .as_ref()
        .map_or(String::new(), |p| format!(" [saved: {p}]"));
    format!(
        "{} {} {} {}: {}{saved}\n",
        f.kind.name(),
        f.case,
        f.recipe,
        f.backend,
        f.detail
    )
}

/// A group: its kind, backend, cause and cases (up to 8 named), then the first case's
/// detail and where the group's cases were saved.
fn group_lines(g: &FindingGroup, findings: &[Finding]) -> String {
    const SHOWN: usize = 8;
    let n = g.cases.len();
    let mut cases = g.cases[..n.min(SHOWN)].join(", ");
    if n > SHOWN {
        cases += &format!(", and {} more", n - SHOWN);
    }
    let mut s = format!(
        "{} {}: {} ({n} case{}: {cases})\n    e.g. {}: {}\n",
        g.kind.name(),
        g.backend,
        g.cause,
        if n == 1 { "" } else { "s" },
        g.cases[0],
        g.example
    );
    let saved: Vec<&str> = findings
        .iter()
        .filter(|f| f.kind == g.kind && f.backend == g.backend && f.cause == g.cause)
        .filter_map(|f| f.saved.as_deref())
        .collect();
    if !saved.is_empty() {
        s += &format!("    saved: {}\n", saved.join(", "));
    }
    s
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Error => "error",
        Status::Crash => "crash",
        Status::Timeout => "timeout",
    }
}
