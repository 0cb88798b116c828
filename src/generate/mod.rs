//! `parity generate`: greedy autoregressive decoding of decoder-only language models with
//! a KV cache on several backends, and token-level parity between them (docs/generate.md).
//!
//! [`convention`] finds the model's ids, mask, positions, logits and cache; [`decode`]
//! runs the steps on one backend; [`verdict`] judges one generation against another;
//! [`report`] renders the result.

pub mod convention;
pub mod decode;
pub mod report;
pub mod verdict;

/// Most tokens a prompt may hold, and most new tokens a generation may ask for: every
/// step keeps its row of logits, so this bounds what a run holds.
pub const MAX_TOKENS: usize = 1 << 14;
