//! Error histograms: how much of its tolerance each element of a float output used,
//! in decade bins, so a report shows at a glance whether a pass was close or comfortable
//! and whether a failure is one outlier or a shifted distribution.
//!
//! The "share of tolerance used" of a finite pair is `|a - e| / (atol + rtol * |e|)`,
//! widened to f64 as in [`compare`](super::compare). Bins: exactly 0, then `(0, 1e-6]`,
//! one per decade up to `(0.1, 1]`, then `(1, 10]`, `(10, 100]` and `> 100`; the last
//! three hold exactly the finite pairs allclose counts as mismatched. A difference
//! under a zero allowance goes to `> 100`. Pairs with a NaN or Inf on either side
//! (matching or not) are counted apart in `nonfinite`.
//!
//! This is a separate pass over the data, never part of `compare()`'s tuned scan; the
//! suite runner and `parity compare` call it for every float output compared with
//! equal shape and dtype. Bin membership is decided without dividing: share `> edge`
//! exactly when `|a - e| > edge * allowed`, so the boundary at 1 is the verdict's own
//! test. Chunks are counted in parallel and summed, so the result is deterministic.
//! Like `compare()`'s fast path it is compiled for AVX-512 or AVX2 when the CPU has it;
//! it is compute-bound (ten multiply-compares per element), about 1.3 to 1.5 times the
//! time of `compare()` on 16M f32 pairs (benches/compare.rs, 2 cores).

use super::lanes::Widen;
use super::parallel::{fold_ranges, CHUNK};
use super::tolerance::Tolerance;
use crate::tensor::{DType, Element, Tensor};
use half::{bf16, f16};
use serde::{Deserialize, Serialize};

/// Upper edges of the bins below the last: the first bin is share exactly 0, bin `i`
/// holds shares in `(EDGES[i-1], EDGES[i]]`, the last bin shares above `EDGES[9]`.
const EDGES: [f64; 10] = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0];

/// Number of bins: one per edge plus the open-ended last one.
const BINS: usize = EDGES.len() + 1;

/// Histogram of the share of tolerance used by the elements of one float output, as
/// written into `outputs[].error_histogram` of `parity.report/v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorHistogram {
    /// Upper bin edges in units of the allowance: `counts[0]` is share exactly 0,
    /// `counts[i]` shares in `(upper_edges[i-1], upper_edges[i]]`, and the one extra
    /// last count shares above the last edge. Written out so the JSON explains itself.
    pub upper_edges: Vec<f64>,
    /// Finite pairs per bin (one more than `upper_edges`).
    pub counts: Vec<u64>,
    /// Pairs with a NaN or Inf on either side, matching or not; in no bin.
    pub nonfinite: u64,
}

impl ErrorHistogram {
    /// Elements over the allowance (share above 1): the failing bins.
    pub fn failing(&self) -> u64 {
        self.upper_edges
            .iter()
            .zip(self.counts.iter().skip(1))
            .filter(|(&lower, _)| lower >= 1.0)
            .map(|(_, &c)| c)
            .sum()
    }
}

/// Per-range counts, merged by addition.
#[derive(Clone, Copy)]
struct Counts {
    bins: [u64; BINS],
    nonfinite: u64,
}

impl Counts {
    fn merge(mut self, other: Counts) -> Counts {
        for (a, b) in self.bins.iter_mut().zip(other.bins) {
            *a += b;
        }
        self.nonfinite += other.nonfinite;
        self
    }
}

/// The histogram of `actual` against `expected` under `tol`, or `None` when there is
/// none to draw: integer or bool outputs, or tensors whose dtype or shape differ.
pub fn error_histogram(
    expected: &Tensor,
    actual: &Tensor,
    tol: Tolerance,
) -> Option<ErrorHistogram> {
    if expected.dtype() != actual.dtype() || expected.shape() != actual.shape() {
        return None;
    }
    let counts = match expected.dtype() {
        DType::F32 => histogram_of::<f32>(expected, actual, tol)?,
        DType::F64 => histogram_of::<f64>(expected, actual, tol)?,
        DType::F16 => histogram_of::<f16>(expected, actual, tol)?,
        DType::BF16 => histogram_of::<bf16>(expected, actual, tol)?,
        _ => return None,
    };
    Some(ErrorHistogram {
        upper_edges: EDGES.to_vec(),
        counts: counts.bins.to_vec(),
        nonfinite: counts.nonfinite,
    })
}

fn histogram_of<T: Element + Widen>(e: &Tensor, a: &Tensor, tol: Tolerance) -> Option<Counts> {
    let (e, a) = (e.values::<T>()?, a.values::<T>()?);
    Some(fold_ranges(
        e.len(),
        CHUNK,
        |range| count_fast(&e[range.clone()], &a[range], tol),
        Counts::merge,
    ))
}

/// [`count`] compiled for AVX-512 or AVX2 when this CPU has it (the same operations,
/// so the same counts), for the baseline otherwise.
fn count_fast<T: Widen>(expected: &[T], actual: &[T], tol: Tolerance) -> Counts {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            return unsafe { count_avx512(expected, actual, tol) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { count_avx2(expected, actual, tol) };
        }
    }
    count(expected, actual, tol)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn count_avx512<T: Widen>(expected: &[T], actual: &[T], tol: Tolerance) -> Counts {
    count(expected, actual, tol)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn count_avx2<T: Widen>(expected: &[T], actual: &[T], tol: Tolerance) -> Counts {
    count(expected, actual, tol)
}

/// Counts one range of pairs. Branch-free so that it vectorises: for every edge, the
/// finite pairs whose error exceeds `edge * allowed` are counted (cumulative counts,
/// which shrink edge by edge), and the bins are their differences.
#[inline(always)]
fn count<T: Widen>(expected: &[T], actual: &[T], tol: Tolerance) -> Counts {
    let mut exceed = [0u64; EDGES.len()];
    let mut nonfinite = 0u64;
    for (e, a) in expected.iter().zip(actual) {
        let (e, a) = (e.widen(), a.widen());
        let finite = e.is_finite() & a.is_finite();
        // A NaN error exceeds no edge, which keeps non-finite pairs out of every bin.
        let diff = if finite { (a - e).abs() } else { f64::NAN };
        let allowed = tol.allowed(e.abs());
        nonfinite += u64::from(!finite);
        for (n, &edge) in exceed.iter_mut().zip(&EDGES) {
            *n += u64::from(diff > edge * allowed);
        }
    }
    let finite = expected.len() as u64 - nonfinite;
    let mut bins = [0; BINS];
    let mut above = finite;
    for (bin, &n) in bins.iter_mut().zip(&exceed) {
        // Never negative with a valid (non-negative) tolerance; saturate rather than
        // panic on a nonsensical one.
        *bin = above.saturating_sub(n);
        above = n;
    }
    bins[BINS - 1] = above;
    Counts { bins, nonfinite }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::compare;

    fn f32s(v: &[f32]) -> Tensor {
        Tensor::from_vec(vec![v.len()], v.to_vec()).unwrap()
    }

    const TOL: Tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };

    #[test]
    fn counts_each_decade_and_the_failing_element() {
        // allowed = 1e-5 + 1e-4 * 1 = 1.1e-4 for e = 1.
        let e = f32s(&[1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 2.0]);
        let a = f32s(&[
            1.0,        // 0: exactly 0
            1.0 + 1e-6, // share ~0.0095 -> (1e-3, 1e-2]
            1.0 + 5e-5, // share ~0.45 -> (0.1, 1]
            1.0 + 1e-3, // share ~9.1 -> (1, 10]: failing
            1.0 + 0.5,  // share ~4545 -> > 100
            5e-6,       // e = 0: allowed 1e-5, share 0.5 -> (0.1, 1]
            2.0 + 1e-5, // allowed 2.1e-4, share ~0.0476 -> (1e-2, 0.1]
        ]);
        let h = error_histogram(&e, &a, TOL).unwrap();
        assert_eq!(h.upper_edges, EDGES.to_vec());
        assert_eq!(h.counts, vec![1, 0, 0, 0, 0, 1, 1, 2, 1, 0, 1]);
        assert_eq!(h.nonfinite, 0);
        assert_eq!(h.failing(), 2);
        assert_eq!(h.failing(), compare(&e, &a, TOL).mismatched);
    }

    #[test]
    fn nonfinite_pairs_are_counted_apart() {
        let e = f32s(&[f32::NAN, f32::INFINITY, 1.0, 1.0, f32::NAN]);
        let a = f32s(&[f32::NAN, f32::INFINITY, f32::NAN, 1.0, 3.0]);
        let h = error_histogram(&e, &a, TOL).unwrap();
        assert_eq!(h.nonfinite, 4);
        assert_eq!(h.counts, vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn zero_allowance_puts_any_difference_in_the_last_bin() {
        let e = f32s(&[0.0, 0.0, 1.0]);
        let a = f32s(&[0.0, 1e-30, 1.0]);
        let h = error_histogram(&e, &a, Tolerance::EXACT).unwrap();
        assert_eq!(h.counts, vec![2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(h.failing(), 1);
    }

    #[test]
    fn f16_widens_exactly() {
        let tol = Tolerance::default_for(DType::F16); // allowed = 4e-3 + 2e-3 |e|
        let h16 = |v: &[f32]| {
            let v: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
            Tensor::from_vec(vec![v.len()], v).unwrap()
        };
        // f16 ulp at 1 is 2^-10 ~ 9.77e-4: share 9.77e-4 / 6e-3 ~ 0.163 -> (0.1, 1];
        // 1 + 8 ulps = 7.8e-3 -> share ~1.3 -> (1, 10]; 0 vs 1e-4 (f16 ~1.0002e-4) ->
        // share ~0.025 -> (1e-2, 0.1].
        let e = h16(&[1.0, 1.0, 0.0, 2.0]);
        let a = h16(&[1.0 + 1.0 / 1024.0, 1.0 + 8.0 / 1024.0, 1e-4, 2.0]);
        let h = error_histogram(&e, &a, tol).unwrap();
        assert_eq!(h.counts, vec![1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0]);
        assert_eq!(h.failing(), compare(&e, &a, tol).mismatched);
    }

    #[test]
    fn bf16_and_f64_are_binned_too() {
        let e = Tensor::from_vec(vec![2], vec![bf16::from_f32(1.0), bf16::ONE]).unwrap();
        let h = error_histogram(&e, &e, Tolerance::default_for(DType::BF16)).unwrap();
        assert_eq!(h.counts[0], 2);
        let e = Tensor::from_vec(vec![1], vec![1.0f64]).unwrap();
        let a = Tensor::from_vec(vec![1], vec![1.0f64 + 1e-12]).unwrap();
        let h = error_histogram(&e, &a, Tolerance::default_for(DType::F64)).unwrap();
        // allowed 1e-9 + 1e-7 = 1.01e-7; share ~9.9e-6 -> (1e-6, 1e-5].
        assert_eq!(h.counts, vec![0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn no_histogram_for_integers_or_mismatched_layouts() {
        let i = Tensor::from_vec(vec![2], vec![1i32, 2]).unwrap();
        assert!(error_histogram(&i, &i, Tolerance::EXACT).is_none());
        let b = Tensor::from_bools(vec![1], &[true]).unwrap();
        assert!(error_histogram(&b, &b, Tolerance::EXACT).is_none());
        let e = f32s(&[1.0, 2.0]);
        assert!(error_histogram(&e, &f32s(&[1.0]), TOL).is_none());
        let e64 = Tensor::from_vec(vec![2], vec![1.0f64, 2.0]).unwrap();
        assert!(error_histogram(&e, &e64, TOL).is_none());
    }

    #[test]
    fn chunked_counts_equal_one_pass() {
        let n = 3 * CHUNK + 17;
        let ev: Vec<f32> = (0..n).map(|i| (i % 97) as f32 * 0.1).collect();
        let av: Vec<f32> = ev
            .iter()
            .enumerate()
            .map(|(i, &v)| v + (i % 13) as f32 * 1e-5)
            .collect();
        let h = error_histogram(&f32s(&ev), &f32s(&av), TOL).unwrap();
        let single = count(&ev, &av, TOL);
        assert_eq!(h.counts, single.bins.to_vec());
        assert_eq!(h.counts.iter().sum::<u64>(), n as u64);
        assert_eq!(h.failing(), compare(&f32s(&ev), &f32s(&av), TOL).mismatched);
    }
}
