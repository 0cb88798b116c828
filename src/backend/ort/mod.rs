//! `ort-cpu` and `ort-cuda`: ONNX Runtime's CPU and CUDA execution providers through the
//! `ort` crate (CUDA in [`cuda`]).
//!
//! ONNX Runtime is the reference backend: it runs the most models and is what most teams
//! ship. parity never links it at build time (`ort`'s `load-dynamic`); the shared library
//! is found at run time by [`locate`] and loaded once per process into one
//! [`OrtRuntime`] (ONNX Runtime allows one environment per process), which every ORT
//! backend of parity shares through [`runtime`].
//!
//! Two `ort` behaviours shape this module: `ort::init()` without a path panics on first
//! use when the library is missing, and converting a `LoadDynamicError` into an
//! `ort::Error` calls into the (absent) library and panics too. So the library is only
//! ever loaded with `ort::init_from(path)`, its error kept as a string, and no ort API is
//! touched unless that succeeded.

pub mod cuda;
pub mod locate;

use self::locate::{Located, SearchContext};
use super::{
    check_inputs, Availability, Backend, BackendError, Dim, IoSpec, Knobs, LoadOptions, Session,
};
use crate::tensor::{DType, Element, Tensor};
use ort::ep;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{
    HasSelectedOutputs, OutputSelector, RunOptions, SessionInputValue, SessionOutputs,
};
use ort::value::{DynValue, PrimitiveTensorElementType, TensorElementType, TensorRef, ValueType};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime release parity is built and tested against (the `ort` crate's
/// `api-31` feature needs at least 1.31). Another 1.x ≥ 1.31 still loads; the probe then
/// says which version it found and which one was expected.
pub const EXPECTED_ORT_VERSION: &str = "1.31.1";

/// How to get a working ONNX Runtime, appended to every "unavailable" reason.
const FIX: &str = "fix: `pip install onnxruntime==1.31.1` into the Python environment parity is \
     installed in (`pip install parity` does), or `python3 -m venv .venv && .venv/bin/pip install \
     onnxruntime==1.31.1` in the working directory, or set ORT_DYLIB_PATH to a libonnxruntime.so of 1.31.x";

/// The ONNX Runtime library this process loaded, for `parity backends` and provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrtLibrary {
    /// The file loaded (a bare file name when the system loader found it).
    pub path: PathBuf,
    /// Where the search found it: `ORT_DYLIB_PATH`, `virtualenv …`, `python3 package …`,
    /// `system loader`.
    pub source: String,
    /// `OrtGetApiBase()->GetVersionString()`, e.g. `1.31.1`.
    pub version: String,
    /// ONNX Runtime's build string (git branch and commit, build type, flags).
    pub build_info: String,
}

/// The process-wide ONNX Runtime: the loaded library and its single environment.
pub struct OrtRuntime {
    /// The one ONNX Runtime environment of this process; every session is built from it.
    pub env: ort::environment::Environment,
    /// What was loaded, from where.
    pub library: OrtLibrary,
}

/// [`OrtLibrary::source`] of a library the system loader found by bare name (its
/// directory is then unknown).
const SYSTEM_LOADER: &str = "system loader";

static RUNTIME: OnceLock<Result<OrtRuntime, String>> = OnceLock::new();

/// Finds and loads ONNX Runtime on first call (see [`locate`] for the order), then
/// returns the same runtime, or the same reason it is unavailable, for the rest of the
/// process. Other ORT backends (e.g. CUDA) must build their sessions from this
/// environment: a second one cannot be created.
pub fn runtime() -> Result<&'static OrtRuntime, String> {
    RUNTIME.get_or_init(init).as_ref().map_err(Clone::clone)
}

fn init() -> Result<OrtRuntime, String> {
    let ctx = SearchContext::from_process();
    let python = || locate::python_onnxruntime_dir(locate::PYTHON_TIMEOUT);
    let located = locate::locate(&ctx, &python)?;
    let (path, source, builder) = match located {
        Located::Found(c) => match ort::init_from(&c.path) {
            Ok(builder) => (c.path, c.source, builder),
            Err(e) => {
                return Err(format!(
                    "cannot load ONNX Runtime found via {}: {}; {FIX}",
                    c.source,
                    load_error_reason(&e)
                ))
            }
        },
        Located::NotFound { looked } => {
            let name = locate::system_library_name();
            match ort::init_from(&name) {
                Ok(builder) => (PathBuf::from(&name), SYSTEM_LOADER.to_string(), builder),
                Err(e) => {
                    return Err(format!(
                        "ONNX Runtime library not found; looked at: {}; system loader: {}; {FIX}",
                        looked.join("; "),
                        load_error_reason(&e)
                    ))
                }
            }
        }
    };
    // From here on the library is loaded, so ort's API is safe to call.
    let env = builder
        .with_name("parity")
        .with_telemetry(false)
        .build()
        .map_err(|e| {
            format!(
                "ONNX Runtime at {}: cannot create an environment: {e}",
                path.display()
            )
        })?;
    let version = runtime_version(&path).unwrap_or_else(|| "unknown".into());
    let build_info = build_info();
    Ok(OrtRuntime {
        env,
        library: OrtLibrary {
            path,
            source,
            version,
            build_info,
        },
    })
}

/// Why `ort::init_from` failed, with the loader's own words (`dlerror`), which ort's
/// message leaves out (it says only "dlopen failed").
fn load_error_reason(e: &ort::LoadDynamicError) -> String {
    match e {
        // dlerror's text names the file already.
        ort::LoadDynamicError::Dlopen { error, path } => std::error::Error::source(error)
            .map(|s| s.to_string())
            .unwrap_or_else(|| format!("{}: {error}", path.display())),
        other => other.to_string(),
    }
}

/// The version string of the library already loaded from `path`: `ort` does not expose
/// `GetVersionString`, so it is read through the library's own `OrtGetApiBase`. Falls
/// back to the release named in the build string.
fn runtime_version(path: &Path) -> Option<String> {
    if let Some(v) = library_version_string(path) {
        return Some(v);
    }
    // "git-branch=rel-1.31.1, ..." in official builds.
    let info = build_info();
    let branch = info.split("git-branch=").nth(1)?.split([',', ' ']).next()?;
    branch.strip_prefix("rel-").map(str::to_string)
}

fn library_version_string(path: &Path) -> Option<String> {
    // SAFETY: `path` is the library ort already loaded, so this only takes another
    // reference to it (released when `lib` drops). `OrtGetApiBase` is the documented C
    // entry point returning a static struct; `GetVersionString` returns a static
    // NUL-terminated string that must not be freed. Null results are checked before use.
    unsafe {
        let lib = libloading::Library::new(path).ok()?;
        let get_base = lib
            .get::<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase>(b"OrtGetApiBase\0")
            .ok()?;
        let base = get_base();
        if base.is_null() {
            return None;
        }
        let s = ((*base).GetVersionString)();
        (!s.is_null()).then(|| std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned())
    }
}

/// ONNX Runtime's build description. Only called once the library is loaded.
fn build_info() -> String {
    // SAFETY: the library is loaded (callers run after `init_from` succeeded), and
    // `GetBuildInfoString` returns a static NUL-terminated string owned by ONNX Runtime.
    unsafe {
        let s = (ort::api().GetBuildInfoString)();
        if s.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(s).to_string_lossy().into_owned()
        }
    }
}

/// `1.31.1`, or `1.32.0 (expected 1.31.1)` when another release was loaded, so every
/// report that prints the backend version also shows the mismatch.
pub fn version_label(version: &str) -> String {
    if version == EXPECTED_ORT_VERSION {
        version.to_string()
    } else {
        format!("{version} (expected {EXPECTED_ORT_VERSION})")
    }
}

/// The `ort-cpu` backend: ONNX Runtime with only the CPU execution provider.
pub struct OrtCpu;

impl Backend for OrtCpu {
    fn name(&self) -> &str {
        "ort-cpu"
    }

    fn probe(&self) -> Availability {
        match runtime() {
            Ok(rt) => Availability::Available {
                version: version_label(&rt.library.version),
                device: "cpu".into(),
            },
            Err(reason) => Availability::Unavailable { reason },
        }
    }

    fn load(&self, model: &Path, options: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        let rt =
            runtime().map_err(|r| BackendError::new(format!("ort-cpu is unavailable: {r}")))?;
        open(&rt.env, model, options, Provider::Cpu)
    }

    fn knobs(&self) -> Knobs {
        knobs()
    }
}

/// The execution provider a session is built for. Each is registered alone and with
/// `error_on_failure`: a provider that cannot be used is an error, never a quiet
/// substitution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    /// The CPU execution provider.
    Cpu,
    /// The CUDA execution provider on this device ordinal, with ONNX Runtime's
    /// fallback of unsupported nodes to the CPU disabled.
    Cuda { device_id: i32 },
}

/// Loads `model` into a session on `provider` and describes its inputs and outputs.
fn open(
    env: &ort::environment::Environment,
    model: &Path,
    options: &LoadOptions,
    provider: Provider,
) -> Result<Box<dyn Session>, BackendError> {
    Ok(Box::new(OrtSession::open(env, model, options, provider)?))
}

/// One execution provider (registered explicitly, failing loudly: a CUDA session never
/// quietly becomes a CPU one; ONNX Runtime's own placement of single nodes the CUDA EP
/// declines is kept, docs/backends.md), graph optimisation level `All`
/// (what ONNX Runtime deployments use by default), intra-op threads from the options
/// (ONNX Runtime's default, one per physical core, when unset), inter-op threads 1
/// (parity runs nodes sequentially; parallel execution mode is off).
///
/// ONNX Runtime also prints a session's errors to stderr, in colour, before returning
/// them; parity reports them itself, so sessions log only fatal messages unless
/// `ORT_LOG` is set (`ORT_LOG=warning` shows ONNX Runtime's own log again).
/// `PARITY_ORT_PROFILE=PREFIX` turns on ONNX Runtime's profiler (`PREFIX_<date>.json`).
fn build_session(
    env: &ort::environment::Environment,
    model: &Path,
    options: &LoadOptions,
    provider: Provider,
) -> Result<ort::session::Session, BackendError> {
    let builder = ort::session::Session::builder(env).map_err(|e| ort_error(&e))?;
    let builder = match provider {
        Provider::Cpu => builder
            .with_execution_providers([ep::CPU::default().build().error_on_failure()])
            .map_err(|e| ort_error(&e))?,
        Provider::Cuda { device_id } => builder
            .with_execution_providers([cuda::provider(device_id)])
            .map_err(|e| ort_error(&e))?,
    };
    let mut builder = builder
        .with_optimization_level(optimization_level(options.optimization.as_deref())?)
        .map_err(|e| ort_error(&e))?
        .with_inter_threads(1)
        .map_err(|e| ort_error(&e))?;
    if std::env::var_os("ORT_LOG").is_none() {
        builder = builder
            .with_log_level(ort::logging::LogLevel::Fatal)
            .map_err(|e| ort_error(&e))?;
    }
    if let Some(n) = options.threads {
        builder = builder.with_intra_threads(n).map_err(|e| ort_error(&e))?;
    }
    if let Some(prefix) = std::env::var_os("PARITY_ORT_PROFILE") {
        // ONNX Runtime's own profiler: a Chrome-trace JSON per session, written when
        // the session is dropped, timing every Run with ONNX Runtime's clock. Used to
        // check `parity bench` against an independent timer (scripts/bench-overhead.sh).
        builder = builder.with_profiling(prefix).map_err(|e| ort_error(&e))?;
    }
    builder.commit_from_file(model).map_err(|e| ort_error(&e))
}

/// ONNX Runtime's graph-optimisation levels by the names its own API gives them
/// (`ORT_DISABLE_ALL`, `ORT_ENABLE_BASIC`, `_EXTENDED`, `_LAYOUT`, `_ALL`), weakest
/// first; `all` is the default.
pub(crate) const LEVELS: [&str; 5] = ["disabled", "basic", "extended", "layout", "all"];

/// The ONNX Runtime level of one of [`LEVELS`] (`None`: `all`).
fn optimization_level(name: Option<&str>) -> Result<GraphOptimizationLevel, BackendError> {
    Ok(match name.unwrap_or("all") {
        "disabled" => GraphOptimizationLevel::Disable,
        "basic" => GraphOptimizationLevel::Level1,
        "extended" => GraphOptimizationLevel::Level2,
        "layout" => GraphOptimizationLevel::Level3,
        "all" => GraphOptimizationLevel::All,
        other => {
            return Err(BackendError::new(format!(
                "ONNX Runtime has no optimisation level `{other}` (known: {})",
                LEVELS.join(", ")
            )))
        }
    })
}

/// What an ONNX Runtime session can vary (both execution providers).
pub(crate) fn knobs() -> Knobs {
    Knobs {
        threads: true,
        optimization_levels: &LEVELS,
        fresh_session: true,
    }
}

/// One-line error; the op is filled in when ONNX Runtime's message names one.
fn ort_error<R>(e: &ort::Error<R>) -> BackendError {
    let message = e.message();
    match op_in_message(message) {
        Some(op) => BackendError {
            op: Some(op),
            ..BackendError::new(message)
        },
        None => BackendError::new(message),
    }
}

/// The op an ONNX Runtime error message is about, for its common forms:
/// `Could not find an implementation for Add(6) node with name ''`,
/// `…ai.onnx.preview.training:Gradient(-1) is not a registered function/op`,
/// `No Op registered for Foo with domain_version of 13`.
fn op_in_message(message: &str) -> Option<String> {
    let ident = |s: &str| {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        (end > 0).then(|| s[..end].to_string())
    };
    if let Some((_, rest)) = message.split_once("implementation for ") {
        return ident(rest);
    }
    if let Some((_, rest)) = message.split_once("No Op registered for ") {
        return ident(rest);
    }
    if let Some((head, _)) = message.split_once(" is not a registered function/op") {
        let call = head.rsplit([' ', ':']).next()?;
        return ident(call);
    }
    None
}

fn element_dtype(ty: TensorElementType) -> Option<DType> {
    Some(match ty {
        TensorElementType::Float32 => DType::F32,
        TensorElementType::Float64 => DType::F64,
        TensorElementType::Float16 => DType::F16,
        TensorElementType::Bfloat16 => DType::BF16,
        TensorElementType::Int8 => DType::I8,
        TensorElementType::Int16 => DType::I16,
        TensorElementType::Int32 => DType::I32,
        TensorElementType::Int64 => DType::I64,
        TensorElementType::Uint8 => DType::U8,
        TensorElementType::Uint16 => DType::U16,
        TensorElementType::Uint32 => DType::U32,
        TensorElementType::Uint64 => DType::U64,
        TensorElementType::Bool => DType::Bool,
        _ => return None,
    })
}

/// The session's view of an input or output. Non-tensor values (sequences, maps) and
/// string tensors have no parity dtype (`None`); `-1` dims become symbolic or unknown.
fn io_spec(name: &str, ty: &ValueType) -> IoSpec {
    match ty {
        ValueType::Tensor {
            ty,
            shape,
            dimension_symbols,
        } => IoSpec {
            name: name.to_string(),
            dtype: element_dtype(*ty),
            dims: Some(
                shape
                    .iter()
                    .enumerate()
                    .map(
                        |(i, &d)| match (usize::try_from(d), dimension_symbols.get(i)) {
                            (Ok(n), _) => Dim::Fixed(n),
                            (Err(_), Some(s)) if !s.is_empty() => Dim::Symbolic(s.clone()),
                            _ => Dim::Unknown,
                        },
                    )
                    .collect(),
            ),
        },
        _ => IoSpec {
            name: name.to_string(),
            dtype: None,
            dims: None,
        },
    }
}

/// A model loaded into ONNX Runtime.
struct OrtSession {
    session: ort::session::Session,
    inputs: Vec<IoSpec>,
    outputs: Vec<IoSpec>,
    /// What [`Session::bind`] prepared, until the next `bind`.
    bound: Option<Bound>,
}

/// Inputs copied into ONNX Runtime values once, and every output preallocated (the
/// values a first run returned, so their shapes are right), for [`Session::run_bound`]:
/// each timed Run then only reads bound inputs and writes the same output buffers.
struct Bound {
    inputs: Vec<SessionInputValue<'static>>,
    options: RunOptions<HasSelectedOutputs>,
}

/// Borrowed element slices of one input, typed (copied only when the bytes are not
/// aligned for the element type, see [`Tensor::values`]).
macro_rules! feeds {
    ($($variant:ident($t:ty) = $ort:ident),* $(,)?) => {
        enum Feed<'a> {
            $($variant(Cow<'a, [$t]>),)*
            Bool(&'a [bool]),
        }

        impl<'a> Feed<'a> {
            fn of(t: &'a Tensor) -> Option<Feed<'a>> {
                match t.dtype() {
                    $(DType::$variant => t.values::<$t>().map(Feed::$variant),)*
                    DType::Bool => t.bools().map(Feed::Bool),
                }
            }

            /// An ONNX Runtime tensor over the same memory (no copy).
            fn value(&self, shape: Vec<i64>) -> ort::Result<SessionInputValue<'_>> {
                match self {
                    $(Feed::$variant(v) => view(shape, v),)*
                    Feed::Bool(v) => view(shape, v),
                }
            }

            /// An ONNX Runtime tensor owning a copy of the data, to stay bound across runs.
            fn owned(&self, shape: Vec<i64>) -> ort::Result<SessionInputValue<'static>> {
                match self {
                    $(Feed::$variant(v) => owned(shape, v),)*
                    Feed::Bool(v) => owned(shape, v),
                }
            }
        }

        /// Copies an output tensor of any numeric or bool element type into a parity tensor.
        fn extract(name: &str, value: &DynValue) -> Result<Tensor, BackendError> {
            let ty = match value.dtype() {
                ValueType::Tensor { ty, .. } => *ty,
                ValueType::Sequence(_) => return Err(non_tensor(name, "a sequence")),
                ValueType::Map { .. } => return Err(non_tensor(name, "a map")),
                ValueType::Optional(_) => return Err(non_tensor(name, "an optional")),
            };
            match ty {
                $(TensorElementType::$ort => take::<$t>(name, value),)*
                TensorElementType::Bool => {
                    let (shape, data) = value.try_extract_tensor::<bool>().map_err(|e| ort_error(&e))?;
                    Tensor::from_bools(dims(name, shape)?, data)
                        .map_err(|e| BackendError::new(format!("output {name}: {e}")))
                }
                TensorElementType::String => Err(BackendError::new(format!(
                    "output {name} is a string tensor; parity compares numeric and bool tensors only"
                ))),
                other => Err(BackendError::new(format!(
                    "output {name} has element type {other:?}, which parity does not handle"
                ))),
            }
        }
    };
}

feeds!(
    F32(f32) = Float32,
    F64(f64) = Float64,
    F16(half::f16) = Float16,
    BF16(half::bf16) = Bfloat16,
    I8(i8) = Int8,
    I16(i16) = Int16,
    I32(i32) = Int32,
    I64(i64) = Int64,
    U8(u8) = Uint8,
    U16(u16) = Uint16,
    U32(u32) = Uint32,
    U64(u64) = Uint64,
);

fn view<T: PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static>(
    shape: Vec<i64>,
    data: &[T],
) -> ort::Result<SessionInputValue<'_>> {
    Ok(TensorRef::from_array_view((shape, data))?.into())
}

fn owned<T: PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static>(
    shape: Vec<i64>,
    data: &[T],
) -> ort::Result<SessionInputValue<'static>> {
    Ok(ort::value::Tensor::from_array((shape, data.to_vec()))?.into())
}

fn take<T: PrimitiveTensorElementType + Element>(
    name: &str,
    value: &DynValue,
) -> Result<Tensor, BackendError> {
    let (shape, data) = value.try_extract_tensor::<T>().map_err(|e| ort_error(&e))?;
    Tensor::from_bytes(
        T::DTYPE,
        dims(name, shape)?,
        bytemuck::cast_slice(data).to_vec(),
    )
    .map_err(|e| BackendError::new(format!("output {name}: {e}")))
}

fn dims(name: &str, shape: &[i64]) -> Result<Vec<usize>, BackendError> {
    shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| BackendError::new(format!("output {name} has a negative dim in {shape:?}")))
}

fn non_tensor(name: &str, what: &str) -> BackendError {
    BackendError::new(format!(
        "output {name} is {what}, not a tensor; parity compares tensors only"
    ))
}

impl Session for OrtSession {
    fn inputs(&self) -> &[IoSpec] {
        &self.inputs
    }

    fn outputs(&self) -> &[IoSpec] {
        &self.outputs
    }

    fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, BackendError> {
        let feeds = self.feeds(inputs)?;
        let values = feeds
            .iter()
            .zip(&self.inputs)
            .map(|((feed, shape), spec)| {
                feed.value(shape.clone())
                    .map_err(|e| BackendError::new(format!("input {}: {}", spec.name, e.message())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = self
            .session
            .run(values.as_slice())
            .map_err(|e| ort_error(&e))?;
        extract_all(&self.outputs, &outputs)
    }

    fn bind(&mut self, inputs: &[Tensor]) -> Result<bool, BackendError> {
        self.bound = None;
        if self.outputs.iter().any(|o| o.dtype.is_none()) {
            // Sequences and maps cannot be preallocated; bench runs them unbound.
            return Ok(false);
        }
        let feeds = self.feeds(inputs)?;
        let values = feeds
            .iter()
            .zip(&self.inputs)
            .map(|((feed, shape), spec)| {
                feed.owned(shape.clone())
                    .map_err(|e| BackendError::new(format!("input {}: {}", spec.name, e.message())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut first = self
            .session
            .run(values.as_slice())
            .map_err(|e| ort_error(&e))?;
        let mut selector = OutputSelector::default();
        for spec in &self.outputs {
            let value = first.remove(&spec.name).ok_or_else(|| {
                BackendError::new(format!("ONNX Runtime returned no output {}", spec.name))
            })?;
            selector = selector.preallocate(spec.name.clone(), value);
        }
        drop(first);
        let options = RunOptions::new()
            .map_err(|e| ort_error(&e))?
            .with_outputs(selector);
        self.bound = Some(Bound {
            inputs: values,
            options,
        });
        Ok(true)
    }

    fn run_bound(&mut self) -> Result<(), BackendError> {
        self.with_bound_outputs(|_, _| Ok(()))
    }
}

impl OrtSession {
    fn open(
        env: &ort::environment::Environment,
        model: &Path,
        options: &LoadOptions,
        provider: Provider,
    ) -> Result<OrtSession, BackendError> {
        let session = build_session(env, model, options, provider)?;
        let inputs = session
            .inputs()
            .iter()
            .map(|o| io_spec(o.name(), o.dtype()))
            .collect();
        let outputs = session
            .outputs()
            .iter()
            .map(|o| io_spec(o.name(), o.dtype()))
            .collect();
        Ok(OrtSession {
            session,
            inputs,
            outputs,
            bound: None,
        })
    }

    /// Checks `inputs` and views each as typed elements with its ONNX Runtime shape.
    fn feeds<'t>(&self, inputs: &'t [Tensor]) -> Result<Vec<(Feed<'t>, Vec<i64>)>, BackendError> {
        check_inputs(&self.inputs, inputs)?;
        inputs
            .iter()
            .zip(&self.inputs)
            .map(|(t, spec)| {
                let feed = Feed::of(t).ok_or_else(|| {
                    BackendError::new(format!(
                        "input {}: cannot view {} data",
                        spec.name,
                        t.dtype()
                    ))
                })?;
                let shape = t
                    .shape()
                    .iter()
                    .map(|&d| i64::try_from(d))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| {
                        BackendError::new(format!("input {}: dim too large", spec.name))
                    })?;
                Ok((feed, shape))
            })
            .collect()
    }

    /// Runs the bound inputs into the preallocated outputs and hands the results to `f`.
    fn with_bound_outputs<R>(
        &mut self,
        f: impl FnOnce(&[IoSpec], &SessionOutputs) -> Result<R, BackendError>,
    ) -> Result<R, BackendError> {
        let bound = self
            .bound
            .as_ref()
            .ok_or_else(|| BackendError::new("no inputs are bound to this session"))?;
        let outputs = self
            .session
            .run_with_options(bound.inputs.as_slice(), &bound.options)
            .map_err(|e| ort_error(&e))?;
        f(&self.outputs, &outputs)
    }
}

/// Copies every declared output out of a Run's results, in graph order.
fn extract_all(
    specs: &[IoSpec],
    outputs: &SessionOutputs,
) -> Result<Vec<(String, Tensor)>, BackendError> {
    specs
        .iter()
        .map(|spec| {
            let value = outputs.get(&spec.name).ok_or_else(|| {
                BackendError::new(format!("ONNX Runtime returned no output {}", spec.name))
            })?;
            Ok((spec.name.clone(), extract(&spec.name, value)?))
        })
        .collect()
}

#[cfg(test)]
mod tests;
