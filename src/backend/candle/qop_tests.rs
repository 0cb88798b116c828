//! ONNX Runtime's QOperator contrib ops (`com.microsoft` QGemm, QLinearAdd, ...) against
//! ONNX Runtime itself: the one-node fixtures of `scripts/make-qop-fixtures.py`
//! (tests/fixtures/qop, outputs recorded with onnxruntime 1.31.1) must match exactly.

use super::ops::microsoft_ops;
use super::CandleCpu;
use crate::backend::testdata::{assert_close, data_set};
use crate::backend::{Backend, LoadOptions};
use std::path::PathBuf;

fn fixture_dirs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qop");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn qoperator_fixtures_match_onnx_runtime_exactly() {
    let dirs = fixture_dirs();
    assert_eq!(
        dirs.len(),
        34,
        "fixture count (regenerate with make-qop-fixtures.py)"
    );
    for dir in &dirs {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let (inputs, expected) = data_set(dir, 0);
        let mut s = CandleCpu
            .load(&dir.join("model.onnx"), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: load: {}", e.message));
        let out = s
            .run(&inputs)
            .unwrap_or_else(|e| panic!("{name}: run: {}", e.message));
        assert_eq!(out.len(), 1, "{name}: output count");
        assert_close(name, &out[0].1, &expected[0], 0.0, 0.0);
    }
}

#[test]
fn every_microsoft_op_has_a_fixture() {
    let dirs = fixture_dirs();
    let names: Vec<String> = dirs
        .iter()
        .filter_map(|d| d.file_name()?.to_str().map(str::to_string))
        .collect();
    for op in microsoft_ops() {
        let prefix = format!("{}_", op.to_lowercase());
        assert!(
            names.iter().any(|n| n.starts_with(&prefix)),
            "{op}: no fixture"
        );
    }
}
