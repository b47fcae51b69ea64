//! Parameters of the backend ops: activations, STFT and convolution settings, log
//! compression, feature projections and normalisations.

use crate::Result;

/// Activation fused into the epilogue of conv, affine and linear ops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    None,
    Relu,
    LeakyRelu(f32),
    Sigmoid,
    /// `x · Φ(x)` with the exact (erf) normal CDF, as PyTorch's `nn.GELU()` and Whisper use.
    Gelu,
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
            Activation::Gelu => gelu(x),
        }
    }
}

/// GELU with the exact normal CDF: `0.5 · x · (1 + erf(x / √2))`.
#[inline]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + libm::erff(x * std::f32::consts::FRAC_1_SQRT_2))
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
    /// Leave out the last frame (Whisper's log-mel: `len / hop` frames when centred).
    pub drop_last: bool,
    /// Only the lowest this many bins (Spleeter's U-Nets read 1024 of 2049); `None`: all.
    pub keep_bins: Option<usize>,
}

impl StftParams {
    /// Frames produced from a signal of `len` samples; `None` if the signal is too short.
    pub fn frames(&self, len: usize) -> Option<usize> {
        // One full frame is required in both modes; that also keeps reflect padding in range.
        let all = if len < self.n_fft || self.hop == 0 {
            return None;
        } else if self.center {
            1 + len / self.hop
        } else {
            1 + (len - self.n_fft) / self.hop
        };
        let kept = all - self.drop_last as usize;
        (kept > 0).then_some(kept)
    }
    /// Bins per frame in the output: `keep_bins`, or all `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.keep_bins.unwrap_or(self.n_fft / 2 + 1)
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
    /// `log10(max(x, eps))` (Whisper's log-mel)
    Log10Clamp { eps: f32 },
}

impl LogSpec {
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            LogSpec::Ln { eps } => (x + eps).ln(),
            LogSpec::Log10 { eps } => (x + eps).log10(),
            LogSpec::Db { eps } => 10.0 * x.max(eps).log10(),
            LogSpec::Log10Clamp { eps } => x.max(eps).log10(),
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
    /// A dynamic-range floor at the window's largest value, then an affine map (Whisper's
    /// step, or a plain floor before another normalisation).
    Range(RangeFloor),
}

/// `(max(x, m - below_max) + shift) * scale`, with `m` the largest value of the whole window
/// (every frame and feature). A floor relative to the window, not an absolute one, makes the
/// features of a quiet or band-limited recording independent of where its empty bins land
/// (digital zero, dither or codec noise), and lets backends agree on them exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RangeFloor {
    pub below_max: f32,
    pub shift: f32,
    pub scale: f32,
}

impl RangeFloor {
    /// Whisper's log-mel step: `(max(x, m - 8) + 4) / 4`.
    pub const WHISPER: RangeFloor = RangeFloor {
        below_max: 8.0,
        shift: 4.0,
        scale: 0.25,
    };

    /// The floor alone: `max(x, m - below_max)`.
    pub fn floor(below_max: f32) -> RangeFloor {
        RangeFloor {
            below_max,
            shift: 0.0,
            scale: 1.0,
        }
    }

    /// On one window, in place (the CPU backend's, and the reference for the GPU kernels).
    pub fn apply(self, window: &mut [f32]) {
        let max = window.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let floor = max - self.below_max;
        for v in window.iter_mut() {
            *v = (v.max(floor) + self.shift) * self.scale;
        }
    }
}

impl<T> Normalization<T> {
    pub fn as_ref(&self) -> Normalization<&T> {
        match self {
            Normalization::Mean => Normalization::Mean,
            Normalization::MeanVar => Normalization::MeanVar,
            Normalization::Global { mean, std } => Normalization::Global { mean, std },
            Normalization::Range(r) => Normalization::Range(*r),
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
            Normalization::Range(r) => Normalization::Range(*r),
        })
    }
}

/// Epsilon added to the variance in [`Normalization::MeanVar`].
pub const NORM_EPS: f32 = 1e-5;

/// Stride and zero padding of a 1-D convolution over time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv1dParams {
    pub stride: usize,
    pub padding: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dParams {
    pub stride: [usize; 2],
    /// Zero rows and columns before the input (top, left).
    pub padding: [usize; 2],
    /// Zero rows and columns after it (bottom, right): PyTorch's `padding=p` is `p` on both
    /// sides; Spleeter pads 1 before and 2 after.
    pub padding_end: [usize; 2],
}

impl Conv2dParams {
    /// The same padding on both sides (PyTorch's `Conv2d(padding=...)`).
    pub fn symmetric(stride: [usize; 2], padding: [usize; 2]) -> Self {
        Conv2dParams {
            stride,
            padding,
            padding_end: padding,
        }
    }

    pub fn output_hw(&self, h: usize, w: usize, kernel: [usize; 2]) -> Option<[usize; 2]> {
        let out = |axis: usize, len: usize| {
            let padded = len + self.padding[axis] + self.padding_end[axis];
            let (k, s) = (kernel[axis], self.stride[axis]);
            (k > 0 && s > 0 && padded >= k).then(|| (padded - k) / s + 1)
        };
        out(0, h).zip(out(1, w)).map(|(a, b)| [a, b])
    }
}

/// A 2-D transposed convolution: its stride, and the rows and columns cropped from its full
/// output `(in − 1) · stride + kernel` at the start (`crop`) and at the end (`crop_end`).
/// PyTorch's `ConvTranspose2d(padding=p)` crops `p` from both sides; Spleeter crops 1 and 2,
/// so that a 5×5 kernel of stride 2 doubles the size exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvTranspose2dParams {
    pub stride: [usize; 2],
    pub crop: [usize; 2],
    pub crop_end: [usize; 2],
}

impl ConvTranspose2dParams {
    /// None when the input is empty or the crops leave nothing.
    pub fn output_hw(&self, h: usize, w: usize, kernel: [usize; 2]) -> Option<[usize; 2]> {
        let out = |axis: usize, len: usize| {
            let s = self.stride[axis];
            let full = (len.checked_sub(1)? * s).checked_add(kernel[axis])?;
            let kept = full.checked_sub(self.crop[axis] + self.crop_end[axis])?;
            (s > 0 && kernel[axis] > 0 && kept > 0).then_some(kept)
        };
        out(0, h).zip(out(1, w)).map(|(a, b)| [a, b])
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
