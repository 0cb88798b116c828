//! Direct convolution kernels for the CPU (1-D or 2-D, f32/f64), where candle's ops
//! express a convolution slowly:
//! - depthwise (one input and one output channel per group): each output row
//!   accumulates the shifted input rows times their weight, a contiguous multiply-add at
//!   stride 1. candle has no depthwise kernel; built from its ops the same sum costs one
//!   strided pass over the output per kernel element (most of a MobileNet-style model's
//!   time);
//! - im2col for the other convolutions: the (N, C·K, L) column matrix written in one
//!   pass (stacking strided views copies it twice).
//!
//! Other devices use the device-generic paths in `conv`.

use super::cpu_fast::cpu_slice;
use super::window::Geometry;
use crate::backend::candle::error::{failed, OpResult};
use candle_core::{DType as CDType, Tensor as CTensor, WithDType};
use rayon::prelude::*;
use std::ops::{Add, Mul};

/// Whether these kernels handle this input: CPU, f32/f64, 1 or 2 spatial dims.
pub(crate) fn applies(x: &CTensor, spatial: usize) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), CDType::F32 | CDType::F64) && spatial <= 2
}

/// Depthwise conv of `x` (N, C, spatial...) with weights `w` (C, 1, kernel...), no bias;
/// returns (N, C, output...).
pub(crate) fn depthwise(x: &CTensor, w: &CTensor, g: &Geometry) -> OpResult<CTensor> {
    match x.dtype() {
        CDType::F32 => run::<f32>(x, w, g),
        CDType::F64 => run::<f64>(x, w, g),
        d => Err(failed!("depthwise kernel has no {d:?} version")),
    }
}

/// The 2-D view of a 1-D or 2-D geometry (a 1-D conv is a conv over rows of height 1).
struct Plane {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    /// Strides, dilations and begin pads: (rows, columns).
    s: (usize, usize),
    d: (usize, usize),
    p: (usize, usize),
}

impl Plane {
    fn of(g: &Geometry) -> Self {
        let two = |v: &[usize], one: usize| -> (usize, usize) {
            if v.len() == 2 {
                (v[0], v[1])
            } else {
                (one, v[0])
            }
        };
        let (h, w) = two(&g.input, 1);
        let (oh, ow) = two(&g.output, 1);
        let (kh, kw) = two(&g.kernel, 1);
        Plane {
            h,
            w,
            oh,
            ow,
            kh,
            kw,
            s: two(&g.strides, 1),
            d: two(&g.dilations, 1),
            p: two(&g.pads_begin, 0),
        }
    }

    /// The output columns `lo..hi` whose input column (`ox * stride + off`) kernel
    /// column `kx` reads inside the input, and `off`; `None` when there are none.
    fn columns(&self, kx: usize) -> Option<(usize, usize, isize)> {
        let sw = self.s.1;
        let off = (kx * self.d.1) as isize - self.p.1 as isize;
        let lo = if off < 0 {
            off.unsigned_abs().div_ceil(sw)
        } else {
            0
        };
        let last = self.w as isize - 1 - off;
        if last < 0 {
            return None;
        }
        let hi = (last as usize / sw + 1).min(self.ow);
        (lo < hi).then_some((lo, hi, off))
    }

    /// The input row of output row `oy` and kernel row `ky`, if inside the input.
    fn row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.s.0 + ky * self.d.0) as isize - self.p.0 as isize;
        (0..self.h as isize).contains(&iy).then_some(iy as usize)
    }

    /// One channel: `x` (h*w), `k` (kh*kw) into `out` (oh*ow, zeroed).
    fn run<T: Copy + Add<Output = T> + Mul<Output = T>>(&self, x: &[T], k: &[T], out: &mut [T]) {
        let sw = self.s.1;
        for oy in 0..self.oh {
            let orow = &mut out[oy * self.ow..][..self.ow];
            for ky in 0..self.kh {
                let Some(iy) = self.row(oy, ky) else {
                    continue;
                };
                let irow = &x[iy * self.w..][..self.w];
                for kx in 0..self.kw {
                    let wv = k[ky * self.kw + kx];
                    let Some((lo, hi, off)) = self.columns(kx) else {
                        continue;
                    };
                    if sw == 1 {
                        let base = (lo as isize + off) as usize;
                        for (o, &i) in orow[lo..hi].iter_mut().zip(&irow[base..base + hi - lo]) {
                            *o = *o + wv * i;
                        }
                    } else {
                        for (ox, o) in orow.iter_mut().enumerate().take(hi).skip(lo) {
                            *o = *o + wv * irow[(ox as isize * sw as isize + off) as usize];
                        }
                    }
                }
            }
        }
    }
}

/// The im2col matrix of `x` (N, C, spatial...): (N, C·K, L), row `c·K + k` holding what
/// kernel offset `k` reads of channel `c` at each output position (0 in the padding).
pub(crate) fn im2col(x: &CTensor, g: &Geometry) -> OpResult<CTensor> {
    match x.dtype() {
        CDType::F32 => im2col_as::<f32>(x, g),
        CDType::F64 => im2col_as::<f64>(x, g),
        d => Err(failed!("im2col kernel has no {d:?} version")),
    }
}

fn im2col_as<T: WithDType>(x: &CTensor, g: &Geometry) -> OpResult<CTensor> {
    let (n, c) = (x.dims()[0], x.dims()[1]);
    let pl = Plane::of(g);
    let x = x.contiguous()?;
    let (xg, xl) = x.storage_and_layout();
    let xs = cpu_slice::<T>(&xg, xl)?;
    let (isz, ksz, l) = (pl.h * pl.w, pl.kh * pl.kw, pl.oh * pl.ow);
    let mut out = vec![T::zero(); n * c * ksz * l];
    let channel = |(p, cols): (usize, &mut [T])| {
        let x = &xs[p * isz..][..isz];
        for ky in 0..pl.kh {
            for kx in 0..pl.kw {
                let row = &mut cols[(ky * pl.kw + kx) * l..][..l];
                let Some((lo, hi, off)) = pl.columns(kx) else {
                    continue;
                };
                for oy in 0..pl.oh {
                    let Some(iy) = pl.row(oy, ky) else {
                        continue;
                    };
                    let (irow, orow) = (&x[iy * pl.w..][..pl.w], &mut row[oy * pl.ow..][..pl.ow]);
                    if pl.s.1 == 1 {
                        let base = (lo as isize + off) as usize;
                        orow[lo..hi].copy_from_slice(&irow[base..base + hi - lo]);
                    } else {
                        for (ox, o) in orow.iter_mut().enumerate().take(hi).skip(lo) {
                            *o = irow[(ox as isize * pl.s.1 as isize + off) as usize];
                        }
                    }
                }
            }
        }
    };
    let chunk = (ksz * l).max(1);
    if rayon::current_num_threads() > 1 {
        out.par_chunks_mut(chunk).enumerate().for_each(channel);
    } else {
        out.chunks_mut(chunk).enumerate().for_each(channel);
    }
    Ok(CTensor::from_vec(out, (n, c * ksz, l), x.device())?)
}

fn run<T: WithDType + Add<Output = T> + Mul<Output = T>>(
    x: &CTensor,
    w: &CTensor,
    g: &Geometry,
) -> OpResult<CTensor> {
    let (n, c) = (x.dims()[0], x.dims()[1]);
    let plane = Plane::of(g);
    let x = x.contiguous()?;
    let w = w.contiguous()?;
    let (xg, xl) = x.storage_and_layout();
    let (wg, wl) = w.storage_and_layout();
    let xs = cpu_slice::<T>(&xg, xl)?;
    let ws = cpu_slice::<T>(&wg, wl)?;
    let (isz, osz, ksz) = (plane.h * plane.w, plane.oh * plane.ow, plane.kh * plane.kw);
    let mut out = vec![T::zero(); n * c * osz];
    let each = |(p, o): (usize, &mut [T])| {
        plane.run(&xs[p * isz..][..isz], &ws[(p % c) * ksz..][..ksz], o)
    };
    if rayon::current_num_threads() > 1 {
        out.par_chunks_mut(osz.max(1)).enumerate().for_each(each);
    } else {
        out.chunks_mut(osz.max(1)).enumerate().for_each(each);
    }
    let mut shape = vec![n, c];
    shape.extend(&g.output);
    Ok(CTensor::from_vec(out, shape, x.device())?)
}
