//! Deterministic parallel scan: the flat element range is cut into fixed-size chunks,
//! chunks are scanned on all cores with rayon, and their summaries are merged in chunk
//! order. The chunking depends on the length alone, so results are bit-identical
//! whatever the thread count or scheduling.

use super::stats::Summary;
use rayon::prelude::*;
use std::ops::Range;

/// Elements per chunk: large enough to amortise scheduling, small enough to spread
/// a tensor of a few megabytes over every core and to fit a chunk of two f32 tensors in L2.
pub(super) const CHUNK: usize = 1 << 16;

/// Scans `0..len` chunk by chunk with `scan` and merges the summaries in index order.
pub(super) fn scan_chunks<F>(len: usize, scan: F) -> Summary
where
    F: Fn(Range<usize>) -> Summary + Sync,
{
    let chunks = len.div_ceil(CHUNK);
    if chunks <= 1 {
        return scan(0..len);
    }
    let parts: Vec<Summary> = (0..chunks)
        .into_par_iter()
        .map(|chunk| scan(chunk * CHUNK..len.min((chunk + 1) * CHUNK)))
        .collect();
    parts.into_iter().fold(Summary::default(), Summary::merge)
}

/// Folds `0..len` in ranges of `chunk` items (at least 1): each range is scanned with
/// `scan` on all cores, and the results are merged with `merge` in range order, so the
/// outcome depends on `len` and `chunk` alone, never on scheduling. The slower
/// comparison modes use this with their own per-range state.
pub(super) fn fold_ranges<S, F, M>(len: usize, chunk: usize, scan: F, merge: M) -> S
where
    S: Send,
    F: Fn(Range<usize>) -> S + Sync,
    M: Fn(S, S) -> S,
{
    let chunk = chunk.max(1);
    let chunks = len.div_ceil(chunk);
    if chunks <= 1 {
        return scan(0..len);
    }
    let parts: Vec<S> = (0..chunks)
        .into_par_iter()
        .map(|c| scan(c * chunk..len.min((c + 1) * chunk)))
        .collect();
    let mut parts = parts.into_iter();
    let first = parts.next().unwrap_or_else(|| scan(0..0));
    parts.fold(first, merge)
}
