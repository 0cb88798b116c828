//! Scan of float tensors (f64, f32, f16, bf16), every element widened to f64.
//!
//! Each chunk first takes the fast path: one fused pass over the borrowed slices that
//! assumes every value is finite ([`Lanes::add_slices`], compiled for AVX-512 or AVX2
//! when the CPU has it). A NaN or Inf anywhere in the chunk shows up as a non-finite sum
//! of absolute errors; only then is the chunk scanned again by the careful path, which
//! classifies each non-finite pair (NaN matches only NaN, ±Inf only the same Inf) and
//! keeps such pairs out of the finite statistics. Both paths give finite pairs the same
//! per-lane treatment, so they agree exactly.

use super::lanes::{Lanes, Widen, LANES};
use super::parallel::scan_chunks;
use super::stats::{NonFinite, Summary};
use super::tolerance::Tolerance;
use crate::tensor::Element;
use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};

/// Elements of half types widened to f32 at a time (two L1-resident buffers).
const HALF_BLOCK: usize = 1024;

/// Float element types and how the fast path reads them.
pub(super) trait FloatElement: Element + Widen {
    /// Feeds `expected`/`actual` (flat indices from `base`) to `lanes`, assuming all
    /// values are finite.
    fn accumulate(lanes: &mut Lanes, expected: &[Self], actual: &[Self], base: u64, tol: Tolerance);
}

impl FloatElement for f32 {
    #[inline(always)]
    fn accumulate(
        lanes: &mut Lanes,
        expected: &[Self],
        actual: &[Self],
        base: u64,
        tol: Tolerance,
    ) {
        lanes.add_slices(expected, actual, base, tol);
    }
}

impl FloatElement for f64 {
    #[inline(always)]
    fn accumulate(
        lanes: &mut Lanes,
        expected: &[Self],
        actual: &[Self],
        base: u64,
        tol: Tolerance,
    ) {
        lanes.add_slices(expected, actual, base, tol);
    }
}

impl FloatElement for f16 {
    #[inline(always)]
    fn accumulate(
        lanes: &mut Lanes,
        expected: &[Self],
        actual: &[Self],
        base: u64,
        tol: Tolerance,
    ) {
        accumulate_half(lanes, expected, actual, base, tol);
    }
}

impl FloatElement for bf16 {
    #[inline(always)]
    fn accumulate(
        lanes: &mut Lanes,
        expected: &[Self],
        actual: &[Self],
        base: u64,
        tol: Tolerance,
    ) {
        accumulate_half(lanes, expected, actual, base, tol);
    }
}

/// Compares two equally long slices element by element, on all cores.
pub(super) fn scan<T: FloatElement>(expected: &[T], actual: &[T], tol: Tolerance) -> Summary {
    scan_chunks(expected.len(), |range| {
        let base = range.start as u64;
        scan_range(&expected[range.clone()], &actual[range], base, tol)
    })
}

/// One chunk: the fast path, or the careful path when the chunk holds a NaN or Inf.
fn scan_range<T: FloatElement>(expected: &[T], actual: &[T], base: u64, tol: Tolerance) -> Summary {
    let mut lanes = Lanes::new();
    accumulate_fast(&mut lanes, expected, actual, base, tol);
    if !lanes.sums_are_finite() {
        return scan_careful(expected, actual, base, tol);
    }
    Summary {
        elements: expected.len() as u64,
        finite: lanes.finish(),
        non_finite: NonFinite::default(),
    }
}

/// Element by element, sorting out non-finite pairs before they reach the lanes.
fn scan_careful<T: FloatElement>(
    expected: &[T],
    actual: &[T],
    base: u64,
    tol: Tolerance,
) -> Summary {
    let mut lanes = Lanes::new();
    let mut non_finite = NonFinite::default();
    for (i, (&e, &a)) in expected.iter().zip(actual).enumerate() {
        let (e, a) = (e.widen(), a.widen());
        let index = base + i as u64;
        if e.is_finite() && a.is_finite() {
            lanes.add_float(i % LANES, e, a, index, tol);
        } else {
            non_finite.record(e, a, index);
        }
    }
    Summary {
        elements: expected.len() as u64,
        finite: lanes.finish(),
        non_finite,
    }
}

/// The fast path, compiled for AVX-512 or AVX2 when this CPU has it and for the baseline
/// otherwise (the same code and the same floating-point operations, so the same results).
fn accumulate_fast<T: FloatElement>(
    lanes: &mut Lanes,
    expected: &[T],
    actual: &[T],
    base: u64,
    tol: Tolerance,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F, checked just above.
            unsafe { accumulate_avx512(lanes, expected, actual, base, tol) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            unsafe { accumulate_avx2(lanes, expected, actual, base, tol) };
            return;
        }
    }
    T::accumulate(lanes, expected, actual, base, tol);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn accumulate_avx512<T: FloatElement>(
    lanes: &mut Lanes,
    expected: &[T],
    actual: &[T],
    base: u64,
    tol: Tolerance,
) {
    T::accumulate(lanes, expected, actual, base, tol);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn accumulate_avx2<T: FloatElement>(
    lanes: &mut Lanes,
    expected: &[T],
    actual: &[T],
    base: u64,
    tol: Tolerance,
) {
    T::accumulate(lanes, expected, actual, base, tol);
}

/// Half types are widened to f32 a block at a time (F16C when available), then go
/// through the f32 fast path; widening f16/bf16 to f32 is exact.
#[inline(always)]
fn accumulate_half<T>(lanes: &mut Lanes, expected: &[T], actual: &[T], base: u64, tol: Tolerance)
where
    [T]: HalfFloatSliceExt,
{
    let mut expected32 = [0f32; HALF_BLOCK];
    let mut actual32 = [0f32; HALF_BLOCK];
    let blocks = expected.chunks(HALF_BLOCK).zip(actual.chunks(HALF_BLOCK));
    for (block, (e, a)) in blocks.enumerate() {
        let (e32, a32) = (&mut expected32[..e.len()], &mut actual32[..a.len()]);
        e.convert_to_f32_slice(e32);
        a.convert_to_f32_slice(a32);
        let block_base = base + (block * HALF_BLOCK) as u64;
        lanes.add_slices(e32, a32, block_base, tol);
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::super::stats::FiniteStats;
    use super::*;

    fn fast_path_result(run: impl Fn(&mut Lanes, &[f32], &[f32])) -> FiniteStats {
        let n = 3 * 1024 + 5;
        let expected: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 - 500.0).collect();
        let actual: Vec<f32> = expected
            .iter()
            .enumerate()
            .map(|(i, &e)| e * (1.0 + ((i * 104_729) % 997) as f32 * 1e-7) + 1e-6)
            .collect();
        let mut lanes = Lanes::new();
        run(&mut lanes, &expected, &actual);
        lanes.finish()
    }

    /// The instruction set changes speed, never results.
    #[test]
    fn every_instruction_set_gives_the_same_result() {
        let tol = Tolerance::default_for(crate::tensor::DType::F32);
        let baseline = fast_path_result(|l, e, a| f32::accumulate(l, e, a, 0, tol));
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 support checked just above.
            let avx2 = fast_path_result(|l, e, a| unsafe { accumulate_avx2(l, e, a, 0, tol) });
            assert_eq!(avx2, baseline);
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F support checked just above.
            let avx512 = fast_path_result(|l, e, a| unsafe { accumulate_avx512(l, e, a, 0, tol) });
            assert_eq!(avx512, baseline);
        }
    }
}
