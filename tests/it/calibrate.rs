//! Integration tests of `parity record --calibrate`: the calibrated tolerances pass every
//! backend, are backed by evidence in `parity.toml`, and catch a 1e-3 relative fault in
//! one element that the default f32 tolerance lets through.

use crate::common::*;

use sha2::Digest;
use std::path::Path;

const BACKENDS: [&str; 3] = ["ort-cpu", "candle-cpu", "tract-cpu"];

fn float(v: &toml::Value) -> f64 {
    v.as_float().unwrap_or_else(|| panic!("not a float: {v}"))
}

/// Records the bundled mlp with its own inputs and calibrated tolerances.
fn record_calibrated(out: &Path) -> Outcome {
    let o = parity(&[
        "record",
        s(&models().join("mlp")),
        "--out",
        s(out),
        "--inputs",
        s(&models().join("mlp")),
        "--calibrate",
    ]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    o
}

#[test]
fn calibrated_tolerances_pass_every_backend_and_carry_their_evidence() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    let o = record_calibrated(&out);
    assert!(
        o.stdout.contains("calibrated tolerances (4x"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("  probs: atol "), "{}", o.stdout);

    let m = manifest(&out);
    let c = &m["calibration"];
    assert_eq!(float(&c["margin"]), 4.0);
    assert_eq!(c["golden"].as_str(), Some("ort-cpu"));
    assert_eq!(c["data_sets"].as_integer(), Some(3));
    let oracle = c["oracle"].as_array().unwrap();
    assert_eq!(oracle[0].as_str(), Some("ort-cpu"), "ORT runs the f64 mlp");
    for output in ["logits", "probs"] {
        let tol = &m["outputs"][output];
        let (atol, rtol) = (float(&tol["atol"]), float(&tol["rtol"]));
        let ev = &c["outputs"][output];
        assert_eq!(ev["dtype"].as_str(), Some("f32"));
        // Never below the floors, far below the defaults on this well-conditioned model.
        assert!(rtol >= float(&ev["rtol_floor"]) && atol >= float(&ev["atol_floor"]));
        assert!(rtol < 1e-4 / 10.0 && atol < 1e-5, "{output}: {atol} {rtol}");
        let sources = ev["sources"].as_table().unwrap();
        for source in ["candle-cpu", "tract-cpu", "f64-oracle"] {
            let e = &sources[source];
            let (max_abs, max_rel) = (float(&e["max_abs_err"]), float(&e["max_rel_err"]));
            // Every observed error, times the margin, fits the tolerance (the largest
            // error's element has |e| <= max |e|).
            assert!(4.0 * max_abs <= atol + rtol * float(&ev["max_abs"]));
            assert!(max_rel < 1e-5, "{output} {source}: {max_rel}");
            assert_eq!(e["nonfinite_mismatches"].as_integer(), Some(0));
            if source != "f64-oracle" {
                assert!(float(&e["vs_oracle_max_rel_err"]) < 1e-5);
            }
        }
    }

    let o = parity(&["check", s(&out), "--format", "json"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let r = json(&o);
    assert_eq!(r["summary"]["passed"], 9, "3 data sets x 3 backends");
    // Each backend is held to its own calibrated tolerance against the goldens.
    for case in r["cases"].as_array().unwrap() {
        let backend = case["backend"].as_str().unwrap();
        for output in case["outputs"].as_array().unwrap() {
            let name = output["name"].as_str().unwrap();
            let own = &m["outputs"][name]["backends"][backend];
            assert_eq!(output["atol"], float(&own["atol"]), "{backend} {name}");
            assert_eq!(output["rtol"], float(&own["rtol"]), "{backend} {name}");
            // Never looser than the pooled tolerance of the output.
            assert!(float(&own["rtol"]) <= float(&m["outputs"][name]["rtol"]));
        }
    }
    // Against another backend there is no golden: the output's own tolerance applies.
    let o = parity(&[
        "check",
        s(&out),
        "--reference",
        "ort-cpu",
        "--backend",
        "ort-cpu",
        "--backend",
        "tract-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    for case in json(&o)["cases"].as_array().unwrap() {
        for output in case["outputs"].as_array().unwrap() {
            let name = output["name"].as_str().unwrap();
            assert_eq!(output["rtol"], float(&m["outputs"][name]["rtol"]), "{name}");
        }
    }
}

#[test]
fn a_backends_own_tolerance_decides_its_verdict_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    record_calibrated(&out);
    // Hold ort-cpu (the recording backend, bitwise equal to its goldens) to exactly 0
    // and tract-cpu too: tract's own rounding now fails it, ort-cpu still passes, and
    // candle-cpu keeps its calibrated tolerance.
    let toml_path = out.join("parity.toml");
    let mut m: toml::Table = toml::from_str(&std::fs::read_to_string(&toml_path).unwrap()).unwrap();
    for output in ["logits", "probs"] {
        let backends = m["outputs"][output]["backends"].as_table().unwrap().clone();
        let mut zero = toml::Table::new();
        zero.insert("atol".into(), 0.0.into());
        zero.insert("rtol".into(), 0.0.into());
        let mut edited = backends.clone();
        edited.insert("ort-cpu".into(), zero.clone().into());
        edited.insert("tract-cpu".into(), zero.into());
        m["outputs"].as_table_mut().unwrap()[output]
            .as_table_mut()
            .unwrap()
            .insert("backends".into(), edited.into());
    }
    std::fs::write(&toml_path, toml::to_string(&m).unwrap()).unwrap();
    let verdict = |backend: &str| {
        let o = parity(&["check", s(&out), "--backend", backend, "--format", "json"]);
        let r = json(&o);
        (o.code, r["cases"][0]["outputs"][0]["rtol"].clone())
    };
    assert_eq!(verdict("ort-cpu"), (0, serde_json::json!(0.0)));
    assert_eq!(
        verdict("tract-cpu").0,
        1,
        "tract-cpu rounds differently from ORT"
    );
    assert_eq!(verdict("candle-cpu").0, 0);
}

#[test]
fn a_small_fault_the_default_misses_is_caught() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    record_calibrated(&out);
    let m = manifest(&out);
    let (atol, rtol) = (
        float(&m["outputs"]["probs"]["atol"]),
        float(&m["outputs"]["probs"]["rtol"]),
    );
    // The element: the largest probability the default f32 tolerance cannot see move by
    // 1e-3 (|e| <= 1e-5 / (1e-3 - 1e-4) = 0.0111), which the calibrated one can.
    let (default_blind, calibrated_sees) = (0.9 * 1e-5 / (1e-3 - 1e-4), atol / (1e-3 - rtol));
    let mut best: Option<(f32, String, usize)> = None;
    for n in 0..3 {
        let rel = format!("test_data_set_{n}/output_1.pb");
        let (_, t) = parity::formats::read_tensor(&out.join(&rel)).unwrap();
        for (i, v) in t.values::<f32>().unwrap().iter().enumerate() {
            let a = f64::from(v.abs());
            if a <= default_blind && best.as_ref().is_none_or(|b| v.abs() > b.0) {
                best = Some((v.abs(), rel.clone(), i));
            }
        }
    }
    let (magnitude, rel, index) = best.expect("a probability below 0.01");
    assert!(
        f64::from(magnitude) > 2.0 * calibrated_sees,
        "{magnitude} vs {calibrated_sees}"
    );

    let path = out.join(&rel);
    let (name, t) = parity::formats::read_tensor(&path).unwrap();
    let mut values = t.values::<f32>().unwrap().into_owned();
    values[index] *= 1.0 + 1e-3;
    let faulty = parity::tensor::Tensor::from_vec(t.shape().to_vec(), values).unwrap();
    let old = format!("{:x}", sha2::Sha256::digest(std::fs::read(&path).unwrap()));
    parity::formats::write_tensor(&path, name.as_deref().unwrap_or("probs"), &faulty).unwrap();
    let new = format!("{:x}", sha2::Sha256::digest(std::fs::read(&path).unwrap()));
    let toml_path = out.join("parity.toml");
    let text = std::fs::read_to_string(&toml_path).unwrap();
    std::fs::write(&toml_path, text.replace(&old, &new)).unwrap();

    for backend in BACKENDS {
        let o = parity(&["check", s(&out), "--backend", backend, "--format", "json"]);
        assert_eq!(o.code, 1, "calibrated, {backend}: {}", o.stderr);
        let r = json(&o);
        let failing: Vec<_> = r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == "fail")
            .collect();
        assert_eq!(failing.len(), 1, "{backend}");
        let probs = failing[0]["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "probs")
            .unwrap();
        assert_eq!(probs["mismatched"], 1, "{backend}");
        let cols = 10;
        let worst = [index / cols, index % cols];
        assert_eq!(probs["worst_index"], serde_json::json!(worst), "{backend}");

        let o = parity(&[
            "check",
            s(&out),
            "--backend",
            backend,
            "--atol",
            "1e-5",
            "--rtol",
            "1e-4",
        ]);
        assert_eq!(o.code, 0, "default tolerance, {backend}: {}", o.stdout);
    }
}

#[test]
fn calibration_options_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let mlp = models().join("mlp");
    let base = ["record", s(&mlp), "--out", s(&out), "--random", "1"];
    let o = parity(&[&base[..], &["--calibrate", "--atol", "1e-3"]].concat());
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("--atol"), "{}", o.stderr);
    let o = parity(&[&base[..], &["--calibrate", "--margin", "0.5"]].concat());
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("not a number ≥ 1"), "{}", o.stderr);
    let o = parity(&[&base[..], &["--margin", "2"]].concat());
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("--calibrate"), "{}", o.stderr);
    assert!(!out.exists());
}

#[test]
fn calibration_proposes_gates_that_correct_implementations_pass() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    let o = record_calibrated(&out);
    assert!(o.stdout.contains("proposed dataset gates"), "{}", o.stdout);
    let m = manifest(&out);
    let proposed = m["calibration"]["outputs"]["probs"]["proposed_gates"]
        .as_array()
        .unwrap_or_else(|| panic!("{m}"));
    let texts: Vec<&str> = proposed.iter().map(|g| g.as_str().unwrap()).collect();
    assert!(texts[0].starts_with("sqnr_db>="), "{texts:?}");
    assert!(texts[1].starts_with("cosine_min>=0.99"), "{texts:?}");
    // probs is [batch, 10]: every backend agrees on every row's class.
    assert_eq!(texts[2], "top1_agreement>=1");
    // Adopted as the suite's gates, they pass on every backend they came from.
    let mut toml = std::fs::read_to_string(out.join("parity.toml")).unwrap();
    let list: Vec<String> = texts.iter().map(|t| format!("\"{t}\"")).collect();
    toml.push_str(&format!("\n[gates]\nprobs = [{}]\n", list.join(", ")));
    std::fs::write(out.join("parity.toml"), toml).unwrap();
    let o = parity(&["check", s(&out), "--format", "json"]);
    let report = crate::common::json(&o);
    assert_eq!(o.code, 0, "{}", report["gates"]);
    assert_eq!(report["summary"]["gates"]["failed"], 0);
    assert!(report["summary"]["gates"]["passed"].as_u64().unwrap() >= 9);
}
