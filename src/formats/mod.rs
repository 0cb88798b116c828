//! Tensor file formats (ONNX `TensorProto` `.pb`, `.npy`, `.npz`, `.safetensors`) and
//! the ONNX model schema. Readers validate strictly and name the file in every error;
//! writers are atomic (temporary file + rename). Every file a user names is opened
//! through [`open`]: regular files only, within the read limit of [`limit`]
//! (docs/limits.md).

pub mod atomic;
pub mod limit;
pub mod npy;
pub mod npz;
pub mod onnx_f64;
pub mod onnx_model;
pub mod onnx_pb;
pub mod open;
pub mod pb;
pub mod safetensors;

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::path::Path;

pub(crate) use open::{load, Contents};
pub use open::{read_file, read_text};

/// How [`read_schema_json`] words its refusals.
pub struct SchemaWords<'a> {
    /// The schema identifier the file must carry (`parity.bench/v1`).
    pub schema: &'a str,
    /// After "schema is `X`, ": what the reader expects instead.
    pub other: &'a str,
    /// The whole message for a file without a `"schema"` field.
    pub missing: &'a str,
    /// Names the thing in "invalid `SCHEMA` THING: ...".
    pub thing: &'a str,
}

/// Reads a JSON document written by parity (a report, a bench baseline) and checks
/// its `"schema"` before deserialising it, so the wrong kind of file gets a one-line
/// error naming what it is rather than a serde message about a missing field.
pub fn read_schema_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    words: &SchemaWords,
) -> Result<T> {
    let text = read_text(path)?;
    parse_schema_json(&text, path, words)
}

/// [`read_schema_json`] on a document already read; `path` names it in errors.
pub fn parse_schema_json<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &Path,
    words: &SchemaWords,
) -> Result<T> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::file(path, format!("not JSON: {e}")))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(s) if s == words.schema => serde_json::from_value(value).map_err(|e| {
            Error::file(
                path,
                format!("invalid `{}` {}: {e}", words.schema, words.thing),
            )
        }),
        Some(other) => Err(Error::file(
            path,
            format!("schema is `{other}`, {}", words.other),
        )),
        None => Err(Error::file(path, words.missing)),
    }
}

/// Reads a single-tensor file (`.pb` or `.npy`), choosing the format by extension.
/// Returns the name stored in the file, when the format stores one (`TensorProto.name`).
pub fn read_tensor(path: &Path) -> Result<(Option<String>, Tensor)> {
    match extension(path).as_deref() {
        Some("pb") => pb::read(path),
        Some("npy") => Ok((None, npy::read(path)?)),
        _ => Err(Error::file(
            path,
            "not a tensor file (expected .pb or .npy)",
        )),
    }
}

/// Reads a file that holds several named tensors (`.npz`, `.safetensors`), in file order.
pub fn read_tensor_map(path: &Path) -> Result<Vec<(String, Tensor)>> {
    match extension(path).as_deref() {
        Some("npz") => npz::read(path),
        Some("safetensors") => safetensors::read(path),
        _ => Err(Error::file(
            path,
            "not a tensor archive (expected .npz or .safetensors)",
        )),
    }
}

/// Writes one tensor as `.pb` (with `name`) or `.npy`, atomically.
pub fn write_tensor(path: &Path, name: &str, tensor: &Tensor) -> Result<()> {
    match extension(path).as_deref() {
        Some("pb") => pb::write(path, name, tensor),
        Some("npy") => npy::write(path, tensor),
        _ => Err(Error::file(
            path,
            "cannot write this format (expected .pb or .npy)",
        )),
    }
}

/// Files at least this large are memory-mapped rather than read, so that comparing a
/// large tensor does not copy it.
pub const MMAP_THRESHOLD: u64 = 16 << 20;

/// Lower-cased file extension.
pub fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
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

#[cfg(test)]
pub(crate) mod test_util {
    use crate::tensor::{checked_nbytes, DType, Tensor};

    /// Deterministic bytes for any dtype and shape (bools kept to 0 and 1).
    pub fn sample(dtype: DType, shape: Vec<usize>) -> Tensor {
        let n = checked_nbytes(dtype, &shape).unwrap();
        let bytes = (0..n)
            .map(|i| match dtype {
                DType::Bool => (i % 3 == 0) as u8,
                _ => (i * 37 + 11) as u8,
            })
            .collect();
        Tensor::from_bytes(dtype, shape, bytes).unwrap()
    }

    /// Every input of the committed fuzz corpus of `target` (`fuzz/corpus/TARGET`), so
    /// that `cargo test` replays on stable what the fuzzer kept (docs/reliability.md).
    /// Panics when the directory is missing or empty, so a renamed target is noticed.
    pub fn fuzz_corpus(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        files.sort();
        files
    }

    /// Runs `f` on another thread and fails the test when it takes longer than `secs`:
    /// for regression tests of work that was quadratic in its input.
    pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(f()));
        rx.recv_timeout(std::time::Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("not done within {secs} s: quadratic again?"))
    }

    /// Reproducible pseudo-random byte strings: random ones, and `good` with one byte
    /// changed, for feeding parsers that must fail cleanly.
    pub fn noise(good: &[u8], count: usize) -> Vec<Vec<u8>> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = Vec::with_capacity(2 * count);
        for _ in 0..count {
            let len = (next() % 96) as usize;
            out.push((0..len).map(|_| next() as u8).collect());
            let mut mutated = good.to_vec();
            if !mutated.is_empty() {
                let at = (next() as usize) % mutated.len();
                mutated[at] = next() as u8;
            }
            out.push(mutated);
        }
        out
    }
}
