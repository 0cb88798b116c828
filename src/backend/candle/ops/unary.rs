//! Element-wise functions of one tensor: math (Exp, Sqrt, Erf...) and activations with
//! their attributes (LeakyRelu alpha, Selu alpha/gamma with the opset-1 defaults, Gelu
//! approximation...). NaN passes through every activation as in ONNX Runtime: candle's
//! `relu` maps NaN to 0, so Relu is a `maximum` with NaN on the left instead.

use super::{cpu_fast, input, map_f64, maximum, minimum, op, Built, Ctx};
use crate::backend::candle::error::{unsupported, OpResult};
use crate::backend::candle::value::Value;
use crate::tensor::DType;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[
    ("Abs", 1),
    ("Neg", 1),
    ("Exp", 1),
    ("Log", 1),
    ("Sqrt", 1),
    ("Reciprocal", 1),
    ("Tanh", 1),
    ("Sigmoid", 1),
    ("Ceil", 1),
    ("Floor", 1),
    ("Relu", 1),
    ("LeakyRelu", 1),
    ("Elu", 1),
    ("Selu", 1),
    ("HardSigmoid", 1),
    ("Softplus", 1),
    ("Softsign", 1),
    ("Sin", 7),
    ("Cos", 7),
    ("Tan", 7),
    ("Asin", 7),
    ("Acos", 7),
    ("Atan", 7),
    ("Sinh", 9),
    ("Cosh", 9),
    ("Asinh", 9),
    ("Acosh", 9),
    ("Atanh", 9),
    ("IsNaN", 9),
    ("IsInf", 10),
    ("Erf", 9),
    ("Sign", 9),
    ("Shrink", 9),
    ("ThresholdedRelu", 10),
    ("Round", 11),
    ("Celu", 12),
    ("HardSwish", 14),
    ("Mish", 18),
    ("Gelu", 20),
    ("Swish", 24),
];

/// Ops whose opset-1 version had the (semantically empty) `consumed_inputs` attribute.
const HAD_CONSUMED_INPUTS: &[&str] = &[
    "Abs",
    "Neg",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Tanh",
    "Sigmoid",
    "Ceil",
    "Floor",
    "Relu",
    "LeakyRelu",
    "Elu",
    "Selu",
    "HardSigmoid",
];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((1, 1), (1, 1))?;
    let name = ctx.op();
    // `consumed_inputs` (opset < 6) only told runtimes they may work in place.
    let legacy: &[&str] = if ctx.opset < 6 && HAD_CONSUMED_INPUTS.contains(&name) {
        &["consumed_inputs"]
    } else {
        &[]
    };
    let with = |extra: &[&str]| -> OpResult<_> {
        let mut allowed: Vec<&str> = legacy.to_vec();
        allowed.extend_from_slice(extra);
        ctx.attrs(&allowed)
    };
    let f: UnaryFn = match name {
        "Abs" => {
            with(&[])?;
            Box::new(|x| numeric(x, "Abs", |t| Ok(t.abs()?)))
        }
        "Neg" => {
            with(&[])?;
            Box::new(neg)
        }
        "Relu" => {
            with(&[])?;
            Box::new(|x| {
                if matches!(x.dtype, DType::U8 | DType::U32 | DType::U16 | DType::Bool) {
                    return Err(unsupported!("input of dtype {} is not supported", x.dtype));
                }
                numeric(x, "Relu", |t| {
                    // NaN < 0 is false: NaN stays NaN, as `maximum` keeps it.
                    let relu32 = |v: f32| if v < 0.0 { 0.0 } else { v };
                    let relu64 = |v: f64| if v < 0.0 { 0.0 } else { v };
                    match cpu_fast::map(t, relu32, relu64)? {
                        Some(y) => Ok(y),
                        None => maximum(t, 0f64),
                    }
                })
            })
        }
        "Sign" => {
            with(&[])?;
            // candle's sign maps NaN to 0; ONNX Runtime keeps NaN.
            Box::new(|x| numeric(x, "Sign", |t| keep_nan(t, t.sign()?)))
        }
        "IsNaN" => {
            with(&[])?;
            Box::new(|x| {
                x.require_float("input")?;
                Ok(Value::new(x.t.ne(&x.t)?, DType::Bool))
            })
        }
        "IsInf" => {
            let a = with(&["detect_negative", "detect_positive"])?;
            let neg = a.int("detect_negative", 1)? != 0;
            let pos = a.int("detect_positive", 1)? != 0;
            Box::new(move |x| {
                x.require_float("input")?;
                let p = x.t.eq(f64::INFINITY)?;
                let n = x.t.eq(f64::NEG_INFINITY)?;
                let out = match (neg, pos) {
                    (true, true) => maximum(&p, &n)?,
                    (false, true) => p,
                    (true, false) => n,
                    (false, false) => x.t.zeros_like()?.to_dtype(candle_core::DType::U8)?,
                };
                Ok(Value::new(out, DType::Bool))
            })
        }
        "Exp" => float(with(&[])?, |t| Ok(t.exp()?)),
        "Log" => float(with(&[])?, |t| Ok(t.log()?)),
        "Sqrt" => float(with(&[])?, |t| Ok(t.sqrt()?)),
        "Reciprocal" => float(with(&[])?, |t| Ok(t.recip()?)),
        "Tanh" => float(with(&[])?, |t| Ok(t.tanh()?)),
        "Sin" => float(with(&[])?, |t| Ok(t.sin()?)),
        "Cos" => float(with(&[])?, |t| Ok(t.cos()?)),
        "Tan" => float(with(&[])?, |t| map_f64(t, f64::tan)),
        "Asin" => float(with(&[])?, |t| map_f64(t, f64::asin)),
        "Acos" => float(with(&[])?, |t| map_f64(t, f64::acos)),
        "Atan" => float(with(&[])?, |t| map_f64(t, f64::atan)),
        "Sinh" => float(with(&[])?, |t| map_f64(t, f64::sinh)),
        "Cosh" => float(with(&[])?, |t| map_f64(t, f64::cosh)),
        "Asinh" => float(with(&[])?, |t| map_f64(t, f64::asinh)),
        "Acosh" => float(with(&[])?, |t| map_f64(t, f64::acosh)),
        "Atanh" => float(with(&[])?, |t| map_f64(t, f64::atanh)),
        "Erf" => float(with(&[])?, |t| Ok(t.erf()?)),
        "Ceil" => float(with(&[])?, |t| Ok(t.ceil()?)),
        "Floor" => float(with(&[])?, |t| Ok(t.floor()?)),
        // ONNX rounds half to even; candle's `round` rounds half away from zero.
        "Round" => float(with(&[])?, |t| map_f64(t, f64::round_ties_even)),
        "Sigmoid" => float(with(&[])?, sigmoid),
        "Softsign" => float(with(&[])?, |t| Ok(t.broadcast_div(&(t.abs()? + 1.0)?)?)),
        "Softplus" => float(with(&[])?, |t| {
            map_f64(t, |x| {
                if x > 0.0 {
                    x + (-x).exp().ln_1p()
                } else {
                    x.exp().ln_1p()
                }
            })
        }),
        "Mish" => float(with(&[])?, |t| {
            map_f64(t, |x| {
                let sp = if x > 0.0 {
                    x + (-x).exp().ln_1p()
                } else {
                    x.exp().ln_1p()
                };
                x * sp.tanh()
            })
        }),
        "LeakyRelu" => {
            let alpha = with(&["alpha"])?.float("alpha", 0.01)? as f64;
            float_box(move |t| Ok(t.lt(0f64)?.where_cond(&t.affine(alpha, 0.0)?, t)?))
        }
        "ThresholdedRelu" => {
            let alpha = with(&["alpha"])?.float("alpha", 1.0)? as f64;
            float_box(move |t| Ok(t.gt(alpha)?.where_cond(t, &t.zeros_like()?)?))
        }
        "Elu" => {
            let alpha = with(&["alpha"])?.float("alpha", 1.0)? as f64;
            float_box(move |t| Ok(t.elu(alpha)?))
        }
        "Celu" => {
            let alpha = with(&["alpha"])?.float("alpha", 1.0)? as f64;
            if alpha == 0.0 {
                return Err(unsupported!("attribute `alpha` = 0 is not supported"));
            }
            float_box(move |t| {
                map_f64(t, move |x| {
                    if x.is_nan() {
                        x
                    } else {
                        x.max(0.0) + (alpha * ((x / alpha).exp() - 1.0)).min(0.0)
                    }
                })
            })
        }
        "Selu" => {
            let a = with(&["alpha", "gamma"])?;
            // Opset 1 had rounded defaults; opset 6 changed them.
            let (da, dg) = if ctx.opset < 6 {
                (1.673_200_011_253_357, 1.050_699_949_264_526_4)
            } else {
                (1.673_263_192_176_818_8, 1.050_701_022_148_132_3)
            };
            let alpha = a.opt_float("alpha")?.map_or(da, f64::from);
            let gamma = a.opt_float("gamma")?.map_or(dg, f64::from);
            float_box(move |t| Ok(t.elu(alpha)?.affine(gamma, 0.0)?))
        }
        "HardSigmoid" => {
            let a = with(&["alpha", "beta"])?;
            let alpha = a.float("alpha", 0.2)? as f64;
            let beta = a.float("beta", 0.5)? as f64;
            float_box(move |t| maximum(&minimum(&t.affine(alpha, beta)?, 1f64)?, 0f64))
        }
        "HardSwish" => float(with(&[])?, |t| {
            let hs = maximum(&minimum(&t.affine(1.0 / 6.0, 0.5)?, 1f64)?, 0f64)?;
            Ok(t.mul(&hs)?)
        }),
        "Shrink" => {
            let a = with(&["bias", "lambd"])?;
            let bias = a.float("bias", 0.0)? as f64;
            let lambd = a.float("lambd", 0.5)? as f64;
            float_box(move |t| {
                let zero = t.zeros_like()?;
                let hi = t.gt(lambd)?.where_cond(&t.affine(1.0, -bias)?, &zero)?;
                Ok(t.lt(-lambd)?.where_cond(&t.affine(1.0, bias)?, &hi)?)
            })
        }
        "Swish" => {
            let alpha = with(&["alpha"])?.float("alpha", 1.0)? as f64;
            float_box(move |t| Ok(t.mul(&sigmoid(&t.affine(alpha, 0.0)?)?)?))
        }
        "Gelu" => {
            let mode = with(&["approximate"])?.string("approximate")?;
            match mode.as_deref().unwrap_or("none") {
                "none" => float_box(|t| Ok(t.gelu_erf()?)),
                "tanh" => float_box(|t| Ok(t.gelu()?)),
                m => {
                    return Err(unsupported!(
                        "attribute `approximate` = \"{m}\" is not supported"
                    ))
                }
            }
        }
        other => return Err(unsupported!("op {other} is not in the unary family")),
    };
    op(move |inputs| Ok(vec![f(input(inputs, 0)?)?]))
}

type UnaryFn = Box<dyn Fn(&Value) -> OpResult<Value> + Send + Sync>;

/// A float-only function.
fn float(
    _attrs: crate::backend::candle::attrs::Attrs,
    f: fn(&CTensor) -> OpResult<CTensor>,
) -> UnaryFn {
    float_box(f)
}

fn float_box(f: impl Fn(&CTensor) -> OpResult<CTensor> + Send + Sync + 'static) -> UnaryFn {
    Box::new(move |x: &Value| {
        x.require_float("input")?;
        Ok(Value::new(f(&x.t)?, x.dtype))
    })
}

/// A function defined on floats and integers (not bool); narrow ints wrap like the
/// narrow type would.
fn numeric(x: &Value, _op: &str, f: impl Fn(&CTensor) -> OpResult<CTensor>) -> OpResult<Value> {
    if x.dtype == DType::Bool {
        return Err(unsupported!("input of dtype bool is not supported"));
    }
    Value::wrapped(f(&x.t)?, x.dtype)
}

fn neg(x: &Value) -> OpResult<Value> {
    match x.dtype {
        d if d.is_float() => Ok(Value::new(x.t.neg()?, d)),
        // candle's unary `neg` has no integer kernel; 0 - x is exact (and wraps).
        DType::I64 | DType::I32 | DType::I16 | DType::I8 => {
            Value::wrapped(x.t.zeros_like()?.sub(&x.t)?, x.dtype)
        }
        d => Err(unsupported!("input of dtype {d} is not supported")),
    }
}

/// `r` with the NaNs of `t` put back.
fn keep_nan(t: &CTensor, r: CTensor) -> OpResult<CTensor> {
    Ok(t.ne(t)?.where_cond(t, &r)?)
}

fn sigmoid(t: &CTensor) -> OpResult<CTensor> {
    let one32 = |v: f32| 1.0 / (1.0 + (-v).exp());
    let one64 = |v: f64| 1.0 / (1.0 + (-v).exp());
    if let Some(y) = cpu_fast::map(t, one32, one64)? {
        return Ok(y);
    }
    Ok((t.neg()?.exp()? + 1.0)?.recip()?)
}
