//! Large output buffers recycled between ops. The encoder makes the same few tensors in every
//! block (a `[1600, 2048]` MLP activation is 13 MB); a fresh one costs a page fault and a
//! kernel-side zeroing per 4 KiB on first touch (5.6 % of the Whisper forward in `perf`), a
//! recycled one nothing. A dropped [`CpuTensor`](super::CpuTensor) gives its buffer back.

use std::sync::Mutex;

/// Smaller buffers come cheaply from the allocator's own free lists.
const MIN_LEN: usize = 1 << 16;
/// Buffers kept at most, the oldest dropped first: enough for every shape an encoder block
/// makes, twice (two batches in flight), not a cache of the whole model's history.
const MAX_KEPT: usize = 16;
/// Values kept at most (64 MiB): an encoder block's buffers at batch 8. More made no
/// measurable difference to speed, but did to peak memory.
const MAX_VALUES: usize = 16 << 20;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of `len` values whose contents are unspecified (stale values of an earlier tensor,
/// or zeros): for outputs the op overwrites entirely.
pub fn take(len: usize) -> Vec<f32> {
    if len >= MIN_LEN {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = pool.iter().rposition(|v| v.len() == len) {
            return pool.remove(at);
        }
    }
    vec![0.0; len]
}

/// A copy of `values` in a recycled buffer.
pub fn copy_of(values: &[f32]) -> Vec<f32> {
    let mut out = take(values.len());
    out.copy_from_slice(values);
    out
}

/// Keep `buffer` for a later [`take`] of its length.
pub fn give(buffer: Vec<f32>) {
    if buffer.len() < MIN_LEN {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    pool.push(buffer);
    while pool.len() > MAX_KEPT || pool.iter().map(Vec::len).sum::<usize>() > MAX_VALUES {
        pool.remove(0);
    }
}

/// A work buffer taken from the pool and given back when dropped (per-thread scratch such as
/// a convolution's unfolded columns: a fresh one per task was a page-faulted, zeroed
/// allocation each time).
pub struct Scratch(pub Vec<f32>);

impl Scratch {
    /// `len` values, contents unspecified (see [`take`]).
    pub fn new(len: usize) -> Self {
        Scratch(take(len))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CpuBackend, CpuTensor};
    use crate::backend::{
        Activation, ClassifierOps, Conv2dParams, ConvTranspose2dParams, FrontendOps, LogSpec,
        Normalization, PoolParams, Projection, SeparatorOps, StftParams,
    };

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n as u32)
            .map(|i| {
                let x = (i ^ seed).wrapping_mul(2_654_435_761) >> 8;
                x as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Every op that takes its output (or scratch) from the pool writes each value: run on a
    /// pool stocked with NaN buffers of every length it could take, it gives the bits it gives
    /// on fresh memory. The lengths are odd ones no other test makes.
    #[test]
    fn recycled_buffers_never_show_through() {
        let cpu = CpuBackend::new();
        let poisoned = |lengths: &[usize], op: &dyn Fn() -> Vec<f32>| {
            super::POOL.lock().unwrap().clear();
            let fresh = op();
            for _ in 0..4 {
                for &len in lengths {
                    super::give(vec![f32::NAN; len]);
                }
            }
            let again = op();
            assert!(fresh.iter().all(|v| !v.is_nan()));
            assert_eq!(
                fresh.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                again.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        };
        let tensor = |shape: &[usize], seed| {
            CpuTensor::new(values(shape.iter().product(), seed), shape).unwrap()
        };

        // Convolutions (im2col with padding, and 1x1), pooling, MFM, affine: [2, 3, 67, 331].
        let x = tensor(&[2, 3, 67, 331], 1);
        let w3 = tensor(&[4, 3, 3, 3], 2);
        let w1 = tensor(&[4, 3, 1, 1], 3);
        let bias = tensor(&[4], 4);
        let padded = Conv2dParams::symmetric([1, 1], [1, 1]);
        let plane = 67 * 331;
        let lengths = [2 * 4 * plane, 27 * plane, 2 * 3 * plane, 2 * 2 * plane];
        for (w, p) in [
            (&w3, padded),
            (&w1, Conv2dParams::symmetric([1, 1], [0, 0])),
        ] {
            poisoned(&lengths, &|| {
                cpu.conv2d(&x, w, Some(&bias), &p, Activation::Relu)
                    .unwrap()
                    .data
                    .clone()
            });
        }
        let pool = PoolParams {
            kernel: [2, 2],
            stride: [1, 1],
            padding: [1, 1],
        };
        let pooled = 2 * 3 * 68 * 332;
        poisoned(&[pooled], &|| {
            cpu.max_pool2d(&x, &pool).unwrap().data.clone()
        });
        // The transposed convolution's per-task columns (its output accumulates: fresh zeros).
        let (wt, bias_t) = (tensor(&[3, 2, 5, 5], 11), tensor(&[2], 12));
        let up = ConvTranspose2dParams {
            stride: [2, 2],
            crop: [1, 1],
            crop_end: [2, 2],
        };
        poisoned(&[2 * 5 * 5 * plane], &|| {
            let y = cpu.conv_transpose2d(&x, &wt, Some(&bias_t), &up, Activation::None);
            y.unwrap().data.clone()
        });
        let pairs = tensor(&[2, 4, 67, 331], 5);
        poisoned(&lengths, &|| cpu.mfm(&pairs).unwrap().data.clone());
        let (scale, shift) = (tensor(&[3], 6), tensor(&[3], 7));
        poisoned(&lengths, &|| {
            let affine = cpu.channel_affine(&x, &scale, &shift, Activation::None);
            affine.unwrap().data.clone()
        });

        // Front-end: STFT power, a bin range and a matrix, normalisation.
        let signal = tensor(&[2, 40_000], 8);
        let window = tensor(&[512], 9);
        let stft = StftParams {
            n_fft: 512,
            hop: 128,
            center: true,
            power: 2.0,
            drop_last: false,
            keep_bins: None,
        };
        let frames = 40_000 / 128 + 1;
        let power = cpu.stft_power(&signal, &window, &stft).unwrap();
        let log = LogSpec::Ln { eps: 1e-6 };
        let positive = values(257 * 80, 10).iter().map(|v| v + 1.0).collect();
        let matrix = CpuTensor::new(positive, &[257, 80]).unwrap();
        let lengths = [2 * frames * 257, 2 * frames * 250, 2 * frames * 80];
        poisoned(&lengths, &|| {
            cpu.stft_power(&signal, &window, &stft)
                .unwrap()
                .data
                .clone()
        });
        let bins = Projection::Bins { start: 3, end: 253 };
        poisoned(&lengths, &|| {
            cpu.filterbank_log(&power, bins.clone(), log)
                .unwrap()
                .data
                .clone()
        });
        poisoned(&lengths, &|| {
            let mel = cpu.filterbank_log(&power, Projection::Matrix(&matrix), log);
            mel.unwrap().data.clone()
        });
        let mel = cpu
            .filterbank_log(&power, Projection::Matrix(&matrix), log)
            .unwrap();
        poisoned(&lengths, &|| {
            cpu.normalize(&mel, Normalization::MeanVar)
                .unwrap()
                .data
                .clone()
        });
    }
}
