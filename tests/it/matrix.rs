//! Integration tests of `parity check --matrix`: the cross-backend N×N tables in JSON
//! (against docs/report.schema.json) and in text, on the bundled suites.

use crate::common::*;

use serde_json::Value;
use std::path::Path;

fn validate(report: &Value) {
    crate::common::assert_schema(report, "report.schema.json");
}

const BACKENDS: [&str; 3] = ["ort-cpu", "candle-cpu", "tract-cpu"];

/// The three CPU backends, named explicitly so the matrix is 3×3 on any machine.
fn check_args<'a>(models: &'a str, format: &'a str) -> Vec<&'a str> {
    let mut args = vec!["check", models, "--matrix", "--format", format];
    for b in BACKENDS {
        args.extend(["--backend", b]);
    }
    args
}

fn cell(table: &Value, i: usize, j: usize) -> Option<f64> {
    table[i][j].as_f64()
}

#[test]
fn json_matrix_covers_every_suite_output_with_small_errors() {
    let dir = models();
    let o = parity(&check_args(dir.to_str().unwrap(), "json"));
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    let report = json(&o);
    validate(&report);
    let matrix = report["matrix"].as_array().expect("matrix array");
    let found: Vec<(String, String)> = matrix
        .iter()
        .map(|m| {
            let suite = m["suite"].as_str().unwrap_or("");
            let suite = Path::new(suite).file_name().unwrap().to_string_lossy();
            (
                suite.into_owned(),
                m["output"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [
        ("cnn", "logits"),
        ("lm", "logits"),
        ("mlp", "logits"),
        ("mlp", "probs"),
        ("transformer", "hidden"),
    ]
    .iter()
    .map(|(s, o)| (s.to_string(), o.to_string()))
    .collect();
    assert_eq!(found, want);
    for m in matrix {
        let names: Vec<&str> = m["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap())
            .collect();
        assert_eq!(names, BACKENDS);
        for key in ["max_rel_err", "max_abs_err"] {
            let table = &m[key];
            assert_eq!(table.as_array().unwrap().len(), 3, "{key} of {m}");
            for i in 0..3 {
                assert_eq!(table[i].as_array().unwrap().len(), 3, "{key} of {m}");
                assert_eq!(cell(table, i, i), Some(0.0), "{key} diagonal of {m}");
                for j in 0..3 {
                    let v = cell(table, i, j)
                        .unwrap_or_else(|| panic!("{key}[{i}][{j}] is not a number in {m}"));
                    assert!(
                        v.is_finite() && (0.0..1e-2).contains(&v),
                        "{key}[{i}][{j}] = {v}"
                    );
                }
            }
        }
        let abs = &m["max_abs_err"];
        for i in 0..3 {
            for j in 0..3 {
                assert_eq!(
                    cell(abs, i, j),
                    cell(abs, j, i),
                    "abs error not symmetric: {m}"
                );
            }
        }
    }
}

#[test]
fn json_has_no_matrix_without_the_flag() {
    let dir = models().join("mlp");
    let o = parity(&[
        "check",
        dir.to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    let report = json(&o);
    assert!(report.get("matrix").is_none(), "{report}");
}

#[test]
fn text_prints_a_table_per_output_after_the_rows() {
    let dir = models().join("mlp");
    let o = parity(&check_args(dir.to_str().unwrap(), "text"));
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    for output in ["logits", "probs"] {
        let at = lines
            .iter()
            .position(|l| {
                l.starts_with("max rel error (share of tolerance used), ")
                    && l.contains(&format!(" {output} "))
            })
            .unwrap_or_else(|| panic!("no table for {output}:\n{}", o.stdout));
        let header = lines[at + 1];
        assert!(header.starts_with("REFERENCE \\ CANDIDATE"), "{header}");
        for b in BACKENDS {
            assert!(header.contains(b), "{header}");
        }
        for (k, b) in BACKENDS.iter().enumerate() {
            let row = lines[at + 2 + k];
            assert!(row.starts_with(b), "row {k}: {row}");
            // Three cells: the diagonal a bare 0, the others `REL (SHARE%)`.
            assert_eq!(row.split_whitespace().count(), 6, "row {k}: {row}");
            assert_eq!(row.matches("%)").count(), 2, "row {k}: {row}");
        }
    }
    // The rows come first, the summary line last.
    let first_table = o.stdout.find("max rel error (").unwrap();
    assert!(o.stdout[..first_table].contains("test_data_set_0"));
    assert!(lines.last().unwrap().contains("cases:"), "{}", o.stdout);
}

#[test]
fn matrix_includes_the_reference_backend() {
    let dir = models().join("cnn");
    let mut args = check_args(dir.to_str().unwrap(), "json");
    args.extend(["--reference", "ort-cpu"]);
    let o = parity(&args);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    let report = json(&o);
    validate(&report);
    // ort-cpu is the reference: 2 rows per case, but still 3 backends in the matrix.
    assert_eq!(report["summary"]["cases"], 6);
    let m = &report["matrix"][0];
    assert_eq!(m["backends"].as_array().unwrap().len(), 3);
    for i in 0..3 {
        for j in 0..3 {
            assert!(cell(&m["max_rel_err"], i, j).is_some(), "{m}");
        }
    }
}
