//! wgpu backend: every op as a WGSL compute shader (`shaders/*.wgsl`), on any GPU wgpu reaches
//! (Vulkan, Metal, DX12) and on Mesa's software Vulkan (lavapipe) where there is none.
//!
//! Design:
//! - one device per backend; the adapter is the first high-performance one, or the one whose
//!   name contains `WGPU_ADAPTER_NAME`; device limits are the adapter's own;
//! - shader modules compiled once, pipelines cached by entry point;
//! - ops are recorded into one pending command encoder (uploads are encoder-ordered copies
//!   from staging buffers, so recycled buffers are never overwritten early) and submitted only
//!   when a result is downloaded: a whole forward pass is one submission;
//! - storage buffers come from a pool keyed by size and return to it when a tensor drops.

mod pool;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use pool::{BufferPool, PooledBuffer};

use super::lock;
use super::shapes::Shapes;
use wgpu::util::DeviceExt;

use super::{
    Activation, Backend, Conv2dParams, DeviceTensor, GlobalPool, LogSpec, NORM_EPS, Normalization,
    PoolParams, Projection, StftParams,
};
use crate::{Error, Result};

const COMMON: &str = include_str!("../../../shaders/common.wgsl");

/// Each WGSL file and the entry points it defines.
const MODULES: &[(&str, &str, &[&str])] = &[
    (
        "stft",
        include_str!("../../../shaders/stft.wgsl"),
        &["stft_radix2", "stft_dft"],
    ),
    (
        "matmul",
        include_str!("../../../shaders/matmul.wgsl"),
        &["matmul"],
    ),
    (
        "conv",
        include_str!("../../../shaders/conv.wgsl"),
        &["conv2d"],
    ),
    (
        "frontend",
        include_str!("../../../shaders/frontend.wgsl"),
        &["select_bins_log", "normalize_window"],
    ),
    (
        "frontend_global",
        include_str!("../../../shaders/frontend_global.wgsl"),
        &["normalize_global"],
    ),
    (
        "affine",
        include_str!("../../../shaders/affine.wgsl"),
        &["channel_affine"],
    ),
    (
        "layers",
        include_str!("../../../shaders/layers.wgsl"),
        &["mfm", "max_pool2d", "global_pool", "sigmoid", "softmax"],
    ),
];

/// Largest n_fft the radix-2 shared-memory kernel handles (its buffer holds n_fft/2 complex).
const RADIX2_MAX_NFFT: usize = 4096;
const WG: u32 = 256;
/// Mappable readback buffers kept for reuse.
const READBACK_KEEP: usize = 4;
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
    buffer: PooledBuffer,
    shape: Vec<usize>,
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
    device_error: Arc<Mutex<Option<String>>>,
}

/// What the one-time adapter probe found (kept: creating instances is slow).
struct Probe {
    /// Adapter description, or why there is none.
    detail: std::result::Result<String, String>,
    /// A real GPU rather than a software rasteriser (lavapipe, WARP, ...).
    hardware: bool,
}

fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        match pick_adapter(&instance) {
            Ok(a) => Probe {
                detail: Ok(describe(&a.get_info(), &a.limits())),
                hardware: a.get_info().device_type != wgpu::DeviceType::Cpu,
            },
            Err(e) => Probe {
                detail: Err(e),
                hardware: false,
            },
        }
    })
}

/// `deepscreen devices` line: adapter, driver and key limits, or why there is none.
pub fn status() -> (bool, String) {
    match &probe().detail {
        Ok(d) => (true, d.clone()),
        Err(e) => (false, e.clone()),
    }
}

/// Whether `--backend auto` should use wgpu: only on a real GPU. A software adapter is
/// slower than the CPU backend, so auto skips it (it stays available with `--backend wgpu`).
pub fn preferred_by_auto() -> bool {
    probe().detail.is_ok() && probe().hardware
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

/// Every kernel's `Params` struct fits in this many bytes; unused trailing words are zero.
const PARAMS_BYTES: usize = 128;

/// Uniform parameters: 32-bit words, zero-padded to the common uniform size.
fn words(values: &[u32]) -> Vec<u8> {
    let mut v: Vec<u8> = values.iter().flat_map(|w| w.to_le_bytes()).collect();
    assert!(
        v.len() <= PARAMS_BYTES,
        "kernel parameters exceed {PARAMS_BYTES} bytes"
    );
    v.resize(PARAMS_BYTES, 0);
    v
}

fn f(x: f32) -> u32 {
    x.to_bits()
}

fn act_code(a: Activation) -> (u32, f32) {
    match a {
        Activation::None => (0, 0.0),
        Activation::Relu => (1, 0.0),
        Activation::LeakyRelu(s) => (2, s),
        Activation::Sigmoid => (3, 0.0),
    }
}

fn log_code(l: LogSpec) -> (u32, f32) {
    match l {
        LogSpec::Ln { eps } => (1, eps),
        LogSpec::Log10 { eps } => (2, eps),
        LogSpec::Db { eps } => (3, eps),
    }
}

/// Shape rules, with "wgpu" in their error messages.
const CHECK: Shapes = Shapes("wgpu");

fn ensure(cond: bool, op: &str, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(err(format!("{op}: {}", msg())))
    }
}

/// Workgroup grid for `groups` workgroups, folded into 2-D past the per-dimension limit.
fn grid(groups: u32) -> [u32; 3] {
    if groups <= MAX_GROUPS {
        [groups.max(1), 1, 1]
    } else {
        [MAX_GROUPS, groups.div_ceil(MAX_GROUPS), 1]
    }
}

fn grid_for(invocations: usize) -> Result<[u32; 3]> {
    let groups = u32::try_from(invocations.div_ceil(WG as usize)).map_err(|_| {
        err(format!(
            "{invocations} invocations is too many for one dispatch"
        ))
    })?;
    Ok(grid(groups))
}

impl WgpuBackend {
    /// Open the preferred adapter; errors say why there is none (never panics).
    pub fn new() -> Result<Self> {
        probe().detail.as_ref().map_err(|e| err(e.clone()))?;
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pick_adapter(&instance).map_err(err)?;
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("deepscreen"),
            required_features: wgpu::Features::empty(),
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
        let mut pipelines = HashMap::new();
        for (name, source, entries) in MODULES {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(name),
                source: wgpu::ShaderSource::Wgsl(format!("{COMMON}\n{source}").into()),
            });
            for entry in *entries {
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                pipelines.insert(*entry, pipeline);
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
            device_error,
        };
        backend.check_device()?;
        Ok(backend)
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

    fn alloc(&self, shape: &[usize]) -> Result<WgpuTensor> {
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

    /// Record one compute dispatch: `params` at binding 0, then `buffers` at 1, 2, ...
    fn dispatch(
        &self,
        entry: &'static str,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) {
        let pipeline = &self.pipelines[entry];
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(entry),
                contents: &words(params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
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
            label: Some(entry),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        self.with_encoder(|encoder| {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some(entry),
                timestamp_writes: None,
            });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        });
    }

    /// `out[M, N] = epilogue(a[M, K] · b)` with `b` as [K, N] or (transposed) [N, K].
    #[allow(clippy::too_many_arguments)]
    fn matmul(
        &self,
        a: &WgpuTensor,
        (m, k, n): (usize, usize, usize),
        b: &WgpuTensor,
        b_trans: bool,
        bias: Option<&WgpuTensor>,
        act: Activation,
        log: Option<LogSpec>,
        out_shape: &[usize],
    ) -> Result<WgpuTensor> {
        let out = self.alloc(out_shape)?;
        let (act, slope) = act_code(act);
        let (log_kind, eps) = log.map_or((0, 0.0), log_code);
        let params = [
            m as u32,
            n as u32,
            k as u32,
            b_trans as u32,
            bias.is_some() as u32,
            act,
            f(slope),
            log_kind,
            f(eps),
        ];
        let bias_buf = bias.map_or(&self.dummy, |b| b.buffer.buffer());
        let groups_x = (n as u32).div_ceil(16);
        let groups_y = (m as u32).div_ceil(16);
        ensure(
            groups_y <= MAX_GROUPS && groups_x <= MAX_GROUPS,
            "matmul",
            || format!("{m}x{n} output is too large for one dispatch"),
        )?;
        if m > 0 && n > 0 {
            self.dispatch(
                "matmul",
                &params,
                &[
                    a.buffer.buffer(),
                    b.buffer.buffer(),
                    bias_buf,
                    out.buffer.buffer(),
                ],
                [groups_x, groups_y, 1],
            );
        }
        Ok(out)
    }

    fn layers_op(
        &self,
        entry: &'static str,
        input: &WgpuTensor,
        params: [u32; 20],
        out_shape: &[usize],
        invocations: usize,
    ) -> Result<WgpuTensor> {
        let out = self.alloc(out_shape)?;
        if invocations > 0 {
            self.dispatch(
                entry,
                &params,
                &[input.buffer.buffer(), out.buffer.buffer()],
                grid_for(invocations)?,
            );
        }
        Ok(out)
    }
}

impl Backend for WgpuBackend {
    type Tensor = WgpuTensor;

    fn name(&self) -> &'static str {
        "wgpu"
    }

    fn max_tensor_elements(&self) -> usize {
        usize::try_from(self.max_binding / 4).unwrap_or(usize::MAX)
    }

    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<WgpuTensor> {
        CHECK.upload(data.len(), shape)?;
        let t = self.alloc(shape)?;
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

    fn stft_power(
        &self,
        signal: &WgpuTensor,
        window: &WgpuTensor,
        p: &StftParams,
    ) -> Result<WgpuTensor> {
        let shape = CHECK.stft(&signal.shape, window.len(), p)?;
        let (batch, len, frames) = (shape.batch, shape.len, shape.frames);
        let bins = p.bins();
        let out = self.alloc(&[batch, frames, bins])?;
        let radix2 = p.n_fft.is_power_of_two() && p.n_fft >= 4 && p.n_fft <= RADIX2_MAX_NFFT;
        let half = p.n_fft / 2;
        let params = [
            batch as u32,
            len as u32,
            frames as u32,
            p.n_fft as u32,
            p.hop as u32,
            if p.center { half as u32 } else { 0 },
            bins as u32,
            half as u32,
            half.trailing_zeros(),
            f(p.power),
        ];
        let buffers = [
            signal.buffer.buffer(),
            window.buffer.buffer(),
            out.buffer.buffer(),
        ];
        if batch * frames > 0 {
            if radix2 {
                let rows = u32::try_from(batch * frames).map_err(|_| err("too many frames"))?;
                self.dispatch("stft_radix2", &params, &buffers, grid(rows));
            } else {
                self.dispatch(
                    "stft_dft",
                    &params,
                    &buffers,
                    grid_for(batch * frames * bins)?,
                );
            }
        }
        Ok(out)
    }

    fn filterbank_log(
        &self,
        power: &WgpuTensor,
        projection: Projection<&WgpuTensor>,
        log: LogSpec,
    ) -> Result<WgpuTensor> {
        let op = "filterbank_log";
        match projection {
            Projection::Bins { start, end } => {
                let [batch, frames, bins] = CHECK.bin_range(&power.shape, start, end)?;
                let width = end - start;
                let (kind, eps) = log_code(log);
                let out = self.alloc(&[batch, frames, width])?;
                let rows = batch * frames;
                let params = [
                    rows as u32,
                    bins as u32,
                    start as u32,
                    width as u32,
                    kind,
                    f(eps),
                ];
                if rows * width > 0 {
                    self.dispatch(
                        "select_bins_log",
                        &params,
                        &[power.buffer.buffer(), out.buffer.buffer()],
                        grid_for(rows * width)?,
                    );
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

    fn dct(&self, features: &WgpuTensor, basis: &WgpuTensor) -> Result<WgpuTensor> {
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
        features: &WgpuTensor,
        mode: Normalization<&WgpuTensor>,
    ) -> Result<WgpuTensor> {
        let stats = match &mode {
            Normalization::Global { mean, std } => Some((mean.len(), std.len())),
            _ => None,
        };
        let [batch, frames, feats] = CHECK.normalize(&features.shape, stats)?;
        let out = self.alloc(&features.shape)?;
        let n = batch * frames * feats;
        if n == 0 {
            return Ok(out);
        }
        match mode {
            Normalization::Global { mean, std } => {
                self.dispatch(
                    "normalize_global",
                    &[n as u32, feats as u32],
                    &[
                        features.buffer.buffer(),
                        mean.buffer.buffer(),
                        std.buffer.buffer(),
                        out.buffer.buffer(),
                    ],
                    grid_for(n)?,
                );
            }
            Normalization::Mean | Normalization::MeanVar => {
                let mode = matches!(mode, Normalization::MeanVar) as u32;
                let params = [
                    0,
                    feats as u32,
                    0,
                    0,
                    0,
                    0,
                    frames as u32,
                    mode,
                    f(NORM_EPS),
                    batch as u32,
                ];
                self.dispatch(
                    "normalize_window",
                    &params,
                    &[features.buffer.buffer(), out.buffer.buffer()],
                    grid_for(batch * feats)?,
                );
            }
        }
        Ok(out)
    }

    fn conv2d(
        &self,
        input: &WgpuTensor,
        weight: &WgpuTensor,
        bias: Option<&WgpuTensor>,
        p: &Conv2dParams,
        activation: Activation,
    ) -> Result<WgpuTensor> {
        let op = "conv2d";
        let c = CHECK.conv2d(
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
            p,
        )?;
        let (batch, channels, h, w) = (c.batch, c.channels, c.h, c.w);
        let (out_ch, kh, kw, ho, wo) = (c.out_channels, c.kh, c.kw, c.ho, c.wo);
        let out = self.alloc(&[batch, out_ch, ho, wo])?;
        let (act, slope) = act_code(activation);
        let params = [
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
        .map(|v| v as u32);
        let mut params = params.to_vec();
        params.extend([bias.is_some() as u32, act, f(slope)]);
        let groups = [
            ((ho * wo) as u32).div_ceil(16),
            (out_ch as u32).div_ceil(16),
            batch as u32,
        ];
        ensure(groups.iter().all(|g| *g <= MAX_GROUPS), op, || {
            "output too large for one dispatch".into()
        })?;
        if ho * wo * out_ch * batch > 0 {
            self.dispatch(
                "conv2d",
                &params,
                &[
                    input.buffer.buffer(),
                    weight.buffer.buffer(),
                    bias.map_or(&self.dummy, |b| b.buffer.buffer()),
                    out.buffer.buffer(),
                ],
                groups,
            );
        }
        Ok(out)
    }

    fn channel_affine(
        &self,
        input: &WgpuTensor,
        scale: &WgpuTensor,
        shift: &WgpuTensor,
        activation: Activation,
    ) -> Result<WgpuTensor> {
        let (channels, inner) = CHECK.channel_affine(&input.shape, &scale.shape, &shift.shape)?;
        let out = self.alloc(&input.shape)?;
        let n = input.len();
        let (act, slope) = act_code(activation);
        if n > 0 {
            self.dispatch(
                "channel_affine",
                &[n as u32, channels as u32, inner as u32, act, f(slope)],
                &[
                    input.buffer.buffer(),
                    scale.buffer.buffer(),
                    shift.buffer.buffer(),
                    out.buffer.buffer(),
                ],
                grid_for(n)?,
            );
        }
        Ok(out)
    }

    fn max_pool2d(&self, input: &WgpuTensor, p: &PoolParams) -> Result<WgpuTensor> {
        let c = CHECK.max_pool2d(&input.shape, p)?;
        let (batch, channels, h, w, ho, wo) = (c.batch, c.channels, c.h, c.w, c.ho, c.wo);
        let n = batch * channels * ho * wo;
        let mut params = [0u32; 20];
        params[..13].copy_from_slice(
            &[
                n,
                channels,
                0,
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
            .map(|v| v as u32),
        );
        self.layers_op("max_pool2d", input, params, &[batch, channels, ho, wo], n)
    }

    fn mfm(&self, input: &WgpuTensor) -> Result<WgpuTensor> {
        let (shape, inner) = CHECK.mfm(&input.shape)?;
        let n: usize = shape.iter().product();
        let mut params = [0u32; 20];
        params[..3].copy_from_slice(&[n as u32, input.shape[1] as u32, inner as u32]);
        self.layers_op("mfm", input, params, &shape, n)
    }

    fn global_pool(&self, input: &WgpuTensor, mode: GlobalPool) -> Result<WgpuTensor> {
        let [batch, channels, hw] = CHECK.global_pool(&input.shape)?;
        let planes = batch * channels;
        let out = self.alloc(&[batch, channels])?;
        let mut params = [0u32; 20];
        params[0] = planes as u32;
        params[2] = hw as u32;
        params[15] = (mode == GlobalPool::Max) as u32;
        if planes > 0 {
            let groups = u32::try_from(planes).map_err(|_| err("too many planes"))?;
            self.dispatch(
                "global_pool",
                &params,
                &[input.buffer.buffer(), out.buffer.buffer()],
                grid(groups),
            );
        }
        Ok(out)
    }

    fn linear(
        &self,
        input: &WgpuTensor,
        weight: &WgpuTensor,
        bias: Option<&WgpuTensor>,
        activation: Activation,
    ) -> Result<WgpuTensor> {
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

    fn sigmoid(&self, input: &WgpuTensor, scale: f32, bias: f32) -> Result<WgpuTensor> {
        let n = input.len();
        let mut params = [0u32; 20];
        params[0] = n as u32;
        params[16] = f(scale);
        params[17] = f(bias);
        self.layers_op("sigmoid", input, params, &input.shape, n)
    }

    fn softmax(&self, input: &WgpuTensor) -> Result<WgpuTensor> {
        let [rows, classes] = CHECK.softmax(&input.shape)?;
        let mut params = [0u32; 20];
        params[0] = rows as u32;
        params[18] = classes as u32;
        self.layers_op("softmax", input, params, &input.shape, rows)
    }
}
