//! Where and how verbs print: report formats, `--out FILE` (atomic), colour and progress
//! decisions. Data goes to stdout, progress and diagnostics to stderr.

use super::Global;
use crate::error::Result;
use crate::formats::atomic::write_atomic;
use crate::report::{html, junit, markdown, text, Report};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour stdout: `auto` means a terminal, no `NO_COLOR`, no `TERM=dumb`.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none()
                    && std::env::var("TERM").map_or(true, |t| t != "dumb")
            }
        }
    }
}

/// `--format` of report-producing verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people.
    Text,
    /// `parity.report/v1` JSON for machines.
    Json,
    /// JUnit XML for CI test-result pages (see docs/reports.md).
    Junit,
    /// Markdown for a CI job summary (see docs/reports.md).
    Markdown,
    /// One self-contained HTML page with error histograms (see docs/reports.md).
    Html,
    /// OpenMetrics text for a Prometheus textfile collector or pushgateway (see docs/reports.md).
    Openmetrics,
}

/// Where the report goes.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the report to FILE (atomically) instead of standard output.
    #[arg(long, value_name = "FILE", value_parser = writable_file)]
    pub out: Option<PathBuf>,
}

/// A file to write at the end of a run: its directory must exist now, so a long run
/// does not end by losing its report to a typo.
pub fn writable_file(s: &str) -> std::result::Result<PathBuf, String> {
    let path = PathBuf::from(s);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if path.is_dir() {
        return Err(format!("`{s}` is a directory, not a file"));
    }
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(path),
        Ok(_) => Err(format!("`{}` is not a directory", dir.display())),
        Err(e) => Err(format!("directory `{}`: {e}", dir.display())),
    }
}

impl OutputArgs {
    /// Writes `text` to `--out` or stdout.
    pub fn emit(&self, text: &str) -> Result<()> {
        emit_to(self.out.as_deref(), text)
    }

    /// Renders a check/compare/merge report in the chosen format, writes it, and returns the
    /// exit code of its verdict.
    pub fn emit_report(&self, report: &Report, global: Global) -> Result<u8> {
        let rendered = match self.format {
            Format::Json => report.to_json() + "\n",
            Format::Junit => junit::render(report, &junit::timestamp(std::time::SystemTime::now())),
            Format::Markdown => markdown::render(report),
            Format::Html => html::render(report),
            Format::Openmetrics => crate::report::openmetrics::render(report),
            Format::Text => {
                let style = text::Style {
                    color: self.color(global.color),
                };
                if global.quiet {
                    text::summary(report, style)
                } else {
                    text::render(report, style, global.verbose)
                }
            }
        };
        self.emit(&rendered)?;
        Ok(report.verdict.exit_code())
    }

    /// The usage error for `--format junit|markdown|html|openmetrics` on a verb that
    /// produces no check/compare report (`backends`, `inspect`, `data validate`).
    pub fn report_only(&self, verb: &str) -> crate::Error {
        crate::Error::Usage(format!(
            "--format junit, markdown, html and openmetrics are for check, compare and merge (openmetrics also for bench and data drift); `parity {verb}` writes text or json"
        ))
    }

    /// Whether the report carries per-output error histograms: JSON (which `merge` may
    /// render as HTML later) and HTML do; text, JUnit and Markdown do not show them, so
    /// their runs skip the second pass over every output.
    pub fn wants_histograms(&self) -> bool {
        matches!(self.format, Format::Json | Format::Html)
    }

    /// Colour only for text going to a terminal.
    pub fn color(&self, choice: ColorChoice) -> bool {
        self.format == Format::Text && self.out.is_none() && choice.enabled()
    }

    /// Progress bars only for text reports, on a terminal, outside CI.
    pub fn progress_allowed(&self, quiet: bool) -> bool {
        self.format == Format::Text && progress_wanted(quiet)
    }
}

/// Whether a progress bar would be seen by a person: not `--quiet`, stderr a terminal,
/// not in CI.
pub fn progress_wanted(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A progress bar that appears only once a run has lasted more than a second.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: std::time::Instant,
    total: u64,
    done: u64,
}

impl Progress {
    /// A bar over `total` steps, or a silent counter when not `allowed`.
    pub fn new(total: u64, allowed: bool) -> Progress {
        Progress {
            bar: allowed.then(|| {
                let bar = indicatif::ProgressBar::with_draw_target(
                    Some(total),
                    indicatif::ProgressDrawTarget::hidden(),
                );
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}")
                {
                    bar.set_style(style);
                }
                bar
            }),
            started: std::time::Instant::now(),
            total,
            done: 0,
        }
    }

    /// One step done; `msg` says what.
    pub fn step(&mut self, msg: &str) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            if bar.is_hidden()
                && self.started.elapsed().as_secs_f64() > 1.0
                && self.done < self.total
            {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.set_position(self.done);
            bar.set_message(msg.to_string());
        }
    }

    /// Removes the bar before the report is printed.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Writes `text` atomically to `out`, or to stdout without one. A closed pipe
/// (`parity ... | head`) is not an error.
pub fn emit_to(out: Option<&std::path::Path>, text: &str) -> Result<()> {
    match out {
        Some(path) => write_atomic(path, |w| w.write_all(text.as_bytes())),
        None => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(crate::Error::Write {
                    path: PathBuf::from("<stdout>"),
                    source: e,
                }),
                _ => Ok(()),
            }
        }
    }
}
