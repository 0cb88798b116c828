//! Element-wise ops of several tensors: arithmetic, comparisons, logic, Where, PRelu, Clip
//! and the variadic Max/Min/Sum/Mean. Broadcasting follows the opset: numpy-style
//! multidirectional from opset 7 (8 for the variadic ops), and before that the legacy
//! `broadcast`/`axis` attributes (B aligned at `axis`, or suffix-aligned, then broadcast
//! to A's shape; no broadcasting at all when `broadcast` is 0).

use super::{
    broadcast_shape, input, maximum, minimum, norm_axis, op, opt_input, zip_f64, Built, Ctx,
};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::{host_i64s, Value};
use crate::tensor::DType;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("Add", 1),
    ("Sub", 1),
    ("Mul", 1),
    ("Div", 1),
    ("Pow", 1),
    ("Equal", 1),
    ("Greater", 1),
    ("Less", 1),
    ("GreaterOrEqual", 12),
    ("LessOrEqual", 12),
    ("And", 1),
    ("Or", 1),
    ("Xor", 1),
    ("Not", 1),
    ("Where", 9),
    ("PRelu", 1),
    ("Clip", 1),
    ("Max", 1),
    ("Min", 1),
    ("Sum", 1),
    ("Mean", 1),
    ("Mod", 10),
];

/// How the second operand is broadcast.
#[derive(Clone, Copy)]
enum Bcast {
    /// Numpy multidirectional broadcasting (opset >= 7).
    Multi,
    /// Opset < 7: `broadcast` attribute and optional `axis`.
    Legacy { broadcast: bool, axis: Option<i64> },
}

#[derive(Clone, Copy)]
enum Kind {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Eq,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Xor,
}

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let name = ctx.op();
    let kind = match name {
        "Add" => Kind::Add,
        "Sub" => Kind::Sub,
        "Mul" => Kind::Mul,
        "Div" => Kind::Div,
        "Pow" => Kind::Pow,
        "Equal" => Kind::Eq,
        "Greater" => Kind::Gt,
        "Less" => Kind::Lt,
        "GreaterOrEqual" => Kind::Ge,
        "LessOrEqual" => Kind::Le,
        "And" => Kind::And,
        "Or" => Kind::Or,
        "Xor" => Kind::Xor,
        "Not" => return build_not(ctx),
        "Where" => return build_where(ctx),
        "PRelu" => return build_prelu(ctx),
        "Clip" => return build_clip(ctx),
        "Mod" => return build_mod(ctx),
        _ => return build_variadic(ctx),
    };
    ctx.arity((2, 2), (1, 1))?;
    let bc = if ctx.opset < 7 {
        let mut allowed = vec!["broadcast", "axis"];
        if ctx.opset < 6 && matches!(kind, Kind::Add | Kind::Sub | Kind::Mul | Kind::Div) {
            allowed.push("consumed_inputs");
        }
        let a = ctx.attrs(&allowed)?;
        let broadcast = match a.int("broadcast", 0)? {
            0 => false,
            1 => true,
            v => return Err(unsupported!("attribute `broadcast` = {v} is not supported")),
        };
        Bcast::Legacy {
            broadcast,
            axis: a.opt_int("axis")?,
        }
    } else {
        ctx.attrs(&[])?;
        Bcast::Multi
    };
    op(move |inputs| {
        Ok(vec![binary(
            kind,
            bc,
            input(inputs, 0)?,
            input(inputs, 1)?,
        )?])
    })
}

/// Brings both operands to the output shape.
fn align(a: &Value, b: &Value, bc: Bcast) -> OpResult<(CTensor, CTensor)> {
    match bc {
        Bcast::Multi => {
            let s = broadcast_shape(a.shape(), b.shape())?;
            Ok((
                a.t.broadcast_as(s.as_slice())?,
                b.t.broadcast_as(s.as_slice())?,
            ))
        }
        Bcast::Legacy {
            broadcast: false, ..
        } => {
            if a.shape() != b.shape() {
                return Err(failed!(
                    "shapes {:?} and {:?} differ and attribute `broadcast` is 0",
                    a.shape(),
                    b.shape()
                ));
            }
            Ok((a.t.clone(), b.t.clone()))
        }
        Bcast::Legacy {
            broadcast: true,
            axis,
        } => {
            let (ra, rb) = (a.rank(), b.rank());
            if rb > ra {
                return Err(failed!(
                    "B has rank {rb} > rank {ra} of A; cannot broadcast B to A"
                ));
            }
            let bt = match axis {
                Some(ax) if ra > 0 => {
                    let ax = norm_axis(ax, ra)?;
                    if ax + rb > ra {
                        return Err(failed!(
                            "B of shape {:?} does not fit A of shape {:?} at axis {ax}",
                            b.shape(),
                            a.shape()
                        ));
                    }
                    let mut s = vec![1usize; ax];
                    s.extend_from_slice(b.shape());
                    s.resize(ra, 1);
                    b.t.reshape(s)?
                }
                _ => b.t.clone(),
            };
            let bt = bt.broadcast_as(a.shape()).map_err(|_| {
                failed!(
                    "B of shape {:?} cannot be broadcast to A of shape {:?}",
                    b.shape(),
                    a.shape()
                )
            })?;
            Ok((a.t.clone(), bt))
        }
    }
}

/// Both operands broadcast numpy-style to their common shape.
pub(crate) fn broadcast_pair(a: &Value, b: &Value) -> OpResult<(CTensor, CTensor)> {
    align(a, b, Bcast::Multi)
}

/// The dtype both operands share, or an error naming the two.
pub(crate) fn same_dtype(a: &Value, b: &Value) -> OpResult<DType> {
    if a.dtype != b.dtype {
        return Err(failed!(
            "inputs have different dtypes {} and {}",
            a.dtype,
            b.dtype
        ));
    }
    Ok(a.dtype)
}

fn binary(kind: Kind, bc: Bcast, a: &Value, b: &Value) -> OpResult<Value> {
    if let Kind::Pow = kind {
        // candle's `pow` is exp(y*ln x): wrong for negative bases; compute C `pow` exactly.
        let base_ok = a.is_float() || a.t.dtype() == candle_core::DType::I64;
        if !base_ok || a.dtype == DType::Bool || b.dtype == DType::Bool {
            return Err(unsupported!(
                "Pow of {} by {} is not supported",
                a.dtype,
                b.dtype
            ));
        }
        let (x, y) = align(a, b, bc)?;
        if a.is_float() {
            return Ok(Value::new(zip_f64(&x, &y, f64::powf)?, a.dtype));
        }
        return int_pow(&x, &y, a.dtype);
    }
    let dtype = same_dtype(a, b)?;
    let (x, y) = align(a, b, bc)?;
    let logic = matches!(kind, Kind::And | Kind::Or | Kind::Xor);
    if logic != (dtype == DType::Bool) && !matches!(kind, Kind::Eq) {
        return Err(unsupported!("inputs of dtype {dtype} are not supported"));
    }
    let arith = |t: CTensor| Value::wrapped(t, dtype);
    let cmp = |t: CTensor| Ok(Value::new(t, DType::Bool));
    match kind {
        Kind::Add => arith(x.add(&y)?),
        Kind::Sub => arith(x.sub(&y)?),
        Kind::Mul => arith(x.mul(&y)?),
        Kind::Div => {
            if !dtype.is_float() && y.eq(0f64)?.max_all()?.to_scalar::<u8>()? > 0 {
                return Err(failed!("integer division by zero"));
            }
            arith(x.div(&y)?)
        }
        Kind::Eq => cmp(x.eq(&y)?),
        Kind::Gt => cmp(x.gt(&y)?),
        Kind::Lt => cmp(x.lt(&y)?),
        Kind::Ge => cmp(x.ge(&y)?),
        Kind::Le => cmp(x.le(&y)?),
        Kind::And => cmp(x.mul(&y)?),
        Kind::Or => cmp(maximum(&x, &y)?),
        Kind::Xor => cmp(x.ne(&y)?),
        Kind::Pow => Err(failed!("unreachable")),
    }
}

fn build_not(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (1, 1))?;
    ctx.attrs(&[])?;
    op(|inputs| {
        let x = input(inputs, 0)?;
        if x.dtype != DType::Bool {
            return Err(unsupported!("input of dtype {} is not supported", x.dtype));
        }
        Ok(vec![Value::new(x.t.eq(0u8)?, DType::Bool)])
    })
}

fn build_where(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((3, 3), (1, 1))?;
    ctx.attrs(&[])?;
    op(|inputs| {
        let (c, x, y) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
        if c.dtype != DType::Bool {
            return Err(failed!("condition must be bool, got {}", c.dtype));
        }
        let dtype = same_dtype(x, y)?;
        let s = broadcast_shape(&broadcast_shape(c.shape(), x.shape())?, y.shape())?;
        let s = s.as_slice();
        let out =
            c.t.broadcast_as(s)?
                .where_cond(&x.t.broadcast_as(s)?, &y.t.broadcast_as(s)?)?;
        Ok(vec![Value::new(out, dtype)])
    })
}

fn build_prelu(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((2, 2), (1, 1))?;
    ctx.attrs(if ctx.opset < 6 {
        &["consumed_inputs"]
    } else {
        &[]
    })?;
    let legacy = ctx.opset < 7;
    op(move |inputs| {
        let (x, slope) = (input(inputs, 0)?, input(inputs, 1)?);
        x.require_float("input")?;
        same_dtype(x, slope)?;
        let s = if legacy {
            // Opset < 7: one slope, one per channel (axis 1), or one per element.
            let (xs, ss) = (x.shape(), slope.shape());
            if slope.t.elem_count() == 1 {
                slope.t.reshape(())?.broadcast_as(xs)?
            } else if ss == xs {
                slope.t.clone()
            } else if ss.len() == 1 && xs.len() >= 2 && ss[0] == xs[1] {
                let mut shape = vec![1usize; xs.len() - 1];
                shape[0] = ss[0];
                slope.t.reshape(shape)?.broadcast_as(xs)?
            } else {
                return Err(failed!(
                    "slope of shape {ss:?} does not fit input of shape {xs:?}"
                ));
            }
        } else {
            // Unidirectional: slope broadcasts to X's shape.
            slope.t.broadcast_as(x.shape()).map_err(|_| {
                failed!(
                    "slope of shape {:?} cannot be broadcast to input of shape {:?}",
                    slope.shape(),
                    x.shape()
                )
            })?
        };
        let out = x.t.lt(0f64)?.where_cond(&x.t.mul(&s)?, &x.t)?;
        Ok(vec![Value::new(out, x.dtype)])
    })
}

fn build_clip(ctx: &Ctx) -> OpResult<Built> {
    if ctx.opset < 11 {
        ctx.arity((1, 1), (1, 1))?;
        let allowed: &[&str] = if ctx.opset < 6 {
            &["consumed_inputs", "min", "max"]
        } else {
            &["min", "max"]
        };
        let a = ctx.attrs(allowed)?;
        // Opset 6 gives defaults of +-FLT_MAX; opset 1 has no bound when absent.
        let (dmin, dmax) = if ctx.opset < 6 {
            (None, None)
        } else {
            (Some(f32::MIN), Some(f32::MAX))
        };
        let lo = a.opt_float("min")?.or(dmin).map(f64::from);
        let hi = a.opt_float("max")?.or(dmax).map(f64::from);
        return op(move |inputs| {
            let x = input(inputs, 0)?;
            x.require_float("input")?;
            let mut t = x.t.clone();
            if let Some(lo) = lo {
                t = maximum(&t, lo)?;
            }
            if let Some(hi) = hi {
                t = minimum(&t, hi)?;
            }
            Ok(vec![Value::new(t, x.dtype)])
        });
    }
    ctx.arity((1, 3), (1, 1))?;
    ctx.attrs(&[])?;
    op(|inputs| {
        let x = input(inputs, 0)?;
        if x.dtype == DType::Bool {
            return Err(unsupported!("input of dtype bool is not supported"));
        }
        let mut t = x.t.clone();
        // max(x, min) then min(., max): NaN in x stays NaN (candle keeps the left NaN), and
        // min > max gives max everywhere, as the spec says.
        if let Some(lo) = opt_input(inputs, 1) {
            t = maximum(&t, &bound(x, lo, "min")?)?;
        }
        if let Some(hi) = opt_input(inputs, 2) {
            t = minimum(&t, &bound(x, hi, "max")?)?;
        }
        Ok(vec![Value::new(t, x.dtype)])
    })
}

fn bound(x: &Value, b: &Value, what: &str) -> OpResult<CTensor> {
    same_dtype(x, b)?;
    if b.t.elem_count() != 1 {
        return Err(failed!(
            "`{what}` must be a scalar, got shape {:?}",
            b.shape()
        ));
    }
    Ok(b.t.reshape(())?.broadcast_as(x.shape())?)
}

fn build_variadic(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, usize::MAX), (1, 1))?;
    ctx.attrs(if ctx.opset < 6 {
        &["consumed_inputs"]
    } else {
        &[]
    })?;
    let name = ctx.op().to_string();
    let multi = ctx.opset >= 8;
    op(move |inputs| {
        let vals = inputs
            .iter()
            .enumerate()
            .map(|(i, v)| v.ok_or_else(|| failed!("input {i} is missing")))
            .collect::<OpResult<Vec<&Value>>>()?;
        let first = vals[0];
        let dtype = first.dtype;
        if dtype == DType::Bool || (name == "Mean" && !first.is_float()) {
            return Err(unsupported!("inputs of dtype {dtype} are not supported"));
        }
        let mut acc = first.t.clone();
        for v in &vals[1..] {
            same_dtype(first, v)?;
            let s = if multi {
                broadcast_shape(acc.dims(), v.shape())?
            } else if acc.dims() != v.shape() {
                return Err(failed!(
                    "inputs have shapes {:?} and {:?}; opset < 8 does not broadcast",
                    acc.dims(),
                    v.shape()
                ));
            } else {
                v.shape().to_vec()
            };
            let (a, b) = (
                acc.broadcast_as(s.as_slice())?,
                v.t.broadcast_as(s.as_slice())?,
            );
            acc = match name.as_str() {
                "Max" => nan_propagating(&a, &b, maximum(&a, &b)?, dtype)?,
                "Min" => nan_propagating(&a, &b, minimum(&a, &b)?, dtype)?,
                _ => a.add(&b)?,
            };
        }
        if name == "Mean" {
            acc = acc.affine(1.0 / vals.len() as f64, 0.0)?;
        }
        Ok(vec![Value::wrapped(acc, dtype)?])
    })
}

/// [`maximum`]/[`minimum`] keep a NaN only from the left operand; numpy (the ONNX
/// reference) propagates NaN from either side.
fn nan_propagating(_a: &CTensor, b: &CTensor, r: CTensor, dtype: DType) -> OpResult<CTensor> {
    if !dtype.is_float() {
        return Ok(r);
    }
    Ok(b.ne(b)?.where_cond(b, &r)?)
}

fn build_mod(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((2, 2), (1, 1))?;
    let fmod = match ctx.attrs(&["fmod"])?.int("fmod", 0)? {
        0 => false,
        1 => true,
        v => return Err(unsupported!("attribute `fmod` = {v} is not supported")),
    };
    // Before opset 28, fmod = 0 was defined for integers only.
    let float_floor_mod = ctx.opset >= 28;
    op(move |inputs| {
        Ok(vec![modulo(
            input(inputs, 0)?,
            input(inputs, 1)?,
            fmod,
            float_floor_mod,
        )?])
    })
}

/// `fmod` = 1: C `fmod` (sign of the dividend); 0: floor modulo (sign of the divisor).
fn modulo(a: &Value, b: &Value, fmod: bool, float_floor_mod: bool) -> OpResult<Value> {
    let dtype = same_dtype(a, b)?;
    let (x, y) = broadcast_pair(a, b)?;
    if dtype.is_float() {
        if !fmod && !float_floor_mod {
            return Err(failed!("fmod = 0 requires integer inputs at this opset"));
        }
        let r = zip_f64(&x, &y, move |p, q| {
            let r = p % q;
            if fmod {
                r
            } else if r == 0.0 {
                0f64.copysign(q)
            } else if (r < 0.0) != (q < 0.0) {
                r + q
            } else {
                r
            }
        })?;
        return Ok(Value::new(r, dtype));
    }
    if dtype == DType::Bool {
        return Err(unsupported!("inputs of dtype bool are not supported"));
    }
    let (p, q) = (host_i64s(&x)?, host_i64s(&y)?);
    let mut out = Vec::with_capacity(p.len());
    for (p, q) in p.into_iter().zip(q) {
        if q == 0 {
            return Err(failed!("integer modulo by zero"));
        }
        let r = p.wrapping_rem(q);
        out.push(if !fmod && r != 0 && ((r < 0) != (q < 0)) {
            r + q
        } else {
            r
        });
    }
    let t = CTensor::from_vec(out, x.dims(), x.device())?.to_dtype(x.dtype())?;
    Value::wrapped(t, dtype)
}

/// Integer base: ONNX Runtime's `static_cast<T>(std::pow(x, y))`; results that do not fit
/// (whose conversion is undefined) are an error.
fn int_pow(x: &CTensor, y: &CTensor, dtype: DType) -> OpResult<Value> {
    let f = |t: &CTensor| -> OpResult<Vec<f64>> {
        Ok(t.flatten_all()?
            .to_dtype(candle_core::DType::F64)?
            .to_vec1::<f64>()?)
    };
    let mut out = Vec::with_capacity(x.elem_count());
    for (p, q) in f(x)?.into_iter().zip(f(y)?) {
        let r = p.powf(q).trunc();
        if !(r.is_finite() && r.abs() < 9.0e15) {
            return Err(failed!("integer Pow result {r} is out of range"));
        }
        out.push(r as i64);
    }
    Value::wrapped(CTensor::from_vec(out, x.dims(), x.device())?, dtype)
}
