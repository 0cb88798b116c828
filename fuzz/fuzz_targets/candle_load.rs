//! The candle interpreter's model loading: decode, opset and op validation, initializers
//! and `Constant` nodes, topological order (without the panic guard of a real load).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parity::backend::candle::plan_unguarded(data, None);
});
