//! Models: config schema, file format, validation, and the forward pass over a backend.

pub mod config;
pub mod dsp;
pub mod encoder;
pub mod file;
pub mod forward;
pub mod fusion;
pub mod plan;
pub mod presets;
pub mod spec;

use std::path::Path;

pub use config::ModelConfig;
pub use forward::{Band, Explanation, Model, PendingScores};
pub use spec::ModelSpec;

use crate::backend::{Backend, BackendKind, cpu::CpuBackend};
use crate::{Error, Result};

/// Models compiled into the binary, by name: the reference detectors trained by `training/`
/// (model cards in `models/*.md`).
pub static EMBEDDED: &[(&str, &[u8])] = &[
    // Two music CNNs (46 ms and 5 ms frames) and the music head on the Whisper encoder, fused
    // (config `fusion`; the file holds no tensors: they are its members').
    ("music", include_bytes!("../../models/music.safetensors")),
    (
        "music-cnn",
        include_bytes!("../../models/music-cnn.safetensors"),
    ),
    (
        "music-cnn-wb",
        include_bytes!("../../models/music-cnn-wb.safetensors"),
    ),
    // Two speech CNNs (narrowband and wideband spectrograms) and the speech head on the
    // Whisper encoder, fused the same way.
    ("speech", include_bytes!("../../models/speech.safetensors")),
    (
        "speech-cnn",
        include_bytes!("../../models/speech-cnn.safetensors"),
    ),
    (
        "speech-cnn-wb",
        include_bytes!("../../models/speech-cnn-wb.safetensors"),
    ),
    (
        "speech-whisper",
        include_bytes!("../../models/speech-whisper.safetensors"),
    ),
    (
        "speech-lcnn",
        include_bytes!("../../models/speech-lcnn.safetensors"),
    ),
    // Its head alone: the encoder is `speech-whisper`'s (config `shared_tensors`).
    (
        "music-whisper",
        include_bytes!("../../models/music-whisper.safetensors"),
    ),
];

/// The model `screen`, `eval` and `bench --catalog` use without `--model`: catalogs are mostly
/// music, so the (fused) music detector.
pub const DEFAULT_MODEL: &str = "music";

/// The file bytes of the embedded model `name`, if this build has it.
pub fn embedded(name: &str) -> Option<&'static [u8]> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// Resolve `--model NAME|FILE`: an embedded name first, otherwise a path.
pub fn resolve(arg: &str) -> Result<ModelSpec> {
    if let Some(bytes) = embedded(arg) {
        return file::load_bytes(bytes, &format!("embedded model {arg:?}"));
    }
    let path = Path::new(arg);
    if path.exists() {
        return file::load_path(path);
    }
    let names: Vec<&str> = EMBEDDED.iter().map(|(n, _)| *n).collect();
    Err(Error::model(format!(
        "{arg:?} is neither an embedded model ({}) nor an existing file",
        if names.is_empty() {
            "this build embeds none".to_string()
        } else {
            format!("available: {}", names.join(", "))
        }
    )))
}

/// A model bound to a backend, behind a trait object so the screening pipeline does not
/// care which backend runs it.
pub trait Scorer: Send + Sync {
    fn backend_name(&self) -> &'static str;
    fn spec(&self) -> &ModelSpec;
    /// Queue the calibrated scoring of `count` windows laid end to end (see [`Model::submit`]):
    /// submit batch k+1, then collect batch k, and the device never waits for the host between
    /// batches.
    fn submit(&self, windows: &[f32], count: usize) -> Result<Submitted>;
    /// Wait for a batch from [`Scorer::submit`] of this scorer and return its scores.
    fn collect(&self, submitted: Submitted) -> Result<Vec<f32>>;
    /// One window's log filterbank and occlusion map over `bands` bands ([`Model::explain`]).
    fn explain(&self, window: &[f32], bands: usize) -> Result<Explanation>;
}

/// A batch queued by [`Scorer::submit`] (the backend's pending readback, type-erased).
pub struct Submitted(Box<dyn std::any::Any + Send>);

struct Bound<B: Backend> {
    backend: B,
    model: Model<B>,
}

impl<B: Backend + 'static> Scorer for Bound<B> {
    fn backend_name(&self) -> &'static str {
        self.backend.name()
    }
    fn spec(&self) -> &ModelSpec {
        &self.model.spec
    }
    fn submit(&self, windows: &[f32], count: usize) -> Result<Submitted> {
        let pending = self.model.submit(&self.backend, windows, count)?;
        Ok(Submitted(Box::new(pending)))
    }
    fn collect(&self, submitted: Submitted) -> Result<Vec<f32>> {
        let pending = submitted.0.downcast::<PendingScores<B>>().map_err(|_| {
            crate::Error::backend(self.backend.name(), "collect: batch of another scorer")
        })?;
        self.model.collect(&self.backend, *pending)
    }
    fn explain(&self, window: &[f32], bands: usize) -> Result<Explanation> {
        self.model.explain(&self.backend, window, bands)
    }
}

/// Bind `spec` to the backend `kind` (resolving `auto`); errors say why a backend can't run.
/// A fused model binds each of its members to that backend too.
pub fn bind(kind: BackendKind, spec: ModelSpec) -> Result<Box<dyn Scorer>> {
    spec.require_classifier()?;
    if spec.fusion.is_empty() {
        return bind_one(kind, spec);
    }
    // The primary is bound without its members (cloning them only to drop them would copy
    // their weights, the 20 M-parameter encoder included).
    let mut spec = spec;
    let members = std::mem::take(&mut spec.fusion);
    let primary = bind_one(kind, spec.clone())?;
    spec.fusion = members;
    let members = spec
        .fusion
        .iter()
        .map(|m| Ok((bind_one(kind, m.spec.clone())?, m.weight)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Box::new(fusion::Fused::new(spec, primary, members)))
}

fn bind_one(kind: BackendKind, spec: ModelSpec) -> Result<Box<dyn Scorer>> {
    match crate::backend::resolve(kind)? {
        BackendKind::Cpu | BackendKind::Auto => {
            let backend = CpuBackend::new();
            let model = Model::new(&backend, spec)?;
            Ok(Box::new(Bound { backend, model }))
        }
        BackendKind::Wgpu => {
            let backend = crate::backend::wgpu::WgpuBackend::new()?;
            let model = Model::new(&backend, spec)?;
            Ok(Box::new(Bound { backend, model }))
        }
        BackendKind::Cuda => {
            let backend = crate::backend::cuda::CudaBackend::new()?;
            let model = Model::new(&backend, spec)?;
            Ok(Box::new(Bound { backend, model }))
        }
    }
}
