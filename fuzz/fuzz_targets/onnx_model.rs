//! ONNX `ModelProto`: what `inspect` prints and what suite loading reads (schema,
//! initializers as tensors), and the f64 promotion of `--reference` runs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parity::formats::{onnx_f64, onnx_model, pb};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("model.onnx");
    let Ok(mut model) = onnx_model::decode_model(data, path) else {
        return;
    };
    let _ = onnx_model::summarise(&model, data, path);
    if let Some(graph) = &model.graph {
        for t in &graph.initializer {
            let _ = pb::tensor_from_proto(t, path);
        }
    }
    let _ = onnx_f64::promote_to_f64(&mut model, path);
});
