//! `parity fuzz`: edge-case inputs generated from a model's input schema, run on every
//! backend (each in its own worker process by default), with crashes, timeouts, NaN/Inf
//! and cross-backend disagreement reported as findings. See docs/fuzz.md.

pub mod generators;
pub mod plan;
pub mod report;
pub mod run;
pub mod save;
