//! The verdict of the baseline gate (`bench --baseline`) and its text: the data that
//! [`super::baseline`] computes and [`super::report`] carries and prints, in a module of
//! its own so the two never import each other.

use serde::{Deserialize, Serialize};

/// The gate's verdict against one baseline file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineCheck {
    /// The baseline file.
    pub file: String,
    /// `true` when any result regressed (exit 1).
    pub regression: bool,
    pub threshold: f64,
    pub noise_multiple: f64,
    pub comparisons: Vec<GateEntry>,
    /// Results of this run the baseline has no counterpart for.
    pub unmatched: Vec<String>,
    /// Results of the baseline this run did not measure (a model or backend left out,
    /// renamed or failing): never silently dropped from the gate. A failure with
    /// `bench --strict`, a warning otherwise. Empty in reports written before it existed.
    #[serde(default)]
    pub not_measured: Vec<String>,
    /// `bench --strict`: a baseline result not re-measured fails the gate.
    #[serde(default)]
    pub strict: bool,
    /// Differences that make the comparison less meaningful: another CPU, GPU, host,
    /// backend version or model.
    pub warnings: Vec<String>,
}

/// One result against its baseline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateEntry {
    /// `model_name backend scenario batch=B concurrency=C threads=T`.
    pub key: String,
    /// `p50_ms`, `samples_per_s` or `max_qps`.
    pub metric: String,
    pub baseline: f64,
    pub current: f64,
    /// Relative slowdown; negative is faster.
    pub slowdown: f64,
    /// The larger window spread of the two runs.
    pub noise: f64,
    /// `max(threshold, noise_multiple × noise)`: what the slowdown had to exceed.
    pub limit: f64,
    pub regression: bool,
}

/// The gate's section of the text report.
pub fn render_text(b: &BaselineCheck) -> String {
    let mut out = format!(
        "\nbaseline {}: a regression is a slowdown above max({:.0}%, {} x noise)\n",
        b.file,
        b.threshold * 100.0,
        b.noise_multiple
    );
    for c in &b.comparisons {
        out += &format!(
            "  {:<10} {}: {} {:.4} -> {:.4}, {:+.1}% (noise {:.1}%, limit {:.1}%)\n",
            if c.regression { "REGRESSION" } else { "ok" },
            c.key,
            c.metric,
            c.baseline,
            c.current,
            c.slowdown * 100.0,
            c.noise * 100.0,
            c.limit * 100.0
        );
    }
    for k in &b.unmatched {
        out += &format!("  not in the baseline: {k}\n");
    }
    for k in &b.not_measured {
        let word = if b.strict { "FAIL" } else { "warning" };
        out += &format!("  {word}: in the baseline, not re-measured: {k}\n");
    }
    for w in &b.warnings {
        out += &format!("warning: {w}\n");
    }
    out += if b.regression {
        "-> REGRESSION\n"
    } else if b.fails() {
        "-> FAIL: baseline results not re-measured (--strict)\n"
    } else {
        "-> no regression\n"
    };
    out
}

impl BaselineCheck {
    /// Whether the gate fails (exit 1): a regression, or with `--strict` a baseline
    /// result this run did not re-measure.
    pub fn fails(&self) -> bool {
        self.regression || (self.strict && !self.not_measured.is_empty())
    }
}
