//! ONNX Runtime's quantized contrib ops that map each input byte through a 256-entry
//! table (`com.microsoft`, int8/uint8, per-tensor scales and zero points):
//! `QLinearSigmoid`, `QLinearLeakyRelu` (`alpha`, default 0.01) and `QLinearConcat`
//! (each input requantized to the output's scale and zero point, or copied when they are
//! the same). Every entry is `quantize_y(f(dequantize_x(b)))` in f32 as ONNX Runtime
//! builds it. Sigmoid is the exact logistic rounded to f32 where ONNX Runtime uses MLAS's
//! polynomial approximation (relative error ~1e-7): an entry differs only if the two land
//! on opposite sides of a rounding tie of the output scale.

use super::qtensor::{ints, out_dtype, Quant, Table};
use super::{input, norm_axis, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, OpResult};
use crate::backend::candle::value::Value;
use candle_core::Tensor as CTensor;

/// Op types of this family (`com.microsoft`, version 1).
pub(crate) const OPS: &[(&str, i64)] = &[
    ("QLinearSigmoid", 1),
    ("QLinearLeakyRelu", 1),
    ("QLinearConcat", 1),
];

/// Builds one of the table ops.
pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "QLinearConcat" => build_concat(ctx),
        op_type => {
            ctx.arity((4, 5), (1, 1))?;
            let alpha = if op_type == "QLinearLeakyRelu" {
                Some(ctx.attrs(&["alpha"])?.float("alpha", 0.01)?)
            } else {
                ctx.attrs(&[])?;
                None
            };
            op(move |inputs| {
                let x = input(inputs, 0)?;
                let qx = Quant::read(input(inputs, 1)?, opt_input(inputs, 2), x.dtype, "X")?;
                let qy = Quant::read(input(inputs, 3)?, opt_input(inputs, 4), x.dtype, "Y")?;
                let table = match alpha {
                    Some(alpha) => {
                        Table::build(x.dtype, qx, qy, |v| if v >= 0.0 { v } else { alpha * v })?
                    }
                    None => Table::build(x.dtype, qx, qy, |v| {
                        (1.0 / (1.0 + (-f64::from(v)).exp())) as f32
                    })?,
                };
                Ok(vec![apply(&table, x)?])
            })
        }
    }
}

/// `x` mapped through `table` (same shape and type).
fn apply(table: &Table, x: &Value) -> OpResult<Value> {
    let q = ints(x, "X")?.into_iter().map(|v| table.get(v)).collect();
    super::qtensor::from_ints(x.dtype, x.shape(), q, x)
}

fn build_concat(ctx: &Ctx) -> OpResult<Built> {
    let n = ctx.node.input.len();
    if n < 5 || !(n - 2).is_multiple_of(3) {
        return Err(failed!(
            "has {n} inputs; expected Y_scale, Y_zero_point and (X, X_scale, X_zero_point) triples"
        ));
    }
    ctx.arity((n, n), (1, 1))?;
    let axis = ctx
        .attrs(&["axis"])?
        .opt_int("axis")?
        .ok_or_else(|| failed!("attribute `axis` is required"))?;
    op(move |inputs| {
        let zy = input(inputs, 1)?;
        let dtype = out_dtype(Some(zy), zy.dtype);
        let qy = Quant::read(input(inputs, 0)?, Some(zy), dtype, "Y")?;
        let mut parts = Vec::new();
        for k in 0..(inputs.len() - 2) / 3 {
            let i = 2 + 3 * k;
            let x = input(inputs, i)?;
            let qx = Quant::read(input(inputs, i + 1)?, input(inputs, i + 2).ok(), dtype, "X")?;
            if x.dtype != dtype {
                return Err(failed!("input {i} is {}, Y is {dtype}", x.dtype));
            }
            parts.push(if qx == qy {
                x.t.clone()
            } else {
                apply(&Table::build(dtype, qx, qy, |v| v)?, x)?.t
            });
        }
        let first = parts
            .first()
            .ok_or_else(|| failed!("QLinearConcat needs at least one input"))?;
        let axis = norm_axis(axis, first.rank())?;
        Ok(vec![Value::new(CTensor::cat(&parts, axis)?, dtype)])
    })
}
