//! The allclose scan on an NVIDIA GPU: `kernels/compare.cu`, compiled at run time with
//! NVRTC and launched through the CUDA driver API (`cudarc`, loaded dynamically: nothing
//! CUDA is needed to build or to run on a machine without a GPU).
//!
//! Contract:
//! - Same result as the CPU path: each element is widened to f64 and judged by the same
//!   rule, so the verdict, the mismatch count, the worst element and the maxima are
//!   exactly the CPU's; sums (mean abs error, cosine) differ only by reduction order.
//! - Deterministic: block `b` owns elements `b * BLOCK_ELEMS ..`, its threads and their
//!   tree merge follow a fixed order, and the host folds the per-block partials in block
//!   order ([`fold`]) in f64. No atomics. [`emulate_partials`] computes the same partials
//!   on the CPU, bit for bit (the kernels are compiled with `--fmad=false`), which is how
//!   the GPU path is tested on machines without one.
//! - Routing ([`routed_scan`]): `PARITY_COMPARE_DEVICE=auto` (default) uses the GPU for
//!   float tensors of at least [`AUTO_THRESHOLD`] elements when one is usable and the CPU
//!   otherwise, silently (the CPU result is the exact one); `cpu` never touches CUDA;
//!   `cuda` uses the GPU for every non-empty float tensor, and a GPU that cannot be used
//!   is a refusal the caller sees. Integer and bool tensors are always compared on the CPU.
//! - No cudarc call happens before the driver and NVRTC libraries are known to be present
//!   (cudarc panics otherwise); each entry point also runs under `catch_unwind`.

pub mod cases;
#[cfg(test)]
mod tests;

use super::stats::{FiniteStats, NonFinite, Summary, Worst};
use super::tolerance::Tolerance;
use super::{compared, layout_problem, OutputComparison};
use crate::tensor::{DType, Element, Tensor};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PushKernelArg,
};
use half::{bf16, f16};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Threads per block (`THREADS` in the kernel source).
pub const THREADS: usize = 256;
/// Elements each block owns, a fixed contiguous range (`BLOCK_ELEMS` in the kernel).
pub const BLOCK_ELEMS: usize = THREADS * 64;
/// 64-bit words in one block's partial (`PARTIAL_WORDS` in the kernel).
pub const PARTIAL_WORDS: usize = 16;
/// Smallest float tensor (elements) that automatic routing sends to the GPU: 4M elements,
/// 16 MiB per f32 tensor. Below it the fixed costs (allocation, launch, the copies'
/// latency) take longer than the CPU scan of the whole tensor, which runs at several GB/s
/// per core; above it the GPU pass is bounded by the host-to-device copy.
pub const AUTO_THRESHOLD: usize = 1 << 22;
/// The environment variable that picks the comparison device: `auto`, `cpu` or `cuda`.
pub const DEVICE_ENV: &str = "PARITY_COMPARE_DEVICE";
/// The CUDA source of the comparison kernels.
pub const KERNEL_SOURCE: &str = include_str!("../../kernels/compare.cu");
/// The kernels' entry points, one per float dtype, in [`kernel_for`] order.
pub const KERNELS: [&str; 4] = [
    "parity_compare_f32",
    "parity_compare_f64",
    "parity_compare_f16",
    "parity_compare_bf16",
];

/// Position in [`KERNELS`] of the kernel for `dtype`; `None` for integer and bool dtypes.
pub fn kernel_for(dtype: DType) -> Option<usize> {
    match dtype {
        DType::F32 => Some(0),
        DType::F64 => Some(1),
        DType::F16 => Some(2),
        DType::BF16 => Some(3),
        _ => None,
    }
}

const NONE_INDEX: u64 = u64::MAX;

/// One block's statistics as the kernel writes them: 16 words, floats as their bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial(pub [u64; PARTIAL_WORDS]);

/// The per-thread state of the kernel (`struct State` in compare.cu), mirrored on the
/// CPU for [`emulate_partials`].
#[derive(Clone, Copy)]
struct State {
    mismatched: u64,
    max_abs: f64,
    max_rel: f64,
    sum_abs: f64,
    dot: f64,
    sum_sq_actual: f64,
    sum_sq_expected: f64,
    worst_excess: f64,
    worst_abs: f64,
    worst_index: u64,
    non_finite_pairs: u64,
    nan_where_finite: u64,
    inf_where_finite: u64,
    not_nan: u64,
    not_same_inf: u64,
    first_non_finite: u64,
}

impl State {
    const EMPTY: State = State {
        mismatched: 0,
        max_abs: 0.0,
        max_rel: 0.0,
        sum_abs: 0.0,
        dot: 0.0,
        sum_sq_actual: 0.0,
        sum_sq_expected: 0.0,
        worst_excess: 0.0,
        worst_abs: 0.0,
        worst_index: 0,
        non_finite_pairs: 0,
        nan_where_finite: 0,
        inf_where_finite: 0,
        not_nan: 0,
        not_same_inf: 0,
        first_non_finite: NONE_INDEX,
    };

    /// The kernel's `add`: one element, operation for operation.
    fn add(&mut self, e: f64, a: f64, index: u64, tol: Tolerance) {
        if e.is_finite() && a.is_finite() {
            let abs = (a - e).abs();
            let magnitude = e.abs();
            let allowed = tol.atol + tol.rtol * magnitude;
            self.mismatched += u64::from(abs > allowed);
            self.sum_abs += abs;
            self.dot += a * e;
            self.sum_sq_actual += a * a;
            self.sum_sq_expected += e * e;
            if abs > self.max_abs {
                self.max_abs = abs;
            }
            if magnitude > 0.0 {
                let rel = abs / magnitude;
                if rel > self.max_rel {
                    self.max_rel = rel;
                }
            }
            if abs > 0.0 {
                let excess = abs / allowed;
                if excess > self.worst_excess
                    || (excess == self.worst_excess && abs > self.worst_abs)
                {
                    self.worst_excess = excess;
                    self.worst_abs = abs;
                    self.worst_index = index;
                }
            }
            return;
        }
        self.non_finite_pairs += 1;
        let counter = if e.is_nan() {
            (!a.is_nan()).then_some(&mut self.not_nan)
        } else if e.is_infinite() {
            (a != e).then_some(&mut self.not_same_inf)
        } else if a.is_nan() {
            Some(&mut self.nan_where_finite)
        } else {
            Some(&mut self.inf_where_finite)
        };
        if let Some(counter) = counter {
            *counter += 1;
            self.first_non_finite = self.first_non_finite.min(index);
        }
    }

    /// The kernel's `merge`: `b` (the thread `stride` above) into `self`.
    fn merge(&mut self, b: &State) {
        self.mismatched += b.mismatched;
        if b.max_abs > self.max_abs {
            self.max_abs = b.max_abs;
        }
        if b.max_rel > self.max_rel {
            self.max_rel = b.max_rel;
        }
        self.sum_abs += b.sum_abs;
        self.dot += b.dot;
        self.sum_sq_actual += b.sum_sq_actual;
        self.sum_sq_expected += b.sum_sq_expected;
        if b.worst_abs > 0.0 {
            let worse = self.worst_abs == 0.0
                || b.worst_excess > self.worst_excess
                || (b.worst_excess == self.worst_excess
                    && (b.worst_abs > self.worst_abs
                        || (b.worst_abs == self.worst_abs && b.worst_index < self.worst_index)));
            if worse {
                self.worst_excess = b.worst_excess;
                self.worst_abs = b.worst_abs;
                self.worst_index = b.worst_index;
            }
        }
        self.non_finite_pairs += b.non_finite_pairs;
        self.nan_where_finite += b.nan_where_finite;
        self.inf_where_finite += b.inf_where_finite;
        self.not_nan += b.not_nan;
        self.not_same_inf += b.not_same_inf;
        self.first_non_finite = self.first_non_finite.min(b.first_non_finite);
    }

    fn partial(&self) -> Partial {
        Partial([
            self.mismatched,
            self.max_abs.to_bits(),
            self.max_rel.to_bits(),
            self.sum_abs.to_bits(),
            self.dot.to_bits(),
            self.sum_sq_actual.to_bits(),
            self.sum_sq_expected.to_bits(),
            self.worst_excess.to_bits(),
            self.worst_abs.to_bits(),
            self.worst_index,
            self.non_finite_pairs,
            self.nan_where_finite,
            self.inf_where_finite,
            self.not_nan,
            self.not_same_inf,
            self.first_non_finite,
        ])
    }
}

impl Partial {
    /// The block's statistics as a scan [`Summary`] of its `elements` elements.
    fn summary(&self, elements: u64) -> Summary {
        let w = &self.0;
        let f = |i: usize| f64::from_bits(w[i]);
        let worst = (f(8) > 0.0).then(|| Worst {
            excess: f(7),
            abs: f(8),
            index: w[9],
        });
        Summary {
            elements,
            finite: FiniteStats {
                mismatched: w[0],
                max_abs: f(1),
                max_rel: f(2),
                sum_abs: f(3),
                dot: f(4),
                sum_sq_actual: f(5),
                sum_sq_expected: f(6),
                worst,
            },
            non_finite: NonFinite {
                pairs: w[10],
                nan_where_finite: w[11],
                inf_where_finite: w[12],
                not_nan: w[13],
                not_same_inf: w[14],
                first_mismatch: (w[15] != NONE_INDEX).then_some(w[15]),
            },
        }
    }
}

/// Folds the partials of a scan of `len` elements, in block order, into the summary the
/// CPU scan would give (sums up to reduction order).
pub(super) fn fold(partials: &[Partial], len: usize) -> Summary {
    partials
        .iter()
        .enumerate()
        .map(|(block, partial)| {
            let start = block * BLOCK_ELEMS;
            let elements = len.min(start + BLOCK_ELEMS).saturating_sub(start);
            partial.summary(elements as u64)
        })
        .fold(Summary::default(), Summary::merge)
}

/// The kernel's partials computed on the CPU: same blocks, same per-thread order, same
/// tree merge, same operations, so the result is the GPU's bit for bit. `None` for
/// integer and bool tensors or when the two tensors' dtypes or lengths differ.
pub fn emulate_partials(
    expected: &Tensor,
    actual: &Tensor,
    tol: Tolerance,
) -> Option<Vec<Partial>> {
    if expected.dtype() != actual.dtype() || expected.numel() != actual.numel() {
        return None;
    }
    match expected.dtype() {
        DType::F32 => emulate_typed::<f32>(expected, actual, tol, f64::from),
        DType::F64 => emulate_typed::<f64>(expected, actual, tol, |v| v),
        DType::F16 => emulate_typed::<f16>(expected, actual, tol, f16::to_f64),
        DType::BF16 => emulate_typed::<bf16>(expected, actual, tol, bf16::to_f64),
        _ => None,
    }
}

fn emulate_typed<T: Element>(
    expected: &Tensor,
    actual: &Tensor,
    tol: Tolerance,
    widen: fn(T) -> f64,
) -> Option<Vec<Partial>> {
    let (e, a) = (expected.values::<T>()?, actual.values::<T>()?);
    let blocks = e.len().div_ceil(BLOCK_ELEMS);
    let partials = (0..blocks)
        .map(|block| {
            let start = block * BLOCK_ELEMS;
            let end = e.len().min(start + BLOCK_ELEMS);
            let mut threads = [State::EMPTY; THREADS];
            for (t, state) in threads.iter_mut().enumerate() {
                for i in (start + t..end).step_by(THREADS) {
                    state.add(widen(e[i]), widen(a[i]), i as u64, tol);
                }
            }
            let mut stride = THREADS / 2;
            while stride > 0 {
                for t in 0..stride {
                    let later = threads[t + stride];
                    threads[t].merge(&later);
                }
                stride /= 2;
            }
            threads[0].partial()
        })
        .collect();
    Some(partials)
}

/// The tensor's values as `T`.
fn host_values<T: Element>(tensor: &Tensor) -> Result<std::borrow::Cow<'_, [T]>, String> {
    tensor
        .values::<T>()
        .ok_or_else(|| format!("{} values could not be read", tensor.dtype()))
}

/// Runs `f` and turns a panic inside cudarc into an error message.
fn guarded<R>(what: &str, f: impl FnOnce() -> Result<R, String>) -> Result<R, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(format!("{what}: cudarc panicked")))
}

/// Whether the CUDA libraries can be loaded, asked before any other cudarc call (which
/// would panic without them).
#[cfg(not(feature = "candle-cuda"))]
mod culib_present {
    /// `libcuda.so.1`.
    pub(super) fn driver() -> bool {
        // SAFETY: only tries to open the library by its usual names.
        unsafe { cudarc::driver::sys::is_culib_present() }
    }

    /// `libnvrtc.so.13`.
    pub(super) fn nvrtc() -> bool {
        // SAFETY: only tries to open the library by its usual names.
        unsafe { cudarc::nvrtc::sys::is_culib_present() }
    }
}

/// In the candle-cuda build candle links cudarc to the CUDA libraries (`dynamic-linking`):
/// the binary could not have started without them.
#[cfg(feature = "candle-cuda")]
mod culib_present {
    /// `libcuda.so.1`: linked.
    pub(super) fn driver() -> bool {
        true
    }

    /// `libnvrtc.so.13`: linked.
    pub(super) fn nvrtc() -> bool {
        true
    }
}

/// Whether NVRTC (`libnvrtc.so.13`, CUDA 13) can be loaded; the reason when not.
pub fn nvrtc_present() -> Result<(), String> {
    if culib_present::nvrtc() {
        Ok(())
    } else {
        Err(
            "libnvrtc.so.13 not found: install the nvidia-cuda-nvrtc wheel (CUDA 13) \
             and put its lib directory on LD_LIBRARY_PATH"
                .to_string(),
        )
    }
}

/// Compiles [`KERNEL_SOURCE`] to PTX for `arch` (an NVRTC `--gpu-architecture` value such
/// as `compute_90`), with `--fmad=false` so that results match [`emulate_partials`].
pub fn compile_ptx(arch: &str) -> Result<String, String> {
    nvrtc_present()?;
    guarded("NVRTC", || {
        let options = cudarc::nvrtc::CompileOptions {
            fmad: Some(false),
            options: vec![format!("--gpu-architecture={arch}")],
            name: Some("compare.cu".to_string()),
            ..Default::default()
        };
        cudarc::nvrtc::compile_ptx_with_opts(KERNEL_SOURCE, options)
            .map(|ptx| ptx.to_src())
            .map_err(|e| format!("NVRTC could not compile kernels/compare.cu for {arch}: {e}"))
    })
}

/// Whether a CUDA device can be used: its name, or why not (no driver, no device).
/// Loads the driver library, never NVRTC.
pub fn availability() -> Result<String, String> {
    let ctx = context(0)?;
    guarded("CUDA driver", || {
        ctx.name().map_err(|e| format!("CUDA device 0: {e}"))
    })
}

/// The primary context of CUDA device `ordinal` (the one ONNX Runtime and candle use
/// too), after checking that the driver library is present; why not otherwise.
pub fn context(ordinal: usize) -> Result<Arc<CudaContext>, String> {
    if !culib_present::driver() {
        return Err("libcuda.so.1 not found: no NVIDIA driver".to_string());
    }
    guarded("CUDA driver", || {
        let count = CudaContext::device_count().map_err(|e| format!("CUDA driver: {e}"))?;
        if usize::try_from(count).map_or(true, |n| n <= ordinal) {
            return Err(format!("no CUDA device {ordinal} ({count} found)"));
        }
        CudaContext::new(ordinal).map_err(|e| format!("CUDA device {ordinal}: {e}"))
    })
}

/// The comparison kernels loaded on device 0, ready to compare host tensors.
pub struct GpuComparer {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    functions: Vec<CudaFunction>,
    name: String,
}

/// Device facts for reports and the GPU probe.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeviceInfo {
    /// The device's name, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// The driver's CUDA version as `major.minor`.
    pub driver_version: String,
    /// Compute capability as `major.minor`.
    pub compute_capability: String,
}

impl GpuComparer {
    /// Opens device 0 and compiles and loads the kernels for its architecture; the reason
    /// when there is no usable GPU or NVRTC.
    pub fn new() -> Result<GpuComparer, String> {
        availability()?;
        nvrtc_present()?;
        guarded("CUDA", || {
            let ctx = CudaContext::new(0).map_err(|e| format!("CUDA device 0: {e}"))?;
            let name = ctx.name().map_err(|e| format!("CUDA device 0: {e}"))?;
            let (major, minor) = ctx
                .compute_capability()
                .map_err(|e| format!("CUDA device 0: {e}"))?;
            let ptx = compile_ptx(&format!("compute_{major}{minor}"))?;
            let module = ctx
                .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
                .map_err(|e| format!("loading the comparison kernels: {e}"))?;
            let functions = KERNELS
                .iter()
                .map(|k| {
                    module
                        .load_function(k)
                        .map_err(|e| format!("kernel {k}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let stream = ctx.default_stream();
            Ok(GpuComparer {
                ctx,
                stream,
                functions,
                name,
            })
        })
    }

    /// The device's name, driver version and compute capability.
    pub fn info(&self) -> Result<DeviceInfo, String> {
        guarded("CUDA", || {
            let mut version = 0;
            // SAFETY: the driver library is loaded (checked in `new`); writes one int.
            unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) }
                .result()
                .map_err(|e| format!("cuDriverGetVersion: {e}"))?;
            let (major, minor) = self.ctx.compute_capability().map_err(|e| e.to_string())?;
            Ok(DeviceInfo {
                name: self.name.clone(),
                driver_version: format!("{}.{}", version / 1000, version % 1000 / 10),
                compute_capability: format!("{major}.{minor}"),
            })
        })
    }

    /// The per-block partials of comparing two float tensors of equal dtype and length
    /// on the device (copied there first).
    pub fn partials(
        &self,
        expected: &Tensor,
        actual: &Tensor,
        tol: Tolerance,
    ) -> Result<Vec<Partial>, String> {
        if expected.dtype() != actual.dtype() || expected.numel() != actual.numel() {
            return Err("the two tensors differ in dtype or length".to_string());
        }
        let kernel = kernel_for(expected.dtype())
            .ok_or_else(|| format!("no GPU kernel for {}", expected.dtype()))?;
        guarded("CUDA", || match expected.dtype() {
            DType::F32 => self.partials_typed::<f32, f32>(kernel, expected, actual, tol),
            DType::F64 => self.partials_typed::<f64, f64>(kernel, expected, actual, tol),
            DType::F16 => self.partials_typed::<f16, u16>(kernel, expected, actual, tol),
            _ => self.partials_typed::<bf16, u16>(kernel, expected, actual, tol),
        })
    }

    /// Copies both tensors as `D` (the same bits as `T`) and runs the kernel.
    fn partials_typed<T, D>(
        &self,
        kernel: usize,
        expected: &Tensor,
        actual: &Tensor,
        tol: Tolerance,
    ) -> Result<Vec<Partial>, String>
    where
        T: Element + bytemuck::Pod,
        D: DeviceRepr + bytemuck::Pod,
    {
        let (e, a) = (host_values::<T>(expected)?, host_values::<T>(actual)?);
        let copy = |v: &[T]| {
            self.stream
                .clone_htod(bytemuck::cast_slice::<T, D>(v))
                .map_err(|e| format!("copying to the device: {e}"))
        };
        let (e_dev, a_dev) = (copy(&e)?, copy(&a)?);
        self.run(kernel, &e_dev, &a_dev, e.len(), tol)
    }

    /// Launches kernel `kernel` over `len` elements already on the device and reads back
    /// the partials.
    fn run<D: DeviceRepr>(
        &self,
        kernel: usize,
        expected: &CudaSlice<D>,
        actual: &CudaSlice<D>,
        len: usize,
        tol: Tolerance,
    ) -> Result<Vec<Partial>, String> {
        let fail = |e: cudarc::driver::DriverError| format!("comparison kernel: {e}");
        let blocks = len.div_ceil(BLOCK_ELEMS);
        let grid = u32::try_from(blocks).map_err(|_| format!("{len} elements: too many"))?;
        let mut out = self
            .stream
            .alloc_zeros::<u64>(blocks.max(1) * PARTIAL_WORDS)
            .map_err(fail)?;
        if blocks > 0 {
            let n = len as u64;
            let config = LaunchConfig {
                grid_dim: (grid, 1, 1),
                block_dim: (THREADS as u32, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut launch = self.stream.launch_builder(&self.functions[kernel]);
            launch.arg(expected).arg(actual).arg(&n);
            launch.arg(&tol.atol).arg(&tol.rtol).arg(&mut out);
            // SAFETY: the arguments match the kernel's signature (device pointers to
            // `len` elements of the kernel's type, u64, f64, f64, partials buffer of
            // `blocks * PARTIAL_WORDS` words).
            unsafe { launch.launch(config) }.map_err(fail)?;
        }
        let words = self.stream.clone_dtoh(&out).map_err(fail)?;
        self.stream.synchronize().map_err(fail)?;
        Ok(words
            .chunks_exact(PARTIAL_WORDS)
            .take(blocks)
            .map(|c| {
                let mut w = [0u64; PARTIAL_WORDS];
                w.copy_from_slice(c);
                Partial(w)
            })
            .collect())
    }

    /// The scan summary of two float tensors of equal dtype and length, on the device.
    fn scan(&self, expected: &Tensor, actual: &Tensor, tol: Tolerance) -> Result<Summary, String> {
        let partials = self.partials(expected, actual, tol)?;
        Ok(fold(&partials, expected.numel()))
    }

    /// Compares like [`compare`](super::compare), on the device: the same result (sums up
    /// to reduction order). Errors for integer and bool dtypes and on device failures.
    pub fn compare(
        &self,
        expected: &Tensor,
        actual: &Tensor,
        tol: Tolerance,
    ) -> Result<OutputComparison, String> {
        if let Some(problem) = layout_problem(expected, actual) {
            return Err(problem);
        }
        let summary = self.scan(expected, actual, tol)?;
        Ok(compared(expected, actual, tol, &summary))
    }

    /// Seconds taken by each of `runs` device-to-device copies of a `bytes`-long buffer.
    pub fn copy_seconds(&self, bytes: usize, runs: usize) -> Result<Vec<f64>, String> {
        guarded("CUDA", || {
            let fail = |e: cudarc::driver::DriverError| format!("device copy: {e}");
            let src = self.stream.alloc_zeros::<u8>(bytes).map_err(fail)?;
            let mut dst = self.stream.alloc_zeros::<u8>(bytes).map_err(fail)?;
            self.stream.memcpy_dtod(&src, &mut dst).map_err(fail)?;
            self.stream.synchronize().map_err(fail)?;
            (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    self.stream.memcpy_dtod(&src, &mut dst).map_err(fail)?;
                    self.stream.synchronize().map_err(fail)?;
                    Ok(start.elapsed().as_secs_f64())
                })
                .collect()
        })
    }

    /// Seconds taken by each of `runs` f32 comparison kernels (partials read back
    /// included) over `expected`/`actual`, copied to the device once beforehand.
    pub fn kernel_seconds(
        &self,
        expected: &[f32],
        actual: &[f32],
        tol: Tolerance,
        runs: usize,
    ) -> Result<Vec<f64>, String> {
        guarded("CUDA", || {
            let fail = |e: cudarc::driver::DriverError| format!("copying to the device: {e}");
            let e_dev = self.stream.clone_htod(expected).map_err(fail)?;
            let a_dev = self.stream.clone_htod(actual).map_err(fail)?;
            let len = expected.len().min(actual.len());
            self.run(0, &e_dev, &a_dev, len, tol)?;
            (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    self.run(0, &e_dev, &a_dev, len, tol)?;
                    Ok(start.elapsed().as_secs_f64())
                })
                .collect()
        })
    }
}

/// Which device `PARITY_COMPARE_DEVICE` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSetting {
    /// GPU for large float tensors when one is usable, CPU otherwise (the default).
    Auto,
    /// Always the CPU.
    Cpu,
    /// The GPU for every non-empty float tensor; refused when there is none.
    Cuda,
}

/// Reads `PARITY_COMPARE_DEVICE` (unset or empty: `auto`); an unknown value is an error.
pub fn device_setting() -> Result<DeviceSetting, String> {
    match std::env::var(DEVICE_ENV).unwrap_or_default().as_str() {
        "" | "auto" => Ok(DeviceSetting::Auto),
        "cpu" => Ok(DeviceSetting::Cpu),
        "cuda" => Ok(DeviceSetting::Cuda),
        other => Err(format!("{DEVICE_ENV}={other}: expected auto, cpu or cuda")),
    }
}

/// The process's comparer, set up on first use (a GPU compare pays NVRTC once).
fn shared() -> &'static Mutex<Result<GpuComparer, String>> {
    static SHARED: OnceLock<Mutex<Result<GpuComparer, String>>> = OnceLock::new();
    SHARED.get_or_init(|| Mutex::new(GpuComparer::new()))
}

/// Scans on the shared comparer.
fn shared_scan(expected: &Tensor, actual: &Tensor, tol: Tolerance) -> Result<Summary, String> {
    let guard = shared()
        .lock()
        .map_err(|_| "the GPU comparer is poisoned".to_string())?;
    match &*guard {
        Ok(comparer) => comparer.scan(expected, actual, tol),
        Err(reason) => Err(reason.clone()),
    }
}

/// Checks that the setting can be honoured: an unknown value, or `cuda` without a usable
/// GPU, is an error (for the command line to refuse before any work).
pub fn check_device_setting() -> Result<(), String> {
    if device_setting()? == DeviceSetting::Cuda {
        let guard = shared()
            .lock()
            .map_err(|_| "the GPU comparer is poisoned".to_string())?;
        if let Err(reason) = &*guard {
            return Err(format!("{DEVICE_ENV}=cuda: {reason}"));
        }
    }
    Ok(())
}

/// What the router decided for one scan.
pub(super) enum Routed {
    /// Scan on the CPU.
    Cpu,
    /// Scanned on the GPU.
    Done(Summary),
    /// The GPU was required and could not be used: the reason.
    Refused(String),
}

/// Scans on the GPU when the setting and the tensor call for it (see the module docs);
/// the tensors have the same dtype and shape.
pub(super) fn routed_scan(expected: &Tensor, actual: &Tensor, tol: Tolerance) -> Routed {
    let setting = match device_setting() {
        Ok(setting) => setting,
        Err(reason) => return Routed::Refused(reason),
    };
    let n = expected.numel();
    if kernel_for(expected.dtype()).is_none() || n == 0 {
        return Routed::Cpu;
    }
    match setting {
        DeviceSetting::Cpu => Routed::Cpu,
        DeviceSetting::Auto if n < AUTO_THRESHOLD => Routed::Cpu,
        DeviceSetting::Auto => match shared_scan(expected, actual, tol) {
            Ok(summary) => Routed::Done(summary),
            Err(_) => Routed::Cpu,
        },
        DeviceSetting::Cuda => match shared_scan(expected, actual, tol) {
            Ok(summary) => Routed::Done(summary),
            Err(reason) => Routed::Refused(format!("{DEVICE_ENV}=cuda: {reason}")),
        },
    }
}
