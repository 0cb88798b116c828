//! A model's declared inputs and outputs (names, element types, dims), as the ONNX file
//! states them. Below `formats` (which reads them from a model without any backend) and
//! `backend` (which checks tensors against them), so neither depends on the other for it.

use crate::tensor::DType;

/// One dimension of a model input or output as the model declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A named symbolic dimension (e.g. `batch`).
    Symbolic(String),
    /// Dynamic without a name.
    Unknown,
}

impl std::fmt::Display for Dim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dim::Fixed(n) => write!(f, "{n}"),
            Dim::Symbolic(s) => f.write_str(s),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A model input or output: name, element type (None for non-tensor types), dims
/// (None when the rank is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoSpec {
    pub name: String,
    pub dtype: Option<DType>,
    pub dims: Option<Vec<Dim>>,
}

/// Dims as messages show them: `[batch, 64]`.
pub fn dims_text(dims: &[Dim]) -> String {
    let dims: Vec<String> = dims.iter().map(ToString::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// The names of inputs or outputs as messages list them: `x, mask`.
pub fn names_text(specs: &[IoSpec]) -> String {
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    names.join(", ")
}
