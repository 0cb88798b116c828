//! Turns panics inside third-party engines into errors, without printing a backtrace.
//! The process-wide panic hook stays silent while a guarded call runs on this thread,
//! and prints one line (never a backtrace) for any other panic.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook; call once at start-up.
pub fn install_hook() {
    panic::set_hook(Box::new(|info| {
        if !GUARDED.with(Cell::get) {
            eprintln!("error: internal error: {}", payload_message(info.payload()));
        }
    }));
}

/// Locks `m` even when a holder panicked: the panic was already turned into an error
/// (or reported), and the data behind these mutexes (lists being appended to, turns)
/// stays valid.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `f`, returning the panic message instead of unwinding.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    let was = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|p| payload_message(p.as_ref()))
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.lines().next().unwrap_or("").to_string()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_becomes_its_message() {
        let r: Result<(), String> = super::catch(|| panic!("index out of bounds"));
        assert_eq!(r.unwrap_err(), "index out of bounds");
        assert_eq!(super::catch(|| 3), Ok(3));
    }
}
