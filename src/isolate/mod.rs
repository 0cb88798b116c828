//! `--isolate`: each backend runs in a child process (parity re-executing itself as
//! `parity __worker`), under a wall-clock timeout per call and an address-space limit
//! (RLIMIT_AS). A segfault, abort, out-of-memory or hang inside a runtime kills only the
//! worker: the call becomes an error naming the signal or the timeout, and the next call
//! starts a fresh worker. See docs/isolation.md.

pub mod protocol;
pub mod worker;

use crate::backend::{
    Availability, Backend, BackendError, IoSpec, Knobs, LoadOptions, Selected, Session,
};
use crate::tensor::Tensor;
use protocol::Reply;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The last lines of a dead worker's stderr quoted in its error (an abort's reason is
/// often one line above the runtime's last words).
const STDERR_LINES: usize = 2;

/// How long a worker whose stdin was closed may take to end by itself.
const END_GRACE: Duration = Duration::from_secs(2);

/// The hidden subcommand a worker runs as.
pub const WORKER_COMMAND: &str = "__worker";

/// Limits of every worker.
#[derive(Debug, Clone)]
pub struct IsolateOptions {
    /// Longest wait for a load or one run before the worker is killed.
    pub timeout: Duration,
    /// RLIMIT_AS of the worker in bytes (address space, not resident memory); `None`
    /// leaves it unlimited. Not applied to CUDA backends (see [`Worker::spawn`]).
    pub memory_limit: Option<u64>,
    /// Passed to the backend inside the worker.
    pub load: LoadOptions,
}

/// Why an isolated call produced no outputs.
#[derive(Debug, Clone)]
pub enum RunFailure {
    /// The engine refused the model or the inputs with an error (it did not crash).
    Engine(BackendError),
    /// The worker died: killed by a signal or exited; the text says which.
    Crashed(String),
    /// No answer within the timeout; the worker was killed.
    TimedOut(Duration),
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunFailure::Engine(e) => f.write_str(&e.message),
            RunFailure::Crashed(how) => write!(f, "crashed: {how}"),
            RunFailure::TimedOut(t) => {
                write!(f, "timed out after {} s (worker killed)", t.as_secs_f64())
            }
        }
    }
}

impl From<RunFailure> for BackendError {
    fn from(f: RunFailure) -> BackendError {
        match f {
            RunFailure::Engine(e) => e,
            other => BackendError::new(other.to_string()),
        }
    }
}

/// A running worker: its pipes, and the threads reading its stdout and stderr.
struct Worker {
    child: Child,
    /// Taken (closed) when the worker is asked to end.
    stdin: Option<ChildStdin>,
    replies: Receiver<std::io::Result<Reply>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
    /// The process group was killed and the worker reaped: its pid may be reused.
    ended: bool,
}

impl Worker {
    fn spawn(backend: &str, model: &Path, options: &IsolateOptions) -> std::io::Result<Worker> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg(WORKER_COMMAND)
            .arg("--backend")
            .arg(backend)
            .arg("--model")
            .arg(model);
        if let Some(level) = &options.load.optimization {
            cmd.arg("--optimization").arg(level);
        }
        if let Some(n) = options.load.threads {
            cmd.arg("--threads").arg(n.to_string());
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // CUDA reserves virtual address space the size of host plus device memory at
        // context creation, which any useful RLIMIT_AS refuses: GPU workers get the
        // timeout only (docs/fuzz.md).
        let limit = options.memory_limit.filter(|_| !backend.ends_with("-cuda"));
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
        // functions (setrlimit, prctl) on plain values.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                if let Some(bytes) = limit {
                    let lim = libc::rlimit {
                        rlim_cur: bytes as libc::rlim_t,
                        rlim_max: bytes as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // A worker never outlives parity, even a hung one when parity is killed.
                #[cfg(target_os = "linux")]
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                // Its own process group, so that killing it also kills what it started
                // (an `exec:` backend's runner) instead of leaving that running.
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("worker pipes missing"));
        };
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            loop {
                let reply = protocol::read_reply(&mut stdout);
                let done = reply.is_err();
                if tx.send(reply).is_err() || done {
                    break;
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = line.trim();
                if !line.is_empty() {
                    if let Ok(mut t) = tail.lock() {
                        t.push_back(line.to_string());
                        if t.len() > STDERR_LINES {
                            t.pop_front();
                        }
                    }
                }
            }
        });
        Ok(Worker {
            child,
            stdin: Some(stdin),
            replies,
            stderr_tail,
            stderr_reader: Some(stderr_reader),
            ended: false,
        })
    }

    /// Waits for the next reply; on death or timeout the worker is reaped and the
    /// failure says how it ended.
    fn reply(&mut self, timeout: Duration) -> Result<Reply, RunFailure> {
        match self.replies.recv_timeout(timeout) {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) | Err(RecvTimeoutError::Disconnected) => Err(self.died()),
            Err(RecvTimeoutError::Timeout) => {
                self.kill_all();
                Err(RunFailure::TimedOut(timeout))
            }
        }
    }

    /// Kills the worker's whole process group (the worker and any runner it started)
    /// and reaps the worker.
    fn kill_all(&mut self) {
        if self.ended {
            return;
        }
        self.kill_group();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.ended = true;
    }

    /// SIGKILL to the process group the worker leads (set up in [`Worker::spawn`]).
    fn kill_group(&self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: sends a signal; the group is the worker's own.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    }

    /// The worker's stdout closed: reap it and describe how it ended.
    fn died(&mut self) -> RunFailure {
        // Whatever the dead worker started is still in its process group.
        self.kill_group();
        let status = self.child.wait();
        self.ended = true;
        if let Some(reader) = self.stderr_reader.take() {
            let _ = reader.join();
        }
        let last = self
            .stderr_tail
            .lock()
            .ok()
            .filter(|t| !t.is_empty())
            .map(|t| Vec::from(t.clone()).join(" | "));
        let mut how = match status {
            Ok(s) => describe_exit(s),
            Err(e) => format!("worker lost: {e}"),
        };
        if let Some(line) = last {
            how += &format!("; its last words: {line}");
        }
        RunFailure::Crashed(how)
    }
}

impl Drop for Worker {
    /// A healthy worker is let go as `parity __worker` expects: stdin closed, so that it
    /// drops its session and cleans up after it (an `exec:` runner's exchange
    /// directory); one still running after [`END_GRACE`] is killed with its group.
    fn drop(&mut self) {
        if !self.ended {
            drop(self.stdin.take());
            let deadline = std::time::Instant::now() + END_GRACE;
            while std::time::Instant::now() < deadline {
                match self.child.try_wait() {
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                    // Reaped: its pid (and group id) may be reused, so nothing is killed.
                    Ok(Some(_)) => self.ended = true,
                    Err(_) => break,
                }
                if self.ended {
                    break;
                }
            }
        }
        self.kill_all();
    }
}

/// `killed by signal 6 (SIGABRT)` or `exited with code 3`.
fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.signal(), status.code()) {
        (Some(sig), _) => format!("worker killed by signal {sig} ({})", signal_name(sig)),
        (None, Some(code)) => format!("worker exited with code {code} without answering"),
        (None, None) => "worker ended without answering".to_string(),
    }
}

/// The conventional name of the signals a crashing runtime dies of.
pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGTRAP => "SIGTRAP",
        _ => "signal",
    }
}

/// A model loaded in a worker process; restarts the worker after a crash or timeout.
pub struct IsolatedSession {
    backend: String,
    model: PathBuf,
    options: IsolateOptions,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    worker: Option<Worker>,
}

impl IsolatedSession {
    /// Starts a worker for `backend` and loads `model` in it.
    pub fn start(
        backend: &str,
        model: &Path,
        options: &IsolateOptions,
    ) -> Result<IsolatedSession, RunFailure> {
        let info = crate::formats::onnx_model::inspect(model)
            .map_err(|e| RunFailure::Engine(BackendError::new(e.to_string())))?;
        let mut session = IsolatedSession {
            backend: backend.to_string(),
            model: model.to_path_buf(),
            options: options.clone(),
            inputs: info.inputs,
            outputs: info.outputs,
            worker: None,
        };
        session.ensure_worker()?;
        Ok(session)
    }

    /// A loaded worker, started (and the model loaded) when there is none.
    fn ensure_worker(&mut self) -> Result<&mut Worker, RunFailure> {
        if self.worker.is_none() {
            let mut worker = Worker::spawn(&self.backend, &self.model, &self.options)
                .map_err(|e| RunFailure::Crashed(format!("cannot start a worker: {e}")))?;
            match worker.reply(self.options.timeout)? {
                Reply::Loaded => self.worker = Some(worker),
                Reply::Failed(e) => return Err(RunFailure::Engine(e)),
                Reply::Outputs(_) => {
                    return Err(RunFailure::Crashed(
                        "worker answered out of turn".to_string(),
                    ))
                }
            }
        }
        self.worker
            .as_mut()
            .ok_or_else(|| RunFailure::Crashed("no worker".to_string()))
    }

    /// Runs one case in the worker.
    pub fn run_isolated(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, RunFailure> {
        let timeout = self.options.timeout;
        let worker = self.ensure_worker()?;
        let written = match worker.stdin.as_mut() {
            Some(stdin) => protocol::write_run(stdin, inputs),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        };
        let reply = match written {
            Ok(()) => worker.reply(timeout),
            // A broken pipe: the worker died before reading the request.
            Err(_) => Err(worker.died()),
        };
        match reply {
            Ok(Reply::Outputs(outputs)) => Ok(outputs),
            Ok(Reply::Failed(e)) => Err(RunFailure::Engine(e)),
            Ok(Reply::Loaded) => {
                self.worker = None;
                Err(RunFailure::Crashed(
                    "worker answered out of turn".to_string(),
                ))
            }
            Err(failure) => {
                self.worker = None;
                Err(failure)
            }
        }
    }
}

impl Session for IsolatedSession {
    fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }
    fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }
    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
        self.run_isolated(inputs).map_err(BackendError::from)
    }
}

/// A backend whose sessions live in worker processes; what `check --isolate` runs, so
/// the suite runner needs no change.
pub struct IsolatedBackend {
    inner: Box<dyn Backend>,
    options: IsolateOptions,
}

impl Backend for IsolatedBackend {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn probe(&self) -> Availability {
        self.inner.probe()
    }
    fn load(&self, model: &Path, load: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        let options = IsolateOptions {
            load: load.clone(),
            ..self.options.clone()
        };
        let session = IsolatedSession::start(self.inner.name(), model, &options)?;
        Ok(Box::new(session))
    }
    fn knobs(&self) -> Knobs {
        self.inner.knobs()
    }
}

/// Wraps every selected backend so that it runs in worker processes.
pub fn isolate(selected: Vec<Selected>, options: &IsolateOptions) -> Vec<Selected> {
    selected
        .into_iter()
        .map(|s| Selected {
            backend: Box::new(IsolatedBackend {
                inner: s.backend,
                options: options.clone(),
            }),
            version: s.version,
            device: s.device,
        })
        .collect()
}

/// `--memory-limit`: bytes of address space, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit(pub Option<u64>);

/// Parses `--memory-limit`: a size in MiB (`4096`) or with a unit (`512M`, `8G`), or
/// `none`.
pub fn parse_memory_limit(s: &str) -> Result<MemoryLimit, String> {
    parse_size(s, 1 << 20).map(MemoryLimit)
}

/// Parses a size (one parser for `--memory-limit`, `fuzz --max-bytes` and the read limit).
pub use crate::formats::limit::parse_size;

/// Parses `--timeout`: seconds, > 0.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("`{s}` is not a number of seconds in (0, 86400]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(
            parse_memory_limit("4096"),
            Ok(MemoryLimit(Some(4096 << 20)))
        );
        assert_eq!(parse_memory_limit("8G"), Ok(MemoryLimit(Some(8 << 30))));
        assert_eq!(parse_memory_limit("512m"), Ok(MemoryLimit(Some(512 << 20))));
        assert_eq!(parse_memory_limit("none"), Ok(MemoryLimit(None)));
        assert_eq!(parse_size("100", 1), Ok(Some(100)));
        assert_eq!(parse_size("2K", 1), Ok(Some(2048)));
        assert!(parse_memory_limit("0").is_err());
        assert!(parse_memory_limit("lots").is_err());
        assert_eq!(parse_timeout("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_timeout("0").is_err());
        assert!(parse_timeout("nan").is_err());
    }

    #[test]
    fn exits_are_named() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_exit(ExitStatus::from_raw(libc::SIGABRT)),
            "worker killed by signal 6 (SIGABRT)"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8)),
            "worker exited with code 3 without answering"
        );
    }
}
