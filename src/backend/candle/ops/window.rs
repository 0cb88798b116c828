//! Sliding-window geometry shared by Conv, ConvTranspose and the pools, for any number of
//! spatial dims: output sizes from kernel, strides, dilations, explicit or automatic
//! padding and `ceil_mode`, and the strided views of the padded input that a convolution
//! or a pool combines (one per kernel offset).

use crate::backend::candle::attrs::Attrs;
use crate::backend::candle::error::{failed, unsupported, OpResult};
use candle_core::Tensor as CTensor;

/// `auto_pad` values.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum AutoPad {
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

/// The window attributes of a node, as written (validated against the input at run time).
#[derive(Clone, Debug)]
pub(crate) struct WindowAttrs {
    pub auto_pad: AutoPad,
    pub kernel_shape: Option<Vec<usize>>,
    pub strides: Option<Vec<i64>>,
    pub dilations: Option<Vec<i64>>,
    pub pads: Option<Vec<i64>>,
    pub ceil_mode: bool,
}

impl WindowAttrs {
    /// Reads `auto_pad`, `kernel_shape`, `strides`, `pads`, and `dilations` / `ceil_mode`
    /// when the op has them at this opset (the caller whitelists them).
    pub(crate) fn parse(a: &Attrs) -> OpResult<Self> {
        let auto_pad = match a.string("auto_pad")?.as_deref().unwrap_or("NOTSET") {
            "NOTSET" => AutoPad::NotSet,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            "VALID" => AutoPad::Valid,
            m => {
                return Err(unsupported!(
                    "attribute `auto_pad` = \"{m}\" is not supported"
                ))
            }
        };
        let kernel_shape = match a.ints("kernel_shape")? {
            Some(k) => Some(
                k.iter()
                    .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
                    .collect::<Option<Vec<usize>>>()
                    .ok_or_else(|| failed!("kernel_shape {k:?} has a non-positive value"))?,
            ),
            None => None,
        };
        let ceil_mode = match a.int("ceil_mode", 0)? {
            0 => false,
            1 => true,
            v => return Err(unsupported!("attribute `ceil_mode` = {v} is not supported")),
        };
        if ceil_mode && auto_pad != AutoPad::NotSet {
            return Err(unsupported!(
                "attribute `ceil_mode` = 1 with `auto_pad` is not supported"
            ));
        }
        let pads = a.ints("pads")?;
        if pads.is_some() && !matches!(auto_pad, AutoPad::NotSet) {
            return Err(failed!(
                "attributes `pads` and `auto_pad` cannot be used together"
            ));
        }
        Ok(WindowAttrs {
            auto_pad,
            kernel_shape,
            strides: a.ints("strides")?,
            dilations: a.ints("dilations")?,
            pads,
            ceil_mode,
        })
    }

    /// Strides, dilations and explicit pads (begin, end) for `n` spatial dims, checked.
    pub(crate) fn params(&self, n: usize) -> OpResult<Params> {
        let positive = |v: &Option<Vec<i64>>, what: &str| -> OpResult<Vec<usize>> {
            match v {
                None => Ok(vec![1; n]),
                Some(v) if v.len() == n && v.iter().all(|&x| x > 0) => {
                    Ok(v.iter().map(|&x| x as usize).collect())
                }
                Some(v) => Err(failed!("{what} {v:?} must have {n} positive values")),
            }
        };
        let (pads_begin, pads_end) = match &self.pads {
            None => (vec![0; n], vec![0; n]),
            Some(p) if p.len() == 2 * n && p.iter().all(|&x| x >= 0) => (
                p[..n].iter().map(|&x| x as usize).collect(),
                p[n..].iter().map(|&x| x as usize).collect(),
            ),
            Some(p) => {
                return Err(failed!(
                    "pads {p:?} must have {} non-negative values",
                    2 * n
                ))
            }
        };
        Ok(Params {
            strides: positive(&self.strides, "strides")?,
            dilations: positive(&self.dilations, "dilations")?,
            pads_begin,
            pads_end,
        })
    }

    /// Checks `kernel_shape` (when given) against the kernel dims taken from the weights.
    pub(crate) fn check_kernel(&self, kernel: &[usize]) -> OpResult<()> {
        match &self.kernel_shape {
            Some(ks) if ks.as_slice() != kernel => Err(failed!(
                "kernel_shape {ks:?} does not match the weights' {kernel:?}"
            )),
            _ => Ok(()),
        }
    }

    /// The geometry for spatial `input` dims and `kernel` dims.
    pub(crate) fn geometry(&self, input: &[usize], kernel: &[usize]) -> OpResult<Geometry> {
        let n = input.len();
        if kernel.len() != n {
            return Err(failed!(
                "kernel has {} dims, input has {n} spatial dims",
                kernel.len()
            ));
        }
        self.check_kernel(kernel)?;
        if kernel.contains(&0) {
            return Err(failed!("kernel {kernel:?} has an empty dim"));
        }
        let Params {
            strides,
            dilations,
            pads_begin: mut pb,
            pads_end: mut pe,
        } = self.params(n)?;
        let mut output = vec![0; n];
        let too_large = || failed!("window geometry {kernel:?} over {input:?} is too large");
        for i in 0..n {
            let ke = (kernel[i] - 1)
                .checked_mul(dilations[i])
                .and_then(|v| v.checked_add(1))
                .filter(|&v| v <= super::MAX_ELEMENTS)
                .ok_or_else(too_large)?;
            let s = strides[i];
            match self.auto_pad {
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let out = input[i].div_ceil(s);
                    let total = ((out.max(1) - 1) * s + ke).saturating_sub(input[i]);
                    let small = total / 2;
                    (pb[i], pe[i]) = if self.auto_pad == AutoPad::SameUpper {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    output[i] = out;
                }
                AutoPad::NotSet | AutoPad::Valid => {
                    let span = input[i]
                        .checked_add(pb[i])
                        .and_then(|v| v.checked_add(pe[i]))
                        .filter(|&v| v <= super::MAX_ELEMENTS)
                        .ok_or_else(too_large)?;
                    if span < ke {
                        return Err(failed!(
                            "window of {ke} does not fit spatial dim {i} of size {} with pads ({}, {})",
                            input[i],
                            pb[i],
                            pe[i]
                        ));
                    }
                    let mut out = if self.ceil_mode {
                        (span - ke).div_ceil(s) + 1
                    } else {
                        (span - ke) / s + 1
                    };
                    // A window that would start in the end padding is dropped (ONNX
                    // Runtime, PyTorch).
                    if self.ceil_mode && (out - 1) * s >= input[i] + pb[i] {
                        out -= 1;
                    }
                    output[i] = out;
                }
            }
        }
        Ok(Geometry {
            input: input.to_vec(),
            kernel: kernel.to_vec(),
            strides,
            dilations,
            pads_begin: pb,
            pads_end: pe,
            output,
        })
    }
}

/// Strides, dilations and explicit pads, one value per spatial dim.
#[derive(Clone, Debug)]
pub(crate) struct Params {
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
}

/// A resolved sliding window over the spatial dims.
#[derive(Clone, Debug)]
pub(crate) struct Geometry {
    pub input: Vec<usize>,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads_begin: Vec<usize>,
    pub pads_end: Vec<usize>,
    pub output: Vec<usize>,
}

/// Row-major multi-index of `flat` in `dims`.
pub(crate) fn unravel(mut flat: usize, dims: &[usize], out: &mut [usize]) {
    for i in (0..dims.len()).rev() {
        out[i] = flat % dims[i];
        flat /= dims[i];
    }
}

impl Geometry {
    /// Elements per window.
    pub(crate) fn kernel_size(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Output positions.
    pub(crate) fn output_size(&self) -> usize {
        self.output.iter().product()
    }

    /// The input as each kernel offset sees it: one strided view (N, C, O1, ..., Or) into
    /// the input padded with `pad` per offset, in row-major kernel order. The padded input is
    /// split into `stride` phases per dim ((A, s) pairs, a free reshape), so that every
    /// view, strides and dilations included, is a narrowing of it: no gather, one copy of
    /// the input for the padding.
    pub(crate) fn shifted_views(&self, x: &CTensor, pad: f64) -> OpResult<Vec<CTensor>> {
        let r = self.input.len();
        // A dim with one output position is read at the kernel offsets only: stride 1
        // there, so that a stride larger than the input pads nothing.
        let stride = |i: usize| {
            if self.output[i] == 1 {
                1
            } else {
                self.strides[i]
            }
        };
        // Rows of each phase that the last offset still reads.
        let rows = |i: usize| (self.kernel[i] - 1) * self.dilations[i] / stride(i) + self.output[i];
        let mut padded = x.dims()[..2].to_vec();
        padded.extend((0..r).map(|i| rows(i) * stride(i)));
        super::check_size(&padded)?;
        let mut t = x.clone();
        let mut split = x.dims()[..2].to_vec();
        for i in 0..r {
            let (s, a) = (stride(i), rows(i));
            let begin = self.pads_begin[i];
            let end = (a * s) as i64 - (self.input[i] + begin) as i64;
            t = pad_dim(&t, 2 + i, begin, end.max(0) as usize, pad)?;
            if end < 0 {
                t = t.narrow(2 + i, 0, a * s)?;
            }
            split.extend([a, s]);
        }
        let t = t.contiguous()?.reshape(split)?;
        let mut kk = vec![0; r];
        let mut views = Vec::with_capacity(self.kernel_size());
        for k in 0..self.kernel_size() {
            unravel(k, &self.kernel, &mut kk);
            let mut v = t.clone();
            // Last dims first, so that the dims of the earlier ones keep their index.
            for i in (0..r).rev() {
                let off = kk[i] * self.dilations[i];
                let (row, phase) = (off / stride(i), off % stride(i));
                let dim = 2 + 2 * i;
                v = v.narrow(dim + 1, phase, 1)?.squeeze(dim + 1)?.narrow(
                    dim,
                    row,
                    self.output[i],
                )?;
            }
            views.push(v);
        }
        Ok(views)
    }

    /// Whether the window reads the input unchanged (1x...x1 kernel, stride 1, no pads).
    pub(crate) fn is_pointwise(&self) -> bool {
        self.kernel.iter().all(|&k| k == 1)
            && self.strides.iter().all(|&s| s == 1)
            && self
                .pads_begin
                .iter()
                .chain(&self.pads_end)
                .all(|&p| p == 0)
    }

    /// Coordinate in the unpadded input of kernel offset `k` at output position `o` along
    /// spatial dim `i` (may be negative or beyond the input).
    fn coord(&self, i: usize, k: usize, o: usize) -> i64 {
        (o * self.strides[i] + k * self.dilations[i]) as i64 - self.pads_begin[i] as i64
    }

    /// Per output position, the number of window elements inside the input, or (with
    /// `include_pad`) inside the input plus its explicit pads; positions added by
    /// `ceil_mode` beyond the pads never count. A window is a box, so the count is the
    /// product of per-dim counts.
    pub(crate) fn counts(&self, include_pad: bool) -> Vec<f64> {
        let mut counts = vec![1f64];
        for i in 0..self.input.len() {
            let (lo, hi) = if include_pad {
                (
                    -(self.pads_begin[i] as i64),
                    (self.input[i] + self.pads_end[i]) as i64,
                )
            } else {
                (0, self.input[i] as i64)
            };
            let per: Vec<f64> = (0..self.output[i])
                .map(|o| {
                    (0..self.kernel[i])
                        .filter(|&k| (lo..hi).contains(&self.coord(i, k, o)))
                        .count() as f64
                })
                .collect();
            counts = counts
                .iter()
                .flat_map(|&c| per.iter().map(move |&p| c * p))
                .collect();
        }
        counts
    }
}

/// `t` extended along `dim` by `begin` and `end` elements of value `v`.
fn pad_dim(t: &CTensor, dim: usize, begin: usize, end: usize, v: f64) -> OpResult<CTensor> {
    if v == 0.0 || begin + end == 0 {
        return Ok(t.pad_with_zeros(dim, begin, end)?);
    }
    let block = |len: usize| -> OpResult<CTensor> {
        let mut shape = t.dims().to_vec();
        shape[dim] = len;
        Ok(CTensor::zeros(shape, t.dtype(), t.device())?.affine(1.0, v)?)
    };
    let mut parts = Vec::with_capacity(3);
    if begin > 0 {
        parts.push(block(begin)?);
    }
    parts.push(t.clone());
    if end > 0 {
        parts.push(block(end)?);
    }
    Ok(CTensor::cat(&parts, dim)?)
}
