//! What ONNX Runtime's QOperator contrib ops (`com.microsoft` QLinear*) share: per-tensor
//! quantization parameters (an f32 scale and an optional zero point of the data's type),
//! the integer data of int8/uint8 tensors, MLAS's quantization of an f32 value, and the
//! 256-entry lookup tables that the unary ops and QLinearConcat compute their results
//! with (`QlinearBuildLookupTable`: dequantize every byte value, transform, quantize).

use super::quant::{quantized, range};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use crate::tensor::DType;

/// Per-tensor quantization parameters: `real = scale · (q − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Quant {
    /// The scale, as ONNX Runtime reads it (f32).
    pub scale: f32,
    /// The zero point (0 when omitted).
    pub zp: i32,
}

impl Quant {
    /// Reads a one-element f32 `scale` and an optional one-element zero point of `dtype`.
    pub(crate) fn read(
        scale: &Value,
        zp: Option<&Value>,
        dtype: DType,
        what: &str,
    ) -> OpResult<Quant> {
        if scale.dtype != DType::F32 {
            return Err(unsupported!(
                "{what}'s scale of dtype {} is not supported (f32 is)",
                scale.dtype
            ));
        }
        let scale = scale.scalar_f64(&format!("{what}'s scale"))? as f32;
        let zp = match zp {
            None => 0,
            Some(z) if z.dtype != dtype => {
                return Err(failed!(
                    "{what}'s zero point has dtype {}, expected {dtype}",
                    z.dtype
                ))
            }
            Some(z) => z.scalar_f64(&format!("{what}'s zero point"))? as i32,
        };
        Ok(Quant { scale, zp })
    }

    /// `scale · (q − zero_point)` in f32, as ONNX Runtime dequantizes.
    pub(crate) fn dequantize(self, q: i32) -> f32 {
        self.scale * (q - self.zp) as f32
    }

    /// MLAS's `MlasQuantizeLinear` of one value into `dtype`'s range:
    /// `saturate(round_half_even(v / scale) + zero_point)`, in f32.
    pub(crate) fn quantize(self, v: f32, (lo, hi): (i32, i32)) -> i32 {
        let r = (v / self.scale).round_ties_even();
        // Clamp in f32 first (NaN and huge values), as MLAS does before converting.
        let r = r.clamp((lo - self.zp) as f32, (hi - self.zp) as f32);
        r as i32 + self.zp
    }
}

/// The integer range of int8/uint8 (the only types these ops take).
pub(crate) fn bounds(dtype: DType) -> OpResult<(i32, i32)> {
    match dtype {
        DType::U8 | DType::I8 => {
            let (lo, hi) = range(dtype)?;
            Ok((lo as i32, hi as i32))
        }
        d => Err(unsupported!(
            "quantized dtype {d} is not supported (int8 and uint8 are)"
        )),
    }
}

/// The elements of an int8/uint8 tensor.
pub(crate) fn ints(x: &Value, what: &str) -> OpResult<Vec<i32>> {
    bounds(x.dtype).map_err(|_| {
        unsupported!(
            "{what} of dtype {} is not supported (int8 and uint8 are)",
            x.dtype
        )
    })?;
    Ok(x.f64s()?.into_iter().map(|v| v as i32).collect())
}

/// A tensor of quantized `dtype` from integers already in its range.
pub(crate) fn from_ints(
    dtype: DType,
    shape: &[usize],
    q: Vec<i32>,
    like: &Value,
) -> OpResult<Value> {
    quantized(
        dtype,
        shape,
        q.into_iter().map(f64::from).collect(),
        &like.t,
    )
}

/// A 256-entry table over the raw byte values of an int8/uint8 input: entry `b` is
/// `y.quantize(f(x.dequantize(value of byte b)))`.
pub(crate) struct Table(Vec<i32>);

impl Table {
    /// Builds the table for input `dtype` (the output has the same type).
    pub(crate) fn build(
        dtype: DType,
        x: Quant,
        y: Quant,
        f: impl Fn(f32) -> f32,
    ) -> OpResult<Table> {
        let b = bounds(dtype)?;
        Ok(Table(
            (0..256)
                .map(|byte| y.quantize(f(x.dequantize(byte_value(dtype, byte))), b))
                .collect(),
        ))
    }

    /// The entry for value `q` of the input type.
    pub(crate) fn get(&self, q: i32) -> i32 {
        self.0[(q & 0xff) as usize]
    }
}

/// The value of raw byte `byte` in int8 or uint8.
fn byte_value(dtype: DType, byte: i32) -> i32 {
    if dtype == DType::I8 {
        i32::from(byte as u8 as i8)
    } else {
        byte
    }
}

/// The output type of an op: its output zero point's, else its input's.
pub(crate) fn out_dtype(zp: Option<&Value>, input: DType) -> DType {
    zp.map_or(input, |z| z.dtype)
}
