//! Throughput of parity's tensor-file readers, in bytes of file read, for one f32 tensor
//! of 16M elements (64 MiB) and one of 1k elements (4 KiB) in every format parity reads:
//! `.pb` (TensorProto with `raw_data`, and with packed `float_data`), `.npy`, `.npz`
//! (one stored member, as `np.savez` writes) and `.safetensors`. A plain
//! `std::fs::read` of the `.npy` file, in the same group, is the ceiling.
//!
//! The files are written into a temporary directory when the benchmark starts, with
//! parity's own writers where it has them (`.pb` raw_data, `.npy`) and with the `prost`,
//! `zip` and `safetensors` crates otherwise. Every timed read hits the page cache.
//!
//! `.npy` files of at least `MMAP_THRESHOLD` bytes are memory-mapped, so `read_tensor`
//! on the large one returns before the data is touched; `npy_touch` also reads one byte
//! of every 4 KiB page, the page-fault cost a later comparison pays.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use parity::formats::onnx_pb::TensorProto;
use parity::formats::{read_tensor, read_tensor_map, write_tensor, MMAP_THRESHOLD};
use parity::tensor::{DType, Tensor};
use prost::Message;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};

const LARGE: usize = 16 << 20;
const SMALL: usize = 1 << 10;
const PAGE: usize = 4096;

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

/// The same tensor in every format, side by side in one directory.
struct Files {
    raw_pb: PathBuf,
    float_data_pb: PathBuf,
    npy: PathBuf,
    npz: PathBuf,
    safetensors: PathBuf,
}

fn write_files(dir: &Path, n: usize) -> Files {
    let data = values(n);
    let tensor = match Tensor::from_vec(vec![n], data.clone()) {
        Ok(t) => t,
        Err(e) => panic!("benchmark tensor: {e}"),
    };
    let files = Files {
        raw_pb: dir.join(format!("raw_{n}.pb")),
        float_data_pb: dir.join(format!("float_data_{n}.pb")),
        npy: dir.join(format!("x_{n}.npy")),
        npz: dir.join(format!("x_{n}.npz")),
        safetensors: dir.join(format!("x_{n}.safetensors")),
    };
    let check = |r: parity::Result<()>| r.unwrap_or_else(|e| panic!("writing bench input: {e}"));
    check(write_tensor(&files.raw_pb, "x", &tensor));
    check(write_tensor(&files.npy, "x", &tensor));

    let proto = TensorProto {
        dims: vec![n as i64],
        data_type: Some(DType::F32.onnx_code()),
        name: Some("x".to_string()),
        float_data: data,
        ..Default::default()
    };
    std::fs::write(&files.float_data_pb, proto.encode_to_vec()).expect("writing float_data .pb");

    let npy_bytes = std::fs::read(&files.npy).expect("reading back the .npy");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("x.npy", stored).expect("zip member");
    zip.write_all(&npy_bytes).expect("zip member data");
    let npz = zip.finish().expect("zip archive").into_inner();
    std::fs::write(&files.npz, npz).expect("writing .npz");

    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        tensor.shape().to_vec(),
        tensor.bytes(),
    )
    .expect("safetensors view");
    let st = safetensors::serialize([("x", view)], None).expect("safetensors serialize");
    std::fs::write(&files.safetensors, st).expect("writing .safetensors");
    files
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// One byte of every page, so that every page of a mapped tensor is faulted in.
fn touch(bytes: &[u8]) -> u8 {
    bytes.iter().step_by(PAGE).fold(0u8, |a, &b| a ^ b)
}

fn one(path: &Path) -> Tensor {
    match read_tensor(path) {
        Ok((_, t)) => t,
        Err(e) => panic!("{e}"),
    }
}

fn many(path: &Path) -> Vec<(String, Tensor)> {
    match read_tensor_map(path) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn bench(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, files: &Files) {
    // Each reader must give back the tensor that was written before it is timed.
    let expected = one(&files.raw_pb);
    for t in [
        one(&files.float_data_pb),
        one(&files.npy),
        many(&files.npz).remove(0).1,
        many(&files.safetensors).remove(0).1,
    ] {
        assert_eq!((t.shape(), t.bytes()), (expected.shape(), expected.bytes()));
    }

    group.throughput(Throughput::Bytes(size(&files.npy)));
    group.bench_function("fs_read", |b| {
        b.iter(|| std::fs::read(black_box(&files.npy)))
    });
    group.throughput(Throughput::Bytes(size(&files.raw_pb)));
    group.bench_function("pb_raw_data", |b| b.iter(|| one(black_box(&files.raw_pb))));
    group.throughput(Throughput::Bytes(size(&files.float_data_pb)));
    group.bench_function("pb_float_data", |b| {
        b.iter(|| one(black_box(&files.float_data_pb)))
    });
    group.throughput(Throughput::Bytes(size(&files.npy)));
    group.bench_function("npy", |b| b.iter(|| one(black_box(&files.npy))));
    if size(&files.npy) >= MMAP_THRESHOLD {
        group.bench_function("npy_touch", |b| {
            b.iter(|| touch(one(black_box(&files.npy)).bytes()))
        });
    }
    group.throughput(Throughput::Bytes(size(&files.npz)));
    group.bench_function("npz", |b| b.iter(|| many(black_box(&files.npz))));
    group.throughput(Throughput::Bytes(size(&files.safetensors)));
    group.bench_function("safetensors", |b| {
        b.iter(|| many(black_box(&files.safetensors)))
    });
}

fn decode_large(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let files = write_files(dir.path(), LARGE);
    let mut group = c.benchmark_group("decode_f32_16M");
    group.sample_size(20);
    bench(&mut group, &files);
    group.finish();
}

fn decode_small(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let files = write_files(dir.path(), SMALL);
    let mut group = c.benchmark_group("decode_f32_1k");
    bench(&mut group, &files);
    group.finish();
}

criterion_group!(benches, decode_large, decode_small);
criterion_main!(benches);
