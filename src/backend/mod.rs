//! The `Backend` trait: every numeric op the model needs, on one device, grouped by op family
//! ([`Device`] for tensors and transfers, [`FrontendOps`], [`ClassifierOps`]).
//!
//! The model's forward pass (`model::forward`) is written once over [`Backend`]. A backend owns
//! its tensors (`Device::Tensor`); they stay on the device between ops and only the final
//! scores are downloaded.
//!
//! Each backend is a folder (`cpu/`, `wgpu/`, `cuda/`) with one file for the device (probe,
//! context, buffers, upload/download) and one per op family. Shape rules live once in
//! [`shapes`]; the GPU backends share their launch planning in [`launch`].
//!
//! Layout conventions shared by every backend:
//! - signals are `[batch, samples]`;
//! - spectra and features are `[batch, frames, bins]` (frame-major, so a filterbank is one GEMM);
//! - the classifier sees features as an image `[batch, channels=1, height=frames, width=bins]`,
//!   i.e. NCHW with time as height and frequency as width;
//! - convolution weights are `[out_channels, in_channels, kernel_h, kernel_w]` (PyTorch's);
//! - linear weights are `[out_features, in_features]` (PyTorch's).

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod gpu;
pub mod launch;
mod params;
pub mod shapes;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use crate::Result;

pub use params::{
    Activation, Conv1dParams, Conv2dParams, ConvTranspose2dParams, GlobalPool, LogSpec, NORM_EPS,
    Normalization, PoolParams, Projection, RangeFloor, StftParams, gelu, sigmoid, window_output,
};

/// A tensor that knows its shape (row-major, last dimension fastest).
pub trait DeviceTensor: Send + Sync {
    fn shape(&self) -> &[usize];
    fn len(&self) -> usize {
        self.shape().iter().product()
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One device: its tensors, and moving data on and off it. Every op family below builds on
/// it; each backend implements it in its `device.rs`.
pub trait Device: Send + Sync {
    type Tensor: DeviceTensor;

    /// A download that has been queued but not waited for (see [`Device::start_download`]).
    type Readback: Send + 'static;

    /// Short name used in reports: "cpu", "wgpu", "cuda".
    fn name(&self) -> &'static str;

    /// Whether tensors live in the host's memory (the CPU backend), so a batch's activations
    /// count against the memory a run may use.
    fn tensors_on_host(&self) -> bool {
        false
    }

    /// Most elements one tensor may hold on this backend (a GPU's storage-binding limit);
    /// `Model` splits a batch whose largest tensor would exceed it.
    fn max_tensor_elements(&self) -> usize {
        usize::MAX
    }

    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor>;
    /// Upload data that stays for the backend's lifetime (weights, constants), where a backend
    /// may skip what it does to make per-batch uploads fast (CUDA: page-locked staging).
    fn upload_constant(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor> {
        self.upload(data, shape)
    }
    fn download(&self, tensor: &Self::Tensor) -> Result<Vec<f32>> {
        let pending = self.start_download(tensor)?;
        self.finish_download(pending)
    }
    /// Queue a download without waiting for the work that produces `tensor`, so the caller
    /// can queue the next batch before collecting this one with [`Device::finish_download`].
    /// Backends that cannot queue a download do it here at once.
    fn start_download(&self, tensor: &Self::Tensor) -> Result<Self::Readback>;
    /// Wait for a queued download and return its values.
    fn finish_download(&self, readback: Self::Readback) -> Result<Vec<f32>>;
    /// Reinterpret with a new shape of the same element count (no data movement).
    fn reshape(&self, tensor: Self::Tensor, shape: &[usize]) -> Result<Self::Tensor>;
}

/// The front-end: waveform to normalised features. Each backend implements it in its
/// `frontend.rs` (kernels in `shaders/stft.wgsl`, `shaders/frontend*.wgsl`,
/// `kernels/frontend.cu`).
pub trait FrontendOps: Device {
    /// Framing + window + real FFT + |X|^power: `[B, L]` → `[B, frames, n_fft/2 + 1]`.
    fn stft_power(
        &self,
        signal: &Self::Tensor,
        window: &Self::Tensor,
        params: &StftParams,
    ) -> Result<Self::Tensor>;

    /// Filterbank projection + log: `[B, T, bins]` → `[B, T, filters]`.
    fn filterbank_log(
        &self,
        power: &Self::Tensor,
        projection: Projection<&Self::Tensor>,
        log: LogSpec,
    ) -> Result<Self::Tensor>;

    /// Type-II DCT along the last axis by a `[filters, coeffs]` basis: `[B, T, F]` → `[B, T, C]`.
    fn dct(&self, features: &Self::Tensor, basis: &Self::Tensor) -> Result<Self::Tensor>;

    /// Normalise `[B, T, F]` features per window.
    fn normalize(
        &self,
        features: &Self::Tensor,
        mode: Normalization<&Self::Tensor>,
    ) -> Result<Self::Tensor>;
}

/// The classifier: convolution blocks, pooling, linear layers and the output head. Each
/// backend implements it in its `classifier.rs` (kernels in `shaders/{conv,affine,layers}.wgsl`,
/// `kernels/classifier.cu`).
pub trait ClassifierOps: Device {
    /// 2-D convolution (NCHW) with bias (batch-norm already folded in) and activation fused.
    fn conv2d(
        &self,
        input: &Self::Tensor,
        weight: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        params: &Conv2dParams,
        activation: Activation,
    ) -> Result<Self::Tensor>;

    /// Per-channel `x * scale[c] + shift[c]` then activation, on `[B, C, ...]`
    /// (an inference-mode batch norm that could not be folded into a convolution).
    fn channel_affine(
        &self,
        input: &Self::Tensor,
        scale: &Self::Tensor,
        shift: &Self::Tensor,
        activation: Activation,
    ) -> Result<Self::Tensor>;

    fn max_pool2d(&self, input: &Self::Tensor, params: &PoolParams) -> Result<Self::Tensor>;

    /// Max-feature-map (LCNN): `[B, C, ...]` → `[B, C/2, ...]`, `max(x[:, :C/2], x[:, C/2:])`.
    fn mfm(&self, input: &Self::Tensor) -> Result<Self::Tensor>;

    /// `[B, C, H, W]` → `[B, C]`.
    fn global_pool(&self, input: &Self::Tensor, mode: GlobalPool) -> Result<Self::Tensor>;

    /// `[B, in]` × `[out, in]`ᵀ + bias, activation fused: → `[B, out]`.
    fn linear(
        &self,
        input: &Self::Tensor,
        weight: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        activation: Activation,
    ) -> Result<Self::Tensor>;

    /// Elementwise `sigmoid(scale * x + bias)` (calibrated probability from a logit).
    fn sigmoid(&self, input: &Self::Tensor, scale: f32, bias: f32) -> Result<Self::Tensor>;

    /// Softmax over the last axis of `[B, N]`.
    fn softmax(&self, input: &Self::Tensor) -> Result<Self::Tensor>;
}

/// A transformer encoder used as a pretrained front-end (Whisper's): sequences are
/// `[batch, time, channels]` (time-major, so a projection is one GEMM over batch × time),
/// weights in PyTorch's layouts; projections use [`ClassifierOps::linear`] on `[B·T, C]`.
/// Each backend implements it in its `encoder.rs` (kernels in `shaders/encoder.wgsl`,
/// `kernels/encoder.cu`).
pub trait EncoderOps: Device {
    /// 1-D convolution over time, channels last: `[B, T, C]` with weight `[O, C, K]` and bias
    /// `[O]` → `[B, T', O]`, zero padding, bias and activation fused.
    fn conv1d(
        &self,
        input: &Self::Tensor,
        weight: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        params: &Conv1dParams,
        activation: Activation,
    ) -> Result<Self::Tensor>;

    /// Layer normalisation over the last axis: `(x - mean) / sqrt(var + eps) * gamma + beta`.
    fn layer_norm(
        &self,
        input: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f32,
    ) -> Result<Self::Tensor>;

    /// Multi-head self-attention on a fused projection `[B, T, 3·D]` (queries, keys and values
    /// side by side, each `heads` blocks of `D / heads`): per head
    /// `softmax(q · kᵀ / √(D / heads)) · v`, heads concatenated → `[B, T, D]`. No mask.
    fn attention(&self, qkv: &Self::Tensor, heads: usize) -> Result<Self::Tensor>;

    /// `a + b` elementwise, `b`'s shape a suffix of `a`'s (broadcast over the leading axes:
    /// a residual when equal, positions `[T, D]` added to `[B, T, D]`).
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// A projection and the residual add after it, as a pre-LayerNorm block ends each half:
    /// `residual + input · weightᵀ + bias`, with `input` `[R, in]`, `weight` `[out, in]` and
    /// `residual` `R × out` values in any shape ending in `out` (the residual stream
    /// `[B, T, d]`), which the output keeps. As [`ClassifierOps::linear`] then
    /// [`add`](Self::add) would give it; the backends add the residual in the GEMM's epilogue,
    /// while the output tile is in registers or cache, instead of in a pass of its own.
    fn linear_residual(
        &self,
        input: &Self::Tensor,
        weight: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        residual: &Self::Tensor,
    ) -> Result<Self::Tensor>;
}

/// Everything the model's forward pass needs: a device with every op family. Implemented
/// for any type that has them all; a new op family is a new trait added here.
/// The source separator's ops (Spleeter's U-Net, issue 35) beyond the classifier's: transposed
/// convolutions up and skip connections concatenated. Each backend implements it in its
/// `separator.rs` (kernels in `shaders/separator.wgsl`, `kernels/separator.cu`).
pub trait SeparatorOps: Device {
    /// 2-D transposed convolution (NCHW): `[B, C, H, W]` with weight `[C, O, KH, KW]`
    /// (PyTorch's `ConvTranspose2d` layout) and bias `[O]` → `[B, O, HO, WO]`, the full output
    /// `(H − 1) · stride + KH` cropped as `params` says; bias and activation fused.
    fn conv_transpose2d(
        &self,
        input: &Self::Tensor,
        weight: &Self::Tensor,
        bias: Option<&Self::Tensor>,
        params: &ConvTranspose2dParams,
        activation: Activation,
    ) -> Result<Self::Tensor>;

    /// `[B, C1, ...]` and `[B, C2, ...]` (the same batch and trailing axes) → `[B, C1 + C2, ...]`,
    /// `a`'s channels first (PyTorch's `cat(dim=1)`).
    fn concat_channels(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// `a · b` elementwise (the same shape): a mask applied to what it masks.
    fn mul(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// Framing + window + real FFT, complex: `[B, L]` → `[B, frames, bins, 2]` (real, imaginary;
    /// `params.power` is not used, `params.keep_bins` is).
    fn stft_complex(
        &self,
        signal: &Self::Tensor,
        window: &Self::Tensor,
        params: &StftParams,
    ) -> Result<Self::Tensor>;

    /// A two-stem ratio mask applied to a complex spectrum: `spec [.., 2]` times
    /// `(t² + eps/2) / (t² + o² + eps)` from the stems' magnitude estimates `target` and `other`
    /// (the shape of `spec` without its last axis).
    fn apply_ratio_mask(
        &self,
        spec: &Self::Tensor,
        target: &Self::Tensor,
        other: &Self::Tensor,
        eps: f32,
    ) -> Result<Self::Tensor>;

    /// Inverse STFT without normalisation: `[B, T, bins, 2]` (bins from 0; the rest up to
    /// `n_fft / 2` taken as zero) → `[B, (T − 1) · hop + n_fft]`, each frame's inverse real FFT
    /// times `window` added in at `t · hop`. Dividing by the window's overlapped square (and
    /// joining batch rows that continue each other) is the caller's.
    fn istft_overlap_add(
        &self,
        spec: &Self::Tensor,
        window: &Self::Tensor,
        n_fft: usize,
        hop: usize,
    ) -> Result<Self::Tensor>;
}

pub trait Backend: FrontendOps + ClassifierOps + EncoderOps + SeparatorOps {}

impl<B: FrontendOps + ClassifierOps + EncoderOps + SeparatorOps> Backend for B {}

/// Lock a backend's mutex; a panic elsewhere while it was held leaves plain data behind
/// (buffer pools, a pending encoder), which stays usable.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Which implementation of [`Backend`] to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// First available of cuda, wgpu (hardware GPUs only), cpu.
    Auto,
    Cpu,
    Wgpu,
    Cuda,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Cuda => "cuda",
        }
    }
}

/// What `deepscreen devices` prints for one backend.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackendStatus {
    pub backend: &'static str,
    pub available: bool,
    /// Device description when available, the reason when not.
    pub detail: String,
}

/// Whether the backend `kind` can start here: its device description, or why not.
/// Probes only what is asked for (starting a GPU API can be slow and chatty); never panics.
pub fn status(kind: BackendKind) -> (bool, String) {
    match kind {
        BackendKind::Cpu | BackendKind::Auto => match cpu::CpuBackend::describe() {
            Ok(detail) => (true, detail),
            Err(reason) => (false, reason),
        },
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => wgpu::status(),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => cuda::status(),
        #[allow(unreachable_patterns)]
        other => (
            false,
            format!(
                "this deepscreen was built without the {0} backend (cargo feature `{0}`)",
                other.name()
            ),
        ),
    }
}

/// Whether `--backend auto` should use wgpu: only on a hardware GPU (a software adapter is
/// slower than the CPU backend; it stays available with `--backend wgpu`).
pub fn wgpu_preferred_by_auto() -> bool {
    #[cfg(feature = "wgpu")]
    return wgpu::preferred_by_auto();
    #[cfg(not(feature = "wgpu"))]
    false
}

/// Probe every backend, in `auto` preference order (cuda, wgpu, cpu). Never panics.
pub fn probe_all() -> Vec<BackendStatus> {
    [BackendKind::Cuda, BackendKind::Wgpu, BackendKind::Cpu]
        .into_iter()
        .map(|kind| {
            let (available, detail) = status(kind);
            BackendStatus {
                backend: kind.name(),
                available,
                detail,
            }
        })
        .collect()
}

/// `deepscreen devices`: every backend's status as a table, or as JSON.
pub fn write_status(out: &mut dyn std::io::Write, json: bool) -> std::io::Result<()> {
    let statuses = probe_all();
    if json {
        serde_json::to_writer_pretty(&mut *out, &statuses)?;
        return writeln!(out);
    }
    for s in statuses {
        let state = if s.available {
            "available"
        } else {
            "unavailable"
        };
        writeln!(out, "{:<5} {:<11} {}", s.backend, state, s.detail)?;
    }
    Ok(())
}

/// Resolve `auto` (cuda, then wgpu on a hardware GPU, then cpu), or explain why the requested
/// backend cannot run.
pub fn resolve(kind: BackendKind) -> Result<BackendKind> {
    if kind == BackendKind::Auto {
        return Ok(if status(BackendKind::Cuda).0 {
            BackendKind::Cuda
        } else if wgpu_preferred_by_auto() {
            BackendKind::Wgpu
        } else {
            BackendKind::Cpu
        });
    }
    match status(kind) {
        (true, _) => Ok(kind),
        (false, reason) => Err(crate::Error::backend(kind.name(), reason)),
    }
}

/// Work to do on a backend, whichever [`open`] starts: a closure generic over the backend.
pub trait WithBackend {
    type Output;
    fn run<B: Backend + 'static>(self, backend: B) -> Result<Self::Output>;
}

/// Start the backend `kind` (resolving `auto`) and run `task` on it; errors say why the
/// backend cannot run.
pub fn open<T: WithBackend>(kind: BackendKind, task: T) -> Result<T::Output> {
    match resolve(kind)? {
        BackendKind::Cpu | BackendKind::Auto => task.run(cpu::CpuBackend::from_env()?),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => task.run(wgpu::WgpuBackend::new()?),
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => task.run(cuda::CudaBackend::new()?),
        // `resolve` refuses a backend left out of the build.
        #[allow(unreachable_patterns)]
        other => Err(crate::Error::backend(other.name(), status(other).1)),
    }
}
