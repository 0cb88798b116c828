//! Where `record` (and `fuzz --save`) builds a suite before it exists: a hidden
//! directory next to the destination, moved into place only when complete, so that
//! whatever happens — an error, Ctrl-C, `kill -9`, a power cut after the sync — the
//! destination holds the old suite or the new one, never a mix.
//!
//! - A new suite is one `rename(2)` (which also replaces an empty directory).
//! - Replacing a suite (`--force`) is one atomic exchange of the two directories
//!   (`renameat2(RENAME_EXCHANGE)`, Linux ≥ 3.15 on the common file systems); the old
//!   suite, now under the hidden name, is deleted afterwards. Where the exchange is
//!   unsupported, two renames (old aside, new in) with a recovery step: the next record
//!   into the same parent puts back an old suite that a killed run left aside.
//! - Hidden names carry the process id and a host tag
//!   (`.NAME.parity-record-PID-HOST-NANOS`, `.NAME.parity-old-…`), and every record first
//!   sweeps its destination's parent of the ones left by processes that have ended.
//!
//! Details and the kill test's figures: docs/crash-safety.md.

use super::manifest::MANIFEST_FILE;
use super::MODEL_FILE;
use crate::error::{Error, Result};
use crate::formats::{self, atomic};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Tag of the directory a suite is built in.
const BUILD_TAG: &str = "parity-record";
/// Tag of an old suite moved aside by the two-rename fallback.
const OLD_TAG: &str = "parity-old";
/// Set (to anything but `0`) to replace suites by two renames even where the atomic
/// exchange works: for tests of the fallback and its recovery, and for a file system
/// whose exchange misbehaves.
const NO_EXCHANGE_ENV: &str = "PARITY_NO_RENAME_EXCHANGE";

/// Readies `out` for a record: first repairs and sweeps what killed records left next to
/// it (see the module comment), then refuses a destination that must not be replaced
/// ([`check_destination`]).
pub fn prepare_destination(out: &Path, force: bool) -> Result<()> {
    sweep(&parent_dir(out));
    check_destination(out, force)
}

/// Refuses a destination that `record` must not replace: anything but a directory; a
/// non-empty directory without `force`; with `force`, a directory that is not a suite
/// (no `model.onnx`, no `parity.toml`), so a mistyped `--out` never deletes unrelated files.
pub fn check_destination(out: &Path, force: bool) -> Result<()> {
    if out.file_name().is_none() {
        return Err(Error::file(
            out,
            "--out must name a directory to create (not `.`, `..` or `/`)",
        ));
    }
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Err(Error::file(
            out,
            "exists and is not a directory (parity record writes a suite directory and follows no symlink)",
        ));
    }
    let empty = std::fs::read_dir(out)
        .map_err(|e| Error::file(out, formats::io_problem(&e)))?
        .next()
        .is_none();
    if empty {
        return Ok(());
    }
    if !force {
        return Err(Error::file(out, "exists; use --force to replace it"));
    }
    if !out.join(MODEL_FILE).exists() && !out.join(MANIFEST_FILE).exists() {
        return Err(Error::file(
            out,
            "exists and is not a suite (no model.onnx or parity.toml); refusing to replace it, even with --force",
        ));
    }
    Ok(())
}

/// The hidden directory a suite is built in, next to its destination; removed on drop
/// unless committed.
pub struct Staging {
    path: PathBuf,
    committed: bool,
}

impl Staging {
    /// Creates the staging directory of `out` (and `out`'s parent when missing). Refused
    /// once a stop signal arrived: nothing is started after Ctrl-C.
    pub fn create(out: &Path) -> Result<Staging> {
        stop_if_interrupted(out)?;
        let parent = parent_dir(out);
        std::fs::create_dir_all(&parent)
            .map_err(|e| Error::file(&parent, formats::io_problem(&e)))?;
        let path = hidden(out, BUILD_TAG);
        // `create_dir` (not a tempdir) so the suite gets the umask's mode, not 0700.
        std::fs::create_dir(&path).map_err(|e| Error::file(&path, formats::io_problem(&e)))?;
        Ok(Staging {
            path,
            committed: false,
        })
    }

    /// Where to write the suite's files.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished suite into place; returns warnings (an old suite that could not
    /// be deleted). Refused, leaving `out` as it was, once a stop signal arrived.
    pub fn commit(mut self, out: &Path, force: bool) -> Result<Vec<String>> {
        sync_dir(&self.path);
        stop_if_interrupted(out)?;
        // Decided again now: the destination may have appeared while recording.
        check_destination(out, force)?;
        let warnings = move_into_place(&self.path, out, exchange_wanted())?;
        self.committed = true;
        sync_dir(&parent_dir(out));
        Ok(warnings)
    }
}

/// Puts the complete suite at `staging` in place of `out` (see the module comment);
/// returns warnings. On error `out` is as it was and `staging` still holds the new suite.
fn move_into_place(staging: &Path, out: &Path, try_exchange: bool) -> Result<Vec<String>> {
    let rename = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|e| Error::Write {
            path: to.to_path_buf(),
            source: e,
        })
    };
    let mut warnings = Vec::new();
    let occupied = std::fs::symlink_metadata(out).is_ok() && !dir_is_empty(out);
    if !occupied {
        // rename(2) replaces an empty directory in one step.
        rename(staging, out)?;
    } else if try_exchange && exchange(staging, out).is_ok() {
        // The hidden name now holds the old suite.
        if let Err(e) = std::fs::remove_dir_all(staging) {
            warnings.push(replaced_not_deleted(staging, &e));
        }
    } else {
        let aside = hidden(out, OLD_TAG);
        rename(out, &aside)?;
        sync_dir(&parent_dir(out));
        if let Err(e) = rename(staging, out) {
            // Put the old suite back; the new one is dropped with the staging dir.
            let _ = std::fs::rename(&aside, out);
            return Err(e);
        }
        if let Err(e) = std::fs::remove_dir_all(&aside) {
            warnings.push(replaced_not_deleted(&aside, &e));
        }
    }
    Ok(warnings)
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The error that stops a record once Ctrl-C or SIGTERM arrived.
fn stop_if_interrupted(out: &Path) -> Result<()> {
    match crate::interrupt::pending() {
        Some(signal) => Err(Error::file(
            out,
            format!("not written: interrupted by {signal}"),
        )),
        None => Ok(()),
    }
}

fn replaced_not_deleted(path: &Path, e: &std::io::Error) -> String {
    format!(
        "{}: the replaced suite could not be deleted: {}",
        path.display(),
        formats::io_problem(e)
    )
}

/// Whether to try the atomic exchange (see [`NO_EXCHANGE_ENV`]).
fn exchange_wanted() -> bool {
    std::env::var_os(NO_EXCHANGE_ENV).is_none_or(|v| v == "0")
}

/// Swaps two existing directories in one step. Any error (`EINVAL` from a file system
/// without the operation, `ENOSYS` from an old kernel) leaves both in place.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths that outlive the call; the raw syscall avoids
    // needing glibc ≥ 2.28 for the `renameat2` wrapper.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match rc {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// No exchange outside Linux: the two-rename fallback is used.
#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Removes what records killed in `parent` left there: their staging directories, and
/// old suites moved aside by the two-rename fallback (put back when their suite is
/// missing, deleted when the new one is in place). Only entries of processes of this
/// host that have ended are touched; failures are ignored (the next record tries again).
fn sweep(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some((name, tag, rest)) = file_name.to_str().and_then(parse_hidden) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) || !atomic::left_by_dead_process(rest) {
            continue;
        }
        let path = entry.path();
        let suite = parent.join(name);
        if tag == OLD_TAG && std::fs::symlink_metadata(&suite).is_err() {
            // Killed between its two renames: the old suite is the one to keep.
            if std::fs::rename(&path, &suite).is_ok() {
                eprintln!(
                    "note: {}: restored the suite an interrupted `parity record --force` had moved aside",
                    suite.display()
                );
                sync_dir(parent);
                continue;
            }
        }
        let _ = std::fs::remove_dir_all(&path);
    }
}

/// Splits a hidden name `.NAME.TAG-REST` into (NAME, TAG, REST) for the two tags.
fn parse_hidden(file_name: &str) -> Option<(&str, &'static str, &str)> {
    let body = file_name.strip_prefix('.')?;
    [BUILD_TAG, OLD_TAG].into_iter().find_map(|tag| {
        let marker = format!(".{tag}-");
        let at = body.rfind(&marker)?;
        let name = &body[..at];
        (!name.is_empty()).then(|| (name, tag, &body[at + marker.len()..]))
    })
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A hidden, unique name next to `out`: `.NAME.TAG-PID-HOST-NANOS`.
fn hidden(out: &Path, tag: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    parent_dir(out).join(format!(".{name}.{tag}-{}-{nanos}", atomic::owner_tag()))
}

fn dir_is_empty(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

/// Flushes a directory's entries to disk (best effort: not every platform allows it).
fn sync_dir(p: &Path) {
    if let Ok(f) = std::fs::File::open(p) {
        let _ = f.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_that_must_not_be_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(check_destination(&file, true)
            .unwrap_err()
            .to_string()
            .contains("not a directory"));
        let other = dir.path().join("home");
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("notes.txt"), b"x").unwrap();
        assert!(check_destination(&other, false)
            .unwrap_err()
            .to_string()
            .contains("--force"));
        assert!(check_destination(&other, true)
            .unwrap_err()
            .to_string()
            .contains("not a suite"));
        std::fs::write(other.join(MODEL_FILE), b"x").unwrap();
        check_destination(&other, true).unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        check_destination(&empty, false).unwrap();
        check_destination(&dir.path().join("new"), false).unwrap();
        assert!(check_destination(Path::new("/"), true).is_err());
    }

    #[test]
    fn an_abandoned_staging_directory_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/suite");
        let staging = Staging::create(&out).unwrap();
        let path = staging.path().to_path_buf();
        assert!(path.is_dir());
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with(".suite.parity-record-"), "{name}");
        assert_eq!(
            parse_hidden(&name),
            Some(("suite", BUILD_TAG, &name[".suite.parity-record-".len()..]))
        );
        drop(staging);
        assert!(!path.exists());
        assert!(!out.exists());
    }

    /// A suite directory holding `model.onnx` with these bytes.
    fn suite(dir: &Path, model: &[u8]) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(MODEL_FILE), model).unwrap();
    }

    #[test]
    fn a_forced_commit_replaces_the_old_suite_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("suite");
        suite(&out, b"old");
        let staging = Staging::create(&out).unwrap();
        std::fs::write(staging.path().join(MODEL_FILE), b"new").unwrap();
        assert!(staging.commit(&out, true).unwrap().is_empty());
        assert_eq!(std::fs::read(out.join(MODEL_FILE)).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Without force the existing suite stays and the new one is dropped.
        let staging = Staging::create(&out).unwrap();
        std::fs::write(staging.path().join(MODEL_FILE), b"newer").unwrap();
        assert!(staging.commit(&out, false).is_err());
        assert_eq!(std::fs::read(out.join(MODEL_FILE)).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // An empty directory is replaced as if absent.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let staging = Staging::create(&empty).unwrap();
        std::fs::write(staging.path().join(MODEL_FILE), b"new").unwrap();
        staging.commit(&empty, false).unwrap();
        assert_eq!(std::fs::read(empty.join(MODEL_FILE)).unwrap(), b"new");
    }

    #[test]
    fn the_two_rename_fallback_replaces_a_suite_too() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("suite");
        suite(&out, b"old");
        let staging = dir.path().join("staging");
        suite(&staging, b"new");
        assert!(move_into_place(&staging, &out, false).unwrap().is_empty());
        assert_eq!(std::fs::read(out.join(MODEL_FILE)).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn exchange_swaps_two_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        suite(&a, b"a");
        suite(&b, b"b");
        exchange(&a, &b).unwrap();
        assert_eq!(std::fs::read(a.join(MODEL_FILE)).unwrap(), b"b");
        assert_eq!(std::fs::read(b.join(MODEL_FILE)).unwrap(), b"a");
        // A missing side is an error that changes nothing.
        assert!(exchange(&a, &dir.path().join("missing")).is_err());
        assert_eq!(std::fs::read(a.join(MODEL_FILE)).unwrap(), b"b");
    }

    /// The id of a process that has ended (a child reaped here).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    /// The hidden name a process `pid` of this host would have used.
    fn left_by(out: &Path, tag: &str, pid: u32) -> PathBuf {
        let live = hidden(out, tag);
        let name = live.file_name().unwrap().to_str().unwrap();
        let mine = format!("-{}-", std::process::id());
        out.with_file_name(name.replacen(&mine, &format!("-{pid}-"), 1))
    }

    #[test]
    fn what_dead_records_left_is_swept_or_restored() {
        let dir = tempfile::tempdir().unwrap();
        // A staging dir of a dead record: deleted. One of a live process: kept.
        let out = dir.path().join("a");
        let dead_staging = left_by(&out, BUILD_TAG, dead_pid());
        suite(&dead_staging, b"partial");
        let live_staging = hidden(&out, BUILD_TAG);
        suite(&live_staging, b"mine");
        // Killed between the two renames of the fallback: `b` missing, its old suite
        // aside. Put back.
        let b = dir.path().join("b");
        let b_aside = left_by(&b, OLD_TAG, dead_pid());
        suite(&b_aside, b"old b");
        // Killed after the second rename: `c` is the new suite; the old one aside is
        // deleted.
        let c = dir.path().join("c");
        suite(&c, b"new c");
        let c_aside = left_by(&c, OLD_TAG, dead_pid());
        suite(&c_aside, b"old c");
        prepare_destination(&dir.path().join("d"), false).unwrap();
        assert!(!dead_staging.exists());
        assert!(live_staging.exists());
        assert_eq!(std::fs::read(b.join(MODEL_FILE)).unwrap(), b"old b");
        assert!(!b_aside.exists());
        assert_eq!(std::fs::read(c.join(MODEL_FILE)).unwrap(), b"new c");
        assert!(!c_aside.exists());
    }

    #[test]
    fn hidden_names_parse_back() {
        assert_eq!(
            parse_hidden(".my.suite.parity-old-12-abcd0123-99"),
            Some(("my.suite", OLD_TAG, "12-abcd0123-99"))
        );
        assert_eq!(parse_hidden("suite.parity-record-1-2-3"), None);
        assert_eq!(parse_hidden("..parity-record-1-2-3"), None);
        assert_eq!(parse_hidden(".notes"), None);
    }
}
