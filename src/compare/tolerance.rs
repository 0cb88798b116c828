//! Tolerances: the `atol`/`rtol` pair of the element test `|a - e| <= atol + rtol * |e|`
//! and the per-dtype defaults used when neither the suite nor the command line sets one.
//!
//! The defaults live in one table ([`Tolerance::default_for`]) so that they can be refined
//! in one place as measured cross-backend evidence comes in.

use crate::tensor::DType;

/// How far an actual element may stray from the expected one: absolute plus relative
/// to the reference. Exists as one value so callers pass, override and report the pair
/// together.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Tolerance {
    /// Absolute part; dominates near zero, where relative error is meaningless.
    pub atol: f64,
    /// Relative part, scaled by the magnitude of the *expected* element.
    pub rtol: f64,
}

impl Tolerance {
    /// No tolerance at all: only identical values pass.
    pub const EXACT: Tolerance = Tolerance {
        atol: 0.0,
        rtol: 0.0,
    };

    /// The default tolerance for outputs of `dtype`, so that a suite without explicit
    /// tolerances still gets a verdict that fits the precision of the type.
    ///
    /// Starting values, to be refined with measured evidence from the backends. `rtol`
    /// is set a few hundred ulps (f32/f64) or a few ulps (f16/bf16) above the type's
    /// epsilon, because different runtimes legitimately reorder reductions, fuse kernels
    /// and pick different GEMM blockings; `atol` covers results that cancel to near zero.
    ///
    /// | dtype        | atol  | rtol  | epsilon of the type |
    /// |--------------|-------|-------|---------------------|
    /// | f64          | 1e-9  | 1e-7  | 2.2e-16             |
    /// | f32          | 1e-5  | 1e-4  | 1.2e-7              |
    /// | f16          | 1e-3  | 5e-3  | 9.8e-4              |
    /// | bf16         | 1e-2  | 2e-2  | 7.8e-3              |
    /// | integer/bool | 0     | 0     | exact               |
    pub fn default_for(dtype: DType) -> Tolerance {
        let (atol, rtol) = match dtype {
            DType::F64 => (1e-9, 1e-7),
            DType::F32 => (1e-5, 1e-4),
            DType::F16 => (1e-3, 5e-3),
            DType::BF16 => (1e-2, 2e-2),
            DType::I8
            | DType::I16
            | DType::I32
            | DType::I64
            | DType::U8
            | DType::U16
            | DType::U32
            | DType::U64
            | DType::Bool => return Tolerance::EXACT,
        };
        Tolerance { atol, rtol }
    }

    /// The largest error element `expected` may have and still pass.
    #[inline(always)]
    pub(super) fn allowed(self, magnitude: f64) -> f64 {
        self.atol + self.rtol * magnitude
    }
}
