//! Pooling over any number of spatial dims: MaxPool (pads, strides, dilations from opset
//! 10, ceil_mode; the Indices output is refused), AveragePool (count_include_pad from
//! opset 7, ceil_mode from 10, dilations from 19), GlobalAveragePool, GlobalMaxPool.
//! Windows are strided views of the padded input (see [`super::window`]), combined
//! element-wise.

use super::window::WindowAttrs;
use super::{input, op, refuse_nan, widen_half, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("MaxPool", 1),
    ("AveragePool", 1),
    ("GlobalAveragePool", 1),
    ("GlobalMaxPool", 1),
    ("LpPool", 1),
    ("GlobalLpPool", 2),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    match ctx.op() {
        "GlobalAveragePool" | "GlobalMaxPool" => {
            ctx.arity((1, 1), (1, 1))?;
            ctx.attrs(&[])?;
            let kind = if ctx.op() == "GlobalAveragePool" {
                Kind::Avg(false)
            } else {
                Kind::Max
            };
            op(move |inputs| Ok(vec![global(input(inputs, 0)?, kind)?]))
        }
        "GlobalLpPool" => {
            ctx.arity((1, 1), (1, 1))?;
            let p = lp_order(&ctx.attrs(&["p"])?)?;
            op(move |inputs| Ok(vec![global(input(inputs, 0)?, Kind::Lp(p))?]))
        }
        "LpPool" => {
            // Opset 1 had a float `p`; refused by the type check in `lp_order`.
            ctx.arity((1, 1), (1, 1))?;
            let mut allowed = vec!["auto_pad", "kernel_shape", "pads", "strides", "p"];
            if v >= 18 {
                allowed.extend(["dilations", "ceil_mode"]);
            }
            let a = ctx.attrs(&allowed)?;
            let p = lp_order(&a)?;
            let w = WindowAttrs::parse(&a)?;
            if w.kernel_shape.is_none() {
                return Err(failed!("attribute `kernel_shape` is required"));
            }
            op(move |inputs| Ok(vec![pool(input(inputs, 0)?, &w, Kind::Lp(p))?]))
        }
        "MaxPool" => {
            // The Indices output (opset 8+) is refused by the arity check.
            ctx.arity((1, 1), (1, 1))?;
            let mut allowed = vec!["auto_pad", "kernel_shape", "pads", "strides"];
            if v >= 8 {
                allowed.push("storage_order"); // only affects Indices
            }
            if v >= 10 {
                allowed.extend(["dilations", "ceil_mode"]);
            }
            let w = parse(ctx, &allowed)?;
            op(move |inputs| Ok(vec![pool(input(inputs, 0)?, &w, Kind::Max)?]))
        }
        "AveragePool" => {
            ctx.arity((1, 1), (1, 1))?;
            let mut allowed = vec!["auto_pad", "kernel_shape", "pads", "strides"];
            if v >= 7 {
                allowed.push("count_include_pad");
            }
            if v >= 10 {
                allowed.push("ceil_mode");
            }
            if v >= 19 {
                allowed.push("dilations");
            }
            let a = ctx.attrs(&allowed)?;
            let include_pad = match a.int("count_include_pad", 0)? {
                0 => false,
                1 => true,
                x => {
                    return Err(unsupported!(
                        "attribute `count_include_pad` = {x} is not supported"
                    ))
                }
            };
            let w = WindowAttrs::parse(&a)?;
            if w.kernel_shape.is_none() {
                return Err(failed!("attribute `kernel_shape` is required"));
            }
            op(move |inputs| Ok(vec![pool(input(inputs, 0)?, &w, Kind::Avg(include_pad))?]))
        }
        other => Err(unsupported!("op {other} is not a pool")),
    }
}

fn parse(ctx: &Ctx, allowed: &[&str]) -> OpResult<WindowAttrs> {
    let w = WindowAttrs::parse(&ctx.attrs(allowed)?)?;
    if w.kernel_shape.is_none() {
        return Err(failed!("attribute `kernel_shape` is required"));
    }
    Ok(w)
}

/// What a pool computes over each window.
#[derive(Clone, Copy)]
enum Kind {
    Max,
    /// Average; `true` counts the explicit padding in the divisor.
    Avg(bool),
    /// (sum |x|^p)^(1/p), padding counting as zero.
    Lp(i64),
}

fn lp_order(a: &crate::backend::candle::attrs::Attrs) -> OpResult<i64> {
    match a.int("p", 2)? {
        p if p >= 1 => Ok(p),
        p => Err(unsupported!("attribute `p` = {p} is not supported")),
    }
}

fn pool(x: &Value, w: &WindowAttrs, kind: Kind) -> OpResult<Value> {
    match kind {
        // MaxPool is defined on int8/uint8 too (opset 12); the others on floats.
        Kind::Max if !x.is_float() => {
            if !matches!(x.dtype, crate::tensor::DType::I8 | crate::tensor::DType::U8) {
                return Err(unsupported!("input of dtype {} is not supported", x.dtype));
            }
        }
        _ => x.require_float("input")?,
    }
    if x.rank() < 3 {
        return Err(failed!("input must have rank >= 3, got {:?}", x.shape()));
    }
    let kernel = w.kernel_shape.clone().unwrap_or_default();
    let xs = x.shape();
    let (n, c) = (xs[0], xs[1]);
    let g = w.geometry(&xs[2..], &kernel)?;
    let l = g.output_size();
    if n == 0 || c == 0 || l == 0 {
        // Nothing to pool (an empty batch, say): the empty result of the output shape;
        // candle cannot reduce an empty tensor.
        let mut shape = vec![n, c];
        shape.extend_from_slice(&g.output);
        let y = CTensor::zeros(shape, x.t.dtype(), x.t.device())?;
        return Ok(Value::new(y, x.dtype));
    }
    let t = widen_half(&x.t)?;
    let dt = t.dtype();
    // Max: padding never wins (-inf, or an integer type's lowest value); the others
    // read it as 0.
    let pad = match (kind, dt) {
        (Kind::Max, candle_core::DType::U8) => 0.0,
        (Kind::Max, candle_core::DType::I64) => i64::MIN as f64,
        (Kind::Max, _) => f64::NEG_INFINITY,
        _ => 0.0,
    };
    if let Kind::Max = kind {
        // candle's max skips NaN; ONNX Runtime's depends on where the NaN is.
        refuse_nan(&t)?;
    }
    let views = g.shifted_views(&t, pad)?;
    let fold = |f: &dyn Fn(&CTensor, &CTensor) -> candle_core::Result<CTensor>,
                map: &dyn Fn(&CTensor) -> candle_core::Result<CTensor>|
     -> OpResult<CTensor> {
        let mut acc = map(&views[0])?;
        for v in &views[1..] {
            acc = f(&acc, &map(v)?)?;
        }
        Ok(acc)
    };
    let y = match kind {
        Kind::Lp(p) => {
            let sum = fold(&|a, b| a.add(b), &|v| match p {
                1 => v.abs(),
                2 => v.sqr(),
                p => v.abs()?.powf(p as f64),
            })?;
            match p {
                1 => sum,
                2 => sum.sqrt()?,
                p => sum.powf(1.0 / p as f64)?,
            }
        }
        Kind::Max => fold(&|a, b| a.maximum(b), &|v| Ok(v.clone()))?,
        Kind::Avg(include_pad) => {
            let counts = g.counts(include_pad);
            if counts.contains(&0.0) {
                return Err(failed!("a pooling window lies entirely in the padding"));
            }
            let div = CTensor::from_vec(counts, g.output.as_slice(), x.t.device())?.to_dtype(dt)?;
            fold(&|a, b| a.add(b), &|v| Ok(v.clone()))?.broadcast_div(&div)?
        }
    };
    let mut shape = vec![n, c];
    shape.extend_from_slice(&g.output);
    Ok(Value::new(
        y.reshape(shape)?.to_dtype(x.t.dtype())?,
        x.dtype,
    ))
}

/// (sum over `dim` of |x|^p)^(1/p).
fn lp(t: &CTensor, p: i64, dim: usize) -> OpResult<CTensor> {
    Ok(match p {
        1 => t.abs()?.sum(dim)?,
        2 => t.sqr()?.sum(dim)?.sqrt()?,
        p => t.abs()?.powf(p as f64)?.sum(dim)?.powf(1.0 / p as f64)?,
    })
}

fn global(x: &Value, kind: Kind) -> OpResult<Value> {
    x.require_float("input")?;
    if x.rank() < 3 {
        return Err(failed!("input must have rank >= 3, got {:?}", x.shape()));
    }
    let t = widen_half(&x.t)?;
    let axes: Vec<usize> = (2..x.rank()).collect();
    let y = if let Kind::Lp(p) = kind {
        let flat = t.flatten_from(2)?;
        let mut shape = x.shape().to_vec();
        shape[2..].iter_mut().for_each(|d| *d = 1);
        lp(&flat, p, 2)?.reshape(shape)?
    } else if let Kind::Avg(_) = kind {
        t.mean_keepdim(axes)?
    } else {
        if x.t.elem_count() == 0 {
            return Err(failed!("cannot max-pool an empty input"));
        }
        refuse_nan(&t)?;
        let mut m = t;
        for a in axes {
            m = m.max_keepdim(a)?;
        }
        m
    };
    Ok(Value::new(y.to_dtype(x.t.dtype())?, x.dtype))
}
