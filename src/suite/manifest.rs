//! `parity.toml`: a suite's own comparison settings. Unknown keys are refused, so a typo
//! never silently falls back to a default tolerance.
//!
//! ```toml
//! [tolerance]          # suite-wide, replaces the per-dtype defaults
//! atol = 1e-5
//! rtol = 1e-4
//!
//! [outputs.probs]      # one output
//! rtol = 1e-3
//!
//! [outputs.debug_dump]
//! skip = true
//!
//! [provenance]         # written by `parity record`: where the goldens came from
//! backend = "ort-cpu"
//! model_sha256 = "9f86d0…"
//!
//! [files]              # written by `parity record`: sha256 of every data file
//! "test_data_set_0/input_0.pb" = "2c26b4…"
//! ```

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// File name of the manifest inside a suite directory.
pub const MANIFEST_FILE: &str = "parity.toml";

/// A suite's comparison settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Suite-wide tolerance, applied to every output unless the output sets its own.
    #[serde(default)]
    pub tolerance: ToleranceOverride,
    /// Per-output settings keyed by output name.
    #[serde(default)]
    pub outputs: BTreeMap<String, OutputSettings>,
    /// Where the goldens came from (`parity record` writes it; informative, except
    /// `model_sha256`, which `check` compares with the suite's model).
    #[serde(default)]
    pub provenance: Option<Provenance>,
    /// Suite-relative path (`/`-separated) → hex sha256 of that file, for every data file
    /// and `model.onnx`. `check` refuses a data file whose bytes no longer match.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// The `[provenance]` table: what recorded the goldens, where and when. Every key is
/// optional so that a hand-written manifest may state only some of them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// parity's version (`0.1.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parity_version: Option<String>,
    /// The backend whose outputs became the goldens (`ort-cpu`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// That backend's engine version (`1.31.1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_version: Option<String>,
    /// The device that ran it (`cpu`, `cuda:0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Host name of the recording machine.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// CPU model and core count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// GPU model, when one was detected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// Operating system and architecture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// When the suite was recorded, UTC ISO 8601 (`2026-11-25T18:33:07Z`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Hex sha256 of the model the goldens were recorded with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_sha256: Option<String>,
    /// Where the inputs came from (`random (seed 1, dims batch=2)`, `reused from PATH`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

/// atol and/or rtol; a missing one keeps the value from the level below.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToleranceOverride {
    pub atol: Option<f64>,
    pub rtol: Option<f64>,
}

/// Settings for one output.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    pub atol: Option<f64>,
    pub rtol: Option<f64>,
    /// Do not compare this output (reported as skipped).
    #[serde(default)]
    pub skip: bool,
}

impl Manifest {
    /// Reads `dir/parity.toml` when it exists; defaults otherwise.
    pub fn read_or_default(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        if !path.exists() {
            return Ok(Manifest::default());
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::file(&path, crate::formats::io_problem(&e)))?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_string();
            Error::file(&path, format!("invalid parity.toml: {msg}"))
        })?;
        manifest.validate(&path)?;
        Ok(manifest)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let all = std::iter::once(("[tolerance]".to_string(), self.tolerance)).chain(
            self.outputs.iter().map(|(n, o)| {
                (
                    format!("[outputs.{n}]"),
                    ToleranceOverride {
                        atol: o.atol,
                        rtol: o.rtol,
                    },
                )
            }),
        );
        for (table, t) in all {
            for (key, v) in [("atol", t.atol), ("rtol", t.rtol)] {
                if let Some(v) = v {
                    if !(v.is_finite() && v >= 0.0) {
                        return Err(Error::file(
                            path,
                            format!("{table} {key} = {v}: must be a finite number ≥ 0"),
                        ));
                    }
                }
            }
        }
        self.validate_integrity(path)
    }

    /// `[files]` keys are safe suite-relative paths and every digest is 64 hex digits;
    /// `[provenance] model_sha256` agrees with `[files] "model.onnx"` when both are set.
    fn validate_integrity(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Err(Error::file(path, msg));
        for (key, digest) in &self.files {
            if let Err(why) = check_relative_path(key) {
                return bad(format!("[files] \"{}\": {why}", key.escape_debug()));
            }
            if !is_sha256_hex(digest) {
                return bad(format!(
                    "[files] \"{}\" = \"{}\": not a sha256 (64 hex digits)",
                    key.escape_debug(),
                    digest.escape_debug()
                ));
            }
        }
        let recorded = self
            .provenance
            .as_ref()
            .and_then(|p| p.model_sha256.as_ref());
        if let Some(sha) = recorded {
            if !is_sha256_hex(sha) {
                return bad(format!(
                    "[provenance] model_sha256 = \"{}\": not a sha256 (64 hex digits)",
                    sha.escape_debug()
                ));
            }
            if let Some(listed) = self.files.get(crate::suite::MODEL_FILE) {
                if !listed.eq_ignore_ascii_case(sha) {
                    return bad(
                        "[provenance] model_sha256 and [files] \"model.onnx\" differ".to_string(),
                    );
                }
            }
        }
        Ok(())
    }

    /// The sha256 the suite's model was recorded with: `[provenance] model_sha256`, else
    /// `[files] "model.onnx"`; `None` for a suite that records neither.
    pub fn recorded_model_sha256(&self) -> Option<&str> {
        self.provenance
            .as_ref()
            .and_then(|p| p.model_sha256.as_deref())
            .or_else(|| self.files.get(crate::suite::MODEL_FILE).map(String::as_str))
    }

    /// The tolerance override for an output: its own keys, else the suite-wide ones.
    pub fn tolerance_for(&self, output: &str) -> ToleranceOverride {
        let own = self.outputs.get(output);
        ToleranceOverride {
            atol: own.and_then(|o| o.atol).or(self.tolerance.atol),
            rtol: own.and_then(|o| o.rtol).or(self.tolerance.rtol),
        }
    }

    /// Whether an output is excluded from comparison.
    pub fn skips(&self, output: &str) -> bool {
        self.outputs.get(output).is_some_and(|o| o.skip)
    }
}

/// Whether `s` is a hex sha256 digest (either case).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A `[files]` key must name a file inside the suite: relative, `/`-separated, without
/// `.`/`..` or empty components, so that a manifest can never point outside its suite.
pub fn check_relative_path(key: &str) -> std::result::Result<(), &'static str> {
    if key.is_empty() {
        return Err("empty path");
    }
    if key.contains('\\') {
        return Err("use `/` as the separator");
    }
    if key.starts_with('/') || key.contains(':') {
        return Err("must be relative to the suite directory");
    }
    if key
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("empty, `.` or `..` components are not allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, Result<Manifest>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), text).unwrap();
        let m = Manifest::read_or_default(dir.path());
        (dir, m)
    }

    #[test]
    fn output_settings_override_the_suite_wide_ones() {
        let (_d, m) = write("[tolerance]\natol = 1e-5\nrtol = 1e-4\n[outputs.y]\nrtol = 1e-2\n[outputs.z]\nskip = true\n");
        let m = m.unwrap();
        assert_eq!(
            m.tolerance_for("y"),
            ToleranceOverride {
                atol: Some(1e-5),
                rtol: Some(1e-2)
            }
        );
        assert_eq!(
            m.tolerance_for("x"),
            ToleranceOverride {
                atol: Some(1e-5),
                rtol: Some(1e-4)
            }
        );
        assert!(m.skips("z") && !m.skips("y"));
    }

    #[test]
    fn a_typo_is_an_error_naming_the_file() {
        let (d, m) = write("[tolerance]\nrtoll = 1e-3\n");
        let err = m.unwrap_err().to_string();
        assert!(
            err.starts_with(&d.path().join(MANIFEST_FILE).display().to_string()),
            "{err}"
        );
        assert!(err.contains("rtoll"), "{err}");
    }

    #[test]
    fn negative_tolerance_is_refused() {
        let (_d, m) = write("[outputs.y]\natol = -1.0\n");
        assert!(m.unwrap_err().to_string().contains("[outputs.y] atol = -1"));
    }

    const SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn provenance_and_files_are_read() {
        let text = format!(
            "[provenance]\nbackend = \"ort-cpu\"\nmodel_sha256 = \"{SHA}\"\n[files]\n\"test_data_set_0/input_0.pb\" = \"{SHA}\"\n"
        );
        let (_d, m) = write(&text);
        let m = m.unwrap();
        assert_eq!(
            m.provenance.as_ref().unwrap().backend.as_deref(),
            Some("ort-cpu")
        );
        assert_eq!(m.recorded_model_sha256(), Some(SHA));
        assert_eq!(m.files["test_data_set_0/input_0.pb"], SHA);
    }

    #[test]
    fn integrity_tables_are_validated() {
        for (text, needle) in [
            (format!("[files]\n\"../x.pb\" = \"{SHA}\"\n"), "`..`"),
            (
                format!("[files]\n\"/etc/passwd\" = \"{SHA}\"\n"),
                "relative",
            ),
            ("[files]\n\"a.pb\" = \"abc\"\n".to_string(), "not a sha256"),
            (
                "[provenance]\nmodel_sha256 = \"xyz\"\n".to_string(),
                "model_sha256",
            ),
            (
                "[provenance]\nbackendd = \"ort-cpu\"\n".to_string(),
                "backendd",
            ),
            (
                format!(
                    "[provenance]\nmodel_sha256 = \"{SHA}\"\n[files]\n\"model.onnx\" = \"{}\"\n",
                    "0".repeat(64)
                ),
                "differ",
            ),
        ] {
            let (_d, m) = write(&text);
            let err = m.unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.contains(MANIFEST_FILE), "{err}");
        }
    }

    #[test]
    fn no_manifest_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::read_or_default(dir.path()).unwrap();
        assert_eq!(m.tolerance_for("y"), ToleranceOverride::default());
    }
}
