//! Tabular data (`data` verbs, tabular suites): CSV when the first byte is even, JSON
//! Lines when odd; then every numeric column turned into a tensor as `check` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parity::data::tabular;
use parity::tensor::DType;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let path = Path::new(if pick % 2 == 0 {
        "data.csv"
    } else {
        "data.jsonl"
    });
    let Ok(table) = tabular::parse(bytes.to_vec(), path) else {
        return;
    };
    let inputs = table.columns.clone();
    let Ok(by_input) = tabular::columns_by_input(&table, &[], &inputs) else {
        return;
    };
    for (_, columns) in by_input {
        for dtype in [DType::F32, DType::I64, DType::Bool] {
            let _ = tabular::to_tensor(&table, &columns, dtype, Some(2));
        }
    }
});
