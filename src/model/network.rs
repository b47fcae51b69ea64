//! A validated network: the config's geometry ([`plan`](super::geometry::plan)) checked
//! against the tensors of the file. The result, [`ModelSpec`], is the network's facts
//! ([`NetworkFacts`]: small, kept while the model runs) and its host weights, ready to upload
//! (batch norms folded, constants computed) and dropped once uploaded, so backends never see
//! the config's loose ends.

use std::collections::BTreeMap;

use super::config::*;
use super::dsp;
use super::encoder::{self, Encoder};
use super::geometry::{BN_EPS, activation, bad, f_max, plan, pool_params};
use super::layer::Layer;
use super::tensor::HostTensor;
use crate::Result;
use crate::backend::{
    Conv2dParams, GlobalPool, LogSpec, Normalization, Projection, RangeFloor, StftParams,
};

#[derive(Debug, Clone)]
pub struct FrontendSpec {
    pub stft: StftParams,
    /// Window zero-padded to n_fft.
    pub window: HostTensor,
    pub projection: Projection<HostTensor>,
    pub dct: Option<HostTensor>,
    /// The log's floor relative to the window maximum (`log.floor_below_max`).
    pub floor: Option<RangeFloor>,
    pub normalize: Option<Normalization<HostTensor>>,
}

/// What a validated network is, without its weights: small and cloneable, kept by a model
/// bound to a backend after its weights are uploaded.
#[derive(Debug, Clone)]
pub struct NetworkFacts {
    pub config: ModelConfig,
    /// Samples per window / between windows / minimum accepted, at the model rate.
    pub window_samples: usize,
    pub hop_samples: usize,
    pub min_samples: usize,
    /// Classifier input: `[frames, features]` per window (`[positions, width]` after an
    /// encoder).
    pub feature_shape: [usize; 2],
    /// Number of outputs of the last layer (0: an encoder front-end without a classifier).
    pub outputs: usize,
    pub parameter_count: usize,
    /// Elements per window of the largest tensor the forward pass makes.
    pub largest_tensor: usize,
    /// The front-end's log.
    pub log: LogSpec,
    /// Centre frequency in Hz of each bin of the front-end's log filterbank (before any DCT):
    /// the FFT bin itself, or the FFT bin where a filter peaks.
    pub bin_centres_hz: Vec<f64>,
}

/// A loaded, validated network on the host: its facts and its weights (consumed by upload).
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub facts: NetworkFacts,
    pub frontend: FrontendSpec,
    /// The pretrained encoder after the front-end, if the model has one.
    pub encoder: Option<Encoder<HostTensor>>,
    pub layers: Vec<Layer<HostTensor>>,
}

/// `(scale, shift)` of an inference batch norm: y = x·scale + shift.
fn bn_affine(
    tensors: &mut BTreeMap<String, HostTensor>,
    prefix: &str,
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let mut take = |part: &str| {
        tensors
            .remove(&format!("{prefix}{part}"))
            .map(|t| t.data)
            .unwrap_or_default()
    };
    let (gamma, beta, mean, var) = (
        take("weight"),
        take("bias"),
        take("running_mean"),
        take("running_var"),
    );
    let scale: Vec<f32> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| (*g as f64 / (*v as f64 + eps as f64).sqrt()) as f32)
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    (scale, shift)
}

impl NetworkFacts {
    /// Bins of the front-end's log filterbank (before any DCT).
    pub fn frontend_bins(&self) -> usize {
        self.bin_centres_hz.len()
    }

    /// An error unless the model has a classifier: an encoder front-end alone makes features,
    /// not scores.
    pub fn require_classifier(&self) -> Result<()> {
        if self.outputs == 0 {
            return Err(bad(format!(
                "{} is an encoder front-end without a classifier head: it cannot score audio \
                 (train a head on its features: training/README.md)",
                self.config.id
            )));
        }
        Ok(())
    }
}

/// Centre frequency in Hz of each bin of a projection (see [`NetworkFacts::bin_centres_hz`]).
fn bin_centres_hz(projection: &Projection<HostTensor>, sample_rate: u32, n_fft: usize) -> Vec<f64> {
    let hz_per_bin = sample_rate as f64 / n_fft as f64;
    match projection {
        Projection::Bins { start, end } => (*start..*end).map(|k| k as f64 * hz_per_bin).collect(),
        Projection::Matrix(m) => {
            let (rows, filters) = (m.shape[0], m.shape[1]);
            (0..filters)
                .map(|f| {
                    let peak = (0..rows)
                        .max_by(|&a, &b| {
                            m.data[a * filters + f].total_cmp(&m.data[b * filters + f])
                        })
                        .unwrap_or(0);
                    peak as f64 * hz_per_bin
                })
                .collect()
        }
    }
}

impl ModelSpec {
    /// Validate `config` against `tensors` (all must be f32, finite, of the planned shapes, and
    /// none may be left unused) and prepare the layers.
    pub fn new(config: ModelConfig, mut tensors: BTreeMap<String, HostTensor>) -> Result<Self> {
        let plan = plan(&config)?;
        for (name, shape) in &plan.tensors {
            let t = tensors.get(name).ok_or_else(|| {
                bad(format!(
                    "missing tensor {name:?} (expected shape {shape:?})"
                ))
            })?;
            if &t.shape != shape {
                return Err(bad(format!(
                    "tensor {name:?} has shape {:?}, the config needs {shape:?}",
                    t.shape
                )));
            }
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "tensor {name:?} holds a non-finite value at index {i}"
                )));
            }
        }
        let planned: std::collections::HashSet<&str> =
            plan.tensors.iter().map(|(n, _)| n.as_str()).collect();
        if let Some(extra) = tensors.keys().find(|k| !planned.contains(k.as_str())) {
            return Err(bad(format!(
                "tensor {extra:?} is not used by any layer of the config (wrong config or wrong file?)"
            )));
        }
        let parameter_count = tensors.values().map(|t| t.data.len()).sum();

        let fe = &config.frontend;
        let fb = &fe.filterbank;
        let top = f_max(&config);
        let (sr, n_fft) = (config.sample_rate, fe.n_fft);
        let projection = match fb.kind {
            FilterbankKind::Bins => {
                let (start, end) = dsp::bin_range(sr, n_fft, fb.f_min, top);
                Projection::Bins { start, end }
            }
            FilterbankKind::Mel => Projection::Matrix(HostTensor {
                shape: vec![plan.stft.bins(), plan.filters],
                data: dsp::mel_filterbank(sr, n_fft, plan.filters, fb.f_min, top),
            }),
            FilterbankKind::Linear => Projection::Matrix(HostTensor {
                shape: vec![plan.stft.bins(), plan.filters],
                data: dsp::linear_filterbank(sr, n_fft, plan.filters, fb.f_min, top),
            }),
            FilterbankKind::Custom => {
                Projection::Matrix(tensors.remove("frontend.filterbank").expect("planned"))
            }
        };
        let normalize = match fe.normalize {
            NormalizeMode::None => None,
            NormalizeMode::Mean => Some(Normalization::Mean),
            NormalizeMode::MeanVar => Some(Normalization::MeanVar),
            NormalizeMode::Whisper => Some(Normalization::Range(RangeFloor::WHISPER)),
            NormalizeMode::Global => {
                let mean = tensors.remove("frontend.mean").expect("planned");
                let std = tensors.remove("frontend.std").expect("planned");
                if let Some(i) = std.data.iter().position(|s| *s <= 0.0) {
                    return Err(bad(format!(
                        "tensor \"frontend.std\" must be > 0 everywhere (index {i} is {})",
                        std.data[i]
                    )));
                }
                Some(Normalization::Global { mean, std })
            }
        };
        let frontend = FrontendSpec {
            stft: plan.stft,
            window: HostTensor::vector(dsp::window(
                fe.window,
                fe.win_length.unwrap_or(n_fft),
                n_fft,
            )),
            projection,
            dct: fe.dct.map(|d| HostTensor {
                shape: vec![plan.filters, d.n_coeffs],
                data: dsp::dct_basis(plan.filters, d.n_coeffs),
            }),
            floor: fe.log.floor_below_max.map(RangeFloor::floor),
            normalize,
        };

        let encoder = config
            .encoder
            .as_ref()
            .map(|enc| encoder::from_host(enc, &mut tensors, plan.feature_shape[0]));
        let mut layers = Vec::with_capacity(config.layers.len());
        for layer in &config.layers {
            layers.push(match layer {
                LayerConfig::Conv2d {
                    name,
                    stride,
                    padding,
                    batchnorm,
                    bn_eps,
                    activation: act,
                    ..
                } => {
                    let mut weight = tensors.remove(&format!("{name}.weight")).expect("planned");
                    let mut bias = tensors.remove(&format!("{name}.bias"));
                    if *batchnorm {
                        // Fold: w' = w·s[o], b' = (b − μ)·s + β  with s = γ/√(σ²+ε).
                        let (scale, shift) = bn_affine(
                            &mut tensors,
                            &format!("{name}.bn."),
                            bn_eps.unwrap_or(BN_EPS),
                        );
                        let per_out = weight.data.len() / scale.len();
                        for (o, chunk) in weight.data.chunks_mut(per_out).enumerate() {
                            chunk.iter_mut().for_each(|w| *w *= scale[o]);
                        }
                        let b = bias.map_or_else(|| vec![0.0; scale.len()], |t| t.data);
                        bias = Some(HostTensor::vector(
                            b.iter()
                                .zip(&scale)
                                .zip(&shift)
                                .map(|((b, s), t)| b * s + t)
                                .collect(),
                        ));
                    }
                    Layer::Conv2d {
                        weight,
                        bias,
                        params: Conv2dParams::symmetric(*stride, *padding),
                        activation: activation(*act),
                    }
                }
                LayerConfig::BatchNorm {
                    name,
                    eps,
                    activation: act,
                } => {
                    let (scale, shift) =
                        bn_affine(&mut tensors, &format!("{name}."), eps.unwrap_or(BN_EPS));
                    Layer::ChannelAffine {
                        scale: HostTensor::vector(scale),
                        shift: HostTensor::vector(shift),
                        activation: activation(*act),
                    }
                }
                LayerConfig::Mfm => Layer::Mfm,
                LayerConfig::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                } => Layer::MaxPool2d(pool_params(*kernel, *stride, *padding)),
                LayerConfig::GlobalAvgPool => Layer::GlobalPool(GlobalPool::Avg),
                LayerConfig::GlobalMaxPool => Layer::GlobalPool(GlobalPool::Max),
                LayerConfig::Flatten => Layer::Flatten,
                LayerConfig::Linear {
                    name,
                    activation: act,
                    ..
                } => Layer::Linear {
                    weight: tensors.remove(&format!("{name}.weight")).expect("planned"),
                    bias: tensors.remove(&format!("{name}.bias")),
                    activation: activation(*act),
                },
            });
        }
        let log = match fe.log.kind {
            LogKind::Ln => LogSpec::Ln { eps: fe.log.eps },
            LogKind::Log10 => LogSpec::Log10 { eps: fe.log.eps },
            LogKind::Db => LogSpec::Db { eps: fe.log.eps },
            LogKind::Log10Clamp => LogSpec::Log10Clamp { eps: fe.log.eps },
        };
        let bin_centres_hz = bin_centres_hz(&frontend.projection, sr, n_fft);
        Ok(ModelSpec {
            facts: NetworkFacts {
                config,
                window_samples: plan.window_samples,
                hop_samples: plan.hop_samples,
                min_samples: plan.min_samples,
                feature_shape: plan.feature_shape,
                outputs: plan.outputs,
                parameter_count,
                largest_tensor: plan.largest_tensor,
                log,
                bin_centres_hz,
            },
            frontend,
            encoder,
            layers,
        })
    }
}
