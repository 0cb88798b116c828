//! Pooling over any number of spatial dims: MaxPool (pads, strides, dilations from opset
//! 10, ceil_mode; the Indices output is refused), AveragePool (count_include_pad from
//! opset 7, ceil_mode from 10, dilations from 19), GlobalAveragePool, GlobalMaxPool.
//! Windows are gathered with one `index_select` (see [`super::window`]) and reduced.

use super::window::{WindowAttrs, PAD};
use super::{contiguous, input, op, widen_half, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::{index_tensor, Value};
use candle_core::{Device, Tensor as CTensor};

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("MaxPool", 1),
    ("AveragePool", 1),
    ("GlobalAveragePool", 1),
    ("GlobalMaxPool", 1),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    match ctx.op() {
        "GlobalAveragePool" | "GlobalMaxPool" => {
            ctx.arity((1, 1), (1, 1))?;
            ctx.attrs(&[])?;
            let avg = ctx.op() == "GlobalAveragePool";
            op(move |inputs| Ok(vec![global(input(inputs, 0)?, avg)?]))
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
            op(move |inputs| Ok(vec![pool(input(inputs, 0)?, &w, None)?]))
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
            op(move |inputs| Ok(vec![pool(input(inputs, 0)?, &w, Some(include_pad))?]))
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

/// Max pooling when `avg` is `None`, else average pooling (`Some(count_include_pad)`).
fn pool(x: &Value, w: &WindowAttrs, avg: Option<bool>) -> OpResult<Value> {
    x.require_float("input")?;
    if x.rank() < 3 {
        return Err(failed!("input must have rank >= 3, got {:?}", x.shape()));
    }
    let kernel = w.kernel_shape.clone().unwrap_or_default();
    let xs = x.shape();
    let (n, c) = (xs[0], xs[1]);
    let g = w.geometry(&xs[2..], &kernel)?;
    let (k, l, p) = (g.kernel_size(), g.output_size(), g.input_size());
    let idx = g.gather_indices()?;
    let t = widen_half(&x.t)?;
    let dt = t.dtype();
    let cols = contiguous(t)?
        .reshape((n, c, p))?
        .index_select(&index_tensor(idx.clone())?, 2)?;
    let cols = cols.reshape((n, c, k, l))?;
    let y = match avg {
        None => {
            // Padding was gathered as 0; make it -inf so it never wins.
            let has_pad = idx.contains(&PAD);
            let cols = if has_pad {
                let mask: Vec<f32> = idx
                    .iter()
                    .map(|&i| if i == PAD { f32::NEG_INFINITY } else { 0.0 })
                    .collect();
                let mask = CTensor::from_vec(mask, (k, l), &Device::Cpu)?.to_dtype(dt)?;
                cols.broadcast_add(&mask)?
            } else {
                cols
            };
            cols.max(2)?
        }
        Some(include_pad) => {
            let counts = g.counts(include_pad);
            if counts.contains(&0.0) {
                return Err(failed!("a pooling window lies entirely in the padding"));
            }
            let div = CTensor::from_vec(counts, l, &Device::Cpu)?.to_dtype(dt)?;
            cols.sum(2)?.broadcast_div(&div)?
        }
    };
    let mut shape = vec![n, c];
    shape.extend_from_slice(&g.output);
    Ok(Value::new(
        y.reshape(shape)?.to_dtype(x.t.dtype())?,
        x.dtype,
    ))
}

fn global(x: &Value, avg: bool) -> OpResult<Value> {
    x.require_float("input")?;
    if x.rank() < 3 {
        return Err(failed!("input must have rank >= 3, got {:?}", x.shape()));
    }
    let t = widen_half(&x.t)?;
    let axes: Vec<usize> = (2..x.rank()).collect();
    let y = if avg {
        t.mean_keepdim(axes)?
    } else {
        if x.t.elem_count() == 0 {
            return Err(failed!("cannot max-pool an empty input"));
        }
        let mut m = t;
        for a in axes {
            m = m.max_keepdim(a)?;
        }
        m
    };
    Ok(Value::new(y.to_dtype(x.t.dtype())?, x.dtype))
}
