//! `.npy` files (NumPy format v1, v2, v3): one header parser shared with `.npz`, strict
//! validation, memory-mapped reading of large files, numpy-compatible writing.
//!
//! Decisions:
//! - Big-endian data (`>f4`) is refused with a message saying how to convert it, rather
//!   than byte-swapped: numpy writes native (little-endian) order unless asked otherwise.
//! - `fortran_order: True` (what `np.save(path, a.T)` writes for a C-ordered `a`) is read
//!   by transposing into C order, which copies the data (also for a mapped file).
//!   Writing always uses C order.
//! - bfloat16 has no NumPy dtype (ml_dtypes saves it as raw void `<V2`): refused both
//!   ways, with a pointer to `.pb` or `.safetensors`.
//! - The data must fill the file exactly: missing or trailing bytes are errors.

use super::atomic::write_atomic;
use super::{load, Contents, MMAP_THRESHOLD};
use crate::error::{Error, Result};
use crate::tensor::{checked_nbytes, DType, Tensor};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a `.npy` file; files of 16 MiB or more are memory-mapped, not copied.
pub fn read(path: &Path) -> Result<Tensor> {
    read_mapping_from(path, MMAP_THRESHOLD)
}

fn read_mapping_from(path: &Path, mmap_from: u64) -> Result<Tensor> {
    let tensor = match load(path, mmap_from)? {
        Contents::Owned(bytes) => decode(bytes),
        Contents::Mapped(map) => decode_mapped(map),
    };
    tensor.map_err(|msg| Error::file(path, msg))
}

/// Decodes the bytes of a whole `.npy` file; `path` names the source in errors.
pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<Tensor> {
    decode(bytes).map_err(|msg| Error::file(path, msg))
}

/// Writes `t` as a v1 `.npy` file (v2 if the header needs it) whose data starts at a
/// 64-byte boundary, as numpy does; atomically.
pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let header = header_bytes(t).map_err(|msg| Error::file(path, msg))?;
    write_atomic(path, |w| {
        w.write_all(&header)?;
        w.write_all(t.bytes())
    })
}

/// `.npy` bytes to a tensor, moving the data out of `bytes` without a second buffer.
/// Errors are messages without the file name; `.npz` adds the member name.
pub(super) fn decode(mut bytes: Vec<u8>) -> Result<Tensor, String> {
    let h = Header::parse(&bytes)?;
    let data = bytes.get(h.data_offset..).unwrap_or_default();
    h.check_len(data.len())?;
    if h.needs_transpose() {
        return h.transposed(data);
    }
    bytes.drain(..h.data_offset);
    Tensor::from_bytes(h.dtype, h.shape, bytes).map_err(|e| e.to_string())
}

/// The most bytes [`Header::prelude`] needs.
const PRELUDE_MAX: usize = 12;

/// Reads one `.npy` stream (an `.npz` member) that may take at most `room` bytes: the
/// header first, then exactly the data it declares, so a stream that inflates past its
/// header is refused one byte later, whatever its container claims, and memory never
/// exceeds what the header declares. `over(total)` words the refusal of a header that
/// declares `total` bytes, more than `room`. Returns the tensor and the stream's length.
pub(super) fn read_stream(
    r: &mut impl Read,
    room: u64,
    over: impl Fn(u64) -> String,
) -> Result<(Tensor, u64), String> {
    let mut bytes = Vec::new();
    let mut take = |bytes: &mut Vec<u8>, n: u64| {
        (&mut *r)
            .take(n)
            .read_to_end(bytes)
            .map_err(|e| super::io_problem(&e))
    };
    take(&mut bytes, PRELUDE_MAX as u64)?;
    let (prelude, len) = Header::prelude(&bytes)?;
    let header_end = prelude.saturating_add(len) as u64;
    if header_end > room {
        return Err(over(header_end));
    }
    let rest = header_end.saturating_sub(bytes.len() as u64);
    take(&mut bytes, rest)?;
    let h = Header::parse(&bytes)?;
    let total = header_end.saturating_add(h.data_len()? as u64);
    if total > room {
        return Err(over(total));
    }
    bytes.reserve_exact(usize::try_from(total).unwrap_or(usize::MAX) - bytes.len());
    let wanted = total - bytes.len() as u64;
    take(&mut bytes, wanted.saturating_add(1))?;
    if bytes.len() as u64 > total {
        let shape = py_shape(&h.shape);
        return Err(format!(
            "holds more data than its .npy header declares (shape {shape} of {} needs {} bytes)",
            h.dtype,
            total - header_end
        ));
    }
    Ok((decode(bytes)?, total))
}

fn decode_mapped(map: Arc<memmap2::Mmap>) -> Result<Tensor, String> {
    let h = Header::parse(&map)?;
    let data = map.get(h.data_offset..).unwrap_or_default();
    h.check_len(data.len())?;
    if h.needs_transpose() {
        return h.transposed(data);
    }
    Tensor::from_mapped(h.dtype, h.shape, map, h.data_offset).map_err(|e| e.to_string())
}

/// What an `.npy` header says about the data that follows it.
#[derive(Debug)]
struct Header {
    dtype: DType,
    shape: Vec<usize>,
    fortran_order: bool,
    data_offset: usize,
}

impl Header {
    /// The fixed part of a header (magic, version, header length), which its first
    /// [`PRELUDE_MAX`] bytes hold: where the header text starts, and how long it is.
    fn prelude(bytes: &[u8]) -> Result<(usize, usize), String> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or("not an .npy file (no \\x93NUMPY magic)")?;
        let truncated = || "truncated .npy header".to_string();
        let (&[major, minor], rest) = rest.split_first_chunk::<2>().ok_or_else(truncated)?;
        match major {
            1 => {
                let (len, _) = rest.split_first_chunk::<2>().ok_or_else(truncated)?;
                Ok((10, usize::from(u16::from_le_bytes(*len))))
            }
            2 | 3 => {
                let (len, _) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
                let len = usize::try_from(u32::from_le_bytes(*len)).unwrap_or(usize::MAX);
                Ok((12, len))
            }
            _ => Err(format!("unsupported .npy format version {major}.{minor}")),
        }
    }

    fn parse(bytes: &[u8]) -> Result<Header, String> {
        let (prelude, len) = Header::prelude(bytes)?;
        let data_offset = prelude.saturating_add(len);
        let text = bytes.get(prelude..data_offset).ok_or_else(|| {
            format!(
                "truncated .npy header: it declares {len} bytes, the file has {}",
                bytes.len().saturating_sub(prelude)
            )
        })?;
        let text = std::str::from_utf8(text).map_err(|_| "the .npy header is not text")?;
        let mut p = DictParser {
            s: text.as_bytes(),
            pos: 0,
        };
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        for (key, value) in p.dict()? {
            match (key.as_str(), value) {
                ("descr", Value::Str(s)) => descr = Some(s),
                ("fortran_order", Value::Bool(b)) => fortran_order = Some(b),
                ("shape", Value::Tuple(dims)) => shape = Some(dims),
                ("descr" | "fortran_order" | "shape", _) => {
                    return Err(format!("the .npy header has an invalid '{key}' value"));
                }
                _ => {
                    let key = key.escape_debug();
                    return Err(format!("the .npy header has an unexpected key '{key}'"));
                }
            }
        }
        let missing = |key| format!("the .npy header has no '{key}'");
        Ok(Header {
            dtype: dtype_from_descr(&descr.ok_or_else(|| missing("descr"))?)?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
            data_offset,
        })
    }

    /// How many data bytes the shape and dtype need.
    fn data_len(&self) -> Result<usize, String> {
        checked_nbytes(self.dtype, &self.shape).ok_or_else(|| {
            let shape = py_shape(&self.shape);
            format!("shape {shape} has more elements than can be addressed")
        })
    }

    /// The data must be exactly as long as the shape says.
    fn check_len(&self, found: usize) -> Result<(), String> {
        let (shape, dtype) = (py_shape(&self.shape), self.dtype);
        let need = self.data_len()?;
        if found < need {
            return Err(format!(
                "truncated: shape {shape} of {dtype} needs {need} data bytes, the file has {found}"
            ));
        }
        if found > need {
            return Err(format!(
                "{} bytes after the data (shape {shape} of {dtype} needs {need})",
                found - need
            ));
        }
        Ok(())
    }

    /// Fortran order differs from C order only when two or more dims exceed 1.
    fn needs_transpose(&self) -> bool {
        self.fortran_order && self.shape.iter().filter(|&&d| d > 1).count() > 1
    }

    /// Builds a C-ordered tensor from Fortran-ordered `data` (length already checked).
    fn transposed(&self, data: &[u8]) -> Result<Tensor, String> {
        let size = self.dtype.size();
        // C strides, in elements (no overflow: the element count was checked).
        let mut strides: Vec<usize> = self
            .shape
            .iter()
            .rev()
            .scan(1usize, |next, &d| {
                let stride = *next;
                *next *= d;
                Some(stride)
            })
            .collect();
        strides.reverse();
        let mut out = vec![0u8; data.len()];
        // Walk the source in its (Fortran) order, first index fastest, tracking where
        // each element lands in C order.
        let mut index = vec![0usize; self.shape.len()];
        let mut dest = 0usize;
        for element in data.chunks_exact(size) {
            if let Some(slot) = out.get_mut(dest * size..(dest + 1) * size) {
                slot.copy_from_slice(element);
            }
            for ((i, &dim), &stride) in index.iter_mut().zip(&self.shape).zip(&strides) {
                *i += 1;
                dest += stride;
                if *i < dim {
                    break;
                }
                dest -= stride * dim;
                *i = 0;
            }
        }
        Tensor::from_bytes(self.dtype, self.shape.clone(), out).map_err(|e| e.to_string())
    }
}

fn dtype_from_descr(descr: &str) -> Result<DType, String> {
    let shown = descr.escape_debug();
    let (order, code) = match descr.as_bytes().first() {
        Some(c @ (b'<' | b'>' | b'=' | b'|')) => (*c, descr.get(1..).unwrap_or_default()),
        _ => (b'=', descr),
    };
    let dtype = match code {
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        "i1" => DType::I8,
        "i2" => DType::I16,
        "i4" => DType::I32,
        "i8" => DType::I64,
        "u1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "b1" => DType::Bool,
        "V2" => {
            return Err(format!(
                "unsupported dtype '{shown}' (bfloat16 has no .npy dtype; use .pb or .safetensors)"
            ))
        }
        _ => return Err(format!("unsupported dtype '{shown}'")),
    };
    if order == b'>' && dtype.size() > 1 {
        return Err(format!(
            "big-endian dtype '{shown}' is not supported; save it as little-endian \
             (arr.astype('<{code}'))"
        ));
    }
    Ok(dtype)
}

/// The descr numpy writes for `dtype`; bfloat16 has none.
fn descr(dtype: DType) -> Option<&'static str> {
    Some(match dtype {
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I8 => "|i1",
        DType::I16 => "<i2",
        DType::I32 => "<i4",
        DType::I64 => "<i8",
        DType::U8 => "|u1",
        DType::U16 => "<u2",
        DType::U32 => "<u4",
        DType::U64 => "<u8",
        DType::Bool => "|b1",
        DType::BF16 => return None,
    })
}

/// A shape as Python prints a tuple: `()`, `(5,)`, `(2, 3)`.
fn py_shape(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// The magic, version, length and header dict, padded so the data starts at a multiple
/// of 64 bytes.
/// `.npz` writes it before each member's data.
pub(super) fn header_bytes(t: &Tensor) -> Result<Vec<u8>, String> {
    let descr =
        descr(t.dtype()).ok_or("bf16 has no .npy dtype; write it as .pb (or convert it to f32)")?;
    let dict = format!(
        "{{'descr': '{descr}', 'fortran_order': False, 'shape': {}, }}",
        py_shape(t.shape())
    );
    let unpadded = MAGIC.len() + 4 + dict.len() + 1;
    let (version, prelude) = if unpadded <= usize::from(u16::MAX) {
        (1u8, 10)
    } else {
        (2, 12)
    };
    let total = (prelude + dict.len() + 1).next_multiple_of(64);
    let len = total - prelude;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    match version {
        1 => out.extend(
            u16::try_from(len)
                .map_err(|_| "header too long")?
                .to_le_bytes(),
        ),
        _ => out.extend(
            u32::try_from(len)
                .map_err(|_| "header too long")?
                .to_le_bytes(),
        ),
    }
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    Ok(out)
}

/// The values an `.npy` header dict holds.
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// A parser for the Python dict literal of an `.npy` header:
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
struct DictParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl DictParser<'_> {
    fn dict(&mut self) -> Result<Vec<(String, Value)>, String> {
        let mut entries = Vec::new();
        self.require(b'{')?;
        loop {
            if self.eat(b'}') {
                break;
            }
            let key = self.string()?;
            self.require(b':')?;
            let value = self.value()?;
            entries.push((key, value));
            if !self.eat(b',') {
                self.require(b'}')?;
                break;
            }
        }
        self.skip_ws();
        if self.pos != self.s.len() {
            return Err(self.unexpected());
        }
        Ok(entries)
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        let rest = self.s.get(self.pos..).unwrap_or_default();
        for (word, b) in [("True", true), ("False", false)] {
            if rest.starts_with(word.as_bytes()) {
                self.pos += word.len();
                return Ok(Value::Bool(b));
            }
        }
        match rest.first() {
            Some(b'\'' | b'"') => Ok(Value::Str(self.string()?)),
            Some(b'(') => self.tuple(),
            Some(b'[') => Err("structured dtypes (a list as descr) are not supported".into()),
            _ => Err(self.unexpected()),
        }
    }

    fn tuple(&mut self) -> Result<Value, String> {
        self.require(b'(')?;
        let mut dims = Vec::new();
        loop {
            if self.eat(b')') {
                break;
            }
            dims.push(self.dim()?);
            if !self.eat(b',') {
                self.require(b')')?;
                break;
            }
        }
        Ok(Value::Tuple(dims))
    }

    fn dim(&mut self) -> Result<usize, String> {
        self.skip_ws();
        if self.peek() == Some(b'-') {
            return Err("negative dimension in the .npy shape".into());
        }
        let start = self.pos;
        let mut value = 0usize;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(c - b'0')))
                .ok_or("a dimension in the .npy shape is too large")?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected());
        }
        self.eat(b'L'); // Python 2 long literal
        Ok(value)
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_ws();
        let quote = self.peek().filter(|q| matches!(q, b'\'' | b'"'));
        let quote = quote.ok_or_else(|| self.unexpected())?;
        self.pos += 1;
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == quote {
                let s = self.s.get(start..self.pos).unwrap_or_default();
                self.pos += 1;
                return Ok(String::from_utf8_lossy(s).into_owned());
            }
            if c == b'\\' {
                return Err("escapes in .npy header strings are not supported".into());
            }
            self.pos += 1;
        }
        Err("unterminated string in the .npy header".into())
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Consumes `c` (after whitespace) if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.skip_ws();
        let found = self.peek() == Some(c);
        if found {
            self.pos += 1;
        }
        found
    }

    fn require(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn unexpected(&self) -> String {
        match self.peek() {
            Some(c) => format!(
                "invalid .npy header: unexpected {:?} at byte {}",
                char::from(c),
                self.pos
            ),
            None => "invalid .npy header: it ends too early".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{noise, sample};

    const P: &str = "dir/x.npy";

    /// A hand-made `.npy` file: `dict` padded like numpy does, then `data`.
    fn npy(version: u8, dict: &str, data: &[u8]) -> Vec<u8> {
        let prelude = if version == 1 { 10 } else { 12 };
        let len = (prelude + dict.len() + 1).next_multiple_of(64) - prelude;
        let mut out = MAGIC.to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((len as u16).to_le_bytes());
        } else {
            out.extend((len as u32).to_le_bytes());
        }
        out.extend(dict.as_bytes());
        out.resize(prelude + len - 1, b' ');
        out.push(b'\n');
        out.extend(data);
        out
    }

    fn dict(descr: &str, fortran: bool, shape: &str) -> String {
        let f = if fortran { "True" } else { "False" };
        format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}")
    }

    fn parse_err(bytes: Vec<u8>, problem: &str) {
        let msg = parse(bytes, Path::new(P)).unwrap_err().to_string();
        assert!(msg.starts_with("dir/x.npy: "), "{msg}");
        assert!(msg.contains(problem), "{msg:?} lacks {problem:?}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn every_dtype_but_bf16_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.npy");
        for dtype in DType::ALL.into_iter().filter(|&d| d != DType::BF16) {
            for shape in [vec![2, 3], vec![], vec![5], vec![3, 0]] {
                let t = sample(dtype, shape.clone());
                write(&p, &t).unwrap();
                let file = std::fs::read(&p).unwrap();
                assert_eq!((file.len() - t.bytes().len()) % 64, 0);
                for mmap_from in [MMAP_THRESHOLD, 0] {
                    let back = read_mapping_from(&p, mmap_from).unwrap();
                    assert_eq!((back.dtype(), back.shape()), (dtype, &shape[..]));
                    assert_eq!(back.bytes(), t.bytes());
                }
            }
        }
    }

    #[test]
    fn header_is_what_numpy_writes() {
        let t = sample(DType::F32, vec![2, 3]);
        let h = header_bytes(&t).unwrap();
        let expected = npy(1, &dict("<f4", false, "(2, 3)"), &[]);
        assert_eq!(h, expected);
        let scalar = header_bytes(&sample(DType::Bool, vec![])).unwrap();
        assert!(String::from_utf8_lossy(&scalar).contains("'shape': (), "));
        let one = header_bytes(&sample(DType::U8, vec![5])).unwrap();
        assert!(String::from_utf8_lossy(&one)
            .contains("'descr': '|u1', 'fortran_order': False, 'shape': (5,), }"));
    }

    #[test]
    fn bf16_is_refused_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.npy");
        let err = write(&p, &sample(DType::BF16, vec![2]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.npy: bf16 has no .npy dtype"), "{err}");
        assert!(!p.exists());
        parse_err(
            npy(1, &dict("|V2", false, "(1,)"), &[0, 0]),
            "unsupported dtype '|V2' (bfloat16",
        );
    }

    #[test]
    fn versions_descr_variants_and_shapes() {
        let data: Vec<u8> = (0..24).collect();
        for version in [1, 2, 3] {
            for descr in ["<i4", "=i4", "|i4", "i4"] {
                let t = parse(
                    npy(version, &dict(descr, false, "(2, 3)"), &data),
                    Path::new(P),
                )
                .unwrap();
                assert_eq!(
                    (t.dtype(), t.shape(), t.bytes()),
                    (DType::I32, &[2, 3][..], &data[..])
                );
            }
        }
        for (descr, dtype) in [(">i1", DType::I8), ("|b1", DType::Bool), (">u1", DType::U8)] {
            let t = parse(npy(1, &dict(descr, false, "(1,)"), &[1]), Path::new(P)).unwrap();
            assert_eq!(t.dtype(), dtype);
        }
        // Scalar, python-2 longs, double quotes, odd spacing, keys in another order.
        let t = parse(npy(1, &dict("<f8", false, "()"), &[0; 8]), Path::new(P)).unwrap();
        assert_eq!(t.shape(), &[] as &[usize]);
        let d = "{\"shape\":(2L,3L),\"fortran_order\":False,\"descr\":\"<u2\"}";
        let t = parse(npy(1, d, &[0; 12]), Path::new(P)).unwrap();
        assert_eq!((t.dtype(), t.shape()), (DType::U16, &[2, 3][..]));
    }

    /// Found by the fuzzer (`npy`, docs/reliability.md): an empty Fortran-ordered array
    /// whose other dims multiply past `usize` overflowed computing strides. Such a shape
    /// is refused wherever its zero is, as one without a zero is.
    #[test]
    fn a_shape_whose_other_dims_overflow_is_refused_even_with_a_zero() {
        for shape in [
            "(0, 4294967296, 4294967296, 2)",
            "(4294967296, 4294967296, 2, 0)",
        ] {
            for fortran in [true, false] {
                parse_err(
                    npy(1, &dict("<i4", fortran, shape), &[]),
                    &format!("shape {shape} has more elements than can be addressed"),
                );
            }
        }
        // An empty array with dims that fit reads as one, in Fortran order too.
        let t = parse(
            npy(1, &dict("<i4", true, "(0, 65536, 3)"), &[]),
            Path::new(P),
        )
        .unwrap();
        assert_eq!((t.shape(), t.numel()), (&[0, 65536, 3][..], 0));
    }

    #[test]
    fn fortran_order_is_transposed() {
        // a = [[0, 1, 2], [3, 4, 5]] stored column-major: 0 3 1 4 2 5.
        let f: Vec<u8> = [0u16, 3, 1, 4, 2, 5]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let c: Vec<u8> = (0u16..6).flat_map(|v| v.to_le_bytes()).collect();
        let t = parse(npy(1, &dict("<u2", true, "(2, 3)"), &f), Path::new(P)).unwrap();
        assert_eq!((t.shape(), t.bytes()), (&[2, 3][..], &c[..]));
        // 3-d: element (i, j, k) sits at i + 2j + 4k in Fortran order.
        let shape = [2usize, 2, 3];
        let fo: Vec<u8> = (0..12u8)
            .map(|n| {
                let (i, j, k) = (n % 2, (n / 2) % 2, n / 4);
                i * 6 + j * 3 + k // its C index
            })
            .collect();
        let t = parse(npy(1, &dict("|u1", true, "(2, 2, 3)"), &fo), Path::new(P)).unwrap();
        assert_eq!(
            (t.shape(), t.bytes()),
            (&shape[..], &(0..12).collect::<Vec<u8>>()[..])
        );
        // Vectors need no transpose, and the mapped path transposes too.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.npy");
        std::fs::write(&p, npy(1, &dict("<u2", true, "(2, 3)"), &f)).unwrap();
        assert_eq!(read_mapping_from(&p, 0).unwrap().bytes(), &c[..]);
        let t = parse(npy(1, &dict("<u2", true, "(1, 6)"), &c), Path::new(P)).unwrap();
        assert_eq!(t.bytes(), &c[..]);
    }

    #[test]
    fn validation_errors() {
        parse_err(
            npy(1, &dict(">f4", false, "(1,)"), &[0; 4]),
            "big-endian dtype '>f4' is not supported",
        );
        parse_err(
            npy(1, &dict("<c8", false, "(1,)"), &[0; 8]),
            "unsupported dtype '<c8'",
        );
        parse_err(
            npy(1, &dict("|O", false, "(1,)"), &[0; 8]),
            "unsupported dtype '|O'",
        );
        parse_err(
            npy(1, &dict("<f4", false, "(2, 3)"), &[0; 20]),
            "truncated: shape (2, 3) of f32 needs 24 data bytes, the file has 20",
        );
        parse_err(
            npy(1, &dict("<f4", false, "(1,)"), &[0; 5]),
            "1 bytes after the data",
        );
        parse_err(npy(1, &dict("<f4", false, "(4294967296, 1024)"), &[0; 4]), "truncated: shape (4294967296, 1024) of f32 needs 17592186044416 data bytes, the file has 4");
        parse_err(
            npy(1, &dict("<f8", false, "(18446744073709551615, 4)"), &[]),
            "more elements than can be addressed",
        );
        parse_err(
            npy(1, &dict("<f8", false, "(99999999999999999999999,)"), &[]),
            "dimension in the .npy shape is too large",
        );
        parse_err(
            npy(1, &dict("<f4", false, "(2, -1)"), &[]),
            "negative dimension",
        );
        parse_err(
            npy(1, &dict("|b1", false, "(2,)"), &[1, 5]),
            "bool element 1 has byte value 5",
        );
        parse_err(
            npy(1, "{'descr': '<f4', 'shape': (1,), }", &[0; 4]),
            "no 'fortran_order'",
        );
        parse_err(
            npy(
                1,
                "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}",
                &[0; 4],
            ),
            "unexpected '0'",
        );
        parse_err(npy(1, "{'descr': 5}", &[]), "unexpected '5'");
        parse_err(
            npy(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': True}",
                &[],
            ),
            "unexpected key 'x'",
        );
        parse_err(
            npy(
                1,
                "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
                &[],
            ),
            "structured dtypes",
        );
        parse_err(
            npy(
                1,
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
                &[0; 4],
            ),
            "unexpected 'x'",
        );
        parse_err(
            npy(
                1,
                "{'descr': '<f4', 'fortran_order': 'False', 'shape': (1,)}",
                &[0; 4],
            ),
            "invalid 'fortran_order' value",
        );
        parse_err(
            npy(4, &dict("<f4", false, "(1,)"), &[0; 4]),
            "unsupported .npy format version 4.0",
        );
        parse_err(b"PK\x03\x04 not npy".to_vec(), "not an .npy file");
        let mut long = npy(1, &dict("<f4", false, "(1,)"), &[]);
        long[8..10].copy_from_slice(&[0xff, 0xff]);
        parse_err(
            long,
            "truncated .npy header: it declares 65535 bytes, the file has 118",
        );
    }

    #[test]
    fn truncated_and_garbage_bytes_are_errors_not_panics() {
        let good = npy(1, &dict("<i2", true, "(3, 2)"), &[7; 12]);
        parse(good.clone(), Path::new(P)).unwrap();
        for len in 0..good.len() {
            assert!(
                parse(good[..len].to_vec(), Path::new(P)).is_err(),
                "prefix of {len}"
            );
        }
        for bytes in noise(&good, 5000) {
            if let Err(e) = parse(bytes, Path::new(P)) {
                assert!(!e.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn large_files_are_mapped_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.npy");
        let t = sample(DType::F32, vec![4, 1 << 20]);
        write(&p, &t).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back.bytes(), t.bytes());
        // Mapped data keeps numpy's 64-byte alignment, so typed views borrow.
        assert!(matches!(
            back.values::<f32>().unwrap(),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_sparse_file_over_the_read_limit_is_refused_not_mapped() {
        // 64 GiB of f32 that the header honestly declares, as `truncate -s` leaves it.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.npy");
        let header = npy(1, &dict("<f4", false, "(17179869184,)"), &[]);
        std::fs::write(&p, &header).unwrap();
        let size = header.len() as u64 + (64 << 30);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(size)
            .unwrap();
        let msg = read(&p).unwrap_err().to_string();
        assert_eq!(
            msg,
            format!(
                "{}: {size} bytes, more than the read limit of 4 GiB (set PARITY_MAX_READ_BYTES to raise it)",
                p.display()
            )
        );
    }

    /// The fuzzer's kept inputs (fuzz/corpus/npy) read back as tensors or errors.
    #[test]
    fn fuzz_corpus_replays() {
        for (path, bytes) in crate::formats::test_util::fuzz_corpus("npy") {
            let _ = parse(bytes, &path);
        }
    }
}
