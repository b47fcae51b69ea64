//! What the rest of the program knows about a detector once it is bound: small facts (id,
//! threshold, windows, each network's rate), never its weights.

use super::config::{Aggregation, SegmentRule, WindowConfig};
use super::network::NetworkFacts;

/// A detector's facts: how audio is windowed for it and how its window scores become a verdict.
#[derive(Debug, Clone)]
pub struct DetectorInfo {
    /// Reported in every row, e.g. "music-fusion-v3.2".
    pub id: String,
    /// Default decision threshold on the calibrated score.
    pub threshold: f32,
    pub aggregation: Aggregation,
    /// Flags a file on a run of high-scoring windows (partial fakes), beside its file score.
    pub segment_rule: Option<SegmentRule>,
    /// The rate audio is windowed and silence-gated at; row times count samples at this rate.
    pub sample_rate: u32,
    pub window: WindowConfig,
    /// Samples per window / between windows / minimum accepted, at `sample_rate`.
    pub window_samples: usize,
    pub hop_samples: usize,
    pub min_samples: usize,
    /// The networks that score each window, in order: one for a single model, the members
    /// of a fusion (each planned for these windows at its own rate). Network k takes every
    /// window at its own rate and length (`config.sample_rate`, `window_samples`).
    pub networks: Vec<NetworkFacts>,
    /// Whether a cascade lets the costly networks skip windows the cheap ones decide.
    pub cascade: bool,
}

impl DetectorInfo {
    /// A single network's facts as a detector's.
    pub fn of_network(facts: &NetworkFacts) -> Self {
        let config = &facts.config;
        DetectorInfo {
            id: config.id.clone(),
            threshold: config.threshold,
            aggregation: config.aggregation,
            segment_rule: config.segment_rule.clone(),
            sample_rate: config.sample_rate,
            window: config.window.clone(),
            window_samples: facts.window_samples,
            hop_samples: facts.hop_samples,
            min_samples: facts.min_samples,
            networks: vec![facts.clone()],
            cascade: false,
        }
    }

    /// The network whose spectrogram explains a window on the review page (the first).
    pub fn explained(&self) -> &NetworkFacts {
        &self.networks[0]
    }
}
