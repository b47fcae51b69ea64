//! Launch planning shared by the GPU backends (wgpu and CUDA). After an op's shape check
//! ([`shapes`](super::shapes)), the plan says which kernel runs and with which scalar
//! parameters: how a filterbank, a DCT or a linear layer becomes one GEMM with a fused
//! epilogue, when the STFT takes the radix-2 kernel, the epilogue codes the kernels switch on,
//! and the tile grid of the 16×16-tiled kernels. Computed once here, so the backends cannot
//! drift apart; each backend only maps a plan onto its API (WGSL uniform words, CUDA kernel
//! arguments) and checks its own launch limits.

use super::shapes::{self, Shapes};
use super::{
    Activation, Conv1dParams, Conv2dParams, DeviceTensor, LogSpec, Normalization, PoolParams,
    Projection, RangeFloor, StftParams,
};
use crate::Result;

/// Side of the square output tile of the GEMM and convolution kernels (`matmul`, `conv2d`).
pub const TILE: usize = 16;

/// Activation code of a kernel epilogue (`activate` in the kernels): 0 none, 1 relu,
/// 2 leaky relu (with its slope), 3 sigmoid, 4 GELU (erf).
pub fn act_code(a: Activation) -> (u32, f32) {
    match a {
        Activation::None => (0, 0.0),
        Activation::Relu => (1, 0.0),
        Activation::LeakyRelu(s) => (2, s),
        Activation::Sigmoid => (3, 0.0),
        Activation::Gelu => (4, 0.0),
    }
}

/// Log-compression code of a kernel epilogue (`compress` in the kernels): 0 none,
/// 1 `ln(x + eps)`, 2 `log10(x + eps)`, 3 `10·log10(max(x, eps))`, 4 `log10(max(x, eps))`.
pub fn log_code(l: Option<LogSpec>) -> (u32, f32) {
    match l {
        None => (0, 0.0),
        Some(LogSpec::Ln { eps }) => (1, eps),
        Some(LogSpec::Log10 { eps }) => (2, eps),
        Some(LogSpec::Db { eps }) => (3, eps),
        Some(LogSpec::Log10Clamp { eps }) => (4, eps),
    }
}

/// One `matmul` launch: `out[m, n] = compress(activate(a[m, k] · b + bias)) + residual`, with
/// `b` laid out as `[k, n]` or (`b_trans`) `[n, k]`, and the residual (`[m, n]` values) only
/// where `has_residual`.
#[derive(Debug, Clone, PartialEq)]
pub struct Gemm {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub b_trans: bool,
    pub has_bias: bool,
    pub has_residual: bool,
    pub act: u32,
    pub slope: f32,
    pub log_kind: u32,
    pub eps: f32,
    /// The inputs are a layer's activations and weights, well inside f16's range, so the
    /// tiles may be staged in f16 (linear layers; not the front-end's spectra).
    pub f16_safe: bool,
    /// The op's output shape (`m × n` elements).
    pub out_shape: Vec<usize>,
}

impl Gemm {
    /// Output tiles as (columns, rows): the launch grid's x and y.
    pub fn tiles(&self) -> (usize, usize) {
        (self.n.div_ceil(TILE), self.m.div_ceil(TILE))
    }
    pub fn is_empty(&self) -> bool {
        self.m == 0 || self.n == 0
    }
}

/// One STFT launch: the radix-2 kernel (one workgroup per frame, the frame in shared memory)
/// or the direct DFT (one thread per output bin).
#[derive(Debug, Clone, PartialEq)]
pub struct Stft {
    pub batch: usize,
    pub len: usize,
    pub frames: usize,
    pub n_fft: usize,
    pub hop: usize,
    /// Reflect padding on each side (`n_fft / 2` when centred, else 0).
    pub pad: usize,
    pub bins: usize,
    pub half: usize,
    pub log2_half: u32,
    pub power: f32,
    pub radix2: bool,
}

impl Stft {
    /// Frames over the whole batch.
    pub fn rows(&self) -> usize {
        self.batch * self.frames
    }
    pub fn out_shape(&self) -> [usize; 3] {
        [self.batch, self.frames, self.bins]
    }
}

/// The DFT twiddles e^{-2πim/n_fft}, m in 0..n_fft, as interleaved (re, im) f32 pairs rounded
/// from f64, for GPU kernels whose sin/cos may be approximations.
pub fn twiddles(n_fft: usize) -> Vec<f32> {
    (0..n_fft)
        .flat_map(|m| {
            let angle = -std::f64::consts::TAU * m as f64 / n_fft as f64;
            [angle.cos() as f32, angle.sin() as f32]
        })
        .collect()
}

/// Plan `stft_power`; the radix-2 kernel takes power-of-two `n_fft` from 4 to `radix2_max`
/// (the backend's shared-memory bound).
pub fn stft(
    check: Shapes,
    signal: &[usize],
    window_len: usize,
    p: &StftParams,
    radix2_max: usize,
) -> Result<Stft> {
    let s = check.stft(signal, window_len, p)?;
    let half = p.n_fft / 2;
    Ok(Stft {
        batch: s.batch,
        len: s.len,
        frames: s.frames,
        n_fft: p.n_fft,
        hop: p.hop,
        pad: if p.center { half } else { 0 },
        bins: s.bins,
        half,
        log2_half: half.trailing_zeros(),
        power: p.power,
        radix2: p.n_fft.is_power_of_two() && p.n_fft >= 4 && p.n_fft <= radix2_max,
    })
}

/// `filterbank_log`: a bin range is a gather + log (`select_bins_log`), a matrix a GEMM with
/// the log in its epilogue.
pub enum Filterbank<'t, T> {
    SelectBins(SelectBins),
    Matrix { gemm: Gemm, matrix: &'t T },
}

/// One `select_bins_log` launch: `out[row, f] = compress(x[row, start + f])`, one thread per
/// output value.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectBins {
    /// Frames over the whole batch.
    pub rows: usize,
    /// Bins per input frame.
    pub width_in: usize,
    pub start: usize,
    pub width_out: usize,
    pub log_kind: u32,
    pub eps: f32,
    pub out_shape: [usize; 3],
}

impl SelectBins {
    pub fn threads(&self) -> usize {
        self.rows * self.width_out
    }
}

pub fn filterbank<'t, T: DeviceTensor>(
    check: Shapes,
    power: &[usize],
    projection: Projection<&'t T>,
    log: LogSpec,
) -> Result<Filterbank<'t, T>> {
    Ok(match projection {
        Projection::Bins { start, end } => {
            let [batch, frames, bins] = check.bin_range(power, start, end)?;
            let (log_kind, eps) = log_code(Some(log));
            Filterbank::SelectBins(SelectBins {
                rows: batch * frames,
                width_in: bins,
                start,
                width_out: end - start,
                log_kind,
                eps,
                out_shape: [batch, frames, end - start],
            })
        }
        Projection::Matrix(matrix) => {
            let [batch, frames, bins, filters] =
                check.project("filterbank_log", power, matrix.shape())?;
            Filterbank::Matrix {
                gemm: gemm(
                    (batch * frames, bins, filters),
                    false,
                    false,
                    Activation::None,
                    Some(log),
                    vec![batch, frames, filters],
                ),
                matrix,
            }
        }
    })
}

/// `dct`: features `[B, T, F]` times the basis `[F, C]`.
pub fn dct(check: Shapes, features: &[usize], basis: &[usize]) -> Result<Gemm> {
    let [batch, frames, filters, coeffs] = check.project("dct", features, basis)?;
    Ok(gemm(
        (batch * frames, filters, coeffs),
        false,
        false,
        Activation::None,
        None,
        vec![batch, frames, coeffs],
    ))
}

/// `linear`: input `[B, in]` times the transposed weight `[out, in]`, bias and activation fused.
pub fn linear(
    check: Shapes,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    activation: Activation,
) -> Result<Gemm> {
    let [batch, inputs, outputs] = check.linear(input, weight, bias)?;
    Ok(Gemm {
        f16_safe: true,
        ..gemm(
            (batch, inputs, outputs),
            true,
            bias.is_some(),
            activation,
            None,
            vec![batch, outputs],
        )
    })
}

/// `linear_residual`: `linear`'s GEMM, the residual added in its epilogue, the output in the
/// residual's shape.
pub fn linear_residual(
    check: Shapes,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    residual: &[usize],
) -> Result<Gemm> {
    check.linear_residual(input, weight, bias, residual)?;
    Ok(Gemm {
        has_residual: true,
        out_shape: residual.to_vec(),
        ..linear(check, input, weight, bias, Activation::None)?
    })
}

fn gemm(
    (m, k, n): (usize, usize, usize),
    b_trans: bool,
    has_bias: bool,
    activation: Activation,
    log: Option<LogSpec>,
    out_shape: Vec<usize>,
) -> Gemm {
    let (act, slope) = act_code(activation);
    let (log_kind, eps) = log_code(log);
    Gemm {
        m,
        k,
        n,
        b_trans,
        has_bias,
        has_residual: false,
        act,
        slope,
        log_kind,
        eps,
        f16_safe: false,
        out_shape,
    }
}

/// `normalize`: global statistics are elementwise; per-window statistics take one thread per
/// (window, feature).
pub enum Normalize<'t, T> {
    Global {
        /// Elements over the whole batch.
        n: usize,
        width: usize,
        mean: &'t T,
        std: &'t T,
    },
    Window {
        batch: usize,
        frames: usize,
        feats: usize,
        /// Divide by the standard deviation too (else subtract the mean only).
        mean_var: bool,
    },
    /// One workgroup per window: its maximum, then the clamp and affine map.
    Range {
        batch: usize,
        /// Values per window (frames × features).
        per_window: usize,
        range: RangeFloor,
    },
}

impl<T> Normalize<'_, T> {
    /// Threads the launch needs (0: nothing to do).
    pub fn threads(&self) -> usize {
        match *self {
            Normalize::Global { n, .. } => n,
            // Nothing to do when the features are empty (no frames, say).
            Normalize::Window {
                batch,
                frames,
                feats,
                ..
            } => {
                if frames == 0 {
                    0
                } else {
                    batch * feats
                }
            }
            Normalize::Range {
                batch, per_window, ..
            } => {
                if per_window == 0 {
                    0
                } else {
                    batch
                }
            }
        }
    }
}

pub fn normalize<'t, T: DeviceTensor>(
    check: Shapes,
    features: &[usize],
    mode: Normalization<&'t T>,
) -> Result<Normalize<'t, T>> {
    let stats = match mode {
        Normalization::Global { mean, std } => Some((mean.len(), std.len())),
        _ => None,
    };
    let [batch, frames, feats] = check.normalize(features, stats)?;
    Ok(match mode {
        Normalization::Global { mean, std } => Normalize::Global {
            n: batch * frames * feats,
            width: feats,
            mean,
            std,
        },
        Normalization::Mean | Normalization::MeanVar => Normalize::Window {
            batch,
            frames,
            feats,
            mean_var: matches!(mode, Normalization::MeanVar),
        },
        Normalization::Range(range) => Normalize::Range {
            batch,
            per_window: frames * feats,
            range,
        },
    })
}

/// One implicit-GEMM convolution launch (`conv2d`, `conv1d`): 16×16 output tiles (output
/// positions × output channels), one grid layer per window, bias and activation fused.
#[derive(Debug, Clone, PartialEq)]
pub struct TiledConv {
    /// The kernel's integer parameters, in its order (see `conv2d` and `conv1d`).
    pub dims: Vec<u32>,
    pub has_bias: bool,
    pub act: u32,
    pub slope: f32,
    /// The launch grid: tiles along x and y, and windows.
    pub tiles: [usize; 3],
    pub out_shape: Vec<usize>,
}

impl TiledConv {
    pub fn is_empty(&self) -> bool {
        self.out_shape.iter().product::<usize>() == 0
    }

    fn new(
        dims: Vec<usize>,
        bias: bool,
        activation: Activation,
        tiles: [usize; 3],
        out_shape: Vec<usize>,
    ) -> Self {
        let (act, slope) = act_code(activation);
        TiledConv {
            dims: dims.into_iter().map(|v| v as u32).collect(),
            has_bias: bias,
            act,
            slope,
            tiles,
            out_shape,
        }
    }
}

/// `conv2d` (NCHW): integer parameters C, H, W, O, KH, KW, SH, SW, PH, PW, HO, WO; tiles over
/// output pixels (x) and channels (y).
pub fn conv2d(
    check: Shapes,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    p: &Conv2dParams,
    activation: Activation,
) -> Result<TiledConv> {
    let c = check.conv2d(input, weight, bias, p)?;
    let dims = vec![
        c.channels,
        c.h,
        c.w,
        c.out_channels,
        c.kh,
        c.kw,
        p.stride[0],
        p.stride[1],
        p.padding[0],
        p.padding[1],
        c.ho,
        c.wo,
    ];
    let tiles = [
        (c.ho * c.wo).div_ceil(TILE),
        c.out_channels.div_ceil(TILE),
        c.batch,
    ];
    let out = vec![c.batch, c.out_channels, c.ho, c.wo];
    Ok(TiledConv::new(dims, bias.is_some(), activation, tiles, out))
}

/// One `max_pool2d` launch: one thread per output element.
#[derive(Debug, Clone, PartialEq)]
pub struct MaxPool2d {
    pub shape: shapes::Pool,
    /// The kernel's integer parameters in its order: H, W, HO, WO, KH, KW, SH, SW, PH, PW.
    pub dims: [u32; 10],
}

impl MaxPool2d {
    pub fn out_shape(&self) -> [usize; 4] {
        let c = &self.shape;
        [c.batch, c.channels, c.ho, c.wo]
    }
    pub fn outputs(&self) -> usize {
        self.out_shape().iter().product()
    }
}

pub fn max_pool2d(check: Shapes, input: &[usize], p: &PoolParams) -> Result<MaxPool2d> {
    let c = check.max_pool2d(input, p)?;
    let dims = [
        c.h,
        c.w,
        c.ho,
        c.wo,
        p.kernel[0],
        p.kernel[1],
        p.stride[0],
        p.stride[1],
        p.padding[0],
        p.padding[1],
    ]
    .map(|v| v as u32);
    Ok(MaxPool2d { shape: c, dims })
}

/// `conv1d` (channels last): integer parameters len, channels, out channels, kernel, stride,
/// padding, out len; tiles over output channels (x) and steps (y).
pub fn conv1d(
    check: Shapes,
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    p: &Conv1dParams,
    activation: Activation,
) -> Result<TiledConv> {
    let c = check.conv1d(input, weight, bias, p)?;
    let dims = vec![
        c.len,
        c.channels,
        c.out_channels,
        c.kernel,
        p.stride,
        p.padding,
        c.out_len,
    ];
    let tiles = [
        c.out_channels.div_ceil(TILE),
        c.out_len.div_ceil(TILE),
        c.batch,
    ];
    let out = vec![c.batch, c.out_len, c.out_channels];
    Ok(TiledConv::new(dims, bias.is_some(), activation, tiles, out))
}

/// Widest attention head the GPU kernels take (64 threads, two output values each).
pub const MAX_HEAD_DIM: usize = 128;

/// Plan `attention` (one 64-wide workgroup per window, head and query); heads wider than
/// [`MAX_HEAD_DIM`] are refused.
pub fn attention(check: Shapes, qkv: &[usize], heads: usize) -> Result<shapes::Attention> {
    let a = check.attention(qkv, heads)?;
    if a.head_dim > MAX_HEAD_DIM {
        return Err(crate::Error::backend(
            check.0,
            format!(
                "attention: heads of {} values; this backend takes at most {MAX_HEAD_DIM}",
                a.head_dim
            ),
        ));
    }
    Ok(a)
}
