//! Integration tests of the comparison modes in `parity.toml` (`allclose`, `ulp`,
//! `cosine`, `topk`, `skip`, `outlier_fraction`): the `parity` binary on copies of the
//! bundled suites with edited goldens, asserting verdicts, exit codes and report fields.

use crate::common::*;

use parity::formats;
use parity::tensor::Tensor;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Copies a bundled suite into a temporary directory with `manifest` as its parity.toml.
fn suite_with(name: &str, manifest: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_dir(&models().join(name), &dst);
    std::fs::write(dst.join("parity.toml"), manifest).unwrap();
    (tmp, dst)
}

fn rewrite_f32(path: &Path, edit: impl FnOnce(&[usize], &mut Vec<f32>)) {
    let (name, t) = formats::read_tensor(path).unwrap();
    let mut v = t.values::<f32>().unwrap().into_owned();
    edit(t.shape(), &mut v);
    let t = Tensor::from_vec(t.shape().to_vec(), v).unwrap();
    formats::write_tensor(path, &name.unwrap_or_default(), &t).unwrap();
}

/// `check SUITE --backend ort-cpu --format json` plus `extra` flags.
fn check_json(suite: &Path, extra: &[&str]) -> (Outcome, Value) {
    let mut args = vec![
        "check",
        suite.to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let o = parity(&args);
    let r = serde_json::from_str(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", o.stdout, o.stderr));
    (o, r)
}

/// The report entry of output `name` in case `case`.
fn output<'a>(r: &'a Value, case: &str, name: &str) -> &'a Value {
    r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case"] == case)
        .and_then(|c| {
            c["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == name)
        })
        .unwrap_or_else(|| panic!("no output {name} in {case}: {r}"))
}

/// Position of the largest value of each row of a row-major `[rows, cols]` matrix.
fn argmax_rows(v: &[f32], cols: usize) -> Vec<usize> {
    v.chunks(cols)
        .map(|row| (0..cols).fold(0, |best, j| if row[j] > row[best] { j } else { best }))
        .collect()
}

#[test]
fn cosine_passes_a_rescaled_embedding_that_allclose_fails() {
    // The transformer's `hidden` [batch, seq, 64] is embedding-like: scale every golden
    // row by 1.01 (a 1% relative error everywhere) and add a small wobble.
    let edit = |suite: &Path| {
        for set in 0..3 {
            rewrite_f32(
                &suite.join(format!("test_data_set_{set}/output_0.pb")),
                |_, v| {
                    for (i, x) in v.iter_mut().enumerate() {
                        *x = *x * 1.01 + 1e-3 * ((i % 7) as f32 - 3.0);
                    }
                },
            );
        }
    };
    let (_t1, plain) = suite_with("transformer", "");
    edit(&plain);
    let (o, r) = check_json(&plain, &[]);
    assert_eq!(o.code, 1, "allclose must fail: {}", o.stdout);
    assert_eq!(output(&r, "test_data_set_0", "hidden")["mode"], "allclose");

    let manifest = "[outputs.hidden]\nmode = \"cosine\"\nmin_cosine = 0.999\naxis = -1\n";
    let (_t2, suite) = suite_with("transformer", manifest);
    edit(&suite);
    let (o, r) = check_json(&suite, &[]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    // Data set 1 has batch 2 x seq 16: 32 rows of 64.
    let hidden = output(&r, "test_data_set_1", "hidden");
    assert_eq!(hidden["verdict"], "pass");
    assert_eq!(hidden["mode"], "cosine");
    assert_eq!(hidden["min_cosine"], 0.999);
    assert_eq!(hidden["axis"], -1);
    assert_eq!(
        (hidden["mismatched"].clone(), hidden["total"].clone()),
        (json!(0), json!(32))
    );
    let cosine = hidden["cosine"].as_f64().unwrap();
    assert!((0.999..=1.0).contains(&cosine), "{cosine}");
    assert!(
        hidden["max_rel_err"].as_f64().unwrap() > 0.009,
        "allclose statistics stay"
    );

    // The whole-tensor similarity passes too; a stricter one fails and says so.
    let (_t3, whole) = suite_with(
        "transformer",
        "[outputs.hidden]\nmode = \"cosine\"\nmin_cosine = 0.999\n",
    );
    edit(&whole);
    let (o, r) = check_json(&whole, &[]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert_eq!(output(&r, "test_data_set_2", "hidden")["total"], 1);
    let strict = "[outputs.hidden]\nmode = \"cosine\"\nmin_cosine = 1.0\naxis = 2\n";
    let (_t4, strict_suite) = suite_with("transformer", strict);
    edit(&strict_suite);
    let (o, r) = check_json(&strict_suite, &[]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let hidden = output(&r, "test_data_set_0", "hidden");
    let problem = hidden["problem"].as_str().unwrap();
    assert!(
        problem.starts_with("cosine similarity below 1 in ")
            && problem.contains("rows along axis 2; first at [0, 0, :]"),
        "{problem}"
    );
}

#[test]
fn topk_ignores_value_changes_that_keep_the_argmax_and_names_a_swapped_slice() {
    let manifest = "[outputs.logits]\nmode = \"topk\"\nk = 1\n\n[outputs.probs]\nskip = true\n";
    let (_tmp, suite) = suite_with("mlp", manifest);
    // Data set 1: logits [4, 10]. Pull every non-argmax logit down by 0.05 and push the
    // argmax up by 0.05: every value changes, no argmax does.
    let logits = suite.join("test_data_set_1/output_0.pb");
    let mut argmax = Vec::new();
    rewrite_f32(&logits, |shape, v| {
        assert_eq!(shape, [4, 10]);
        argmax = argmax_rows(v, 10);
        for (i, x) in v.iter_mut().enumerate() {
            *x += if argmax[i / 10] == i % 10 {
                0.05
            } else {
                -0.05
            };
        }
    });
    // Even with zero atol/rtol (which decide only allclose outputs) topk passes.
    let (o, r) = check_json(&suite, &["--atol", "0", "--rtol", "0"]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    let out = output(&r, "test_data_set_1", "logits");
    assert_eq!(out["verdict"], "pass");
    assert_eq!(out["mode"], "topk");
    assert_eq!(
        (
            out["k"].clone(),
            out["axis"].clone(),
            out["ordered"].clone()
        ),
        (json!(1), json!(-1), json!(false))
    );
    assert_eq!(
        (out["mismatched"].clone(), out["total"].clone()),
        (json!(0), json!(4))
    );
    assert_eq!(out["topk_agreement"], 1.0);
    assert_eq!(
        (out["atol"].clone(), out["rtol"].clone()),
        (json!(0.0), json!(0.0))
    );
    assert!(out["max_abs_err"].as_f64().unwrap() > 0.049, "{out}");
    // `probs` is skipped: not in the report.
    assert!(r["cases"][0]["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["name"] != "probs"));

    // The same golden under allclose fails.
    let (_t2, allclose) = suite_with("mlp", "[outputs.probs]\nskip = true\n");
    std::fs::copy(&logits, allclose.join("test_data_set_1/output_0.pb")).unwrap();
    let (o, _) = check_json(&allclose, &[]);
    assert_eq!(o.code, 1, "{}", o.stdout);

    // Swap the argmax of row 2 with another position: topk fails and names slice [2, :].
    let mut swapped_to = 0;
    rewrite_f32(&logits, |_, v| {
        let row = &mut v[20..30];
        let best = argmax[2];
        swapped_to = if best == 0 { 1 } else { 0 };
        row.swap(best, swapped_to);
    });
    let (o, r) = check_json(&suite, &[]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let out = output(&r, "test_data_set_1", "logits");
    assert_eq!(out["verdict"], "fail");
    assert_eq!(
        (out["mismatched"].clone(), out["total"].clone()),
        (json!(1), json!(4))
    );
    assert_eq!(out["topk_agreement"], 0.75);
    // The golden now ranks `swapped_to` first; the backend still ranks the old argmax.
    assert_eq!(out["worst_index"], json!([2, swapped_to]));
    assert_eq!(
        out["problem"],
        format!(
            "top-1 sets along axis 1 differ in 1 of 4 slices; first at [2, :]: expected [{}], got [{}]",
            swapped_to, argmax[2]
        )
    );
    // The other data sets are untouched and pass.
    assert_eq!(output(&r, "test_data_set_0", "logits")["verdict"], "pass");

    // Text output: the failing line names the mode's measure, the problem names the slice.
    let o = parity(&["check", suite.to_str().unwrap(), "--backend", "ort-cpu"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout.contains("logits: 1/4 mismatched (25.000%)"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("(top-1 along axis -1, agreement 0.7500)"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("first at [2, :]"), "{}", o.stdout);
    // JUnit (and Markdown, which shares its lines) say the same, not atol/rtol.
    let o = parity(&[
        "check",
        suite.to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "junit",
    ]);
    assert_eq!(o.code, 1);
    assert!(
        o.stdout
            .contains("logits: top-1 sets along axis 1 differ in 1 of 4 slices"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("(top-1 along axis -1, agreement 0.7500)"),
        "{}",
        o.stdout
    );

    // One slice in four forgiven by outlier_fraction = 0.25, not by 0.2.
    for (fraction, code) in [(0.25, 0), (0.2, 1)] {
        let manifest = format!("[outputs.logits]\nmode = \"topk\"\noutlier_fraction = {fraction}\n[outputs.probs]\nmode = \"skip\"\n");
        std::fs::write(suite.join("parity.toml"), manifest).unwrap();
        let (o, r) = check_json(&suite, &[]);
        assert_eq!(o.code, code, "{fraction}: {}", o.stdout);
        assert_eq!(
            output(&r, "test_data_set_1", "logits")["outlier_fraction"],
            fraction
        );
    }
}

#[test]
fn ulp_mode_reports_distances_and_finds_the_perturbed_element() {
    // Backends land within a few tens of ULPs of the float64 reference on the mlp.
    let manifest = "[outputs.logits]\nmode = \"ulp\"\nmax_ulp = 256\n[outputs.probs]\nmode = \"ulp\"\nmax_ulp = 256\n";
    let (_tmp, suite) = suite_with("mlp", manifest);
    let (o, r) = check_json(&suite, &[]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    let probs = output(&r, "test_data_set_0", "probs");
    assert_eq!(
        (probs["mode"].clone(), probs["ulp_limit"].clone()),
        (json!("ulp"), json!(256))
    );
    assert!(probs["max_ulp"].as_u64().unwrap() <= 256, "{probs}");

    // Move one golden probability 1000 representable floats up.
    rewrite_f32(&suite.join("test_data_set_1/output_1.pb"), |_, v| {
        v[13] = f32::from_bits(v[13].to_bits() + 1000);
    });
    let (o, r) = check_json(&suite, &[]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let probs = output(&r, "test_data_set_1", "probs");
    assert_eq!(probs["verdict"], "fail");
    assert_eq!(probs["mismatched"], 1);
    assert_eq!(probs["worst_index"], json!([1, 3]));
    let max = probs["max_ulp"].as_u64().unwrap();
    assert!((1000 - 256..=1000 + 256).contains(&max), "{max}");
}

#[test]
fn an_axis_out_of_range_fails_the_output_with_a_clear_problem() {
    let (_tmp, suite) = suite_with("mlp", "[outputs.logits]\nmode = \"topk\"\naxis = 2\n");
    let (o, r) = check_json(&suite, &[]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let out = output(&r, "test_data_set_0", "logits");
    assert_eq!(out["verdict"], "fail");
    assert_eq!(
        out["problem"],
        "axis 2 is out of range for an output of rank 2 (shape [1,10])"
    );
    assert_eq!(output(&r, "test_data_set_0", "probs")["verdict"], "pass");
    let (_t2, big_k) = suite_with("mlp", "[outputs.logits]\nmode = \"topk\"\nk = 11\n");
    let (o, r) = check_json(&big_k, &[]);
    assert_eq!(o.code, 1);
    let problem = output(&r, "test_data_set_0", "logits")["problem"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        problem.contains("k = 11 exceeds the length 10 of axis -1"),
        "{problem}"
    );
}

#[test]
fn a_key_of_another_mode_is_a_one_line_error_naming_file_and_table() {
    for (manifest, needle) in [
        (
            "[outputs.logits]\nmode = \"ulp\"\nmax_ulp = 2\nk = 1\n",
            "[outputs.logits] k does not apply to mode = \"ulp\" (it belongs to mode = \"topk\")",
        ),
        (
            "[outputs.logits]\nmode = \"topk\"\nk = 0\n",
            "[outputs.logits] k = 0: must be an integer ≥ 1",
        ),
        (
            "[outputs.probs]\nmode = \"cosine\"\nmin_cosine = 2\n",
            "[outputs.probs] min_cosine = 2: must be a number in [0, 1]",
        ),
        (
            "[outputs.probs]\noutlier_fraction = 1.5\n",
            "[outputs.probs] outlier_fraction = 1.5: must be a number in [0, 1]",
        ),
        (
            "[outputs.probs]\nmode = \"exact\"\n",
            "unknown variant `exact`",
        ),
    ] {
        let (_tmp, suite) = suite_with("mlp", manifest);
        let o = parity(&["check", suite.to_str().unwrap(), "--backend", "ort-cpu"]);
        assert_eq!(o.code, 2, "{manifest}: {}{}", o.stdout, o.stderr);
        let lines: Vec<_> = o.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{}", o.stderr);
        let file = suite.join("parity.toml").display().to_string();
        assert!(lines[0].contains(&file), "{}", o.stderr);
        assert!(lines[0].contains(needle), "`{needle}` not in: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    }
}

#[test]
fn reports_with_every_mode_validate_against_the_schema() {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let manifests = [
        "[outputs.logits]\nmode = \"topk\"\nk = 2\nordered = true\n[outputs.probs]\nmode = \"ulp\"\nmax_ulp = 0\n",
        "[outputs.logits]\nmode = \"cosine\"\nmin_cosine = 0.9\naxis = 1\noutlier_fraction = 0.5\n[outputs.probs]\nmode = \"allclose\"\nrtol = 1e-3\noutlier_fraction = 0.001\n",
        "[outputs.logits]\nmode = \"cosine\"\nmin_cosine = 1\n[outputs.probs]\nmode = \"topk\"\naxis = 5\n",
    ];
    for manifest in manifests {
        let (_tmp, suite) = suite_with("mlp", manifest);
        rewrite_f32(&suite.join("test_data_set_1/output_1.pb"), |_, v| {
            v[3] = f32::NAN
        });
        let (_, r) = check_json(&suite, &[]);
        let errors: Vec<_> = validator
            .iter_errors(&r)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{manifest}: {errors:?}");
        let modes: Vec<&str> = r["cases"][0]["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["mode"].as_str().unwrap())
            .collect();
        assert_eq!(modes.len(), 2, "{r}");
    }
}
