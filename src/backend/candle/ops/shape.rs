//! Ops that change shape or dtype but not values: Reshape, Flatten, Squeeze, Unsqueeze,
//! Transpose, Expand, Shape, Size, Identity, Dropout (inference), Cast, Constant,
//! ConstantOfShape, Range. Attribute-vs-input switches follow the opset (Reshape 5,
//! Squeeze/Unsqueeze 13).

use super::{
    broadcast_shape, check_size, contiguous, dims_usize, input, norm_axes, op, opt_input, Built,
    Ctx, MAX_ELEMENTS,
};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::proto::value_from_proto;
use crate::backend::candle::value::{dtype_from_onnx, storage_dtype, Value};
use crate::tensor::DType;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("Reshape", 1),
    ("Flatten", 1),
    ("Squeeze", 1),
    ("Unsqueeze", 1),
    ("Transpose", 1),
    ("Expand", 8),
    ("Shape", 1),
    ("Size", 1),
    ("Identity", 1),
    ("Dropout", 1),
    ("Cast", 1),
    ("Constant", 1),
    ("ConstantOfShape", 9),
    ("Range", 11),
    ("CastLike", 15),
    ("DepthToSpace", 1),
    ("SpaceToDepth", 1),
    ("EyeLike", 9),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "Reshape" => build_reshape(ctx),
        "Flatten" => {
            ctx.arity((1, 1), (1, 1))?;
            let axis = ctx.attrs(&["axis"])?.int("axis", 1)?;
            op(move |inputs| {
                let x = input(inputs, 0)?;
                let r = x.rank() as i64;
                if axis < -r || axis > r {
                    return Err(failed!("axis {axis} is out of range for rank {r}"));
                }
                let a = if axis < 0 { axis + r } else { axis } as usize;
                let outer: usize = x.shape()[..a].iter().product();
                let inner: usize = x.shape()[a..].iter().product();
                Ok(vec![Value::new(x.t.reshape((outer, inner))?, x.dtype)])
            })
        }
        "Squeeze" => build_squeeze(ctx),
        "Unsqueeze" => build_unsqueeze(ctx),
        "Transpose" => {
            ctx.arity((1, 1), (1, 1))?;
            let perm = ctx.attrs(&["perm"])?.ints("perm")?;
            op(move |inputs| {
                let x = input(inputs, 0)?;
                let r = x.rank();
                let p: Vec<usize> = match &perm {
                    None => (0..r).rev().collect(),
                    Some(p) => {
                        let p = dims_usize(p, "perm")?;
                        let mut seen = vec![false; r];
                        if p.len() != r
                            || p.iter()
                                .any(|&i| i >= r || std::mem::replace(&mut seen[i], true))
                        {
                            return Err(failed!("perm {p:?} is not a permutation of rank {r}"));
                        }
                        p
                    }
                };
                Ok(vec![Value::new(x.t.permute(p)?, x.dtype)])
            })
        }
        "Expand" => {
            ctx.arity((2, 2), (1, 1))?;
            ctx.attrs(&[])?;
            op(|inputs| {
                let x = input(inputs, 0)?;
                let shape = dims_usize(&input(inputs, 1)?.i64s("shape")?, "shape")?;
                let out = broadcast_shape(x.shape(), &shape)?;
                check_size(&out)?;
                Ok(vec![Value::new(
                    x.t.broadcast_as(out)?.contiguous()?,
                    x.dtype,
                )])
            })
        }
        "Shape" => {
            ctx.arity((1, 1), (1, 1))?;
            let a = ctx.attrs(if ctx.opset >= 15 {
                &["start", "end"]
            } else {
                &[]
            })?;
            let (start, end) = (a.int("start", 0)?, a.opt_int("end")?);
            op(move |inputs| {
                let x = input(inputs, 0)?;
                let dims: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
                let r = dims.len() as i64;
                let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
                let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
                Ok(vec![Value::from_i64s(
                    if s < e { dims[s..e].to_vec() } else { vec![] },
                    x.t.device(),
                )?])
            })
        }
        "Size" => {
            ctx.arity((1, 1), (1, 1))?;
            ctx.attrs(&[])?;
            op(|inputs| {
                let x = input(inputs, 0)?;
                Ok(vec![Value::scalar_i64(
                    x.t.elem_count() as i64,
                    x.t.device(),
                )?])
            })
        }
        "Identity" => {
            ctx.arity((1, 1), (1, 1))?;
            ctx.attrs(&[])?;
            op(|inputs| Ok(vec![input(inputs, 0)?.clone()]))
        }
        "Dropout" => build_dropout(ctx),
        "Cast" => build_cast(ctx),
        "CastLike" => {
            ctx.arity((2, 2), (1, 1))?;
            // `saturate` and `round_mode` only apply to float8 targets (refused).
            ctx.attrs(&["saturate", "round_mode"])?;
            op(|inputs| {
                let to = input(inputs, 1)?.dtype;
                Ok(vec![cast(input(inputs, 0)?, to)?])
            })
        }
        "DepthToSpace" | "SpaceToDepth" => build_block(ctx),
        "EyeLike" => {
            ctx.arity((1, 1), (1, 1))?;
            let a = ctx.attrs(&["dtype", "k"])?;
            let dtype = match a.opt_int("dtype")? {
                Some(code) => Some(dtype_from_onnx(i32::try_from(code).map_err(|_| {
                    unsupported!("attribute `dtype` = {code} is not supported")
                })?)?),
                None => None,
            };
            let k = a.int("k", 0)?;
            op(move |inputs| {
                let x = input(inputs, 0)?;
                let &[n, m] = x.shape() else {
                    return Err(failed!("input must be 2-D, got {:?}", x.shape()));
                };
                let ones: Vec<u8> = (0..n * m)
                    .map(|p| u8::from((p % m) as i64 - (p / m) as i64 == k))
                    .collect();
                let eye = Value::new(CTensor::from_vec(ones, (n, m), x.t.device())?, DType::Bool);
                Ok(vec![cast(&eye, dtype.unwrap_or(x.dtype))?])
            })
        }
        "Constant" => build_constant(ctx),
        "ConstantOfShape" => {
            ctx.arity((1, 1), (1, 1))?;
            let fill = match ctx.attrs(&["value"])?.tensor("value")? {
                Some(t) => value_from_proto(t, ctx.path, ctx.device)?,
                None => Value::new(
                    CTensor::zeros(1, candle_core::DType::F32, ctx.device)?,
                    DType::F32,
                ),
            };
            if fill.t.elem_count() != 1 {
                return Err(failed!("attribute `value` must hold one element"));
            }
            let fill = Value::new(fill.t.reshape(())?, fill.dtype);
            op(move |inputs| {
                let shape = dims_usize(&input(inputs, 0)?.i64s("shape")?, "shape")?;
                check_size(&shape)?;
                Ok(vec![Value::new(
                    fill.t.broadcast_as(shape)?.contiguous()?,
                    fill.dtype,
                )])
            })
        }
        "Range" => {
            ctx.arity((3, 3), (1, 1))?;
            // Opset 27: half-precision ranges computed in `stash_type`; only f32 (1) is
            // implemented (this computes start + i*delta in f64 and rounds once).
            let a = ctx.attrs(if ctx.opset >= 27 {
                &["stash_type"]
            } else {
                &[]
            })?;
            a.require_int("stash_type", 1, 1)?;
            op(|inputs| {
                Ok(vec![range(
                    input(inputs, 0)?,
                    input(inputs, 1)?,
                    input(inputs, 2)?,
                )?])
            })
        }
        other => Err(unsupported!("op {other} is not in the shape family")),
    }
}

/// Output dims of Reshape for `spec` (0 = copy unless `allowzero`, -1 = infer).
pub(crate) fn reshape_dims(input: &[usize], spec: &[i64], allowzero: bool) -> OpResult<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &d) in spec.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            -1 => return Err(failed!("shape {spec:?} has more than one -1")),
            0 if !allowzero => out.push(*input.get(i).ok_or_else(|| {
                failed!(
                    "shape {spec:?} copies dim {i} of a rank-{} input",
                    input.len()
                )
            })?),
            d if d >= 0 => out.push(d as usize),
            d => return Err(failed!("shape {spec:?} has invalid dim {d}")),
        }
    }
    if allowzero && infer.is_some() && spec.contains(&0) {
        return Err(failed!(
            "shape {spec:?} has both 0 and -1 with allowzero = 1"
        ));
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || !total.is_multiple_of(known) {
            return Err(failed!("cannot reshape {input:?} to {spec:?}"));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(failed!(
            "cannot reshape {input:?} ({total} elements) to {out:?}"
        ));
    }
    Ok(out)
}

fn build_reshape(ctx: &Ctx) -> OpResult<Built> {
    if ctx.opset < 5 {
        ctx.arity((1, 1), (1, 1))?;
        let shape = ctx
            .attrs(&["shape", "consumed_inputs"])?
            .ints("shape")?
            .ok_or_else(|| failed!("attribute `shape` is required"))?;
        return op(move |inputs| {
            let x = input(inputs, 0)?;
            let dims = reshape_dims(x.shape(), &shape, false)?;
            Ok(vec![Value::new(
                contiguous(x.t.clone())?.reshape(dims)?,
                x.dtype,
            )])
        });
    }
    ctx.arity((2, 2), (1, 1))?;
    let a = ctx.attrs(if ctx.opset >= 14 { &["allowzero"] } else { &[] })?;
    let allowzero = match a.int("allowzero", 0)? {
        0 => false,
        1 => true,
        v => return Err(unsupported!("attribute `allowzero` = {v} is not supported")),
    };
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let spec = input(inputs, 1)?.i64s("shape")?;
        let dims = reshape_dims(x.shape(), &spec, allowzero)?;
        Ok(vec![Value::new(
            contiguous(x.t.clone())?.reshape(dims)?,
            x.dtype,
        )])
    })
}

fn build_squeeze(ctx: &Ctx) -> OpResult<Built> {
    let from_attr = ctx.opset < 13;
    let attr_axes = if from_attr {
        ctx.arity((1, 1), (1, 1))?;
        ctx.attrs(&["axes"])?.ints("axes")?
    } else {
        ctx.arity((1, 2), (1, 1))?;
        ctx.attrs(&[])?;
        None
    };
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let axes = match (&attr_axes, opt_input(inputs, 1)) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(v)) if !from_attr => Some(v.i64s("axes")?),
            _ => None,
        };
        let dims = x.shape();
        let keep: Vec<usize> = match axes {
            None => dims.iter().copied().filter(|&d| d != 1).collect(),
            Some(axes) => {
                let axes = norm_axes(&axes, dims.len())?;
                if let Some(&a) = axes.iter().find(|&&a| dims[a] != 1) {
                    return Err(failed!("cannot squeeze axis {a} of size {}", dims[a]));
                }
                dims.iter()
                    .enumerate()
                    .filter(|(i, _)| !axes.contains(i))
                    .map(|(_, &d)| d)
                    .collect()
            }
        };
        Ok(vec![Value::new(x.t.reshape(keep)?, x.dtype)])
    })
}

fn build_unsqueeze(ctx: &Ctx) -> OpResult<Built> {
    let attr_axes = if ctx.opset < 13 {
        ctx.arity((1, 1), (1, 1))?;
        Some(
            ctx.attrs(&["axes"])?
                .ints("axes")?
                .ok_or_else(|| failed!("attribute `axes` is required"))?,
        )
    } else {
        ctx.arity((2, 2), (1, 1))?;
        ctx.attrs(&[])?;
        None
    };
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let axes = match &attr_axes {
            Some(a) => a.clone(),
            None => input(inputs, 1)?.i64s("axes")?,
        };
        let out_rank = x.rank() + axes.len();
        let axes = norm_axes(&axes, out_rank)?;
        let mut src = x.shape().iter();
        let dims: Vec<usize> = (0..out_rank)
            .map(|i| {
                if axes.contains(&i) {
                    1
                } else {
                    src.next().copied().unwrap_or(1)
                }
            })
            .collect();
        Ok(vec![Value::new(x.t.reshape(dims)?, x.dtype)])
    })
}

fn build_dropout(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    let allowed: &[&str] = match v {
        ..=5 => &["is_test", "ratio", "consumed_inputs"],
        6 => &["is_test", "ratio"],
        7..=11 => &["ratio"],
        _ => &["seed"],
    };
    let a = ctx.attrs(allowed)?;
    if v < 7 && a.int("is_test", 0)? != 1 {
        return Err(unsupported!(
            "attribute `is_test` = {} (training mode) is not supported",
            a.int("is_test", 0)?
        ));
    }
    ctx.arity(
        (1, if v >= 12 { 3 } else { 1 }),
        (1, if v >= 10 { 2 } else { 1 }),
    )?;
    let mask = ctx.has_output(1);
    op(move |inputs| {
        let x = input(inputs, 0)?;
        if let Some(tm) = opt_input(inputs, 2) {
            if tm
                .i64s("training_mode")
                .or_else(|_| tm.f64s().map(|v| v.iter().map(|&f| f as i64).collect()))?
                .iter()
                .any(|&b| b != 0)
            {
                return Err(unsupported!(
                    "input `training_mode` = true is not supported"
                ));
            }
        }
        let mut out = vec![x.clone()];
        if mask {
            let ones = CTensor::ones(x.shape(), candle_core::DType::U8, x.t.device())?;
            out.push(Value::new(ones, DType::Bool));
        }
        Ok(out)
    })
}

/// The `to` of a Cast: an INT dtype code, or (opset 1) the dtype's name as a STRING.
fn cast_target(ctx: &Ctx) -> OpResult<DType> {
    let allowed: &[&str] = match ctx.opset {
        ..=18 => &["to"],
        19..=23 => &["to", "saturate"],
        _ => &["to", "saturate", "round_mode"],
    };
    // `saturate` and `round_mode` only apply to float8 targets, which are refused below.
    let a = ctx.attrs(allowed)?;
    if ctx.opset < 6 {
        if let Ok(Some(name)) = a.string("to") {
            let code = match name.as_str() {
                "FLOAT" => 1,
                "UINT8" => 2,
                "INT8" => 3,
                "UINT16" => 4,
                "INT16" => 5,
                "INT32" => 6,
                "INT64" => 7,
                "BOOL" => 9,
                "FLOAT16" => 10,
                "DOUBLE" => 11,
                "UINT32" => 12,
                "UINT64" => 13,
                _ => return Err(unsupported!("attribute `to` = \"{name}\" is not supported")),
            };
            return dtype_from_onnx(code);
        }
    }
    let code = a
        .opt_int("to")?
        .ok_or_else(|| failed!("attribute `to` is required"))?;
    dtype_from_onnx(
        i32::try_from(code)
            .map_err(|_| unsupported!("attribute `to` = {code} is not supported"))?,
    )
}

fn build_cast(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (1, 1))?;
    let to = cast_target(ctx)?;
    op(move |inputs| Ok(vec![cast(input(inputs, 0)?, to)?]))
}

/// Casts a value: truncation toward zero for float to int, wrap-around for int to a
/// narrower int, x != 0 for bool (NaN is true).
pub(crate) fn cast(x: &Value, to: DType) -> OpResult<Value> {
    if x.dtype == to {
        return Ok(x.clone());
    }
    let sd = storage_dtype(to).ok_or_else(|| unsupported!("cast to {to} is not supported"))?;
    if to == DType::Bool {
        return Ok(Value::new(x.t.ne(0f64)?, DType::Bool));
    }
    Value::wrapped(x.t.to_dtype(sd)?, to)
}

fn build_constant(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((0, 0), (1, 1))?;
    let a = ctx.attrs(&[
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
        "sparse_value",
        "value_string",
        "value_strings",
    ])?;
    let dev = ctx.device;
    let v = if let Some(t) = a.tensor("value")? {
        value_from_proto(t, ctx.path, ctx.device)?
    } else if let Some(f) = a.opt_float("value_float")? {
        Value::new(CTensor::from_vec(vec![f], (), dev)?, DType::F32)
    } else if let Some(f) = a.floats("value_floats")? {
        let n = f.len();
        Value::new(CTensor::from_vec(f, n, dev)?, DType::F32)
    } else if let Some(i) = a.opt_int("value_int")? {
        Value::scalar_i64(i, dev)?
    } else if let Some(i) = a.ints("value_ints")? {
        Value::from_i64s(i, dev)?
    } else if a.has("sparse_value") {
        return Err(unsupported!("attribute `sparse_value` is not supported"));
    } else if a.has("value_string") || a.has("value_strings") {
        return Err(unsupported!("string constants are not supported"));
    } else {
        return Err(failed!("Constant has no value attribute"));
    };
    Ok(Built::Constant(v))
}

fn range(start: &Value, limit: &Value, delta: &Value) -> OpResult<Value> {
    let dtype = start.dtype;
    if limit.dtype != dtype || delta.dtype != dtype {
        return Err(failed!("start, limit and delta must have the same dtype"));
    }
    if start.is_float() {
        let (s, l, d) = (
            start.scalar_f64("start")?,
            limit.scalar_f64("limit")?,
            delta.scalar_f64("delta")?,
        );
        if d == 0.0 || !d.is_finite() || !s.is_finite() || !l.is_finite() {
            return Err(failed!("invalid range start={s} limit={l} delta={d}"));
        }
        let n = ((l - s) / d).ceil().max(0.0);
        if n > MAX_ELEMENTS as f64 {
            return Err(failed!("range of {n} elements is too large"));
        }
        let n = n as usize;
        let v: Vec<f64> = (0..n).map(|i| s + i as f64 * d).collect();
        let t = CTensor::from_vec(v, n, start.t.device())?.to_dtype(start.t.dtype())?;
        return Ok(Value::new(t, dtype));
    }
    if !matches!(dtype, DType::I64 | DType::I32 | DType::I16) {
        return Err(unsupported!("inputs of dtype {dtype} are not supported"));
    }
    let one = |v: &Value, w: &str| -> OpResult<i64> {
        match v.i64s(w)?.as_slice() {
            [x] => Ok(*x),
            _ => Err(failed!("{w} must be a scalar")),
        }
    };
    let (s, l, d) = (
        one(start, "start")?,
        one(limit, "limit")?,
        one(delta, "delta")?,
    );
    if d == 0 {
        return Err(failed!("delta is 0"));
    }
    let n = if (l - s).signum() != d.signum() {
        0
    } else {
        (((l as i128 - s as i128).abs() + (d as i128).abs() - 1) / (d as i128).abs()) as usize
    };
    check_size(&[n])?;
    let v: Vec<i64> = (0..n as i64).map(|i| s + i * d).collect();
    Value::wrapped(Value::from_i64s(v, start.t.device())?.t, dtype)
}

fn build_block(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (1, 1))?;
    let to_space = ctx.op() == "DepthToSpace";
    let a = ctx.attrs(if (to_space && ctx.opset >= 11) || ctx.opset >= 28 {
        &["blocksize", "mode"]
    } else {
        &["blocksize"]
    })?;
    let b = a
        .opt_int("blocksize")?
        .ok_or_else(|| failed!("attribute `blocksize` is required"))?;
    let b = usize::try_from(b)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| failed!("blocksize {b} must be positive"))?;
    let crd = match a.string("mode")?.as_deref().unwrap_or("DCR") {
        "DCR" => false,
        "CRD" => true,
        m => return Err(unsupported!("attribute `mode` = \"{m}\" is not supported")),
    };
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let &[n, c, h, w] = x.shape() else {
            return Err(failed!("input must be 4-D, got {:?}", x.shape()));
        };
        let t = contiguous(x.t.clone())?;
        let y = if to_space {
            if c % (b * b) != 0 {
                return Err(failed!(
                    "channels {c} are not divisible by blocksize² {}",
                    b * b
                ));
            }
            let cc = c / (b * b);
            let (t, perm) = if crd {
                (t.reshape(vec![n, cc, b, b, h, w])?, [0, 1, 4, 2, 5, 3])
            } else {
                (t.reshape(vec![n, b, b, cc, h, w])?, [0, 3, 4, 1, 5, 2])
            };
            t.permute(perm.to_vec())?
                .contiguous()?
                .reshape((n, cc, h * b, w * b))?
        } else {
            if h % b != 0 || w % b != 0 {
                return Err(failed!(
                    "spatial dims {h}x{w} are not divisible by blocksize {b}"
                ));
            }
            let perm = if crd {
                vec![0, 1, 3, 5, 2, 4]
            } else {
                vec![0, 3, 5, 1, 2, 4]
            };
            t.reshape(vec![n, c, h / b, b, w / b, b])?
                .permute(perm)?
                .contiguous()?
                .reshape((n, c * b * b, h / b, w / b))?
        };
        Ok(vec![Value::new(y, x.dtype)])
    })
}
