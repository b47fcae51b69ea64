//! CUDA backend: the kernels in `kernels/*.cu`, compiled at run time with NVRTC for the
//! device's architecture and launched through cudarc. cudarc loads `libcuda` and `libnvrtc`
//! dynamically, so the binary builds and starts on machines without CUDA; because cudarc
//! panics when a library is missing, both are probed with `libloading` first and a missing
//! one makes the backend "unavailable" with the reason.
//!
//! Kernels are compiled once per process to machine code (CUBIN) for the device's exact
//! architecture, so the driver never JIT-compiles PTX. Device memory comes from the driver's
//! stream-ordered allocator (a memory pool), so a batch's buffers reuse the previous batch's
//! memory; every launch's result is checked.
//!
//! Two streams: batch uploads go through page-locked staging buffers on a copy stream, and
//! kernels plus readbacks run on the compute stream (cudarc's event tracking makes a kernel
//! wait for the upload it reads). With `start_download`/`finish_download` the caller can
//! queue batch k+1 before collecting batch k, so its upload overlaps batch k's kernels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PinnedHostSlice, PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use super::lock;
use super::shapes::Shapes;
use super::{
    Activation, Backend, Conv2dParams, DeviceTensor, GlobalPool, LogSpec, NORM_EPS, Normalization,
    PoolParams, Projection, StftParams,
};
use crate::{Error, Result};

/// Every kernel source and the entry points it defines.
pub const KERNELS: &[(&str, &str, &[&str])] = &[
    (
        "frontend.cu",
        include_str!("../../../kernels/frontend.cu"),
        &[
            "stft_radix2",
            "stft_dft",
            "select_bins_log",
            "normalize_window",
            "normalize_global",
        ],
    ),
    (
        "classifier.cu",
        include_str!("../../../kernels/classifier.cu"),
        &[
            "matmul",
            "conv2d",
            "channel_affine",
            "mfm",
            "max_pool2d",
            "global_pool",
            "sigmoid",
            "softmax",
        ],
    ),
];

/// Largest n_fft the shared-memory radix-2 kernel takes (n_fft/2 float2 = 32 KiB).
const RADIX2_MAX_NFFT: usize = 8192;
const THREADS: u32 = 256;
/// Uploads at least this long (floats) go through page-locked staging on the copy stream;
/// smaller ones (weights, constants) are copied directly.
const PINNED_UPLOAD_MIN: usize = 16 * 1024;
/// Staging buffers kept for reuse (one per distinct upload length; batches repeat theirs).
const STAGING_KEEP: usize = 3;
/// Page-locked readback buffers kept for reuse (one per recent readback length).
const READBACK_KEEP: usize = 4;

fn err(msg: impl Into<String>) -> Error {
    Error::backend("cuda", msg)
}

fn driver_err(op: &str) -> impl Fn(cudarc::driver::DriverError) -> Error + '_ {
    move |e| err(format!("{op}: {e}"))
}

/// Whether one of cudarc's candidate names for `lib` loads here.
fn library_present(lib: &str) -> bool {
    cudarc::get_lib_name_candidates(lib).iter().any(|name| {
        // SAFETY: loading a shared library runs its initialisers; these are NVIDIA's CUDA
        // libraries, loaded exactly as cudarc itself would load them.
        unsafe { libloading::Library::new(name) }.is_ok()
    })
}

/// Why NVRTC cannot run here, if it cannot.
pub fn nvrtc_missing() -> Option<String> {
    (!library_present("nvrtc")).then(|| {
        "NVRTC (libnvrtc) not found: install the CUDA toolkit or the nvidia-cuda-nvrtc wheel \
         and put its lib directory on LD_LIBRARY_PATH"
            .to_string()
    })
}

struct Probe {
    /// The device's description, or why CUDA cannot run here.
    detail: std::result::Result<String, String>,
    /// The context the probe opened, kept so backends do not open the device again.
    ctx: Option<Arc<CudaContext>>,
}

fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| {
        let mut opened = None;
        let detail = (|| {
            if !library_present("cuda") {
                return Err(
                    "no CUDA driver (libcuda) found: no NVIDIA GPU driver on this machine"
                        .to_string(),
                );
            }
            let (driver_major, driver_minor) = driver_version()?;
            let (nvrtc_major, nvrtc_minor) = nvrtc_version()?;
            if nvrtc_major < 12 {
                return Err(format!(
                    "NVRTC {nvrtc_major}.{nvrtc_minor} is too old: CUDA 12 or newer is needed"
                ));
            }
            // Code from a newer major NVRTC cannot load on an older driver (no forward
            // compatibility across majors). cudarc loads the first NVRTC name that opens
            // (libnvrtc.so, then .so.13, then .so.12, ...), so ask the loaded one.
            if nvrtc_major > driver_major {
                return Err(format!(
                    "NVRTC {nvrtc_major}.{nvrtc_minor} is newer than the driver (CUDA \
                     {driver_major}.{driver_minor}): kernels it compiles cannot load. Update the \
                     NVIDIA driver, or make NVRTC {driver_major} the only NVRTC on the library \
                     path (e.g. pip install nvidia-cuda-nvrtc-cu{driver_major}, its lib directory \
                     on LD_LIBRARY_PATH)"
                ));
            }
            let ctx = std::panic::catch_unwind(|| CudaContext::new(0))
                .map_err(|_| "the CUDA driver failed to load".to_string())?
                .map_err(|e| format!("no usable CUDA device: {e}"))?;
            let name = ctx.name().unwrap_or_else(|_| "unknown device".into());
            let (major, minor) = ctx.compute_capability().map_err(|e| e.to_string())?;
            opened = Some(ctx);
            Ok(format!(
                "{name} (compute capability {major}.{minor}; driver CUDA \
                 {driver_major}.{driver_minor}, NVRTC {nvrtc_major}.{nvrtc_minor})"
            ))
        })();
        Probe {
            detail,
            ctx: opened,
        }
    })
}

/// `deepscreen devices` line.
pub fn status() -> (bool, String) {
    match &probe().detail {
        Ok(d) => (true, d.clone()),
        Err(e) => (false, e.clone()),
    }
}

/// Driver entry points this backend (through cudarc) calls. All exist since CUDA 12.0; they
/// are checked up front because cudarc resolves symbols lazily and panics on a missing one.
const DRIVER_SYMBOLS: &[&str] = &[
    "cuInit",
    "cuDriverGetVersion",
    "cuDeviceGet",
    "cuDeviceGetName",
    "cuDeviceGetAttribute",
    "cuDevicePrimaryCtxRetain",
    "cuDevicePrimaryCtxRelease_v2",
    "cuCtxSetCurrent",
    "cuCtxGetCurrent",
    "cuCtxSynchronize",
    "cuModuleLoadData",
    "cuModuleGetFunction",
    "cuModuleUnload",
    "cuLaunchKernel",
    "cuStreamCreate",
    "cuStreamDestroy_v2",
    "cuStreamSynchronize",
    "cuStreamWaitEvent",
    "cuEventCreate",
    "cuEventRecord",
    "cuEventSynchronize",
    "cuEventDestroy_v2",
    "cuMemAllocAsync",
    "cuDeviceGetDefaultMemPool",
    "cuMemPoolSetAttribute",
    "cuMemFreeAsync",
    "cuMemAlloc_v2",
    "cuMemFree_v2",
    "cuMemHostAlloc",
    "cuMemFreeHost",
    "cuMemcpyHtoDAsync_v2",
    "cuMemcpyDtoHAsync_v2",
    "cuMemsetD8Async",
    "cuGetErrorName",
    "cuGetErrorString",
];

/// The CUDA version the driver supports, as (major, minor).
fn driver_version() -> std::result::Result<(i32, i32), String> {
    // SAFETY: libcuda is present (checked by the caller) and cuDriverGetVersion only writes
    // the integer it is given; it needs no cuInit.
    let lib = unsafe { cudarc::driver::sys::culib() };
    let missing: Vec<&str> = DRIVER_SYMBOLS
        .iter()
        .copied()
        // SAFETY: only looks the symbol up; nothing is called.
        .filter(|s| unsafe { lib.get::<unsafe extern "C" fn()>(s.as_bytes()) }.is_err())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the CUDA driver is too old (it lacks {}): install an NVIDIA driver for CUDA 12 or newer",
            missing.join(", ")
        ));
    }
    let mut v = 0;
    let status = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    if status != cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        return Err(format!("cuDriverGetVersion failed: {status:?}"));
    }
    Ok((v / 1000, (v % 1000) / 10))
}

/// The version of the NVRTC library cudarc loads, as (major, minor).
pub fn nvrtc_version() -> std::result::Result<(i32, i32), String> {
    if let Some(why) = nvrtc_missing() {
        return Err(why);
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: libnvrtc is present (checked above); nvrtcVersion only writes two integers.
    let status = unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) };
    if status != cudarc::nvrtc::sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(format!("nvrtcVersion failed: {status:?}"));
    }
    Ok((major, minor))
}

/// What NVRTC hands back for one kernel file.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// PTX text (the driver JIT-compiles it; any driver as new as NVRTC can load it).
    Ptx,
    /// Machine code for exactly `arch` (no JIT; loads on drivers of NVRTC's major version).
    Cubin,
}

/// Compile every kernel with NVRTC for `arch` (e.g. "sm_90"): each file's image (PTX text or
/// CUBIN bytes), or the compiler's errors and warnings (warnings count as failures: the
/// kernels must be clean).
pub fn compile_kernels(arch: &str, output: Output) -> std::result::Result<Images, String> {
    use cudarc::nvrtc::{result, sys};
    if let Some(why) = nvrtc_missing() {
        return Err(why);
    }
    let options = [
        format!("--gpu-architecture={arch}"),
        "--std=c++17".to_string(),
    ];
    let text = |raw: Vec<std::ffi::c_char>| -> String {
        let bytes: Vec<u8> = raw
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).trim().to_string()
    };
    let mut out = Vec::new();
    for (file, source, _) in KERNELS {
        let src = std::ffi::CString::new(*source).map_err(|e| e.to_string())?;
        let name = std::ffi::CString::new(*file).map_err(|e| e.to_string())?;
        let prog = result::create_program(&src, Some(&name)).map_err(|e| format!("{file}: {e}"))?;
        // SAFETY: `prog` was just created, is only used in this block and destroyed once.
        let (compiled, log, image) = unsafe {
            let compiled = result::compile_program(prog, &options);
            let log = result::get_program_log(prog).map(text).unwrap_or_default();
            let image = match output {
                Output::Ptx => result::get_ptx(prog).map(|p| text(p).into_bytes()),
                Output::Cubin => {
                    let mut size = 0usize;
                    sys::nvrtcGetCUBINSize(prog, &mut size)
                        .result()
                        .and_then(|()| {
                            let mut bytes = vec![0u8; size];
                            sys::nvrtcGetCUBIN(prog, bytes.as_mut_ptr().cast())
                                .result()
                                .map(|()| bytes)
                        })
                }
            };
            let _ = result::destroy_program(prog);
            (compiled, log, image)
        };
        if let Err(e) = compiled {
            return Err(format!("{file} for {arch}: {e}\n{log}"));
        }
        if !log.is_empty() {
            return Err(format!(
                "{file} for {arch} compiled with diagnostics:\n{log}"
            ));
        }
        out.push((*file, image.map_err(|e| format!("{file}: {e}"))?));
    }
    Ok(out)
}

/// Let the device's default memory pool keep freed memory: with the default release threshold
/// (0) it hands unused memory back to the driver at every synchronisation, so each batch would
/// map its buffers again. Best effort: without pools, allocation falls back to cuMemAlloc.
fn keep_freed_memory(ctx: &CudaContext) {
    use cudarc::driver::{result, sys};
    // SAFETY: the pool belongs to this context's device; the attribute takes a cuuint64_t.
    let _ = unsafe {
        result::device::get_default_mem_pool(ctx.cu_device()).and_then(|pool| {
            let mut keep = u64::MAX;
            result::mem_pool::set_attribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&mut keep as *mut u64).cast(),
            )
        })
    };
}

/// Each kernel file's compiled image, in `KERNELS` order.
type Images = Vec<(&'static str, Vec<u8>)>;

/// The kernels' machine code for `arch`, compiled by NVRTC once per process and architecture
/// (every backend opened later, e.g. by `bench` after `screen`, reuses it).
fn device_code(arch: &str) -> Result<Arc<Images>> {
    type Cache = Mutex<HashMap<String, Arc<Images>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut cache = lock(CACHE.get_or_init(Default::default));
    if let Some(images) = cache.get(arch) {
        return Ok(images.clone());
    }
    let images = Arc::new(compile_kernels(arch, Output::Cubin).map_err(|e| {
        err(format!(
            "{e}\n(an NVRTC too old for {arch}? Install a newer CUDA toolkit or NVRTC wheel)"
        ))
    })?);
    cache.insert(arch.to_string(), images.clone());
    Ok(images)
}

pub struct CudaTensor {
    buf: CudaSlice<f32>,
    shape: Vec<usize>,
}

impl DeviceTensor for CudaTensor {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
}

/// A readback in flight: the page-locked buffer it lands in and how many values are wanted.
pub struct CudaReadback {
    host: PinnedHostSlice<f32>,
    len: usize,
}

pub struct CudaBackend {
    ctx: Arc<CudaContext>,
    /// Kernels and readbacks.
    stream: Arc<CudaStream>,
    /// Large uploads, so the next batch's upload overlaps this batch's kernels.
    copy: Arc<CudaStream>,
    /// Page-locked upload staging, one buffer per recent upload length (most recent last).
    staging: Mutex<Vec<PinnedHostSlice<f32>>>,
    /// Page-locked readback buffers not in use.
    readback: Mutex<Vec<PinnedHostSlice<f32>>>,
    functions: HashMap<&'static str, CudaFunction>,
    /// Bound where a kernel's optional input (bias) is absent.
    dummy: CudaSlice<f32>,
    max_shared: usize,
}

/// Shape rules, with "cuda" in their error messages.
const CHECK: Shapes = Shapes("cuda");

fn ensure(cond: bool, op: &str, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(err(format!("{op}: {}", msg())))
    }
}

fn act_code(a: Activation) -> (i32, f32) {
    match a {
        Activation::None => (0, 0.0),
        Activation::Relu => (1, 0.0),
        Activation::LeakyRelu(s) => (2, s),
        Activation::Sigmoid => (3, 0.0),
    }
}

fn log_code(l: LogSpec) -> (i32, f32) {
    match l {
        LogSpec::Ln { eps } => (1, eps),
        LogSpec::Log10 { eps } => (2, eps),
        LogSpec::Db { eps } => (3, eps),
    }
}

/// 1-D launch over `n` threads (grid.x up to 2^31 - 1 blocks).
fn linear(n: usize) -> Result<LaunchConfig> {
    let blocks = n.div_ceil(THREADS as usize).max(1);
    let blocks = u32::try_from(blocks)
        .ok()
        .filter(|&b| b <= i32::MAX as u32)
        .ok_or_else(|| err(format!("{n} threads is too many for one launch")))?;
    Ok(LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    })
}

impl CudaBackend {
    /// Open device 0 and compile the kernels for it; errors say why CUDA cannot run.
    pub fn new() -> Result<Self> {
        let probed = probe();
        probed.detail.as_ref().map_err(|e| err(e.clone()))?;
        let ctx = probed
            .ctx
            .clone()
            .expect("a probe that succeeded keeps its context");
        let (major, minor) = ctx.compute_capability().map_err(driver_err("device"))?;
        // Creating streams puts the context in multi-stream mode, in which cudarc tracks each
        // buffer's reads and writes with events; every buffer is allocated after this.
        let stream = ctx.new_stream().map_err(driver_err("stream"))?;
        let copy = ctx.new_stream().map_err(driver_err("stream"))?;
        keep_freed_memory(&ctx);
        let arch = format!("sm_{major}{minor}");
        let images = device_code(&arch)?;
        let mut functions = HashMap::new();
        for ((file, _, entries), (_, cubin)) in KERNELS.iter().zip(images.iter()) {
            let module = ctx
                .load_module(Ptx::from_binary(cubin.clone()))
                .map_err(|e| err(format!("loading {file}: {e}")))?;
            for entry in *entries {
                functions.insert(
                    *entry,
                    module
                        .load_function(entry)
                        .map_err(|e| err(format!("{entry}: {e}")))?,
                );
            }
        }
        let max_shared = ctx
            .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK)
            .map_err(driver_err("device"))? as usize;
        let dummy = stream.alloc_zeros::<f32>(4).map_err(driver_err("alloc"))?;
        Ok(CudaBackend {
            ctx,
            stream,
            copy,
            staging: Mutex::new(Vec::new()),
            readback: Mutex::new(Vec::new()),
            functions,
            dummy,
            max_shared,
        })
    }

    fn alloc(&self, shape: &[usize]) -> Result<CudaTensor> {
        let n: usize = shape.iter().product();
        // SAFETY: every kernel writes each output element before it is read.
        let buf = unsafe { self.stream.alloc::<f32>(n.max(1)) }.map_err(driver_err("alloc"))?;
        Ok(CudaTensor {
            buf,
            shape: shape.to_vec(),
        })
    }

    /// Copy `data` into a page-locked staging buffer and from there to a new device buffer on
    /// the copy stream; returns once the host copy is done, before the device has the data.
    fn staged_upload(&self, data: &[f32]) -> Result<CudaSlice<f32>> {
        let mut staging = lock(&self.staging);
        let mut host = match staging.iter().position(|h| h.len() == data.len()) {
            Some(i) => staging.remove(i),
            // SAFETY: filled completely below before any copy reads it.
            None => unsafe { self.ctx.alloc_pinned::<f32>(data.len()) }
                .map_err(driver_err("page-locked staging buffer"))?,
        };
        // as_mut_slice first waits for the previous upload out of this buffer.
        host.as_mut_slice()
            .map_err(driver_err("upload"))?
            .copy_from_slice(data);
        // SAFETY: the copy below writes every element.
        let mut buf = unsafe { self.copy.alloc::<f32>(data.len()) }.map_err(driver_err("alloc"))?;
        self.copy
            .memcpy_htod(&host, &mut buf)
            .map_err(driver_err("upload"))?;
        staging.push(host);
        if staging.len() > STAGING_KEEP {
            // Dropping waits for the copy out of it (long finished: it is the oldest).
            staging.remove(0);
        }
        Ok(buf)
    }

    fn f(&self, name: &str) -> &CudaFunction {
        &self.functions[name]
    }

    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &self,
        a: &CudaTensor,
        (m, k, n): (usize, usize, usize),
        b: &CudaTensor,
        b_trans: bool,
        bias: Option<&CudaTensor>,
        act: Activation,
        log: Option<LogSpec>,
        out_shape: &[usize],
    ) -> Result<CudaTensor> {
        let mut out = self.alloc(out_shape)?;
        if m == 0 || n == 0 {
            return Ok(out);
        }
        let (act, slope) = act_code(act);
        let (log_kind, eps) = log.map_or((0, 0.0), log_code);
        let (m32, n32, k32) = (m as i32, n as i32, k as i32);
        let (bt, hb) = (b_trans as i32, bias.is_some() as i32);
        let cfg = LaunchConfig {
            grid_dim: ((n as u32).div_ceil(16), (m as u32).div_ceil(16), 1),
            block_dim: (16, 16, 1),
            shared_mem_bytes: 0,
        };
        ensure(cfg.grid_dim.1 <= 65535, "matmul", || {
            format!("{m} rows is too many for one launch")
        })?;
        let bias_buf = bias.map_or(&self.dummy, |b| &b.buf);
        let mut l = self.stream.launch_builder(self.f("matmul"));
        l.arg(&a.buf).arg(&b.buf).arg(bias_buf).arg(&mut out.buf);
        l.arg(&m32)
            .arg(&n32)
            .arg(&k32)
            .arg(&bt)
            .arg(&hb)
            .arg(&act)
            .arg(&slope)
            .arg(&log_kind)
            .arg(&eps);
        // SAFETY: argument list matches the kernel signature in kernels/classifier.cu.
        unsafe { l.launch(cfg) }.map_err(driver_err("matmul"))?;
        Ok(out)
    }

    /// An output of `shape` and the 1-D launch over its `n` threads (None when empty).
    fn elementwise(&self, shape: &[usize], n: usize) -> Result<(CudaTensor, Option<LaunchConfig>)> {
        let out = self.alloc(shape)?;
        let cfg = if n == 0 { None } else { Some(linear(n)?) };
        Ok((out, cfg))
    }
}

impl Backend for CudaBackend {
    type Tensor = CudaTensor;

    fn name(&self) -> &'static str {
        "cuda"
    }

    type Readback = CudaReadback;

    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<CudaTensor> {
        if data.len() < PINNED_UPLOAD_MIN {
            return self.upload_constant(data, shape);
        }
        CHECK.upload(data.len(), shape)?;
        Ok(CudaTensor {
            buf: self.staged_upload(data)?,
            shape: shape.to_vec(),
        })
    }

    /// Weights and constants: copied directly on the compute stream, once, with no staging.
    fn upload_constant(&self, data: &[f32], shape: &[usize]) -> Result<CudaTensor> {
        CHECK.upload(data.len(), shape)?;
        let buf = if data.is_empty() {
            self.stream.alloc_zeros::<f32>(1)
        } else {
            self.stream.clone_htod(data)
        }
        .map_err(driver_err("upload"))?;
        Ok(CudaTensor {
            buf,
            shape: shape.to_vec(),
        })
    }

    fn start_download(&self, tensor: &CudaTensor) -> Result<CudaReadback> {
        let len = tensor.len();
        // cudarc copies the destination's whole length, so the buffer must be exactly as
        // long as the device buffer (a longer one would read past the allocation).
        let mut free = lock(&self.readback);
        let host = match free.iter().position(|h| h.len() == tensor.buf.len()) {
            Some(i) => free.remove(i),
            // SAFETY: the copy below writes every element.
            None => unsafe { self.ctx.alloc_pinned_with_flags::<f32>(tensor.buf.len(), 0) }
                .map_err(driver_err("page-locked readback buffer"))?,
        };
        drop(free);
        let mut readback = CudaReadback { host, len };
        self.stream
            .memcpy_dtoh(&tensor.buf, &mut readback.host)
            .map_err(driver_err("download"))?;
        Ok(readback)
    }

    fn finish_download(&self, readback: CudaReadback) -> Result<Vec<f32>> {
        // as_slice waits for the copy into this buffer to finish.
        let values =
            readback.host.as_slice().map_err(driver_err("download"))?[..readback.len].to_vec();
        let mut free = lock(&self.readback);
        free.push(readback.host);
        if free.len() > READBACK_KEEP {
            free.remove(0);
        }
        Ok(values)
    }

    fn reshape(&self, tensor: CudaTensor, shape: &[usize]) -> Result<CudaTensor> {
        CHECK.reshape(&tensor.shape, shape)?;
        Ok(CudaTensor {
            buf: tensor.buf,
            shape: shape.to_vec(),
        })
    }

    fn stft_power(
        &self,
        signal: &CudaTensor,
        window: &CudaTensor,
        p: &StftParams,
    ) -> Result<CudaTensor> {
        let op = "stft_power";
        let shape = CHECK.stft(&signal.shape, window.len(), p)?;
        let (batch, len, frames) = (shape.batch, shape.len, shape.frames);
        let bins = p.bins();
        let mut out = self.alloc(&[batch, frames, bins])?;
        let rows = batch * frames;
        if rows == 0 {
            return Ok(out);
        }
        let half = p.n_fft / 2;
        let shared = half * 8;
        let (b32, l32, f32_, n32, h32) = (
            batch as i32,
            len as i32,
            frames as i32,
            p.n_fft as i32,
            p.hop as i32,
        );
        let pad = if p.center { half as i32 } else { 0 };
        let bins32 = bins as i32;
        if p.n_fft.is_power_of_two()
            && p.n_fft >= 4
            && p.n_fft <= RADIX2_MAX_NFFT
            && shared <= self.max_shared
        {
            let log2_half = half.trailing_zeros() as i32;
            let grid_x = rows.min(65535) as u32;
            let cfg = LaunchConfig {
                grid_dim: (grid_x, rows.div_ceil(grid_x as usize) as u32, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: shared as u32,
            };
            let mut l = self.stream.launch_builder(self.f("stft_radix2"));
            l.arg(&signal.buf).arg(&window.buf).arg(&mut out.buf);
            l.arg(&b32)
                .arg(&l32)
                .arg(&f32_)
                .arg(&n32)
                .arg(&h32)
                .arg(&pad)
                .arg(&bins32)
                .arg(&log2_half)
                .arg(&p.power);
            // SAFETY: matches stft_radix2 in kernels/frontend.cu; shared memory = n_fft/2 float2.
            unsafe { l.launch(cfg) }.map_err(driver_err(op))?;
        } else {
            let mut l = self.stream.launch_builder(self.f("stft_dft"));
            l.arg(&signal.buf).arg(&window.buf).arg(&mut out.buf);
            l.arg(&b32)
                .arg(&l32)
                .arg(&f32_)
                .arg(&n32)
                .arg(&h32)
                .arg(&pad)
                .arg(&bins32)
                .arg(&p.power);
            // SAFETY: matches stft_dft in kernels/frontend.cu.
            unsafe { l.launch(linear(rows * bins)?) }.map_err(driver_err(op))?;
        }
        Ok(out)
    }

    fn filterbank_log(
        &self,
        power: &CudaTensor,
        projection: Projection<&CudaTensor>,
        log: LogSpec,
    ) -> Result<CudaTensor> {
        let op = "filterbank_log";
        match projection {
            Projection::Bins { start, end } => {
                let [batch, frames, bins] = CHECK.bin_range(&power.shape, start, end)?;
                let width = end - start;
                let (kind, eps) = log_code(log);
                let mut out = self.alloc(&[batch, frames, width])?;
                let rows = batch * frames;
                if rows * width > 0 {
                    let (r64, wi, st, wo) = (rows as i64, bins as i32, start as i32, width as i32);
                    let mut l = self.stream.launch_builder(self.f("select_bins_log"));
                    l.arg(&power.buf)
                        .arg(&mut out.buf)
                        .arg(&r64)
                        .arg(&wi)
                        .arg(&st)
                        .arg(&wo)
                        .arg(&kind)
                        .arg(&eps);
                    // SAFETY: matches select_bins_log in kernels/frontend.cu.
                    unsafe { l.launch(linear(rows * width)?) }.map_err(driver_err(op))?;
                }
                Ok(out)
            }
            Projection::Matrix(matrix) => {
                let [batch, frames, bins, filters] =
                    CHECK.project(op, &power.shape, &matrix.shape)?;
                self.matmul(
                    power,
                    (batch * frames, bins, filters),
                    matrix,
                    false,
                    None,
                    Activation::None,
                    Some(log),
                    &[batch, frames, filters],
                )
            }
        }
    }

    fn dct(&self, features: &CudaTensor, basis: &CudaTensor) -> Result<CudaTensor> {
        let [batch, frames, filters, coeffs] =
            CHECK.project("dct", &features.shape, &basis.shape)?;
        self.matmul(
            features,
            (batch * frames, filters, coeffs),
            basis,
            false,
            None,
            Activation::None,
            None,
            &[batch, frames, coeffs],
        )
    }

    fn normalize(
        &self,
        features: &CudaTensor,
        mode: Normalization<&CudaTensor>,
    ) -> Result<CudaTensor> {
        let op = "normalize";
        let stats = match &mode {
            Normalization::Global { mean, std } => Some((mean.len(), std.len())),
            _ => None,
        };
        let [batch, frames, feats] = CHECK.normalize(&features.shape, stats)?;
        let n = batch * frames * feats;
        let mut out = self.alloc(&features.shape)?;
        if n == 0 {
            return Ok(out);
        }
        match mode {
            Normalization::Global { mean, std } => {
                let (n64, w) = (n as i64, feats as i32);
                let mut l = self.stream.launch_builder(self.f("normalize_global"));
                l.arg(&features.buf)
                    .arg(&mean.buf)
                    .arg(&std.buf)
                    .arg(&mut out.buf)
                    .arg(&n64)
                    .arg(&w);
                // SAFETY: matches normalize_global in kernels/frontend.cu.
                unsafe { l.launch(linear(n)?) }.map_err(driver_err(op))?;
            }
            Normalization::Mean | Normalization::MeanVar => {
                let m = matches!(mode, Normalization::MeanVar) as i32;
                let (b32, t32, f32_) = (batch as i32, frames as i32, feats as i32);
                let mut l = self.stream.launch_builder(self.f("normalize_window"));
                l.arg(&features.buf)
                    .arg(&mut out.buf)
                    .arg(&b32)
                    .arg(&t32)
                    .arg(&f32_)
                    .arg(&m)
                    .arg(&NORM_EPS);
                // SAFETY: matches normalize_window in kernels/frontend.cu.
                unsafe { l.launch(linear(batch * feats)?) }.map_err(driver_err(op))?;
            }
        }
        Ok(out)
    }

    fn conv2d(
        &self,
        input: &CudaTensor,
        weight: &CudaTensor,
        bias: Option<&CudaTensor>,
        p: &Conv2dParams,
        activation: Activation,
    ) -> Result<CudaTensor> {
        let op = "conv2d";
        let c = CHECK.conv2d(
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
            p,
        )?;
        let (batch, channels, h, w) = (c.batch, c.channels, c.h, c.w);
        let (out_ch, kh, kw, ho, wo) = (c.out_channels, c.kh, c.kw, c.ho, c.wo);
        let mut out = self.alloc(&[batch, out_ch, ho, wo])?;
        if batch * out_ch * ho * wo == 0 {
            return Ok(out);
        }
        let (act, slope) = act_code(activation);
        let ints = [
            channels,
            h,
            w,
            out_ch,
            kh,
            kw,
            p.stride[0],
            p.stride[1],
            p.padding[0],
            p.padding[1],
            ho,
            wo,
        ]
        .map(|v| v as i32);
        let hb = bias.is_some() as i32;
        let cfg = LaunchConfig {
            grid_dim: (
                ((ho * wo) as u32).div_ceil(16),
                (out_ch as u32).div_ceil(16),
                batch as u32,
            ),
            block_dim: (16, 16, 1),
            shared_mem_bytes: 0,
        };
        ensure(
            cfg.grid_dim.1 <= 65535 && cfg.grid_dim.2 <= 65535,
            op,
            || "too many channels or windows for one launch".into(),
        )?;
        let mut l = self.stream.launch_builder(self.f("conv2d"));
        l.arg(&input.buf)
            .arg(&weight.buf)
            .arg(bias.map_or(&self.dummy, |b| &b.buf))
            .arg(&mut out.buf);
        for v in &ints {
            l.arg(v);
        }
        l.arg(&hb).arg(&act).arg(&slope);
        // SAFETY: matches conv2d in kernels/classifier.cu.
        unsafe { l.launch(cfg) }.map_err(driver_err(op))?;
        Ok(out)
    }

    fn channel_affine(
        &self,
        input: &CudaTensor,
        scale: &CudaTensor,
        shift: &CudaTensor,
        activation: Activation,
    ) -> Result<CudaTensor> {
        let op = "channel_affine";
        let (channels, inner) = CHECK.channel_affine(&input.shape, &scale.shape, &shift.shape)?;
        let n = input.len();
        let mut out = self.alloc(&input.shape)?;
        if n > 0 {
            let (act, slope) = act_code(activation);
            let (n64, c32, i32_) = (n as i64, channels as i32, inner as i32);
            let mut l = self.stream.launch_builder(self.f("channel_affine"));
            l.arg(&input.buf)
                .arg(&scale.buf)
                .arg(&shift.buf)
                .arg(&mut out.buf)
                .arg(&n64)
                .arg(&c32)
                .arg(&i32_)
                .arg(&act)
                .arg(&slope);
            // SAFETY: matches channel_affine in kernels/classifier.cu.
            unsafe { l.launch(linear(n)?) }.map_err(driver_err(op))?;
        }
        Ok(out)
    }

    fn max_pool2d(&self, input: &CudaTensor, p: &PoolParams) -> Result<CudaTensor> {
        let op = "max_pool2d";
        let c = CHECK.max_pool2d(&input.shape, p)?;
        let (batch, channels, h, w, ho, wo) = (c.batch, c.channels, c.h, c.w, c.ho, c.wo);
        let n = batch * channels * ho * wo;
        let ints = [
            h,
            w,
            ho,
            wo,
            p.kernel[0],
            p.kernel[1],
            p.stride[0],
            p.stride[1],
            p.padding[0],
            p.padding[1],
        ]
        .map(|v| v as i32);
        let (mut out, cfg) = self.elementwise(&[batch, channels, ho, wo], n)?;
        if let Some(cfg) = cfg {
            let n64 = n as i64;
            let mut l = self.stream.launch_builder(self.f("max_pool2d"));
            l.arg(&input.buf).arg(&mut out.buf).arg(&n64);
            for v in &ints {
                l.arg(v);
            }
            // SAFETY: matches max_pool2d in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err(op))?;
        }
        Ok(out)
    }

    fn mfm(&self, input: &CudaTensor) -> Result<CudaTensor> {
        let (shape, inner) = CHECK.mfm(&input.shape)?;
        let n: usize = shape.iter().product();
        let (c32, i32_) = (input.shape[1] as i32, inner as i32);
        let (mut out, cfg) = self.elementwise(&shape, n)?;
        if let Some(cfg) = cfg {
            let n64 = n as i64;
            let mut l = self.stream.launch_builder(self.f("mfm"));
            l.arg(&input.buf)
                .arg(&mut out.buf)
                .arg(&n64)
                .arg(&c32)
                .arg(&i32_);
            // SAFETY: matches mfm in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("mfm"))?;
        }
        Ok(out)
    }

    fn global_pool(&self, input: &CudaTensor, mode: GlobalPool) -> Result<CudaTensor> {
        let op = "global_pool";
        let [batch, channels, hw] = CHECK.global_pool(&input.shape)?;
        let planes = batch * channels;
        let mut out = self.alloc(&[batch, channels])?;
        if planes > 0 {
            let (p64, inner, m) = (planes as i64, hw as i32, (mode == GlobalPool::Max) as i32);
            let grid_x = planes.min(65535) as u32;
            let cfg = LaunchConfig {
                grid_dim: (grid_x, planes.div_ceil(grid_x as usize) as u32, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            let mut l = self.stream.launch_builder(self.f("global_pool"));
            l.arg(&input.buf)
                .arg(&mut out.buf)
                .arg(&p64)
                .arg(&inner)
                .arg(&m);
            // SAFETY: matches global_pool in kernels/classifier.cu (256-thread blocks).
            unsafe { l.launch(cfg) }.map_err(driver_err(op))?;
        }
        Ok(out)
    }

    fn linear(
        &self,
        input: &CudaTensor,
        weight: &CudaTensor,
        bias: Option<&CudaTensor>,
        activation: Activation,
    ) -> Result<CudaTensor> {
        let [batch, inputs, outputs] = CHECK.linear(
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
        )?;
        self.matmul(
            input,
            (batch, inputs, outputs),
            weight,
            true,
            bias,
            activation,
            None,
            &[batch, outputs],
        )
    }

    fn sigmoid(&self, input: &CudaTensor, scale: f32, bias: f32) -> Result<CudaTensor> {
        let n = input.len();
        let (mut out, cfg) = self.elementwise(&input.shape, n)?;
        if let Some(cfg) = cfg {
            let n64 = n as i64;
            let mut l = self.stream.launch_builder(self.f("sigmoid"));
            l.arg(&input.buf)
                .arg(&mut out.buf)
                .arg(&n64)
                .arg(&scale)
                .arg(&bias);
            // SAFETY: matches sigmoid in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("sigmoid"))?;
        }
        Ok(out)
    }

    fn softmax(&self, input: &CudaTensor) -> Result<CudaTensor> {
        let [rows, classes] = CHECK.softmax(&input.shape)?;
        let c32 = classes as i32;
        let (mut out, cfg) = self.elementwise(&input.shape, rows)?;
        if let Some(cfg) = cfg {
            let r64 = rows as i64;
            let mut l = self.stream.launch_builder(self.f("softmax"));
            l.arg(&input.buf).arg(&mut out.buf).arg(&r64).arg(&c32);
            // SAFETY: matches softmax in kernels/classifier.cu.
            unsafe { l.launch(cfg) }.map_err(driver_err("softmax"))?;
        }
        Ok(out)
    }
}
