//! Finding the ONNX Runtime shared library, without loading it.
//!
//! parity links ONNX Runtime at run time (`ort`'s `load-dynamic`), so it must find
//! `libonnxruntime` itself. The search is a pure function of a [`SearchContext`] (the
//! environment variables, current directory and executable path it looks at) plus a
//! Python probe passed in, so tests describe a machine without touching the process.
//!
//! Order (documented in `docs/backends.md`):
//! 0. `ORT_CUDA_DYLIB_PATH`: a GPU build of ONNX Runtime (the `onnxruntime-gpu` wheel's
//!    `libonnxruntime.so`). One library serves the whole process (`ort` loads one per
//!    process), and the GPU build also has the CPU execution provider, so when set it is
//!    the library of `ort-cpu` too, and `ORT_DYLIB_PATH` is not looked at. Like
//!    `ORT_DYLIB_PATH` it is exclusive: a path that is not a file is an error.
//! 1. `ORT_DYLIB_PATH`: when set (and not empty) it is the only place looked at; a path
//!    that does not exist is an error naming it, never a silent fall-through.
//! 2. A virtualenv: `$VIRTUAL_ENV`, then the Python environment parity itself is installed
//!    in (`PREFIX/bin/parity` from `pip install parity`, whose `onnxruntime` dependency is
//!    the pinned library), then `./.venv`, then `.venv` in each ancestor directory of the
//!    executable (so `target/debug/parity` finds the repository's `.venv`); inside each,
//!    `lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
//! 3. The `onnxruntime` package of the `python3` on `PATH` (located with
//!    `importlib.util.find_spec`, which does not import it), with a short timeout.
//! 4. The system loader's search path (`libonnxruntime.so` by bare name): tried only by
//!    the caller, through `ort::init_from`, which reports an error instead of panicking.
//!
//! Steps 2 and 3 find the `onnxruntime` Python package, which is where both the CPU
//! wheel (`onnxruntime`) and the GPU wheel (`onnxruntime-gpu`, same package name) put
//! their library: a GPU build is recognised by [`cuda_provider_next_to`].
//!
//! The first place that holds a library decides: if that library cannot be loaded (wrong
//! version, broken file) the backend is unavailable with that reason, rather than quietly
//! using another copy from further down the list.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the `python3` probe may take before it counts as "not found".
pub const PYTHON_TIMEOUT: Duration = Duration::from_secs(5);

/// What the search looks at. [`SearchContext::from_process`] reads the real process;
/// tests build one by hand.
#[derive(Debug, Clone, Default)]
pub struct SearchContext {
    /// Value of `ORT_CUDA_DYLIB_PATH`, if set.
    pub ort_cuda_dylib_path: Option<OsString>,
    /// Value of `ORT_DYLIB_PATH`, if set.
    pub ort_dylib_path: Option<OsString>,
    /// Value of `VIRTUAL_ENV`, if set.
    pub virtual_env: Option<OsString>,
    /// The current directory.
    pub cwd: Option<PathBuf>,
    /// The running executable.
    pub exe: Option<PathBuf>,
}

impl SearchContext {
    /// The context of this process.
    pub fn from_process() -> Self {
        SearchContext {
            ort_cuda_dylib_path: std::env::var_os("ORT_CUDA_DYLIB_PATH"),
            ort_dylib_path: std::env::var_os("ORT_DYLIB_PATH"),
            virtual_env: std::env::var_os("VIRTUAL_ENV"),
            cwd: std::env::current_dir().ok(),
            exe: std::env::current_exe().ok(),
        }
    }
}

/// A library file the search settled on, and where it came from (for reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The library file (absolute when the context's paths are).
    pub path: PathBuf,
    /// Human-readable origin, e.g. `ORT_DYLIB_PATH` or `virtualenv /repo/.venv`.
    pub source: String,
}

/// The outcome of the file search (steps 1-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// A library file to load.
    Found(Candidate),
    /// Nothing found on disk; the caller may still try the system loader (step 4).
    /// `looked` lists every place searched and why it did not match, for the message.
    NotFound { looked: Vec<String> },
}

/// Result of asking Python where `onnxruntime` lives: `Ok(Some(package_dir))`,
/// `Ok(None)` when Python runs but the package is not installed, `Err(why)` when Python
/// could not be asked (not installed, timed out).
pub type PythonProbe<'a> = &'a dyn Fn() -> Result<Option<PathBuf>, String>;

/// The library's file name for the system loader (step 4), e.g. `libonnxruntime.so`.
pub fn system_library_name() -> String {
    format!(
        "{}onnxruntime{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The CUDA execution provider's library file name, e.g. `libonnxruntime_providers_cuda.so`.
pub fn cuda_provider_name() -> String {
    format!(
        "{}onnxruntime_providers_cuda{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    )
}

/// The CUDA provider library next to an ONNX Runtime library, where ONNX Runtime looks
/// for it (the GPU wheel ships both in `onnxruntime/capi/`).
pub fn cuda_provider_next_to(library: &Path) -> Option<PathBuf> {
    let dir = library.parent().filter(|d| !d.as_os_str().is_empty())?;
    let provider = dir.join(cuda_provider_name());
    provider.is_file().then_some(provider)
}

/// Runs steps 0-3 of the search. `Err` only for steps 0 and 1: `ORT_CUDA_DYLIB_PATH` or
/// `ORT_DYLIB_PATH` names a file that does not exist.
pub fn locate(ctx: &SearchContext, python: PythonProbe<'_>) -> Result<Located, String> {
    // 0. ORT_CUDA_DYLIB_PATH, then 1. ORT_DYLIB_PATH: explicit, exclusive.
    for (var, value, example) in [
        (
            "ORT_CUDA_DYLIB_PATH",
            &ctx.ort_cuda_dylib_path,
            "the libonnxruntime.so of an onnxruntime-gpu install",
        ),
        ("ORT_DYLIB_PATH", &ctx.ort_dylib_path, "libonnxruntime"),
    ] {
        if let Some(p) = value.as_ref().filter(|p| !p.is_empty()) {
            return explicit(var, p, ctx.cwd.as_deref(), example);
        }
    }
    let mut looked = vec!["ORT_DYLIB_PATH (not set)".to_string()];

    // 2. Virtualenvs.
    for venv in virtualenvs(ctx) {
        match library_in_venv(&venv) {
            Some(path) => {
                return Ok(Located::Found(Candidate {
                    path,
                    source: format!("virtualenv {}", venv.display()),
                }))
            }
            None if venv.is_dir() => looked.push(format!(
                "virtualenv {} (no onnxruntime package)",
                venv.display()
            )),
            None => looked.push(format!("{} (no such directory)", venv.display())),
        }
    }

    // 3. The python3 on PATH.
    match python() {
        Ok(Some(pkg)) => match library_in_dir(&pkg.join("capi")) {
            Some(path) => {
                return Ok(Located::Found(Candidate {
                    path,
                    source: format!("python3 package {}", pkg.display()),
                }))
            }
            None => looked.push(format!(
                "python3 package {} (no {} in capi/)",
                pkg.display(),
                system_library_name()
            )),
        },
        Ok(None) => looked.push("python3 (onnxruntime is not installed)".into()),
        Err(why) => looked.push(format!("python3 ({why})")),
    }
    Ok(Located::NotFound { looked })
}

/// The library an environment variable names (relative to `cwd`), or why it cannot be used.
fn explicit(
    var: &str,
    given: &OsString,
    cwd: Option<&Path>,
    example: &str,
) -> Result<Located, String> {
    let given = PathBuf::from(given);
    let path = match (cwd, given.is_relative()) {
        (Some(cwd), true) => cwd.join(&given),
        _ => given.clone(),
    };
    if path.is_file() {
        Ok(Located::Found(Candidate {
            path,
            source: var.into(),
        }))
    } else {
        Err(format!(
            "{var}={} does not name a file{}; point it at {example} \
             (e.g. .venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime.so.{}) \
             or unset it to search the virtualenv",
            given.display(),
            if path.exists() {
                " (it is a directory)"
            } else {
                ""
            },
            super::EXPECTED_ORT_VERSION
        ))
    }
}

/// Virtualenv directories to search, in order, without duplicates.
fn virtualenvs(ctx: &SearchContext) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    if let Some(v) = ctx.virtual_env.as_ref().filter(|v| !v.is_empty()) {
        push(PathBuf::from(v));
    }
    if let Some(prefix) = ctx.exe.as_deref().and_then(install_prefix) {
        push(prefix);
    }
    if let Some(cwd) = &ctx.cwd {
        push(cwd.join(".venv"));
    }
    if let Some(exe) = &ctx.exe {
        for dir in exe.ancestors().skip(1) {
            push(dir.join(".venv"));
        }
    }
    out
}

/// The environment an executable was installed into by pip (`PREFIX/bin/parity`, or
/// `PREFIX\Scripts\parity.exe`): where its Python dependencies are.
fn install_prefix(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    let name = dir.file_name()?.to_str()?;
    matches!(name, "bin" | "Scripts")
        .then(|| dir.parent().map(Path::to_path_buf))
        .flatten()
}

/// `VENV/lib/python3*/site-packages/onnxruntime/capi/<library>` (or `Lib/site-packages`
/// on Windows); the greatest file name wins when there are several, so a versioned
/// `libonnxruntime.so.1.31.1` is preferred to a bare `libonnxruntime.so`.
fn library_in_venv(venv: &Path) -> Option<PathBuf> {
    let mut site_packages = vec![venv.join("Lib").join("site-packages")];
    if let Ok(entries) = std::fs::read_dir(venv.join("lib")) {
        let mut pythons: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
            .map(|e| e.path().join("site-packages"))
            .collect();
        pythons.sort();
        site_packages.splice(0..0, pythons);
    }
    site_packages
        .iter()
        .find_map(|sp| library_in_dir(&sp.join("onnxruntime").join("capi")))
}

/// The ONNX Runtime library file in `dir`, if any.
fn library_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| is_library_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    libs.sort();
    libs.pop()
}

/// Whether a file name is the main ONNX Runtime library on this platform (not one of the
/// provider libraries that sit next to it).
fn is_library_name(name: &str) -> bool {
    if cfg!(target_os = "windows") {
        name.eq_ignore_ascii_case("onnxruntime.dll")
    } else if cfg!(target_os = "macos") {
        name.starts_with("libonnxruntime.") && name.ends_with(".dylib")
    } else {
        name == "libonnxruntime.so" || name.starts_with("libonnxruntime.so.")
    }
}

/// Asks the `python3` on `PATH` where the `onnxruntime` package is, without importing it
/// (`importlib.util.find_spec`), killing Python after `timeout`.
pub fn python_onnxruntime_dir(timeout: Duration) -> Result<Option<PathBuf>, String> {
    const SCRIPT: &str = "import importlib.util as u\n\
        s = u.find_spec('onnxruntime')\n\
        print(s.submodule_search_locations[0] if s and s.submodule_search_locations else '')";
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => "not found on PATH".to_string(),
            _ => format!("could not start: {e}"),
        })?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {} s", timeout.as_secs()));
            }
            Err(e) => return Err(format!("could not wait for it: {e}")),
        }
    };
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        use std::io::Read;
        let _ = stdout.read_to_string(&mut out);
    }
    if !status.success() {
        return Err(format!("exited with {status}"));
    }
    let dir = out.trim();
    Ok((!dir.is_empty()).then(|| PathBuf::from(dir)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_python() -> Result<Option<PathBuf>, String> {
        Err("not asked in tests".into())
    }

    /// A fake virtualenv holding an (empty) library file.
    fn fake_venv(root: &Path, python: &str) -> PathBuf {
        let capi = root.join(format!(".venv/lib/{python}/site-packages/onnxruntime/capi"));
        std::fs::create_dir_all(&capi).unwrap();
        let lib = capi.join(if cfg!(target_os = "macos") {
            "libonnxruntime.1.31.1.dylib"
        } else if cfg!(target_os = "windows") {
            "onnxruntime.dll"
        } else {
            "libonnxruntime.so.1.31.1"
        });
        std::fs::write(&lib, b"").unwrap();
        std::fs::write(capi.join("libonnxruntime_providers_shared.so"), b"").unwrap();
        lib
    }

    #[test]
    fn missing_ort_dylib_path_is_an_error_naming_it() {
        let ctx = SearchContext {
            ort_dylib_path: Some("/nonexistent/libonnxruntime.so.9".into()),
            ..Default::default()
        };
        let err = locate(&ctx, &no_python).unwrap_err();
        assert!(
            err.contains("ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so.9"),
            "{err}"
        );
        assert!(err.contains("does not name a file"), "{err}");
    }

    #[test]
    fn ort_dylib_path_wins_and_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let venv_lib = fake_venv(tmp.path(), "python3.11");
        let explicit = tmp.path().join("custom.so");
        std::fs::write(&explicit, b"").unwrap();
        let ctx = SearchContext {
            ort_dylib_path: Some("custom.so".into()),
            cwd: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let found = locate(&ctx, &no_python).unwrap();
        assert_eq!(
            found,
            Located::Found(Candidate {
                path: explicit,
                source: "ORT_DYLIB_PATH".into()
            })
        );
        // Empty means unset, as in ort.
        let ctx = SearchContext {
            ort_dylib_path: Some("".into()),
            cwd: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let Located::Found(c) = locate(&ctx, &no_python).unwrap() else {
            panic!("venv not found")
        };
        assert_eq!(c.path, venv_lib);
    }

    #[test]
    fn the_environment_parity_is_installed_in_is_searched_before_the_working_directory() {
        let env = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        // `pip install parity` into ENV: ENV/bin/parity, ENV/lib/python3.11/site-packages.
        let capi = env
            .path()
            .join("lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        let lib = capi.join("libonnxruntime.so.1.31.1");
        std::fs::write(&lib, b"").unwrap();
        let _other = fake_venv(cwd.path(), "python3.11");
        let ctx = SearchContext {
            cwd: Some(cwd.path().to_path_buf()),
            exe: Some(env.path().join("bin/parity")),
            ..Default::default()
        };
        let Located::Found(c) = locate(&ctx, &no_python).unwrap() else {
            panic!("install prefix not found")
        };
        assert_eq!(c.path, lib);
        assert_eq!(c.source, format!("virtualenv {}", env.path().display()));
    }

    #[test]
    fn venv_next_to_an_ancestor_of_the_executable_is_found() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = fake_venv(tmp.path(), "python3.12");
        let ctx = SearchContext {
            cwd: Some(tmp.path().join("elsewhere")),
            exe: Some(tmp.path().join("target/debug/parity")),
            ..Default::default()
        };
        let Located::Found(c) = locate(&ctx, &no_python).unwrap() else {
            panic!("not found")
        };
        assert_eq!(c.path, lib);
        assert_eq!(
            c.source,
            format!("virtualenv {}", tmp.path().join(".venv").display())
        );
    }

    #[test]
    fn virtual_env_comes_before_the_project_venv() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let _project = fake_venv(a.path(), "python3.11");
        let active = fake_venv(b.path(), "python3.11");
        let ctx = SearchContext {
            virtual_env: Some(b.path().join(".venv").into()),
            cwd: Some(a.path().to_path_buf()),
            ..Default::default()
        };
        let Located::Found(c) = locate(&ctx, &no_python).unwrap() else {
            panic!("not found")
        };
        assert_eq!(c.path, active);
    }

    #[test]
    fn python_package_is_used_when_no_venv_has_one() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = fake_venv(tmp.path(), "python3.11");
        let pkg = lib.parent().unwrap().parent().unwrap().to_path_buf();
        let ctx = SearchContext {
            cwd: Some(tmp.path().join("nowhere")),
            ..Default::default()
        };
        let probe = || Ok(Some(pkg.clone()));
        let Located::Found(c) = locate(&ctx, &probe).unwrap() else {
            panic!("not found")
        };
        assert_eq!(c.path, lib);
        assert!(c.source.starts_with("python3 package"), "{}", c.source);
    }

    #[test]
    fn nothing_found_lists_every_place_looked() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join(".venv/lib/python3.11/site-packages")).unwrap();
        let ctx = SearchContext {
            virtual_env: Some(tmp.path().join("active").into()),
            cwd: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let Located::NotFound { looked } = locate(&ctx, &no_python).unwrap() else {
            panic!("found something")
        };
        let all = looked.join("; ");
        assert!(all.contains("ORT_DYLIB_PATH (not set)"), "{all}");
        assert!(all.contains("active (no such directory)"), "{all}");
        assert!(all.contains(".venv (no onnxruntime package)"), "{all}");
        assert!(all.contains("python3 (not asked in tests)"), "{all}");
    }

    #[test]
    fn ort_cuda_dylib_path_comes_before_ort_dylib_path_and_the_venv() {
        let tmp = tempfile::tempdir().unwrap();
        let _venv_lib = fake_venv(tmp.path(), "python3.11");
        let gpu = tmp.path().join("gpu");
        std::fs::create_dir_all(&gpu).unwrap();
        std::fs::write(gpu.join("libonnxruntime.so.1.31.1"), b"").unwrap();
        std::fs::write(tmp.path().join("cpu.so"), b"").unwrap();
        let ctx = SearchContext {
            ort_cuda_dylib_path: Some("gpu/libonnxruntime.so.1.31.1".into()),
            ort_dylib_path: Some("cpu.so".into()),
            cwd: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let Located::Found(c) = locate(&ctx, &no_python).unwrap() else {
            panic!("not found")
        };
        assert_eq!(c.path, gpu.join("libonnxruntime.so.1.31.1"));
        assert_eq!(c.source, "ORT_CUDA_DYLIB_PATH");
        // Exclusive, like ORT_DYLIB_PATH: a wrong path is an error, not a fall-through.
        let ctx = SearchContext {
            ort_cuda_dylib_path: Some("gpu".into()),
            ..ctx
        };
        let err = locate(&ctx, &no_python).unwrap_err();
        assert!(
            err.starts_with("ORT_CUDA_DYLIB_PATH=gpu does not name a file (it is a directory)"),
            "{err}"
        );
        assert!(err.contains("onnxruntime-gpu"), "{err}");
    }

    #[test]
    fn cuda_provider_is_looked_for_next_to_the_library() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = fake_venv(tmp.path(), "python3.11");
        assert_eq!(cuda_provider_next_to(&lib), None, "CPU wheel");
        let provider = lib.with_file_name(cuda_provider_name());
        std::fs::write(&provider, b"").unwrap();
        assert_eq!(cuda_provider_next_to(&lib), Some(provider));
        // The GPU wheel is the same `onnxruntime` package: the venv search finds it.
        let ctx = SearchContext {
            cwd: Some(tmp.path().to_path_buf()),
            ..Default::default()
        };
        let Located::Found(c) = locate(&ctx, &no_python).unwrap() else {
            panic!("not found")
        };
        assert_eq!(c.path, lib);
        assert!(cuda_provider_next_to(&c.path).is_some());
        // A bare name (the system loader's) has no directory to look in.
        assert_eq!(
            cuda_provider_next_to(Path::new(&system_library_name())),
            None
        );
    }

    #[test]
    fn provider_libraries_are_not_the_runtime() {
        assert!(!is_library_name("libonnxruntime_providers_shared.so"));
        assert!(!is_library_name("libonnxruntime_providers_cuda.so"));
        if cfg!(target_os = "linux") {
            assert!(is_library_name("libonnxruntime.so.1.31.1"));
            assert!(is_library_name("libonnxruntime.so"));
        }
    }
}
