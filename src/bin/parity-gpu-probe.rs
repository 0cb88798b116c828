//! `parity-gpu-probe`: what the GPU check script (which has no Rust) runs on a machine
//! with an NVIDIA GPU. Prints one JSON object: the device, its copy bandwidth, the f32
//! comparison kernel's bandwidth, and whether the GPU comparison agrees with the CPU one
//! on generated cases. Exit codes: 0 every case agrees, 1 a disagreement, 2 no usable GPU
//! (the reason on stderr) or a CUDA failure. docs/gpu.md describes flags and output.

use clap::Parser;
use parity::compare::gpu::cases::{agreement, cases, FLOAT_DTYPES};
use parity::compare::gpu::DEVICE_ENV;
use parity::compare::gpu::{emulate_partials, GpuComparer, AUTO_THRESHOLD, BLOCK_ELEMS};
use parity::compare::{compare, compare_cpu, Tolerance};
use parity::tensor::DType;
use serde_json::json;
use std::process::ExitCode;

/// Measures the comparison kernels on this machine's GPU and checks them against the CPU.
#[derive(Debug, Parser)]
#[command(name = "parity-gpu-probe")]
struct Args {
    /// Elements per tensor in the kernel benchmark (two f32 tensors on the device).
    #[arg(long, default_value_t = 256 << 20)]
    elements: usize,
    /// Bytes of the buffer copied device to device in the copy benchmark.
    #[arg(long, default_value_t = 1 << 30)]
    copy_bytes: usize,
    /// Timed runs of each benchmark (after one untimed warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Only the device facts and the agreement check, no benchmarks.
    #[arg(long)]
    no_bench: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // `compare` must route by itself (automatic mode) for the routing check.
    std::env::remove_var(DEVICE_ENV);
    match run(&args) {
        Ok((report, agree)) => {
            println!("{report:#}");
            ExitCode::from(if agree { 0 } else { 1 })
        }
        Err(reason) => {
            eprintln!("parity-gpu-probe: {reason}");
            ExitCode::from(2)
        }
    }
}

/// Best and median of `seconds`, with `bytes` per run turned into GB/s (10^9 B).
fn rates(seconds: &[f64], bytes: f64) -> serde_json::Value {
    let mut sorted = seconds.to_vec();
    sorted.sort_by(f64::total_cmp);
    let best = sorted.first().copied().unwrap_or(f64::NAN);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    json!({
        "runs_s": seconds,
        "best_s": best,
        "median_s": median,
        "best_gb_per_s": bytes / best / 1e9,
        "median_gb_per_s": bytes / median / 1e9,
    })
}

fn run(args: &Args) -> Result<(serde_json::Value, bool), String> {
    let gpu = GpuComparer::new()?;
    let device = gpu.info()?;
    let mut report = json!({ "device": device });
    if !args.no_bench {
        let copy = gpu.copy_seconds(args.copy_bytes, args.runs)?;
        let mut copy_json = rates(&copy, 2.0 * args.copy_bytes as f64);
        copy_json["bytes"] = json!(args.copy_bytes);
        copy_json["counts"] = json!("bytes read + bytes written");
        report["copy"] = copy_json;
        let n = args.elements;
        let expected: Vec<f32> = (0..n).map(|i| (i % 1000) as f32 * 1e-3 - 0.5).collect();
        let actual: Vec<f32> = expected
            .iter()
            .enumerate()
            .map(|(i, &e)| if i % 4099 == 0 { e + 1e-3 } else { e })
            .collect();
        let tol = Tolerance::default_for(DType::F32);
        let kernel = gpu.kernel_seconds(&expected, &actual, tol, args.runs)?;
        let mut kernel_json = rates(&kernel, 8.0 * n as f64);
        kernel_json["dtype"] = json!("f32");
        kernel_json["elements"] = json!(n);
        kernel_json["counts"] = json!("bytes read (both tensors), partials read back included");
        report["kernel"] = kernel_json;
    }
    let mut results = Vec::new();
    let mut agree = true;
    for dtype in FLOAT_DTYPES {
        let mut all = cases(dtype, 3 * BLOCK_ELEMS + 101);
        if dtype == DType::F32 {
            // Above the automatic threshold, as `compare` would route it.
            all.extend(cases(dtype, AUTO_THRESHOLD + 7).into_iter().take(2));
        }
        for case in all {
            let (e, a, tol) = (&case.expected, &case.actual, case.tol);
            let partials = gpu.partials(e, a, tol)?;
            let bitwise = emulate_partials(e, a, tol).is_some_and(|p| p == partials);
            let cpu = compare_cpu(e, a, tol);
            let on_gpu = gpu.compare(e, a, tol)?;
            let outcome = agreement(&cpu, &on_gpu);
            // Above the threshold `compare` must have taken the GPU path: the same
            // result, sums included, as the comparer's.
            let routed = (e.numel() >= AUTO_THRESHOLD).then(|| compare(e, a, tol) == on_gpu);
            agree &= outcome.is_ok() && routed != Some(false);
            results.push(json!({
                "case": case.name,
                "elements": e.numel(),
                "agree": outcome.is_ok(),
                "partials_bitwise_equal_to_emulation": bitwise,
                "auto_routed_to_gpu": routed,
                "difference": outcome.err(),
            }));
        }
    }
    report["agreement"] = json!({ "all_agree": agree, "cases": results });
    Ok((report, agree))
}
