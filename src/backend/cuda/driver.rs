//! Whether CUDA can run here, and the kernels' machine code: the driver and NVRTC libraries
//! are probed (cudarc panics on a missing one), the driver's entry points and CUDA version
//! checked, and every kernel file compiled by NVRTC once per process and architecture.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::CudaContext;

use super::{KERNELS, err};
use crate::Result;
use crate::backend::lock;

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

pub(super) struct Probe {
    /// The device's description, or why CUDA cannot run here.
    pub(super) detail: std::result::Result<String, String>,
    /// The context the probe opened, kept so backends do not open the device again.
    pub(super) ctx: Option<Arc<CudaContext>>,
}

pub(super) fn probe() -> &'static Probe {
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
            let math = match (
                super::Math::from_env(),
                super::device::async_copies_from_env(),
            ) {
                (Ok(asked), Ok(async_copies)) => match (asked, asked.on_capability(major)) {
                    (_, super::Math::Tf32) if async_copies => {
                        "GEMMs on TF32 tensor cores, linear layers' tiles copied by cp.async"
                    }
                    (_, super::Math::Tf32) => "GEMMs on TF32 tensor cores",
                    (super::Math::Tf32, _) => "GEMMs in f32 (no TF32 tensor cores before 8.0)",
                    _ => "GEMMs in f32 (DEEPSCREEN_CUDA_MATH=f32)",
                },
                (Err(_), _) => "DEEPSCREEN_CUDA_MATH is invalid",
                (_, Err(_)) => "DEEPSCREEN_CUDA_ASYNC_COPY is invalid",
            };
            Ok(format!(
                "{name} (compute capability {major}.{minor}; driver CUDA \
                 {driver_major}.{driver_minor}, NVRTC {nvrtc_major}.{nvrtc_minor}; {math})"
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
pub(super) fn keep_freed_memory(ctx: &CudaContext) {
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
pub type Images = Vec<(&'static str, Vec<u8>)>;

/// The kernels' machine code for `arch`, compiled by NVRTC once per process and architecture
/// (every backend opened later, e.g. by `bench` after `screen`, reuses it).
pub(super) fn device_code(arch: &str) -> Result<Arc<Images>> {
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
