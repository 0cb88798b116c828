//! Tensor file formats (ONNX `TensorProto` `.pb`, `.npy`, `.npz`, `.safetensors`) and
//! the ONNX model schema. Readers validate strictly and name the file in every error;
//! writers are atomic (temporary file + rename).

pub mod atomic;
pub mod onnx_model;
pub mod onnx_pb;

use crate::error::{Error, Result};
use std::path::Path;

/// Lower-cased file extension.
pub fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::file(path, io_problem(&e)))
}

/// A short, lower-case description of an I/O error ("no such file", "permission denied").
pub fn io_problem(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => {
            let s = e.to_string();
            // "Is a directory (os error 21)" -> "is a directory"
            let s = s.split(" (os error").next().unwrap_or(&s);
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s.to_string(),
            }
        }
    }
}
