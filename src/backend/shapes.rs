//! Shape rules of every [`Backend`](super::Backend) op, checked in one place: each function
//! takes the operand shapes, returns the dimensions the op needs (output shape included), or an
//! `Error::Backend` naming the backend, the op and the mismatch. Backends call these first, so
//! they agree on what is valid and no kernel sees inconsistent shapes.

use super::{Conv1dParams, Conv2dParams, ConvTranspose2dParams, PoolParams, StftParams};
use crate::{Error, Result};

/// Checks for one backend: carries the backend name into error messages.
#[derive(Clone, Copy)]
pub struct Shapes(pub &'static str);

#[derive(Debug, Clone, PartialEq)]
pub struct Stft {
    pub batch: usize,
    pub len: usize,
    pub frames: usize,
    pub bins: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    pub batch: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub out_channels: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub batch: usize,
    pub channels: usize,
    pub h: usize,
    pub w: usize,
    pub ho: usize,
    pub wo: usize,
}

/// A channels-last 1-D convolution: `[batch, len, channels]` → `[batch, out_len, out_channels]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv1d {
    pub batch: usize,
    pub len: usize,
    pub channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub out_len: usize,
}

/// Self-attention on a fused projection: `[batch, len, 3·dim]` → `[batch, len, dim]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Attention {
    pub batch: usize,
    pub len: usize,
    pub dim: usize,
    pub heads: usize,
    pub head_dim: usize,
}

impl Shapes {
    fn fail(self, op: &str, msg: String) -> Error {
        Error::backend(self.0, format!("{op}: {msg}"))
    }

    fn ensure(self, cond: bool, op: &str, msg: impl FnOnce() -> String) -> Result<()> {
        if cond {
            Ok(())
        } else {
            Err(self.fail(op, msg()))
        }
    }

    /// `shape` as exactly N dimensions.
    pub fn dims<const N: usize>(self, shape: &[usize], op: &str, what: &str) -> Result<[usize; N]> {
        shape.try_into().map_err(|_| {
            self.fail(
                op,
                format!("{what} must have {N} dimensions, got shape {shape:?}"),
            )
        })
    }

    fn vector(self, shape: Option<&[usize]>, len: usize, op: &str, what: &str) -> Result<()> {
        match shape {
            Some(s) if s != [len] => {
                Err(self.fail(op, format!("{what} has shape {s:?}, expected [{len}]")))
            }
            _ => Ok(()),
        }
    }

    pub fn stft(self, signal: &[usize], window_len: usize, p: &StftParams) -> Result<Stft> {
        let op = "stft_power";
        let [batch, len] = self.dims(signal, op, "signal")?;
        self.ensure(p.n_fft >= 2 && p.hop > 0, op, || {
            format!("n_fft {} and hop {} must be ≥ 2 and ≥ 1", p.n_fft, p.hop)
        })?;
        self.ensure(window_len == p.n_fft, op, || {
            format!("window has {window_len} samples, n_fft is {}", p.n_fft)
        })?;
        self.ensure((1..=p.n_fft / 2 + 1).contains(&p.bins()), op, || {
            format!(
                "{} bins kept, n_fft {} has 1 to {}",
                p.bins(),
                p.n_fft,
                p.n_fft / 2 + 1
            )
        })?;
        let frames = p.frames(len).ok_or_else(|| {
            self.fail(
                op,
                format!("signal of {len} samples is too short for n_fft {}", p.n_fft),
            )
        })?;
        Ok(Stft {
            batch,
            len,
            frames,
            bins: p.bins(),
        })
    }

    /// `[B, T, bins]` spectrum and a bin range → (B, T, bins).
    pub fn bin_range(self, power: &[usize], start: usize, end: usize) -> Result<[usize; 3]> {
        let op = "filterbank_log";
        let [batch, frames, bins] = self.dims(power, op, "power spectrum")?;
        self.ensure(start < end && end <= bins, op, || {
            format!("bin range {start}..{end} is not inside 0..{bins}")
        })?;
        Ok([batch, frames, bins])
    }

    /// `[B, T, K] · [K, N]` (filterbank or DCT) → (B, T, K, N).
    pub fn project(self, op: &str, x: &[usize], matrix: &[usize]) -> Result<[usize; 4]> {
        let [batch, frames, k] = self.dims(x, op, "input")?;
        let [rows, n] = self.dims(matrix, op, "matrix")?;
        self.ensure(rows == k, op, || {
            format!("matrix has {rows} rows, input has {k} values per frame")
        })?;
        Ok([batch, frames, k, n])
    }

    /// `[B, T, F]` features and, for global normalisation, the statistics' lengths.
    pub fn normalize(
        self,
        features: &[usize],
        stats: Option<(usize, usize)>,
    ) -> Result<[usize; 3]> {
        let op = "normalize";
        let [batch, frames, feats] = self.dims(features, op, "features")?;
        if let Some((mean, std)) = stats {
            self.ensure(mean == feats && std == feats, op, || {
                format!("global mean/std have {mean}/{std} values, features have {feats}")
            })?;
        }
        Ok([batch, frames, feats])
    }

    pub fn conv2d(
        self,
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        p: &Conv2dParams,
    ) -> Result<Conv> {
        let op = "conv2d";
        let [out_channels, in_ch, kh, kw] = self.dims(weight, op, "weight")?;
        self.conv_sizes(op, input, [in_ch, out_channels, kh, kw], bias, |h, w| {
            p.output_hw(h, w, [kh, kw]).ok_or_else(|| {
                format!(
                    "kernel {kh}x{kw} (padding {:?}) does not fit input {h}x{w}",
                    p.padding
                )
            })
        })
    }

    /// A transposed convolution's sizes (`Conv`, its `channels` the input's).
    pub fn conv_transpose2d(
        self,
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        p: &ConvTranspose2dParams,
    ) -> Result<Conv> {
        let op = "conv_transpose2d";
        let [in_ch, out_channels, kh, kw] = self.dims(weight, op, "weight")?;
        self.conv_sizes(op, input, [in_ch, out_channels, kh, kw], bias, |h, w| {
            p.output_hw(h, w, [kh, kw]).ok_or_else(|| {
                format!(
                    "kernel {kh}x{kw}, stride {:?}, crops {:?}/{:?} leave no output of input \
                     {h}x{w}",
                    p.stride, p.crop, p.crop_end
                )
            })
        })
    }

    /// What the 2-D convolutions share: an `[B, C, H, W]` input whose C is the weight's
    /// `in_ch`, a bias of `out_channels`, and the output size `out_hw` gives (or why none).
    fn conv_sizes(
        self,
        op: &str,
        input: &[usize],
        [in_ch, out_channels, kh, kw]: [usize; 4],
        bias: Option<&[usize]>,
        out_hw: impl FnOnce(usize, usize) -> std::result::Result<[usize; 2], String>,
    ) -> Result<Conv> {
        let [batch, channels, h, w] = self.dims(input, op, "input")?;
        self.ensure(in_ch == channels, op, || {
            format!("weight expects {in_ch} input channels, input has {channels}")
        })?;
        self.vector(bias, out_channels, op, "bias")?;
        let [ho, wo] = out_hw(h, w).map_err(|msg| self.fail(op, msg))?;
        Ok(Conv {
            batch,
            channels,
            h,
            w,
            out_channels,
            kh,
            kw,
            ho,
            wo,
        })
    }

    /// Two tensors multiplied elementwise → their length.
    pub fn same_shape(self, op: &str, a: &[usize], b: &[usize]) -> Result<usize> {
        self.ensure(a == b, op, || format!("shapes differ: {a:?} and {b:?}"))?;
        Ok(a.iter().product())
    }

    /// A complex spectrum `[.., 2]` and two magnitude estimates of its shape less the last
    /// axis → the number of complex values.
    pub fn ratio_mask(self, spec: &[usize], target: &[usize], other: &[usize]) -> Result<usize> {
        let op = "apply_ratio_mask";
        self.ensure(spec.last() == Some(&2), op, || {
            format!("spectrum must be [.., 2] (real, imaginary), got {spec:?}")
        })?;
        let values = &spec[..spec.len() - 1];
        self.ensure(target == values && other == values, op, || {
            format!("estimates {target:?} and {other:?} must both be {values:?}")
        })?;
        Ok(values.iter().product())
    }

    /// `[B, T, bins, 2]` spectra for an inverse STFT → (B, T, bins, output length).
    pub fn istft(
        self,
        spec: &[usize],
        window_len: usize,
        n_fft: usize,
        hop: usize,
    ) -> Result<[usize; 4]> {
        let op = "istft_overlap_add";
        let [batch, frames, bins, two] = self.dims(spec, op, "spectrum")?;
        self.ensure(two == 2 && frames > 0, op, || {
            format!("spectrum must be [B, T ≥ 1, bins, 2], got {spec:?}")
        })?;
        self.ensure(n_fft >= 2 && n_fft.is_multiple_of(2) && hop > 0, op, || {
            format!("n_fft {n_fft} must be even and ≥ 2, hop {hop} ≥ 1")
        })?;
        self.ensure(window_len == n_fft, op, || {
            format!("window has {window_len} samples, n_fft is {n_fft}")
        })?;
        self.ensure(bins <= n_fft / 2 + 1, op, || {
            format!(
                "{bins} bins is more than n_fft {n_fft} has ({})",
                n_fft / 2 + 1
            )
        })?;
        Ok([batch, frames, bins, (frames - 1) * hop + n_fft])
    }

    /// Two tensors concatenated along axis 1 → (batch, channels of each, inner size).
    pub fn concat_channels(self, a: &[usize], b: &[usize]) -> Result<[usize; 4]> {
        let op = "concat_channels";
        self.ensure(a.len() >= 2 && a.len() == b.len(), op, || {
            format!("inputs must be [B, C, ...] of the same rank, got {a:?} and {b:?}")
        })?;
        self.ensure(a[0] == b[0] && a[2..] == b[2..], op, || {
            format!("batch and trailing axes differ: {a:?} and {b:?}")
        })?;
        Ok([a[0], a[1], b[1], a[2..].iter().product()])
    }

    /// `[B, C, ...]` with per-channel scale and shift → (C, inner size).
    pub fn channel_affine(
        self,
        input: &[usize],
        scale: &[usize],
        shift: &[usize],
    ) -> Result<(usize, usize)> {
        let op = "channel_affine";
        self.ensure(input.len() >= 2, op, || {
            format!("input must be [B, C, ...], got {input:?}")
        })?;
        let channels = input[1];
        self.vector(Some(scale), channels, op, "scale")?;
        self.vector(Some(shift), channels, op, "shift")?;
        Ok((channels, input[2..].iter().product()))
    }

    pub fn max_pool2d(self, input: &[usize], p: &PoolParams) -> Result<Pool> {
        let op = "max_pool2d";
        let [batch, channels, h, w] = self.dims(input, op, "input")?;
        self.ensure(
            p.padding[0] * 2 <= p.kernel[0] && p.padding[1] * 2 <= p.kernel[1],
            op,
            || {
                format!(
                    "padding {:?} must be at most half the kernel {:?}",
                    p.padding, p.kernel
                )
            },
        )?;
        let [ho, wo] = p.output_hw(h, w).ok_or_else(|| {
            self.fail(
                op,
                format!("kernel {:?} does not fit input {h}x{w}", p.kernel),
            )
        })?;
        Ok(Pool {
            batch,
            channels,
            h,
            w,
            ho,
            wo,
        })
    }

    /// `[B, C, ...]` with even C → (output shape, inner size).
    pub fn mfm(self, input: &[usize]) -> Result<(Vec<usize>, usize)> {
        self.ensure(
            input.len() >= 2 && input[1].is_multiple_of(2),
            "mfm",
            || format!("input must be [B, C, ...] with even C, got {input:?}"),
        )?;
        let mut out = input.to_vec();
        out[1] /= 2;
        Ok((out, input[2..].iter().product()))
    }

    /// `[B, C, H, W]` → (B, C, H·W).
    pub fn global_pool(self, input: &[usize]) -> Result<[usize; 3]> {
        let op = "global_pool";
        let [batch, channels, h, w] = self.dims(input, op, "input")?;
        self.ensure(h * w > 0, op, || "input has an empty spatial extent".into())?;
        Ok([batch, channels, h * w])
    }

    /// `[B, in]` × `[out, in]` (+ bias `[out]`) → (B, in, out).
    pub fn linear(
        self,
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
    ) -> Result<[usize; 3]> {
        let op = "linear";
        let [batch, inputs] = self.dims(input, op, "input")?;
        let [outputs, w_in] = self.dims(weight, op, "weight")?;
        self.ensure(w_in == inputs, op, || {
            format!("weight expects {w_in} inputs, input has {inputs}")
        })?;
        self.vector(bias, outputs, op, "bias")?;
        Ok([batch, inputs, outputs])
    }

    /// `[B, N]` with N ≥ 1 → (B, N).
    pub fn softmax(self, input: &[usize]) -> Result<[usize; 2]> {
        let [rows, classes] = self.dims(input, "softmax", "input")?;
        self.ensure(classes > 0, "softmax", || "input has zero classes".into())?;
        Ok([rows, classes])
    }

    /// `[B, T, C]` input, `[O, C, K]` weight, `[O]` bias.
    pub fn conv1d(
        self,
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        p: &Conv1dParams,
    ) -> Result<Conv1d> {
        let op = "conv1d";
        let [batch, len, channels] = self.dims(input, op, "input")?;
        let [out_channels, in_ch, kernel] = self.dims(weight, op, "weight")?;
        self.ensure(in_ch == channels, op, || {
            format!("weight expects {in_ch} input channels, input has {channels}")
        })?;
        self.vector(bias, out_channels, op, "bias")?;
        let out_len = super::window_output(len, kernel, p.stride, p.padding).ok_or_else(|| {
            self.fail(
                op,
                format!(
                    "kernel {kernel} (stride {}, padding {}) does not fit {len} steps",
                    p.stride, p.padding
                ),
            )
        })?;
        Ok(Conv1d {
            batch,
            len,
            channels,
            out_channels,
            kernel,
            out_len,
        })
    }

    /// `[..., D]` input with `[D]` gain and bias → (rows, D).
    pub fn layer_norm(
        self,
        input: &[usize],
        gamma: &[usize],
        beta: &[usize],
    ) -> Result<[usize; 2]> {
        let op = "layer_norm";
        let dim = *input
            .last()
            .ok_or_else(|| self.fail(op, "input has no axes".into()))?;
        self.ensure(dim > 0, op, || "input has an empty last axis".into())?;
        self.vector(Some(gamma), dim, op, "gamma")?;
        self.vector(Some(beta), dim, op, "beta")?;
        Ok([input.iter().product::<usize>() / dim, dim])
    }

    /// `[B, T, 3·D]` with `heads` dividing D.
    pub fn attention(self, qkv: &[usize], heads: usize) -> Result<Attention> {
        let op = "attention";
        let [batch, len, fused] = self.dims(qkv, op, "qkv")?;
        self.ensure(fused % 3 == 0 && fused > 0, op, || {
            format!("last axis {fused} is not 3·D (queries, keys, values)")
        })?;
        let dim = fused / 3;
        self.ensure(heads > 0 && dim % heads == 0, op, || {
            format!("{heads} heads do not divide the width {dim}")
        })?;
        Ok(Attention {
            batch,
            len,
            dim,
            heads,
            head_dim: dim / heads,
        })
    }

    /// `b`'s shape a suffix of `a`'s → (elements of a, elements of b).
    pub fn add(self, a: &[usize], b: &[usize]) -> Result<(usize, usize)> {
        self.ensure(b.len() <= a.len() && a.ends_with(b), "add", || {
            format!("{b:?} does not broadcast to {a:?} (it must be a suffix of it)")
        })?;
        let (n, m) = (a.iter().product::<usize>(), b.iter().product::<usize>());
        self.ensure(m > 0 || n == 0, "add", || "empty addend".into())?;
        Ok((n, m))
    }

    /// `linear_residual`'s `[rows, inputs, outputs]`: a linear layer's, and a residual of
    /// `rows × outputs` values whose last axis is the outputs.
    pub fn linear_residual(
        self,
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        residual: &[usize],
    ) -> Result<[usize; 3]> {
        let [rows, inputs, outputs] = self.linear(input, weight, bias)?;
        let values: usize = residual.iter().product();
        self.ensure(
            residual.last() == Some(&outputs) && values == rows * outputs,
            "linear_residual",
            || format!("a residual of {residual:?} does not hold {rows} rows of {outputs}"),
        )?;
        Ok([rows, inputs, outputs])
    }

    pub fn reshape(self, from: &[usize], to: &[usize]) -> Result<()> {
        let (a, b) = (from.iter().product::<usize>(), to.iter().product::<usize>());
        self.ensure(a == b, "reshape", || {
            format!("{from:?} cannot become {to:?}")
        })
    }

    pub fn upload(self, len: usize, shape: &[usize]) -> Result<()> {
        let expected: usize = shape.iter().product();
        self.ensure(expected == len, "upload", || {
            format!("tensor of shape {shape:?} needs {expected} values, got {len}")
        })
    }
}
