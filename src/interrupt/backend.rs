//! Backends that take no new work after a stop signal: loading a model or running a
//! case then fails at once with `not run: interrupted by SIGINT`, so a run loop (the
//! suite runner, bench's workers, record's data sets) finishes its remaining cases in
//! no time as errors instead of computing them, with no change to the loop itself.
//! The case in flight when the signal arrives completes normally.

use super::{Flag, PENDING};
use crate::backend::{Availability, Backend, BackendError, IoSpec, LoadOptions, Selected, Session};
use crate::tensor::Tensor;
use std::path::Path;

/// Wraps every selected backend so that it refuses work once this process received a
/// stop signal (see [`super::install`]).
pub fn observe(selected: Vec<Selected>) -> Vec<Selected> {
    observe_flag(selected, &PENDING)
}

/// [`observe`] against any flag (tests use their own).
fn observe_flag(selected: Vec<Selected>, flag: &'static Flag) -> Vec<Selected> {
    selected
        .into_iter()
        .map(|s| Selected {
            backend: Box::new(Observed {
                inner: s.backend,
                flag,
            }),
            version: s.version,
            device: s.device,
        })
        .collect()
}

/// The error of work refused after `flag` was raised, if it was.
fn refused(flag: &Flag) -> Result<(), BackendError> {
    match flag.get() {
        Some(signal) => Err(BackendError::new(format!(
            "not run: interrupted by {signal}"
        ))),
        None => Ok(()),
    }
}

/// A backend that asks the flag before loading.
struct Observed {
    inner: Box<dyn Backend>,
    flag: &'static Flag,
}

impl Backend for Observed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn probe(&self) -> Availability {
        self.inner.probe()
    }

    fn load(&self, model: &Path, options: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        refused(self.flag)?;
        let inner = self.inner.load(model, options)?;
        Ok(Box::new(ObservedSession {
            inner,
            flag: self.flag,
        }))
    }
}

/// A session that asks the flag before every run; everything else is the inner one's.
struct ObservedSession {
    inner: Box<dyn Session>,
    flag: &'static Flag,
}

impl Session for ObservedSession {
    fn inputs(&self) -> &[IoSpec] {
        self.inner.inputs()
    }

    fn outputs(&self) -> &[IoSpec] {
        self.inner.outputs()
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
        refused(self.flag)?;
        self.inner.run(inputs)
    }

    fn bind(&mut self, inputs: &[Tensor]) -> Result<bool, BackendError> {
        self.inner.bind(inputs)
    }

    fn run_bound(&mut self) -> Result<(), BackendError> {
        refused(self.flag)?;
        self.inner.run_bound()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend whose sessions return one fixed output.
    struct Fixed;

    struct FixedSession;

    impl Backend for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn probe(&self) -> Availability {
            Availability::Available {
                version: "1".to_string(),
                device: "cpu".to_string(),
            }
        }
        fn load(&self, _: &Path, _: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
            Ok(Box::new(FixedSession))
        }
    }

    impl Session for FixedSession {
        fn inputs(&self) -> &[IoSpec] {
            &[]
        }
        fn outputs(&self) -> &[IoSpec] {
            &[]
        }
        fn run(&mut self, _: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
            Ok(vec![(
                "y".to_string(),
                Tensor::from_vec(vec![1], vec![1.0f32]).unwrap(),
            )])
        }
    }

    #[test]
    fn work_is_refused_once_the_flag_is_raised() {
        let flag: &'static Flag = Box::leak(Box::new(Flag::new()));
        let selected = vec![Selected {
            backend: Box::new(Fixed),
            version: "1".to_string(),
            device: "cpu".to_string(),
        }];
        let observed = observe_flag(selected, flag);
        let backend = &observed[0].backend;
        assert_eq!(backend.name(), "fixed");
        let mut session = backend
            .load(Path::new("m.onnx"), &LoadOptions::default())
            .unwrap();
        assert_eq!(session.run(&[]).unwrap()[0].0, "y");
        flag.raise(libc::SIGINT);
        let err = session.run(&[]).unwrap_err();
        assert_eq!(err.message, "not run: interrupted by SIGINT");
        assert_eq!(session.run_bound().unwrap_err().message, err.message);
        let err = backend
            .load(Path::new("m.onnx"), &LoadOptions::default())
            .err()
            .unwrap();
        assert_eq!(err.message, "not run: interrupted by SIGINT");
    }
}
