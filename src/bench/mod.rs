//! Benchmarking on the target hardware. [`time_runs`] is the simple timing loop of
//! `parity demo`; `parity bench` runs MLPerf LoadGen-style scenarios ([`scenario`]) over
//! models and backends ([`runner`]), reports them ([`report`], the HTML page in [`html`],
//! statistics in [`stats`]) and gates them against a saved baseline ([`baseline`]).

pub mod baseline;
pub mod gate;
pub mod generation;
pub mod gpu_memory;
pub mod html;
pub mod inputs;
pub mod memory;
pub mod openmetrics;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod stats;
pub mod verify;

use crate::backend::{BackendError, Session};
use crate::tensor::Tensor;
use std::time::{Duration, Instant};

/// How long to measure: warm-up runs, then at least `min_runs` runs and `min_duration`
/// (both, as MLPerf LoadGen does), stopping at `max_runs`.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub warmup: usize,
    pub min_runs: usize,
    pub min_duration: Duration,
    pub max_runs: usize,
}

/// Latencies of the measured runs, in milliseconds, in run order.
#[derive(Debug, Clone)]
pub struct Timing {
    pub latencies_ms: Vec<f64>,
    pub wall: Duration,
}

/// Runs `inputs` through `session` repeatedly within `budget`.
pub fn time_runs(
    session: &mut dyn Session,
    inputs: &[Tensor],
    budget: Budget,
) -> Result<Timing, BackendError> {
    for _ in 0..budget.warmup {
        session.run(inputs)?;
    }
    let mut latencies_ms = Vec::new();
    let start = Instant::now();
    while latencies_ms.len() < budget.max_runs
        && (latencies_ms.len() < budget.min_runs || start.elapsed() < budget.min_duration)
    {
        let t = Instant::now();
        session.run(inputs)?;
        latencies_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Timing {
        latencies_ms,
        wall: start.elapsed(),
    })
}

impl Timing {
    /// The q-quantile (0..=1) of latency, nearest-rank on the sorted sample.
    pub fn percentile(&self, q: f64) -> f64 {
        crate::quantile::percentile(&self.latencies_ms, q)
    }

    /// Completed runs per second of wall time.
    pub fn throughput_per_s(&self) -> f64 {
        self.latencies_ms.len() as f64 / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}
