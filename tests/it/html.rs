//! Integration test of `--format html`: the page `parity check` writes is rendered by
//! headless Chromium (Debian package `chromium`, installed by .ci/run), which must
//! exit cleanly, take a full-size screenshot that is not blank, and expose the verdict
//! and summary in the rendered DOM, for a passing suite and a damaged copy; likewise
//! the page of `parity bench --format html` in its three scenarios.

use crate::common::*;

use parity::formats;
use parity::tensor::Tensor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Chromium binary (Debian's package installs `chromium` on the PATH).
const CHROMIUM: &str = "chromium";
/// Longest a Chromium run may take before it is killed.
const TIMEOUT: Duration = Duration::from_secs(60);
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 900;

/// Runs headless Chromium on `page` with `mode` (`--screenshot=FILE` or `--dump-dom`),
/// with a profile under `dir`; returns stdout. Stderr (dbus and GPU warnings) is
/// ignored; the exit code must be 0.
fn chromium(dir: &Path, page: &Path, mode: &str) -> String {
    let stdout = dir.join("chromium.out");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(mode)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{CHROMIUM}` ({e}): install the Debian package `chromium` \
                 (apt-get install chromium; .ci/run does this in CI)"
            )
        });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {mode} {} ran over {TIMEOUT:?}", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "chromium {mode} {} exited with {status}",
        page.display()
    );
    std::fs::read_to_string(&stdout).unwrap()
}

/// Screenshots `page` into `shot` and checks the PNG: signature, IHDR size; returns
/// the file's size in bytes.
fn screenshot(dir: &Path, page: &Path, shot: &Path) -> u64 {
    chromium(dir, page, &format!("--screenshot={}", shot.display()));
    let png =
        std::fs::read(shot).unwrap_or_else(|e| panic!("no screenshot {} ({e})", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 24 && &png[12..16] == b"IHDR",
        "{} is not a PNG",
        shot.display()
    );
    let be = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    assert_eq!(
        (be(16), be(20)),
        (WIDTH, HEIGHT),
        "IHDR width/height of {}",
        shot.display()
    );
    png.len() as u64
}

// Each test keeps its directory (report, screenshots) when it fails, so the files
// named in the message can be opened; it removes it when it passes.

/// A copy of the MLP suite whose `test_data_set_1` golden logit [2, 3] is 1 % off;
/// returns the suite and the damaged output's name.
fn damaged_mlp(parent: &Path) -> (PathBuf, String) {
    let suite = parent.join("mlp");
    copy_dir(&models().join("mlp"), &suite);
    let path = suite.join("test_data_set_1/output_0.pb");
    let (name, t) = formats::read_tensor(&path).unwrap();
    let name = name.expect("the bundled goldens are named");
    let mut v = t.values::<f32>().unwrap().into_owned();
    v[23] *= 1.01;
    let t = Tensor::from_vec(t.shape().to_vec(), v).unwrap();
    formats::write_tensor(&path, &name, &t).unwrap();
    (suite, name)
}

/// Writes the report of `parity check SUITE ARGS --format html` to `dir/report.html`,
/// expecting exit code `code`.
fn html_report(dir: &Path, suite: &Path, args: &[&str], code: i32) -> PathBuf {
    let page = dir.join("report.html");
    let mut all = vec!["check", suite.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "html", "--out", page.to_str().unwrap()]);
    let o = parity(&all);
    assert_eq!(o.code, code, "{}\n{}", o.stdout, o.stderr);
    page
}

/// The size of a screenshot of an empty page, the floor a report must clearly exceed.
fn blank_size(dir: &Path) -> u64 {
    let page = dir.join("blank.html");
    std::fs::write(&page, "<!DOCTYPE html><html><body></body></html>\n").unwrap();
    screenshot(dir, &page, &dir.join("blank.png"))
}

#[test]
fn passing_report_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap().keep();
    let page = html_report(&dir, &models().join("mlp"), &[], 0);
    let shot = dir.join("shot.png");
    let size = screenshot(&dir, &page, &shot);
    let blank = blank_size(&dir);
    assert!(
        size > 3 * blank,
        "screenshot {} ({size} bytes) looks blank (an empty page: {blank} bytes)",
        shot.display()
    );
    let dom = chromium(&dir, &page, "--dump-dom");
    for needle in ["9 cases: 9 passed, 0 failed, 0 errors", "PASS", "<svg"] {
        assert!(
            dom.contains(needle),
            "`{needle}` not in the DOM of {} (screenshot {})",
            page.display(),
            shot.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failing_report_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap().keep();
    let (suite, output) = damaged_mlp(&dir);
    let page = html_report(&dir, &suite, &["--backend", "ort-cpu"], 1);
    let shot = dir.join("shot.png");
    let size = screenshot(&dir, &page, &shot);
    let blank = blank_size(&dir);
    assert!(
        size > 3 * blank,
        "screenshot {} ({size} bytes) looks blank (an empty page: {blank} bytes)",
        shot.display()
    );
    let dom = chromium(&dir, &page, "--dump-dom");
    for needle in [
        "3 cases: 2 passed, 1 failed, 0 errors",
        "FAIL",
        output.as_str(),
        "test_data_set_1",
    ] {
        assert!(
            dom.contains(needle),
            "`{needle}` not in the DOM of {} (screenshot {})",
            page.display(),
            shot.display()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compare_and_merge_write_html() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.npy"), tmp.path().join("b.npy"));
    let mut v: Vec<f32> = (0..1000).map(|i| (i as f32).sin() + 2.0).collect();
    formats::write_tensor(&a, "x", &Tensor::from_vec(vec![1000], v.clone()).unwrap()).unwrap();
    v[517] *= 1.01;
    formats::write_tensor(&b, "x", &Tensor::from_vec(vec![1000], v).unwrap()).unwrap();
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let o = parity(&["compare", sa, sb, "--format", "html"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("1 cases: 0 passed, 1 failed, 0 errors"),
        "{}",
        o.stdout
    );
    assert_eq!(o.stdout.matches("<svg").count(), 1, "{}", o.stdout);
    assert!(o.stdout.contains("<title>≤100: 1</title>"), "{}", o.stdout);

    // merge reads the JSON report (with its histograms) and renders it the same way.
    let json = tmp.path().join("shard.json");
    let o = parity(&[
        "compare",
        sa,
        sb,
        "--format",
        "json",
        "--out",
        json.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let o = parity(&["merge", json.to_str().unwrap(), "--format", "html"]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("<h2>Merged reports (1)</h2>"),
        "{}",
        o.stdout
    );
    assert_eq!(o.stdout.matches("<svg").count(), 1, "{}", o.stdout);
}

/// Writes the page of `parity bench models/mlp ARGS --format html` to `dir/NAME`,
/// expecting exit code 0.
fn bench_page(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let page = dir.join(name);
    let model = models().join("mlp");
    let mut all = vec!["bench", model.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--min-duration",
        "0.2",
        "--min-queries",
        "50",
        "--warmup",
        "2",
        "--threads",
        "1",
        "--format",
        "html",
        "--out",
        page.to_str().unwrap(),
    ]);
    let o = parity(&all);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    page
}

/// Asserts every needle is in the DOM Chromium renders from `page`.
pub(crate) fn dom_has(dir: &Path, page: &Path, needles: &[&str]) {
    let dom = chromium(dir, page, "--dump-dom");
    for needle in needles {
        assert!(
            dom.contains(needle),
            "`{needle}` not in the DOM of {}",
            page.display()
        );
    }
}

#[test]
fn bench_report_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap().keep();
    let backends = ["--backend", "ort-cpu", "--backend", "tract-cpu"];
    let page = bench_page(&dir, "bench.html", &backends);
    let shot = dir.join("bench.png");
    let size = screenshot(&dir, &page, &shot);
    let blank = blank_size(&dir);
    assert!(
        size > 3 * blank,
        "screenshot {} ({size} bytes) looks blank (an empty page: {blank} bytes)",
        shot.display()
    );
    dom_has(
        &dir,
        &page,
        &[
            "<code>mlp</code>",
            "<code>ort-cpu</code>",
            "<code>tract-cpu</code>",
            "single-stream",
            "<th>model</th><th>backend</th><th>scenario</th><th>batch</th><th>concurrency</th><th>queries</th>",
            "<th>p50 (ms)</th><th>p90 (ms)</th><th>p99 (ms)</th><th>p99.9 (ms)</th><th>mean ± sd (ms)</th>",
            "<th>inferences/s</th><th>samples/s</th><th>slowdown vs first</th><th>stable</th><th>peak RSS</th><th>error</th>",
            "<svg class=\"chart hist\"",
            "<svg class=\"chart pct\"",
            "percentile (%)",
        ],
    );

    let mut offline = backends.to_vec();
    offline.extend_from_slice(&["--scenario", "offline", "--batch", "1", "--batch", "4"]);
    let page = bench_page(&dir, "offline.html", &offline);
    dom_has(
        &dir,
        &page,
        &[
            "<svg class=\"chart batch\"",
            "throughput (samples/s)",
            "batch size",
        ],
    );

    let server = [
        "--backend",
        "ort-cpu",
        "--scenario",
        "server",
        "--find-max-qps",
    ];
    let mut server = server.to_vec();
    server.extend_from_slice(&["--p99-ms", "50"]);
    let page = bench_page(&dir, "server.html", &server);
    dom_has(
        &dir,
        &page,
        &[
            "<svg class=\"chart search\"",
            "<line class=\"bound\"",
            "offered load (queries/s)",
            "<h2>Server</h2>",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn generation_report_renders_in_chromium() {
    let dir = tempfile::tempdir().unwrap().keep();
    // A generation suite checked against a model whose MLP weight moved: the tokens
    // side by side, the first step out of tolerance and the per-step curve.
    let suite = dir.join("gpt2");
    let lm = root().join("tests/fixtures/lm");
    let o = parity(&[
        "record",
        s(&lm.join("gpt2-kv.onnx")),
        "--out",
        s(&suite),
        "--generate",
        "--prompt-ids",
        "5,17,42",
        "--max-new-tokens",
        "8",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    std::fs::copy(lm.join("gpt2-kv-mlp105.onnx"), suite.join("model.onnx")).unwrap();
    let page = html_report(&dir, &suite, &["--backend", "ort-cpu"], 1);
    let shot = dir.join("shot.png");
    let size = screenshot(&dir, &page, &shot);
    assert!(
        size > 3 * blank_size(&dir),
        "screenshot {} looks blank",
        shot.display()
    );
    dom_has(
        &dir,
        &page,
        &[
            "1 cases: 0 passed, 1 failed, 0 errors",
            "tokens: 8/8 equal; logits out of tolerance from step 0",
            "share of the logits' tolerance used per step",
            "class=\"curve\"",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
