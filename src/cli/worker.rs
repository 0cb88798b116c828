//! `parity __worker`: hidden; the child process of `--isolate` (see `isolate::worker`).
//! Not for people: it speaks a binary protocol on stdin/stdout.

use super::Global;
use crate::backend::LoadOptions;
use crate::error::Result;
use std::path::PathBuf;

/// Serve one backend session to the parent parity process.
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// The backend to load.
    #[arg(long)]
    backend: String,
    /// The model to load.
    #[arg(long)]
    model: PathBuf,
    /// Intra-op threads.
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// The backend's optimisation level (`parity invariance`).
    #[arg(long)]
    optimization: Option<String>,
}

pub fn run(args: WorkerArgs, _global: Global) -> Result<u8> {
    let load = LoadOptions {
        threads: args.threads,
        optimization: args.optimization,
    };
    crate::isolate::worker::serve(&args.backend, &args.model, &load)
}
