//! Finding the ONNX Runtime shared library, without loading it.
//!
//! parity links ONNX Runtime at run time (`ort`'s `load-dynamic`), so it must find
//! `libonnxruntime` itself. The search is a pure function of a [`SearchContext`] (the
//! environment variables, current directory and executable path it looks at) plus a
//! Python probe passed in, so tests describe a machine without touching the process.
//!
//! Order (documented in `docs/backends.md`):
//! 1. `ORT_DYLIB_PATH`: when set (and not empty) it is the only place looked at; a path
//!    that does not exist is an error naming it, never a silent fall-through.
//! 2. A virtualenv: `$VIRTUAL_ENV`, then `./.venv`, then `.venv` in each ancestor
//!    directory of the executable (so `target/debug/parity` finds the repository's
//!    `.venv`); inside each, `lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
//! 3. The `onnxruntime` package of the `python3` on `PATH` (located with
//!    `importlib.util.find_spec`, which does not import it), with a short timeout.
//! 4. The system loader's search path (`libonnxruntime.so` by bare name): tried only by
//!    the caller, through `ort::init_from`, which reports an error instead of panicking.
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

/// Runs steps 1-3 of the search. `Err` only for step 1: `ORT_DYLIB_PATH` names a file
/// that does not exist.
pub fn locate(ctx: &SearchContext, python: PythonProbe<'_>) -> Result<Located, String> {
    // 1. ORT_DYLIB_PATH: explicit, exclusive.
    if let Some(p) = ctx.ort_dylib_path.as_ref().filter(|p| !p.is_empty()) {
        let given = PathBuf::from(p);
        let path = match (&ctx.cwd, given.is_relative()) {
            (Some(cwd), true) => cwd.join(&given),
            _ => given.clone(),
        };
        return if path.is_file() {
            Ok(Located::Found(Candidate {
                path,
                source: "ORT_DYLIB_PATH".into(),
            }))
        } else {
            Err(format!(
                "ORT_DYLIB_PATH={} does not name a file{}; point it at libonnxruntime \
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
        };
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
    fn provider_libraries_are_not_the_runtime() {
        assert!(!is_library_name("libonnxruntime_providers_shared.so"));
        assert!(!is_library_name("libonnxruntime_providers_cuda.so"));
        if cfg!(target_os = "linux") {
            assert!(is_library_name("libonnxruntime.so.1.31.1"));
            assert!(is_library_name("libonnxruntime.so"));
        }
    }
}
