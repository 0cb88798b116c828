//! `Tensor`: a dtype, a shape and contiguous little-endian bytes. No backend types here:
//! backends convert to and from this, formats read and write it, `compare` reads it.
//! Storage is either owned or a read-only memory map, so a large `.npy` file is compared
//! where it lies, without a copy.

mod dtype;
pub mod random;

pub use dtype::{DType, Element};

use std::borrow::Cow;
use std::sync::Arc;

/// Where a tensor's bytes live. Mapped storage keeps the mapping alive through an `Arc`.
#[derive(Clone)]
enum Storage {
    Owned(Vec<u8>),
    Mapped {
        map: Arc<memmap2::Mmap>,
        offset: usize,
        len: usize,
    },
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Owned(v) => v,
            Storage::Mapped { map, offset, len } => &map[*offset..*offset + *len],
        }
    }
}

/// A dense tensor in row-major order, the one currency between formats, backends and compare.
#[derive(Clone)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<usize>,
    storage: Storage,
}

/// Why bytes could not become a tensor; callers add the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TensorError {
    #[error("shape {shape:?} of {dtype} needs {expected} bytes, found {found}")]
    ByteLength {
        dtype: DType,
        shape: Vec<usize>,
        expected: usize,
        found: usize,
    },
    #[error("shape {0:?} has more elements than can be addressed")]
    Overflow(Vec<usize>),
    #[error("bool element {index} has byte value {value} (only 0 and 1 are valid)")]
    InvalidBool { index: usize, value: u8 },
}

/// Number of elements of `shape`, or `None` when the product overflows `usize`.
/// A zero dim does not excuse the others: their product must fit too, whatever their
/// order, so that code multiplying dims (strides, suffix products) never overflows.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
    Some(if shape.contains(&0) { 0 } else { nonzero })
}

/// Number of bytes a tensor of this dtype and shape occupies, or `None` on overflow.
/// Readers call this before allocating so that absurd declared dims are refused early.
pub fn checked_nbytes(dtype: DType, shape: &[usize]) -> Option<usize> {
    checked_numel(shape)?.checked_mul(dtype.size())
}

impl Tensor {
    /// Builds a tensor from owned little-endian bytes, checking length and bool values.
    pub fn from_bytes(
        dtype: DType,
        shape: Vec<usize>,
        bytes: Vec<u8>,
    ) -> Result<Self, TensorError> {
        Self::validate(dtype, &shape, &bytes)?;
        Ok(Tensor {
            dtype,
            shape,
            storage: Storage::Owned(bytes),
        })
    }

    /// Builds a tensor over `len` bytes of a memory map starting at `offset`.
    pub fn from_mapped(
        dtype: DType,
        shape: Vec<usize>,
        map: Arc<memmap2::Mmap>,
        offset: usize,
    ) -> Result<Self, TensorError> {
        let len =
            checked_nbytes(dtype, &shape).ok_or_else(|| TensorError::Overflow(shape.clone()))?;
        let available = map.len().saturating_sub(offset);
        if available != len {
            return Err(TensorError::ByteLength {
                dtype,
                shape,
                expected: len,
                found: available,
            });
        }
        Self::validate(dtype, &shape, &map[offset..offset + len])?;
        Ok(Tensor {
            dtype,
            shape,
            storage: Storage::Mapped { map, offset, len },
        })
    }

    /// Builds a tensor from typed values (native endianness is little-endian on every
    /// platform parity supports).
    pub fn from_vec<T: Element>(shape: Vec<usize>, values: Vec<T>) -> Result<Self, TensorError> {
        let bytes = bytemuck::cast_slice::<T, u8>(&values).to_vec();
        Self::from_bytes(T::DTYPE, shape, bytes)
    }

    /// Builds a float tensor of `dtype` from f64 values, each rounded to nearest;
    /// `None` when `dtype` is not a float type. Input generators and the f64 oracle
    /// compute in f64 and store in the model's dtype.
    pub fn from_f64_values(
        dtype: DType,
        shape: Vec<usize>,
        values: impl IntoIterator<Item = f64>,
    ) -> Option<Result<Self, TensorError>> {
        let values = values.into_iter();
        Some(match dtype {
            DType::F64 => Self::from_vec(shape, values.collect()),
            DType::F32 => Self::from_vec(shape, values.map(|v| v as f32).collect()),
            DType::F16 => Self::from_vec(shape, values.map(half::f16::from_f64).collect()),
            DType::BF16 => Self::from_vec(shape, values.map(half::bf16::from_f64).collect()),
            _ => return None,
        })
    }

    /// Builds a bool tensor.
    pub fn from_bools(shape: Vec<usize>, values: &[bool]) -> Result<Self, TensorError> {
        let bytes = values.iter().map(|&b| b as u8).collect();
        Self::from_bytes(DType::Bool, shape, bytes)
    }

    fn validate(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<(), TensorError> {
        let expected =
            checked_nbytes(dtype, shape).ok_or_else(|| TensorError::Overflow(shape.to_vec()))?;
        if bytes.len() != expected {
            return Err(TensorError::ByteLength {
                dtype,
                shape: shape.to_vec(),
                expected,
                found: bytes.len(),
            });
        }
        if dtype == DType::Bool {
            if let Some(index) = bytes.iter().position(|&b| b > 1) {
                return Err(TensorError::InvalidBool {
                    index,
                    value: bytes[index],
                });
            }
        }
        Ok(())
    }

    /// Element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Dimensions, outermost first. A scalar has an empty shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        // Validated at construction, so the product cannot overflow.
        self.shape.iter().product()
    }

    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// Typed view of the elements; borrowed when the bytes are aligned for `T`, copied
    /// otherwise. `None` when `T` is not this tensor's dtype.
    pub fn values<T: Element>(&self) -> Option<Cow<'_, [T]>> {
        if T::DTYPE != self.dtype {
            return None;
        }
        let bytes = self.bytes();
        Some(match bytemuck::try_cast_slice::<u8, T>(bytes) {
            Ok(slice) => Cow::Borrowed(slice),
            Err(_) => Cow::Owned(bytemuck::pod_collect_to_vec::<u8, T>(bytes)),
        })
    }

    /// The elements of a bool tensor. Bytes were checked to be 0 or 1 at construction.
    pub fn bools(&self) -> Option<&[bool]> {
        if self.dtype != DType::Bool {
            return None;
        }
        let bytes = self.bytes();
        // SAFETY: `validate` guaranteed every byte is 0 or 1, the two valid bool
        // representations; bool has size and alignment 1.
        Some(unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<bool>(), bytes.len()) })
    }

    /// Element `i` (flat, row-major) widened to f64, for reports and small-tensor logic.
    /// Integers beyond 2^53 lose precision, which reports accept.
    pub fn get_f64(&self, i: usize) -> f64 {
        let size = self.dtype.size();
        let b = &self.bytes()[i * size..(i + 1) * size];
        self.dtype.decode_f64(b)
    }

    /// The tensor widened to f64, same shape (exact for every float type and for
    /// integers up to 2^53): what f64 references such as the calibration oracle take.
    pub fn to_f64(&self) -> Result<Self, TensorError> {
        let values = (0..self.numel()).map(|i| self.get_f64(i)).collect();
        Self::from_vec(self.shape.clone(), values)
    }

    /// Same tensor with another shape of the same element count (e.g. a batch dim added).
    pub fn reshaped(&self, shape: Vec<usize>) -> Result<Self, TensorError> {
        if checked_numel(&shape) != Some(self.numel()) {
            return Err(TensorError::ByteLength {
                dtype: self.dtype,
                expected: checked_nbytes(self.dtype, &shape).unwrap_or(usize::MAX),
                shape,
                found: self.bytes().len(),
            });
        }
        Ok(Tensor {
            dtype: self.dtype,
            shape,
            storage: self.storage.clone(),
        })
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor<{}>{:?}", self.dtype, self.shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_length_is_checked() {
        let err = Tensor::from_bytes(DType::F32, vec![2, 3], vec![0; 20]).unwrap_err();
        assert_eq!(
            err,
            TensorError::ByteLength {
                dtype: DType::F32,
                shape: vec![2, 3],
                expected: 24,
                found: 20
            }
        );
    }

    #[test]
    fn overflowing_shape_is_refused_before_allocation() {
        let err = Tensor::from_bytes(DType::F64, vec![usize::MAX, 4], vec![]).unwrap_err();
        assert!(matches!(err, TensorError::Overflow(_)));
    }

    #[test]
    fn bools_must_be_zero_or_one() {
        let err = Tensor::from_bytes(DType::Bool, vec![3], vec![0, 1, 2]).unwrap_err();
        assert_eq!(err, TensorError::InvalidBool { index: 2, value: 2 });
        let t = Tensor::from_bools(vec![2], &[true, false]).unwrap();
        assert_eq!(t.bools().unwrap(), &[true, false]);
    }

    #[test]
    fn typed_values_and_f64_widening() {
        let t = Tensor::from_vec(
            vec![2],
            vec![half::bf16::from_f32(1.5), half::bf16::from_f32(-2.0)],
        )
        .unwrap();
        assert_eq!(t.dtype(), DType::BF16);
        assert_eq!(t.get_f64(0), 1.5);
        assert_eq!(t.get_f64(1), -2.0);
        assert!(t.values::<f32>().is_none());
        let u = Tensor::from_vec(vec![1, 2], vec![u64::MAX, 7u64]).unwrap();
        assert_eq!(u.values::<u64>().unwrap().as_ref(), &[u64::MAX, 7]);
    }

    #[test]
    fn scalar_has_one_element() {
        let t = Tensor::from_vec(vec![], vec![3i32]).unwrap();
        assert_eq!(t.numel(), 1);
        assert_eq!(t.get_f64(0), 3.0);
    }
}
