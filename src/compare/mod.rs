//! Comparison of an actual output tensor against its expected (reference) tensor.
//!
//! Contract (docs/design.md, "Comparison semantics"):
//! - Shape and dtype must match exactly; otherwise the output fails with a one-line
//!   `problem` and no element is compared (`mismatched == total == expected numel`,
//!   error maxima +inf).
//! - Floats: an element passes when `|a - e| <= atol + rtol * |e|` (numpy `isclose`, the
//!   reference on the right), computed in f64 after widening. NaN matches only NaN;
//!   ±Inf matches only the same Inf.
//! - Integers and bools: the exact error `|a - e|` against the same test; the default
//!   tolerance is zero, i.e. exact equality.
//! - A non-finite mismatch (NaN/Inf in actual where the reference is finite, or the
//!   reference's NaN/Inf not reproduced) sets `max_abs_err` and `max_rel_err` to +inf,
//!   is named in `problem`, and is the reported worst element (the first such one).
//!   Matching NaN/Inf pairs are excluded from every statistic.
//! - Otherwise the worst element is the one with the largest excess
//!   `|a - e| / (atol + rtol * |e|)` (ties: larger `|a - e|`, then lowest index; zero
//!   allowance makes the excess +inf). When nothing differs it is the first element, so
//!   every non-empty comparison reports one.
//! - `max_rel_err` skips elements whose reference is zero (their relative error is
//!   undefined); they still count through `atol`.
//! - Statistics accumulate in f64 over chunks merged in index order: results are
//!   deterministic whatever the number of threads.
//!
//! JSON note: serde_json writes non-finite f64 as `null`, so an infinite `max_abs_err`
//! or a NaN `actual` appear as `null` in `parity.report/v1`.
//!
//! [`error_histogram`] is a separate, slower pass for reports: how much of its
//! tolerance each element used, in decade bins.
//!
//! Large float tensors may be scanned on an NVIDIA GPU instead ([`gpu`]: automatic from
//! [`gpu::AUTO_THRESHOLD`] elements when a GPU is usable, or as `PARITY_COMPARE_DEVICE`
//! says), with the same verdict, mismatch count and worst element as the CPU.
//!
//! [`compare`] is plain allclose, the fast path. [`compare_with`] applies a suite's
//! comparison mode (`allclose`, `ulp`, `cosine`, `topk`) and outlier fraction on top of
//! it ([`mode`] has the rules).

mod cosine;
mod exact;
mod float;
pub mod gpu;
mod histogram;
mod lanes;
pub mod metrics;
pub mod mode;
mod parallel;
mod slices;
mod stats;
mod tolerance;
mod topk;
mod ulp;
mod value;

#[cfg(test)]
mod tests;

pub use histogram::{error_histogram, ErrorHistogram};
pub use mode::{allowed_outliers, compare_with, Mode, Policy};
pub use tolerance::Tolerance;

use crate::tensor::{DType, Element, Tensor};
use half::{bf16, f16};
use stats::Summary;

/// Whether an output is within tolerance; what CI gates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every element within tolerance, shape and dtype as expected.
    Pass,
    /// At least one element out of tolerance, or a shape, dtype or NaN/Inf problem.
    Fail,
}

/// The result of comparing one output: the verdict plus the evidence a person needs to
/// judge it (error maxima, where the worst element is, what it should have been).
/// Serialises to the `outputs[]` entries of `parity.report/v1` (the caller adds `name`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OutputComparison {
    /// Pass only when nothing is out of tolerance and there is no `problem`.
    pub verdict: Verdict,
    /// The expected tensor's dtype, serialised by name (`"f32"`).
    #[serde(
        serialize_with = "serialize_dtype",
        deserialize_with = "deserialize_dtype"
    )]
    pub dtype: DType,
    /// The expected tensor's shape.
    pub shape: Vec<usize>,
    /// The actual tensor's dtype, which differs from `dtype` only on a dtype mismatch.
    #[serde(
        serialize_with = "serialize_dtype",
        deserialize_with = "deserialize_dtype"
    )]
    pub actual_dtype: DType,
    /// The actual tensor's shape, which differs from `shape` only on a shape mismatch.
    pub actual_shape: Vec<usize>,
    /// Absolute tolerance applied.
    pub atol: f64,
    /// Relative tolerance applied (in `allclose` mode; the other modes report the
    /// values allclose would use).
    pub rtol: f64,
    /// The comparison mode and its settings, flattened into the report entry:
    /// `"mode": "allclose" | "ulp" | "cosine" | "topk"` plus `ulp_limit`, `min_cosine`,
    /// `k`, `axis`, `ordered` as the mode has them.
    #[serde(flatten)]
    pub mode: Mode,
    /// Share of units (elements, rows or slices) allowed to miss without failing.
    pub outlier_fraction: f64,
    /// Largest `|a - e|` over finite pairs; +inf on a non-finite mismatch or when the
    /// elements were not compared.
    #[serde(deserialize_with = "deserialize_f64_or_inf")]
    pub max_abs_err: f64,
    /// Largest `|a - e| / |e|` over finite pairs with `e != 0`; +inf as `max_abs_err`.
    #[serde(deserialize_with = "deserialize_f64_or_inf")]
    pub max_rel_err: f64,
    /// Units out of tolerance (all of them when not compared). Units are elements in
    /// `allclose` and `ulp` mode, rows along the axis in `cosine` mode (1 for the whole
    /// tensor), slices along the axis in `topk` mode.
    pub mismatched: u64,
    /// Units compared: the expected tensor's elements, rows or slices as above
    /// (elements when not compared).
    pub total: u64,
    /// Multi-dimensional index of the worst element; `None` when empty or not compared.
    pub worst_index: Option<Vec<usize>>,
    /// Expected value at `worst_index`.
    pub expected: Option<f64>,
    /// Actual value at `worst_index`.
    pub actual: Option<f64>,
    /// Mean `|a - e|` over finite pairs (floats only).
    pub mean_abs_err: Option<f64>,
    /// Cosine similarity over finite pairs (floats only); 1 for two all-zero tensors,
    /// 0 when only one side is all zeros. In `cosine` mode the similarity judged: the
    /// whole tensor's, or the lowest row's.
    pub cosine: Option<f64>,
    /// One line on what is wrong beyond plain tolerance misses: shape, dtype, NaN/Inf,
    /// the first disagreeing slice or row of `topk`/`cosine`, a setting that does not fit.
    pub problem: Option<String>,
    /// `ulp` mode: the largest ULP distance over pairs where both values are finite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ulp: Option<u64>,
    /// `topk` mode: the share of slices whose top-k positions agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topk_agreement: Option<f64>,
    /// How much of its tolerance the output used: how close a pass is to flaking. In
    /// `allclose` mode the worst element's `|a - e| / (atol + rtol * |e|)`; in `ulp` mode
    /// the largest ULP distance over the limit; in `cosine` mode `(1 - cosine) /
    /// (1 - min_cosine)` of the lowest row; in `topk` mode the disagreeing slices over
    /// those `outlier_fraction` allows. Above 1 the worst unit is out of tolerance; +inf
    /// (JSON `null`) on a non-finite mismatch or when the output was not compared.
    /// Absent from reports written before it existed.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "deserialize_some_f64_or_inf"
    )]
    pub tolerance_used: Option<f64>,
}

impl OutputComparison {
    /// Share of elements out of tolerance (0 for an empty tensor), the "fraction" the
    /// design asks every comparison to report.
    pub fn mismatch_fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.mismatched as f64 / self.total as f64
        }
    }
}

/// Compares `actual` against the reference `expected` under `tol`; the one entry point
/// of the comparison engine. Never panics on data: every outcome is a comparison.
pub fn compare(expected: &Tensor, actual: &Tensor, tol: Tolerance) -> OutputComparison {
    match scan_compare(expected, actual, tol) {
        Ok((comparison, _)) => comparison,
        Err(not_compared) => *not_compared,
    }
}

/// The allclose comparison with the scan summary behind it, or the failing result
/// when the tensors could not be compared element by element.
fn scan_compare(
    expected: &Tensor,
    actual: &Tensor,
    tol: Tolerance,
) -> Result<(OutputComparison, Summary), Box<OutputComparison>> {
    if let Some(problem) = layout_problem(expected, actual) {
        return Err(Box::new(not_compared(expected, actual, tol, problem)));
    }
    let scanned = match gpu::routed_scan(expected, actual, tol) {
        gpu::Routed::Cpu => scan(expected, actual, tol),
        gpu::Routed::Done(summary) => Some(summary),
        gpu::Routed::Refused(problem) => {
            return Err(Box::new(not_compared(expected, actual, tol, problem)))
        }
    };
    match scanned {
        Some(summary) => Ok((compared(expected, actual, tol, &summary), summary)),
        // Unreachable after the dtype check, but a verdict beats a panic.
        None => {
            let problem = format!("{} values could not be read", expected.dtype());
            Err(Box::new(not_compared(expected, actual, tol, problem)))
        }
    }
}

/// [`compare`] on the CPU whatever `PARITY_COMPARE_DEVICE` says: the reference the GPU
/// path is checked against.
pub fn compare_cpu(expected: &Tensor, actual: &Tensor, tol: Tolerance) -> OutputComparison {
    if let Some(problem) = layout_problem(expected, actual) {
        return not_compared(expected, actual, tol, problem);
    }
    match scan(expected, actual, tol) {
        Some(summary) => compared(expected, actual, tol, &summary),
        None => {
            let problem = format!("{} values could not be read", expected.dtype());
            not_compared(expected, actual, tol, problem)
        }
    }
}

/// Scans both tensors on the CPU; they must have the same dtype and element count.
fn scan(expected: &Tensor, actual: &Tensor, tol: Tolerance) -> Option<Summary> {
    match expected.dtype() {
        DType::F32 => scan_float::<f32>(expected, actual, tol),
        DType::F64 => scan_float::<f64>(expected, actual, tol),
        DType::F16 => scan_float::<f16>(expected, actual, tol),
        DType::BF16 => scan_float::<bf16>(expected, actual, tol),
        DType::I8 => scan_exact::<i8>(expected, actual, tol),
        DType::I16 => scan_exact::<i16>(expected, actual, tol),
        DType::I32 => scan_exact::<i32>(expected, actual, tol),
        DType::I64 => scan_exact::<i64>(expected, actual, tol),
        DType::U8 => scan_exact::<u8>(expected, actual, tol),
        DType::U16 => scan_exact::<u16>(expected, actual, tol),
        DType::U32 => scan_exact::<u32>(expected, actual, tol),
        DType::U64 => scan_exact::<u64>(expected, actual, tol),
        DType::Bool => Some(exact::scan(expected.bools()?, actual.bools()?, tol)),
    }
}

fn scan_float<T: float::FloatElement>(e: &Tensor, a: &Tensor, tol: Tolerance) -> Option<Summary> {
    Some(float::scan(&e.values::<T>()?, &a.values::<T>()?, tol))
}

fn scan_exact<T: Element + exact::ExactElement>(
    e: &Tensor,
    a: &Tensor,
    tol: Tolerance,
) -> Option<Summary> {
    Some(exact::scan(&e.values::<T>()?, &a.values::<T>()?, tol))
}

/// Why the two tensors cannot be compared element by element, if they cannot.
fn layout_problem(expected: &Tensor, actual: &Tensor) -> Option<String> {
    let mut problems = Vec::new();
    if expected.dtype() != actual.dtype() {
        problems.push(format!(
            "dtype {} expected, got {}",
            expected.dtype(),
            actual.dtype()
        ));
    }
    if expected.shape() != actual.shape() {
        problems.push(format!(
            "shape {} expected, got {}",
            format_shape(expected.shape()),
            format_shape(actual.shape())
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// `[1,10]`, `[]` for a scalar.
fn format_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(","))
}

/// The result when shape or dtype differ: every element counts as mismatched.
fn not_compared(
    expected: &Tensor,
    actual: &Tensor,
    tol: Tolerance,
    problem: String,
) -> OutputComparison {
    failed_unjudged(
        (expected.dtype(), expected.shape().to_vec()),
        (actual.dtype(), actual.shape().to_vec()),
        expected.numel() as u64,
        tol,
        problem,
    )
}

/// A failing output whose elements could not be judged: `total` units all mismatched,
/// errors infinite, no worst element, `problem` saying why. `expected` and `actual` are
/// the (dtype, shape) each side had.
fn failed_unjudged(
    expected: (DType, Vec<usize>),
    actual: (DType, Vec<usize>),
    total: u64,
    tol: Tolerance,
    problem: String,
) -> OutputComparison {
    OutputComparison {
        verdict: Verdict::Fail,
        dtype: expected.0,
        shape: expected.1,
        actual_dtype: actual.0,
        actual_shape: actual.1,
        atol: tol.atol,
        rtol: tol.rtol,
        mode: Mode::AllClose,
        outlier_fraction: 0.0,
        max_abs_err: f64::INFINITY,
        max_rel_err: f64::INFINITY,
        mismatched: total,
        total,
        worst_index: None,
        expected: None,
        actual: None,
        mean_abs_err: None,
        cosine: None,
        problem: Some(problem),
        max_ulp: None,
        topk_agreement: None,
        tolerance_used: Some(f64::INFINITY),
    }
}

/// The result of an element-by-element comparison.
fn compared(
    expected: &Tensor,
    actual: &Tensor,
    tol: Tolerance,
    summary: &Summary,
) -> OutputComparison {
    let is_float = expected.dtype().is_float();
    let non_finite_problem = summary.non_finite.problem();
    let (max_abs_err, max_rel_err) = match non_finite_problem {
        Some(_) => (f64::INFINITY, f64::INFINITY),
        None => (summary.finite.max_abs, summary.finite.max_rel),
    };
    let mismatched = summary.mismatched();
    let worst = summary.worst_index().map(|i| i as usize);
    let finite_pairs = summary.finite_pairs();
    OutputComparison {
        verdict: if mismatched == 0 {
            Verdict::Pass
        } else {
            Verdict::Fail
        },
        dtype: expected.dtype(),
        shape: expected.shape().to_vec(),
        actual_dtype: actual.dtype(),
        actual_shape: actual.shape().to_vec(),
        atol: tol.atol,
        rtol: tol.rtol,
        mode: Mode::AllClose,
        outlier_fraction: 0.0,
        max_abs_err,
        max_rel_err,
        mismatched,
        total: summary.elements,
        worst_index: worst.map(|flat| unravel(flat, expected.shape())),
        expected: worst.map(|flat| expected.get_f64(flat)),
        actual: worst.map(|flat| actual.get_f64(flat)),
        mean_abs_err: (is_float && finite_pairs > 0)
            .then(|| summary.finite.sum_abs / finite_pairs as f64),
        cosine: (is_float && finite_pairs > 0)
            .then(|| summary.finite.cosine())
            .flatten(),
        tolerance_used: Some(match non_finite_problem {
            Some(_) => f64::INFINITY,
            None => summary.finite.worst.map_or(0.0, |w| w.excess),
        }),
        problem: non_finite_problem,
        max_ulp: None,
        topk_agreement: None,
    }
}

/// Row-major flat index to multi-dimensional index.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (slot, &dim) in index.iter_mut().zip(shape).rev() {
        if dim > 0 {
            *slot = flat % dim;
            flat /= dim;
        }
    }
    index
}

fn serialize_dtype<S: serde::Serializer>(dtype: &DType, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(dtype.name())
}

/// Reads a dtype written by [`serialize_dtype`] (`parity merge` reading reports).
fn deserialize_dtype<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<DType, D::Error> {
    let name = <String as serde::Deserialize>::deserialize(deserializer)?;
    DType::from_name(&name)
        .ok_or_else(|| serde::de::Error::custom(format!("unknown dtype `{name}`")))
}

/// Reads an error maximum: JSON has no infinity, so the +inf of a non-finite mismatch
/// was written as `null` and reads back as +inf.
/// `tolerance_used` read back: present as `null` means +inf (absent stays `None`).
fn deserialize_some_f64_or_inf<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    deserialize_f64_or_inf(deserializer).map(Some)
}

/// Reads an `f64` that JSON wrote as `null` when it was +inf (error maxima of a NaN/Inf
/// mismatch); used by every report type that serialises such a maximum.
pub fn deserialize_f64_or_inf<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<f64, D::Error> {
    let v = <Option<f64> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(v.unwrap_or(f64::INFINITY))
}

impl OutputComparison {
    /// An expected output the candidate did not produce at all: a failure, with every
    /// element counted as mismatched.
    pub fn missing(expected: &Tensor, tol: Tolerance) -> Self {
        let problem = "missing: the candidate did not produce this output".to_string();
        OutputComparison {
            actual_shape: Vec::new(),
            ..not_compared(expected, expected, tol, problem)
        }
    }

    /// A model output with nothing to compare it with (a partial golden, or a
    /// reference backend that did not produce it): a failure, never a silent pass.
    /// `dtype` is the model's declared one; the expected shape stays empty, the actual
    /// columns describe what the candidate produced, if anything.
    pub fn missing_golden(
        name: &str,
        dtype: DType,
        actual: Option<&Tensor>,
        tol: Tolerance,
    ) -> Self {
        let problem = match actual {
            Some(_) => format!("missing golden for output {name}"),
            None => format!(
                "missing golden for output {name}, and the candidate did not produce it either"
            ),
        };
        failed_unjudged(
            (dtype, Vec::new()),
            actual.map_or((dtype, Vec::new()), |a| (a.dtype(), a.shape().to_vec())),
            actual.map_or(0, |a| a.numel() as u64),
            tol,
            problem,
        )
    }

    /// [`missing`](Self::missing), reported under `policy`'s mode.
    pub fn missing_with(expected: &Tensor, policy: &Policy) -> Self {
        mode::with_mode(Self::missing(expected, policy.tolerance), policy)
    }
}
