//! `check --shard I/N` and `parity merge`: the shards of a run partition its cases, and
//! merging their reports gives the unsharded run's cases, summary and verdict. Also
//! checks that the ready-to-copy CI workflows in `ci/` parse (Python's `yaml` from `.venv`).

use crate::common::*;

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `check models --format json` with extra args, writing `out`; returns the report.
fn check(out: &Path, extra: &[&str]) -> Value {
    let models = root().join("models");
    let mut args = vec![
        "check",
        models.to_str().unwrap(),
        "--backend",
        "tract-cpu",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = parity(&args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    read_json(out)
}

type Row = (String, String, String, String);

fn rows(report: &Value) -> Vec<Row> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap().to_string();
            (s("suite"), s("case"), s("backend"), s("verdict"))
        })
        .collect()
}

#[test]
fn merged_shards_equal_the_unsharded_run() {
    let tmp = tempfile::tempdir().unwrap();
    let all = check(&tmp.path().join("all.json"), &[]);
    let mut files = Vec::new();
    let mut seen: Vec<Row> = Vec::new();
    for i in 1..=3 {
        let file = tmp.path().join(format!("shard{i}.json"));
        let shard = format!("{i}/3");
        let report = check(&file, &["--shard", &shard]);
        assert_eq!(report["shard"], shard.as_str());
        seen.extend(rows(&report));
        files.push(file);
    }
    // Every case in exactly one shard.
    let unique: BTreeSet<Row> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a case ran in two shards");
    let expected: BTreeSet<Row> = rows(&all).into_iter().collect();
    assert_eq!(unique, expected);

    let merged_file = tmp.path().join("merged.json");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--format", "json", "--out", merged_file.to_str().unwrap()]);
    let o = parity(&args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let merged = read_json(&merged_file);
    assert_eq!(merged["schema"], "parity.report/v1");
    assert_eq!(merged["summary"], all["summary"]);
    assert_eq!(merged["verdict"], all["verdict"]);
    assert_eq!(merged["suites"], all["suites"]);
    assert_eq!(merged["merged"].as_array().unwrap().len(), 3);
    let schema: Value = read_json(&root().join("docs/report.schema.json"));
    let validator = jsonschema::validator_for(&schema).unwrap();
    for report in [&merged, &read_json(&files[0])] {
        let errors: Vec<String> = validator
            .iter_errors(report)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
    let merged_rows: Vec<Row> = rows(&merged);
    assert_eq!(
        merged_rows.iter().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    // Sorted by suite, then data set, then backend: the unsharded run's own order here.
    assert_eq!(merged_rows, rows(&all));

    // The other formats render the merged report, with the same exit code.
    for format in ["text", "junit", "markdown"] {
        let mut args = vec!["merge"];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        args.extend(["--format", format]);
        let o = parity(&args);
        assert_eq!(o.code, 0, "{format}: {}", o.stderr);
        assert!(!o.stdout.is_empty(), "{format}");
    }
}

#[test]
fn merged_shards_carry_the_runs_suites_and_matrix() {
    let tmp = tempfile::tempdir().unwrap();
    let extra = ["--backend", "candle-cpu", "--matrix"];
    let all = check(&tmp.path().join("all.json"), &extra);
    let mut files = Vec::new();
    for i in 1..=3 {
        let file = tmp.path().join(format!("shard{i}.json"));
        let shard = format!("{i}/3");
        check(&file, &[&extra[..], &["--shard", &shard]].concat());
        files.push(file);
    }
    let merged_file = tmp.path().join("merged.json");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["--format", "json", "--out", merged_file.to_str().unwrap()]);
    let o = parity(&args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let merged = read_json(&merged_file);
    assert_eq!(merged["suites"], all["suites"]);
    assert_eq!(all["suites"].as_array().unwrap().len(), 4);
    assert_eq!(merged["matrix"], all["matrix"]);
    assert_eq!(
        all["matrix"].as_array().unwrap().len(),
        5,
        "mlp 2 outputs, cnn, lm, transformer"
    );

    // Shards of different files are refused: one shard's model hash changed.
    let mut bad = read_json(&files[1]);
    bad["suites"][0]["model_sha256"] = Value::from("00".repeat(32));
    std::fs::write(&files[1], bad.to_string()).unwrap();
    let mut args = vec!["merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let o = parity(&args);
    assert_clean_error(&o, "was checked with model sha256 0000");
}

#[test]
fn merging_one_report_keeps_every_case_field() {
    let tmp = tempfile::tempdir().unwrap();
    let all = check(&tmp.path().join("all.json"), &[]);
    let o = parity(&[
        "merge",
        tmp.path().join("all.json").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let merged: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(merged["cases"], all["cases"]);
    assert_eq!(merged["environment"], all["environment"]);
}

#[test]
fn merge_keeps_a_failing_verdict_and_rejects_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let all = check(&tmp.path().join("all.json"), &[]);
    // Turn one case into a failure: the merged verdict and exit code follow it.
    let mut failing = all.clone();
    failing["cases"][0]["verdict"] = "fail".into();
    failing["verdict"] = "fail".into();
    let fail_file = tmp.path().join("fail.json");
    std::fs::write(&fail_file, failing.to_string()).unwrap();
    let o = parity(&["merge", fail_file.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let merged: Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(merged["verdict"], "fail");
    assert_eq!(merged["summary"]["failed"], 1);

    // The same cases twice, another schema, not JSON, a missing file: exit 2 naming it.
    let all_file = tmp.path().join("all.json");
    let bench = tmp.path().join("bench.json");
    std::fs::write(&bench, r#"{"schema": "parity.bench/v1"}"#).unwrap();
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "<testsuites/>").unwrap();
    let missing = tmp.path().join("missing.json");
    for (files, name) in [
        (vec![&all_file, &all_file], "all.json"),
        (vec![&all_file, &bench], "bench.json"),
        (vec![&junk], "junk.json"),
        (vec![&missing], "missing.json"),
    ] {
        let mut args = vec!["merge"];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let o = parity(&args);
        assert_eq!(o.code, 2, "{name}: {}", o.stderr);
        assert!(o.stderr.contains(name), "{name}: {}", o.stderr);
        assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.stderr);
    }
}

#[test]
fn shard_flag_is_validated_and_an_empty_shard_passes() {
    let models = root().join("models");
    let m = models.to_str().unwrap();
    for bad in ["0/3", "4/3", "1/0", "x"] {
        let o = parity(&["check", m, "--backend", "tract-cpu", "--shard", bad]);
        assert_eq!(o.code, 2, "{bad}: {}", o.stderr);
        assert!(o.stderr.contains("I/N"), "{bad}: {}", o.stderr);
    }
    // 13 cases over 12 shards: some shard selects nothing, and that is a pass.
    let tmp = tempfile::tempdir().unwrap();
    let mut empty = None;
    let mut total = 0;
    for i in 1..=12 {
        let shard = format!("{i}/12");
        let out = tmp.path().join(format!("{i}.json"));
        let report = check(&out, &["--shard", &shard]);
        let n = report["cases"].as_array().unwrap().len();
        total += n;
        if n == 0 && empty.is_none() {
            assert_eq!(report["verdict"], "pass");
            // The report says why it is empty.
            let warning = format!("shard {shard} selects no case");
            assert_eq!(
                report["warnings"],
                serde_json::json!([{ "message": warning }])
            );
            empty = Some(out);
        }
    }
    assert_eq!(total, 13);
    // Merging only empty shards is a run with no case: an error, never a pass.
    let empty = empty.expect("an empty shard among 12");
    let o = parity(&["merge", empty.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    // Its warning is carried into the merged report.
    let warnings = json(&o)["warnings"].clone();
    assert_eq!(warnings.as_array().map(Vec::len), Some(1), "{warnings}");
}

/// Parses `file` with PyYAML from the project's `.venv` and prints a Python expression.
fn yaml(file: &str, expr: &str) -> String {
    let python = root().join(".venv/bin/python");
    let script = format!("import sys, yaml\nd = yaml.safe_load(open(sys.argv[1]))\nprint({expr})");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(root().join("ci").join(file))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", python.display()));
    assert!(
        out.status.success(),
        "{file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn ci_workflows_parse() {
    // GitHub Actions: a CPU job, a GPU shard matrix and a merge job after it; the
    // candle-cuda build and ci/gpu-check.sh on a self-hosted GPU runner after it.
    assert_eq!(
        yaml(
            "github-actions.yml",
            "sorted(d['jobs']), 'on' in d or True in d, d['jobs']['merge']['needs']"
        ),
        "['cpu', 'cuda-build', 'gpu', 'gpu-check', 'merge'] True gpu"
    );
    assert_eq!(
        yaml(
            "github-actions.yml",
            "d['jobs']['gpu-check']['needs'], d['jobs']['gpu-check']['runs-on'], \
             any('ci/build-cuda.sh' in str(s.get('run')) for s in d['jobs']['cuda-build']['steps']), \
             any('ci/gpu-check.sh' in str(s.get('run')) for s in d['jobs']['gpu-check']['steps'])"
        ),
        "cuda-build ['self-hosted', 'gpu'] True True"
    );
    assert_eq!(
        yaml(
            "github-actions.yml",
            "d['jobs']['gpu']['runs-on'], len(d['jobs']['gpu']['strategy']['matrix']['shard'])"
        ),
        "['self-hosted', 'gpu'] 4"
    );
    // GitLab CI: stages, and a parallel job sharded by CI_NODE_INDEX/CI_NODE_TOTAL.
    assert_eq!(
        yaml(
            "gitlab-ci.yml",
            "d['stages'], d['gpu']['parallel'], 'CI_NODE_INDEX' in str(d['gpu']['script'])"
        ),
        "['test', 'merge'] 4 True"
    );
    // Kubernetes: an Indexed Job whose completion index picks the shard.
    assert_eq!(
        yaml(
            "k8s-indexed-job.yaml",
            "d['kind'], d['spec']['completionMode'], d['spec']['completions'], 'JOB_COMPLETION_INDEX' in str(d)"
        ),
        "Job Indexed 4 True"
    );
}
