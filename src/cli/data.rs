//! `parity data validate MODEL INPUT...` and `parity data drift REFERENCE CURRENT`:
//! checks of the data around a model (docs/data.md). The logic lives in `crate::data`.

use super::output::{DriftFormat, OutputArgs, PlainFormat};
use super::Global;
use crate::backend::{self, IoSpec, LoadOptions};
use crate::data::drift::{self, DriftReport, Thresholds};
use crate::data::features::{self, Feature, Skipped};
use crate::data::source::{self, Source};
use crate::data::tabular::{self, ColumnMap};
use crate::data::validate::{self, Problems};
use crate::error::{Error, Result};
use crate::formats::onnx_model::{self, ModelInfo};
use crate::suite::manifest::{Manifest, MANIFEST_FILE};
use crate::tensor::Tensor;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Check input data against a model, or compare two data sets for drift.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    command: DataCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DataCommand {
    Validate(ValidateArgs),
    Drift(DriftArgs),
}

/// Check input files against the model's inputs: names, dtypes, ranks, dims, NaN/Inf, missing values, ranges.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
parity data validate models/mlp models/mlp/test_data_set_0\n  \
parity data validate tabular.onnx rows.csv --map age=features --map income=features\n\n\
Value ranges come from [inputs.NAME] min/max/allow_nan/allow_inf in the parity.toml\n\
beside the model. Exit codes: 0 no problem, 1 problems found (one line each), 2 an\n\
unreadable model or data file, or bad flags.")]
pub struct ValidateArgs {
    /// An ONNX model, or a suite directory (its model.onnx and parity.toml).
    model: PathBuf,
    /// Data: .npy/.pb/.npz/.safetensors files, data-set directories, suites, .csv/.jsonl tables.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Table column feeding a model input (repeatable; columns of one input form its last
    /// axis in the order given). Default: columns named after inputs.
    #[arg(long = "map", value_name = "COLUMN=INPUT", value_parser = ColumnMap::parse)]
    maps: Vec<ColumnMap>,
    #[command(flatten)]
    output: OutputArgs<PlainFormat>,
}

/// Compare a current data set with a reference: PSI, KS, JS per feature or channel; exit 1 on drift.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
parity data drift train.csv today.csv\n  \
parity data drift ref/ cur/ --axis 1 --format openmetrics --out drift.prom\n  \
parity data drift ref/ cur/ --model models/mlp --backend ort-cpu   # output drift too\n\n\
A feature drifts when PSI > its threshold, the KS p-value < its alpha, or the JS\n\
distance > its threshold. Default PSI threshold `auto`: significant at alpha/2 for the\n\
sample sizes (chi-square), KS then at alpha/2 too (docs/data.md).\n\
Exit codes: 0 no drift, 1 drift, 2 unreadable data or bad flags.")]
pub struct DriftArgs {
    /// Reference data (a table, tensor files, a data-set directory or a suite).
    reference: PathBuf,
    /// Current data, of the same kind.
    current: PathBuf,
    /// Channel axis of tensor features (rank ≤ 1 tensors are one feature).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    axis: i64,
    /// Reference-quantile bins for PSI and JS.
    #[arg(long, default_value_t = drift::DEFAULT_BINS, value_parser = bins)]
    bins: usize,
    /// Significance level of each feature's decision.
    #[arg(long, default_value_t = drift::DEFAULT_ALPHA, value_parser = unit_interval)]
    alpha: f64,
    /// PSI threshold: `auto` (significance at alpha/2) or a number (0.1 and 0.2 are the usual conventions).
    #[arg(long, default_value = "auto", value_name = "auto|F", value_parser = psi_threshold)]
    psi_threshold: PsiThreshold,
    /// Jensen–Shannon distance threshold (base 2, in [0, 1]).
    #[arg(long, default_value_t = drift::DEFAULT_JS, value_name = "F", value_parser = unit_interval)]
    js_threshold: f64,
    /// Also compare the model's predictions on both data sets (output drift).
    #[arg(long, value_name = "MODEL")]
    model: Option<PathBuf>,
    /// Backend that makes the predictions (default: the first available).
    #[arg(long, value_name = "B", requires = "model")]
    backend: Option<String>,
    /// Table column feeding a model input, for output drift on tables (repeatable).
    #[arg(long = "map", value_name = "COLUMN=INPUT", value_parser = ColumnMap::parse)]
    maps: Vec<ColumnMap>,
    #[command(flatten)]
    output: OutputArgs<DriftFormat>,
}

/// `--psi-threshold`.
#[derive(Debug, Clone, Copy)]
pub struct PsiThreshold(Option<f64>);

fn psi_threshold(s: &str) -> std::result::Result<PsiThreshold, String> {
    if s == "auto" {
        return Ok(PsiThreshold(None));
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(PsiThreshold(Some(v))),
        _ => Err(format!("`{s}` is neither `auto` nor a number > 0")),
    }
}

fn unit_interval(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number in (0, 1)")),
    }
}

fn bins(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (2..=1000).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a whole number in [2, 1000]")),
    }
}

pub fn run(args: DataArgs, global: Global) -> Result<u8> {
    match args.command {
        DataCommand::Validate(a) => run_validate(a, global),
        DataCommand::Drift(a) => run_drift(a, global),
    }
}

/// The model file of a model path or suite directory, and its schema.
fn model_info(path: &Path) -> Result<(PathBuf, ModelInfo)> {
    let model = if path.is_dir() {
        path.join(crate::suite::MODEL_FILE)
    } else {
        path.to_path_buf()
    };
    let info = onnx_model::inspect(&model)?;
    Ok((model, info))
}

fn names(specs: &[IoSpec]) -> Vec<String> {
    specs.iter().map(|s| s.name.clone()).collect()
}

fn run_validate(args: ValidateArgs, global: Global) -> Result<u8> {
    args.output.general().refuse_inputs(
        [&args.model]
            .into_iter()
            .chain(&args.inputs)
            .map(PathBuf::as_path),
    )?;
    let (model, info) = model_info(&args.model)?;
    let dir = model.parent().unwrap_or(Path::new("."));
    let manifest = Manifest::read_or_default(dir)?;
    for name in manifest.inputs.keys() {
        if !info.inputs.iter().any(|s| &s.name == name) {
            return Err(Error::file(
                dir.join(MANIFEST_FILE),
                format!("[inputs.{name}] names no input of {}", model.display()),
            ));
        }
    }
    let (inputs, outputs) = (names(&info.inputs), names(&info.outputs));
    let mut problems = Problems::default();
    let mut data_sets = 0;
    for path in &args.inputs {
        match source::read(path, &inputs, &outputs)? {
            Source::Sets(sets) => {
                data_sets += sets.len();
                validate::validate_sets(&sets, &info.inputs, &manifest.inputs, &mut problems);
            }
            Source::Table(table) => {
                data_sets += 1;
                let mapped = validate::map_table(&table, &args.maps, &info.inputs)?;
                validate::validate_table(
                    &table,
                    &mapped,
                    &info.inputs,
                    &manifest.inputs,
                    &mut problems,
                );
            }
        }
    }
    let problems = problems.finish();
    let rendered = match args.output.format {
        PlainFormat::Json => {
            let value = json!({
                "schema": "parity.validate/v1",
                "model": model.display().to_string(),
                "data_sets": data_sets,
                "verdict": if problems.is_empty() { "pass" } else { "fail" },
                "problems": problems,
            });
            serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
        }
        _ => {
            let mut out = String::new();
            if !global.quiet {
                for p in &problems {
                    out += &format!("{p}\n");
                }
            }
            out += &format!(
                "{data_sets} data set(s) checked against {}: {} problem(s)\n",
                model.display(),
                crate::data::validate::total(&problems)
            );
            out
        }
    };
    args.output.general().emit(&rendered)?;
    Ok(u8::from(!problems.is_empty()))
}

fn run_drift(args: DriftArgs, global: Global) -> Result<u8> {
    args.output.general().refuse_inputs(
        [&args.reference, &args.current]
            .into_iter()
            .chain(&args.model)
            .map(PathBuf::as_path),
    )?;
    let model = args.model.as_deref().map(model_info).transpose()?;
    let (inputs, outputs) = match &model {
        Some((_, info)) => (names(&info.inputs), names(&info.outputs)),
        None => (Vec::new(), Vec::new()),
    };
    let reference = source::read(&args.reference, &inputs, &outputs)?;
    let mut current = source::read(&args.current, &inputs, &outputs)?;
    source::pair_single_tensors(&reference, &mut current);
    if matches!(reference, Source::Table(_)) != matches!(current, Source::Table(_)) {
        return Err(Error::Usage(format!(
            "{} and {} are not the same kind of data (one is a table, the other tensors)",
            args.reference.display(),
            args.current.display()
        )));
    }
    let (ref_features, mut skipped) = features::extract(&reference, args.axis)?;
    let (cur_features, cur_skipped) = features::extract(&current, args.axis)?;
    for s in cur_skipped {
        if !skipped.iter().any(|k| k.name == s.name) {
            skipped.push(s);
        }
    }
    let mut pairs = pair(&args, "input", ref_features, cur_features)?;
    let mut model_label = None;
    if let Some((path, info)) = &model {
        let selected = backend::select(&args.backend.iter().cloned().collect::<Vec<_>>())?;
        let chosen = selected
            .first()
            .ok_or_else(|| Error::Usage("no backend is available".to_string()))?;
        let mut session = chosen.backend.load(path, &LoadOptions::default())?;
        let mut predict =
            |src: &Source, from: &Path| -> Result<Vec<Feature>> {
                let mut by_output: Vec<(String, Vec<Tensor>)> = Vec::new();
                for feed in model_feeds(src, from, info, &args.maps)? {
                    let outputs = crate::suite::runner::run_guarded(session.as_mut(), &feed)
                        .map_err(|e| Error::File {
                            path: from.to_path_buf(),
                            msg: format!(
                                "{} on {} could not run these inputs: {}",
                                path.display(),
                                chosen.backend.name(),
                                e.message
                            ),
                        })?;
                    for (name, t) in outputs {
                        match by_output.iter_mut().find(|(n, _)| *n == name) {
                            Some((_, list)) => list.push(t),
                            None => by_output.push((name, vec![t])),
                        }
                    }
                }
                let mut out = Vec::new();
                for (name, tensors) in &by_output {
                    out.extend(features::from_tensors(name, tensors, args.axis)?);
                }
                Ok(out)
            };
        let ref_out = predict(&reference, &args.reference)?;
        let cur_out = predict(&current, &args.current)?;
        pairs.extend(pair(&args, "output", ref_out, cur_out)?);
        model_label = Some((
            path.display().to_string(),
            chosen.backend.name().to_string(),
        ));
    }
    let thresholds = Thresholds {
        alpha: args.alpha,
        features: pairs.len(),
        psi: args.psi_threshold.0,
        js: args.js_threshold,
        bins: args.bins,
    };
    let mut scored = Vec::new();
    for (kind, r, c) in &pairs {
        match drift::score(&r.name, kind, r, c, &thresholds) {
            Some(d) => scored.push(d),
            None => skipped.push(Skipped {
                name: r.name.clone(),
                reason: "no values on one side (all missing)".to_string(),
            }),
        }
    }
    if scored.is_empty() {
        // Nothing was compared: that is not "no drift" (docs/design.md: nothing evaluated is 2).
        let why: Vec<String> = skipped
            .iter()
            .take(3)
            .map(|s| format!("`{}`: {}", s.name, s.reason))
            .collect();
        return Err(Error::Usage(format!(
            "{} and {}: no feature has values on both sides to compare{}",
            args.reference.display(),
            args.current.display(),
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            }
        )));
    }
    let report = DriftReport::new(
        (
            args.reference.display().to_string(),
            args.current.display().to_string(),
        ),
        model_label,
        args.axis,
        thresholds,
        scored,
        skipped,
    );
    let rendered = match args.output.format {
        DriftFormat::Json => report.to_json(),
        DriftFormat::Openmetrics => crate::data::openmetrics::render(&report),
        _ => report.to_text(global.quiet),
    };
    args.output.general().emit(&rendered)?;
    Ok(report.exit_code())
}

/// Pairs every reference feature with the current feature of the same name; a feature
/// on one side only is an error naming it.
fn pair(
    args: &DriftArgs,
    kind: &'static str,
    reference: Vec<Feature>,
    mut current: Vec<Feature>,
) -> Result<Vec<(&'static str, Feature, Feature)>> {
    for (a, b, side) in [
        (&reference, &current, &args.current),
        (&current, &reference, &args.reference),
    ] {
        if let Some(f) = a.iter().find(|f| !b.iter().any(|g| g.name == f.name)) {
            return Err(Error::file(
                side,
                format!(
                    "has no {kind} feature `{}`, which the other data set has",
                    f.name
                ),
            ));
        }
    }
    Ok(reference
        .into_iter()
        .filter_map(|r| {
            let at = current.iter().position(|c| c.name == r.name)?;
            Some((kind, r, current.swap_remove(at)))
        })
        .collect())
}

/// The model's inputs for each data set of a source, in model input order.
fn model_feeds(
    src: &Source,
    from: &Path,
    info: &ModelInfo,
    maps: &[ColumnMap],
) -> Result<Vec<Vec<Tensor>>> {
    match src {
        Source::Sets(sets) => sets
            .iter()
            .map(|set| {
                info.inputs
                    .iter()
                    .map(|spec| {
                        set.tensors
                            .iter()
                            .find(|t| t.name == spec.name)
                            .map(|t| t.tensor.clone())
                            .ok_or_else(|| {
                                Error::file(
                                    &set.origin,
                                    format!("no data for model input `{}`", spec.name),
                                )
                            })
                    })
                    .collect()
            })
            .collect(),
        Source::Table(table) => {
            let mapped = validate::map_table(table, maps, &info.inputs)?;
            let feed = info
                .inputs
                .iter()
                .map(|spec| {
                    let columns = mapped
                        .iter()
                        .find(|(i, _)| *i == spec.name)
                        .map(|(_, c)| c.as_slice())
                        .ok_or_else(|| {
                            Error::file(
                                from,
                                format!(
                                    "no column feeds model input `{}` (use --map COLUMN=INPUT)",
                                    spec.name
                                ),
                            )
                        })?;
                    let dtype = spec.dtype.ok_or_else(|| {
                        Error::file(from, format!("model input `{}` is not a tensor", spec.name))
                    })?;
                    tabular::to_tensor(table, columns, dtype, spec.dims.as_ref().map(Vec::len))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(vec![feed])
        }
    }
}
