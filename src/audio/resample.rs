//! Streaming sample-rate conversion to the model's rate (rubato's FFT resampler: a fixed
//! ratio, band-limited, fast). Output is trimmed of the resampler's delay and has exactly
//! `round(input_len · to / from)` samples.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler, WindowFunction};

use crate::{Error, Result};

/// Minimum FFT length on the output side. rubato's anti-aliasing filter is as long as its FFT;
/// with the default sub-chunking a 192 kHz → 16 kHz filter would be only ~22 taps and
/// attenuate audible bands (measured: 1 kHz −0.15 dB, 5 kHz −24 dB). 1024 keeps the passband flat.
const MIN_FFT_OUT: usize = 1024;

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

pub struct MonoResampler {
    inner: Option<Fft<f32>>,
    from: u32,
    to: u32,
    pending: Vec<f32>,
    out: Vec<f32>,
    delay_left: usize,
    consumed: u64,
    produced: u64,
}

impl MonoResampler {
    pub fn new(from: u32, to: u32) -> Result<Self> {
        let inner = if from == to {
            None
        } else {
            let (f, t) = (from as usize, to as usize);
            let g = gcd(f, t);
            let chunk = MIN_FFT_OUT.div_ceil(t / g) * (f / g);
            let fft = Fft::<f32>::new_custom(
                f,
                t,
                chunk,
                1,
                1,
                WindowFunction::BlackmanHarris2,
                FixedSync::Input,
            )
            .map_err(|e| Error::Audio(format!("cannot resample {from} Hz → {to} Hz ({e})")))?;
            Some(fft)
        };
        let delay_left = inner.as_ref().map_or(0, |r| r.output_delay());
        let out_len = inner.as_ref().map_or(0, |r| r.output_frames_max());
        Ok(MonoResampler {
            inner,
            from,
            to,
            pending: Vec::new(),
            out: vec![0.0; out_len],
            delay_left,
            consumed: 0,
            produced: 0,
        })
    }

    /// Feed source samples; resampled samples go to `emit` as they become available.
    pub fn push(
        &mut self,
        input: &[f32],
        emit: &mut dyn FnMut(&[f32]) -> Result<()>,
    ) -> Result<()> {
        self.consumed += input.len() as u64;
        if self.inner.is_none() {
            self.produced += input.len() as u64;
            return emit(input);
        }
        self.pending.extend_from_slice(input);
        // Chunks are read at an offset and the consumed prefix dropped once at the end: draining
        // it chunk by chunk moved the rest of a long push every time (quadratic in its length).
        let mut at = 0;
        loop {
            let need = self.inner.as_ref().map_or(0, |r| r.input_frames_next());
            if self.pending.len() - at < need {
                break;
            }
            at += self.run(at, need, None, u64::MAX, emit)?;
        }
        self.pending.drain(..at);
        Ok(())
    }

    /// Back to the state of a new resampler (same rates), without planning its FFTs again.
    pub fn reset(&mut self) {
        if let Some(r) = self.inner.as_mut() {
            r.reset();
        }
        self.pending.clear();
        self.delay_left = self.inner.as_ref().map_or(0, |r| r.output_delay());
        self.consumed = 0;
        self.produced = 0;
    }

    /// Resample a whole buffer as [`resample_buffer`] does, reusing this resampler (reset first).
    pub fn resample_whole(&mut self, input: &[f32]) -> Result<Vec<f32>> {
        self.reset();
        let mut out = Vec::with_capacity(input.len() * self.to as usize / self.from as usize + 1);
        let mut keep = |x: &[f32]| {
            out.extend_from_slice(x);
            Ok(())
        };
        self.push(input, &mut keep)?;
        self.finish(&mut keep)?;
        Ok(out)
    }

    /// Flush the tail (zero-padded internally) and emit the remaining samples.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[f32]) -> Result<()>) -> Result<()> {
        if self.inner.is_none() {
            return Ok(());
        }
        let expected = ((self.consumed as u128 * self.to as u128 + self.from as u128 / 2)
            / self.from as u128) as u64;
        let mut partial = self.pending.len();
        while self.produced < expected {
            self.run(0, partial, Some(partial), expected, emit)?;
            self.pending.clear();
            partial = 0;
        }
        Ok(())
    }

    /// One resampler call on `pending[at..at + frames]`, emitting output up to a total of
    /// `limit` samples; returns input frames consumed.
    fn run(
        &mut self,
        at: usize,
        frames: usize,
        partial: Option<usize>,
        limit: u64,
        emit: &mut dyn FnMut(&[f32]) -> Result<()>,
    ) -> Result<usize> {
        let Some(resampler) = self.inner.as_mut() else {
            return Ok(0);
        };
        let fail = |e: &dyn std::fmt::Display| Error::Audio(format!("resampler failed ({e})"));
        let need = resampler.input_frames_next();
        // A partial call still reads `need` frames of buffer; pad with zeros beyond `frames`.
        self.pending.resize(self.pending.len().max(at + need), 0.0);
        let input =
            InterleavedSlice::new(&self.pending[at..at + need], 1, need).map_err(|e| fail(&e))?;
        let out_frames = self.out.len();
        let mut output =
            InterleavedSlice::new_mut(&mut self.out, 1, out_frames).map_err(|e| fail(&e))?;
        let indexing = Indexing {
            partial_len: partial,
            ..Indexing::new()
        };
        let (used, made) = resampler
            .process_into_buffer(&input, &mut output, Some(&indexing))
            .map_err(|e| fail(&e))?;
        let skip = self.delay_left.min(made);
        self.delay_left -= skip;
        let room = limit
            .saturating_sub(self.produced)
            .min((made - skip) as u64) as usize;
        self.produced += room as u64;
        emit(&self.out[skip..skip + room])?;
        Ok(used.min(frames))
    }
}

/// Resample a whole buffer (`round(len · to / from)` samples out): the streaming resampler
/// run once over it, zero-padded beyond both ends.
pub fn resample_buffer(input: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    MonoResampler::new(from, to)?.resample_whole(input)
}
