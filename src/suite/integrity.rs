//! Integrity of recorded suites: the sha256 digests that `parity record` writes into
//! `parity.toml` (`[files]`, `[provenance] model_sha256`) checked against the files.
//!
//! - A listed data file whose bytes changed, or that is missing, makes the case it
//!   belongs to `error` (exit 2), naming the file ([`verify_case`], run when a case is
//!   loaded). A listed file that belongs to no data set on disk (a deleted
//!   `test_data_set_N`) makes the suite invalid ([`verify_listing`], run when it is opened).
//! - The model is different on purpose more often than by accident (a re-export, a new
//!   quantisation checked against old goldens), so a changed `model.onnx` is only a
//!   [`Finding`] that `check` prints as a warning, or turns into errors with `--strict`.
//!   So are data files present on disk but not listed (added after recording).
//!
//! Suites without a `[files]` table (hand-made, or the ONNX project's) are not checked.

use super::manifest::Manifest;
use super::{CaseFiles, CaseSource, Suite, MODEL_FILE};
use crate::error::{Error, Result};
use crate::formats;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// Hex sha256 of a file, streamed (large goldens are not read into memory at once).
pub fn sha256_file(path: &Path) -> Result<String> {
    let problem = |e: std::io::Error| Error::file(path, formats::io_problem(&e));
    let (mut file, _) = formats::open::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(problem)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The `[files]` key of a file inside `dir`: its relative path with `/` separators, or
/// `None` when it is not below `dir` or not valid UTF-8.
pub fn relative_key(dir: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(dir).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let key = parts?.join("/");
    (!key.is_empty()).then_some(key)
}

/// The file a `[files]` key names (keys were validated as safe relative paths).
pub fn key_path(dir: &Path, key: &str) -> PathBuf {
    key.split('/').fold(dir.to_path_buf(), |p, c| p.join(c))
}

/// The data set a `[files]` key belongs to: `test_data_set_0/input_0.pb` and
/// `test_data_set_0.npz` both belong to `test_data_set_0`.
fn case_of(key: &str) -> &str {
    match key.split_once('/') {
        Some((first, _)) => first,
        None => key.split('.').next().unwrap_or(key),
    }
}

/// Checks one listed file (`key` relative to `dir`): present, and its sha256 the recorded one.
pub fn verify_file(dir: &Path, key: &str, recorded: &str) -> Result<()> {
    let path = key_path(dir, key);
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(Error::file(
            &path,
            "listed in parity.toml [files] but missing",
        ));
    }
    let found = sha256_file(&path)?;
    if !found.eq_ignore_ascii_case(recorded) {
        return Err(Error::file(
            &path,
            format!(
                "sha256 mismatch: recorded {recorded}, found {found} (the golden file changed)"
            ),
        ));
    }
    Ok(())
}

/// Verifies every listed file of one data set (run before its tensors are read).
pub fn verify_case(suite: &Suite, case: &CaseSource) -> Result<()> {
    // Keys of a data set start with its name; the map is sorted, so they are one range.
    let name = case.name.as_str();
    let range = suite
        .manifest
        .files
        .range::<str, _>((Bound::Included(name), Bound::Unbounded))
        .take_while(|(key, _)| key.starts_with(name));
    for (key, recorded) in range {
        if key != MODEL_FILE && case_of(key) == name {
            verify_file(&suite.dir, key, recorded)?;
        }
    }
    Ok(())
}

/// Verifies, when a suite is opened, the listed files that belong to no data set found
/// on disk: a recorded data set that was deleted is an error, never a smaller pass.
pub fn verify_listing(dir: &Path, manifest: &Manifest, cases: &[CaseSource]) -> Result<()> {
    let names: HashSet<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    for (key, recorded) in &manifest.files {
        if key == MODEL_FILE || names.contains(case_of(key)) {
            continue;
        }
        verify_file(dir, key, recorded)?;
    }
    Ok(())
}

/// Something about a recorded suite that `check` reports as a warning, or as an error
/// for every case of the suite with `--strict`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// `model.onnx` is not the model the goldens were recorded with.
    ModelChanged {
        path: PathBuf,
        recorded: String,
        found: String,
    },
    /// A data file that a case reads but `[files]` does not list.
    Unlisted { path: PathBuf },
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Finding::ModelChanged {
                path,
                recorded,
                found,
            } => write!(
                f,
                "{}: not the model the goldens were recorded with (sha256 recorded {recorded}, found {found})",
                path.display()
            ),
            Finding::Unlisted { path } => write!(
                f,
                "{}: not listed in parity.toml [files] (added after recording?), so not verified",
                path.display()
            ),
        }
    }
}

/// The suite-level findings: a changed model, unlisted data files. Empty for a suite
/// that records no digests.
pub fn audit(suite: &Suite) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(recorded) = suite.manifest.recorded_model_sha256() {
        if !recorded.eq_ignore_ascii_case(&suite.info.sha256) {
            findings.push(Finding::ModelChanged {
                path: suite.model.clone(),
                recorded: recorded.to_ascii_lowercase(),
                found: suite.info.sha256.clone(),
            });
        }
    }
    if suite.manifest.files.is_empty() {
        return findings;
    }
    for case in &suite.cases {
        let paths: Vec<&PathBuf> = match &case.files {
            CaseFiles::Numbered { inputs, outputs } => inputs.iter().chain(outputs).collect(),
            CaseFiles::Archive(p) => vec![p],
        };
        for path in paths {
            let listed = relative_key(&suite.dir, path)
                .is_some_and(|k| suite.manifest.files.contains_key(&k));
            if !listed {
                findings.push(Finding::Unlisted { path: path.clone() });
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_relative_slash_paths() {
        let dir = Path::new("/s");
        assert_eq!(
            relative_key(dir, Path::new("/s/test_data_set_0/input_0.pb")).as_deref(),
            Some("test_data_set_0/input_0.pb")
        );
        assert_eq!(relative_key(dir, Path::new("/t/x.pb")), None);
        assert_eq!(
            key_path(dir, "test_data_set_0/input_0.pb"),
            Path::new("/s/test_data_set_0/input_0.pb")
        );
    }

    #[test]
    fn keys_belong_to_their_data_set() {
        assert_eq!(case_of("test_data_set_1/output_0.pb"), "test_data_set_1");
        assert_eq!(case_of("test_data_set_10.npz"), "test_data_set_10");
        assert_eq!(case_of("test_data_set_1/sub/x.npy"), "test_data_set_1");
    }

    #[test]
    fn each_data_set_verifies_only_its_own_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/mlp");
        std::fs::copy(root.join(MODEL_FILE), dir.path().join(MODEL_FILE)).unwrap();
        let mut toml = String::from("[files]\n");
        for n in ["1", "10", "2"] {
            let case = dir.path().join(format!("test_data_set_{n}"));
            std::fs::create_dir(&case).unwrap();
            let input = case.join("input_0.pb");
            std::fs::copy(root.join("test_data_set_0/input_0.pb"), &input).unwrap();
            let sha = sha256_file(&input).unwrap();
            toml += &format!("\"test_data_set_{n}/input_0.pb\" = \"{sha}\"\n");
        }
        std::fs::write(dir.path().join("parity.toml"), toml).unwrap();
        let suite = crate::suite::open(dir.path()).unwrap();
        let names: Vec<_> = suite.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["test_data_set_1", "test_data_set_2", "test_data_set_10"]
        );
        for case in &suite.cases {
            verify_case(&suite, case).unwrap();
        }
        assert!(audit(&suite).is_empty());
        std::fs::write(dir.path().join("test_data_set_10/input_0.pb"), b"x").unwrap();
        verify_case(&suite, &suite.cases[0]).unwrap();
        verify_case(&suite, &suite.cases[1]).unwrap();
        let err = verify_case(&suite, &suite.cases[2])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test_data_set_10/input_0.pb: sha256 mismatch"),
            "{err}"
        );
        // A deleted data set fails the suite when it is opened.
        std::fs::remove_dir_all(dir.path().join("test_data_set_2")).unwrap();
        let err = crate::suite::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("test_data_set_2/input_0.pb: listed in parity.toml [files] but missing"),
            "{err}"
        );
    }

    #[test]
    fn a_changed_file_names_both_digests() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.pb"), b"abc").unwrap();
        let good = sha256_file(&dir.path().join("a.pb")).unwrap();
        assert_eq!(
            good,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        verify_file(dir.path(), "a.pb", &good).unwrap();
        verify_file(dir.path(), "a.pb", &good.to_ascii_uppercase()).unwrap();
        std::fs::write(dir.path().join("a.pb"), b"abd").unwrap();
        let err = verify_file(dir.path(), "a.pb", &good)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&dir.path().join("a.pb").display().to_string()),
            "{err}"
        );
        assert!(err.contains(&format!("recorded {good}, found ")), "{err}");
        assert!(err.contains("the golden file changed"), "{err}");
        let err = verify_file(dir.path(), "b.pb", &good)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("b.pb: listed in parity.toml [files] but missing"),
            "{err}"
        );
    }
}
