//! The loss ops that training graphs exported for evaluation keep: NegativeLogLikelihoodLoss
//! and SoftmaxCrossEntropyLoss (with its optional log-probability output), with class
//! weights, `ignore_index` and the three reductions. The targets are read on the host to
//! check their range (as Gather does); the arithmetic runs on the session's device.

use super::{input, op, opt_input, widen_half, Built, Ctx};
use crate::backend::candle::error::{failed, OpResult};
use crate::backend::candle::value::{index_tensor, Value};
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("NegativeLogLikelihoodLoss", 12),
    ("SoftmaxCrossEntropyLoss", 12),
];

/// How the per-element losses are combined.
#[derive(Clone, Copy)]
enum Reduction {
    None,
    Sum,
    /// Weighted mean: the sum divided by the sum of the weights that applied.
    Mean,
}

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let softmax = ctx.op() == "SoftmaxCrossEntropyLoss";
    ctx.arity((2, 3), (1, if softmax { 2 } else { 1 }))?;
    let a = ctx.attrs(&["ignore_index", "reduction"])?;
    let ignore = a.opt_int("ignore_index")?;
    let reduction = match a.string("reduction")?.as_deref().unwrap_or("mean") {
        "none" => Reduction::None,
        "sum" => Reduction::Sum,
        "mean" => Reduction::Mean,
        r => {
            return Err(failed!(
                "attribute `reduction` = \"{r}\" is not none, sum or mean"
            ))
        }
    };
    let want_log_prob = ctx.has_output(1);
    op(move |inputs| {
        let (x, target) = (input(inputs, 0)?, input(inputs, 1)?);
        x.require_float("input")?;
        if x.rank() < 2 {
            return Err(failed!(
                "input must have rank >= 2 (N, C, ...), got {:?}",
                x.shape()
            ));
        }
        if x.shape()[1] == 0 {
            return Err(failed!("input has no classes (C = 0)"));
        }
        let xt = widen_half(&x.t)?;
        let log_prob = if softmax {
            let shifted = xt.broadcast_sub(&xt.max_keepdim(1)?)?;
            let sum = shifted.exp()?.sum_keepdim(1)?;
            shifted.broadcast_sub(&sum.log()?)?
        } else {
            xt
        };
        let loss = nll(
            &log_prob,
            target,
            opt_input(inputs, 2),
            x,
            ignore,
            reduction,
        )?;
        let mut out = vec![Value::new(loss.to_dtype(x.t.dtype())?, x.dtype)];
        if want_log_prob {
            out.push(Value::new(log_prob.to_dtype(x.t.dtype())?, x.dtype));
        }
        Ok(out)
    })
}

/// `-log_prob[n, target[n, d], d] * weight[target[n, d]]`, reduced; `x` is the original
/// input (its shape and dtype name the expectations in errors).
fn nll(
    log_prob: &CTensor,
    target: &Value,
    weight: Option<&Value>,
    x: &Value,
    ignore: Option<i64>,
    reduction: Reduction,
) -> OpResult<CTensor> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let mut expected = vec![n];
    expected.extend(&x.shape()[2..]);
    if target.shape() != expected.as_slice() {
        return Err(failed!(
            "target has shape {:?}, expected {expected:?} for input {:?}",
            target.shape(),
            x.shape()
        ));
    }
    let d: usize = x.shape()[2..].iter().product();
    // Ignored positions pick class 0 and get weight 0.
    let (mut classes, mut keep) = (Vec::with_capacity(n * d), Vec::with_capacity(n * d));
    for t in target.i64s("target")? {
        if Some(t) == ignore {
            classes.push(0u32);
            keep.push(0f32);
        } else if t < 0 || t >= c as i64 {
            return Err(failed!("target class {t} is outside 0..{c}"));
        } else {
            classes.push(t as u32);
            keep.push(1f32);
        }
    }
    let dev = log_prob.device();
    let dt = log_prob.dtype();
    let idx = index_tensor(classes, dev)?;
    let keep = CTensor::from_vec(keep, n * d, dev)?.to_dtype(dt)?;
    let weights = match weight {
        Some(w) => {
            if w.dtype != x.dtype || w.shape() != [c] {
                return Err(failed!(
                    "weight must be a {} tensor of shape [{c}], got {} {:?}",
                    x.dtype,
                    w.dtype,
                    w.shape()
                ));
            }
            (widen_half(&w.t)?.index_select(&idx, 0)? * &keep)?
        }
        None => keep,
    };
    let picked = log_prob
        .reshape((n, c, d))?
        .gather(&idx.reshape((n, 1, d))?.contiguous()?, 1)?
        .squeeze(1)?
        .flatten_all()?;
    let loss = (picked.neg()? * &weights)?;
    Ok(match reduction {
        Reduction::None => loss.reshape(target.shape())?,
        Reduction::Sum => loss.sum_all()?,
        Reduction::Mean => (loss.sum_all()? / weights.sum_all()?)?,
    })
}
