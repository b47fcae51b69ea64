//! CPU encoder ops: channels-last conv1d (im2col + SGEMM), layer norm, multi-head attention
//! (per window, head and block of queries: two SGEMMs and a vectorised softmax), broadcast
//! add; rayon across rows, windows and heads.

use rayon::prelude::*;

use super::{CHECK, CpuBackend, CpuTensor, sgemm, simd};
use crate::Result;
use crate::backend::{Activation, Conv1dParams, EncoderOps};

/// Queries whose attention scores are computed together (a [64, T] block stays in L2).
const QUERY_BLOCK: usize = 64;

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
                        simd::bias_activate(row, bias.map(|b| b.data.as_slice()), act);
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
        out.par_chunks_mut(dim)
            .for_each(|row| simd::layer_norm_row(row, &gamma.data, &beta.data, eps));
        CpuTensor::new(out, &input.shape)
    }

    fn attention(&self, qkv: &CpuTensor, heads: usize) -> Result<CpuTensor> {
        let a = CHECK.attention(&qkv.shape, heads)?;
        let (t, d, dh) = (a.len, a.dim, a.head_dim);
        let scale = 1.0 / (dh as f32).sqrt();
        // One task per (window, head), queries in blocks: a block's scores [rows, T] stay in
        // cache (the T × T matrix is never made), each row's softmax is vectorised, then the
        // block's [rows, dh] of output is one more SGEMM.
        let per_head: Vec<Vec<f32>> = (0..a.batch * heads)
            .into_par_iter()
            .map_init(Vec::new, |scores, task| {
                let (b, h) = (task / heads, task % heads);
                let base = b * t * 3 * d;
                let k = &qkv.data[base + d + h * dh..];
                let v = &qkv.data[base + 2 * d + h * dh..];
                let mut out = vec![0.0f32; t * dh];
                for first in (0..t).step_by(QUERY_BLOCK) {
                    let rows = QUERY_BLOCK.min(t - first);
                    let q = &qkv.data[base + first * 3 * d + h * dh..];
                    scores.resize(rows * t, 0.0);
                    // q [rows, dh] (row stride 3D) times kᵀ (element (i, j) = k[j, i]).
                    sgemm(rows, dh, t, q, (3 * d, 1), k, (1, 3 * d), scores);
                    for row in scores.chunks_mut(t) {
                        simd::softmax_scaled(row, scale);
                    }
                    let dst = &mut out[first * dh..(first + rows) * dh];
                    sgemm(rows, t, dh, scores, (t, 1), v, (3 * d, 1), dst);
                }
                out
            })
            .collect();
        let mut out = vec![0.0f32; a.batch * t * d];
        out.par_chunks_mut(t * d.max(1))
            .enumerate()
            .for_each(|(b, window)| {
                for h in 0..heads {
                    for (i, row) in per_head[b * heads + h].chunks(dh).enumerate() {
                        let at = i * d + h * dh;
                        window[at..at + dh].copy_from_slice(row);
                    }
                }
            });
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
