//! `parity inspect MODEL`: what a model takes and returns, without running it.

use super::output::{OutputArgs, PlainFormat};
use super::Global;
use crate::backend::{Dim, IoSpec};
use crate::error::Result;
use crate::formats::onnx_model;
use serde_json::json;
use std::path::PathBuf;

/// Print a model's inputs/outputs (dtypes, shapes with symbolic dims), opsets, op histogram, size and sha256.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  parity inspect models/transformer/model.onnx --format json")]
pub struct InspectArgs {
    /// An ONNX model file, or a suite directory (its model.onnx).
    model: PathBuf,
    #[command(flatten)]
    output: OutputArgs<PlainFormat>,
}

pub fn run(args: InspectArgs, _global: Global) -> Result<u8> {
    let model = if args.model.is_dir() {
        args.model.join(crate::suite::MODEL_FILE)
    } else {
        args.model.clone()
    };
    let info = onnx_model::inspect(&model)?;
    let output = args.output.general();
    let rendered = match args.output.format {
        PlainFormat::Json => {
            let io = |specs: &[IoSpec]| {
                specs
                    .iter()
                    .map(|s| json!({ "name": s.name, "dtype": dtype(s), "shape": shape_json(s) }))
                    .collect::<Vec<_>>()
            };
            let value = json!({
                "model": model.display().to_string(),
                "inputs": io(&info.inputs),
                "outputs": io(&info.outputs),
                "opsets": info.opsets.iter().map(|(d, v)| json!({ "domain": d, "version": v })).collect::<Vec<_>>(),
                "ops": info.ops,
                "size_bytes": info.size,
                "sha256": info.sha256,
                "producer": info.producer,
            });
            serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
        }
        PlainFormat::Text => {
            let mut out = format!("model     {}\n", model.display());
            out += &format!(
                "producer  {}\n",
                if info.producer.is_empty() {
                    "-"
                } else {
                    &info.producer
                }
            );
            out += &format!("size      {} bytes\nsha256    {}\n", info.size, info.sha256);
            let opsets: Vec<_> = info
                .opsets
                .iter()
                .map(|(d, v)| format!("{d} {v}"))
                .collect();
            out += &format!("opsets    {}\n", opsets.join(", "));
            for (title, specs) in [("inputs", &info.inputs), ("outputs", &info.outputs)] {
                out += &format!("{title}:\n");
                for s in specs {
                    out += &format!("  {:<20} {:<5} {}\n", s.name, dtype(s), shape_text(s));
                }
            }
            let total: usize = info.ops.values().sum();
            out += &format!("ops ({total} nodes):\n");
            let mut ops: Vec<_> = info.ops.iter().collect();
            ops.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (op, n) in ops {
                out += &format!("  {n:>5}  {op}\n");
            }
            out
        }
    };
    output.emit(&rendered)?;
    Ok(0)
}

fn dtype(s: &IoSpec) -> String {
    s.dtype.map_or("?".to_string(), |d| d.name().to_string())
}

fn shape_text(s: &IoSpec) -> String {
    match &s.dims {
        None => "rank unknown".to_string(),
        Some(d) => crate::schema::dims_text(d),
    }
}

fn shape_json(s: &IoSpec) -> serde_json::Value {
    match &s.dims {
        None => serde_json::Value::Null,
        Some(d) => d
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => json!(n),
                Dim::Symbolic(name) => json!(name),
                Dim::Unknown => serde_json::Value::Null,
            })
            .collect(),
    }
}
