//! The worker end of `--isolate`: `parity __worker --backend B --model M` loads one
//! model on one backend and answers run requests on stdin/stdout until stdin closes.
//! Whatever the engine does to this process (abort, segfault, hang, run out of memory)
//! stays in this process; the parent sees a dead or silent worker and goes on.
//!
//! Test hook: `PARITY_WORKER_FAULT=BACKEND:KIND[,BACKEND:KIND...]` makes the worker of
//! that backend misbehave before every run, the way a broken runtime would: `abort`
//! (SIGABRT), `segv` (SIGSEGV), `hang` (never answers), `oom` (allocates until the
//! memory limit stops it; refused without a limit). Only worker processes read it.

use super::protocol;
use crate::backend::{self, BackendError, LoadOptions};
use crate::error::{Error, Result};
use std::io::Write;
use std::os::fd::FromRawFd;
use std::path::Path;

/// The environment variable of the fault-injection test hook.
pub const FAULT_ENV: &str = "PARITY_WORKER_FAULT";

/// Serves one backend session until the parent closes stdin; returns the exit code.
pub fn serve(backend_name: &str, model: &Path, load: &LoadOptions) -> Result<u8> {
    let mut out = protocol_stdout()?;
    let fault = fault_for(backend_name);
    let Some(backend) = backend::find(backend_name) else {
        let e = BackendError::new(format!("unknown backend `{backend_name}`"));
        protocol::write_failed(&mut out, &e).map_err(pipe_error)?;
        return Ok(2);
    };
    let loaded =
        crate::suite::runner::guarded(|| backend.load(model, load)).and_then(|session| match fault
            .as_deref()
        {
            Some(kind) if !matches!(kind, "abort" | "segv" | "hang" | "oom") => {
                Err(BackendError::new(format!(
                    "{FAULT_ENV}: unknown fault `{kind}` (abort, segv, hang, oom)"
                )))
            }
            _ => Ok(session),
        });
    let mut session = match loaded {
        Ok(s) => s,
        Err(e) => {
            protocol::write_failed(&mut out, &e).map_err(pipe_error)?;
            return Ok(0);
        }
    };
    protocol::write_loaded(&mut out).map_err(pipe_error)?;
    let mut stdin = std::io::stdin().lock();
    while let Some(inputs) = protocol::read_run(&mut stdin).map_err(pipe_error)? {
        if let Some(kind) = &fault {
            inject(kind);
        }
        match crate::suite::runner::run_guarded(session.as_mut(), &inputs) {
            Ok(outputs) => protocol::write_outputs(&mut out, &outputs),
            Err(e) => protocol::write_failed(&mut out, &e),
        }
        .map_err(pipe_error)?;
    }
    Ok(0)
}

/// The protocol's output: the original stdout, moved to a new descriptor, while fd 1
/// becomes a copy of stderr so that anything an engine prints cannot corrupt a frame.
fn protocol_stdout() -> Result<std::io::BufWriter<std::fs::File>> {
    std::io::stdout().flush().map_err(pipe_error)?;
    // SAFETY: dup/dup2 on the process's own standard descriptors; the new descriptor
    // is owned by the File created from it and by nothing else.
    let fd = unsafe {
        let fd = libc::dup(1);
        if fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(pipe_error(std::io::Error::last_os_error()));
        }
        fd
    };
    // SAFETY: `fd` is a fresh descriptor returned by dup above.
    Ok(std::io::BufWriter::new(unsafe {
        std::fs::File::from_raw_fd(fd)
    }))
}

/// The fault `PARITY_WORKER_FAULT` asks of this backend's worker, if any.
fn fault_for(backend: &str) -> Option<String> {
    let spec = std::env::var(FAULT_ENV).ok()?;
    spec.split(',').find_map(|entry| {
        let (b, kind) = entry.trim().split_once(':')?;
        (b == backend).then(|| kind.to_string())
    })
}

/// Misbehaves as `kind` says; returns only for a fault that cannot be honoured safely.
fn inject(kind: &str) {
    match kind {
        "abort" => std::process::abort(),
        // SAFETY: restores the default action (Rust's stack-overflow handler would
        // swallow a raised SIGSEGV), then raises it at ourselves: the process ends.
        "segv" => unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        },
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        "oom" if has_memory_limit() => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                // Non-zero fill so the pages are really touched.
                hoard.push(vec![1u8; 64 << 20]);
            }
        }
        _ => {}
    }
}

/// Whether RLIMIT_AS bounds this process (the `oom` fault would otherwise eat the host).
fn has_memory_limit() -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } == 0;
    ok && lim.rlim_cur != libc::RLIM_INFINITY
}

fn pipe_error(e: std::io::Error) -> Error {
    Error::Usage(format!("worker protocol: {e}"))
}
