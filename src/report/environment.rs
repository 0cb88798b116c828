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
}

/// A backend as it reported itself for this run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackendInfo {
    pub name: String,
    pub version: String,
    pub device: String,
}

impl From<&crate::backend::Selected> for BackendInfo {
    /// A backend chosen for a run, as reports name it.
    fn from(s: &crate::backend::Selected) -> BackendInfo {
        BackendInfo {
            name: s.backend.name().to_string(),
            version: s.version.clone(),
            device: s.device.clone(),
        }
    }
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
