//! ONNX Runtime's `QLinearSoftmax` contrib op (`com.microsoft`, int8/uint8), computed as
//! its CPU kernel does, with a lookup table of exponentials rather than a dequantized
//! softmax:
//!
//! * `opset` (required) picks the axis semantics: below 13, the input is flattened to 2-D
//!   at `axis` (default 1) and each row of `D = ∏ dims[axis..]` values is one softmax;
//!   from 13, each softmax runs along `axis` (default −1), `D = dims[axis]`.
//! * The table: `shift = max(0, ln(f32::MAX / D) − 5) / x_scale`, entry
//!   `E[i] = f32(exp((i − 255 + shift) · x_scale))` for i in 0..256 (in f64), so that a
//!   sum of D entries cannot overflow f32.
//! * Each softmax: with `m` its largest input, `v(x) = E[255 − (m − x)]` (the input's
//!   zero point cancels), `sum` the f32 sum of `v` in index order, and
//!   `k = floor(1 / y_scale)` in f32, `y = round_half_even(v · k / sum) + y_zero_point`
//!   in f32, saturated to the output type (results are never below the zero point).

use super::qtensor::{from_ints, ints, Quant};
use super::{input, norm_axis, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, OpResult};
use crate::tensor::DType;

/// Op types of this family (`com.microsoft`, version 1).
pub(crate) const OPS: &[(&str, i64)] = &[("QLinearSoftmax", 1)];

/// Builds QLinearSoftmax.
pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((4, 5), (1, 1))?;
    let a = ctx.attrs(&["axis", "opset"])?;
    let opset = a
        .opt_int("opset")?
        .ok_or_else(|| failed!("attribute `opset` is required"))?;
    let axis = a.int("axis", if opset < 13 { 1 } else { -1 })?;
    op(move |inputs| {
        let x = input(inputs, 0)?;
        // x's zero point only shifts every input alike: it cancels.
        let qx = Quant::read(input(inputs, 1)?, opt_input(inputs, 2), x.dtype, "X")?;
        let qy = Quant::read(input(inputs, 3)?, opt_input(inputs, 4), x.dtype, "Y")?;
        let shape = x.shape().to_vec();
        let xs = ints(x, "X")?;
        if xs.is_empty() {
            return Ok(vec![x.clone()]);
        }
        let ax = norm_axis(axis, shape.len())?;
        let outer: usize = shape[..ax].iter().product();
        let (len, inner) = if opset < 13 {
            (shape[ax..].iter().product(), 1)
        } else {
            (shape[ax], shape[ax + 1..].iter().product())
        };
        let table = exp_table(qx.scale, len);
        let k = (1.0f32 / qy.scale).floor();
        let mut y = vec![0; xs.len()];
        for o in 0..outer {
            for i in 0..inner {
                let at = |j: usize| (o * len + j) * inner + i;
                let m = (0..len).map(|j| xs[at(j)]).max().unwrap_or(0);
                let v = |j: usize| table[(255 - (m - xs[at(j)])).clamp(0, 255) as usize];
                let sum = (0..len).fold(0f32, |s, j| s + v(j));
                if sum == 0.0 {
                    return Err(failed!("the exponentials of a row sum to 0"));
                }
                for j in 0..len {
                    let q = (v(j) * k / sum).round_ties_even() as i32 + qy.zp;
                    y[at(j)] = saturate(q, x.dtype);
                }
            }
        }
        Ok(vec![from_ints(x.dtype, &shape, y, x)?])
    })
}

/// The 256 exponentials for reductions of `len` values (see the module doc).
fn exp_table(x_scale: f32, len: usize) -> Vec<f32> {
    let scale = f64::from(x_scale);
    let shift = f64::from(f32::MAX / len as f32).ln();
    let shift = (shift - 5.0).max(0.0) / scale;
    (0..256)
        .map(|i| ((f64::from(i) - 255.0 + shift) * scale).exp() as f32)
        .collect()
}

/// A result saturated to `dtype`'s range (ONNX Runtime 1.31 clamps int8 at 127 too,
/// where older versions wrapped).
fn saturate(q: i32, dtype: DType) -> i32 {
    let (lo, hi) = if dtype == DType::I8 {
        (-128, 127)
    } else {
        (0, 255)
    };
    q.clamp(lo, hi)
}
