//! `candle-cpu`: parity's own ONNX interpreter, every op executed with candle-core 0.11.1
//! tensor ops on the CPU.
//!
//! Why not candle-onnx: it needs `protoc` to build, implements few ops, and ignores
//! opset-dependent attributes, which gives silently wrong answers — the one thing a
//! verifier's backend must never do. This interpreter instead validates every node at
//! load time against the semantics of the model's opset: an op, attribute, attribute
//! value, dtype or mode it does not implement exactly is refused with
//! [`BackendError::unsupported_op`] naming the op and the attribute; unknown attributes are
//! refused too (each op whitelists the ones it handles).
//!
//! Layout: [`graph`] loads and plans, [`exec`] runs a case, [`ops`] holds one module per
//! op family, [`value`] the dtype policy (bool as u8, narrow ints as i64, u64 refused).
//!
//! Threads: candle's CPU kernels use rayon, whose global pool is process-wide. With
//! `LoadOptions::threads = Some(n)` the session owns an `n`-thread rayon pool and runs
//! every case inside it (`ThreadPool::install`), so parallel kernels (gemm, conv tiles)
//! use at most `n` threads; gemm still splits its work into `RAYON_NUM_THREADS` (else
//! physical-core) chunks, which the `n` threads execute. `None` uses the global pool.

mod attrs;
mod error;
mod exec;
mod graph;
mod ops;
mod proto;
mod value;

#[cfg(test)]
mod tests;

use super::{Availability, Backend, BackendError, IoSpec, LoadOptions, Session};
use crate::tensor::Tensor;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// The candle-core version this interpreter was written and checked against (pinned in
/// Cargo.toml).
pub const CANDLE_VERSION: &str = "0.11.1";

/// The `candle-cpu` backend.
pub struct CandleCpu;

impl Backend for CandleCpu {
    fn name(&self) -> &'static str {
        "candle-cpu"
    }

    fn probe(&self) -> Availability {
        Availability::Available {
            version: format!("candle-core {CANDLE_VERSION}"),
            device: "cpu".to_string(),
        }
    }

    fn load(&self, model: &Path, options: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        let plan = catch_unwind(|| graph::load(model))
            .map_err(|_| BackendError::new("candle panicked while loading the model"))??;
        let pool = match options.threads {
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n.max(1))
                    .thread_name(|i| format!("candle-cpu-{i}"))
                    .build()
                    .map_err(|e| BackendError::new(format!("cannot start {n} threads: {e}")))?,
            ),
            None => None,
        };
        Ok(Box::new(CandleSession { plan, pool }))
    }
}

/// A model loaded into the interpreter.
struct CandleSession {
    plan: graph::Plan,
    pool: Option<rayon::ThreadPool>,
}

impl Session for CandleSession {
    fn inputs(&self) -> &[IoSpec] {
        &self.plan.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.plan.outputs
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
        let plan = &self.plan;
        let run = || exec::run(plan, inputs);
        // exec::run catches panics inside candle; this catches any left in conversions.
        let result = match &self.pool {
            Some(pool) => catch_unwind(AssertUnwindSafe(|| pool.install(run))),
            None => catch_unwind(AssertUnwindSafe(run)),
        };
        result.map_err(|_| BackendError::new("candle panicked while running the model"))?
    }
}

/// Op types the interpreter implements (for `parity backends -v` and docs).
pub fn supported_ops() -> Vec<&'static str> {
    ops::supported_ops()
}
