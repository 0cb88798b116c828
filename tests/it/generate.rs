//! `parity generate`: tiny GPT-2 and Llama models from `transformers`' own modeling code
//! (tests/fixtures/lm, scripts/make-tiny-lm.sh) decode the same 32 tokens on every CPU
//! backend, batched prompts with left padding give each prompt its batch-1 tokens, and
//! bad input is one line with exit 2.

use crate::common::{assert_clean_error, assert_schema, json, models, parity, root, s};
use serde_json::Value;

const BACKENDS: [&str; 3] = ["ort-cpu", "candle-cpu", "tract-cpu"];
const PROMPTS: [&str; 3] = ["5,17,42", "1,2,3,4,5,6,7", "99"];

fn lm(name: &str) -> String {
    root()
        .join("tests/fixtures/lm")
        .join(format!("{name}.onnx"))
        .display()
        .to_string()
}

fn generate(model: &str, extra: &[&str]) -> (i32, Value) {
    let model = lm(model);
    let mut args = vec!["generate", model.as_str(), "--format", "json", "-q"];
    for b in BACKENDS {
        args.extend(["--backend", b]);
    }
    for p in PROMPTS {
        args.extend(["--prompt-ids", p]);
    }
    args.extend(extra);
    let o = parity(&args);
    (o.code, json(&o))
}

/// Every prompt's tokens, per backend (the reference first).
fn tokens(report: &Value) -> Vec<Vec<Vec<i64>>> {
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_i64().unwrap())
            .collect()
    };
    report["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            std::iter::once(ids(&p["reference_tokens"]))
                .chain(
                    p["results"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| ids(&r["tokens"])),
                )
                .collect()
        })
        .collect()
}

#[test]
fn tiny_gpt2_and_llama_decode_the_same_tokens_on_every_cpu_backend() {
    for model in ["gpt2-kv", "llama-kv"] {
        let (code, r) = generate(model, &["--max-new-tokens", "32"]);
        assert_eq!(code, 0, "{model}: {r:#}");
        assert_schema(&r, "generate.schema.json");
        assert_eq!(r["verdict"], "pass");
        assert_eq!(r["summary"]["results"], 6, "{model}");
        assert_eq!(r["summary"]["passed"], 6, "{model}");
        for (p, per_backend) in tokens(&r).iter().enumerate() {
            assert_eq!(per_backend[0].len(), 32);
            for t in &per_backend[1..] {
                assert_eq!(t, &per_backend[0], "{model} prompt {p}");
            }
        }
        for p in r["prompts"].as_array().unwrap() {
            for res in p["results"].as_array().unwrap() {
                assert_eq!(res["steps_compared"], 32);
                let steps = res["steps"].as_array().unwrap();
                assert_eq!(steps.len(), 32);
                assert!(steps
                    .iter()
                    .all(|s| s["tolerance_used"].as_f64().unwrap() < 1.0));
            }
        }
        let speeds: Vec<f64> = r["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["tokens_per_s"].as_f64().unwrap())
            .collect();
        assert!(
            speeds.len() == 3 && speeds.iter().all(|&v| v > 0.0),
            "{speeds:?}"
        );
    }
}

#[test]
fn left_padded_batches_give_each_prompt_its_batch_one_tokens() {
    for model in ["gpt2-kv", "llama-kv"] {
        let (code, one) = generate(model, &["--max-new-tokens", "16"]);
        assert_eq!(code, 0, "{one:#}");
        let (code, three) = generate(model, &["--max-new-tokens", "16", "--batch", "3"]);
        assert_eq!(code, 0, "{three:#}");
        assert_eq!(three["batch"], 3);
        // The prompts have 3, 7 and 1 tokens: two of the three are padded.
        assert_eq!(tokens(&one), tokens(&three), "{model}");
    }
}

#[test]
fn a_model_without_the_convention_is_refused_with_one_line() {
    let mlp = models().join("mlp");
    let o = parity(&[
        "generate",
        s(&mlp),
        "--backend",
        "ort-cpu",
        "--prompt-ids",
        "1,2",
    ]);
    assert_clean_error(&o, "no input `input_ids`");
    assert!(o.stderr.contains("model.onnx"), "{}", o.stderr);
    let model = lm("gpt2-kv");
    for (extra, needle) in [
        (&["--prompt-ids", "1,x"][..], "`x` is not a token id"),
        (
            &["--prompt-ids", "1", "--kv", "present.0.key"],
            "is not OUT=IN",
        ),
        (
            &["--prompt-ids", "1", "--position-ids", "pos"],
            "no input `pos` (named by --position-ids)",
        ),
    ] {
        let mut args = vec!["generate", model.as_str(), "--backend", "ort-cpu"];
        args.extend(extra);
        assert_clean_error(&parity(&args), needle);
    }
}

/// Records a generation suite of `model` (the three prompts, 32 tokens) into `dir`.
fn record_generation(model: &str, dir: &std::path::Path) -> std::path::PathBuf {
    let suite = dir.join(model);
    let lm = lm(model);
    let mut args = vec![
        "record",
        lm.as_str(),
        "--out",
        s(&suite),
        "--generate",
        "--max-new-tokens",
        "32",
    ];
    for p in PROMPTS {
        args.extend(["--prompt-ids", p]);
    }
    let o = parity(&args);
    assert_eq!(o.code, 0, "{}", o.stderr);
    suite
}

#[test]
fn generation_suites_replay_on_every_backend_and_catch_a_moved_mlp_weight() {
    let dir = tempfile::tempdir().unwrap();
    for model in ["gpt2-kv", "llama-kv"] {
        let suite = record_generation(model, dir.path());
        let manifest = std::fs::read_to_string(suite.join("parity.toml")).unwrap();
        assert!(
            manifest.contains("[generate]\nmax_new_tokens = 32\ntop_logprobs = 5"),
            "{manifest}"
        );
        let mut args = vec!["check", s(&suite), "--format", "json"];
        for b in BACKENDS {
            args.extend(["--backend", b]);
        }
        let o = parity(&args);
        assert_eq!(o.code, 0, "{model}: {}", o.stdout);
        let r = json(&o);
        assert_schema(&r, "report.schema.json");
        assert_eq!(r["summary"]["passed"], 9, "{model}");
        for c in r["cases"].as_array().unwrap() {
            let g = &c["generation"];
            assert_eq!(g["expected_tokens"], g["actual_tokens"], "{model} {c:#}");
            assert_eq!(g["expected_tokens"].as_array().unwrap().len(), 32);
            assert_eq!(g["steps_compared"], 32);
            assert_eq!(c["outputs"][0]["name"], "logits");
        }
        // The same model with one MLP weight x1.05: the same greedy tokens, logits moved.
        std::fs::copy(lm(&format!("{model}-mlp105")), suite.join("model.onnx")).unwrap();
        args.truncate(4);
        args.extend(["--backend", "ort-cpu", "--backend", "candle-cpu"]);
        let o = parity(&args);
        assert_eq!(o.code, 1, "{model}: {}", o.stdout);
        for c in json(&o)["cases"].as_array().unwrap() {
            let g = &c["generation"];
            assert_eq!(c["verdict"], "fail");
            assert_eq!(
                g["expected_tokens"], g["actual_tokens"],
                "{model}: same greedy tokens"
            );
            assert_eq!(g["divergence"], Value::Null);
            let first = g["first_step_out_of_tolerance"].as_u64().unwrap() as usize;
            let step = &g["steps"][first];
            assert_eq!(step["verdict"], "fail");
            assert!(
                step["expected"].is_f64()
                    && step["actual"].is_f64()
                    && step["worst_token"].is_u64()
            );
        }
        let o = parity(&["check", s(&suite), "--backend", "ort-cpu"]);
        assert_eq!(o.code, 1);
        assert!(
            o.stdout
                .contains("tokens: 32/32 equal; logits out of tolerance from step "),
            "{}",
            o.stdout
        );
        // The per-step curve: 32 steps, each its share of tolerance in percent.
        for format in ["text", "markdown", "junit"] {
            let o = parity(&[
                "check",
                s(&suite),
                "--backend",
                "ort-cpu",
                "--format",
                format,
            ]);
            assert_eq!(o.code, 1, "{format}");
            let curve = o
                .stdout
                .lines()
                .find_map(|l| l.split("tolerance used per step (%, steps 0-31): ").nth(1))
                .unwrap_or_else(|| panic!("{format}: no curve in {}", o.stdout));
            let used: Vec<f64> = curve
                .split_whitespace()
                .map(|u| u.parse().unwrap())
                .collect();
            assert_eq!(used.len(), 32, "{format}: {curve}");
            assert!(used.iter().any(|&u| u > 100.0), "{format}: {curve}");
        }
    }
}

#[test]
fn generate_replays_a_suite_against_its_goldens() {
    let dir = tempfile::tempdir().unwrap();
    let suite = record_generation("llama-kv", dir.path());
    let o = parity(&[
        "generate",
        s(&suite),
        "--reference",
        "golden",
        "--backend",
        "candle-cpu",
        "--format",
        "json",
        "-q",
    ]);
    assert_eq!(o.code, 0, "{}", o.stdout);
    let r = json(&o);
    assert_eq!(r["reference"], "golden");
    assert_eq!(r["max_new_tokens"], 32);
    assert_eq!(r["summary"]["passed"], 3);
    let o = parity(&[
        "generate",
        s(&suite),
        "--reference",
        "golden",
        "--prompt-ids",
        "1",
        "--backend",
        "candle-cpu",
    ]);
    assert_clean_error(&o, "--reference golden compares the suite's own prompts");
    let o = parity(&[
        "generate",
        &lm("llama-kv"),
        "--reference",
        "golden",
        "--prompt-ids",
        "1",
    ]);
    assert_clean_error(&o, "--reference golden needs a generation suite");
}
