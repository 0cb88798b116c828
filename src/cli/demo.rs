//! `parity demo`: every bundled suite on every available backend — the parity verdict
//! against the float64 goldens, and how fast each backend runs each model (tokens/s of
//! greedy generation for the bundled language model).

use super::output::{OutputArgs, Progress};
use super::Global;
use crate::backend::{self, LoadOptions};
use crate::bench::{self, Budget};
use crate::error::{Error, Result};
use crate::report::{text, CaseReport, CaseVerdict};
use crate::suite::{self, runner};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Run the bundled models on every available backend: parity table plus latency and throughput.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  parity demo --backend ort-cpu --backend tract-cpu")]
pub struct DemoArgs {
    /// Directory of bundled suites (default: PARITY_MODELS, ./models, or the models/ next to the installed source).
    #[arg(long, value_name = "DIR")]
    models: Option<PathBuf>,
    /// Backend to run (repeatable); default: every available backend.
    #[arg(long = "backend", value_name = "B")]
    backends: Vec<String>,
    /// Minimum timing time per model and backend, in seconds.
    #[arg(long, default_value_t = 0.5, value_name = "SECONDS", value_parser = super::seconds)]
    min_duration: f64,
}

pub fn run(args: DemoArgs, global: Global) -> Result<u8> {
    let dir = models_dir(args.models.as_deref())?;
    let suites = suite::discover(&[dir])?;
    let selected = backend::select(&args.backends)?;
    let options = runner::RunOptions::default();
    // Every case on every backend, then one timing per model and backend (generation
    // suites are timed by their own decoding).
    let timed = suites
        .iter()
        .filter(|s| s.manifest.generate.is_none())
        .count();
    let total = (suites.iter().map(|s| s.cases.len()).sum::<usize>() + timed) * selected.len();
    let output = OutputArgs {
        format: super::output::Format::Text,
        out: None,
    };
    let mut progress = Progress::new(total as u64, output.progress_allowed(global.quiet));
    let rows = runner::run(
        &suites,
        &selected,
        &runner::Reference::Golden,
        &options,
        &mut |r| progress.step(&format!("{} {}", r.case, r.backend)),
    );
    let budget = Budget {
        warmup: 3,
        min_runs: 20,
        min_duration: Duration::from_secs_f64(args.min_duration.max(0.0)),
        max_runs: 100_000,
    };
    let mut table =
        vec![["MODEL", "BACKEND", "VERDICT", "MAX REL", "P50 MS", "INF/S"].map(String::from)];
    let mut verdicts = Vec::new();
    let mut worst = CaseVerdict::Pass;
    // One line per generation suite: each backend's decoding speed, below the table.
    let mut generation_lines = Vec::new();
    for suite in &suites {
        let model = suite.dir.file_name().map_or_else(
            || suite.dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut speeds = Vec::new();
        for s in &selected {
            let mine: Vec<_> = rows
                .iter()
                .filter(|r| {
                    r.suite == suite.dir.display().to_string() && r.backend == s.backend.name()
                })
                .collect();
            let verdict = mine
                .iter()
                .map(|r| r.verdict)
                .max()
                .unwrap_or(CaseVerdict::Error);
            let max_rel = mine
                .iter()
                .flat_map(|r| r.outputs.iter().map(|o| o.comparison.max_rel_err))
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
            worst = worst.max(verdict);
            verdicts.push(verdict);
            if suite.manifest.generate.is_some() {
                // Timed by the check's own decoding: tokens/s on the line below the table.
                speeds.push(format!("{} {}", s.backend.name(), tokens_per_s(&mine)));
                table.push([
                    model.clone(),
                    s.backend.name().to_string(),
                    verdict.name().to_string(),
                    text::num(max_rel),
                    "-".to_string(),
                    "-".to_string(),
                ]);
                continue;
            }
            let timing = suite
                .cases
                .first()
                .ok_or_else(|| Error::file(&suite.dir, "no data sets"))
                .and_then(|c| suite.load_case(c))
                .map_err(|e| e.to_string())
                .and_then(|case| {
                    let mut session = s
                        .backend
                        .load(&suite.model, &LoadOptions::default())
                        .map_err(|e| e.message)?;
                    bench::time_runs(session.as_mut(), &case.inputs, budget).map_err(|e| e.message)
                });
            progress.step(&format!("timing {model} {}", s.backend.name()));
            let (p50, ips) = match &timing {
                Ok(t) => (
                    format!("{:.3}", t.percentile(0.5)),
                    format!("{:.0}", t.throughput_per_s()),
                ),
                Err(_) => ("-".to_string(), "-".to_string()),
            };
            table.push([
                model.clone(),
                s.backend.name().to_string(),
                verdict.name().to_string(),
                text::num(max_rel),
                p50,
                ips,
            ]);
        }
        if let Some(g) = &suite.manifest.generate {
            generation_lines.push(format!(
                "{model}: greedy generation with a KV cache, {} prompts x {} new tokens: {}\n",
                suite.cases.len(),
                g.max_new_tokens,
                speeds.join(", ")
            ));
        }
    }
    progress.finish();
    let style = text::Style {
        color: output.color(global.color),
    };
    let mut out = render_table(&table, &verdicts, style);
    out.extend(generation_lines);
    let errors: Vec<_> = rows
        .iter()
        .filter(|r| r.verdict != CaseVerdict::Pass)
        .collect();
    for r in &errors {
        let why = r.error.clone().unwrap_or_else(|| {
            "outputs differ beyond tolerance (run `parity check` for details)".to_string()
        });
        out += &format!("{} {} {}: {why}\n", r.suite, r.case, r.backend);
    }
    out += &format!(
        "{} models x {} backends against float64 goldens -> {}\n",
        suites.len(),
        selected.len(),
        style.verdict_text(worst, &worst.name().to_uppercase())
    );
    output.emit(&out)?;
    Ok(worst.exit_code())
}

/// Generated tokens per second of a backend's generation rows, from the decoding time
/// the check measured; "-" when nothing was generated or timed.
fn tokens_per_s(rows: &[&CaseReport]) -> String {
    let tokens: usize = rows
        .iter()
        .filter_map(|r| r.generation.as_ref())
        .map(|g| g.actual_tokens.len())
        .sum();
    let ms: f64 = rows.iter().filter_map(|r| r.latency_ms).sum();
    if tokens == 0 || ms <= 0.0 {
        return "-".to_string();
    }
    format!("{:.0} tokens/s", tokens as f64 / ms * 1e3)
}

fn render_table(rows: &[[String; 6]], verdicts: &[CaseVerdict], style: text::Style) -> String {
    let mut widths = [0usize; 6];
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (j, (cell, w)) in row.iter().zip(widths).enumerate() {
            let cell = match (i, j) {
                (0, _) => style.dim(&format!("{cell:<w$}")),
                (_, 2) => style.verdict(verdicts[i - 1], w),
                (_, 0..=1) => format!("{cell:<w$}"),
                _ => format!("{cell:>w$}"),
            };
            line += &cell;
            line += "  ";
        }
        out += line.trim_end();
        out += "\n";
    }
    out
}

/// The bundled suites: `--models`, `PARITY_MODELS`, `./models`, a `models/` beside an
/// ancestor of the executable (a build tree), `PREFIX/share/parity/models` of the
/// environment the wheel installed `PREFIX/bin/parity` into, or the source tree parity
/// was built from.
fn models_dir(flag: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("PARITY_MODELS") {
        return Ok(PathBuf::from(dir));
    }
    let mut candidates = vec![PathBuf::from("models")];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).map(|a| a.join("models")));
        if let Some(prefix) = exe.parent().and_then(Path::parent) {
            candidates.push(prefix.join("share").join("parity").join("models"));
        }
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("models"));
    candidates
        .into_iter()
        .find(|d| d.join("mlp").join(suite::MODEL_FILE).is_file())
        .ok_or_else(|| {
            Error::Usage(
                "bundled models not found: pass --models DIR or set PARITY_MODELS".to_string(),
            )
        })
}
