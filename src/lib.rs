//! parity: end-to-end verification of ML inference across runtimes and machines.
//!
//! The library holds everything; `main.rs` only parses arguments and maps errors to
//! exit codes. Layers depend downwards only: `cli` → `suite`/`report` → `backend`/`compare`
//! → `formats` → `tensor`. Backends never appear in `compare` or `report`.

pub mod backend;
pub mod compare;
pub mod error;
pub mod formats;
pub mod tensor;

pub use error::{Error, Result};
