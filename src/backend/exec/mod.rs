//! The `exec:COMMAND` backend: any runtime a team uses joins the comparison through a
//! runner process that speaks the `parity-exec/1` protocol (docs/exec-backend.md).
//! parity starts COMMAND (split like a shell would, no shell involved) once per loaded
//! model, sends `load` and then one `run` per case, exchanging tensors as `.npz` files
//! in a private temporary directory. A runner that fails one case but keeps the
//! protocol stays in use; one that exits, hangs or breaks the protocol is stopped, that
//! case is an error, and the next case starts a fresh runner.

mod child;
mod exchange;
pub mod protocol;

use super::{
    check_inputs, Availability, Backend, BackendError, IoSpec, Knobs, LoadOptions, Session,
};
use crate::formats::{npz, onnx_model};
use crate::tensor::Tensor;
use child::{Child, Failure};
use exchange::Exchange;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a backend name starts with to name an external runner.
pub const PREFIX: &str = "exec:";

/// The environment variable that sets how long parity waits for each runner answer.
const TIMEOUT_VAR: &str = "PARITY_EXEC_TIMEOUT";

/// Seconds parity waits for the handshake and for each reply unless `PARITY_EXEC_TIMEOUT`
/// says otherwise: long enough for a runtime that compiles the model at `load`.
const DEFAULT_TIMEOUT_S: f64 = 60.0;

/// Refuses an `exec:` name whose command cannot be split into words (empty, or an
/// unclosed quote) before any runner starts; other names pass.
pub fn check_name(name: &str) -> Result<(), crate::Error> {
    match name.strip_prefix(PREFIX) {
        Some(command) => split(command)
            .map(drop)
            .map_err(|e| crate::Error::Usage(format!("backend `{name}`: {e}"))),
        None => Ok(()),
    }
}

/// The backend for an `exec:COMMAND` name; `None` for any other name (or a command
/// [`check_name`] refuses).
pub fn backend(name: &str) -> Option<Box<dyn Backend>> {
    let argv = split(name.strip_prefix(PREFIX)?).ok()?;
    Some(Box::new(ExecBackend {
        name: name.to_string(),
        argv,
    }))
}

/// Splits a command line into words as a POSIX shell would (quotes and backslashes), without
/// expanding anything.
fn split(command: &str) -> Result<Vec<String>, String> {
    match shlex::split(command) {
        Some(words) if !words.is_empty() => Ok(words),
        Some(_) => Err("the command after `exec:` is empty".to_string()),
        None => Err(format!(
            "cannot split the command `{command}` into words (unclosed quote or trailing backslash)"
        )),
    }
}

/// How long to wait for a runner's answers: `PARITY_EXEC_TIMEOUT` seconds, or the default.
fn timeout() -> Result<Duration, String> {
    match std::env::var(TIMEOUT_VAR) {
        Err(_) => Ok(Duration::from_secs_f64(DEFAULT_TIMEOUT_S)),
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
            _ => Err(format!(
                "{TIMEOUT_VAR}=`{v}` is not a number of seconds greater than 0"
            )),
        },
    }
}

/// An external runner named by its command line. Its name in reports is the whole
/// `exec:COMMAND` string as given, so `--reference` and the matrix can name it exactly.
struct ExecBackend {
    name: String,
    argv: Vec<String>,
}

impl Backend for ExecBackend {
    fn name(&self) -> &str {
        &self.name
    }

    /// Starts the runner and reads its handshake (which says the runtime's name, version
    /// and device), then lets it exit: a command that cannot start or does not speak the
    /// protocol is unavailable, with the reason.
    fn probe(&self) -> Availability {
        match timeout().and_then(|t| Child::start(&self.argv, t)) {
            Ok((_child, hello)) => Availability::Available {
                version: format!("{} {}", hello.name, hello.version),
                device: hello.device,
            },
            Err(reason) => Availability::Unavailable { reason },
        }
    }

    fn knobs(&self) -> Knobs {
        // The thread count reaches the runner (`load` in parity-exec/1); optimisation
        // levels are the runtime's own business.
        Knobs {
            threads: true,
            optimization_levels: &[],
            fresh_session: true,
        }
    }

    fn load(&self, model: &Path, options: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        let info = onnx_model::inspect(model).map_err(|e| BackendError::new(e.to_string()))?;
        let exchange = Exchange::create().map_err(BackendError::new)?;
        let mut session = ExecSession {
            argv: self.argv.clone(),
            model: std::path::absolute(model).unwrap_or_else(|_| model.to_path_buf()),
            threads: options.threads,
            timeout: timeout().map_err(BackendError::new)?,
            inputs: info.inputs,
            outputs: info.outputs,
            child: None,
            exchange,
        };
        session.child = Some(session.start().map_err(BackendError::new)?);
        Ok(Box::new(session))
    }
}

/// A model loaded in a runner. The inputs and outputs are the ONNX model's: the suite's
/// tensors are named and ordered by them whatever the runner executes.
struct ExecSession {
    argv: Vec<String>,
    model: PathBuf,
    threads: Option<usize>,
    timeout: Duration,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    /// The runner; `None` after it broke, until the next case starts a fresh one.
    /// Declared before `exchange`, so the runner stops before its files are removed.
    child: Option<Child>,
    /// Holds the exchange files; removed with the session.
    exchange: Exchange,
}

impl ExecSession {
    /// Starts a runner and has it load the model.
    fn start(&self) -> Result<Child, String> {
        let (mut child, _hello) = Child::start(&self.argv, self.timeout)?;
        let request = protocol::load_request(&self.model, self.threads);
        child.request(&request, "load").map_err(Failure::message)?;
        Ok(child)
    }

    /// Reads the runner's outputs file strictly: every tensor must be a declared output
    /// (an unknown name is an error); declared outputs it lacks are left out, so the
    /// comparison reports each as missing. Outputs come back in the model's order.
    fn read_outputs(&self) -> Result<Vec<(String, Tensor)>, String> {
        let path = self.exchange.check_outputs()?;
        let mut written = npz::read(&path).map_err(|e| format!("the runner's outputs: {e}"))?;
        if let Some((name, _)) = written
            .iter()
            .find(|(n, _)| !self.outputs.iter().any(|o| &o.name == n))
        {
            let declared: Vec<&str> = self.outputs.iter().map(|o| o.name.as_str()).collect();
            return Err(format!(
                "the runner wrote output `{name}`, which the model does not declare (outputs: {})",
                declared.join(", ")
            ));
        }
        let mut ordered = Vec::with_capacity(written.len());
        for spec in &self.outputs {
            if let Some(at) = written.iter().position(|(n, _)| n == &spec.name) {
                ordered.push(written.swap_remove(at));
            }
        }
        Ok(ordered)
    }
}

impl Session for ExecSession {
    fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
        check_inputs(&self.inputs, inputs)?;
        let named: Vec<(String, Tensor)> = self
            .inputs
            .iter()
            .zip(inputs)
            .map(|(spec, t)| (spec.name.clone(), t.clone()))
            .collect();
        let bytes = npz::encode(&named).map_err(BackendError::new)?;
        self.exchange
            .write_inputs(&bytes)
            .map_err(BackendError::new)?;
        self.exchange.clear_outputs().map_err(BackendError::new)?;
        let mut child = match self.child.take() {
            Some(child) => child,
            None => self
                .start()
                .map_err(|e| BackendError::new(format!("cannot restart the runner: {e}")))?,
        };
        let request = protocol::run_request(&self.exchange.inputs(), &self.exchange.outputs());
        match child.request(&request, "run") {
            Ok(()) => {
                self.child = Some(child);
                self.read_outputs().map_err(BackendError::new)
            }
            Err(Failure::Refused(message)) => {
                self.child = Some(child);
                Err(BackendError::new(message))
            }
            // Dropping the child stops it; the next case starts a fresh one.
            Err(Failure::Broken(message)) => Err(BackendError::new(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_split_like_a_shell_without_one() {
        assert_eq!(
            split(r#"python3 'my runner.py' --flag "a b" c\ d $HOME"#).unwrap(),
            ["python3", "my runner.py", "--flag", "a b", "c d", "$HOME"]
        );
        assert_eq!(
            split("  ").unwrap_err(),
            "the command after `exec:` is empty"
        );
        assert!(split("'open").unwrap_err().contains("unclosed quote"));
    }

    #[test]
    fn only_exec_names_are_claimed() {
        assert!(check_name("ort-cpu").is_ok());
        assert!(backend("ort-cpu").is_none());
        assert!(backend("exec:").is_none());
        let err = check_name("exec:").unwrap_err().to_string();
        assert_eq!(err, "backend `exec:`: the command after `exec:` is empty");
        let runner = backend("exec:./run.sh --fast").unwrap();
        assert_eq!(runner.name(), "exec:./run.sh --fast");
    }
}
