//! Throughput of the comparison engine on large tensors, in bytes of input read (both
//! tensors). Plain memory copies of the same f32 data (one core, all cores; throughput
//! in bytes copied) are measured alongside as the yardstick for the "≥ 50% of
//! memory-copy bandwidth" target. The report's error histogram pass is measured on the
//! same f32 pair, to show what it adds to a comparison, and so is the per-case pass of
//! the dataset metrics (docs/gates.md): its sums alone, and with class statistics on
//! the same data read as 16384 rows of 1024 classes.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use half::f16;
use parity::compare::metrics::{ClassAxis, OutputStats};
use parity::compare::{compare, error_histogram, Tolerance};
use parity::tensor::{DType, Tensor};
use rayon::prelude::*;
use std::hint::black_box;

const F32_ELEMENTS: usize = 16 << 20;
const F16_ELEMENTS: usize = 1 << 20;

/// Deterministic values in [-1, 1) from a xorshift generator.
fn values(n: usize) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The reference and a copy with a tiny relative perturbation (within tolerance).
fn pair(n: usize) -> (Vec<f32>, Vec<f32>) {
    let expected = values(n);
    let actual = expected.iter().map(|&v| v * (1.0 + 1e-6)).collect();
    (expected, actual)
}

fn tensors<T: parity::tensor::Element>(expected: Vec<T>, actual: Vec<T>) -> (Tensor, Tensor) {
    let shape = vec![expected.len()];
    match (
        Tensor::from_vec(shape.clone(), expected),
        Tensor::from_vec(shape, actual),
    ) {
        (Ok(e), Ok(a)) => (e, a),
        _ => panic!("benchmark tensors are well-formed"),
    }
}

/// A copy split over all cores, the best bandwidth a plain copy reaches here.
fn parallel_copy(dst: &mut [f32], src: &[f32]) {
    let chunk = 1 << 16;
    dst.par_chunks_mut(chunk)
        .zip(src.par_chunks(chunk))
        .for_each(|(d, s)| d.copy_from_slice(s));
}

fn compare_f32(c: &mut Criterion) {
    let (expected, actual) = pair(F32_ELEMENTS);
    let mut group = c.benchmark_group("f32_16M");
    group.sample_size(20);
    group.throughput(Throughput::Bytes((F32_ELEMENTS * 4) as u64));
    let mut copy = vec![0f32; F32_ELEMENTS];
    group.bench_function("memcpy", |b| {
        b.iter(|| copy.copy_from_slice(black_box(&expected)))
    });
    group.bench_function("memcpy_all_cores", |b| {
        b.iter(|| parallel_copy(&mut copy, black_box(&expected)))
    });
    let (e, a) = tensors(expected, actual);
    let tol = Tolerance::default_for(DType::F32);
    group.throughput(Throughput::Bytes((2 * F32_ELEMENTS * 4) as u64));
    group.bench_function("compare", |b| {
        b.iter(|| compare(black_box(&e), black_box(&a), tol))
    });
    // The report's separate pass (suite runner, `parity compare`), for its extra cost.
    group.bench_function("error_histogram", |b| {
        b.iter(|| error_histogram(black_box(&e), black_box(&a), tol))
    });
    // The dataset metrics' per-case statistics (every `check` case, every output).
    group.bench_function("dataset_stats", |b| {
        b.iter(|| OutputStats::measure(black_box(&e), black_box(&a), None, None))
    });
    let shape = vec![F32_ELEMENTS / 1024, 1024];
    let (e, a) = match (e.reshaped(shape.clone()), a.reshaped(shape)) {
        (Ok(e), Ok(a)) => (e, a),
        _ => panic!("benchmark tensors reshape"),
    };
    let classes = Some(ClassAxis::default());
    group.bench_function("dataset_stats_classes", |b| {
        b.iter(|| OutputStats::measure(black_box(&e), black_box(&a), classes, None))
    });
    group.finish();
}

fn compare_f16(c: &mut Criterion) {
    let (expected, actual) = pair(F16_ELEMENTS);
    let narrow = |v: Vec<f32>| v.into_iter().map(f16::from_f32).collect::<Vec<_>>();
    let (e, a) = tensors(narrow(expected), narrow(actual));
    let tol = Tolerance::default_for(DType::F16);
    let mut group = c.benchmark_group("f16_1M");
    group.throughput(Throughput::Bytes((2 * F16_ELEMENTS * 2) as u64));
    group.bench_function("compare", |b| {
        b.iter(|| compare(black_box(&e), black_box(&a), tol))
    });
    group.finish();
}

criterion_group!(benches, compare_f32, compare_f16);
criterion_main!(benches);
