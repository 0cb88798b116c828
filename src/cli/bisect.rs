//! `parity bisect MODEL --backend A --reference B` (or `--reference-model OTHER.onnx`):
//! find the first node where two runs of a model diverge (see docs/bisect.md).

use super::output::{OutputArgs, PlainFormat};
use super::{model_file, Global};
use crate::backend::{self, LoadOptions};
use crate::bisect::compare::Mode;
use crate::bisect::expose::Exposable;
use crate::bisect::report::{BisectReport, Context};
use crate::bisect::run::{ChunkPlan, Side};
use crate::bisect::{bisect, Request};
use crate::error::{Error, Result};
use crate::formats::onnx_model::inspect;
use crate::suite::record::{self, DimValue};
use std::path::PathBuf;

/// Find the first node where two backends (or two versions of a model) diverge.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Inputs: --inputs PATH (a suite, a data-set directory, an .npz/.safetensors), \
else MODEL's data set --data-set when MODEL is a suite, else generated from the input schema \
(with --seed or --dim also for a suite).\n\nExit codes: 0 every compared value within tolerance, 1 a divergence found, 2 could not evaluate.\n\n\
Examples:\n  parity bisect models/transformer --backend candle-cpu --reference ort-cpu\n  \
parity bisect optimised.onnx --reference-model original.onnx --backend ort-cpu --inputs models/mlp"
)]
pub struct BisectArgs {
    /// The ONNX model, or a suite directory (its model.onnx is used).
    #[arg(value_name = "MODEL")]
    model: PathBuf,
    /// The backend under test.
    #[arg(long, value_name = "B")]
    backend: String,
    /// The backend whose values are expected (default: --backend, with --reference-model).
    #[arg(long, value_name = "B", required_unless_present = "reference_model")]
    reference: Option<String>,
    /// Another version of the model, whose node outputs are matched by name.
    #[arg(long, value_name = "OTHER.onnx")]
    reference_model: Option<PathBuf>,
    /// Where the inputs come from: a suite or data-set directory, an .npz/.safetensors.
    #[arg(long, value_name = "PATH")]
    inputs: Option<PathBuf>,
    /// Which data set of the inputs to use (0-based).
    #[arg(long, value_name = "N", default_value_t = 0)]
    data_set: usize,
    /// Generate the inputs from the model's input schema with this seed (also when
    /// MODEL is a suite); default 0 when the inputs are generated anyway.
    #[arg(long, value_name = "S", conflicts_with = "inputs")]
    seed: Option<u64>,
    /// Size of a symbolic dim for generated inputs (repeatable): NAME=VALUE or INPUT:AXIS=VALUE.
    #[arg(long = "dim", value_name = "NAME=VALUE", conflicts_with = "inputs")]
    dims: Vec<DimValue>,
    /// Absolute tolerance for every intermediate value (default: per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    atol: Option<f64>,
    /// Relative tolerance for every intermediate value (default: per dtype).
    #[arg(long, value_name = "F", value_parser = super::check::non_negative)]
    rtol: Option<f64>,
    /// Report the first node out of tolerance as run end to end, whatever its inputs.
    #[arg(long)]
    cumulative: bool,
    /// Expose at most N values per run (default: all at once, split when a run fails).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    chunk: Option<u64>,
    /// MiB of exposed tensors (both backends) one run may hold before chunks shrink.
    #[arg(long, value_name = "MIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    memory_budget: u64,
    /// Rows of the table of nodes whose error grows most.
    #[arg(long, value_name = "N", default_value_t = 10)]
    top: usize,
    /// Intra-op threads for both backends (default: each engine's own choice).
    #[arg(long, value_name = "N", value_parser = super::limits::threads)]
    pub(super) threads: Option<usize>,
    #[command(flatten)]
    output: OutputArgs<PlainFormat>,
}

pub fn run(args: BisectArgs, global: Global) -> Result<u8> {
    let model = model_file(&args.model);
    let reference_name = args
        .reference
        .clone()
        .unwrap_or_else(|| args.backend.clone());
    if args.reference_model.is_none() && reference_name == args.backend {
        return Err(Error::Usage(format!(
            "--reference {reference_name} is the backend under test; name another backend or give --reference-model"
        )));
    }
    let selected = backend::select(&[args.backend.clone(), reference_name.clone()])?;
    let pick = |name: &str| selected.iter().find(|s| s.backend.name() == name);
    let (Some(cand_backend), Some(ref_backend)) = (pick(&args.backend), pick(&reference_name))
    else {
        return Err(Error::Usage("the backends could not be selected".into()));
    };
    let (inputs, origin) = load_inputs(&args, &model)?;
    let cand_model = Exposable::open(&model)?;
    let other = match &args.reference_model {
        Some(p) => Some(Exposable::open(&model_file(p))?),
        None => None,
    };
    let ref_model = other.as_ref().unwrap_or(&cand_model);
    let mode = if args.cumulative {
        Mode::Cumulative
    } else {
        Mode::Local
    };
    let request = Request {
        candidate: Side {
            backend: cand_backend.backend.as_ref(),
            model: &cand_model,
        },
        reference: Side {
            backend: ref_backend.backend.as_ref(),
            model: ref_model,
        },
        inputs,
        atol: args.atol,
        rtol: args.rtol,
        plan: ChunkPlan {
            size: args.chunk.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            budget_bytes: args.memory_budget.saturating_mul(1 << 20),
        },
        mode,
        load: LoadOptions {
            threads: args.threads,
            ..Default::default()
        },
    };
    let outcome = bisect(&request)?;
    let ctx = Context {
        model: model.display().to_string(),
        reference_model: args
            .reference_model
            .as_ref()
            .map(|p| model_file(p).display().to_string()),
        backend: args.backend.clone(),
        reference: reference_name,
        inputs: origin,
        atol: args.atol,
        rtol: args.rtol,
        mode,
        top: args.top,
        environment: super::run_environment(&selected),
    };
    let report = BisectReport::new(ctx, &outcome);
    let text = match args.output.format {
        PlainFormat::Json => report.to_json() + "\n",
        PlainFormat::Text => report.to_text(global.verbose),
    };
    args.output.general().emit(&text)?;
    Ok(report.exit_code())
}

/// The inputs, named by model input, and where they came from.
fn load_inputs(
    args: &BisectArgs,
    model: &std::path::Path,
) -> Result<(Vec<(String, crate::tensor::Tensor)>, String)> {
    let info = inspect(model)?;
    let generate = args.seed.is_some() || !args.dims.is_empty();
    let source = args
        .inputs
        .clone()
        .or_else(|| (args.model.is_dir() && !generate).then(|| args.model.clone()));
    let set = match source {
        Some(path) => {
            let mut sets = record::load_inputs(&info, std::slice::from_ref(&path))?;
            let n = sets.len();
            if args.data_set >= n {
                return Err(Error::file(
                    &path,
                    format!(
                        "holds {n} data set{}, --data-set {} asks for another",
                        if n == 1 { "" } else { "s" },
                        args.data_set
                    ),
                ));
            }
            sets.swap_remove(args.data_set)
        }
        None => {
            let seed = args.seed.unwrap_or(0);
            let mut sets = record::generate(&info, args.data_set + 1, seed, &args.dims)
                .map_err(|e| Error::file(model, e))?;
            let mut set = sets.swap_remove(args.data_set);
            set.origin = format!("random (seed {seed}, data set {})", args.data_set);
            set
        }
    };
    let named = info
        .inputs
        .iter()
        .map(|spec| spec.name.clone())
        .zip(set.tensors)
        .collect();
    Ok((named, set.origin))
}
