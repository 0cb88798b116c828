//! Matrix products: MatMul (numpy semantics: 1-D operands promoted, batch dims broadcast)
//! and Gemm (alpha, beta, transA, transB; C broadcast to (M, N), or required to be exactly
//! (M, N) when an opset < 7 model sets `broadcast` = 0).

use super::{broadcast_shape, contiguous, input, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[("MatMul", 1), ("Gemm", 1)];

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    if ctx.op() == "MatMul" {
        ctx.arity((2, 2), (1, 1))?;
        ctx.attrs(&[])?;
        return op(|inputs| {
            let (a, b) = (input(inputs, 0)?, input(inputs, 1)?);
            Ok(vec![Value::new(matmul(a, b)?, a.dtype)])
        });
    }
    build_gemm(ctx)
}

fn check_float(a: &Value, b: &Value) -> OpResult<()> {
    a.require_float("input A")?;
    if a.dtype != b.dtype {
        return Err(failed!(
            "inputs have different dtypes {} and {}",
            a.dtype,
            b.dtype
        ));
    }
    Ok(())
}

/// Numpy `matmul`.
pub(crate) fn matmul(a: &Value, b: &Value) -> OpResult<CTensor> {
    check_float(a, b)?;
    if a.rank() == 0 || b.rank() == 0 {
        return Err(failed!("MatMul operands must have rank >= 1"));
    }
    let (mut x, mut y) = (a.t.clone(), b.t.clone());
    let (a1, b1) = (a.rank() == 1, b.rank() == 1);
    if a1 {
        x = x.unsqueeze(0)?;
    }
    if b1 {
        y = y.unsqueeze(1)?;
    }
    let (xr, yr) = (x.rank(), y.rank());
    let (m, k) = (x.dims()[xr - 2], x.dims()[xr - 1]);
    let (k2, n) = (y.dims()[yr - 2], y.dims()[yr - 1]);
    if k != k2 {
        return Err(failed!(
            "inner dimensions differ: {:?} x {:?}",
            a.shape(),
            b.shape()
        ));
    }
    let out = if yr == 2 {
        // Common case (activations x weights): fold the batch dims of A into its rows.
        let batch = x.dims()[..xr - 2].to_vec();
        let rows: usize = batch.iter().product::<usize>() * m;
        let r = contiguous(x)?.reshape((rows, k))?.matmul(&contiguous(y)?)?;
        let mut shape = batch;
        shape.extend([m, n]);
        r.reshape(shape)?
    } else {
        let batch = broadcast_shape(&x.dims()[..xr - 2], &y.dims()[..yr - 2])?;
        let nb: usize = batch.iter().product();
        let mut sx = batch.clone();
        sx.extend([m, k]);
        let mut sy = batch.clone();
        sy.extend([k, n]);
        let xb = x.broadcast_as(sx)?.contiguous()?.reshape((nb, m, k))?;
        let yb = y.broadcast_as(sy)?.contiguous()?.reshape((nb, k, n))?;
        let mut shape = batch;
        shape.extend([m, n]);
        xb.matmul(&yb)?.reshape(shape)?
    };
    // Remove the promoted dims again.
    let r = out.rank();
    let out = if b1 { out.squeeze(r - 1)? } else { out };
    let r = out.rank();
    Ok(if a1 {
        out.squeeze(r - if b1 { 1 } else { 2 })?
    } else {
        out
    })
}

fn build_gemm(ctx: &Ctx) -> OpResult<Built> {
    let legacy = ctx.opset < 7;
    ctx.arity((if ctx.opset < 11 { 3 } else { 2 }, 3), (1, 1))?;
    let allowed: &[&str] = if legacy {
        &["alpha", "beta", "transA", "transB", "broadcast"]
    } else {
        &["alpha", "beta", "transA", "transB"]
    };
    let a = ctx.attrs(allowed)?;
    let alpha = a.float("alpha", 1.0)? as f64;
    let beta = a.float("beta", 1.0)? as f64;
    let flag = |name: &str| -> OpResult<bool> {
        match a.int(name, 0)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(unsupported!("attribute `{name}` = {v} is not supported")),
        }
    };
    let (ta, tb) = (flag("transA")?, flag("transB")?);
    // Opset < 7 without `broadcast`: C must already be (M, N).
    let exact_c = legacy && !flag("broadcast")?;
    op(move |inputs| {
        let (av, bv) = (input(inputs, 0)?, input(inputs, 1)?);
        check_float(av, bv)?;
        if av.rank() != 2 || bv.rank() != 2 {
            return Err(failed!(
                "A and B must be 2-D, got {:?} and {:?}",
                av.shape(),
                bv.shape()
            ));
        }
        let x = if ta { av.t.t()? } else { av.t.clone() };
        let y = if tb { bv.t.t()? } else { bv.t.clone() };
        let (m, k) = x.dims2()?;
        let (k2, n) = y.dims2()?;
        if k != k2 {
            return Err(failed!("inner dimensions differ: {m}x{k} and {k2}x{n}"));
        }
        // A transposed 2-D view is a layout candle's matmul reads directly (gemm strides
        // on the CPU, a transpose flag in cuBLAS): copying it would cost more than the
        // product for typical `transB` = 1 weights.
        let mut out = x.matmul(&y)?;
        if alpha != 1.0 {
            out = out.affine(alpha, 0.0)?;
        }
        // Like ONNX Runtime, beta = 0 ignores C entirely (NaN in C does not propagate).
        if let (Some(c), true) = (opt_input(inputs, 2), beta != 0.0) {
            if c.dtype != av.dtype {
                return Err(failed!("C has dtype {}, A has {}", c.dtype, av.dtype));
            }
            if exact_c && c.shape() != [m, n] {
                return Err(failed!(
                    "C has shape {:?}, expected [{m}, {n}] (attribute `broadcast` is 0)",
                    c.shape()
                ));
            }
            let cb = c.t.broadcast_as((m, n)).map_err(|_| {
                failed!(
                    "C of shape {:?} cannot be broadcast to [{m}, {n}]",
                    c.shape()
                )
            })?;
            let cb = if beta != 1.0 {
                cb.affine(beta, 0.0)?
            } else {
                cb
            };
            out = out.add(&cb)?;
        }
        Ok(vec![Value::new(out, av.dtype)])
    })
}
