//! `parity backends`: every backend parity knows, whether it can run here, and why not.

use super::output::{OutputArgs, PlainFormat};
use super::Global;
use crate::backend::{self, Availability};
use crate::error::{Error, Result};
use serde_json::json;

/// List every backend with its availability, version and device, or why it cannot run here.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  parity backends --format json")]
pub struct BackendsArgs {
    /// Probe only this backend (repeatable), including one named by its runner command
    /// (`exec:COMMAND`); default: every built-in backend.
    #[arg(long = "backend", value_name = "B")]
    backends: Vec<String>,
    #[command(flatten)]
    output: OutputArgs<PlainFormat>,
}

pub fn run(args: BackendsArgs, global: Global) -> Result<u8> {
    let listed = if args.backends.is_empty() {
        backend::registry()
    } else {
        named(&args.backends)?
    };
    let probes: Vec<_> = listed
        .into_iter()
        .map(|b| (b.name().to_string(), b.probe()))
        .collect();
    let output = args.output.general();
    let rendered = match args.output.format {
        PlainFormat::Json => {
            let list: Vec<_> = probes
                .iter()
                .map(|(name, p)| match p {
                    Availability::Available { version, device } => {
                        let mut entry = json!({ "name": name, "available": true, "version": version, "device": device, "reason": null });
                        if let Some((path, source)) = library(name) {
                            entry["library"] = json!({ "path": path, "found_via": source });
                        }
                        entry
                    }
                    Availability::Unavailable { reason } => {
                        json!({ "name": name, "available": false, "version": null, "device": null, "reason": reason })
                    }
                })
                .collect();
            serde_json::to_string_pretty(&json!({ "backends": list })).unwrap_or_default() + "\n"
        }
        PlainFormat::Text => {
            let style = crate::report::text::Style {
                color: output.color(global.color),
            };
            let mut out = String::new();
            for (name, p) in &probes {
                out += &match p {
                    Availability::Available { version, device } => {
                        let from = library(name).map_or(String::new(), |(path, source)| {
                            format!(" ({path}, found via {source})")
                        });
                        format!(
                            "{name:<12} {}  {version} on {device}{from}\n",
                            style.verdict_text(crate::report::CaseVerdict::Pass, "available  ")
                        )
                    }
                    Availability::Unavailable { reason } => format!(
                        "{name:<12} {}  {reason}\n",
                        style.verdict_text(crate::report::CaseVerdict::Error, "unavailable")
                    ),
                };
            }
            out
        }
    };
    output.emit(&rendered)?;
    Ok(0)
}

/// The shared library an available ONNX Runtime backend loaded, and where the search
/// found it: which copy runs is the first question when two machines disagree.
#[cfg(feature = "ort-backend")]
fn library(name: &str) -> Option<(String, String)> {
    if !name.starts_with("ort-") {
        return None;
    }
    let rt = crate::backend::ort::runtime().ok()?;
    Some((
        rt.library.path.display().to_string(),
        rt.library.source.clone(),
    ))
}

#[cfg(not(feature = "ort-backend"))]
fn library(_name: &str) -> Option<(String, String)> {
    None
}

/// The backends named with `--backend`, each known (a registry name or `exec:COMMAND`).
fn named(names: &[String]) -> Result<Vec<Box<dyn backend::Backend>>> {
    names
        .iter()
        .map(|name| {
            backend::check_name(name)?;
            backend::find(name).ok_or_else(|| {
                Error::Usage(format!(
                    "unknown backend `{name}` (`parity backends` lists the known ones)"
                ))
            })
        })
        .collect()
}
