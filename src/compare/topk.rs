//! `topk` mode: for every 1-D slice along an axis (each row of classifier logits), the
//! indices of the `k` largest values of the actual must agree with those of the
//! expected: as a set (`ordered = false`, the default) or as a list in rank order
//! (`ordered = true`).
//!
//! Ranking: larger values first; equal values (including `-0.0` and `+0.0`) rank by
//! lower index first, so ties are stable and deterministic; NaN ranks above +Inf, as in
//! `torch.topk` and `numpy.argmax`. A slice also disagrees when it holds a NaN/Inf
//! mismatch (NaN matches only NaN, ±Inf only the same Inf), whatever its ranking.

use super::parallel::fold_ranges;
use super::slices::Slices;
use super::value::{non_finite_mismatch, ModeValue, Visitor};
use std::cmp::Ordering;

/// The first slice that disagrees, with what each side ranked on top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Disagreement {
    /// Slice number.
    pub slice: usize,
    /// Expected top-k positions along the axis, best first.
    pub expected: Vec<usize>,
    /// Actual top-k positions along the axis, best first.
    pub actual: Vec<usize>,
    /// Flat index of the element that shows the disagreement: the first NaN/Inf
    /// mismatch of the slice if any, otherwise the best-ranked expected position that
    /// the actual lacks (unordered) or ranks elsewhere (ordered).
    pub element: usize,
}

/// What a top-k scan finds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TopkScan {
    /// Slices that disagree.
    pub disagreeing: u64,
    /// The first of them.
    pub first: Option<Disagreement>,
}

impl TopkScan {
    fn merge(self, later: TopkScan) -> TopkScan {
        TopkScan {
            disagreeing: self.disagreeing + later.disagreeing,
            first: self.first.or(later.first),
        }
    }
}

/// Ranking order: larger key first, then lower position.
#[inline(always)]
fn rank(a: &(i128, usize), b: &(i128, usize)) -> Ordering {
    b.0.cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Positions of the `k` best-ranked elements of slice `s`, best first. `k` must not
/// exceed the slice length. `scratch` is reused between calls.
pub(super) fn top_k<T: ModeValue>(
    values: &[T],
    slices: &Slices,
    s: usize,
    k: usize,
    scratch: &mut Vec<(i128, usize)>,
) -> Vec<usize> {
    scratch.clear();
    scratch.extend((0..slices.len).map(|j| (values[slices.element(s, j)].key(), j)));
    let k = k.min(scratch.len());
    if k == 0 {
        return Vec::new();
    }
    if k < scratch.len() {
        scratch.select_nth_unstable_by(k - 1, rank);
        scratch.truncate(k);
    }
    scratch.sort_unstable_by(rank);
    scratch.iter().map(|&(_, j)| j).collect()
}

/// Scans every slice, on all cores, deterministically. `k` must be between 1 and the
/// slice length (the caller checks).
pub(super) struct Scan {
    /// Slices to compare.
    pub slices: Slices,
    /// How many top positions to compare.
    pub k: usize,
    /// Compare the lists in rank order rather than as sets.
    pub ordered: bool,
}

impl Visitor for Scan {
    type Output = TopkScan;

    fn visit<T: ModeValue>(self, expected: &[T], actual: &[T]) -> TopkScan {
        let Scan { slices, k, ordered } = self;
        fold_ranges(
            slices.count(),
            slices.per_chunk(),
            |range| {
                let mut scratch = Vec::with_capacity(slices.len);
                let mut scan = TopkScan::default();
                for s in range {
                    let non_finite = (0..slices.len)
                        .map(|j| slices.element(s, j))
                        .find(|&i| non_finite_mismatch(expected[i], actual[i]));
                    let want = top_k(expected, &slices, s, k, &mut scratch);
                    let got = top_k(actual, &slices, s, k, &mut scratch);
                    let differs = first_difference(&want, &got, ordered);
                    let element = match (non_finite, differs) {
                        (Some(i), _) => i,
                        (None, Some(j)) => slices.element(s, j),
                        (None, None) => continue,
                    };
                    scan.disagreeing += 1;
                    scan.first.get_or_insert(Disagreement {
                        slice: s,
                        expected: want,
                        actual: got,
                        element,
                    });
                }
                scan
            },
            TopkScan::merge,
        )
    }
}

/// The best-ranked expected position that the actual list does not match, if any.
fn first_difference(want: &[usize], got: &[usize], ordered: bool) -> Option<usize> {
    if ordered {
        want.iter().zip(got).find(|(w, g)| w != g).map(|(&w, _)| w)
    } else {
        want.iter().find(|w| !got.contains(w)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(values: &[f32], k: usize) -> Vec<usize> {
        let slices = Slices::whole(values.len());
        top_k(values, &slices, 0, k, &mut Vec::new())
    }

    fn scan(
        expected: &[f32],
        actual: &[f32],
        shape: &[usize],
        k: usize,
        ordered: bool,
    ) -> TopkScan {
        let slices = Slices::along(shape, -1).unwrap();
        Scan { slices, k, ordered }.visit(expected, actual)
    }

    #[test]
    fn top_k_ranks_by_value_then_lower_index() {
        assert_eq!(top(&[0.1, 0.9, 0.5, 0.7], 1), [1]);
        assert_eq!(top(&[0.1, 0.9, 0.5, 0.7], 3), [1, 3, 2]);
        assert_eq!(top(&[0.1, 0.9, 0.5, 0.7], 4), [1, 3, 2, 0]);
        // Ties: the lower index ranks first.
        assert_eq!(top(&[1.0, 2.0, 2.0, 2.0], 2), [1, 2]);
        assert_eq!(top(&[3.0, 3.0, 3.0], 1), [0]);
        // -0.0 and +0.0 tie.
        assert_eq!(top(&[-1.0, 0.0, -0.0], 1), [1]);
        assert_eq!(top(&[-1.0, -0.0, 0.0], 1), [1]);
        // NaN ranks above +Inf; negative infinities rank last.
        assert_eq!(top(&[f32::INFINITY, f32::NAN, 1.0], 2), [1, 0]);
        assert_eq!(top(&[f32::NEG_INFINITY, -1e30], 1), [1]);
    }

    #[test]
    fn integers_rank_exactly_beyond_2_pow_53() {
        let big = 1i64 << 53;
        let values = [big, big + 1, big];
        let slices = Slices::whole(3);
        assert_eq!(top_k(&values, &slices, 0, 1, &mut Vec::new()), [1]);
    }

    #[test]
    fn agreeing_argmax_passes_whatever_the_values() {
        let expected = [0.1, 0.9, 0.5, /**/ 3.0, 1.0, 2.0];
        let actual = [0.0, 0.6, 0.59, /**/ 9.0, -5.0, 8.9];
        assert_eq!(
            scan(&expected, &actual, &[2, 3], 1, false),
            TopkScan::default()
        );
    }

    #[test]
    fn a_swapped_argmax_is_the_first_disagreement() {
        let expected = [
            0.1, 0.9, 0.5, /**/ 3.0, 1.0, 2.0, /**/ 0.0, 1.0, 0.0,
        ];
        let actual = [
            0.1, 0.9, 0.5, /**/ 2.0, 1.0, 3.0, /**/ 1.0, 0.0, 0.0,
        ];
        let s = scan(&expected, &actual, &[3, 3], 1, false);
        assert_eq!(s.disagreeing, 2);
        assert_eq!(
            s.first,
            Some(Disagreement {
                slice: 1,
                expected: vec![0],
                actual: vec![2],
                element: 3,
            })
        );
    }

    #[test]
    fn ties_can_flip_the_argmax() {
        // Expected ties at positions 0 and 1 (0 wins); a tiny increase at 1 wins it.
        let s = scan(&[1.0, 1.0, 0.0], &[1.0, 1.000_001, 0.0], &[3], 1, false);
        assert_eq!(s.disagreeing, 1);
        // ... but the top-2 set is the same.
        let s2 = scan(&[1.0, 1.0, 0.0], &[1.0, 1.000_001, 0.0], &[3], 2, false);
        assert_eq!(s2.disagreeing, 0);
    }

    #[test]
    fn ordered_compares_rank_order_unordered_compares_sets() {
        let expected = [0.9, 0.8, 0.1, 0.0];
        let actual = [0.8, 0.9, 0.1, 0.0];
        assert_eq!(scan(&expected, &actual, &[4], 2, false).disagreeing, 0);
        let ordered = scan(&expected, &actual, &[4], 2, true);
        assert_eq!(ordered.disagreeing, 1);
        let first = ordered.first.unwrap();
        assert_eq!(
            (first.expected, first.actual, first.element),
            (vec![0, 1], vec![1, 0], 0)
        );
        // A set that differs: the best-ranked missing expected position is named.
        let other = [0.9, 0.0, 0.8, 0.1];
        let set = scan(&expected, &other, &[4], 2, false);
        assert_eq!(set.first.unwrap().element, 1);
    }

    #[test]
    fn a_nan_mismatch_disagrees_even_off_the_top() {
        let expected = [0.9, 0.1, 0.0];
        let actual = [0.9, 0.1, f32::NEG_INFINITY];
        let s = scan(&expected, &actual, &[3], 1, false);
        assert_eq!(s.disagreeing, 1);
        assert_eq!(s.first.unwrap().element, 2);
        let both_nan = [0.9, 0.1, f32::NAN];
        assert_eq!(scan(&both_nan, &both_nan, &[3], 1, false).disagreeing, 0);
    }

    #[test]
    fn slices_along_a_middle_axis() {
        // Shape [2, 3, 2], axis 1: slice s = (outer, inner) holds 3 values 2 apart.
        let expected: Vec<f32> = vec![0.0, 5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 0.0, 8.0, 1.0, 7.0, 2.0];
        let mut actual = expected.clone();
        actual[10] = 9.5; // [1, 2, 0]: slice 2 now peaks at position 2, not 0
        let slices = Slices::along(&[2, 3, 2], 1).unwrap();
        let s = Scan {
            slices,
            k: 1,
            ordered: false,
        }
        .visit(&expected, &actual);
        assert_eq!(s.disagreeing, 1);
        let first = s.first.unwrap();
        assert_eq!(
            (first.slice, first.expected, first.actual, first.element),
            (2, vec![0], vec![2], 6)
        );
    }

    #[test]
    fn many_slices_in_parallel_match_one_at_a_time() {
        let (rows, len) = (40_000, 10);
        let expected: Vec<f32> = (0..rows * len)
            .map(|i| ((i * 7919) % 1009) as f32)
            .collect();
        let mut actual = expected.clone();
        for row in (0..rows).step_by(997) {
            actual[row * len..(row + 1) * len].reverse();
        }
        let s = scan(&expected, &actual, &[rows, len], 3, false);
        let slices = Slices::along(&[rows, len], 1).unwrap();
        let mut scratch = Vec::new();
        let mut want = 0;
        let mut first = None;
        for row in 0..rows {
            let w = top_k(&expected, &slices, row, 3, &mut scratch);
            let mut g = top_k(&actual, &slices, row, 3, &mut scratch);
            g.sort_unstable();
            let mut w2 = w.clone();
            w2.sort_unstable();
            if w2 != g {
                want += 1;
                first.get_or_insert(row);
            }
        }
        assert!(want > 0);
        assert_eq!(s.disagreeing, want);
        assert_eq!(s.first.map(|d| d.slice), first);
    }
}
