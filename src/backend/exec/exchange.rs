//! The private directory where parity and an `exec:` runner exchange tensors: created
//! as `$TMPDIR/parity-exec-PID-XXXX`, removed with the session, and swept at the next
//! load when the process that made it died without removing it (killed by a signal or
//! by `--isolate`'s timeout). parity never opens anything there that could block: the
//! inputs file is created anew (never opened over what a runner left), and the outputs
//! file is read only when it is a regular file (a FIFO would block the open forever).

use std::io::Write;
use std::path::{Path, PathBuf};

/// What every exchange directory's name starts with, before the owner's process id.
const PREFIX: &str = "parity-exec-";

/// The exchange directory of one session; removed when dropped.
pub struct Exchange {
    dir: tempfile::TempDir,
}

impl Exchange {
    /// Sweeps the directories of dead parity processes from the temporary directory,
    /// then creates this process's.
    pub fn create() -> Result<Exchange, String> {
        let tmp = std::env::temp_dir();
        sweep(&tmp);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{PREFIX}{}-", std::process::id()))
            .tempdir_in(&tmp)
            .map_err(|e| {
                format!(
                    "cannot create a temporary directory in {}: {e}",
                    tmp.display()
                )
            })?;
        Ok(Exchange { dir })
    }

    /// Where parity writes a case's inputs.
    pub fn inputs(&self) -> PathBuf {
        self.dir.path().join("inputs.npz")
    }

    /// Where the runner writes a case's outputs.
    pub fn outputs(&self) -> PathBuf {
        self.dir.path().join("outputs.npz")
    }

    /// Writes the inputs file: whatever is at its path (a FIFO or a symlink a runner
    /// left there) is removed first and the file is created new, so the write never
    /// blocks and never lands outside the directory.
    pub fn write_inputs(&self, bytes: &[u8]) -> Result<(), String> {
        let path = self.inputs();
        let fail = |e: std::io::Error| format!("{}: {e}", path.display());
        remove_if_present(&path)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(fail)?;
        file.write_all(bytes).map_err(fail)
    }

    /// Removes the outputs file of the last case, so that `ok` without a new one is
    /// noticed rather than read stale.
    pub fn clear_outputs(&self) -> Result<(), String> {
        remove_if_present(&self.outputs())
    }

    /// Checks that the runner's outputs file is there and is a regular file (following
    /// a symlink), before anything opens it: opening a FIFO would wait for a writer
    /// forever, and a device (`/dev/zero`) never ends.
    pub fn check_outputs(&self) -> Result<PathBuf, String> {
        let path = self.outputs();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(path),
            Ok(m) => Err(format!(
                "the runner's outputs file {} is {}, not a regular file",
                path.display(),
                kind_of(&m.file_type())
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err("the runner answered `ok` to `run` but wrote no outputs file".into())
            }
            Err(e) => Err(format!("the runner's outputs file {}: {e}", path.display())),
        }
    }
}

/// Removes `path` if something is there (a file, FIFO or symlink; never followed).
fn remove_if_present(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("{}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// What a file that is not a regular file is, in words.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// Removes the exchange directories in `tmp` whose owner process is gone. Best effort:
/// a directory that cannot be removed (another user's) is left alone.
fn sweep(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = owner(&name.to_string_lossy()) else {
            continue;
        };
        if pid != std::process::id() && !alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The process id in an exchange directory's name (`parity-exec-PID-XXXX`).
fn owner(name: &str) -> Option<u32> {
    let (pid, _) = name.strip_prefix(PREFIX)?.split_once('-')?;
    pid.parse().ok()
}

/// Whether a process with this id exists (a reused id counts as alive: its directory
/// stays, which is harmless).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
    let status = unsafe { libc::kill(pid, 0) };
    status == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Elsewhere no directory is taken for dead.
#[cfg(not(unix))]
fn alive(_: u32) -> bool {
    true
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_owner() {
        assert_eq!(owner("parity-exec-123-abC9"), Some(123));
        assert_eq!(owner("parity-exec-abc"), None);
        assert_eq!(owner("parity-exec-"), None);
        assert_eq!(owner("other-123-x"), None);
    }

    #[test]
    fn dead_owners_are_swept_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A process that has exited and been reaped: its id names no process.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let gone = tmp.path().join(format!("parity-exec-{dead}-x1"));
        let mine = tmp
            .path()
            .join(format!("parity-exec-{}-x2", std::process::id()));
        let other = tmp.path().join(format!("parity-other-{dead}-x3"));
        for d in [&gone, &mine, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("inputs.npz"), b"x").unwrap();
        }
        sweep(tmp.path());
        assert!(!gone.exists());
        assert!(mine.exists() && other.exists());
    }

    #[test]
    fn a_fifo_is_refused_without_opening_it_and_replaced_when_writing() {
        let ex = Exchange::create().unwrap();
        for path in [ex.outputs(), ex.inputs()] {
            let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
            // SAFETY: a valid C string; creates a FIFO.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }
        let e = ex.check_outputs().unwrap_err();
        assert!(
            e.ends_with("outputs.npz is a FIFO, not a regular file"),
            "{e}"
        );
        ex.write_inputs(b"abc").unwrap();
        assert_eq!(std::fs::read(ex.inputs()).unwrap(), b"abc");
        ex.clear_outputs().unwrap();
        assert_eq!(
            ex.check_outputs().unwrap_err(),
            "the runner answered `ok` to `run` but wrote no outputs file"
        );
    }
}
