//! Helpers shared by the integration tests: run the `parity` binary, find and copy the
//! bundled suites, read its JSON, assert the one-line error contract.
#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of the binary did.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `parity ARGS...` (no backtraces, whatever the caller's environment).
pub fn parity(args: &[&str]) -> Outcome {
    parity_env(args, &[])
}

/// Runs `parity ARGS...` with these environment variables set.
pub fn parity_env(args: &[&str], envs: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_parity"));
    cmd.args(args)
        .env_remove("RUST_BACKTRACE")
        .envs(envs.iter().copied());
    let out = default_signals(&mut cmd).output().expect("run parity");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Gives the child SIGINT and SIGTERM's default handling. parity keeps a stop signal
/// ignored when it starts ignored (`nohup`, a background job of a non-interactive
/// shell), so a test run launched that way would otherwise see no signal at all.
pub fn default_signals(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        })
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled suites.
pub fn models() -> PathBuf {
    root().join("models")
}

/// Copies a directory tree.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

/// Copies a bundled suite into a temporary directory so a test can damage it.
pub fn copy_suite(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join(name);
    copy_dir(&models().join(name), &dst);
    (tmp, dst)
}

/// The run's stdout as JSON.
pub fn json(o: &Outcome) -> Value {
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", o.stdout))
}

/// Asserts a clean exit-2 error: one line on stderr, naming `needle`, no panic.
pub fn assert_clean_error(o: &Outcome, needle: &str) {
    assert_eq!(o.code, 2, "stdout: {}\nstderr: {}", o.stdout, o.stderr);
    let lines: Vec<_> = o.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {}", o.stderr);
    assert!(lines[0].contains(needle), "`{needle}` not in: {}", o.stderr);
    assert!(
        !o.stderr.contains("panicked") && !o.stderr.contains("backtrace"),
        "{}",
        o.stderr
    );
}

/// A path as a command-line argument (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A suite's `parity.toml`, parsed.
pub fn manifest(suite: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(suite.join("parity.toml")).unwrap()).unwrap()
}

/// Asserts that `report` validates against the JSON schema `docs/SCHEMA`, listing every
/// violation when it does not.
pub fn assert_schema(report: &Value, schema: &str) {
    let path = root().join("docs").join(schema);
    let parsed: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&parsed).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{schema}: {errors:?}");
}

/// Runs a Python snippet with the project's .venv (onnx, onnxruntime, numpy; made by
/// scripts/setup.sh), `args` as `sys.argv[1:]`; panics with its stderr when it fails.
pub fn python(code: &str, args: &[&Path]) {
    let out = Command::new(root().join(".venv/bin/python"))
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("run .venv/bin/python (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `scripts/SCRIPT ARGS...` with the project's .venv and returns its stdout;
/// panics with its stderr when it fails.
pub fn python_script(script: &str, args: &[&str]) -> String {
    let out = Command::new(root().join(".venv/bin/python"))
        .arg(root().join("scripts").join(script))
        .args(args)
        .output()
        .expect("run .venv/bin/python (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
