//! Bit manipulation of integer tensors: BitShift (with ONNX's rule for shifts that are
//! negative or at least the type's width) and BitwiseAnd/Or/Xor/Not. candle has no
//! integer bit kernels, so these run on the host in the logical type's width (a narrow
//! type stored as i64 is sign- or zero-extended, which the bit ops preserve).

use super::binary::{broadcast_pair, same_dtype};
use super::{input, op, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::{host_i64s, Value};
use crate::tensor::DType;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("BitShift", 11),
    ("BitwiseAnd", 18),
    ("BitwiseOr", 18),
    ("BitwiseXor", 18),
    ("BitwiseNot", 18),
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    if ctx.op() == "BitwiseNot" {
        ctx.arity((1, 1), (1, 1))?;
        ctx.attrs(&[])?;
        return op(|inputs| {
            let x = input(inputs, 0)?;
            let (bits, signed) = width(x.dtype)?;
            let v = host_i64s(&x.t)?
                .into_iter()
                .map(|a| fit(!a, bits, signed))
                .collect();
            finish(v, &x.t, x.dtype)
        });
    }
    ctx.arity((2, 2), (1, 1))?;
    let f: fn(i64, i64, u32, bool) -> i64 = match ctx.op() {
        "BitShift" => {
            let a = ctx.attrs(&["direction"])?;
            match a.string("direction")?.as_deref() {
                Some("LEFT") => shift_left,
                Some("RIGHT") => shift_right,
                d => {
                    return Err(failed!(
                        "attribute `direction` = {d:?} is not \"LEFT\" or \"RIGHT\""
                    ))
                }
            }
        }
        other => {
            ctx.attrs(&[])?;
            match other {
                "BitwiseAnd" => |a, b, _, _| a & b,
                "BitwiseOr" => |a, b, _, _| a | b,
                _ => |a, b, _, _| a ^ b,
            }
        }
    };
    op(move |inputs| {
        let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
        let dtype = same_dtype(a, b)?;
        let (bits, signed) = width(dtype)?;
        let (x, y) = broadcast_pair(a, b)?;
        let v = host_i64s(&x)?
            .into_iter()
            .zip(host_i64s(&y)?)
            .map(|(p, q)| fit(f(p, q, bits, signed), bits, signed))
            .collect();
        finish(v, &x, dtype)
    })
}

/// The bit width of an integer dtype and whether it is signed.
fn width(d: DType) -> OpResult<(u32, bool)> {
    Ok(match d {
        DType::U8 => (8, false),
        DType::U16 => (16, false),
        DType::U32 => (32, false),
        DType::I8 => (8, true),
        DType::I16 => (16, true),
        DType::I32 => (32, true),
        DType::I64 => (64, true),
        d => return Err(unsupported!("inputs of dtype {d} are not supported")),
    })
}

/// Reduces a result to the type's width: zero-extended for unsigned types,
/// sign-extended for signed ones.
fn fit(v: i64, bits: u32, signed: bool) -> i64 {
    if bits == 64 {
        v
    } else if signed {
        (v << (64 - bits)) >> (64 - bits)
    } else {
        v & ((1i64 << bits) - 1)
    }
}

/// `a << s`, bits moved past the top discarded; 0 for a shift outside `0..bits`.
fn shift_left(a: i64, s: i64, bits: u32, _signed: bool) -> i64 {
    if (0..bits as i64).contains(&s) {
        a.wrapping_shl(s as u32)
    } else {
        0
    }
}

/// `a >> s`, arithmetic for signed types; outside `0..bits` only the sign fill remains
/// (-1 for a negative signed value, else 0).
fn shift_right(a: i64, s: i64, bits: u32, _signed: bool) -> i64 {
    if (0..bits as i64).contains(&s) {
        // Values are held zero-extended (unsigned) or sign-extended (signed), so the
        // i64 arithmetic shift is the right one for both.
        a >> s
    } else if a < 0 {
        -1
    } else {
        0
    }
}

/// Back to a value of `dtype` shaped like `like`.
fn finish(v: Vec<i64>, like: &CTensor, dtype: DType) -> OpResult<Vec<Value>> {
    let t = CTensor::from_vec(v, like.dims(), like.device())?.to_dtype(like.dtype())?;
    Ok(vec![Value::wrapped(t, dtype)?])
}
