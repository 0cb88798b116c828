//! A KServe v2 / Open Inference Protocol inference response body: JSON, or the binary
//! extension's JSON header (its length from `Inference-Header-Content-Length`) plus data.
//! The first two bytes pick the header length: `0xFFFF` means no such header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parity::backend::kserve::protocol::response;

fuzz_target!(|data: &[u8]| {
    let Some((len, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let json_len = match u16::from_le_bytes(*len) {
        u16::MAX => None,
        n => Some(usize::from(n)),
    };
    let _ = response(body, json_len);
});
