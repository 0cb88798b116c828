//! ONNX Runtime's quantized pooling contrib ops (`com.microsoft`, int8/uint8, per-tensor
//! scales and zero points, `channels_last` for NHWC data), computed as its CPU kernels
//! do:
//!
//! * `QLinearGlobalAveragePool`: the exact integer sum of each channel's image minus
//!   `x_zero_point · size`, requantized by MLAS in f32 with the multiplier
//!   `x_scale / (y_scale · size)`: `saturate(round_half_even(f32(acc) · m) + y_zero_point)`.
//! * `QLinearAveragePool` (1 to 3 spatial dims; `kernel_shape`, `strides`, `pads`,
//!   `auto_pad`, `ceil_mode`, `count_include_pad`): a window covering the whole image
//!   without padding is the global pool above; otherwise each input is dequantized
//!   (`x_scale · (x − x_zero_point)`, f32), the window's in-bounds values summed in f32 in
//!   row-major order, divided by the element count (the kernel's size with
//!   `count_include_pad`, else the in-bounds count), and quantized as
//!   `saturate(round_half_even(v / y_scale + y_zero_point))`.

use super::qtensor::{bounds, from_ints, ints, Quant};
use super::window::{unravel, WindowAttrs};
use super::{input, op, opt_input, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;

/// Op types of this family (`com.microsoft`, version 1).
pub(crate) const OPS: &[(&str, i64)] =
    &[("QLinearGlobalAveragePool", 1), ("QLinearAveragePool", 1)];

/// Builds one of the pools.
pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    ctx.arity((4, 5), (1, 1))?;
    if ctx.op() == "QLinearGlobalAveragePool" {
        let last = channels_last(&ctx.attrs(&["channels_last"])?)?;
        return op(move |inputs| {
            let (x, qx, qy) = read(inputs)?;
            let nchw = to_nchw(x, last)?;
            let image = nchw.shape()[2..].iter().product::<usize>();
            let mut out = nchw.shape().to_vec();
            out[2..].iter_mut().for_each(|d| *d = 1);
            let y = global(&ints(&nchw, "X")?, image, qx, qy, bounds(x.dtype)?)?;
            Ok(vec![from_nchw(from_ints(x.dtype, &out, y, x)?, last)?])
        });
    }
    let a = ctx.attrs(&[
        "auto_pad",
        "ceil_mode",
        "channels_last",
        "count_include_pad",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    let last = channels_last(&a)?;
    let include_pad = match a.int("count_include_pad", 0)? {
        0 => false,
        1 => true,
        v => {
            return Err(unsupported!(
                "attribute `count_include_pad` = {v} is not supported"
            ))
        }
    };
    let w = WindowAttrs::parse(&a)?;
    let kernel = w
        .kernel_shape
        .clone()
        .ok_or_else(|| failed!("attribute `kernel_shape` is required"))?;
    if !(1..=3).contains(&kernel.len()) {
        return Err(unsupported!(
            "{} spatial dims are not supported (1 to 3 are, as in ONNX Runtime)",
            kernel.len()
        ));
    }
    op(move |inputs| {
        let (x, qx, qy) = read(inputs)?;
        let nchw = to_nchw(x, last)?;
        let dims = nchw.shape().to_vec();
        if dims.len() != kernel.len() + 2 {
            return Err(failed!(
                "input of shape {dims:?} does not match kernel_shape {kernel:?}"
            ));
        }
        let g = w.geometry(&dims[2..], &kernel)?;
        let lim = bounds(x.dtype)?;
        let xs = ints(&nchw, "X")?;
        let mut out = dims[..2].to_vec();
        out.extend_from_slice(&g.output);
        let unpadded = g.pads_begin.iter().chain(&g.pads_end).all(|&p| p == 0);
        let y = if unpadded && g.input == kernel {
            global(&xs, g.kernel_size(), qx, qy, lim)?
        } else {
            windows(&xs, &g, include_pad, qx, qy, lim)
        };
        Ok(vec![from_nchw(from_ints(x.dtype, &out, y, x)?, last)?])
    })
}

/// X and its quantization parameters, and Y's.
fn read<'v>(inputs: &[Option<&'v Value>]) -> OpResult<(&'v Value, Quant, Quant)> {
    let x = input(inputs, 0)?;
    let qx = Quant::read(input(inputs, 1)?, opt_input(inputs, 2), x.dtype, "X")?;
    let qy = Quant::read(input(inputs, 3)?, opt_input(inputs, 4), x.dtype, "Y")?;
    if x.rank() < 3 {
        return Err(failed!("input must have rank >= 3, got {:?}", x.shape()));
    }
    Ok((x, qx, qy))
}

fn channels_last(a: &crate::backend::candle::attrs::Attrs) -> OpResult<bool> {
    match a.int("channels_last", 0)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(unsupported!(
            "attribute `channels_last` = {v} is not supported"
        )),
    }
}

/// `x` in NCHW order (moved from NHWC when `last`).
fn to_nchw(x: &Value, last: bool) -> OpResult<Value> {
    if !last {
        return Ok(x.clone());
    }
    let r = x.rank();
    let mut perm = vec![0, r - 1];
    perm.extend(1..r - 1);
    Ok(Value::new(x.t.permute(perm)?.contiguous()?, x.dtype))
}

/// `y` back in NHWC order when `last`.
fn from_nchw(y: Value, last: bool) -> OpResult<Value> {
    if !last {
        return Ok(y);
    }
    let r = y.rank();
    let mut perm = vec![0];
    perm.extend(2..r);
    perm.push(1);
    Ok(Value::new(y.t.permute(perm)?.contiguous()?, y.dtype))
}

/// The global average of each run of `image` values (MLAS's integer accumulation and
/// requantization, with its range checks).
fn global(xs: &[i32], image: usize, qx: Quant, qy: Quant, lim: (i32, i32)) -> OpResult<Vec<i32>> {
    if image == 0 || image >= 1 << 24 {
        return Err(failed!(
            "image size {image} is out of range (1 to 2^24 - 1)"
        ));
    }
    let m = qx.scale / (qy.scale * image as f32);
    if !(2f32.powi(-32)..256.0).contains(&m) {
        return Err(failed!(
            "x_scale / (y_scale · size) = {m} is out of ONNX Runtime's range [2^-32, 256)"
        ));
    }
    Ok(xs
        .chunks(image)
        .map(|c| {
            let acc: i64 =
                c.iter().map(|&v| i64::from(v)).sum::<i64>() - i64::from(qx.zp) * image as i64;
            let v = (acc as f32 * m).clamp((lim.0 - qy.zp) as f32, (lim.1 - qy.zp) as f32);
            v.round_ties_even() as i32 + qy.zp
        })
        .collect())
}

/// The windowed average pool over NCHW integers (see the module doc).
fn windows(
    xs: &[i32],
    g: &super::window::Geometry,
    include_pad: bool,
    qx: Quant,
    qy: Quant,
    lim: (i32, i32),
) -> Vec<i32> {
    let image: usize = g.input.iter().product();
    let outs = g.output_size();
    let r = g.input.len();
    let xf: Vec<f32> = xs.iter().map(|&v| qx.dequantize(v)).collect();
    let mut y = Vec::with_capacity(xs.len() / image.max(1) * outs);
    let (mut o, mut p) = (vec![0; r], vec![0; r]);
    for plane in xf.chunks(image) {
        for flat in 0..outs {
            unravel(flat, &g.output, &mut o);
            // Per dim: the window [start, end) clipped to the input.
            let bounds: Vec<(usize, usize)> = (0..r)
                .map(|d| {
                    let start = (o[d] * g.strides[d]) as i64 - g.pads_begin[d] as i64;
                    let end = (start + g.kernel[d] as i64).min(g.input[d] as i64);
                    (start.max(0) as usize, end.max(0) as usize)
                })
                .collect();
            let sizes: Vec<usize> = bounds.iter().map(|&(s, e)| e.saturating_sub(s)).collect();
            let count: usize = sizes.iter().product();
            let mut sum = 0f32;
            for k in 0..count {
                unravel(k, &sizes, &mut p);
                let at = (0..r).fold(0, |acc, d| acc * g.input[d] + bounds[d].0 + p[d]);
                sum += plane[at];
            }
            let div = if include_pad { g.kernel_size() } else { count };
            let v = sum / div as f32;
            let q = (v / qy.scale + qy.zp as f32).round_ties_even() as i32;
            y.push(q.clamp(lim.0, lim.1));
        }
    }
    y
}
