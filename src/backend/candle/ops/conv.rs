//! Conv and ConvTranspose for 1-D, 2-D, 3-D (any rank), with asymmetric pads, strides,
//! dilations, groups and auto_pad, built from candle ops on strided views of the padded
//! input ([`super::window::Geometry::shifted_views`]): a depthwise conv sums the views
//! times their weights; any other stacks them (im2col; none for a pointwise conv) and
//! multiplies per group.
//! ConvTranspose multiplies first and scatters with `index_add`, then crops the pads.
//! bf16 is computed in f32 (candle's CPU matmul has no bf16 kernel) and rounded once.

use super::conv_cpu;
use super::window::{unravel, AutoPad, WindowAttrs};
use super::{contiguous, input, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, OpResult};
use crate::backend::candle::value::{index_tensor, Value};
use candle_core::{DType as CDType, Tensor as CTensor};

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[("Conv", 1), ("ConvTranspose", 1)];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((2, 3), (1, 1))?;
    let transpose = ctx.op() == "ConvTranspose";
    let extra: &[&str] = if transpose {
        &["output_padding", "output_shape"]
    } else {
        &[]
    };
    let (a, w, group) = conv_attrs(ctx, extra)?;
    if !transpose {
        return op(move |inputs| {
            let (x, wt) = (input(inputs, 0)?, input(inputs, 1)?);
            Ok(vec![conv(x, wt, opt_input(inputs, 2), &w, group)?])
        });
    }
    let t = Transposed {
        output_padding: a.ints("output_padding")?,
        output_shape: a.ints("output_shape")?,
    };
    op(move |inputs| {
        let (x, wt) = (input(inputs, 0)?, input(inputs, 1)?);
        Ok(vec![conv_transpose(
            x,
            wt,
            opt_input(inputs, 2),
            &w,
            group,
            &t,
        )?])
    })
}

/// The attributes every convolution has (window, `group`), plus `extra`: the parsed
/// attributes, the window and the group count.
pub(crate) fn conv_attrs<'a>(
    ctx: &Ctx<'a>,
    extra: &[&str],
) -> OpResult<(crate::backend::candle::attrs::Attrs<'a>, WindowAttrs, usize)> {
    let mut allowed = vec![
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ];
    allowed.extend_from_slice(extra);
    let a = ctx.attrs(&allowed)?;
    let w = WindowAttrs::parse(&a)?;
    let group = match a.int("group", 1)? {
        g if g >= 1 => g as usize,
        g => return Err(failed!("attribute `group` = {g} must be positive")),
    };
    Ok((a, w, group))
}

/// ConvTranspose's own attributes.
struct Transposed {
    output_padding: Option<Vec<i64>>,
    /// Spatial output shape (or the full one); the pads are derived from it.
    output_shape: Option<Vec<i64>>,
}

fn check(x: &Value, w: &Value, b: Option<&Value>) -> OpResult<CDType> {
    x.require_float("input")?;
    if w.dtype != x.dtype || b.is_some_and(|b| b.dtype != x.dtype) {
        return Err(failed!("X, W and B must have the same dtype"));
    }
    if x.rank() < 3 || w.rank() != x.rank() {
        return Err(failed!(
            "X {:?} and W {:?} must have the same rank >= 3",
            x.shape(),
            w.shape()
        ));
    }
    Ok(if x.t.dtype() == CDType::BF16 {
        CDType::F32
    } else {
        x.t.dtype()
    })
}

fn add_bias(y: CTensor, b: Option<&Value>, m: usize, dt: CDType) -> OpResult<CTensor> {
    let Some(b) = b else { return Ok(y) };
    if b.shape() != [m] {
        return Err(failed!("B has shape {:?}, expected [{m}]", b.shape()));
    }
    let mut shape = vec![1usize; y.rank()];
    shape[1] = m;
    Ok(y.broadcast_add(&b.t.to_dtype(dt)?.reshape(shape)?)?)
}

pub(crate) fn conv(
    x: &Value,
    w: &Value,
    b: Option<&Value>,
    attrs: &WindowAttrs,
    group: usize,
) -> OpResult<Value> {
    let dt = check(x, w, b)?;
    let (xs, ws) = (x.shape(), w.shape());
    let (n, c, m, cg) = (xs[0], xs[1], ws[0], ws[1]);
    if group > c.max(1) || cg.checked_mul(group) != Some(c) || m % group != 0 {
        return Err(failed!(
            "X has {c} channels, W {ws:?} with group {group} does not fit"
        ));
    }
    let g = attrs.geometry(&xs[2..], &ws[2..])?;
    let (k, l, mg) = (g.kernel_size(), g.output_size(), m / group);
    let xt = x.t.to_dtype(dt)?;
    let wt = contiguous(w.t.to_dtype(dt)?)?;
    // The direct CPU kernels, where they apply (checked once).
    let direct = conv_cpu::applies(&xt, xs.len() - 2);
    let y = if cg == 1 && mg == 1 && direct {
        conv_cpu::depthwise(&xt, &wt, &g)?.reshape((n, c, l))?
    } else if cg == 1 && mg == 1 {
        // Depthwise: per channel, the sum over kernel offsets of the shifted input times
        // that offset's weight.
        let wk = wt.reshape((c, k))?.t()?.contiguous()?;
        let mut wshape = vec![1, c];
        wshape.resize(xs.len(), 1);
        let mut acc: Option<CTensor> = None;
        for (i, v) in g.shifted_views(&xt, 0.0)?.iter().enumerate() {
            let term = v.broadcast_mul(&wk.get(i)?.reshape(wshape.as_slice())?)?;
            acc = Some(match acc {
                None => term,
                Some(a) => a.add(&term)?,
            });
        }
        acc.ok_or_else(|| failed!("empty kernel"))?
            .reshape((n, c, l))?
    } else {
        // im2col [N, C*K, L] (the input itself for a pointwise conv), then one matmul
        // per group.
        let cols = if g.is_pointwise() {
            contiguous(xt)?.reshape((n, group, cg, l))?
        } else if direct {
            conv_cpu::im2col(&xt, &g)?.reshape((n, group, cg * k, l))?
        } else {
            CTensor::stack(&g.shifted_views(&xt, 0.0)?, 2)?.reshape((n, group, cg * k, l))?
        };
        let wt = wt.reshape((group, mg, cg * k))?;
        let mut parts = Vec::with_capacity(group);
        for gi in 0..group {
            let wg = wt.get(gi)?.broadcast_as((n, mg, cg * k))?;
            parts.push(wg.matmul(&cols.narrow(1, gi, 1)?.squeeze(1)?)?);
        }
        if parts.len() == 1 {
            parts.remove(0)
        } else {
            CTensor::cat(&parts, 1)?
        }
    };
    let mut shape = vec![n, m];
    shape.extend_from_slice(&g.output);
    let y = add_bias(y.reshape(shape)?, b, m, dt)?;
    Ok(Value::new(y.to_dtype(x.t.dtype())?, x.dtype))
}

fn conv_transpose(
    x: &Value,
    w: &Value,
    b: Option<&Value>,
    attrs: &WindowAttrs,
    group: usize,
    t: &Transposed,
) -> OpResult<Value> {
    let dt = check(x, w, b)?;
    let (xs, ws) = (x.shape(), w.shape());
    let (n, c, mg) = (xs[0], xs[1], ws[1]);
    if ws[0] != c || group > c.max(1) || c % group != 0 {
        return Err(failed!(
            "X has {c} channels, W {ws:?} with group {group} does not fit"
        ));
    }
    let m = mg
        .checked_mul(group)
        .filter(|&m| m <= super::MAX_ELEMENTS)
        .ok_or_else(|| failed!("W {ws:?} with group {group} is too large"))?;
    let cg = c / group;
    let sp = xs.len() - 2;
    let kernel = &ws[2..];
    if kernel.len() != sp {
        return Err(failed!(
            "kernel has {} dims, input has {sp} spatial dims",
            kernel.len()
        ));
    }
    attrs.check_kernel(kernel)?;
    if kernel.contains(&0) || xs[2..].contains(&0) {
        return Err(failed!(
            "X {xs:?} and W {ws:?} must have non-empty spatial dims"
        ));
    }
    let mut g = attrs.params(sp)?;
    let op_pad: Vec<usize> = match t.output_padding.as_deref() {
        None => vec![0; sp],
        Some(v) if v.len() == sp && v.iter().all(|&p| p >= 0) => {
            v.iter().map(|&p| p as usize).collect()
        }
        Some(v) => {
            return Err(failed!(
                "output_padding {v:?} must have {sp} non-negative values"
            ))
        }
    };
    let target: Option<Vec<usize>> = match (&t.output_shape, attrs.auto_pad) {
        (Some(os), _) => {
            let os = &os[os.len().saturating_sub(sp)..];
            if os.len() != sp || os.iter().any(|&d| d < 1) {
                return Err(failed!(
                    "output_shape {os:?} must have {sp} positive values"
                ));
            }
            Some(os.iter().map(|&d| d as usize).collect())
        }
        (None, AutoPad::SameUpper | AutoPad::SameLower) => {
            Some((0..sp).map(|i| xs[2 + i] * g.strides[i]).collect())
        }
        _ => None,
    };
    let mut full = Vec::with_capacity(sp);
    for i in 0..sp {
        if op_pad[i] >= g.strides[i].max(g.dilations[i]) {
            return Err(failed!(
                "output_padding {} must be smaller than stride or dilation",
                op_pad[i]
            ));
        }
        let mut f =
            (xs[2 + i] - 1) * g.strides[i] + (kernel[i] - 1) * g.dilations[i] + 1 + op_pad[i];
        if let Some(target) = &target {
            // Pads follow from the requested output size; SAME_UPPER puts the odd one at
            // the end, the other modes at the beginning. A larger requested size extends
            // the output with zeros at the end (as ONNX Runtime and the reference do).
            let total = f.saturating_sub(target[i]);
            f = f.max(target[i]);
            (g.pads_begin[i], g.pads_end[i]) = if attrs.auto_pad == AutoPad::SameUpper {
                (total / 2, total - total / 2)
            } else {
                (total - total / 2, total / 2)
            };
        }
        if g.pads_begin[i] + g.pads_end[i] >= f {
            return Err(failed!("pads remove the whole output of spatial dim {i}"));
        }
        full.push(f);
    }
    let mut out_shape = vec![n, m];
    out_shape.extend_from_slice(&full);
    super::check_size(&out_shape)?;
    let (k, lin): (usize, usize) = (kernel.iter().product(), xs[2..].iter().product());
    // Scatter positions: input position l and kernel offset k land at l*s + k*d.
    let mut idx = Vec::with_capacity(k * lin);
    let (mut kk, mut ll) = (vec![0; sp], vec![0; sp]);
    for ki in 0..k {
        unravel(ki, kernel, &mut kk);
        for li in 0..lin {
            unravel(li, &xs[2..], &mut ll);
            let mut flat = 0usize;
            for i in 0..sp {
                flat = flat * full[i] + ll[i] * g.strides[i] + kk[i] * g.dilations[i];
            }
            idx.push(u32::try_from(flat).map_err(|_| failed!("output is too large"))?);
        }
    }
    let xt = contiguous(x.t.to_dtype(dt)?)?.reshape((n, c, lin))?;
    let wt = contiguous(w.t.to_dtype(dt)?)?.reshape((c, mg * k))?;
    let mut parts = Vec::with_capacity(group);
    for gi in 0..group {
        let wg = wt
            .narrow(0, gi * cg, cg)?
            .t()?
            .contiguous()?
            .broadcast_as((n, mg * k, cg))?;
        parts.push(wg.matmul(&xt.narrow(1, gi * cg, cg)?)?);
    }
    let cols = if parts.len() == 1 {
        parts.remove(0)
    } else {
        CTensor::cat(&parts, 1)?
    };
    let cols = cols.reshape((n, m, k * lin))?.contiguous()?;
    let total: usize = full.iter().product();
    let out = CTensor::zeros((n, m, total), dt, x.t.device())?.index_add(
        &index_tensor(idx, x.t.device())?,
        &cols,
        2,
    )?;
    let mut shape = vec![n, m];
    shape.extend_from_slice(&full);
    let mut y = out.reshape(shape)?;
    for (i, &f) in full.iter().enumerate() {
        y = y.narrow(2 + i, g.pads_begin[i], f - g.pads_begin[i] - g.pads_end[i])?;
    }
    let y = add_bias(y.contiguous()?, b, m, dt)?;
    Ok(Value::new(y.to_dtype(x.t.dtype())?, x.dtype))
}
