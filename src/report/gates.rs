//! Dataset gates: `OUTPUT:METRIC>=VALUE` (or `<=`), judged on a suite's dataset
//! metrics instead of element-wise tolerances (docs/gates.md). A gate on a suite with
//! slices is also judged on every slice, so a release cannot pass on average while
//! failing one group; `OUTPUT:METRIC:disparity<=VALUE` bounds the largest difference of
//! the metric between slices. Gates come from `--gate` and from `[gates]` in
//! `parity.toml`; the results are part of the report, and `parity merge` re-judges the
//! gates of its inputs on the merged metrics.

use super::metrics::{Measured, MetricName, MetricSet, OutputMetrics};
use super::{style, CaseReport, CaseVerdict};
use serde::{Deserialize, Serialize};

/// The comparison of a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// The value must be at least the threshold.
    AtLeast,
    /// The value must be at most the threshold.
    AtMost,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::AtLeast => ">=",
            Op::AtMost => "<=",
        }
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::AtLeast => value >= threshold,
            Op::AtMost => value <= threshold,
        }
    }
}

/// One gate as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub output: String,
    pub metric: MetricName,
    /// The gate bounds the spread of the metric between slices, not the metric.
    pub disparity: bool,
    pub op: Op,
    pub threshold: f64,
}

impl Gate {
    /// Parses `OUTPUT:METRIC>=VALUE`, `OUTPUT:METRIC<=VALUE` or
    /// `OUTPUT:METRIC:disparity<=VALUE`; the error says what is wrong, for a usage line.
    pub fn parse(text: &str) -> Result<Gate, String> {
        let (output, rest) = text.split_once(':').ok_or_else(|| {
            format!("gate `{text}`: expected OUTPUT:METRIC>=VALUE or OUTPUT:METRIC<=VALUE")
        })?;
        let mut gate = Gate::parse_metric(rest).map_err(|e| format!("gate `{text}`: {e}"))?;
        if output.is_empty() {
            return Err(format!("gate `{text}`: no output name before `:`"));
        }
        gate.output = output.to_string();
        Ok(gate)
    }

    /// Parses what follows the output: `METRIC>=VALUE`, `METRIC:disparity<=VALUE`
    /// (the form of `[gates]` lists in `parity.toml`, keyed by output).
    pub fn parse_metric(text: &str) -> Result<Gate, String> {
        let (at, op) = match (text.find(">="), text.find("<=")) {
            (Some(i), None) => (i, Op::AtLeast),
            (None, Some(i)) => (i, Op::AtMost),
            _ => return Err("expected exactly one `>=` or `<=`".to_string()),
        };
        let (left, value) = (text[..at].trim(), text[at + 2..].trim());
        let (name, disparity) = match left.split_once(':') {
            Some((name, "disparity")) => (name.trim(), true),
            Some((_, other)) => {
                return Err(format!(
                    "`{other}` after the metric: only `disparity` is known"
                ))
            }
            None => (left, false),
        };
        let metric = MetricName::parse(name).ok_or_else(|| {
            let known: Vec<&str> = MetricName::ALL.iter().map(|m| m.name()).collect();
            format!("unknown metric `{name}` (known: {})", known.join(", "))
        })?;
        let threshold = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{value}` is not a finite number"))?;
        Ok(Gate {
            output: String::new(),
            metric,
            disparity,
            op,
            threshold,
        })
    }

    /// The canonical text, as `--gate` takes it.
    pub fn text(&self) -> String {
        format!(
            "{}:{}{}{}{}",
            self.output,
            self.metric.name(),
            if self.disparity { ":disparity" } else { "" },
            self.op.symbol(),
            self.threshold
        )
    }
}

/// What one gate was judged on: the whole suite, one slice, or the spread between slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Dataset,
    Slice,
    Disparity,
}

/// One gate judged on one suite and backend (and slice).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GateResult {
    pub suite: String,
    pub backend: String,
    /// `golden` or the reference backend.
    pub reference: String,
    /// The gate, as `--gate` takes it (`parity merge` re-judges it from this).
    pub gate: String,
    pub output: String,
    pub metric: String,
    pub scope: Scope,
    /// The slice judged (scope `slice`), or the slice with the worst value
    /// (`disparity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
    /// The measured value (`null` when not measured, or infinite).
    pub value: Option<f64>,
    /// Sample size behind `value` (for a disparity, the smallest slice's).
    pub n: u64,
    /// 95% Wilson interval of a rate (for a disparity, the worst slice's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
    pub verdict: CaseVerdict,
    /// One line: the gate, the value and interval, and why it failed.
    pub message: String,
}

/// The gates of one suite: each applies to every backend its cases ran on.
#[derive(Debug, Clone)]
pub struct SuiteGates<'a> {
    pub suite: &'a str,
    pub gates: &'a [Gate],
}

/// Judges every gate of every suite on each backend it ran on (in case order), from
/// the metrics of `cases`. A gate whose metric could not be measured is an error, never
/// a pass.
pub fn judge(
    cases: &[CaseReport],
    metrics: &[OutputMetrics],
    suites: &[SuiteGates],
) -> Vec<GateResult> {
    let mut results = Vec::new();
    for s in suites {
        let mut runs: Vec<(&str, &str)> = Vec::new();
        for c in cases.iter().filter(|c| c.suite == s.suite) {
            if !runs.contains(&(c.backend.as_str(), c.reference.as_str())) {
                runs.push((&c.backend, &c.reference));
            }
        }
        for (backend, reference) in runs {
            for gate in s.gates {
                let m = metrics.iter().find(|m| {
                    m.suite == s.suite
                        && m.backend == backend
                        && m.reference == reference
                        && m.output == gate.output
                });
                let base = GateResult {
                    suite: s.suite.to_string(),
                    backend: backend.to_string(),
                    reference: reference.to_string(),
                    gate: gate.text(),
                    output: gate.output.clone(),
                    metric: gate.metric.name().to_string(),
                    scope: Scope::Dataset,
                    slice: None,
                    value: None,
                    n: 0,
                    interval: None,
                    verdict: CaseVerdict::Error,
                    message: String::new(),
                };
                results.extend(judge_one(gate, m, base));
            }
        }
    }
    results
}

/// One gate on one suite × backend: its dataset result and one per slice, or its
/// disparity result.
fn judge_one(gate: &Gate, m: Option<&OutputMetrics>, base: GateResult) -> Vec<GateResult> {
    let Some(m) = m else {
        let message = format!(
            "{}: not measured: no case of this suite on {} gave output `{}` statistics",
            base.gate, base.backend, gate.output
        );
        return vec![GateResult { message, ..base }];
    };
    if gate.disparity {
        return vec![disparity(gate, m, base)];
    }
    let mut out = vec![against(gate, &m.overall, None, base.clone())];
    out.extend(m.slices.iter().map(|s| {
        against(
            gate,
            &s.metrics,
            Some(&s.slice),
            GateResult {
                scope: Scope::Slice,
                slice: Some(s.slice.clone()),
                ..base.clone()
            },
        )
    }));
    out
}

/// A gate against one metric set (the dataset's or a slice's).
fn against(gate: &Gate, set: &MetricSet, slice: Option<&str>, base: GateResult) -> GateResult {
    let on = slice.map_or(String::new(), |s| format!(" on slice `{s}`"));
    let Some(v) = set.get(gate.metric) else {
        let message = format!(
            "{}{on}: not measured: {}",
            base.gate,
            why_missing(gate.metric)
        );
        return GateResult { message, ..base };
    };
    let verdict = if v.value.is_nan() {
        CaseVerdict::Error
    } else if gate.op.holds(v.value, gate.threshold) {
        CaseVerdict::Pass
    } else {
        CaseVerdict::Fail
    };
    let message = format!(
        "{}{on}: {} {} (n = {}{})",
        base.gate,
        verdict.name(),
        show(v.value, gate.threshold),
        v.n,
        v.interval.map_or(String::new(), |[lo, hi]| format!(
            ", 95% interval [{}, {}]",
            style::num(Some(lo)),
            style::num(Some(hi))
        )),
    );
    GateResult {
        value: Some(v.value).filter(|x| x.is_finite()),
        n: v.n,
        interval: v.interval,
        verdict,
        message,
        ..base
    }
}

/// The largest difference of the metric between slices, naming the worst slice.
fn disparity(gate: &Gate, m: &OutputMetrics, base: GateResult) -> GateResult {
    let base = GateResult {
        scope: Scope::Disparity,
        ..base
    };
    let mut measured: Vec<(&str, &Measured)> = m
        .slices
        .iter()
        .filter_map(|s| s.metrics.get(gate.metric).map(|v| (s.slice.as_str(), v)))
        .filter(|(_, v)| v.value.is_finite())
        .collect();
    if measured.len() < 2 {
        let message = format!(
            "{}: not measured: a disparity needs the metric on at least two slices ({} measured; slices come from labels.csv or [slices], docs/gates.md)",
            base.gate,
            measured.len()
        );
        return GateResult { message, ..base };
    }
    // Stable: among equal values the first slice is the low end, the last the high end.
    measured.sort_by(|a, b| a.1.value.total_cmp(&b.1.value));
    let (lo, hi) = (measured[0], measured[measured.len() - 1]);
    let spread = hi.1.value - lo.1.value;
    // The worse slice: the low one for a quality metric, the high one for an error.
    let worst = if lower_is_better(gate.metric) { hi } else { lo };
    let smallest = measured.iter().map(|(_, v)| v.n).min().unwrap_or(0);
    let verdict = if gate.op.holds(spread, gate.threshold) {
        CaseVerdict::Pass
    } else {
        CaseVerdict::Fail
    };
    let message = format!(
        "{}: {} {} between slices (`{}` {} vs `{}` {}; smallest slice n = {smallest})",
        base.gate,
        verdict.name(),
        show(spread, gate.threshold),
        lo.0,
        style::num(Some(lo.1.value)),
        hi.0,
        style::num(Some(hi.1.value)),
    );
    GateResult {
        slice: Some(worst.0.to_string()),
        value: Some(spread),
        n: smallest,
        interval: worst.1.interval,
        verdict,
        message,
        ..base
    }
}

/// Metrics where a smaller value is better (errors, losses).
fn lower_is_better(m: MetricName) -> bool {
    matches!(
        m,
        MetricName::LabelAccuracyDrop
            | MetricName::MeanAbsErr
            | MetricName::MaxAbsErr
            | MetricName::OutOfTolerance
    )
}

/// Why a metric has no value.
fn why_missing(m: MetricName) -> &'static str {
    if m.needs_labels() {
        "the data sets carry no labels for this output (labels.csv or [labels], docs/gates.md)"
    } else if m.needs_classes() {
        "the output is not read as class scores"
    } else {
        "no element was compared"
    }
}

/// A measured value for a message, with enough digits never to read as the threshold
/// it is judged against when it differs.
fn show(v: f64, threshold: f64) -> String {
    style::num_pair(Some(threshold), Some(v)).1
}

/// Gate counts of a report, by verdict.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct GateSummary {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
}

impl GateSummary {
    /// Counts the results.
    pub fn of(results: &[GateResult]) -> GateSummary {
        let count = |v| results.iter().filter(|r| r.verdict == v).count();
        GateSummary {
            total: results.len(),
            passed: count(CaseVerdict::Pass),
            failed: count(CaseVerdict::Fail),
            errors: count(CaseVerdict::Error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_parse_and_print_back() {
        let g = Gate::parse("logits:top1_agreement>=0.98").unwrap();
        assert_eq!(
            (g.output.as_str(), g.metric, g.disparity, g.op, g.threshold),
            (
                "logits",
                MetricName::Top1Agreement,
                false,
                Op::AtLeast,
                0.98
            )
        );
        assert_eq!(g.text(), "logits:top1_agreement>=0.98");
        let d = Gate::parse("logits:top1_agreement:disparity<=0.02").unwrap();
        assert!(d.disparity && d.op == Op::AtMost);
        assert_eq!(Gate::parse(&d.text()).unwrap(), d);
        let s = Gate::parse("y:sqnr_db >= 20").unwrap();
        assert_eq!((s.metric, s.threshold), (MetricName::SqnrDb, 20.0));
    }

    #[test]
    fn bad_gates_say_what_is_wrong() {
        for (text, says) in [
            ("logits", "expected OUTPUT:METRIC"),
            (":top1_agreement>=1", "no output name"),
            ("y:accuracy>=0.9", "unknown metric `accuracy`"),
            ("y:sqnr_db>=x", "`x` is not a finite number"),
            ("y:sqnr_db=20", "exactly one `>=` or `<=`"),
            ("y:sqnr_db:spread<=1", "only `disparity`"),
            ("y:sqnr_db>=inf", "not a finite number"),
        ] {
            let e = Gate::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
