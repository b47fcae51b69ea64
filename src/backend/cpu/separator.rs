//! CPU separator ops: transposed convolution as one SGEMM per item (every input pixel's
//! contributions to every output channel and kernel tap) then col2im's scatter-add; channel
//! concatenation; the complex STFT, ratio mask and inverse STFT around the U-Nets (realfft).

use rayon::prelude::*;
use realfft::num_complex::Complex;

use super::{CHECK, CpuBackend, CpuTensor, pool, sgemm, simd};
use crate::Result;
use crate::backend::{Activation, ConvTranspose2dParams, SeparatorOps, StftParams};

impl SeparatorOps for CpuBackend {
    fn conv_transpose2d(
        &self,
        input: &CpuTensor,
        weight: &CpuTensor,
        bias: Option<&CpuTensor>,
        p: &ConvTranspose2dParams,
        act: Activation,
    ) -> Result<CpuTensor> {
        let c = CHECK.conv_transpose2d(
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
            p,
        )?;
        let (channels, h, w) = (c.channels, c.h, c.w);
        let (out_ch, kh, kw, ho, wo) = (c.out_channels, c.kh, c.kw, c.ho, c.wo);
        let taps = out_ch * kh * kw;
        let mut out = vec![0.0f32; c.batch * out_ch * ho * wo];
        if out.is_empty() {
            return CpuTensor::new(out, &[c.batch, out_ch, ho, wo]);
        }
        out.par_chunks_mut(out_ch * ho * wo)
            .zip(input.data.par_chunks(channels * h * w))
            .for_each_init(
                || pool::Scratch::new(taps * h * w),
                |cols, (dst, x)| {
                    // cols[tap, pixel] = Σ_c weight[c, tap] · x[c, pixel]: weightᵀ (strided) · x,
                    // every value overwritten (recycled: see conv2d's im2col columns).
                    let cols = &mut cols.0;
                    sgemm(
                        taps,
                        channels,
                        h * w,
                        &weight.data,
                        (1, taps),
                        x,
                        (h * w, 1),
                        cols,
                    );
                    col2im(cols, [out_ch, kh, kw], [h, w], p, [ho, wo], dst);
                    for (o, plane) in dst.chunks_mut(ho * wo).enumerate() {
                        simd::shift_activate(plane, bias.map_or(0.0, |b| b.data[o]), act);
                    }
                },
            );
        CpuTensor::new(out, &[c.batch, out_ch, ho, wo])
    }

    fn concat_channels(&self, a: &CpuTensor, b: &CpuTensor) -> Result<CpuTensor> {
        let [batch, ca, cb, inner] = CHECK.concat_channels(&a.shape, &b.shape)?;
        let mut out = Vec::with_capacity(batch * (ca + cb) * inner);
        for item in 0..batch {
            out.extend_from_slice(&a.data[item * ca * inner..(item + 1) * ca * inner]);
            out.extend_from_slice(&b.data[item * cb * inner..(item + 1) * cb * inner]);
        }
        let mut shape = a.shape.clone();
        shape[1] = ca + cb;
        CpuTensor::new(out, &shape)
    }

    fn mul(&self, a: &CpuTensor, b: &CpuTensor) -> Result<CpuTensor> {
        CHECK.same_shape("mul", &a.shape, &b.shape)?;
        let out = a.data.iter().zip(&b.data).map(|(x, y)| x * y).collect();
        CpuTensor::new(out, &a.shape)
    }

    fn stft_complex(
        &self,
        signal: &CpuTensor,
        window: &CpuTensor,
        p: &StftParams,
    ) -> Result<CpuTensor> {
        self.stft_rows(signal, window, p, 2, |spectrum, dst| {
            for (d, c) in dst.chunks_exact_mut(2).zip(spectrum) {
                d.copy_from_slice(&[c.re, c.im]);
            }
        })
    }

    fn apply_ratio_mask(
        &self,
        spec: &CpuTensor,
        target: &CpuTensor,
        other: &CpuTensor,
        eps: f32,
    ) -> Result<CpuTensor> {
        CHECK.ratio_mask(&spec.shape, &target.shape, &other.shape)?;
        let mut out = spec.data.clone();
        out.par_chunks_mut(2)
            .zip(target.data.par_iter().zip(&other.data))
            .for_each(|(z, (&t, &o))| {
                let mask = ratio_mask(t, o, eps);
                z[0] *= mask;
                z[1] *= mask;
            });
        CpuTensor::new(out, &spec.shape)
    }

    fn istft_overlap_add(
        &self,
        spec: &CpuTensor,
        window: &CpuTensor,
        n_fft: usize,
        hop: usize,
    ) -> Result<CpuTensor> {
        let [batch, frames, bins, len] = CHECK.istft(&spec.shape, window.data.len(), n_fft, hop)?;
        let ifft = self.ifft_plan(n_fft);
        let scale = 1.0 / n_fft as f32;
        // Each frame's windowed inverse, then the overlap-add per batch row.
        let mut framed = vec![0.0f32; batch * frames * n_fft];
        framed
            .par_chunks_mut(n_fft)
            .zip(spec.data.par_chunks(bins * 2))
            .try_for_each_init(
                || (ifft.make_input_vec(), ifft.make_scratch_vec()),
                |(spectrum, scratch), (dst, src)| {
                    spectrum.fill(Complex::default());
                    for (z, c) in spectrum.iter_mut().zip(src.chunks_exact(2)) {
                        *z = Complex::new(c[0], c[1]);
                    }
                    // A real signal's DC and Nyquist bins are real (PyTorch's irfft ignores
                    // their imaginary parts too).
                    spectrum[0].im = 0.0;
                    spectrum[n_fft / 2].im = 0.0;
                    ifft.process_with_scratch(spectrum, dst, scratch)
                        .map_err(|e| crate::Error::backend("cpu", format!("istft: {e}")))?;
                    for (x, w) in dst.iter_mut().zip(&window.data) {
                        *x *= w * scale;
                    }
                    Ok::<_, crate::Error>(())
                },
            )?;
        let mut out = vec![0.0f32; batch * len];
        out.par_chunks_mut(len)
            .zip(framed.par_chunks(frames * n_fft))
            .for_each(|(dst, row)| {
                for (t, frame) in row.chunks_exact(n_fft).enumerate() {
                    for (d, x) in dst[t * hop..t * hop + n_fft].iter_mut().zip(frame) {
                        *d += x;
                    }
                }
            });
        CpuTensor::new(out, &[batch, len])
    }
}

/// Spleeter's ratio mask for a stem of estimate `t` against the other's `o`.
fn ratio_mask(t: f32, o: f32, eps: f32) -> f32 {
    (t * t + eps / 2.0) / (t * t + o * o + eps)
}

/// Add each input pixel's taps `cols[(o, ky, kx), (iy, ix)]` into the output at
/// `(iy · sh + ky − crop_h, ix · sw + kx − crop_w)`, where that lies inside `[ho, wo]`.
fn col2im(
    cols: &[f32],
    [out_ch, kh, kw]: [usize; 3],
    [h, w]: [usize; 2],
    p: &ConvTranspose2dParams,
    [ho, wo]: [usize; 2],
    dst: &mut [f32],
) {
    let [sh, sw] = p.stride;
    let [ch, cw] = p.crop;
    for o in 0..out_ch {
        let plane = &mut dst[o * ho * wo..(o + 1) * ho * wo];
        for ky in 0..kh {
            for kx in 0..kw {
                let tap = &cols[((o * kh + ky) * kw + kx) * h * w..][..h * w];
                for iy in 0..h {
                    let Some(y) = (iy * sh + ky).checked_sub(ch).filter(|&y| y < ho) else {
                        continue;
                    };
                    let row = &mut plane[y * wo..(y + 1) * wo];
                    for (ix, &v) in tap[iy * w..(iy + 1) * w].iter().enumerate() {
                        if let Some(x) = (ix * sw + kx).checked_sub(cw).filter(|&x| x < wo) {
                            row[x] += v;
                        }
                    }
                }
            }
        }
    }
}
