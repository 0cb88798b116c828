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
use crate::generate::MAX_TOKENS;
use crate::suite::generation::load_golden;
use crate::suite::runner::guarded;
use std::path::PathBuf;

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
    /// The backend whose generations are expected (default: the first backend), or
    /// `golden`: a generation suite's recorded generations.
    #[arg(long, value_name = "B")]
    reference: Option<String>,
    /// A prompt's token ids, comma-separated (repeatable; default: a generation suite's).
    #[arg(long = "prompt-ids", value_name = "IDS", value_parser = prompt_ids)]
    prompts: Vec<Vec<i64>>,
    /// Tokens to generate per prompt (default: a generation suite's, else 32).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=MAX_TOKENS as i64))]
    max_new_tokens: Option<u32>,
    /// k of the near-tie rule, and of the top tokens reported at a divergence (default:
    /// a generation suite's, else 5).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=1000))]
    top_logprobs: Option<u32>,
    /// Prompts decoded together, left-padded to one length (default: a generation
    /// suite's, else 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: Option<u32>,
    /// Absolute tolerance of the logits (default: per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    atol: Option<f64>,
    /// Relative tolerance of the logits (default: per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    rtol: Option<f64>,
    #[command(flatten)]
    names: IoNames,
    /// Intra-op threads of every backend (default: each engine's own choice).
    #[arg(long, value_name = "N", value_parser = super::limits::threads)]
    pub(super) threads: Option<usize>,
    #[command(flatten)]
    output: OutputArgs<PlainFormat>,
}

pub fn run(args: GenerateArgs, global: Global) -> Result<u8> {
    let model = model_file(&args.model);
    // A generation suite brings its prompts, settings, tolerance and goldens.
    let suite = match args.model.is_dir() {
        true => Some(crate::suite::open(&args.model)?),
        false => None,
    };
    let recorded = suite.as_ref().and_then(|s| s.manifest.generate.clone());
    let goldens: Option<Vec<Generation>> = match (&suite, &recorded) {
        (Some(s), Some(g)) => Some(
            s.cases
                .iter()
                .map(|c| load_golden(s, c, g))
                .collect::<Result<_>>()?,
        ),
        _ => None,
    };
    let prompts: Vec<Vec<i64>> =
        match (&goldens, args.prompts.is_empty()) {
            (_, false) => args.prompts.clone(),
            (Some(g), true) => g.iter().map(|g| g.prompt.clone()).collect(),
            (None, true) => return Err(Error::Usage(
                "--prompt-ids is required unless MODEL is a generation suite (record --generate)"
                    .into(),
            )),
        };
    let max_new = args
        .max_new_tokens
        .map(|n| n as usize)
        .or(recorded.as_ref().map(|g| g.max_new_tokens))
        .unwrap_or(32);
    let k = args
        .top_logprobs
        .map(|n| n as usize)
        .or(recorded.as_ref().map(|g| g.top_logprobs))
        .unwrap_or(5);
    let batch = args
        .batch
        .map(|n| n as usize)
        .or(recorded.as_ref().map(|g| g.batch))
        .unwrap_or(1);
    let against_golden = args.reference.as_deref() == Some("golden");
    let golden = match (against_golden, &goldens) {
        (false, _) => None,
        (true, None) => {
            return Err(Error::Usage(
                "--reference golden needs a generation suite (parity record MODEL --generate)"
                    .into(),
            ))
        }
        (true, Some(g)) => {
            let same = g.len() == prompts.len()
                && g.iter().zip(&prompts).all(|(g, p)| &g.prompt == p)
                && g.iter().all(|g| g.tokens.len() == max_new);
            if !same {
                return Err(Error::Usage(format!(
                    "--reference golden compares the suite's own prompts and {} new tokens; drop --prompt-ids and --max-new-tokens",
                    g.first().map_or(0, |g| g.tokens.len())
                )));
            }
            Some(g.clone())
        }
    };
    let mut names = args.backends.clone();
    if let Some(r) = args.reference.as_ref().filter(|_| !against_golden) {
        if !names.is_empty() && !names.contains(r) {
            names.insert(0, r.clone());
        }
    }
    let selected = backend::select(&names)?;
    let reference = match &args.reference {
        Some(r) => r.clone(),
        None => selected[0].backend.name().to_string(),
    };
    let io = crate::formats::onnx_model::inspect(&model)?;
    let io_names = match &recorded {
        Some(g) => g.names(),
        None => args.names.names(),
    };
    let layout =
        Layout::detect(&io.inputs, &io.outputs, &io_names).map_err(|e| Error::file(&model, e))?;
    let load = LoadOptions {
        threads: args.threads,
        ..Default::default()
    };
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
                    for group in prompts.chunks(batch) {
                        all.extend(
                            guarded(|| decode(session.as_mut(), &layout, group, max_new))
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
    let reference_outcome = match golden {
        Some(g) => BackendOutcome {
            name: "golden".to_string(),
            generations: Ok(g),
        },
        None => {
            let r = outcomes
                .iter()
                .position(|o| o.name == reference)
                .unwrap_or(0);
            outcomes.remove(r)
        }
    };
    // The suite's logits tolerance, unless the command line sets one.
    let recorded_tol = suite.as_ref().zip(recorded.as_ref()).map(|(s, g)| {
        s.manifest
            .tolerance_for(g.logits.as_deref().unwrap_or("logits"), None)
    });
    let atol = args.atol.or(recorded_tol.and_then(|t| t.atol));
    let rtol = args.rtol.or(recorded_tol.and_then(|t| t.rtol));
    let report = GenerateReport::new(
        model.display().to_string(),
        &reference_outcome,
        &outcomes,
        Settings {
            prompts: prompts.clone(),
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

/// The model's IO names for decoding, when not the usual convention (shared by
/// `generate` and `record --generate`).
#[derive(Debug, Clone, clap::Args)]
pub(super) struct IoNames {
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
}

impl IoNames {
    /// As the decoder looks them up.
    pub(super) fn names(&self) -> Names {
        let d = Names::default();
        Names {
            input_ids: self.input_ids.clone(),
            attention_mask: self.attention_mask.clone().unwrap_or(d.attention_mask),
            position_ids: self.position_ids.clone().unwrap_or(d.position_ids),
            logits: self.logits.clone(),
            cache: self.kv.clone(),
            explicit_mask: self.attention_mask.is_some(),
            explicit_positions: self.position_ids.is_some(),
        }
    }
}

/// `5,17,42`: token ids (non-negative), at most [`MAX_TOKENS`].
pub(super) fn prompt_ids(s: &str) -> std::result::Result<Vec<i64>, String> {
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
