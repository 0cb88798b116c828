//! Opening the files a user names, for reading. Only regular files are read (after
//! following symlinks): a FIFO would block `open` and then the read, a device such as
//! `/dev/zero` never ends, a directory is not data. The type and size come from metadata
//! before the file is opened, the open does not block (`O_NONBLOCK`), and the opened file
//! is checked again, so a file swapped in between is refused too. Sizes over the read
//! limit ([`super::limit`]) are refused before anything is allocated or mapped.

use super::io_problem;
use super::limit::{max_read_bytes, too_large};
use crate::error::{Error, Result};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

/// Opens `path` for reading under the read limit in force: the file and its size.
pub fn open(path: &Path) -> Result<(File, u64)> {
    open_within(path, max_read_bytes()?)
}

/// [`open`] with an explicit limit (`None`: none).
pub(crate) fn open_within(path: &Path, limit: Option<u64>) -> Result<(File, u64)> {
    let problem = |e: std::io::Error| Error::file(path, io_problem(&e));
    check(path, &std::fs::metadata(path).map_err(problem)?, limit)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(problem)?;
    let meta = file.metadata().map_err(problem)?;
    check(path, &meta, limit)?;
    Ok((file, meta.len()))
}

/// Refuses what is not a regular file, or is larger than `limit`.
fn check(path: &Path, meta: &Metadata, limit: Option<u64>) -> Result<()> {
    require_regular(path, meta)?;
    match limit {
        Some(limit) if meta.len() > limit => Err(Error::file(path, too_large(meta.len(), limit))),
        _ => Ok(()),
    }
}

/// Refuses a path whose metadata is not a regular file's (a directory, FIFO, device,
/// socket), naming the kind and any symlink: one wording for every file parity needs.
pub fn require_regular(path: &Path, meta: &Metadata) -> Result<()> {
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "an unknown kind of file"
        };
        let via = match std::fs::read_link(path) {
            Ok(target) => format!(", through a symlink to {}", target.display()),
            Err(_) => String::new(),
        };
        return Err(Error::file(
            path,
            format!("not a regular file ({what}{via})"),
        ));
    }
    Ok(())
}

/// Reads a whole file, naming it in errors: a regular file within the read limit.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    read_within(path, max_read_bytes()?)
}

/// [`read_file`] with an explicit limit.
pub(crate) fn read_within(path: &Path, limit: Option<u64>) -> Result<Vec<u8>> {
    let (file, len) = open_within(path, limit)?;
    // A file that grows while it is read is still stopped at the limit.
    let stop = limit.unwrap_or(u64::MAX);
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(stop.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::file(path, io_problem(&e)))?;
    if bytes.len() as u64 > stop {
        return Err(Error::file(path, too_large(bytes.len() as u64, stop)));
    }
    Ok(bytes)
}

/// Reads a whole text file (a manifest, a report, a table), like [`read_file`].
pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_file(path)?).map_err(|_| Error::file(path, "not UTF-8 text"))
}

/// A file's bytes: read into memory when small, memory-mapped when large.
pub(crate) enum Contents {
    Owned(Vec<u8>),
    Mapped(Arc<memmap2::Mmap>),
}

impl std::ops::Deref for Contents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Contents::Owned(v) => v,
            Contents::Mapped(m) => m,
        }
    }
}

/// Reads `path`, or maps it when it has at least `mmap_from` bytes; the read limit holds
/// for a mapped file too (comparing it pages all of it in).
pub(crate) fn load(path: &Path, mmap_from: u64) -> Result<Contents> {
    load_within(path, mmap_from, max_read_bytes()?)
}

/// [`load`] with an explicit limit.
pub(crate) fn load_within(path: &Path, mmap_from: u64, limit: Option<u64>) -> Result<Contents> {
    let (file, len) = open_within(path, limit)?;
    if len < mmap_from {
        return read_within(path, limit).map(Contents::Owned);
    }
    // SAFETY: the map is read-only. Like every reader of memory-mapped files, parity
    // assumes the file is not truncated or rewritten while it is being compared.
    let map =
        unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::file(path, io_problem(&e)))?;
    Ok(Contents::Mapped(Arc::new(map)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn message(r: Result<impl Sized>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn devices_and_symlinks_to_them_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let zero = dir.path().join("input_0.pb");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let started = Instant::now();
        assert_eq!(
            message(read_file(&zero)),
            format!(
                "{}: not a regular file (a character device, through a symlink to /dev/zero)",
                zero.display()
            )
        );
        assert_eq!(
            message(read_file(Path::new("/dev/urandom"))),
            "/dev/urandom: not a regular file (a character device)"
        );
        assert!(message(load(&zero, 0))
            .ends_with("(a character device, through a symlink to /dev/zero)"));
        assert!(message(read_text(&zero)).contains("not a regular file"));
        assert_eq!(
            message(read_file(dir.path())),
            format!("{}: not a regular file (a directory)", dir.path().display())
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("input_0.pb");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // No writer ever opens it: a blocking open or read would hang this test.
        let (tx, rx) = std::sync::mpsc::channel();
        let p = fifo.clone();
        std::thread::spawn(move || tx.send(message(read_file(&p))));
        let msg = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reading a FIFO hung");
        assert_eq!(
            msg,
            format!("{}: not a regular file (a FIFO)", fifo.display())
        );
    }

    #[test]
    fn sizes_over_the_limit_are_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = dir.path().join("big.npy");
        File::create(&sparse).unwrap().set_len(64 << 30).unwrap();
        let refusal = format!(
            "{}: 68719476736 bytes, more than the read limit of 4 GiB (set PARITY_MAX_READ_BYTES to raise it)",
            sparse.display()
        );
        let limit = Some(crate::formats::limit::DEFAULT_MAX_READ_BYTES);
        assert_eq!(message(read_within(&sparse, limit)), refusal);
        assert_eq!(message(load_within(&sparse, 0, limit)), refusal);
        assert_eq!(message(open_within(&sparse, limit)), refusal);

        let small = dir.path().join("small.json");
        std::fs::write(&small, b"12345").unwrap();
        assert_eq!(read_within(&small, Some(5)).unwrap(), b"12345");
        assert!(message(read_within(&small, Some(4))).ends_with(
            "5 bytes, more than the read limit of 4 bytes (set PARITY_MAX_READ_BYTES to raise it)"
        ));
        assert_eq!(read_within(&small, None).unwrap(), b"12345");
        assert_eq!(&*load_within(&small, 0, Some(5)).unwrap(), b"12345");
        assert_eq!(&*load_within(&small, 1 << 20, Some(5)).unwrap(), b"12345");
    }
}
