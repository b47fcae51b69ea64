//! Audio in: decode (symphonia) → mono → resample to the model rate (rubato) → windows →
//! each window as every network of the model takes it.

pub mod activity;
pub mod decode;
pub mod opus;
pub mod resample;
pub mod windows;

use std::path::Path;

pub use decode::{DecodeStats, StreamInfo};
pub use windows::{Window, Windower};

use crate::Result;
use crate::model::DetectorInfo;

/// One window as the model's networks take it: `inputs[k]` at network k's rate and window
/// length; `start..end` is the audio it covers, in samples at the model's window rate.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkWindows {
    pub start: u64,
    pub end: u64,
    pub inputs: Vec<Vec<f32>>,
}

/// Makes each window (at `info.sample_rate`) into what every network of `info` takes: resampled
/// to its rate on its own (zero-padded beyond both ends) and fitted to its window length. A
/// network at the window rate gets the samples unchanged. One resampler per network at another
/// rate is kept and reset between windows: planning it anew cost more than resampling a window.
pub struct NetworkInputs<'a> {
    info: &'a DetectorInfo,
    resamplers: Vec<Option<resample::MonoResampler>>,
}

impl<'a> NetworkInputs<'a> {
    pub fn new(info: &'a DetectorInfo) -> Result<Self> {
        let resamplers = info
            .networks
            .iter()
            .map(|net| {
                let rate = net.config.sample_rate;
                (rate != info.sample_rate)
                    .then(|| resample::MonoResampler::new(info.sample_rate, rate))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        Ok(NetworkInputs { info, resamplers })
    }

    /// `window` as each network takes it, in the order of `info.networks`.
    pub fn of(&mut self, window: Vec<f32>) -> Result<Vec<Vec<f32>>> {
        let mut window = Some(window);
        let last = self.info.networks.len().saturating_sub(1);
        let mut inputs = Vec::with_capacity(self.info.networks.len());
        for (k, (net, resampler)) in self
            .info
            .networks
            .iter()
            .zip(&mut self.resamplers)
            .enumerate()
        {
            let samples = window.as_ref().expect("taken only by the last network");
            let mut x = if let Some(r) = resampler {
                r.resample_whole(samples)?
            } else if k == last {
                window.take().expect("present until the last network")
            } else {
                samples.clone()
            };
            x.resize(net.window_samples, 0.0);
            inputs.push(x);
        }
        Ok(inputs)
    }
}

/// What the stream was, once it has been read to the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AudioSummary {
    pub info: StreamInfo,
    /// Duration of the source audio in seconds.
    pub duration_s: f64,
    /// Windows sent for scoring.
    pub windows: usize,
    /// Windows left unscored because they held no active signal ([`activity`]).
    pub silent_windows: usize,
    /// Human-readable notes for the report row (skipped packets, NaN samples, truncation).
    pub warnings: Vec<String>,
}

/// Stream `path` decoded to mono and resampled to `rate`: `emit` receives the samples in order,
/// in pieces, as they are decoded (memory: about one decoded packet).
pub fn decode_resampled(
    path: &Path,
    rate: u32,
    emit: &mut dyn FnMut(&[f32]) -> Result<()>,
) -> Result<(StreamInfo, DecodeStats)> {
    let mut resampler: Option<resample::MonoResampler> = None;
    let decoded = decode::decode_mono(path, |info, mono| {
        let r = match &mut resampler {
            Some(r) => r,
            None => resampler.insert(resample::MonoResampler::new(info.sample_rate, rate)?),
        };
        r.push(mono, emit)
    })?;
    if let Some(r) = resampler.as_mut() {
        r.finish(emit)?;
    }
    Ok(decoded)
}

/// Stream `path` into the model's windows; `emit` receives each window in order, as every
/// network of the model takes it ([`NetworkInputs`]).
/// Memory is bounded by about three windows plus one decoded packet, whatever the file length.
pub fn read_windows(
    path: &Path,
    info: &DetectorInfo,
    emit: &mut dyn FnMut(NetworkWindows) -> Result<()>,
) -> Result<AudioSummary> {
    let target = info.sample_rate;
    // Taken before `info` names the stream's facts below.
    let min_samples = info.min_samples as u64;
    let min_s = min_samples as f64 / f64::from(target);
    let mut windower = Windower::new(
        info.window_samples,
        info.hop_samples,
        info.min_samples,
        info.window.pad,
    );
    let mut count = 0usize;
    let mut silent = 0usize;
    let rate = info.sample_rate;
    let gate = std::cell::RefCell::new(activity::SilenceGate::new(rate));
    let mut network_inputs = NetworkInputs::new(info)?;
    let mut counted = |mut w: Window| {
        if !activity::is_active(&w.samples, rate) {
            silent += 1;
            return Ok(());
        }
        activity::fill_digital_silence(&mut w.samples, rate, w.start);
        // Windows are cut from the gated stream; rows report the file's own times.
        let gate = gate.borrow();
        let (start, end) = (gate.source_start(w.start), gate.source_end(w.end));
        count += 1;
        emit(NetworkWindows {
            start,
            end,
            inputs: network_inputs.of(w.samples)?,
        })
    };
    let mut gated = Vec::new();
    let mut feed = |x: &[f32], windower: &mut Windower| {
        gated.clear();
        gate.borrow_mut().push(x, &mut gated);
        windower.push(&gated, &mut counted)
    };
    let (info, stats) = decode_resampled(path, target, &mut |x| feed(x, &mut windower))?;
    let mut tail = Vec::new();
    gate.borrow_mut().finish(&mut tail);
    windower.push(&tail, &mut counted)?;
    // Seconds of audio the file holds, and seconds the gate let through (at the model rate).
    let file_s = stats.frames as f64 / f64::from(info.sample_rate.max(1));
    let active_s = windower.total() as f64 / f64::from(rate);
    let mut short_of_signal = None;
    if gate.borrow().saw_signal() && windower.total() < min_samples && file_s >= min_s {
        // Long enough, but mostly silence: too little signal to judge, like a silent file
        // (verdict no-signal), whichever model; not a broken file.
        silent = silent.max(1);
        short_of_signal = Some(format!(
            "only {active_s:.2} s of active signal ({:.2} s of silence skipped), less than the \
             {min_s:.2} s the model needs: not scored",
            (file_s - active_s).max(0.0)
        ));
    } else if gate.borrow().saw_signal() && windower.total() < min_samples {
        return Err(crate::Error::Audio(format!(
            "audio too short: {file_s:.2} s, the model needs at least {min_s:.2} s"
        )));
    } else if gate.borrow().saw_signal() {
        windower.finish(&mut counted)?;
    } else if stats.frames > 0 {
        // Silent throughout (the gate let nothing through): no window is scored, whatever the
        // length (verdict no-signal). An empty stream still fails below.
        silent = silent.max(1);
    } else {
        windower.finish(&mut counted)?;
    }
    let mut warnings = Vec::new();
    if stats.lost_s > 0.0 || stats.skipped_packets > 0 {
        // Damage mid-file, distinct from a cut-off end (`truncated`).
        let packets = match stats.skipped_packets {
            0 => "damaged data was skipped".to_string(),
            n => format!("{n} undecodable packets were skipped"),
        };
        warnings.push(format!(
            "{packets}: {:.2} s of audio lost mid-file",
            stats.lost_s
        ));
    }
    if stats.nonfinite_samples > 0 {
        warnings.push(format!(
            "{} NaN/Inf samples were replaced by silence",
            stats.nonfinite_samples
        ));
    }
    if stats.clipped_samples > 0 {
        warnings.push(format!(
            "{} samples beyond ±{} (36 dB over full scale) were clipped: corrupt float audio?",
            stats.clipped_samples,
            decode::MAX_ABS_SAMPLE
        ));
    }
    if let Some(t) = stats.truncated {
        warnings.push(t);
    }
    if let Some(note) = short_of_signal {
        warnings.push(note);
    } else if silent > 0 {
        warnings.push(if count == 0 {
            format!(
                "no active signal: every window is digital silence or quieter than {} dBFS",
                activity::ACTIVE_DBFS
            )
        } else {
            format!(
                "{silent} of {} windows held no active signal and were not scored",
                silent + count
            )
        });
    }
    Ok(AudioSummary {
        duration_s: stats.frames as f64 / info.sample_rate as f64,
        info,
        windows: count,
        silent_windows: silent,
        warnings,
    })
}
