//! Kernel compile test, no GPU needed: NVRTC (CUDA 13, from the `nvidia-cuda-nvrtc` wheel
//! that `scripts/setup.sh --test` installs into `.venv`) compiles `kernels/compare.cu`
//! for sm_80 and sm_90, and the PTX has every entry point. Skipped, with the reason
//! printed, only when NVRTC cannot be loaded.

use parity::compare::gpu::{compile_ptx, nvrtc_present, KERNELS};
use std::path::{Path, PathBuf};

/// `libnvrtc.so.13` in the project virtualenv, where pip puts the CUDA 13 wheel.
fn wheel_library() -> Option<PathBuf> {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|python| {
            python
                .path()
                .join("site-packages/nvidia/cu13/lib/libnvrtc.so.13")
        })
        .find(|path| path.is_file())
}

/// Makes NVRTC loadable: already on the library path, or opened from the wheel by full
/// path (with `libnvrtc-builtins.so.13.0`, which NVRTC opens while compiling), after
/// which cudarc's `dlopen("libnvrtc.so.13")` and NVRTC's own find them by their sonames.
fn load_nvrtc() -> Result<(), String> {
    if nvrtc_present().is_ok() {
        return Ok(());
    }
    let path = wheel_library().ok_or("no libnvrtc.so.13 on the library path or in .venv")?;
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
    }
}
