//! The candle interpreter's per-node overhead: chains of n element-wise nodes (Add of a
//! constant, then Relu, repeated) on a tiny [1, 16] f32 tensor, where the arithmetic is
//! negligible and the time per run is dispatch, allocation and bookkeeping, and on a
//! [1, 65536] tensor, where it is memory traffic. Throughput is in nodes, so
//! criterion's "elem/s" reads as nodes per second; the time per node is the slope across
//! chain lengths. tract-cpu runs the same models in the same group as the anchor (tract
//! fuses element-wise chains, so it measures what an optimising engine gets for free).
//!
//! Both run single-threaded with the process pinned as `parity --threads 1` pins it
//! (`parity::backend::pin_process_threads`).
//!
//!     cargo bench --bench candle_nodes

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use parity::backend::candle::CandleCpu;
use parity::backend::tract::TractCpu;
use parity::backend::{Backend, LoadOptions};
use parity::formats::onnx_pb::{
    tensor_shape_proto::{dimension::Value as Dim, Dimension},
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use parity::tensor::Tensor;
use prost::Message;
use std::hint::black_box;
use std::path::Path;

fn value_info(name: &str, width: usize) -> ValueInfoProto {
    let dims = [1, width]
        .iter()
        .map(|&d| Dimension {
            value: Some(Dim::DimValue(d as i64)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto { dim: dims }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `y = relu(... relu(x + c) + c ...)` with `nodes` nodes in all, written to `path`.
fn chain(path: &Path, nodes: usize, width: usize) {
    let mut node = Vec::with_capacity(nodes);
    let mut prev = "x".to_string();
    for i in 0..nodes {
        let out = if i + 1 == nodes {
            "y".to_string()
        } else {
            format!("t{i}")
        };
        let (op, inputs) = if i % 2 == 0 {
            ("Add", vec![prev.clone(), "c".into()])
        } else {
            ("Relu", vec![prev.clone()])
        };
        node.push(NodeProto {
            input: inputs,
            output: vec![out.clone()],
            op_type: Some(op.into()),
            ..Default::default()
        });
        prev = out;
    }
    let c = TensorProto {
        name: Some("c".into()),
        dims: vec![1, width as i64],
        data_type: Some(1),
        float_data: (0..width).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect(),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            node,
            input: vec![value_info("x", width)],
            output: vec![value_info("y", width)],
            initializer: vec![c],
            ..Default::default()
        }),
        ..Default::default()
    };
    std::fs::write(path, model.encode_to_vec()).expect("write model");
}

fn nodes(c: &mut Criterion) {
    parity::backend::pin_process_threads(Some(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let options = LoadOptions {
        threads: Some(1),
        ..Default::default()
    };
    for (label, width) in [("tiny", 16usize), ("wide", 65536)] {
        let mut group = c.benchmark_group(format!("chain_{label}"));
        let x = Tensor::from_vec(
            vec![1, width],
            (0..width)
                .map(|i| (i % 5) as f32 - 2.0)
                .collect::<Vec<f32>>(),
        )
        .expect("input");
        for n in [2usize, 16, 64] {
            let path = dir.path().join(format!("{label}-{n}.onnx"));
            chain(&path, n, width);
            group.throughput(Throughput::Elements(n as u64));
            let backends: [(&str, &dyn Backend); 2] =
                [("candle-cpu", &CandleCpu), ("tract-cpu", &TractCpu)];
            for (name, backend) in backends {
                let mut session = backend.load(&path, &options).expect("load");
                let inputs = [x.clone()];
                group.bench_function(format!("{name}/{n}"), |b| {
                    b.iter(|| black_box(session.run(&inputs).expect("run")))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, nodes);
criterion_main!(benches);
