//! parity: end-to-end verification of ML inference across runtimes and machines.
//!
//! The library holds everything; `main.rs` only parses arguments and maps errors to
//! exit codes. Layers depend downwards only: `cli` → `suite`/`report`/`bench` →
//! `backend`/`compare` → `formats` → `tensor`. Backends never appear in `compare` or `report`.

pub mod backend;
pub mod bench;
pub mod bisect;
pub mod cli;
pub mod compare;
pub mod data;
pub mod error;
pub mod formats;
pub mod fuzz;
pub mod interrupt;
pub mod isolate;
pub mod panic_guard;
pub mod report;
pub mod suite;
pub mod tensor;

pub use error::{Error, Result};
