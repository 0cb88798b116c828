//! Resize (opsets 10-19) and Upsample (7-10), computed separably: for each resized axis,
//! every output position gets its source taps (indices, clamped like the reference's edge
//! padding) and weights, applied with `index_select` and a weighted sum. This matches the
//! ONNX reference implementation for `nearest` (all `nearest_mode`s), `linear` and
//! `cubic` (`cubic_coeff_a`, `exclude_outside`) with the coordinate transformations
//! half_pixel, half_pixel_symmetric, pytorch_half_pixel, align_corners, asymmetric and
//! (opset 11) tf_half_pixel_for_nn. Refused: tf_crop_and_resize, antialias, and the
//! keep_aspect_ratio_policy values other than stretch. Coordinates are computed in f64.

use super::{check_size, dims_usize, input, norm_axes, op, opt_input, widen_half, Built, Ctx};
use crate::backend::candle::error::{failed, unsupported, OpResult};
use crate::backend::candle::value::Value;
use candle_core::Tensor as CTensor;

/// Op types of this family with the first opset defining each.
pub(crate) const OPS: &[(&str, i64)] = &[("Resize", 10), ("Upsample", 7)];

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Nearest,
    Linear,
    Cubic,
}

#[derive(Clone, Copy, PartialEq)]
enum Coord {
    HalfPixel,
    HalfPixelSymmetric,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

#[derive(Clone, Copy, PartialEq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
}

#[derive(Clone)]
struct Spec {
    mode: Mode,
    coord: Coord,
    nearest: Nearest,
    cubic_a: f64,
    exclude_outside: bool,
    axes: Option<Vec<i64>>,
}

pub(crate) fn build(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    let upsample_like = ctx.op() == "Upsample" || v < 11;
    if upsample_like {
        return build_upsample(ctx);
    }
    ctx.arity((1, 4), (1, 1))?;
    let mut allowed = vec![
        "mode",
        "coordinate_transformation_mode",
        "nearest_mode",
        "cubic_coeff_a",
        "exclude_outside",
        "extrapolation_value", // only used by tf_crop_and_resize, which is refused
    ];
    if v >= 18 {
        allowed.extend(["antialias", "axes", "keep_aspect_ratio_policy"]);
    }
    let a = ctx.attrs(&allowed)?;
    let mode = match a.string("mode")?.as_deref().unwrap_or("nearest") {
        "nearest" => Mode::Nearest,
        "linear" => Mode::Linear,
        "cubic" => Mode::Cubic,
        m => return Err(unsupported!("attribute `mode` = \"{m}\" is not supported")),
    };
    let coord = match a
        .string("coordinate_transformation_mode")?
        .as_deref()
        .unwrap_or("half_pixel")
    {
        "half_pixel" => Coord::HalfPixel,
        "half_pixel_symmetric" if v >= 19 => Coord::HalfPixelSymmetric,
        "pytorch_half_pixel" => Coord::PytorchHalfPixel,
        "align_corners" => Coord::AlignCorners,
        "asymmetric" => Coord::Asymmetric,
        "tf_half_pixel_for_nn" if v < 13 => Coord::TfHalfPixelForNn,
        m => {
            return Err(unsupported!(
                "attribute `coordinate_transformation_mode` = \"{m}\" is not supported"
            ))
        }
    };
    let nearest = match a
        .string("nearest_mode")?
        .as_deref()
        .unwrap_or("round_prefer_floor")
    {
        "round_prefer_floor" => Nearest::RoundPreferFloor,
        "round_prefer_ceil" => Nearest::RoundPreferCeil,
        "floor" => Nearest::Floor,
        "ceil" => Nearest::Ceil,
        m => {
            return Err(unsupported!(
                "attribute `nearest_mode` = \"{m}\" is not supported"
            ))
        }
    };
    a.require_int("antialias", 0, 0)?;
    if let Some(p) = a.string("keep_aspect_ratio_policy")? {
        if p != "stretch" {
            return Err(unsupported!(
                "attribute `keep_aspect_ratio_policy` = \"{p}\" is not supported"
            ));
        }
    }
    let exclude_outside = match a.int("exclude_outside", 0)? {
        0 => false,
        1 => true,
        x => {
            return Err(unsupported!(
                "attribute `exclude_outside` = {x} is not supported"
            ))
        }
    };
    let spec = Spec {
        mode,
        coord,
        nearest,
        cubic_a: a.float("cubic_coeff_a", -0.75)? as f64,
        exclude_outside,
        axes: a.ints("axes")?,
    };
    op(move |inputs| {
        let x = input(inputs, 0)?;
        // roi (input 1) only matters for tf_crop_and_resize.
        let scales = opt_input(inputs, 2)
            .map(|s| s.f64s())
            .transpose()?
            .filter(|s| !s.is_empty());
        let sizes = opt_input(inputs, 3)
            .map(|s| s.i64s("sizes"))
            .transpose()?
            .filter(|s| !s.is_empty());
        Ok(vec![resize(x, &spec, scales, sizes)?])
    })
}

/// Upsample (opset 7-10) and Resize-10: `nearest` (floor of x/scale) or `linear`
/// (asymmetric coordinates).
fn build_upsample(ctx: &Ctx) -> OpResult<Built> {
    let v = ctx.opset;
    let attr_scales = if ctx.op() == "Upsample" && v < 9 {
        ctx.arity((1, 1), (1, 1))?;
        let a = ctx.attrs(&["mode", "scales"])?;
        Some((
            a.string("mode")?,
            a.floats("scales")?
                .ok_or_else(|| failed!("attribute `scales` is required"))?,
        ))
    } else {
        ctx.arity((2, 2), (1, 1))?;
        None
    };
    let mode = match &attr_scales {
        Some((m, _)) => m.clone(),
        None => ctx.attrs(&["mode"])?.string("mode")?,
    };
    let mode = match mode.as_deref().unwrap_or("nearest") {
        "nearest" => Mode::Nearest,
        "linear" | "bilinear" => Mode::Linear,
        m => return Err(unsupported!("attribute `mode` = \"{m}\" is not supported")),
    };
    let spec = Spec {
        mode,
        coord: Coord::Asymmetric,
        nearest: Nearest::Floor,
        cubic_a: -0.75,
        exclude_outside: false,
        axes: None,
    };
    let fixed: Option<Vec<f64>> = attr_scales.map(|(_, s)| s.into_iter().map(f64::from).collect());
    op(move |inputs| {
        let x = input(inputs, 0)?;
        let scales = match &fixed {
            Some(s) => s.clone(),
            None => input(inputs, 1)?.f64s()?,
        };
        if mode == Mode::Nearest && scales.iter().any(|&s| s < 1.0) {
            // Downsampling rounding is not specified for these versions.
            return Err(unsupported!(
                "nearest with a scale below 1 is not supported at this opset"
            ));
        }
        Ok(vec![resize(x, &spec, Some(scales), None)?])
    })
}

fn resize(
    x: &Value,
    spec: &Spec,
    scales: Option<Vec<f64>>,
    sizes: Option<Vec<i64>>,
) -> OpResult<Value> {
    let rank = x.rank();
    let axes = match &spec.axes {
        Some(a) => norm_axes(a, rank)?,
        None => (0..rank).collect(),
    };
    let in_dims = x.shape().to_vec();
    // Per resized axis: (axis, scale, output size).
    let mut plan = Vec::with_capacity(axes.len());
    match (scales, sizes) {
        (Some(s), None) => {
            if s.len() != axes.len() {
                return Err(failed!(
                    "scales has {} values for {} axes",
                    s.len(),
                    axes.len()
                ));
            }
            for (&axis, &scale) in axes.iter().zip(&s) {
                if !(scale > 0.0 && scale.is_finite()) {
                    return Err(failed!("scale {scale} must be positive"));
                }
                let out_f = in_dims[axis] as f64 * scale;
                let out_i = out_f.floor();
                // The spec uses the integer output length in these modes, the ONNX
                // reference the fractional one; where that changes the answer, refuse.
                let ambiguous = match spec.coord {
                    Coord::AlignCorners => out_i > 1.0 && out_f != out_i,
                    Coord::PytorchHalfPixel => out_i <= 1.0 && scale != 1.0,
                    _ => false,
                };
                if ambiguous {
                    return Err(unsupported!(
                        "a scale giving output length {out_f} is ambiguous with this coordinate_transformation_mode (the spec and the ONNX reference differ)"
                    ));
                }
                if out_f > super::MAX_ELEMENTS as f64 {
                    return Err(failed!("scale {scale} gives a too large output"));
                }
                plan.push((axis, scale, out_f.floor() as usize));
            }
        }
        (None, Some(s)) => {
            if s.len() != axes.len() {
                return Err(failed!(
                    "sizes has {} values for {} axes",
                    s.len(),
                    axes.len()
                ));
            }
            let s = dims_usize(&s, "sizes")?;
            for (&axis, &out) in axes.iter().zip(&s) {
                if in_dims[axis] == 0 {
                    return Err(failed!("cannot resize an empty axis"));
                }
                plan.push((axis, out as f64 / in_dims[axis] as f64, out));
            }
        }
        _ => return Err(failed!("exactly one of `scales` and `sizes` must be given")),
    }
    let mut out_shape = in_dims.clone();
    for &(axis, _, out) in &plan {
        out_shape[axis] = out;
    }
    check_size(&out_shape)?;
    if x.rank() == 0 {
        return Ok(x.clone());
    }
    if spec.mode != Mode::Nearest {
        x.require_float("input")?;
    }
    // Interpolation weights of half-precision data are applied in f32.
    if spec.mode != Mode::Nearest {
        // A zero-weight tap turns a neighbouring NaN/Inf into NaN, and implementations pick
        // different zero-weight taps, so non-finite inputs have no single right answer.
        let finite =
            x.t.abs()?
                .lt(f64::INFINITY)?
                .flatten_all()?
                .min(0)?
                .to_scalar::<u8>()?
                == 1;
        if x.t.elem_count() > 0 && !finite {
            return Err(unsupported!(
                "non-finite inputs are not supported with mode linear/cubic"
            ));
        }
    }
    let mut t = if spec.mode == Mode::Nearest {
        x.t.clone()
    } else {
        widen_half(&x.t)?
    };
    for (axis, scale, out) in plan {
        let input = in_dims[axis];
        if out == input && (scale - 1.0).abs() < f64::EPSILON {
            continue;
        }
        if input == 0 || out == 0 {
            let mut shape = t.dims().to_vec();
            shape[axis] = out;
            t = CTensor::zeros(shape, t.dtype(), t.device())?;
            continue;
        }
        let taps = taps(spec, input, out, scale)?;
        t = apply(&t.contiguous()?, axis, &taps, out)?;
    }
    Ok(Value::new(t.to_dtype(x.t.dtype())?, x.dtype))
}

/// Source-coordinate and nearest-index functions in one float precision. The spec's
/// `length_resized` is the integer output length; `output_width` (half_pixel_symmetric)
/// the fractional one. Both f32 and f64 versions exist so that rounding decisions can be
/// compared across precisions.
macro_rules! coords {
    ($coord:ident, $nearest:ident, $f:ty) => {
        fn $coord(coord: Coord, y: $f, scale: $f, input: usize, out: usize) -> $f {
            let (input_f, out_i) = (input as $f, out as $f);
            match coord {
                Coord::HalfPixel => (y + 0.5) / scale - 0.5,
                Coord::HalfPixelSymmetric => {
                    let adjustment = out_i / (scale * input_f);
                    let center = input_f / 2.0;
                    center * (1.0 - adjustment) + (y + 0.5) / scale - 0.5
                }
                Coord::PytorchHalfPixel if out > 1 => (y + 0.5) / scale - 0.5,
                Coord::AlignCorners if out > 1 => y * (input_f - 1.0) / (out_i - 1.0),
                Coord::PytorchHalfPixel | Coord::AlignCorners => 0.0,
                Coord::Asymmetric => y / scale,
                Coord::TfHalfPixelForNn => (y + 0.5) / scale,
            }
        }

        /// Index picked by nearest interpolation at source coordinate `x` (unclamped).
        fn $nearest(mode: Nearest, x: $f) -> i64 {
            let fl = x.floor();
            let ratio = x - fl;
            let right = match mode {
                _ if ratio == 0.0 => false,
                Nearest::RoundPreferFloor => ratio > 0.5,
                Nearest::RoundPreferCeil => ratio >= 0.5,
                Nearest::Floor => false,
                Nearest::Ceil => true,
            };
            fl as i64 + i64::from(right)
        }
    };
}

coords!(source_coord, nearest_index, f64);
coords!(source_coord32, nearest_index32, f32);

/// Per tap: source index and weight for each output position.
struct Tap {
    idx: Vec<i64>,
    w: Vec<f64>,
}

fn taps(spec: &Spec, input: usize, out: usize, scale: f64) -> OpResult<Vec<Tap>> {
    let n = match spec.mode {
        Mode::Nearest => 1,
        Mode::Linear => 2,
        Mode::Cubic => 4,
    };
    let mut taps: Vec<Tap> = (0..n)
        .map(|_| Tap {
            idx: Vec::with_capacity(out),
            w: Vec::with_capacity(out),
        })
        .collect();
    let last = input as i64 - 1;
    for y in 0..out {
        let x = source_coord(spec.coord, y as f64, scale, input, out);
        if spec.mode == Mode::Nearest {
            // A coordinate on a rounding boundary can round either way depending on the
            // precision it is computed in (the ONNX reference uses f64, ONNX Runtime f32);
            // such a resize has no single right answer, so it is refused.
            let x32 = source_coord32(spec.coord, y as f32, scale as f32, input, out);
            let i = nearest_index(spec.nearest, x).clamp(0, last);
            if i != nearest_index32(spec.nearest, x32).clamp(0, last) {
                return Err(unsupported!(
                    "nearest resize of {input} to {out} with scale {scale} puts output {y} on a rounding boundary (f32 and f64 coordinates round differently)"
                ));
            }
            taps[0].idx.push(i);
            taps[0].w.push(1.0);
            continue;
        }
        // Like the reference: the left neighbour is preferred, so the ratio is in (0, 1].
        let fl = x.floor();
        let (x0, ratio) = if x == fl {
            (fl as i64 - 1, 1.0)
        } else {
            (fl as i64, x - fl)
        };
        match spec.mode {
            // Handled above.
            Mode::Nearest => {}
            Mode::Linear => {
                for (t, (i, w)) in taps.iter_mut().zip([(x0, 1.0 - ratio), (x0 + 1, ratio)]) {
                    t.idx.push(i.clamp(0, last));
                    t.w.push(w);
                }
            }
            Mode::Cubic => {
                let a = spec.cubic_a;
                let r = ratio;
                let mut c = [
                    ((a * (r + 1.0) - 5.0 * a) * (r + 1.0) + 8.0 * a) * (r + 1.0) - 4.0 * a,
                    ((a + 2.0) * r - (a + 3.0)) * r * r + 1.0,
                    ((a + 2.0) * (1.0 - r) - (a + 3.0)) * (1.0 - r) * (1.0 - r) + 1.0,
                    ((a * (2.0 - r) - 5.0 * a) * (2.0 - r) + 8.0 * a) * (2.0 - r) - 4.0 * a,
                ];
                let idx = [x0 - 1, x0, x0 + 1, x0 + 2];
                if spec.exclude_outside {
                    for (ci, &i) in c.iter_mut().zip(&idx) {
                        if i < 0 || i > last {
                            *ci = 0.0;
                        }
                    }
                    let sum: f64 = c.iter().sum();
                    if sum != 0.0 {
                        c.iter_mut().for_each(|ci| *ci /= sum);
                    }
                }
                for (t, (&i, &w)) in taps.iter_mut().zip(idx.iter().zip(&c)) {
                    t.idx.push(i.clamp(0, last));
                    t.w.push(w);
                }
            }
        }
    }
    Ok(taps)
}

fn apply(t: &CTensor, axis: usize, taps: &[Tap], out: usize) -> OpResult<CTensor> {
    let mut wshape = vec![1usize; t.rank()];
    wshape[axis] = out;
    let mut acc: Option<CTensor> = None;
    for tap in taps {
        let picked = t.index_select(&CTensor::from_vec(tap.idx.clone(), out, t.device())?, axis)?;
        let term = if taps.len() == 1 {
            picked
        } else {
            let w = CTensor::from_vec(tap.w.clone(), wshape.as_slice(), t.device())?
                .to_dtype(t.dtype())?;
            picked.broadcast_mul(&w)?
        };
        acc = Some(match acc {
            None => term,
            Some(a) => a.add(&term)?,
        });
    }
    acc.ok_or_else(|| failed!("no interpolation taps"))
}
