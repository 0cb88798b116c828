//! One error type for the library. Every variant carries enough context (a file path,
//! a backend name) to be printed as a single line; `main` maps any error to exit code 2.
//! Depends on nothing else in the crate: every layer may use it.

use std::path::{Path, PathBuf};

/// Errors that stop an evaluation: bad input files, bad flags, unavailable backends.
/// Per-case backend failures are not errors of the run: they become `error` verdicts.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-supplied file is missing, unreadable or invalid.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// Flags or arguments that cannot be honoured.
    #[error("{0}")]
    Usage(String),
    /// A backend the user asked for cannot run on this machine.
    #[error("backend {name} is unavailable: {reason}")]
    BackendUnavailable { name: String, reason: String },
    /// A backend failed to load a model or run a case.
    #[error("{0}")]
    Backend(#[from] BackendError),
    /// Writing an output (report, tensor) failed.
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for the most common error: "this file has this problem".
    pub fn file(path: impl AsRef<Path>, msg: impl Into<String>) -> Self {
        Error::File {
            path: path.as_ref().to_path_buf(),
            msg: msg.into(),
        }
    }
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a backend could not load a model or run a case. Becomes a case's `error` verdict,
/// never a crash of parity. `op` names the unsupported operator when that is the cause,
/// so conformance reports can rank missing ops.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    /// One-line description, including the op and attribute when known.
    pub message: String,
    /// The ONNX op type that could not be executed, when that is the reason.
    pub op: Option<String>,
}

impl BackendError {
    /// A failure not tied to one operator.
    pub fn new(message: impl Into<String>) -> Self {
        BackendError {
            message: first_line(&message.into()),
            op: None,
        }
    }

    /// A node the backend refuses or cannot execute; the message should name the
    /// attribute or dtype at fault.
    pub fn unsupported_op(op: impl Into<String>, message: impl Into<String>) -> Self {
        let op = op.into();
        BackendError {
            message: format!("unsupported op {op}: {}", first_line(&message.into())),
            op: Some(op),
        }
    }
}

/// Engines embed backtraces and multi-line context in their messages; reports keep one line.
fn first_line(s: &str) -> String {
    let s = s.split("\n   0: ").next().unwrap_or(s);
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
