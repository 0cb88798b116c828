//! Values flowing through the interpreter: a candle tensor plus the ONNX element type it
//! stands for. candle has no bool, i8, i16 (usable), u16 or u64 arithmetic, so the logical
//! dtype is kept next to the storage:
//!
//! | ONNX (logical) | candle storage | rule |
//! |---|---|---|
//! | f32, f64, f16, bf16, u8, u32, i64 | same | native |
//! | bool | u8 (0/1) | ops that produce bool write 0/1 only |
//! | i8, i16, i32, u16 | i64 | exact (widening); arithmetic wraps back to the narrow type |
//! | u64 | — | refused: not exactly representable in i64 |
//!
//! Outputs go back to parity's [`Tensor`] in the logical dtype.

use super::error::{failed, unsupported, OpResult};
use crate::tensor::{DType, Tensor};
use candle_core::{DType as CDType, Device, Tensor as CTensor};

/// A tensor in the interpreter: candle storage plus the ONNX dtype it represents; or an
/// ONNX sequence of tensors (inside a graph only: parity's inputs and outputs are
/// tensors).
#[derive(Clone, Debug)]
pub(crate) struct Value {
    /// The data, in [`storage_dtype`] of `dtype` (an empty placeholder for a sequence).
    pub t: CTensor,
    /// The ONNX element type (of the elements, for a sequence).
    pub dtype: DType,
    /// The elements when this is a sequence. Only the sequence ops, Identity, If and
    /// Loop's carried values accept one (the executor refuses it anywhere else), so no
    /// tensor op ever reads the placeholder.
    pub seq: Option<std::sync::Arc<Vec<Value>>>,
}

/// The candle dtype that stores a logical dtype, `None` when none is exact.
pub(crate) fn storage_dtype(d: DType) -> Option<CDType> {
    Some(match d {
        DType::F32 => CDType::F32,
        DType::F64 => CDType::F64,
        DType::F16 => CDType::F16,
        DType::BF16 => CDType::BF16,
        DType::U8 | DType::Bool => CDType::U8,
        DType::U32 => CDType::U32,
        DType::I64 | DType::I32 | DType::I16 | DType::I8 | DType::U16 => CDType::I64,
        DType::U64 => return None,
    })
}

/// The dtype of an ONNX `TensorProto.DataType` code, when this backend can hold it.
pub(crate) fn dtype_from_onnx(code: i32) -> OpResult<DType> {
    match DType::from_onnx_code(code) {
        Some(d) if storage_dtype(d).is_some() => Ok(d),
        _ => Err(unsupported!(
            "dtype {} is not supported",
            DType::onnx_code_name(code)
        )),
    }
}

impl Value {
    /// Wraps a candle tensor already stored as `dtype` requires.
    pub(crate) fn new(t: CTensor, dtype: DType) -> Self {
        Value {
            t,
            dtype,
            seq: None,
        }
    }

    /// A sequence of `items` (tensors of `dtype`) on `dev`.
    pub(crate) fn sequence(items: Vec<Value>, dtype: DType, dev: &Device) -> OpResult<Self> {
        let storage =
            storage_dtype(dtype).ok_or_else(|| unsupported!("dtype {dtype} is not supported"))?;
        Ok(Value {
            t: CTensor::zeros(0, storage, dev)?,
            dtype,
            seq: Some(std::sync::Arc::new(items)),
        })
    }

    /// The elements of a sequence; an error for a tensor.
    pub(crate) fn items(&self, what: &str) -> OpResult<&[Value]> {
        self.seq
            .as_deref()
            .map(Vec::as_slice)
            .ok_or_else(|| failed!("{what} must be a sequence, got a tensor"))
    }

    /// Wraps the result of integer arithmetic: narrow integer types stored as i64 are
    /// wrapped back into their range, as the same op on the narrow type would have done.
    pub(crate) fn wrapped(t: CTensor, dtype: DType) -> OpResult<Self> {
        let t = match dtype {
            // candle's CUDA kernels have no i64 <-> i32 cast: wrap on the host there.
            DType::I32 if t.device().is_cpu() => t.to_dtype(CDType::I32)?.to_dtype(CDType::I64)?,
            DType::I32 | DType::I16 | DType::I8 | DType::U16 => {
                let shape = t.dims().to_vec();
                let dev = t.device().clone();
                let v: Vec<i64> = t.flatten_all()?.to_vec1::<i64>()?;
                let v: Vec<i64> = match dtype {
                    DType::I32 => v.into_iter().map(|x| x as i32 as i64).collect(),
                    DType::I16 => v.into_iter().map(|x| x as i16 as i64).collect(),
                    DType::I8 => v.into_iter().map(|x| x as i8 as i64).collect(),
                    _ => v.into_iter().map(|x| x as u16 as i64).collect(),
                };
                CTensor::from_vec(v, shape, &dev)?
            }
            _ => t,
        };
        Ok(Value::new(t, dtype))
    }

    /// A 1-D i64 value (shapes, indices) on `dev`.
    pub(crate) fn from_i64s(v: Vec<i64>, dev: &Device) -> OpResult<Self> {
        let n = v.len();
        Ok(Value::new(CTensor::from_vec(v, n, dev)?, DType::I64))
    }

    /// A 0-D i64 value on `dev`.
    pub(crate) fn scalar_i64(v: i64, dev: &Device) -> OpResult<Self> {
        Ok(Value::new(CTensor::from_vec(vec![v], (), dev)?, DType::I64))
    }

    /// Converts one of parity's tensors (a graph input or an initializer), copying it to
    /// `dev`.
    pub(crate) fn from_tensor(t: &Tensor, dev: &Device) -> OpResult<Self> {
        fn vals<T: crate::tensor::Element>(t: &Tensor) -> OpResult<Vec<T>> {
            t.values::<T>()
                .map(|c| c.into_owned())
                .ok_or_else(|| failed!("tensor does not hold {}", T::DTYPE))
        }
        fn widen<T: crate::tensor::Element + Into<i64>>(t: &Tensor) -> OpResult<Vec<i64>> {
            Ok(vals::<T>(t)?.into_iter().map(Into::into).collect())
        }
        let shape = t.shape().to_vec();
        let c = match t.dtype() {
            DType::F32 => CTensor::from_vec(vals::<f32>(t)?, shape, dev)?,
            DType::F64 => CTensor::from_vec(vals::<f64>(t)?, shape, dev)?,
            DType::F16 => CTensor::from_vec(vals::<half::f16>(t)?, shape, dev)?,
            DType::BF16 => CTensor::from_vec(vals::<half::bf16>(t)?, shape, dev)?,
            DType::U8 => CTensor::from_vec(vals::<u8>(t)?, shape, dev)?,
            DType::U32 => CTensor::from_vec(vals::<u32>(t)?, shape, dev)?,
            DType::I64 => CTensor::from_vec(vals::<i64>(t)?, shape, dev)?,
            DType::I32 => CTensor::from_vec(widen::<i32>(t)?, shape, dev)?,
            DType::I16 => CTensor::from_vec(widen::<i16>(t)?, shape, dev)?,
            DType::I8 => CTensor::from_vec(widen::<i8>(t)?, shape, dev)?,
            DType::U16 => CTensor::from_vec(widen::<u16>(t)?, shape, dev)?,
            DType::Bool => {
                let b = t
                    .bools()
                    .ok_or_else(|| failed!("tensor does not hold bool"))?;
                CTensor::from_vec(b.iter().map(|&x| x as u8).collect::<Vec<u8>>(), shape, dev)?
            }
            DType::U64 => return Err(unsupported!("dtype u64 is not supported")),
        };
        Ok(Value::new(c, t.dtype()))
    }

    /// Converts back to parity's tensor in the logical dtype (copying it to the host).
    pub(crate) fn to_tensor(&self) -> OpResult<Tensor> {
        let shape = self.t.dims().to_vec();
        let flat = self.t.flatten_all()?;
        let bad = |e: crate::tensor::TensorError| failed!("{e}");
        Ok(match self.dtype {
            DType::F32 => Tensor::from_vec(shape, flat.to_vec1::<f32>()?).map_err(bad)?,
            DType::F64 => Tensor::from_vec(shape, flat.to_vec1::<f64>()?).map_err(bad)?,
            DType::F16 => Tensor::from_vec(shape, flat.to_vec1::<half::f16>()?).map_err(bad)?,
            DType::BF16 => Tensor::from_vec(shape, flat.to_vec1::<half::bf16>()?).map_err(bad)?,
            DType::U8 => Tensor::from_vec(shape, flat.to_vec1::<u8>()?).map_err(bad)?,
            DType::U32 => Tensor::from_vec(shape, flat.to_vec1::<u32>()?).map_err(bad)?,
            DType::I64 => Tensor::from_vec(shape, flat.to_vec1::<i64>()?).map_err(bad)?,
            DType::I32 => narrow::<i32>(shape, flat)?,
            DType::I16 => narrow::<i16>(shape, flat)?,
            DType::I8 => narrow::<i8>(shape, flat)?,
            DType::U16 => narrow::<u16>(shape, flat)?,
            DType::Bool => {
                let v = flat.to_vec1::<u8>()?;
                if v.iter().any(|&b| b > 1) {
                    return Err(failed!("bool tensor holds a value other than 0 and 1"));
                }
                let b: Vec<bool> = v.into_iter().map(|x| x == 1).collect();
                Tensor::from_bools(shape, &b).map_err(bad)?
            }
            DType::U64 => return Err(unsupported!("dtype u64 is not supported")),
        })
    }

    /// Dimensions.
    pub(crate) fn shape(&self) -> &[usize] {
        self.t.dims()
    }

    /// Rank.
    pub(crate) fn rank(&self) -> usize {
        self.t.rank()
    }

    /// Whether the logical dtype is a floating-point type.
    pub(crate) fn is_float(&self) -> bool {
        self.dtype.is_float()
    }

    /// The elements of an integer tensor (shape inputs, axes, indices), widened to i64.
    pub(crate) fn i64s(&self, what: &str) -> OpResult<Vec<i64>> {
        match self.dtype {
            DType::I64
            | DType::I32
            | DType::I16
            | DType::I8
            | DType::U16
            | DType::U8
            | DType::U32 => host_i64s(&self.t),
            d => Err(failed!("{what} must be an integer tensor, got {d}")),
        }
    }

    /// The elements widened to f64 (small tensors such as scalars and ranges).
    pub(crate) fn f64s(&self) -> OpResult<Vec<f64>> {
        Ok(self
            .t
            .flatten_all()?
            .to_dtype(CDType::F64)?
            .to_vec1::<f64>()?)
    }

    /// The single element of a one-element tensor, widened to f64.
    pub(crate) fn scalar_f64(&self, what: &str) -> OpResult<f64> {
        match self.f64s()?.as_slice() {
            [x] => Ok(*x),
            v => Err(failed!("{what} must have one element, got {}", v.len())),
        }
    }

    /// Refuses non-float dtypes for ops defined on floats only in this backend.
    pub(crate) fn require_float(&self, what: &str) -> OpResult<()> {
        if self.is_float() {
            Ok(())
        } else {
            Err(unsupported!(
                "{what} of dtype {} is not supported",
                self.dtype
            ))
        }
    }
}

fn narrow<T>(shape: Vec<usize>, flat: CTensor) -> OpResult<Tensor>
where
    T: crate::tensor::Element + TryFrom<i64>,
{
    let v = flat.to_vec1::<i64>()?;
    let v = v
        .into_iter()
        .map(|x| T::try_from(x).map_err(|_| failed!("value {x} does not fit in {}", T::DTYPE)))
        .collect::<OpResult<Vec<T>>>()?;
    Tensor::from_vec(shape, v).map_err(|e| failed!("{e}"))
}

/// The elements of an integer tensor (any integer storage: u8, u32, i64), widened
/// exactly to i64 on the host, for the integer ops candle has no kernel for.
pub(crate) fn host_i64s(t: &CTensor) -> OpResult<Vec<i64>> {
    Ok(t.contiguous()?
        .flatten_all()?
        .to_dtype(candle_core::DType::I64)?
        .to_vec1::<i64>()?)
}

/// A tensor of `shape` on `dev` filled with `v`, stored as the logical `dtype` requires.
pub(crate) fn full(v: f64, shape: &[usize], dtype: DType, dev: &Device) -> OpResult<CTensor> {
    let d = storage_dtype(dtype).ok_or_else(|| unsupported!("dtype {dtype} is not supported"))?;
    let one = match d {
        CDType::I64 => CTensor::from_vec(vec![v as i64], (), dev)?,
        CDType::U8 => CTensor::from_vec(vec![v as u8], (), dev)?,
        CDType::U32 => CTensor::from_vec(vec![v as u32], (), dev)?,
        _ => CTensor::from_vec(vec![v], (), dev)?.to_dtype(d)?,
    };
    Ok(one.broadcast_as(shape)?.contiguous()?)
}

/// A 1-D index tensor on `dev` for `index_select` / `index_add`.
pub(crate) fn index_tensor(idx: Vec<u32>, dev: &Device) -> OpResult<CTensor> {
    let n = idx.len();
    Ok(CTensor::from_vec(idx, n, dev)?)
}
