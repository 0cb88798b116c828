//! The fused per-element update for finite pairs, kept in `LANES` independent
//! accumulators so that the update of a group of `LANES` elements compiles to SIMD.
//!
//! Contract: element `i` of a scanned range goes to lane `i % LANES`, in increasing index
//! order, so sums are accumulated in an order fixed by the data layout alone and a lane
//! keeps the lowest index on ties. [`Lanes::finish`] folds the lanes in lane order.
//!
//! Two kinds of state:
//! - [`Sums`] (hot): mismatch count and the sums behind mean abs error and cosine,
//!   updated for every element with branch-free arithmetic;
//! - [`Refined`] (cold): max abs and max relative error and the worst element (divisions
//!   and selects). The group update in [`Lanes::add_slices`] refines a group, out of line,
//!   only when some element in it passes a conservative prefilter (comparisons against
//!   the current maxima, read-only in the hot loop), which after the first few groups is
//!   rare. An element the prefilter skips could not have changed the refined state, so a
//!   group update gives exactly the result of refining every element
//!   ([`Lanes::add_float`]); the tests check this against a sequential reference.

use super::stats::{FiniteStats, Worst};
use super::tolerance::Tolerance;
use half::{bf16, f16};

/// Number of independent accumulators: one AVX-512 register or two AVX2 registers of f64.
/// Fixed for every CPU, so results are bit-identical across machines.
pub(super) const LANES: usize = 8;

/// How far below a running maximum the prefilter floor sits: far more than the rounding
/// of one product (2^-52), so the prefilter never skips an element that would raise the
/// maximum (exact for products in the normal f64 range).
const FLOOR_MARGIN: f64 = 1.0 - 1e-12;

/// Float types as f64, exactly (every float type parity handles fits in f64).
pub(super) trait Widen: Copy {
    /// The value as f64.
    fn widen(self) -> f64;
}

impl Widen for f32 {
    #[inline(always)]
    fn widen(self) -> f64 {
        f64::from(self)
    }
}

impl Widen for f64 {
    #[inline(always)]
    fn widen(self) -> f64 {
        self
    }
}

impl Widen for f16 {
    #[inline(always)]
    fn widen(self) -> f64 {
        self.to_f64()
    }
}

impl Widen for bf16 {
    #[inline(always)]
    fn widen(self) -> f64 {
        self.to_f64()
    }
}

/// Per-lane running statistics of finite element pairs.
pub(super) struct Lanes {
    sums: Sums,
    refined: Refined,
}

impl Lanes {
    /// Accumulators that have seen nothing.
    pub(super) fn new() -> Self {
        Lanes {
            sums: Sums::new(),
            refined: Refined::new(),
        }
    }

    /// Adds equally long slices of finite pairs, the first at flat index `base`: groups
    /// of `LANES` elements go lane by lane, so the update of a group vectorises. The
    /// sums live in a local copy during the loop, which the compiler keeps in registers.
    #[inline(always)]
    pub(super) fn add_slices<T: Widen>(
        &mut self,
        expected: &[T],
        actual: &[T],
        base: u64,
        tol: Tolerance,
    ) {
        let (expected_groups, expected_rest) = expected.as_chunks::<LANES>();
        let (actual_groups, actual_rest) = actual.as_chunks::<LANES>();
        let mut sums = self.sums;
        let mut index = base;
        for (e, a) in expected_groups.iter().zip(actual_groups) {
            let mut suspicious = false;
            for lane in 0..LANES {
                let (e, a) = (e[lane].widen(), a[lane].widen());
                let (abs, magnitude) = ((a - e).abs(), e.abs());
                let allowed = tol.allowed(magnitude);
                sums.add(lane, e, a, abs, allowed);
                suspicious |= self.refined.may_change(lane, abs, magnitude, allowed);
            }
            if suspicious {
                self.refined.refine_group(e, a, index, tol);
            }
            index += LANES as u64;
        }
        self.sums = sums;
        for (lane, (e, a)) in expected_rest.iter().zip(actual_rest).enumerate() {
            self.add_float(lane, e.widen(), a.widen(), index + lane as u64, tol);
        }
    }

    /// Adds one finite float pair to `lane`.
    #[inline(always)]
    pub(super) fn add_float(
        &mut self,
        lane: usize,
        expected: f64,
        actual: f64,
        index: u64,
        tol: Tolerance,
    ) {
        let abs = (actual - expected).abs();
        let magnitude = expected.abs();
        let allowed = tol.allowed(magnitude);
        self.sums.add(lane, expected, actual, abs, allowed);
        self.refined.refine(lane, abs, magnitude, allowed, index);
    }

    /// Adds one element known only by its absolute error `abs` against a reference of
    /// magnitude `magnitude` (exact dtypes): the mismatch count and the refined state,
    /// not the float sums.
    #[inline(always)]
    pub(super) fn add_error(
        &mut self,
        lane: usize,
        abs: f64,
        magnitude: f64,
        index: u64,
        tol: Tolerance,
    ) {
        let allowed = tol.allowed(magnitude);
        self.sums.mismatched[lane] += u64::from(abs > allowed);
        self.refined.refine(lane, abs, magnitude, allowed, index);
    }

    /// True when every running sum of absolute errors is finite. A non-finite input
    /// makes its `|a - e|` NaN or +inf, which sticks in the sum, so this tells a fast
    /// scan whether it met a NaN or Inf and must be redone by the careful path.
    pub(super) fn sums_are_finite(&self) -> bool {
        self.sums.abs.iter().all(|s| s.is_finite())
    }

    /// Folds the lanes, in lane order, into one set of statistics.
    pub(super) fn finish(&self) -> FiniteStats {
        let (sums, refined) = (&self.sums, &self.refined);
        let mut stats = FiniteStats::default();
        for lane in 0..LANES {
            stats.mismatched += sums.mismatched[lane];
            stats.sum_abs += sums.abs[lane];
            stats.dot += sums.dot[lane];
            stats.sum_sq_actual += sums.sq_actual[lane];
            stats.sum_sq_expected += sums.sq_expected[lane];
            stats.max_abs = stats.max_abs.max(refined.max_abs[lane]);
            stats.max_rel = stats.max_rel.max(refined.max_rel[lane]);
            if refined.worst_abs[lane] > 0.0 {
                let candidate = Worst {
                    excess: refined.worst_excess[lane],
                    abs: refined.worst_abs[lane],
                    index: refined.worst_index[lane],
                };
                stats.worst = Worst::pick(stats.worst, Some(candidate));
            }
        }
        stats
    }
}

/// The hot accumulators, touched by every element.
#[derive(Clone, Copy)]
struct Sums {
    mismatched: [u64; LANES],
    abs: [f64; LANES],
    dot: [f64; LANES],
    sq_actual: [f64; LANES],
    sq_expected: [f64; LANES],
}

impl Sums {
    fn new() -> Self {
        Sums {
            mismatched: [0; LANES],
            abs: [0.0; LANES],
            dot: [0.0; LANES],
            sq_actual: [0.0; LANES],
            sq_expected: [0.0; LANES],
        }
    }

    #[inline(always)]
    fn add(&mut self, lane: usize, expected: f64, actual: f64, abs: f64, allowed: f64) {
        self.mismatched[lane] += u64::from(abs > allowed);
        self.abs[lane] += abs;
        self.dot[lane] += actual * expected;
        self.sq_actual[lane] += actual * actual;
        self.sq_expected[lane] += expected * expected;
    }
}

/// The running maxima and the worst element, updated only when they may change.
struct Refined {
    max_abs: [f64; LANES],
    max_rel: [f64; LANES],
    /// Worst element with a non-zero error: excess, abs error, index (abs 0: none yet).
    worst_excess: [f64; LANES],
    worst_abs: [f64; LANES],
    worst_index: [u64; LANES],
    /// Prefilter floors just below `worst_excess` and `max_rel`, capped at `f64::MAX` so
    /// that a floor times zero is zero, never NaN.
    excess_floor: [f64; LANES],
    rel_floor: [f64; LANES],
}

impl Refined {
    fn new() -> Self {
        Refined {
            max_abs: [0.0; LANES],
            max_rel: [0.0; LANES],
            worst_excess: [0.0; LANES],
            worst_abs: [0.0; LANES],
            worst_index: [0; LANES],
            excess_floor: [0.0; LANES],
            rel_floor: [0.0; LANES],
        }
    }

    /// Prefilter: false only when `refine` would leave the lane unchanged.
    #[inline(always)]
    fn may_change(&self, lane: usize, abs: f64, magnitude: f64, allowed: f64) -> bool {
        let abs_candidate = abs > self.max_abs[lane];
        let excess_candidate = (abs > 0.0) & (abs >= self.excess_floor[lane] * allowed);
        let rel_candidate = (magnitude > 0.0) & (abs > self.rel_floor[lane] * magnitude);
        abs_candidate | excess_candidate | rel_candidate
    }

    /// Refines with every element of a group. Out of line and marked cold so that the
    /// hot loop keeps its accumulators in registers.
    #[cold]
    #[inline(never)]
    fn refine_group<T: Widen>(
        &mut self,
        expected: &[T; LANES],
        actual: &[T; LANES],
        index: u64,
        tol: Tolerance,
    ) {
        for lane in 0..LANES {
            let (e, a) = (expected[lane].widen(), actual[lane].widen());
            let (abs, magnitude) = ((a - e).abs(), e.abs());
            let at = index + lane as u64;
            self.refine(lane, abs, magnitude, tol.allowed(magnitude), at);
        }
    }

    /// Max abs error, max relative error and worst element, exactly.
    ///
    /// Relative error skips references equal to zero (it would be infinite or 0/0); such
    /// elements still count through `atol`. The excess `abs / allowed` of an element with
    /// zero allowance (`atol = 0` and `rtol * |e| = 0`) is +inf; ties in excess go to the
    /// larger abs error, then (by scan order) to the lower index. Elements without error
    /// are never the worst (see [`Summary::worst_index`](super::stats::Summary)).
    #[inline(always)]
    fn refine(&mut self, lane: usize, abs: f64, magnitude: f64, allowed: f64, index: u64) {
        self.max_abs[lane] = self.max_abs[lane].max(abs);
        if magnitude > 0.0 {
            let rel = abs / magnitude;
            if rel > self.max_rel[lane] {
                self.max_rel[lane] = rel;
                self.rel_floor[lane] = floor_below(rel);
            }
        }
        if abs > 0.0 {
            let excess = abs / allowed;
            let current = self.worst_excess[lane];
            if excess > current || (excess == current && abs > self.worst_abs[lane]) {
                self.worst_excess[lane] = excess;
                self.worst_abs[lane] = abs;
                self.worst_index[lane] = index;
                self.excess_floor[lane] = floor_below(excess);
            }
        }
    }
}

/// The prefilter floor for a running maximum `max`.
#[inline(always)]
fn floor_below(max: f64) -> f64 {
    (max * FLOOR_MARGIN).min(f64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference behaviour: every element refined, no prefilter.
    fn refine_everything(expected: &[f64], actual: &[f64], tol: Tolerance) -> FiniteStats {
        let mut lanes = Lanes::new();
        for (i, (&e, &a)) in expected.iter().zip(actual).enumerate() {
            lanes.add_float(i % LANES, e, a, i as u64, tol);
        }
        lanes.finish()
    }

    fn grouped(expected: &[f64], actual: &[f64], tol: Tolerance) -> FiniteStats {
        let mut lanes = Lanes::new();
        lanes.add_slices(expected, actual, 0, tol);
        lanes.finish()
    }

    fn assert_prefilter_is_exact(expected: &[f64], actual: &[f64], tol: Tolerance) {
        let want = refine_everything(expected, actual, tol);
        assert_eq!(grouped(expected, actual, tol), want);
    }

    const F32_TOL: Tolerance = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };

    #[test]
    fn prefilter_skips_nothing_that_matters_on_noisy_data() {
        let n = 10_007;
        let expected: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1000) as f64 - 500.0).collect();
        let actual: Vec<f64> = expected
            .iter()
            .enumerate()
            .map(|(i, &e)| e * (1.0 + ((i * 104_729) % 997) as f64 * 1e-7))
            .collect();
        assert_prefilter_is_exact(&expected, &actual, F32_TOL);
    }

    #[test]
    fn prefilter_handles_growing_errors_and_exact_ties() {
        let n = 1_003;
        let expected = vec![1.0; n];
        let growing: Vec<f64> = (0..n).map(|i| 1.0 + i as f64 * 1e-9).collect();
        assert_prefilter_is_exact(&expected, &growing, F32_TOL);
        let tied: Vec<f64> = (0..n).map(|i| if i % 3 == 0 { 1.5 } else { 1.0 }).collect();
        assert_prefilter_is_exact(&expected, &tied, F32_TOL);
        assert_prefilter_is_exact(&expected, &expected, F32_TOL);
    }

    #[test]
    fn prefilter_handles_zero_allowance_and_zero_references() {
        let rtol_only = Tolerance {
            atol: 0.0,
            rtol: 1e-3,
        };
        let expected: Vec<f64> = (0..999)
            .map(|i| if i % 4 == 0 { 0.0 } else { 2.0 })
            .collect();
        let actual: Vec<f64> = (0..999)
            .map(|i| expected[i] + (i % 5) as f64 * 1e-4)
            .collect();
        assert_prefilter_is_exact(&expected, &actual, rtol_only);
        assert_prefilter_is_exact(&expected, &actual, Tolerance::EXACT);
        assert_prefilter_is_exact(&expected, &actual, F32_TOL);
    }

    #[test]
    fn worst_prefers_larger_excess_then_larger_error_then_lower_index() {
        let stats = refine_everything(
            &[0.0, 0.0, 0.0, 1.0],
            &[1.0, 3.0, 3.0, 1.0],
            Tolerance::EXACT,
        );
        let worst = stats.worst.unwrap();
        assert_eq!(
            (worst.index, worst.abs, worst.excess),
            (1, 3.0, f64::INFINITY)
        );
        assert_eq!(stats.max_rel, 0.0);
    }
}
