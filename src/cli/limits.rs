//! `--timeout` and `--memory-limit`: the limits of `--isolate` worker processes, shared
//! by `check` and `fuzz`.

use crate::backend::LoadOptions;
use crate::isolate::{self, IsolateOptions, MemoryLimit};
use std::time::Duration;

/// Limits of each worker process.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerLimits {
    /// With isolation: seconds a backend may take to load the model or run one case
    /// before its worker is killed and the case becomes an error.
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = isolate::parse_timeout)]
    pub timeout: Duration,
    /// With isolation: address-space limit (RLIMIT_AS) of each worker, e.g. 8G, 512M, or
    /// `none`; a worker that exceeds it fails its allocation and dies (an error case).
    #[arg(long, value_name = "SIZE", default_value = "8G", value_parser = isolate::parse_memory_limit)]
    pub memory_limit: MemoryLimit,
}

impl WorkerLimits {
    /// The options of every worker.
    pub fn options(&self, load: &LoadOptions) -> IsolateOptions {
        IsolateOptions {
            timeout: self.timeout,
            memory_limit: self.memory_limit.0,
            load: load.clone(),
        }
    }
}
