//! Integration tests: the `parity` binary on real files — bundled suites, injected
//! faults, broken inputs — asserting exit codes, JSON fields and one-line errors.

use crate::common::*;

use parity::formats;
use parity::tensor::Tensor;
use serde_json::Value;
use std::path::Path;

fn rewrite_f32(path: &Path, edit: impl FnOnce(&mut Vec<f32>)) -> Tensor {
    let (name, t) = formats::read_tensor(path).unwrap();
    let mut v = t.values::<f32>().unwrap().into_owned();
    edit(&mut v);
    let t = Tensor::from_vec(t.shape().to_vec(), v).unwrap();
    formats::write_tensor(path, &name.unwrap_or_default(), &t).unwrap();
    t
}

#[test]
fn bundled_suites_pass_on_every_backend() {
    let o = parity(&["check", models().to_str().unwrap(), "--format", "json"]);
    let r = json(&o);
    assert_eq!(o.code, 0, "{}", o.stdout);
    assert_eq!(r["verdict"], "pass");
    let backends: Vec<_> = r["environment"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(backends, ["ort-cpu", "candle-cpu", "tract-cpu"]);
    assert_eq!(
        r["summary"]["cases"], 39,
        "(3 models x 3 data sets + the language model's 4 prompts) x 3 backends"
    );
    assert_eq!(r["summary"]["passed"], 39);
    let suites = r["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 4);
    // The language model's cases are greedy generations, 16 tokens each, equal on
    // every backend.
    let lm: Vec<&Value> = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["suite"].as_str().unwrap().ends_with("lm"))
        .collect();
    assert_eq!(lm.len(), 12);
    for c in lm {
        let g = &c["generation"];
        assert_eq!(g["expected_tokens"].as_array().unwrap().len(), 16, "{c}");
        assert_eq!(g["expected_tokens"], g["actual_tokens"], "{c}");
    }
    for s in suites {
        let model = Path::new(s["suite"].as_str().unwrap()).join("model.onnx");
        let bytes = std::fs::read(model).unwrap();
        assert_eq!(
            s["model_sha256"],
            parity::formats::onnx_model::sha256_hex(&bytes)
        );
    }
}

#[test]
fn json_report_validates_against_the_schema() {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let (_tmp, suite) = copy_suite("mlp");
    rewrite_f32(&suite.join("test_data_set_1/output_0.pb"), |v| v[3] *= 1.01);
    std::fs::write(
        suite.join("parity.toml"),
        "[provenance]\nbackend = \"ort-cpu\"\nhost = \"recorder\"\n",
    )
    .unwrap();
    for args in [
        vec![
            "check",
            models().to_str().unwrap(),
            "--backend",
            "ort-cpu",
            "--format",
            "json",
        ],
        vec![
            "check",
            suite.to_str().unwrap(),
            "--backend",
            "ort-cpu",
            "--format",
            "json",
        ],
    ] {
        let r = json(&parity(&args));
        let errors: Vec<_> = validator
            .iter_errors(&r)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let histogram = &r["cases"][0]["outputs"][0]["error_histogram"];
        assert_eq!(
            histogram["counts"].as_array().unwrap().len(),
            11,
            "{histogram}"
        );
    }
    let r = json(&parity(&[
        "check",
        suite.to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]));
    assert_eq!(r["suites"][0]["provenance"]["host"], "recorder");
}

#[test]
fn one_element_off_by_1e_2_relative_fails_at_its_index() {
    let (_tmp, suite) = copy_suite("mlp");
    // logits of data set 1 have shape [4, 10]; perturb flat element 23 = [2, 3].
    let t = rewrite_f32(&suite.join("test_data_set_1/output_0.pb"), |v| {
        v[23] *= 1.01
    });
    assert_eq!(t.shape(), [4, 10]);
    let o = parity(&[
        "check",
        suite.to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let r = json(&o);
    let failed: Vec<_> = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["case"], "test_data_set_1");
    let out = &failed[0]["outputs"][0];
    assert_eq!(out["name"], "logits");
    assert_eq!(out["mismatched"], 1);
    assert_eq!(out["worst_index"], serde_json::json!([2, 3]));
    let (e, a) = (
        out["expected"].as_f64().unwrap(),
        out["actual"].as_f64().unwrap(),
    );
    assert!(
        ((e - a) / a).abs() > 0.009 && ((e - a) / a).abs() < 0.011,
        "expected {e} actual {a}"
    );
}

#[test]
fn nan_in_an_expected_output_is_a_mismatch() {
    let (_tmp, suite) = copy_suite("mlp");
    rewrite_f32(&suite.join("test_data_set_0/output_1.pb"), |v| {
        v[5] = f32::NAN
    });
    let o = parity(&[
        "check",
        suite.to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let r = json(&o);
    let out = &r["cases"][0]["outputs"][1];
    assert_eq!(out["name"], "probs");
    assert_eq!(out["verdict"], "fail");
    assert_eq!(out["worst_index"], serde_json::json!([0, 5]));
}

#[test]
fn expected_output_with_other_dtype_or_shape_is_a_mismatch() {
    let (_tmp, suite) = copy_suite("mlp");
    let p = suite.join("test_data_set_0/output_0.pb");
    let (name, t) = formats::read_tensor(&p).unwrap();
    let as_f64: Vec<f64> = t
        .values::<f32>()
        .unwrap()
        .iter()
        .map(|&x| x as f64)
        .collect();
    formats::write_tensor(
        &p,
        &name.clone().unwrap(),
        &Tensor::from_vec(t.shape().to_vec(), as_f64).unwrap(),
    )
    .unwrap();
    let p1 = suite.join("test_data_set_1/output_0.pb");
    let (name1, t1) = formats::read_tensor(&p1).unwrap();
    formats::write_tensor(&p1, &name1.unwrap(), &t1.reshaped(vec![2, 20]).unwrap()).unwrap();
    let o = parity(&[
        "check",
        suite.to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let r = json(&o);
    let problems: Vec<String> = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail")
        .map(|c| c["outputs"][0]["problem"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("f64") && problems[0].contains("f32"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains("[2, 20]") || problems[1].contains("[2,20]"),
        "{}",
        problems[1]
    );
}

#[test]
fn truncated_pb_is_a_clean_error() {
    let (_tmp, suite) = copy_suite("mlp");
    let p = suite.join("test_data_set_0/input_0.pb");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let o = parity(&["check", suite.to_str().unwrap(), "--backend", "ort-cpu"]);
    assert_eq!(o.code, 2, "{}", o.stdout);
    assert!(o.stdout.contains(&p.display().to_string()), "{}", o.stdout);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
}

#[test]
fn truncated_model_is_a_clean_error() {
    let (_tmp, suite) = copy_suite("cnn");
    let p = suite.join("model.onnx");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
    let o = parity(&["check", suite.to_str().unwrap(), "--backend", "ort-cpu"]);
    assert_clean_error(&o, &p.display().to_string());
}

#[test]
fn missing_path_and_empty_directory_are_clean_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    assert_clean_error(
        &parity(&["check", missing.to_str().unwrap()]),
        "no such file",
    );
    assert_clean_error(
        &parity(&["check", tmp.path().to_str().unwrap()]),
        "holds no suite",
    );
    let (_t, suite) = copy_suite("mlp");
    std::fs::remove_file(suite.join("test_data_set_2/input_0.pb")).unwrap();
    let o = parity(&["check", suite.to_str().unwrap(), "--backend", "ort-cpu"]);
    assert_eq!(o.code, 2);
    assert!(o.stdout.contains("test_data_set_2"), "{}", o.stdout);
}

#[test]
fn an_out_file_in_a_missing_directory_is_refused_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("no/such/dir/report.json");
    let o = parity(&["check", models().to_str().unwrap(), "--out", s(&out)]);
    assert_clean_error(&o, "No such file or directory");
    assert!(o.stderr.contains("--out"), "{}", o.stderr);
    let o = parity(&["check", models().to_str().unwrap(), "--out", s(tmp.path())]);
    assert_clean_error(&o, "is a directory, not a file");
}

#[test]
fn a_data_set_without_expected_outputs_is_an_error_not_a_pass() {
    let (_tmp, suite) = copy_suite("mlp");
    for k in 0..2 {
        std::fs::remove_file(suite.join(format!("test_data_set_1/output_{k}.pb"))).unwrap();
    }
    let o = parity(&[
        "check",
        s(&suite),
        "--backend",
        "tract-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 2, "{}", o.stderr);
    let r = json(&o);
    assert_eq!(r["summary"]["errors"], 1, "{r}");
    let error = r["cases"][1]["error"].as_str().unwrap();
    assert!(
        error.starts_with("this data set holds no expected outputs"),
        "{error}"
    );
}

#[test]
fn unknown_backend_is_a_usage_error() {
    let o = parity(&["check", models().to_str().unwrap(), "--backend", "onnx-gpu"]);
    assert_clean_error(&o, "unknown backend `onnx-gpu`");
}

#[test]
fn compare_finds_the_perturbed_element() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.npy");
    let b = tmp.path().join("b.npy");
    let mut v: Vec<f32> = (0..1000).map(|i| (i as f32).sin() + 2.0).collect();
    formats::write_tensor(
        &a,
        "x",
        &Tensor::from_vec(vec![10, 100], v.clone()).unwrap(),
    )
    .unwrap();
    v[517] *= 1.01;
    formats::write_tensor(&b, "x", &Tensor::from_vec(vec![10, 100], v).unwrap()).unwrap();
    let o = parity(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert_eq!(
        json(&o)["cases"][0]["outputs"][0]["worst_index"],
        serde_json::json!([5, 17])
    );
    let same = parity(&["compare", a.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(same.code, 0, "{}", same.stdout);
}

#[test]
fn inspect_shows_symbolic_dims_and_ops() {
    let o = parity(&[
        "inspect",
        models().join("transformer/model.onnx").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = json(&o);
    assert_eq!(r["inputs"][0]["name"], "tokens");
    assert_eq!(
        r["inputs"][0]["shape"],
        serde_json::json!(["batch", "seq", 64])
    );
    assert_eq!(r["opsets"][0]["version"], 17);
    assert!(r["ops"]["LayerNormalization"].as_u64().unwrap() >= 2);
    assert_eq!(r["sha256"].as_str().unwrap().len(), 64);
    // A suite directory stands for its model.onnx.
    let dir = parity(&[
        "inspect",
        models().join("transformer").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(dir.code, 0, "{}", dir.stderr);
    assert_eq!(json(&dir)["sha256"], r["sha256"]);
}

/// What an unavailable CUDA backend's reason must name: the missing piece.
const CUDA_REASONS: [&str; 6] = [
    "GPU build of ONNX Runtime not found",
    "libonnxruntime_providers_cuda",
    "no NVIDIA driver",
    "no CUDA device",
    "no usable CUDA device",
    "CUDA execution provider cannot be registered",
];

#[test]
fn backends_lists_every_backend_and_why_cuda_is_unavailable() {
    let o = parity(&["backends", "--format", "json"]);
    assert_eq!(o.code, 0);
    let r = json(&o);
    let list = r["backends"].as_array().unwrap();
    let names: Vec<_> = list.iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "ort-cpu",
            "ort-cuda",
            "candle-cpu",
            "candle-cuda",
            "tract-cpu"
        ]
    );
    for b in list {
        match b["name"].as_str().unwrap() {
            "candle-cuda" => {
                assert_eq!(b["available"], false);
                let reason = b["reason"].as_str().unwrap();
                assert!(reason.contains("cargo feature `candle-cuda`"), "{reason}");
                assert!(reason.contains("ci/build-cuda.sh"), "{reason}");
            }
            // Available on a GPU machine with onnxruntime-gpu; otherwise it says why.
            "ort-cuda" if b["available"] == false => {
                let reason = b["reason"].as_str().unwrap();
                assert!(CUDA_REASONS.iter().any(|r| reason.contains(r)), "{reason}");
                assert!(
                    reason.contains("onnxruntime-gpu") || reason.contains("CUDA"),
                    "{reason}"
                );
            }
            "ort-cuda" => assert!(
                b["device"].as_str().unwrap().starts_with("cuda:0"),
                "{}",
                o.stdout
            ),
            _ => assert_eq!(b["available"], true, "{}", o.stdout),
        }
    }
}

#[test]
fn ort_cuda_without_the_gpu_build_exits_2_with_the_reason() {
    let probe = json(&parity(&["backends", "--format", "json"]));
    let cuda = &probe["backends"][1];
    assert_eq!(cuda["name"], "ort-cuda");
    if cuda["available"] == true {
        eprintln!("skipped: ort-cuda is available here");
        return;
    }
    let reason = cuda["reason"].as_str().unwrap();
    let mlp = models().join("mlp");
    let o = parity(&["check", mlp.to_str().unwrap(), "--backend", "ort-cuda"]);
    assert_clean_error(&o, "backend ort-cuda is unavailable");
    assert!(o.stderr.contains(reason), "{}", o.stderr);
    assert!(!o.stdout.contains("pass"), "no CPU fallback: {}", o.stdout);
}

#[test]
fn ort_cuda_dylib_path_is_the_library_of_both_ort_backends() {
    let o = parity_env(
        &["backends", "--format", "json"],
        &[(
            "ORT_CUDA_DYLIB_PATH",
            "/nonexistent/libonnxruntime.so.1.31.1",
        )],
    );
    assert_eq!(o.code, 0);
    let r = json(&o);
    for i in [0, 1] {
        let b = &r["backends"][i];
        assert_eq!(b["available"], false, "{}", o.stdout);
        let reason = b["reason"].as_str().unwrap();
        assert!(
            reason.contains(
                "ORT_CUDA_DYLIB_PATH=/nonexistent/libonnxruntime.so.1.31.1 does not name a file"
            ),
            "{reason}"
        );
    }
    assert!(
        r["backends"][1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("GPU build of ONNX Runtime not found"),
        "{}",
        o.stdout
    );
}

#[test]
fn nan_produced_by_the_backend_is_a_mismatch() {
    let (_tmp, suite) = copy_suite("mlp");
    // A NaN input poisons every logit of that row; the goldens are finite.
    rewrite_f32(&suite.join("test_data_set_0/input_0.pb"), |v| {
        v[5] = f32::NAN
    });
    let o = parity(&[
        "check",
        suite.to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    let r = json(&o);
    let case = &r["cases"][0];
    assert_eq!(case["case"], "test_data_set_0");
    assert_eq!(case["outputs"][0]["mismatched"], 10);
    assert_eq!(case["outputs"][0]["total"], 10);
    assert!(
        case["outputs"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("NaN"),
        "{}",
        case["outputs"][0]
    );
}

#[test]
fn demo_prints_the_table_and_passes() {
    let o = parity(&["demo", "--min-duration", "0.01"]);
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    for model in ["mlp", "cnn", "transformer", "lm"] {
        for backend in ["ort-cpu", "candle-cpu", "tract-cpu"] {
            let row = o
                .stdout
                .lines()
                .find(|l| l.starts_with(&format!("{model} ")) && l.contains(backend))
                .unwrap_or_else(|| panic!("no row for {model} {backend}:\n{}", o.stdout));
            assert!(row.contains("pass"), "{row}");
        }
    }
    // The language model's speed is its decoding rate, on a line of its own.
    let line = o
        .stdout
        .lines()
        .find(|l| {
            l.starts_with("lm: greedy generation with a KV cache, 4 prompts x 16 new tokens: ")
        })
        .unwrap_or_else(|| panic!("no generation line:\n{}", o.stdout));
    for backend in ["ort-cpu", "candle-cpu", "tract-cpu"] {
        let rate = line
            .split(", ")
            .find_map(|part| part.split(&format!("{backend} ")).nth(1))
            .and_then(|r| r.strip_suffix(" tokens/s"))
            .and_then(|r| r.split(": ").last())
            .unwrap_or_else(|| panic!("no rate for {backend}: {line}"));
        assert!(rate.parse::<f64>().unwrap() > 0.0, "{line}");
    }
    assert!(o.stdout.trim_end().ends_with("PASS"), "{}", o.stdout);
}

#[test]
fn hidden_directories_are_not_searched_for_suites() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&models().join("mlp"), &tmp.path().join("mlp"));
    // An interrupted `record` leaves a hidden staging directory with a damaged model.
    let staging = tmp.path().join(".mlp.parity-record-1");
    copy_dir(&models().join("mlp"), &staging);
    std::fs::write(staging.join("model.onnx"), b"partial").unwrap();
    let o = parity(&[
        "check",
        tmp.path().to_str().unwrap(),
        "--backend",
        "ort-cpu",
        "--format",
        "json",
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(json(&o)["summary"]["cases"], 3);
}

#[test]
fn thread_counts_are_bounded_in_every_verb() {
    let mlp = models().join("mlp");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("suite");
    let model = mlp.join("model.onnx");
    for args in [
        vec!["check", s(&mlp), "--threads", "100000"],
        vec![
            "record",
            s(&model),
            "--random",
            "1",
            "--out",
            s(&out),
            "--threads",
            "100000",
        ],
    ] {
        let o = parity(&args);
        assert_clean_error(
            &o,
            "invalid value '100000' for '--threads <N>': `100000` is too many: --threads takes at most 1024",
        );
    }
    let o = parity(&["check", s(&mlp), "--threads", "0"]);
    assert_clean_error(&o, "`0` is not a whole number from 1 to 1024");
    assert!(!out.exists());
}

#[test]
fn a_graph_output_no_node_produces_is_one_error_for_every_backend() {
    use prost::Message;
    let (_tmp, suite) = copy_suite("mlp");
    let path = suite.join("model.onnx");
    let mut m =
        parity::formats::onnx_pb::ModelProto::decode(std::fs::read(&path).unwrap().as_slice())
            .unwrap();
    let graph = m.graph.as_mut().unwrap();
    let last = graph.output.len() - 1;
    graph.output[last].name = Some("y".into());
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let message = format!(
        "{}: graph output `y` is produced by no node and is not an input or initializer",
        path.display()
    );
    assert_clean_error(&parity(&["inspect", s(&path)]), &message);
    for backend in ["tract-cpu", "ort-cpu", "candle-cpu"] {
        let o = parity(&["check", s(&suite), "--backend", backend]);
        assert_eq!(o.code, 2, "{backend}: {}", o.stderr);
        assert!(
            o.stdout.contains(&message) || o.stderr.contains(&message),
            "{backend}: {}\n{}",
            o.stdout,
            o.stderr
        );
        assert!(!o.stderr.contains("internal error"), "{}", o.stderr);
    }
}

/// Each verb's `--help` offers exactly the formats it writes, and refuses the others
/// at parse time with the list (issue 14: `inspect` listed junit and then refused it).
#[test]
fn each_verb_offers_exactly_its_formats() {
    let report = ["text", "json", "junit", "markdown", "html", "openmetrics"];
    let plain = ["text", "json"];
    let verbs: [(&[&str], &[&str]); 10] = [
        (&["check"], &report),
        (&["compare"], &report),
        (&["merge"], &report),
        (&["bench"], &["text", "json", "csv", "html", "openmetrics"]),
        (&["data", "drift"], &["text", "json", "openmetrics"]),
        (&["backends"], &plain),
        (&["inspect"], &plain),
        (&["bisect"], &plain),
        (&["data", "validate"], &plain),
        (&["fuzz"], &["text", "json", "junit"]),
    ];
    for (verb, formats) in verbs {
        let mut args = verb.to_vec();
        args.push("--help");
        let o = parity(&args);
        assert_eq!(o.code, 0, "{verb:?}: {}", o.stderr);
        let offered = help_formats(&o.stdout);
        assert_eq!(offered, formats, "{verb:?}:\n{}", o.stdout);
    }
}

/// The values listed under `--format` in a verb's long help.
fn help_formats(help: &str) -> Vec<String> {
    let mut lines = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--format"));
    lines
        .by_ref()
        .find(|l| l.trim() == "Possible values:")
        .expect("a list of possible values");
    lines
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|v| v.split(':').next().unwrap_or(v).to_string())
        .collect()
}

#[test]
fn completions_for_every_shell_name_the_verbs_and_their_flags() {
    for (shell, marker, flag) in [
        ("bash", "complete -F _parity", "--gate"),
        ("zsh", "#compdef parity", "--gate"),
        ("fish", "complete -c parity", "-l gate"),
    ] {
        let o = parity(&["completions", shell]);
        assert_eq!(o.code, 0, "{shell}: {}", o.stderr);
        for needle in [marker, "check", "invariance", flag] {
            assert!(o.stdout.contains(needle), "{shell}: no `{needle}`");
        }
    }
    // The bash script is valid bash.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("parity.bash");
    std::fs::write(&script, parity(&["completions", "bash"]).stdout).unwrap();
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    assert_clean_error(&parity(&["completions", "tcsh"]), "tcsh");
}

#[test]
fn manual_pages_render_without_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let o = parity(&["man", "--out", s(dir.path())]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // parity.1 and one per visible verb (the hidden worker has none).
    assert!(pages.iter().any(|p| p.ends_with("parity.1")));
    assert!(pages.iter().any(|p| p.ends_with("parity-check.1")));
    assert!(!pages.iter().any(|p| p.to_string_lossy().contains("worker")));
    let check = std::fs::read_to_string(dir.path().join("parity-check.1")).unwrap();
    assert!(check.contains("\\-\\-gate"), "{check}");
    for page in &pages {
        // groff (Debian's `groff-base`, which `man` needs) as `man` runs it; -k reads UTF-8.
        let out = std::process::Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(page)
            .output()
            .expect("groff (apt-get install groff-base)");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{}: {}",
            page.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Without --out: parity.1 on stdout.
    let o = parity(&["man"]);
    assert!(o.stdout.contains(".TH parity 1"), "{}", o.stdout);
}

#[test]
fn version_names_the_onnx_runtime_library_or_why_there_is_none() {
    let o = parity(&["--version"]);
    assert_eq!(o.code, 0);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], concat!("parity ", env!("CARGO_PKG_VERSION")));
    assert!(
        lines[1].starts_with("ONNX Runtime 1.31.1 ("),
        "{}",
        o.stdout
    );
    let o = parity_env(
        &["--version"],
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
    );
    assert_eq!(o.code, 0);
    assert!(
        o.stdout
            .contains("ONNX Runtime: not available: ORT_DYLIB_PATH=/nonexistent"),
        "{}",
        o.stdout
    );
}

#[test]
fn clicolor_force_colours_a_pipe_and_no_color_does_not() {
    let mlp = models().join("mlp");
    let args = ["check", s(&mlp), "--backend", "ort-cpu"];
    let forced = parity_env(&args, &[("CLICOLOR_FORCE", "1")]);
    assert!(forced.stdout.contains("\x1b["), "{}", forced.stdout);
    let plain = parity_env(&args, &[("NO_COLOR", "1")]);
    assert!(!plain.stdout.contains('\x1b'), "{}", plain.stdout);
    // The flag wins over the environment.
    let never = parity_env(
        &["check", s(&mlp), "--backend", "ort-cpu", "--color", "never"],
        &[("CLICOLOR_FORCE", "1")],
    );
    assert!(!never.stdout.contains('\x1b'), "{}", never.stdout);
}
