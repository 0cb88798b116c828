//! Integration tests of the CI report formats: `parity check` and `parity compare` with
//! `--format junit` (validated against the Jenkins `junit-10.xsd` in tests/fixtures/ by
//! Python's `xmlschema` from the repository's `.venv`, see requirements.txt) and
//! `--format markdown`, on the bundled suites and on damaged copies.

use crate::common::*;

use parity::formats;
use parity::tensor::Tensor;
use std::path::{Path, PathBuf};

/// A copy of the MLP suite whose `test_data_set_1` golden logit [2, 3] is 1 % off.
fn damaged_mlp(parent: &Path, dir_name: &str) -> PathBuf {
    let suite = parent.join(dir_name);
    copy_dir(&models().join("mlp"), &suite);
    let path = suite.join("test_data_set_1/output_0.pb");
    let (name, t) = formats::read_tensor(&path).unwrap();
    assert_eq!(t.shape(), [4, 10]);
    let mut v = t.values::<f32>().unwrap().into_owned();
    v[23] *= 1.01; // flat 23 = [2, 3]
    let t = Tensor::from_vec(t.shape().to_vec(), v).unwrap();
    formats::write_tensor(&path, &name.unwrap_or_default(), &t).unwrap();
    suite
}

const VALIDATE: &str = r#"
import sys
try:
    import xmlschema
except ImportError as e:
    sys.stderr.write(f"{e}: install requirements.txt into .venv (scripts/setup.sh)\n")
    sys.exit(3)
schema = xmlschema.XMLSchema(sys.argv[1])
try:
    errors = [f"{e.reason} at {e.path}" for e in schema.iter_errors(sys.argv[2])]
except Exception as e:  # not well-formed XML
    errors = [f"{type(e).__name__}: {e}"]
print("\n".join(errors))
sys.exit(1 if errors else 0)
"#;

/// The validator's verdict on `xml` against tests/fixtures/junit-10.xsd: `Err` lists
/// what is wrong. Panics when the validator itself cannot run.
fn validate_junit(xml: &str) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let python = root().join(".venv/bin/python");
    let xsd = root().join("tests/fixtures/junit-10.xsd");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(VALIDATE)
        .arg(&xsd)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(stdout),
        _ => panic!(
            "the validator did not run: {}{}",
            stdout,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

pub(crate) fn assert_valid(xml: &str) {
    if let Err(e) = validate_junit(xml) {
        panic!("JUnit XML invalid against junit-10.xsd:\n{e}\n{xml}");
    }
}

/// The value of `name="..."` in the first element that starts with `element`.
fn attr<'a>(xml: &'a str, element: &str, name: &str) -> &'a str {
    let start = xml.find(element).unwrap_or_else(|| panic!("no {element}"));
    let tag = &xml[start..start + xml[start..].find('>').unwrap()];
    let key = format!(" {name}=\"");
    let at = tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + key.len();
    &tag[at..at + tag[at..].find('"').unwrap()]
}

#[test]
fn validator_rejects_what_the_schema_forbids() {
    // `tests` is required on <testsuite>; <testcase> needs a name.
    let missing_tests = "<testsuites><testsuite name=\"x\"/></testsuites>";
    assert!(validate_junit(missing_tests).is_err());
    let nameless =
        "<testsuites><testsuite name=\"x\" tests=\"1\"><testcase/></testsuite></testsuites>";
    assert!(validate_junit(nameless).is_err());
    // Surefire time pattern on <testsuite time>: no exponent, at most 3 decimals.
    let bad_time = "<testsuites><testsuite name=\"x\" tests=\"0\" time=\"1e-3\"/></testsuites>";
    assert!(validate_junit(bad_time).is_err());
    assert!(validate_junit("<testsuites><testsuite").is_err());
    let minimal =
        "<testsuites><testsuite name=\"x\" tests=\"0\" failures=\"0\" errors=\"0\" time=\"0.125\"/></testsuites>";
    assert_eq!(validate_junit(minimal), Ok(()));
}

#[test]
fn bundled_suites_in_junit_validate_and_pass() {
    let o = parity(&["check", models().to_str().unwrap(), "--format", "junit"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert_valid(&o.stdout);
    let x = &o.stdout;
    assert_eq!(attr(x, "<testsuites", "tests"), "39");
    assert_eq!(attr(x, "<testsuites", "failures"), "0");
    assert_eq!(attr(x, "<testsuites", "errors"), "0");
    assert_eq!(x.matches("<testcase ").count(), 39);
    assert_eq!(
        x.matches("<testsuite ").count(),
        12,
        "4 models x 3 backends"
    );
    assert!(!x.contains("<failure") && !x.contains("<error"), "{x}");
    let mlp = models().join("mlp").display().to_string();
    assert!(
        x.contains(&format!(
            "<testsuite name=\"{mlp} [tract-cpu]\" tests=\"3\""
        )),
        "{x}"
    );
    assert!(x.contains("<property name=\"backend.ort-cpu.version\" value=\"1.31.1\"/>"));
    assert!(x.contains(&format!(
        "<testcase name=\"test_data_set_2\" classname=\"{mlp}.candle-cpu\" time=\""
    )));
    // Progress bars and colour never leak into machine formats.
    assert!(!x.contains('\x1b'));
}

#[test]
fn damaged_suite_fails_in_junit_and_markdown() {
    let tmp = tempfile::tempdir().unwrap();
    let suite = damaged_mlp(tmp.path(), "mlp");
    let s = suite.to_str().unwrap();
    let args = |format| {
        vec![
            "check",
            s,
            "--backend",
            "ort-cpu",
            "--backend",
            "tract-cpu",
            "--format",
            format,
        ]
    };
    let o = parity(&args("junit"));
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert_valid(&o.stdout);
    let x = &o.stdout;
    assert_eq!(attr(x, "<testsuites", "tests"), "6");
    assert_eq!(attr(x, "<testsuites", "failures"), "2");
    assert_eq!(attr(x, "<testsuites", "errors"), "0");
    for backend in ["ort-cpu", "tract-cpu"] {
        let open = format!("<testsuite name=\"{s} [{backend}]\"");
        assert_eq!(attr(x, &open, "failures"), "1", "{x}");
        assert_eq!(attr(x, &open, "tests"), "3", "{x}");
    }
    assert_eq!(x.matches("<failure ").count(), 2);
    let message = attr(x, "<failure", "message");
    assert!(
        message.starts_with("logits: 1/40 mismatched, worst [2, 3]: expected ")
            && message.ends_with("(atol 1e-5, rtol 1e-4)"),
        "{message}"
    );
    assert_eq!(attr(x, "<failure", "type"), "mismatch");

    let o = parity(&args("markdown"));
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    let md = &o.stdout;
    assert!(
        md.starts_with("## ❌ parity: FAIL — 6 cases, 4 passed, 2 failed, 0 errors\n"),
        "{md}"
    );
    let mut rows = md.lines().filter(|l| l.starts_with(&format!("| `{s}` |")));
    for backend in ["ort-cpu", "tract-cpu"] {
        let row = rows
            .next()
            .unwrap_or_else(|| panic!("no row for {backend}: {md}"));
        assert!(
            row.starts_with(&format!("| `{s}` | `{backend}` | 3 | 2 | 1 | 0 | 0.0099")),
            "{row}"
        );
    }
    assert_eq!(md.matches("<details>").count(), 2, "{md}");
    let block = md
        .split("<details>")
        .nth(1)
        .and_then(|b| b.split("</details>").next())
        .unwrap();
    assert!(block.contains("test_data_set_1"), "{block}");
    assert!(
        block.contains("| `logits` | 1/40 (2.500%) | `[2, 3]` |"),
        "{block}"
    );
    assert!(block.contains("| 1e-5 | 1e-4 |"), "{block}");
    let env = md.split("### Environment").nth(1).unwrap();
    assert!(env.contains("- parity 0.1.0"), "{env}");
    assert!(env.contains("`ort-cpu` 1.31.1 (cpu)"), "{env}");
    assert!(env.contains("`tract-cpu` tract-onnx 0.23.9 (cpu)"), "{env}");
}

#[test]
fn odd_suite_path_and_error_case_stay_valid() {
    // A directory name with every XML and Markdown metacharacter, a failing case and a
    // case whose input is truncated (error).
    let tmp = tempfile::tempdir().unwrap();
    let suite = damaged_mlp(tmp.path(), "odd <&\"'> | name");
    let input = suite.join("test_data_set_2/input_0.pb");
    let bytes = std::fs::read(&input).unwrap();
    std::fs::write(&input, &bytes[..bytes.len() / 2]).unwrap();
    let s = suite.to_str().unwrap();
    let o = parity(&["check", s, "--backend", "ort-cpu", "--format", "junit"]);
    assert_eq!(o.code, 2, "{}\n{}", o.stdout, o.stderr);
    assert_valid(&o.stdout);
    let x = &o.stdout;
    assert_eq!(attr(x, "<testsuites", "failures"), "1");
    assert_eq!(attr(x, "<testsuites", "errors"), "1");
    let escaped = s
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;");
    assert!(
        x.contains(&format!("<testsuite name=\"{escaped} [ort-cpu]\"")),
        "{x}"
    );
    assert_eq!(attr(x, "<error", "type"), "error");
    assert!(
        attr(x, "<error", "message").contains("test_data_set_2/input_0.pb"),
        "{x}"
    );

    let o = parity(&["check", s, "--backend", "ort-cpu", "--format", "markdown"]);
    assert_eq!(o.code, 2);
    let md = &o.stdout;
    assert!(
        md.starts_with("## ⚠️ parity: ERROR — 3 cases, 1 passed, 1 failed, 1 errors\n"),
        "{md}"
    );
    let row = format!(
        "| `{}` | `ort-cpu` | 3 | 1 | 1 | 1 |",
        s.replace('|', "\\|")
    );
    assert!(md.contains(&row), "{row} not in {md}");
    assert_eq!(md.matches("<details>").count(), 2, "{md}");
    assert!(
        md.contains("odd &lt;&amp;&quot;'&gt; | name</code>"),
        "{md}"
    );
}

#[test]
fn compare_writes_junit_and_markdown() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let mut v: Vec<f32> = (0..1000).map(|i| (i as f32).sin() + 2.0).collect();
    for dir in [&a, &b] {
        formats::write_tensor(
            &dir.join("same.npy"),
            "same",
            &Tensor::from_vec(vec![10, 100], v.clone()).unwrap(),
        )
        .unwrap();
    }
    formats::write_tensor(
        &a.join("x.npy"),
        "x",
        &Tensor::from_vec(vec![10, 100], v.clone()).unwrap(),
    )
    .unwrap();
    v[517] *= 1.01;
    formats::write_tensor(
        &b.join("x.npy"),
        "x",
        &Tensor::from_vec(vec![10, 100], v).unwrap(),
    )
    .unwrap();
    let out = tmp.path().join("report.xml");
    let (sa, sb, so) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let o = parity(&["compare", sa, sb, "--format", "junit", "--out", so]);
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    let x = std::fs::read_to_string(&out).unwrap();
    assert_valid(&x);
    assert_eq!(attr(&x, "<testsuites", "tests"), "2");
    assert_eq!(attr(&x, "<testsuites", "failures"), "1");
    assert!(
        attr(&x, "<failure", "message").contains("worst [5, 17]"),
        "{x}"
    );
    let o = parity(&["compare", sa, sb, "--format", "markdown"]);
    assert_eq!(o.code, 1);
    assert!(o
        .stdout
        .starts_with("## ❌ parity: FAIL — 2 cases, 1 passed, 1 failed, 0 errors\n"));
    assert!(o.stdout.contains("`[5, 17]`"), "{}", o.stdout);
}

#[test]
fn junit_markdown_and_html_are_refused_where_there_is_no_report() {
    let model = models().join("mlp/model.onnx");
    for args in [
        vec!["backends", "--format", "junit"],
        vec!["inspect", model.to_str().unwrap(), "--format", "markdown"],
        vec!["backends", "--format", "html"],
    ] {
        let o = parity(&args);
        assert_eq!(o.code, 2, "{}\n{}", o.stdout, o.stderr);
        // Refused by the argument parser, which names what the verb writes.
        assert!(
            o.stderr.contains("[possible values: text, json]"),
            "{}",
            o.stderr
        );
        assert!(o.stdout.is_empty());
    }
}
