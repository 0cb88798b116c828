//! `--shard I/N`: a deterministic partition of a run's cases across machines.
//!
//! A case (one data set of one suite, with every backend it runs on) belongs to shard
//! `fnv1a64(key) % N + 1`, where `key` is the suite directory relative to the path given
//! on the command line (its own name when the suite itself was given), then `/` and the
//! data set's name, with `/` between path components on every OS. The hash is written
//! here by hand (no dependency, no per-process seed), so the same checkout puts the same
//! case in the same shard on every machine, and a case's shard does not depend on which
//! other cases exist. `I` is 1-based: `1 <= I <= N`.

use std::path::{Component, Path};

/// One shard of `count`: `index` is 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 1 to `count`.
    pub index: u64,
    /// How many shards the run is split into, at least 1.
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` with `1 <= I <= N`; the message says what is wrong.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard I/N with 1 <= I <= N (e.g. 2/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether the case named `key` (see [`case_key`]) belongs to this shard.
    pub fn contains(&self, key: &str) -> bool {
        fnv1a64(key.as_bytes()) % self.count + 1 == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The stable key of data set `case` of the suite in `suite_dir`, found below `root`
/// (the path given on the command line).
pub fn case_key(root: &Path, suite_dir: &Path, case: &str) -> String {
    let relative = suite_dir.strip_prefix(root).unwrap_or(suite_dir);
    let mut parts: Vec<String> = relative
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        // The suite itself was named: use its directory name.
        let name = match suite_dir.file_name() {
            Some(n) => n.to_string_lossy().into_owned(),
            // `.` or `..`: the name of the directory it stands for.
            None => suite_dir
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_default(),
        };
        parts.push(name);
    }
    parts.push(case.to_string());
    parts.join("/")
}

/// FNV-1a, 64 bits: offset basis 0xcbf29ce484222325, prime 0x100000001b3.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn parse_accepts_one_based_and_rejects_the_rest() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(Shard::parse("3/3"), Ok(Shard { index: 3, count: 3 }));
        assert_eq!(Shard::parse("1/1"), Ok(Shard { index: 1, count: 1 }));
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "-1/3", "1/3/4", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_key_lands_in_exactly_one_shard() {
        for n in 1..=7 {
            for k in 0..100 {
                let key = format!("suite{k}/test_data_set_{k}");
                let hits = (1..=n)
                    .filter(|&i| Shard { index: i, count: n }.contains(&key))
                    .count();
                assert_eq!(hits, 1);
            }
        }
    }

    #[test]
    fn keys_are_relative_to_the_root() {
        let root = Path::new("models");
        assert_eq!(
            case_key(root, Path::new("models/mlp"), "test_data_set_0"),
            "mlp/test_data_set_0"
        );
        assert_eq!(
            case_key(Path::new("models/mlp"), Path::new("models/mlp"), "d"),
            "mlp/d"
        );
        assert_eq!(
            case_key(Path::new("./models/"), Path::new("./models/a/b"), "d"),
            "a/b/d"
        );
    }
}
