//! What every renderer shows of a report's dataset metrics and gates (docs/gates.md):
//! which outputs get a metric table, and a gate result's place and figures in words.
//! Text, Markdown and HTML lay them out in their own modules; JUnit has one testcase
//! per gate result.

use super::gates::{GateResult, Scope};
use super::metrics::OutputMetrics;
use super::style::num;
use super::Report;

/// The outputs whose metric tables are shown without `-v`: those with gates and those
/// read as class scores.
pub fn shown(report: &Report) -> Vec<&OutputMetrics> {
    report
        .metrics
        .iter()
        .filter(|m| {
            m.overall.k.is_some()
                || report
                    .gates
                    .iter()
                    .any(|g| g.suite == m.suite && g.backend == m.backend && g.output == m.output)
        })
        .collect()
}

/// Where a gate result was judged, in words.
pub fn scope(g: &GateResult) -> String {
    match (g.scope, &g.slice) {
        (Scope::Dataset, _) => "dataset".to_string(),
        (Scope::Slice, Some(s)) => format!("slice {s}"),
        (Scope::Disparity, Some(s)) => format!("disparity (worst slice {s})"),
        (_, None) => format!("{:?}", g.scope).to_lowercase(),
    }
}

/// A gate result's value and interval columns.
pub fn value_cells(g: &GateResult) -> [String; 3] {
    [
        num(g.value),
        g.n.to_string(),
        g.interval.map_or("-".to_string(), |[lo, hi]| {
            format!("[{}, {}]", num(Some(lo)), num(Some(hi)))
        }),
    ]
}
