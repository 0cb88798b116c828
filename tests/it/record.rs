//! Integration tests of `parity record` and of the integrity checks `check` makes on
//! recorded suites: record → check round trips on every CPU backend (bundled models and
//! a sample of the ONNX project's conformance models), reused inputs kept byte for
//! byte, a flipped byte in a golden file, a swapped model, atomic replacement.

use crate::common::*;

use std::path::{Path, PathBuf};

const BACKENDS: [&str; 3] = ["ort-cpu", "candle-cpu", "tract-cpu"];

/// The ONNX project's backend-test data in the repository's `.venv` (scripts/setup.sh).
fn onnx_data() -> PathBuf {
    let lib = root().join(".venv/lib");
    let entries = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup.sh)", lib.display()));
    for e in entries {
        let p = e
            .unwrap()
            .path()
            .join("site-packages/onnx/backend/test/data");
        if p.is_dir() {
            return p;
        }
    }
    panic!(
        "no onnx backend test data under {} (run scripts/setup.sh)",
        lib.display()
    );
}

fn ok(o: &Outcome) {
    assert_eq!(o.code, 0, "stdout: {}\nstderr: {}", o.stdout, o.stderr);
}

/// `parity check SUITE --format json` on every backend; asserts all three ran and
/// every case passed.
fn check_passes_everywhere(suite: &Path, cases: usize) {
    let o = parity(&["check", s(suite), "--format", "json"]);
    let r = json(&o);
    assert_eq!(o.code, 0, "{}: {}\n{}", suite.display(), o.stdout, o.stderr);
    assert_eq!(r["environment"]["backends"].as_array().unwrap().len(), 3);
    assert_eq!(r["summary"]["cases"], cases * 3, "{}", suite.display());
    assert_eq!(r["summary"]["passed"], cases * 3);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
}

fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// Files and directories directly in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn bundled_models_round_trip_on_every_backend() {
    let tmp = tempfile::tempdir().unwrap();
    for model in ["mlp", "cnn", "transformer"] {
        let model_dir = models().join(model);
        let mut dims = vec!["--dim", "batch=2"];
        if model == "transformer" {
            dims.extend(["--dim", "seq=8"]);
        }
        for backend in BACKENDS {
            let out = tmp.path().join(format!("{model}-{backend}"));
            let mut args = vec![
                "record",
                s(&model_dir),
                "--out",
                s(&out),
                "--random",
                "3",
                "--seed",
                "1",
                "--backend",
                backend,
            ];
            args.extend(&dims);
            let o = parity(&args);
            ok(&o);
            assert!(o.stdout.starts_with("recorded "), "{}", o.stdout);
            let m = manifest(&out);
            assert_eq!(m["provenance"]["backend"].as_str(), Some(backend));
            check_passes_everywhere(&out, 3);
        }
    }
}

#[test]
fn conformance_models_round_trip_on_every_backend() {
    let data = onnx_data();
    let tmp = tempfile::tempdir().unwrap();
    for case in [
        "pytorch-converted/test_Conv2d_groups",
        "pytorch-converted/test_ConvTranspose2d",
        "pytorch-converted/test_MaxPool1d_stride",
        "pytorch-converted/test_LogSoftmax",
        "pytorch-operator/test_operator_reduced_mean_keepdim",
        "pytorch-operator/test_operator_permute2",
    ] {
        for backend in BACKENDS {
            let name = format!("{}-{backend}", case.replace('/', "-"));
            let out = tmp.path().join(name);
            let o = parity(&[
                "record",
                s(&data.join(case)),
                "--out",
                s(&out),
                "--random",
                "2",
                "--seed",
                "7",
                "--backend",
                backend,
            ]);
            ok(&o);
            check_passes_everywhere(&out, 2);
        }
    }
    // Integer indices: the table has 4 rows, so generated ids in [0, 10) are out of
    // range for the backend (a clean error); reusing the stored inputs works.
    let embedding = data.join("pytorch-converted/test_Embedding");
    let out = tmp.path().join("embedding");
    let o = parity(&["record", s(&embedding), "--out", s(&out), "--random", "1"]);
    assert_clean_error(&o, "indices");
    assert!(!out.exists());
    ok(&parity(&[
        "record",
        s(&embedding),
        "--out",
        s(&out),
        "--inputs",
        s(&embedding),
    ]));
    check_passes_everywhere(&out, 1);
}

#[test]
fn provenance_and_digests_are_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    ok(&parity(&[
        "record",
        s(&models().join("mlp/model.onnx")),
        "--out",
        s(&out),
        "--random",
        "2",
        "--dim",
        "batch=3",
        "--rtol",
        "0.001",
    ]));
    assert_eq!(
        listing(&out),
        [
            "model.onnx",
            "parity.toml",
            "test_data_set_0",
            "test_data_set_1"
        ]
    );
    assert_eq!(
        listing(&out.join("test_data_set_0")),
        ["input_0.pb", "output_0.pb", "output_1.pb"]
    );
    let m = manifest(&out);
    let p = &m["provenance"];
    for key in [
        "parity_version",
        "backend",
        "backend_version",
        "device",
        "host",
        "cpu",
        "os",
        "date",
        "model_sha256",
        "inputs",
    ] {
        assert!(p[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {p}");
    }
    assert_eq!(p["backend"].as_str(), Some("ort-cpu"));
    assert_eq!(
        p["parity_version"].as_str(),
        Some(env!("CARGO_PKG_VERSION"))
    );
    let date = p["date"].as_str().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "{date}"
    );
    let inspect = json(&parity(&[
        "inspect",
        s(&models().join("mlp/model.onnx")),
        "--format",
        "json",
    ]));
    assert_eq!(p["model_sha256"].as_str(), inspect["sha256"].as_str());
    // Tolerances: the dtype default atol, the --rtol given.
    for output in ["logits", "probs"] {
        assert_eq!(m["outputs"][output]["atol"].as_float(), Some(1e-5));
        assert_eq!(m["outputs"][output]["rtol"].as_float(), Some(1e-3));
    }
    // [files] lists model.onnx and every data file, each with its sha256.
    let files = m["files"].as_table().unwrap();
    assert_eq!(files.len(), 1 + 2 * 3);
    assert_eq!(files["model.onnx"], p["model_sha256"]);
    let input = std::fs::read(out.join("test_data_set_1/input_0.pb")).unwrap();
    let inspect_sha = {
        use sha2::Digest;
        sha2::Sha256::digest(&input)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(
        files["test_data_set_1/input_0.pb"].as_str(),
        Some(inspect_sha.as_str())
    );
    // Tensor names are set and K follows the graph order; the shape uses --dim.
    let (name, t) = parity::formats::read_tensor(&out.join("test_data_set_0/output_1.pb")).unwrap();
    assert_eq!(name.as_deref(), Some("probs"));
    assert_eq!(t.shape(), [3, 10]);
    let (name, t) = parity::formats::read_tensor(&out.join("test_data_set_0/input_0.pb")).unwrap();
    assert_eq!(name.as_deref(), Some("x"));
    assert_eq!(t.shape(), [3, 64]);
}

#[test]
fn the_same_seed_gives_the_same_files() {
    let tmp = tempfile::tempdir().unwrap();
    let record = |out: &Path, seed: &str| {
        ok(&parity(&[
            "record",
            s(&models().join("transformer")),
            "--out",
            s(out),
            "--random",
            "2",
            "--seed",
            seed,
            "--dim",
            "batch=1",
            "--dim",
            "seq=4",
            "--backend",
            "tract-cpu",
        ]))
    };
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    record(&a, "5");
    record(&b, "5");
    record(&c, "6");
    assert_eq!(manifest(&a)["files"], manifest(&b)["files"]);
    let input = "test_data_set_0/input_0.pb";
    assert_eq!(
        std::fs::read(a.join(input)).unwrap(),
        std::fs::read(b.join(input)).unwrap()
    );
    assert_ne!(
        std::fs::read(a.join(input)).unwrap(),
        std::fs::read(c.join(input)).unwrap()
    );
}

#[test]
fn reused_inputs_are_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let mlp = models().join("mlp");
    // From a suite: every data set, each input file copied byte for byte.
    let out = tmp.path().join("from-suite");
    let o = parity(&[
        "record",
        s(&mlp.join("model.onnx")),
        "--out",
        s(&out),
        "--inputs",
        s(&mlp),
        "--backend",
        "candle-cpu",
    ]);
    ok(&o);
    for n in 0..3 {
        let file = format!("test_data_set_{n}/input_0.pb");
        assert_eq!(
            std::fs::read(out.join(&file)).unwrap(),
            std::fs::read(mlp.join(&file)).unwrap(),
            "{file}"
        );
    }
    check_passes_everywhere(&out, 3);
    // From a recorded suite (re-recording with another backend) and from a data-set
    // directory, repeated: data sets are numbered in the order given.
    let again = tmp.path().join("again");
    ok(&parity(&[
        "record",
        s(&mlp),
        "--out",
        s(&again),
        "--inputs",
        s(&out),
        "--inputs",
        s(&mlp.join("test_data_set_2")),
    ]));
    assert_eq!(
        listing(&again),
        [
            "model.onnx",
            "parity.toml",
            "test_data_set_0",
            "test_data_set_1",
            "test_data_set_2",
            "test_data_set_3"
        ]
    );
    assert_eq!(
        std::fs::read(again.join("test_data_set_3/input_0.pb")).unwrap(),
        std::fs::read(mlp.join("test_data_set_2/input_0.pb")).unwrap()
    );
    check_passes_everywhere(&again, 4);
}

#[test]
fn inputs_from_a_safetensors_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, x) =
        parity::formats::read_tensor(&models().join("mlp/test_data_set_1/input_0.pb")).unwrap();
    let (_, logits) =
        parity::formats::read_tensor(&models().join("mlp/test_data_set_1/output_0.pb")).unwrap();
    fn view(t: &parity::tensor::Tensor) -> safetensors::tensor::TensorView<'_> {
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, t.shape().to_vec(), t.bytes())
            .unwrap()
    }
    let file = tmp.path().join("set.safetensors");
    // The old expected output `logits` is skipped; `x` is the input.
    safetensors::serialize_to_file(
        vec![("x", view(&x)), ("logits", view(&logits))],
        None,
        &file,
    )
    .unwrap();
    let out = tmp.path().join("suite");
    ok(&parity(&[
        "record",
        s(&models().join("mlp")),
        "--out",
        s(&out),
        "--inputs",
        s(&file),
    ]));
    let (name, got) =
        parity::formats::read_tensor(&out.join("test_data_set_0/input_0.pb")).unwrap();
    assert_eq!(name.as_deref(), Some("x"));
    assert_eq!(got.bytes(), x.bytes());
    assert_eq!(got.shape(), [4, 64]);
    check_passes_everywhere(&out, 1);
    // An archive key that is neither an input nor an output is refused, naming it.
    let bad = tmp.path().join("bad.safetensors");
    safetensors::serialize_to_file(vec![("y", view(&x))], None, &bad).unwrap();
    let o = parity(&[
        "record",
        s(&models().join("mlp")),
        "--out",
        s(&tmp.path().join("bad")),
        "--inputs",
        s(&bad),
    ]);
    assert_clean_error(&o, "holds `y`");
    // A suite of another model lacks this model's input.
    let o = parity(&[
        "record",
        s(&models().join("mlp")),
        "--out",
        s(&tmp.path().join("bad")),
        "--inputs",
        s(&models().join("cnn")),
    ]);
    assert_clean_error(&o, "no data for model input `x`");
    assert!(!tmp.path().join("bad").exists());
}

fn record_mlp(out: &Path) {
    ok(&parity(&[
        "record",
        s(&models().join("mlp")),
        "--out",
        s(out),
        "--random",
        "2",
        "--dim",
        "batch=2",
    ]));
}

#[test]
fn a_flipped_byte_in_a_golden_file_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    record_mlp(&out);
    let golden = out.join("test_data_set_1/output_0.pb");
    flip_last_byte(&golden);
    let o = parity(&["check", s(&out), "--format", "json"]);
    assert_eq!(o.code, 2, "{}", o.stdout);
    let r = json(&o);
    assert_eq!(r["verdict"], "error");
    assert_eq!(r["summary"]["passed"], 3, "test_data_set_0 still passes");
    assert_eq!(
        r["summary"]["errors"], 3,
        "test_data_set_1 on every backend"
    );
    for c in r["cases"].as_array().unwrap() {
        if c["case"] == "test_data_set_1" {
            let e = c["error"].as_str().unwrap();
            assert!(e.starts_with(s(&golden)), "{e}");
            assert!(e.contains("sha256 mismatch: recorded "), "{e}");
            assert!(e.contains("(the golden file changed)"), "{e}");
        }
    }
    // Text report too.
    let o = parity(&["check", s(&out), "--backend", "ort-cpu"]);
    assert_eq!(o.code, 2);
    assert!(
        o.stdout
            .contains(&format!("{}: sha256 mismatch", golden.display())),
        "{}",
        o.stdout
    );
    // A listed file that disappears is an error naming it.
    flip_last_byte(&golden);
    ok(&parity(&["check", s(&out), "--backend", "ort-cpu"]));
    std::fs::remove_file(out.join("test_data_set_0/output_1.pb")).unwrap();
    let o = parity(&["check", s(&out), "--backend", "ort-cpu", "--format", "json"]);
    assert_eq!(o.code, 2);
    let e = json(&o)["cases"][0]["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("test_data_set_0/output_1.pb: listed in parity.toml [files] but missing"),
        "{e}"
    );
    // So is a whole recorded data set.
    std::fs::remove_dir_all(out.join("test_data_set_0")).unwrap();
    let o = parity(&["check", s(&out), "--backend", "ort-cpu"]);
    assert_clean_error(
        &o,
        "test_data_set_0/input_0.pb: listed in parity.toml [files] but missing",
    );
}

#[test]
fn another_model_is_a_warning_or_with_strict_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    record_mlp(&out);
    // Same graph, different bytes: a re-exported model.
    let mut model = std::fs::read(out.join("model.onnx")).unwrap();
    model.extend_from_slice(&[0x32, 0x03, b'd', b'o', b'c']); // field 6 (doc_string) = "doc"
    std::fs::write(out.join("model.onnx"), &model).unwrap();
    let o = parity(&["check", s(&out), "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(json(&o)["verdict"], "pass", "stdout is clean JSON");
    let warning: Vec<_> = o.stderr.lines().collect();
    assert_eq!(warning.len(), 1, "{}", o.stderr);
    assert!(warning[0].starts_with("warning: "), "{}", o.stderr);
    let message = warning[0].strip_prefix("warning: ").unwrap();
    assert!(message.contains("model.onnx: not the model the goldens were recorded with"));
    // The report carries it too, in every format.
    assert_eq!(
        json(&o)["warnings"],
        serde_json::json!([{"suite": s(&out), "message": message}])
    );
    for (format, carried) in [
        (
            "junit",
            format!("<property name=\"warning.1\" value=\"{message}\"/>"),
        ),
        ("markdown", "### Warnings (1)".to_string()),
        ("html", "<h2>Warnings (1)</h2>".to_string()),
        ("openmetrics", "parity_check_warnings 1.0".to_string()),
    ] {
        let o = parity(&["check", s(&out), "--format", format]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        assert!(o.stdout.contains(&carried), "{format}: {}", o.stdout);
    }
    // Text on stdout shows it in the report, once, and not again on stderr.
    let o = parity(&["check", s(&out), "-q"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stderr, "");
    assert!(
        o.stdout.contains(&format!("warning: {message}\n")),
        "{}",
        o.stdout
    );
    let o = parity(&["check", s(&out), "--strict", "--format", "json"]);
    assert_eq!(o.code, 2);
    let r = json(&o);
    assert_eq!(r["summary"]["errors"], 6);
    let e = r["cases"][0]["error"].as_str().unwrap();
    assert!(
        e.contains("not the model the goldens were recorded with") && e.contains("--strict"),
        "{e}"
    );
    // Suites without recorded digests are unaffected by --strict.
    ok(&parity(&[
        "check",
        s(&models().join("mlp")),
        "--strict",
        "--backend",
        "ort-cpu",
    ]));
}

#[test]
fn an_unlisted_data_file_is_a_warning_or_with_strict_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    record_mlp(&out);
    let extra = out.join("test_data_set_2");
    std::fs::create_dir(&extra).unwrap();
    for f in ["input_0.pb", "output_0.pb", "output_1.pb"] {
        std::fs::copy(out.join("test_data_set_0").join(f), extra.join(f)).unwrap();
    }
    let o = parity(&["check", s(&out), "--backend", "ort-cpu", "-q"]);
    ok(&o);
    let warnings: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{}", o.stdout);
    assert!(o
        .stdout
        .contains("test_data_set_2/input_0.pb: not listed in parity.toml [files]"));
    let o = parity(&["check", s(&out), "--backend", "ort-cpu", "--strict", "-q"]);
    assert_eq!(o.code, 2, "{}", o.stdout);
}

#[test]
fn an_existing_suite_is_replaced_only_with_force() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mlp");
    record_mlp(&out);
    let before = std::fs::read(out.join("parity.toml")).unwrap();
    let args = |seed: &'static str, force: bool| {
        let mut a = vec![
            "record".to_string(),
            s(&models().join("mlp")).to_string(),
            "--out".to_string(),
            s(&out).to_string(),
            "--random".to_string(),
            "1".to_string(),
            "--seed".to_string(),
            seed.to_string(),
            "--dim".to_string(),
            "batch=1".to_string(),
        ];
        if force {
            a.push("--force".to_string());
        }
        a
    };
    let run = |a: Vec<String>| parity(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args("9", false));
    assert_clean_error(&o, "exists; use --force");
    assert_eq!(std::fs::read(out.join("parity.toml")).unwrap(), before);
    // A failed recording with --force leaves the old suite as it was.
    let o = parity(&[
        "record",
        s(&models().join("mlp")),
        "--out",
        s(&out),
        "--random",
        "1",
        "--force",
    ]);
    assert_clean_error(&o, "--dim batch=N");
    assert_eq!(std::fs::read(out.join("parity.toml")).unwrap(), before);
    ok(&run(args("9", true)));
    assert_eq!(
        listing(&out).len(),
        3,
        "one data set now: {:?}",
        listing(&out)
    );
    assert_eq!(
        listing(tmp.path()),
        ["mlp"],
        "no staging or old suite left behind"
    );
    check_passes_everywhere(&out, 1);
    // --force never replaces a directory that is not a suite, nor a file.
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("notes.txt"), b"keep me").unwrap();
    let o = parity(&[
        "record",
        s(&models().join("mlp")),
        "--out",
        s(&home),
        "--random",
        "1",
        "--dim",
        "batch=1",
        "--force",
    ]);
    assert_clean_error(&o, "not a suite");
    assert_eq!(std::fs::read(home.join("notes.txt")).unwrap(), b"keep me");
}

#[test]
fn bad_requests_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let mlp = models().join("mlp");
    let transformer = models().join("transformer");
    for (args, needle) in [
        (
            vec![
                "record",
                s(&transformer),
                "--out",
                s(&out),
                "--random",
                "1",
                "--dim",
                "batch=1",
            ],
            "input `tokens` axis 1 is the symbolic dim `seq`; give --dim seq=N",
        ),
        (
            vec![
                "record",
                s(&mlp),
                "--out",
                s(&out),
                "--random",
                "1",
                "--dim",
                "batch=1",
                "--dim",
                "seq=2",
            ],
            "--dim seq: the model has no such dim",
        ),
        (
            vec![
                "record",
                s(&mlp),
                "--out",
                s(&out),
                "--random",
                "1",
                "--dim",
                "batch=1",
                "--backend",
                "nope",
            ],
            "unknown backend `nope`",
        ),
        (
            vec![
                "record",
                s(&tmp.path().join("missing.onnx")),
                "--out",
                s(&out),
                "--random",
                "1",
            ],
            "missing.onnx: no such file",
        ),
        (
            vec![
                "record",
                s(&mlp),
                "--out",
                s(&out),
                "--inputs",
                s(&tmp.path().join("nothing")),
            ],
            "nothing: no such file",
        ),
        (
            vec![
                "record",
                s(&mlp),
                "--out",
                s(&out),
                "--inputs",
                s(&mlp.join("model.onnx")),
            ],
            "not a suite, a data-set directory, an .npz/.safetensors file, or an .npy/.pb of a one-input model",
        ),
    ] {
        let o = parity(&args);
        assert_clean_error(&o, needle);
        assert!(!out.exists(), "{args:?}");
    }
    assert_eq!(
        listing(tmp.path()),
        Vec::<String>::new(),
        "no staging left behind"
    );
    // Flags clap refuses: exit 2 with a usage message.
    for args in [
        vec!["record", s(&mlp), "--out", s(&out)],
        vec!["record", s(&mlp), "--out", s(&out), "--random", "0"],
        vec![
            "record",
            s(&mlp),
            "--out",
            s(&out),
            "--random",
            "1",
            "--inputs",
            s(&mlp),
        ],
        vec![
            "record",
            s(&mlp),
            "--out",
            s(&out),
            "--inputs",
            s(&mlp),
            "--seed",
            "1",
        ],
        vec![
            "record",
            s(&mlp),
            "--out",
            s(&out),
            "--random",
            "1",
            "--dim",
            "batch",
        ],
    ] {
        let o = parity(&args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert!(o.stderr.starts_with("error: "), "{}", o.stderr);
    }
}

#[test]
fn help_has_a_summary_and_an_example() {
    let o = parity(&["record", "--help"]);
    ok(&o);
    assert!(o
        .stdout
        .lines()
        .next()
        .unwrap()
        .starts_with("Make a golden suite"));
    assert!(
        o.stdout
            .contains("parity record models/mlp/model.onnx --out"),
        "{}",
        o.stdout
    );
}
