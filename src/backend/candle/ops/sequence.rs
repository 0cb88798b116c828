//! ONNX sequences inside a graph: SequenceConstruct, SequenceEmpty, SequenceAt,
//! SequenceInsert, SequenceErase, SequenceLength, SplitToSequence and
//! ConcatFromSequence. A sequence is a [`Value`] holding its tensors (`Value::seq`);
//! the elements stay on the device, the ops only rearrange them.

use super::slicing::concat;
use super::{input, norm_axis, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, OpResult};
use crate::backend::candle::value::{dtype_from_onnx, Value};
use crate::tensor::DType;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("SequenceConstruct", 11),
    ("SequenceEmpty", 11),
    ("SequenceAt", 11),
    ("SequenceInsert", 11),
    ("SequenceErase", 11),
    ("SequenceLength", 11),
    ("SplitToSequence", 11),
    ("ConcatFromSequence", 11),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let dev = ctx.device.clone();
    match ctx.op() {
        "SequenceConstruct" => {
            ctx.arity((1, usize::MAX), (1, 1))?;
            ctx.attrs(&[])?;
            op(move |inputs| {
                let items: Vec<Value> = (0..inputs.len())
                    .map(|i| input(inputs, i).cloned())
                    .collect::<OpResult<_>>()?;
                if items.iter().any(|v| v.seq.is_some()) {
                    return Err(failed!("a sequence holds tensors, not sequences"));
                }
                let dtype = items[0].dtype;
                if let Some(v) = items.iter().find(|v| v.dtype != dtype) {
                    return Err(failed!("the tensors have dtypes {dtype} and {}", v.dtype));
                }
                Ok(vec![Value::sequence(items, dtype, &dev)?])
            })
        }
        "SequenceEmpty" => {
            ctx.arity((0, 0), (1, 1))?;
            let a = ctx.attrs(&["dtype"])?;
            let dtype = dtype_from_onnx(a.int("dtype", 1)? as i32)?;
            op(move |_| Ok(vec![Value::sequence(Vec::new(), dtype, &dev)?]))
        }
        "SequenceLength" => {
            ctx.arity((1, 1), (1, 1))?;
            ctx.attrs(&[])?;
            op(move |inputs| {
                let n = input(inputs, 0)?.items("input_sequence")?.len();
                Ok(vec![Value::scalar_i64(n as i64, &dev)?])
            })
        }
        "SequenceAt" => {
            ctx.arity((2, 2), (1, 1))?;
            ctx.attrs(&[])?;
            op(|inputs| {
                let items = input(inputs, 0)?.items("input_sequence")?;
                let at = position(input(inputs, 1)?, items.len(), false)?;
                Ok(vec![items[at].clone()])
            })
        }
        "SequenceInsert" => {
            ctx.arity((2, 3), (1, 1))?;
            ctx.attrs(&[])?;
            op(move |inputs| {
                let s = input(inputs, 0)?;
                let t = input(inputs, 1)?;
                if t.seq.is_some() || t.dtype != s.dtype {
                    return Err(failed!(
                        "the inserted value must be a {} tensor, got {}",
                        s.dtype,
                        t.dtype
                    ));
                }
                let mut items = s.items("input_sequence")?.to_vec();
                let at = match opt_input(inputs, 2) {
                    Some(p) => position(p, items.len(), true)?,
                    None => items.len(),
                };
                items.insert(at, t.clone());
                Ok(vec![Value::sequence(items, s.dtype, &dev)?])
            })
        }
        "SequenceErase" => {
            ctx.arity((1, 2), (1, 1))?;
            ctx.attrs(&[])?;
            op(move |inputs| {
                let s = input(inputs, 0)?;
                let mut items = s.items("input_sequence")?.to_vec();
                if items.is_empty() {
                    return Err(failed!("cannot erase from an empty sequence"));
                }
                let at = match opt_input(inputs, 1) {
                    Some(p) => position(p, items.len(), false)?,
                    None => items.len() - 1,
                };
                items.remove(at);
                Ok(vec![Value::sequence(items, s.dtype, &dev)?])
            })
        }
        "SplitToSequence" => {
            ctx.arity((1, 2), (1, 1))?;
            let a = ctx.attrs(&["axis", "keepdims"])?;
            let axis = a.int("axis", 0)?;
            let keepdims = a.int("keepdims", 1)? != 0;
            op(move |inputs| {
                let x = input(inputs, 0)?;
                let axis = norm_axis(axis, x.rank())?;
                let len = x.shape()[axis];
                let (sizes, squeeze) = match opt_input(inputs, 1) {
                    None => (vec![1; len], !keepdims),
                    Some(s) => (split_sizes(s, len)?, false),
                };
                let mut items = Vec::with_capacity(sizes.len());
                let mut start = 0;
                for n in sizes {
                    let mut t = x.t.narrow(axis, start, n)?;
                    if squeeze {
                        t = t.squeeze(axis)?;
                    }
                    items.push(Value::new(t.contiguous()?, x.dtype));
                    start += n;
                }
                Ok(vec![Value::sequence(items, x.dtype, &dev)?])
            })
        }
        _ => {
            ctx.arity((1, 1), (1, 1))?;
            let a = ctx.attrs(&["axis", "new_axis"])?;
            let axis = a
                .opt_int("axis")?
                .ok_or_else(|| failed!("attribute `axis` is required"))?;
            let new_axis = a.int("new_axis", 0)? != 0;
            op(move |inputs| {
                let items = input(inputs, 0)?.items("input_sequence")?;
                let Some(first) = items.first() else {
                    return Err(failed!("cannot concatenate an empty sequence"));
                };
                let stacked: Vec<Value>;
                let parts: Vec<Option<&Value>> = if new_axis {
                    // Stacking: a new axis of size 1 at `axis` (which may be rank).
                    let r = first.rank() as i64;
                    if axis < -r - 1 || axis > r {
                        return Err(failed!("axis {axis} is out of range for rank {}", r + 1));
                    }
                    let at = if axis < 0 { axis + r + 1 } else { axis } as usize;
                    stacked = items
                        .iter()
                        .map(|v| Ok(Value::new(v.t.unsqueeze(at)?, v.dtype)))
                        .collect::<OpResult<_>>()?;
                    stacked.iter().map(Some).collect()
                } else {
                    items.iter().map(Some).collect()
                };
                Ok(vec![concat(&parts, axis)?])
            })
        }
    }
}

/// A position input (a scalar int32/int64) in `[-n, n)`, or `[-n, n]` when `insert`,
/// normalized to `[0, n]`.
fn position(p: &Value, n: usize, insert: bool) -> OpResult<usize> {
    if !matches!(p.dtype, DType::I32 | DType::I64) || p.t.elem_count() != 1 {
        return Err(failed!(
            "position must be a scalar int32 or int64, got {} {:?}",
            p.dtype,
            p.shape()
        ));
    }
    let v = p.i64s("position")?[0];
    let n = n as i64;
    let hi = if insert { n } else { n - 1 };
    if v < -n || v > hi {
        return Err(failed!(
            "position {v} is out of range for a sequence of {n}"
        ));
    }
    Ok(if v < 0 { v + n } else { v } as usize)
}

/// SplitToSequence's `split`: a scalar chunk length (the last chunk may be shorter) or
/// one length per part, summing to the axis length.
fn split_sizes(s: &Value, len: usize) -> OpResult<Vec<usize>> {
    let v = s.i64s("split")?;
    if s.rank() == 0 {
        let chunk = v[0];
        if chunk <= 0 {
            return Err(failed!("split {chunk} must be positive"));
        }
        let chunk = chunk as usize;
        let mut sizes = vec![chunk; len / chunk];
        if !len.is_multiple_of(chunk) {
            sizes.push(len % chunk);
        }
        return Ok(sizes);
    }
    let total = v.iter().try_fold(
        0i64,
        |acc, &x| if x < 0 { None } else { acc.checked_add(x) },
    );
    if total != Some(len as i64) {
        return Err(failed!("split {v:?} does not divide an axis of {len}"));
    }
    Ok(v.into_iter().map(|x| x as usize).collect())
}
