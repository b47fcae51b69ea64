//! Models: config schema, file format, validation, and the forward pass over a backend.
//!
//! A model file defines a [`Detector`]: one network ([`ModelSpec`]) or a fusion of embedded
//! networks ([`FusionSpec`]). [`open`] loads one and binds it to a backend, the one way every
//! command gets a [`Scorer`].

pub mod config;
pub mod dsp;
pub mod encoder;
pub mod file;
pub mod forward;
pub mod fusion;
pub mod geometry;
pub mod info;
pub mod layer;
pub mod network;
pub mod presets;
pub mod separator;
pub mod tensor;

use std::path::Path;

pub use config::ModelConfig;
pub use forward::{Band, Explanation, Model, PendingScores};
pub use fusion::FusionSpec;
pub use info::DetectorInfo;
pub use layer::Layer;
pub use network::{ModelSpec, NetworkFacts};
pub use tensor::HostTensor;

use crate::backend::{Backend, BackendKind, WithBackend};
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
    // The vocal stage's judges of voices separated from music (screen::vocals): `vocal` fuses
    // the speech CNNs with `vocal-whisper`, speech-whisper's head and a head trained on
    // separated voices merged into one (so the shared encoder runs once).
    ("vocal", include_bytes!("../../models/vocal.safetensors")),
    (
        "vocal-whisper",
        include_bytes!("../../models/vocal-whisper.safetensors"),
    ),
    (
        "vocal-cnn",
        include_bytes!("../../models/vocal-cnn.safetensors"),
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

/// What a model file defines: one network, or a fusion of networks (embedded, or files beside it).
// One per loaded model: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Detector {
    Network(ModelSpec),
    Fusion(FusionSpec),
}

impl Detector {
    pub fn info(&self) -> DetectorInfo {
        match self {
            Detector::Network(spec) => DetectorInfo::of_network(&spec.facts),
            Detector::Fusion(fusion) => fusion.info(),
        }
    }

    /// The same detector with every member scoring every window: a fusion's cascade off.
    pub fn exact(self) -> Self {
        match self {
            Detector::Fusion(mut f) => {
                f.config.fusion.cascade = None;
                Detector::Fusion(f)
            }
            network => network,
        }
    }

    /// The network itself; an error for a fusion (which has none of its own).
    pub fn into_network(self) -> Result<ModelSpec> {
        match self {
            Detector::Network(spec) => Ok(spec),
            Detector::Fusion(f) => Err(Error::model(format!(
                "{} is a fused model: it has no network of its own (its members are {})",
                f.config.id,
                f.config
                    .fusion
                    .members
                    .iter()
                    .map(|m| m.model.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

impl From<ModelSpec> for Detector {
    fn from(spec: ModelSpec) -> Self {
        Detector::Network(spec)
    }
}

impl From<FusionSpec> for Detector {
    fn from(spec: FusionSpec) -> Self {
        Detector::Fusion(spec)
    }
}

/// Load `--model NAME|FILE`: an embedded name first, otherwise a path.
pub fn load(arg: &str) -> Result<Detector> {
    if let Some(bytes) = embedded(arg) {
        return file::load_detector(bytes, &format!("embedded model {arg:?}"));
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

/// The embedded model whose id is `id` (what to pass `--model` to continue a report it wrote).
pub fn embedded_name_of(id: &str) -> Option<&'static str> {
    EMBEDDED.iter().find_map(|(name, bytes)| {
        file::read_config(bytes, name)
            .is_ok_and(|c| c.id() == id)
            .then_some(*name)
    })
}

/// Load a network by `NAME|FILE` (a fused model is refused: see [`load`]).
pub fn resolve(arg: &str) -> Result<ModelSpec> {
    load(arg)?.into_network()
}

/// Load `--model NAME|FILE` and bind it to the backend `kind`: how every command opens a model.
/// With `exact`, a fused model's cascade is off (every member scores every window).
pub fn open(arg: &str, kind: BackendKind, exact: bool) -> Result<Box<dyn Scorer>> {
    let detector = load(arg)?;
    bind(kind, if exact { detector.exact() } else { detector })
}

/// A detector bound to a backend, behind a trait object so the screening pipeline does not
/// care which backend runs it.
pub trait Scorer: Send + Sync {
    fn backend_name(&self) -> &'static str;
    /// Whether the backend's tensors live in host memory (see `Device::tensors_on_host`).
    fn tensors_on_host(&self) -> bool;
    fn info(&self) -> &DetectorInfo;
    /// Queue the calibrated scoring of `count` windows: `inputs[k]` holds them laid end to end
    /// as network k takes them (`info().networks[k]`: its rate and window length; see
    /// `audio::read_windows`). Submit batch k+1, then collect batch k, and the device never
    /// waits for the host between batches (see `screen::pipeline`: two batches in flight).
    fn submit(&self, inputs: &[&[f32]], count: usize) -> Result<Submitted>;
    /// Move a submitted batch on as far as it goes without waiting for all of it: a cascade
    /// (`Fused`) waits for the members that score every window and queues its deferred
    /// members on the windows left open. Called on batch k after batch k + 1 is submitted, so
    /// that the deferred work queues behind it and the device is never left idle while the
    /// host decides. Optional: [`Scorer::collect`] advances a batch that was not. Without a
    /// cascade there is nothing to do.
    fn advance(&self, submitted: Submitted) -> Result<Submitted> {
        Ok(submitted)
    }
    /// Wait for a batch from [`Scorer::submit`] of this scorer and return its scores.
    fn collect(&self, submitted: Submitted) -> Result<Scores>;
    /// One window's log filterbank and occlusion map over `bands` bands ([`Model::explain`]),
    /// by the first network (`window` as it takes it).
    fn explain(&self, window: &[f32], bands: usize) -> Result<Explanation>;
}

/// Score `windows` as one batch, waiting for the result: each network's inputs laid end to end
/// (what [`Scorer::submit`] takes), submitted and collected. For callers outside the screening
/// pipeline (review, the vocal stage), which need no second batch in flight.
pub fn score_now(scorer: &dyn Scorer, windows: &[crate::audio::NetworkWindows]) -> Result<Scores> {
    let flat: Vec<Vec<f32>> = (0..scorer.info().networks.len())
        .map(|k| {
            windows
                .iter()
                .flat_map(|w| w.inputs[k].iter().copied())
                .collect()
        })
        .collect();
    let inputs: Vec<&[f32]> = flat.iter().map(Vec::as_slice).collect();
    scorer.collect(scorer.submit(&inputs, windows.len())?)
}

/// A batch's calibrated scores: the model's, one per window, and a fusion's members'.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub windows: Vec<f32>,
    /// `members[window][k]`: member k's score of the window, None where a cascade skipped
    /// it. Empty for a single network.
    pub members: Vec<Vec<Option<f32>>>,
}

impl Scores {
    /// Whether a cascade left out a member of window `i`.
    pub fn skipped(&self, i: usize) -> bool {
        self.members
            .get(i)
            .is_some_and(|row| row.iter().any(Option::is_none))
    }
}

/// A batch queued by [`Scorer::submit`] (the backend's pending readback, type-erased).
pub struct Submitted(pub(crate) Box<dyn std::any::Any + Send>);

/// An error unless a batch brings one input per network.
fn check_inputs(backend: &'static str, inputs: &[&[f32]], networks: usize) -> Result<()> {
    if inputs.len() != networks {
        return Err(Error::backend(
            backend,
            format!(
                "got windows for {} networks, the model has {networks}",
                inputs.len()
            ),
        ));
    }
    Ok(())
}

/// A single network bound to its backend.
struct Bound<B: Backend> {
    backend: B,
    model: Model<B>,
    info: DetectorInfo,
}

impl<B: Backend + 'static> Scorer for Bound<B> {
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
        check_inputs(self.backend.name(), inputs, 1)?;
        let pending = self.model.submit(&self.backend, inputs[0], count)?;
        Ok(Submitted(Box::new(pending)))
    }
    fn collect(&self, submitted: Submitted) -> Result<Scores> {
        let pending = submitted.0.downcast::<PendingScores<B>>().map_err(|_| {
            crate::Error::backend(self.backend.name(), "collect: batch of another scorer")
        })?;
        Ok(Scores {
            windows: self.model.collect(&self.backend, *pending)?,
            members: Vec::new(),
        })
    }
    fn explain(&self, window: &[f32], bands: usize) -> Result<Explanation> {
        self.model.explain(&self.backend, window, bands)
    }
}

/// Bind `detector` to the backend `kind` (resolving `auto`); errors say why a backend can't
/// run. One backend is opened; a fusion's members all run on it.
pub fn bind(kind: BackendKind, detector: impl Into<Detector>) -> Result<Box<dyn Scorer>> {
    let detector = detector.into();
    if let Detector::Network(spec) = &detector {
        spec.facts.require_classifier()?;
    }
    crate::backend::open(kind, BindTo(detector))
}

/// [`bind`]'s work once the backend is open.
struct BindTo(Detector);

impl WithBackend for BindTo {
    type Output = Box<dyn Scorer>;

    fn run<B: Backend + 'static>(self, backend: B) -> Result<Box<dyn Scorer>> {
        bind_on(backend, self.0)
    }
}

fn bind_on<B: Backend + 'static>(backend: B, detector: Detector) -> Result<Box<dyn Scorer>> {
    match detector {
        Detector::Network(spec) => {
            let info = DetectorInfo::of_network(&spec.facts);
            let model = Model::new(&backend, spec)?;
            Ok(Box::new(Bound {
                backend,
                model,
                info,
            }))
        }
        Detector::Fusion(spec) => Ok(Box::new(fusion::Fused::new(backend, spec)?)),
    }
}
