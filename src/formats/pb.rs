//! ONNX `TensorProto` files (`.pb`, as in the ONNX backend-test layout). Reading follows
//! onnx.proto: `raw_data` or the one typed field that holds the data type, validated
//! strictly (dims, counts, value ranges, no external or segmented data) before any
//! allocation larger than the data actually present. Writing uses `raw_data`.

use super::atomic::write_atomic;
use super::onnx_pb::{tensor_proto::DataLocation, TensorProto};
use super::read_file;
use crate::error::{Error, Result};
use crate::tensor::{checked_nbytes, checked_numel, DType, Tensor};
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;
use std::path::Path;

/// Reads a `.pb` file: the tensor, and its `name` when the file sets a non-empty one.
pub fn read(path: &Path) -> Result<(Option<String>, Tensor)> {
    decode(&read_file(path)?, path)
}

/// Decodes the bytes of a serialized `TensorProto`; `path` names the source in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<(Option<String>, Tensor)> {
    if bytes.is_empty() {
        return Err(Error::file(path, "empty file, not a TensorProto"));
    }
    let proto = TensorProto::decode(bytes).map_err(|e| {
        let e = e.to_string();
        let e = e.trim_start_matches("failed to decode Protobuf message: ");
        Error::file(
            path,
            format!("not a valid TensorProto (truncated or corrupt): {e}"),
        )
    })?;
    // The decoded proto is ours: move its raw_data into the tensor instead of copying.
    let mut proto = proto;
    let raw = proto.raw_data.take();
    let tensor = convert(&proto, raw).map_err(|msg| named(&proto, path, msg))?;
    Ok((proto.name.filter(|n| !n.is_empty()), tensor))
}

/// Converts a decoded `TensorProto` (a `.pb` file, or a model initializer) to a tensor;
/// `path` names the file in errors, together with the tensor's name when it has one.
pub fn tensor_from_proto(t: &TensorProto, path: &Path) -> Result<Tensor> {
    convert(t, t.raw_data.clone()).map_err(|msg| named(t, path, msg))
}

/// The error for `path`, naming the tensor when it has a name.
fn named(t: &TensorProto, path: &Path, msg: String) -> Error {
    match t.name.as_deref() {
        Some(name) if !name.is_empty() => {
            Error::file(path, format!("tensor '{}': {msg}", name.escape_debug()))
        }
        _ => Error::file(path, msg),
    }
}

/// Writes `t` as a `TensorProto` with `raw_data` (and `name` when non-empty), atomically.
pub fn write(path: &Path, name: &str, t: &Tensor) -> Result<()> {
    let dims = t
        .shape()
        .iter()
        .map(|&d| i64::try_from(d))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::file(path, "a dimension does not fit in an ONNX int64 dim"))?;
    let head = TensorProto {
        dims,
        data_type: Some(t.dtype().onnx_code()),
        name: (!name.is_empty()).then(|| name.to_string()),
        ..Default::default()
    }
    .encode_to_vec();
    // raw_data (field 9) is written last and straight from the tensor, so a large tensor
    // is not copied; fields 1, 2, 8, 9 in this order are also protobuf's canonical order.
    let mut raw_key = Vec::with_capacity(16);
    encode_key(9, WireType::LengthDelimited, &mut raw_key);
    encode_varint(t.bytes().len() as u64, &mut raw_key);
    write_atomic(path, |w| {
        w.write_all(&head)?;
        w.write_all(&raw_key)?;
        w.write_all(t.bytes())
    })
}

/// The typed fields of `TensorProto` that can hold numbers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Float,
    Int32,
    Int64,
    Uint64,
    Double,
}

impl Field {
    const ALL: [Field; 5] = [
        Field::Float,
        Field::Int32,
        Field::Int64,
        Field::Uint64,
        Field::Double,
    ];

    /// The field that holds values of `dtype`, per onnx.proto.
    fn of(dtype: DType) -> Field {
        match dtype {
            DType::F32 => Field::Float,
            DType::F64 => Field::Double,
            DType::I64 => Field::Int64,
            DType::U32 | DType::U64 => Field::Uint64,
            _ => Field::Int32,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Field::Float => "float_data",
            Field::Int32 => "int32_data",
            Field::Int64 => "int64_data",
            Field::Uint64 => "uint64_data",
            Field::Double => "double_data",
        }
    }

    fn len(self, t: &TensorProto) -> usize {
        match self {
            Field::Float => t.float_data.len(),
            Field::Int32 => t.int32_data.len(),
            Field::Int64 => t.int64_data.len(),
            Field::Uint64 => t.uint64_data.len(),
            Field::Double => t.double_data.len(),
        }
    }
}

/// Valid values of `dtype` when its field is wider than the type; float16 and bfloat16
/// are stored as their unsigned 16-bit patterns.
fn range(dtype: DType) -> Option<(i64, i64)> {
    match dtype {
        DType::U32 => Some((0, u32::MAX.into())),
        DType::I16 => Some((i16::MIN.into(), i16::MAX.into())),
        DType::I8 => Some((i8::MIN.into(), i8::MAX.into())),
        DType::U8 => Some((0, u8::MAX.into())),
        DType::U16 | DType::F16 | DType::BF16 => Some((0, u16::MAX.into())),
        DType::Bool => Some((0, 1)),
        _ => None,
    }
}

/// `t`'s tensor, with `raw` standing for its `raw_data` (taken out of an owned proto, or
/// cloned from a borrowed one).
fn convert(t: &TensorProto, raw: Option<Vec<u8>>) -> Result<Tensor, String> {
    let code = t.data_type.unwrap_or(0);
    let onnx_name = DType::onnx_code_name(code);
    let dtype =
        DType::from_onnx_code(code).ok_or_else(|| format!("unsupported data type {onnx_name}"))?;
    let dims = &t.dims;
    let shape = dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension in dims {dims:?}")))
        .collect::<Result<Vec<_>, _>>()?;
    let location = t.data_location.unwrap_or(DataLocation::Default as i32);
    if location == DataLocation::External as i32 || !t.external_data.is_empty() {
        return Err(
            "data is stored in an external file (data_location EXTERNAL), which \
                    parity does not read; save the tensor with its data inline"
                .into(),
        );
    }
    if location != DataLocation::Default as i32 {
        return Err(format!("unknown data_location {location}"));
    }
    if t.segment.is_some() {
        return Err("segmented tensors (segment field set) are not supported".into());
    }
    let numel = checked_numel(&shape)
        .ok_or_else(|| format!("dims {dims:?} have more elements than can be addressed"))?;
    let nbytes = checked_nbytes(dtype, &shape)
        .ok_or_else(|| format!("dims {dims:?} have more bytes than can be addressed"))?;

    let field = Field::of(dtype);
    let filled = Field::ALL
        .into_iter()
        .filter(|f| f.len(t) > 0)
        .map(Field::name)
        .chain((!t.string_data.is_empty()).then_some("string_data"));
    for other in filled {
        if other != field.name() {
            return Err(format!(
                "{other} is set, but {onnx_name} values belong in {} or raw_data",
                field.name()
            ));
        }
        if raw.is_some() {
            return Err(format!("both raw_data and {other} are set"));
        }
    }

    let bytes = match raw {
        Some(raw) if raw.len() != nbytes => {
            return Err(format!(
                "raw_data has {} bytes, but dims {dims:?} of {onnx_name} need {nbytes}",
                raw.len()
            ))
        }
        Some(raw) => raw,
        None => {
            let count = field.len(t);
            let name = field.name();
            if count == 0 && numel > 0 {
                return Err(format!(
                    "no data: raw_data and {name} are empty, but dims {dims:?} need {numel} values"
                ));
            }
            if count != numel {
                return Err(format!(
                    "{name} has {count} values, but dims {dims:?} need {numel}"
                ));
            }
            typed_bytes(t, dtype, field)?
        }
    };
    Tensor::from_bytes(dtype, shape, bytes).map_err(|e| e.to_string())
}

/// Little-endian bytes of the values in the typed `field`. The caller checked the
/// field's length against the dims, so the allocation never exceeds what the file holds.
fn typed_bytes(t: &TensorProto, dtype: DType, field: Field) -> Result<Vec<u8>, String> {
    let size = dtype.size();
    let mut out = Vec::with_capacity(field.len(t) * size);
    let ints: Box<dyn Iterator<Item = i128> + '_> = match field {
        Field::Float => {
            t.float_data
                .iter()
                .for_each(|v| out.extend(v.to_le_bytes()));
            return Ok(out);
        }
        Field::Double => {
            t.double_data
                .iter()
                .for_each(|v| out.extend(v.to_le_bytes()));
            return Ok(out);
        }
        Field::Int32 => Box::new(t.int32_data.iter().map(|&v| v.into())),
        Field::Int64 => Box::new(t.int64_data.iter().map(|&v| v.into())),
        Field::Uint64 => Box::new(t.uint64_data.iter().map(|&v| v.into())),
    };
    let range = range(dtype);
    for (i, v) in ints.enumerate() {
        if let Some((lo, hi)) = range {
            if v < lo.into() || v > hi.into() {
                let (name, onnx) = (field.name(), DType::onnx_code_name(dtype.onnx_code()));
                return Err(format!(
                    "{name}[{i}] = {v} is out of range for {onnx} ({lo}..={hi})"
                ));
            }
        }
        // In range, so the low `size` bytes hold the value (two's complement).
        out.extend(v.to_le_bytes().iter().take(size));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{noise, sample};
    use half::{bf16, f16};

    fn path() -> &'static Path {
        Path::new("dir/input_0.pb")
    }

    fn decode_proto(t: &TensorProto) -> Result<(Option<String>, Tensor)> {
        decode(&t.encode_to_vec(), path())
    }

    fn proto(dtype: DType, dims: &[i64]) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(dtype.onnx_code()),
            ..Default::default()
        }
    }

    /// The message of an error: one line, naming the file and containing `problem`.
    fn assert_err<T: std::fmt::Debug>(r: Result<T>, problem: &str) {
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with("dir/input_0.pb: "), "{msg}");
        assert!(msg.contains(problem), "{msg:?} lacks {problem:?}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn every_dtype_round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in DType::ALL {
            for shape in [vec![2, 3], vec![], vec![4, 0, 2]] {
                let t = sample(dtype, shape.clone());
                let p = dir.path().join("t.pb");
                write(&p, "x", &t).unwrap();
                let (name, back) = read(&p).unwrap();
                assert_eq!(name.as_deref(), Some("x"));
                assert_eq!((back.dtype(), back.shape()), (dtype, &shape[..]));
                assert_eq!(back.bytes(), t.bytes());
            }
        }
    }

    #[test]
    fn written_bytes_equal_prost_encoding_and_empty_name_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.pb");
        let t = sample(DType::F32, vec![2, 2]);
        write(&p, "", &t).unwrap();
        let mut expected = proto(DType::F32, &[2, 2]);
        expected.raw_data = Some(t.bytes().to_vec());
        assert_eq!(std::fs::read(&p).unwrap(), expected.encode_to_vec());
        assert_eq!(read(&p).unwrap().0, None);
    }

    #[test]
    fn every_typed_field_for_every_dtype_it_holds() {
        let dims = [3];
        let check = |p: TensorProto, expected: Tensor| {
            let (_, t) = decode_proto(&p).unwrap();
            assert_eq!((t.dtype(), t.shape()), (expected.dtype(), expected.shape()));
            assert_eq!(t.bytes(), expected.bytes(), "{:?}", t.dtype());
        };
        let mut p = proto(DType::F32, &dims);
        p.float_data = vec![1.5, -0.0, f32::INFINITY];
        check(
            p,
            Tensor::from_vec(vec![3], vec![1.5f32, -0.0, f32::INFINITY]).unwrap(),
        );
        let mut p = proto(DType::F64, &dims);
        p.double_data = vec![1e300, -2.5, 0.0];
        check(
            p,
            Tensor::from_vec(vec![3], vec![1e300f64, -2.5, 0.0]).unwrap(),
        );
        let mut p = proto(DType::I64, &dims);
        p.int64_data = vec![i64::MIN, -1, i64::MAX];
        check(
            p,
            Tensor::from_vec(vec![3], vec![i64::MIN, -1, i64::MAX]).unwrap(),
        );
        let mut p = proto(DType::U64, &dims);
        p.uint64_data = vec![0, 7, u64::MAX];
        check(
            p,
            Tensor::from_vec(vec![3], vec![0u64, 7, u64::MAX]).unwrap(),
        );
        let mut p = proto(DType::U32, &dims);
        p.uint64_data = vec![0, 7, u32::MAX.into()];
        check(
            p,
            Tensor::from_vec(vec![3], vec![0u32, 7, u32::MAX]).unwrap(),
        );

        let int32 = |dtype: DType, vals: Vec<i32>| {
            let mut p = proto(dtype, &dims);
            p.int32_data = vals;
            p
        };
        check(
            int32(DType::I32, vec![i32::MIN, -1, i32::MAX]),
            Tensor::from_vec(vec![3], vec![i32::MIN, -1, i32::MAX]).unwrap(),
        );
        check(
            int32(DType::I16, vec![-32768, -1, 32767]),
            Tensor::from_vec(vec![3], vec![i16::MIN, -1, i16::MAX]).unwrap(),
        );
        check(
            int32(DType::I8, vec![-128, -1, 127]),
            Tensor::from_vec(vec![3], vec![i8::MIN, -1, i8::MAX]).unwrap(),
        );
        check(
            int32(DType::U16, vec![0, 1, 65535]),
            Tensor::from_vec(vec![3], vec![0u16, 1, u16::MAX]).unwrap(),
        );
        check(
            int32(DType::U8, vec![0, 1, 255]),
            Tensor::from_vec(vec![3], vec![0u8, 1, u8::MAX]).unwrap(),
        );
        check(
            int32(DType::Bool, vec![1, 0, 1]),
            Tensor::from_bools(vec![3], &[true, false, true]).unwrap(),
        );
        // float16 / bfloat16: bit patterns in the low 16 bits, including a sign bit.
        let h = [f16::from_f32(1.5), f16::from_f32(-2.0), f16::NAN];
        check(
            int32(DType::F16, h.iter().map(|v| v.to_bits().into()).collect()),
            Tensor::from_vec(vec![3], h.to_vec()).unwrap(),
        );
        let b = [
            bf16::from_f32(-1.5),
            bf16::from_f32(3.0e38),
            bf16::NEG_INFINITY,
        ];
        check(
            int32(DType::BF16, b.iter().map(|v| v.to_bits().into()).collect()),
            Tensor::from_vec(vec![3], b.to_vec()).unwrap(),
        );
    }

    #[test]
    fn scalar_and_empty_tensors() {
        let mut p = proto(DType::F32, &[]);
        p.float_data = vec![4.0];
        let (_, t) = decode_proto(&p).unwrap();
        assert_eq!((t.shape(), t.get_f64(0)), (&[][..], 4.0));
        // An empty tensor needs no data field at all, or an empty raw_data.
        let p = proto(DType::I64, &[2, 0]);
        assert_eq!(decode_proto(&p).unwrap().1.shape(), &[2, 0]);
        let mut p = proto(DType::I64, &[0]);
        p.raw_data = Some(vec![]);
        assert_eq!(decode_proto(&p).unwrap().1.numel(), 0);
    }

    #[test]
    fn name_is_returned() {
        let mut p = proto(DType::U8, &[1]);
        p.raw_data = Some(vec![3]);
        p.name = Some("x".into());
        assert_eq!(decode_proto(&p).unwrap().0.as_deref(), Some("x"));
    }

    #[test]
    fn unsupported_and_missing_data_types() {
        let mut p = proto(DType::F32, &[1]);
        p.data_type = Some(8);
        p.string_data = vec![b"a".to_vec()];
        assert_err(decode_proto(&p), "unsupported data type STRING");
        p.data_type = None;
        assert_err(decode_proto(&p), "unsupported data type UNDEFINED");
        p.data_type = Some(99);
        assert_err(
            decode_proto(&p),
            "unsupported data type unknown data type 99",
        );
    }

    #[test]
    fn structural_errors() {
        let mut p = proto(DType::F32, &[2, -1]);
        p.float_data = vec![1.0];
        assert_err(decode_proto(&p), "negative dimension in dims [2, -1]");

        let mut p = proto(DType::F32, &[2]);
        p.raw_data = Some(vec![0; 7]);
        assert_err(
            decode_proto(&p),
            "raw_data has 7 bytes, but dims [2] of FLOAT need 8",
        );
        p.raw_data = None;
        p.float_data = vec![1.0];
        assert_err(
            decode_proto(&p),
            "float_data has 1 values, but dims [2] need 2",
        );
        p.float_data = vec![];
        assert_err(
            decode_proto(&p),
            "no data: raw_data and float_data are empty",
        );
        p.int64_data = vec![1, 2];
        assert_err(
            decode_proto(&p),
            "int64_data is set, but FLOAT values belong in float_data",
        );
        p.int64_data = vec![];
        p.float_data = vec![1.0, 2.0];
        p.raw_data = Some(vec![0; 8]);
        assert_err(decode_proto(&p), "both raw_data and float_data are set");

        let mut p = proto(DType::F32, &[1]);
        p.raw_data = Some(vec![0; 4]);
        p.segment = Some(Default::default());
        assert_err(decode_proto(&p), "segment");
        p.segment = None;
        p.data_location = Some(DataLocation::External as i32);
        assert_err(decode_proto(&p), "external file (data_location EXTERNAL)");
        p.data_location = None;
        p.external_data = vec![Default::default()];
        assert_err(decode_proto(&p), "external file");
        p.external_data = vec![];
        p.data_location = Some(7);
        assert_err(decode_proto(&p), "unknown data_location 7");

        let mut p = proto(DType::Bool, &[2]);
        p.raw_data = Some(vec![1, 2]);
        assert_err(decode_proto(&p), "bool element 1 has byte value 2");
    }

    #[test]
    fn absurd_dims_are_refused_before_allocating() {
        let mut p = proto(DType::F64, &[1 << 40, 1 << 20]);
        p.raw_data = Some(vec![0; 8]);
        assert_err(decode_proto(&p), "raw_data has 8 bytes, but dims");
        p.raw_data = None;
        p.double_data = vec![0.0];
        assert_err(decode_proto(&p), "double_data has 1 values");
        p.dims = vec![i64::MAX, i64::MAX];
        assert_err(decode_proto(&p), "more elements than can be addressed");
    }

    #[test]
    fn a_length_past_the_file_is_refused_before_allocating() {
        // raw_data (field 9, length-delimited) declaring 2 GiB, followed by 3 bytes.
        let mut bytes = vec![9 << 3 | 2];
        encode_varint((2 << 30) - 1, &mut bytes);
        bytes.extend([1, 2, 3]);
        let err = decode(&bytes, Path::new("x.pb")).unwrap_err().to_string();
        assert!(
            err.starts_with("x.pb: not a valid TensorProto (truncated or corrupt)"),
            "{err}"
        );
    }

    #[test]
    fn narrow_values_out_of_range() {
        for (dtype, bad, range) in [
            (DType::U8, 300, "UINT8 (0..=255)"),
            (DType::I8, -129, "INT8 (-128..=127)"),
            (DType::I16, 40000, "INT16 (-32768..=32767)"),
            (DType::U16, -1, "UINT16 (0..=65535)"),
            (DType::Bool, 2, "BOOL (0..=1)"),
            (DType::F16, 70000, "FLOAT16 (0..=65535)"),
            (DType::BF16, -5, "BFLOAT16 (0..=65535)"),
        ] {
            let mut p = proto(dtype, &[2]);
            p.int32_data = vec![0, bad];
            assert_err(
                decode_proto(&p),
                &format!("int32_data[1] = {bad} is out of range for {range}"),
            );
        }
        let mut p = proto(DType::U32, &[1]);
        p.uint64_data = vec![1 << 32];
        assert_err(
            decode_proto(&p),
            "uint64_data[0] = 4294967296 is out of range for UINT32",
        );
    }

    #[test]
    fn tensor_name_appears_in_errors() {
        let mut p = proto(DType::F32, &[2]);
        p.name = Some("W".into());
        assert_err(
            tensor_from_proto(&p, path()).map(|_| ()),
            "tensor 'W': no data",
        );
    }

    #[test]
    fn truncated_and_garbage_bytes_are_errors_not_panics() {
        let mut p = proto(DType::F32, &[2, 3]);
        p.name = Some("input".into());
        p.raw_data = Some(vec![1; 24]);
        let good = p.encode_to_vec();
        for len in 0..good.len() {
            assert!(
                decode(&good[..len], path()).is_err(),
                "prefix of {len} bytes"
            );
        }
        assert_err(
            decode(&good[..good.len() - 3], path()),
            "not a valid TensorProto",
        );
        assert_err(decode(&[], path()), "empty file");
        for bytes in noise(&good, 5000) {
            if let Err(e) = decode(&bytes, path()) {
                assert!(!e.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn missing_file_is_named() {
        let err = read(Path::new("/nonexistent/x.pb"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "/nonexistent/x.pb: no such file or directory");
    }

    /// The fuzzer's kept inputs (fuzz/corpus/pb) read back as tensors or errors.
    #[test]
    fn fuzz_corpus_replays() {
        for (path, bytes) in crate::formats::test_util::fuzz_corpus("pb") {
            let _ = decode(&bytes, &path);
        }
    }
}
