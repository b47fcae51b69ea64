//! CPU encoder ops: channels-last conv1d (im2col + SGEMM), layer norm, multi-head attention
//! (two SGEMMs and a softmax per batch item and head), broadcast add; rayon across rows,
//! windows and heads.

use rayon::prelude::*;

use super::{CHECK, CpuBackend, CpuTensor, sgemm};
use crate::Result;
use crate::backend::{Activation, Conv1dParams, EncoderOps};

impl EncoderOps for CpuBackend {
    fn conv1d(
        &self,
        input: &CpuTensor,
        weight: &CpuTensor,
        bias: Option<&CpuTensor>,
        p: &Conv1dParams,
        act: Activation,
    ) -> Result<CpuTensor> {
        let c = CHECK.conv1d(
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
            p,
        )?;
        let (k, ch, o) = (c.kernel, c.channels, c.out_channels);
        // The weight as a [K·C, O] matrix, row k·C + c: one GEMM per window over im2col rows.
        let mut w = vec![0.0f32; k * ch * o];
        for oc in 0..o {
            for ic in 0..ch {
                for kk in 0..k {
                    w[(kk * ch + ic) * o + oc] = weight.data[(oc * ch + ic) * k + kk];
                }
            }
        }
        let mut out = vec![0.0f32; c.batch * c.out_len * o];
        if !out.is_empty() {
            out.par_chunks_mut(c.out_len * o)
                .enumerate()
                .for_each(|(b, dst)| {
                    let x = &input.data[b * c.len * ch..(b + 1) * c.len * ch];
                    let mut cols = vec![0.0f32; c.out_len * k * ch];
                    for (t, row) in cols.chunks_mut(k * ch).enumerate() {
                        for (kk, tap) in row.chunks_mut(ch).enumerate() {
                            let src = (t * p.stride + kk) as isize - p.padding as isize;
                            if (0..c.len as isize).contains(&src) {
                                let s = src as usize * ch;
                                tap.copy_from_slice(&x[s..s + ch]);
                            }
                        }
                    }
                    sgemm(c.out_len, k * ch, o, &cols, (k * ch, 1), &w, (o, 1), dst);
                    for row in dst.chunks_mut(o) {
                        for (j, v) in row.iter_mut().enumerate() {
                            *v = act.apply(*v + bias.map_or(0.0, |b| b.data[j]));
                        }
                    }
                });
        }
        CpuTensor::new(out, &[c.batch, c.out_len, o])
    }

    fn layer_norm(
        &self,
        input: &CpuTensor,
        gamma: &CpuTensor,
        beta: &CpuTensor,
        eps: f32,
    ) -> Result<CpuTensor> {
        let [_, dim] = CHECK.layer_norm(&input.shape, &gamma.shape, &beta.shape)?;
        let mut out = input.data.clone();
        out.par_chunks_mut(dim).for_each(|row| {
            // Two passes in f64: rows of large activations (Whisper's reach ~20) keep their
            // small variances exact.
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / dim as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / dim as f64;
            let inv = 1.0 / (var + eps as f64).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&gamma.data).zip(&beta.data) {
                *v = ((*v as f64 - mean) * inv) as f32 * g + b;
            }
        });
        CpuTensor::new(out, &input.shape)
    }

    fn attention(&self, qkv: &CpuTensor, heads: usize) -> Result<CpuTensor> {
        let a = CHECK.attention(&qkv.shape, heads)?;
        let (t, d, dh) = (a.len, a.dim, a.head_dim);
        let scale = 1.0 / (dh as f32).sqrt();
        // One task per (window, head): scores [T, T], softmax, then [T, dh] of output.
        let per_head: Vec<Vec<f32>> = (0..a.batch * heads)
            .into_par_iter()
            .map(|task| {
                let (b, h) = (task / heads, task % heads);
                let base = b * t * 3 * d;
                let q = &qkv.data[base + h * dh..];
                let k = &qkv.data[base + d + h * dh..];
                let v = &qkv.data[base + 2 * d + h * dh..];
                let mut scores = vec![0.0f32; t * t];
                // q [T, dh] (row stride 3D) times kᵀ (element (i, j) = k[j, i]).
                sgemm(t, dh, t, q, (3 * d, 1), k, (1, 3 * d), &mut scores);
                for row in scores.chunks_mut(t) {
                    let max = row.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s * scale));
                    let mut sum = 0.0f32;
                    for s in row.iter_mut() {
                        *s = (*s * scale - max).exp();
                        sum += *s;
                    }
                    for s in row.iter_mut() {
                        *s /= sum;
                    }
                }
                let mut out = vec![0.0f32; t * dh];
                sgemm(t, t, dh, &scores, (t, 1), v, (3 * d, 1), &mut out);
                out
            })
            .collect();
        let mut out = vec![0.0f32; a.batch * t * d];
        for (task, head_out) in per_head.iter().enumerate() {
            let (b, h) = (task / heads, task % heads);
            for (i, row) in head_out.chunks(dh).enumerate() {
                let at = (b * t + i) * d + h * dh;
                out[at..at + dh].copy_from_slice(row);
            }
        }
        CpuTensor::new(out, &[a.batch, t, d])
    }

    fn add(&self, a: &CpuTensor, b: &CpuTensor) -> Result<CpuTensor> {
        let (_, m) = CHECK.add(&a.shape, &b.shape)?;
        let mut out = a.data.clone();
        if m > 0 {
            out.par_chunks_mut(m).for_each(|chunk| {
                for (x, y) in chunk.iter_mut().zip(&b.data) {
                    *x += y;
                }
            });
        }
        CpuTensor::new(out, &a.shape)
    }
}
