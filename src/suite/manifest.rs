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
//! ```

use crate::error::{Error, Result};
use serde::Deserialize;
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
        Ok(())
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

    #[test]
    fn no_manifest_means_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest::read_or_default(dir.path()).unwrap();
        assert_eq!(m.tolerance_for("y"), ToleranceOverride::default());
    }
}
