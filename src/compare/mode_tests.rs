//! Tests of the comparison modes through [`compare_with`]: verdicts, unit counts, worst
//! elements, problems and report fields on hand-made tensors.

use super::*;
use crate::compare::compare;
use crate::tensor::DType;
use half::{bf16, f16};

fn f32s(shape: &[usize], values: &[f32]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), values.to_vec()).unwrap()
}

fn policy(mode: Mode, outlier_fraction: f64) -> Policy {
    Policy {
        tolerance: Tolerance::default_for(DType::F32),
        mode,
        outlier_fraction,
    }
}

fn ulp(max_ulp: u64) -> Policy {
    policy(Mode::Ulp { max_ulp }, 0.0)
}

fn topk(k: usize, axis: i64, ordered: bool) -> Policy {
    policy(Mode::TopK { k, axis, ordered }, 0.0)
}

fn cosine(min_cosine: f64, axis: Option<i64>) -> Policy {
    policy(Mode::Cosine { min_cosine, axis }, 0.0)
}

// ---------- outlier fraction ----------

#[test]
fn allowed_outliers_boundaries() {
    assert_eq!(allowed_outliers(1000, 0.001), 1);
    assert_eq!(allowed_outliers(999, 0.001), 0);
    assert_eq!(allowed_outliers(1999, 0.001), 1);
    assert_eq!(allowed_outliers(2000, 0.001), 2);
    assert_eq!(
        allowed_outliers(100, 0.29),
        29,
        "29/100 <= 0.29 though 0.29*100 < 29"
    );
    assert_eq!(allowed_outliers(10, 0.3), 3);
    assert_eq!(allowed_outliers(3, 1.0 / 3.0), 1);
    assert_eq!(allowed_outliers(7, 0.0), 0);
    assert_eq!(allowed_outliers(7, 1.0), 7);
    assert_eq!(allowed_outliers(0, 0.5), 0);
    for total in 1..200u64 {
        for f in [0.001, 0.01, 0.05, 0.1, 0.25, 0.333, 0.5, 0.9] {
            let m = allowed_outliers(total, f);
            assert!(m as f64 / total as f64 <= f, "{total} {f}");
            assert!(
                m == total || (m + 1) as f64 / total as f64 > f,
                "{total} {f}"
            );
        }
    }
}

#[test]
fn allclose_outliers_pass_at_the_boundary_and_fail_past_it() {
    let expected: Vec<f32> = (0..1000).map(|i| i as f32).collect();
    let mut actual = expected.clone();
    actual[10] += 1.0;
    let e = f32s(&[1000], &expected);
    let one_off = f32s(&[1000], &actual);
    let strict = compare_with(&e, &one_off, &policy(Mode::AllClose, 0.0));
    assert_eq!((strict.verdict, strict.mismatched), (Verdict::Fail, 1));
    let forgiving = compare_with(&e, &one_off, &policy(Mode::AllClose, 0.001));
    assert_eq!(
        (forgiving.verdict, forgiving.mismatched),
        (Verdict::Pass, 1)
    );
    assert_eq!(forgiving.worst_index, Some(vec![10]));
    actual[20] += 1.0;
    let two_off = f32s(&[1000], &actual);
    let past = compare_with(&e, &two_off, &policy(Mode::AllClose, 0.001));
    assert_eq!((past.verdict, past.mismatched), (Verdict::Fail, 2));
}

#[test]
fn allclose_policy_without_outliers_is_plain_compare() {
    let e = f32s(&[2, 2], &[1.0, 2.0, 3.0, f32::NAN]);
    let a = f32s(&[2, 2], &[1.0, 2.5, 3.0, f32::NAN]);
    let tol = Tolerance::default_for(DType::F32);
    assert_eq!(
        compare_with(&e, &a, &Policy::allclose(tol)),
        compare(&e, &a, tol)
    );
}

#[test]
fn a_nan_is_never_an_outlier() {
    let e = f32s(&[4], &[1.0, 2.0, 3.0, 4.0]);
    let a = f32s(&[4], &[1.0, 2.0, 3.0, f32::NAN]);
    for p in [
        policy(Mode::AllClose, 1.0),
        policy(Mode::Ulp { max_ulp: u64::MAX }, 1.0),
        policy(
            Mode::Cosine {
                min_cosine: 0.0,
                axis: None,
            },
            1.0,
        ),
        policy(
            Mode::TopK {
                k: 1,
                axis: 0,
                ordered: false,
            },
            1.0,
        ),
    ] {
        let c = compare_with(&e, &a, &p);
        assert_eq!(c.verdict, Verdict::Fail, "{}", p.mode.name());
        assert_eq!(c.worst_index, Some(vec![3]), "{}", p.mode.name());
        assert!(c.problem.as_deref().unwrap_or("").contains("NaN"), "{c:?}");
        assert_eq!(c.max_abs_err, f64::INFINITY);
    }
}

// ---------- ulp ----------

/// `expected` and one step up from each, in every float dtype.
#[test]
fn one_ulp_passes_max_ulp_1_and_fails_max_ulp_0_in_every_float_dtype() {
    let values = [1.0f64, -2.5, 0.0, 1000.0];
    let cases: Vec<(Tensor, Tensor)> = vec![
        (
            Tensor::from_vec(vec![4], values.to_vec()).unwrap(),
            Tensor::from_vec(vec![4], values.iter().map(|v| v.next_up()).collect()).unwrap(),
        ),
        (
            Tensor::from_vec(vec![4], values.iter().map(|&v| v as f32).collect()).unwrap(),
            Tensor::from_vec(
                vec![4],
                values.iter().map(|&v| (v as f32).next_up()).collect(),
            )
            .unwrap(),
        ),
        (
            Tensor::from_vec(vec![4], values.iter().map(|&v| f16::from_f64(v)).collect()).unwrap(),
            Tensor::from_vec(
                vec![4],
                values
                    .iter()
                    .map(|&v| f16::from_f64(v))
                    .map(|h| {
                        let bits = h.to_bits();
                        // next up: +1 on the magnitude for positives, -1 for negatives,
                        // the smallest subnormal from zero.
                        f16::from_bits(if bits & 0x8000 != 0 {
                            bits - 1
                        } else {
                            bits + 1
                        })
                    })
                    .collect(),
            )
            .unwrap(),
        ),
        (
            Tensor::from_vec(vec![4], values.iter().map(|&v| bf16::from_f64(v)).collect()).unwrap(),
            Tensor::from_vec(
                vec![4],
                values
                    .iter()
                    .map(|&v| bf16::from_f64(v))
                    .map(|h| {
                        let bits = h.to_bits();
                        bf16::from_bits(if bits & 0x8000 != 0 {
                            bits - 1
                        } else {
                            bits + 1
                        })
                    })
                    .collect(),
            )
            .unwrap(),
        ),
    ];
    for (e, a) in cases {
        let exact = compare_with(&e, &a, &ulp(0));
        assert_eq!(
            (exact.verdict, exact.mismatched, exact.total, exact.max_ulp),
            (Verdict::Fail, 4, 4, Some(1)),
            "{}",
            e.dtype()
        );
        assert_eq!(exact.worst_index, Some(vec![0]), "first of the ties");
        let one = compare_with(&e, &a, &ulp(1));
        assert_eq!(
            (one.verdict, one.mismatched),
            (Verdict::Pass, 0),
            "{}",
            e.dtype()
        );
        let json = serde_json::to_value(&one).unwrap();
        assert_eq!(json["mode"], "ulp");
        assert_eq!(json["ulp_limit"], 1);
        assert_eq!(json["max_ulp"], 1);
    }
}

#[test]
fn signed_zeros_are_zero_ulp_apart_and_tiny_values_count_steps() {
    let e = f32s(&[3], &[0.0, -0.0, -f32::from_bits(1)]);
    let a = f32s(&[3], &[-0.0, 0.0, f32::from_bits(1)]);
    let c = compare_with(&e, &a, &ulp(2));
    assert_eq!(
        (c.verdict, c.max_ulp, c.worst_index),
        (Verdict::Pass, Some(2), Some(vec![2]))
    );
    let strict = compare_with(&e, &a, &ulp(1));
    assert_eq!((strict.verdict, strict.mismatched), (Verdict::Fail, 1));
    // Allclose with zero tolerance agrees that ±0 are equal.
    let exact = compare(&e, &a, Tolerance::EXACT);
    assert_eq!(exact.mismatched, 1);
}

#[test]
fn ulp_worst_is_the_largest_distance_not_the_largest_error() {
    // 1e6 + 1 ulp (0.0625) is a larger error than 1.0 + 3 ulp, but fewer ulps.
    let e = f32s(&[2], &[1e6, 1.0]);
    let a = f32s(
        &[2],
        &[1e6f32.next_up(), f32::from_bits(1.0f32.to_bits() + 3)],
    );
    let c = compare_with(&e, &a, &ulp(2));
    assert_eq!(
        (c.verdict, c.mismatched, c.max_ulp),
        (Verdict::Fail, 1, Some(3))
    );
    assert_eq!(c.worst_index, Some(vec![1]));
    assert_eq!(c.expected, Some(1.0));
    assert_eq!(c.max_abs_err, 0.0625, "allclose statistics stay");
}

#[test]
fn ulp_outliers_and_integers() {
    let e = Tensor::from_vec(vec![4], vec![10i32, 20, 30, 40]).unwrap();
    let a = Tensor::from_vec(vec![4], vec![11i32, 20, 33, 40]).unwrap();
    let c = compare_with(&e, &a, &policy(Mode::Ulp { max_ulp: 1 }, 0.25));
    assert_eq!(
        (c.verdict, c.mismatched, c.max_ulp),
        (Verdict::Pass, 1, Some(3))
    );
    let c = compare_with(&e, &a, &policy(Mode::Ulp { max_ulp: 0 }, 0.25));
    assert_eq!((c.verdict, c.mismatched), (Verdict::Fail, 2));
}

// ---------- cosine ----------

#[test]
fn cosine_passes_a_scaled_embedding_that_allclose_fails() {
    let e = f32s(&[2, 4], &[0.1, 0.2, 0.3, 0.4, -1.0, 0.5, 0.25, 0.0]);
    let scaled: Vec<f32> = [0.1f32, 0.2, 0.3, 0.4, -1.0, 0.5, 0.25, 0.0]
        .iter()
        .map(|v| v * 1.01)
        .collect();
    let a = f32s(&[2, 4], &scaled);
    assert_eq!(
        compare(&e, &a, Tolerance::default_for(DType::F32)).verdict,
        Verdict::Fail
    );
    let whole = compare_with(&e, &a, &cosine(0.999, None));
    assert_eq!(
        (whole.verdict, whole.mismatched, whole.total),
        (Verdict::Pass, 0, 1)
    );
    assert!((whole.cosine.unwrap() - 1.0).abs() < 1e-12);
    let rows = compare_with(&e, &a, &cosine(0.999, Some(-1)));
    assert_eq!((rows.verdict, rows.total), (Verdict::Pass, 2));
    let json = serde_json::to_value(&rows).unwrap();
    assert_eq!(json["mode"], "cosine");
    assert_eq!(json["min_cosine"], 0.999);
    assert_eq!(json["axis"], -1);
    assert!(json.get("k").is_none() && json.get("max_ulp").is_none());
}

#[test]
fn cosine_per_row_names_the_first_failing_row() {
    // Row 1 is orthogonal to its reference: similarity 0.
    let e = f32s(&[3, 2], &[1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
    let a = f32s(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
    let c = compare_with(&e, &a, &cosine(0.5, Some(1)));
    assert_eq!((c.verdict, c.mismatched, c.total), (Verdict::Fail, 1, 3));
    assert_eq!(c.cosine, Some(0.0), "the lowest row");
    assert_eq!(c.worst_index, Some(vec![1, 0]));
    let problem = c.problem.unwrap();
    assert!(problem.contains("1 of 3 rows along axis 1"), "{problem}");
    assert!(problem.contains("first at [1, :]"), "{problem}");
    // One row of three forgiven.
    let forgiven = compare_with(
        &e,
        &a,
        &policy(
            Mode::Cosine {
                min_cosine: 0.5,
                axis: Some(1),
            },
            0.34,
        ),
    );
    assert_eq!((forgiven.verdict, forgiven.problem), (Verdict::Pass, None));
    // The whole tensor: cos = 2/3.
    let whole = compare_with(&e, &a, &cosine(0.7, None));
    assert_eq!(whole.verdict, Verdict::Fail);
    assert!((whole.cosine.unwrap() - 2.0 / 3.0).abs() < 1e-15);
    assert!(whole.problem.unwrap().contains("below min_cosine 0.7"));
}

#[test]
fn cosine_axis_out_of_range_is_an_output_problem() {
    let e = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let c = compare_with(&e, &e, &cosine(0.9, Some(2)));
    assert_eq!(c.verdict, Verdict::Fail);
    assert_eq!(c.mismatched, c.total);
    let problem = c.problem.unwrap();
    assert!(
        problem.contains("axis 2 is out of range for an output of rank 2"),
        "{problem}"
    );
}

// ---------- topk ----------

#[test]
fn topk_passes_changed_values_with_the_same_argmax_and_fails_a_swap() {
    let e = f32s(&[2, 3], &[0.1, 0.7, 0.2, 2.0, 1.0, 0.5]);
    let same_argmax = f32s(&[2, 3], &[0.3, 0.5, 0.2, 2.5, 1.0, -3.0]);
    assert_eq!(
        compare(&e, &same_argmax, Tolerance::default_for(DType::F32)).verdict,
        Verdict::Fail
    );
    let c = compare_with(&e, &same_argmax, &topk(1, -1, false));
    assert_eq!(
        (c.verdict, c.mismatched, c.total, c.topk_agreement),
        (Verdict::Pass, 0, 2, Some(1.0))
    );
    assert_eq!(c.problem, None);
    let swapped = f32s(&[2, 3], &[0.1, 0.7, 0.2, 1.0, 2.0, 0.5]);
    let c = compare_with(&e, &swapped, &topk(1, -1, false));
    assert_eq!(
        (c.verdict, c.mismatched, c.total, c.topk_agreement),
        (Verdict::Fail, 1, 2, Some(0.5))
    );
    assert_eq!(
        c.worst_index,
        Some(vec![1, 0]),
        "the expected argmax of slice 1"
    );
    assert_eq!((c.expected, c.actual), (Some(2.0), Some(1.0)));
    let problem = c.problem.clone().unwrap();
    assert_eq!(
        problem,
        "top-1 sets along axis 1 differ in 1 of 2 slices; first at [1, :]: expected [0], got [1]"
    );
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["mode"], "topk");
    assert_eq!(
        (
            json["k"].clone(),
            json["axis"].clone(),
            json["ordered"].clone()
        ),
        (1.into(), (-1).into(), false.into())
    );
    assert_eq!(json["topk_agreement"], 0.5);
    assert_eq!(json["outlier_fraction"], 0.0);
    // Half the slices forgiven.
    let half = compare_with(
        &e,
        &swapped,
        &policy(
            Mode::TopK {
                k: 1,
                axis: -1,
                ordered: false,
            },
            0.5,
        ),
    );
    assert_eq!(half.verdict, Verdict::Pass);
}

#[test]
fn topk_along_axis_0_and_ordered() {
    // Columns of [3, 2]: column 0 = [1, 3, 2], column 1 = [5, 4, 6].
    let e = f32s(&[3, 2], &[1.0, 5.0, 3.0, 4.0, 2.0, 6.0]);
    let a = f32s(&[3, 2], &[1.0, 5.5, 2.0, 4.0, 3.0, 6.0]);
    let sets = compare_with(&e, &a, &topk(2, 0, false));
    assert_eq!((sets.verdict, sets.total), (Verdict::Pass, 2));
    let lists = compare_with(&e, &a, &topk(2, 0, true));
    assert_eq!((lists.verdict, lists.mismatched), (Verdict::Fail, 1));
    assert_eq!(lists.worst_index, Some(vec![1, 0]));
    assert!(lists.problem.unwrap().contains("top-2 lists along axis 0"));
}

#[test]
fn topk_settings_that_do_not_fit_are_output_problems() {
    let e = f32s(&[2, 3], &[0.0; 6]);
    let too_many = compare_with(&e, &e, &topk(4, -1, false));
    assert_eq!(too_many.verdict, Verdict::Fail);
    assert!(too_many
        .problem
        .unwrap()
        .contains("k = 4 exceeds the length 3 of axis -1"));
    let bad_axis = compare_with(&e, &e, &topk(1, -3, false));
    assert!(bad_axis
        .problem
        .unwrap()
        .contains("axis -3 is out of range"));
    let scalar = Tensor::from_vec(vec![], vec![1.0f32]).unwrap();
    let c = compare_with(&scalar, &scalar, &topk(1, -1, false));
    assert_eq!(c.verdict, Verdict::Fail);
}

#[test]
fn topk_with_ties_follows_the_lower_index() {
    let e = f32s(&[4], &[0.5, 0.5, 0.1, 0.0]);
    // Tied in the reference, tied in the candidate: both pick position 0.
    let c = compare_with(&e, &f32s(&[4], &[0.4, 0.4, 0.1, 0.0]), &topk(1, 0, false));
    assert_eq!(c.verdict, Verdict::Pass);
    // The tie broken upward at position 1: a different argmax.
    let c = compare_with(&e, &f32s(&[4], &[0.4, 0.41, 0.1, 0.0]), &topk(1, 0, false));
    assert_eq!(c.verdict, Verdict::Fail);
}

#[test]
fn modes_stamp_missing_and_mismatched_layouts() {
    let e = f32s(&[2, 3], &[0.0; 6]);
    let p = topk(1, -1, false);
    let missing = OutputComparison::missing_with(&e, &p);
    assert_eq!((missing.verdict, missing.mode), (Verdict::Fail, p.mode));
    let other = f32s(&[3, 2], &[0.0; 6]);
    let c = compare_with(&e, &other, &p);
    assert_eq!(
        (c.verdict, c.mode, c.mismatched, c.total),
        (Verdict::Fail, p.mode, 6, 6)
    );
    assert!(c.problem.unwrap().contains("shape"));
}

// ---------- share of tolerance used ----------

#[test]
fn tolerance_used_is_the_worst_units_share_in_every_mode() {
    let used = |e: &Tensor, a: &Tensor, p: &Policy| compare_with(e, a, p).tolerance_used;
    let tol = Tolerance {
        atol: 1e-5,
        rtol: 1e-4,
    };
    // allclose: the example, rel error 1.33e-4 "above rtol" yet within atol + rtol·|e|.
    let e = f32s(&[2], &[0.03, 2.0]);
    let a = f32s(&[2], &[0.03 + 4e-6, 2.0 + 1e-4]);
    let c = compare_with(&e, &a, &Policy::allclose(tol));
    assert_eq!(c.verdict, Verdict::Pass);
    assert!((c.max_rel_err - 1.333e-4).abs() < 1e-6, "{}", c.max_rel_err);
    // Worst share: 4e-6 / (1e-5 + 3e-6) = 0.3077 (the other: 1e-4 / 2.1e-4 = 0.476).
    let share = c.tolerance_used.unwrap();
    assert!((share - 1e-4 / 2.1e-4).abs() < 1e-3, "{share}");
    // Equal tensors use nothing; a NaN against a number is unbounded.
    assert_eq!(used(&e, &e, &Policy::allclose(tol)), Some(0.0));
    let nan = f32s(&[2], &[f32::NAN, 2.0]);
    assert_eq!(used(&e, &nan, &Policy::allclose(tol)), Some(f64::INFINITY));
    // ulp: the largest distance over the limit.
    let one = f32s(&[1], &[1.0]);
    let next = f32s(&[1], &[f32::from_bits(1.0f32.to_bits() + 3)]);
    assert_eq!(used(&one, &next, &ulp(4)), Some(0.75));
    assert_eq!(used(&one, &next, &ulp(0)), Some(f64::INFINITY));
    // cosine: (1 - cosine) over (1 - min_cosine); a scaled vector uses nothing.
    let v = f32s(&[2], &[1.0, 0.0]);
    let w = f32s(&[2], &[1.0, 1.0]);
    let c = used(&v, &w, &cosine(0.5, None)).unwrap();
    assert!((c - (1.0 - 0.5f64.sqrt()) / 0.5).abs() < 1e-6, "{c}");
    assert_eq!(
        used(&v, &f32s(&[2], &[3.0, 0.0]), &cosine(0.99, None)),
        Some(0.0)
    );
    // topk: disagreeing slices over those allowed.
    let e = f32s(&[2, 3], &[0.1, 0.7, 0.2, 0.5, 0.3, 0.2]);
    let a = f32s(&[2, 3], &[0.1, 0.7, 0.2, 0.3, 0.5, 0.2]);
    assert_eq!(used(&e, &a, &topk(1, 1, false)), Some(f64::INFINITY));
    assert_eq!(used(&e, &e, &topk(1, 1, false)), Some(0.0));
    let lenient = policy(
        Mode::TopK {
            k: 1,
            axis: 1,
            ordered: false,
        },
        0.5,
    );
    assert_eq!(used(&e, &a, &lenient), Some(1.0));
}
