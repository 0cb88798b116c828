//! `bench --verify`: correctness under load. Every response of a bench run on a suite
//! is compared with the suite's expected outputs of the queried data set, under the
//! suite's tolerances (as `check` compares), and counted: checked, mismatched, errored
//! (timeouts among them). While verifying, a failed query is counted, not fatal, so a
//! load run against an endpoint reports how many queries it lost.

use crate::backend::BackendError;
use crate::error::{Error, Result};
use crate::suite::runner::{compare_outputs, RunOptions};
use crate::suite::{self, NamedTensors, Suite};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What `--verify` counted over one result's queries: warm-up and measured ones (not
/// the single check before timing, which must succeed for the run to start).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyStats {
    /// Responses compared with the golden outputs.
    pub checked: usize,
    /// Responses with at least one output out of tolerance (or of the wrong shape,
    /// dtype, or missing).
    pub mismatched: usize,
    /// Queries that produced no outputs (HTTP error, refused, reset, bad response...).
    pub errors: usize,
    /// Of `errors`, the ones that timed out.
    pub timeouts: usize,
    /// The first mismatch or error, to say what went wrong.
    pub first_problem: Option<String>,
}

impl VerifyStats {
    /// Queries lost or wrong: what makes a verified run fail.
    pub fn bad(&self) -> usize {
        self.mismatched + self.errors
    }
}

/// The golden outputs of the queried data set and the counters the workers share.
pub struct Verifier {
    suite: Suite,
    /// The backend under bench, for its own tolerances in `parity.toml`.
    backend: String,
    expected: NamedTensors,
    checked: AtomicUsize,
    mismatched: AtomicUsize,
    errors: AtomicUsize,
    timeouts: AtomicUsize,
    first_problem: Mutex<Option<String>>,
}

impl Verifier {
    /// The verifier of a bench target: `path` must be a suite with at least one data
    /// set (bench queries its first one). `backend` answers the queries.
    pub fn open(path: &Path, backend: &str) -> Result<Verifier> {
        let not_suite = || {
            Error::file(
                path,
                "--verify needs a suite (a directory with model.onnx and data sets) to know the expected outputs",
            )
        };
        if !path.is_dir() {
            return Err(not_suite());
        }
        let suite = suite::open(path)?;
        let first = suite.cases.first().ok_or_else(not_suite)?;
        let case = suite.load_case(first)?;
        Ok(Verifier {
            suite,
            backend: backend.to_string(),
            expected: case.expected,
            checked: AtomicUsize::new(0),
            mismatched: AtomicUsize::new(0),
            errors: AtomicUsize::new(0),
            timeouts: AtomicUsize::new(0),
            first_problem: Mutex::new(None),
        })
    }

    /// Counts one query's outcome.
    pub fn record(&self, outcome: &std::result::Result<NamedTensors, BackendError>) {
        let problem = match outcome {
            Ok(actual) => {
                self.checked.fetch_add(1, Ordering::Relaxed);
                let outputs = compare_outputs(
                    &self.suite,
                    Some(&self.backend),
                    &self.expected,
                    actual,
                    &RunOptions::default(),
                );
                let bad = outputs
                    .iter()
                    .find(|o| o.comparison.verdict == crate::compare::Verdict::Fail);
                match bad {
                    None => return,
                    Some(o) => {
                        self.mismatched.fetch_add(1, Ordering::Relaxed);
                        let why = o.comparison.problem.clone().unwrap_or_else(|| {
                            format!(
                                "{} of {} out of tolerance, max abs err {:e}",
                                o.comparison.mismatched,
                                o.comparison.total,
                                o.comparison.max_abs_err
                            )
                        });
                        format!("mismatch: {}: {why}", o.name)
                    }
                }
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if e.message.contains("timed out") {
                    self.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                format!("error: {}", e.message)
            }
        };
        let mut first = self.first_problem.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(problem);
    }

    /// The counts so far.
    pub fn stats(&self) -> VerifyStats {
        VerifyStats {
            checked: self.checked.load(Ordering::Relaxed),
            mismatched: self.mismatched.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
            first_problem: self
                .first_problem
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn mlp() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/mlp")
    }

    #[test]
    fn counts_matches_mismatches_and_errors() {
        let v = Verifier::open(&mlp(), "ort-cpu").unwrap();
        let good = v.expected.clone();
        v.record(&Ok(good.clone()));
        let mut off = good.clone();
        let (name, t) = &off[0];
        let shifted: Vec<f32> = t.values::<f32>().unwrap().iter().map(|x| x + 1.0).collect();
        off[0] = (
            name.clone(),
            Tensor::from_vec(t.shape().to_vec(), shifted).unwrap(),
        );
        v.record(&Ok(off));
        v.record(&Err(BackendError::new(
            "POST /v2/models/m/infer: timed out",
        )));
        v.record(&Err(BackendError::new("HTTP 500: boom")));
        let s = v.stats();
        assert_eq!(
            (s.checked, s.mismatched, s.errors, s.timeouts),
            (2, 1, 2, 1)
        );
        assert_eq!(s.bad(), 3);
        let first = s.first_problem.unwrap();
        assert!(first.starts_with("mismatch: logits: "), "{first}");
    }

    #[test]
    fn a_model_file_is_not_a_suite() {
        let e = Verifier::open(&mlp().join("model.onnx"), "ort-cpu")
            .err()
            .unwrap();
        assert!(e.to_string().contains("--verify needs a suite"), "{e}");
    }
}
