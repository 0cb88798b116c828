//! Human-readable rendering: one row per suite × case × backend, details under rows that
//! did not pass, the cross-backend matrix when there is one (`check --matrix`), a
//! summary line. Colour only when asked for (the CLI decides from the TTY).

use super::{CaseReport, CaseVerdict, Report};
use crate::compare::{OutputComparison, Verdict};

/// ANSI styling that is a no-op when colour is off.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// A verdict word, green/red/yellow, padded to `width`.
    pub fn verdict(self, v: CaseVerdict, width: usize) -> String {
        self.verdict_text(v, &format!("{:<width$}", v.name()))
    }

    /// Any text coloured like verdict `v`.
    pub fn verdict_text(self, v: CaseVerdict, padded: &str) -> String {
        match v {
            CaseVerdict::Pass => self.paint("32", padded),
            CaseVerdict::Fail => self.paint("31;1", padded),
            CaseVerdict::Error => self.paint("33;1", padded),
        }
    }

    /// Dimmed secondary text.
    pub fn dim(self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// A number in reports: compact scientific notation, `-` when absent.
pub fn num(v: Option<f64>) -> String {
    match v {
        None => "-".to_string(),
        Some(0.0) => "0".to_string(),
        Some(v) if v.is_nan() => "NaN".to_string(),
        Some(v) if v.is_infinite() => if v > 0.0 { "inf" } else { "-inf" }.to_string(),
        Some(v) if (1e-3..1e4).contains(&v.abs()) => format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string(),
        Some(v) => format!("{v:.2e}"),
    }
}

/// A multi-dimensional index as `[0, 3]`.
pub fn index(ix: &Option<Vec<usize>>) -> String {
    match ix {
        None => "-".to_string(),
        Some(ix) => format!("{ix:?}"),
    }
}

/// Renders the whole report.
pub fn render(report: &Report, style: Style, verbose: bool) -> String {
    let mut rows: Vec<[String; 7]> = Vec::new();
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
            worst.map_or("-".to_string(), |o| index(&o.comparison.worst_index)),
        ]);
    }
    let header = [
        "SUITE", "CASE", "BACKEND", "VERDICT", "MAX ABS", "MAX REL", "WORST",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String; 7], verdict: Option<CaseVerdict>| {
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
    out.push_str(&summary(report, style));
    out
}

/// The closing line: counts by verdict and the overall verdict.
pub fn summary(report: &Report, style: Style) -> String {
    let s = &report.summary;
    format!(
        "{} cases: {} passed, {} failed, {} errors -> {}\n",
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
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| if v.is_nan() || v > a { v } else { a }))
        })
}

/// Indented lines explaining an error and each failing output (every output when verbose).
fn details(case: &CaseReport, verbose: bool) -> String {
    let mut out = String::new();
    if let Some(e) = &case.error {
        out.push_str(&format!("    error: {e}\n"));
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
                num(c.expected),
                num(c.actual),
                c.criterion(|v| num(Some(v))),
            ));
        }
    }
    out
}
