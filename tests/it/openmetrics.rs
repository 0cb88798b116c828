//! `--format openmetrics` of `check`, `bench` and `data drift`, parsed by a real
//! OpenMetrics parser (`prometheus_client.openmetrics.parser` from the repository's
//! `.venv`, installed by `scripts/setup.sh --test`); every parsed value must equal the
//! one in the JSON report of the same run.

use crate::common::{json, models, parity, root};
use serde_json::Value;
use std::path::Path;

const PARSE: &str = r#"
import json, sys
try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError as e:
    sys.stderr.write(f"{e}: run scripts/setup.sh --test\n")
    sys.exit(3)
families = []
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    families.append({"name": f.name, "type": f.type, "unit": f.unit,
                     "samples": [{"name": s.name, "labels": s.labels, "value": s.value}
                                 for s in f.samples]})
print(json.dumps(families))
"#;

/// The parsed families of an OpenMetrics text; panics with the parser's message when
/// the text is not valid OpenMetrics.
fn parse(text: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let python = root().join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(PARSE)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh --test)", python.display()));
    assert!(
        out.status.success(),
        "the parser refused the text: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// The value of the sample `name` whose labels include every pair of `labels`.
fn value(families: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<f64> = families
        .iter()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .filter(|s| s["name"] == name && labels.iter().all(|(k, v)| s["labels"][k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert_eq!(hits.len(), 1, "{name} {labels:?}: {hits:?}");
    hits[0]
}

fn family<'a>(families: &'a [Value], name: &str) -> &'a Value {
    families
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

#[test]
fn check_metrics_equal_the_json_report() {
    let suite = models().join("mlp").display().to_string();
    let args = [
        "check",
        &suite,
        "--backend",
        "ort-cpu",
        "--backend",
        "tract-cpu",
    ];
    let report = json(&parity(&[&args[..], &["--format", "json"]].concat()));
    let o = parity(&[&args[..], &["--format", "openmetrics"]].concat());
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.ends_with("# EOF\n"));
    let families = parse(&o.stdout);
    assert_eq!(value(&families, "parity_check_verdict", &[]), 0.0);
    assert_eq!(
        value(&families, "parity_check_cases", &[("verdict", "pass")]),
        6.0
    );
    assert_eq!(
        family(&families, "parity_check_case_latency_seconds")["unit"],
        "seconds"
    );
    for case in report["cases"].as_array().unwrap() {
        let id = [
            ("suite", case["suite"].as_str().unwrap()),
            ("case", case["case"].as_str().unwrap()),
            ("backend", case["backend"].as_str().unwrap()),
        ];
        assert_eq!(value(&families, "parity_check_case_verdict", &id), 0.0);
        for out in case["outputs"].as_array().unwrap() {
            let mut labels = id.to_vec();
            labels.push(("output", out["name"].as_str().unwrap()));
            for (metric, field) in [
                ("parity_check_output_max_abs_error", "max_abs_err"),
                ("parity_check_output_max_rel_error", "max_rel_err"),
                ("parity_check_output_mismatched", "mismatched"),
                ("parity_check_output_units", "total"),
            ] {
                assert_eq!(
                    value(&families, metric, &labels),
                    out[field].as_f64().unwrap(),
                    "{metric} {labels:?}"
                );
            }
        }
    }
    // Latencies: the same run rendered from its JSON by `merge`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
    let merged = parity(&[
        "merge",
        &file.display().to_string(),
        "--format",
        "openmetrics",
    ]);
    let families = parse(&merged.stdout);
    for case in report["cases"].as_array().unwrap() {
        let id = [
            ("case", case["case"].as_str().unwrap()),
            ("backend", case["backend"].as_str().unwrap()),
        ];
        let seconds = value(&families, "parity_check_case_latency_seconds", &id);
        assert!((seconds * 1000.0 - case["latency_ms"].as_f64().unwrap()).abs() < 1e-12);
    }
}

#[test]
fn bench_metrics_equal_the_saved_json() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("bench.json");
    let model = models().join("mlp").display().to_string();
    let o = parity(&[
        "bench",
        &model,
        "--backend",
        "ort-cpu",
        "--warmup",
        "1",
        "--min-queries",
        "30",
        "--min-duration",
        "0",
        "--format",
        "openmetrics",
        "--save-baseline",
        &saved.display().to_string(),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let families = parse(&o.stdout);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let r = &report["results"][0];
    let labels = [
        ("backend", "ort-cpu"),
        ("scenario", "single-stream"),
        ("batch", "1"),
    ];
    let latency = family(&families, "parity_bench_latency_seconds");
    assert_eq!(latency["type"], "summary");
    assert_eq!(latency["unit"], "seconds");
    for (q, field) in [
        ("0.5", "p50"),
        ("0.9", "p90"),
        ("0.95", "p95"),
        ("0.99", "p99"),
        ("0.999", "p999"),
    ] {
        let mut l = labels.to_vec();
        l.push(("quantile", q));
        let parsed = value(&families, "parity_bench_latency_seconds", &l);
        assert_eq!(
            parsed,
            r["latency_ms"][field].as_f64().unwrap() / 1000.0,
            "quantile {q}"
        );
    }
    assert_eq!(
        value(&families, "parity_bench_latency_seconds_count", &labels),
        r["queries"].as_f64().unwrap()
    );
    assert_eq!(
        value(
            &families,
            "parity_bench_throughput_queries_per_second",
            &labels
        ),
        r["throughput_per_s"].as_f64().unwrap()
    );
    assert_eq!(value(&families, "parity_bench_error", &labels), 0.0);
}

fn write_csv(path: &Path, shift: f64, seed: u64) {
    let mut rng = parity::tensor::random::SplitMix64::stream(seed, 0, 0);
    let mut text = String::from("a,\"b \"\"q\"\" \\x\"\n");
    for (x, y) in rng.normals(2000).chunks(2).map(|p| (p[0], p[1])) {
        text += &format!("{},{y}\n", x + shift);
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn drift_metrics_equal_the_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let (r, c) = (dir.path().join("ref.csv"), dir.path().join("cur.csv"));
    write_csv(&r, 0.0, 1);
    write_csv(&c, 0.5, 2);
    let (r, c) = (r.display().to_string(), c.display().to_string());
    let report = json(&parity(&["data", "drift", &r, &c, "--format", "json"]));
    let o = parity(&["data", "drift", &r, &c, "--format", "openmetrics"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let families = parse(&o.stdout);
    assert_eq!(
        value(&families, "parity_drift_features_drifted", &[]),
        report["summary"]["drifted"].as_f64().unwrap()
    );
    let features = report["features"].as_array().unwrap();
    // The second column's name holds quotes and a backslash: escaped, parsed back whole.
    assert_eq!(features[1]["name"], "b \"q\" \\x");
    for f in features {
        let labels = [("feature", f["name"].as_str().unwrap()), ("kind", "input")];
        for (metric, field) in [
            ("parity_drift_psi", "psi"),
            ("parity_drift_psi_threshold", "psi_threshold"),
            ("parity_drift_ks_statistic", "ks_statistic"),
            ("parity_drift_ks_p_value", "ks_p_value"),
            ("parity_drift_js_distance", "js_distance"),
            ("parity_drift_js_threshold", "js_threshold"),
        ] {
            assert_eq!(
                value(&families, metric, &labels),
                f[field].as_f64().unwrap(),
                "{metric}"
            );
        }
        let drifted = f64::from(u8::from(f["drifted"].as_bool().unwrap()));
        assert_eq!(value(&families, "parity_drift_drifted", &labels), drifted);
    }
}

#[test]
fn verbs_without_metrics_refuse_openmetrics() {
    let model = models().join("mlp").display().to_string();
    for args in [
        vec!["inspect", &model, "--format", "openmetrics"],
        vec![
            "data",
            "validate",
            &model,
            &model,
            "--format",
            "openmetrics",
        ],
    ] {
        crate::common::assert_clean_error(
            &parity(&args),
            "invalid value 'openmetrics' for '--format <FORMAT>' [possible values: text, json]",
        );
    }
}
