//! The wgpu device: adapter probe, pipelines built once, pooled storage buffers, one pending
//! command encoder per forward pass, uniform parameter blocks, and queued readbacks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use wgpu::util::DeviceExt;

use super::pool::{BufferPool, PooledBuffer};
use super::{CHECK, COMMON, F16_MODULE, MODULES, REDUCE, REDUCE_SUBGROUPS, STAGE_F16, STAGE_F32};
use crate::backend::gpu::{F16_VARIANTS, GemmKind, Grid, Input, Kernels, Params};
use crate::backend::{Device, DeviceTensor, lock};
use crate::{Error, Result};

/// Workgroup size of the one-dimensional kernels (`WG` in `shaders/common.wgsl`).
const WG: u32 = 256;
/// Mappable readback buffers kept for reuse.
const READBACK_KEEP: usize = 4;
/// Most workgroups per dispatch dimension.
const MAX_GROUPS: u32 = 65535;

fn err(msg: impl Into<String>) -> Error {
    Error::backend("wgpu", msg)
}

/// A readback in flight: the buffer being mapped, its submission, and the mapping's outcome.
pub struct WgpuReadback {
    buffer: Option<wgpu::Buffer>,
    bytes: u64,
    submission: wgpu::SubmissionIndex,
    mapped: std::sync::mpsc::Receiver<std::result::Result<(), wgpu::BufferAsyncError>>,
}

/// A tensor in a device storage buffer.
pub struct WgpuTensor {
    pub(super) buffer: PooledBuffer,
    pub(super) shape: Vec<usize>,
}

impl DeviceTensor for WgpuTensor {
    fn shape(&self) -> &[usize] {
        &self.shape
    }
}

pub struct WgpuBackend {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    max_binding: u64,
    pipelines: HashMap<&'static str, wgpu::ComputePipeline>,
    pool: Arc<BufferPool>,
    encoder: Mutex<Option<wgpu::CommandEncoder>>,
    /// Bound where a kernel's optional input (e.g. bias) is absent.
    dummy: wgpu::Buffer,
    /// Mappable readback buffers not in use (several readbacks can be in flight).
    readback: Mutex<Vec<wgpu::Buffer>>,
    /// STFT twiddle tables by n_fft (`launch::twiddles`), made once and kept.
    twiddles: Mutex<HashMap<usize, wgpu::Buffer>>,
    device_error: Arc<Mutex<Option<String>>>,
    /// The kernels and optional features in use.
    options: WgpuOptions,
}

/// Which kernels a wgpu backend runs, and which optional adapter features they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WgpuOptions {
    /// The matrix products: `Tiled` or `RegisterBlocked`.
    pub gemm: GemmKind,
    /// Workgroup reductions (layer norm, global pooling, the range floor) with subgroup
    /// operations (`shaders/reduce_subgroups.wgsl`) instead of a tree in workgroup memory.
    pub subgroups: bool,
    /// Linear layers' GEMM tiles staged in f16 (`matmul_f16`, `matmul_rb_f16`): their inputs
    /// rounded as TF32 rounds them, products and sums in f32. The front-end's GEMMs
    /// (filterbank, DCT) stay f32: spectra exceed f16's range.
    pub f16: bool,
}

/// The optional features the adapter offers, as (subgroups, f16); neither without an adapter.
pub fn offered_features() -> (bool, bool) {
    match &probe().found {
        Ok((a, _)) => {
            let f = a.features();
            (
                f.contains(wgpu::Features::SUBGROUP),
                f.contains(wgpu::Features::SHADER_F16),
            )
        }
        Err(_) => (false, false),
    }
}

/// A feature switch from the environment: `None` unset (or empty), else on or off.
fn env_switch(var: &str) -> Result<Option<bool>> {
    match std::env::var(var).as_deref() {
        Err(_) | Ok("") => Ok(None),
        Ok("1" | "on") => Ok(Some(true)),
        Ok("0" | "off") => Ok(Some(false)),
        Ok(other) => Err(err(format!("{var}={other}: expected 1 (on) or 0 (off)"))),
    }
}

impl WgpuOptions {
    /// `gemm`, with subgroup reductions where the adapter offers them and f16 staging off (it
    /// changes the arithmetic, and no GPU has timed it yet: BENCHMARKS.md).
    pub fn offered(gemm: GemmKind) -> Self {
        WgpuOptions {
            gemm,
            subgroups: offered_features().0,
            f16: false,
        }
    }

    /// What `WgpuBackend::new` opens: `offered(default GEMM)` with the overrides
    /// `DEEPSCREEN_WGPU_GEMM` (`tiled` | `rb`), `DEEPSCREEN_WGPU_SUBGROUPS` and
    /// `DEEPSCREEN_WGPU_F16` (`1` | `0`).
    pub fn from_env() -> Result<Self> {
        let gemm = match std::env::var("DEEPSCREEN_WGPU_GEMM").as_deref() {
            Err(_) | Ok("") => default_gemm(),
            Ok("rb") => GemmKind::RegisterBlocked,
            Ok("tiled") => GemmKind::Tiled,
            Ok(other) => {
                return Err(err(format!(
                    "DEEPSCREEN_WGPU_GEMM={other}: expected tiled (the default on a GPU) or rb \
                     (register-blocked, the default on a software adapter)"
                )));
            }
        };
        let mut options = Self::offered(gemm);
        if let Some(on) = env_switch("DEEPSCREEN_WGPU_SUBGROUPS")? {
            options.subgroups = on;
        }
        if let Some(on) = env_switch("DEEPSCREEN_WGPU_F16")? {
            options.f16 = on;
        }
        Ok(options)
    }

    /// For `deepscreen devices`: the optional features, in use or only offered.
    fn describe(self) -> String {
        let (subgroups, f16) = offered_features();
        let feature = |used: bool, offered: bool, what: &str, var: &str| match (used, offered) {
            (true, true) => format!("{what} on"),
            (true, false) => {
                format!("{what} asked for by {var}=1 but not offered: wgpu cannot start")
            }
            (false, true) => format!("{what} offered, off ({var}=1)"),
            (false, false) => format!("no {what}"),
        };
        format!(
            "{}; {}",
            feature(
                self.subgroups,
                subgroups,
                "subgroup reductions",
                "DEEPSCREEN_WGPU_SUBGROUPS"
            ),
            feature(self.f16, f16, "f16 GEMM tiles", "DEEPSCREEN_WGPU_F16")
        )
    }
}

/// What the one-time adapter probe found, kept for every backend the process opens: creating
/// instances is slow, and on an H200 (driver 580) the 29th Vulkan instance of one process found
/// no adapter, so backends share the probe's instance and adapter and open only a device each.
struct Probe {
    /// The adapter and its description, or why there is none.
    found: std::result::Result<(wgpu::Adapter, String), String>,
    /// A real GPU rather than a software rasteriser (lavapipe, WARP, ...).
    hardware: bool,
    /// Held so the adapter's instance outlives every backend.
    _instance: wgpu::Instance,
}

fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let found = pick_adapter(&instance).map(|a| {
            let detail = describe(&a.get_info(), &a.limits());
            (a, detail)
        });
        let hardware =
            matches!(&found, Ok((a, _)) if a.get_info().device_type != wgpu::DeviceType::Cpu);
        Probe {
            found,
            hardware,
            _instance: instance,
        }
    })
}

/// `deepscreen devices` line: adapter, driver and key limits, or why there is none.
pub fn status() -> (bool, String) {
    match (&probe().found, WgpuOptions::from_env()) {
        (Ok((_, d)), Ok(o)) => (
            true,
            format!("{d}; GEMM {}; {}", o.gemm.describe(), o.describe()),
        ),
        (Ok(_), Err(e)) => (false, e.to_string()),
        (Err(e), _) => (false, e.clone()),
    }
}

/// Whether `--backend auto` should use wgpu: only on a real GPU. A software adapter is
/// slower than the CPU backend, so auto skips it (it stays available with `--backend wgpu`).
pub fn preferred_by_auto() -> bool {
    probe().found.is_ok() && probe().hardware
}

fn describe(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> String {
    format!(
        "{} ({:?}, {:?}; driver {} {}); max storage binding {} MiB, workgroup storage {} KiB",
        info.name,
        info.device_type,
        info.backend,
        info.driver,
        info.driver_info,
        limits.max_storage_buffer_binding_size / (1 << 20),
        limits.max_compute_workgroup_storage_size / 1024
    )
}

fn pick_adapter(instance: &wgpu::Instance) -> std::result::Result<wgpu::Adapter, String> {
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let usable = |a: &wgpu::Adapter| {
        let l = a.limits();
        a.get_info().backend != wgpu::Backend::Gl && l.max_compute_workgroup_storage_size >= 16384
    };
    if let Ok(wanted) = std::env::var("WGPU_ADAPTER_NAME") {
        let wanted_lc = wanted.to_lowercase();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted_lc))
            .ok_or_else(|| format!("no adapter name contains WGPU_ADAPTER_NAME={wanted:?}"));
    }
    let rank = |a: &wgpu::Adapter| match a.get_info().device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    };
    adapters
        .into_iter()
        .filter(usable)
        .min_by_key(rank)
        .ok_or_else(|| {
            "no Vulkan/Metal/DX12 adapter found (on Linux without a GPU, install Mesa's lavapipe: \
             apt-get install mesa-vulkan-drivers)"
                .to_string()
        })
}

fn ensure(cond: bool, op: &str, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(err(format!("{op}: {}", msg())))
    }
}

/// Workgroup grid for `groups` workgroups, folded into 2-D past the per-dimension limit
/// (the kernels undo it with `linear_group` / `linear_id`).
fn fold(op: &str, groups: usize) -> Result<[u32; 3]> {
    let groups = u32::try_from(groups)
        .ok()
        .filter(|g| g.div_ceil(MAX_GROUPS) <= MAX_GROUPS)
        .ok_or_else(|| {
            err(format!(
                "{op}: {groups} workgroups is too many for one dispatch"
            ))
        })?;
    Ok(if groups <= MAX_GROUPS {
        [groups.max(1), 1, 1]
    } else {
        [MAX_GROUPS, groups.div_ceil(MAX_GROUPS), 1]
    })
}

/// The workgroups a launch dispatches.
fn workgroups(op: &str, grid: Grid) -> Result<[u32; 3]> {
    match grid {
        Grid::Items(n) => fold(op, n.div_ceil(WG as usize)),
        Grid::Rows { rows, .. } => fold(op, rows),
        Grid::Tiles(tiles) | Grid::Groups { groups: tiles, .. } => {
            ensure(tiles.iter().all(|&t| t <= MAX_GROUPS as usize), op, || {
                format!("{tiles:?} tiles is too many for one dispatch")
            })?;
            Ok(tiles.map(|t| t as u32))
        }
    }
}

/// The GEMM kernels `WgpuBackend::new` picks without `DEEPSCREEN_WGPU_GEMM`: on a GPU the
/// 16×16 tiles (on an H200 the register-blocked kernels made Whisper base 4.8× slower: 533 vs
/// 112 ms for 32 windows, BENCHMARKS.md); on a software adapter the register-blocked ones
/// (2.3–4.9× faster on lavapipe).
fn default_gemm() -> GemmKind {
    if probe().hardware {
        GemmKind::Tiled
    } else {
        GemmKind::RegisterBlocked
    }
}

impl WgpuBackend {
    /// Open the preferred adapter with `WgpuOptions::from_env()`; errors say why there is none
    /// (never panics).
    pub fn new() -> Result<Self> {
        let options = WgpuOptions::from_env()?;
        let chosen = env_switch("DEEPSCREEN_WGPU_SUBGROUPS")?.is_some();
        match Self::with_options(options) {
            // Subgroups by default only: should a driver that offers them fail on these shaders,
            // the reductions through workgroup memory still run (the first error if not).
            Err(first) if options.subgroups && !chosen => Self::with_options(WgpuOptions {
                subgroups: false,
                ..options
            })
            .map_err(|_| first),
            opened => opened,
        }
    }

    /// As `new`, with `gemm` (`RegisterBlocked` or `Tiled`) for the matrix products and the
    /// optional features as `WgpuOptions::offered` has them.
    pub fn with_gemm(gemm: GemmKind) -> Result<Self> {
        Self::with_options(WgpuOptions::offered(gemm))
    }

    /// As `new`, with `options`; an optional feature the adapter does not offer is an error.
    pub fn with_options(options: WgpuOptions) -> Result<Self> {
        if options.gemm == GemmKind::TensorCores {
            return Err(err("tensor-core kernels are CUDA's"));
        }
        let (adapter, _) = probe().found.as_ref().map_err(|e| err(e.clone()))?;
        let (subgroups, f16) = offered_features();
        let mut features = wgpu::Features::empty();
        for (wanted, offered, feature, what) in [
            (
                options.subgroups,
                subgroups,
                wgpu::Features::SUBGROUP,
                "subgroup operations",
            ),
            (
                options.f16,
                f16,
                wgpu::Features::SHADER_F16,
                "f16 in shaders",
            ),
        ] {
            if wanted && !offered {
                return Err(err(format!("this adapter does not offer {what}")));
            }
            if wanted {
                features |= feature;
            }
        }
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("deepscreen"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| err(format!("cannot open the device: {e}")))?;
        let device_error = Arc::new(Mutex::new(None));
        let sink = device_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = lock(&sink);
            slot.get_or_insert_with(|| e.to_string());
        }));
        // Each module: `enable f16;` where it has f16 tiles, then COMMON, the reductions and
        // the GEMM staging type the options choose, then its own source; `F16_MODULE` once
        // more with f16 tiles.
        let build = |name: &str, source: &str, f16: bool| {
            // (naga takes subgroup operations from the device feature: no directive for them)
            let enables = if f16 { "enable f16;\n" } else { "" };
            let reduce = if options.subgroups {
                REDUCE_SUBGROUPS
            } else {
                REDUCE
            };
            let stage = if f16 { STAGE_F16 } else { STAGE_F32 };
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(
                    format!("{enables}{COMMON}\n{reduce}\n{stage}\n{source}").into(),
                ),
            })
        };
        let pipeline = |module: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let mut pipelines = HashMap::new();
        for (name, source, entries) in MODULES {
            let module = build(name, source, false);
            for entry in *entries {
                pipelines.insert(*entry, pipeline(&module, entry));
            }
            if options.f16 && *name == F16_MODULE {
                let module = build(name, source, true);
                for (entry, key) in F16_VARIANTS {
                    pipelines.insert(*key, pipeline(&module, entry));
                }
            }
        }
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let backend = WgpuBackend {
            max_binding: limits.max_storage_buffer_binding_size,
            pool: Arc::new(BufferPool::new(device.clone())),
            info: adapter.get_info(),
            device,
            queue,
            pipelines,
            encoder: Mutex::new(None),
            dummy,
            readback: Mutex::new(Vec::new()),
            twiddles: Mutex::new(HashMap::new()),
            device_error,
            options,
        };
        backend.check_device()?;
        Ok(backend)
    }

    /// The STFT twiddle table for `n_fft` (computed and uploaded on first use).
    fn twiddles(&self, n_fft: usize) -> wgpu::Buffer {
        lock(&self.twiddles)
            .entry(n_fft)
            .or_insert_with(|| {
                let table: Vec<u8> = crate::backend::launch::twiddles(n_fft)
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect();
                self.device
                    .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some("stft twiddles"),
                        contents: &table,
                        usage: wgpu::BufferUsages::STORAGE,
                    })
            })
            .clone()
    }

    /// The kernels and optional features this backend runs (after `new`'s fallback).
    pub fn options(&self) -> WgpuOptions {
        self.options
    }

    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    fn check_device(&self) -> Result<()> {
        let mut slot = lock(&self.device_error);
        match slot.take() {
            Some(e) => Err(err(format!("device error: {e}"))),
            None => Ok(()),
        }
    }

    fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut slot = lock(&self.encoder);
        let encoder = slot.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("deepscreen ops"),
                })
        });
        f(encoder)
    }

    fn alloc_tensor(&self, shape: &[usize]) -> Result<WgpuTensor> {
        let elements: usize = shape.iter().product();
        let bytes = (elements.max(1) * 4) as u64;
        if bytes > self.max_binding {
            return Err(err(format!(
                "a tensor of shape {shape:?} needs {} MiB, over this adapter's {} MiB storage binding limit \
                 (lower --batch)",
                bytes >> 20,
                self.max_binding >> 20
            )));
        }
        Ok(WgpuTensor {
            buffer: self.pool.take(bytes),
            shape: shape.to_vec(),
        })
    }
}

impl Device for WgpuBackend {
    type Tensor = WgpuTensor;

    fn name(&self) -> &'static str {
        "wgpu"
    }

    fn max_tensor_elements(&self) -> usize {
        usize::try_from(self.max_binding / 4).unwrap_or(usize::MAX)
    }

    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<WgpuTensor> {
        CHECK.upload(data.len(), shape)?;
        let t = self.alloc_tensor(shape)?;
        if !data.is_empty() {
            let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            let staging = self
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("upload"),
                    contents: &bytes,
                    usage: wgpu::BufferUsages::COPY_SRC,
                });
            self.with_encoder(|e| {
                e.copy_buffer_to_buffer(&staging, 0, t.buffer.buffer(), 0, bytes.len() as u64)
            });
        }
        Ok(t)
    }

    type Readback = WgpuReadback;

    /// Submits the queued work plus a copy into a mappable buffer and asks for the mapping;
    /// nothing waits until `finish_download`.
    fn start_download(&self, tensor: &WgpuTensor) -> Result<WgpuReadback> {
        let bytes = (tensor.len() * 4) as u64;
        let buffer = (bytes > 0).then(|| {
            let mut free = lock(&self.readback);
            match free.iter().position(|b| b.size() >= bytes) {
                Some(i) => free.swap_remove(i),
                None => self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: bytes.max(256).next_power_of_two(),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
            }
        });
        let mut encoder = lock(&self.encoder).take().unwrap_or_else(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("download"),
                })
        });
        if let Some(buffer) = &buffer {
            encoder.copy_buffer_to_buffer(tensor.buffer.buffer(), 0, buffer, 0, bytes);
        }
        let submission = self.queue.submit([encoder.finish()]);
        let (tx, mapped) = std::sync::mpsc::channel();
        if let Some(buffer) = &buffer {
            buffer.map_async(wgpu::MapMode::Read, ..bytes, move |r| {
                let _ = tx.send(r);
            });
        }
        Ok(WgpuReadback {
            buffer,
            bytes,
            submission,
            mapped,
        })
    }

    fn finish_download(&self, readback: WgpuReadback) -> Result<Vec<f32>> {
        // Waits for this submission only (and runs its mapping callback), not for batches
        // queued after it.
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(readback.submission),
                timeout: None,
            })
            .map_err(|e| err(format!("waiting for the device: {e}")))?;
        self.check_device()?;
        let Some(buffer) = readback.buffer else {
            return Ok(Vec::new());
        };
        readback
            .mapped
            .recv()
            .map_err(|_| err("readback was never mapped"))?
            .map_err(|e| err(format!("readback failed: {e}")))?;
        let view = buffer
            .get_mapped_range(..readback.bytes)
            .map_err(|e| err(format!("readback failed: {e}")))?;
        let out = view
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        drop(view);
        buffer.unmap();
        let mut free = lock(&self.readback);
        if free.len() < READBACK_KEEP {
            free.push(buffer);
        }
        Ok(out)
    }

    fn reshape(&self, tensor: WgpuTensor, shape: &[usize]) -> Result<WgpuTensor> {
        CHECK.reshape(&tensor.shape, shape)?;
        Ok(WgpuTensor {
            buffer: tensor.buffer,
            shape: shape.to_vec(),
        })
    }
}

impl Kernels for WgpuBackend {
    fn alloc(&self, shape: &[usize]) -> Result<WgpuTensor> {
        self.alloc_tensor(shape)
    }

    /// Records one compute pass: the parameter block at binding 0, then the inputs and the
    /// output at 1, 2, ...
    fn launch(
        &self,
        kernel: &'static str,
        params: &Params,
        inputs: &[Input<'_, WgpuTensor>],
        out: &mut WgpuTensor,
        grid: Grid,
    ) -> Result<()> {
        let groups = workgroups(kernel, grid)?;
        let pipeline = &self.pipelines[kernel];
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(kernel),
                contents: &params.bytes(),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let twiddles: Vec<wgpu::Buffer> = inputs
            .iter()
            .filter_map(|i| match i {
                Input::Twiddles(n_fft) => Some(self.twiddles(*n_fft)),
                _ => None,
            })
            .collect();
        let mut twiddles = twiddles.iter();
        let mut buffers: Vec<&wgpu::Buffer> = inputs
            .iter()
            .map(|i| match i {
                Input::Tensor(t) => t.buffer.buffer(),
                Input::Absent => &self.dummy,
                Input::Twiddles(_) => twiddles.next().expect("one table per twiddle input"),
            })
            .collect();
        buffers.push(out.buffer.buffer());
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: uniform.as_entire_binding(),
        }];
        for (i, b) in buffers.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: b.as_entire_binding(),
            });
        }
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(kernel),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.with_encoder(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(kernel),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        });
        Ok(())
    }

    /// The radix-2 kernel's workgroup buffer holds n_fft/2 complex values (2,048).
    fn radix2_max_nfft(&self) -> usize {
        4096
    }

    fn gemm_kind(&self) -> GemmKind {
        self.options.gemm
    }

    fn f16_gemm(&self) -> bool {
        self.options.f16
    }
}
