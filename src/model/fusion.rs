//! Fused detectors: a composite of networks (embedded, or files beside the fused one) that
//! score the same windows, whose calibrated logits are combined, so that detectors which fail
//! on different attacks cover each other (e.g. the music CNN catches Griffin-Lim, the Whisper
//! head DSP vocoders).
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

/// A fused batch in flight. Submitted: the members that run on every window are queued, and
/// the deferred members' windows kept until those members' scores say which are needed.
/// Advanced ([`Scorer::advance`]): those scores are in `members`, and the deferred members are
/// queued on the windows left open.
struct FusedBatch<B: Backend> {
    count: usize,
    /// `members[window][k]`: member k's score, as collected.
    members: Vec<Vec<Option<f32>>>,
    /// Queued passes: the member, the windows it scores (`None`: all of them), its scores.
    queued: Vec<(usize, Option<Vec<usize>>, PendingScores<B>)>,
    /// The deferred members' windows (`Some` for member k when deferred), until advanced.
    deferred_inputs: Vec<Option<Vec<f32>>>,
    advanced: bool,
}

impl<B: Backend + 'static> Fused<B> {
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

    fn downcast(&self, submitted: Submitted) -> Result<Box<FusedBatch<B>>> {
        submitted
            .0
            .downcast::<FusedBatch<B>>()
            .map_err(|_| crate::Error::backend(self.backend.name(), "a batch of another scorer"))
    }

    /// The weighted sum of the members' calibrated logits present in `row`, plus the bias.
    fn partial(&self, row: &[Option<f32>]) -> f64 {
        row.iter()
            .zip(&self.members)
            .filter_map(|(p, (_, w))| p.map(|p| f64::from(*w) * logit(p)))
            .sum::<f64>()
            + f64::from(self.bias)
    }

    /// Wait for every queued pass of `batch` and put its scores into `batch.members`.
    fn collect_queued(&self, batch: &mut FusedBatch<B>) -> Result<()> {
        for (k, windows, pending) in std::mem::take(&mut batch.queued) {
            let scores = self.members[k].0.collect(&self.backend, pending)?;
            let expected = windows.as_ref().map_or(batch.count, Vec::len);
            check_count(self.backend.name(), &scores, expected)?;
            match windows {
                None => {
                    for (row, s) in batch.members.iter_mut().zip(scores) {
                        row[k] = Some(s);
                    }
                }
                Some(windows) => {
                    for (i, s) in windows.into_iter().zip(scores) {
                        batch.members[i][k] = Some(s);
                    }
                }
            }
        }
        Ok(())
    }

    /// [`Scorer::advance`] on a batch (once; nothing to do without a cascade).
    fn advance_batch(&self, batch: &mut FusedBatch<B>) -> Result<()> {
        let Some((cascade, _)) = &self.cascade else {
            return Ok(());
        };
        if batch.advanced {
            return Ok(());
        }
        batch.advanced = true;
        self.collect_queued(batch)?;
        // The windows the cheap members leave open run through the deferred ones, as one
        // smaller batch.
        let open: Vec<usize> = (0..batch.count)
            .filter(|&i| {
                let z = self.partial(&batch.members[i]) as f32;
                (cascade.lo..=cascade.hi).contains(&z)
            })
            .collect();
        let deferred = std::mem::take(&mut batch.deferred_inputs);
        if open.is_empty() {
            return Ok(());
        }
        for (k, windows) in deferred.into_iter().enumerate() {
            let Some(windows) = windows else { continue };
            let len = windows.len() / batch.count.max(1);
            let gathered: Vec<f32> = open
                .iter()
                .flat_map(|&i| windows[i * len..(i + 1) * len].iter().copied())
                .collect();
            let pending = self.members[k]
                .0
                .submit(&self.backend, &gathered, open.len())?;
            batch.queued.push((k, Some(open.clone()), pending));
        }
        Ok(())
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
            count,
            members: vec![vec![None; self.members.len()]; count],
            queued: Vec::new(),
            deferred_inputs: Vec::new(),
            advanced: false,
        };
        for (k, ((model, _), windows)) in self.members.iter().zip(inputs).enumerate() {
            if self.is_deferred(k) {
                batch.deferred_inputs.push(Some(windows.to_vec()));
            } else {
                let pending = model.submit(&self.backend, windows, count)?;
                batch.queued.push((k, None, pending));
                batch.deferred_inputs.push(None);
            }
        }
        Ok(Submitted(Box::new(batch)))
    }

    /// With a cascade: wait for the members that run on every window, then queue the deferred
    /// members on the windows those leave open, and return without waiting for them (a
    /// pipeline advances batch k after queueing batch k + 1, so the device has both).
    fn advance(&self, submitted: Submitted) -> Result<Submitted> {
        let mut batch = self.downcast(submitted)?;
        self.advance_batch(&mut batch)?;
        Ok(Submitted(batch))
    }

    fn collect(&self, submitted: Submitted) -> Result<Scores> {
        let mut batch = self.downcast(submitted)?;
        self.advance_batch(&mut batch)?;
        self.collect_queued(&mut batch)?;
        let FusedBatch { members, .. } = *batch;
        let Some((cascade, _)) = &self.cascade else {
            let windows = members
                .iter()
                .map(|row| sigmoid(self.partial(row)))
                .collect();
            return Ok(Scores { windows, members });
        };
        let windows = members
            .iter()
            .map(|row| {
                let z = self.partial(row);
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
