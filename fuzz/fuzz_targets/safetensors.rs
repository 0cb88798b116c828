//! `.safetensors` files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = parity::formats::safetensors::parse(data, Path::new("test_data_set_0.safetensors"));
});
