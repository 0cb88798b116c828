//! Ctrl-C and SIGTERM as a request to stop between cases, not in the middle of a write.
//!
//! The handler only records which signal arrived (one atomic store, which is
//! async-signal-safe); it does no work. The verbs that install it (`check`, `bench`,
//! `record`) stop starting new work once [`pending`] says so — their backends are wrapped
//! by [`observe`], which refuses to load or run anything after the signal — then write what
//! they finished marked incomplete, let their staging directories be removed, and exit
//! 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
//!
//! The handler is installed with `SA_RESETHAND`: a second signal has its default effect
//! and ends the process at once. What that leaves behind is what a `kill -9` leaves, and
//! the next run sweeps it (docs/crash-safety.md).

mod backend;

pub use backend::observe;

use std::sync::atomic::{AtomicI32, Ordering};

/// The first stop signal received, 0 before any. Written only by [`on_signal`].
static PENDING: Flag = Flag::new();

/// Where a stop signal is recorded: the process-wide one for real runs, a private one
/// in tests (so a test never disturbs the others running in the same process).
#[derive(Debug)]
pub struct Flag(AtomicI32);

impl Flag {
    /// No signal yet.
    pub const fn new() -> Flag {
        Flag(AtomicI32::new(0))
    }

    /// Records `signal` unless one was recorded before (the first one names the stop).
    pub fn raise(&self, signal: i32) {
        let _ = self
            .0
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The signal recorded, if any.
    pub fn get(&self) -> Option<Signal> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => Some(Signal(n)),
        }
    }
}

impl Default for Flag {
    fn default() -> Self {
        Flag::new()
    }
}

/// A signal that asked the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(pub i32);

impl Signal {
    /// `SIGINT`, `SIGTERM` (the only two installed), else `signal N`.
    pub fn name(self) -> String {
        match self.0 {
            libc::SIGINT => "SIGINT".to_string(),
            libc::SIGTERM => "SIGTERM".to_string(),
            n => format!("signal {n}"),
        }
    }

    /// The shell's convention for a process ended by a signal: 128 + its number
    /// (130 SIGINT, 143 SIGTERM).
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.0).unwrap_or(u8::MAX)
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// The stop signal received by this process, if any (after [`install`]).
pub fn pending() -> Option<Signal> {
    PENDING.get()
}

/// The exit code of a verb that ran to `code`: the signal's when one arrived meanwhile.
pub fn exit_code(code: u8) -> u8 {
    pending().map_or(code, Signal::exit_code)
}

/// Turns SIGINT and SIGTERM into a recorded request to stop (see the module comment).
/// A signal that was ignored when the process started (`nohup`, a background job of a
/// non-interactive shell) stays ignored. Calling it again does nothing more.
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        for signal in [libc::SIGINT, libc::SIGTERM] {
            install_one(signal);
        }
    });
}

#[cfg(unix)]
fn install_one(signal: libc::c_int) {
    // SAFETY: plain sigaction(2) calls on zero-initialised structs owned here; the
    // handler only performs an atomic store.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut old) != 0
            || old.sa_sigaction == libc::SIG_IGN
        {
            return;
        }
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SA_RESTART: system calls in progress (a read from a worker's pipe) resume
        // instead of failing with EINTR; SA_RESETHAND: the second signal kills.
        action.sa_flags = libc::SA_RESTART | libc::SA_RESETHAND;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

/// The handler: records the signal, nothing else.
#[cfg(unix)]
extern "C" fn on_signal(signal: libc::c_int) {
    PENDING.raise(signal);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_is_kept_and_named() {
        let flag = Flag::new();
        assert_eq!(flag.get(), None);
        flag.raise(libc::SIGTERM);
        flag.raise(libc::SIGINT);
        let signal = flag.get().unwrap();
        assert_eq!(signal.name(), "SIGTERM");
        assert_eq!(signal.exit_code(), 143);
        assert_eq!(Signal(libc::SIGINT).exit_code(), 130);
        assert_eq!(Signal(libc::SIGINT).to_string(), "SIGINT");
    }
}
