//! The `Backend` trait: every numeric op the model needs, on one device.
//!
//! The model's forward pass (`model::forward`) is written once over this trait. A backend owns
//! its tensors (`Backend::Tensor`); they stay on the device between ops and only the final
//! scores are downloaded.
//!
//! Layout conventions shared by every backend:
//! - signals are `[batch, samples]`;
//! - spectra and features are `[batch, frames, bins]` (frame-major, so a filterbank is one GEMM);
//! - the classifier sees features as an image `[batch, channels=1, height=frames, width=bins]`,
//!   i.e. NCHW with time as height and frequency as width;
//! - convolution weights are `[out_channels, in_channels, kernel_h, kernel_w]` (PyTorch's);
//! - linear weights are `[out_features, in_features]` (PyTorch's).

pub mod cpu;
pub mod cuda;
mod layer;
pub mod shapes;
pub mod timing;
pub mod wgpu;

use crate::Result;

pub use layer::Layer;

/// Activation fused into the epilogue of conv, affine and linear ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    None,
    Relu,
    LeakyRelu(f32),
    Sigmoid,
}

impl Activation {
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu(slope) => {
                if x >= 0.0 {
                    x
                } else {
                    x * slope
                }
            }
            Activation::Sigmoid => sigmoid(x),
        }
    }
}

/// Numerically safe logistic function (no overflow for large |x|).
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Short-time Fourier transform parameters. The window tensor passed beside these is already
/// zero-padded (centred) to `n_fft` samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StftParams {
    pub n_fft: usize,
    pub hop: usize,
    /// Reflect-pad `n_fft / 2` samples on both sides first (PyTorch's `center=True`).
    pub center: bool,
    /// 1.0 = magnitude, 2.0 = power.
    pub power: f32,
}

impl StftParams {
    /// Frames produced from a signal of `len` samples; `None` if the signal is too short.
    pub fn frames(&self, len: usize) -> Option<usize> {
        // One full frame is required in both modes; that also keeps reflect padding in range.
        if len < self.n_fft || self.hop == 0 {
            None
        } else if self.center {
            Some(1 + len / self.hop)
        } else {
            Some(1 + (len - self.n_fft) / self.hop)
        }
    }
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }
}

/// How a filterbank output is compressed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogSpec {
    /// `ln(x + eps)`
    Ln { eps: f32 },
    /// `log10(x + eps)`
    Log10 { eps: f32 },
    /// `10 * log10(max(x, eps))` (decibels of a power spectrum)
    Db { eps: f32 },
}

impl LogSpec {
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            LogSpec::Ln { eps } => (x + eps).ln(),
            LogSpec::Log10 { eps } => (x + eps).log10(),
            LogSpec::Db { eps } => 10.0 * x.max(eps).log10(),
        }
    }
}

/// Projection of the STFT bins onto the model's features. Backends take `Projection<&Tensor>`;
/// models hold `Projection<Tensor>` (on the host or on a device).
#[derive(Debug, Clone, PartialEq)]
pub enum Projection<T> {
    /// Keep FFT bins `start..end` unchanged (a linear-frequency spectrogram).
    Bins { start: usize, end: usize },
    /// Multiply by a `[n_bins, n_filters]` matrix (mel, linear-triangular, or custom).
    Matrix(T),
}

impl<T> Projection<T> {
    pub fn as_ref(&self) -> Projection<&T> {
        match self {
            Projection::Bins { start, end } => Projection::Bins {
                start: *start,
                end: *end,
            },
            Projection::Matrix(m) => Projection::Matrix(m),
        }
    }
    pub fn try_map<U, E>(&self, mut f: impl FnMut(&T) -> Result<U, E>) -> Result<Projection<U>, E> {
        Ok(match self {
            Projection::Bins { start, end } => Projection::Bins {
                start: *start,
                end: *end,
            },
            Projection::Matrix(m) => Projection::Matrix(f(m)?),
        })
    }
}

/// Per-window feature normalisation (see [`Projection`] for the `T` convention).
#[derive(Debug, Clone, PartialEq)]
pub enum Normalization<T> {
    /// Subtract each feature's mean over the window's frames (cepstral mean normalisation).
    Mean,
    /// Subtract the mean and divide by `sqrt(var + NORM_EPS)`, per feature, over the frames.
    MeanVar,
    /// `(x - mean[f]) / std[f]` with statistics stored in the model file.
    Global { mean: T, std: T },
}

impl<T> Normalization<T> {
    pub fn as_ref(&self) -> Normalization<&T> {
        match self {
            Normalization::Mean => Normalization::Mean,
            Normalization::MeanVar => Normalization::MeanVar,
            Normalization::Global { mean, std } => Normalization::Global { mean, std },
        }
    }
    pub fn try_map<U, E>(
        &self,
        mut f: impl FnMut(&T) -> Result<U, E>,
    ) -> Result<Normalization<U>, E> {
        Ok(match self {
            Normalization::Mean => Normalization::Mean,
            Normalization::MeanVar => Normalization::MeanVar,
            Normalization::Global { mean, std } => Normalization::Global {
                mean: f(mean)?,
                std: f(std)?,
            },
        })
    }
}

/// Epsilon added to the variance in [`Normalization::MeanVar`].
pub const NORM_EPS: f32 = 1e-5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Conv2dParams {
    pub fn output_hw(&self, h: usize, w: usize, kernel: [usize; 2]) -> Option<[usize; 2]> {
        window_output(h, kernel[0], self.stride[0], self.padding[0])
            .zip(window_output(w, kernel[1], self.stride[1], self.padding[1]))
            .map(|(a, b)| [a, b])
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolParams {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Implicit padding with -inf (PyTorch's `MaxPool2d(padding=...)`).
    pub padding: [usize; 2],
}

impl PoolParams {
    pub fn output_hw(&self, h: usize, w: usize) -> Option<[usize; 2]> {
        window_output(h, self.kernel[0], self.stride[0], self.padding[0])
            .zip(window_output(
                w,
                self.kernel[1],
                self.stride[1],
                self.padding[1],
            ))
            .map(|(a, b)| [a, b])
    }
}

/// Output length of a sliding window (floor mode), `None` when the kernel does not fit.
pub fn window_output(len: usize, kernel: usize, stride: usize, padding: usize) -> Option<usize> {
    let padded = len + 2 * padding;
    (kernel > 0 && stride > 0 && padded >= kernel).then(|| (padded - kernel) / stride + 1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GlobalPool {
    Avg,
    Max,
}

/// Lock a backend's mutex; a panic elsewhere while it was held leaves plain data behind
/// (buffer pools, a pending encoder), which stays usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

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

/// Every op the model's forward pass uses. Shapes are checked by each op; a mismatch is an
/// `Error::Backend`, never a panic.
pub trait Backend: Send + Sync {
    type Tensor: DeviceTensor;

    /// Short name used in reports: "cpu", "wgpu", "cuda".
    fn name(&self) -> &'static str;

    /// A download that has been queued but not waited for (see [`Backend::start_download`]).
    type Readback: Send + 'static;

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
    /// can queue the next batch before collecting this one with [`Backend::finish_download`].
    /// Backends that cannot queue a download do it here at once.
    fn start_download(&self, tensor: &Self::Tensor) -> Result<Self::Readback>;
    /// Wait for a queued download and return its values.
    fn finish_download(&self, readback: Self::Readback) -> Result<Vec<f32>>;
    /// Reinterpret with a new shape of the same element count (no data movement).
    fn reshape(&self, tensor: Self::Tensor, shape: &[usize]) -> Result<Self::Tensor>;

    // ---- front-end ----

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

    // ---- classifier ----

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

/// Probe every backend, in `auto` preference order (cuda, wgpu, cpu). Never panics.
pub fn probe_all() -> Vec<BackendStatus> {
    let (wgpu_ok, wgpu_detail) = wgpu::status();
    let (cuda_ok, cuda_detail) = cuda::status();
    vec![
        BackendStatus {
            backend: "cuda",
            available: cuda_ok,
            detail: cuda_detail,
        },
        BackendStatus {
            backend: "wgpu",
            available: wgpu_ok,
            detail: wgpu_detail,
        },
        BackendStatus {
            backend: "cpu",
            available: true,
            detail: cpu::CpuBackend::describe(),
        },
    ]
}

/// Resolve `auto` (cuda, then wgpu on a hardware GPU, then cpu), or explain why the requested
/// backend cannot run.
pub fn resolve(kind: BackendKind) -> Result<BackendKind> {
    // Probe only what is asked for: starting a GPU API can be slow and chatty.
    let unavailable = |name: &'static str, detail: String| Err(crate::Error::backend(name, detail));
    match kind {
        BackendKind::Cpu => Ok(BackendKind::Cpu),
        BackendKind::Cuda => match cuda::status() {
            (true, _) => Ok(BackendKind::Cuda),
            (false, reason) => unavailable("cuda", reason),
        },
        BackendKind::Wgpu => match wgpu::status() {
            (true, _) => Ok(BackendKind::Wgpu),
            (false, reason) => unavailable("wgpu", reason),
        },
        BackendKind::Auto => Ok(if cuda::status().0 {
            BackendKind::Cuda
        } else if wgpu::preferred_by_auto() {
            BackendKind::Wgpu
        } else {
            BackendKind::Cpu
        }),
    }
}
