//! The cross-backend matrix of `parity check --matrix`: for each suite × output, every
//! backend compared with every other, as N×N tables of the largest error over the
//! suite's cases. Rows are the reference backend, columns the candidate (the relative
//! error divides by the row's values). This module holds the report model and its text
//! rendering; `suite::matrix` fills it from the runs of `check`.

use super::text::{num, Style};
use serde::Serialize;

/// One suite × output: the backends in order and two N×N tables indexed
/// `[reference][candidate]`. A cell is `None` (JSON `null`) when no case produced that
/// output on both backends; an infinite error (shape/dtype mismatch, a NaN on one side
/// only) is also written as `null` in JSON and as `inf` in text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatrixEntry {
    /// The suite directory, as in `cases[].suite`.
    pub suite: String,
    /// The output name.
    pub output: String,
    /// Backend names: the row and column labels, in the same order.
    pub backends: Vec<String>,
    /// Largest `max_rel_err` over cases, reference = row, candidate = column.
    pub max_rel_err: Vec<Vec<Option<f64>>>,
    /// Largest `max_abs_err` over cases (symmetric).
    pub max_abs_err: Vec<Vec<Option<f64>>>,
}

/// Renders every entry as a table of max relative error, one after another, each
/// preceded by a blank line and a header naming the suite and output.
pub fn render(entries: &[MatrixEntry], style: Style) -> String {
    let mut out = String::new();
    for e in entries {
        out.push('\n');
        out.push_str(&format!(
            "max rel error, {} {} (row: reference, column: candidate)\n",
            e.suite, e.output
        ));
        out.push_str(&table(e, style));
    }
    out
}

/// One N×N table: a header row of candidate names, then one row per reference backend.
fn table(e: &MatrixEntry, style: Style) -> String {
    let corner = "REFERENCE \\ CANDIDATE";
    let cells: Vec<Vec<String>> = e
        .max_rel_err
        .iter()
        .map(|row| row.iter().map(|v| num(*v)).collect())
        .collect();
    let label_width = e
        .backends
        .iter()
        .map(|b| b.chars().count())
        .chain([corner.len()])
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = e
        .backends
        .iter()
        .enumerate()
        .map(|(j, b)| {
            cells
                .iter()
                .filter_map(|row| row.get(j))
                .map(|c| c.chars().count())
                .chain([b.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |label: &str, row: &[String]| {
        let mut s = format!("{label:<label_width$}");
        for (cell, w) in row.iter().zip(&widths) {
            s.push_str(&format!("  {cell:<w$}"));
        }
        s.trim_end().to_string()
    };
    let mut out = style.dim(&line(corner, &e.backends));
    out.push('\n');
    for (b, row) in e.backends.iter().zip(&cells) {
        out.push_str(&line(b, row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_and_numbers() {
        let e = MatrixEntry {
            suite: "models/mlp".into(),
            output: "logits".into(),
            backends: vec!["ort-cpu".into(), "tract-cpu".into()],
            max_rel_err: vec![vec![Some(0.0), Some(1.5e-7)], vec![None, Some(0.0)]],
            max_abs_err: vec![vec![Some(0.0), Some(2e-7)], vec![Some(2e-7), Some(0.0)]],
        };
        let text = render(&[e], Style { color: false });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert_eq!(
            lines[1],
            "max rel error, models/mlp logits (row: reference, column: candidate)"
        );
        assert_eq!(lines[2], "REFERENCE \\ CANDIDATE  ort-cpu  tract-cpu");
        assert_eq!(lines[3], "ort-cpu                0        1.50e-7");
        assert_eq!(lines[4], "tract-cpu              -        0");
    }
}
