//! Reductions: Reduce* (axes from the `axes` attribute before opset 13 for ReduceSum and
//! before opset 18 for the others, from an input after, with `noop_with_empty_axes`),
//! ArgMax/ArgMin (`select_last_index`), and Softmax/LogSoftmax, whose `axis` meant
//! "flatten to 2-D at axis" before opset 13 and "this one axis" from opset 13.
//! Half-precision inputs are reduced in f32 and rounded back once.

use super::{
    contiguous, cpu_fast, first_arg, input, norm_axes, norm_axis, op, opt_input, refuse_nan,
    widen_half, Built, Ctx,
};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::{full, Value};
use crate::tensor::DType;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("ReduceSum", 1),
    ("ReduceMean", 1),
    ("ReduceMax", 1),
    ("ReduceMin", 1),
    ("ReduceL1", 1),
    ("ReduceL2", 1),
    ("ReduceSumSquare", 1),
    ("ReduceLogSum", 1),
    ("ReduceLogSumExp", 1),
    ("ArgMax", 1),
    ("ArgMin", 1),
    ("Softmax", 1),
    ("LogSoftmax", 1),
    ("Hardmax", 1),
    ("ReduceProd", 1),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "ArgMax" | "ArgMin" => build_arg(ctx),
        "Softmax" | "LogSoftmax" | "Hardmax" => build_softmax(ctx),
        _ => build_reduce(ctx),
    }
}

fn flag(a: &crate::backend::candle::attrs::Attrs, name: &str, default: i64) -> OpResult<bool> {
    match a.int(name, default)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(unsupported!("attribute `{name}` = {v} is not supported")),
    }
}

fn build_reduce(ctx: &Ctx) -> OpResult<Built> {
    let name = ctx.op().to_string();
    let axes_input = ctx.opset >= if name == "ReduceSum" { 13 } else { 18 };
    let a = if axes_input {
        ctx.arity((1, 2), (1, 1))?;
        ctx.attrs(&["keepdims", "noop_with_empty_axes"])?
    } else {
        ctx.arity((1, 1), (1, 1))?;
        ctx.attrs(&["axes", "keepdims"])?
    };
    let keepdims = flag(&a, "keepdims", 1)?;
    let noop = flag(&a, "noop_with_empty_axes", 0)?;
    let attr_axes = a.ints("axes")?;
    let opset = ctx.opset;
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let axes = match (&attr_axes, opt_input(inputs, 1)) {
            (Some(a), _) => a.clone(),
            (None, Some(v)) if axes_input => v.i64s("axes")?,
            _ => vec![],
        };
        if axes.is_empty() && noop {
            return Ok(vec![x.clone()]);
        }
        let axes = if axes.is_empty() {
            (0..x.rank()).collect()
        } else {
            norm_axes(&axes, x.rank())?
        };
        Ok(vec![reduce(&name, opset, x, &axes, keepdims)?])
    })
}

fn reduce(name: &str, opset: i64, x: &Value, axes: &[usize], keepdims: bool) -> OpResult<Value> {
    let int_ok = matches!(
        name,
        "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceSumSquare" | "ReduceProd"
    );
    let bool_ok = matches!(name, "ReduceMax" | "ReduceMin") && opset >= 20;
    if (x.dtype == DType::Bool && !bool_ok) || (!int_ok && !x.is_float()) {
        return Err(unsupported!("input of dtype {} is not supported", x.dtype));
    }
    let mut out_dims: Vec<usize> = x.shape().to_vec();
    for &a in axes {
        out_dims[a] = 1;
    }
    if axes.iter().any(|&a| x.shape()[a] == 0) {
        // The value of a reduction over an empty set, as the spec defines it.
        let fill = match name {
            "ReduceSum" | "ReduceSumSquare" | "ReduceL1" | "ReduceL2" => 0.0,
            "ReduceProd" => 1.0,
            "ReduceLogSum" | "ReduceLogSumExp" if x.is_float() => f64::NEG_INFINITY,
            "ReduceMax" if x.is_float() => f64::NEG_INFINITY,
            "ReduceMin" if x.is_float() => f64::INFINITY,
            "ReduceMax" if x.dtype == DType::Bool => 0.0,
            "ReduceMin" if x.dtype == DType::Bool => 1.0,
            _ => return Err(failed!("cannot reduce an empty axis with {name}")),
        };
        return finish(
            full(fill, &out_dims, x.dtype, x.t.device())?,
            x,
            axes,
            keepdims,
        );
    }
    if matches!(name, "ReduceMax" | "ReduceMin") {
        refuse_nan(&x.t)?;
    }
    if name == "ReduceProd" {
        return finish(prod(x, axes, &out_dims)?, x, axes, keepdims);
    }
    let t = widen_half(&x.t)?;
    let ax = axes.to_vec();
    let max = |t: &CTensor| -> OpResult<CTensor> {
        let mut m = t.clone();
        for &a in axes {
            m = m.max_keepdim(a)?;
        }
        Ok(m)
    };
    let r = match name {
        "ReduceSum" => t.sum_keepdim(ax)?,
        "ReduceMean" => t.mean_keepdim(ax)?,
        "ReduceMax" => max(&t)?,
        "ReduceMin" => {
            let mut m = t.clone();
            for &a in axes {
                m = m.min_keepdim(a)?;
            }
            m
        }
        "ReduceL1" => t.abs()?.sum_keepdim(ax)?,
        "ReduceL2" => t.sqr()?.sum_keepdim(ax)?.sqrt()?,
        "ReduceSumSquare" => t.mul(&t)?.sum_keepdim(ax)?,
        "ReduceLogSum" => t.sum_keepdim(ax)?.log()?,
        "ReduceLogSumExp" => {
            let m = max(&t)?;
            // All -inf (or +inf) maxima would give NaN below; shift by 0 there instead.
            let m = m
                .abs()?
                .lt(f64::INFINITY)?
                .where_cond(&m, &m.zeros_like()?)?;
            t.broadcast_sub(&m)?
                .exp()?
                .sum_keepdim(ax)?
                .log()?
                .add(&m)?
        }
        other => return Err(unsupported!("op {other} is not a reduction")),
    };
    finish(r.to_dtype(x.t.dtype())?, x, axes, keepdims)
}

/// Product over `axes` (candle has no product reduction): f64 for floats, wrapping i64
/// for integers, rounded once.
fn prod(x: &Value, axes: &[usize], out_dims: &[usize]) -> OpResult<CTensor> {
    let kept: Vec<usize> = (0..x.rank()).filter(|a| !axes.contains(a)).collect();
    let mut perm = kept.clone();
    perm.extend_from_slice(axes);
    let inner: usize = axes.iter().map(|&a| x.shape()[a]).product();
    let t = x.t.permute(perm)?.contiguous()?;
    let v = Value::new(t, x.dtype);
    let dev = x.t.device();
    if x.is_float() {
        let d = v.f64s()?;
        let p: Vec<f64> = d.chunks(inner.max(1)).map(|c| c.iter().product()).collect();
        Ok(CTensor::from_vec(p, out_dims, dev)?.to_dtype(x.t.dtype())?)
    } else if x.t.dtype() == candle_core::DType::I64 {
        let d = v.i64s("input")?;
        let p: Vec<i64> = d
            .chunks(inner.max(1))
            .map(|c| c.iter().fold(1i64, |a, &b| a.wrapping_mul(b)))
            .collect();
        Ok(CTensor::from_vec(p, out_dims, dev)?)
    } else {
        Err(unsupported!("input of dtype {} is not supported", x.dtype))
    }
}

fn finish(r: CTensor, x: &Value, axes: &[usize], keepdims: bool) -> OpResult<Value> {
    let r = if keepdims {
        r
    } else {
        let dims: Vec<usize> = x
            .shape()
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect();
        r.reshape(dims)?
    };
    Value::wrapped(r, x.dtype)
}

fn build_arg(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (1, 1))?;
    let a = ctx.attrs(if ctx.opset >= 12 {
        &["axis", "keepdims", "select_last_index"]
    } else {
        &["axis", "keepdims"]
    })?;
    let axis = a.int("axis", 0)?;
    let keepdims = flag(&a, "keepdims", 1)?;
    let last = flag(&a, "select_last_index", 0)?;
    let is_max = ctx.op() == "ArgMax";
    op(move |inputs| {
        let x = input(inputs, 0)?;
        if x.dtype == DType::Bool {
            return Err(unsupported!("input of dtype bool is not supported"));
        }
        let axis = norm_axis(axis, x.rank())?;
        let dim = x.shape()[axis];
        if dim == 0 {
            return Err(failed!(
                "cannot take {} over an empty axis",
                if is_max { "ArgMax" } else { "ArgMin" }
            ));
        }
        refuse_nan(&x.t)?;
        let mut t = contiguous(x.t.clone())?;
        if last {
            let rev: Vec<i64> = (0..dim as i64).rev().collect();
            t = t.index_select(&CTensor::from_vec(rev, dim, x.t.device())?, axis)?;
        }
        // candle returns the first index among equal extremes.
        let mut i = first_arg(&t, axis, is_max)?.to_dtype(candle_core::DType::I64)?;
        if last {
            i = i.affine(-1.0, (dim - 1) as f64)?;
        }
        let i = if keepdims { i } else { i.squeeze(axis)? };
        Ok(vec![Value::new(i, DType::I64)])
    })
}

fn build_softmax(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (1, 1))?;
    let legacy = ctx.opset < 13;
    let axis = ctx
        .attrs(&["axis"])?
        .int("axis", if legacy { 1 } else { -1 })?;
    let log = ctx.op() == "LogSoftmax";
    let hard = ctx.op() == "Hardmax";
    op(move |inputs| {
        let x = input(inputs, 0)?;
        x.require_float("input")?;
        if x.t.elem_count() == 0 {
            return Ok(vec![x.clone()]);
        }
        let dims = x.shape().to_vec();
        let t = widen_half(&x.t)?;
        let (t, dim) = if legacy {
            // Opset < 13: the input is viewed as 2-D [prod(dims[..axis]), prod(dims[axis..])].
            let r = dims.len() as i64;
            if axis < -r || axis > r {
                return Err(failed!("axis {axis} is out of range for rank {r}"));
            }
            let a = if axis < 0 { axis + r } else { axis } as usize;
            let outer: usize = dims[..a].iter().product();
            let inner: usize = dims[a..].iter().product();
            (t.reshape((outer, inner))?, 1)
        } else {
            (t, norm_axis(axis, dims.len())?)
        };
        if hard {
            refuse_nan(&t)?;
            // One-hot of the first maximum along the axis.
            let len = t.dims()[dim];
            let first = first_arg(&t, dim, true)?.to_dtype(candle_core::DType::I64)?;
            let mut rshape = vec![1usize; t.rank()];
            rshape[dim] = len;
            let range = CTensor::arange(0i64, len as i64, t.device())?.reshape(rshape)?;
            let y = first.broadcast_eq(&range)?.to_dtype(x.t.dtype())?;
            return Ok(vec![Value::new(y.reshape(dims)?, x.dtype)]);
        }
        if dim + 1 == t.rank() {
            if let Some(y) = cpu_fast::softmax_last(&t, log)? {
                return Ok(vec![Value::new(
                    y.reshape(dims)?.to_dtype(x.t.dtype())?,
                    x.dtype,
                )]);
            }
        }
        let m = t.max_keepdim(dim)?;
        let shifted = t.broadcast_sub(&m)?;
        let e = shifted.exp()?;
        let s = e.sum_keepdim(dim)?;
        let y = if log {
            shifted.broadcast_sub(&s.log()?)?
        } else {
            e.broadcast_div(&s)?
        };
        Ok(vec![Value::new(
            y.reshape(dims)?.to_dtype(x.t.dtype())?,
            x.dtype,
        )])
    })
}
