//! The forward pass, written once over [`Backend`]. Weights are uploaded when the model is
//! bound to a backend; a batch of windows goes up, only scores come down.

use super::config::OutputKind;
use super::spec::{HostNormalization, HostProjection, HostTensor, LayerOp, ModelSpec};
use crate::backend::{
    Activation, Backend, Conv2dParams, DeviceTensor, GlobalPool, LogSpec, Normalization,
    PoolParams, Projection, StftParams, sigmoid,
};
use crate::{Error, Result};

enum DeviceLayer<T> {
    Conv2d {
        weight: T,
        bias: Option<T>,
        params: Conv2dParams,
        activation: Activation,
    },
    ChannelAffine {
        scale: T,
        shift: T,
        activation: Activation,
    },
    Mfm,
    MaxPool2d(PoolParams),
    GlobalPool(GlobalPool),
    Flatten,
    Linear {
        weight: T,
        bias: Option<T>,
        activation: Activation,
    },
}

enum DeviceProjection<T> {
    Bins { start: usize, end: usize },
    Matrix(T),
}

enum DeviceNormalization<T> {
    None,
    Mean,
    MeanVar,
    Global { mean: T, std: T },
}

/// A model bound to one backend: its weights live on that backend's device.
pub struct Model<B: Backend> {
    pub spec: ModelSpec,
    stft: StftParams,
    window: B::Tensor,
    projection: DeviceProjection<B::Tensor>,
    log: LogSpec,
    dct: Option<B::Tensor>,
    normalize: DeviceNormalization<B::Tensor>,
    layers: Vec<DeviceLayer<B::Tensor>>,
}

fn up<B: Backend>(b: &B, t: &HostTensor) -> Result<B::Tensor> {
    b.upload(&t.data, &t.shape)
}

fn up_vec<B: Backend>(b: &B, v: &[f32]) -> Result<B::Tensor> {
    b.upload(v, &[v.len()])
}

impl<B: Backend> Model<B> {
    pub fn new(backend: &B, spec: ModelSpec) -> Result<Self> {
        let fe = &spec.frontend;
        let layers = spec
            .layers
            .iter()
            .map(|layer| {
                Ok(match layer {
                    LayerOp::Conv2d {
                        weight,
                        bias,
                        params,
                        activation,
                    } => DeviceLayer::Conv2d {
                        weight: up(backend, weight)?,
                        bias: bias.as_deref().map(|b| up_vec(backend, b)).transpose()?,
                        params: *params,
                        activation: *activation,
                    },
                    LayerOp::ChannelAffine {
                        scale,
                        shift,
                        activation,
                    } => DeviceLayer::ChannelAffine {
                        scale: up_vec(backend, scale)?,
                        shift: up_vec(backend, shift)?,
                        activation: *activation,
                    },
                    LayerOp::Mfm => DeviceLayer::Mfm,
                    LayerOp::MaxPool2d(p) => DeviceLayer::MaxPool2d(*p),
                    LayerOp::GlobalPool(m) => DeviceLayer::GlobalPool(*m),
                    LayerOp::Flatten => DeviceLayer::Flatten,
                    LayerOp::Linear {
                        weight,
                        bias,
                        activation,
                    } => DeviceLayer::Linear {
                        weight: up(backend, weight)?,
                        bias: bias.as_deref().map(|b| up_vec(backend, b)).transpose()?,
                        activation: *activation,
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            stft: fe.stft,
            window: up_vec(backend, &fe.window)?,
            projection: match &fe.projection {
                HostProjection::Bins { start, end } => DeviceProjection::Bins {
                    start: *start,
                    end: *end,
                },
                HostProjection::Matrix(m) => DeviceProjection::Matrix(up(backend, m)?),
            },
            log: fe.log,
            dct: fe.dct.as_ref().map(|d| up(backend, d)).transpose()?,
            normalize: match &fe.normalize {
                HostNormalization::None => DeviceNormalization::None,
                HostNormalization::Mean => DeviceNormalization::Mean,
                HostNormalization::MeanVar => DeviceNormalization::MeanVar,
                HostNormalization::Global { mean, std } => DeviceNormalization::Global {
                    mean: up_vec(backend, mean)?,
                    std: up_vec(backend, std)?,
                },
            },
            layers,
            spec,
        })
    }

    /// Front-end: windows `[B, window_samples]` → features `[B, frames, features]`.
    pub fn features(&self, backend: &B, signal: &B::Tensor) -> Result<B::Tensor> {
        let power = backend.stft_power(signal, &self.window, &self.stft)?;
        let projection = match &self.projection {
            DeviceProjection::Bins { start, end } => Projection::Bins {
                start: *start,
                end: *end,
            },
            DeviceProjection::Matrix(m) => Projection::Matrix(m),
        };
        let mut x = backend.filterbank_log(&power, projection, self.log)?;
        if let Some(basis) = &self.dct {
            x = backend.dct(&x, basis)?;
        }
        let mode = match &self.normalize {
            DeviceNormalization::None => return Ok(x),
            DeviceNormalization::Mean => Normalization::Mean,
            DeviceNormalization::MeanVar => Normalization::MeanVar,
            DeviceNormalization::Global { mean, std } => Normalization::Global { mean, std },
        };
        backend.normalize(&x, mode)
    }

    /// Classifier: features `[B, frames, features]` → raw outputs `[B, outputs]`.
    pub fn classify(&self, backend: &B, features: B::Tensor) -> Result<B::Tensor> {
        let shape = features.shape().to_vec();
        let mut x = backend.reshape(features, &[shape[0], 1, shape[1], shape[2]])?;
        for layer in &self.layers {
            x = match layer {
                DeviceLayer::Conv2d {
                    weight,
                    bias,
                    params,
                    activation,
                } => backend.conv2d(&x, weight, bias.as_ref(), params, *activation)?,
                DeviceLayer::ChannelAffine {
                    scale,
                    shift,
                    activation,
                } => backend.channel_affine(&x, scale, shift, *activation)?,
                DeviceLayer::Mfm => backend.mfm(&x)?,
                DeviceLayer::MaxPool2d(p) => backend.max_pool2d(&x, p)?,
                DeviceLayer::GlobalPool(mode) => backend.global_pool(&x, *mode)?,
                DeviceLayer::Flatten => {
                    let batch = x.shape()[0];
                    let rest = x.len() / batch.max(1);
                    backend.reshape(x, &[batch, rest])?
                }
                DeviceLayer::Linear {
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
        let len = self.spec.window_samples;
        if windows.len() != count * len {
            return Err(Error::backend(
                backend.name(),
                format!(
                    "scores: got {} samples for {count} windows of {len}",
                    windows.len()
                ),
            ));
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        let signal = backend.upload(windows, &[count, len])?;
        let features = self.features(backend, &signal)?;
        let outputs = self.classify(backend, features)?;
        let cal = self.spec.config.calibration;
        match self.spec.config.output.kind {
            OutputKind::Logit => backend.download(&backend.sigmoid(&outputs, cal.scale, cal.bias)?),
            OutputKind::Softmax => {
                // Only [B, N] probabilities come back; the bona fide column becomes a logit.
                let probs = backend.download(&backend.softmax(&outputs)?)?;
                let n = self.spec.outputs;
                let bona = self.spec.config.output.bona_fide_index;
                Ok(probs
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
