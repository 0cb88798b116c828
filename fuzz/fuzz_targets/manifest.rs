//! A suite's `parity.toml`, parsed, validated and asked for every output's rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parity::suite::manifest::Manifest;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = Manifest::parse(text, Path::new("parity.toml")) else {
        return;
    };
    let _ = m.recorded_model_sha256();
    for name in m.outputs.keys().map(String::as_str).chain(["output"]) {
        let _ = (m.rule_for(name), m.tolerance_for(name, Some("ort-cpu")));
        let _ = (m.requires_finite(name), m.skips(name));
    }
});
