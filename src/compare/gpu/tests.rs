//! The GPU path without a GPU: the kernels' partials, computed by the CPU emulation and
//! folded on the host, give exactly the CPU comparison.

use super::cases::{agreement, cases, FLOAT_DTYPES};
use super::*;
use crate::compare::{compare_cpu, Verdict};

/// The GPU path's result, with the device replaced by the emulation.
fn emulated(expected: &Tensor, actual: &Tensor, tol: Tolerance) -> OutputComparison {
    let partials = emulate_partials(expected, actual, tol).unwrap();
    assert_eq!(partials.len(), expected.numel().div_ceil(BLOCK_ELEMS));
    compared(expected, actual, tol, &fold(&partials, expected.numel()))
}

#[test]
fn folded_partials_agree_with_the_cpu_on_every_case() {
    for dtype in FLOAT_DTYPES {
        for case in cases(dtype, 3 * BLOCK_ELEMS + 101) {
            let cpu = compare_cpu(&case.expected, &case.actual, case.tol);
            let gpu = emulated(&case.expected, &case.actual, case.tol);
            if let Err(e) = agreement(&cpu, &gpu) {
                panic!("{}: {e}", case.name);
            }
            // The maxima are exact, not merely close.
            assert_eq!(
                cpu.max_abs_err.to_bits(),
                gpu.max_abs_err.to_bits(),
                "{}",
                case.name
            );
            assert_eq!(
                cpu.max_rel_err.to_bits(),
                gpu.max_rel_err.to_bits(),
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn the_cases_cover_what_they_claim() {
    let by_name = |name: &str| {
        let case = cases(DType::F32, 1000)
            .into_iter()
            .find(|c| c.name == format!("{name} f32"))
            .unwrap();
        emulated(&case.expected, &case.actual, case.tol)
    };
    let b = BLOCK_ELEMS;
    assert_eq!(by_name("ties").worst_index, Some(vec![b - 1]));
    assert_eq!(by_name("ties").mismatched, 6);
    assert_eq!(by_name("zero tolerance").worst_index, Some(vec![b + 9]));
    let non_finite = by_name("non-finite");
    assert_eq!(non_finite.worst_index, Some(vec![b + 260]));
    assert_eq!(non_finite.mismatched, 5);
    assert_eq!(non_finite.max_abs_err, f64::INFINITY);
    let matching = by_name("matching non-finite");
    assert_eq!(matching.worst_index, Some(vec![17]));
    assert_eq!(matching.problem, None);
    assert_eq!(by_name("equal").verdict, Verdict::Pass);
    assert_eq!(by_name("equal").worst_index, Some(vec![0]));
    assert_eq!(by_name("random").mismatched, 1);
}

#[test]
fn f64_overflow_case_agrees() {
    let case = cases(DType::F64, 10)
        .into_iter()
        .find(|c| c.name == "overflow f64")
        .unwrap();
    let gpu = emulated(&case.expected, &case.actual, case.tol);
    assert_eq!(gpu.worst_index, Some(vec![BLOCK_ELEMS + 3]));
    assert_eq!(gpu.max_abs_err, f64::INFINITY);
}

#[test]
fn half_widening_matches_the_half_crate_for_every_bit_pattern() {
    // The kernel widens f16 bits by hand; the emulation uses `half`. The two agree when
    // the kernel's formula agrees with `half` on all 65536 patterns.
    for bits in 0..=u16::MAX {
        let want = f16::from_bits(bits).to_f64();
        let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
        let exponent = i32::from((bits >> 10) & 0x1f);
        let mantissa = f64::from(bits & 0x3ff);
        let got = match exponent {
            0 => sign * mantissa * 2f64.powi(-24),
            31 if mantissa == 0.0 => sign * f64::INFINITY,
            31 => f64::NAN,
            _ => sign * (1024.0 + mantissa) * 2f64.powi(exponent - 25),
        };
        assert!(
            got == want || (got.is_nan() && want.is_nan()),
            "{bits:#06x}"
        );
    }
}

#[test]
fn fold_counts_elements_per_block() {
    let n = 2 * BLOCK_ELEMS + 5;
    let e = Tensor::from_vec(vec![n], vec![1.0f32; n]).unwrap();
    let partials = emulate_partials(&e, &e, Tolerance::EXACT).unwrap();
    let summary = fold(&partials, n);
    assert_eq!(summary.elements, n as u64);
    assert_eq!(summary.mismatched(), 0);
    assert_eq!(fold(&[], 0).elements, 0);
}

#[test]
fn routing_keeps_integers_and_small_tensors_on_the_cpu() {
    let ints = Tensor::from_vec(vec![3], vec![1i32, 2, 3]).unwrap();
    assert!(matches!(
        routed_scan(&ints, &ints, Tolerance::EXACT),
        Routed::Cpu | Routed::Refused(_)
    ));
    let small = Tensor::from_vec(vec![2], vec![1.0f32, 2.0]).unwrap();
    if device_setting() == Ok(DeviceSetting::Auto) {
        assert!(matches!(
            routed_scan(&small, &small, Tolerance::EXACT),
            Routed::Cpu
        ));
    }
}

#[test]
fn the_kernel_source_declares_what_the_host_assumes() {
    for k in KERNELS {
        assert!(KERNEL_SOURCE.contains(&format!("void __launch_bounds__(THREADS, 3)\n{k}(")));
    }
    assert!(KERNEL_SOURCE.contains(&format!("#define THREADS {THREADS}\n")));
    let per_thread = BLOCK_ELEMS / THREADS;
    assert!(KERNEL_SOURCE.contains(&format!("#define PER_THREAD {per_thread}\n")));
    assert!(KERNEL_SOURCE.contains(&format!("#define PARTIAL_WORDS {PARTIAL_WORDS}\n")));
}
