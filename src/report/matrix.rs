//! The cross-backend matrix of `parity check --matrix`: for each suite × output, every
//! backend compared with every other, as N×N tables of the largest error over the
//! suite's cases. Rows are the reference backend, columns the candidate (the relative
//! error divides by the row's values). This module holds the report model and its text
//! rendering; `suite::matrix` fills it from the runs of `check`.

use super::style::{num, share, Style};
use serde::{Deserialize, Serialize};

/// One suite × output: the backends in order and two N×N tables indexed
/// `[reference][candidate]`. A cell is `None` (JSON `null`) when no case produced that
/// output on both backends; an infinite error (shape/dtype mismatch, a NaN on one side
/// only) is also written as `null` in JSON and as `inf` in text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// `true` where some case produced the output on both backends: tells a `null`
    /// that stands for an infinite error from one that means "never compared" when a
    /// report is read back (`parity merge`). Empty in reports written before it existed.
    #[serde(default)]
    pub compared: Vec<Vec<bool>>,
    /// Largest share of tolerance used over cases (`tolerance_used` of an allclose
    /// comparison under the suite's tolerance for the output), reference = row,
    /// candidate = column: how close two backends are to disagreeing. Empty in reports
    /// written before it existed.
    #[serde(default)]
    pub tolerance_used: Vec<Vec<Option<f64>>>,
}

impl MatrixEntry {
    /// After reading JSON back: every table made N×N (a report from before
    /// `tolerance_used`, or a damaged one, may hold fewer or ragged rows: missing cells
    /// are unknown, extra ones dropped), and a compared cell read as `null` restored to
    /// the infinite error it held.
    pub fn restore_infinities(&mut self) {
        let n = self.backends.len();
        for table in [
            &mut self.max_rel_err,
            &mut self.max_abs_err,
            &mut self.tolerance_used,
        ] {
            table.resize(n, Vec::new());
            table.iter_mut().for_each(|row| row.resize(n, None));
        }
        self.compared.resize(n, Vec::new());
        self.compared
            .iter_mut()
            .for_each(|row| row.resize(n, false));
        for table in [
            &mut self.max_rel_err,
            &mut self.max_abs_err,
            &mut self.tolerance_used,
        ] {
            for (row, flags) in table.iter_mut().zip(&self.compared) {
                for (cell, &compared) in row.iter_mut().zip(flags) {
                    if compared && cell.is_none() {
                        *cell = Some(f64::INFINITY);
                    }
                }
            }
        }
    }

    /// Folds `other` (the same suite and output, from another shard of the run) into
    /// this entry: backends united in order of appearance, each cell the worse of the
    /// two (NaN wins), `compared` where either compared.
    pub fn absorb(&mut self, other: &MatrixEntry) {
        for b in &other.backends {
            if !self.backends.contains(b) {
                self.backends.push(b.clone());
                for table in [
                    &mut self.max_rel_err,
                    &mut self.max_abs_err,
                    &mut self.tolerance_used,
                ] {
                    table.iter_mut().for_each(|row| row.push(None));
                    table.push(vec![None; self.backends.len()]);
                }
                self.compared.iter_mut().for_each(|row| row.push(false));
                self.compared.push(vec![false; self.backends.len()]);
            }
        }
        let n = self.backends.len();
        self.compared.resize(n, vec![false; n]);
        let at: Vec<usize> = other
            .backends
            .iter()
            .filter_map(|b| self.backends.iter().position(|x| x == b))
            .collect();
        for (i, &si) in at.iter().enumerate() {
            for (j, &sj) in at.iter().enumerate() {
                let pick = |mine: Option<f64>, theirs: Option<f64>| match (mine, theirs) {
                    (Some(a), Some(b)) => Some(worse(a, b)),
                    (a, b) => a.or(b),
                };
                let cell =
                    |t: &Vec<Vec<Option<f64>>>| t.get(i).and_then(|r| r.get(j)).copied().flatten();
                self.max_rel_err[si][sj] = pick(self.max_rel_err[si][sj], cell(&other.max_rel_err));
                self.max_abs_err[si][sj] = pick(self.max_abs_err[si][sj], cell(&other.max_abs_err));
                self.tolerance_used[si][sj] =
                    pick(self.tolerance_used[si][sj], cell(&other.tolerance_used));
                let theirs = other
                    .compared
                    .get(i)
                    .and_then(|r| r.get(j))
                    .copied()
                    .unwrap_or(false);
                self.compared[si][sj] |= theirs;
            }
        }
    }
}

impl MatrixEntry {
    /// A cell as every renderer shows it: the max rel error, and off the diagonal the
    /// share of tolerance used when known (`1.50e-7 (3%)`).
    pub fn cell(&self, reference: usize, candidate: usize) -> String {
        let at = |table: &[Vec<Option<f64>>]| {
            table
                .get(reference)
                .and_then(|row| row.get(candidate))
                .copied()
                .flatten()
        };
        let rel = num(at(&self.max_rel_err));
        let used = at(&self.tolerance_used);
        match used {
            Some(v) if reference != candidate => format!("{rel} ({})", share(Some(v))),
            _ => rel,
        }
    }
}

/// The larger error; NaN wins, so a NaN is never hidden by another case or shard.
pub fn worse(a: f64, b: f64) -> f64 {
    if a.is_nan() || (!b.is_nan() && a >= b) {
        a
    } else {
        b
    }
}

/// Renders every entry as a table of max relative error, one after another, each
/// preceded by a blank line and a header naming the suite and output.
pub fn render(entries: &[MatrixEntry], style: Style) -> String {
    let mut out = String::new();
    for e in entries {
        out.push('\n');
        out.push_str(&format!(
            "max rel error (share of tolerance used), {} {} (row: reference, column: candidate)\n",
            e.suite, e.output
        ));
        out.push_str(&table(e, style));
    }
    out
}

/// One N×N table: a header row of candidate names, then one row per reference backend.
fn table(e: &MatrixEntry, style: Style) -> String {
    let corner = "REFERENCE \\ CANDIDATE";
    let cells: Vec<Vec<String>> = (0..e.backends.len())
        .map(|i| (0..e.backends.len()).map(|j| e.cell(i, j)).collect())
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

/// A two-backend entry for the renderers' tests: one cell never compared.
#[cfg(test)]
pub(crate) fn example() -> MatrixEntry {
    MatrixEntry {
        suite: "models/mlp".into(),
        output: "logits".into(),
        backends: vec!["ort-cpu".into(), "tract-cpu".into()],
        max_rel_err: vec![vec![Some(0.0), Some(1.5e-7)], vec![None, Some(0.0)]],
        max_abs_err: vec![vec![Some(0.0), Some(2e-7)], vec![Some(2e-7), Some(0.0)]],
        compared: vec![vec![true, true], vec![false, true]],
        tolerance_used: vec![vec![Some(0.0), Some(0.03)], vec![None, Some(0.0)]],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_and_numbers() {
        let e = example();
        let text = render(&[e], Style { color: false });
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        assert_eq!(
            lines[1],
            "max rel error (share of tolerance used), models/mlp logits (row: reference, column: candidate)"
        );
        assert_eq!(lines[2], "REFERENCE \\ CANDIDATE  ort-cpu  tract-cpu");
        assert_eq!(lines[3], "ort-cpu                0        1.50e-7 (3%)");
        assert_eq!(lines[4], "tract-cpu              -        0");
    }

    fn entry(
        backends: &[&str],
        rel: Vec<Vec<Option<f64>>>,
        compared: Vec<Vec<bool>>,
    ) -> MatrixEntry {
        MatrixEntry {
            suite: "s".into(),
            output: "y".into(),
            backends: backends.iter().map(|b| b.to_string()).collect(),
            max_abs_err: rel.clone(),
            tolerance_used: rel.clone(),
            max_rel_err: rel,
            compared,
        }
    }

    /// Found by the fuzzer (`report_json`, docs/reliability.md): a report whose matrix
    /// tables have fewer rows than backends made rendering index past them.
    #[test]
    fn ragged_tables_read_back_square() {
        let json = r#"{"suite": "s", "output": "y", "backends": ["a", "b"],
            "max_rel_err": [[0.0]], "max_abs_err": [], "compared": [[true, true, true]]}"#;
        let mut e: MatrixEntry = serde_json::from_str(json).unwrap();
        e.restore_infinities();
        for table in [&e.max_rel_err, &e.max_abs_err, &e.tolerance_used] {
            assert_eq!(table.len(), 2);
            assert!(table.iter().all(|row| row.len() == 2));
        }
        assert_eq!(e.compared, [vec![true, true], vec![false, false]]);
        assert_eq!(e.max_rel_err[0], [Some(0.0), Some(f64::INFINITY)]);
        let text = render(std::slice::from_ref(&e), Style { color: false });
        assert!(text.ends_with("b                      -  -\n"), "{text}");
        let copy = e.clone();
        e.absorb(&copy);
        assert_eq!(e.backends.len(), 2);
    }

    #[test]
    fn infinities_come_back_from_json_and_never_compared_cells_stay_empty() {
        let e = entry(
            &["a", "b"],
            vec![vec![Some(0.0), Some(f64::INFINITY)], vec![None, Some(0.0)]],
            vec![vec![true, true], vec![false, true]],
        );
        let json = serde_json::to_string(&e).unwrap();
        assert!(json.contains("[0.0,null]"), "{json}");
        let mut back: MatrixEntry = serde_json::from_str(&json).unwrap();
        back.restore_infinities();
        assert_eq!(back, e);
    }

    #[test]
    fn shards_fold_cell_by_cell_with_backends_united() {
        let mut one = entry(
            &["a", "b"],
            vec![vec![Some(0.0), Some(1e-6)], vec![None, Some(0.0)]],
            vec![vec![true, true], vec![false, true]],
        );
        let two = entry(
            &["b", "c"],
            vec![vec![Some(0.0), Some(f64::NAN)], vec![Some(3e-6), Some(0.0)]],
            vec![vec![true, true], vec![true, true]],
        );
        one.absorb(&two);
        assert_eq!(one.backends, ["a", "b", "c"]);
        let r = &one.max_rel_err;
        assert_eq!(r[0], vec![Some(0.0), Some(1e-6), None]);
        assert_eq!((r[1][0], r[1][1]), (None, Some(0.0)));
        assert!(r[1][2].unwrap().is_nan(), "a NaN is never hidden");
        assert_eq!(r[2], vec![None, Some(3e-6), Some(0.0)]);
        assert_eq!(
            one.compared,
            vec![
                vec![true, true, false],
                vec![false, true, true],
                vec![false, true, true]
            ]
        );
        // Folding in a larger error keeps the larger one.
        let three = entry(
            &["a", "b"],
            vec![vec![Some(0.0), Some(5e-6)], vec![Some(1e-7), Some(0.0)]],
            vec![vec![true, true], vec![true, true]],
        );
        one.absorb(&three);
        assert_eq!(one.max_rel_err[0][1], Some(5e-6));
        assert_eq!(one.max_rel_err[1][0], Some(1e-7));
    }
}
