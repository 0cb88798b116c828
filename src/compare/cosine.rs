//! `cosine` mode: the cosine similarity of actual and expected, computed in f64 over the
//! whole tensor or, with an `axis`, over each 1-D slice along it (one embedding per row).
//! A row passes when its similarity is at least `min_cosine` and it holds no NaN/Inf
//! mismatch.
//!
//! Per row: sums of `a*e`, `a*a`, `e*e` in f64 over the pairs where both values are
//! finite (matching NaN/Inf pairs are left out), in element order. Two all-zero vectors
//! are identical (1); an all-zero vector against a non-zero one has nothing in common
//! (0); an empty row is two all-zero vectors. The norms are `sqrt(Σa² · Σe²)`, so a
//! vector against an exact copy scores exactly 1. When the sums overflow f64 the
//! similarity is NaN and the row fails. The reported similarity is the lowest over rows (the whole
//! tensor's without an axis); ties go to the lower row.

use super::parallel::fold_ranges;
use super::slices::Slices;
use super::value::{non_finite_mismatch, ModeValue, Visitor};

/// The row with the lowest similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Lowest {
    /// Its similarity; NaN when its sums overflowed.
    pub cosine: f64,
    /// Slice number of the row.
    pub row: usize,
    /// Flat index of the row's element with the largest `|a - e|` (finite pairs, first on
    /// ties), or of its first NaN/Inf mismatch; `None` for an empty row or a row where
    /// nothing differs.
    pub worst: Option<usize>,
}

impl Lowest {
    /// Whether `self` is lower than `other` (NaN lowest of all; equal: not lower).
    fn is_lower_than(&self, other: &Lowest) -> bool {
        match (self.cosine.is_nan(), other.cosine.is_nan()) {
            (true, false) => true,
            (false, false) => self.cosine < other.cosine,
            _ => false,
        }
    }
}

/// What a cosine scan finds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CosineScan {
    /// Rows that fail.
    pub failing: u64,
    /// The lowest row; `None` only when there are no rows.
    pub lowest: Option<Lowest>,
    /// The first failing row, with its similarity.
    pub first_failing: Option<Lowest>,
}

impl CosineScan {
    fn merge(self, later: CosineScan) -> CosineScan {
        let lowest = match (self.lowest, later.lowest) {
            (Some(a), Some(b)) => Some(if b.is_lower_than(&a) { b } else { a }),
            (a, b) => a.or(b),
        };
        CosineScan {
            failing: self.failing + later.failing,
            lowest,
            first_failing: self.first_failing.or(later.first_failing),
        }
    }
}

/// Similarity from the three sums, with the conventions of the module documentation.
pub(super) fn similarity(dot: f64, sum_sq_actual: f64, sum_sq_expected: f64) -> f64 {
    let cosine = match (sum_sq_actual == 0.0, sum_sq_expected == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        (false, false) => {
            // One rounding fewer than sqrt(a) * sqrt(e), so that a vector against itself
            // is exactly 1; the split form only when the product leaves the normal range.
            let product = sum_sq_actual * sum_sq_expected;
            let norms = if product.is_normal() {
                product.sqrt()
            } else {
                sum_sq_actual.sqrt() * sum_sq_expected.sqrt()
            };
            dot / norms
        }
    };
    if cosine.is_finite() {
        cosine.clamp(-1.0, 1.0)
    } else {
        f64::NAN
    }
}

/// Scans every row of `slices` against `min_cosine`, on all cores, deterministically.
pub(super) struct Scan {
    /// Rows to compare.
    pub slices: Slices,
    /// Lowest similarity that passes.
    pub min_cosine: f64,
}

impl Visitor for Scan {
    type Output = CosineScan;

    fn visit<T: ModeValue>(self, expected: &[T], actual: &[T]) -> CosineScan {
        let Scan { slices, min_cosine } = self;
        let empty = CosineScan {
            failing: 0,
            lowest: None,
            first_failing: None,
        };
        if slices.len == 0 {
            // Rows of nothing: two all-zero vectors each, all passing; not iterated, as
            // an empty tensor may have any number of them.
            let lowest = Lowest {
                cosine: 1.0,
                row: 0,
                worst: None,
            };
            let lowest = (slices.count() > 0).then_some(lowest);
            return CosineScan { lowest, ..empty };
        }
        fold_ranges(
            slices.count(),
            slices.per_chunk(),
            |rows| {
                let mut scan = empty;
                for row in rows {
                    let (lowest, non_finite) = scan_row(expected, actual, &slices, row);
                    let fails = non_finite || lowest.cosine.is_nan() || lowest.cosine < min_cosine;
                    scan = scan.merge(CosineScan {
                        failing: u64::from(fails),
                        lowest: Some(lowest),
                        first_failing: fails.then_some(lowest),
                    });
                }
                scan
            },
            CosineScan::merge,
        )
    }
}

/// One row: its similarity and worst element, and whether it has a NaN/Inf mismatch.
fn scan_row<T: ModeValue>(
    expected: &[T],
    actual: &[T],
    slices: &Slices,
    row: usize,
) -> (Lowest, bool) {
    let (mut dot, mut sq_a, mut sq_e) = (0.0f64, 0.0f64, 0.0f64);
    let mut largest: Option<(f64, usize)> = None;
    let mut first_non_finite = None;
    for j in 0..slices.len {
        let i = slices.element(row, j);
        let (e, a) = (expected[i], actual[i]);
        if !(e.is_finite_value() && a.is_finite_value()) {
            if non_finite_mismatch(e, a) {
                first_non_finite.get_or_insert(i);
            }
            continue;
        }
        let (e, a) = (e.to_f64(), a.to_f64());
        dot += a * e;
        sq_a += a * a;
        sq_e += e * e;
        let abs = (a - e).abs();
        if abs > largest.map_or(0.0, |(d, _)| d) {
            largest = Some((abs, i));
        }
    }
    let lowest = Lowest {
        cosine: similarity(dot, sq_a, sq_e),
        row,
        worst: first_non_finite.or(largest.map(|(_, i)| i)),
    };
    (lowest, first_non_finite.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(expected: &[f64], actual: &[f64], slices: Slices, min: f64) -> CosineScan {
        Scan {
            slices,
            min_cosine: min,
        }
        .visit(expected, actual)
    }

    #[test]
    fn known_vectors() {
        // [1, 0] vs [1, 1]: cos 45° = 1/sqrt(2).
        let s = scan(&[1.0, 0.0], &[1.0, 1.0], Slices::whole(2), 0.7);
        let lowest = s.lowest.unwrap();
        assert!((lowest.cosine - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-15);
        assert_eq!((s.failing, lowest.worst), (0, Some(1)));
        assert_eq!(
            scan(&[1.0, 0.0], &[1.0, 1.0], Slices::whole(2), 0.71).failing,
            1
        );
        // Scaling does not change the direction: [1, 2, 3] vs [2, 4, 6] is exactly 1.
        let same = scan(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0], Slices::whole(3), 1.0);
        assert_eq!((same.lowest.unwrap().cosine, same.failing), (1.0, 0));
        // Opposite: -1; orthogonal: 0.
        let opposite = scan(&[1.0, 2.0], &[-1.0, -2.0], Slices::whole(2), 0.0);
        assert_eq!(opposite.lowest.unwrap().cosine, -1.0);
        assert_eq!(opposite.failing, 1);
        let orthogonal = scan(&[1.0, 0.0], &[0.0, 3.0], Slices::whole(2), 0.0);
        assert_eq!(orthogonal.lowest.unwrap().cosine, 0.0);
        assert_eq!(orthogonal.failing, 0, "0 >= min 0");
    }

    #[test]
    fn zero_vectors_and_overflow() {
        assert_eq!(similarity(0.0, 0.0, 0.0), 1.0);
        assert_eq!(similarity(0.0, 1.0, 0.0), 0.0);
        assert_eq!(similarity(0.0, 0.0, 4.0), 0.0);
        assert!(similarity(f64::INFINITY, f64::INFINITY, f64::INFINITY).is_nan());
        // A vector against itself is exactly 1, whatever rounding the sums had.
        let v = [0.1, 0.7, -0.3, 1e-3, 12.5];
        assert_eq!(
            scan(&v, &v, Slices::whole(5), 1.0).lowest.unwrap().cosine,
            1.0
        );
        // Products of the sums outside the normal range fall back to split square roots.
        let small = [1e-160, 2e-160];
        let small_scaled = [2e-160, 4e-160];
        let s = scan(&small, &small_scaled, Slices::whole(2), 0.0)
            .lowest
            .unwrap();
        assert!((s.cosine - 1.0).abs() < 1e-12, "{}", s.cosine);
        let big = [1e100, 2e100];
        let b = scan(&big, &big, Slices::whole(2), 0.0).lowest.unwrap();
        assert!((b.cosine - 1.0).abs() < 1e-12, "{}", b.cosine);
        let huge = scan(&[1e200, 1e200], &[1e200, 1e200], Slices::whole(2), 0.0);
        assert!(huge.lowest.unwrap().cosine.is_nan());
        assert_eq!(huge.failing, 1, "an overflowed similarity fails");
        let empty = scan(&[], &[], Slices::whole(0), 1.0);
        assert_eq!((empty.lowest.unwrap().cosine, empty.failing), (1.0, 0));
        let huge = 1usize << 40;
        let rows = Slices::along(&[huge, 0, huge], 1).unwrap();
        let none = scan(&[], &[], rows, 1.0);
        assert_eq!((none.lowest.unwrap().cosine, none.failing), (1.0, 0));
        let no_rows = scan(&[], &[], Slices::along(&[0, 3], 1).unwrap(), 1.0);
        assert_eq!((no_rows.lowest, no_rows.failing), (None, 0));
    }

    #[test]
    fn per_row_finds_the_lowest_row_and_counts_failures() {
        // 3 rows of 2 along axis 1 of [3, 2].
        let expected = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let actual = [1.0, 0.1, 0.0, 1.0, 1.0, -1.0];
        let slices = Slices::along(&[3, 2], 1).unwrap();
        let s = scan(&expected, &actual, slices, 0.99);
        assert_eq!(s.failing, 1);
        let lowest = s.lowest.unwrap();
        assert_eq!((lowest.row, lowest.cosine, lowest.worst), (2, 0.0, Some(5)));
        assert_eq!(s.first_failing.unwrap().row, 2);
        // Along axis 0 the same data are 2 columns of 3.
        let columns = Slices::along(&[3, 2], 0).unwrap();
        let c = scan(&expected, &actual, columns, 0.99);
        assert_eq!(c.failing, 1);
        assert_eq!(c.lowest.unwrap().row, 1);
    }

    #[test]
    fn nan_rules_apply_per_row() {
        let expected = [1.0, f64::NAN, 1.0, 1.0];
        let matched = [1.0, f64::NAN, 1.0, 1.0];
        let slices = Slices::along(&[2, 2], -1).unwrap();
        let ok = scan(&expected, &matched, slices, 1.0);
        assert_eq!(ok.failing, 0, "matching NaNs are left out");
        let broken = [1.0, f64::NAN, 1.0, f64::INFINITY];
        let bad = scan(&expected, &broken, slices, 0.0);
        assert_eq!(bad.failing, 1);
        let first = bad.first_failing.unwrap();
        assert_eq!((first.row, first.worst, first.cosine), (1, Some(3), 1.0));
    }

    #[test]
    fn many_rows_in_parallel_match_one_at_a_time() {
        let (rows, len) = (50_000, 8);
        let expected: Vec<f64> = (0..rows * len).map(|i| (i as f64 * 0.7).sin()).collect();
        let actual: Vec<f64> = expected
            .iter()
            .enumerate()
            .map(|(i, &v)| v + if i % 9_973 == 0 { 0.5 } else { 1e-9 })
            .collect();
        let slices = Slices::along(&[rows, len], 1).unwrap();
        let s = scan(&expected, &actual, slices, 0.999);
        let mut failing = 0;
        let mut lowest: Option<(f64, usize)> = None;
        for row in 0..rows {
            let (l, _) = scan_row(&expected, &actual, &slices, row);
            failing += u64::from(l.cosine < 0.999);
            if lowest.is_none_or(|(c, _)| l.cosine < c) {
                lowest = Some((l.cosine, row));
            }
        }
        assert_eq!(s.failing, failing);
        assert!(failing > 0);
        let got = s.lowest.unwrap();
        assert_eq!(Some((got.cosine, got.row)), lowest);
    }
}
