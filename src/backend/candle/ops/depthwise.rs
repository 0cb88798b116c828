//! A direct depthwise convolution for the CPU (one input and one output channel per
//! group, 1-D or 2-D, f32/f64): each output row accumulates `kernel` shifted input rows
//! times their weight, a contiguous multiply-add when the stride is 1. candle has no
//! depthwise kernel; built from its ops the same sum costs one strided pass over the
//! output per kernel element, which made depthwise layers most of a MobileNet-style
//! model's time. Other devices use the device-generic path in `conv`.

use super::window::Geometry;
use crate::backend::candle::error::{failed, OpResult};
use candle_core::{DType as CDType, Layout, Storage, Tensor as CTensor, WithDType};
use rayon::prelude::*;
use std::ops::{Add, Mul};

/// Whether [`depthwise`] handles this input: CPU, f32/f64, 1 or 2 spatial dims.
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

    /// One channel: `x` (h*w), `k` (kh*kw) into `out` (oh*ow, zeroed).
    fn run<T: Copy + Add<Output = T> + Mul<Output = T>>(&self, x: &[T], k: &[T], out: &mut [T]) {
        let (sh, sw) = self.s;
        for oy in 0..self.oh {
            let orow = &mut out[oy * self.ow..][..self.ow];
            for ky in 0..self.kh {
                let iy = (oy * sh + ky * self.d.0) as isize - self.p.0 as isize;
                if iy < 0 || iy >= self.h as isize {
                    continue;
                }
                let irow = &x[iy as usize * self.w..][..self.w];
                for kx in 0..self.kw {
                    let wv = k[ky * self.kw + kx];
                    // Input column of output column ox: ox * sw + off.
                    let off = (kx * self.d.1) as isize - self.p.1 as isize;
                    let lo = if off < 0 {
                        (off.unsigned_abs()).div_ceil(sw)
                    } else {
                        0
                    };
                    let last = self.w as isize - 1 - off;
                    if last < 0 {
                        continue;
                    }
                    let hi = (last as usize / sw + 1).min(self.ow);
                    if lo >= hi {
                        continue;
                    }
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

/// The elements of a contiguous CPU tensor's storage.
fn cpu_slice<'a, T: WithDType>(storage: &'a Storage, layout: &Layout) -> OpResult<&'a [T]> {
    let Storage::Cpu(cpu) = storage else {
        return Err(failed!("depthwise kernel needs a CPU tensor"));
    };
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| failed!("depthwise kernel needs a contiguous tensor"))?;
    Ok(&cpu.as_slice::<T>()?[start..end])
}
