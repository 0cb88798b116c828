//! NumPy `.npz` archives (zip of `.npy` members, stored or deflated). What reads back is
//! written again with the `.npz` writer (the `exec:` backend's) and must read back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parity::formats::npz;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("test_data_set_0.npz");
    let Ok(tensors) = npz::parse(data, path) else {
        return;
    };
    let Ok(again) = npz::encode(&tensors) else {
        return; // a tensor with no .npy form
    };
    let back = npz::parse(&again, path).expect("a written .npz reads back");
    assert_eq!(back.len(), tensors.len());
    for ((n1, t1), (n2, t2)) in tensors.iter().zip(&back) {
        assert_eq!(n1, n2);
        assert_eq!(
            (t1.dtype(), t1.shape(), t1.bytes()),
            (t2.dtype(), t2.shape(), t2.bytes())
        );
    }
});
