//! Integration tests of the `exec:COMMAND` backend: the reference runner in examples/exec
//! joins `check --matrix` next to ort-cpu, `record` and `bench` work through it, and a
//! runner that crashes, hangs, breaks the protocol or writes wrong outputs gets the
//! verdict and message that fault deserves while the run goes on.

use crate::common::*;

use serde_json::Value;

/// A file of this repository, quoted for an `exec:` command line.
fn quoted(rel: &str) -> String {
    format!("'{}'", s(&root().join(rel)))
}

/// The reference runner (ONNX Runtime in the project's .venv) as a backend name.
fn example() -> String {
    format!(
        "exec:{} {}",
        quoted(".venv/bin/python"),
        quoted("examples/exec/ort_runner.py")
    )
}

/// The misbehaving runner of tests/fixtures/exec, committing `fault`.
fn faulty(fault: &str) -> String {
    format!(
        "exec:{} {} {fault}",
        quoted(".venv/bin/python"),
        quoted("tests/fixtures/exec/faulty_runner.py")
    )
}

/// The report rows of one backend, in case order.
fn rows<'a>(report: &'a Value, backend: &str) -> Vec<&'a Value> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["backend"] == backend)
        .collect()
}

/// The comparison of output `name` in a case row.
fn output<'a>(row: &'a Value, name: &str) -> &'a Value {
    row["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no output {name} in {row}"))
}

#[test]
fn the_example_runner_joins_the_matrix_next_to_in_process_backends() {
    let runner = example();
    let models = models();
    let o = parity(&[
        "check",
        s(&models),
        "--backend",
        "ort-cpu",
        "--backend",
        &runner,
        "--backend",
        "tract-cpu",
        "--matrix",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    let report = json(&o);
    assert_eq!(report["summary"]["cases"], 39, "{}", report["summary"]);
    assert_eq!(report["summary"]["passed"], 39, "{}", report["summary"]);
    let info = report["environment"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == runner.as_str())
        .unwrap_or_else(|| panic!("{runner} not in {}", report["environment"]));
    assert_eq!(info["version"], "onnxruntime 1.31.1");
    assert_eq!(info["device"], "cpu");
    let ran = rows(&report, &runner);
    // 3 cases of each of 3 models, and 4 greedy generations of the language model.
    assert_eq!(ran.len(), 13);
    for row in ran {
        assert_eq!(row["verdict"], "pass", "{row}");
        assert!(row["latency_ms"].as_f64().unwrap() > 0.0, "{row}");
        for out in row["outputs"].as_array().unwrap() {
            assert!(out["total"].as_u64().unwrap() > 0, "{out}");
            assert_eq!(out["mismatched"], 0, "{out}");
            let err = out["max_abs_err"].as_f64().unwrap();
            assert!(err.is_finite() && err < 1e-4, "{out}");
        }
    }
    let matrix = report["matrix"].as_array().expect("matrix");
    assert_eq!(
        matrix.len(),
        5,
        "cnn logits, lm logits, mlp logits+probs, transformer hidden"
    );
    for m in matrix {
        let names: Vec<&str> = m["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap())
            .collect();
        assert_eq!(names, ["ort-cpu", runner.as_str(), "tract-cpu"]);
        for key in ["max_abs_err", "max_rel_err"] {
            let cell = |i: usize, j: usize| {
                m[key][i][j]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{key}[{i}][{j}] of {m}"))
            };
            for i in 0..3 {
                assert_eq!(cell(i, i), 0.0, "{key} diagonal of {m}");
                for j in 0..3 {
                    assert!((0.0..1e-2).contains(&cell(i, j)), "{key} of {m}");
                }
            }
            // The runner runs the same ONNX Runtime build as ort-cpu: it agrees with
            // ort-cpu, and differs from tract-cpu exactly as much as ort-cpu does.
            assert!(cell(0, 1) < 1e-5 && cell(1, 0) < 1e-5, "{key} of {m}");
            assert!((cell(1, 2) - cell(0, 2)).abs() < 1e-5, "{key} of {m}");
            assert!((cell(2, 1) - cell(2, 0)).abs() < 1e-5, "{key} of {m}");
        }
    }
}

#[test]
fn each_fault_gets_its_verdict_and_message_and_the_run_goes_on() {
    let faults = [
        "crash",
        "garbage",
        "refuse",
        "wrong-shape",
        "wrong-dtype",
        "missing-output",
        "extra-output",
        "no-output-file",
        "fail-load",
    ];
    let names: Vec<String> = faults.iter().map(|f| faulty(f)).collect();
    let suite = models().join("mlp");
    let mut args = vec!["check", s(&suite), "--format", "json"];
    for name in &names {
        args.extend(["--backend", name.as_str()]);
    }
    let o = parity(&args);
    assert_eq!(
        o.code, 2,
        "errors decide the exit code; stderr: {}",
        o.stderr
    );
    let report = json(&o);
    assert_eq!(report["summary"]["cases"], 27, "{}", report["summary"]);
    let errors = [
        (
            "crash",
            "the runner exited (exit status: 3) before its reply to `run`; stderr: \
             Traceback (most recent call last): | RuntimeError: boom in the runtime",
        ),
        (
            "garbage",
            "the runner answered `run` with `hello there`, not `ok` or `error MESSAGE` (parity-exec/1)",
        ),
        (
            "refuse",
            "the runner failed `run`: RuntimeError: no kernel for Gemm on this device",
        ),
        (
            "extra-output",
            "the runner wrote output `bogus`, which the model does not declare (outputs: logits, probs)",
        ),
        (
            "no-output-file",
            "the runner answered `ok` to `run` but wrote no outputs file",
        ),
        (
            "fail-load",
            "the runner failed `load`: cannot compile the model for this device",
        ),
    ];
    for (fault, message) in errors {
        let ran = rows(&report, &faulty(fault));
        assert_eq!(ran.len(), 3, "{fault}: every case is reported");
        for row in ran {
            assert_eq!(row["verdict"], "error", "{fault}: {row}");
            assert_eq!(row["error"], message, "{fault}");
        }
    }
    for (fault, bad) in [
        ("wrong-shape", "logits"),
        ("wrong-dtype", "logits"),
        ("missing-output", "probs"),
    ] {
        let ran = rows(&report, &faulty(fault));
        assert_eq!(ran.len(), 3, "{fault}");
        for row in ran {
            assert_eq!(row["verdict"], "fail", "{fault}: {row}");
            let out = output(row, bad);
            assert_eq!(out["verdict"], "fail", "{fault}: {row}");
            let problem = match fault {
                // The runner flattens [batch, 10] logits; batches differ between data sets.
                "wrong-shape" => {
                    let batch = out["shape"][0].as_u64().unwrap();
                    format!("shape [{batch},10] expected, got [{}]", batch * 10)
                }
                "wrong-dtype" => "dtype f32 expected, got f64".to_string(),
                _ => "missing: the candidate did not produce this output".to_string(),
            };
            assert_eq!(out["problem"], problem.as_str(), "{fault}: {row}");
            let good = if bad == "logits" { "probs" } else { "logits" };
            assert_eq!(output(row, good)["verdict"], "pass", "{fault}: {row}");
        }
    }
}

#[test]
fn a_hung_runner_is_stopped_and_the_next_case_gets_a_fresh_one() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("hung-once");
    let runner = format!("{} '{}'", faulty("hang-once"), s(&marker));
    let suite = models().join("mlp");
    let o = parity_env(
        &["check", s(&suite), "--backend", &runner, "--format", "json"],
        &[("PARITY_EXEC_TIMEOUT", "10")],
    );
    assert_eq!(o.code, 2, "stderr: {}", o.stderr);
    let report = json(&o);
    let ran = rows(&report, &runner);
    assert_eq!(ran.len(), 3);
    assert_eq!(ran[0]["verdict"], "error");
    assert_eq!(
        ran[0]["error"],
        "the runner sent no reply to `run` within 10 s (PARITY_EXEC_TIMEOUT); parity stopped it; \
         stderr: stuck in the first run"
    );
    for row in &ran[1..] {
        assert_eq!(row["verdict"], "pass", "{row}");
    }
}

/// The `parity-exec-*` directories left in `tmp`.
fn exchange_dirs(tmp: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("parity-exec-"))
        .collect()
}

#[test]
fn a_runner_that_makes_its_files_fifos_errs_in_time_and_leaves_no_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let runner = faulty("fifo-files");
    let suite = models().join("mlp");
    let start = std::time::Instant::now();
    // Killed after 60 s, should the run hang on a FIFO.
    let out = std::process::Command::new("timeout")
        .args(["-s", "KILL", "60", env!("CARGO_BIN_EXE_parity")])
        .args(["check", s(&suite), "--backend", &runner, "--format", "json"])
        .env("PARITY_EXEC_TIMEOUT", "30")
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let o = Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_eq!(o.code, 2, "stderr: {}", o.stderr);
    assert!(start.elapsed().as_secs() < 30, "{:?}", start.elapsed());
    let report = json(&o);
    let ran = rows(&report, &runner);
    assert_eq!(ran.len(), 3, "every case is reported");
    for row in ran {
        assert_eq!(row["verdict"], "error", "{row}");
        let error = row["error"].as_str().unwrap();
        assert!(
            error.starts_with("the runner's outputs file ")
                && error.ends_with("/outputs.npz is a FIFO, not a regular file"),
            "{error}"
        );
    }
    assert_eq!(exchange_dirs(tmp.path()), Vec::<String>::new());
}

#[test]
fn an_isolated_worker_killed_on_a_timeout_takes_its_runner_with_it() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().join("hung-once");
    let runner = format!("{} '{}'", faulty("hang-once"), s(&marker));
    let suite = models().join("mlp");
    let o = parity_env(
        &[
            "check",
            s(&suite),
            "--backend",
            &runner,
            "--isolate",
            // Room for a loaded machine to start Python and onnxruntime in time.
            "--timeout",
            "8",
            "--format",
            "json",
        ],
        &[("PARITY_EXEC_TIMEOUT", "600"), ("TMPDIR", s(tmp.path()))],
    );
    assert_eq!(o.code, 2, "stderr: {}", o.stderr);
    let report = json(&o);
    let ran = rows(&report, &runner);
    assert_eq!(ran[0]["error"], "timed out after 8 s (worker killed)");
    for row in &ran[1..] {
        assert_eq!(row["verdict"], "pass", "{row}");
    }
    // A killed worker cannot remove its exchange directory: the next worker's load
    // swept the timed-out one's; the last worker, healthy, was let end by itself at the
    // end of the run and removed its own.
    assert_eq!(exchange_dirs(tmp.path()), Vec::<String>::new());
    let o = parity_env(
        &["check", s(&suite), "--backend", &faulty("refuse")],
        &[("TMPDIR", s(tmp.path()))],
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(exchange_dirs(tmp.path()), Vec::<String>::new());
    // No process is left whose command line names this test's marker file (SIGKILL is
    // delivered asynchronously: a busy machine may take a moment to end the last one).
    let needle = marker.to_string_lossy().into_owned();
    let running = || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&needle))
            .collect()
    };
    let mut left = running();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = running();
    }
    assert!(left.is_empty(), "still running: {left:?}");
}

#[test]
fn unusable_runners_are_one_line_errors() {
    let suite = models().join("mlp");
    let check = |backend: &str| parity(&["check", s(&suite), "--backend", backend]);
    assert_clean_error(&check("exec:"), "the command after `exec:` is empty");
    assert_clean_error(
        &check("exec:'unclosed"),
        "cannot split the command `'unclosed` into words (unclosed quote or trailing backslash)",
    );
    assert_clean_error(
        &check("exec:/nonexistent/runner --flag"),
        "backend exec:/nonexistent/runner --flag is unavailable: cannot start `/nonexistent/runner`: No such file or directory",
    );
    assert_clean_error(
        &check(&faulty("bad-handshake")),
        "is unavailable: the runner's first line is `loading model, please wait`, not a `parity-exec/1 {...}` handshake",
    );
    let o = parity_env(
        &["check", s(&suite), "--backend", &example()],
        &[("PARITY_EXEC_TIMEOUT", "soon")],
    );
    assert_clean_error(
        &o,
        "is unavailable: PARITY_EXEC_TIMEOUT=`soon` is not a number of seconds greater than 0",
    );

    // `parity backends` names the same reasons without failing.
    let o = parity(&[
        "backends",
        "--backend",
        "exec:/nonexistent/runner",
        "--backend",
        &example(),
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    let list = json(&o)["backends"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["available"], false);
    assert_eq!(
        list[0]["reason"],
        "cannot start `/nonexistent/runner`: No such file or directory (os error 2)"
    );
    assert_eq!(list[1]["available"], true);
    assert_eq!(list[1]["version"], "onnxruntime 1.31.1");
    assert_clean_error(
        &parity(&["backends", "--backend", "ort-gpu"]),
        "unknown backend `ort-gpu`",
    );
}

#[test]
fn record_and_bench_run_through_the_runner() {
    let runner = example();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("recorded");
    let suite = models().join("mlp");
    let model = suite.join("model.onnx");
    let o = parity(&[
        "record",
        s(&model),
        "--inputs",
        s(&suite),
        "--backend",
        &runner,
        "--out",
        s(&out),
    ]);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    let provenance = &manifest(&out)["provenance"];
    assert_eq!(provenance["backend"].as_str(), Some(runner.as_str()));
    assert_eq!(
        provenance["backend_version"].as_str(),
        Some("onnxruntime 1.31.1")
    );
    // Goldens recorded by the runner hold on the in-process engine.
    let o = parity(&["check", s(&out), "--backend", "ort-cpu", "--format", "json"]);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    assert_eq!(json(&o)["summary"]["passed"], 3);

    let o = parity(&[
        "bench",
        s(&suite),
        "--backend",
        &runner,
        "--warmup",
        "2",
        "--min-queries",
        "20",
        "--min-duration",
        "0",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "stderr: {}", o.stderr);
    let result = &json(&o)["results"][0];
    assert_eq!(result["backend"].as_str(), Some(runner.as_str()));
    assert!(result["queries"].as_u64().unwrap() >= 20, "{result}");
    assert!(
        result["latency_ms"]["p50"].as_f64().unwrap() > 0.0,
        "{result}"
    );
    assert!(result["error"].is_null(), "{result}");
}

#[test]
fn the_example_runner_is_checked_for_invariance() {
    let runner = example();
    let o = parity(&[
        "invariance",
        s(&models().join("mlp")),
        "--backend",
        &runner,
        "--check",
        "repeat,session,threads,batch,optimization",
        "--repeats",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let r = json(&o);
    assert_schema(&r, "invariance.schema.json");
    // 3 data sets x 4 checks; the runtime's optimisation levels are its own business.
    assert_eq!(r["summary"]["results"], 12, "{}", r["summary"]);
    assert_eq!(r["summary"]["errors"], 0);
    assert_eq!(r["not_applicable"][0]["check"], "optimization");
    for x in r["results"].as_array().unwrap() {
        if matches!(x["check"].as_str(), Some("repeat" | "session")) {
            assert_eq!(x["outcome"], "bitwise", "{x:#}");
        }
    }
}
