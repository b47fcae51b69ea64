//! CPU classifier ops: im2col + SGEMM convolution, pooling, MFM, linear, and the head's
//! sigmoid and softmax.

use rayon::prelude::*;

use super::packed::Layout;
use super::{CHECK, CpuBackend, CpuTensor, pool, sgemm, simd};
use crate::Result;
use crate::backend::{Activation, ClassifierOps, Conv2dParams, GlobalPool, PoolParams};

/// Fewest rows of a linear layer's input handed to one SGEMM call.
const LINEAR_MIN_ROWS_PER_TASK: usize = 64;

impl ClassifierOps for CpuBackend {
    fn conv2d(
        &self,
        input: &CpuTensor,
        weight: &CpuTensor,
        bias: Option<&CpuTensor>,
        p: &Conv2dParams,
        act: Activation,
    ) -> Result<CpuTensor> {
        let c = CHECK.conv2d(
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
            p,
        )?;
        let (batch, channels, h, w) = (c.batch, c.channels, c.h, c.w);
        let (out_ch, kh, kw, ho, wo) = (c.out_channels, c.kh, c.kw, c.ho, c.wo);
        let k = channels * kh * kw;
        let hw_out = ho * wo;
        let direct = kh == 1 && kw == 1 && p.stride == [1, 1] && p.padding == [0, 0];
        // Every value is written below (the SGEMM overwrites; k = 0 fills zeros).
        let mut out = pool::take(batch * out_ch * hw_out);
        if hw_out == 0 || out_ch == 0 {
            return CpuTensor::new(out, &[batch, out_ch, ho, wo]);
        }
        let col_len = if direct { 0 } else { k * hw_out };
        out.par_chunks_mut(out_ch * hw_out)
            .zip(input.data.par_chunks(channels * h * w))
            .for_each_init(
                || pool::Scratch::new(col_len),
                |col, (dst, x)| {
                    // A 1x1 stride-1 convolution is already a GEMM over the input planes.
                    let columns: &[f32] = if direct {
                        x
                    } else {
                        im2col(x, [channels, h, w], [kh, kw], p, [ho, wo], &mut col.0);
                        &col.0
                    };
                    sgemm(
                        out_ch,
                        k,
                        hw_out,
                        &weight.data,
                        (k, 1),
                        columns,
                        (hw_out, 1),
                        dst,
                    );
                    for (o, plane) in dst.chunks_mut(hw_out).enumerate() {
                        simd::shift_activate(plane, bias.map_or(0.0, |b| b.data[o]), act);
                    }
                },
            );
        CpuTensor::new(out, &[batch, out_ch, ho, wo])
    }

    fn channel_affine(
        &self,
        input: &CpuTensor,
        scale: &CpuTensor,
        shift: &CpuTensor,
        act: Activation,
    ) -> Result<CpuTensor> {
        let (channels, inner) = CHECK.channel_affine(&input.shape, &scale.shape, &shift.shape)?;
        let mut out = pool::copy_of(&input.data);
        if inner > 0 {
            out.par_chunks_mut(inner)
                .enumerate()
                .for_each(|(i, plane)| {
                    let c = i % channels;
                    let (a, b) = (scale.data[c], shift.data[c]);
                    for v in plane {
                        *v = act.apply(*v * a + b);
                    }
                });
        }
        CpuTensor::new(out, &input.shape)
    }

    fn max_pool2d(&self, input: &CpuTensor, p: &PoolParams) -> Result<CpuTensor> {
        let c = CHECK.max_pool2d(&input.shape, p)?;
        let (batch, channels, h, w, ho, wo) = (c.batch, c.channels, c.h, c.w, c.ho, c.wo);
        // A window's [start, end) input rows or columns.
        let col_range = |o: usize, kernel: usize, stride: usize, pad: usize, len: usize| {
            let first = (o * stride) as isize - pad as isize;
            let lo = first.max(0) as usize;
            let hi = ((first + kernel as isize).max(0) as usize).min(len);
            (lo, hi)
        };
        // Every row is filled below.
        let mut out = pool::take(batch * channels * ho * wo);
        if ho * wo > 0 && p.padding == [0, 0] && p.stride == p.kernel {
            out.par_chunks_mut(ho * wo)
                .zip(input.data.par_chunks(h * w))
                .for_each(|(dst, plane)| max_pool_tiles(plane, w, p.kernel, dst, wo));
        } else if ho * wo > 0 {
            // Window bounds per output column, computed once.
            let cols: Vec<(usize, usize)> = (0..wo)
                .map(|o| col_range(o, p.kernel[1], p.stride[1], p.padding[1], w))
                .collect();
            out.par_chunks_mut(ho * wo)
                .zip(input.data.par_chunks(h * w))
                .for_each(|(dst, plane)| {
                    for (oh, dst_row) in dst.chunks_mut(wo).enumerate() {
                        let (r0, r1) = col_range(oh, p.kernel[0], p.stride[0], p.padding[0], h);
                        dst_row.fill(f32::NEG_INFINITY);
                        for row in plane[r0 * w..r1 * w].chunks(w) {
                            for (d, &(c0, c1)) in dst_row.iter_mut().zip(&cols) {
                                *d = row[c0..c1].iter().fold(*d, |m, &v| m.max(v));
                            }
                        }
                    }
                });
        }
        CpuTensor::new(out, &[batch, channels, ho, wo])
    }

    fn mfm(&self, input: &CpuTensor) -> Result<CpuTensor> {
        let (shape, inner) = CHECK.mfm(&input.shape)?;
        let batch = input.shape[0];
        let half = shape[1] * inner;
        // Every value is written below.
        let mut out = pool::take(batch * half);
        if half > 0 {
            out.par_chunks_mut(half)
                .zip(input.data.par_chunks(2 * half))
                .for_each(|(dst, item)| {
                    let (a, b) = item.split_at(half);
                    for ((d, x), y) in dst.iter_mut().zip(a).zip(b) {
                        *d = x.max(*y);
                    }
                });
        }
        CpuTensor::new(out, &shape)
    }

    fn global_pool(&self, input: &CpuTensor, mode: GlobalPool) -> Result<CpuTensor> {
        let [batch, channels, hw] = CHECK.global_pool(&input.shape)?;
        let out = input
            .data
            .par_chunks(hw)
            .map(|plane| match mode {
                GlobalPool::Avg => {
                    (plane.iter().map(|&v| v as f64).sum::<f64>() / plane.len() as f64) as f32
                }
                GlobalPool::Max => plane.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            })
            .collect();
        CpuTensor::new(out, &[batch, channels])
    }

    fn linear(
        &self,
        input: &CpuTensor,
        weight: &CpuTensor,
        bias: Option<&CpuTensor>,
        act: Activation,
    ) -> Result<CpuTensor> {
        let [batch, inputs, outputs] = CHECK.linear(
            &input.shape,
            &weight.shape,
            bias.map(|b| b.shape.as_slice()),
        )?;
        let out = self.linear_rows([batch, inputs, outputs], input, weight, bias, act, None);
        CpuTensor::new(out, &[batch, outputs])
    }

    fn sigmoid(&self, input: &CpuTensor, scale: f32, bias: f32) -> Result<CpuTensor> {
        let data = input
            .data
            .iter()
            .map(|&x| crate::backend::sigmoid(scale * x + bias))
            .collect();
        CpuTensor::new(data, &input.shape)
    }

    fn softmax(&self, input: &CpuTensor) -> Result<CpuTensor> {
        let [_, n] = CHECK.softmax(&input.shape)?;
        let mut data = input.data.clone();
        for row in data.chunks_mut(n) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0f32;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum += *v;
            }
            for v in row.iter_mut() {
                *v /= sum;
            }
        }
        CpuTensor::new(data, &input.shape)
    }
}

/// Unfold one image `[C, H, W]` into columns `[C*kh*kw, Ho*Wo]` (zeros where padded). Each
/// output row is written whole: zeros where the kernel tap falls in the padding, a copy (a
/// strided gather for stride > 1) where it falls inside the plane. Per-element bounds checks
/// and a zero fill of the whole buffer made this a fifth of a music screen's time.
fn im2col(
    x: &[f32],
    [channels, h, w]: [usize; 3],
    [kh, kw]: [usize; 2],
    p: &Conv2dParams,
    [ho, wo]: [usize; 2],
    col: &mut Vec<f32>,
) {
    let hw_out = ho * wo;
    col.resize(channels * kh * kw * hw_out, 0.0);
    let [sh, sw] = p.stride;
    let [ph, pw] = p.padding;
    for kj in 0..kw {
        let (lo, hi) = inside(wo, sw, kj as isize - pw as isize, w);
        let first = (lo * sw + kj).saturating_sub(pw);
        for c in 0..channels {
            let plane = &x[c * h * w..(c + 1) * h * w];
            for ki in 0..kh {
                let row = (c * kh + ki) * kw + kj;
                let dst = &mut col[row * hw_out..(row + 1) * hw_out];
                for (oh, dst_row) in dst.chunks_exact_mut(wo).enumerate() {
                    let ih = (oh * sh + ki) as isize - ph as isize;
                    if ih < 0 || ih >= h as isize || lo == hi {
                        dst_row.fill(0.0);
                        continue;
                    }
                    let src_row = &plane[ih as usize * w..(ih as usize + 1) * w];
                    dst_row[..lo].fill(0.0);
                    dst_row[hi..].fill(0.0);
                    if sw == 1 {
                        dst_row[lo..hi].copy_from_slice(&src_row[first..first + hi - lo]);
                    } else {
                        let taps = src_row[first..].iter().step_by(sw);
                        dst_row[lo..hi]
                            .iter_mut()
                            .zip(taps)
                            .for_each(|(d, s)| *d = *s);
                    }
                }
            }
        }
    }
}

/// The output columns `lo..hi` (of `wo`, stride `sw`) whose input column `o·sw + offset` lies
/// inside `0..w`.
fn inside(wo: usize, sw: usize, offset: isize, w: usize) -> (usize, usize) {
    let sw = sw.max(1) as isize;
    let lo = if offset >= 0 {
        0
    } else {
        (-offset + sw - 1) / sw
    };
    let hi = (w as isize - offset + sw - 1).div_euclid(sw).max(0);
    let lo = (lo as usize).min(wo);
    (lo, (hi as usize).clamp(lo, wo))
}

/// Max-pooling of one plane (`w` columns) into `dst` (`wo` columns) in windows that tile it:
/// kernel = stride, no padding (the CNNs' 2x2 pools). Each input row is read once, in order,
/// and the 2-wide case runs without a range per output value (the general loop above cost 12 %
/// of a music screen). The maxima are taken in the general loop's order: the same bits.
fn max_pool_tiles(plane: &[f32], w: usize, [kh, kw]: [usize; 2], dst: &mut [f32], wo: usize) {
    for (oh, dst_row) in dst.chunks_mut(wo).enumerate() {
        dst_row.fill(f32::NEG_INFINITY);
        for row in plane[oh * kh * w..(oh + 1) * kh * w].chunks_exact(w) {
            let row = &row[..wo * kw];
            if kw == 2 {
                for (d, pair) in dst_row.iter_mut().zip(row.chunks_exact(2)) {
                    *d = d.max(pair[0]).max(pair[1]);
                }
            } else {
                for (d, win) in dst_row.iter_mut().zip(row.chunks_exact(kw)) {
                    *d = win.iter().fold(*d, |m, &v| m.max(v));
                }
            }
        }
    }
}

impl CpuBackend {
    /// `[rows, outputs]` of `act(input · weightᵀ + bias)`, plus `residual` (same layout) when
    /// given: the epilogue runs on each block of rows while it is in cache.
    pub(super) fn linear_rows(
        &self,
        [batch, inputs, outputs]: [usize; 3],
        input: &CpuTensor,
        weight: &CpuTensor,
        bias: Option<&CpuTensor>,
        act: Activation,
        residual: Option<&[f32]>,
    ) -> Vec<f32> {
        // Every value is written below (the SGEMMs overwrite, they do not accumulate).
        let mut out = pool::take(batch * outputs);
        if outputs == 0 {
            return out;
        }
        let bias = bias.map(|b| b.data.as_slice());
        // One block of rows per thread (an encoder projects thousands of rows; a classifier's
        // batch is one block): every SGEMM call packs the whole weight, so fewer, taller calls
        // are faster. The epilogue is applied while the block is hot.
        let per_task = batch
            .div_ceil(rayon::current_num_threads())
            .max(LINEAR_MIN_ROWS_PER_TASK);
        let add_residual = |task: usize, dst: &mut [f32]| {
            if let Some(residual) = residual {
                let first = task * per_task * outputs;
                for (y, r) in dst.iter_mut().zip(&residual[first..]) {
                    *y += r;
                }
            }
        };
        if let Some(kernel) = self.weight_kernel() {
            let w = weight.packed(Layout::Rows, kernel);
            out.par_chunks_mut(per_task * outputs)
                .enumerate()
                .for_each(|(task, dst)| {
                    let rows = dst.len() / outputs;
                    let src = &input.data[task * per_task * inputs..][..rows * inputs];
                    w.matmul(src, rows, dst, bias, act);
                    add_residual(task, dst);
                });
            return out;
        }
        out.par_chunks_mut(per_task * outputs)
            .enumerate()
            .for_each(|(task, dst)| {
                let rows = dst.len() / outputs;
                let first = task * per_task * inputs;
                let src = &input.data[first..first + rows * inputs];
                // weightᵀ is read in place: element (k, j) of the [in, out] matrix is
                // weight[j * in + k].
                sgemm(
                    rows,
                    inputs,
                    outputs,
                    src,
                    (inputs, 1),
                    &weight.data,
                    (1, inputs),
                    dst,
                );
                for row in dst.chunks_mut(outputs) {
                    simd::bias_activate(row, bias, act);
                }
                add_residual(task, dst);
            });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiling fast path gives the bits of the definition (each window's maximum folded from
    /// -inf, row by row, left to right), with signed zeros, NaN and infinities among the values
    /// and the plane's last rows and columns left out by the window grid.
    #[test]
    fn tiled_max_pool_is_the_definition_bit_for_bit() {
        let specials = [
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1.5,
            -2.25,
        ];
        for (h, w, kh, kw) in [(9, 7, 2, 2), (10, 13, 3, 2), (8, 11, 2, 3), (5, 5, 1, 1)] {
            let plane: Vec<f32> = (0..h * w)
                .map(|i| match i % 11 {
                    k if k < specials.len() => specials[k],
                    k => (k as f32 - 8.0) * 0.5 + i as f32 * 1e-3,
                })
                .collect();
            let (ho, wo) = (h / kh, w / kw);
            let mut fast = vec![7.0; ho * wo];
            max_pool_tiles(&plane, w, [kh, kw], &mut fast, wo);
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut m = f32::NEG_INFINITY;
                    for r in oh * kh..(oh + 1) * kh {
                        for c in ow * kw..(ow + 1) * kw {
                            m = m.max(plane[r * w + c]);
                        }
                    }
                    assert_eq!(
                        fast[oh * wo + ow].to_bits(),
                        m.to_bits(),
                        "{h}x{w} ({oh}, {ow})"
                    );
                }
            }
        }
    }

    /// im2col as its definition reads, element by element.
    fn naive_im2col(
        x: &[f32],
        [channels, h, w]: [usize; 3],
        [kh, kw]: [usize; 2],
        p: &Conv2dParams,
        [ho, wo]: [usize; 2],
    ) -> Vec<f32> {
        let mut col = vec![0.0; channels * kh * kw * ho * wo];
        for c in 0..channels {
            for ki in 0..kh {
                for kj in 0..kw {
                    for oh in 0..ho {
                        for ow in 0..wo {
                            let ih = (oh * p.stride[0] + ki) as isize - p.padding[0] as isize;
                            let iw = (ow * p.stride[1] + kj) as isize - p.padding[1] as isize;
                            if (0..h as isize).contains(&ih) && (0..w as isize).contains(&iw) {
                                let row = (c * kh + ki) * kw + kj;
                                col[row * ho * wo + oh * wo + ow] =
                                    x[c * h * w + ih as usize * w + iw as usize];
                            }
                        }
                    }
                }
            }
        }
        col
    }

    #[test]
    fn im2col_matches_its_definition_for_every_stride_padding_and_kernel() {
        let mut col = vec![7.0; 3]; // a reused buffer holds stale values: all are overwritten
        for (channels, h, w) in [(2usize, 5usize, 7usize), (1, 3, 2), (3, 9, 4)] {
            let x: Vec<f32> = (0..channels * h * w).map(|i| i as f32 + 1.0).collect();
            for (kh, kw) in [(1usize, 1usize), (3, 3), (5, 5), (1, 4), (3, 1)] {
                for stride in [[1usize, 1usize], [2, 2], [1, 3], [3, 2]] {
                    // (before, after): symmetric as PyTorch pads, 1 before 2 after as Spleeter.
                    for (padding, padding_end) in [
                        ([0usize, 0usize], [0usize, 0usize]),
                        ([1, 1], [1, 1]),
                        ([2, 2], [2, 2]),
                        ([0, 3], [0, 3]),
                        ([1, 1], [2, 2]),
                    ] {
                        let hp = h + padding[0] + padding_end[0];
                        let wp = w + padding[1] + padding_end[1];
                        if hp < kh || wp < kw {
                            continue;
                        }
                        let (ho, wo) = ((hp - kh) / stride[0] + 1, (wp - kw) / stride[1] + 1);
                        let p = Conv2dParams {
                            stride,
                            padding,
                            padding_end,
                        };
                        let shape = ([channels, h, w], [kh, kw], [ho, wo]);
                        im2col(&x, shape.0, shape.1, &p, shape.2, &mut col);
                        let want = naive_im2col(&x, shape.0, shape.1, &p, shape.2);
                        assert_eq!(col, want, "{shape:?} stride {stride:?} padding {padding:?}");
                    }
                }
            }
        }
    }
}
