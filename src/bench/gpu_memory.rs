//! Device memory a GPU backend uses while it loads and runs, for the bench figure
//! `gpu_memory_bytes`: the peak of the CUDA device's memory in use (`cuMemGetInfo`,
//! total − free) sampled every [`INTERVAL`] on a thread of its own, minus what was in
//! use just before the backend loaded. The figure is device-wide: another process
//! allocating on the same GPU during the run is counted too (docs/performance.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the device is asked; short enough to catch an engine's arena growing,
/// cheap enough (one driver call) not to disturb the measurement.
const INTERVAL: Duration = Duration::from_millis(2);

/// A running sampler; [`GpuMemorySampler::finish`] stops it and gives the figure.
pub struct GpuMemorySampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Result<u64, String>>,
}

/// The CUDA device ordinal in a backend's device label (`cuda:0 (NVIDIA H100 …)`), or
/// `None` for a device that is not a CUDA GPU.
pub fn cuda_ordinal(device: &str) -> Option<usize> {
    let rest = device.strip_prefix("cuda:")?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..digits].parse().ok()
}

impl GpuMemorySampler {
    /// Starts sampling the device a backend runs on, when that is a CUDA GPU; returns
    /// after the baseline sample was taken, so the backend's load is counted.
    pub fn start(device: &str) -> Option<GpuMemorySampler> {
        let ordinal = cuda_ordinal(device)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ready, started) = mpsc::channel();
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let used = crate::compare::gpu::context(ordinal).and_then(|ctx| {
                let sample = move || {
                    ctx.mem_get_info()
                        .map(|(free, total)| total.saturating_sub(free) as u64)
                        .map_err(|e| format!("cuMemGetInfo on CUDA device {ordinal}: {e}"))
                };
                sample().map(|base| (base, sample))
            });
            let _ = ready.send(());
            let (base, sample) = used?;
            let mut peak = base;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(sample()?);
                std::thread::sleep(INTERVAL);
            }
            Ok(peak.max(sample()?) - base)
        });
        // The thread answers once, after its first sample or its failure.
        let _ = started.recv();
        Some(GpuMemorySampler { stop, thread })
    }

    /// Stops sampling: the peak increase in device memory in use, bytes, or why there
    /// is no figure (no driver, no such device).
    pub fn finish(self) -> Result<u64, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .unwrap_or_else(|_| Err("the GPU memory sampler panicked".to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cuda_devices_are_sampled() {
        assert_eq!(cuda_ordinal("cuda:0 (NVIDIA H100 80GB HBM3)"), Some(0));
        assert_eq!(cuda_ordinal("cuda:3"), Some(3));
        assert_eq!(cuda_ordinal("cuda:12 (x)"), Some(12));
        assert_eq!(cuda_ordinal("cpu"), None);
        assert_eq!(cuda_ordinal("cuda:"), None);
        assert!(GpuMemorySampler::start("cpu").is_none());
    }

    #[test]
    fn without_a_driver_the_sampler_says_why() {
        if crate::compare::gpu::availability().is_ok() {
            return; // a GPU machine: the figure is checked by ci/gpu-check.sh
        }
        let sampler = GpuMemorySampler::start("cuda:0 (test)").expect("a CUDA label");
        let reason = sampler.finish().expect_err("no GPU here");
        assert!(
            reason.contains("libcuda.so.1") || reason.contains("CUDA"),
            "{reason}"
        );
    }
}
