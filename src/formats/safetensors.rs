//! `.safetensors` files, parsed and validated by the `safetensors` crate. Tensors come in
//! the order of their data in the file; dtypes parity has no `DType` for (float8, ...)
//! are refused with the tensor's name. Large files are memory-mapped, then each tensor
//! is copied out (a mapped `Tensor` must end where its file ends).

use super::{load, MMAP_THRESHOLD};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};
use safetensors::{Dtype, SafeTensors};
use std::path::Path;

/// Reads every tensor of a `.safetensors` file, in the order of their data.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    parse(&load(path, MMAP_THRESHOLD)?, path)
}

/// Decodes the bytes of a whole `.safetensors` file; `path` names the source in errors.
pub fn parse(contents: &[u8], path: &Path) -> Result<Vec<(String, Tensor)>> {
    let fail = |msg: String| Error::file(path, msg);
    let (header_len, metadata) = SafeTensors::read_metadata(contents)
        .map_err(|e| fail(format!("not a valid .safetensors file: {e}")))?;
    // `read_metadata` checked that the offsets tile the data exactly.
    let data = contents.get(8 + header_len..).unwrap_or_default();
    metadata
        .offset_keys()
        .into_iter()
        .map(|name| {
            let in_tensor = |msg: String| fail(format!("tensor '{}': {msg}", name.escape_debug()));
            let info = metadata
                .info(&name)
                .ok_or_else(|| in_tensor("missing from the header".into()))?;
            let dtype = dtype_of(info.dtype)
                .ok_or_else(|| in_tensor(format!("data type {} is not supported", info.dtype)))?;
            let (start, end) = info.data_offsets;
            let bytes = data
                .get(start..end)
                .ok_or_else(|| in_tensor("data offsets lie outside the file".into()))?;
            let tensor = Tensor::from_bytes(dtype, info.shape.clone(), bytes.to_vec())
                .map_err(|e| in_tensor(e.to_string()))?;
            Ok((name, tensor))
        })
        .collect()
}

fn dtype_of(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I8 => DType::I8,
        Dtype::I16 => DType::I16,
        Dtype::I32 => DType::I32,
        Dtype::I64 => DType::I64,
        Dtype::U8 => DType::U8,
        Dtype::U16 => DType::U16,
        Dtype::U32 => DType::U32,
        Dtype::U64 => DType::U64,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{noise, sample};
    use safetensors::tensor::TensorView;

    fn to_st(d: DType) -> Dtype {
        [
            Dtype::F32,
            Dtype::F64,
            Dtype::F16,
            Dtype::BF16,
            Dtype::I8,
            Dtype::I16,
            Dtype::I32,
            Dtype::I64,
            Dtype::U8,
            Dtype::U16,
            Dtype::U32,
            Dtype::U64,
            Dtype::BOOL,
        ]
        .into_iter()
        .find(|&s| dtype_of(s) == Some(d))
        .unwrap()
    }

    /// A hand-made file: `header` JSON, then `data`.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn read_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.safetensors");
        std::fs::write(&p, bytes).unwrap();
        read(&p)
    }

    fn assert_err(r: Result<Vec<(String, Tensor)>>, problem: &str) {
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("/w.safetensors: "), "{msg}");
        assert!(msg.contains(problem), "{msg:?} lacks {problem:?}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn every_dtype_round_trips_through_the_crate_serializer() {
        let tensors: Vec<(String, Tensor)> = DType::ALL
            .iter()
            .enumerate()
            .map(|(i, &d)| (format!("t{i}"), sample(d, vec![2, i % 3, 3])))
            .chain([("scalar".to_string(), sample(DType::F32, vec![]))])
            .collect();
        let views = tensors.iter().map(|(n, t)| {
            let view = TensorView::new(to_st(t.dtype()), t.shape().to_vec(), t.bytes()).unwrap();
            (n.clone(), view)
        });
        let bytes = safetensors::serialize(views, None).unwrap();
        let mut back = read_bytes(&bytes).unwrap();
        back.sort_by(|a, b| a.0.cmp(&b.0));
        let mut want = tensors.clone();
        want.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(back.len(), want.len());
        for ((n, got), (m, t)) in back.iter().zip(&want) {
            assert_eq!(n, m);
            assert_eq!(
                (got.dtype(), got.shape(), got.bytes()),
                (t.dtype(), t.shape(), t.bytes())
            );
        }
    }

    #[test]
    fn order_is_the_data_order() {
        let h = r#"{"__metadata__":{"k":"v"},"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"b":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}"#;
        let t = read_bytes(&file(h, &[1, 0, 0, 0, 7, 8])).unwrap();
        let names: Vec<&str> = t.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(t[1].1.bytes(), &[7, 8]);
    }

    #[test]
    fn errors_name_the_file_and_tensor() {
        let h = r#"{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}"#;
        assert_err(
            read_bytes(&file(h, &[0, 0])),
            "tensor 'w': data type F8_E4M3 is not supported",
        );
        let h = r#"{"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}"#;
        assert_err(
            read_bytes(&file(h, &[1, 2])),
            "tensor 'm': bool element 1 has byte value 2",
        );
        let h = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        assert_err(
            read_bytes(&file(h, &[0; 7])),
            "not a valid .safetensors file",
        );
        assert_err(
            read_bytes(b"\x93NUMPY"),
            "not a valid .safetensors file: header too small",
        );
    }

    #[test]
    fn sizes_a_header_declares_past_the_file_are_refused_before_allocating() {
        // A header length of 1 TiB, and a 1 TiB tensor, in files of a few bytes.
        let mut huge_header = (1u64 << 40).to_le_bytes().to_vec();
        huge_header.extend(b"{}");
        assert_err(read_bytes(&huge_header), "not a valid .safetensors file");
        let h = r#"{"w":{"dtype":"U8","shape":[1099511627776],"data_offsets":[0,1099511627776]}}"#;
        assert_err(
            read_bytes(&file(h, &[0; 8])),
            "not a valid .safetensors file",
        );
    }

    #[test]
    fn truncated_and_garbage_files_are_errors_not_panics() {
        let h = r#"{"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}}"#;
        let good = file(h, &[0; 8]);
        read_bytes(&good).unwrap();
        for len in 0..good.len() {
            assert!(read_bytes(&good[..len]).is_err(), "prefix of {len}");
        }
        for bytes in noise(&good, 300) {
            if let Err(e) = read_bytes(&bytes) {
                assert!(!e.to_string().contains('\n'));
            }
        }
    }

    /// The fuzzer's kept inputs (fuzz/corpus/safetensors) read back as tensors or errors.
    #[test]
    fn fuzz_corpus_replays() {
        for (path, bytes) in crate::formats::test_util::fuzz_corpus("safetensors") {
            let _ = parse(&bytes, &path);
        }
    }
}
