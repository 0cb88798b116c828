//! The backend trait and the registry of every backend parity knows.
//!
//! A backend is small: it has a name, probes whether it can run here (and says why not),
//! and loads a model into a [`Session`] that describes its inputs/outputs and runs them.
//! Backends not compiled in still appear in the registry and say which cargo feature
//! would bring them, so `parity backends` always lists the full set.

use crate::tensor::Tensor;
use std::path::Path;

// Defined below the layers that use them without a backend (formats reads a model's
// schema, error wraps a backend failure); re-exported here where backends use them.
pub use crate::error::BackendError;
pub use crate::schema::{Dim, IoSpec};

#[cfg(feature = "candle-backend")]
pub mod candle;
pub mod exec;
pub mod kserve;
#[cfg(feature = "ort-backend")]
pub mod ort;
#[cfg(feature = "tract-backend")]
pub mod tract;

#[cfg(test)]
pub(crate) mod testdata;

/// What a backend reports about itself on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Ready to run: engine version and the device that will execute.
    Available { version: String, device: String },
    /// Cannot run here, with the reason and what to install or set.
    Unavailable { reason: String },
}

/// Checks a case's inputs against a model's declared inputs before any engine sees them:
/// count, dtype, rank and fixed dims. Every backend refuses the same inputs with the
/// same words, instead of each engine failing (or not) in its own way.
pub fn check_inputs(specs: &[IoSpec], inputs: &[Tensor]) -> Result<(), BackendError> {
    if inputs.len() != specs.len() {
        return Err(BackendError::new(format!(
            "the model has {} inputs, {} were given",
            specs.len(),
            inputs.len()
        )));
    }
    for (spec, t) in specs.iter().zip(inputs) {
        if spec.dtype.is_none() {
            return Err(BackendError::new(format!(
                "input `{}` is not a numeric or bool tensor; parity cannot feed it",
                spec.name
            )));
        }
        check_tensor("input", spec, t)?;
    }
    Ok(())
}

/// Checks one tensor against its declared dtype (when known), rank and fixed dims;
/// `what` (`input`, `output`) names it in the message. `record` checks what a backend
/// produced this way, so a golden never holds a shape the model cannot give.
pub fn check_tensor(what: &str, spec: &IoSpec, t: &Tensor) -> Result<(), BackendError> {
    if let Some(d) = spec.dtype.filter(|&d| d != t.dtype()) {
        return Err(BackendError::new(format!(
            "{what} `{}` has dtype {}, the model declares {d}",
            spec.name,
            t.dtype()
        )));
    }
    if let Some(dims) = &spec.dims {
        let fits = dims.len() == t.shape().len()
            && dims
                .iter()
                .zip(t.shape())
                .all(|(d, &n)| !matches!(d, Dim::Fixed(f) if *f != n));
        if !fits {
            return Err(BackendError::new(format!(
                "{what} `{}` has shape {:?}, the model declares {}",
                spec.name,
                t.shape(),
                crate::schema::dims_text(dims)
            )));
        }
    }
    Ok(())
}

/// The intra-op thread count this process was started for (`--threads`), fixed once by
/// [`pin_process_threads`] before any thread exists.
static PROCESS_THREADS: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();

/// Fixes the process-wide thread settings of the rayon-based engines (candle's kernels,
/// parity's chunked comparisons) before any thread is started: `RAYON_NUM_THREADS` and
/// `CANDLE_NUM_THREADS` become `threads` (the verb's `--threads`), or the machine's
/// available parallelism, unless the user set them. Without it candle asks the system
/// for the physical core count, reading /proc/cpuinfo, on every matrix product (most of
/// a small model's run time), and gemm splits single-threaded sessions' work into
/// chunks for threads they do not have. Call it first thing in `main`.
pub fn pin_process_threads(threads: Option<usize>) {
    let n = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    for var in ["RAYON_NUM_THREADS", "CANDLE_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, n.to_string());
        }
    }
    let _ = PROCESS_THREADS.set(threads);
}

/// Whether `threads` is what [`pin_process_threads`] fixed the process for (so a
/// one-thread session can run its kernels on the caller's thread instead of in a pool of
/// its own).
pub fn is_process_threads(threads: Option<usize>) -> bool {
    threads.is_some() && PROCESS_THREADS.get() == Some(&threads)
}

/// Options shared by every backend when loading a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Intra-op threads; `None` lets the engine choose.
    pub threads: Option<usize>,
    /// One of the backend's [`Knobs::optimization_levels`]; `None` is its default (the
    /// last, what deployments run). `parity invariance` compares them.
    pub optimization: Option<String>,
}

/// What a backend lets a session vary: `parity invariance` checks only what applies and
/// reports the rest as not applicable, with the reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct Knobs {
    /// Whether [`LoadOptions::threads`] changes how the engine runs.
    pub threads: bool,
    /// The engine's graph-optimisation levels, weakest first; the last is the default.
    pub optimization_levels: &'static [&'static str],
    /// Whether a second [`Backend::load`] makes a new engine session (false for a
    /// deployed endpoint, where loading only connects).
    pub fresh_session: bool,
}

/// A loaded model, ready to run cases. Sessions are used from one thread at a time.
pub trait Session: Send {
    /// Graph inputs (initializers excluded), in graph order.
    fn inputs(&self) -> &[IoSpec];
    /// Graph outputs, in graph order.
    fn outputs(&self) -> &[IoSpec];
    /// Runs one case. `inputs` are in [`Session::inputs`] order; outputs come back in
    /// [`Session::outputs`] order, named.
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError>;

    /// Keeps `inputs` in the engine for repeated [`Session::run_bound`] calls: `bench`
    /// times one query thousands of times, and an engine that can hold its input values
    /// and write into preallocated outputs then measures inference rather than parity's
    /// conversions around it. Returns false when the backend has no such path (bench
    /// then calls [`Session::run`] every time).
    fn bind(&mut self, _inputs: &[Tensor]) -> Result<bool, BackendError> {
        Ok(false)
    }

    /// Runs the inputs last given to a [`Session::bind`] that returned true, leaving the
    /// outputs in the engine's preallocated buffers.
    fn run_bound(&mut self) -> Result<(), BackendError> {
        Err(BackendError::new("no inputs are bound to this session"))
    }
}

/// An inference engine on a device, e.g. `ort-cpu`.
pub trait Backend: Send + Sync {
    /// Stable name used on the command line, in JSON, JUnit and bench IDs.
    fn name(&self) -> &str;
    /// Whether this backend can run here; cheap enough to call for `parity backends`.
    fn probe(&self) -> Availability;
    /// Loads a model. Models the backend cannot run (unsupported op, dtype) fail here
    /// when the engine can tell at load time.
    fn load(&self, model: &Path, options: &LoadOptions) -> Result<Box<dyn Session>, BackendError>;
    /// What a session of this backend can vary; by default nothing but a fresh session.
    fn knobs(&self) -> Knobs {
        Knobs {
            fresh_session: true,
            ..Knobs::default()
        }
    }
}

/// A backend compiled out of this build: always listed, never available.
#[cfg_attr(
    all(
        feature = "ort-backend",
        feature = "candle-backend",
        feature = "candle-cuda",
        feature = "tract-backend"
    ),
    allow(dead_code)
)]
struct NotCompiled {
    name: &'static str,
    feature: &'static str,
    /// How to get a build that has it, when a plain `--features` is not enough.
    how: Option<&'static str>,
}

impl Backend for NotCompiled {
    fn name(&self) -> &str {
        self.name
    }
    fn probe(&self) -> Availability {
        Availability::Unavailable {
            reason: format!(
                "not compiled into this build (cargo feature `{}`{})",
                self.feature,
                self.how.map(|h| format!("; {h}")).unwrap_or_default()
            ),
        }
    }
    fn load(&self, _: &Path, _: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        Err(BackendError::new(match self.probe() {
            Availability::Unavailable { reason } => reason,
            Availability::Available { .. } => unreachable!("NotCompiled is never available"),
        }))
    }
}

/// Every backend parity knows, in the order reports list them.
pub fn registry() -> Vec<Box<dyn Backend>> {
    vec![
        ort_cpu(),
        ort_cuda(),
        candle_cpu(),
        candle_cuda(),
        tract_cpu(),
    ]
}

#[cfg(feature = "ort-backend")]
fn ort_cpu() -> Box<dyn Backend> {
    Box::new(ort::OrtCpu)
}

#[cfg(not(feature = "ort-backend"))]
fn ort_cpu() -> Box<dyn Backend> {
    Box::new(NotCompiled {
        name: "ort-cpu",
        feature: "ort-backend",
        how: None,
    })
}

#[cfg(feature = "ort-backend")]
fn ort_cuda() -> Box<dyn Backend> {
    Box::new(ort::cuda::OrtCuda)
}

#[cfg(not(feature = "ort-backend"))]
fn ort_cuda() -> Box<dyn Backend> {
    Box::new(NotCompiled {
        name: "ort-cuda",
        feature: "ort-backend",
        how: None,
    })
}

#[cfg(feature = "candle-cuda")]
fn candle_cuda() -> Box<dyn Backend> {
    Box::new(candle::CandleCuda)
}

/// candle on CUDA links the CUDA libraries at build time, so it is never in the default
/// build: a separate binary built by `ci/build-cuda.sh` has it.
#[cfg(not(feature = "candle-cuda"))]
fn candle_cuda() -> Box<dyn Backend> {
    Box::new(NotCompiled {
        name: "candle-cuda",
        feature: "candle-cuda",
        how: Some("build the separate binary with ci/build-cuda.sh"),
    })
}

#[cfg(feature = "candle-backend")]
fn candle_cpu() -> Box<dyn Backend> {
    Box::new(candle::CandleCpu)
}

#[cfg(not(feature = "candle-backend"))]
fn candle_cpu() -> Box<dyn Backend> {
    Box::new(NotCompiled {
        name: "candle-cpu",
        feature: "candle-backend",
        how: None,
    })
}

#[cfg(feature = "tract-backend")]
fn tract_cpu() -> Box<dyn Backend> {
    Box::new(tract::TractCpu)
}

#[cfg(not(feature = "tract-backend"))]
fn tract_cpu() -> Box<dyn Backend> {
    Box::new(NotCompiled {
        name: "tract-cpu",
        feature: "tract-backend",
        how: None,
    })
}

/// A backend chosen for a run, with what its probe reported.
pub struct Selected {
    pub backend: Box<dyn Backend>,
    pub version: String,
    pub device: String,
}

/// Chooses the backends of a run: each named one (which must be known and available,
/// else an error saying why), or, with no names, every available backend.
pub fn select(names: &[String]) -> Result<Vec<Selected>, crate::Error> {
    let mut chosen = Vec::new();
    if names.is_empty() {
        for backend in registry() {
            if let Availability::Available { version, device } = backend.probe() {
                chosen.push(Selected {
                    backend,
                    version,
                    device,
                });
            }
        }
        if chosen.is_empty() {
            return Err(crate::Error::Usage(
                "no backend is available on this machine (see `parity backends`)".to_string(),
            ));
        }
        return Ok(chosen);
    }
    for name in names {
        if chosen.iter().any(|s: &Selected| s.backend.name() == name) {
            continue;
        }
        check_name(name)?;
        let backend = find(name).ok_or_else(|| {
            let known: Vec<_> = registry().iter().map(|b| b.name().to_string()).collect();
            crate::Error::Usage(format!(
                "unknown backend `{name}` (known: {}; or kserve+http://HOST:PORT/v2/models/NAME, exec:COMMAND)",
                known.join(", ")
            ))
        })?;
        match backend.probe() {
            Availability::Available { version, device } => chosen.push(Selected {
                backend,
                version,
                device,
            }),
            Availability::Unavailable { reason } => {
                return Err(crate::Error::BackendUnavailable {
                    name: name.clone(),
                    reason,
                })
            }
        }
    }
    Ok(chosen)
}

/// The built-in backends a run leaves out, each with why: `unavailable: REASON` (not on
/// this machine, not compiled in) or `not requested` (the user chose others). Reports
/// name them so that a backend that silently stopped running is seen.
pub fn skipped(chosen: &[Selected]) -> Vec<(String, String)> {
    registry()
        .into_iter()
        .filter(|b| !chosen.iter().any(|s| s.backend.name() == b.name()))
        .map(|b| {
            let reason = match b.probe() {
                Availability::Available { .. } => "not requested (--backend)".to_string(),
                Availability::Unavailable { reason } => format!("unavailable: {reason}"),
            };
            (b.name().to_string(), reason)
        })
        .collect()
}

/// Refuses a malformed backend name of the URL or command forms with the reason
/// (`kserve+http://…` without a port, `exec:` with an unclosed quote, a `kserve+` scheme
/// other than http); other names pass, to be looked up by [`find`].
pub fn check_name(name: &str) -> Result<(), crate::Error> {
    if name.starts_with("kserve+") && !name.starts_with(kserve::SCHEME) {
        return Err(crate::Error::Usage(format!(
            "backend `{name}`: only {}HOST:PORT/v2/models/NAME is supported (plain HTTP; no TLS, no gRPC)",
            kserve::SCHEME
        )));
    }
    exec::check_name(name)?;
    kserve::check_name(name)
}

/// Looks a backend up by name.
pub fn find(name: &str) -> Option<Box<dyn Backend>> {
    if let Some(runner) = exec::backend(name) {
        return Some(runner);
    }
    if let Some(endpoint) = kserve::backend(name) {
        return Some(endpoint);
    }
    registry().into_iter().find(|b| b.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_strips_backtraces() {
        let e = BackendError::new("bad shape\n   0: candle::foo\n   1: bar");
        assert_eq!(e.message, "bad shape");
        let e = BackendError::unsupported_op("Clip", "opset 6 attribute `min` is not honoured");
        assert_eq!(e.op.as_deref(), Some("Clip"));
        assert_eq!(
            e.message,
            "unsupported op Clip: opset 6 attribute `min` is not honoured"
        );
    }

    #[test]
    fn registry_lists_every_backend_in_report_order() {
        let backends = registry();
        let names: Vec<_> = backends.iter().map(|b| b.name()).collect();
        assert_eq!(
            names,
            [
                "ort-cpu",
                "ort-cuda",
                "candle-cpu",
                "candle-cuda",
                "tract-cpu"
            ]
        );
    }

    #[cfg(not(feature = "candle-cuda"))]
    #[test]
    fn candle_cuda_says_how_to_get_it() {
        let Some(Availability::Unavailable { reason }) = find("candle-cuda").map(|b| b.probe())
        else {
            panic!("candle-cuda is listed and unavailable without its feature");
        };
        assert_eq!(
            reason,
            "not compiled into this build (cargo feature `candle-cuda`; build the separate binary with ci/build-cuda.sh)"
        );
    }
}
