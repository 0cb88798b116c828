//! The command line: one module per verb. Each verb parses its own arguments (clap
//! derive), does its work through the library and returns the process exit code.

mod backends;
mod bench;
mod bisect;
mod check;
mod compare;
mod data;
mod demo;
mod fuzz;
mod generate;
mod inspect;
mod invariance;
mod limits;
mod merge;
mod output;
mod record;
mod shell;
mod worker;

use crate::error::Result;
use clap::{Parser, Subcommand};

pub use merge::{merge, parse_report, ReportFile};
pub use output::ColorChoice;
pub use shell::version_text;

/// `parity`: verify that a model gives the same answers, as fast, on every runtime.
#[derive(Debug, Parser)]
#[command(
    name = "parity",
    version,
    about = "Verify that an ONNX model gives the same answers, as fast, on every runtime and machine",
    after_help = "Exit codes: 0 every comparison within tolerance, 1 a mismatch, 2 could not evaluate.\n\nExample:\n  parity check models/ --backend ort-cpu --backend tract-cpu"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Colour in text output: auto (a terminal, unless NO_COLOR is set or TERM=dumb;
    /// CLICOLOR_FORCE=1 forces it, CLICOLOR=0 turns it off), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Print only the summary (and errors).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more detail (every output of every case).
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    Demo(demo::DemoArgs),
    Backends(backends::BackendsArgs),
    Bench(bench::BenchArgs),
    Check(check::CheckArgs),
    Compare(compare::CompareArgs),
    Inspect(inspect::InspectArgs),
    Merge(merge::MergeArgs),
    Record(record::RecordArgs),
    Bisect(bisect::BisectArgs),
    Data(data::DataArgs),
    Fuzz(fuzz::FuzzArgs),
    Generate(generate::GenerateArgs),
    Invariance(invariance::InvarianceArgs),
    Completions(shell::CompletionsArgs),
    Man(shell::ManArgs),
    #[command(name = "__worker", hide = true)]
    Worker(worker::WorkerArgs),
}

/// Options every verb's output honours.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    pub color: ColorChoice,
    pub quiet: bool,
    pub verbose: bool,
}

impl Cli {
    /// The verb's `--threads`, which fixes the process's thread settings
    /// ([`crate::backend::pin_process_threads`]).
    pub fn threads(&self) -> Option<usize> {
        match &self.command {
            Command::Bench(a) => a.threads,
            Command::Check(a) => a.threads,
            Command::Record(a) => a.threads,
            Command::Bisect(a) => a.threads,
            Command::Fuzz(a) => a.threads,
            Command::Generate(a) => a.threads,
            Command::Invariance(a) => a.threads,
            Command::Worker(a) => a.threads,
            _ => None,
        }
    }

    /// Runs the chosen verb and returns its exit code.
    pub fn run(self) -> Result<u8> {
        let global = Global {
            color: self.color,
            quiet: self.quiet,
            verbose: self.verbose,
        };
        match self.command {
            Command::Demo(a) => demo::run(a, global),
            Command::Backends(a) => backends::run(a, global),
            Command::Bench(a) => bench::run(a, global),
            Command::Check(a) => check::run(a, global),
            Command::Compare(a) => compare::run(a, global),
            Command::Inspect(a) => inspect::run(a, global),
            Command::Merge(a) => merge::run(a, global),
            Command::Record(a) => record::run(a, global),
            Command::Bisect(a) => bisect::run(a, global),
            Command::Data(a) => data::run(a, global),
            Command::Fuzz(a) => fuzz::run(a, global),
            Command::Generate(a) => generate::run(a, global),
            Command::Invariance(a) => invariance::run(a, global),
            Command::Completions(a) => shell::completions(a, global),
            Command::Man(a) => shell::man(a, global),
            Command::Worker(a) => worker::run(a, global),
        }
    }
}

/// The value parser of duration flags (`bench`, `demo`): bounded, see [`limits::seconds`].
use limits::seconds;

// Reports never see backend types (src/lib.rs, layers): the CLI, which knows both,
// turns a chosen backend into the report's description of it.
impl From<&crate::backend::Selected> for crate::report::BackendInfo {
    /// A backend chosen for a run, as reports name it.
    fn from(s: &crate::backend::Selected) -> crate::report::BackendInfo {
        crate::report::BackendInfo {
            name: s.backend.name().to_string(),
            version: s.version.clone(),
            device: s.device.clone(),
        }
    }
}

/// The environment of a run over `selected`: the machine, the backends that ran, and
/// every built-in backend that did not, with why (reports always name what they skipped).
/// A suite directory stands for its model.onnx.
fn model_file(path: &std::path::Path) -> std::path::PathBuf {
    if path.is_dir() {
        path.join(crate::suite::MODEL_FILE)
    } else {
        path.to_path_buf()
    }
}

pub fn run_environment(selected: &[crate::backend::Selected]) -> crate::report::Environment {
    let mut environment =
        crate::report::Environment::detect(selected.iter().map(Into::into).collect());
    environment.skipped_backends = crate::backend::skipped(selected)
        .into_iter()
        .map(|(name, reason)| crate::report::SkippedBackend { name, reason })
        .collect();
    environment
}
