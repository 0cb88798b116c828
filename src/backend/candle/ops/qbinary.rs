//! ONNX Runtime's quantized element-wise contrib ops `QLinearAdd` and `QLinearMul`
//! (`com.microsoft`, int8/uint8, per-tensor scales and zero points, multidirectional
//! broadcasting), computed as MLAS computes them on x86-64 in f32, so that results match
//! ONNX Runtime bit for bit rather than to one quantization step:
//!
//! * Add (the AVX2 kernel): with `ra = sa/sc`, `rb = sb/sc` and
//!   `fixed = zc − (ra·za + rb·zb)`, `c = round_half_even(fma(a, ra, fma(b, rb, fixed)))`
//!   saturated; when one operand is a scalar over the innermost broadcast span, ONNX
//!   Runtime folds it into `fixed` first (`fixed + s·r`) and takes the other operand as
//!   the kernel's first, so the rounding order follows the broadcast pattern.
//! * Mul (the SSE2 kernel): `c = round_half_even(f32((a−za)·(b−zb))·(sa·sb/sc) + zc)`
//!   saturated.

use super::qtensor::{bounds, from_ints, ints, Quant};
use super::{broadcast_shape, input, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, OpResult};

/// Op types of this family (`com.microsoft`, version 1).
pub(crate) const OPS: &[(&str, i64)] = &[("QLinearAdd", 1), ("QLinearMul", 1)];

/// Builds QLinearAdd or QLinearMul.
pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((7, 8), (1, 1))?;
    ctx.attrs(&[])?;
    let add = ctx.op() == "QLinearAdd";
    op(move |inputs| {
        let (a, b) = (input(inputs, 0)?, input(inputs, 3)?);
        if a.dtype != b.dtype {
            return Err(failed!("A is {} but B is {}", a.dtype, b.dtype));
        }
        let qa = Quant::read(input(inputs, 1)?, opt_input(inputs, 2), a.dtype, "A")?;
        let qb = Quant::read(input(inputs, 4)?, opt_input(inputs, 5), a.dtype, "B")?;
        let qc = Quant::read(input(inputs, 6)?, opt_input(inputs, 7), a.dtype, "C")?;
        let lim = bounds(a.dtype)?;
        let shape = broadcast_shape(a.shape(), b.shape())?;
        let (av, bv) = (ints(a, "A")?, ints(b, "B")?);
        let (ia, ib) = (
            broadcast_index(a.shape(), &shape),
            broadcast_index(b.shape(), &shape),
        );
        let span = span_kind(a.shape(), b.shape(), &shape);
        let q = ia
            .iter()
            .zip(&ib)
            .map(|(&i, &j)| {
                let (x, y) = (av[i], bv[j]);
                let c = if add {
                    add_value(x, y, qa, qb, qc, span)
                } else {
                    mul_value(x, y, qa, qb, qc)
                };
                (c.round_ties_even().clamp(lim.0 as f32, lim.1 as f32)) as i32
            })
            .collect();
        Ok(vec![from_ints(a.dtype, &shape, q, a)?])
    })
}

/// Which operand ONNX Runtime's broadcast loop hands to MLAS as a scalar.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Span {
    /// Both operands are spans.
    Both,
    /// A is one value per span (or the whole of A is one value).
    ScalarA,
    /// B is one value per span.
    ScalarB,
}

/// The broadcast loop's choice: a one-element input is a scalar; otherwise the operand
/// that is broadcast along the innermost output dim of size > 1.
fn span_kind(a: &[usize], b: &[usize], out: &[usize]) -> Span {
    let numel = |s: &[usize]| s.iter().product::<usize>();
    if numel(a) == 1 {
        return Span::ScalarA;
    }
    if numel(b) == 1 {
        return Span::ScalarB;
    }
    let dim = |s: &[usize], i: usize| {
        let pad = out.len() - s.len();
        if i < pad {
            1
        } else {
            s[i - pad]
        }
    };
    match (0..out.len()).rev().find(|&i| out[i] > 1) {
        Some(i) if dim(a, i) == 1 => Span::ScalarA,
        Some(i) if dim(b, i) == 1 => Span::ScalarB,
        _ => Span::Both,
    }
}

/// For every element of `out` (row-major), the flat index of the element of an input of
/// shape `s` that broadcasts to it.
fn broadcast_index(s: &[usize], out: &[usize]) -> Vec<usize> {
    let pad = out.len() - s.len();
    let mut strides = vec![0; out.len()];
    let mut acc = 1;
    for i in (0..s.len()).rev() {
        if s[i] != 1 {
            strides[i + pad] = acc;
        }
        acc *= s[i];
    }
    let n: usize = out.iter().product();
    let mut index = vec![0; out.len()];
    (0..n)
        .map(|flat| {
            super::window::unravel(flat, out, &mut index);
            index.iter().zip(&strides).map(|(i, s)| i * s).sum()
        })
        .collect()
}

/// QLinearAdd's unrounded result (MLAS's AVX2 kernel, see the module doc).
fn add_value(a: i32, b: i32, qa: Quant, qb: Quant, qc: Quant, span: Span) -> f32 {
    // The kernel's first operand is the span; a scalar A is passed second.
    let ((x, qx), (y, qy)) = match span {
        Span::ScalarA => ((b, qb), (a, qa)),
        _ => ((a, qa), (b, qb)),
    };
    let rx = qx.scale / qc.scale;
    let ry = qy.scale / qc.scale;
    let fixed = qc.zp as f32 - (rx * qx.zp as f32 + ry * qy.zp as f32);
    match span {
        Span::Both => (x as f32).mul_add(rx, (y as f32).mul_add(ry, fixed)),
        Span::ScalarA | Span::ScalarB => (x as f32).mul_add(rx, fixed + y as f32 * ry),
    }
}

/// QLinearMul's unrounded result (MLAS's SSE2 kernel, see the module doc).
fn mul_value(a: i32, b: i32, qa: Quant, qb: Quant, qc: Quant) -> f32 {
    let ratio = qa.scale * qb.scale / qc.scale;
    ((a - qa.zp) * (b - qb.zp)) as f32 * ratio + qc.zp as f32
}
