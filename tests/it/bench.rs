//! Integration tests of `parity bench`: the report of each scenario (valid against
//! docs/bench.schema.json, figures consistent with each other), several backends in one
//! table, CSV, the baseline gate, and bad requests. Budgets are tiny; no test asserts a
//! timing beyond what a 5× margin or the arrival schedule guarantees.

use crate::common::*;

use serde_json::Value;

/// `parity bench models/mlp ARGS --format json` with a small budget (each default
/// unless ARGS sets it); asserts exit 0 and returns the report, validated against the
/// schema.
fn bench_json(args: &[&str]) -> Value {
    let mlp = models().join("mlp");
    let mut all = vec!["bench", s(&mlp), "--format", "json"];
    for (flag, value) in [
        ("--warmup", "2"),
        ("--min-queries", "50"),
        ("--min-duration", "0.1"),
        ("--threads", "1"),
    ] {
        if !args.contains(&flag) {
            all.extend([flag, value]);
        }
    }
    all.extend_from_slice(args);
    let o = parity(&all);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let report = json(&o);
    validate(&report);
    report
}

fn validate(report: &Value) {
    assert_schema(report, "bench.schema.json");
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn single_stream_reports_consistent_figures_for_every_backend() {
    let r = bench_json(&["--backend", "ort-cpu", "--backend", "tract-cpu"]);
    assert_eq!(r["schema"], "parity.bench/v1");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for x in results {
        assert_eq!(x["model_name"], "mlp");
        assert_eq!(x["scenario"], "single-stream");
        assert_eq!(x["threads"], 1);
        let queries = x["queries"].as_u64().unwrap();
        assert!(queries >= 50, "{queries}");
        let l = &x["latency_ms"];
        let order = ["min", "p50", "p90", "p95", "p99", "p999", "max"].map(|k| f(&l[k]));
        assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
        let counts: u64 = x["distribution"]["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert_eq!(counts, queries);
        let tput = f(&x["throughput_per_s"]);
        assert!((tput * f(&x["duration_s"]) - queries as f64).abs() < 1e-6 * queries as f64);
        assert_eq!(x["stability"]["window_p50_ms"].as_array().unwrap().len(), 5);
        assert!(x["peak_rss_bytes"].as_u64().unwrap() > 1 << 20);
    }
    // The second backend's ratio is its p50 over the first's.
    assert_eq!(f(&results[0]["slowdown_vs_first"]), 1.0);
    let ratio = f(&results[1]["latency_ms"]["p50"]) / f(&results[0]["latency_ms"]["p50"]);
    assert!((f(&results[1]["slowdown_vs_first"]) - ratio).abs() < 1e-12);
}

#[test]
fn offline_tiles_the_batch_and_counts_samples() {
    let r = bench_json(&[
        "--backend",
        "ort-cpu",
        "--scenario",
        "offline",
        "--batch",
        "1",
        "--batch",
        "8",
    ]);
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (x, batch) in results.iter().zip([1.0, 8.0]) {
        assert_eq!(x["scenario"], "offline");
        assert_eq!(f(&x["batch"]), batch);
        let ratio = f(&x["samples_per_s"]) / f(&x["throughput_per_s"]);
        assert!((ratio - batch).abs() < 1e-9);
    }
}

#[test]
fn server_keeps_its_schedule_and_find_max_qps_reports_its_search() {
    let r = bench_json(&[
        "--backend",
        "ort-cpu",
        "--scenario",
        "server",
        "--qps",
        "500",
        "--min-queries",
        "100",
        "--min-duration",
        "0.2",
        "--p99-ms",
        "1000",
    ]);
    let x = &r["results"][0];
    let server = &x["server"];
    assert_eq!(f(&server["target_qps"]), 500.0);
    assert_eq!(server["dropped"], 0);
    assert_eq!(server["late"], 0, "nothing takes a second");
    assert_eq!(x["queries"], 100);
    // 100 arrivals spread over 0.2 s: never completed faster than they arrived.
    assert!(f(&server["achieved_qps"]) <= 500.0 * 1.0001);
    let q = &server["queueing_ms"];
    assert!(f(&q["max"]) <= f(&x["latency_ms"]["max"]));

    let r = bench_json(&[
        "--backend",
        "ort-cpu",
        "--scenario",
        "server",
        "--find-max-qps",
        "--p99-ms",
        "50",
        "--min-queries",
        "50",
        "--min-duration",
        "0.1",
    ]);
    let x = &r["results"][0];
    let steps = x["search"].as_array().unwrap();
    assert!(steps.len() >= 2, "{steps:?}");
    let best = steps
        .iter()
        .filter(|s| s["ok"] == true)
        .map(|s| f(&s["target_qps"]))
        .fold(0.0, f64::max);
    assert_eq!(f(&x["server"]["target_qps"]), best);
    for step in steps {
        let ok = f(&step["p99_ms"]) <= 50.0 && step["dropped"] == 0;
        assert_eq!(step["ok"], ok, "{step}");
    }
    assert!(
        steps.iter().any(|s| s["ok"] == false),
        "the search brackets the rate"
    );
}

#[test]
fn csv_has_a_header_and_a_row_per_result() {
    let mlp = models().join("mlp");
    let o = parity(&[
        "bench",
        s(&mlp),
        "--backend",
        "ort-cpu",
        "--min-queries",
        "20",
        "--min-duration",
        "0",
        "--warmup",
        "1",
        "--format",
        "csv",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("model,model_name,backend,"));
    assert_eq!(lines[0].split(',').count(), lines[1].split(',').count());
    assert!(lines[1].contains(",mlp,ort-cpu,"), "{}", lines[1]);
}

#[test]
fn the_gate_passes_an_unchanged_model_and_flags_a_much_slower_one() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.json");
    let r = bench_json(&["--backend", "ort-cpu", "--save-baseline", s(&base)]);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&base).unwrap()).unwrap();
    assert_eq!(
        saved["results"][0]["model_sha256"],
        r["results"][0]["model_sha256"]
    );

    // Unchanged, with a threshold no scheduling noise reaches.
    let r = bench_json(&[
        "--backend",
        "ort-cpu",
        "--baseline",
        s(&base),
        "--threshold-pct",
        "400",
    ]);
    let gate = &r["baseline"];
    assert_eq!(gate["regression"], false);
    assert_eq!(gate["comparisons"].as_array().unwrap().len(), 1);
    assert_eq!(gate["comparisons"][0]["metric"], "p50_ms");

    // 400 extra nodes: far more than 5x the model's own work.
    let variant = tmp.path().join("variant/mlp");
    let made = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts/make-slow-variant.py"))
        .args([s(&models().join("mlp")), s(&variant), "--pairs", "200"])
        .output()
        .expect("run .venv/bin/python (scripts/setup.sh)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let o = parity(&[
        "bench",
        s(&variant),
        "--backend",
        "ort-cpu",
        "--min-queries",
        "50",
        "--min-duration",
        "0.1",
        "--threads",
        "1",
        "--baseline",
        s(&base),
    ]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("REGRESSION mlp ort-cpu single-stream"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("the model changed since the baseline"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.ends_with("-> REGRESSION\n"));
}

#[test]
fn bad_requests_are_one_line_errors() {
    let mlp = models().join("mlp");
    let o = parity(&["bench", s(&mlp), "--scenario", "server"]);
    assert_clean_error(&o, "--scenario server needs --qps");
    let o = parity(&["bench", s(&mlp), "--qps", "10"]);
    assert_clean_error(&o, "are for --scenario server");
    let o = parity(&["bench", s(&mlp), "--concurrency", "2", "--sessions", "3"]);
    assert_clean_error(&o, "--sessions 3 is more than --concurrency 2");
    let o = parity(&["bench", "no/such/model.onnx"]);
    assert_clean_error(&o, "no/such/model.onnx");
    let o = parity(&["bench", s(&mlp), "--min-duration", "1e300"]);
    assert_clean_error(&o, "`1e300` is too large: at most 604800 seconds (7 days)");
    let o = parity(&["bench", s(&mlp), "--max-duration=-1"]);
    assert_clean_error(&o, "`-1` is not a number of seconds ≥ 0");
    let o = parity(&[
        "bench",
        s(&mlp),
        "--scenario",
        "offline",
        "--batch",
        "999999999",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let error = json(&o)["results"][0]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("would take more than the 2147482624 bytes"),
        "{error}"
    );
    // A check report is not a baseline.
    let tmp = tempfile::tempdir().unwrap();
    let report = tmp.path().join("check.json");
    let o = parity(&[
        "check",
        s(&mlp),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
        "--out",
        s(&report),
    ]);
    assert_eq!(o.code, 0);
    let o = parity(&["bench", s(&mlp), "--baseline", s(&report)]);
    assert_clean_error(
        &o,
        "schema is `parity.report/v1`, a baseline is a `parity.bench/v1` report",
    );
    assert!(o.stderr.contains("check.json"));
}

#[test]
fn thread_and_worker_counts_are_bounded() {
    let mlp = models().join("mlp");
    for (flag, value, message) in [
        (
            "--threads",
            "100000",
            "`100000` is too many: --threads takes at most 1024 \
             (leave --threads out for the engine's own choice)",
        ),
        (
            "--concurrency",
            "100000",
            "`100000` is too many: --concurrency takes at most 4096",
        ),
        (
            "--concurrency",
            "0",
            "`0` is not a whole number from 1 to 4096",
        ),
    ] {
        let o = parity(&["bench", s(&mlp), flag, value]);
        assert_clean_error(&o, &format!("for '{flag} <N>': {message}"));
    }
}

#[test]
fn warm_up_stops_at_the_maximum_duration() {
    let mlp = models().join("mlp");
    let start = std::time::Instant::now();
    // Killed after 120 s, should the warm-up ignore --max-duration (2^64-1 queries).
    let out = std::process::Command::new("timeout")
        .args(["-s", "KILL", "120", env!("CARGO_BIN_EXE_parity")])
        .args(["bench", s(&mlp), "--backend", "ort-cpu", "--threads", "1"])
        .args(["--warmup", "18446744073709551615", "--max-duration", "1"])
        .args(["--min-duration", "0.5"])
        .args(["--min-queries", "1000000000", "--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    // Loading, 1 s of warm-up, 1 s of measurement: far below the kill.
    let took = start.elapsed().as_secs_f64();
    assert!(took < 30.0, "{took} s");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let r = &report["results"][0];
    assert_eq!(r["cut_short"], true, "{r}");
    assert!(f(&r["duration_s"]) < 1.5, "{r}");
}

/// Two models that share a name are told apart by their paths; a baseline result the
/// run did not re-measure is named, a warning, and with `--strict` a failure.
#[test]
fn models_sharing_a_name_stay_apart_and_the_gate_names_what_it_did_not_measure() {
    let tmp = tempfile::tempdir().unwrap();
    for d in ["a", "b"] {
        let dir = tmp.path().join(d).join("mlp");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(models().join("mlp/model.onnx"), dir.join("model.onnx")).unwrap();
    }
    let (a, b) = (
        tmp.path().join("a/mlp/model.onnx"),
        tmp.path().join("b/mlp/model.onnx"),
    );
    let base = tmp.path().join("base.json");
    let budget = [
        "--backend",
        "ort-cpu",
        "--min-queries",
        "20",
        "--min-duration",
        "0",
        "--dim",
        "batch=1",
    ];
    let mut args = vec![
        "bench",
        s(&a),
        s(&b),
        "--save-baseline",
        s(&base),
        "--format",
        "json",
    ];
    args.extend(budget);
    let o = parity(&args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let names: Vec<String> = json(&o)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a/mlp", "b/mlp"]);
    // Only a/mlp this time: b/mlp is named, and fails the gate with --strict.
    let key = "b/mlp ort-cpu single-stream batch=1 concurrency=1 threads=default";
    for (strict, code) in [(false, 0), (true, 1)] {
        let mut args = vec![
            "bench",
            s(&a),
            "--baseline",
            s(&base),
            "--threshold-pct",
            "400",
        ];
        args.extend(budget);
        if strict {
            args.push("--strict");
        }
        let o = parity(&args);
        assert_eq!(o.code, code, "{}\n{}", o.stdout, o.stderr);
        let word = if strict { "FAIL" } else { "warning" };
        assert!(
            o.stdout.contains(&format!(
                "  {word}: in the baseline, not re-measured: {key}\n"
            )),
            "{}",
            o.stdout
        );
    }
}

/// `bench --scenario generate` on the tiny GPT-2: a query is one generation, its figures
/// agree with each other, and the JSON is valid.
#[test]
fn generate_scenario_reports_time_to_first_token_inter_token_latency_and_tokens_per_s() {
    let lm = root().join("tests/fixtures/lm/gpt2-kv.onnx");
    let o = parity(&[
        "bench",
        s(&lm),
        "--scenario",
        "generate",
        "--backend",
        "ort-cpu",
        "--backend",
        "candle-cpu",
        "--prompt-len",
        "6",
        "--max-new-tokens",
        "8",
        "--min-queries",
        "5",
        "--min-duration",
        "0.1",
        "--warmup",
        "1",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    validate(&r);
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for res in results {
        assert_eq!(res["scenario"], "generate");
        let g = &res["generate"];
        assert_eq!(
            (g["prompt_len"].as_u64(), g["new_tokens"].as_u64()),
            (Some(6), Some(8))
        );
        let queries = res["queries"].as_u64().unwrap();
        assert!(queries >= 5);
        // Every generation has one first step and 7 later ones; a query's latency is
        // their sum, so the mean query is the mean first step plus 7 mean later steps.
        let (ttft, itl) = (f(&g["ttft_ms"]["mean"]), f(&g["inter_token_ms"]["mean"]));
        let query = f(&res["latency_ms"]["mean"]);
        assert!(
            (query - (ttft + 7.0 * itl)).abs() <= 1e-6 * query.max(1.0),
            "{query} vs {ttft} + 7 x {itl}"
        );
        // Tokens/s counts 8 tokens per generation over the run's wall time.
        let expected = 8.0 * queries as f64 / f(&res["duration_s"]);
        assert!((f(&g["tokens_per_s"]) - expected).abs() <= 1e-6 * expected);
    }
    assert!(results[1]["slowdown_vs_first"].is_f64());
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("bench.html");
    let o = parity(&[
        "bench",
        s(&lm),
        "--scenario",
        "generate",
        "--backend",
        "ort-cpu",
        "--max-new-tokens",
        "4",
        "--min-queries",
        "2",
        "--min-duration",
        "0.05",
        "--format",
        "html",
        "--out",
        s(&page),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<h2>Generation</h2>") && html.contains("inter-token p99 (ms)"));
    let o = parity(&["bench", s(&lm), "--scenario", "generate", "--batch", "2"]);
    assert_clean_error(&o, "--batch is not used by --scenario generate");
}

/// `--verify` against a generation suite: every measured generation judged against its
/// golden; a model whose MLP weight moved is counted as mismatched (exit 1).
#[test]
fn generate_scenario_verifies_every_generation_against_a_generation_suite() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("lm");
    let lm = root().join("tests/fixtures/lm");
    let o = parity(&[
        "record",
        s(&lm.join("llama-kv.onnx")),
        "--out",
        s(&suite),
        "--generate",
        "--prompt-ids",
        "5,17,42",
        "--prompt-ids",
        "9",
        "--max-new-tokens",
        "6",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let args = |b: &str| {
        vec![
            "bench".to_string(),
            s(&suite).to_string(),
            "--scenario".into(),
            "generate".into(),
            "--backend".into(),
            b.into(),
            "--verify".into(),
            "--min-queries".into(),
            "4".into(),
            "--min-duration".into(),
            "0.05".into(),
            "--warmup".into(),
            "1".into(),
            "--format".into(),
            "json".into(),
        ]
    };
    let run = |b: &str| {
        let a = args(b);
        parity(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let o = run("candle-cpu");
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    let v = &r["results"][0]["verify"];
    assert!(v["checked"].as_u64().unwrap() >= 4, "{v}");
    assert_eq!(v["mismatched"], 0);
    assert_eq!(r["results"][0]["generate"]["new_tokens"], 6);
    std::fs::copy(lm.join("llama-kv-mlp105.onnx"), suite.join("model.onnx")).unwrap();
    let o = run("ort-cpu");
    assert_eq!(o.code, 1, "{}", o.stderr);
    let r = json(&o);
    let v = &r["results"][0]["verify"];
    assert_eq!(v["mismatched"], v["checked"], "{v}");
}
