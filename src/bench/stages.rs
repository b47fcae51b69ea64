//! Timing one model's stages on one backend: one batch of synthetic windows through the
//! front-end alone, the classifier alone and the whole forward pass, with the scores kept for
//! the comparison with the CPU backend. A last figure repeats the whole forward pass with one
//! batch always in flight, as `screen` queues batches, so a backend that overlaps uploads with
//! compute (CUDA) shows the gain.

use std::time::{Duration, Instant};

use crate::Result;
use crate::backend::{Backend, DeviceTensor};
use crate::model::{Model, ModelSpec};

/// Median wall time of each stage for one batch (every timing ends with a readback, so GPU
/// work is complete).
#[derive(Debug, Clone)]
pub struct StageTimes {
    /// Windows to the classifier's input (the front-end, and the encoder where there is one);
    /// `None` for a fused model (its members' stages are timed as those models).
    pub frontend: Option<Duration>,
    /// The classifier alone; `None` for an encoder front-end without a classifier.
    pub classifier: Option<Duration>,
    /// The whole forward pass (to scores, or to the encoder's output without a classifier).
    pub forward: Duration,
    /// Mean time per batch with the next batch submitted before the previous is collected
    /// (`None` without a classifier: nothing to queue).
    pub queued: Option<Duration>,
    /// Calibrated scores of the batch (the encoder's output without a classifier), for the
    /// comparison with the CPU backend.
    pub scores: Vec<f32>,
}

/// Deterministic test signal: two tones and a chirp-like term, different per window, over a
/// noise floor at about -60 dB. The floor is there because real recordings have one: on pure
/// tones most bins sit at the log floor, where f32 itself is ill-conditioned (PyTorch f32 and
/// f64 give music scores 3.2e-3 apart there, 3.7e-5 with this floor), so "max |d| vs cpu"
/// would measure rounding rather than a backend.
pub fn synthetic_windows(count: usize, len: usize) -> Vec<f32> {
    let mut state = 0x2545_f491u32;
    (0..count * len)
        .map(|i| {
            let (w, t) = ((i / len) as f32, (i % len) as f32);
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            0.3 * (t * (0.013 + 0.001 * w)).sin()
                + 0.2 * (t * 0.291).sin()
                + 0.05 * (t * t * 1e-7).sin()
                + 3.5e-3 * noise
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Time `spec` on `backend` over `repeats` runs of a batch of `windows` (after one warm-up).
pub fn time_stages<B: Backend>(
    backend: &B,
    spec: ModelSpec,
    windows: &[f32],
    batch: usize,
    repeats: usize,
) -> Result<StageTimes> {
    let len = spec.facts.window_samples;
    let headless = spec.facts.outputs == 0;
    let model = Model::new(backend, spec)?;
    let signal = backend.upload(windows, &[batch, len])?;
    let features = model.features(backend, &signal)?;
    let feature_shape = features.shape().to_vec();
    let host_features = backend.download(&features)?; // also the warm-up (pipelines, pools)
    let scores = if headless {
        host_features.clone()
    } else {
        model.scores(backend, windows, batch)?
    };
    let (mut fe, mut cl, mut fw) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        let f = model.features(backend, &signal)?;
        backend.download(&f)?;
        fe.push(t.elapsed());
        if headless {
            continue;
        }

        let t = Instant::now();
        let x = backend.upload(&host_features, &feature_shape)?;
        let out = model.classify(backend, x)?;
        backend.download(&out)?;
        cl.push(t.elapsed());

        let t = Instant::now();
        model.scores(backend, windows, batch)?;
        fw.push(t.elapsed());
    }
    if headless {
        let frontend = median(fe);
        return Ok(StageTimes {
            frontend: Some(frontend),
            classifier: None,
            forward: frontend,
            queued: None,
            scores,
        });
    }
    let runs = repeats.max(1);
    let t = Instant::now();
    let mut in_flight = None;
    for _ in 0..runs {
        let next = model.submit(backend, windows, batch)?;
        if let Some(previous) = in_flight.replace(next) {
            model.collect(backend, previous)?;
        }
    }
    if let Some(last) = in_flight {
        model.collect(backend, last)?;
    }
    let queued = t.elapsed() / runs as u32;
    Ok(StageTimes {
        frontend: Some(median(fe)),
        classifier: Some(median(cl)),
        forward: median(fw),
        queued: Some(queued),
        scores,
    })
}

/// Time a fused model (or any bound scorer) as `screen` runs it: the whole forward pass, then
/// with one batch always in flight.
pub fn time_scorer(
    scorer: &dyn crate::model::Scorer,
    inputs: &[Vec<f32>],
    batch: usize,
    repeats: usize,
) -> Result<StageTimes> {
    let inputs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let run = || {
        scorer
            .submit(&inputs, batch)
            .and_then(|s| scorer.collect(s))
    };
    let scores = run()?; // the warm-up
    let mut fw = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        run()?;
        fw.push(t.elapsed());
    }
    let runs = repeats.max(1);
    let t = Instant::now();
    let mut in_flight = None;
    for _ in 0..runs {
        let next = scorer.submit(&inputs, batch)?;
        if let Some(previous) = in_flight.replace(next) {
            scorer.collect(previous)?;
        }
    }
    if let Some(last) = in_flight {
        scorer.collect(last)?;
    }
    Ok(StageTimes {
        frontend: None,
        classifier: None,
        forward: median(fw),
        queued: Some(t.elapsed() / runs as u32),
        scores: scores.windows,
    })
}
