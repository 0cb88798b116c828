//! The peak-memory reading of `parity bench` (`bench::memory`). It reads a
//! process-wide figure, so it is tested alone in its own test binary: a test running
//! beside it in the same process would move the peak.

use parity::bench::memory::{peak_rss_bytes, reset_peak_rss};

#[test]
fn the_peak_follows_a_large_allocation_and_resets() {
    if !reset_peak_rss() {
        return; // not Linux: nothing to measure
    }
    let before = peak_rss_bytes().unwrap();
    let big = vec![1u8; 64 << 20];
    std::hint::black_box(&big);
    let during = peak_rss_bytes().unwrap();
    assert!(during >= before + (60 << 20), "{before} -> {during}");
    drop(big);
    assert!(reset_peak_rss());
    assert!(peak_rss_bytes().unwrap() < during);
}
