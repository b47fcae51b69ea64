//! CPU front-end: STFT power spectrum, filterbank + log, DCT, normalisation.

use rayon::prelude::*;
use realfft::num_complex::Complex;

use super::{CHECK, CpuBackend, CpuTensor, pool, sgemm};
use crate::Result;
use crate::backend::{FrontendOps, LogSpec, NORM_EPS, Normalization, Projection, StftParams};

/// Rows handed to one SGEMM call when projecting frames; large enough to amortise packing.
const ROWS_PER_TASK: usize = 64;

impl CpuBackend {
    /// Framing + window + real FFT of every frame; `write` turns each frame's spectrum into its
    /// output row of `p.bins() · per_bin` values. Output `[B, frames, bins]` (`per_bin` 1) or
    /// `[B, frames, bins, per_bin]`.
    pub(super) fn stft_rows(
        &self,
        signal: &CpuTensor,
        window: &CpuTensor,
        p: &StftParams,
        per_bin: usize,
        write: impl Fn(&[Complex<f32>], &mut [f32]) + Sync,
    ) -> Result<CpuTensor> {
        let shape = CHECK.stft(&signal.shape, window.data.len(), p)?;
        let (batch, len, frames, bins) = (shape.batch, shape.len, shape.frames, shape.bins);
        let pad = if p.center { p.n_fft / 2 } else { 0 };
        let fft = self.fft_plan(p.n_fft);
        let width = bins * per_bin;
        // Every row is written whole by `write` (its `bins · per_bin` values).
        let mut out = pool::take(batch * frames * width);
        out.par_chunks_mut(width).enumerate().try_for_each_init(
            || {
                (
                    fft.make_input_vec(),
                    fft.make_output_vec(),
                    fft.make_scratch_vec(),
                )
            },
            |(frame, spectrum, scratch), (row, dst)| {
                let (b, t) = (row / frames, row % frames);
                let x = &signal.data[b * len..(b + 1) * len];
                let start = (t * p.hop) as isize - pad as isize;
                for (i, (f, w)) in frame.iter_mut().zip(&window.data).enumerate() {
                    *f = x[reflect(start + i as isize, len)] * w;
                }
                fft.process_with_scratch(frame, spectrum, scratch)
                    .map_err(|e| crate::Error::backend("cpu", format!("stft: {e}")))?;
                write(&spectrum[..bins], dst);
                Ok(())
            },
        )?;
        let shape = [batch, frames, bins, per_bin];
        CpuTensor::new(out, &shape[..if per_bin == 1 { 3 } else { 4 }])
    }
}

impl FrontendOps for CpuBackend {
    fn stft_power(
        &self,
        signal: &CpuTensor,
        window: &CpuTensor,
        p: &StftParams,
    ) -> Result<CpuTensor> {
        let power = p.power;
        self.stft_rows(signal, window, p, 1, |spectrum, dst| {
            for (d, c) in dst.iter_mut().zip(spectrum) {
                let mag2 = c.re * c.re + c.im * c.im;
                *d = if power == 2.0 {
                    mag2
                } else if power == 1.0 {
                    mag2.sqrt()
                } else {
                    mag2.powf(power / 2.0)
                };
            }
        })
    }

    fn filterbank_log(
        &self,
        power: &CpuTensor,
        projection: Projection<&CpuTensor>,
        log: LogSpec,
    ) -> Result<CpuTensor> {
        match projection {
            Projection::Bins { start, end } => {
                let [batch, frames, bins] = CHECK.bin_range(&power.shape, start, end)?;
                let width = end - start;
                let mut out = pool::take(batch * frames * width);
                out.par_chunks_mut(width)
                    .zip(power.data.par_chunks(bins))
                    .for_each(|(dst, src)| {
                        for (d, &s) in dst.iter_mut().zip(&src[start..end]) {
                            *d = log.apply(s);
                        }
                    });
                CpuTensor::new(out, &[batch, frames, width])
            }
            Projection::Matrix(matrix) => {
                let [batch, frames, bins, filters] =
                    CHECK.project("filterbank_log", &power.shape, &matrix.shape)?;
                let out = project_rows(&power.data, bins, &matrix.data, filters, |v| log.apply(v));
                CpuTensor::new(out, &[batch, frames, filters])
            }
        }
    }

    fn dct(&self, features: &CpuTensor, basis: &CpuTensor) -> Result<CpuTensor> {
        let [batch, frames, filters, coeffs] =
            CHECK.project("dct", &features.shape, &basis.shape)?;
        let out = project_rows(&features.data, filters, &basis.data, coeffs, |v| v);
        CpuTensor::new(out, &[batch, frames, coeffs])
    }

    fn normalize(
        &self,
        features: &CpuTensor,
        mode: Normalization<&CpuTensor>,
    ) -> Result<CpuTensor> {
        let stats = match &mode {
            Normalization::Global { mean, std } => Some((mean.data.len(), std.data.len())),
            _ => None,
        };
        let [_, frames, feats] = CHECK.normalize(&features.shape, stats)?;
        let mut out = pool::copy_of(&features.data);
        if let Normalization::Global { mean, std } = mode {
            out.par_chunks_mut(feats).for_each(|row| {
                for ((v, m), s) in row.iter_mut().zip(&mean.data).zip(&std.data) {
                    *v = (*v - m) / s;
                }
            });
            return CpuTensor::new(out, &features.shape);
        }
        let scale_by_std = matches!(mode, Normalization::MeanVar);
        if frames == 0 || feats == 0 {
            return CpuTensor::new(out, &features.shape);
        }
        if let Normalization::Range(range) = mode {
            out.par_chunks_mut(frames * feats)
                .for_each(|window| range.apply(window));
            return CpuTensor::new(out, &features.shape);
        }
        out.par_chunks_mut(frames * feats).for_each(|item| {
            // f64 accumulation keeps the statistics exact enough for long windows.
            let mut mean = vec![0.0f64; feats];
            for row in item.chunks(feats) {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += v as f64;
                }
            }
            mean.iter_mut().for_each(|m| *m /= frames as f64);
            let mut inv_std = vec![1.0f64; feats];
            if scale_by_std {
                let mut var = vec![0.0f64; feats];
                for row in item.chunks(feats) {
                    for ((s, m), &v) in var.iter_mut().zip(&mean).zip(row) {
                        *s += (v as f64 - m).powi(2);
                    }
                }
                for (i, s) in inv_std.iter_mut().zip(&var) {
                    *i = 1.0 / (s / frames as f64 + NORM_EPS as f64).sqrt();
                }
            }
            for row in item.chunks_mut(feats) {
                for ((v, m), i) in row.iter_mut().zip(&mean).zip(&inv_std) {
                    *v = ((*v as f64 - m) * i) as f32;
                }
            }
        });
        CpuTensor::new(out, &features.shape)
    }
}

/// Index into a signal of `len` samples with reflect padding (`x[-i] = x[i]`), as PyTorch's
/// `center=True` STFT does. Callers guarantee the overshoot is less than `len`.
#[inline]
fn reflect(i: isize, len: usize) -> usize {
    let n = len as isize;
    let r = if i < 0 {
        -i
    } else if i >= n {
        2 * (n - 1) - i
    } else {
        i
    };
    r as usize
}

/// `[rows, k] · [k, n]` → `[rows, n]`, parallel over blocks of rows, then `post` per value.
fn project_rows(
    x: &[f32],
    k: usize,
    matrix: &[f32],
    n: usize,
    post: impl Fn(f32) -> f32 + Sync,
) -> Vec<f32> {
    let rows = x.len() / k.max(1);
    // The SGEMMs overwrite every value.
    let mut out = pool::take(rows * n);
    out.par_chunks_mut(ROWS_PER_TASK * n)
        .zip(x.par_chunks(ROWS_PER_TASK * k))
        .for_each(|(dst, src)| {
            let m = src.len() / k;
            sgemm(m, k, n, src, (k, 1), matrix, (n, 1), dst);
            for v in dst.iter_mut() {
                *v = post(*v);
            }
        });
    out
}
