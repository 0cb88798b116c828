//! `ulp` mode: an element passes when the actual value is at most `max_ulp` units in the
//! last place away from the expected one, counted in the expected's dtype (f16, bf16,
//! f32 or f64; both sides have that dtype). The distance is the number of representable
//! values stepped over, so `1.0` against the next float up is 1, `-0.0` against `+0.0`
//! is 0, and the smallest positive subnormal against the smallest negative one is 2.
//! Integers and bools count one ULP per unit (`|a - e|`, exactly).
//!
//! NaN and Inf follow the rule of every mode (NaN matches only NaN, ±Inf only the same
//! Inf); such pairs are left to the NaN/Inf accounting and excluded from `max_ulp`.

use super::parallel::fold_ranges;
use super::value::{ModeValue, Visitor};

/// Elements per parallel work item.
const CHUNK: usize = super::parallel::CHUNK;

/// ULP distance of two finite values of one type (see the module documentation);
/// saturates at `u64::MAX`, which no pair of parity's dtypes reaches.
#[inline(always)]
pub(super) fn distance<T: ModeValue>(expected: T, actual: T) -> u64 {
    let d = expected.key().abs_diff(actual.key());
    u64::try_from(d).unwrap_or(u64::MAX)
}

/// What an ULP scan finds among the pairs where both values are finite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct UlpScan {
    /// Finite pairs further apart than the limit.
    pub over_limit: u64,
    /// Largest distance (0 when nothing differs).
    pub max: u64,
    /// Flat index of the first pair at distance `max`, when `max > 0`.
    pub at: Option<usize>,
}

impl UlpScan {
    fn merge(self, later: UlpScan) -> UlpScan {
        let (max, at) = if later.max > self.max {
            (later.max, later.at)
        } else {
            (self.max, self.at)
        };
        UlpScan {
            over_limit: self.over_limit + later.over_limit,
            max,
            at,
        }
    }
}

/// Scans two tensors' elements against `limit`, on all cores, deterministically.
pub(super) struct Scan {
    /// The largest distance that passes.
    pub limit: u64,
}

impl Visitor for Scan {
    type Output = UlpScan;

    fn visit<T: ModeValue>(self, expected: &[T], actual: &[T]) -> UlpScan {
        let limit = self.limit;
        fold_ranges(
            expected.len(),
            CHUNK,
            |range| {
                let mut scan = UlpScan::default();
                for i in range {
                    let (e, a) = (expected[i], actual[i]);
                    if !(e.is_finite_value() && a.is_finite_value()) {
                        continue;
                    }
                    let d = distance(e, a);
                    scan.over_limit += u64::from(d > limit);
                    if d > scan.max {
                        scan.max = d;
                        scan.at = Some(i);
                    }
                }
                scan
            },
            UlpScan::merge,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::{bf16, f16};

    #[test]
    fn one_step_up_is_one_ulp_in_every_float_type() {
        assert_eq!(distance(1.0f64, f64::from_bits(1.0f64.to_bits() + 1)), 1);
        assert_eq!(distance(1.0f32, f32::from_bits(1.0f32.to_bits() + 1)), 1);
        let one16 = f16::ONE;
        assert_eq!(distance(one16, f16::from_bits(one16.to_bits() + 1)), 1);
        let one_b = bf16::ONE;
        assert_eq!(distance(one_b, bf16::from_bits(one_b.to_bits() + 1)), 1);
        // One step below 1.0 is half the size of one step above, still 1 ULP.
        assert_eq!(distance(1.0f32, f32::from_bits(1.0f32.to_bits() - 1)), 1);
        // 1 + eps is 1 ulp in its own type: the dtype decides the unit.
        assert_eq!(distance(1.0f32, 1.0 + f32::EPSILON), 1);
        assert_eq!(distance(1.0f64, 1.0 + f64::EPSILON), 1);
        assert_eq!(distance(f16::ONE, f16::ONE + f16::EPSILON), 1);
        assert_eq!(distance(bf16::ONE, bf16::ONE + bf16::EPSILON), 1);
        // bf16 has 7 mantissa bits: 1.0 to 2.0 is 128 steps; f16 has 10: 1024.
        assert_eq!(distance(bf16::ONE, bf16::from_f32(2.0)), 128);
        assert_eq!(distance(f16::ONE, f16::from_f32(2.0)), 1024);
        assert_eq!(distance(1.0f32, 2.0), 1 << 23);
    }

    #[test]
    fn distances_across_zero() {
        assert_eq!(distance(-0.0f32, 0.0), 0);
        assert_eq!(distance(0.0f64, -0.0), 0);
        assert_eq!(distance(f16::NEG_ZERO, f16::ZERO), 0);
        assert_eq!(distance(bf16::NEG_ZERO, bf16::ZERO), 0);
        let tiny = f32::from_bits(1); // smallest positive subnormal
        assert_eq!(distance(-tiny, tiny), 2);
        assert_eq!(distance(0.0f32, tiny), 1);
        assert_eq!(distance(-0.0f32, tiny), 1);
        let tiny64 = f64::from_bits(1);
        assert_eq!(distance(-tiny64, tiny64), 2);
        // -1 to +1: both distances to zero added.
        let one = u64::from(1.0f32.to_bits());
        assert_eq!(distance(-1.0f32, 1.0), 2 * one);
        // The widest span of f64 fits u64.
        assert_eq!(distance(-f64::MAX, f64::MAX), 2 * (f64::MAX.to_bits()));
        assert_eq!(distance(f64::MAX, f64::INFINITY), 1);
    }

    #[test]
    fn integers_count_one_ulp_per_unit() {
        assert_eq!(distance(i64::MIN, i64::MAX), u64::MAX);
        assert_eq!(distance(u64::MAX, 0), u64::MAX);
        assert_eq!(distance(-3i8, 4), 7);
        assert_eq!(distance(true, false), 1);
        assert_eq!(distance((1u64 << 53) + 1, 1u64 << 53), 1);
    }

    #[test]
    fn scan_counts_over_limit_and_finds_the_first_largest() {
        let expected = [1.0f32, 2.0, 3.0, 4.0, f32::NAN, 5.0];
        let up = |v: f32, n: u32| f32::from_bits(v.to_bits() + n);
        let actual = [up(1.0, 1), up(2.0, 3), 3.0, up(4.0, 3), 1.0, f32::INFINITY];
        let scan = Scan { limit: 2 }.visit(&expected, &actual);
        assert_eq!(
            scan,
            UlpScan {
                over_limit: 2,
                max: 3,
                at: Some(1)
            }
        );
        let exact = Scan { limit: 0 }.visit(&expected[..3], &expected[..3]);
        assert_eq!(exact, UlpScan::default());
    }

    #[test]
    fn parallel_scan_is_deterministic_and_exact() {
        let n = 3 * CHUNK + 17;
        let expected: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() + 2.0).collect();
        let actual: Vec<f32> = expected
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let step = (i % 7) as i32 - 3;
                f32::from_bits((v.to_bits() as i32 + step) as u32)
            })
            .collect();
        let scan = Scan { limit: 2 }.visit(&expected, &actual);
        // Values in [1, 3], steps of -3..=3 bits: steps of ±3 (i % 7 == 0 or 6) exceed
        // the limit, and the first of them (index 0) is the first largest.
        let want_over = (0..n).filter(|i| i % 7 == 0 || i % 7 == 6).count() as u64;
        assert_eq!(
            scan,
            UlpScan {
                over_limit: want_over,
                max: 3,
                at: Some(0)
            }
        );
    }
}
