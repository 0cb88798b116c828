//! Where a run happened: parity's version, host, CPU, GPU and the backends used, so a
//! report read weeks later still says what produced it.

use serde::{Deserialize, Serialize};

/// The machine and software behind a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    pub parity: String,
    pub host: String,
    pub cpu: String,
    pub gpu: Option<String>,
    pub os: String,
    pub backends: Vec<BackendInfo>,
    /// Backends that did not run and why (unavailable here, not compiled in, not
    /// requested): a report always says what it did not test. Empty in reports written
    /// before this field existed.
    #[serde(default)]
    pub skipped_backends: Vec<SkippedBackend>,
}

/// A backend left out of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SkippedBackend {
    pub name: String,
    /// `unavailable: REASON` or `not requested (--backend)`.
    pub reason: String,
}

/// A backend as it reported itself for this run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackendInfo {
    pub name: String,
    pub version: String,
    pub device: String,
}

impl Environment {
    /// Reads the host's identity; `backends` are the ones that ran.
    pub fn detect(backends: Vec<BackendInfo>) -> Environment {
        Environment {
            parity: env!("CARGO_PKG_VERSION").to_string(),
            host: host_name(),
            cpu: cpu_model(),
            gpu: None,
            os: os_name(),
            backends,
            skipped_backends: Vec::new(),
        }
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_string())
}

/// CPU model name and logical core count, e.g. `AMD EPYC 9B14 (2 cores)`.
fn cpu_model() -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
    format!(
        "{} ({cores} cores)",
        model.unwrap_or_else(|| std::env::consts::ARCH.to_string())
    )
}

fn os_name() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
    match pretty {
        Some(p) => format!("{p} ({})", std::env::consts::ARCH),
        None => format!("{} ({})", std::env::consts::OS, std::env::consts::ARCH),
    }
}
