//! Kernel compile test, no GPU needed: NVRTC (CUDA 13, from the `nvidia-cuda-nvrtc` wheel
//! that `scripts/setup.sh --test` installs into `.venv`) compiles `kernels/compare.cu`
//! for sm_80 and sm_90, and the PTX has every entry point. Skipped, with the reason
//! printed, only when NVRTC cannot be loaded.

use parity::compare::gpu::{compile_ptx, nvrtc_present, KERNELS};
use std::path::{Path, PathBuf};

/// `file` (e.g. `lib/libnvrtc.so.13`) under `nvidia/cu13/` of the project virtualenv,
/// where pip puts the CUDA 13 wheels.
fn in_wheels(file: &str) -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/nvidia/cu13").join(file))
        .find(|path| path.is_file())
}

/// Assembles `ptx` for `sm_XX` with ptxas when the `nvidia-cuda-nvcc==13.0.88` wheel is
/// in `.venv` (optional: `pip install --no-deps`), which proves the PTX valid for that
/// architecture; checks that no kernel spills to local memory.
fn assemble(ptx: &str, sm: &str) {
    let Some(ptxas) = in_wheels("bin/ptxas") else {
        println!("ptxas not in .venv (nvidia-cuda-nvcc wheel): PTX for sm_{sm} not assembled");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("compare.ptx");
    std::fs::write(&source, ptx).unwrap();
    let out = std::process::Command::new(ptxas)
        .arg(format!("-arch=sm_{sm}"))
        .arg("-v")
        .arg(&source)
        .arg("-o")
        .arg(dir.path().join("compare.cubin"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ptxas sm_{sm}: {log}");
    let clean = log.matches(" 0 bytes spill stores").count();
    assert_eq!(clean, KERNELS.len(), "spills for sm_{sm}: {log}");
}

/// Makes NVRTC loadable: already on the library path, or opened from the wheel by full
/// path (with `libnvrtc-builtins.so.13.0`, which NVRTC opens while compiling), after
/// which cudarc's `dlopen("libnvrtc.so.13")` and NVRTC's own find them by their sonames.
fn load_nvrtc() -> Result<(), String> {
    if nvrtc_present().is_ok() {
        return Ok(());
    }
    let path = in_wheels("lib/libnvrtc.so.13")
        .ok_or("no libnvrtc.so.13 on the library path or in .venv")?;
    let builtins = path.with_file_name("libnvrtc-builtins.so.13.0");
    for library in [builtins, path] {
        // SAFETY: loading NVRTC runs no initialisation that depends on the caller.
        let loaded = unsafe { libloading::Library::new(&library) }
            .map_err(|e| format!("{}: {e}", library.display()))?;
        // Stays loaded for the rest of the process.
        std::mem::forget(loaded);
    }
    nvrtc_present()
}

#[test]
fn every_kernel_compiles_for_sm80_and_sm90() {
    if let Err(reason) = load_nvrtc() {
        println!("skipped: NVRTC cannot be loaded ({reason}); run scripts/setup.sh --test");
        return;
    }
    for sm in ["80", "90"] {
        let ptx = compile_ptx(&format!("compute_{sm}")).unwrap();
        assert!(ptx.contains(&format!(".target sm_{sm}")), "sm_{sm}:\n{ptx}");
        for kernel in KERNELS {
            assert!(
                ptx.contains(&format!(".entry {kernel}(")),
                "{kernel} missing for sm_{sm}"
            );
        }
        // No contracted multiply-adds: results match the CPU emulation bit for bit.
        assert!(!ptx.contains("fma.rn.f64"), "fma in sm_{sm} PTX");
        assemble(&ptx, sm);
    }
}

/// Runs one of the package's binaries with `PARITY_COMPARE_DEVICE` set to `device`.
fn run(binary: &str, args: &[&str], device: &str) -> (i32, String) {
    let out = std::process::Command::new(binary)
        .args(args)
        .env("PARITY_COMPARE_DEVICE", device)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn an_unknown_compare_device_is_refused() {
    let (code, stderr) = run(env!("CARGO_BIN_EXE_parity"), &["backends"], "gpu");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("PARITY_COMPARE_DEVICE=gpu: expected auto, cpu or cuda"));
}

#[test]
fn cuda_without_a_gpu_is_refused_and_the_probe_says_why() {
    let probe = env!("CARGO_BIN_EXE_parity-gpu-probe");
    if let Ok(name) = parity::compare::gpu::availability() {
        // A GPU: the probe agrees, or (NVRTC not on its library path) says why.
        let (code, stderr) = run(probe, &["--no-bench"], "auto");
        assert!(
            code == 0 || (code == 2 && stderr.contains("libnvrtc")),
            "GPU {name}: {stderr}"
        );
        return;
    }
    let (code, stderr) = run(env!("CARGO_BIN_EXE_parity"), &["backends"], "cuda");
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PARITY_COMPARE_DEVICE=cuda: "), "{stderr}");
    let (code, stderr) = run(probe, &[], "auto");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.starts_with("parity-gpu-probe: "), "{stderr}");
}
