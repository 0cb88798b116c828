//! `candle-cpu` and `candle-cuda`: parity's own ONNX interpreter, every op executed with
//! candle-core 0.11.1 tensor ops on the CPU or (with the cargo feature `candle-cuda`) on
//! an NVIDIA GPU.
//!
//! Why not candle-onnx: it needs `protoc` to build, implements few ops, and ignores
//! opset-dependent attributes, which gives silently wrong answers — the one thing a
//! verifier's backend must never do. This interpreter instead validates every node at
//! load time against the semantics of the model's opset: an op, attribute, attribute
//! value, dtype or mode it does not implement exactly is refused with
//! [`BackendError::unsupported_op`] naming the op and the attribute; unknown attributes are
//! refused too (each op whitelists the ones it handles).
//!
//! Where ONNX Runtime and the ONNX reference implementation disagree (Resize with
//! fractional align_corners lengths, nearest coordinates on a rounding boundary, NaN in
//! max-style reductions), the node is refused too: neither answer could be called right.
//!
//! Layout: [`graph`] loads and plans, [`exec`] runs a case, [`ops`] holds one module per
//! op family (140 op types), [`value`] the dtype policy (bool as u8, narrow ints as i64,
//! u64 refused).
//!
//! Verification (see `tests.rs`): the 140 shipped ONNX backend-test cases (124 pass, the
//! other 16 need strings, sequences or training ops), the ONNX node tests and a
//! differential battery against onnxruntime (`scripts/`), all with zero mismatches.
//!
//! Devices: the [`candle_core::Device`] is chosen when a model is loaded; initializers and
//! constants are put on it once, inputs are copied to it and outputs back from it for
//! every case, and every tensor an op creates goes to the device of its inputs. A few
//! ops have no candle kernel with ONNX's exact semantics and compute on the host
//! (`ops::map_f64` and friends: Tan, Asin..., Round, Softplus, Mod, integer Pow,
//! ReduceProd, CumSum, ScatterElements/ND, NonZero, TopK's indices, Range, shape
//! arithmetic, the wrap-around of i8/i16/u16 results, and of i32 ones on CUDA): on CUDA
//! they copy their inputs to the host and the result back to the device explicitly (same
//! values as on the CPU, slower). So do ArgMax/ArgMin/Hardmax indices on CUDA (first
//! index among ties), and `ops::maximum`/`minimum` keep the CPU's NaN rule there.
//!
//! Threads: candle's CPU kernels use rayon, whose global pool is process-wide. With
//! `LoadOptions::threads = Some(n)` the session owns an `n`-thread rayon pool and runs
//! every case inside it (`ThreadPool::install`), so parallel kernels (gemm, conv tiles)
//! use at most `n` threads; gemm still splits its work into `RAYON_NUM_THREADS` (else
//! physical-core) chunks, which the `n` threads execute. `None` uses the global pool.
//! When the process was started for one thread ([`super::pin_process_threads`]: the
//! verb's `--threads 1`, which sets `RAYON_NUM_THREADS=1`), a one-thread session needs
//! no pool and runs on the caller's thread (no cross-thread hand-off per case; gemm
//! runs serially).
//! On CUDA the same pool only runs the host-side parts.

mod attrs;
mod error;
mod exec;
mod graph;
mod ops;
mod plan;
mod proto;
mod value;

#[cfg(test)]
mod qop_tests;
#[cfg(test)]
mod tests;

use super::{Availability, Backend, BackendError, IoSpec, Knobs, LoadOptions, Session};
use crate::tensor::Tensor;
use candle_core::Device;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// The candle-core version this interpreter was written and checked against (pinned in
/// Cargo.toml).
pub const CANDLE_VERSION: &str = "0.11.1";

/// The `candle-cpu` backend.
pub struct CandleCpu;

impl Backend for CandleCpu {
    fn name(&self) -> &str {
        "candle-cpu"
    }

    fn probe(&self) -> Availability {
        Availability::Available {
            version: format!("candle-core {CANDLE_VERSION}"),
            device: "cpu".to_string(),
        }
    }

    fn load(&self, model: &Path, options: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        load_on(&Device::Cpu, "candle-cpu", model, options)
    }

    fn knobs(&self) -> Knobs {
        KNOBS
    }
}

/// candle sessions take a thread count (a pool of their own); the interpreter has one
/// plan, so there is no optimisation level to vary.
const KNOBS: Knobs = Knobs {
    threads: true,
    optimization_levels: &[],
    fresh_session: true,
};

/// Loads `model` into an interpreter session whose values live on `device`.
fn load_on(
    device: &Device,
    name: &'static str,
    model: &Path,
    options: &LoadOptions,
) -> Result<Box<dyn Session>, BackendError> {
    let plan = catch_unwind(AssertUnwindSafe(|| graph::load(model, device)))
        .map_err(|_| BackendError::new("candle panicked while loading the model"))??;
    let pool = match options.threads {
        // One thread, and the process pinned to one (gemm serial, no pool to hand work
        // to): the caller's thread is that thread. With n > 1 each session keeps its
        // own pool, so that concurrent sessions get n threads each.
        Some(1) if super::is_process_threads(Some(1)) => None,
        Some(n) => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .thread_name(move |i| format!("{name}-{i}"))
                .build()
                .map_err(|e| BackendError::new(format!("cannot start {n} threads: {e}")))?,
        ),
        None => None,
    };
    Ok(Box::new(CandleSession { plan, pool }))
}

/// Plans the model in `bytes` on the CPU as loading does, without the load's panic
/// guard, then runs it once on `inputs` when given: the fuzzer's way in
/// (fuzz/fuzz_targets/candle_*.rs), so that a panic while planning is seen rather than
/// turned into an error. No inputs: no outputs.
#[doc(hidden)]
pub fn plan_unguarded(
    bytes: &[u8],
    inputs: Option<&[Tensor]>,
) -> Result<Vec<(String, Tensor)>, BackendError> {
    let path = Path::new("model.onnx");
    let model = crate::formats::onnx_model::decode_model(bytes, path)
        .map_err(|e| BackendError::new(e.to_string()))?;
    let plan = graph::plan(&model, path, &Device::Cpu)?;
    inputs.map_or(Ok(Vec::new()), |inputs| exec::run(&plan, inputs))
}

#[cfg(feature = "candle-cuda")]
pub use cuda::CandleCuda;

#[cfg(feature = "candle-cuda")]
mod cuda {
    use super::{load_on, Availability, Backend, BackendError, LoadOptions, Session};
    use candle_core::Device;
    use std::path::Path;
    use std::sync::OnceLock;

    /// The GPU architecture candle's kernels were compiled for (`CUDA_COMPUTE_CAP` at
    /// build time, set by ci/build-cuda.sh).
    const BUILT_FOR: Option<&str> = option_env!("CUDA_COMPUTE_CAP");

    /// The `candle-cuda` backend: the interpreter on CUDA device 0.
    pub struct CandleCuda;

    /// Device 0 and its description, opened once per process (probe and every load
    /// share it), or why it cannot be used.
    fn device() -> &'static Result<(Device, String), String> {
        static DEVICE: OnceLock<Result<(Device, String), String>> = OnceLock::new();
        DEVICE.get_or_init(open)
    }

    fn open() -> Result<(Device, String), String> {
        let dev = std::panic::catch_unwind(|| Device::new_cuda(0))
            .map_err(|_| "the CUDA driver panicked while opening device 0".to_string())?
            .map_err(|e| BackendError::new(format!("cannot open CUDA device 0: {e}")).message)?;
        let ctx = dev
            .as_cuda_device()
            .map_err(|e| e.to_string())?
            .cuda_stream()
            .context()
            .clone();
        let name = ctx
            .name()
            .map_err(|e| format!("cannot query device 0: {e}"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(|e| format!("cannot query device 0: {e}"))?;
        let mem = ctx.total_mem().map(|b| b >> 30).unwrap_or(0);
        let cap = major * 10 + minor;
        if let Some(built) = BUILT_FOR.and_then(|b| b.parse::<i32>().ok()) {
            // candle-kernels compiles PTX for compute_<built>, with the architecture-
            // specific `a` suffix from 90 on (compute_90a): the driver JIT-compiles plain
            // PTX for newer GPUs, but `a` PTX only runs on exactly that architecture.
            if cap < built || (built >= 90 && cap != built) {
                return Err(format!(
                    "{name} is sm_{cap}, this binary's kernels were built for sm_{built}: \
                     rebuild with CUDA_COMPUTE_CAP={cap} ci/build-cuda.sh"
                ));
            }
        }
        Ok((dev, format!("cuda:0 {name} (sm_{cap}, {mem} GiB)")))
    }

    impl Backend for CandleCuda {
        fn name(&self) -> &str {
            "candle-cuda"
        }

        fn probe(&self) -> Availability {
            match device() {
                Ok((_, desc)) => Availability::Available {
                    version: format!(
                        "candle-core {} (kernels sm_{})",
                        super::CANDLE_VERSION,
                        BUILT_FOR.unwrap_or("?")
                    ),
                    device: desc.clone(),
                },
                Err(reason) => Availability::Unavailable {
                    reason: reason.clone(),
                },
            }
        }

        fn load(
            &self,
            model: &Path,
            options: &LoadOptions,
        ) -> Result<Box<dyn Session>, BackendError> {
            let (dev, _) = device().as_ref().map_err(BackendError::new)?;
            load_on(dev, "candle-cuda", model, options)
        }
    }
}

/// A model loaded into the interpreter.
struct CandleSession {
    plan: plan::Plan,
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
