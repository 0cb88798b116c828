//! The `kserve+http://` backend against servers started here on 127.0.0.1: the project's
//! misbehaving server (tests/servers/fake_kserve.py: one fault per model name) for the
//! verdict and message of each fault, and a real third-party Open Inference Protocol
//! server (MLServer 1.7.1 from `.venv-serve`, installed by `scripts/setup.sh --test`)
//! for `check`, `record` and a load run with every response verified.

use crate::common::*;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process (and its process group), killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self, model: &str) -> String {
        format!("kserve+http://127.0.0.1:{}/v2/models/{model}", self.port)
    }
}

/// The project virtualenv's Python (onnxruntime, numpy).
fn python() -> PathBuf {
    let p = root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup.sh --test",
        p.display()
    );
    p
}

/// Starts the misbehaving server on the bundled MLP; slow answers take 3 s.
fn fake() -> Server {
    let mut child = Command::new(python())
        .arg(root().join("tests/servers/fake_kserve.py"))
        .arg(models().join("mlp/model.onnx"))
        .args(["--slow", "3"])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start tests/servers/fake_kserve.py");
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("fake server said {line:?}"));
    Server {
        child,
        port,
        _dir: None,
    }
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET path` answered 200.
fn ready(port: u16, path: &str) -> bool {
    let Ok(mut c) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    c.write_all(req.as_bytes()).is_ok()
        && c.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// Starts MLServer 1.7.1 from `.venv-serve` serving the three bundled models under
/// their suite names, and waits until it is ready.
fn mlserver() -> Server {
    let bin = root().join(".venv-serve/bin/mlserver");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/setup.sh --test (it installs MLServer 1.7.1 into .venv-serve)",
        bin.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let ports = [free_port(), free_port(), free_port()];
    let mut args: Vec<String> = vec![
        root()
            .join("tests/servers/mlserver_dir.py")
            .display()
            .to_string(),
        dir.path().display().to_string(),
    ];
    args.extend(ports.iter().map(u16::to_string));
    for m in ["mlp", "cnn", "transformer"] {
        args.push(format!(
            "{m}={}",
            models().join(m).join("model.onnx").display()
        ));
    }
    let made = Command::new(root().join(".venv-serve/bin/python"))
        .args(&args)
        .status()
        .unwrap();
    assert!(made.success());
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let mut child = Command::new(&bin)
        .args(["start", "."])
        .current_dir(dir.path())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .expect("start mlserver");
    let start = Instant::now();
    while !ready(ports[0], "/v2/health/ready") {
        let log = || std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mlserver exited ({status}):\n{}", log());
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("mlserver not ready after 90 s:\n{}", log());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Server {
        child,
        port: ports[0],
        _dir: Some(dir),
    }
}

/// `parity check models/mlp --backend URL --format json`: exit code and report.
fn check(url: &str) -> (i32, Value) {
    let o = parity(&[
        "check",
        s(&models().join("mlp")),
        "--backend",
        url,
        "--format",
        "json",
    ]);
    let report = json(&o);
    (o.code, report)
}

/// Every case's error, or its failing outputs' problems, joined.
fn messages(case: &Value) -> String {
    if let Some(e) = case["error"].as_str() {
        return e.to_string();
    }
    case["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["verdict"] == "fail")
        .map(|o| {
            format!(
                "{}: {}",
                o["name"].as_str().unwrap(),
                o["problem"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn each_fault_of_the_server_gets_its_verdict_and_message() {
    let server = fake();
    // (model name and URL options, exit code, case verdict, what the message says)
    let cases: [(&str, i32, &str, &str); 12] = [
        ("ok", 0, "pass", ""),
        ("binary?binary=0", 0, "pass", ""),
        ("binary", 2, "error", "HTTP 400: {\"error\": \"input x: this model takes binary tensors only\"}"),
        ("wrong-shape", 1, "fail", "logits: shape [1,10] expected, got [10]"),
        ("wrong-dtype", 1, "fail", "logits: dtype f32 expected, got f64"),
        ("missing-output", 1, "fail", "probs: missing: the candidate did not produce this output"),
        ("not-json", 2, "error", "/infer: the response is not JSON (expected value at line 1 column 1): <html><body>502 Bad Gateway</body></html>"),
        ("short-data", 2, "error", "output `logits`: 9 data values for shape [1, 10] (10 expected)"),
        ("http-500", 2, "error", "POST /v2/models/http-500/infer: HTTP 500: {\"error\": \"model crashed: out of memory\"}"),
        ("slow?timeout=0.5", 2, "error", "/v2/models/slow/infer: timed out"),
        ("drop", 2, "error", "/v2/models/drop/infer: the server closed the connection without answering"),
        ("ok?timeout=5&binary=100000", 0, "pass", ""),
    ];
    for (model, code, verdict, message) in cases {
        let url = server.url(model);
        let (got, report) = check(&url);
        let rows = report["cases"].as_array().unwrap();
        assert_eq!(rows.len(), 3, "{model}");
        assert_eq!(got, code, "{model}: {report}");
        for row in rows {
            assert_eq!(row["backend"], url.as_str());
            assert_eq!(row["verdict"], verdict, "{model}: {row}");
            assert_eq!(row["error"].is_null(), verdict != "error", "{model}: {row}");
        }
        // The first data set has one row (the others 4 and 16, so other shapes).
        let first = messages(&rows[0]);
        assert!(first.contains(message), "{model}: {first}");
        assert_eq!(
            report["environment"]["backends"][0]["version"], "parity-fake 1",
            "{model}"
        );
    }
}

#[test]
fn bad_urls_and_unreachable_endpoints_are_usage_errors() {
    let suite = models().join("mlp");
    let o = parity(&[
        "check",
        s(&suite),
        "--backend",
        "kserve+http://127.0.0.1/v2/models/m",
    ]);
    assert_clean_error(&o, "HOST:PORT with a port number is required");
    let o = parity(&[
        "backends",
        "--backend",
        "kserve+http://127.0.0.1/v2/models/m",
    ]);
    assert_clean_error(&o, "HOST:PORT with a port number is required");
    let o = parity(&[
        "check",
        s(&suite),
        "--backend",
        "kserve+https://127.0.0.1:1/v2/models/m",
    ]);
    assert_clean_error(
        &o,
        "only kserve+http://HOST:PORT/v2/models/NAME is supported",
    );
    let o = parity(&[
        "check",
        s(&suite),
        "--backend",
        "kserve+http://127.0.0.1:1/v2/models/m?timeout=1e300",
    ]);
    assert_clean_error(&o, "timeout `1e300` is not a number of seconds > 0");
    let o = parity(&[
        "check",
        s(&suite),
        "--backend",
        "kserve+http://127.0.0.1:1/models/m",
    ]);
    assert_clean_error(
        &o,
        "the path must be /v2/models/NAME or /v2/models/NAME/versions/V",
    );
    let port = free_port();
    let url = format!("kserve+http://127.0.0.1:{port}/v2/models/m");
    let o = parity(&["check", s(&suite), "--backend", &url]);
    assert_clean_error(&o, &format!("backend {url} is unavailable: GET http://127.0.0.1:{port}/v2/health/ready: connection refused"));
    let server = fake();
    let o = parity(&["check", s(&suite), "--backend", &server.url("resnet")]);
    assert_clean_error(&o, "GET /v2/models/resnet/ready: HTTP 404 (not ready): {\"error\": \"model /v2/models/resnet/ready not found\"}");
    // The endpoint serves another model than the suite's.
    let o = parity(&[
        "check",
        s(&models().join("cnn")),
        "--backend",
        &server.url("ok"),
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 2);
    let report = json(&o);
    let e = report["cases"][0]["error"].as_str().unwrap();
    assert!(
        e.starts_with("the server's model declares inputs [x]"),
        "{e}"
    );
}

#[test]
fn goldens_recorded_from_an_endpoint_check_on_a_local_backend() {
    let server = fake();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp-served");
    let mlp = models().join("mlp");
    let url = server.url("binary?binary=0");
    let o = parity(&[
        "record",
        s(&mlp.join("model.onnx")),
        "--inputs",
        s(&mlp),
        "--backend",
        &url,
        "--out",
        s(&out),
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let provenance = manifest(&out);
    assert_eq!(
        provenance["provenance"]["backend"].as_str(),
        Some(url.as_str()),
        "{provenance}"
    );
    let o = parity(&["check", s(&out), "--backend", "ort-cpu"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    // Outputs the model cannot have never become goldens.
    let o = parity(&[
        "record",
        s(&mlp.join("model.onnx")),
        "--inputs",
        s(&mlp),
        "--backend",
        &server.url("wrong-shape"),
        "--out",
        s(&out.with_extension("wrong")),
    ]);
    assert_clean_error(
        &o,
        "output `logits` has shape [10], the model declares [batch, 10]",
    );
}

/// `parity bench models/mlp --backend URL --verify --format json` with `args`.
fn bench_verify(url: &str, args: &[&str]) -> (i32, Value) {
    let mlp = models().join("mlp");
    let mut all = vec![
        "bench",
        s(&mlp),
        "--backend",
        url,
        "--verify",
        "--format",
        "json",
        "--min-duration",
        "0",
        "--warmup",
        "1",
    ];
    all.extend_from_slice(args);
    let o = parity(&all);
    assert!(o.code == 0 || o.code == 1, "{}{}", o.stdout, o.stderr);
    let report = json(&o);
    assert_schema(&report, "bench.schema.json");
    (o.code, report)
}

#[test]
fn bench_verify_checks_every_response_and_counts_what_went_wrong() {
    let server = fake();
    let (code, report) = bench_verify(
        &server.url("ok"),
        &["--concurrency", "8", "--min-queries", "500"],
    );
    assert_eq!(code, 0);
    let r = &report["results"][0];
    assert!(r["queries"].as_u64().unwrap() >= 500);
    assert!(r["verify"]["checked"].as_u64().unwrap() >= r["queries"].as_u64().unwrap());
    assert_eq!(
        (
            r["verify"]["mismatched"].as_u64(),
            r["verify"]["errors"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert!(r["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    // The server scenario: Poisson arrivals, queueing counted, every response checked.
    let (code, report) = bench_verify(
        &server.url("ok"),
        &[
            "--scenario",
            "server",
            "--qps",
            "200",
            "--min-queries",
            "100",
            "--concurrency",
            "4",
        ],
    );
    assert_eq!(code, 0, "{report}");
    let r = &report["results"][0];
    assert_eq!(r["server"]["dropped"], 0);
    assert_eq!(r["queries"], 100);
    assert_eq!(
        (
            r["verify"]["mismatched"].as_u64(),
            r["verify"]["errors"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let (code, report) = bench_verify(&server.url("wrong-shape"), &["--min-queries", "20"]);
    assert_eq!(code, 1);
    let v = &report["results"][0]["verify"];
    assert_eq!(v["mismatched"], v["checked"]);
    assert_eq!(
        v["first_problem"],
        "mismatch: logits: shape [1,10] expected, got [10]"
    );
    // An endpoint that errors now and then: counted under --verify, not fatal.
    let (code, report) = bench_verify(&server.url("flaky"), &["--min-queries", "30"]);
    assert_eq!(code, 1, "{report}");
    let r = &report["results"][0];
    let v = &r["verify"];
    let (checked, errors) = (
        v["checked"].as_u64().unwrap(),
        v["errors"].as_u64().unwrap(),
    );
    // One in three requests: the check before timing, warm-up and measured ones, all
    // counted while verifying.
    assert_eq!((checked + errors) / 3, errors, "{v}");
    // Four sessions, each with its own check query: one failing check does not end it.
    let (code, report) = bench_verify(
        &server.url("flaky"),
        &["--min-queries", "30", "--concurrency", "4"],
    );
    assert_eq!(code, 1, "{report}");
    let v = &report["results"][0]["verify"];
    assert!(
        v["checked"].as_u64() > Some(30) && v["errors"].as_u64() > Some(0),
        "{v}"
    );
    assert_eq!(
        (v["mismatched"].as_u64(), v["timeouts"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        v["first_problem"],
        "error: POST /v2/models/flaky/infer: HTTP 503: {\"error\": \"overloaded, try again\"}"
    );
    assert!(r["queries"].as_u64().unwrap() >= 30);
}

#[test]
fn a_real_server_passes_the_bundled_suites_and_stays_correct_under_load() {
    let server = mlserver();
    for m in ["mlp", "cnn", "transformer"] {
        let o = parity(&[
            "check",
            s(&models().join(m)),
            "--backend",
            &server.url(m),
            "--format",
            "json",
        ]);
        assert_eq!(o.code, 0, "{m}: {}{}", o.stdout, o.stderr);
        let report = json(&o);
        assert_eq!(report["summary"]["passed"], 3, "{m}");
        assert_eq!(
            report["environment"]["backends"][0]["version"],
            "mlserver 1.7.1"
        );
    }
    let (code, report) = bench_verify(
        &server.url("mlp"),
        &["--concurrency", "8", "--min-queries", "500"],
    );
    assert_eq!(code, 0, "{report}");
    let r = &report["results"][0];
    assert!(r["queries"].as_u64().unwrap() >= 500);
    assert!(!r["cut_short"].as_bool().unwrap());
    assert_eq!(
        (
            r["verify"]["mismatched"].as_u64(),
            r["verify"]["errors"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(r["device"], format!("remote 127.0.0.1:{}", server.port));

    // Invariance of a deployed endpoint: what a client can vary (repeat, batch); the
    // server's sessions, threads and optimisations are not applicable, with reasons.
    let url = server.url("mlp");
    let o = parity(&[
        "invariance",
        s(&models().join("mlp")),
        "--backend",
        &url,
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let r = json(&o);
    assert_schema(&r, "invariance.schema.json");
    let checks: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["repeat", "batch"].repeat(3));
    for x in r["results"].as_array().unwrap() {
        assert!(
            matches!(x["outcome"].as_str(), Some("bitwise" | "within")),
            "{x:#}"
        );
    }
    let na: Vec<&str> = r["not_applicable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["check"].as_str().unwrap())
        .collect();
    assert_eq!(na, ["session", "threads", "optimization"]);
}
