//! Einsum (explicit `->` and implicit output, `...` broadcasting) on floats, computed as a
//! chain of batched matmuls: each pair of operands is permuted to
//! [batch, left, contracted] x [batch, contracted, right]. An index repeated inside one
//! operand (a diagonal, `ii->i`) is refused.

use super::{contiguous, op, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use candle_core::{DType as CDType, Tensor as CTensor};
use std::collections::BTreeMap;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[("Einsum", 12)];

/// An index: a letter, or an ellipsis dim (256 + its position counted from the right).
type Idx = u32;

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, usize::MAX), (1, 1))?;
    let eq = ctx
        .attrs(&["equation"])?
        .string("equation")?
        .ok_or_else(|| failed!("attribute `equation` is required"))?;
    let eq: String = eq.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (eq.clone(), None),
    };
    let terms: Vec<String> = lhs.split(',').map(str::to_string).collect();
    if terms.len() != ctx.node.input.len() {
        return Err(failed!(
            "equation {eq} has {} terms for {} inputs",
            terms.len(),
            ctx.node.input.len()
        ));
    }
    for t in terms.iter().chain(rhs.iter()) {
        if t.replace("...", "")
            .chars()
            .any(|c| !c.is_ascii_alphabetic())
            || t.matches("...").count() > 1
        {
            return Err(unsupported!(
                "attribute `equation` = \"{eq}\" is not supported"
            ));
        }
    }
    op(move |inputs| {
        let vals = inputs
            .iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| failed!("input {i} is missing")))
            .collect::<OpResult<Vec<&Value>>>()?;
        Ok(vec![einsum(&terms, rhs.as_deref(), &vals)?])
    })
}

/// The indices of a term for an operand of rank `rank`.
fn expand(term: &str, rank: usize) -> OpResult<Vec<Idx>> {
    let letters = term.replace("...", "").len();
    match term.split_once("...") {
        None if letters == rank => Ok(term.bytes().map(Idx::from).collect()),
        Some((pre, post)) if rank >= letters => {
            let ell = rank - letters;
            let mut v: Vec<Idx> = pre.bytes().map(Idx::from).collect();
            v.extend((0..ell).rev().map(|j| 256 + j as Idx));
            v.extend(post.bytes().map(Idx::from));
            Ok(v)
        }
        _ => Err(failed!(
            "term `{term}` does not fit an input of rank {rank}"
        )),
    }
}

fn einsum(terms: &[String], rhs: Option<&str>, vals: &[&Value]) -> OpResult<Value> {
    let first = vals[0];
    first.require_float("input")?;
    let dtype = first.dtype;
    let compute = if first.t.dtype() == CDType::BF16 {
        CDType::F32
    } else {
        first.t.dtype()
    };
    let mut ops: Vec<(CTensor, Vec<Idx>)> = Vec::with_capacity(vals.len());
    let mut sizes: BTreeMap<Idx, usize> = BTreeMap::new();
    let mut counts: BTreeMap<Idx, usize> = BTreeMap::new();
    let mut max_ell = 0;
    for (term, v) in terms.iter().zip(vals) {
        if v.dtype != dtype {
            return Err(failed!(
                "inputs have different dtypes {} and {}",
                dtype,
                v.dtype
            ));
        }
        let idx = expand(term, v.rank())?;
        for (p, &i) in idx.iter().enumerate() {
            if idx[..p].contains(&i) {
                return Err(unsupported!(
                    "a repeated index in one operand (`{term}`) is not supported"
                ));
            }
            let d = v.shape()[p];
            let s = sizes.entry(i).or_insert(d);
            if *s != d && *s != 1 && d != 1 {
                return Err(failed!("index `{}` has sizes {s} and {d}", label(i)));
            }
            *s = (*s).max(d);
            *counts.entry(i).or_default() += 1;
            if i >= 256 {
                max_ell = max_ell.max(i - 255);
            }
        }
        ops.push((v.t.to_dtype(compute)?, idx));
    }
    let out: Vec<Idx> = match rhs {
        Some(r) => expand(
            r,
            r.replace("...", "").len()
                + if r.contains("...") {
                    max_ell as usize
                } else {
                    0
                },
        )?,
        None => {
            // Implicit output: ellipsis dims, then letters used once, alphabetically.
            let mut o: Vec<Idx> = (0..max_ell).rev().map(|j| 256 + j).collect();
            o.extend(
                counts
                    .iter()
                    .filter(|(&i, &c)| i < 256 && c == 1)
                    .map(|(&i, _)| i),
            );
            o
        }
    };
    for (p, &i) in out.iter().enumerate() {
        if !sizes.contains_key(&i) || out[..p].contains(&i) {
            return Err(failed!(
                "output index `{}` is not an input index or appears twice",
                label(i)
            ));
        }
    }
    // Broadcast size-1 dims to the index size first.
    let mut ops: Vec<(CTensor, Vec<Idx>)> = ops
        .into_iter()
        .map(|(t, idx)| {
            let full: Vec<usize> = idx.iter().map(|i| sizes[i]).collect();
            Ok((t.broadcast_as(full)?, idx))
        })
        .collect::<OpResult<_>>()?;
    let (mut acc, mut acc_idx) = ops.remove(0);
    for k in 0..ops.len() {
        let (b, b_idx) = (&ops[k].0, &ops[k].1);
        // Indices still needed after this step: the output's and later operands'.
        let later: Vec<Idx> = ops[k + 1..].iter().flat_map(|o| o.1.clone()).collect();
        let keep_after = |i: &Idx| out.contains(i) || later.contains(i);
        // Sum indices private to one side that nothing else needs.
        (acc, acc_idx) = sum_out(acc, acc_idx, |i| keep_after(i) || b_idx.contains(i))?;
        let (b, b_idx) = sum_out(b.clone(), b_idx.clone(), |i| {
            keep_after(i) || acc_idx.contains(i)
        })?;
        let batch: Vec<Idx> = acc_idx
            .iter()
            .copied()
            .filter(|i| b_idx.contains(i) && keep_after(i))
            .collect();
        let contr: Vec<Idx> = acc_idx
            .iter()
            .copied()
            .filter(|i| b_idx.contains(i) && !keep_after(i))
            .collect();
        let left: Vec<Idx> = acc_idx
            .iter()
            .copied()
            .filter(|i| !b_idx.contains(i))
            .collect();
        let right: Vec<Idx> = b_idx
            .iter()
            .copied()
            .filter(|i| !acc_idx.contains(i))
            .collect();
        let size = |v: &[Idx]| v.iter().map(|i| sizes[i]).product::<usize>();
        let (nb, nl, nc, nr) = (size(&batch), size(&left), size(&contr), size(&right));
        let a3 = permute(&acc, &acc_idx, &[&batch[..], &left, &contr].concat())?
            .reshape((nb, nl, nc))?;
        let b3 =
            permute(&b, &b_idx, &[&batch[..], &contr, &right].concat())?.reshape((nb, nc, nr))?;
        acc_idx = [&batch[..], &left, &right].concat();
        let dims: Vec<usize> = acc_idx.iter().map(|i| sizes[i]).collect();
        acc = a3.matmul(&b3)?.reshape(dims)?;
    }
    let (acc, acc_idx) = sum_out(acc, acc_idx, |i| out.contains(i))?;
    let y = permute(&acc, &acc_idx, &out)?;
    Ok(Value::new(y.to_dtype(first.t.dtype())?, dtype))
}

/// Sums away the indices for which `keep` is false.
fn sum_out(
    t: CTensor,
    idx: Vec<Idx>,
    keep: impl Fn(&Idx) -> bool,
) -> OpResult<(CTensor, Vec<Idx>)> {
    let gone: Vec<usize> = (0..idx.len()).filter(|&p| !keep(&idx[p])).collect();
    if gone.is_empty() {
        return Ok((t, idx));
    }
    let t = t.sum(gone.clone())?;
    let idx = idx
        .into_iter()
        .enumerate()
        .filter(|(p, _)| !gone.contains(p))
        .map(|(_, i)| i)
        .collect();
    Ok((t, idx))
}

/// `t` (indexed by `idx`) with its dims in the order `to`, contiguous.
fn permute(t: &CTensor, idx: &[Idx], to: &[Idx]) -> OpResult<CTensor> {
    let perm = to
        .iter()
        .map(|i| {
            idx.iter()
                .position(|j| j == i)
                .ok_or_else(|| failed!("internal einsum index error"))
        })
        .collect::<OpResult<Vec<usize>>>()?;
    if perm.is_empty() {
        return Ok(t.clone());
    }
    contiguous(t.permute(perm)?)
}

fn label(i: Idx) -> String {
    if i < 256 {
        char::from(i as u8).to_string()
    } else {
        "...".to_string()
    }
}
