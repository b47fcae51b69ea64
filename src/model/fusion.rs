//! Fused detectors: a composite of embedded networks that score the same windows, whose
//! calibrated logits are combined, so that detectors which fail on different attacks cover
//! each other (e.g. the music CNN catches Griffin-Lim, the Whisper head DSP vocoders).
//!
//! A fused model file holds no network of its own: it names its members, their weights, a
//! bias, the windows and the threshold ([`FusionConfig`]). Each member is planned for those
//! windows at its own rate; the decode workers hand every member its windows at that rate
//! (`audio::read_windows`). All members run on one backend.

use super::config::FusionConfig;
use super::forward::{Model, PendingScores};
use super::info::DetectorInfo;
use super::network::ModelSpec;
use super::{Explanation, Scorer, Submitted};
use crate::Result;
use crate::backend::Backend;

/// A probability this close to 0 or 1 is taken as its logit bound (f32 scores saturate at 1.0
/// from a logit of about 17, where the logit itself is lost).
const P_EPS: f64 = 1e-7;

/// A loaded fused model: its config and its members, each planned for the fused windows.
#[derive(Debug, Clone)]
pub struct FusionSpec {
    pub config: FusionConfig,
    pub members: Vec<FusedMember>,
    /// Samples per window / between windows / minimum accepted, at the fused rate.
    pub window_samples: usize,
    pub hop_samples: usize,
    pub min_samples: usize,
}

/// One network of a fusion and its weight.
#[derive(Debug, Clone)]
pub struct FusedMember {
    pub spec: ModelSpec,
    pub weight: f32,
}

impl FusionSpec {
    pub fn info(&self) -> DetectorInfo {
        let c = &self.config;
        DetectorInfo {
            id: c.id.clone(),
            threshold: c.threshold,
            aggregation: c.aggregation,
            sample_rate: c.sample_rate,
            window: c.window.clone(),
            window_samples: self.window_samples,
            hop_samples: self.hop_samples,
            min_samples: self.min_samples,
            networks: self.members.iter().map(|m| m.spec.facts.clone()).collect(),
        }
    }
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

/// A fusion bound to one backend, shared by its members.
pub(super) struct Fused<B: Backend> {
    backend: B,
    info: DetectorInfo,
    members: Vec<(Model<B>, f32)>,
    bias: f32,
}

impl<B: Backend> Fused<B> {
    /// Upload every member's weights to `backend` (their host copies are dropped).
    pub(super) fn new(backend: B, spec: FusionSpec) -> Result<Self> {
        let info = spec.info();
        let bias = spec.config.fusion.bias;
        let members = spec
            .members
            .into_iter()
            .map(|m| Ok((Model::new(&backend, m.spec)?, m.weight)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Fused {
            backend,
            info,
            members,
            bias,
        })
    }
}

impl<B: Backend + 'static> Scorer for Fused<B> {
    fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    fn tensors_on_host(&self) -> bool {
        self.backend.tensors_on_host()
    }

    fn info(&self) -> &DetectorInfo {
        &self.info
    }

    fn submit(&self, inputs: &[&[f32]], count: usize) -> Result<Submitted> {
        super::check_inputs(self.backend.name(), inputs, self.members.len())?;
        let pending = self
            .members
            .iter()
            .zip(inputs)
            .map(|((model, _), windows)| model.submit(&self.backend, windows, count))
            .collect::<Result<Vec<PendingScores<B>>>>()?;
        Ok(Submitted(Box::new(pending)))
    }

    fn collect(&self, submitted: Submitted) -> Result<Vec<f32>> {
        let pending = submitted
            .0
            .downcast::<Vec<PendingScores<B>>>()
            .map_err(|_| {
                crate::Error::backend(self.backend_name(), "collect: batch of another scorer")
            })?;
        let scores = self
            .members
            .iter()
            .zip(*pending)
            .map(|((model, weight), p)| Ok((model.collect(&self.backend, p)?, *weight)))
            .collect::<Result<Vec<_>>>()?;
        let windows = scores.first().map_or(0, |(s, _)| s.len());
        Ok((0..windows)
            .map(|i| fuse(scores.iter().map(|(s, w)| (s[i], *w)), self.bias))
            .collect())
    }

    /// The first member's spectrogram and occlusion map (`window` at its rate).
    fn explain(&self, window: &[f32], bands: usize) -> Result<Explanation> {
        self.members[0].0.explain(&self.backend, window, bands)
    }
}
