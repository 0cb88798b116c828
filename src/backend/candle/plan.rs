//! A loaded model (or subgraph) ready to run: its value slots, constants, inputs,
//! outputs and steps in order. Built by [`super::graph`], run by [`super::exec`].

use super::ops::Op;
use super::value::Value;
use crate::backend::IoSpec;
use candle_core::Device;

/// One node, ready to run.
pub(crate) struct Step {
    pub op: Box<dyn Op>,
    pub op_type: String,
    /// The node's name, or its first output's when it has none (for error messages).
    pub label: String,
    /// A slot per node input; `None` for an omitted optional input.
    pub inputs: Vec<Option<usize>>,
    /// A slot per node output; `None` for an omitted optional output.
    pub outputs: Vec<Option<usize>>,
    /// Slots whose last reader is this step (freed after it runs).
    pub free_after: Vec<usize>,
}

/// A loaded model.
pub(crate) struct Plan {
    /// Where every value lives: inputs are copied there, outputs copied back from it.
    pub device: Device,
    pub n_slots: usize,
    /// Initializers and constant-node values, set in their slots before every run.
    pub constants: Vec<(usize, Value)>,
    pub inputs: Vec<IoSpec>,
    pub input_slots: Vec<usize>,
    pub outputs: Vec<IoSpec>,
    pub output_slots: Vec<usize>,
    /// Nodes in topological order.
    pub steps: Vec<Step>,
}
