//! Fused detectors: a composite of embedded networks that score the same windows, whose
//! calibrated logits are combined, so that detectors which fail on different attacks cover
//! each other (e.g. the music CNN catches Griffin-Lim, the Whisper head DSP vocoders).
//!
//! A fused model file holds no network of its own: it names its members, their weights, a
//! bias, the windows and the threshold ([`FusionConfig`]). Each member is planned for those
//! windows at its own rate; the decode workers hand every member its windows at that rate
//! (`audio::read_windows`). All members run on one backend.

use super::config::{Cascade, FusionConfig};
use super::forward::{Model, PendingScores};
use super::info::DetectorInfo;
use super::network::ModelSpec;
use super::{Explanation, Scorer, Scores, Submitted};
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
            segment_rule: c.segment_rule.clone(),
            sample_rate: c.sample_rate,
            window: c.window.clone(),
            window_samples: self.window_samples,
            hop_samples: self.hop_samples,
            min_samples: self.min_samples,
            networks: self.members.iter().map(|m| m.spec.facts.clone()).collect(),
            cascade: c.fusion.cascade.is_some(),
        }
    }
}

/// `logit(p)` with `p` kept off 0 and 1 (see [`P_EPS`]).
fn logit(p: f32) -> f64 {
    let p = f64::from(p).clamp(P_EPS, 1.0 - P_EPS);
    (p / (1.0 - p)).ln()
}

fn sigmoid(z: f64) -> f32 {
    (1.0 / (1.0 + (-z).exp())) as f32
}

/// A fusion bound to one backend, shared by its members.
pub(super) struct Fused<B: Backend> {
    backend: B,
    info: DetectorInfo,
    members: Vec<(Model<B>, f32)>,
    bias: f32,
    /// The cascade's band and which members it defers (`deferred[k]` for member k).
    cascade: Option<(Cascade, Vec<bool>)>,
}

/// A fused batch in flight: the members that run on every window, queued; and the deferred
/// members' windows, kept until the cheap members' scores say which of them are needed.
struct FusedBatch<B: Backend> {
    pending: Vec<Option<PendingScores<B>>>,
    deferred_inputs: Vec<Option<Vec<f32>>>,
    count: usize,
}

impl<B: Backend> Fused<B> {
    /// Upload every member's weights to `backend` (their host copies are dropped).
    pub(super) fn new(backend: B, spec: FusionSpec) -> Result<Self> {
        let info = spec.info();
        let bias = spec.config.fusion.bias;
        let cascade = spec.config.fusion.cascade.clone().map(|c| {
            let deferred = spec
                .config
                .fusion
                .members
                .iter()
                .map(|m| c.deferred.contains(&m.model))
                .collect();
            (c, deferred)
        });
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
            cascade,
        })
    }

    fn is_deferred(&self, member: usize) -> bool {
        self.cascade.as_ref().is_some_and(|(_, d)| d[member])
    }

    /// Score `count` windows by member `k` at once (submit and wait).
    fn score_now(&self, k: usize, windows: &[f32], count: usize) -> Result<Vec<f32>> {
        let model = &self.members[k].0;
        let pending = model.submit(&self.backend, windows, count)?;
        model.collect(&self.backend, pending)
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
        let mut batch = FusedBatch::<B> {
            pending: Vec::new(),
            deferred_inputs: Vec::new(),
            count,
        };
        for (k, ((model, _), windows)) in self.members.iter().zip(inputs).enumerate() {
            if self.is_deferred(k) {
                batch.pending.push(None);
                batch.deferred_inputs.push(Some(windows.to_vec()));
            } else {
                batch
                    .pending
                    .push(Some(model.submit(&self.backend, windows, count)?));
                batch.deferred_inputs.push(None);
            }
        }
        Ok(Submitted(Box::new(batch)))
    }

    fn collect(&self, submitted: Submitted) -> Result<Scores> {
        let batch = submitted.0.downcast::<FusedBatch<B>>().map_err(|_| {
            crate::Error::backend(self.backend_name(), "collect: batch of another scorer")
        })?;
        let FusedBatch {
            pending,
            deferred_inputs,
            count,
        } = *batch;
        // members[window][k]: the members that ran on every window first.
        let mut members = vec![vec![None; self.members.len()]; count];
        for (k, p) in pending.into_iter().enumerate() {
            if let Some(p) = p {
                let scores = self.members[k].0.collect(&self.backend, p)?;
                check_count(self.backend_name(), &scores, count)?;
                for (row, s) in members.iter_mut().zip(scores) {
                    row[k] = Some(s);
                }
            }
        }
        let partial = |row: &[Option<f32>]| -> f64 {
            row.iter()
                .zip(&self.members)
                .filter_map(|(p, (_, w))| p.map(|p| f64::from(*w) * logit(p)))
                .sum::<f64>()
                + f64::from(self.bias)
        };
        let Some((cascade, _)) = &self.cascade else {
            let windows = members.iter().map(|row| sigmoid(partial(row))).collect();
            return Ok(Scores { windows, members });
        };
        // The windows the cheap members leave open run through the deferred ones, as one
        // smaller batch.
        let open: Vec<usize> = (0..count)
            .filter(|&i| {
                let z = partial(&members[i]) as f32;
                (cascade.lo..=cascade.hi).contains(&z)
            })
            .collect();
        if !open.is_empty() {
            for (k, windows) in deferred_inputs.iter().enumerate() {
                let Some(windows) = windows else { continue };
                let len = windows.len() / count.max(1);
                let gathered: Vec<f32> = open
                    .iter()
                    .flat_map(|&i| windows[i * len..(i + 1) * len].iter().copied())
                    .collect();
                let scores = self.score_now(k, &gathered, open.len())?;
                check_count(self.backend_name(), &scores, open.len())?;
                for (&i, s) in open.iter().zip(scores) {
                    members[i][k] = Some(s);
                }
            }
        }
        let windows = members
            .iter()
            .map(|row| {
                let z = partial(row);
                if row.iter().all(Option::is_some) {
                    sigmoid(z)
                } else if z < f64::from(cascade.lo) {
                    sigmoid(z + f64::from(cascade.fill_below))
                } else {
                    sigmoid(z + f64::from(cascade.fill_above))
                }
            })
            .collect();
        Ok(Scores { windows, members })
    }

    /// The first member's spectrogram and occlusion map (`window` at its rate).
    fn explain(&self, window: &[f32], bands: usize) -> Result<Explanation> {
        self.members[0].0.explain(&self.backend, window, bands)
    }
}

/// An error unless a member returned one score per window.
fn check_count(backend: &'static str, scores: &[f32], count: usize) -> Result<()> {
    if scores.len() == count {
        Ok(())
    } else {
        Err(crate::Error::backend(
            backend,
            format!(
                "a member returned {} scores for {count} windows",
                scores.len()
            ),
        ))
    }
}
