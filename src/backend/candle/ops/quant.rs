//! Linear quantization: `QuantizeLinear`, `DequantizeLinear` (per-tensor, per-axis from
//! opset 13, blocked from opset 21; int8, uint8, int16, uint16, and int32 input for
//! dequantization) and `DynamicQuantizeLinear`. Computed on the host in f32, as ONNX
//! Runtime does: `q = saturate(round_half_even(x / scale) + zero_point)`,
//! `y = (q - zero_point) · scale`. Types parity cannot hold (float8, int4, int2) are
//! refused when the data is read; `precision` (opset 23) is refused.

use super::{input, norm_axis, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use crate::tensor::{DType, Tensor};

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("QuantizeLinear", 10),
    ("DequantizeLinear", 10),
    ("DynamicQuantizeLinear", 11),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "QuantizeLinear" => build_quantize(ctx),
        "DequantizeLinear" => build_dequantize(ctx),
        "DynamicQuantizeLinear" => build_dynamic(ctx),
        other => Err(unsupported!("op {other} is not a quantization op")),
    }
}

/// The integer range of a quantized type.
pub(crate) fn range(d: DType) -> OpResult<(f64, f64)> {
    Ok(match d {
        DType::U8 => (0.0, 255.0),
        DType::I8 => (-128.0, 127.0),
        DType::U16 => (0.0, 65535.0),
        DType::I16 => (-32768.0, 32767.0),
        d => return Err(unsupported!("quantized type {d} is not supported")),
    })
}

/// An ONNX element type code given by `output_dtype`, as a quantized type.
fn quantized_code(code: i64) -> OpResult<DType> {
    match code {
        2 => Ok(DType::U8),
        3 => Ok(DType::I8),
        4 => Ok(DType::U16),
        5 => Ok(DType::I16),
        c => Err(unsupported!(
            "attribute `output_dtype` = {c} is not supported"
        )),
    }
}

/// How a scale (and zero point) maps onto the elements of `x`: per tensor, per axis,
/// or per block along an axis.
#[derive(Debug, Clone, Copy)]
struct Layout {
    axis: i64,
    block: usize,
}

impl Layout {
    /// For every element of a tensor of `shape`, the index of its scale, checking the
    /// scale's shape.
    fn indices(self, shape: &[usize], scale: &[usize]) -> OpResult<Vec<usize>> {
        let n: usize = shape.iter().product();
        if scale.iter().product::<usize>() == 1 && (scale.is_empty() || self.block == 0) {
            return Ok(vec![0; n]);
        }
        let axis = norm_axis(self.axis, shape.len())?;
        let inner: usize = shape[axis + 1..].iter().product();
        let dim = shape[axis];
        if self.block == 0 {
            if scale != [dim] {
                return Err(failed!(
                    "a per-axis scale must have shape [{dim}] (axis {axis} of {shape:?}), got {scale:?}"
                ));
            }
            return Ok((0..n).map(|i| (i / inner) % dim).collect());
        }
        // Blocked: the scale has x's shape with ceil(dim / block) along the axis.
        let blocks = dim.div_ceil(self.block);
        let mut want = shape.to_vec();
        want[axis] = blocks;
        if scale != want.as_slice() {
            return Err(failed!(
                "a blocked scale must have shape {want:?} (block_size {}), got {scale:?}",
                self.block
            ));
        }
        Ok((0..n)
            .map(|i| {
                let (outer, rest) = (i / (dim * inner), i % (dim * inner));
                let (a, within) = (rest / inner, rest % inner);
                (outer * blocks + a / self.block) * inner + within
            })
            .collect())
    }
}

/// Reads `axis` and `block_size` as the opset defines them.
fn layout(ctx: &Ctx, a: &crate::backend::candle::attrs::Attrs) -> OpResult<Layout> {
    let axis = if ctx.opset >= 13 {
        a.int("axis", 1)?
    } else {
        1
    };
    let block = a.int("block_size", 0)?;
    let block = usize::try_from(block)
        .map_err(|_| failed!("attribute `block_size` = {block} must be ≥ 0"))?;
    Ok(Layout { axis, block })
}

fn attrs_allowed(opset: i64, quantize: bool) -> Vec<&'static str> {
    let mut allowed = Vec::new();
    if opset >= 13 {
        allowed.push("axis");
    }
    if opset >= 19 && quantize {
        // Only float8 outputs saturate differently, and parity holds none.
        allowed.push("saturate");
    }
    if opset >= 21 {
        allowed.push("block_size");
        if quantize {
            allowed.push("output_dtype");
        }
    }
    if opset >= 23 {
        allowed.push("precision");
        if !quantize {
            allowed.push("output_dtype");
        }
    }
    allowed
}

fn build_quantize(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((2, 3), (1, 1))?;
    let a = ctx.attrs(&attrs_allowed(ctx.opset, true))?;
    a.require_int("precision", 0, 0)?;
    let layout = layout(ctx, &a)?;
    let output_dtype = match a.int("output_dtype", 0)? {
        0 => None,
        code => Some(quantized_code(code)?),
    };
    op(move |inputs| {
        let (x, scale) = (input(inputs, 0)?, input(inputs, 1)?);
        let zp = opt_input(inputs, 2);
        let out = match (zp, output_dtype) {
            (Some(z), Some(d)) if z.dtype != d => {
                return Err(failed!(
                    "y_zero_point is {} but output_dtype is {d}",
                    z.dtype
                ))
            }
            (Some(z), _) => z.dtype,
            (None, Some(d)) => d,
            (None, None) => DType::U8,
        };
        let (lo, hi) = range(out)?;
        let idx = layout.indices(x.shape(), scale.shape())?;
        let (xs, ss) = (x.f64s()?, scale.f64s()?);
        let zs = zero_points(zp, ss.len())?;
        let q: Vec<f64> = xs
            .iter()
            .zip(&idx)
            .map(|(&v, &k)| {
                // f32 arithmetic, as ONNX Runtime's kernels.
                let r = (v as f32 / ss[k] as f32).round_ties_even();
                (f64::from(r) + zs[k]).clamp(lo, hi)
            })
            .collect();
        Ok(vec![quantized(out, x.shape(), q, &x.t)?])
    })
}

/// The zero points (all 0 when absent), one per scale.
fn zero_points(zp: Option<&Value>, n: usize) -> OpResult<Vec<f64>> {
    match zp {
        None => Ok(vec![0.0; n]),
        Some(z) => {
            let z = z.f64s()?;
            if z.len() != n {
                return Err(failed!(
                    "the zero point has {} values, the scale {n}",
                    z.len()
                ));
            }
            Ok(z)
        }
    }
}

/// A value of quantized type `d` from exact integers.
pub(crate) fn quantized(
    d: DType,
    shape: &[usize],
    q: Vec<f64>,
    like: &candle_core::Tensor,
) -> OpResult<Value> {
    let shape = shape.to_vec();
    let t = match d {
        DType::U8 => Tensor::from_vec(shape, q.into_iter().map(|v| v as u8).collect()),
        DType::I8 => Tensor::from_vec(shape, q.into_iter().map(|v| v as i8).collect()),
        DType::U16 => Tensor::from_vec(shape, q.into_iter().map(|v| v as u16).collect()),
        DType::I16 => Tensor::from_vec(shape, q.into_iter().map(|v| v as i16).collect()),
        d => return Err(unsupported!("quantized type {d} is not supported")),
    }
    .map_err(|e| failed!("{e}"))?;
    Value::from_tensor(&t, like.device())
}

fn build_dequantize(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((2, 3), (1, 1))?;
    let a = ctx.attrs(&attrs_allowed(ctx.opset, false))?;
    a.require_int("precision", 0, 0)?;
    a.require_int("output_dtype", 0, 0)?;
    let layout = layout(ctx, &a)?;
    op(move |inputs| {
        let (x, scale) = (input(inputs, 0)?, input(inputs, 1)?);
        let zp = opt_input(inputs, 2);
        if x.dtype != DType::I32 {
            range(x.dtype)?;
        }
        if let Some(z) = zp.filter(|z| z.dtype != x.dtype) {
            return Err(failed!("x is {} but x_zero_point is {}", x.dtype, z.dtype));
        }
        scale.require_float("x_scale")?;
        let idx = layout.indices(x.shape(), scale.shape())?;
        let (xs, ss) = (x.f64s()?, scale.f64s()?);
        let zs = zero_points(zp, ss.len())?;
        let y: Vec<f64> = xs
            .iter()
            .zip(&idx)
            .map(|(&v, &k)| f64::from((v - zs[k]) as f32 * ss[k] as f32))
            .collect();
        let t = Tensor::from_f64_values(scale.dtype, x.shape().to_vec(), y)
            .ok_or_else(|| failed!("x_scale of dtype {} is not a float", scale.dtype))?
            .map_err(|e| failed!("{e}"))?;
        Ok(vec![Value::from_tensor(&t, x.t.device())?])
    })
}

fn build_dynamic(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (3, 3))?;
    ctx.attrs(&[])?;
    op(move |inputs| {
        let x = input(inputs, 0)?;
        if x.dtype != DType::F32 {
            return Err(failed!("x must be f32, got {}", x.dtype));
        }
        let xs: Vec<f32> = x.f64s()?.into_iter().map(|v| v as f32).collect();
        // The range always includes 0, so that 0 is exactly representable.
        let lo = xs.iter().copied().fold(0f32, f32::min);
        let hi = xs.iter().copied().fold(0f32, f32::max);
        let scale = (hi - lo) / 255.0;
        let zp = (-lo / scale).round_ties_even().clamp(0.0, 255.0);
        let q: Vec<f64> = xs
            .iter()
            .map(|&v| f64::from(((v / scale).round_ties_even() + zp).clamp(0.0, 255.0)))
            .collect();
        let dev = x.t.device();
        let y = quantized(DType::U8, x.shape(), q, &x.t)?;
        let s = Value::from_tensor(
            &Tensor::from_vec(vec![], vec![scale]).map_err(|e| failed!("{e}"))?,
            dev,
        )?;
        let z = Value::from_tensor(
            &Tensor::from_vec(vec![], vec![zp as u8]).map_err(|e| failed!("{e}"))?,
            dev,
        )?;
        Ok(vec![y, s, z])
    })
}
