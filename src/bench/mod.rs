//! `deepscreen bench`: time the backends on one synthetic batch per model (device stages and
//! the score difference from the CPU backend), or the whole pipeline on a catalog. Timing a
//! model lives here, above the backend layer, which knows nothing of models.

mod catalog;
mod stages;
mod synthetic;

use std::io::Write;
use std::path::PathBuf;

use crate::backend::{self, BackendKind};

pub use stages::{StageTimes, synthetic_windows, time_stages};

/// What to time (the `bench` command's options).
#[derive(Debug, Clone)]
pub struct BenchJob {
    /// Time the whole pipeline on the audio files under this directory instead of one
    /// synthetic batch.
    pub catalog: Option<PathBuf>,
    /// Embedded model name or model file [default: every embedded model synthetic, the
    /// default model with a catalog].
    pub model: Option<String>,
    /// Fused models with their cascade off (`screen --exact`).
    pub exact: bool,
    /// Timed repetitions per stage in the synthetic mode (the median is reported).
    pub repeats: usize,
    /// Backends to time [empty: cpu plus every GPU backend `auto` would use].
    pub backends: Vec<BackendKind>,
    /// Thread counts to time with a catalog [empty: 1 and all cores].
    pub threads: Vec<usize>,
    /// Windows per backend call [default: `pipeline::DEFAULT_BATCH`].
    pub batch: Option<usize>,
}

/// Run the benchmark, writing its table to `out`.
pub fn run(job: &BenchJob, out: &mut dyn Write) -> anyhow::Result<()> {
    match &job.catalog {
        Some(dir) => catalog::run(job, dir, out),
        None => synthetic::run(job, out),
    }
}

/// Backends to time: those asked for, or cpu plus every GPU backend that `auto` would use.
fn backends_to_time(asked: &[BackendKind]) -> Vec<BackendKind> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    let mut v = vec![BackendKind::Cpu];
    if backend::wgpu_preferred_by_auto() {
        v.push(BackendKind::Wgpu);
    }
    if backend::status(BackendKind::Cuda).0 {
        v.push(BackendKind::Cuda);
    }
    v
}
