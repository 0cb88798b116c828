//! Dataset-level metrics start here: what one case contributes to them. Element-wise
//! tolerances cannot judge a quantized or re-exported model, whose every logit moves by
//! design; agreement rates, SQNR, PSNR and cosine over a whole suite can
//! (docs/gates.md). A case's [`OutputStats`] are sufficient statistics: sums and counts
//! that the report layer adds up over cases (and `parity merge` over shards) into the
//! dataset metrics, so a sharded run gives the same figures as an unsharded one.
//!
//! Sums run in f64 over the flattened tensors, on all cores in fixed-size chunks merged
//! in index order (the same bits whatever the thread count). Pairs where either side is
//! NaN or ±Inf are left out of the sums and counted in `non_finite` (the element-wise
//! comparison already fails on them where the reference is finite).
//!
//! Class statistics (an output whose `axis` holds class scores): each row is a 1-D slice
//! along the axis; its top-1 is the position of the largest value, ranked as `topk` mode
//! ranks (ties to the lower index; NaN above +Inf, as `numpy.argmax`).
//! - top-1 agreement: the candidate's top-1 equals the reference's;
//! - top-k agreement: the reference's top-1 is among the candidate's k best;
//! - labels (one class per row): the candidate's and the reference's top-1 against them.

use super::parallel::{fold_ranges, CHUNK};
use super::slices::Slices;
use super::value::{visit, ModeValue, Visitor};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;

/// How an output's class scores are read: along which axis, and how many top
/// positions count for top-k agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassAxis {
    /// The class axis; negative counts from the end.
    pub axis: i64,
    /// k of top-k agreement (at least 1; capped at the axis length).
    pub k: usize,
}

impl Default for ClassAxis {
    /// The last axis, top-5: the convention of image and text classifiers.
    fn default() -> Self {
        ClassAxis { axis: -1, k: 5 }
    }
}

/// One case's contribution to the dataset metrics of one output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputStats {
    /// Pairs summed (both values finite).
    pub elements: u64,
    /// Pairs left out because a value was NaN or ±Inf.
    pub non_finite: u64,
    /// Σ e² over the summed pairs (reference energy: SQNR's signal).
    pub sum_sq_expected: f64,
    /// Σ a².
    pub sum_sq_actual: f64,
    /// Σ a·e (with the two energies, the case's cosine similarity).
    pub sum_product: f64,
    /// Σ (a − e)² (SQNR's noise, PSNR's mean squared error).
    pub sum_sq_error: f64,
    /// Σ |a − e|.
    pub sum_abs_error: f64,
    /// Largest |a − e|.
    pub max_abs_error: f64,
    /// Smallest and largest reference value (PSNR's peak is their difference over the
    /// dataset); `null` when no pair was summed.
    pub min_expected: Option<f64>,
    pub max_expected: Option<f64>,
    /// Class statistics, for an output read as class scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<ClassStats>,
}

/// One case's class statistics (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassStats {
    /// The class axis, resolved (non-negative).
    pub axis: usize,
    /// k of top-k agreement, as applied (capped at the number of classes).
    pub k: usize,
    /// Rows (slices along the axis).
    pub rows: u64,
    /// Rows whose top-1 agree.
    pub top1_agree: u64,
    /// Rows where the reference's top-1 is among the candidate's k best.
    pub topk_agree: u64,
    /// Rows with a label.
    #[serde(default)]
    pub labeled: u64,
    /// Labelled rows the candidate's top-1 gets right.
    #[serde(default)]
    pub label_correct: u64,
    /// Labelled rows the reference's top-1 gets right.
    #[serde(default)]
    pub reference_label_correct: u64,
    /// Rows whose top-1 differ, counted per (reference class, candidate class), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub confusions: Vec<Confusion>,
}

/// A pair of classes that disagree, with how many rows had it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Confusion {
    /// The reference's top-1.
    pub reference: usize,
    /// The candidate's top-1.
    pub candidate: usize,
    pub rows: u64,
}

impl ClassStats {
    /// Adds `other`'s counts (not its confusions) to these.
    pub fn add_counts(&mut self, other: &ClassStats) {
        self.rows += other.rows;
        self.top1_agree += other.top1_agree;
        self.topk_agree += other.topk_agree;
        self.labeled += other.labeled;
        self.label_correct += other.label_correct;
        self.reference_label_correct += other.reference_label_correct;
    }
}

impl OutputStats {
    /// The statistics of `actual` against `expected` (same dtype and shape, else `None`:
    /// nothing can be summed). `classes` reads the output as class scores; `labels`, one
    /// class per row, scores both sides against ground truth. A bad axis or a label list
    /// that does not fit the rows is an error phrased for the report.
    pub fn measure(
        expected: &Tensor,
        actual: &Tensor,
        classes: Option<ClassAxis>,
        labels: Option<&[u64]>,
    ) -> Option<Result<OutputStats, String>> {
        if expected.dtype() != actual.dtype() || expected.shape() != actual.shape() {
            return None;
        }
        let slices = match classes {
            Some(c) => match Slices::along(expected.shape(), c.axis) {
                Ok(s) => Some((s, c.k)),
                Err(e) => return Some(Err(e)),
            },
            None => None,
        };
        if let (Some((s, _)), Some(labels)) = (slices, labels) {
            if labels.len() != s.count() {
                return Some(Err(format!(
                    "{} label(s) for {} row(s) along axis {} (shape {})",
                    labels.len(),
                    s.count(),
                    s.axis.unwrap_or(0),
                    super::format_shape(expected.shape())
                )));
            }
            if let Some(bad) = labels.iter().find(|&&l| l >= s.len as u64) {
                return Some(Err(format!(
                    "label {bad} is not a class of axis {} ({} classes)",
                    s.axis.unwrap_or(0),
                    s.len
                )));
            }
        }
        visit(
            expected,
            actual,
            Measure {
                slices,
                labels: labels.filter(|_| slices.is_some()),
            },
        )
        .map(Ok)
    }

    /// These sums followed by `later`'s (the earlier first: a fixed order gives the same
    /// bits however the work was split), without class statistics.
    pub fn followed_by(self, later: &OutputStats) -> OutputStats {
        let pick = |x: Option<f64>, y: Option<f64>, f: fn(f64, f64) -> f64| match (x, y) {
            (Some(x), Some(y)) => Some(f(x, y)),
            (x, y) => x.or(y),
        };
        OutputStats {
            elements: self.elements + later.elements,
            non_finite: self.non_finite + later.non_finite,
            sum_sq_expected: self.sum_sq_expected + later.sum_sq_expected,
            sum_sq_actual: self.sum_sq_actual + later.sum_sq_actual,
            sum_product: self.sum_product + later.sum_product,
            sum_sq_error: self.sum_sq_error + later.sum_sq_error,
            sum_abs_error: self.sum_abs_error + later.sum_abs_error,
            max_abs_error: self.max_abs_error.max(later.max_abs_error),
            min_expected: pick(self.min_expected, later.min_expected, f64::min),
            max_expected: pick(self.max_expected, later.max_expected, f64::max),
            classes: None,
        }
    }

    /// The case's cosine similarity over the summed pairs: 1 when both sides are all
    /// zeros, 0 when only one is; `None` when nothing was summed.
    pub fn cosine(&self) -> Option<f64> {
        cosine(self.sum_product, self.sum_sq_actual, self.sum_sq_expected)
            .filter(|_| self.elements > 0)
    }
}

/// Cosine similarity from a dot product and two squared norms (the convention of
/// `cosine` mode for zero vectors).
pub fn cosine(product: f64, sq_a: f64, sq_e: f64) -> Option<f64> {
    match (sq_a == 0.0, sq_e == 0.0) {
        (true, true) => Some(1.0),
        (true, false) | (false, true) => Some(0.0),
        _ => Some(product / (sq_a.sqrt() * sq_e.sqrt())),
    }
}

/// The z of a two-sided 95% normal interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval at 95% for `successes` out of `n` trials: where the true
/// rate lies, given the sample; unlike the normal approximation it stays inside [0, 1]
/// and is honest at rates near 0 or 1 and small samples. `None` for `n == 0`.
/// scripts/gate-metrics.py computes the same interval independently.
pub fn wilson(successes: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (x, n) = (successes as f64, n as f64);
    let p = x / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    // At 0 and n successes the bounds are exactly 0 and 1; the formula's rounding would
    // give 1e-17 or 0.9999999999999999 there.
    let lo = if successes == 0 { 0.0 } else { center - half };
    let hi = if x == n { 1.0 } else { center + half };
    Some((lo.max(0.0), hi.min(1.0)))
}

/// The typed pass behind [`OutputStats::measure`].
struct Measure<'a> {
    slices: Option<(Slices, usize)>,
    labels: Option<&'a [u64]>,
}

impl Visitor for Measure<'_> {
    type Output = OutputStats;

    fn visit<T: ModeValue>(self, expected: &[T], actual: &[T]) -> OutputStats {
        let scan = |r: Range<usize>| sums(&expected[r.clone()], &actual[r]);
        let mut s = fold_ranges(expected.len(), CHUNK, scan, |a, b| a.followed_by(&b));
        if s.elements == 0 {
            s.min_expected = None;
            s.max_expected = None;
        }
        s.classes = self
            .slices
            .map(|(slices, k)| class_stats(expected, actual, slices, k, self.labels));
        s
    }
}

/// The sums of one range of pairs (`min_expected`/`max_expected` are ±inf when it
/// summed nothing; [`Measure::visit`] clears them).
fn sums<T: ModeValue>(expected: &[T], actual: &[T]) -> OutputStats {
    let mut s = OutputStats::default();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (&e, &a) in expected.iter().zip(actual) {
        let (e, a) = (e.to_f64(), a.to_f64());
        if !(e.is_finite() && a.is_finite()) {
            s.non_finite += 1;
            continue;
        }
        let d = a - e;
        s.elements += 1;
        s.sum_sq_expected += e * e;
        s.sum_sq_actual += a * a;
        s.sum_product += a * e;
        s.sum_sq_error += d * d;
        s.sum_abs_error += d.abs();
        s.max_abs_error = s.max_abs_error.max(d.abs());
        lo = lo.min(e);
        hi = hi.max(e);
    }
    s.min_expected = Some(lo);
    s.max_expected = Some(hi);
    s
}

/// Top-1, top-k and label counts over the rows of one case, rows in parallel (fixed
/// chunks merged in row order).
fn class_stats<T: ModeValue>(
    expected: &[T],
    actual: &[T],
    slices: Slices,
    k: usize,
    labels: Option<&[u64]>,
) -> ClassStats {
    let k = k.clamp(1, slices.len.max(1));
    let empty = ClassStats {
        axis: slices.axis.unwrap_or(0),
        k,
        ..ClassStats::default()
    };
    if slices.len == 0 {
        return empty;
    }
    let rows = |range: Range<usize>| {
        let mut stats = empty.clone();
        let mut confusions = BTreeMap::<(usize, usize), u64>::new();
        let mut best = Vec::with_capacity(k + 1);
        for row in range {
            let reference = top(expected, &slices, row, 1, &mut best)[0].1;
            let candidate = top(actual, &slices, row, k, &mut best);
            let first = candidate[0].1;
            stats.rows += 1;
            if first == reference {
                stats.top1_agree += 1;
            } else {
                *confusions.entry((reference, first)).or_default() += 1;
            }
            stats.topk_agree += u64::from(candidate.iter().any(|&(_, j)| j == reference));
            if let Some(&label) = labels.and_then(|l| l.get(row)) {
                stats.labeled += 1;
                stats.label_correct += u64::from(first as u64 == label);
                stats.reference_label_correct += u64::from(reference as u64 == label);
            }
        }
        stats.confusions = confusion_list(confusions);
        stats
    };
    fold_ranges(slices.count(), ROWS_PER_CHUNK, rows, merge_classes)
}

/// Rows per parallel chunk of [`class_stats`].
const ROWS_PER_CHUNK: usize = 256;

/// The `k` best positions of row `row` as (order key, position), best first; equal
/// values rank by lower position (the order of `topk` mode). One pass, no sort: `best`
/// holds at most `k` entries.
fn top<'b, T: ModeValue>(
    values: &[T],
    slices: &Slices,
    row: usize,
    k: usize,
    best: &'b mut Vec<(i128, usize)>,
) -> &'b [(i128, usize)] {
    best.clear();
    for j in 0..slices.len {
        let key = values[slices.element(row, j)].key();
        if best.len() == k && best.last().is_some_and(|&(worst, _)| key <= worst) {
            continue;
        }
        // After every entry at least as large: a later position loses ties.
        let at = best.partition_point(|&(b, _)| b >= key);
        best.insert(at, (key, j));
        best.truncate(k);
    }
    best
}

/// Two chunks' class counts, the earlier first.
fn merge_classes(mut a: ClassStats, b: ClassStats) -> ClassStats {
    a.add_counts(&b);
    let mut all: BTreeMap<(usize, usize), u64> = BTreeMap::new();
    for c in a.confusions.into_iter().chain(b.confusions) {
        *all.entry((c.reference, c.candidate)).or_default() += c.rows;
    }
    a.confusions = confusion_list(all);
    a
}

/// Counts per (reference class, candidate class) as a list, in pair order.
pub fn confusion_list(pairs: BTreeMap<(usize, usize), u64>) -> Vec<Confusion> {
    pairs
        .into_iter()
        .map(|((reference, candidate), rows)| Confusion {
            reference,
            candidate,
            rows,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(shape.to_vec(), v.to_vec()).unwrap()
    }

    #[test]
    fn sums_are_the_numpy_formulas() {
        let e = t(&[4], &[1.0, -2.0, 3.0, 0.5]);
        let a = t(&[4], &[1.5, -2.0, 2.0, 0.5]);
        let s = OutputStats::measure(&e, &a, None, None).unwrap().unwrap();
        assert_eq!(s.elements, 4);
        assert_eq!(s.sum_sq_expected, 1.0 + 4.0 + 9.0 + 0.25);
        assert_eq!(s.sum_sq_actual, 2.25 + 4.0 + 4.0 + 0.25);
        assert_eq!(s.sum_product, 1.5 + 4.0 + 6.0 + 0.25);
        assert_eq!(s.sum_sq_error, 0.25 + 1.0);
        assert_eq!(s.sum_abs_error, 1.5);
        assert_eq!(s.max_abs_error, 1.0);
        assert_eq!((s.min_expected, s.max_expected), (Some(-2.0), Some(3.0)));
        let cos = 11.75 / (10.5f64.sqrt() * 14.25f64.sqrt());
        assert_eq!(s.cosine(), Some(cos));
        assert!(s.classes.is_none());
    }

    #[test]
    fn non_finite_pairs_are_counted_not_summed() {
        let e = t(&[3], &[1.0, f32::NAN, 2.0]);
        let a = t(&[3], &[1.0, 1.0, f32::INFINITY]);
        let s = OutputStats::measure(&e, &a, None, None).unwrap().unwrap();
        assert_eq!((s.elements, s.non_finite), (1, 2));
        assert_eq!(s.sum_sq_error, 0.0);
    }

    #[test]
    fn layouts_that_differ_give_nothing() {
        let e = t(&[2], &[1.0, 2.0]);
        let a = t(&[1, 2], &[1.0, 2.0]);
        assert!(OutputStats::measure(&e, &a, None, None).is_none());
    }

    #[test]
    fn class_rows_count_agreement_labels_and_confusions() {
        // Three rows of four classes.
        let e = t(
            &[3, 4],
            &[0.1, 0.7, 0.1, 0.1, 0.5, 0.2, 0.2, 0.1, 0.0, 0.0, 0.3, 0.9],
        );
        let a = t(
            &[3, 4],
            &[0.1, 0.6, 0.2, 0.1, 0.3, 0.4, 0.2, 0.1, 0.9, 0.0, 0.3, 0.2],
        );
        let labels = [1, 1, 2];
        let axis = ClassAxis { axis: -1, k: 2 };
        let s = OutputStats::measure(&e, &a, Some(axis), Some(&labels))
            .unwrap()
            .unwrap();
        let c = s.classes.unwrap();
        assert_eq!((c.axis, c.k, c.rows), (1, 2, 3));
        // Row 0 agrees (1 = 1); row 1: 0 vs 1, 0 is second best; row 2: 3 vs 0, 3 is
        // not in the candidate's top-2 (0, 2).
        assert_eq!((c.top1_agree, c.topk_agree), (1, 2));
        assert_eq!(
            (c.labeled, c.label_correct, c.reference_label_correct),
            (3, 2, 1)
        );
        assert_eq!(
            c.confusions,
            vec![
                Confusion {
                    reference: 0,
                    candidate: 1,
                    rows: 1
                },
                Confusion {
                    reference: 3,
                    candidate: 0,
                    rows: 1
                },
            ]
        );
    }

    #[test]
    fn ties_go_to_the_lower_index_and_axis_zero_works() {
        let e = t(&[2, 2], &[1.0, 1.0, 1.0, 1.0]);
        let a = t(&[2, 2], &[0.0, 2.0, 1.0, 1.0]);
        let axis = ClassAxis { axis: 0, k: 1 };
        let c = OutputStats::measure(&e, &a, Some(axis), None)
            .unwrap()
            .unwrap()
            .classes
            .unwrap();
        // Column 0: reference 0 (tie), candidate 1 (1 > 0); column 1: 0 vs 0 (2 > 1).
        assert_eq!((c.rows, c.top1_agree), (2, 1));
    }

    #[test]
    fn the_one_pass_top_k_ranks_as_topk_mode_does() {
        // Ties, NaN and ±Inf among 7 classes, over 200 rows of pseudo-random picks.
        let pool = [
            0.5f32,
            -1.0,
            0.5,
            f32::NAN,
            f32::INFINITY,
            2.0,
            -0.0,
            0.0,
            2.0,
        ];
        let mut state = 7u32;
        let values: Vec<f32> = (0..1400)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
                pool[(state >> 16) as usize % pool.len()]
            })
            .collect();
        let slices = Slices::along(&[200, 7], -1).unwrap();
        let (mut best, mut scratch) = (Vec::new(), Vec::new());
        for row in 0..200 {
            for k in 1..=7 {
                let ours: Vec<usize> = top(&values, &slices, row, k, &mut best)
                    .iter()
                    .map(|&(_, j)| j)
                    .collect();
                let mode = super::super::topk::top_k(&values, &slices, row, k, &mut scratch);
                assert_eq!(ours, mode, "row {row}, k {k}");
            }
        }
    }

    #[test]
    fn labels_that_do_not_fit_are_errors() {
        let e = t(&[2, 3], &[0.0; 6]);
        let axis = Some(ClassAxis::default());
        let err = OutputStats::measure(&e, &e, axis, Some(&[1]))
            .unwrap()
            .unwrap_err();
        assert!(err.contains("1 label(s) for 2 row(s)"), "{err}");
        let err = OutputStats::measure(&e, &e, axis, Some(&[1, 3]))
            .unwrap()
            .unwrap_err();
        assert!(err.contains("label 3 is not a class"), "{err}");
        let bad = Some(ClassAxis { axis: 2, k: 1 });
        let err = OutputStats::measure(&e, &e, bad, None)
            .unwrap()
            .unwrap_err();
        assert!(err.contains("axis 2 is out of range"), "{err}");
    }

    #[test]
    fn wilson_matches_the_closed_form() {
        // 90 of 100: [0.825634, 0.944771], as statsmodels' proportion_confint(method="wilson").
        let (lo, hi) = wilson(90, 100).unwrap();
        assert!(
            (lo - 0.825_634).abs() < 1e-6 && (hi - 0.944_771).abs() < 1e-6,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(10, 10).unwrap();
        assert!(hi == 1.0 && (lo - 0.722_467).abs() < 1e-6, "{lo}");
        assert_eq!(wilson(0, 0), None);
    }
}
