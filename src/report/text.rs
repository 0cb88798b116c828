//! Human-readable rendering: one row per suite × case × backend, details under rows that
//! did not pass, the cross-backend matrix when there is one (`check --matrix`), a
//! summary line. Colour only when asked for (the CLI decides from the TTY).

use super::{CaseReport, CaseVerdict, Report};
// Cell formatting lives in `style` (the matrix and the other renderers share it);
// re-exported so `text::num` and `text::Style` stay where callers look for them.
pub use super::style::{index, num, num_pair, share, table, Style};
use crate::compare::{OutputComparison, Verdict};

/// Renders the whole report.
pub fn render(report: &Report, style: Style, verbose: bool) -> String {
    let mut rows: Vec<[String; 8]> = Vec::new();
    for c in &report.cases {
        let worst = c
            .outputs
            .iter()
            .filter(|o| o.comparison.verdict == Verdict::Fail)
            .chain(c.outputs.iter())
            .next();
        rows.push([
            c.suite.clone(),
            c.case.clone(),
            c.backend.clone(),
            c.verdict.name().to_string(),
            num(max_of(c, |o| o.max_abs_err)),
            num(max_of(c, |o| o.max_rel_err)),
            share(c.tolerance_used()),
            worst.map_or("-".to_string(), |o| index(&o.comparison.worst_index)),
        ]);
    }
    let header = [
        "SUITE", "CASE", "BACKEND", "VERDICT", "MAX ABS", "MAX REL", "TOL USED", "WORST",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String; 8], verdict: Option<CaseVerdict>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let text = match (i, verdict) {
                (3, Some(v)) => style.verdict(v, w),
                _ => format!("{cell:<w$}"),
            };
            s.push_str(&text);
            s.push_str(if i + 1 < cells.len() { "  " } else { "" });
        }
        s.trim_end().to_string() + "\n"
    };
    out.push_str(&style.dim(line(&header.map(String::from), None).trim_end()));
    out.push('\n');
    for (row, case) in rows.iter().zip(&report.cases) {
        out.push_str(&line(row, Some(case.verdict)));
        out.push_str(&details(case, verbose));
    }
    if let Some(entries) = &report.matrix {
        out.push_str(&super::matrix::render(entries, style));
        out.push('\n');
    }
    out.push_str(&candidates(report));
    out.push_str(&dataset(report, verbose));
    out.push_str(&not_tested(report));
    out.push_str(&warnings(report));
    out.push_str(&summary(report, style));
    out
}

/// One line per suite checked with `check --model`: which model ran, against whose
/// goldens, both sha256s.
pub fn candidates(report: &Report) -> String {
    report
        .suites
        .iter()
        .filter_map(|s| {
            let c = s.candidate.as_ref()?;
            Some(format!(
                "candidate model {} (sha256 {}) ran against the goldens of {} (model sha256 {})\n",
                c.path, c.sha256, s.suite, s.model_sha256
            ))
        })
        .collect()
}

/// One `warning: ` line per warning of the run, as stderr would have shown them.
pub fn warnings(report: &Report) -> String {
    report
        .warnings
        .iter()
        .map(|w| format!("warning: {}\n", w.message))
        .collect()
}

/// Lines naming what the run did not test: skipped backends grouped by reason, and
/// skipped outputs per suite.
pub fn not_tested(report: &Report) -> String {
    let mut out = String::new();
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for b in &report.environment.skipped_backends {
        match reasons.iter_mut().find(|(r, _)| *r == b.reason) {
            Some((_, names)) => names.push(&b.name),
            None => reasons.push((&b.reason, vec![&b.name])),
        }
    }
    for (reason, names) in reasons {
        out.push_str(&format!("not run: {} ({reason})\n", names.join(", ")));
    }
    for s in report.skipped_outputs() {
        out.push_str(&format!(
            "not compared: output `{}` of {} in {} case(s) ({})\n",
            s.output.name, s.suite, s.cases, s.output.reason
        ));
    }
    for s in &report.sequences {
        out.push_str(&s.line());
        out.push('\n');
    }
    out
}

/// The dataset metrics (docs/gates.md) of every output that has gates or is read as
/// class scores (every measured output with `verbose`), each as a table with a column
/// per slice, then one line per gate result.
pub fn dataset(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let listed = if verbose {
        report.metrics.iter().collect()
    } else {
        super::dataset::shown(report)
    };
    for m in listed {
        out.push_str(&m.title());
        out.push('\n');
        for line in table(&m.table()).lines() {
            out.push_str("  ");
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if let Some(line) = m.confusion_line() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for g in &report.gates {
        out.push_str(&format!(
            "gate {} on {}, {}: {}\n",
            g.verdict.name().to_uppercase(),
            g.backend,
            g.suite,
            g.message
        ));
    }
    out
}

/// The closing line: counts by verdict (and of gates, when there were any) and the
/// overall verdict.
pub fn summary(report: &Report, style: Style) -> String {
    let s = &report.summary;
    let gates = s.gates.as_ref().map_or(String::new(), |g| {
        format!(
            "; {} gates: {} passed, {} failed, {} errors",
            g.total, g.passed, g.failed, g.errors
        )
    });
    format!(
        "{} cases: {} passed, {} failed, {} errors{gates} -> {}\n",
        s.cases,
        s.passed,
        s.failed,
        s.errors,
        style.verdict_text(report.verdict, &report.verdict.name().to_uppercase())
    )
}

fn max_of(c: &CaseReport, f: impl Fn(&OutputComparison) -> f64) -> Option<f64> {
    c.outputs
        .iter()
        .map(|o| f(&o.comparison))
        .reduce(super::matrix::worse)
}

/// Indented lines explaining an error and each failing output (every output when verbose).
fn details(case: &CaseReport, verbose: bool) -> String {
    let mut out = String::new();
    if let Some(e) = &case.error {
        out.push_str(&format!("    error: {e}\n"));
    }
    if let Some(g) = case.generation.as_ref().filter(|g| verbose || g.notable()) {
        out.push_str(&format!("    {}\n", g.line()));
        out.push_str(&format!("    {}\n", g.judgement.curve_line()));
        if verbose {
            let ids = super::generation::token_ids;
            out.push_str(&format!("    prompt:   {}\n", ids(&g.prompt)));
            out.push_str(&format!("    expected: {}\n", ids(&g.expected_tokens)));
            out.push_str(&format!("    actual:   {}\n", ids(&g.actual_tokens)));
        }
    }
    for o in case
        .outputs
        .iter()
        .filter(|o| verbose || o.comparison.verdict == Verdict::Fail)
    {
        let c = &o.comparison;
        if let Some(p) = &c.problem {
            out.push_str(&format!("    {}: {p}\n", o.name));
        }
        if c.worst_index.is_some() {
            out.push_str(&format!(
                "    {}: {}/{} mismatched ({:.3}%), worst {}: expected {}, actual {} ({})\n",
                o.name,
                c.mismatched,
                c.total,
                100.0 * c.mismatched as f64 / (c.total.max(1) as f64),
                index(&c.worst_index),
                num_pair(c.expected, c.actual).0,
                num_pair(c.expected, c.actual).1,
                c.criterion(|v| num(Some(v))),
            ));
        }
    }
    out
}
