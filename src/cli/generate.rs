//! `parity generate MODEL --backend A --backend B --prompt-ids 5,17,42`: greedy decoding
//! with a KV cache on every backend, each compared token by token with the reference
//! (docs/generate.md).

use super::output::{OutputArgs, PlainFormat};
use super::{model_file, Global};
use crate::backend::{self, LoadOptions};
use crate::compare::Tolerance;
use crate::error::{Error, Result};
use crate::generate::convention::{Layout, Names};
use crate::generate::decode::{decode, Generation};
use crate::generate::report::{BackendOutcome, GenerateReport, Settings};
use crate::generate::verdict::judge;
use std::path::PathBuf;

/// Most tokens one prompt may hold, and most new tokens: every step keeps its logits row.
pub const MAX_TOKENS: usize = 1 << 14;

/// Greedy decoding on several backends with token-level parity.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The model takes `input_ids` (and optionally `attention_mask`, `position_ids`) and \
`past_key_values.{i}.key/value`, and gives `logits` and `present.{i}.key/value` (the first step has an empty past); \
other names with --input-ids, --attention-mask, --position-ids, --logits, --kv OUT=IN.\n\n\
Verdict per prompt and backend: every step's logits within tolerance of the reference's until the first differing \
token, which passes only as a near-tie (each token in the other's top-k, reference logit gap within tolerance).\n\n\
Exit codes: 0 every backend agrees, 1 a backend differs, 2 could not evaluate.\n\n\
Example:\n  parity generate tests/fixtures/lm/gpt2-kv.onnx --backend ort-cpu --backend candle-cpu --prompt-ids 5,17,42 --max-new-tokens 32"
)]
pub struct GenerateArgs {
    /// The ONNX model (one decoding step with a KV cache), or a suite directory.
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// A backend to decode on (repeatable; default: every available backend).
    #[arg(long = "backend", value_name = "B")]
    backends: Vec<String>,
    /// The backend whose generations are expected (default: the first backend).
    #[arg(long, value_name = "B")]
    reference: Option<String>,
    /// A prompt's token ids, comma-separated (repeatable).
    #[arg(long = "prompt-ids", value_name = "IDS", required = true, value_parser = prompt_ids)]
    prompts: Vec<Vec<i64>>,
    /// Tokens to generate per prompt.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=MAX_TOKENS as i64))]
    max_new_tokens: u32,
    /// k of the near-tie rule, and of the top tokens reported at a divergence.
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    top_logprobs: u32,
    /// Prompts decoded together, left-padded to one length.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: u32,
    /// Absolute tolerance of the logits (default: per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    atol: Option<f64>,
    /// Relative tolerance of the logits (default: per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    rtol: Option<f64>,
    /// The token ids input.
    #[arg(long, value_name = "NAME", default_value = "input_ids")]
    input_ids: String,
    /// The attention mask input.
    #[arg(long, value_name = "NAME")]
    attention_mask: Option<String>,
    /// The position ids input.
    #[arg(long, value_name = "NAME")]
    position_ids: Option<String>,
    /// The logits output.
    #[arg(long, value_name = "NAME", default_value = "logits")]
    logits: String,
    /// A cache output and the input it feeds at the next step (repeatable; replaces the
    /// `present.X` -> `past_key_values.X` convention).
    #[arg(long = "kv", value_name = "OUT=IN", value_parser = pair)]
    kv: Vec<(String, String)>,
    /// Intra-op threads of every backend (default: each engine's own choice).
    #[arg(long, value_name = "N", value_parser = super::limits::threads)]
    pub(super) threads: Option<usize>,
    #[command(flatten)]
    output: OutputArgs<PlainFormat>,
}

pub fn run(args: GenerateArgs, global: Global) -> Result<u8> {
    let model = model_file(&args.model);
    if args.reference.as_deref() == Some("golden") {
        return Err(Error::Usage(
            "--reference golden needs a generation suite (parity record MODEL --generate)".into(),
        ));
    }
    let mut names = args.backends.clone();
    if let Some(r) = &args.reference {
        if !names.is_empty() && !names.contains(r) {
            names.insert(0, r.clone());
        }
    }
    let selected = backend::select(&names)?;
    let reference = args
        .reference
        .clone()
        .unwrap_or_else(|| selected[0].backend.name().to_string());
    let io = crate::formats::onnx_model::inspect(&model)?;
    let io_names = Names {
        input_ids: args.input_ids.clone(),
        attention_mask: args
            .attention_mask
            .clone()
            .unwrap_or_else(|| "attention_mask".into()),
        position_ids: args
            .position_ids
            .clone()
            .unwrap_or_else(|| "position_ids".into()),
        logits: args.logits.clone(),
        cache: args.kv.clone(),
        explicit_mask: args.attention_mask.is_some(),
        explicit_positions: args.position_ids.is_some(),
    };
    let layout =
        Layout::detect(&io.inputs, &io.outputs, &io_names).map_err(|e| Error::file(&model, e))?;
    let load = LoadOptions {
        threads: args.threads,
    };
    let max_new = args.max_new_tokens as usize;
    let batch = args.batch as usize;
    let mut outcomes: Vec<BackendOutcome> = selected
        .iter()
        .map(|s| {
            if !global.quiet {
                eprintln!("decoding on {}", s.backend.name());
            }
            let generations = s
                .backend
                .load(&model, &load)
                .map_err(|e| format!("load: {e}"))
                .and_then(|mut session| {
                    let mut all: Vec<Generation> = Vec::new();
                    for group in args.prompts.chunks(batch) {
                        all.extend(
                            decode(session.as_mut(), &layout, group, max_new)
                                .map_err(|e| e.message)?,
                        );
                    }
                    Ok(all)
                });
            BackendOutcome {
                name: s.backend.name().to_string(),
                generations,
            }
        })
        .collect();
    let r = outcomes
        .iter()
        .position(|o| o.name == reference)
        .unwrap_or(0);
    let reference_outcome = outcomes.remove(r);
    let k = args.top_logprobs as usize;
    let (atol, rtol) = (args.atol, args.rtol);
    let report = GenerateReport::new(
        model.display().to_string(),
        &reference_outcome,
        &outcomes,
        Settings {
            prompts: args.prompts.clone(),
            max_new_tokens: max_new,
            top_logprobs: k,
            batch,
            atol,
            rtol,
        },
        super::run_environment(&selected),
        |e, a| {
            let default = e
                .logits
                .first()
                .map_or(Tolerance::EXACT, |t| Tolerance::default_for(t.dtype()));
            let tol = Tolerance {
                atol: atol.unwrap_or(default.atol),
                rtol: rtol.unwrap_or(default.rtol),
            };
            judge(e, a, tol, k)
        },
    );
    let text = match args.output.format {
        PlainFormat::Json => report.to_json() + "\n",
        PlainFormat::Text => report.to_text(global.verbose),
    };
    args.output.general().emit(&text)?;
    Ok(report.exit_code())
}

/// `5,17,42`: token ids (non-negative), at most [`MAX_TOKENS`].
fn prompt_ids(s: &str) -> std::result::Result<Vec<i64>, String> {
    let ids = s
        .split(',')
        .map(|t| match t.trim().parse::<i64>() {
            Ok(v) if v >= 0 => Ok(v),
            _ => Err(format!("`{t}` is not a token id (an integer ≥ 0)")),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if ids.len() > MAX_TOKENS {
        return Err(format!("{} ids; at most {MAX_TOKENS}", ids.len()));
    }
    Ok(ids)
}

/// `OUT=IN`.
pub(super) fn pair(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((o, i)) if !o.is_empty() && !i.is_empty() => Ok((o.to_string(), i.to_string())),
        _ => Err(format!("`{s}` is not OUT=IN")),
    }
}
