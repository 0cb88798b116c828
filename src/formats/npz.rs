//! `.npz` archives (what `np.savez` and `np.savez_compressed` write): a zip of `.npy`
//! members, stored or deflated, each parsed by the `.npy` reader. Names lose their
//! `.npy` suffix; tensors come in archive order. Errors name the archive and the member.
//! [`encode`] writes what `np.load` reads: stored (uncompressed) members, in the given order.

use super::{io_problem, npy};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

/// Reads every member of an `.npz` archive, in archive order.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let fail = |msg: String| Error::file(path, msg);
    let file = std::fs::File::open(path).map_err(|e| fail(io_problem(&e)))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| fail(format!("not a valid .npz (zip) archive: {e}")))?;
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
        // The declared size only bounds the read; the allocation grows with real data.
        let declared = member.size();
        let mut bytes = Vec::with_capacity(declared.min(64 << 20) as usize);
        member
            .by_ref()
            .take(declared.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| in_member(io_problem(&e)))?;
        if bytes.len() as u64 != declared {
            return Err(in_member(format!(
                "holds {} bytes or more, but its zip entry declares {declared}",
                bytes.len()
            )));
        }
        tensors.push((name, npy::decode(bytes).map_err(in_member)?));
    }
    Ok(tensors)
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
}
