//! The `[provenance]` table of a suite's `parity.toml`: what recorded its goldens, where
//! and when. `suite::manifest` reads it; reports carry it (`suites[].provenance`) so a
//! verdict can be traced to the run that made its goldens.

use serde::{Deserialize, Serialize};

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
