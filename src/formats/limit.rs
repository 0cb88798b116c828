//! The read limit: the most bytes parity takes into memory (or maps) from one file a user
//! names, counting what an `.npz` inflates to. A symlink to `/dev/zero`, a zip bomb or a
//! sparse 64 GiB `.npy` is refused by it instead of taking the machine's memory.
//! `PARITY_MAX_READ_BYTES` overrides the default (docs/limits.md).

use crate::error::{Error, Result};

/// The environment variable that sets the read limit: a size (`8G`, `512M`, bytes) or `none`.
pub const MAX_READ_VAR: &str = "PARITY_MAX_READ_BYTES";

/// The read limit when [`MAX_READ_VAR`] is unset: 4 GiB, twice what one `.pb` or
/// `model.onnx` can hold (protobuf stops at 2 GiB), and what a CI runner can afford to
/// hold twice over (reference and result side by side).
pub const DEFAULT_MAX_READ_BYTES: u64 = 4 << 30;

/// The read limit in force: [`MAX_READ_VAR`] when set, else [`DEFAULT_MAX_READ_BYTES`];
/// `None` when the variable says `none`. A value that is not a size is a usage error.
pub fn max_read_bytes() -> Result<Option<u64>> {
    match std::env::var(MAX_READ_VAR) {
        Err(_) => Ok(Some(DEFAULT_MAX_READ_BYTES)),
        Ok(v) => parse_size(&v, 1).map_err(|e| Error::Usage(format!("{MAX_READ_VAR}: {e}"))),
    }
}

/// The refusal of a file of `size` bytes, over `limit`.
pub(crate) fn too_large(size: u64, limit: u64) -> String {
    format!("{size} bytes, {}", over_limit(limit))
}

/// "more than the read limit of 4 GiB (...)": the end of every refusal by size.
pub(crate) fn over_limit(limit: u64) -> String {
    format!(
        "more than the read limit of {} (set {MAX_READ_VAR} to raise it)",
        show_size(limit)
    )
}

/// `4 GiB`, `512 MiB`, `1000 bytes`: a size as a user would write it back.
fn show_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// Parses a size: a number in units of `unit` bytes, or with a `K`/`M`/`G` suffix
/// (binary), or `none` (no limit). Shared by `--memory-limit` and [`MAX_READ_VAR`].
pub fn parse_size(s: &str, unit: u64) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'G' | 'g')) => (&t[..i], 1u64 << 30),
        Some((i, 'M' | 'm')) => (&t[..i], 1u64 << 20),
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        _ => (t, unit),
    };
    match num.trim().parse::<u64>() {
        Ok(n) if n >= 1 => n
            .checked_mul(mult)
            .map(Some)
            .ok_or_else(|| format!("`{s}` is too large")),
        _ => Err(format!(
            "`{s}` is not a size (a number, or with K/M/G, e.g. 512M or 8G; or `none`)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_show() {
        assert_eq!(parse_size("100", 1), Ok(Some(100)));
        assert_eq!(parse_size("2K", 1), Ok(Some(2048)));
        assert_eq!(parse_size(" 8g ", 1), Ok(Some(8 << 30)));
        assert_eq!(parse_size("none", 1), Ok(None));
        assert!(parse_size("0", 1).is_err());
        assert!(parse_size("-1", 1).is_err());
        assert!(parse_size("99999999999999G", 1).is_err());
        assert_eq!(show_size(DEFAULT_MAX_READ_BYTES), "4 GiB");
        assert_eq!(show_size(3 << 20), "3 MiB");
        assert_eq!(show_size(1000), "1000 bytes");
        assert_eq!(
            too_large(5000, 4096),
            "5000 bytes, more than the read limit of 4 KiB (set PARITY_MAX_READ_BYTES to raise it)"
        );
    }
}
