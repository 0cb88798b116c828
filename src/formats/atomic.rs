//! Atomic file writes: write a temporary file in the target's directory, flush it to
//! disk, then rename it over the target. A crash leaves either the old file or the new.
//! Targets that are not regular files (`/dev/null`, `/dev/stdout`, a FIFO) are written
//! in place: renaming over them would replace the device with a file.
//!
//! The new file gets the mode a plain `create` would give it (0666 less the umask), or,
//! when it replaces a file, that file's permission bits and, where the system allows,
//! its owner and group: a report read by a collector running as another user stays
//! readable. Temporary names carry the writer's process id and host
//! ([`owner_tag`]), so the temporary file a killed writer left behind is removed by the
//! next write into the same directory.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prefix of the temporary files of [`write_atomic`].
const TMP_PREFIX: &str = ".parity-tmp-";

/// Writes `path` atomically with the bytes produced by `fill`.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let existing = std::fs::metadata(path).ok();
    if existing
        .as_ref()
        .is_some_and(|m| !m.is_file() && !m.is_dir())
    {
        return write_in_place(path, fill);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    sweep_once(dir);
    let fail = |e: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let tmp = builder()
        .prefix(&format!("{TMP_PREFIX}{}-", owner_tag()))
        .tempfile_in(dir)
        // tempfile names its own temporary path in the message; the target is what counts.
        .map_err(|e| {
            let message = e.to_string();
            let message = message.split(" at path ").next().unwrap_or(&message);
            fail(std::io::Error::new(e.kind(), message.to_string()))
        })?;
    if let Some(old) = &existing {
        keep_mode_and_owner(tmp.as_file(), old).map_err(fail)?;
    }
    {
        let mut w = std::io::BufWriter::new(tmp.as_file());
        fill(&mut w).map_err(fail)?;
        w.flush().map_err(fail)?;
    }
    tmp.as_file().sync_all().map_err(fail)?;
    // On error the temporary file is removed by its destructor; the target is untouched.
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// A temporary-file builder whose files are created like any other (mode 0666, which
/// the kernel narrows by the umask), not private (tempfile's default 0600).
fn builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(std::fs::Permissions::from_mode(0o666));
    }
    b
}

/// Gives the new file the permission bits of the file it replaces, and its owner and
/// group where this process may (root, or a group it belongs to); a refused `chown`
/// leaves the writer's, as a plain rewrite by another user would.
fn keep_mode_and_owner(file: &std::fs::File, old: &std::fs::Metadata) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let new = file.metadata()?;
        if (new.uid(), new.gid()) != (old.uid(), old.gid())
            && std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid())).is_err()
        {
            let _ = std::os::unix::fs::fchown(file, None, Some(old.gid()));
        }
        // After chown, which may clear set-id bits.
        file.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o7777))?;
    }
    #[cfg(not(unix))]
    file.set_permissions(old.permissions())?;
    Ok(())
}

/// Writes to an existing special file (device, FIFO) without replacing it.
fn write_in_place(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let fail = |e: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        source: e,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(fail)?;
    let mut w = std::io::BufWriter::new(file);
    fill(&mut w).map_err(fail)?;
    w.flush().map_err(fail)
}

/// `PID-HOST`: what hidden temporary names carry so that a later run can tell one left
/// by a process that no longer runs ([`left_by_dead_process`]). HOST is a hash of the
/// host name, so a directory shared between machines (NFS) is swept only of what this
/// machine's dead processes left.
pub fn owner_tag() -> String {
    format!("{}-{}", std::process::id(), host_tag())
}

/// Whether `rest` (the part of a hidden name after its prefix: `PID-HOST-...`, as
/// written by [`owner_tag`]) names a process of this host that has ended. Anything
/// else, a live process or one of another machine, is left alone.
pub fn left_by_dead_process(rest: &str) -> bool {
    let mut parts = rest.splitn(3, '-');
    let (Some(pid), Some(host)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    host == host_tag() && pid != std::process::id() && !process_exists(pid)
}

/// Whether a process with this id exists (a zombie counts; `EPERM` means it does).
fn process_exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        if pid <= 0 {
            return true;
        }
        // SAFETY: kill with signal 0 only checks that the process exists.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Eight hex digits of FNV-1a over the host name (`0` when it cannot be read).
fn host_tag() -> String {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let hash = name.trim().bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        format!("{hash:08x}")
    })
    .clone()
}

/// Removes the temporary files that writers killed mid-write left in `dir`, once per
/// directory and process (a directory of many files is listed once, not per write).
fn sweep_once(dir: &Path) {
    static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let key = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|p| p.into_inner());
        if swept.contains(&key) {
            return;
        }
        swept.push(key);
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
            continue;
        };
        if entry.file_type().is_ok_and(|t| t.is_file()) && left_by_dead_process(rest) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, b"old").unwrap();
        write_atomic(&p, |w| w.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, b"old").unwrap();
        let err = write_atomic(&p, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(err.to_string().contains("disk full"));
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_written_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        write_atomic(Path::new("/dev/null"), |w| w.write_all(b"discarded")).unwrap();
        assert!(std::fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    /// The process's umask, read without changing it (`/proc/self/status`).
    #[cfg(target_os = "linux")]
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        // What a plain create gives, whatever the umask of the machine running the test.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert_eq!(mode(&plain), 0o666 & !umask());
        let new = dir.path().join("new.prom");
        write_atomic(&new, |w| w.write_all(b"new")).unwrap();
        assert_eq!(mode(&new), mode(&plain));
        for kept in [0o644, 0o640, 0o600, 0o664] {
            let old = dir.path().join(format!("old-{kept:o}.prom"));
            std::fs::write(&old, b"old").unwrap();
            std::fs::set_permissions(&old, std::fs::Permissions::from_mode(kept)).unwrap();
            write_atomic(&old, |w| w.write_all(b"new")).unwrap();
            assert_eq!(mode(&old), kept);
            assert_eq!(std::fs::read(&old).unwrap(), b"new");
        }
    }

    /// The id of a process that has ended (a child reaped here).
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn temporaries_of_dead_writers_are_swept_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir
            .path()
            .join(format!("{TMP_PREFIX}{}-{}-abc123", dead_pid(), host_tag()));
        let mine = dir.path().join(format!("{TMP_PREFIX}{}-xyz", owner_tag()));
        let other_host = dir
            .path()
            .join(format!("{TMP_PREFIX}{}-00000000-abc", dead_pid()));
        let unrelated = dir.path().join(".parity-tmp-notes");
        for p in [&dead, &mine, &other_host, &unrelated] {
            std::fs::write(p, b"partial").unwrap();
        }
        write_atomic(&dir.path().join("report.json"), |w| w.write_all(b"{}")).unwrap();
        assert!(!dead.exists());
        for kept in [&mine, &other_host, &unrelated] {
            assert!(kept.exists(), "{}", kept.display());
        }
    }

    #[test]
    fn owner_tags_name_live_and_dead_processes() {
        assert!(!left_by_dead_process(&format!("{}-x", owner_tag())));
        assert!(left_by_dead_process(&format!(
            "{}-{}-1",
            dead_pid(),
            host_tag()
        )));
        assert!(!left_by_dead_process(&format!("1-{}-1", host_tag())));
        assert!(!left_by_dead_process("abc-def"));
        assert!(!left_by_dead_process("12"));
    }
}
