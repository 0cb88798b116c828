//! `parity record MODEL --out DIR`: make a golden suite — inputs (reused or generated),
//! expected outputs from one backend, tolerances, provenance and the sha256 of every file.

use super::Global;
use crate::backend::LoadOptions;
use crate::error::Result;
use crate::interrupt;
use crate::suite::manifest::GenerateSettings;
use crate::suite::record::{self, DimValue, InputPlan, RecordOptions, SequencePlan};
use crate::suite::MODEL_FILE;
use std::path::PathBuf;

/// Make a golden suite: inputs, expected outputs from one backend, tolerances, provenance.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("source").required(true).args(["inputs", "random", "generate"])),
    after_help = "Inputs come from --inputs (reused exactly) or --random (floats standard normal, \
integers in [0, 10), bools 50/50, deterministic from --seed). The suite is built next to DIR \
and renamed into place when complete.\n\n\
With --generate, a generation suite: the golden greedy generations of --prompt-ids \
(docs/generate.md).\n\n\
Examples:\n  parity record models/mlp/model.onnx --out goldens/mlp --random 3 --seed 1 --dim batch=2\n  \
parity record new/model.onnx --out goldens/mlp-v2 --inputs goldens/mlp --backend tract-cpu\n  \
parity record lm.onnx --out goldens/lm --generate --prompt-ids 5,17,42 --prompt-ids 99 --max-new-tokens 32"
)]
pub struct RecordArgs {
    /// The ONNX model, or a suite directory (its model.onnx is used).
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// The suite directory to create.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Reuse the inputs stored at PATH (repeatable): a suite or data-set directory, or an
    /// .npz/.safetensors file holding one data set keyed by input name.
    #[arg(long = "inputs", value_name = "PATH", conflicts_with_all = ["random", "seed", "dims"])]
    inputs: Vec<PathBuf>,
    /// Generate N data sets from the model's input schema.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    random: Option<usize>,
    /// Seed of the generated inputs (default 0).
    #[arg(long, value_name = "S", requires = "random")]
    seed: Option<u64>,
    /// Size of a dynamic dim for generated inputs (repeatable): NAME=VALUE sets every
    /// axis with that dim_param; INPUT:AXIS=VALUE sets one axis, named or not (it wins
    /// over NAME=VALUE).
    #[arg(long = "dim", value_name = "NAME=VALUE", requires = "random")]
    dims: Vec<DimValue>,
    /// Backend whose outputs become the expected outputs.
    #[arg(long, default_value = "ort-cpu", value_name = "B")]
    backend: String,
    /// atol written for every output (default: the output dtype's default).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    atol: Option<f64>,
    /// rtol written for every output (default: the output dtype's default).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    rtol: Option<f64>,
    /// Measure each output's natural error on every available backend and against an
    /// f64 oracle, and write tolerances of --margin times the worst (docs/suites.md).
    #[arg(long, conflicts_with_all = ["atol", "rtol"])]
    calibrate: bool,
    /// With --calibrate: the multiple of the worst observed error the tolerances allow.
    #[arg(long, value_name = "K", default_value_t = 4.0, requires = "calibrate", value_parser = at_least_one_f64)]
    margin: f64,
    /// Intra-op threads for the backend (default: the engine's own choice).
    #[arg(long, value_name = "N", value_parser = super::limits::threads)]
    pub(super) threads: Option<usize>,
    /// Replace an existing suite at DIR (only once the new one is complete).
    #[arg(long)]
    force: bool,
    /// Record the data sets as consecutive steps of one stream (a stateful suite): each
    /// step's state outputs feed the next step's inputs, as --carry names them or as
    /// inferred from the model's names and shapes (printed).
    #[arg(long, conflicts_with = "calibrate")]
    sequence: bool,
    /// With --sequence: an output and the input it feeds at the next step (repeatable).
    #[arg(long = "carry", value_name = "OUT=IN", requires = "sequence", value_parser = super::generate::pair)]
    carry: Vec<(String, String)>,
    /// Record a generation suite: the golden greedy generations (with a KV cache) of
    /// every --prompt-ids.
    #[arg(long, conflicts_with_all = ["calibrate", "sequence"], requires = "prompts")]
    generate: bool,
    /// With --generate: a prompt's token ids, comma-separated (repeatable).
    #[arg(long = "prompt-ids", value_name = "IDS", requires = "generate", value_parser = super::generate::prompt_ids)]
    prompts: Vec<Vec<i64>>,
    /// With --generate: tokens to generate per prompt.
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=crate::generate::MAX_TOKENS as i64))]
    max_new_tokens: u32,
    /// With --generate: k of the near-tie rule, and of the top tokens stored per step.
    #[arg(long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    top_logprobs: u32,
    /// With --generate: prompts decoded together, left-padded to one length.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch: u32,
    #[command(flatten)]
    names: super::generate::IoNames,
}

/// Parses a count of at least 1.
fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number ≥ 1")),
    }
}

/// Parses a margin: a finite number ≥ 1 (below 1, the recorded backends would fail).
fn at_least_one_f64(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(k) if k.is_finite() && k >= 1.0 => Ok(k),
        _ => Err(format!("`{s}` is not a number ≥ 1")),
    }
}

/// Records the suite, prints one line saying what was written, and returns 0.
pub fn run(args: RecordArgs, global: Global) -> Result<u8> {
    interrupt::install();
    let model = if args.model.is_dir() {
        args.model.join(MODEL_FILE)
    } else {
        args.model.clone()
    };
    let plan = match args.random {
        Some(count) => InputPlan::Random {
            count,
            seed: args.seed.unwrap_or(0),
            dims: args.dims.clone(),
        },
        None => InputPlan::Reuse(args.inputs.clone()),
    };
    let options = RecordOptions {
        backend: args.backend.clone(),
        load: LoadOptions {
            threads: args.threads,
            ..Default::default()
        },
        atol: args.atol,
        rtol: args.rtol,
        force: args.force,
        calibrate: args.calibrate.then_some(args.margin),
        sequence: args.sequence.then(|| match args.carry.is_empty() {
            true => SequencePlan::Infer,
            false => SequencePlan::Carry(args.carry.iter().cloned().collect()),
        }),
    };
    let recorded = if args.generate {
        let settings = GenerateSettings::from_names(
            &args.names.names(),
            args.max_new_tokens as usize,
            args.top_logprobs as usize,
            args.batch as usize,
        );
        record::generation::record_generation(&model, &args.out, &args.prompts, &settings, &options)
    } else {
        record::record(&model, &args.out, &plan, &options)
    };
    if let (Err(_), Some(signal)) = (&recorded, interrupt::pending()) {
        // The staging directory is gone with the error; the destination is as it was.
        eprintln!(
            "parity: interrupted by {signal}; {} was not written",
            args.out.display()
        );
        return Ok(signal.exit_code());
    }
    let recorded = recorded?;
    for w in &recorded.warnings {
        eprintln!("warning: {w}");
    }
    if !global.quiet {
        let p = &recorded.provenance;
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        println!(
            "recorded {}: {} data set{}, inputs {}, expected outputs from {} {} on {}",
            recorded.dir.display(),
            recorded.data_sets,
            if recorded.data_sets == 1 { "" } else { "s" },
            field(&p.inputs),
            field(&p.backend),
            field(&p.backend_version),
            field(&p.device),
        );
        if !recorded.carry.is_empty() {
            let how = if args.carry.is_empty() {
                "inferred"
            } else {
                "--carry"
            };
            let pairs: Vec<String> = recorded
                .carry
                .iter()
                .map(|(o, i)| format!("{o} -> {i}"))
                .collect();
            println!("stateful suite, carrying ({how}): {}", pairs.join(", "));
        }
        if let Some(c) = &recorded.calibration {
            println!(
                "calibrated tolerances ({}x the worst error of {} and the f64 oracle{}):",
                c.margin,
                c.backends.join(", "),
                c.oracle
                    .first()
                    .map_or(" (none could run)".to_string(), |o| format!(" on {o}")),
            );
            for (name, tol) in &recorded.tolerances {
                println!(
                    "  {name}: atol {:.3e}, rtol {:.3e} (any backend)",
                    tol.atol, tol.rtol
                );
                for (backend, tol) in recorded.per_backend.get(name).into_iter().flatten() {
                    println!(
                        "  {name} on {backend}: atol {:.3e}, rtol {:.3e}",
                        tol.atol, tol.rtol
                    );
                }
            }
            let proposed: Vec<String> = c
                .outputs
                .iter()
                .filter(|(_, e)| !e.proposed_gates.is_empty())
                .map(|(name, e)| {
                    let list: Vec<String> = e
                        .proposed_gates
                        .iter()
                        .map(|g| format!("\"{g}\""))
                        .collect();
                    format!("  {name} = [{}]", list.join(", "))
                })
                .collect();
            if !proposed.is_empty() {
                println!(
                    "proposed dataset gates (the noise floor of correct implementations; add to [gates] to judge outputs by them, docs/gates.md):"
                );
                for line in proposed {
                    println!("{line}");
                }
            }
        }
    }
    // A signal after the suite was moved into place: the suite is complete, the exit
    // code still says the run was interrupted.
    Ok(interrupt::exit_code(0))
}
