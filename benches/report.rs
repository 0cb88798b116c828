//! Time to render a realistic report in each output format: 3 suites × 100 cases ×
//! 3 backends = 900 case rows, 2 outputs each (1,800 comparisons). About 5% of the cases
//! fail on one output (a mismatch found by the real comparison engine) and 1% could not
//! be run (an unsupported op), so every renderer also writes its failure details.

use criterion::{criterion_group, criterion_main, Criterion};
use parity::compare::{compare, error_histogram, Tolerance};
use parity::report::{
    html, junit, markdown, text, BackendInfo, CaseId, CaseReport, Environment, OutputReport, Report,
};
use parity::tensor::{DType, Tensor};
use std::hint::black_box;

const SUITES: usize = 3;
const CASES: usize = 100;
const BACKENDS: [&str; 3] = ["onnxruntime", "candle", "tract"];
const OUTPUTS: [&str; 2] = ["logits", "hidden_state"];
const ELEMENTS: usize = 256;

/// A small deterministic tensor; `seed` varies the values between cases.
fn expected(seed: u64) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..ELEMENTS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn tensor(values: Vec<f32>) -> Tensor {
    match Tensor::from_vec(vec![4, ELEMENTS / 4], values) {
        Ok(t) => t,
        Err(e) => panic!("benchmark tensor: {e}"),
    }
}

/// One output: within tolerance (a tiny relative drift), or out of it at a few elements.
fn output(name: &str, seed: u64, fail: bool) -> OutputReport {
    let e = expected(seed);
    let mut a: Vec<f32> = e
        .iter()
        .enumerate()
        .map(|(i, &v)| v * (1.0 + 1e-7 * (i % 7) as f32))
        .collect();
    if fail {
        for i in (seed as usize % 17..ELEMENTS).step_by(37) {
            a[i] += 0.01 * (1 + i % 3) as f32;
        }
    }
    let (e, a) = (tensor(e), tensor(a));
    let tol = Tolerance::default_for(DType::F32);
    OutputReport {
        name: name.to_string(),
        comparison: compare(&e, &a, tol),
        error_histogram: error_histogram(&e, &a, tol),
        stats: None,
        gated: false,
    }
}

fn report() -> Report {
    let backends = BACKENDS
        .iter()
        .map(|&name| BackendInfo {
            name: name.to_string(),
            version: "1.0.0".to_string(),
            device: "cpu".to_string(),
        })
        .collect();
    let environment = Environment {
        parity: env!("CARGO_PKG_VERSION").to_string(),
        host: "bench-host".to_string(),
        cpu: "AMD EPYC (2 cores)".to_string(),
        gpu: None,
        os: "linux x86_64".to_string(),
        backends,
        skipped_backends: Vec::new(),
    };
    let mut cases = Vec::with_capacity(SUITES * CASES * BACKENDS.len());
    for suite in 0..SUITES {
        for case in 0..CASES {
            for (b, backend) in BACKENDS.iter().enumerate() {
                let n = ((suite * CASES + case) * BACKENDS.len() + b) as u64;
                let id = CaseId {
                    suite: format!("suite_{suite}_resnet_like"),
                    case: format!("data_set_{case:03}"),
                    backend: backend.to_string(),
                    reference: "golden".to_string(),
                };
                if n % 100 == 42 {
                    cases.push(CaseReport::errored(
                        id,
                        "unsupported op: GridSample (opset 20)".to_string(),
                        Some("GridSample".to_string()),
                    ));
                    continue;
                }
                let outputs = OUTPUTS
                    .iter()
                    .enumerate()
                    .map(|(o, name)| output(name, n * 2 + o as u64, o == 1 && n % 20 == 7))
                    .collect();
                let latency = 1.0 + (n % 13) as f64 * 0.37;
                cases.push(CaseReport::compared(
                    id,
                    Some(latency),
                    Some("cpu".to_string()),
                    outputs,
                ));
            }
        }
    }
    Report::new(environment, cases)
}

fn render(c: &mut Criterion) {
    let report = report();
    let s = &report.summary;
    assert_eq!(s.cases, SUITES * CASES * BACKENDS.len());
    assert!(s.failed > 0 && s.errors > 0 && s.passed > s.failed);
    let timestamp = "2026-11-25T19:11:00";
    let style = text::Style { color: false };
    eprintln!(
        "report: {} cases ({} passed, {} failed, {} errors); rendered bytes: json {}, text {}, \
         text verbose {}, junit {}, markdown {}, html {}",
        s.cases,
        s.passed,
        s.failed,
        s.errors,
        report.to_json().len(),
        text::render(&report, style, false).len(),
        text::render(&report, style, true).len(),
        junit::render(&report, timestamp).len(),
        markdown::render(&report).len(),
        html::render(&report).len(),
    );

    let mut group = c.benchmark_group(format!("report_{}_cases", s.cases));
    group.bench_function("to_json", |b| b.iter(|| black_box(&report).to_json()));
    group.bench_function("text", |b| {
        b.iter(|| text::render(black_box(&report), style, false))
    });
    group.bench_function("text_verbose", |b| {
        b.iter(|| text::render(black_box(&report), style, true))
    });
    group.bench_function("junit", |b| {
        b.iter(|| junit::render(black_box(&report), timestamp))
    });
    group.bench_function("html", |b| b.iter(|| html::render(black_box(&report))));
    group.bench_function("markdown", |b| {
        b.iter(|| markdown::render(black_box(&report)))
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
