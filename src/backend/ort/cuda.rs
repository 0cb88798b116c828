//! `ort-cuda`: ONNX Runtime's CUDA execution provider, from the GPU build of ONNX Runtime
//! (the `onnxruntime-gpu` wheel) loaded at run time like the CPU one.
//!
//! `ort` loads one ONNX Runtime library per process, shared with `ort-cpu` (see
//! [`super::runtime`]); the GPU build also has the CPU execution provider, so it serves
//! both. Which library that is follows [`super::locate`]: `ORT_CUDA_DYLIB_PATH` first,
//! then the CPU search, which finds the GPU wheel where the CPU wheel would be.
//!
//! Whether CUDA can be used is checked in this order, the first failure being the reason
//! `parity backends` and `--backend ort-cuda` give: a GPU build was loaded; its
//! `libonnxruntime_providers_cuda.so` is next to it; the NVIDIA driver (`libcuda.so.1`)
//! loads; it reports a device; the CUDA execution provider registers (it loads the CUDA
//! and cuDNN libraries then). `CUDA::is_available()` only says the provider is compiled
//! in, so the last step registers it for real, with `error_on_failure`.

use super::{
    locate, open, runtime, version_label, Availability, Backend, BackendError, Knobs, LoadOptions,
    OrtRuntime, Provider, Session, SYSTEM_LOADER,
};
use ort::ep::{self, ExecutionProvider};
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::path::Path;
use std::sync::OnceLock;

/// The CUDA device ordinal sessions run on.
const DEVICE_ID: i32 = 0;

/// How to get the GPU build, appended to the reasons that concern it.
const GPU_FIX: &str = "fix: `pip install onnxruntime-gpu==1.31.1` (it replaces `onnxruntime`) into the \
     environment the library above came from (the project's .venv, or the one parity is installed in), \
     or set ORT_CUDA_DYLIB_PATH to the libonnxruntime.so of an onnxruntime-gpu 1.31.x install";

/// The CUDA execution provider as parity registers it: device [`DEVICE_ID`], an error
/// when it cannot be registered (ONNX Runtime's default is to skip it silently).
pub(super) fn provider(device_id: i32) -> ep::ExecutionProviderDispatch {
    ep::CUDA::default()
        .with_device_id(device_id)
        .build()
        .error_on_failure()
}

/// The `ort-cuda` backend: ONNX Runtime with only the CUDA execution provider.
pub struct OrtCuda;

static READY: OnceLock<Result<String, String>> = OnceLock::new();

/// The runtime and the device label once every check passed (done once per process),
/// or the first reason CUDA cannot be used.
fn ready() -> Result<(&'static OrtRuntime, &'static str), String> {
    let rt = runtime().map_err(|r| {
        format!("GPU build of ONNX Runtime not found: {r}; for ort-cuda, {GPU_FIX}")
    })?;
    match READY.get_or_init(|| check(rt)) {
        Ok(device) => Ok((rt, device.as_str())),
        Err(reason) => Err(reason.clone()),
    }
}

/// The checks after the library is loaded, in the order of the module's description.
fn check(rt: &OrtRuntime) -> Result<String, String> {
    let lib = &rt.library;
    let loaded = format!("{} (found via {})", lib.path.display(), lib.source);
    match ep::CUDA::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "GPU build of ONNX Runtime not found: the library loaded, {loaded}, is a CPU \
                 build (no CUDA execution provider compiled in); {GPU_FIX}"
            ))
        }
        Err(e) => {
            return Err(format!(
                "cannot list the execution providers of {loaded}: {}",
                e.message()
            ))
        }
    }
    // A library the system loader found has no known directory: the registration below
    // then names the provider file ONNX Runtime could not open.
    if lib.source != SYSTEM_LOADER && locate::cuda_provider_next_to(&lib.path).is_none() {
        return Err(format!(
            "the GPU build of ONNX Runtime at {loaded} has no {} next to it; reinstall \
             onnxruntime-gpu==1.31.1",
            locate::cuda_provider_name()
        ));
    }
    let device = cuda_device()?;
    register(&rt.env)?;
    Ok(device)
}

/// Registers the CUDA execution provider on a throw-away session builder: this is when
/// ONNX Runtime loads the provider library and the CUDA and cuDNN libraries it needs.
fn register(env: &ort::environment::Environment) -> Result<(), String> {
    let why = |m: &str| {
        format!(
            "the CUDA execution provider cannot be registered: {m}; it needs the CUDA 13 and \
             cuDNN 9 libraries on the loader path (e.g. the lib/ directories of the \
             nvidia-cublas, nvidia-cuda-runtime and nvidia-cudnn-cu13 wheels in LD_LIBRARY_PATH)"
        )
    };
    ort::session::Session::builder(env)
        .map_err(|e| why(e.message()))?
        .with_execution_providers([provider(DEVICE_ID)])
        .map_err(|e| why(e.message()))?;
    Ok(())
}

/// The NVIDIA driver's library name on this platform.
fn driver_library_name() -> &'static str {
    if cfg!(target_os = "windows") {
        "nvcuda.dll"
    } else {
        "libcuda.so.1"
    }
}

/// Asks the NVIDIA driver (`cuInit`, `cuDeviceGetCount`, `cuDeviceGetName`) for device
/// [`DEVICE_ID`]: `cuda:0 (NVIDIA H100 80GB HBM3)`, or why there is none.
fn cuda_device() -> Result<String, String> {
    type Init = unsafe extern "C" fn(c_uint) -> c_int;
    type Count = unsafe extern "C" fn(*mut c_int) -> c_int;
    type Get = unsafe extern "C" fn(*mut c_int, c_int) -> c_int;
    type Name = unsafe extern "C" fn(*mut c_char, c_int, c_int) -> c_int;
    type ErrorName = unsafe extern "C" fn(c_int, *mut *const c_char) -> c_int;
    let name = driver_library_name();
    // SAFETY: loading the driver library runs only its own initialisers. The symbols are
    // the CUDA driver API's, declared with their C signatures (CUresult = int,
    // CUdevice = int); every out-pointer is a valid local, and the strings the driver
    // returns are static or written into the local buffer, NUL-terminated.
    unsafe {
        let lib = libloading::Library::new(name).map_err(|e| {
            format!("no NVIDIA driver: {name} cannot be loaded ({e}); ort-cuda needs an NVIDIA GPU and its driver")
        })?;
        let symbol_error =
            |e: libloading::Error| format!("the NVIDIA driver {name} is unusable: {e}");
        let init = lib.get::<Init>(b"cuInit\0").map_err(symbol_error)?;
        let count = lib
            .get::<Count>(b"cuDeviceGetCount\0")
            .map_err(symbol_error)?;
        let get = lib.get::<Get>(b"cuDeviceGet\0").map_err(symbol_error)?;
        let error_name = |rc: c_int| {
            let mut s: *const c_char = std::ptr::null();
            match lib.get::<ErrorName>(b"cuGetErrorName\0") {
                Ok(f) if f(rc, &mut s) == 0 && !s.is_null() => {
                    CStr::from_ptr(s).to_string_lossy().into_owned()
                }
                _ => format!("CUresult {rc}"),
            }
        };
        let rc = init(0);
        if rc != 0 {
            return Err(format!(
                "NVIDIA driver {name} present but no usable CUDA device: cuInit failed with {}",
                error_name(rc)
            ));
        }
        let mut n: c_int = 0;
        let rc = count(&mut n);
        if rc != 0 || n <= DEVICE_ID {
            return Err(format!(
                "NVIDIA driver {name} present but no CUDA device {DEVICE_ID} (cuDeviceGetCount: {n}, {})",
                if rc == 0 { "CUDA_SUCCESS".to_string() } else { error_name(rc) }
            ));
        }
        let mut device: c_int = 0;
        let mut buf = [0 as c_char; 256];
        let label = if get(&mut device, DEVICE_ID) == 0 {
            match lib.get::<Name>(b"cuDeviceGetName\0") {
                Ok(f) if f(buf.as_mut_ptr(), buf.len() as c_int, device) == 0 => {
                    Some(CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned())
                }
                _ => None,
            }
        } else {
            None
        };
        // The driver is initialised now and ONNX Runtime will use it: keep it loaded
        // rather than unload an initialised driver.
        std::mem::forget(lib);
        Ok(match label {
            Some(label) => format!("cuda:{DEVICE_ID} ({label})"),
            None => format!("cuda:{DEVICE_ID}"),
        })
    }
}

impl Backend for OrtCuda {
    fn name(&self) -> &str {
        "ort-cuda"
    }

    fn probe(&self) -> Availability {
        match ready() {
            Ok((rt, device)) => Availability::Available {
                version: version_label(&rt.library.version),
                device: device.to_string(),
            },
            Err(reason) => Availability::Unavailable { reason },
        }
    }

    fn load(&self, model: &Path, options: &LoadOptions) -> Result<Box<dyn Session>, BackendError> {
        let (rt, _) =
            ready().map_err(|r| BackendError::new(format!("ort-cuda is unavailable: {r}")))?;
        open(
            &rt.env,
            model,
            options,
            Provider::Cuda {
                device_id: DEVICE_ID,
            },
        )
    }

    fn knobs(&self) -> Knobs {
        super::knobs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_driver_the_reason_names_libcuda() {
        match cuda_device() {
            // A machine with a GPU: nothing to check here.
            Ok(device) => assert!(device.starts_with("cuda:0"), "{device}"),
            Err(reason) => assert!(
                reason.contains(driver_library_name()) && reason.contains("NVIDIA driver"),
                "{reason}"
            ),
        }
    }
}
