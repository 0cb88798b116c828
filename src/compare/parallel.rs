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
