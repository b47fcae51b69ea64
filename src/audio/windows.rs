//! Cutting a stream into fixed windows with hop, holding at most about two windows of audio.
//!
//! Rules (documented in README "Windows and padding"):
//! - windows start at 0, hop, 2·hop, … while they fit entirely;
//! - if audio remains after the last full window, one more window is aligned to the end of
//!   the file, so every sample is scored;
//! - a file shorter than one window but at least `min_samples` long is padded to one window
//!   (repeat or zeros, per the model); shorter files are errors.

use crate::model::config::PadMode;
use crate::{Error, Result};

/// One window of `len` samples at the model rate; `start..end` is the span of real audio it
/// covers (end - start < len only for a padded short file).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start: u64,
    pub end: u64,
    pub samples: Vec<f32>,
}

pub struct Windower {
    len: usize,
    hop: usize,
    min_samples: usize,
    pad: PadMode,
    /// Recent audio; `buf[0]` is absolute sample `buf_start`.
    buf: Vec<f32>,
    buf_start: u64,
    next_start: u64,
    total: u64,
    last_end: u64,
}

impl Windower {
    pub fn new(len: usize, hop: usize, min_samples: usize, pad: PadMode) -> Self {
        Windower {
            len,
            hop: hop.max(1),
            min_samples: min_samples.max(1),
            pad,
            buf: Vec::with_capacity(2 * len),
            buf_start: 0,
            next_start: 0,
            total: 0,
            last_end: 0,
        }
    }

    /// Samples seen so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn slice(&self, start: u64) -> Vec<f32> {
        let i = (start - self.buf_start) as usize;
        self.buf[i..i + self.len].to_vec()
    }

    pub fn push(
        &mut self,
        input: &[f32],
        emit: &mut dyn FnMut(Window) -> Result<()>,
    ) -> Result<()> {
        self.buf.extend_from_slice(input);
        self.total += input.len() as u64;
        let len = self.len as u64;
        while self.next_start + len <= self.total {
            let w = Window {
                start: self.next_start,
                end: self.next_start + len,
                samples: self.slice(self.next_start),
            };
            self.last_end = w.end;
            self.next_start += self.hop as u64;
            emit(w)?;
        }
        // Keep what a later window may need: from the next start, and the last `len` samples
        // for the end-aligned tail window.
        let keep_from = self.next_start.min(self.total.saturating_sub(len));
        // Dropped a window's length at a time: dropping after every push moved the whole kept
        // window each time (a 5 s window for each 1,024-sample packet: most of decoding's time).
        if keep_from >= self.buf_start + len {
            self.buf.drain(..(keep_from - self.buf_start) as usize);
            self.buf_start = keep_from;
        }
        Ok(())
    }

    pub fn finish(self, emit: &mut dyn FnMut(Window) -> Result<()>) -> Result<()> {
        let len = self.len as u64;
        if self.total == 0 {
            return Err(Error::Audio("no audio samples decoded".into()));
        }
        if self.total >= len {
            if self.total > self.last_end {
                let start = self.total - len;
                emit(Window {
                    start,
                    end: self.total,
                    samples: self.slice(start),
                })?;
            }
            return Ok(());
        }
        if (self.total as usize) < self.min_samples {
            return Err(Error::Audio(format!(
                "audio too short: {} samples at the model rate, the model needs at least {}",
                self.total, self.min_samples
            )));
        }
        let mut samples = self.buf.clone();
        match self.pad {
            PadMode::Zeros => samples.resize(self.len, 0.0),
            PadMode::Repeat => {
                while samples.len() < self.len {
                    let take = (self.len - samples.len()).min(self.buf.len());
                    samples.extend_from_slice(&self.buf[..take]);
                }
            }
        }
        emit(Window {
            start: 0,
            end: self.total,
            samples,
        })
    }
}
