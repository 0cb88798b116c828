//! The cross-backend matrix of `parity check --matrix`: every backend compared with
//! every other on the same inputs, not only with the golden outputs.
//!
//! A [`SuiteMatrix`] collects each backend's actual outputs per case from the runner's
//! observer ([`super::runner::run_observed`]), so no backend runs twice; [`SuiteMatrix::finish`]
//! compares every ordered pair with [`compare::compare`] (reference = row backend,
//! candidate = column backend) under the run's tolerance for the output (allclose) and
//! keeps, per output, the largest `max_rel_err`, `max_abs_err` and `tolerance_used`
//! over the suite's cases. It holds one suite's outputs of every backend
//! until the suite is done.

use super::execution::{tolerance_set, RunOptions};
use super::manifest::{OutputRule, ToleranceOverride};
use super::{NamedTensors, Suite};
use crate::compare;
use crate::report::{matrix, MatrixEntry};
use crate::tensor::Tensor;

/// One suite's outputs on every backend, waiting to be compared pairwise.
#[derive(Debug)]
pub struct SuiteMatrix {
    /// The suite directory as written in reports.
    suite: String,
    /// The graph outputs that are compared (those `parity.toml` does not skip), in
    /// graph order.
    outputs: Vec<String>,
    /// Per output, the atol/rtol the run sets (flags first, then `parity.toml`'s output
    /// entry: a pair of backends gets no backend's own tolerance against the goldens);
    /// the dtype's default fills what neither sets.
    tolerances: Vec<ToleranceOverride>,
    /// Row/column labels, in the order of the report's backends.
    backends: Vec<String>,
    /// `runs[case][backend][output]`: the tensor a backend produced for an output on a
    /// case; `None` when it did not run the case or did not produce that output.
    runs: Vec<Vec<Vec<Option<Tensor>>>>,
}

impl SuiteMatrix {
    /// An empty matrix over `suite`'s compared outputs and the given backends. A
    /// generation suite compares its logits only: each backend's per-step rows of its
    /// own greedy generation, stacked `[steps, vocab]` (the KV cache is internal state).
    pub fn new(suite: &Suite, backends: &[String], options: &RunOptions) -> SuiteMatrix {
        let outputs: Vec<String> = match &suite.manifest.generate {
            Some(g) => vec![g.names().logits],
            None => suite
                .info
                .outputs
                .iter()
                .filter(|o| !matches!(suite.manifest.rule_for(&o.name), OutputRule::Skip))
                .map(|o| o.name.clone())
                .collect(),
        };
        let tolerances = outputs
            .iter()
            .map(|o| tolerance_set(suite, o, None, options))
            .collect();
        SuiteMatrix {
            tolerances,
            ..SuiteMatrix::with_names(
                suite.dir.display().to_string(),
                outputs,
                backends.to_vec(),
                suite.cases.len(),
            )
        }
    }

    /// An empty matrix over named outputs and backends for `cases` cases.
    fn with_names(
        suite: String,
        outputs: Vec<String>,
        backends: Vec<String>,
        cases: usize,
    ) -> SuiteMatrix {
        let empty = vec![vec![None; outputs.len()]; backends.len()];
        SuiteMatrix {
            suite,
            tolerances: vec![ToleranceOverride::default(); outputs.len()],
            runs: vec![empty; cases],
            outputs,
            backends,
        }
    }

    /// Keeps `backend`'s outputs on case number `case`. Outputs the matrix does not
    /// compare, an unknown backend and a case index out of range are ignored.
    pub fn add(&mut self, case: usize, backend: &str, outputs: NamedTensors) {
        let Some(b) = self.backends.iter().position(|n| n == backend) else {
            return;
        };
        let Some(slots) = self.runs.get_mut(case).and_then(|c| c.get_mut(b)) else {
            return;
        };
        for (name, tensor) in outputs {
            if let Some(k) = self.outputs.iter().position(|o| *o == name) {
                slots[k] = Some(tensor);
            }
        }
    }

    /// Compares every ordered pair of backends on every case and output; one entry per
    /// compared output, in graph order. The diagonal is 0 where the backend produced
    /// the output at least once; a cell no case filled is `None`.
    pub fn finish(self) -> Vec<MatrixEntry> {
        let n = self.backends.len();
        self.outputs
            .iter()
            .enumerate()
            .map(|(k, output)| {
                let mut rel = vec![vec![None; n]; n];
                let mut abs = vec![vec![None; n]; n];
                let mut compared = vec![vec![false; n]; n];
                let mut used = vec![vec![None; n]; n];
                let set = self.tolerances.get(k).copied().unwrap_or_default();
                for case in &self.runs {
                    for i in 0..n {
                        let Some(reference) = case.get(i).and_then(|b| b[k].as_ref()) else {
                            continue;
                        };
                        for j in 0..n {
                            let Some(candidate) = case.get(j).and_then(|b| b[k].as_ref()) else {
                                continue;
                            };
                            let (r, a, u) = if i == j {
                                (0.0, 0.0, 0.0)
                            } else {
                                let tol = set.resolve(reference.dtype());
                                let c = compare::compare(reference, candidate, tol);
                                let u = c.tolerance_used.unwrap_or(f64::INFINITY);
                                (c.max_rel_err, c.max_abs_err, u)
                            };
                            rel[i][j] = Some(worse(rel[i][j], r));
                            abs[i][j] = Some(worse(abs[i][j], a));
                            used[i][j] = Some(worse(used[i][j], u));
                            compared[i][j] = true;
                        }
                    }
                }
                MatrixEntry {
                    suite: self.suite.clone(),
                    output: output.clone(),
                    backends: self.backends.clone(),
                    max_rel_err: rel,
                    max_abs_err: abs,
                    compared,
                    tolerance_used: used,
                }
            })
            .collect()
    }
}

/// The larger error, `v` against what the cell holds so far.
fn worse(acc: Option<f64>, v: f64) -> f64 {
    acc.map_or(v, |a| matrix::worse(a, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(values: &[f32]) -> Tensor {
        Tensor::from_vec(vec![values.len()], values.to_vec()).unwrap()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pairs_take_the_worst_case_and_leave_missing_cells_empty() {
        let mut m =
            SuiteMatrix::with_names("s".into(), names(&["y", "z"]), names(&["a", "b", "c"]), 2);
        m.add(
            0,
            "a",
            vec![("y".into(), t(&[1.0, 2.0])), ("z".into(), t(&[1.0]))],
        );
        m.add(0, "b", vec![("y".into(), t(&[1.0, 2.5]))]);
        m.add(1, "a", vec![("y".into(), t(&[1.0, 4.0]))]);
        m.add(1, "b", vec![("y".into(), t(&[2.0, 4.0]))]);
        // Ignored: an unknown output, an unknown backend, a case out of range.
        m.add(0, "a", vec![("w".into(), t(&[9.0]))]);
        m.add(0, "x", vec![("y".into(), t(&[9.0, 9.0]))]);
        m.add(7, "a", vec![("y".into(), t(&[9.0, 9.0]))]);
        let entries = m.finish();
        assert_eq!(entries.len(), 2);
        let y = &entries[0];
        assert_eq!(y.output, "y");
        assert_eq!(y.backends, names(&["a", "b", "c"]));
        // a as reference: case 0 rel 0.5/2 = 0.25, case 1 rel 1/1 = 1.
        assert_eq!(y.max_rel_err[0], vec![Some(0.0), Some(1.0), None]);
        // b as reference: case 0 rel 0.5/2.5 = 0.2, case 1 rel 1/2 = 0.5.
        assert_eq!(y.max_rel_err[1], vec![Some(0.5), Some(0.0), None]);
        assert_eq!(y.max_rel_err[2], vec![None, None, None]);
        assert_eq!(y.max_abs_err[0][1], Some(1.0));
        assert_eq!(y.max_abs_err[1][0], Some(1.0));
        let z = &entries[1];
        assert_eq!(z.max_rel_err[0], vec![Some(0.0), None, None]);
        assert_eq!(z.max_rel_err[1], vec![None, None, None]);
    }

    #[test]
    fn a_shape_mismatch_is_an_infinite_error() {
        let mut m = SuiteMatrix::with_names("s".into(), names(&["y"]), names(&["a", "b"]), 1);
        m.add(0, "a", vec![("y".into(), t(&[1.0, 2.0]))]);
        m.add(0, "b", vec![("y".into(), t(&[1.0]))]);
        let e = &m.finish()[0];
        assert_eq!(e.max_rel_err[0][1], Some(f64::INFINITY));
        assert_eq!(e.max_abs_err[1][0], Some(f64::INFINITY));
    }

    #[test]
    fn worse_keeps_the_maximum_and_nan() {
        assert_eq!(worse(None, 1.0), 1.0);
        assert_eq!(worse(Some(2.0), 1.0), 2.0);
        assert_eq!(worse(Some(1.0), 2.0), 2.0);
        assert_eq!(worse(Some(1.0), f64::INFINITY), f64::INFINITY);
        assert!(worse(Some(f64::NAN), 3.0).is_nan());
        assert!(worse(Some(3.0), f64::NAN).is_nan());
    }
}
