//! Adversarial comparison cases on which the GPU path must agree with the CPU path, and
//! the agreement rule. Used by the unit tests (through the CPU emulation of the kernels)
//! and by `parity-gpu-probe` (on a real GPU).

use super::super::{OutputComparison, Tolerance};
use super::BLOCK_ELEMS;
use crate::tensor::{DType, Tensor};
use half::{bf16, f16};

/// One comparison to run on both paths.
pub struct Case {
    /// What the case exercises, with its dtype.
    pub name: String,
    /// The reference tensor.
    pub expected: Tensor,
    /// The candidate tensor.
    pub actual: Tensor,
    /// Tolerance applied.
    pub tol: Tolerance,
}

/// The float dtypes the kernels handle.
pub const FLOAT_DTYPES: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// A deterministic xorshift generator: the same cases on every machine.
struct Rng(u64);

impl Rng {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A tensor of a float `dtype` from f64 values (rounded to the dtype).
fn float_tensor(dtype: DType, values: &[f64]) -> Option<Tensor> {
    let shape = vec![values.len()];
    let tensor = match dtype {
        DType::F32 => Tensor::from_vec(shape, values.iter().map(|&v| v as f32).collect()),
        DType::F64 => Tensor::from_vec(shape, values.to_vec()),
        DType::F16 => Tensor::from_vec(shape, values.iter().map(|&v| f16::from_f64(v)).collect()),
        DType::BF16 => Tensor::from_vec(shape, values.iter().map(|&v| bf16::from_f64(v)).collect()),
        _ => return None,
    };
    tensor.ok()
}

/// The cases for one dtype; `large` elements in the largest random case (at least a few
/// blocks' worth is useful; the probe adds a case above the automatic threshold).
pub fn cases(dtype: DType, large: usize) -> Vec<Case> {
    let default = Tolerance::default_for(dtype);
    let b = BLOCK_ELEMS;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    let mut push = |name: &str, expected: Vec<f64>, actual: Vec<f64>, tol: Tolerance| {
        if let (Some(e), Some(a)) = (float_tensor(dtype, &expected), float_tensor(dtype, &actual)) {
            out.push(Case {
                name: format!("{name} {dtype}"),
                expected: e,
                actual: a,
                tol,
            });
        }
    };

    // Random values, relative noise, every 997th element off by 1%.
    let expected: Vec<f64> = (0..large).map(|_| rng.next() * 8.0 - 4.0).collect();
    let actual: Vec<f64> = expected
        .iter()
        .enumerate()
        .map(|(i, &e)| {
            let off = if i % 997 == 13 { 1e-2 } else { 0.0 };
            e * (1.0 + (rng.next() - 0.5) * 2e-5 + off)
        })
        .collect();
    push("random", expected.clone(), actual, default);
    push("equal", expected.clone(), expected, default);

    // Equal worst elements in different blocks and threads: the lowest index wins.
    let n = 3 * b + 17;
    let mut actual = vec![1.0; n];
    for i in [2 * b + 3, b + 300, b - 1, b, b + 5, 3 * b + 16] {
        actual[i] = 1.5;
    }
    push("ties", vec![1.0; n], actual.clone(), default);
    // Zero tolerance: every difference has infinite excess; larger error, then lower index.
    actual[2 * b + 7] = 1.75;
    actual[b + 9] = 1.75;
    push("zero tolerance", vec![1.0; n], actual, Tolerance::EXACT);

    // rtol only, zero references (no relative error, counted through atol = 0).
    let expected: Vec<f64> = (0..n).map(|i| if i % 5 == 0 { 0.0 } else { 2.0 }).collect();
    let actual: Vec<f64> = expected
        .iter()
        .enumerate()
        .map(|(i, &e)| e + (i % 7) as f64 * 1e-3)
        .collect();
    let rtol_only = Tolerance {
        atol: 0.0,
        rtol: 1e-3,
    };
    push("rtol only", expected, actual, rtol_only);

    // NaN and Inf: matching pairs excluded; the lowest non-finite mismatch is the worst,
    // even with a larger finite error elsewhere.
    let mut expected: Vec<f64> = (0..n).map(|i| (i % 11) as f64 - 5.0).collect();
    let mut actual = expected.clone();
    actual[17] = 1e3;
    for (i, e, a) in [
        (b - 2, f64::NAN, f64::NAN),
        (b + 1, f64::INFINITY, f64::INFINITY),
        (2 * b + 40, 1.0, f64::NAN),
        (b + 700, f64::INFINITY, f64::NEG_INFINITY),
        (b + 260, f64::NAN, 3.0),
        (3 * b + 2, 2.0, f64::INFINITY),
    ] {
        expected[i] = e;
        actual[i] = a;
    }
    push("non-finite", expected.clone(), actual, default);
    let mut matching = expected.clone();
    matching[17] = 1e3;
    push("matching non-finite", expected, matching, default);

    // Fewer elements than threads, and one element.
    push(
        "seven",
        vec![1.0, 2.0, 0.0, -3.0, 4.0, 5.0, 6.0],
        vec![1.0, 2.5, 1e-3, -3.0, 4.0, 5.5, 6.0],
        default,
    );
    push("one", vec![3.0], vec![3.25], default);

    if dtype == DType::F64 {
        // |a - e| overflows to +inf for finite values.
        let mut expected = vec![1.0; 2 * b];
        let mut actual = expected.clone();
        expected[b + 3] = 1e308;
        actual[b + 3] = -1e308;
        actual[5] = 2.0;
        push("overflow", expected, actual, default);
    }
    out
}

/// Whether two results of the same comparison agree: verdict, mismatch count, worst
/// index and value, and problem exactly; statistics within 1e-9 relative.
pub fn agreement(cpu: &OutputComparison, gpu: &OutputComparison) -> Result<(), String> {
    let same_value = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => a == b || (a.is_nan() && b.is_nan()),
        (a, b) => a.is_none() && b.is_none(),
    };
    let close = |a: f64, b: f64| a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    let close_opt = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => close(a, b),
        (a, b) => a.is_none() && b.is_none(),
    };
    let checks = [
        ("verdict", cpu.verdict == gpu.verdict),
        ("mismatched", cpu.mismatched == gpu.mismatched),
        ("total", cpu.total == gpu.total),
        ("worst_index", cpu.worst_index == gpu.worst_index),
        ("expected", same_value(cpu.expected, gpu.expected)),
        ("actual", same_value(cpu.actual, gpu.actual)),
        ("problem", cpu.problem == gpu.problem),
        ("max_abs_err", close(cpu.max_abs_err, gpu.max_abs_err)),
        ("max_rel_err", close(cpu.max_rel_err, gpu.max_rel_err)),
        (
            "mean_abs_err",
            close_opt(cpu.mean_abs_err, gpu.mean_abs_err),
        ),
        ("cosine", close_opt(cpu.cosine, gpu.cosine)),
    ];
    let differ: Vec<&str> = checks
        .iter()
        .filter(|(_, same)| !same)
        .map(|(what, _)| *what)
        .collect();
    if differ.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} differ: cpu {cpu:?}, gpu {gpu:?}",
            differ.join(", ")
        ))
    }
}
