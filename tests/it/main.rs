//! The integration tests, in one test binary (as ripgrep's `tests/tests.rs`): each module
//! runs the `parity` binary on real files for one area. One binary links the crate once,
//! where a file per area linked it once per file. `tests/peak_memory.rs` stays apart: it
//! reads the process's own peak memory, which tests running beside it would move.

mod common;

mod bench;
mod bisect;
mod calibrate;
mod candidate;
mod cli;
mod crash_safety;
mod data;
mod exec;
mod fuzz;
mod gates;
mod generate;
mod hostile_reads;
mod html;
mod invariance;
mod kernels;
mod kserve;
mod layers;
mod matrix;
mod modes;
mod openmetrics;
mod record;
mod reports;
mod sequence;
mod shard;
mod verdict;
