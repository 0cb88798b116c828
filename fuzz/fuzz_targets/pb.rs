//! ONNX `TensorProto` files (`input_0.pb`, `output_0.pb`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = parity::formats::pb::decode(data, Path::new("input_0.pb"));
});
