//! The values `parity fuzz` feeds a model: for each dtype, the edge cases where runtimes
//! differ or break (zeros, ±1, the dtype's extremes, the smallest normal and subnormal,
//! ±Inf, NaN, large magnitudes), plain random data, and a mix of both.

use crate::suite::manifest::InputRange;
use crate::suite::record::INT_HIGH;
use crate::tensor::random::SplitMix64;
use crate::tensor::{checked_numel, DType, Tensor, TensorError};
use half::{bf16, f16};

/// How one input tensor is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fill {
    /// All 0 (false).
    Zeros,
    /// All 1 (true).
    Ones,
    /// All -1 (the all-ones bit pattern, i.e. the maximum, for unsigned integers).
    NegOnes,
    /// The dtype's largest finite value.
    Max,
    /// The dtype's most negative finite value (0 for unsigned integers).
    Lowest,
    /// The smallest positive normal float (1 for integers).
    MinPositive,
    /// The smallest positive subnormal float.
    Subnormal,
    /// +Inf.
    PosInf,
    /// -Inf.
    NegInf,
    /// NaN.
    Nan,
    /// A large finite magnitude that overflows when squared or summed (1e20 in f32,
    /// 1e150 in f64, 1e4 in f16).
    Large,
    /// Minus [`Fill::Large`].
    NegLarge,
    /// Standard normal floats, integers in `[0, 10)`, fair bools (as `record --random`).
    Random,
    /// Random values with a quarter of the elements replaced by edge values.
    Mixed,
}

impl Fill {
    /// Every fill, for random cases to choose from.
    pub const ALL: [Fill; 14] = [
        Fill::Zeros,
        Fill::Ones,
        Fill::NegOnes,
        Fill::Max,
        Fill::Lowest,
        Fill::MinPositive,
        Fill::Subnormal,
        Fill::PosInf,
        Fill::NegInf,
        Fill::Nan,
        Fill::Large,
        Fill::NegLarge,
        Fill::Random,
        Fill::Mixed,
    ];

    /// The name used in case names and reports (`nan`, `pos-inf`).
    pub fn name(self) -> &'static str {
        match self {
            Fill::Zeros => "zeros",
            Fill::Ones => "ones",
            Fill::NegOnes => "neg-ones",
            Fill::Max => "max",
            Fill::Lowest => "lowest",
            Fill::MinPositive => "min-positive",
            Fill::Subnormal => "subnormal",
            Fill::PosInf => "pos-inf",
            Fill::NegInf => "neg-inf",
            Fill::Nan => "nan",
            Fill::Large => "large",
            Fill::NegLarge => "neg-large",
            Fill::Random => "random",
            Fill::Mixed => "mixed",
        }
    }

    /// Whether a float tensor of this fill holds only finite values.
    pub fn is_finite(self) -> bool {
        !matches!(self, Fill::PosInf | Fill::NegInf | Fill::Nan | Fill::Mixed)
    }
}

/// The edge values of a float dtype, as f64 (each exactly representable in the dtype).
struct FloatEdges {
    max: f64,
    min_positive: f64,
    subnormal: f64,
    large: f64,
}

fn float_edges(dtype: DType) -> FloatEdges {
    match dtype {
        DType::F64 => FloatEdges {
            max: f64::MAX,
            min_positive: f64::MIN_POSITIVE,
            subnormal: f64::from_bits(1),
            large: 1e150,
        },
        DType::F16 => FloatEdges {
            max: f16::MAX.to_f64(),
            min_positive: f16::MIN_POSITIVE.to_f64(),
            subnormal: f16::from_bits(1).to_f64(),
            large: 1e4,
        },
        DType::BF16 => FloatEdges {
            max: bf16::MAX.to_f64(),
            min_positive: bf16::MIN_POSITIVE.to_f64(),
            subnormal: bf16::from_bits(1).to_f64(),
            large: bf16::from_f64(1e20).to_f64(),
        },
        _ => FloatEdges {
            max: f32::MAX as f64,
            min_positive: f32::MIN_POSITIVE as f64,
            subnormal: f32::from_bits(1) as f64,
            large: 1e20,
        },
    }
}

/// One float element of `fill`; `rng` feeds the random ones.
fn float_value(fill: Fill, e: &FloatEdges, rng: &mut SplitMix64) -> f64 {
    match fill {
        Fill::Zeros => 0.0,
        Fill::Ones => 1.0,
        Fill::NegOnes => -1.0,
        Fill::Max => e.max,
        Fill::Lowest => -e.max,
        Fill::MinPositive => e.min_positive,
        Fill::Subnormal => e.subnormal,
        Fill::PosInf => f64::INFINITY,
        Fill::NegInf => f64::NEG_INFINITY,
        Fill::Nan => f64::NAN,
        Fill::Large => e.large,
        Fill::NegLarge => -e.large,
        Fill::Random => rng.normals(1)[0],
        Fill::Mixed => {
            if rng.next_u64().is_multiple_of(4) {
                let edge = Fill::ALL[(rng.next_u64() % 12) as usize];
                float_value(edge, e, rng)
            } else {
                rng.normals(1)[0]
            }
        }
    }
}

/// An integer element, before the cast to its dtype.
#[derive(Clone, Copy)]
enum IntValue {
    Zero,
    One,
    NegOne,
    Max,
    Min,
    Random(u64),
}

fn int_value(fill: Fill, rng: &mut SplitMix64) -> IntValue {
    match fill {
        Fill::Zeros => IntValue::Zero,
        Fill::Ones | Fill::MinPositive => IntValue::One,
        Fill::NegOnes => IntValue::NegOne,
        Fill::Max | Fill::Large => IntValue::Max,
        Fill::Lowest | Fill::NegLarge => IntValue::Min,
        Fill::Mixed => match rng.next_u64() % 8 {
            0 => IntValue::Max,
            1 => IntValue::Min,
            2 => IntValue::NegOne,
            _ => IntValue::Random(rng.next_u64() % INT_HIGH),
        },
        // No integer has Inf, NaN or subnormals: plain random values instead.
        Fill::Subnormal | Fill::PosInf | Fill::NegInf | Fill::Nan | Fill::Random => {
            IntValue::Random(rng.next_u64() % INT_HIGH)
        }
    }
}

fn bool_value(fill: Fill, rng: &mut SplitMix64) -> bool {
    match fill {
        Fill::Zeros | Fill::Lowest => false,
        Fill::Ones | Fill::NegOnes | Fill::Max => true,
        _ => rng.next_u64() >> 63 == 1,
    }
}

/// A uniform draw in `[0, 1)`.
fn unit(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// Keeps a finite value inside the input's declared range (`[inputs.NAME]` min/max);
/// NaN and ±Inf pass through (the plan decides whether they are allowed at all).
fn clamp(v: f64, range: &InputRange) -> f64 {
    if !v.is_finite() {
        return v;
    }
    let v = range.min.map_or(v, |lo| v.max(lo));
    range.max.map_or(v, |hi| v.min(hi))
}

/// Both bounds of a range, when both are finite: where random values are drawn.
fn finite_bounds(range: Option<&InputRange>) -> Option<(f64, f64)> {
    let r = range?;
    let (lo, hi) = (r.min?, r.max?);
    (lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// A tensor of `dtype` and `shape` filled as `fill` says, its values kept inside
/// `range` when the input declares one: edge values are clamped to its bounds (so `max`
/// is the range's max) and random values are drawn uniformly between finite bounds.
pub fn tensor(
    dtype: DType,
    shape: Vec<usize>,
    fill: Fill,
    range: Option<&InputRange>,
    rng: &mut SplitMix64,
) -> Result<Tensor, TensorError> {
    let n = checked_numel(&shape).ok_or_else(|| TensorError::Overflow(shape.clone()))?;
    let edges = float_edges(dtype);
    let bounds = finite_bounds(range);
    let floats = (0..n).map(|_| match (fill, bounds) {
        (Fill::Random, Some((lo, hi))) => lo + unit(rng) * (hi - lo),
        _ => {
            let v = float_value(fill, &edges, &mut *rng);
            range.map_or(v, |r| clamp(v, r))
        }
    });
    if let Some(t) = Tensor::from_f64_values(dtype, shape.clone(), floats) {
        return t;
    }
    // Integer bounds: the whole numbers inside the range, in i128 so that every dtype's
    // extremes and the range's fit.
    let int_bounds = range.map(|r| {
        let lo = r.min.map_or(i128::MIN, |v| v.ceil() as i128);
        let hi = r.max.map_or(i128::MAX, |v| v.floor() as i128);
        (lo, hi)
    });
    macro_rules! ints {
        ($t:ty) => {{
            let (lo, hi) = int_bounds.unwrap_or((i128::MIN, i128::MAX));
            let (lo, hi) = (lo.max(<$t>::MIN as i128), hi.min(<$t>::MAX as i128));
            let draw = |rng: &mut SplitMix64| {
                let span = (hi - lo + 1) as u128;
                lo + (u128::from(rng.next_u64()) % span) as i128
            };
            let values = (0..n)
                .map(|_| {
                    let v: i128 = match (fill, int_bounds) {
                        (Fill::Random, Some((a, b))) if a > i128::MIN && b < i128::MAX => {
                            draw(&mut *rng)
                        }
                        _ => match int_value(fill, rng) {
                            IntValue::Zero => 0,
                            IntValue::One => 1,
                            IntValue::NegOne => (-1i64) as $t as i128,
                            IntValue::Max => <$t>::MAX as i128,
                            IntValue::Min => <$t>::MIN as i128,
                            IntValue::Random(v) => v as $t as i128,
                        },
                    };
                    v.clamp(lo, hi.max(lo)) as $t
                })
                .collect();
            Tensor::from_vec::<$t>(shape, values)
        }};
    }
    match dtype {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
            unreachable!("float tensors are built above")
        }
        DType::I8 => ints!(i8),
        DType::I16 => ints!(i16),
        DType::I32 => ints!(i32),
        DType::I64 => ints!(i64),
        DType::U8 => ints!(u8),
        DType::U16 => ints!(u16),
        DType::U32 => ints!(u32),
        DType::U64 => ints!(u64),
        DType::Bool => {
            let values: Vec<bool> = (0..n).map(|_| bool_value(fill, rng)).collect();
            Tensor::from_bools(shape, &values)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(dtype: DType, fill: Fill) -> f64 {
        tensor(dtype, vec![1], fill, None, &mut SplitMix64::new(1))
            .unwrap()
            .get_f64(0)
    }

    #[test]
    fn float_edges_are_the_dtype_extremes() {
        assert_eq!(one(DType::F32, Fill::Max), f32::MAX as f64);
        assert_eq!(one(DType::F32, Fill::Lowest), f32::MIN as f64);
        assert_eq!(one(DType::F32, Fill::Subnormal), f32::from_bits(1) as f64);
        assert_eq!(one(DType::F32, Fill::MinPositive), f32::MIN_POSITIVE as f64);
        assert_eq!(one(DType::F64, Fill::Subnormal), f64::from_bits(1));
        assert_eq!(one(DType::F16, Fill::Max), 65504.0);
        assert_eq!(one(DType::F16, Fill::Subnormal), 2f64.powi(-24));
        assert_eq!(one(DType::BF16, Fill::Max), bf16::MAX.to_f64());
        assert!(one(DType::F32, Fill::Nan).is_nan());
        assert_eq!(one(DType::F16, Fill::NegInf), f64::NEG_INFINITY);
        // Large overflows when squared in its dtype.
        assert!((one(DType::F32, Fill::Large) as f32).powi(2).is_infinite());
        assert!(one(DType::F64, Fill::Large).powi(3).is_infinite());
    }

    #[test]
    fn integer_edges_are_the_dtype_extremes() {
        assert_eq!(one(DType::I64, Fill::Max), i64::MAX as f64);
        assert_eq!(one(DType::I8, Fill::Lowest), -128.0);
        assert_eq!(one(DType::U8, Fill::NegOnes), 255.0);
        assert_eq!(one(DType::U16, Fill::Lowest), 0.0);
        // No NaN among integers: random values in [0, 10) instead.
        let t = tensor(
            DType::I32,
            vec![64],
            Fill::Nan,
            None,
            &mut SplitMix64::new(3),
        )
        .unwrap();
        assert!((0..64).all(|i| (0.0..10.0).contains(&t.get_f64(i))));
        assert_eq!(one(DType::Bool, Fill::Ones), 1.0);
        assert_eq!(one(DType::Bool, Fill::Zeros), 0.0);
    }

    #[test]
    fn mixed_holds_edges_and_random_values_deterministically() {
        let mixed = || {
            tensor(
                DType::F32,
                vec![400],
                Fill::Mixed,
                None,
                &mut SplitMix64::new(9),
            )
        };
        let (a, b) = (mixed().unwrap(), mixed().unwrap());
        assert_eq!(a.bytes(), b.bytes());
        let values: Vec<f64> = (0..400).map(|i| a.get_f64(i)).collect();
        assert!(values.iter().any(|v| !v.is_finite()));
        let plain = values
            .iter()
            .filter(|v| v.is_finite() && v.abs() < 10.0)
            .count();
        assert!(plain > 200 && plain < 400, "{plain} plain values");
    }

    #[test]
    fn a_declared_range_bounds_edges_and_random_values() {
        let range = InputRange {
            min: Some(0.0),
            max: Some(255.0),
            ..Default::default()
        };
        let one_in = |dtype, fill| {
            tensor(dtype, vec![1], fill, Some(&range), &mut SplitMix64::new(1))
                .unwrap()
                .get_f64(0)
        };
        assert_eq!(one_in(DType::F32, Fill::Max), 255.0);
        assert_eq!(one_in(DType::F32, Fill::Lowest), 0.0);
        assert_eq!(one_in(DType::F32, Fill::NegOnes), 0.0);
        assert_eq!(one_in(DType::I32, Fill::Max), 255.0);
        assert_eq!(one_in(DType::I64, Fill::Lowest), 0.0);
        assert_eq!(one_in(DType::U8, Fill::NegOnes), 255.0);
        // NaN is the plan's business: it passes through.
        assert!(one_in(DType::F32, Fill::Nan).is_nan());
        for dtype in [DType::F32, DType::I32, DType::I8] {
            let t = tensor(
                dtype,
                vec![500],
                Fill::Random,
                Some(&range),
                &mut SplitMix64::new(4),
            )
            .unwrap();
            let values: Vec<f64> = (0..500).map(|i| t.get_f64(i)).collect();
            let hi = if dtype == DType::I8 { 127.0 } else { 255.0 };
            assert!(values.iter().all(|v| (0.0..=hi).contains(v)), "{dtype}");
            // Spread over the range, not piled on the bounds.
            let upper = values.iter().filter(|&&v| v > hi / 2.0).count();
            assert!(upper > 150 && upper < 350, "{dtype}: {upper}");
        }
    }
}
