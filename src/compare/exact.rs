//! Scan of integer and bool tensors. Errors are computed exactly in the integer domain
//! (`abs_diff`, so `i64`/`u64` values beyond 2^53 that differ by one still differ) and
//! only then widened to f64 for the statistics. With the default tolerance of zero this
//! is exact equality; an explicit tolerance is honoured (e.g. off-by-one in quantised
//! outputs), applied to the exact error.

use super::lanes::{Lanes, LANES};
use super::parallel::scan_chunks;
use super::stats::Summary;
use super::tolerance::Tolerance;

/// Element types compared exactly.
pub(super) trait ExactElement: Copy + Sync {
    /// `|self - expected|`, computed without overflow or rounding, then widened.
    fn abs_error(self, expected: Self) -> f64;
    /// `|self|` widened to f64, the scale of the relative tolerance.
    fn magnitude(self) -> f64;
}

macro_rules! signed {
    ($($t:ty),*) => {$(
        impl ExactElement for $t {
            #[inline(always)]
            fn abs_error(self, expected: Self) -> f64 {
                self.abs_diff(expected) as f64
            }
            #[inline(always)]
            fn magnitude(self) -> f64 {
                self.unsigned_abs() as f64
            }
        }
    )*};
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl ExactElement for $t {
            #[inline(always)]
            fn abs_error(self, expected: Self) -> f64 {
                self.abs_diff(expected) as f64
            }
            #[inline(always)]
            fn magnitude(self) -> f64 {
                self as f64
            }
        }
    )*};
}

signed!(i8, i16, i32, i64);
unsigned!(u8, u16, u32, u64);

impl ExactElement for bool {
    #[inline(always)]
    fn abs_error(self, expected: Self) -> f64 {
        f64::from(u8::from(self != expected))
    }
    #[inline(always)]
    fn magnitude(self) -> f64 {
        f64::from(u8::from(self))
    }
}

/// Compares two equally long slices element by element, on all cores.
pub(super) fn scan<T: ExactElement>(expected: &[T], actual: &[T], tol: Tolerance) -> Summary {
    scan_chunks(expected.len(), |range| {
        let base = range.start as u64;
        scan_range(&expected[range.clone()], &actual[range], base, tol)
    })
}

fn scan_range<T: ExactElement>(expected: &[T], actual: &[T], base: u64, tol: Tolerance) -> Summary {
    let mut lanes = Lanes::new();
    for (i, (&e, &a)) in expected.iter().zip(actual).enumerate() {
        lanes.add_error(
            i % LANES,
            a.abs_error(e),
            e.magnitude(),
            base + i as u64,
            tol,
        );
    }
    Summary {
        elements: expected.len() as u64,
        finite: lanes.finish(),
        non_finite: Default::default(),
    }
}
