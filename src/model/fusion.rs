//! Fused detectors (config `fusion`): several models score the same windows and their
//! calibrated logits are combined, so that detectors which fail on different attacks cover
//! each other (e.g. the music CNN catches Griffin-Lim, the Whisper head DSP vocoders).
//!
//! The pipeline windows audio for the fused model (its rate and window length); each member
//! gets every window resampled to its own rate on the host, and was re-planned for that window
//! length when it was loaded. Members run on the same backend kind as the fused model.

use super::spec::ModelSpec;
use super::{Explanation, Scorer, Submitted};
use crate::Result;
use crate::audio::resample::resample_buffer;

/// A probability this close to 0 or 1 is taken as its logit bound (f32 scores saturate at 1.0
/// from a logit of about 17, where the logit itself is lost).
const P_EPS: f64 = 1e-7;

pub(super) struct Fused {
    /// The fused model's spec, members included (what `spec()` reports).
    spec: ModelSpec,
    primary: Box<dyn Scorer>,
    weight: f32,
    bias: f32,
    members: Vec<(Box<dyn Scorer>, f32)>,
}

struct Pending {
    primary: Submitted,
    members: Vec<Submitted>,
}

impl Fused {
    pub(super) fn new(
        spec: ModelSpec,
        primary: Box<dyn Scorer>,
        members: Vec<(Box<dyn Scorer>, f32)>,
    ) -> Self {
        let fusion = spec.config.fusion.as_ref();
        Fused {
            weight: fusion.map_or(1.0, |f| f.weight),
            bias: fusion.map_or(0.0, |f| f.bias),
            spec,
            primary,
            members,
        }
    }
}

/// `count` windows of `len` samples at `from` Hz, each resampled to `to` Hz and fitted to
/// `out_len` samples (rounding can leave one sample more or less).
pub fn resample_windows(
    windows: &[f32],
    count: usize,
    len: usize,
    from: u32,
    to: u32,
    out_len: usize,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(count * out_len);
    for w in windows.chunks_exact(len).take(count) {
        let mut r = resample_buffer(w, from, to)?;
        r.resize(out_len, 0.0);
        out.extend_from_slice(&r);
    }
    Ok(out)
}

/// The fused score of one window: `sigmoid(Σ weight · logit(p) + bias)` over (p, weight).
pub fn fuse(scores: impl IntoIterator<Item = (f32, f32)>, bias: f32) -> f32 {
    let z: f64 = scores
        .into_iter()
        .map(|(p, w)| {
            let p = f64::from(p).clamp(P_EPS, 1.0 - P_EPS);
            f64::from(w) * (p / (1.0 - p)).ln()
        })
        .sum::<f64>()
        + f64::from(bias);
    (1.0 / (1.0 + (-z).exp())) as f32
}

impl Scorer for Fused {
    fn backend_name(&self) -> &'static str {
        self.primary.backend_name()
    }

    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn submit(&self, windows: &[f32], count: usize) -> Result<Submitted> {
        let primary = self.primary.submit(windows, count)?;
        let mut members = Vec::with_capacity(self.members.len());
        for (member, _) in &self.members {
            let target = member.spec();
            let resampled = resample_windows(
                windows,
                count,
                self.spec.window_samples,
                self.spec.config.sample_rate,
                target.config.sample_rate,
                target.window_samples,
            )?;
            members.push(member.submit(&resampled, count)?);
        }
        Ok(Submitted(Box::new(Pending { primary, members })))
    }

    fn collect(&self, submitted: Submitted) -> Result<Vec<f32>> {
        let pending = submitted.0.downcast::<Pending>().map_err(|_| {
            crate::Error::backend(self.backend_name(), "collect: batch of another scorer")
        })?;
        let primary = self.primary.collect(pending.primary)?;
        let mut members = Vec::with_capacity(self.members.len());
        for ((member, weight), sub) in self.members.iter().zip(pending.members) {
            members.push((member.collect(sub)?, *weight));
        }
        Ok((0..primary.len())
            .map(|i| {
                let own = std::iter::once((primary[i], self.weight));
                let rest = members.iter().map(|(s, w)| (s[i], *w));
                fuse(own.chain(rest), self.bias)
            })
            .collect())
    }

    /// The spectrogram and occlusion map of the fused model's own network (its first member).
    fn explain(&self, window: &[f32], bands: usize) -> Result<Explanation> {
        self.primary.explain(window, bands)
    }
}
