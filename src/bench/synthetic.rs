//! `bench` without a catalog: one batch of synthetic windows per model and backend; per stage
//! the median time, and the largest score difference from the CPU backend on the same batch
//! (for an encoder front-end without a classifier: its output's largest difference).

use std::io::Write;
use std::time::Duration;

use super::{BenchJob, StageTimes, backends_to_time, synthetic_windows, time_stages};
use crate::backend::{self, Backend, BackendKind, WithBackend};
use crate::model::{self, Detector, ModelSpec};
use crate::screen::pipeline::{DEFAULT_BATCH, check_batch};

pub(super) fn run(job: &BenchJob, out: &mut dyn Write) -> anyhow::Result<()> {
    let detectors = match &job.model {
        Some(m) => vec![model::load(m)?],
        None => model::EMBEDDED
            .iter()
            .map(|(name, _)| model::load(name))
            .collect::<crate::Result<Vec<_>>>()?,
    };
    let detectors: Vec<Detector> = detectors
        .into_iter()
        .map(|d| if job.exact { d.exact() } else { d })
        .collect();
    let batch = job.batch.unwrap_or(DEFAULT_BATCH).max(1);
    for detector in &detectors {
        // Checked as for the CPU backend, the strictest bound (activations in host memory).
        check_batch(&detector.info(), batch, "cpu", true)?;
    }
    writeln!(
        out,
        "one batch of {batch} synthetic windows, median of {} runs (each ends with a readback)",
        job.repeats
    )?;
    writeln!(
        out,
        "{:<20} {:<8} {:>12} {:>14} {:>12} {:>11} {:>11} {:>11} {:>14}",
        "model",
        "backend",
        "frontend ms",
        "classifier ms",
        "forward ms",
        "queued ms",
        "windows/s",
        "x realtime",
        "max |d| vs cpu"
    )?;
    for detector in detectors {
        let info = detector.info();
        let windows = synthetic_windows(batch, info.window_samples);
        let hop = info.window.hop_seconds;
        let mut cpu_scores: Option<Vec<f32>> = None;
        for kind in backends_to_time(&job.backends) {
            let t = match time_on(kind, detector.clone(), &windows, batch, job.repeats) {
                Ok(t) => t,
                Err(e) => {
                    writeln!(out, "{:<20} {:<8} unavailable: {e}", info.id, kind.name())?;
                    continue;
                }
            };
            if kind == BackendKind::Cpu {
                cpu_scores = Some(t.scores.clone());
            }
            let diff = cpu_scores.as_ref().map_or("-".to_string(), |c| {
                let d = c
                    .iter()
                    .zip(&t.scores)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                format!("{d:.2e}")
            });
            let per_s = batch as f64 / t.forward.as_secs_f64();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            let maybe_ms =
                |d: Option<Duration>| d.map_or("-".to_string(), |d| format!("{:.2}", ms(d)));
            writeln!(
                out,
                "{:<20} {:<8} {:>12} {:>14} {:>12.2} {:>11} {:>11.1} {:>11.0} {:>14}",
                info.id,
                kind.name(),
                maybe_ms(t.frontend),
                maybe_ms(t.classifier),
                ms(t.forward),
                maybe_ms(t.queued),
                per_s,
                per_s * hop,
                diff
            )?;
        }
    }
    Ok(())
}

/// Open backend `kind` and time `detector` on it (`auto` times the CPU backend); a fusion is
/// timed as `screen` runs it, each member given the windows at its own rate.
fn time_on(
    kind: BackendKind,
    detector: Detector,
    windows: &[f32],
    batch: usize,
    repeats: usize,
) -> crate::Result<StageTimes> {
    let spec = match detector {
        Detector::Network(spec) => spec,
        fusion @ Detector::Fusion(_) => {
            let info = fusion.info();
            let mut inputs = vec![Vec::new(); info.networks.len()];
            let mut network_inputs = crate::audio::NetworkInputs::new(&info)?;
            for window in windows.chunks_exact(info.window_samples) {
                let each = network_inputs.of(window.to_vec())?;
                inputs
                    .iter_mut()
                    .zip(each)
                    .for_each(|(all, x)| all.extend(x));
            }
            let scorer = model::bind(kind, fusion)?;
            return super::stages::time_scorer(scorer.as_ref(), &inputs, batch, repeats);
        }
    };
    let kind = match kind {
        BackendKind::Auto => BackendKind::Cpu,
        kind => kind,
    };
    backend::open(
        kind,
        TimeStages {
            spec,
            windows,
            batch,
            repeats,
        },
    )
}

/// [`time_stages`] once the backend is open.
struct TimeStages<'a> {
    spec: ModelSpec,
    windows: &'a [f32],
    batch: usize,
    repeats: usize,
}

impl WithBackend for TimeStages<'_> {
    type Output = StageTimes;

    fn run<B: Backend + 'static>(self, backend: B) -> crate::Result<StageTimes> {
        time_stages(&backend, self.spec, self.windows, self.batch, self.repeats)
    }
}
