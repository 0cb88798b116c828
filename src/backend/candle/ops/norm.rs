//! Normalizations: BatchNormalization in inference mode only (training mode — `is_test` =
//! 0 before opset 7, several outputs, `training_mode` = 1 — and the per-activation
//! `spatial` = 0 are refused), InstanceNormalization and LayerNormalization (with its
//! optional Mean and InvStdDev outputs). Half-precision inputs are normalized in f32.

use super::{input, norm_axes, norm_axis, op, opt_input, widen_half, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use crate::tensor::DType;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("BatchNormalization", 1),
    ("InstanceNormalization", 1),
    ("LayerNormalization", 17),
    ("LRN", 1),
    ("LpNormalization", 1),
    ("GroupNormalization", 18),
    ("MeanVarianceNormalization", 9),
    ("RMSNormalization", 23),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    match ctx.op() {
        "BatchNormalization" => build_batchnorm(ctx),
        "InstanceNormalization" => {
            ctx.arity((3, 3), (1, 1))?;
            let a = ctx.attrs(if ctx.opset < 6 {
                &["epsilon", "consumed_inputs"]
            } else {
                &["epsilon"]
            })?;
            let eps = a.float("epsilon", 1e-5)? as f64;
            op(move |inputs| {
                let (x, scale, b) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
                Ok(vec![instance_norm(x, scale, b, eps)?])
            })
        }
        "LayerNormalization" => build_layernorm(ctx),
        "LRN" => build_lrn(ctx),
        "LpNormalization" => {
            ctx.arity((1, 1), (1, 1))?;
            let a = ctx.attrs(&["axis", "p"])?;
            let axis = a.int("axis", -1)?;
            let p = match a.int("p", 2)? {
                p @ (1 | 2) => p,
                p => return Err(unsupported!("attribute `p` = {p} is not supported")),
            };
            op(move |inputs| {
                let x = input(inputs, 0)?;
                x.require_float("input")?;
                let axis = norm_axis(axis, x.rank())?;
                let t = widen_half(&x.t)?;
                let norm = if p == 1 {
                    t.abs()?.sum_keepdim(axis)?
                } else {
                    t.sqr()?.sum_keepdim(axis)?.sqrt()?
                };
                // An all-zero slice stays zero (0 / 0 would be NaN).
                let norm = norm.eq(0f64)?.where_cond(&norm.ones_like()?, &norm)?;
                let y = t.broadcast_div(&norm)?;
                Ok(vec![Value::new(y.to_dtype(x.t.dtype())?, x.dtype)])
            })
        }
        "GroupNormalization" => build_groupnorm(ctx),
        "MeanVarianceNormalization" => {
            ctx.arity((1, 1), (1, 1))?;
            let axes = ctx
                .attrs(&["axes"])?
                .ints("axes")?
                .unwrap_or_else(|| vec![0, 2, 3]);
            op(move |inputs| {
                let x = input(inputs, 0)?;
                x.require_float("input")?;
                let axes = norm_axes(&axes, x.rank())?;
                let t = widen_half(&x.t)?;
                // The op's function body: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9).
                let mean = t.mean_keepdim(axes.clone())?;
                let var = t.sqr()?.mean_keepdim(axes)?.sub(&mean.sqr()?)?;
                let y = t
                    .broadcast_sub(&mean)?
                    .broadcast_div(&(var.sqrt()? + 1e-9)?)?;
                Ok(vec![Value::new(y.to_dtype(x.t.dtype())?, x.dtype)])
            })
        }
        "RMSNormalization" => {
            ctx.arity((2, 2), (1, 1))?;
            let a = ctx.attrs(&["axis", "epsilon", "stash_type"])?;
            let axis = a.int("axis", -1)?;
            let eps = a.float("epsilon", 1e-5)? as f64;
            a.require_int("stash_type", 1, 1)?;
            op(move |inputs| {
                let (x, scale) = (input(inputs, 0)?, input(inputs, 1)?);
                x.require_float("input")?;
                let axis = norm_axis(axis, x.rank())?;
                let axes: Vec<usize> = (axis..x.rank()).collect();
                let t = widen_half(&x.t)?;
                let rms = (t.sqr()?.mean_keepdim(axes)? + eps)?.sqrt()?;
                let s = widen_half(&scale.t)?
                    .broadcast_as(&x.shape()[axis..])
                    .map_err(|_| {
                        failed!(
                            "scale of shape {:?} does not fit {:?}",
                            scale.shape(),
                            &x.shape()[axis..]
                        )
                    })?;
                let y = t.broadcast_div(&rms)?.broadcast_mul(&s)?;
                Ok(vec![Value::new(y.to_dtype(x.t.dtype())?, x.dtype)])
            })
        }
        other => Err(unsupported!("op {other} is not a normalization")),
    }
}

/// A per-channel parameter of shape `[C]` reshaped to broadcast over `[N, C, d1, ...]`.
fn channel_param(p: &Value, x: &Value, what: &str) -> OpResult<CTensor> {
    let c = x.shape()[1];
    if p.shape() != [c] {
        return Err(failed!("{what} has shape {:?}, expected [{c}]", p.shape()));
    }
    // BatchNormalization-15 lets scale/B and mean/var have their own float types; all
    // are applied in the input's compute type.
    p.require_float(what)?;
    let compute = widen_half(&x.t)?.dtype();
    let mut shape = vec![1usize; x.rank()];
    shape[1] = c;
    Ok(p.t.to_dtype(compute)?.reshape(shape)?)
}

fn build_batchnorm(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    let allowed: &[&str] = match v {
        ..=5 => &[
            "epsilon",
            "momentum",
            "is_test",
            "spatial",
            "consumed_inputs",
        ],
        6 => &["epsilon", "momentum", "is_test", "spatial"],
        7..=8 => &["epsilon", "momentum", "spatial"],
        9..=13 => &["epsilon", "momentum"],
        _ => &["epsilon", "momentum", "training_mode"],
    };
    let a = ctx.attrs(allowed)?;
    if v < 7 {
        a.require_int("is_test", 0, 1).map_err(|_| {
            unsupported!(
                "attribute `is_test` = {} (training mode) is not supported",
                a.int("is_test", 0).unwrap_or(0)
            )
        })?;
    }
    a.require_int("spatial", 1, 1)?;
    a.require_int("training_mode", 0, 0)?;
    // `momentum` only updates running statistics in training mode.
    let eps = a.float("epsilon", 1e-5)? as f64;
    // Extra outputs (running/saved mean and variance) exist only in training mode.
    ctx.arity((5, 5), (1, 1))?;
    op(move |inputs| {
        let x = input(inputs, 0)?;
        x.require_float("input")?;
        if x.rank() < 2 {
            return Err(failed!("input must have rank >= 2, got {:?}", x.shape()));
        }
        let scale = channel_param(input(inputs, 1)?, x, "scale")?;
        let bias = channel_param(input(inputs, 2)?, x, "B")?;
        let mean = channel_param(input(inputs, 3)?, x, "mean")?;
        let var = channel_param(input(inputs, 4)?, x, "var")?;
        let inv = (var + eps)?.sqrt()?.recip()?.mul(&scale)?;
        let t = widen_half(&x.t)?;
        let y = t
            .broadcast_sub(&mean)?
            .broadcast_mul(&inv)?
            .broadcast_add(&bias)?;
        Ok(vec![Value::new(y.to_dtype(x.t.dtype())?, x.dtype)])
    })
}

fn instance_norm(x: &Value, scale: &Value, b: &Value, eps: f64) -> OpResult<Value> {
    x.require_float("input")?;
    if x.rank() < 3 {
        return Err(failed!("input must have rank >= 3, got {:?}", x.shape()));
    }
    let s = channel_param(scale, x, "scale")?;
    let bias = channel_param(b, x, "B")?;
    let t = widen_half(&x.t)?;
    let axes: Vec<usize> = (2..x.rank()).collect();
    let mean = t.mean_keepdim(axes.clone())?;
    let centered = t.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(axes)?;
    let y = centered
        .broadcast_div(&(var + eps)?.sqrt()?)?
        .broadcast_mul(&s)?
        .broadcast_add(&bias)?;
    Ok(Value::new(y.to_dtype(x.t.dtype())?, x.dtype))
}

fn build_layernorm(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((2, 3), (1, 3))?;
    let a = ctx.attrs(&["axis", "epsilon", "stash_type"])?;
    let axis = a.int("axis", -1)?;
    let eps = a.float("epsilon", 1e-5)? as f64;
    // stash_type 1 = statistics in f32, which is what this implementation does.
    a.require_int("stash_type", 1, 1)?;
    let (want_mean, want_inv) = (ctx.has_output(1), ctx.has_output(2));
    op(move |inputs| {
        let x = input(inputs, 0)?;
        x.require_float("input")?;
        let axis = norm_axis(axis, x.rank())?;
        let axes: Vec<usize> = (axis..x.rank()).collect();
        let norm_shape = &x.shape()[axis..];
        let param = |p: &Value, what: &str| -> OpResult<CTensor> {
            if p.dtype != x.dtype {
                return Err(failed!(
                    "{what} has dtype {}, input has {}",
                    p.dtype,
                    x.dtype
                ));
            }
            widen_half(&p.t)?.broadcast_as(norm_shape).map_err(|_| {
                failed!(
                    "{what} of shape {:?} cannot be broadcast to {norm_shape:?}",
                    p.shape()
                )
            })
        };
        let scale = param(input(inputs, 1)?, "Scale")?;
        let t = widen_half(&x.t)?.to_dtype(candle_core::DType::F32.max_precision(x.t.dtype()))?;
        let mean = t.mean_keepdim(axes.clone())?;
        let centered = t.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(axes)?;
        let inv = (var + eps)?.sqrt()?.recip()?;
        let mut y = centered
            .broadcast_mul(&inv)?
            .broadcast_mul(&scale.to_dtype(t.dtype())?)?;
        if let Some(b) = opt_input(inputs, 2) {
            y = y.broadcast_add(&param(b, "B")?.to_dtype(t.dtype())?)?;
        }
        let mut out = vec![Value::new(y.to_dtype(x.t.dtype())?, x.dtype)];
        if want_mean || want_inv {
            // Mean and InvStdDev are in the stash type (f32).
            out.push(Value::new(
                mean.to_dtype(candle_core::DType::F32)?,
                DType::F32,
            ));
            out.push(Value::new(
                inv.to_dtype(candle_core::DType::F32)?,
                DType::F32,
            ));
        }
        Ok(out)
    })
}

/// The wider of f32 and a float dtype (f64 stays f64).
trait MaxPrecision {
    fn max_precision(self, other: candle_core::DType) -> candle_core::DType;
}

impl MaxPrecision for candle_core::DType {
    fn max_precision(self, other: candle_core::DType) -> candle_core::DType {
        if other == candle_core::DType::F64 {
            other
        } else {
            self
        }
    }
}

fn build_lrn(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (1, 1))?;
    let a = ctx.attrs(&["alpha", "beta", "bias", "size"])?;
    let alpha = a.float("alpha", 1e-4)? as f64;
    let beta = a.float("beta", 0.75)? as f64;
    let bias = a.float("bias", 1.0)? as f64;
    let size = a
        .opt_int("size")?
        .ok_or_else(|| failed!("attribute `size` is required"))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| failed!("size {size} must be positive"))?;
    op(move |inputs| {
        let x = input(inputs, 0)?;
        x.require_float("input")?;
        if x.rank() < 3 {
            return Err(failed!("input must have rank >= 3"));
        }
        let c = x.shape()[1];
        let t = widen_half(&x.t)?;
        // Channels c - floor((size-1)/2) ..= c + ceil((size-1)/2), zero outside.
        let sq = t.sqr()?.pad_with_zeros(1, (size - 1) / 2, size / 2)?;
        let mut sum = sq.narrow(1, 0, c)?;
        for k in 1..size {
            sum = sum.add(&sq.narrow(1, k, c)?)?;
        }
        let den = sum.affine(alpha / size as f64, bias)?.powf(beta)?;
        Ok(vec![Value::new(
            t.div(&den)?.to_dtype(x.t.dtype())?,
            x.dtype,
        )])
    })
}

fn build_groupnorm(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((3, 3), (1, 1))?;
    let per_channel = ctx.opset >= 21; // opset 18: scale and bias per group
    let a = ctx.attrs(if per_channel {
        &["epsilon", "num_groups", "stash_type"]
    } else {
        &["epsilon", "num_groups"]
    })?;
    a.require_int("stash_type", 1, 1)?;
    let eps = a.float("epsilon", 1e-5)? as f64;
    let g = a
        .opt_int("num_groups")?
        .ok_or_else(|| failed!("attribute `num_groups` is required"))?;
    let g = usize::try_from(g)
        .ok()
        .filter(|&g| g > 0)
        .ok_or_else(|| failed!("num_groups {g} must be positive"))?;
    op(move |inputs| {
        let (x, scale, bias) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        x.require_float("input")?;
        if x.rank() < 3 || x.shape()[1] % g != 0 {
            return Err(failed!(
                "input {:?} does not split into {g} groups",
                x.shape()
            ));
        }
        let (n, c) = (x.shape()[0], x.shape()[1]);
        let want = if per_channel { c } else { g };
        for (p, what) in [(scale, "scale"), (bias, "bias")] {
            if p.shape() != [want] || p.dtype != x.dtype {
                return Err(failed!(
                    "{what} must be {} [{want}], got {} {:?}",
                    x.dtype,
                    p.dtype,
                    p.shape()
                ));
            }
        }
        let t = widen_half(&x.t)?;
        let grouped = t.reshape((n, g, x.t.elem_count() / (n * g).max(1)))?;
        let mean = grouped.mean_keepdim(2)?;
        let centered = grouped.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(2)?;
        let y = centered
            .broadcast_div(&(var + eps)?.sqrt()?)?
            .reshape(x.shape())?;
        let param = |p: &Value| -> OpResult<CTensor> {
            let p = widen_half(&p.t)?;
            let p = if per_channel {
                p
            } else {
                let idx: Vec<i64> = (0..c).map(|ch| (ch / (c / g)) as i64).collect();
                p.index_select(&CTensor::from_vec(idx, c, p.device())?, 0)?
            };
            let mut shape = vec![1usize; x.rank()];
            shape[1] = c;
            Ok(p.reshape(shape)?)
        };
        let y = y
            .broadcast_mul(&param(scale)?)?
            .broadcast_add(&param(bias)?)?;
        Ok(vec![Value::new(y.to_dtype(x.t.dtype())?, x.dtype)])
    })
}
