//! Peak resident memory of this process, for `parity bench`'s per-backend memory
//! figure. Linux only: `VmHWM` in `/proc/self/status`, reset by writing `5` to
//! `/proc/self/clear_refs` before a backend loads its model, so each backend's peak is
//! its own and not the largest of everything run before it.

/// Resets the peak to the current resident size. Returns whether the kernel allowed it
/// (the peak then covers everything since process start).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// The peak resident size since the last reset, bytes; `None` where not available.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
