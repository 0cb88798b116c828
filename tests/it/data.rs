//! `parity data validate` and `parity data drift` on real files: the bundled suites
//! pass validation; wrong dtype, rank, a missing input, NaN, out-of-range values and
//! bad table cells are each reported on one line naming the file and the position;
//! drift flags a shifted feature and channel, and the model's shifted predictions.

use crate::common::{assert_clean_error, json, models, parity};
use parity::formats::npy;
use parity::tensor::random::SplitMix64;
use parity::tensor::Tensor;
use std::path::{Path, PathBuf};

fn write_f32(path: &Path, shape: Vec<usize>, values: Vec<f32>) -> String {
    npy::write(path, &Tensor::from_vec(shape, values).unwrap()).unwrap();
    path.display().to_string()
}

/// A copy of the mlp model (input `x`: f32 [batch, 64]) with value ranges declared.
fn ranged_mlp(dir: &Path) -> PathBuf {
    let suite = dir.join("mlp");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::copy(models().join("mlp/model.onnx"), suite.join("model.onnx")).unwrap();
    std::fs::write(
        suite.join("parity.toml"),
        "[inputs.x]\nmin = -10.0\nmax = 10.0\n",
    )
    .unwrap();
    suite
}

#[test]
fn bundled_suites_pass_validation() {
    for m in ["mlp", "cnn", "transformer"] {
        let suite = models().join(m);
        let s = suite.display().to_string();
        let o = parity(&["data", "validate", &s, &s]);
        assert_eq!(o.code, 0, "{m}: {}{}", o.stdout, o.stderr);
        assert!(o.stdout.contains("3 data set(s) checked"), "{}", o.stdout);
        assert!(o.stdout.contains(": 0 problem(s)"), "{}", o.stdout);
    }
}

#[test]
fn validate_names_file_input_and_position_of_each_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let model = ranged_mlp(tmp.path()).display().to_string();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("dtype")).unwrap();
    let wrong_dtype = d.join("dtype/x.npy");
    npy::write(
        &wrong_dtype,
        &Tensor::from_vec(vec![1, 64], vec![0f64; 64]).unwrap(),
    )
    .unwrap();
    let wrong_rank = write_f32(&d.join("x.npy"), vec![64], vec![0.0; 64]);
    // A lone .npy named after no input is the input of this one-input model.
    let lone = write_f32(&d.join("y.npy"), vec![1, 64], vec![0.0; 64]);
    let mut values = vec![0.5f32; 128];
    values[64 + 5] = f32::NAN; // [1, 5]
    values[3] = 20.0; // [0, 3]
    let bad_values = write_f32(&d.join("input_0.npy"), vec![2, 64], values);
    let o = parity(&[
        "data",
        "validate",
        &model,
        &wrong_dtype.display().to_string(),
        &wrong_rank,
        &lone,
        &bad_values,
    ]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let expect = [
        format!("{}: input `x`: dtype f64, the model declares f32", wrong_dtype.display()),
        format!("{wrong_rank}: input `x`: rank 1 (shape [64]), the model declares rank 2 ([batch, 64])"),
        format!("{bad_values}: input `x` at [0, 3]: 20 is above max = 10"),
        format!("{bad_values}: input `x` at [1, 5]: NaN (set allow_nan = true in [inputs.NAME] of parity.toml if it is meant)"),
    ];
    for line in &expect {
        assert!(
            o.stdout.lines().any(|l| l == line),
            "missing line `{line}` in:\n{}",
            o.stdout
        );
    }
    assert!(o.stdout.contains("4 data set(s) checked"), "{}", o.stdout);
    assert!(!o.stdout.contains(&lone), "{}", o.stdout);
    assert!(o.stdout.contains(": 4 problem(s)"), "{}", o.stdout);
    // The same problems as JSON, with kind and position.
    let j = json(&parity(&[
        "data",
        "validate",
        &model,
        &bad_values,
        "--format",
        "json",
    ]));
    let kinds: Vec<(&str, &str)> = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["kind"].as_str().unwrap(), p["position"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("out_of_range", "[0, 3]"), ("nan", "[1, 5]")]);
}

#[test]
fn validate_checks_table_cells_and_symbolic_dims() {
    let tmp = tempfile::tempdir().unwrap();
    let model = models().join("mlp").display().to_string();
    let header: Vec<String> = (0..64).map(|i| format!("f{i}")).collect();
    let row = |v: &str| vec![v.to_string(); 64].join(",");
    let mut bad = vec!["0.5".to_string(); 64];
    bad[3] = String::new();
    bad[7] = "abc".to_string();
    let csv = tmp.path().join("rows.csv");
    std::fs::write(
        &csv,
        format!("{}\n{}\n{}\n", header.join(","), row("0.1"), bad.join(",")),
    )
    .unwrap();
    let maps: Vec<String> = (0..64).map(|i| format!("f{i}=x")).collect();
    let mut args = vec!["data", "validate", &model];
    let csv_s = csv.display().to_string();
    args.push(&csv_s);
    for m in &maps {
        args.extend(["--map", m]);
    }
    let o = parity(&args);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains(&format!(
            "{csv_s}: input `x` at row 2, column `f3`: missing value"
        )),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains(&format!(
            "{csv_s}: input `x` at row 2, column `f7`: `abc` is not a number"
        )),
        "{}",
        o.stdout
    );
    // Without a mapping no column is named `x`: the input is missing.
    let o = parity(&["data", "validate", &model, &csv_s]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout
            .contains("input `x`: no column feeds this model input"),
        "{}",
        o.stdout
    );
    // A mapping to an input the model lacks is a usage error.
    assert_clean_error(
        &parity(&["data", "validate", &model, &csv_s, "--map", "f0=nope"]),
        "no input `nope`",
    );
}

#[test]
fn unreadable_data_is_a_clean_error() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.npy");
    std::fs::write(&bad, b"not npy").unwrap();
    let model = models().join("mlp").display().to_string();
    assert_clean_error(
        &parity(&["data", "validate", &model, &bad.display().to_string()]),
        "bad.npy",
    );
    let toml = tmp.path().join("m");
    std::fs::create_dir_all(&toml).unwrap();
    std::fs::copy(models().join("mlp/model.onnx"), toml.join("model.onnx")).unwrap();
    std::fs::write(toml.join("parity.toml"), "[inputs.z]\nmax = 1.0\n").unwrap();
    let o = parity(&[
        "data",
        "validate",
        &toml.display().to_string(),
        &models().join("mlp").display().to_string(),
    ]);
    assert_clean_error(&o, "[inputs.z] names no input");
    // Nothing to compare is not "no drift".
    let (a, header_only) = (tmp.path().join("a.csv"), tmp.path().join("h.csv"));
    std::fs::write(&a, "a,b\n1,2\n3,4\n").unwrap();
    std::fs::write(&header_only, "a,b\n").unwrap();
    let o = parity(&[
        "data",
        "drift",
        &a.display().to_string(),
        &header_only.display().to_string(),
    ]);
    assert_clean_error(&o, "no feature has values on both sides to compare");
}

/// Checks a drift report against docs/drift.schema.json.
fn assert_drift_schema(report: &serde_json::Value) {
    crate::common::assert_schema(report, "drift.schema.json");
}

fn normals(seed: u64, n: usize, shift: f64) -> Vec<f64> {
    SplitMix64::stream(seed, 0, 0)
        .normals(n)
        .iter()
        .map(|v| v + shift)
        .collect()
}

#[test]
fn drift_flags_a_shifted_column_and_not_a_stable_one() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, a: &[f64], b: &[f64]| {
        let mut text = String::from("a,b,label\n");
        for (x, y) in a.iter().zip(b) {
            text += &format!("{x},{y},cat\n");
        }
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let n = 10_000;
    let reference = write("ref.csv", &normals(1, n, 0.0), &normals(2, n, 0.0));
    let current = write("cur.csv", &normals(3, n, 0.1), &normals(4, n, 0.0));
    let o = parity(&["data", "drift", &reference, &current, "--format", "json"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let j = json(&o);
    assert_drift_schema(&j);
    assert_eq!(j["schema"], "parity.drift/v1");
    assert_eq!(j["verdict"], "fail");
    let f = j["features"].as_array().unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0]["name"], "a");
    assert_eq!(f[0]["drifted"], true);
    assert_eq!(f[0]["exceeded"], serde_json::json!(["psi", "ks"]));
    assert_eq!(f[1]["name"], "b");
    assert_eq!(f[1]["drifted"], false, "{}", f[1]);
    assert_eq!(j["skipped"][0]["name"], "label");
    // The same data against itself: no drift, exit 0.
    let o = parity(&["data", "drift", &reference, &reference]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("0 of 2 features drifted"), "{}", o.stdout);
}

#[test]
fn drift_per_channel_and_on_predictions() {
    let tmp = tempfile::tempdir().unwrap();
    let rows = 500;
    // x: f32 [rows, 64] for the mlp; channel 5 shifted by one sigma in the current set.
    let make = |dir: &str, seed: u64, shift: f32| {
        let d = tmp.path().join(dir);
        std::fs::create_dir_all(&d).unwrap();
        let mut v: Vec<f32> = normals(seed, rows * 64, 0.0)
            .iter()
            .map(|&x| x as f32)
            .collect();
        for r in 0..rows {
            v[r * 64 + 5] += shift;
        }
        write_f32(&d.join("input_0.npy"), vec![rows, 64], v);
        d.display().to_string()
    };
    let reference = make("ref", 10, 0.0);
    let current = make("cur", 11, 1.0);
    let model = models().join("mlp").display().to_string();
    let o = parity(&[
        "data",
        "drift",
        &reference,
        &current,
        "--model",
        &model,
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let j = json(&o);
    assert_drift_schema(&j);
    let drifted: Vec<&str> = j["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["drifted"] == true && f["kind"] == "input")
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["x[5]"]);
    let outputs: Vec<&serde_json::Value> = j["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "output")
        .collect();
    assert!(!outputs.is_empty());
    assert!(
        outputs.iter().any(|f| f["drifted"] == true),
        "no output drifted: {outputs:?}"
    );
    assert_eq!(j["backend"], "ort-cpu");
}

#[test]
fn output_drift_on_tables_through_the_column_map() {
    let tmp = tempfile::tempdir().unwrap();
    let header: Vec<String> = (0..64).map(|i| format!("f{i}")).collect();
    let write = |name: &str, seed: u64, shift: f64| {
        let values = normals(seed, 300 * 64, shift);
        let mut text = header.join(",") + "\n";
        for row in values.chunks(64) {
            let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
            text += &(cells.join(",") + "\n");
        }
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let reference = write("ref.csv", 20, 0.0);
    let same = write("same.csv", 21, 0.0);
    let shifted = write("shifted.csv", 22, 2.0);
    let model = models().join("mlp").display().to_string();
    let maps: Vec<String> = (0..64).map(|i| format!("f{i}=x")).collect();
    let run = |current: &str| {
        let mut args = vec!["data", "drift", &reference, current, "--model", &model];
        args.extend(["--backend", "ort-cpu", "--format", "json"]);
        for m in &maps {
            args.extend(["--map", m]);
        }
        let o = parity(&args);
        (o.code, json(&o))
    };
    let outputs_drifted = |j: &serde_json::Value| {
        j["features"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "output" && f["drifted"] == true)
            .count()
    };
    let (code, j) = run(&same);
    assert_eq!(code, 0, "{j}");
    assert_eq!(j["thresholds"]["features"], 64 + 20); // 64 columns + logits/probs [N, 10]
    assert_eq!(outputs_drifted(&j), 0);
    let (code, j) = run(&shifted);
    assert_eq!(code, 1);
    assert!(outputs_drifted(&j) > 0, "{j}");
}
