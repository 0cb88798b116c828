//! Checks of the data around a model (`parity data`): input files validated against the
//! model's declared inputs, and drift between a reference and a current data set, on
//! the inputs and, with a model, on its predictions. docs/data.md has the rules.

pub mod drift;
pub mod features;
pub mod openmetrics;
pub mod source;
pub mod stats;
pub mod tabular;
pub mod validate;
