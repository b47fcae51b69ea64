//! Re-screening one flagged file for the review page: its window scores (when the report has
//! none), its most suspicious window, and that window explained (spectrogram, occlusion map
//! over frequency bands, audio excerpt).

use std::path::Path;

use crate::audio::{self, NetworkWindows};
use crate::backend::LogSpec;
use crate::model::{Explanation, Scorer};
use crate::report::Segment;
use crate::{Error, Result};

/// What the page shows for one flagged file.
pub struct Detail {
    /// Window scores over the file: from the report's segments, or from re-screening.
    pub windows: Vec<Segment>,
    /// The most suspicious window (start s, end s).
    pub window: (f64, f64),
    pub explanation: Explanation,
    /// The window's samples as the explaining network takes them, at its rate (for an
    /// embedded excerpt).
    pub samples: Vec<f32>,
}

/// Decode `path` as the screen did and explain its most suspicious window. With `segments`
/// (from the report), the window with the highest reported score is taken without scoring the
/// others; without, every window is scored here.
pub fn explain_file(
    scorer: &dyn Scorer,
    path: &Path,
    segments: Option<&[Segment]>,
    bands: usize,
) -> Result<Detail> {
    let info = scorer.info();
    let rate = info.sample_rate as f64;
    // Reported windows: only the best one is needed.
    let wanted = segments.and_then(|s| {
        s.iter()
            .max_by(|a, b| a.score.total_cmp(&b.score))
            .map(|best| (best.start_s * rate).round() as u64)
    });
    let mut scored: Vec<Segment> = Vec::new();
    let mut best: Option<(f32, NetworkWindows)> = None;
    let mut pending: Vec<NetworkWindows> = Vec::new();
    let mut flush = |pending: &mut Vec<NetworkWindows>,
                     best: &mut Option<(f32, NetworkWindows)>| {
        if pending.is_empty() {
            return Ok(());
        }
        let scores = crate::model::score_now(scorer, pending)?;
        for (i, (w, s)) in pending
            .drain(..)
            .zip(scores.windows.iter().copied())
            .enumerate()
        {
            scored.push(Segment {
                start_s: w.start as f64 / rate,
                end_s: w.end as f64 / rate,
                score: s,
                members: scores.members.get(i).cloned(),
            });
            if best.as_ref().is_none_or(|(b, _)| s > *b) {
                *best = Some((s, w));
            }
        }
        Ok::<(), Error>(())
    };
    audio::read_windows(path, info, &mut |w| {
        match wanted {
            Some(start) => {
                if best.is_none() && w.start.abs_diff(start) <= 1 {
                    best = Some((f32::NAN, w));
                }
            }
            None => {
                pending.push(w);
                if pending.len() == crate::screen::pipeline::DEFAULT_BATCH {
                    flush(&mut pending, &mut best)?;
                }
            }
        }
        Ok(())
    })?;
    flush(&mut pending, &mut best)?;
    let (_, window) = best.ok_or_else(|| {
        Error::Audio(match wanted {
            Some(_) => {
                "the report's most suspicious window is not in the file as decoded now (has \
                 the file changed since it was screened?)"
                    .to_string()
            }
            None => "no window with active signal to explain".to_string(),
        })
    })?;
    let mut window = window;
    let samples = window.inputs.swap_remove(0);
    let explanation = scorer.explain(&samples, bands)?;
    let windows = match segments {
        Some(s) => s.to_vec(),
        None => scored,
    };
    Ok(Detail {
        windows,
        window: (window.start as f64 / rate, window.end as f64 / rate),
        explanation,
        samples,
    })
}

/// Decibels per unit of the front-end's log values (so every model's spectrogram shows the
/// same dynamic range).
pub fn db_per_unit(log: LogSpec, power: f32) -> f32 {
    // A value is log(|X|^power); decibels of power are 10·log10(|X|^2).
    let per_log10 = 20.0 / power.max(1e-3);
    match log {
        LogSpec::Log10 { .. } | LogSpec::Log10Clamp { .. } => per_log10,
        LogSpec::Ln { .. } => per_log10 / std::f32::consts::LN_10,
        LogSpec::Db { .. } => 2.0 / power.max(1e-3),
    }
}
