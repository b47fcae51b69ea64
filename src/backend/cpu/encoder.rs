//! CPU encoder ops: channels-last conv1d (im2col + GEMM), layer norm, a projection with the
//! residual add in its epilogue, multi-head attention (per window, head and block of
//! queries: two GEMMs and a vectorised softmax), broadcast add; rayon across rows, windows and
//! heads. The GEMMs are the packed kernels' where the CPU has them (`packed`).

use std::cell::RefCell;

use rayon::prelude::*;

use super::packed::{self, Layout, PackedWeight};
use super::{CHECK, CpuBackend, CpuTensor, pool, sgemm, simd};
use crate::Result;
use crate::backend::{Activation, Conv1dParams, EncoderOps};

/// Queries whose attention scores are computed together (a [72, T] block stays in L2): a
/// multiple of both packed kernels' rows, so that T = 200 wastes few.
const QUERY_BLOCK: usize = 72;

thread_local! {
    /// Each thread's im2col rows, kept between calls (a fresh 1.2 MB buffer per window of
    /// Whisper's second convolution is fresh pages, zeroed by the kernel on first touch).
    static COLS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

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
        let bias = bias.map(|b| b.data.as_slice());
        // The weight as a [K·C, O] matrix, row k·C + c, against im2col rows: packed once for
        // a packed kernel, or transposed here for matrixmultiply.
        let packed = self
            .weight_kernel()
            .map(|kernel| weight.packed(Layout::Taps, kernel));
        let transposed = match packed {
            Some(_) => Vec::new(),
            None => {
                let mut w = vec![0.0f32; k * ch * o];
                for oc in 0..o {
                    for ic in 0..ch {
                        for kk in 0..k {
                            w[(kk * ch + ic) * o + oc] = weight.data[(oc * ch + ic) * k + kk];
                        }
                    }
                }
                w
            }
        };
        // Every value is written below.
        let mut out = pool::take(c.batch * c.out_len * o);
        if !out.is_empty() {
            out.par_chunks_mut(c.out_len * o)
                .enumerate()
                .for_each(|(b, dst)| {
                    let x = &input.data[b * c.len * ch..(b + 1) * c.len * ch];
                    COLS.with_borrow_mut(|cols| {
                        cols.resize(c.out_len * k * ch, 0.0);
                        for (t, row) in cols.chunks_mut(k * ch).enumerate() {
                            for (kk, tap) in row.chunks_mut(ch).enumerate() {
                                let src = (t * p.stride + kk) as isize - p.padding as isize;
                                if (0..c.len as isize).contains(&src) {
                                    let s = src as usize * ch;
                                    tap.copy_from_slice(&x[s..s + ch]);
                                } else {
                                    tap.fill(0.0);
                                }
                            }
                        }
                        let cols = cols.as_slice();
                        match &packed {
                            Some(w) => w.matmul(cols, c.out_len, dst, bias, act),
                            None => {
                                sgemm(
                                    c.out_len,
                                    k * ch,
                                    o,
                                    cols,
                                    (k * ch, 1),
                                    &transposed,
                                    (o, 1),
                                    dst,
                                );
                                for row in dst.chunks_mut(o) {
                                    simd::bias_activate(row, bias, act);
                                }
                            }
                        }
                    });
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
        let mut out = pool::copy_of(&input.data);
        out.par_chunks_mut(dim)
            .for_each(|row| simd::layer_norm_row(row, &gamma.data, &beta.data, eps));
        CpuTensor::new(out, &input.shape)
    }

    fn attention(&self, qkv: &CpuTensor, heads: usize) -> Result<CpuTensor> {
        let a = CHECK.attention(&qkv.shape, heads)?;
        let (t, d, dh) = (a.len, a.dim, a.head_dim);
        let scale = 1.0 / (dh as f32).sqrt();
        let kernel = packed::Kernel::best();
        // One task per (window, head), queries in blocks: a block's scores [rows, T] stay in
        // cache (the T × T matrix is never made), each row's softmax is vectorised, then the
        // block's [rows, dh] of output is one more GEMM. With a packed kernel, the head's keys
        // and transposed values are packed once, as the weights of those two GEMMs.
        let per_head: Vec<Vec<f32>> = (0..a.batch * heads)
            .into_par_iter()
            .map_init(Vec::new, |scores, task| {
                let (b, h) = (task / heads, task % heads);
                let base = b * t * 3 * d;
                let k = &qkv.data[base + d + h * dh..];
                let v = &qkv.data[base + 2 * d + h * dh..];
                let mut out = vec![0.0f32; t * dh];
                let packed = kernel.map(|kernel| {
                    let keys = PackedWeight::from_rows(k, t, dh, 3 * d, kernel);
                    let values = PackedWeight::from_columns(v, dh, t, 3 * d, kernel);
                    (keys, values)
                });
                for first in (0..t).step_by(QUERY_BLOCK) {
                    let rows = QUERY_BLOCK.min(t - first);
                    let q = &qkv.data[base + first * 3 * d + h * dh..];
                    scores.resize(rows * t, 0.0);
                    let dst = &mut out[first * dh..(first + rows) * dh];
                    // Scores: q [rows, dh] (row stride 3D) times kᵀ.
                    match &packed {
                        Some((keys, _)) => {
                            keys.matmul_strided(q, 3 * d, rows, scores, None, Activation::None)
                        }
                        // Element (i, j) of kᵀ is k[j, i].
                        None => sgemm(rows, dh, t, q, (3 * d, 1), k, (1, 3 * d), scores),
                    }
                    for row in scores.chunks_mut(t) {
                        simd::softmax_scaled(row, scale);
                    }
                    match &packed {
                        Some((_, values)) => {
                            values.matmul(scores, rows, dst, None, Activation::None)
                        }
                        None => sgemm(rows, t, dh, scores, (t, 1), v, (3 * d, 1), dst),
                    }
                }
                out
            })
            .collect();
        // Every value is written below.
        let mut out = pool::take(a.batch * t * d);
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
        let mut out = pool::copy_of(&a.data);
        if m > 0 {
            out.par_chunks_mut(m).for_each(|chunk| {
                for (x, y) in chunk.iter_mut().zip(&b.data) {
                    *x += y;
                }
            });
        }
        CpuTensor::new(out, &a.shape)
    }

    fn linear_residual(
        &self,
        input: &CpuTensor,
        weight: &CpuTensor,
        bias: Option<&CpuTensor>,
        residual: &CpuTensor,
    ) -> Result<CpuTensor> {
        let dims = CHECK.linear_residual(
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
            &residual.shape,
        )?;
        let residual_rows = Some(residual.data.as_slice());
        let out = self.linear_rows(dims, input, weight, bias, Activation::None, residual_rows);
        CpuTensor::new(out, &residual.shape)
    }
}
