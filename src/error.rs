//! One error type for the library. Every variant carries enough context (a file path,
//! a backend name) to be printed as a single line; `main` maps any error to exit code 2.

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
    Backend(#[from] crate::backend::BackendError),
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
