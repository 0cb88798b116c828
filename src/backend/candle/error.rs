//! The error type of the interpreter's ops, kept apart from [`BackendError`] so that an op
//! can say *refused* (a semantic it does not honour: reported as an unsupported op) or
//! *failed* (a valid refusal-free node that could not run on these inputs: bad shapes,
//! out-of-range indices) without knowing its node's name; the executor adds that.

use crate::backend::BackendError;

/// Why an op could not be built or run.
#[derive(Debug, Clone)]
pub(crate) enum OpError {
    /// The node uses an attribute value, dtype, mode or opset semantics that this backend
    /// does not implement exactly. Becomes [`BackendError::unsupported_op`].
    Unsupported(String),
    /// The node is supported but failed on these inputs (shape mismatch, bad index...).
    Failed(String),
}

/// Result of building or running an op.
pub(crate) type OpResult<T> = Result<T, OpError>;

impl From<candle_core::Error> for OpError {
    fn from(e: candle_core::Error) -> Self {
        // candle embeds a backtrace when RUST_BACKTRACE is set; keep the message only.
        let s = e.to_string();
        let s = s.split("\n   0: ").next().unwrap_or(&s).trim().to_string();
        OpError::Failed(s)
    }
}

impl OpError {
    /// Turns the op's error into the backend's, naming the op type and the node.
    pub(crate) fn into_backend(self, op_type: &str, node_name: &str) -> BackendError {
        let at = if node_name.is_empty() {
            String::new()
        } else {
            format!(" (node `{node_name}`)")
        };
        match self {
            OpError::Unsupported(msg) => {
                BackendError::unsupported_op(op_type, format!("{msg}{at}"))
            }
            OpError::Failed(msg) => BackendError::new(format!("{op_type}{at} failed: {msg}")),
        }
    }
}

/// Builds an [`OpError::Unsupported`] from a format string.
macro_rules! unsupported {
    ($($arg:tt)*) => { $crate::backend::candle::error::OpError::Unsupported(format!($($arg)*)) };
}

/// Builds an [`OpError::Failed`] from a format string.
macro_rules! failed {
    ($($arg:tt)*) => { $crate::backend::candle::error::OpError::Failed(format!($($arg)*)) };
}

pub(crate) use {failed, unsupported};
