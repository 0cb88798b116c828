//! Limits the command line sets and the limits it accepts: `--timeout` and
//! `--memory-limit` of `--isolate` worker processes (shared by `check` and `fuzz`), and
//! the value parsers that bound numeric flags (`--threads`, `--concurrency`, durations),
//! so that a typo like `--threads 100000` is a one-line usage error (exit 2) instead of
//! a run that spawns threads until the machine gives out.

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

/// Most intra-op threads `--threads` accepts: far above any machine's cores (a thread
/// per core is what engines want), far below what makes spawning them the run's work.
pub const MAX_THREADS: usize = 1024;

/// Most `bench --concurrency` workers: each is a thread and (by default) a loaded
/// session; more than this measures the machine's scheduler, not the model.
pub const MAX_CONCURRENCY: usize = 4096;

/// Longest duration flag, in seconds (7 days): a bench or demo that needs longer is a
/// typo, and a bound keeps every later conversion to `Duration` safe.
pub const MAX_SECONDS: f64 = 7.0 * 24.0 * 3600.0;

/// Parses a whole number from 1 to `max` for `flag`; the message says the range.
fn bounded(s: &str, flag: &str, max: usize) -> std::result::Result<usize, String> {
    match s.trim().parse::<u128>() {
        Ok(n) if (1..=max as u128).contains(&n) => Ok(n as usize),
        Ok(n) if n > max as u128 => Err(format!("`{s}` is too many: {flag} takes at most {max}")),
        _ => Err(format!("`{s}` is not a whole number from 1 to {max}")),
    }
}

/// Value parser of `--threads` (check, record, bench, fuzz, bisect): 1 to [`MAX_THREADS`].
pub fn threads(s: &str) -> std::result::Result<usize, String> {
    bounded(s, "--threads", MAX_THREADS)
        .map_err(|e| format!("{e} (leave --threads out for the engine's own choice)"))
}

/// Value parser of `check --jobs`: 1 to [`MAX_THREADS`] suites and backends at once.
pub fn jobs(s: &str) -> std::result::Result<usize, String> {
    bounded(s, "--jobs", MAX_THREADS)
}

/// Value parser of `bench --concurrency`: 1 to [`MAX_CONCURRENCY`].
pub fn concurrency(s: &str) -> std::result::Result<usize, String> {
    bounded(s, "--concurrency", MAX_CONCURRENCY)
}

/// Parses a duration flag in seconds: a finite number from 0 to [`MAX_SECONDS`], so no
/// later conversion can panic on `1e300` or `nan`.
pub fn seconds(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=MAX_SECONDS).contains(&v) => Ok(v),
        Ok(v) if v > MAX_SECONDS => Err(format!(
            "`{s}` is too large: at most {MAX_SECONDS} seconds (7 days)"
        )),
        _ => Err(format!("`{s}` is not a number of seconds ≥ 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_flags_have_bounds_and_say_them() {
        assert_eq!(threads("4"), Ok(4));
        assert_eq!(threads("1024"), Ok(1024));
        assert_eq!(
            threads("100000").unwrap_err(),
            "`100000` is too many: --threads takes at most 1024 \
             (leave --threads out for the engine's own choice)"
        );
        assert_eq!(
            threads("0").unwrap_err(),
            "`0` is not a whole number from 1 to 1024 (leave --threads out for the engine's own choice)"
        );
        assert_eq!(concurrency("4096"), Ok(4096));
        assert_eq!(
            concurrency("100000").unwrap_err(),
            "`100000` is too many: --concurrency takes at most 4096"
        );
        assert_eq!(
            concurrency("99999999999999999999999").unwrap_err(),
            "`99999999999999999999999` is too many: --concurrency takes at most 4096"
        );
        assert_eq!(
            concurrency("-1").unwrap_err(),
            "`-1` is not a whole number from 1 to 4096"
        );
    }

    #[test]
    fn durations_are_bounded_and_too_large_says_so() {
        assert_eq!(seconds("2.5"), Ok(2.5));
        assert_eq!(seconds("604800"), Ok(604800.0));
        assert_eq!(
            seconds("1e300").unwrap_err(),
            "`1e300` is too large: at most 604800 seconds (7 days)"
        );
        assert_eq!(
            seconds("inf").unwrap_err(),
            "`inf` is too large: at most 604800 seconds (7 days)"
        );
        for bad in ["nan", "-1", "soon"] {
            assert_eq!(
                seconds(bad).unwrap_err(),
                format!("`{bad}` is not a number of seconds ≥ 0")
            );
        }
    }
}
