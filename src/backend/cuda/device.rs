//! The CUDA device: context and two streams (compute, copy), pooled device memory, page-locked
//! staging for batch uploads, queued page-locked readbacks, and the kernel launch the op
//! families in `backend::gpu` are written over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DeviceRepr, LaunchConfig, PinnedHostSlice,
    PushKernelArg,
};
use cudarc::nvrtc::Ptx;

use super::driver::{device_code, keep_freed_memory, probe};
use super::{CHECK, KERNELS, driver_err, err};
use crate::Result;
use crate::backend::gpu::{GemmKind, Grid, Input, Kernels, Params};
use crate::backend::launch::TILE;
use crate::backend::{Device, DeviceTensor, lock};

/// Threads per block of the one-dimensional kernels.
const THREADS: u32 = 256;
/// Largest n_fft the shared-memory radix-2 kernel takes (n_fft/2 float2 = 32 KiB).
const RADIX2_MAX_NFFT: usize = 8192;
/// Most blocks in a grid's y and z dimensions.
const MAX_GRID_YZ: usize = 65535;
/// Uploads at least this long (floats) go through page-locked staging on the copy stream;
/// smaller ones (weights, constants) are copied directly.
const PINNED_UPLOAD_MIN: usize = 16 * 1024;
/// Staging buffers kept for reuse (one per distinct upload length; batches repeat theirs).
const STAGING_KEEP: usize = 3;
/// Page-locked readback buffers kept for reuse (one per recent readback length).
const READBACK_KEEP: usize = 4;

/// The arithmetic of the GEMMs, convolutions and attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Math {
    /// f32 on the CUDA cores: the reference, and the only choice before compute capability 8.0.
    F32,
    /// Tensor cores: inputs rounded to TF32 (10 mantissa bits, as PyTorch's
    /// `allow_tf32`), products accumulated in f32. Compute capability 8.0 (Ampere) and newer.
    Tf32,
}

impl Math {
    /// `DEEPSCREEN_CUDA_MATH` (`tf32` or `f32`), or TF32 when unset.
    pub fn from_env() -> Result<Math> {
        match std::env::var("DEEPSCREEN_CUDA_MATH").as_deref() {
            Err(_) | Ok("") | Ok("tf32") => Ok(Math::Tf32),
            Ok("f32") => Ok(Math::F32),
            Ok(other) => Err(err(format!(
                "DEEPSCREEN_CUDA_MATH={other}: expected tf32 (tensor cores, the default) or f32"
            ))),
        }
    }

    /// What this choice runs as on a device of compute capability `major`.x: TF32 needs the
    /// tensor cores of 8.0 (Ampere) and newer, and falls back to f32 before.
    pub fn on_capability(self, major: i32) -> Math {
        if major >= 8 { self } else { Math::F32 }
    }
}

/// `DEEPSCREEN_CUDA_ASYNC_COPY=1`: linear layers' TF32 GEMM copies its tiles with cp.async
/// (`CudaBackend::with_async_copies`); off when unset or 0.
pub fn async_copies_from_env() -> Result<bool> {
    match std::env::var("DEEPSCREEN_CUDA_ASYNC_COPY").as_deref() {
        Err(_) | Ok("") | Ok("0") => Ok(false),
        Ok("1") => Ok(true),
        Ok(other) => Err(err(format!(
            "DEEPSCREEN_CUDA_ASYNC_COPY={other}: expected 1 (linear layers' TF32 GEMM copies its \
             tiles with cp.async) or 0 (the default)"
        ))),
    }
}

pub struct CudaTensor {
    pub(super) buf: CudaSlice<f32>,
    pub(super) shape: Vec<usize>,
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
    /// What the GEMMs run on (TF32 only where the device has the tensor cores for it).
    math: Math,
    /// Linear layers' TF32 GEMM copies its tiles with cp.async in two stages
    /// (`matmul_tc_async`); only with `Math::Tf32`.
    async_copies: bool,
}

fn ensure(cond: bool, op: &str, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(err(format!("{op}: {}", msg())))
    }
}

/// The launch configuration of `grid`, or why it exceeds CUDA's grid limits.
fn launch_config(op: &str, grid: Grid) -> Result<LaunchConfig> {
    let too_many = || format!("{grid:?} is too large for one launch");
    Ok(match grid {
        // 1-D: grid.x takes up to 2^31 - 1 blocks.
        Grid::Items(n) => {
            let blocks = n.div_ceil(THREADS as usize).max(1);
            ensure(blocks <= i32::MAX as usize, op, too_many)?;
            LaunchConfig {
                grid_dim: (blocks as u32, 1, 1),
                block_dim: (THREADS, 1, 1),
                shared_mem_bytes: 0,
            }
        }
        // Folded into 2-D past 65,535 blocks: the kernels recover the row as
        // `blockIdx.x + blockIdx.y * gridDim.x` and skip the excess.
        Grid::Rows {
            rows,
            threads,
            shared,
        } => {
            let grid_x = rows.clamp(1, MAX_GRID_YZ);
            let grid_y = rows.div_ceil(grid_x).max(1);
            ensure(grid_y <= MAX_GRID_YZ, op, too_many)?;
            LaunchConfig {
                grid_dim: (grid_x as u32, grid_y as u32, 1),
                block_dim: (threads, 1, 1),
                shared_mem_bytes: shared,
            }
        }
        Grid::Groups { groups, threads } => blocks(op, groups, (threads, 1, 1))?,
        Grid::Tiles(tiles) => blocks(op, tiles, (TILE as u32, TILE as u32, 1))?,
    })
}

/// A 3-D grid of `[x, y, z]` blocks of `block` threads, or why it exceeds CUDA's grid limits.
fn blocks(op: &str, [x, y, z]: [usize; 3], block: (u32, u32, u32)) -> Result<LaunchConfig> {
    ensure(
        x <= i32::MAX as usize && y <= MAX_GRID_YZ && z <= MAX_GRID_YZ,
        op,
        || format!("{:?} blocks is too many for one launch", [x, y, z]),
    )?;
    Ok(LaunchConfig {
        grid_dim: (x as u32, y as u32, z as u32),
        block_dim: block,
        shared_mem_bytes: 0,
    })
}

// SAFETY: `Params` is `#[repr(C)]` 32-bit words, the layout of the kernels' parameter structs.
unsafe impl DeviceRepr for Params {}

impl CudaBackend {
    /// The arithmetic its GEMMs, convolutions and attention run in.
    pub fn math(&self) -> Math {
        self.math
    }

    /// Open device 0 and compile the kernels for it, with the arithmetic `DEEPSCREEN_CUDA_MATH`
    /// asks for (TF32 tensor cores by default) and the linear layers' cp.async GEMM where
    /// `DEEPSCREEN_CUDA_ASYNC_COPY=1`; errors say why CUDA cannot run.
    pub fn new() -> Result<Self> {
        Ok(Self::with_math(Math::from_env()?)?.with_async_copies(async_copies_from_env()?))
    }

    /// The same backend with linear layers' TF32 GEMM copying its tiles by cp.async in two
    /// stages (`matmul_tc_async`), or not. Opt-in: not yet timed on hardware. Nothing changes
    /// where the GEMMs run in f32 (`Math::F32`, or a device before compute capability 8.0).
    pub fn with_async_copies(mut self, on: bool) -> Self {
        self.async_copies = on && self.math == Math::Tf32;
        self
    }

    /// As `new`, with `math` for the GEMMs (TF32 falls back to f32 before compute
    /// capability 8.0, which has no TF32 tensor cores).
    pub fn with_math(math: Math) -> Result<Self> {
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
            math: math.on_capability(major),
            ctx,
            stream,
            copy,
            staging: Mutex::new(Vec::new()),
            readback: Mutex::new(Vec::new()),
            functions,
            dummy,
            max_shared,
            async_copies: false,
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
}

impl Device for CudaBackend {
    type Tensor = CudaTensor;

    fn name(&self) -> &'static str {
        "cuda"
    }

    /// Counts reach the kernels as 32-bit words.
    fn max_tensor_elements(&self) -> usize {
        u32::MAX as usize
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
}

impl Kernels for CudaBackend {
    fn alloc(&self, shape: &[usize]) -> Result<CudaTensor> {
        let n: usize = shape.iter().product();
        // SAFETY: every kernel writes each output element before it is read.
        let buf = unsafe { self.stream.alloc::<f32>(n.max(1)) }.map_err(driver_err("alloc"))?;
        Ok(CudaTensor {
            buf,
            shape: shape.to_vec(),
        })
    }

    fn launch(
        &self,
        kernel: &'static str,
        params: &Params,
        inputs: &[Input<'_, CudaTensor>],
        out: &mut CudaTensor,
        grid: Grid,
    ) -> Result<()> {
        let cfg = launch_config(kernel, grid)?;
        let mut l = self.stream.launch_builder(&self.functions[kernel]);
        l.arg(params);
        for input in inputs {
            match input {
                Input::Tensor(t) => l.arg(&t.buf),
                Input::Absent => l.arg(&self.dummy),
                // The CUDA FFT computes its twiddles (`sincospif` is exact to float).
                Input::Twiddles(_) => &mut l,
            };
        }
        l.arg(&mut out.buf);
        // SAFETY: every kernel in kernels/*.cu takes its parameter struct (the layout of the
        // `Params` words its op fills), then its inputs, then its output, as pushed here.
        unsafe { l.launch(cfg) }.map_err(driver_err(kernel))?;
        Ok(())
    }

    /// The radix-2 kernel keeps n_fft/2 float2 (4 bytes per n_fft) in shared memory.
    fn radix2_max_nfft(&self) -> usize {
        RADIX2_MAX_NFFT.min(self.max_shared / 4)
    }

    fn gemm_kind(&self) -> GemmKind {
        match self.math {
            Math::Tf32 => GemmKind::TensorCores,
            Math::F32 => GemmKind::Tiled,
        }
    }

    fn async_copy_gemm(&self) -> bool {
        self.async_copies
    }
}
