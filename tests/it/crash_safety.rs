//! Crash safety (docs/crash-safety.md): `--out` never replaces one of the run's inputs;
//! report files keep the mode a user expects; Ctrl-C and SIGTERM stop `check`, `bench`
//! and `record` with 130/143, an incomplete report and no staging directory; and
//! `kill -9` at random moments of `record` (a new suite, `--force` over an old one) and
//! of `bench --save-baseline` leaves the old state or the new one, never a mix.

use crate::common::*;

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn sha256(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// Every file below `dir`: relative path → sha256.
fn tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, sha256(&p));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names directly in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_parity"));
    c.args(args)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    default_signals(&mut c);
    c
}

// ---------------------------------------------------------------------------------------
// --out onto an input

#[test]
fn an_out_path_that_is_an_input_is_refused_before_the_run() {
    let (tmp, suite) = copy_suite("mlp");
    let golden = suite.join("test_data_set_0/output_0.pb");
    let model = suite.join("model.onnx");
    let before = tree(&suite);
    let a = suite.join("test_data_set_1/input_0.pb");
    let b = suite.join("test_data_set_2/input_0.pb");
    let inside = suite.join("new.json");
    let report = tmp.path().join("report.json");
    let base = tmp.path().join("base.json");
    std::fs::write(&report, "{}").unwrap();
    std::fs::write(&base, "{}").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["check", s(&suite), "--out", s(&golden)], "--out"),
        (vec!["check", s(&suite), "--out", s(&model)], "--out"),
        (vec!["check", s(&suite), "--out", s(&inside)], "--out"),
        (vec!["compare", s(&a), s(&b), "--out", s(&a)], "--out"),
        (vec!["compare", s(&a), s(&b), "--out", s(&b)], "--out"),
        (vec!["merge", s(&report), "--out", s(&report)], "--out"),
        (vec!["bench", s(&suite), "--out", s(&model)], "--out"),
        (
            vec!["bench", s(&suite), "--save-baseline", s(&golden)],
            "--save-baseline",
        ),
        (
            vec![
                "bench",
                s(&model),
                "--baseline",
                s(&base),
                "--save-baseline",
                s(&base),
            ],
            "--save-baseline",
        ),
        (vec!["fuzz", s(&model), "--out", s(&model)], "--out"),
        (
            vec!["data", "validate", s(&suite), s(&a), "--out", s(&a)],
            "--out",
        ),
        (vec!["data", "drift", s(&a), s(&b), "--out", s(&b)], "--out"),
    ];
    for (args, flag) in cases {
        let o = parity(&args);
        assert_clean_error(&o, "an input of this run");
        assert!(o.stderr.contains(flag), "{args:?}: {}", o.stderr);
    }
    assert_eq!(tree(&suite), before);
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "{}");
    assert_eq!(std::fs::read_to_string(&base).unwrap(), "{}");
    // Next to the inputs is fine.
    let o = parity(&[
        "compare",
        s(&a),
        s(&a),
        "--format",
        "json",
        "--out",
        s(&report),
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
}

// ---------------------------------------------------------------------------------------
// File modes

/// Runs `parity ARGS` under `umask MASK` (through sh).
fn under_umask(mask: &str, args: &[&str]) -> Outcome {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let script = format!(
        "umask {mask}; exec '{}' {}",
        env!("CARGO_BIN_EXE_parity"),
        quoted.join(" ")
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn out_files_honour_the_umask_and_keep_an_existing_mode() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let a = models().join("mlp/test_data_set_0/output_0.pb");
    let compare = |mask: &str, out: &Path| {
        let o = under_umask(mask, &["compare", s(&a), s(&a), "--out", s(out)]);
        assert_eq!(o.code, 0, "{}", o.stderr);
    };
    for (mask, expected) in [("022", 0o644), ("002", 0o664), ("077", 0o600)] {
        let new = tmp.path().join(format!("new-{mask}.txt"));
        compare(mask, &new);
        assert_eq!(mode(&new), expected, "umask {mask}");
    }
    // An existing file keeps its mode, whatever the umask of the run that replaces it.
    let prom = tmp.path().join("parity.prom");
    std::fs::write(&prom, "old").unwrap();
    std::fs::set_permissions(&prom, std::fs::Permissions::from_mode(0o644)).unwrap();
    compare("077", &prom);
    assert_eq!(mode(&prom), 0o644);
    assert_ne!(std::fs::read_to_string(&prom).unwrap(), "old");
    std::fs::set_permissions(&prom, std::fs::Permissions::from_mode(0o640)).unwrap();
    compare("000", &prom);
    assert_eq!(mode(&prom), 0o640);
    // A recorded suite's files too (written by the same atomic writer).
    let suite = tmp.path().join("suite");
    let o = under_umask(
        "022",
        &[
            "record",
            s(&models().join("mlp")),
            "--out",
            s(&suite),
            "--random",
            "1",
            "--dim",
            "batch=1",
            "--backend",
            "tract-cpu",
        ],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    for file in ["parity.toml", "model.onnx", "test_data_set_0/output_0.pb"] {
        assert_eq!(mode(&suite.join(file)), 0o644, "{file}");
    }
}

// ---------------------------------------------------------------------------------------
// Ctrl-C and SIGTERM

/// `exec:` backend that signals parity on its first run (tests/fixtures/exec).
fn interrupting(signal: &str) -> String {
    format!(
        "exec:python3 '{}' {signal}",
        s(&root().join("tests/fixtures/exec/interrupting_runner.py"))
    )
}

#[test]
fn a_signal_during_check_writes_an_incomplete_report_and_exits_128_plus_n() {
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("report.json");
        let runner = interrupting(signal);
        let o = parity(&[
            "check",
            s(&models().join("mlp")),
            s(&models().join("cnn")),
            "--backend",
            "tract-cpu",
            "--backend",
            &runner,
            // One suite and backend at a time, so that what ran before the signal is
            // known (with more jobs, tract may finish both suites meanwhile).
            "--jobs",
            "1",
            "--format",
            "json",
            "--out",
            s(&out),
        ]);
        assert_eq!(o.code, code, "{}", o.stderr);
        assert!(
            o.stderr.contains(&format!("interrupted by SIG{signal}")),
            "{}",
            o.stderr
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_schema(&report, "report.schema.json");
        assert_eq!(report["incomplete"]["signal"], format!("SIG{signal}"));
        assert_eq!(report["verdict"], "error");
        // mlp on tract ran (3 cases) before the runner's first case raised the signal;
        // everything after it was refused, not run.
        let cases = report["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 12);
        let not_run = format!("not run: interrupted by SIG{signal}");
        let refused: Vec<_> = cases
            .iter()
            .filter(|c| c["error"].as_str().is_some_and(|e| e.contains(&not_run)))
            .collect();
        assert_eq!(report["summary"]["passed"], 3, "{report}");
        assert_eq!(refused.len(), 12 - 3 - 1, "{report}");
        assert!(listing(tmp.path()) == ["report.json"]);
        // merge carries the mark.
        let merged = tmp.path().join("merged.json");
        let o = parity(&["merge", s(&out), "--format", "json", "--out", s(&merged)]);
        assert_eq!(o.code, 2, "{}", o.stderr);
        let m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
        assert_eq!(m["incomplete"]["signal"], format!("SIG{signal}"));
    }
}

#[test]
fn a_signal_during_record_writes_nothing_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("suite");
    let runner = interrupting("INT");
    let o = parity(&[
        "record",
        s(&models().join("mlp")),
        "--out",
        s(&out),
        "--random",
        "3",
        "--dim",
        "batch=1",
        "--backend",
        &runner,
    ]);
    assert_eq!(o.code, 130, "{}", o.stderr);
    assert!(
        o.stderr.contains("interrupted by SIGINT") && o.stderr.contains("was not written"),
        "{}",
        o.stderr
    );
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.stderr);
    assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
}

#[test]
fn a_signal_during_bench_stops_it_at_once_and_saves_no_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bench.json");
    let base = tmp.path().join("base.json");
    let mlp = models().join("mlp");
    let args = [
        "bench",
        s(&mlp),
        "--backend",
        "tract-cpu",
        "--min-duration",
        "60",
        "--max-duration",
        "60",
        "--format",
        "json",
        "--out",
        s(&out),
        "--save-baseline",
        s(&base),
    ];
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut child = command(&args).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let sent = Instant::now();
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{status:?}");
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "{:?}",
            sent.elapsed()
        );
        assert!(listing(tmp.path()).is_empty(), "{:?}", listing(tmp.path()));
    }
}

// ---------------------------------------------------------------------------------------
// kill -9 at random moments

/// SplitMix64: reproducible kill points from `PARITY_KILL_SEED` (default 1).
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("PARITY_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        eprintln!("kill points from PARITY_KILL_SEED={seed}");
        Rng(seed)
    }

    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Data sets of the recorded suites: enough that writing takes a visible share of
/// the run (every file is synced), few enough for a quick test.
const DATA_SETS: &str = "10";

/// `record models/mlp --out OUT --random DATA_SETS --seed SEED` on tract-cpu.
fn record(out: &Path, seed: u64, force: bool) -> Command {
    let model = models().join("mlp");
    let seed = seed.to_string();
    let mut args = vec![
        "record",
        s(&model),
        "--out",
        s(out),
        "--random",
        DATA_SETS,
        "--seed",
        &seed,
        "--dim",
        "batch=64",
        "--backend",
        "tract-cpu",
    ];
    if force {
        args.push("--force");
    }
    command(&args)
}

/// The seed recorded in a suite's provenance (`random (seed N, ...)`).
fn recorded_seed(suite: &Path) -> u64 {
    let m = manifest(suite);
    let inputs = m["provenance"]["inputs"].as_str().unwrap().to_string();
    let rest = inputs.strip_prefix("random (seed ").unwrap();
    rest[..rest.find([',', ')']).unwrap()].parse().unwrap()
}

/// Whether `suite` passes `parity check --strict` on tract-cpu (integrity included:
/// a file of another recording is an error).
fn passes_check(suite: &Path) -> bool {
    let o = parity(&[
        "check",
        s(suite),
        "--backend",
        "tract-cpu",
        "--strict",
        "--quiet",
    ]);
    o.code == 0
}

/// What the kills left.
#[derive(Debug, Default)]
struct Tally {
    /// Runs the signal reached while they ran.
    landed: usize,
    /// ...that left no suite (new-suite rounds), the old one, or the new one.
    absent: usize,
    old: usize,
    new: usize,
    /// ...that left a hidden staging directory for the next run to sweep.
    staging_left: usize,
    /// ...that left the suite aside for the next run to put back (two-rename fallback).
    restored_by_rerun: usize,
    /// Runs that ended before their kill point, or were not to be killed (every fifth,
    /// to time a complete run); not counted above.
    finished_first: usize,
}

/// Starts `cmd` and sends it `signal` after `delay`, unless it ended before; returns its
/// exit status and, when it ended first, how long it ran (a child that ended is never
/// signalled: its pid may be another's now).
fn kill_after(
    mut cmd: Command,
    delay: Duration,
    signal: i32,
) -> (std::process::ExitStatus, Option<Duration>) {
    let mut child: Child = cmd.spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, Some(start.elapsed()));
        }
        let elapsed = start.elapsed();
        if elapsed >= delay {
            break;
        }
        std::thread::sleep((delay - elapsed).min(Duration::from_micros(500)));
    }
    unsafe { libc::kill(child.id() as i32, signal) };
    (child.wait().unwrap(), None)
}

/// Sends `signal` (SIGKILL, or SIGINT for the graceful path) to `record` at uniformly
/// random points of its duration until `kills` signals reached a running record,
/// alternating a new suite and `--force` over an old one (every other `--force` round
/// through the two-rename fallback). Asserts after every kill that the suite is absent
/// (new-suite rounds only), the old one byte for byte, or the new one passing
/// `parity check --strict`; and at the end that a re-run sweeps everything the killed
/// runs left.
fn kill_test(kills: usize, signal: i32) -> Tally {
    let mut rng = Rng::from_env();
    let tmp = tempfile::tempdir().unwrap();
    let (fresh, forced) = (tmp.path().join("fresh"), tmp.path().join("forced"));
    std::fs::create_dir(&fresh).unwrap();
    std::fs::create_dir(&forced).unwrap();
    let (fresh_suite, forced_suite) = (fresh.join("suite"), forced.join("suite"));
    // Three complete runs: the old suite of the --force rounds, and the first samples of
    // the duration to spread the kill points over: the median of the last timed runs
    // (every fifth round runs to its end, since the machine's load varies).
    let mut runs: Vec<Duration> = (0..3)
        .map(|_| {
            let start = Instant::now();
            assert!(record(&forced_suite, 1_000_000, true)
                .status()
                .unwrap()
                .success());
            start.elapsed()
        })
        .collect();
    let median = |runs: &[Duration]| {
        let mut last: Vec<Duration> = runs[runs.len().saturating_sub(7)..].to_vec();
        last.sort();
        last[last.len() / 2]
    };
    eprintln!("first estimate of one record: {:?}", median(&runs));
    let mut tally = Tally::default();
    let mut round = 0u64;
    while tally.landed < kills {
        assert!(round < 4 * kills as u64, "too few kills landed: {tally:?}");
        let timed = round % 5 == 4;
        let delay = match timed {
            true => Duration::from_secs(600),
            false => median(&runs).mul_f64(rng.unit()),
        };
        let force = round % 2 == 1;
        let fallback = round % 4 == 3;
        let (suite, parent) = if force {
            (&forced_suite, &forced)
        } else {
            if fresh_suite.exists() {
                std::fs::remove_dir_all(&fresh_suite).unwrap();
            }
            (&fresh_suite, &fresh)
        };
        let old = force.then(|| tree(suite));
        let mut cmd = record(suite, round, force);
        if fallback {
            cmd.env("PARITY_NO_RENAME_EXCHANGE", "1");
        }
        let (status, ran) = kill_after(cmd, delay, signal);
        let landed = ran.is_none();
        if signal == libc::SIGINT {
            // The graceful path: 130, or 0 when the run had ended; a signal before the
            // handler is installed (process start) ends it with nothing begun. Either
            // way no staging directory is left.
            assert!(
                matches!(status.code(), Some(0 | 130)) || status.signal() == Some(signal),
                "round {round}: {status:?}"
            );
            assert_eq!(listing(parent), ["suite"].repeat(suite.exists() as usize));
        }
        if landed {
            tally.landed += 1;
            if listing(parent).iter().any(|n| n.starts_with('.')) {
                tally.staging_left += 1;
            }
        } else {
            assert!(status.success(), "round {round}: {status:?}");
            tally.finished_first += 1;
            if timed {
                runs.extend(ran);
            }
        }
        if fallback && !suite.exists() {
            // Killed between the two renames: the next record puts the old suite back
            // (here one that stops right after, at the existing destination).
            let o = parity(&[
                "record",
                s(&models().join("mlp")),
                "--out",
                s(suite),
                "--random",
                "1",
            ]);
            assert_eq!(o.code, 2, "{}", o.stderr);
            assert!(o.stderr.contains("restored"), "{}", o.stderr);
            tally.restored_by_rerun += 1;
        }
        let outcome = match (&old, suite.exists()) {
            (None, false) => &mut tally.absent,
            (Some(_), false) => panic!("round {round}: the old suite is gone ({status:?})"),
            (Some(old), true) if *old == tree(suite) => &mut tally.old,
            (_, true) => {
                assert_eq!(recorded_seed(suite), round, "round {round}: a mix");
                assert!(
                    passes_check(suite),
                    "round {round}: the new suite fails check"
                );
                &mut tally.new
            }
        };
        if landed {
            *outcome += 1;
        }
        round += 1;
    }
    // A re-run works and sweeps what the killed runs left behind.
    for (suite, parent) in [(&fresh_suite, &fresh), (&forced_suite, &forced)] {
        assert!(record(suite, 7, true).status().unwrap().success());
        assert!(passes_check(suite));
        assert_eq!(listing(parent), ["suite"], "{}", parent.display());
    }
    eprintln!(
        "{kills} kills (signal {signal}), last estimate of one record {:?}: {tally:?}",
        median(&runs)
    );
    tally
}

#[test]
fn kill_9_during_record_leaves_the_old_suite_or_the_new_one() {
    let tally = kill_test(50, libc::SIGKILL);
    // The kill points covered the run: most while the suite was being written.
    assert!(tally.absent + tally.old > 0, "{tally:?}");
    assert!(tally.staging_left > 0, "{tally:?}");
}

#[test]
fn ctrl_c_during_record_leaves_no_staging_directory() {
    kill_test(10, libc::SIGINT);
}

/// The long version, for the figures of docs/crash-safety.md:
/// `cargo test --test crash_safety -- --ignored --nocapture`.
#[test]
#[ignore]
fn kill_9_during_record_many_points() {
    kill_test(500, libc::SIGKILL);
}

#[test]
fn kill_9_during_save_baseline_leaves_the_old_baseline_or_the_new_one() {
    let mut rng = Rng::from_env();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base.json");
    let mlp = models().join("mlp");
    let bench = |path: &PathBuf| {
        command(&[
            "bench",
            s(&mlp),
            "--backend",
            "tract-cpu",
            "--warmup",
            "1",
            "--min-queries",
            "20",
            "--min-duration",
            "0.05",
            "--save-baseline",
            s(path),
        ])
    };
    let start = Instant::now();
    assert!(bench(&base).status().unwrap().success());
    let duration = start.elapsed();
    let mut old = std::fs::read(&base).unwrap();
    for _ in 0..10 {
        let _ = kill_after(
            bench(&base),
            duration.mul_f64(rng.unit() * 1.1),
            libc::SIGKILL,
        );
        let now = std::fs::read(&base).unwrap();
        if now != old {
            // Killed after the rename or not killed at all: the complete new baseline.
            let v: serde_json::Value = serde_json::from_slice(&now).unwrap();
            assert_eq!(v["schema"], "parity.bench/v1");
            old = now;
        }
    }
    // A re-run works; it sweeps any temporary file a killed run left.
    assert!(bench(&base).status().unwrap().success());
    assert_eq!(listing(tmp.path()), ["base.json"]);
}
