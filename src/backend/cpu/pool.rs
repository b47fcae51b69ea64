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
