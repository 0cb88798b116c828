//! parity: end-to-end verification of ML inference across runtimes and machines.
//!
//! The library holds everything; `main.rs` only parses arguments and maps errors to
//! exit codes. Backends never appear in `compare` or `report`, and no layer reaches up.
//!
//! Layers, top to bottom (a module uses only modules on lower lines; modules on one
//! line do not use each other; `tests/it/layers.rs` enforces this list):
//! - `cli`
//! - `bisect` `data` `fuzz` `invariance`
//! - `bench`
//! - `isolate`
//! - `suite`
//! - `generate`
//! - `interrupt`
//! - `report` `backend`
//! - `compare` `formats`
//! - `schema`
//! - `tensor` `jobs`
//! - `error` `panic_guard` `quantile` `time`

pub mod backend;
pub mod bench;
pub mod bisect;
pub mod cli;
pub mod compare;
pub mod data;
pub mod error;
pub mod formats;
pub mod fuzz;
pub mod generate;
pub mod interrupt;
pub mod invariance;
pub mod isolate;
pub mod jobs;
pub mod panic_guard;
pub mod quantile;
pub mod report;
pub mod schema;
pub mod suite;
pub mod tensor;
pub mod time;

pub use error::{Error, Result};
