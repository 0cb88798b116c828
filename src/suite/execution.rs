//! What every way of running a suite shares: what outputs are compared against
//! ([`Reference`]), the run's options, the tolerance each output gets, and the two rules
//! of every engine call (a panic inside an engine is an error of that case, never of the
//! run; timed calls take the process-wide inference turn). Used by the case runner
//! (`super::runner`) and the generation runner (`super::generation`).

use super::manifest::ToleranceOverride;
use super::{NamedTensors, Suite};
use crate::backend::{BackendError, LoadOptions, Session};
use crate::compare::Tolerance;
use crate::panic_guard::lock;
use crate::tensor::{DType, Tensor};

/// One backend's actual outputs on one case, handed to the observer of
/// [`super::runner::run_observed`]: the suite, the case's index in `suite.cases`, the
/// backend's name and its outputs.
pub type OutputsObserver<'a> = &'a mut dyn FnMut(&Suite, usize, &str, NamedTensors);

/// What outputs are compared against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// The expected outputs stored in the suite.
    Golden,
    /// The outputs of another backend, run on the same inputs.
    Backend(String),
}

impl Reference {
    /// Name as written in reports (`golden` or the backend name).
    pub fn name(&self) -> &str {
        match self {
            Reference::Golden => "golden",
            Reference::Backend(b) => b,
        }
    }
}

/// How a run compares: command-line tolerance overrides and load options.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--atol`, replacing every other source of atol.
    pub atol: Option<f64>,
    /// `--rtol`, replacing every other source of rtol.
    pub rtol: Option<f64>,
    /// Passed to every backend.
    pub load: LoadOptions,
    /// Compute each float output's error histogram (a second pass over the data, for
    /// the reports that carry it: JSON and HTML).
    pub histograms: bool,
    /// `check --overlap-inference`: inference calls of different jobs may run at the
    /// same time (no inference turn), and no latency is reported, since it would
    /// include the other jobs' load.
    pub overlap_inference: bool,
}

/// Only one timed inference at a time in this process (see `runner::run_jobs`).
static INFERENCE_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes the process-wide inference turn for a timed engine call (none with `overlap`).
pub(super) fn inference_turn(overlap: bool) -> Option<std::sync::MutexGuard<'static, ()>> {
    (!overlap).then(|| lock(&INFERENCE_TURN))
}

/// Runs a session, turning a panic inside the engine into an error for this case.
pub fn run_guarded(
    session: &mut dyn Session,
    inputs: &[Tensor],
) -> Result<Vec<(String, Tensor)>, BackendError> {
    guarded(|| session.run(inputs))
}

/// Runs one call into an engine, turning a panic into a [`BackendError`].
pub fn guarded<R>(call: impl FnOnce() -> Result<R, BackendError>) -> Result<R, BackendError> {
    crate::panic_guard::catch(call)
        .unwrap_or_else(|msg| Err(BackendError::new(format!("backend panicked: {msg}"))))
}

/// Tolerance precedence: command line, then the backend's entry for the output (when
/// compared with the goldens), then the output's manifest entry, then the suite-wide
/// manifest entry, then the per-dtype default. The output's comparison mode
/// (`parity.toml`) decides whether atol/rtol decide its verdict; the command line
/// never changes the mode.
pub fn tolerance(
    suite: &Suite,
    output: &str,
    backend: Option<&str>,
    dtype: DType,
    options: &RunOptions,
) -> Tolerance {
    tolerance_set(suite, output, backend, options).resolve(dtype)
}

/// The atol/rtol the run sets for `output` (on `backend` against the goldens, when
/// given) before any dtype default: the flags, then `parity.toml`. The cross-backend
/// matrix resolves it per tensor as [`tolerance`] does.
pub(super) fn tolerance_set(
    suite: &Suite,
    output: &str,
    backend: Option<&str>,
    options: &RunOptions,
) -> ToleranceOverride {
    let manifest = suite.manifest.tolerance_for(output, backend);
    ToleranceOverride {
        atol: options.atol.or(manifest.atol),
        rtol: options.rtol.or(manifest.rtol),
    }
}
