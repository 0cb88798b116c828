//! Element access for the comparison modes other than allclose (`ulp`, `cosine`,
//! `topk`): every dtype seen as an f64 and as an integer *order key*.
//!
//! The order key of a float is its sign-magnitude bit pattern read as a signed integer:
//! `+m` for a non-negative value whose bits without the sign are `m`, `-m` for a negative
//! one. Consecutive representable values of the type have consecutive keys, so the key
//! distance of two finite values is their distance in units in the last place (ULP) of
//! that type; `-0.0` and `+0.0` share the key 0; ±Inf sits one step beyond the largest
//! finite value. NaN (any payload, any sign) gets the largest key of all, which ranks it
//! above +Inf as `torch.topk` and `numpy.argmax` do. Integers and bools are their own key
//! (`false` 0, `true` 1), so one ULP of an integer is 1.

use crate::tensor::{DType, Tensor};
use half::{bf16, f16};

/// What the slower modes need to know about an element.
pub(super) trait ModeValue: Copy + Send + Sync {
    /// The value as f64 (exact for floats; integers beyond 2^53 are rounded).
    fn to_f64(self) -> f64;
    /// False only for a float NaN or ±Inf.
    fn is_finite_value(self) -> bool;
    /// The order key described in the module documentation.
    fn key(self) -> i128;
}

/// Order key of a float from its bits: `sign_bit` is the sign mask of the type.
#[inline(always)]
fn float_key(bits: u64, sign_bit: u64, is_nan: bool) -> i128 {
    if is_nan {
        return i128::MAX;
    }
    let magnitude = i128::from(bits & !sign_bit);
    if bits & sign_bit != 0 {
        -magnitude
    } else {
        magnitude
    }
}

macro_rules! float_value {
    ($t:ty, $sign:expr, $to_f64:expr, $bits:expr) => {
        impl ModeValue for $t {
            #[inline(always)]
            fn to_f64(self) -> f64 {
                $to_f64(self)
            }
            #[inline(always)]
            fn is_finite_value(self) -> bool {
                self.is_finite()
            }
            #[inline(always)]
            fn key(self) -> i128 {
                float_key(u64::from($bits(self)), $sign, self.is_nan())
            }
        }
    };
}

float_value!(f64, 1 << 63, |v: f64| v, f64::to_bits);
float_value!(f32, 1 << 31, f64::from, f32::to_bits);
float_value!(f16, 1 << 15, f16::to_f64, f16::to_bits);
float_value!(bf16, 1 << 15, bf16::to_f64, bf16::to_bits);

macro_rules! integer_value {
    ($($t:ty),*) => {$(
        impl ModeValue for $t {
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn is_finite_value(self) -> bool {
                true
            }
            #[inline(always)]
            fn key(self) -> i128 {
                i128::from(self)
            }
        }
    )*};
}

integer_value!(i8, i16, i32, i64, u8, u16, u32, u64);

impl ModeValue for bool {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(u8::from(self))
    }
    #[inline(always)]
    fn is_finite_value(self) -> bool {
        true
    }
    #[inline(always)]
    fn key(self) -> i128 {
        i128::from(self)
    }
}

/// Whether a pair breaks the NaN/Inf rule shared by every mode: NaN matches only NaN,
/// ±Inf only the same Inf, and a finite value only a finite value.
#[inline(always)]
pub(super) fn non_finite_mismatch<T: ModeValue>(expected: T, actual: T) -> bool {
    if expected.is_finite_value() && actual.is_finite_value() {
        return false;
    }
    let (e, a) = (expected.to_f64(), actual.to_f64());
    let matched = (e.is_nan() && a.is_nan()) || (e.is_infinite() && a == e);
    !matched
}

/// A computation over two equally long element slices of one type, generic over it.
pub(super) trait Visitor {
    /// What the computation returns.
    type Output;
    /// Runs on the typed elements.
    fn visit<T: ModeValue>(self, expected: &[T], actual: &[T]) -> Self::Output;
}

/// Runs `visitor` on the elements of two tensors of the same dtype; `None` when the
/// dtypes differ (callers check layout first).
pub(super) fn visit<V: Visitor>(
    expected: &Tensor,
    actual: &Tensor,
    visitor: V,
) -> Option<V::Output> {
    fn typed<T: ModeValue + crate::tensor::Element, V: Visitor>(
        e: &Tensor,
        a: &Tensor,
        visitor: V,
    ) -> Option<V::Output> {
        Some(visitor.visit::<T>(&e.values::<T>()?, &a.values::<T>()?))
    }
    match expected.dtype() {
        DType::F32 => typed::<f32, V>(expected, actual, visitor),
        DType::F64 => typed::<f64, V>(expected, actual, visitor),
        DType::F16 => typed::<f16, V>(expected, actual, visitor),
        DType::BF16 => typed::<bf16, V>(expected, actual, visitor),
        DType::I8 => typed::<i8, V>(expected, actual, visitor),
        DType::I16 => typed::<i16, V>(expected, actual, visitor),
        DType::I32 => typed::<i32, V>(expected, actual, visitor),
        DType::I64 => typed::<i64, V>(expected, actual, visitor),
        DType::U8 => typed::<u8, V>(expected, actual, visitor),
        DType::U16 => typed::<u16, V>(expected, actual, visitor),
        DType::U32 => typed::<u32, V>(expected, actual, visitor),
        DType::U64 => typed::<u64, V>(expected, actual, visitor),
        DType::Bool => Some(visitor.visit::<bool>(expected.bools()?, actual.bools()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_keys_are_ordered_and_zero_is_signless() {
        let values = [
            f32::NEG_INFINITY,
            -f32::MAX,
            -1.0,
            -f32::MIN_POSITIVE,
            -1e-45,
            0.0,
            1e-45,
            f32::MIN_POSITIVE,
            1.0,
            f32::MAX,
            f32::INFINITY,
        ];
        for pair in values.windows(2) {
            assert!(pair[0].key() < pair[1].key(), "{pair:?}");
        }
        assert_eq!((-0.0f32).key(), 0.0f32.key());
        assert_eq!(f32::NAN.key(), i128::MAX);
        assert_eq!((-f32::NAN).key(), i128::MAX);
        assert_eq!(f32::MAX.key() + 1, f32::INFINITY.key());
    }

    #[test]
    fn non_finite_rule() {
        assert!(!non_finite_mismatch(f32::NAN, f32::NAN));
        assert!(!non_finite_mismatch(f32::INFINITY, f32::INFINITY));
        assert!(non_finite_mismatch(f32::INFINITY, f32::NEG_INFINITY));
        assert!(non_finite_mismatch(1.0f32, f32::NAN));
        assert!(non_finite_mismatch(f32::NAN, 1.0f32));
        assert!(!non_finite_mismatch(1.0f32, 2.0));
        assert!(!non_finite_mismatch(3u8, 4));
    }
}
