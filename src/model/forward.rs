//! The forward pass, written once over [`Backend`]. Weights are uploaded when the model is
//! bound to a backend; a batch of windows goes up, only scores come down.

use super::config::OutputKind;
use super::encoder::{self, Encoder};
use super::layer::Layer;
use super::network::{ModelSpec, NetworkFacts};
use super::tensor::HostTensor;
use crate::backend::{
    Backend, DeviceTensor, LogSpec, Normalization, Projection, RangeFloor, StftParams, sigmoid,
};
use crate::{Error, Result};

/// A network bound to one backend: its weights live on that backend's device, and only its
/// facts stay on the host.
pub struct Model<B: Backend> {
    pub facts: NetworkFacts,
    stft: StftParams,
    window: B::Tensor,
    projection: Projection<B::Tensor>,
    log: LogSpec,
    dct: Option<B::Tensor>,
    floor: Option<RangeFloor>,
    normalize: Option<Normalization<B::Tensor>>,
    encoder: Option<Encoder<B::Tensor>>,
    layers: Vec<Layer<B::Tensor>>,
}

impl<B: Backend> Model<B> {
    /// Upload every constant and weight of `spec` to `backend`; the host copies are dropped.
    pub fn new(backend: &B, spec: ModelSpec) -> Result<Self> {
        let up = |t: &HostTensor| backend.upload_constant(&t.data, &t.shape);
        let fe = &spec.frontend;
        Ok(Model {
            stft: fe.stft,
            window: up(&fe.window)?,
            projection: fe.projection.try_map(up)?,
            log: spec.facts.log,
            dct: fe.dct.as_ref().map(up).transpose()?,
            floor: fe.floor,
            normalize: fe.normalize.as_ref().map(|n| n.try_map(up)).transpose()?,
            encoder: spec.encoder.as_ref().map(|e| e.try_map(up)).transpose()?,
            layers: spec
                .layers
                .iter()
                .map(|l| l.try_map(up))
                .collect::<Result<_>>()?,
            facts: spec.facts,
        })
    }

    /// Front-end and encoder: windows `[B, window_samples]` → the classifier's input
    /// `[B, frames, features]` (the encoder's chosen hidden state `[B, positions, width]`).
    pub fn features(&self, backend: &B, signal: &B::Tensor) -> Result<B::Tensor> {
        self.encode(backend, self.frontend(backend, signal)?)
    }

    /// The encoder's chosen state for front-end output (the front-end output itself when the
    /// model has no encoder).
    fn encode(&self, backend: &B, frontend: B::Tensor) -> Result<B::Tensor> {
        match &self.encoder {
            Some(enc) => Ok(encoder::forward(backend, enc, &frontend, false)?.remove(0)),
            None => Ok(frontend),
        }
    }

    /// Every hidden state of the encoder (stem + positions, each block, final LayerNorm), each
    /// `[B, positions, width]`; empty for a model without an encoder.
    pub fn hidden_states(&self, backend: &B, signal: &B::Tensor) -> Result<Vec<B::Tensor>> {
        match &self.encoder {
            Some(enc) => encoder::forward(backend, enc, &self.frontend(backend, signal)?, true),
            None => Ok(Vec::new()),
        }
    }

    /// The front-end alone: windows `[B, window_samples]` → `[B, frames, features]`.
    pub fn frontend(&self, backend: &B, signal: &B::Tensor) -> Result<B::Tensor> {
        let x = self.log_filterbank(backend, signal)?;
        self.finish_frontend(backend, x)
    }

    /// The front-end's log filterbank (its spectrogram, before any DCT or normalisation):
    /// windows `[B, window_samples]` → `[B, frames, bins]`.
    pub fn log_filterbank(&self, backend: &B, signal: &B::Tensor) -> Result<B::Tensor> {
        let power = backend.stft_power(signal, &self.window, &self.stft)?;
        backend.filterbank_log(&power, self.projection.as_ref(), self.log)
    }

    /// The rest of the front-end after [`Model::log_filterbank`]: floor, DCT and normalisation.
    fn finish_frontend(&self, backend: &B, mut x: B::Tensor) -> Result<B::Tensor> {
        if let Some(floor) = self.floor {
            x = backend.normalize(&x, Normalization::Range(floor))?;
        }
        if let Some(basis) = &self.dct {
            x = backend.dct(&x, basis)?;
        }
        match &self.normalize {
            Some(mode) => backend.normalize(&x, mode.as_ref()),
            None => Ok(x),
        }
    }

    /// Classifier: features `[B, frames, features]` → raw outputs `[B, outputs]`.
    pub fn classify(&self, backend: &B, features: B::Tensor) -> Result<B::Tensor> {
        let shape = features.shape().to_vec();
        let mut x = backend.reshape(features, &[shape[0], 1, shape[1], shape[2]])?;
        for layer in &self.layers {
            x = match layer {
                Layer::Conv2d {
                    weight,
                    bias,
                    params,
                    activation,
                } => backend.conv2d(&x, weight, bias.as_ref(), params, *activation)?,
                Layer::ChannelAffine {
                    scale,
                    shift,
                    activation,
                } => backend.channel_affine(&x, scale, shift, *activation)?,
                Layer::Mfm => backend.mfm(&x)?,
                Layer::MaxPool2d(p) => backend.max_pool2d(&x, p)?,
                Layer::GlobalPool(mode) => backend.global_pool(&x, *mode)?,
                Layer::Flatten => {
                    let batch = x.shape()[0];
                    let rest = x.len() / batch.max(1);
                    backend.reshape(x, &[batch, rest])?
                }
                Layer::Linear {
                    weight,
                    bias,
                    activation,
                } => backend.linear(&x, weight, bias.as_ref(), *activation)?,
            };
        }
        Ok(x)
    }

    /// Calibrated probability of "synthetic" for each of `count` windows laid end to end in
    /// `windows` (`count × window_samples` values).
    pub fn scores(&self, backend: &B, windows: &[f32], count: usize) -> Result<Vec<f32>> {
        let pending = self.submit(backend, windows, count)?;
        self.collect(backend, pending)
    }

    /// Queue the scoring of `count` windows without waiting for the result: on backends
    /// that queue work (CUDA), the next batch can be submitted before this one is collected,
    /// so its upload overlaps this batch's kernels.
    pub fn submit(&self, backend: &B, windows: &[f32], count: usize) -> Result<PendingScores<B>> {
        let len = self.facts.window_samples;
        self.facts.require_classifier()?;
        if windows.len() != count * len {
            return Err(Error::backend(
                backend.name(),
                format!(
                    "scores: got {} samples for {count} windows of {len}",
                    windows.len()
                ),
            ));
        }
        // Windows per forward pass, so that no tensor exceeds the backend's limit (e.g. a
        // 128 MiB storage binding); a larger batch runs as several passes.
        let per_pass = (backend.max_tensor_elements() / self.facts.largest_tensor.max(1)).max(1);
        let mut passes = Vec::new();
        for chunk in windows.chunks(per_pass * len) {
            passes.push(self.submit_pass(backend, chunk, chunk.len() / len)?);
        }
        Ok(PendingScores(passes))
    }

    /// One forward pass over `count` windows, up to the queued readback of its scores.
    fn submit_pass(
        &self,
        backend: &B,
        windows: &[f32],
        count: usize,
    ) -> Result<(B::Readback, B::Tensor)> {
        let len = self.facts.window_samples;
        let signal = backend.upload(windows, &[count, len])?;
        let last = self.head(backend, self.frontend(backend, &signal)?)?;
        Ok((backend.start_download(&last)?, signal))
    }

    /// Front-end output → encoder → classifier → the last op of the scoring (calibrated sigmoid,
    /// or softmax whose bona fide column [`Model::collect`] turns into a score): only `[B]`
    /// scores or `[B, N]` probabilities come back.
    fn head(&self, backend: &B, frontend: B::Tensor) -> Result<B::Tensor> {
        let features = self.encode(backend, frontend)?;
        let outputs = self.classify(backend, features)?;
        let cal = self.facts.config.calibration;
        match self.facts.config.output.kind {
            OutputKind::Logit => backend.sigmoid(&outputs, cal.scale, cal.bias),
            OutputKind::Softmax => backend.softmax(&outputs),
        }
    }

    /// Why one window scores as it does: its log filterbank, and its score again with each of
    /// `bands` contiguous frequency bands set to the window's floor (an occlusion map: the
    /// band whose removal lowers the score most is where the model saw the fake).
    pub fn explain(&self, backend: &B, window: &[f32], bands: usize) -> Result<Explanation> {
        self.facts.require_classifier()?;
        if window.len() != self.facts.window_samples {
            return Err(Error::backend(
                backend.name(),
                format!(
                    "explain: got {} samples for a window of {}",
                    window.len(),
                    self.facts.window_samples
                ),
            ));
        }
        let signal = backend.upload(window, &[1, window.len()])?;
        let image = backend.download(&self.log_filterbank(backend, &signal)?)?;
        let bins = self.facts.frontend_bins();
        let frames = image.len() / bins.max(1);
        let floor = image.iter().copied().fold(f32::INFINITY, f32::min);
        let edges: Vec<usize> = (0..=bands.clamp(1, bins))
            .map(|k| k * bins / bands.clamp(1, bins))
            .collect();
        let mut batch = image.clone();
        for band in edges.windows(2) {
            let mut copy = image.clone();
            for frame in copy.chunks_mut(bins) {
                frame[band[0]..band[1]].fill(floor);
            }
            batch.extend(copy);
        }
        let count = edges.len();
        let x = backend.upload(&batch, &[count, frames, bins])?;
        let x = self.finish_frontend(backend, x)?;
        let last = self.head(backend, x)?;
        let pending = PendingScores(vec![(backend.start_download(&last)?, signal)]);
        let scores = self.collect(backend, pending)?;
        let centre = &self.facts.bin_centres_hz;
        Ok(Explanation {
            frames,
            bins,
            image,
            score: scores[0],
            bands: edges
                .windows(2)
                .zip(&scores[1..])
                .map(|(e, &score)| Band {
                    bins: e[0]..e[1],
                    hz: (centre[e[0]], centre[e[1] - 1]),
                    score,
                })
                .collect(),
        })
    }

    /// Wait for a batch queued by [`Model::submit`] and return its window scores.
    pub fn collect(&self, backend: &B, pending: PendingScores<B>) -> Result<Vec<f32>> {
        let mut values = Vec::new();
        for (readback, signal) in pending.0 {
            values.extend(backend.finish_download(readback)?);
            drop(signal);
        }
        let cal = self.facts.config.calibration;
        match self.facts.config.output.kind {
            OutputKind::Logit => Ok(values),
            OutputKind::Softmax => {
                // The bona fide column becomes a logit, then the calibrated score.
                let n = self.facts.outputs;
                let bona = self.facts.config.output.bona_fide_index;
                Ok(values
                    .chunks(n)
                    .map(|p| {
                        let synthetic = (1.0 - p[bona] as f64).clamp(1e-12, 1.0 - 1e-12);
                        let logit = (synthetic / (1.0 - synthetic)).ln() as f32;
                        sigmoid(cal.scale * logit + cal.bias)
                    })
                    .collect())
            }
        }
    }
}

/// One window explained by [`Model::explain`].
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub frames: usize,
    pub bins: usize,
    /// The log filterbank, frame-major `[frames, bins]`, bin 0 the lowest frequency.
    pub image: Vec<f32>,
    /// The window's score.
    pub score: f32,
    /// The score with each band removed, low to high frequency.
    pub bands: Vec<Band>,
}

/// One band of an [`Explanation`]'s occlusion map.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub bins: std::ops::Range<usize>,
    /// Centre frequencies of its first and last bin.
    pub hz: (f64, f64),
    /// The window's score with this band set to the window's floor.
    pub score: f32,
}

/// A batch queued by [`Model::submit`]; [`Model::collect`] turns it into scores.
///
/// It keeps the uploaded windows alive until collected: on CUDA, freeing them right after
/// submitting would make the upload stream wait for this batch's front-end (a free is ordered
/// after every read), delaying the next batch's upload.
pub struct PendingScores<B: Backend>(Vec<(B::Readback, B::Tensor)>);
