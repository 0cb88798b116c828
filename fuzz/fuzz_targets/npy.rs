//! NumPy `.npy` files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let _ = parity::formats::npy::parse(data.to_vec(), Path::new("input_0.npy"));
});
