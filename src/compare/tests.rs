//! Tests of the comparison engine: semantics on hand-made cases, and the parallel scan
//! against a plain sequential reference on random data.

use super::parallel::CHUNK;
use super::*;

// ---------- helpers ----------

/// A tensor of any dtype from f64 values (cast per dtype; bool is `v != 0`).
fn tensor(dtype: DType, shape: &[usize], values: &[f64]) -> Tensor {
    let shape = shape.to_vec();
    let t = match dtype {
        DType::F32 => Tensor::from_vec(shape, values.iter().map(|&v| v as f32).collect()),
        DType::F64 => Tensor::from_vec(shape, values.to_vec()),
        DType::F16 => Tensor::from_vec(shape, values.iter().map(|&v| f16::from_f64(v)).collect()),
        DType::BF16 => Tensor::from_vec(shape, values.iter().map(|&v| bf16::from_f64(v)).collect()),
        DType::I8 => Tensor::from_vec(shape, values.iter().map(|&v| v as i8).collect()),
        DType::I16 => Tensor::from_vec(shape, values.iter().map(|&v| v as i16).collect()),
        DType::I32 => Tensor::from_vec(shape, values.iter().map(|&v| v as i32).collect()),
        DType::I64 => Tensor::from_vec(shape, values.iter().map(|&v| v as i64).collect()),
        DType::U8 => Tensor::from_vec(shape, values.iter().map(|&v| v as u8).collect()),
        DType::U16 => Tensor::from_vec(shape, values.iter().map(|&v| v as u16).collect()),
        DType::U32 => Tensor::from_vec(shape, values.iter().map(|&v| v as u32).collect()),
        DType::U64 => Tensor::from_vec(shape, values.iter().map(|&v| v as u64).collect()),
        DType::Bool => {
            let bools: Vec<bool> = values.iter().map(|&v| v != 0.0).collect();
            Tensor::from_bools(shape, &bools)
        }
    };
    t.unwrap()
}

fn f32s(shape: &[usize], values: &[f32]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), values.to_vec()).unwrap()
}

fn f64s(shape: &[usize], values: &[f64]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), values.to_vec()).unwrap()
}

fn with_defaults(expected: &Tensor, actual: &Tensor) -> OutputComparison {
    compare(expected, actual, Tolerance::default_for(expected.dtype()))
}

/// xorshift64*: deterministic test data without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-1, 1).
    fn signed(&mut self) -> f64 {
        2.0 * self.unit() - 1.0
    }
}

// ---------- sequential reference ----------

/// What the engine must report, computed the obvious way: one element at a time, in
/// order, straight from the definitions in the module docs.
#[derive(Debug)]
struct Reference {
    mismatched: u64,
    max_abs: f64,
    max_rel: f64,
    worst: Option<usize>,
    mean_abs: Option<f64>,
    cosine: Option<f64>,
}

fn reference(expected: &[f64], actual: &[f64], tol: Tolerance) -> Reference {
    let mut mismatched = 0;
    let (mut max_abs, mut max_rel) = (0.0f64, 0.0f64);
    let mut worst: Option<(f64, f64, usize)> = None;
    let mut first_non_finite = None;
    let (mut n, mut sum, mut dot, mut sa, mut se) = (0u64, 0.0, 0.0, 0.0, 0.0);
    for (i, (&e, &a)) in expected.iter().zip(actual).enumerate() {
        if !(e.is_finite() && a.is_finite()) {
            let matched = (e.is_nan() && a.is_nan()) || (e.is_infinite() && a == e);
            if !matched {
                mismatched += 1;
                first_non_finite.get_or_insert(i);
            }
            continue;
        }
        let d = (a - e).abs();
        let allowed = tol.atol + tol.rtol * e.abs();
        if d > allowed {
            mismatched += 1;
        }
        max_abs = max_abs.max(d);
        if e != 0.0 {
            max_rel = max_rel.max(d / e.abs());
        }
        let excess = d / allowed;
        let is_worse = match worst {
            None => true,
            Some((we, wd, _)) => excess > we || (excess == we && d > wd),
        };
        if d > 0.0 && is_worse {
            worst = Some((excess, d, i));
        }
        n += 1;
        sum += d;
        dot += a * e;
        sa += a * a;
        se += e * e;
    }
    if first_non_finite.is_some() {
        max_abs = f64::INFINITY;
        max_rel = f64::INFINITY;
    }
    let cosine = match (sa == 0.0, se == 0.0) {
        (true, true) => 1.0,
        (false, false) => dot / (sa.sqrt() * se.sqrt()),
        _ => 0.0,
    };
    Reference {
        mismatched,
        max_abs,
        max_rel,
        worst: first_non_finite
            .or(worst.map(|w| w.2))
            .or((!expected.is_empty()).then_some(0)),
        mean_abs: (n > 0).then(|| sum / n as f64),
        cosine: (n > 0).then_some(cosine),
    }
}

fn assert_matches_reference(got: &OutputComparison, want: &Reference, shape: &[usize]) {
    assert_eq!(got.mismatched, want.mismatched);
    assert_eq!(got.max_abs_err, want.max_abs);
    assert_eq!(got.max_rel_err, want.max_rel);
    assert_eq!(got.worst_index, want.worst.map(|w| unravel(w, shape)));
    // Sums are accumulated in another order (lanes, chunks): equal up to rounding.
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1e-300),
        (a, b) => a == b,
    };
    assert!(close(got.mean_abs_err, want.mean_abs), "{got:?} {want:?}");
    assert!(close(got.cosine, want.cosine), "{got:?} {want:?}");
}

// ---------- tolerance table ----------

#[test]
fn default_tolerances_follow_the_table() {
    let t = Tolerance::default_for;
    assert_eq!(
        t(DType::F64),
        Tolerance {
            atol: 1e-9,
            rtol: 1e-7
        }
    );
    assert_eq!(
        t(DType::F32),
        Tolerance {
            atol: 1e-5,
            rtol: 1e-4
        }
    );
    assert_eq!(
        t(DType::F16),
        Tolerance {
            atol: 4e-3,
            rtol: 2e-3
        }
    );
    assert_eq!(
        t(DType::BF16),
        Tolerance {
            atol: 3.2e-2,
            rtol: 1.6e-2
        }
    );
    for dtype in DType::ALL.into_iter().filter(|d| !d.is_float()) {
        assert_eq!(t(dtype), Tolerance::EXACT, "{dtype}");
    }
}

// ---------- every dtype ----------

#[test]
fn every_dtype_passes_identical_and_finds_a_difference() {
    let values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
    let mut changed = values;
    changed[4] = 1.0;
    for dtype in DType::ALL {
        let expected = tensor(dtype, &[2, 3], &values);
        let same = with_defaults(&expected, &tensor(dtype, &[2, 3], &values));
        assert_eq!(same.verdict, Verdict::Pass, "{dtype}");
        assert_eq!((same.mismatched, same.total), (0, 6), "{dtype}");
        assert_eq!(same.max_abs_err, 0.0, "{dtype}");
        assert_eq!(same.problem, None, "{dtype}");

        let got = with_defaults(&expected, &tensor(dtype, &[2, 3], &changed));
        assert_eq!(got.verdict, Verdict::Fail, "{dtype}");
        assert_eq!((got.mismatched, got.total), (1, 6), "{dtype}");
        assert_eq!(got.worst_index, Some(vec![1, 1]), "{dtype}");
        assert_eq!(
            (got.expected, got.actual),
            (Some(0.0), Some(1.0)),
            "{dtype}"
        );
        assert_eq!(got.max_abs_err, 1.0, "{dtype}");
        // The only changed element has a zero reference: no relative error.
        assert_eq!(got.max_rel_err, 0.0, "{dtype}");
        assert_eq!((got.dtype, got.actual_dtype), (dtype, dtype));
        assert_eq!(got.shape, vec![2, 3]);
        if dtype.is_float() {
            assert_eq!(got.mean_abs_err, Some(1.0 / 6.0), "{dtype}");
            let cosine = 4.0 / (4.0f64.sqrt() * 5.0f64.sqrt());
            assert!((got.cosine.unwrap() - cosine).abs() < 1e-15, "{dtype}");
        } else {
            assert_eq!((got.mean_abs_err, got.cosine), (None, None), "{dtype}");
        }
    }
}

#[test]
fn f16_within_one_ulp_passes_and_large_errors_fail() {
    let one_ulp = 1.0 + 2f64.powi(-10);
    let expected = tensor(DType::F16, &[3], &[1.0, 2.0, -4.0]);
    let close = tensor(DType::F16, &[3], &[one_ulp, 2.0, -4.0]);
    assert_eq!(with_defaults(&expected, &close).verdict, Verdict::Pass);
    let far = tensor(DType::F16, &[3], &[1.0, 2.0, -4.25]);
    let got = with_defaults(&expected, &far);
    assert_eq!(got.mismatched, 1);
    assert_eq!(got.worst_index, Some(vec![2]));
    assert_eq!((got.expected, got.actual), (Some(-4.0), Some(-4.25)));
    assert_eq!(got.max_abs_err, 0.25);
    assert_eq!(got.max_rel_err, 0.0625);
}

#[test]
fn bf16_within_one_ulp_passes_and_large_errors_fail() {
    let one_ulp = 1.0 + 2f64.powi(-7);
    let expected = tensor(DType::BF16, &[2], &[1.0, 256.0]);
    let close = tensor(DType::BF16, &[2], &[one_ulp, 258.0]);
    assert_eq!(with_defaults(&expected, &close).verdict, Verdict::Pass);
    let far = tensor(DType::BF16, &[2], &[1.0625, 256.0]);
    let got = with_defaults(&expected, &far);
    assert_eq!(got.mismatched, 1);
    assert_eq!((got.expected, got.actual), (Some(1.0), Some(1.0625)));
    assert_eq!(got.max_abs_err, 0.0625);
}

#[test]
fn large_integers_are_compared_exactly() {
    let big = 1i64 << 60;
    let expected = Tensor::from_vec(vec![2], vec![big, -big]).unwrap();
    let actual = Tensor::from_vec(vec![2], vec![big + 1, -big]).unwrap();
    let got = with_defaults(&expected, &actual);
    assert_eq!(got.mismatched, 1);
    assert_eq!(got.max_abs_err, 1.0);
    assert_eq!(got.worst_index, Some(vec![0]));
    let expected = Tensor::from_vec(vec![1], vec![u64::MAX]).unwrap();
    let actual = Tensor::from_vec(vec![1], vec![0u64]).unwrap();
    assert_eq!(
        with_defaults(&expected, &actual).max_abs_err,
        u64::MAX as f64
    );
}

#[test]
fn integer_worst_is_the_largest_error_then_the_lowest_index() {
    let expected = tensor(DType::I32, &[4], &[0.0, 0.0, 0.0, 0.0]);
    let actual = tensor(DType::I32, &[4], &[1.0, 5.0, -5.0, 2.0]);
    let got = with_defaults(&expected, &actual);
    assert_eq!(got.mismatched, 4);
    assert_eq!(got.worst_index, Some(vec![1]));
    assert_eq!((got.expected, got.actual), (Some(0.0), Some(5.0)));
}

#[test]
fn an_explicit_tolerance_applies_to_integers() {
    let expected = tensor(DType::U8, &[2], &[10.0, 200.0]);
    let actual = tensor(DType::U8, &[2], &[11.0, 198.0]);
    let tol = Tolerance {
        atol: 1.0,
        rtol: 0.0,
    };
    let got = compare(&expected, &actual, tol);
    assert_eq!(got.mismatched, 1);
    assert_eq!(got.worst_index, Some(vec![1]));
    assert_eq!((got.atol, got.rtol), (1.0, 0.0));
}

// ---------- NaN and Inf ----------

#[test]
fn nan_matches_only_nan() {
    let nan = f32::NAN;
    let got = with_defaults(&f32s(&[2], &[nan, 1.0]), &f32s(&[2], &[nan, 1.0]));
    assert_eq!(got.verdict, Verdict::Pass);
    assert_eq!(got.max_abs_err, 0.0);
    assert_eq!(got.mean_abs_err, Some(0.0));

    let got = with_defaults(
        &f32s(&[4], &[1.0, 2.0, 3.0, 4.0]),
        &f32s(&[4], &[1.5, nan, nan, 4.0]),
    );
    assert_eq!(got.verdict, Verdict::Fail);
    assert_eq!(got.mismatched, 3);
    assert_eq!(got.mismatch_fraction(), 0.75);
    assert_eq!(
        got.problem.as_deref(),
        Some("2 NaN where the reference is finite")
    );
    assert_eq!(got.max_abs_err, f64::INFINITY);
    assert_eq!(got.max_rel_err, f64::INFINITY);
    // The first NaN beats the larger finite error at index 0.
    assert_eq!(got.worst_index, Some(vec![1]));
    assert_eq!(got.expected, Some(2.0));
    assert!(got.actual.unwrap().is_nan());
    // Statistics of the finite pairs only.
    assert_eq!(got.mean_abs_err, Some(0.25));

    let got = with_defaults(&f32s(&[1], &[nan]), &f32s(&[1], &[0.0]));
    assert_eq!(got.mismatched, 1);
    assert_eq!(
        got.problem.as_deref(),
        Some("1 not NaN where the reference is NaN")
    );
    assert_eq!(got.mean_abs_err, None);
}

#[test]
fn inf_matches_only_the_same_inf() {
    let inf = f64::INFINITY;
    let got = with_defaults(&f64s(&[2], &[inf, -inf]), &f64s(&[2], &[inf, -inf]));
    assert_eq!(got.verdict, Verdict::Pass);
    assert_eq!(got.problem, None);

    let got = with_defaults(&f64s(&[2], &[1.0, inf]), &f64s(&[2], &[1.0, -inf]));
    assert_eq!(got.verdict, Verdict::Fail);
    assert_eq!(
        got.problem.as_deref(),
        Some("1 not the same Inf where the reference is Inf")
    );
    assert_eq!(got.worst_index, Some(vec![1]));

    let got = with_defaults(&f64s(&[2], &[1.0, 2.0]), &f64s(&[2], &[1.0, inf]));
    assert_eq!(got.mismatched, 1);
    assert_eq!(
        got.problem.as_deref(),
        Some("1 Inf where the reference is finite")
    );
    assert_eq!((got.expected, got.actual), (Some(2.0), Some(inf)));
    assert_eq!(got.max_abs_err, inf);

    let got = with_defaults(&f64s(&[1], &[inf]), &f64s(&[1], &[1e300]));
    assert_eq!(got.mismatched, 1);
}

#[test]
fn an_f64_difference_that_overflows_is_an_infinite_finite_error() {
    let got = with_defaults(&f64s(&[2], &[1.0, -1e308]), &f64s(&[2], &[1.0, 1e308]));
    assert_eq!(got.mismatched, 1);
    assert_eq!(got.max_abs_err, f64::INFINITY);
    assert_eq!(got.worst_index, Some(vec![1]));
    assert_eq!(got.problem, None);
}

#[test]
fn half_infinities_and_nans_are_classified() {
    let expected = tensor(DType::F16, &[3], &[f64::INFINITY, f64::NAN, 1.0]);
    let actual = tensor(
        DType::F16,
        &[3],
        &[f64::INFINITY, f64::NAN, f64::NEG_INFINITY],
    );
    let got = with_defaults(&expected, &actual);
    assert_eq!(got.mismatched, 1);
    assert_eq!(got.worst_index, Some(vec![2]));
    assert_eq!(
        got.problem.as_deref(),
        Some("1 Inf where the reference is finite")
    );
}

#[test]
fn a_nan_deep_in_a_large_tensor_is_the_worst_element() {
    let n = 3 * CHUNK + 11;
    let expected: Vec<f32> = (0..n).map(|i| (i % 1000) as f32).collect();
    let mut actual = expected.clone();
    actual[17] += 500.0; // a large finite error early on
    actual[2 * CHUNK + 5] = f32::NAN;
    actual[2 * CHUNK + 6] = f32::INFINITY;
    let got = with_defaults(&f32s(&[n], &expected), &f32s(&[n], &actual));
    assert_eq!(got.mismatched, 3);
    assert_eq!(got.worst_index, Some(vec![2 * CHUNK + 5]));
    assert_eq!(
        got.problem.as_deref(),
        Some("1 NaN where the reference is finite; 1 Inf where the reference is finite")
    );
    assert_eq!(got.mean_abs_err, Some(500.0 / (n - 2) as f64));
}

// ---------- layout problems ----------

#[test]
fn shape_mismatch_fails_without_comparing() {
    let expected = tensor(DType::F32, &[1, 10], &[0.0; 10]);
    let actual = tensor(DType::F32, &[1, 11], &[0.0; 11]);
    let got = with_defaults(&expected, &actual);
    assert_eq!(got.verdict, Verdict::Fail);
    assert_eq!(
        got.problem.as_deref(),
        Some("shape [1,10] expected, got [1,11]")
    );
    assert_eq!((got.mismatched, got.total), (10, 10));
    assert_eq!(
        (got.shape.clone(), got.actual_shape.clone()),
        (vec![1, 10], vec![1, 11])
    );
    assert_eq!(got.worst_index, None);
    assert_eq!(got.max_abs_err, f64::INFINITY);
    // Same element count, different shape: still a mismatch.
    let reshaped = tensor(DType::F32, &[10, 1], &[0.0; 10]);
    let got = with_defaults(&expected, &reshaped);
    assert_eq!(
        got.problem.as_deref(),
        Some("shape [1,10] expected, got [10,1]")
    );
}

#[test]
fn dtype_mismatch_fails_without_comparing() {
    let expected = tensor(DType::F32, &[2], &[1.0, 2.0]);
    let actual = tensor(DType::F16, &[2], &[1.0, 2.0]);
    let got = with_defaults(&expected, &actual);
    assert_eq!(got.verdict, Verdict::Fail);
    assert_eq!(got.problem.as_deref(), Some("dtype f32 expected, got f16"));
    assert_eq!((got.dtype, got.actual_dtype), (DType::F32, DType::F16));
    assert_eq!((got.mismatched, got.total), (2, 2));
    let both = with_defaults(&expected, &tensor(DType::I64, &[], &[1.0]));
    assert_eq!(
        both.problem.as_deref(),
        Some("dtype f32 expected, got i64; shape [2] expected, got []")
    );
}

// ---------- locating the worst element ----------

#[test]
fn one_perturbed_element_in_100k_is_found_at_its_index() {
    let shape = [10, 100, 100];
    let mut rng = Rng(7);
    let expected: Vec<f32> = (0..100_000).map(|_| 0.5 + rng.unit() as f32).collect();
    // Noise well within tolerance everywhere, then one element 1e-2 off (relative).
    let mut actual: Vec<f32> = expected
        .iter()
        .map(|&e| e * (1.0 + 1e-6 * rng.signed() as f32))
        .collect();
    let flat = 5 * 10_000 + 43 * 100 + 21;
    actual[flat] = expected[flat] * 1.01;
    let got = with_defaults(&f32s(&shape, &expected), &f32s(&shape, &actual));
    assert_eq!(got.verdict, Verdict::Fail);
    assert_eq!(got.mismatched, 1);
    assert_eq!(got.total, 100_000);
    assert_eq!(got.worst_index, Some(vec![5, 43, 21]));
    assert_eq!(got.expected, Some(f64::from(expected[flat])));
    assert_eq!(got.actual, Some(f64::from(actual[flat])));
    let abs = (f64::from(actual[flat]) - f64::from(expected[flat])).abs();
    assert_eq!(got.max_abs_err, abs);
    assert!((got.max_rel_err - 0.01).abs() < 1e-6);
    assert!(got.cosine.unwrap() > 0.999_999);
}

#[test]
fn a_scalar_is_compared() {
    let got = with_defaults(&f32s(&[], &[1.0]), &f32s(&[], &[1.5]));
    assert_eq!(got.verdict, Verdict::Fail);
    assert_eq!((got.mismatched, got.total), (1, 1));
    assert_eq!(got.worst_index, Some(vec![]));
    assert_eq!((got.expected, got.actual), (Some(1.0), Some(1.5)));
    assert_eq!(got.max_rel_err, 0.5);
    let same = with_defaults(&f32s(&[], &[1.0]), &f32s(&[], &[1.0]));
    assert_eq!(same.verdict, Verdict::Pass);
    assert_eq!(same.worst_index, Some(vec![]));
}

#[test]
fn an_empty_tensor_passes() {
    for dtype in DType::ALL {
        let expected = tensor(dtype, &[0, 3], &[]);
        let got = with_defaults(&expected, &tensor(dtype, &[0, 3], &[]));
        assert_eq!(got.verdict, Verdict::Pass, "{dtype}");
        assert_eq!((got.mismatched, got.total), (0, 0));
        assert_eq!(got.mismatch_fraction(), 0.0);
        assert_eq!(got.worst_index, None);
        assert_eq!((got.expected, got.actual), (None, None));
        assert_eq!((got.mean_abs_err, got.cosine), (None, None));
        assert_eq!(got.max_abs_err, 0.0);
    }
}

// ---------- tolerance boundaries ----------

#[test]
fn atol_boundary_is_inclusive() {
    let tol = Tolerance {
        atol: 0.5,
        rtol: 0.0,
    };
    let at = compare(&f64s(&[1], &[1.0]), &f64s(&[1], &[1.5]), tol);
    assert_eq!(at.verdict, Verdict::Pass);
    let above = compare(&f64s(&[1], &[1.0]), &f64s(&[1], &[1.5f64.next_up()]), tol);
    assert_eq!(above.verdict, Verdict::Fail);
    let below = compare(&f32s(&[1], &[1.0]), &f32s(&[1], &[0.5]), tol);
    assert_eq!(below.verdict, Verdict::Pass);
    let above32 = compare(&f32s(&[1], &[1.0]), &f32s(&[1], &[0.5f32.next_down()]), tol);
    assert_eq!(above32.verdict, Verdict::Fail);
}

#[test]
fn rtol_boundary_is_inclusive_and_scales_with_the_reference() {
    let tol = Tolerance {
        atol: 0.0,
        rtol: 0.25,
    };
    let at = compare(&f64s(&[1], &[2.0]), &f64s(&[1], &[2.5]), tol);
    assert_eq!(at.verdict, Verdict::Pass);
    assert_eq!(at.max_rel_err, 0.25);
    let above = compare(&f64s(&[1], &[2.0]), &f64s(&[1], &[2.5f64.next_up()]), tol);
    assert_eq!(above.verdict, Verdict::Fail);
    // The reference, not the actual value, scales the tolerance: 2.0 vs 2.5 passes,
    // 2.5 vs 2.0 passes too (0.5 <= 0.625), 2.0 vs 1.5 passes, 1.5 vs 2.0 fails.
    let swapped = compare(&f64s(&[1], &[1.5]), &f64s(&[1], &[2.0]), tol);
    assert_eq!(swapped.verdict, Verdict::Fail);
    // With no absolute part, zero must be matched exactly: the excess is infinite.
    let zero = compare(&f64s(&[2], &[0.0, 4.0]), &f64s(&[2], &[1e-30, 4.5]), tol);
    assert_eq!(zero.mismatched, 1);
    assert_eq!(zero.worst_index, Some(vec![0]));
    assert_eq!(zero.max_rel_err, 0.125);
    let both_zero = compare(&f64s(&[1], &[0.0]), &f64s(&[1], &[0.0]), tol);
    assert_eq!(both_zero.verdict, Verdict::Pass);
}

#[test]
fn worst_is_the_largest_normalised_excess_not_the_largest_error() {
    let tol = Tolerance::default_for(DType::F32);
    // 1000 vs 1000.05 is within tolerance (0.05 <= 0.10001); 0 vs 0.001 is 100x over.
    let got = compare(
        &f32s(&[3], &[1000.0, 0.0, 1.0]),
        &f32s(&[3], &[1000.05, 1e-3, 1.0]),
        tol,
    );
    assert_eq!(got.mismatched, 1);
    assert_eq!(got.worst_index, Some(vec![1]));
    assert!(got.max_abs_err > 0.04);
}

#[test]
fn ties_go_to_the_lowest_index() {
    let got = with_defaults(
        &f64s(&[4], &[1.0, 2.0, 1.0, 2.0]),
        &f64s(&[4], &[1.0, 3.0, 1.0, 3.0]),
    );
    assert_eq!(got.worst_index, Some(vec![1]));
    let all_equal = with_defaults(&f64s(&[3], &[1.0, 2.0, 3.0]), &f64s(&[3], &[1.0, 2.0, 3.0]));
    assert_eq!(all_equal.worst_index, Some(vec![0]));
    // Within tolerance, but the only element that differs at all.
    let tiny = with_defaults(
        &f64s(&[3], &[1.0, 2.0, 3.0]),
        &f64s(&[3], &[1.0, 2.0, 3.0 + 1e-12]),
    );
    assert_eq!(tiny.verdict, Verdict::Pass);
    assert_eq!(tiny.worst_index, Some(vec![2]));
}

// ---------- cosine ----------

#[test]
fn cosine_edge_cases() {
    let zeros = f32s(&[3], &[0.0; 3]);
    let ones = f32s(&[3], &[1.0; 3]);
    assert_eq!(with_defaults(&zeros, &zeros).cosine, Some(1.0));
    assert_eq!(with_defaults(&zeros, &ones).cosine, Some(0.0));
    assert_eq!(with_defaults(&ones, &zeros).cosine, Some(0.0));
    let minus = f32s(&[3], &[-1.0; 3]);
    assert_eq!(with_defaults(&ones, &minus).cosine, Some(-1.0));
}

// ---------- parallel scan == sequential reference ----------

/// Random pairs: mostly within f32 tolerance, some just outside, some far off, some
/// zero references; optionally NaN and Inf sprinkled on both sides.
fn random_pair(n: usize, seed: u64, non_finite: bool) -> (Vec<f32>, Vec<f32>) {
    let mut rng = Rng(seed);
    let mut expected = Vec::with_capacity(n);
    let mut actual = Vec::with_capacity(n);
    for _ in 0..n {
        let e = if rng.unit() < 0.01 {
            0.0
        } else {
            (rng.signed() * 100.0) as f32
        };
        let r = rng.unit();
        let a = if r < 0.98 {
            e * (1.0 + (rng.signed() * 2e-4) as f32) + (rng.signed() * 1e-5) as f32
        } else if r < 0.995 {
            e + (rng.signed() * 1e-2) as f32
        } else {
            (rng.signed() * 100.0) as f32
        };
        expected.push(e);
        actual.push(a);
    }
    if non_finite {
        for _ in 0..(n / 5000).max(2) {
            let i = (rng.next_u64() % n as u64) as usize;
            let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
            let s = specials[(rng.next_u64() % 3) as usize];
            match rng.next_u64() % 3 {
                0 => expected[i] = s,
                1 => actual[i] = s,
                _ => (expected[i], actual[i]) = (s, s),
            }
        }
    }
    (expected, actual)
}

fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| f64::from(v)).collect()
}

#[test]
fn parallel_f32_equals_sequential_reference() {
    let tol = Tolerance::default_for(DType::F32);
    for (i, n) in [1, 7, 9, CHUNK - 1, CHUNK + 1, 3 * CHUNK + 17]
        .into_iter()
        .enumerate()
    {
        for non_finite in [false, true] {
            let (e, a) = random_pair(n, 1 + i as u64, non_finite);
            let shape = if n % 7 == 0 { [n / 7, 7] } else { [1, n] };
            let got = compare(&f32s(&shape, &e), &f32s(&shape, &a), tol);
            let want = reference(&widen(&e), &widen(&a), tol);
            assert!(
                want.mismatched > 0 || n < 100,
                "test data should have mismatches"
            );
            assert_matches_reference(&got, &want, &shape);
        }
    }
}

#[test]
fn parallel_f64_and_f16_equal_sequential_reference() {
    let n = 2 * CHUNK + 3;
    let (e, a) = random_pair(n, 99, true);
    let tol = Tolerance::default_for(DType::F64);
    let (e64, a64) = (widen(&e), widen(&a));
    let got = compare(&f64s(&[n], &e64), &f64s(&[n], &a64), tol);
    assert_matches_reference(&got, &reference(&e64, &a64, tol), &[n]);

    let tol = Tolerance::default_for(DType::F16);
    let (e16, a16) = (
        tensor(DType::F16, &[n], &e64),
        tensor(DType::F16, &[n], &a64),
    );
    let widen16 = |t: &Tensor| (0..n).map(|i| t.get_f64(i)).collect::<Vec<f64>>();
    let got = compare(&e16, &a16, tol);
    assert_matches_reference(&got, &reference(&widen16(&e16), &widen16(&a16), tol), &[n]);
    let (eb, ab) = (
        tensor(DType::BF16, &[n], &e64),
        tensor(DType::BF16, &[n], &a64),
    );
    let tol = Tolerance::default_for(DType::BF16);
    let got = compare(&eb, &ab, tol);
    assert_matches_reference(&got, &reference(&widen16(&eb), &widen16(&ab), tol), &[n]);
}

#[test]
fn parallel_integers_equal_sequential_reference() {
    let n = CHUNK + 5;
    let mut rng = Rng(5);
    let e: Vec<i32> = (0..n).map(|_| (rng.next_u64() % 100) as i32 - 50).collect();
    let a: Vec<i32> = e
        .iter()
        .map(|&v| {
            if rng.unit() < 0.01 {
                v + (rng.next_u64() % 7) as i32 - 3
            } else {
                v
            }
        })
        .collect();
    let got = with_defaults(
        &Tensor::from_vec(vec![n], e.clone()).unwrap(),
        &Tensor::from_vec(vec![n], a.clone()).unwrap(),
    );
    let to64 = |v: &[i32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
    let want = reference(&to64(&e), &to64(&a), Tolerance::EXACT);
    assert_eq!(got.mismatched, want.mismatched);
    assert_eq!(got.max_abs_err, want.max_abs);
    assert_eq!(got.max_rel_err, want.max_rel);
    assert_eq!(got.worst_index, want.worst.map(|w| vec![w]));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let n = 5 * CHUNK + 1;
    let (e, a) = random_pair(n, 3, false);
    let (e, a) = (f32s(&[n], &e), f32s(&[n], &a));
    let tol = Tolerance::default_for(DType::F32);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| compare(&e, &a, tol))
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert_eq!(one, compare(&e, &a, tol));
}

// ---------- serialisation ----------

#[test]
fn serialises_with_dtype_names_and_lowercase_verdicts() {
    let got = with_defaults(&f32s(&[2], &[1.0, 2.0]), &f32s(&[2], &[1.0, 2.0]));
    let json = serde_json::to_value(&got).unwrap();
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["dtype"], "f32");
    assert_eq!(json["actual_dtype"], "f32");
    assert_eq!(json["shape"], serde_json::json!([2]));
    assert_eq!(json["worst_index"], serde_json::json!([0]));
    assert_eq!(json["total"], 2);
    assert_eq!(json["problem"], serde_json::Value::Null);
    let tol = serde_json::to_value(Tolerance::default_for(DType::F16)).unwrap();
    assert_eq!(tol, serde_json::json!({"atol": 4e-3, "rtol": 2e-3}));
}
