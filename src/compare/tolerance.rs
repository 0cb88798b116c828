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
    /// Chosen from measured evidence: ort-cpu, candle-cpu and tract-cpu on the bundled models
    /// in every float dtype and on the ONNX conformance cases, against goldens and against
    /// each other (docs/tolerances.md, written by scripts/tolerance-evidence.py). f32/f64: the
    /// worst natural difference uses under 10% of the allowance, and a single element off by
    /// 1e-2 relative is caught wherever `|e| > atol / (1e-2 - rtol)`. f16/bf16: backends that
    /// compute in the type round every op, so their errors are whole ulps of the activations;
    /// `atol` is one ulp at magnitude 4 (4 eps) and `rtol` 2 eps, each rounded up to two
    /// digits, and the worst difference measured uses about 60% of that. bf16 cannot resolve
    /// a 1e-2 fault (1.3 to 2.6 of its ulps) with any tolerance that passes its natural errors.
    ///
    /// | dtype        | atol   | rtol   | eps of the type |
    /// |--------------|--------|--------|-----------------|
    /// | f64          | 1e-9   | 1e-7   | 2.2e-16         |
    /// | f32          | 1e-5   | 1e-4   | 1.2e-7          |
    /// | f16          | 4e-3   | 2e-3   | 9.8e-4          |
    /// | bf16         | 3.2e-2 | 1.6e-2 | 7.8e-3          |
    /// | integer/bool | 0      | 0      | exact           |
    pub fn default_for(dtype: DType) -> Tolerance {
        let (atol, rtol) = match dtype {
            DType::F64 => (1e-9, 1e-7),
            DType::F32 => (1e-5, 1e-4),
            DType::F16 => (4e-3, 2e-3),
            DType::BF16 => (3.2e-2, 1.6e-2),
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
