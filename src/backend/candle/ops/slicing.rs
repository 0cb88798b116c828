//! Ops that select, join or repeat parts of tensors: Slice, Gather, Concat, Split, Tile,
//! Pad. Attribute-vs-input switches follow the opset (Slice 10, Split 13, Pad 11), and
//! Split's opset-18 `num_outputs` uneven split is honoured.

use super::{
    check_size, contiguous, dims_usize, input, norm_axes, norm_axis, op, opt_input, Built, Ctx,
};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::{full, Value};
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("Slice", 1),
    ("Gather", 1),
    ("Concat", 1),
    ("Split", 1),
    ("Tile", 1),
    ("Pad", 1),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "Slice" => build_slice(ctx),
        "Gather" => {
            ctx.arity((2, 2), (1, 1))?;
            let axis = ctx.attrs(&["axis"])?.int("axis", 0)?;
            op(move |inputs| Ok(vec![gather(input(inputs, 0)?, input(inputs, 1)?, axis)?]))
        }
        "Concat" => {
            ctx.arity((1, usize::MAX), (1, 1))?;
            let a = ctx.attrs(&["axis"])?;
            // Opset 1 defaults to axis 1; from opset 4 the attribute is required.
            let axis = match (a.opt_int("axis")?, ctx.opset < 4) {
                (Some(x), _) => x,
                (None, true) => 1,
                (None, false) => return Err(failed!("attribute `axis` is required")),
            };
            op(move |inputs| Ok(vec![concat(inputs, axis)?]))
        }
        "Split" => build_split(ctx),
        "Tile" => {
            if ctx.opset < 6 {
                return Err(unsupported!(
                    "opset {} Tile (inputs `tiles`, `axis`) is not supported",
                    ctx.opset
                ));
            }
            ctx.arity((2, 2), (1, 1))?;
            ctx.attrs(&[])?;
            op(|inputs| Ok(vec![tile(input(inputs, 0)?, input(inputs, 1)?)?]))
        }
        "Pad" => build_pad(ctx),
        other => Err(unsupported!("op {other} is not in the slicing family")),
    }
}

fn build_slice(ctx: &Ctx) -> OpResult<Built> {
    if ctx.opset < 10 {
        ctx.arity((1, 1), (1, 1))?;
        let a = ctx.attrs(&["starts", "ends", "axes"])?;
        let starts = a
            .ints("starts")?
            .ok_or_else(|| failed!("attribute `starts` is required"))?;
        let ends = a
            .ints("ends")?
            .ok_or_else(|| failed!("attribute `ends` is required"))?;
        let axes = a.ints("axes")?;
        return op(move |inputs| {
            let x = input(inputs, 0)?;
            Ok(vec![slice(x, &starts, &ends, axes.as_deref(), None)?])
        });
    }
    ctx.arity((3, 5), (1, 1))?;
    ctx.attrs(&[])?;
    op(|inputs| {
        let x = input(inputs, 0)?;
        let starts = input(inputs, 1)?.i64s("starts")?;
        let ends = input(inputs, 2)?.i64s("ends")?;
        let axes = opt_input(inputs, 3).map(|v| v.i64s("axes")).transpose()?;
        let steps = opt_input(inputs, 4).map(|v| v.i64s("steps")).transpose()?;
        Ok(vec![slice(
            x,
            &starts,
            &ends,
            axes.as_deref(),
            steps.as_deref(),
        )?])
    })
}

fn slice(
    x: &Value,
    starts: &[i64],
    ends: &[i64],
    axes: Option<&[i64]>,
    steps: Option<&[i64]>,
) -> OpResult<Value> {
    let n = starts.len();
    let default_axes: Vec<i64> = (0..n as i64).collect();
    let axes = axes.unwrap_or(&default_axes);
    let ones = vec![1i64; n];
    let steps = steps.unwrap_or(&ones);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Err(failed!(
            "starts, ends, axes and steps have different lengths"
        ));
    }
    let axes = norm_axes(axes, x.rank())?;
    let mut t = x.t.clone();
    for i in 0..n {
        let (axis, step) = (axes[i], steps[i] as i128);
        let dim = x.shape()[axis] as i128;
        if step == 0 {
            return Err(failed!("step is 0"));
        }
        let norm = |v: i64| if v < 0 { v as i128 + dim } else { v as i128 };
        let (s, e) = if step > 0 {
            (norm(starts[i]).clamp(0, dim), norm(ends[i]).clamp(0, dim))
        } else {
            (
                norm(starts[i]).clamp(0, dim - 1),
                norm(ends[i]).clamp(-1, dim - 1),
            )
        };
        let count = if step > 0 && e > s {
            (e - s + step - 1) / step
        } else if step < 0 && s > e {
            (s - e - step - 1) / -step
        } else {
            0
        };
        t = if step == 1 {
            t.narrow(axis, s as usize, count as usize)?
        } else {
            let idx: Vec<i64> = (0..count).map(|k| (s + k * step) as i64).collect();
            let len = idx.len();
            {
                let dev = t.device().clone();
                contiguous(t)?.index_select(&CTensor::from_vec(idx, len, &dev)?, axis)?
            }
        };
    }
    Ok(Value::new(t, x.dtype))
}

fn gather(data: &Value, indices: &Value, axis: i64) -> OpResult<Value> {
    let axis = norm_axis(axis, data.rank())?;
    let dim = data.shape()[axis] as i64;
    let idx = indices.i64s("indices")?;
    let idx = idx
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + dim } else { i };
            if (0..dim).contains(&j) {
                Ok(j)
            } else {
                Err(failed!(
                    "index {i} is out of range for axis {axis} of size {dim}"
                ))
            }
        })
        .collect::<OpResult<Vec<i64>>>()?;
    let len = idx.len();
    let picked = contiguous(data.t.clone())?
        .index_select(&CTensor::from_vec(idx, len, data.t.device())?, axis)?;
    let mut shape = data.shape()[..axis].to_vec();
    shape.extend_from_slice(indices.shape());
    shape.extend_from_slice(&data.shape()[axis + 1..]);
    Ok(Value::new(picked.reshape(shape)?, data.dtype))
}

pub(crate) fn concat(inputs: &[Option<&Value>], axis: i64) -> OpResult<Value> {
    let vals = inputs
        .iter()
        .enumerate()
        .map(|(i, v)| v.ok_or_else(|| failed!("input {i} is missing")))
        .collect::<OpResult<Vec<&Value>>>()?;
    let first = vals[0];
    let axis = norm_axis(axis, first.rank())?;
    for v in &vals {
        if v.dtype != first.dtype {
            return Err(failed!(
                "inputs have different dtypes {} and {}",
                first.dtype,
                v.dtype
            ));
        }
        let same = v.rank() == first.rank()
            && v.shape()
                .iter()
                .zip(first.shape())
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b);
        if !same {
            return Err(failed!(
                "shapes {:?} and {:?} differ outside axis {axis}",
                first.shape(),
                v.shape()
            ));
        }
    }
    let parts: Vec<&CTensor> = vals
        .iter()
        .filter(|v| v.shape()[axis] > 0)
        .map(|v| &v.t)
        .collect();
    let t = if parts.is_empty() {
        first.t.clone()
    } else {
        CTensor::cat(&parts, axis)?
    };
    Ok(Value::new(t, first.dtype))
}

fn build_split(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    let n_out = ctx.node.output.len();
    if n_out == 0 {
        return Err(failed!("Split has no outputs"));
    }
    let allowed: &[&str] = match v {
        ..=12 => &["axis", "split"],
        13..=17 => &["axis"],
        _ => &["axis", "num_outputs"],
    };
    ctx.arity(
        (1, if (2..13).contains(&v) { 1 } else { 2 }),
        (1, usize::MAX),
    )?;
    let a = ctx.attrs(allowed)?;
    let axis = a.int("axis", 0)?;
    let attr_split = a.ints("split")?;
    let num_outputs = a.opt_int("num_outputs")?;
    if let Some(n) = num_outputs {
        if n != n_out as i64 {
            return Err(failed!(
                "attribute `num_outputs` = {n} but the node has {n_out} outputs"
            ));
        }
    }
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let axis = norm_axis(axis, x.rank())?;
        let dim = x.shape()[axis];
        let given = match (&attr_split, opt_input(inputs, 1)) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(s)) => Some(s.i64s("split")?),
            _ => None,
        };
        let sizes: Vec<usize> = match given {
            Some(s) => {
                let s = dims_usize(&s, "split")?;
                if s.len() != n_out || s.iter().sum::<usize>() != dim {
                    return Err(failed!("split {s:?} does not divide axis {axis} of size {dim} into {n_out} outputs"));
                }
                s
            }
            None if num_outputs.is_some() => {
                // Opset 18: ceil-sized chunks, the last one smaller.
                let chunk = dim.div_ceil(n_out);
                let last = dim
                    .checked_sub(chunk * (n_out - 1))
                    .ok_or_else(|| failed!("cannot split size {dim} into {n_out} outputs"))?;
                let mut s = vec![chunk; n_out - 1];
                s.push(last);
                s
            }
            None => {
                if dim % n_out != 0 {
                    return Err(failed!(
                        "axis {axis} of size {dim} does not split evenly into {n_out} outputs"
                    ));
                }
                vec![dim / n_out; n_out]
            }
        };
        let mut off = 0;
        let mut out = Vec::with_capacity(n_out);
        for s in sizes {
            out.push(Value::new(x.t.narrow(axis, off, s)?.contiguous()?, x.dtype));
            off += s;
        }
        Ok(out)
    })
}

fn tile(x: &Value, repeats: &Value) -> OpResult<Value> {
    let reps = dims_usize(&repeats.i64s("repeats")?, "repeats")?;
    if reps.len() != x.rank() {
        return Err(failed!(
            "repeats has {} values for rank {}",
            reps.len(),
            x.rank()
        ));
    }
    let out_shape = x
        .shape()
        .iter()
        .zip(&reps)
        .map(|(d, r)| d.checked_mul(*r))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| failed!("tiled shape overflows"))?;
    check_size(&out_shape)?;
    if out_shape.contains(&0) {
        return Ok(Value::new(
            full(0.0, &out_shape, x.dtype, x.t.device())?,
            x.dtype,
        ));
    }
    let mut t = x.t.clone();
    for (axis, &r) in reps.iter().enumerate() {
        if r > 1 {
            t = CTensor::cat(&vec![&t; r], axis)?;
        }
    }
    Ok(Value::new(t, x.dtype))
}

#[derive(Clone, Copy, PartialEq)]
enum PadMode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

fn build_pad(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    let allowed: &[&str] = match v {
        ..=1 => &["mode", "paddings", "value"],
        2..=10 => &["mode", "pads", "value"],
        _ => &["mode"],
    };
    ctx.arity(
        if v < 11 {
            (1, 1)
        } else {
            (2, if v >= 18 { 4 } else { 3 })
        },
        (1, 1),
    )?;
    let a = ctx.attrs(allowed)?;
    let mode = match a.string("mode")?.as_deref().unwrap_or("constant") {
        "constant" => PadMode::Constant,
        "reflect" => PadMode::Reflect,
        "edge" => PadMode::Edge,
        "wrap" if v >= 19 => PadMode::Wrap,
        m => return Err(unsupported!("attribute `mode` = \"{m}\" is not supported")),
    };
    let attr_pads = a.ints(if v < 2 { "paddings" } else { "pads" })?;
    let attr_value = a.float("value", 0.0)? as f64;
    if v < 11 && attr_pads.is_none() {
        return Err(failed!("attribute `pads` is required"));
    }
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let rank = x.rank();
        let pads = match &attr_pads {
            Some(p) => p.clone(),
            None => input(inputs, 1)?.i64s("pads")?,
        };
        let axes = match opt_input(inputs, 3) {
            Some(ax) => norm_axes(&ax.i64s("axes")?, rank)?,
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(failed!(
                "pads has {} values, expected {}",
                pads.len(),
                2 * axes.len()
            ));
        }
        let fill = match (attr_pads.is_some(), opt_input(inputs, 2)) {
            (false, Some(cv)) => {
                if cv.dtype != x.dtype || cv.t.elem_count() != 1 {
                    return Err(failed!("constant_value must be one {} value", x.dtype));
                }
                Some(cv.t.reshape(())?)
            }
            _ => None,
        };
        let mut out_shape = x.shape().to_vec();
        for (i, &axis) in axes.iter().enumerate() {
            let d = (out_shape[axis] as i64)
                .saturating_add(pads[i])
                .saturating_add(pads[i + axes.len()]);
            out_shape[axis] =
                usize::try_from(d).map_err(|_| failed!("pads {pads:?} give a negative size"))?;
        }
        check_size(&out_shape)?;
        let mut t = x.t.clone();
        for (i, &axis) in axes.iter().enumerate() {
            let (b, e) = (pads[i], pads[i + axes.len()]);
            t = pad_axis(&t, x, axis, b, e, mode, fill.as_ref(), attr_value)?;
        }
        Ok(vec![Value::new(t, x.dtype)])
    })
}

#[allow(clippy::too_many_arguments)]
fn pad_axis(
    t: &CTensor,
    x: &Value,
    axis: usize,
    b: i64,
    e: i64,
    mode: PadMode,
    fill: Option<&CTensor>,
    value: f64,
) -> OpResult<CTensor> {
    let mut t = t.clone();
    // Negative pads remove elements.
    let dim = t.dims()[axis] as i64;
    let (cb, ce) = (
        b.min(0).unsigned_abs() as i64,
        e.min(0).unsigned_abs() as i64,
    );
    if cb + ce > dim {
        return Err(failed!("negative pads remove more than axis {axis} holds"));
    }
    if cb + ce > 0 {
        t = t.narrow(axis, cb as usize, (dim - cb - ce) as usize)?;
    }
    let (b, e) = (b.max(0) as usize, e.max(0) as usize);
    if b == 0 && e == 0 {
        return Ok(t);
    }
    let dim = t.dims()[axis];
    if mode == PadMode::Constant {
        let side = |n: usize| -> OpResult<CTensor> {
            let mut shape = t.dims().to_vec();
            shape[axis] = n;
            Ok(match fill {
                Some(f) => f.broadcast_as(shape)?.contiguous()?,
                None => full(value, &shape, x.dtype, t.device())?,
            })
        };
        let parts = [side(b)?, t.clone(), side(e)?];
        let parts: Vec<&CTensor> = parts.iter().filter(|p| p.dims()[axis] > 0).collect();
        return Ok(CTensor::cat(&parts, axis)?);
    }
    if dim == 0 {
        return Err(failed!(
            "cannot pad an empty axis {axis} in mode {}",
            mode_name(mode)
        ));
    }
    let d = dim as i64;
    let idx: Vec<i64> = (-(b as i64)..d + e as i64)
        .map(|j| match mode {
            PadMode::Edge => j.clamp(0, d - 1),
            PadMode::Wrap => j.rem_euclid(d),
            _ if d == 1 => 0,
            _ => {
                let m = 2 * (d - 1);
                let k = j.rem_euclid(m);
                if k >= d {
                    m - k
                } else {
                    k
                }
            }
        })
        .collect();
    let len = idx.len();
    let dev = t.device().clone();
    Ok(contiguous(t)?.index_select(&CTensor::from_vec(idx, len, &dev)?, axis)?)
}

fn mode_name(m: PadMode) -> &'static str {
    match m {
        PadMode::Constant => "constant",
        PadMode::Reflect => "reflect",
        PadMode::Edge => "edge",
        PadMode::Wrap => "wrap",
    }
}
