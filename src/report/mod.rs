//! One report model for `check` and `compare`, rendered as text, JSON (schema
//! `parity.report/v1`, see docs/design.md: fields may be added, never removed or renamed),
//! JUnit XML, Markdown or HTML.
//! Renderers never know which backend produced a tensor; they only see this model.

pub mod curve;
pub mod dataset;
pub mod environment;
pub mod gates;
pub mod generation;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod matrix;
pub mod metrics;
pub mod openmetrics;
pub mod provenance;
pub mod sequence;
pub mod style;
pub mod text;

use crate::compare::metrics::OutputStats;
use crate::compare::{ErrorHistogram, OutputComparison, Verdict};
use serde::{Deserialize, Serialize};

pub use environment::{BackendInfo, Environment, SkippedBackend};
pub use matrix::MatrixEntry;
pub use provenance::Provenance;
pub use sequence::SequenceSummary;

/// Schema identifier written into every JSON report.
pub const SCHEMA: &str = "parity.report/v1";

/// Verdict of a case or a whole run. Ordered from best to worst, so the worst of a run
/// is the maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseVerdict {
    Pass,
    Fail,
    Error,
}

impl CaseVerdict {
    /// Exit code contract of docs/design.md: 0 pass, 1 mismatch, 2 could not evaluate.
    pub fn exit_code(self) -> u8 {
        match self {
            CaseVerdict::Pass => 0,
            CaseVerdict::Fail => 1,
            CaseVerdict::Error => 2,
        }
    }

    /// Lower-case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            CaseVerdict::Pass => "pass",
            CaseVerdict::Fail => "fail",
            CaseVerdict::Error => "error",
        }
    }
}

/// The whole run. (Read back by `parity merge` through its own mirror of these fields,
/// since `schema` is a `&'static str`.)
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub verdict: CaseVerdict,
    pub environment: Environment,
    pub summary: Summary,
    pub cases: Vec<CaseReport>,
    /// Audit trail of `check`: which model and manifest each suite's verdicts are about.
    /// Absent from reports that ran no suite (`compare`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suites: Vec<SuiteAudit>,
    /// `check --matrix`: every backend compared with every other, per suite × output.
    /// Absent from the JSON without `--matrix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matrix: Option<Vec<MatrixEntry>>,
    /// `check --shard I/N`: which shard of the run this report holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// `parity merge`: the reports merged into this one, in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<MergedReport>,
    /// A run stopped by Ctrl-C or SIGTERM (docs/crash-safety.md): which signal. The cases
    /// it did not run are errors `not run: interrupted by SIGNAL`. Absent from a run
    /// that went to its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<Incomplete>,
    /// Every warning of the run, in the order it was given; `[]` when there was none.
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// Stateful suites (`[sequence]`): each stream's per-step error and its first step
    /// out of tolerance. Absent when the run checked none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sequences: Vec<SequenceSummary>,
    /// Dataset metrics per suite × backend × output (docs/gates.md), summed from the
    /// case rows' `stats`. Absent when no output was measured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<metrics::OutputMetrics>,
    /// Every dataset gate judged (`--gate`, `[gates]`), per suite × backend, with the
    /// per-slice and disparity results. Absent when the run had no gate.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<gates::GateResult>,
}

/// Something the run noticed that did not decide a verdict by itself (a suite whose
/// model changed since recording, a data file `parity.toml` does not list, a shard with
/// no case): carried by every report format, not only printed on stderr, so that an
/// archived report says what its run was warned about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Warning {
    /// The suite directory (as in `cases[].suite`) it is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// One line, as stderr shows it after `warning: `.
    pub message: String,
}

/// Why a report is incomplete: the signal that stopped its run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Incomplete {
    /// `SIGINT` or `SIGTERM`.
    pub signal: String,
}

/// The identity of a checked suite, so a report can be tied to exact files later.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SuiteAudit {
    /// The suite directory as reported in `cases[].suite`.
    pub suite: String,
    /// sha256 of `model.onnx` as it was checked.
    pub model_sha256: String,
    /// sha256 of `parity.toml`, when the suite has one.
    pub manifest_sha256: Option<String>,
    /// The `[provenance]` of `parity.toml` (who recorded the goldens, where, when),
    /// when the suite states one; absent from the JSON otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    /// With `check --model`: the model file that ran instead of `model.onnx`, compared
    /// with the goldens recorded from it; absent from the JSON otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<CandidateModel>,
}

/// The model `check --model` ran in place of a suite's own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CandidateModel {
    /// The file as named on the command line.
    pub path: String,
    /// Its sha256.
    pub sha256: String,
}

/// One input of `parity merge`: where it came from and what it held.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedReport {
    /// The report file as named on the command line.
    pub file: String,
    /// Its `shard`, when it was one.
    pub shard: Option<String>,
    pub verdict: CaseVerdict,
    pub summary: Summary,
    /// The machine and backends that produced it.
    pub environment: Environment,
}

/// Case counts by verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub cases: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    /// Dataset gates by verdict; absent when the run had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<gates::GateSummary>,
}

/// One suite × data set × backend.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseReport {
    pub suite: String,
    pub case: String,
    pub backend: String,
    /// `golden` or the reference backend's name.
    pub reference: String,
    pub verdict: CaseVerdict,
    /// Why the case could not be evaluated (one line).
    pub error: Option<String>,
    /// The unsupported op behind `error`, when that is the cause.
    pub error_op: Option<String>,
    /// Wall time of the backend's run of this case.
    pub latency_ms: Option<f64>,
    /// The device that actually ran the case (`cpu`, `cuda:0`).
    pub device: Option<String>,
    pub outputs: Vec<OutputReport>,
    /// Model outputs this case did not compare, and why (`parity.toml` skips them):
    /// named so that a skipped output never reads as a passed one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_outputs: Vec<SkippedOutput>,
    /// In a stateful suite (`[sequence]`), the case's step in its stream (0-based);
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// In a generation suite (`[generate]`), the prompt's generation compared with the
    /// reference's: tokens side by side, per-step error, first divergence; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<generation::GenerationCase>,
    /// The slice (group) the data set belongs to, when its suite names slices
    /// (docs/gates.md): dataset metrics and gates are also computed per slice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
    /// A failed case's verdict in one line (its first failing output: mismatches, worst
    /// element with expected and actual values, tolerance; as JUnit's failure message),
    /// for tools that show one line per case (the pytest plugin); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A model output left out of a case's comparison.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SkippedOutput {
    pub name: String,
    /// Why it was not compared (`parity.toml: mode = "skip"`).
    pub reason: String,
}

/// One skipped output of one suite, over the cases of a report.
#[derive(Debug, Clone, Copy)]
pub struct SkippedSummary<'a> {
    pub suite: &'a str,
    pub output: &'a SkippedOutput,
    /// How many case rows skipped it.
    pub cases: usize,
}

/// One compared output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputReport {
    pub name: String,
    #[serde(flatten)]
    pub comparison: OutputComparison,
    /// How much of its tolerance each element used (float outputs compared with equal
    /// shape and dtype); absent otherwise and in reports written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_histogram: Option<ErrorHistogram>,
    /// What this case adds to the output's dataset metrics (sums and counts; see
    /// `metrics`); absent when the output could not be measured (shape or dtype
    /// mismatch, missing) and in reports written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<OutputStats>,
    /// The output has dataset gates, which judge it instead of its element-wise
    /// tolerance: `verdict` is then `fail` only for a shape, dtype or NaN/Inf problem,
    /// and the element-wise figures are evidence, not the verdict.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub gated: bool,
}

impl CaseReport {
    /// The largest `tolerance_used` over the case's outputs (+inf and NaN win): how close
    /// the case is to failing. `None` when no output says (none compared, old reports).
    pub fn tolerance_used(&self) -> Option<f64> {
        self.outputs
            .iter()
            .filter_map(|o| o.comparison.tolerance_used)
            .reduce(matrix::worse)
    }

    /// A case whose outputs were compared: fail when any output fails, error when
    /// nothing was compared at all (never a pass).
    pub fn compared(
        id: CaseId,
        latency_ms: Option<f64>,
        device: Option<String>,
        outputs: Vec<OutputReport>,
    ) -> Self {
        if outputs.is_empty() {
            let mut row = Self::errored(
                id,
                "nothing compared: no output of this case was compared".to_string(),
                None,
            );
            row.latency_ms = latency_ms;
            row.device = device;
            return row;
        }
        let verdict = if outputs
            .iter()
            .all(|o| o.comparison.verdict == Verdict::Pass)
        {
            CaseVerdict::Pass
        } else {
            CaseVerdict::Fail
        };
        CaseReport {
            suite: id.suite,
            case: id.case,
            backend: id.backend,
            reference: id.reference,
            verdict,
            error: None,
            error_op: None,
            latency_ms,
            device,
            outputs,
            skipped_outputs: Vec::new(),
            step: None,
            generation: None,
            slice: None,
            message: None,
        }
    }

    /// A case that could not be evaluated.
    pub fn errored(id: CaseId, error: String, op: Option<String>) -> Self {
        CaseReport {
            suite: id.suite,
            case: id.case,
            backend: id.backend,
            reference: id.reference,
            verdict: CaseVerdict::Error,
            error: Some(error),
            error_op: op,
            latency_ms: None,
            device: None,
            outputs: Vec::new(),
            skipped_outputs: Vec::new(),
            step: None,
            generation: None,
            slice: None,
            message: None,
        }
    }
}

/// The identifying columns of a case row.
#[derive(Debug, Clone)]
pub struct CaseId {
    pub suite: String,
    pub case: String,
    pub backend: String,
    pub reference: String,
}

impl Report {
    /// Builds a report, deriving the summary and the overall verdict from the cases.
    pub fn new(environment: Environment, mut cases: Vec<CaseReport>) -> Report {
        for case in &mut cases {
            case.message =
                (case.verdict == CaseVerdict::Fail).then(|| junit::failure_message(case));
        }
        let count = |v| cases.iter().filter(|c| c.verdict == v).count();
        let summary = Summary {
            cases: cases.len(),
            passed: count(CaseVerdict::Pass),
            failed: count(CaseVerdict::Fail),
            errors: count(CaseVerdict::Error),
            gates: None,
        };
        let verdict = cases
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(CaseVerdict::Error);
        Report {
            schema: SCHEMA,
            verdict,
            environment,
            summary,
            suites: Vec::new(),
            matrix: None,
            shard: None,
            merged: Vec::new(),
            incomplete: None,
            warnings: Vec::new(),
            sequences: sequence::sequences(&cases),
            metrics: metrics::metrics(&cases),
            gates: Vec::new(),
            cases,
        }
    }

    /// Judges the suites' dataset gates on the report's metrics: the results join the
    /// report, its summary counts them and a failed (errored) gate fails (errors) the
    /// run, as a case would.
    pub fn judge_gates(&mut self, suites: &[gates::SuiteGates]) {
        self.gates = gates::judge(&self.cases, &self.metrics, suites);
        if self.gates.is_empty() {
            return;
        }
        self.summary.gates = Some(gates::GateSummary::of(&self.gates));
        let worst = self.gates.iter().map(|g| g.verdict).max();
        self.verdict = self.verdict.max(worst.unwrap_or(CaseVerdict::Pass));
    }

    /// Every output skipped by some case, once per suite × output, with its reason and
    /// the number of cases that skipped it, in first-seen order: what renderers list
    /// so a skipped output is never mistaken for a compared one.
    pub fn skipped_outputs(&self) -> Vec<SkippedSummary<'_>> {
        let mut found: Vec<SkippedSummary> = Vec::new();
        for case in &self.cases {
            for s in &case.skipped_outputs {
                match found
                    .iter_mut()
                    .find(|f| f.suite == case.suite && f.output.name == s.name)
                {
                    Some(f) => f.cases += 1,
                    None => found.push(SkippedSummary {
                        suite: &case.suite,
                        output: s,
                        cases: 1,
                    }),
                }
            }
        }
        found
    }

    /// JSON text of the report (`--format json`). Non-finite numbers become `null`.
    pub fn to_json(&self) -> String {
        // Serialising plain structs of strings and numbers cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
