//! One-pass CPU kernels for element-wise work that candle runs as a chain of ops, each
//! allocating and sweeping the whole tensor: Relu keeping NaN (candle: `maximum` against
//! a broadcast scalar), Sigmoid (four ops), Softmax/LogSoftmax over the last axis (five).
//! On small models the per-op allocations were most of the run time. Each function
//! returns `None` unless the tensor is a contiguous f32/f64 CPU tensor; the caller then
//! uses its candle-op path, which every device runs.

use crate::backend::candle::error::{failed, OpResult};
use candle_core::{DType as CDType, Layout, Storage, Tensor as CTensor, WithDType};

/// The elements of a contiguous CPU tensor's storage.
pub(crate) fn cpu_slice<'a, T: WithDType>(
    storage: &'a Storage,
    layout: &Layout,
) -> OpResult<&'a [T]> {
    let Storage::Cpu(cpu) = storage else {
        return Err(failed!("expected a CPU tensor"));
    };
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| failed!("expected a contiguous tensor"))?;
    Ok(&cpu.as_slice::<T>()?[start..end])
}

/// Whether the fast paths apply to `t`.
fn eligible(t: &CTensor) -> bool {
    t.device().is_cpu() && t.is_contiguous() && matches!(t.dtype(), CDType::F32 | CDType::F64)
}

/// `f` applied to each element (given for f32 and for f64), in one pass.
pub(crate) fn map(
    t: &CTensor,
    f32f: impl Fn(f32) -> f32,
    f64f: impl Fn(f64) -> f64,
) -> OpResult<Option<CTensor>> {
    if !eligible(t) {
        return Ok(None);
    }
    fn run<T: WithDType>(t: &CTensor, f: impl Fn(T) -> T) -> OpResult<CTensor> {
        let (storage, layout) = t.storage_and_layout();
        let v: Vec<T> = cpu_slice::<T>(&storage, layout)?
            .iter()
            .map(|&x| f(x))
            .collect();
        Ok(CTensor::from_vec(v, t.dims(), t.device())?)
    }
    Ok(Some(match t.dtype() {
        CDType::F32 => run(t, f32f)?,
        _ => run(t, f64f)?,
    }))
}

/// Softmax (or log-softmax) of each row over the last axis: `exp(x - max) / sum`.
pub(crate) fn softmax_last(t: &CTensor, log: bool) -> OpResult<Option<CTensor>> {
    if !eligible(t) || t.rank() == 0 {
        return Ok(None);
    }
    macro_rules! rows {
        ($ty:ty) => {{
            let (storage, layout) = t.storage_and_layout();
            let x = cpu_slice::<$ty>(&storage, layout)?;
            let n = t.dims()[t.rank() - 1].max(1);
            let mut out = vec![0 as $ty; x.len()];
            for (row, o) in x.chunks(n).zip(out.chunks_mut(n)) {
                let max = row.iter().copied().fold(<$ty>::NEG_INFINITY, <$ty>::max);
                let mut sum = 0 as $ty;
                for (oi, &xi) in o.iter_mut().zip(row) {
                    *oi = (xi - max).exp();
                    sum += *oi;
                }
                if log {
                    let ls = sum.ln();
                    for (oi, &xi) in o.iter_mut().zip(row) {
                        *oi = (xi - max) - ls;
                    }
                } else {
                    for oi in o.iter_mut() {
                        *oi /= sum;
                    }
                }
            }
            CTensor::from_vec(out, t.dims(), t.device())?
        }};
    }
    Ok(Some(match t.dtype() {
        CDType::F32 => rows!(f32),
        _ => rows!(f64),
    }))
}
