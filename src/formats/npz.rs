//! `.npz` archives (what `np.savez` and `np.savez_compressed` write): a zip of `.npy`
//! members, stored or deflated, each parsed by the `.npy` reader as it is inflated, never
//! past what its header declares, all within the read limit. Names lose their `.npy`
//! suffix; tensors come in archive order; a name twice is an error. Errors name the
//! archive and the member.
//! [`encode`] writes what `np.load` reads: stored (uncompressed) members, in the given order.

use super::limit::{max_read_bytes, over_limit};
use super::npy;
use super::open::open_within;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::HashSet;
use std::io::{Read, Seek};
use std::path::Path;

/// Reads every member of an `.npz` archive, in archive order, under the read limit
/// (which counts the bytes the members inflate to, not the archive's size).
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    read_within(path, max_read_bytes()?)
}

/// [`read`] with an explicit limit (`None`: none). Each member is read as its `.npy`
/// header says, never further: neither the zip's declared sizes nor the compressed
/// stream decide how much is inflated.
pub(crate) fn read_within(path: &Path, limit: Option<u64>) -> Result<Vec<(String, Tensor)>> {
    let (file, _) = open_within(path, limit)?;
    read_archive(|| &file, path, limit)
}

/// Decodes the bytes of a whole `.npz` archive under the read limit; `path` names the
/// source in errors. The fuzzer's entry point.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Vec<(String, Tensor)>> {
    read_archive(|| std::io::Cursor::new(bytes), path, max_read_bytes()?)
}

/// The archive that `source` reads (called once per pass over it: the zip reader, then
/// the duplicate-name scan).
fn read_archive<R: Read + Seek>(
    source: impl Fn() -> R,
    path: &Path,
    limit: Option<u64>,
) -> Result<Vec<(String, Tensor)>> {
    let fail = |msg: String| Error::file(path, msg);
    let mut zip = zip::ZipArchive::new(source())
        .map_err(|e| fail(format!("not a valid .npz (zip) archive: {e}")))?;
    if zip.has_duplicate_names() {
        let name = duplicate_name(source()).unwrap_or_default();
        return Err(fail(format!(
            "member '{}' appears twice in the archive",
            name.escape_debug()
        )));
    }
    let room = limit.unwrap_or(u64::MAX);
    let mut used = 0u64;
    let mut tensors = Vec::with_capacity(zip.len());
    let mut seen = HashSet::new();
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| fail(format!("member {i}: {e}")))?;
        if member.is_dir() {
            continue;
        }
        let full = member
            .name()
            .map_err(|e| fail(format!("member {i}: {e}")))?
            .into_owned();
        let in_member = |msg: String| fail(format!("member '{}': {msg}", full.escape_debug()));
        let name = full
            .strip_suffix(".npy")
            .ok_or_else(|| in_member("not an .npy file".into()))?
            .to_string();
        if !seen.insert(name.clone()) {
            return Err(in_member("appears twice in the archive".into()));
        }
        let over = |declared: u64| {
            let total = used.saturating_add(declared);
            format!("its .npy header declares {declared} bytes: the archive would inflate to {total} bytes or more, {}", over_limit(room))
        };
        let (tensor, len) = npy::read_stream(&mut member, room - used, over).map_err(in_member)?;
        if len != member.size() {
            return Err(in_member(format!(
                "holds {len} bytes, but its zip entry declares {}",
                member.size()
            )));
        }
        used += len;
        tensors.push((name, tensor));
    }
    Ok(tensors)
}

/// The first name the central directory of an archive lists twice (the zip reader keeps
/// only one entry per name, so it cannot say which).
fn duplicate_name(archive: impl Read + Seek) -> Option<String> {
    let mut entries =
        zip::unstable::read::ZipIterable::try_new(archive, zip::read::Config::default()).ok()?;
    let mut seen = HashSet::new();
    for entry in entries.files().ok()? {
        let name = String::from_utf8_lossy(entry.ok()?.name_raw()).into_owned();
        if !seen.insert(name.clone()) {
            return Some(name);
        }
    }
    None
}

/// Encodes named tensors as an uncompressed `.npz` archive in memory (members `NAME.npy`,
/// in the given order). Errors name the tensor that has no `.npy` form (bf16).
pub fn encode(tensors: &[(String, Tensor)]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    // Zip64 only where a member could pass 4 GiB: plain archives are what numpy writes.
    let large = tensors
        .iter()
        .any(|(_, t)| t.bytes().len() >= (u32::MAX >> 1) as usize);
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(large);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, t) in tensors {
        let header = npy::header_bytes(t).map_err(|e| format!("tensor `{name}`: {e}"))?;
        zip.start_file(format!("{name}.npy"), options)
            .and_then(|()| Ok(zip.write_all(&header)?))
            .and_then(|()| Ok(zip.write_all(t.bytes())?))
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
    }
    let cursor = zip.finish().map_err(|e| e.to_string())?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::test_util::{noise, sample};
    use crate::tensor::DType;
    use std::io::Write;
    use zip::{write::SimpleFileOptions, CompressionMethod};

    fn npy_bytes(t: &Tensor) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        npy::write(&p, t).unwrap();
        std::fs::read(p).unwrap()
    }

    fn zip_of(members: &[(&str, Vec<u8>, CompressionMethod)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes, method) in members {
            let options = SimpleFileOptions::default().compression_method(*method);
            w.start_file(*name, options).unwrap();
            w.write_all(bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn read_bytes(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.npz");
        std::fs::write(&p, bytes).unwrap();
        read(&p)
    }

    fn assert_err(r: Result<Vec<(String, Tensor)>>, problem: &str) {
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("/d.npz: "), "{msg}");
        assert!(msg.contains(problem), "{msg:?} lacks {problem:?}");
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn stored_and_deflated_members_in_archive_order() {
        let b = sample(DType::I64, vec![3, 2]);
        let a = sample(DType::F16, vec![]);
        let bytes = zip_of(&[
            ("b.npy", npy_bytes(&b), CompressionMethod::Stored),
            ("a.npy", npy_bytes(&a), CompressionMethod::Deflated),
        ]);
        let tensors = read_bytes(&bytes).unwrap();
        let names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
        for ((_, got), want) in tensors.iter().zip([&b, &a]) {
            assert_eq!(
                (got.dtype(), got.shape(), got.bytes()),
                (want.dtype(), want.shape(), want.bytes())
            );
        }
        assert!(read_bytes(&zip_of(&[])).unwrap().is_empty());
    }

    #[test]
    fn encoded_archives_read_back_in_order() {
        let tensors = vec![
            ("z".to_string(), sample(DType::F32, vec![2, 3])),
            ("a".to_string(), sample(DType::Bool, vec![4])),
            ("s".to_string(), sample(DType::I64, vec![])),
        ];
        let back = read_bytes(&encode(&tensors).unwrap()).unwrap();
        assert_eq!(back.len(), 3);
        for ((name, want), (got_name, got)) in tensors.iter().zip(&back) {
            assert_eq!(name, got_name);
            assert_eq!(
                (got.dtype(), got.shape(), got.bytes()),
                (want.dtype(), want.shape(), want.bytes())
            );
        }
        let bf16 = vec![("h".to_string(), sample(DType::BF16, vec![2]))];
        let err = encode(&bf16).unwrap_err();
        assert!(
            err.starts_with("tensor `h`: bf16 has no .npy dtype"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_archive_and_member() {
        let good = npy_bytes(&sample(DType::U8, vec![4]));
        let stored = CompressionMethod::Stored;
        assert_err(
            read_bytes(&zip_of(&[("x.txt", good.clone(), stored)])),
            "member 'x.txt': not an .npy file",
        );
        let short = good[..good.len() - 1].to_vec();
        assert_err(
            read_bytes(&zip_of(&[("y.npy", short, stored)])),
            "member 'y.npy': truncated: shape (4,) of u8",
        );
        assert_err(
            read_bytes(b"not a zip at all"),
            "not a valid .npz (zip) archive",
        );
        let err = read(Path::new("/nonexistent/d.npz"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "/nonexistent/d.npz: no such file or directory");
    }

    /// `.npy` bytes whose header declares `shape` of u8 but whose data is `data_len` zeros.
    fn npy_claiming(shape: usize, data_len: usize) -> Vec<u8> {
        let mut bytes = npy_bytes(&sample(DType::U8, vec![shape]));
        bytes.truncate(bytes.len() - shape);
        bytes.resize(bytes.len() + data_len, 0);
        bytes
    }

    /// Sets the uncompressed size that the local and central headers of every member
    /// declare to `size` (a zip that lies about its sizes).
    fn declare_size(mut zip: Vec<u8>, size: u32) -> Vec<u8> {
        for (magic, at) in [(b"PK\x03\x04", 22), (b"PK\x01\x02", 24)] {
            let starts: Vec<usize> = zip
                .windows(4)
                .enumerate()
                .filter(|(_, w)| w == magic)
                .map(|(i, _)| i)
                .collect();
            for i in starts {
                zip[i + at..i + at + 4].copy_from_slice(&size.to_le_bytes());
            }
        }
        zip
    }

    #[test]
    fn a_member_is_never_inflated_past_its_npy_header() {
        // The header says 4 bytes; the member inflates to 32 MiB of zeros.
        let header_len = npy_claiming(4, 0).len();
        let bomb = npy_claiming(4, 32 << 20);
        let zip = zip_of(&[("x.npy", bomb, CompressionMethod::Deflated)]);
        assert!(zip.len() < 100_000, "{}", zip.len());
        let lie = "member 'x.npy': holds more data than its .npy header declares (shape (4,) of u8 needs 4 bytes)";
        assert_err(read_bytes(&zip), lie);
        // A zip that declares the same small size stops there too (the zip reader's check).
        assert_err(
            read_bytes(&declare_size(zip, (header_len + 4) as u32)),
            "member 'x.npy': file is larger than its declared uncompressed size",
        );
    }

    #[test]
    fn members_are_refused_by_what_their_headers_declare_before_inflating() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.npz");
        // Two honest members of 1000 and 3000 bytes (plus headers) under a 2000-byte limit.
        let a = npy_claiming(1000, 1000);
        let b = npy_claiming(3000, 3000);
        let (la, lb) = (a.len() as u64, b.len() as u64);
        let deflated = CompressionMethod::Deflated;
        std::fs::write(
            &p,
            zip_of(&[("a.npy", a, deflated), ("b.npy", b, deflated)]),
        )
        .unwrap();
        let err = read_within(&p, Some(2000)).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: member 'b.npy': its .npy header declares {lb} bytes: the archive would inflate to {} bytes or more, more than the read limit of 2000 bytes (set PARITY_MAX_READ_BYTES to raise it)",
                p.display(),
                la + lb
            )
        );
        assert_eq!(read_within(&p, Some(la + lb)).unwrap().len(), 2);
        assert_eq!(read_within(&p, None).unwrap().len(), 2);
        // A header alone over the room left is refused before its text is read.
        let over = |total: u64| format!("declares {total}");
        let member = npy_claiming(1000, 1000);
        let got = npy::read_stream(&mut member.as_slice(), 20, over).unwrap_err();
        assert_eq!(got, "declares 128");
        let got = npy::read_stream(&mut member.as_slice(), 1127, over).unwrap_err();
        assert_eq!(got, "declares 1128");
        let (t, len) = npy::read_stream(&mut member.as_slice(), 1128, over).unwrap();
        assert_eq!((t.shape(), len), (&[1000][..], 1128));
    }

    #[test]
    fn duplicate_member_names_are_refused_by_name() {
        let stored = CompressionMethod::Stored;
        let one = npy_bytes(&sample(DType::U8, vec![2]));
        let two = npy_bytes(&sample(DType::U8, vec![3]));
        let mut zip = zip_of(&[("a.npy", one, stored), ("b.npy", two, stored)]);
        let at: Vec<usize> = zip
            .windows(5)
            .enumerate()
            .filter(|(_, w)| w == b"b.npy")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 2);
        for i in at {
            zip[i..i + 5].copy_from_slice(b"a.npy");
        }
        assert_err(
            read_bytes(&zip),
            "/d.npz: member 'a.npy' appears twice in the archive",
        );
    }

    #[test]
    fn a_fifo_or_device_is_refused_before_opening() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.npz");
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        assert_err(
            read(&p),
            "not a regular file (a character device, through a symlink to /dev/zero)",
        );
    }

    #[test]
    fn truncated_and_garbage_archives_are_errors_not_panics() {
        let good = zip_of(&[
            (
                "a.npy",
                npy_bytes(&sample(DType::F32, vec![8])),
                CompressionMethod::Deflated,
            ),
            (
                "b.npy",
                npy_bytes(&sample(DType::Bool, vec![3])),
                CompressionMethod::Stored,
            ),
        ]);
        for len in (0..good.len()).step_by(7) {
            assert!(read_bytes(&good[..len]).is_err(), "prefix of {len}");
        }
        for bytes in noise(&good, 300) {
            if let Err(e) = read_bytes(&bytes) {
                assert!(!e.to_string().contains('\n'));
            }
        }
    }

    /// The fuzzer's kept inputs (fuzz/corpus/npz) read back as tensors or errors, and
    /// what reads back is written and read again unchanged.
    #[test]
    fn fuzz_corpus_replays() {
        let mut read = 0;
        for (path, bytes) in crate::formats::test_util::fuzz_corpus("npz") {
            let Ok(tensors) = parse(&bytes, &path) else {
                continue;
            };
            read += 1;
            let back = parse(&encode(&tensors).unwrap(), &path).unwrap();
            assert_eq!(back.len(), tensors.len(), "{}", path.display());
            for ((n1, t1), (n2, t2)) in tensors.iter().zip(&back) {
                assert_eq!((n1, t1.dtype(), t1.shape()), (n2, t2.dtype(), t2.shape()));
                assert_eq!(t1.bytes(), t2.bytes(), "{}", path.display());
            }
        }
        assert!(read > 0, "no corpus input is a valid .npz");
    }
}
