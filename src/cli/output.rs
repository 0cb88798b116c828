//! Where and how verbs print: report formats, `--out FILE` (atomic), colour and progress
//! decisions. Data goes to stdout, progress and diagnostics to stderr.

use super::Global;
use crate::error::Result;
use crate::formats::atomic::write_atomic;
use crate::report::{html, junit, markdown, text, Report};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour stdout. `auto` follows the conventions (no-color.org,
    /// bixense.com/clicolors): `CLICOLOR_FORCE` set and not `0` colours even a pipe;
    /// otherwise `NO_COLOR` set and not empty, `CLICOLOR=0` or `TERM=dumb` turn colour
    /// off, and a terminal turns it on.
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => auto_color(
                |name| std::env::var(name).ok(),
                std::io::stdout().is_terminal(),
            ),
        }
    }
}

/// `--color auto` given the environment (`var`) and whether stdout is a terminal.
fn auto_color(var: impl Fn(&str) -> Option<String>, terminal: bool) -> bool {
    let set = |name: &str, off: &str| var(name).is_some_and(|v| !v.is_empty() && v != off);
    if set("CLICOLOR_FORCE", "0") {
        return true;
    }
    let no_color = var("NO_COLOR").is_some_and(|v| !v.is_empty());
    let clicolor_off = var("CLICOLOR").as_deref() == Some("0");
    let dumb = var("TERM").as_deref() == Some("dumb");
    terminal && !no_color && !clicolor_off && !dumb
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

/// `--format` of the verbs that print text or JSON only (`backends`, `inspect`,
/// `bisect`, `data validate`): their `--help` offers exactly these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlainFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

impl From<PlainFormat> for Format {
    fn from(f: PlainFormat) -> Format {
        match f {
            PlainFormat::Text => Format::Text,
            PlainFormat::Json => Format::Json,
        }
    }
}

/// `--format` of `invariance`: the report formats of `check` but OpenMetrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InvarianceFormat {
    /// A table for people.
    Text,
    /// `parity.invariance/v1` JSON for machines.
    Json,
    /// JUnit XML for CI test-result pages.
    Junit,
    /// Markdown for a CI job summary.
    Markdown,
    /// One self-contained HTML page.
    Html,
}

impl From<InvarianceFormat> for Format {
    fn from(f: InvarianceFormat) -> Format {
        match f {
            InvarianceFormat::Text => Format::Text,
            InvarianceFormat::Json => Format::Json,
            InvarianceFormat::Junit => Format::Junit,
            InvarianceFormat::Markdown => Format::Markdown,
            InvarianceFormat::Html => Format::Html,
        }
    }
}

/// `--format` of `data drift`: text, JSON, or OpenMetrics for a Prometheus alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
    /// OpenMetrics text for a Prometheus textfile collector or pushgateway.
    Openmetrics,
}

impl From<DriftFormat> for Format {
    fn from(f: DriftFormat) -> Format {
        match f {
            DriftFormat::Text => Format::Text,
            DriftFormat::Json => Format::Json,
            DriftFormat::Openmetrics => Format::Openmetrics,
        }
    }
}

/// Where the output goes and in which of the verb's formats (`F`: [`Format`] for the
/// verbs that write a check report, a narrower enum for the others, so that `--help`
/// lists only what the verb writes). Verbs work with [`OutputArgs::general`].
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs<F = Format>
where
    F: clap::ValueEnum + Clone + Send + Sync + 'static,
{
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: F,
    /// Write the output to FILE (atomically) instead of standard output.
    #[arg(long, value_name = "FILE", value_parser = writable_file)]
    pub out: Option<PathBuf>,
}

impl<F> OutputArgs<F>
where
    F: clap::ValueEnum + Clone + Copy + Send + Sync + 'static + Into<Format>,
{
    /// The same choice as a [`Format`], on which every output method works.
    pub fn general(&self) -> OutputArgs {
        OutputArgs {
            format: self.format.into(),
            out: self.out.clone(),
        }
    }
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

/// Refuses, before a run starts, an output path that would replace or add to one of the
/// run's inputs: an existing input file (the same path, or the same file through a link),
/// or any path inside an input directory (a suite or a directory of tensors, where a new
/// file can become a data set). Also refuses two outputs naming one file. `outputs` are
/// (flag, path) pairs; special files (`/dev/stdout`, a FIFO) are never refused, since
/// they are written, not replaced.
pub fn refuse_inputs_as_outputs<'a>(
    outputs: &[(&str, Option<&Path>)],
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<()> {
    let outputs: Vec<(&str, &Path, Resolved)> = outputs
        .iter()
        .filter_map(|&(flag, path)| path.map(|p| (flag, p)))
        .filter_map(|(flag, path)| Resolved::of_output(path).map(|r| (flag, path, r)))
        .collect();
    if outputs.is_empty() {
        return Ok(());
    }
    let refuse = |flag: &str, out: &Path, what: String| {
        Err(crate::Error::Usage(format!(
            "{flag} {} {what}; write it elsewhere",
            out.display()
        )))
    };
    for input in inputs {
        let Some(resolved) = Resolved::of_input(input) else {
            continue;
        };
        for (flag, out, r) in &outputs {
            if resolved.dir && r.path.starts_with(&resolved.path) {
                return refuse(
                    flag,
                    out,
                    format!("is inside {}, an input of this run", input.display()),
                );
            }
            if !resolved.dir && r.same_file(&resolved) {
                let what = match *out == input {
                    true => "is an input of this run".to_string(),
                    false => format!(
                        "is the same file as {}, an input of this run",
                        input.display()
                    ),
                };
                return refuse(flag, out, what);
            }
        }
    }
    for (i, (flag, out, r)) in outputs.iter().enumerate() {
        if let Some((other, _, _)) = outputs[..i].iter().find(|(_, _, o)| o.path == r.path) {
            return refuse(flag, out, format!("is also the file of {other}"));
        }
    }
    Ok(())
}

/// A path resolved for [`refuse_inputs_as_outputs`]: absolute with links followed, and
/// the file's identity when it exists.
struct Resolved {
    path: PathBuf,
    /// (device, inode) of an existing file.
    id: Option<(u64, u64)>,
    dir: bool,
}

impl Resolved {
    /// An output: the file itself when it exists (`None` for a special file, which is
    /// written in place), else its canonical directory joined with its name.
    fn of_output(path: &Path) -> Option<Resolved> {
        match std::fs::metadata(path) {
            Ok(m) if !m.is_file() => None,
            Ok(m) => Some(Resolved {
                path: path.canonicalize().ok()?,
                id: file_id(&m),
                dir: false,
            }),
            Err(_) => {
                let name = path.file_name()?;
                let dir = match path.parent() {
                    Some(d) if !d.as_os_str().is_empty() => d,
                    _ => Path::new("."),
                };
                Some(Resolved {
                    path: dir.canonicalize().ok()?.join(name),
                    id: None,
                    dir: false,
                })
            }
        }
    }

    /// An input that exists (a missing one is reported by the verb itself).
    fn of_input(path: &Path) -> Option<Resolved> {
        let m = std::fs::metadata(path).ok()?;
        Some(Resolved {
            path: path.canonicalize().ok()?,
            id: file_id(&m),
            dir: m.is_dir(),
        })
    }

    fn same_file(&self, other: &Resolved) -> bool {
        self.path == other.path || (self.id.is_some() && self.id == other.id)
    }
}

#[cfg(unix)]
fn file_id(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

impl OutputArgs {
    /// [`refuse_inputs_as_outputs`] for `--out`.
    pub fn refuse_inputs<'a>(&self, inputs: impl IntoIterator<Item = &'a Path>) -> Result<()> {
        refuse_inputs_as_outputs(&[("--out", self.out.as_deref())], inputs)
    }

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
                    // Quiet keeps the warnings: they qualify the one line it prints.
                    text::warnings(report) + &text::summary(report, style)
                } else {
                    text::render(report, style, global.verbose)
                }
            }
        };
        self.emit(&rendered)?;
        Ok(report.verdict.exit_code())
    }

    /// Whether the report carries per-output error histograms: JSON (which `merge` may
    /// render as HTML later) and HTML do; text, JUnit and Markdown do not show them, so
    /// their runs skip the second pass over every output.
    pub fn wants_histograms(&self) -> bool {
        matches!(self.format, Format::Json | Format::Html)
    }

    /// Whether the report is text on stdout, where it shows the run's warnings itself
    /// (printing them on stderr too would say everything twice).
    pub fn text_on_stdout(&self) -> bool {
        self.format == Format::Text && self.out.is_none()
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

#[cfg(test)]
mod tests {

    #[test]
    fn colour_follows_no_color_and_clicolor() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(auto_color(env(&[]), true));
        assert!(!auto_color(env(&[]), false));
        assert!(!auto_color(env(&[("NO_COLOR", "1")]), true));
        // An empty NO_COLOR is not set (no-color.org).
        assert!(auto_color(env(&[("NO_COLOR", "")]), true));
        assert!(!auto_color(env(&[("CLICOLOR", "0")]), true));
        assert!(!auto_color(env(&[("TERM", "dumb")]), true));
        // CLICOLOR_FORCE colours a pipe, and wins over NO_COLOR; 0 does not force.
        assert!(auto_color(env(&[("CLICOLOR_FORCE", "1")]), false));
        assert!(auto_color(
            env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]),
            false
        ));
        assert!(!auto_color(env(&[("CLICOLOR_FORCE", "0")]), false));
    }

    use super::*;

    fn refused(out: &Path, inputs: &[&Path]) -> Option<String> {
        refuse_inputs_as_outputs(&[("--out", Some(out))], inputs.iter().copied())
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let suite = dir.path().join("s");
        std::fs::create_dir_all(suite.join("test_data_set_0")).unwrap();
        let golden = suite.join("test_data_set_0/output_0.pb");
        std::fs::write(&golden, b"golden").unwrap();
        let model = suite.join("model.onnx");
        std::fs::write(&model, b"model").unwrap();
        // Inside a suite directory: an existing file or a new one.
        for out in [&golden, &model, &suite.join("report.json")] {
            let msg = refused(out, &[&suite]).unwrap();
            assert!(msg.contains("an input of this run"), "{msg}");
            assert!(msg.starts_with("--out "), "{msg}");
        }
        // The same file by another path: `.` components, a symlink, a hard link.
        let dotted = suite.join("test_data_set_0/../model.onnx");
        assert!(refused(&dotted, &[&model]).is_some());
        let link = dir.path().join("link.pb");
        std::os::unix::fs::symlink(&golden, &link).unwrap();
        assert!(refused(&link, &[&golden]).is_some());
        let hard = dir.path().join("hard.pb");
        std::fs::hard_link(&golden, &hard).unwrap();
        assert!(refused(&hard, &[&golden]).is_some());
        // Next to the inputs, not inside them: fine; so is a missing input (the verb
        // reports it) and a device.
        assert_eq!(
            refused(&dir.path().join("report.json"), &[&suite, &golden]),
            None
        );
        assert_eq!(
            refused(&dir.path().join("r.json"), &[&dir.path().join("nope")]),
            None
        );
        assert_eq!(
            refused(Path::new("/dev/null"), &[Path::new("/dev/null")]),
            None
        );
        // Nothing was written or removed.
        assert_eq!(std::fs::read(&golden).unwrap(), b"golden");
    }

    #[test]
    fn two_outputs_naming_one_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let same = dir.path().join("./a.json");
        let err = refuse_inputs_as_outputs(
            &[("--out", Some(&a)), ("--save-baseline", Some(&same))],
            std::iter::empty(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("is also the file of --out"),
            "{err}"
        );
        refuse_inputs_as_outputs(
            &[("--out", Some(&a)), ("--save-baseline", None)],
            std::iter::empty(),
        )
        .unwrap();
    }
}
