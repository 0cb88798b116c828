//! The integer kernels of quantized graphs: MatMulInteger and ConvInteger (exact int32
//! results of `(x - x_zero_point) · (w - w_zero_point)`), QLinearMatMul and QLinearConv
//! (the same accumulation, requantized: `saturate(round_half_even(acc · x_scale ·
//! w_scale / y_scale) + y_zero_point)`, with QLinearConv's int32 bias added to the
//! accumulator), for int8/uint8 operands with per-tensor or per-row/column/channel zero
//! points and scales. The accumulation runs as an f64 matmul/conv on the device, which is
//! exact for int8 products summed over fewer than 2^37 terms; the requantization runs on
//! the host, like QuantizeLinear's. ONNX Runtime's `QGemm` contrib op (`com.microsoft`: `alpha`,
//! `transA`, `transB`, an int32 bias C broadcast to (M, N), per-column B scales and zero
//! points, a quantized or (without `y_scale`) f32 output) is built here too: its
//! requantization is MLAS's, in f32 (`f32(acc) · f32(alpha · s_a · s_b / s_y)`).

use super::conv::{conv, conv_attrs};
use super::matmul::matmul;
use super::quant::{quantized, range};
use super::{input, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use crate::tensor::DType;
use candle_core::{DType as CDType, Tensor as CTensor};

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("MatMulInteger", 10),
    ("ConvInteger", 10),
    ("QLinearMatMul", 10),
    ("QLinearConv", 10),
];

/// The `com.microsoft` op of this family (version 1).
pub(crate) const MS_OPS: &[(&str, i64)] = &[("QGemm", 1)];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "QGemm" => build_qgemm(ctx),
        "MatMulInteger" => {
            ctx.arity((2, 4), (1, 1))?;
            ctx.attrs(&[])?;
            op(|inputs| {
                let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
                let acc = int_matmul(a, opt_input(inputs, 2), b, opt_input(inputs, 3))?;
                Ok(vec![Value::wrapped(
                    acc.to_dtype(CDType::I64)?,
                    DType::I32,
                )?])
            })
        }
        "QLinearMatMul" => {
            ctx.arity((8, 8), (1, 1))?;
            ctx.attrs(&[])?;
            op(|inputs| {
                let (a, b) = (input(inputs, 0)?, input(inputs, 3)?);
                let (azp, bzp) = (opt_input(inputs, 2), opt_input(inputs, 5));
                let acc = int_matmul(a, azp, b, bzp)?;
                let (row, col) = product_axes(a, b, &acc);
                let sa = Scale::read(input(inputs, 1)?, row, acc.dims(), "a_scale")?;
                let sb = Scale::read(input(inputs, 4)?, col, acc.dims(), "b_scale")?;
                requantize(
                    &acc,
                    &sa,
                    &sb,
                    input(inputs, 6)?,
                    opt_input(inputs, 7),
                    a.dtype,
                    Product::Exact,
                )
            })
        }
        _ => build_conv(ctx),
    }
}

fn build_qgemm(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((6, 9), (1, 1))?;
    let a = ctx.attrs(&["alpha", "transA", "transB"])?;
    let alpha = a.float("alpha", 1.0)?;
    let flag = |name: &str| -> OpResult<bool> {
        match a.int(name, 0)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(unsupported!("attribute `{name}` = {v} is not supported")),
        }
    };
    let (trans_a, trans_b) = (flag("transA")?, flag("transB")?);
    op(move |inputs| {
        let matrix = |i: usize, trans: bool, what: &str| -> OpResult<Value> {
            let v = input(inputs, i)?;
            if v.rank() != 2 {
                return Err(failed!("{what} must be 2-D, got {:?}", v.shape()));
            }
            Ok(if trans {
                Value::new(v.t.t()?.contiguous()?, v.dtype)
            } else {
                v.clone()
            })
        };
        let (a, b) = (matrix(0, trans_a, "A")?, matrix(3, trans_b, "B")?);
        let azp = opt_input(inputs, 2);
        if azp.is_some_and(|z| z.t.elem_count() != 1) {
            return Err(failed!("a_zero_point must be a scalar"));
        }
        let mut acc = int_matmul(&a, azp, &b, opt_input(inputs, 5))?;
        if let Some(c) = opt_input(inputs, 6) {
            if c.dtype != DType::I32 {
                return Err(failed!("C must be int32, got {}", c.dtype));
            }
            acc = acc.broadcast_add(&c.t.to_dtype(CDType::F64)?)?;
        }
        let mut sa = Scale::read(input(inputs, 1)?, None, acc.dims(), "a_scale")?;
        if sa.values.len() != 1 || sa.dtype != DType::F32 {
            return Err(failed!("a_scale must be one f32 value"));
        }
        // ONNX Runtime folds alpha into A's scale, in f32.
        sa.values[0] = f64::from(alpha * sa.values[0] as f32);
        let sb = Scale::read(input(inputs, 4)?, Some(1), acc.dims(), "b_scale")?;
        match (opt_input(inputs, 7), opt_input(inputs, 8)) {
            (Some(ys), Some(yz)) => requantize(&acc, &sa, &sb, ys, Some(yz), a.dtype, Product::F32),
            (None, None) => float_output(&acc, &sa, &sb),
            _ => Err(unsupported!(
                "y_scale and y_zero_point must be given together"
            )),
        }
    })
}

/// QGemm without `y_scale`: `f32(acc) · f32(s1 · s2)`, an f32 tensor.
fn float_output(acc: &CTensor, s1: &Scale, s2: &Scale) -> OpResult<Vec<Value>> {
    let dims = acc.dims().to_vec();
    let values = acc.flatten_all()?.to_vec1::<f64>()?;
    let mut index = vec![0; dims.len()];
    let y: Vec<f32> = values
        .into_iter()
        .enumerate()
        .map(|(flat, v)| {
            super::window::unravel(flat, &dims, &mut index);
            v as f32 * (s1.at(&index) as f32 * s2.at(&index) as f32)
        })
        .collect();
    Ok(vec![Value::new(
        CTensor::from_vec(y, dims, acc.device())?,
        DType::F32,
    )])
}

fn build_conv(ctx: &Ctx) -> OpResult<Built> {
    let linear = ctx.op() == "QLinearConv";
    if linear {
        ctx.arity((8, 9), (1, 1))?;
    } else {
        ctx.arity((2, 4), (1, 1))?;
    }
    let (_, w, group) = conv_attrs(ctx, &[])?;
    op(move |inputs| {
        // Input positions: x, [x_scale], x_zero_point, w, [w_scale], w_zero_point, ...
        let (xi, wi) = if linear { (0, 3) } else { (0, 1) };
        let (xzi, wzi) = if linear { (2, 5) } else { (2, 3) };
        let (x, wt) = (input(inputs, xi)?, input(inputs, wi)?);
        let xs = shifted(x, opt_input(inputs, xzi), None, "x")?;
        let ws = shifted(wt, opt_input(inputs, wzi), Some(0), "w")?;
        let mut acc = conv(
            &Value::new(xs, DType::F64),
            &Value::new(ws, DType::F64),
            None,
            &w,
            group,
        )?
        .t;
        if !linear {
            return Ok(vec![Value::wrapped(
                acc.to_dtype(CDType::I64)?,
                DType::I32,
            )?]);
        }
        if let Some(bias) = opt_input(inputs, 8) {
            if bias.dtype != DType::I32 || bias.shape() != [acc.dims()[1]] {
                return Err(failed!(
                    "B must be an int32 tensor of shape [{}], got {} {:?}",
                    acc.dims()[1],
                    bias.dtype,
                    bias.shape()
                ));
            }
            let mut shape = vec![1; acc.rank()];
            shape[1] = acc.dims()[1];
            acc = acc.broadcast_add(&bias.t.to_dtype(CDType::F64)?.reshape(shape)?)?;
        }
        // x's scale is per tensor; w's per tensor or per output channel (axis 1 of y).
        let sx = Scale::read(input(inputs, 1)?, None, acc.dims(), "x_scale")?;
        let sw = Scale::read(input(inputs, 4)?, Some(1), acc.dims(), "w_scale")?;
        requantize(
            &acc,
            &sx,
            &sw,
            input(inputs, 6)?,
            opt_input(inputs, 7),
            x.dtype,
            Product::Exact,
        )
    })
}

/// `x - zero_point` in f64 (exact): a scalar zero point, or (when `axis` is given) one
/// per index of that axis of `x`.
fn shifted(x: &Value, zp: Option<&Value>, axis: Option<usize>, what: &str) -> OpResult<CTensor> {
    if !matches!(x.dtype, DType::U8 | DType::I8) {
        return Err(unsupported!(
            "{what} of dtype {} is not supported (int8 and uint8 are)",
            x.dtype
        ));
    }
    let t = x.t.to_dtype(CDType::F64)?;
    let Some(z) = zp else { return Ok(t) };
    if z.dtype != x.dtype {
        return Err(failed!(
            "{what}'s zero point has dtype {}, {what} has {}",
            z.dtype,
            x.dtype
        ));
    }
    let zt = z.t.to_dtype(CDType::F64)?;
    if z.t.elem_count() == 1 {
        return Ok(t.broadcast_sub(&zt.flatten_all()?.reshape(())?)?);
    }
    let Some(axis) = axis.filter(|&a| a < x.rank()) else {
        return Err(failed!(
            "{what}'s zero point of shape {:?} must be a scalar here",
            z.shape()
        ));
    };
    if z.rank() != 1 || z.shape()[0] != x.shape()[axis] {
        return Err(failed!(
            "{what}'s zero point of shape {:?} matches neither a scalar nor axis {axis} of {:?}",
            z.shape(),
            x.shape()
        ));
    }
    let mut shape = vec![1; x.rank()];
    shape[axis] = z.shape()[0];
    Ok(t.broadcast_sub(&zt.reshape(shape)?)?)
}

/// The axes of a matrix product's result that A's rows and B's columns become (`None`
/// for a 1-D operand, whose zero point and scale must then be scalars).
fn product_axes(a: &Value, b: &Value, acc: &CTensor) -> (Option<usize>, Option<usize>) {
    let r = acc.rank();
    let col = (b.rank() >= 2 && r >= 1).then(|| r - 1);
    let row = (a.rank() >= 2).then(|| r - if col.is_some() { 2 } else { 1 });
    (row, col)
}

/// `(a - a_zp) @ (b - b_zp)`, exact, in f64 (b's zero point is per column: axis -1).
fn int_matmul(a: &Value, azp: Option<&Value>, b: &Value, bzp: Option<&Value>) -> OpResult<CTensor> {
    // A's zero point per row (axis -2), B's per column (axis -1).
    let at = shifted(a, azp, a.rank().checked_sub(2), "A")?;
    let bt = shifted(
        b,
        bzp,
        b.rank().checked_sub(1).filter(|_| b.rank() >= 2),
        "B",
    )?;
    matmul(&Value::new(at, DType::F64), &Value::new(bt, DType::F64))
}

/// A scale: one value, or one per index of an axis of the accumulator.
struct Scale {
    values: Vec<f64>,
    dtype: DType,
    axis: usize,
}

impl Scale {
    /// Reads scale `v`: a scalar, or (when `axis` is given) one value per index of that
    /// axis of the accumulator `acc`.
    fn read(v: &Value, axis: Option<usize>, acc: &[usize], what: &str) -> OpResult<Scale> {
        if !matches!(v.dtype, DType::F32 | DType::F16 | DType::BF16) {
            return Err(unsupported!("{what} of dtype {} is not supported", v.dtype));
        }
        let values = v.f64s()?;
        let per_axis = axis.and_then(|a| acc.get(a).copied());
        if values.len() != 1 && per_axis != Some(values.len()) {
            return Err(failed!(
                "{what} has {} values; expected 1{}",
                values.len(),
                per_axis.map_or(String::new(), |n| format!(" or {n}"))
            ));
        }
        Ok(Scale {
            values,
            dtype: v.dtype,
            axis: axis.unwrap_or(0),
        })
    }

    fn at(&self, index: &[usize]) -> f64 {
        if self.values.len() == 1 {
            self.values[0]
        } else {
            self.values[index[self.axis]]
        }
    }
}

/// `s1 · s2 / s3` computed in the scales' own type, each step rounded to it, as the
/// reference (numpy on the scale arrays) and ONNX Runtime do.
fn multiplier(dtype: DType, s1: f64, s2: f64, s3: f64) -> f64 {
    match dtype {
        DType::F16 => {
            let h = half::f16::from_f64;
            f64::from(h(s1) * h(s2) / h(s3))
        }
        DType::BF16 => {
            let h = half::bf16::from_f64;
            f64::from(h(s1) * h(s2) / h(s3))
        }
        _ => f64::from(s1 as f32 * s2 as f32 / s3 as f32),
    }
}

/// How the accumulator is multiplied by the requantization multiplier.
#[derive(Clone, Copy)]
enum Product {
    /// In f64 (exact for int32 accumulators times an f32 multiplier, as the reference).
    Exact,
    /// In f32, the accumulator converted to f32 first (MLAS's `MlasRequantizeOutput`).
    F32,
}

/// `saturate(round_half_even(acc · (s1 · s2 / y_scale)) + y_zero_point)` in the type of
/// the output zero point (else `fallback`), the multiplier computed in f32 as ONNX Runtime
/// and the reference do, the product as `product` says.
fn requantize(
    acc: &CTensor,
    s1: &Scale,
    s2: &Scale,
    y_scale: &Value,
    y_zp: Option<&Value>,
    fallback: DType,
    product: Product,
) -> OpResult<Vec<Value>> {
    let ys = Scale::read(y_scale, None, &[], "y_scale")?;
    if ys.values.len() != 1 || s1.dtype != ys.dtype || s2.dtype != ys.dtype {
        return Err(unsupported!(
            "the scales must be of one type and y_scale a scalar"
        ));
    }
    let (dtype, zp) = match y_zp {
        Some(z) if z.t.elem_count() == 1 => (z.dtype, z.f64s()?[0]),
        Some(z) => {
            return Err(unsupported!(
                "y_zero_point of shape {:?} is not a scalar",
                z.shape()
            ))
        }
        None => (fallback, 0.0),
    };
    let (lo, hi) = range(dtype)?;
    let dims = acc.dims().to_vec();
    let values = acc.flatten_all()?.to_vec1::<f64>()?;
    let mut index = vec![0; dims.len()];
    let mut q = Vec::with_capacity(values.len());
    for (flat, v) in values.into_iter().enumerate() {
        super::window::unravel(flat, &dims, &mut index);
        let m = multiplier(ys.dtype, s1.at(&index), s2.at(&index), ys.values[0]);
        let p = match product {
            Product::Exact => v * m,
            Product::F32 => f64::from(v as f32 * m as f32),
        };
        q.push((p.round_ties_even() + zp).clamp(lo, hi));
    }
    Ok(vec![quantized(dtype, &dims, q, acc)?])
}
