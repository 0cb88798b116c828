//! Index-driven ops: GatherElements, GatherND, ScatterElements, ScatterND, OneHot, Trilu,
//! CumSum, TopK, NonZero. Indices are computed on the CPU and the data is moved with
//! candle's `index_select` / `where_cond`, so these ops are exact for every dtype; the
//! scatter reductions and CumSum accumulate in f64 (floats) or i64 (integers) and round
//! once. TopK with `sorted` = 0 is refused (its order is unspecified).

use super::{check_size, contiguous, input, norm_axis, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use crate::tensor::DType;
use candle_core::{DType as CDType, Tensor as CTensor};

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("GatherElements", 11),
    ("GatherND", 11),
    ("ScatterElements", 11),
    ("ScatterND", 11),
    ("OneHot", 9),
    ("Trilu", 14),
    ("CumSum", 11),
    ("TopK", 1),
    ("NonZero", 9),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    match ctx.op() {
        "GatherElements" => {
            ctx.arity((2, 2), (1, 1))?;
            let axis = ctx.attrs(&["axis"])?.int("axis", 0)?;
            op(move |inputs| {
                Ok(vec![gather_elements(
                    input(inputs, 0)?,
                    input(inputs, 1)?,
                    axis,
                )?])
            })
        }
        "GatherND" => {
            ctx.arity((2, 2), (1, 1))?;
            let a = ctx.attrs(if v >= 12 { &["batch_dims"] } else { &[] })?;
            let b = usize::try_from(a.int("batch_dims", 0)?)
                .map_err(|_| failed!("batch_dims must be >= 0"))?;
            op(move |inputs| Ok(vec![gather_nd(input(inputs, 0)?, input(inputs, 1)?, b)?]))
        }
        "ScatterElements" | "ScatterND" => {
            ctx.arity((3, 3), (1, 1))?;
            let nd = ctx.op() == "ScatterND";
            let mut allowed = if nd { vec![] } else { vec!["axis"] };
            if v >= 16 {
                allowed.push("reduction");
            }
            let a = ctx.attrs(&allowed)?;
            let red = match a.string("reduction")?.as_deref().unwrap_or("none") {
                "none" => Reduction::None,
                "add" => Reduction::Add,
                "mul" => Reduction::Mul,
                "max" if v >= 18 => Reduction::Max,
                "min" if v >= 18 => Reduction::Min,
                r => {
                    return Err(unsupported!(
                        "attribute `reduction` = \"{r}\" is not supported"
                    ))
                }
            };
            let axis = a.int("axis", 0)?;
            op(move |inputs| {
                let (x, i, u) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
                Ok(vec![if nd {
                    scatter_nd(x, i, u, red)?
                } else {
                    scatter_elements(x, i, u, axis, red)?
                }])
            })
        }
        "OneHot" => {
            ctx.arity((3, 3), (1, 1))?;
            let axis = ctx.attrs(&["axis"])?.int("axis", -1)?;
            op(move |inputs| {
                Ok(vec![one_hot(
                    input(inputs, 0)?,
                    input(inputs, 1)?,
                    input(inputs, 2)?,
                    axis,
                )?])
            })
        }
        "Trilu" => {
            ctx.arity((1, 2), (1, 1))?;
            let upper = match ctx.attrs(&["upper"])?.int("upper", 1)? {
                0 => false,
                1 => true,
                u => return Err(unsupported!("attribute `upper` = {u} is not supported")),
            };
            op(move |inputs| {
                let k = match opt_input(inputs, 1) {
                    Some(k) => single(k, "k")?,
                    None => 0,
                };
                Ok(vec![trilu(input(inputs, 0)?, k, upper)?])
            })
        }
        "CumSum" => {
            ctx.arity((2, 2), (1, 1))?;
            let a = ctx.attrs(&["exclusive", "reverse"])?;
            let flag = |n: &str| -> OpResult<bool> {
                match a.int(n, 0)? {
                    0 => Ok(false),
                    1 => Ok(true),
                    x => Err(unsupported!("attribute `{n}` = {x} is not supported")),
                }
            };
            let (exclusive, reverse) = (flag("exclusive")?, flag("reverse")?);
            op(move |inputs| {
                let axis = single(input(inputs, 1)?, "axis")?;
                Ok(vec![cumsum(input(inputs, 0)?, axis, exclusive, reverse)?])
            })
        }
        "TopK" => build_topk(ctx),
        "NonZero" => {
            ctx.arity((1, 1), (1, 1))?;
            ctx.attrs(&[])?;
            op(|inputs| Ok(vec![non_zero(input(inputs, 0)?)?]))
        }
        other => Err(unsupported!("op {other} is not in the indexing family")),
    }
}

fn single(v: &Value, what: &str) -> OpResult<i64> {
    match v.i64s(what)?.as_slice() {
        [x] => Ok(*x),
        s => Err(failed!("{what} must have one element, got {}", s.len())),
    }
}

fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Normalizes an index against `dim` (negative counts from the end).
fn norm_index(i: i64, dim: usize) -> OpResult<usize> {
    let d = dim as i64;
    let j = if i < 0 { i + d } else { i };
    if (0..d).contains(&j) {
        Ok(j as usize)
    } else {
        Err(failed!(
            "index {i} is out of range for a dimension of size {dim}"
        ))
    }
}

/// Picks elements of `x` (flattened) at `flat` indices, in the given output shape.
fn take(x: &CTensor, flat: Vec<i64>, shape: &[usize]) -> OpResult<CTensor> {
    let n = flat.len();
    Ok(contiguous(x.clone())?
        .flatten_all()?
        .index_select(&CTensor::from_vec(flat, n, x.device())?, 0)?
        .reshape(shape)?)
}

fn unravel(mut flat: usize, dims: &[usize], out: &mut [usize]) {
    for i in (0..dims.len()).rev() {
        out[i] = flat % dims[i];
        flat /= dims[i];
    }
}

fn gather_elements(x: &Value, idx: &Value, axis: i64) -> OpResult<Value> {
    let axis = norm_axis(axis, x.rank())?;
    if idx.rank() != x.rank() {
        return Err(failed!(
            "indices must have rank {}, got {}",
            x.rank(),
            idx.rank()
        ));
    }
    let (xd, id) = (x.shape(), idx.shape());
    let st = strides(xd);
    let ind = idx.i64s("indices")?;
    let mut pos = vec![0; id.len()];
    let mut flat = Vec::with_capacity(ind.len());
    for (n, &i) in ind.iter().enumerate() {
        unravel(n, id, &mut pos);
        let mut f = 0;
        for d in 0..pos.len() {
            let p = if d == axis {
                norm_index(i, xd[d])?
            } else {
                pos[d]
            };
            if p >= xd[d] {
                return Err(failed!("indices shape {id:?} exceeds data shape {xd:?}"));
            }
            f += p * st[d];
        }
        flat.push(f as i64);
    }
    Ok(Value::new(take(&x.t, flat, id)?, x.dtype))
}

fn gather_nd(x: &Value, idx: &Value, b: usize) -> OpResult<Value> {
    let (xd, id) = (x.shape().to_vec(), idx.shape().to_vec());
    let q = id.len();
    let last = *id
        .last()
        .ok_or_else(|| failed!("indices must have rank >= 1"))?;
    if b >= q || b >= xd.len() || xd[..b] != id[..b] || b + last > xd.len() {
        return Err(failed!(
            "indices {id:?} and batch_dims {b} do not fit data {xd:?}"
        ));
    }
    let slice: usize = xd[b + last..].iter().product();
    let ind = idx.i64s("indices")?;
    let st = strides(&xd);
    let per_batch: usize = id[b..q - 1].iter().product();
    let n_tuples: usize = id[..q - 1].iter().product();
    let mut flat = Vec::with_capacity(n_tuples * slice);
    let mut bpos = vec![0; b];
    for t in 0..n_tuples {
        unravel(t / per_batch.max(1), &xd[..b], &mut bpos);
        let mut base: usize = bpos.iter().zip(&st).map(|(p, s)| p * s).sum();
        for (k, &i) in ind[t * last..(t + 1) * last].iter().enumerate() {
            base += norm_index(i, xd[b + k])? * st[b + k];
        }
        flat.extend((0..slice).map(|s| (base + s) as i64));
    }
    let mut shape = id[..q - 1].to_vec();
    shape.extend_from_slice(&xd[b + last..]);
    Ok(Value::new(take(&x.t, flat, &shape)?, x.dtype))
}

#[derive(Clone, Copy, PartialEq)]
enum Reduction {
    None,
    Add,
    Mul,
    Max,
    Min,
}

/// Writes `updates` into a copy of `x` at flat `targets`, combining per `red`.
fn scatter(x: &Value, u: &Value, targets: &[usize], red: Reduction) -> OpResult<Value> {
    if x.dtype != u.dtype {
        return Err(failed!(
            "updates have dtype {}, data has {}",
            u.dtype,
            x.dtype
        ));
    }
    let n = x.t.elem_count();
    if red == Reduction::None || x.dtype == DType::Bool {
        if red != Reduction::None {
            return Err(unsupported!("reduction on bool is not supported"));
        }
        // Each output element comes from data or (last write wins) from an update.
        let mut src: Vec<i64> = (0..n as i64).collect();
        for (k, &t) in targets.iter().enumerate() {
            src[t] = (n + k) as i64;
        }
        let both = CTensor::cat(
            &[x.t.flatten_all()?, contiguous(u.t.clone())?.flatten_all()?],
            0,
        )?;
        return Ok(Value::new(take(&both, src, x.shape())?, x.dtype));
    }
    let combine = |a: f64, b: f64| match red {
        Reduction::Add => a + b,
        Reduction::Mul => a * b,
        Reduction::Max => a.max(b),
        Reduction::Min => a.min(b),
        Reduction::None => b,
    };
    let combine_i = |a: i64, b: i64| match red {
        Reduction::Add => a.wrapping_add(b),
        Reduction::Mul => a.wrapping_mul(b),
        Reduction::Max => a.max(b),
        Reduction::Min => a.min(b),
        Reduction::None => b,
    };
    if x.is_float() {
        let mut d = x.f64s()?;
        for (&t, b) in targets.iter().zip(u.f64s()?) {
            d[t] = combine(d[t], b);
        }
        let t = CTensor::from_vec(d, x.shape(), x.t.device())?.to_dtype(x.t.dtype())?;
        Ok(Value::new(t, x.dtype))
    } else if x.t.dtype() == CDType::I64 {
        let mut d = x.i64s("data")?;
        for (&t, b) in targets.iter().zip(u.i64s("updates")?) {
            d[t] = combine_i(d[t], b);
        }
        Value::wrapped(CTensor::from_vec(d, x.shape(), x.t.device())?, x.dtype)
    } else {
        Err(unsupported!(
            "reduction on dtype {} is not supported",
            x.dtype
        ))
    }
}

fn scatter_elements(
    x: &Value,
    idx: &Value,
    u: &Value,
    axis: i64,
    red: Reduction,
) -> OpResult<Value> {
    let axis = norm_axis(axis, x.rank())?;
    if idx.shape() != u.shape() || idx.rank() != x.rank() {
        return Err(failed!(
            "indices {:?} and updates {:?} must have the same shape and rank {}",
            idx.shape(),
            u.shape(),
            x.rank()
        ));
    }
    let (xd, id) = (x.shape(), idx.shape());
    let st = strides(xd);
    let mut pos = vec![0; id.len()];
    let mut targets = Vec::with_capacity(u.t.elem_count());
    for (n, &i) in idx.i64s("indices")?.iter().enumerate() {
        unravel(n, id, &mut pos);
        let mut f = 0;
        for d in 0..pos.len() {
            let p = if d == axis {
                norm_index(i, xd[d])?
            } else {
                pos[d]
            };
            if p >= xd[d] {
                return Err(failed!("indices shape {id:?} exceeds data shape {xd:?}"));
            }
            f += p * st[d];
        }
        targets.push(f);
    }
    scatter(x, u, &targets, red)
}

fn scatter_nd(x: &Value, idx: &Value, u: &Value, red: Reduction) -> OpResult<Value> {
    let (xd, id) = (x.shape(), idx.shape());
    let k = *id
        .last()
        .ok_or_else(|| failed!("indices must have rank >= 1"))?;
    if k == 0 || k > xd.len() {
        return Err(failed!(
            "indices last dim {k} does not fit data of rank {}",
            xd.len()
        ));
    }
    let mut ushape = id[..id.len() - 1].to_vec();
    ushape.extend_from_slice(&xd[k..]);
    if u.shape() != ushape.as_slice() {
        return Err(failed!(
            "updates have shape {:?}, expected {ushape:?}",
            u.shape()
        ));
    }
    let st = strides(xd);
    let slice: usize = xd[k..].iter().product();
    let mut targets = Vec::with_capacity(u.t.elem_count());
    for tuple in idx.i64s("indices")?.chunks(k) {
        let mut base = 0;
        for (d, &i) in tuple.iter().enumerate() {
            base += norm_index(i, xd[d])? * st[d];
        }
        targets.extend(base..base + slice);
    }
    scatter(x, u, &targets, red)
}

fn one_hot(idx: &Value, depth: &Value, values: &Value, axis: i64) -> OpResult<Value> {
    let d = depth.scalar_f64("depth")?;
    if !(d >= 1.0 && d.fract() == 0.0 && d <= super::MAX_ELEMENTS as f64) {
        return Err(failed!("depth {d} must be a positive integer"));
    }
    let d = d as usize;
    if values.t.elem_count() != 2 {
        return Err(failed!("values must hold [off, on]"));
    }
    let r = idx.rank() + 1;
    let axis = norm_axis(axis, r)?;
    // Indices as f64 (any numeric dtype), negative ones counted from the end.
    let ind: Vec<i64> = idx
        .f64s()?
        .into_iter()
        .map(|v| v.trunc() as i64)
        .map(|i| if i < 0 { i + d as i64 } else { i })
        .collect();
    let mut ishape = idx.shape().to_vec();
    ishape.insert(axis, 1);
    let ind = CTensor::from_vec(ind, ishape.as_slice(), values.t.device())?;
    let mut rshape = vec![1usize; r];
    rshape[axis] = d;
    let range = CTensor::arange(0i64, d as i64, values.t.device())?.reshape(rshape)?;
    let mut out = idx.shape().to_vec();
    out.insert(axis, d);
    check_size(&out)?;
    let hot = ind
        .broadcast_as(out.as_slice())?
        .eq(&range.broadcast_as(out.as_slice())?)?;
    let vals = values.t.flatten_all()?;
    let (off, on) = (
        vals.get(0)?.broadcast_as(out.as_slice())?,
        vals.get(1)?.broadcast_as(out.as_slice())?,
    );
    Ok(Value::new(hot.where_cond(&on, &off)?, values.dtype))
}

fn trilu(x: &Value, k: i64, upper: bool) -> OpResult<Value> {
    let r = x.rank();
    if r < 2 {
        return Err(failed!("input must have rank >= 2"));
    }
    let (n, m) = (x.shape()[r - 2], x.shape()[r - 1]);
    let mask: Vec<u8> = (0..n * m)
        .map(|p| {
            let (i, j) = ((p / m) as i64, (p % m) as i64);
            u8::from(if upper { j - i >= k } else { j - i <= k })
        })
        .collect();
    let mask = CTensor::from_vec(mask, (n, m), x.t.device())?.broadcast_as(x.shape())?;
    Ok(Value::new(
        mask.where_cond(&x.t, &x.t.zeros_like()?)?,
        x.dtype,
    ))
}

fn cumsum(x: &Value, axis: i64, exclusive: bool, reverse: bool) -> OpResult<Value> {
    let axis = norm_axis(axis, x.rank())?;
    if x.dtype == DType::Bool || !(x.is_float() || x.t.dtype() == CDType::I64) {
        return Err(unsupported!("input of dtype {} is not supported", x.dtype));
    }
    let dims = x.shape();
    let (outer, len, inner): (usize, usize, usize) = (
        dims[..axis].iter().product(),
        dims[axis],
        dims[axis + 1..].iter().product(),
    );
    let order: Vec<usize> = if reverse {
        (0..len).rev().collect()
    } else {
        (0..len).collect()
    };
    macro_rules! scan {
        ($v:expr, $zero:expr, $add:expr) => {{
            let v = $v;
            let mut out = vec![$zero; v.len()];
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = $zero;
                    for &a in &order {
                        let p = (o * len + a) * inner + i;
                        if exclusive {
                            out[p] = acc;
                            acc = $add(acc, v[p]);
                        } else {
                            acc = $add(acc, v[p]);
                            out[p] = acc;
                        }
                    }
                }
            }
            out
        }};
    }
    if x.is_float() {
        let out = scan!(x.f64s()?, 0f64, |a: f64, b: f64| a + b);
        Ok(Value::new(
            CTensor::from_vec(out, dims, x.t.device())?.to_dtype(x.t.dtype())?,
            x.dtype,
        ))
    } else {
        let out = scan!(x.i64s("input")?, 0i64, |a: i64, b: i64| a.wrapping_add(b));
        Value::wrapped(CTensor::from_vec(out, dims, x.t.device())?, x.dtype)
    }
}

fn build_topk(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    ctx.arity(
        (if v < 10 { 1 } else { 2 }, if v < 10 { 1 } else { 2 }),
        (2, 2),
    )?;
    let a = ctx.attrs(match v {
        ..=9 => &["axis", "k"],
        10 => &["axis"],
        _ => &["axis", "largest", "sorted"],
    })?;
    let axis = a.int("axis", -1)?;
    let attr_k = a.opt_int("k")?;
    if v < 10 && attr_k.is_none() {
        return Err(failed!("attribute `k` is required"));
    }
    let largest = match a.int("largest", 1)? {
        0 => false,
        1 => true,
        x => return Err(unsupported!("attribute `largest` = {x} is not supported")),
    };
    a.require_int("sorted", 1, 1)?;
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let k = match attr_k {
            Some(k) => k,
            None => single(input(inputs, 1)?, "k")?,
        };
        topk(x, k, axis, largest)
    })
}

fn topk(x: &Value, k: i64, axis: i64, largest: bool) -> OpResult<Vec<Value>> {
    let axis = norm_axis(axis, x.rank())?;
    let dims = x.shape();
    let len = dims[axis];
    let k = usize::try_from(k)
        .ok()
        .filter(|&k| k <= len)
        .ok_or_else(|| failed!("k = {k} is out of range for an axis of {len}"))?;
    if x.dtype == DType::Bool {
        return Err(unsupported!("input of dtype bool is not supported"));
    }
    let (outer, inner): (usize, usize) = (
        dims[..axis].iter().product(),
        dims[axis + 1..].iter().product(),
    );
    // Compare integers as i64 (exact), floats as f64.
    let keys_i = if x.is_float() {
        None
    } else {
        Some(x.i64s("input")?)
    };
    let keys_f = if x.is_float() { Some(x.f64s()?) } else { None };
    let cmp = |p: usize, q: usize| -> std::cmp::Ordering {
        let o = match (&keys_i, &keys_f) {
            (Some(v), _) => v[p].cmp(&v[q]),
            (_, Some(v)) => v[p].total_cmp(&v[q]),
            _ => std::cmp::Ordering::Equal,
        };
        if largest {
            o.reverse()
        } else {
            o
        }
    };
    if keys_f
        .as_ref()
        .is_some_and(|v| v.iter().any(|f| f.is_nan()))
    {
        return Err(unsupported!(
            "inputs with NaN are not supported (their rank is unspecified)"
        ));
    }
    let mut idx = vec![0i64; outer * k * inner];
    let mut order: Vec<usize> = Vec::with_capacity(len);
    let mut picked = vec![0usize; outer * k * inner];
    for o in 0..outer {
        for i in 0..inner {
            order.clear();
            order.extend(0..len);
            // Stable: equal values keep the lower index first.
            order.sort_by(|&a, &b| cmp((o * len + a) * inner + i, (o * len + b) * inner + i));
            for (r, &a) in order.iter().take(k).enumerate() {
                let out = (o * k + r) * inner + i;
                picked[out] = (o * len + a) * inner + i;
                idx[out] = a as i64;
            }
        }
    }
    let flat: Vec<i64> = picked.iter().map(|&p| p as i64).collect();
    let mut shape = dims.to_vec();
    shape[axis] = k;
    let values = take(&x.t, flat, &shape)?;
    Ok(vec![
        Value::new(values, x.dtype),
        Value::new(
            CTensor::from_vec(idx, shape.as_slice(), x.t.device())?,
            DType::I64,
        ),
    ])
}

fn non_zero(x: &Value) -> OpResult<Value> {
    let nz: Vec<u8> = x.t.ne(0f64)?.flatten_all()?.to_vec1::<u8>()?;
    let dims = x.shape();
    let r = dims.len();
    let hits: Vec<usize> = nz
        .iter()
        .enumerate()
        .filter(|(_, &b)| b != 0)
        .map(|(i, _)| i)
        .collect();
    let mut out = vec![0i64; r * hits.len()];
    let mut pos = vec![0; r];
    for (n, &h) in hits.iter().enumerate() {
        unravel(h, dims, &mut pos);
        for d in 0..r {
            out[d * hits.len() + n] = pos[d] as i64;
        }
    }
    Ok(Value::new(
        CTensor::from_vec(out, (r, hits.len()), x.t.device())?,
        DType::I64,
    ))
}
