//! Checking a model config on its own, before any tensor is read: sanity of every field, the
//! geometry (window, STFT frames, features, the encoder's positions) and the shape walk through
//! the layer list, which yields the list of tensors the file must hold.

use super::config::*;
use super::dsp;
use super::encoder;
use crate::backend::{Activation, Conv2dParams, PoolParams, StftParams};
use crate::{Error, Result};

/// Shape of the activations between layers (batch dimension omitted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Image { c: usize, h: usize, w: usize },
    Flat(usize),
}

impl Act {
    fn elements(self) -> usize {
        match self {
            Act::Image { c, h, w } => c * h * w,
            Act::Flat(n) => n,
        }
    }

    fn channels(self) -> usize {
        match self {
            Act::Image { c, .. } => c,
            Act::Flat(n) => n,
        }
    }
}

/// What the config implies before any tensor is read: geometry and the tensors required.
pub struct Plan {
    pub window_samples: usize,
    pub hop_samples: usize,
    pub min_samples: usize,
    pub stft: StftParams,
    pub feature_shape: [usize; 2],
    /// Filterbank output width (before the DCT).
    pub filters: usize,
    pub outputs: usize,
    /// Every tensor the file must contain, with its shape, in layer order.
    pub tensors: Vec<(String, Vec<usize>)>,
    /// Elements per window of the largest tensor the forward pass makes (for batch splitting).
    pub largest_tensor: usize,
}

pub(super) fn bad(msg: impl Into<String>) -> Error {
    Error::model(msg)
}

pub(super) fn activation(cfg: ActivationConfig) -> Activation {
    match cfg {
        ActivationConfig::None => Activation::None,
        ActivationConfig::Relu => Activation::Relu,
        ActivationConfig::Sigmoid => Activation::Sigmoid,
        ActivationConfig::LeakyRelu(s) => Activation::LeakyRelu(s),
        ActivationConfig::Gelu => Activation::Gelu,
    }
}

pub(super) fn pool_params(
    kernel: [usize; 2],
    stride: Option<[usize; 2]>,
    padding: [usize; 2],
) -> PoolParams {
    PoolParams {
        kernel,
        stride: stride.unwrap_or(kernel),
        padding,
    }
}

/// Nyquist-limited upper filterbank edge.
pub(super) fn f_max(config: &ModelConfig) -> f64 {
    let nyquist = config.sample_rate as f64 / 2.0;
    config.frontend.filterbank.f_max.unwrap_or(nyquist)
}

/// A config's `format` and `version` are ones this build reads.
pub(super) fn check_format(format: &str, version: u32) -> Result<()> {
    if format != FORMAT_NAME {
        return Err(bad(format!(
            "config format is {format:?}, expected {FORMAT_NAME:?}"
        )));
    }
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(bad(format!(
            "unsupported config version {version} (this build reads versions {SUPPORTED_VERSIONS:?}); \
             upgrade deepscreen"
        )));
    }
    Ok(())
}

/// Samples per window, between windows and at least, for `window` at `sample_rate` (both
/// checked).
pub(super) fn window_samples(
    window: &WindowConfig,
    sample_rate: u32,
) -> Result<(usize, usize, usize)> {
    if !(8_000..=192_000).contains(&sample_rate) {
        return Err(bad(format!(
            "sample_rate {sample_rate} is outside 8000..=192000 Hz"
        )));
    }
    let sr = sample_rate as f64;
    let w = window;
    if !(w.seconds > 0.0 && w.seconds <= 600.0) {
        return Err(bad(format!(
            "window.seconds {} must be in (0, 600]",
            w.seconds
        )));
    }
    if !(w.hop_seconds > 0.0 && w.hop_seconds <= w.seconds) {
        return Err(bad(format!(
            "window.hop_seconds {} must be in (0, window.seconds = {}]",
            w.hop_seconds, w.seconds
        )));
    }
    if w.min_seconds.is_nan() || w.min_seconds < 0.0 {
        return Err(bad("window.min_seconds must be ≥ 0"));
    }
    let window_samples = (w.seconds * sr).round() as usize;
    let hop_samples = ((w.hop_seconds * sr).round() as usize).max(1);
    let min_samples = ((w.min_seconds * sr).round() as usize).clamp(1, window_samples);
    Ok((window_samples, hop_samples, min_samples))
}

/// Check the config on its own and walk the layer list.
pub fn plan(config: &ModelConfig) -> Result<Plan> {
    check_format(&config.format, config.version)?;
    let (window_samples, hop_samples, min_samples) =
        window_samples(&config.window, config.sample_rate)?;
    let sr = config.sample_rate as f64;

    let fe = &config.frontend;
    let win_length = fe.win_length.unwrap_or(fe.n_fft);
    if fe.n_fft < 2 || fe.hop_length == 0 || win_length == 0 || win_length > fe.n_fft {
        return Err(bad(format!(
            "frontend: need n_fft ≥ 2, hop_length ≥ 1 and 1 ≤ win_length ≤ n_fft \
             (got n_fft {}, hop_length {}, win_length {win_length})",
            fe.n_fft, fe.hop_length
        )));
    }
    if !(fe.power > 0.0 && fe.power.is_finite()) {
        return Err(bad(format!("frontend.power {} must be > 0", fe.power)));
    }
    if !(fe.log.eps > 0.0 && fe.log.eps.is_finite()) {
        return Err(bad(format!("frontend.log.eps {} must be > 0", fe.log.eps)));
    }
    if let Some(range) = fe.log.floor_below_max
        && !(range > 0.0 && range.is_finite())
    {
        return Err(bad(format!(
            "frontend.log.floor_below_max {range} must be a finite value > 0"
        )));
    }
    let stft = StftParams {
        n_fft: fe.n_fft,
        hop: fe.hop_length,
        center: fe.center,
        power: fe.power,
        drop_last: fe.drop_last_frame,
        keep_bins: None,
    };
    let frames = stft.frames(window_samples).ok_or_else(|| {
        bad(format!(
            "window of {window_samples} samples is shorter than n_fft {}",
            fe.n_fft
        ))
    })?;
    let bins = stft.bins();
    let fb = &fe.filterbank;
    let top = f_max(config);
    if fb.kind != FilterbankKind::Custom && !(fb.f_min >= 0.0 && fb.f_min < top && top <= sr / 2.0)
    {
        return Err(bad(format!(
            "frontend.filterbank: need 0 ≤ f_min < f_max ≤ Nyquist ({} Hz), got {}..{top}",
            sr / 2.0,
            fb.f_min
        )));
    }
    let mut tensors = Vec::new();
    let filters = match fb.kind {
        FilterbankKind::Bins => {
            let (start, end) = dsp::bin_range(config.sample_rate, fe.n_fft, fb.f_min, top);
            if start >= end {
                return Err(bad(
                    "frontend.filterbank: no FFT bin lies in [f_min, f_max]",
                ));
            }
            end - start
        }
        FilterbankKind::Mel | FilterbankKind::Linear => {
            if fb.n_filters == 0 {
                return Err(bad("frontend.filterbank.n_filters must be ≥ 1"));
            }
            fb.n_filters
        }
        FilterbankKind::Custom => {
            if fb.n_filters == 0 {
                return Err(bad(
                    "frontend.filterbank.n_filters must be ≥ 1 for a custom filterbank",
                ));
            }
            tensors.push(("frontend.filterbank".to_string(), vec![bins, fb.n_filters]));
            fb.n_filters
        }
    };
    let features = match fe.dct {
        Some(d) if d.n_coeffs == 0 || d.n_coeffs > filters => {
            return Err(bad(format!(
                "frontend.dct.n_coeffs {} must be in 1..={filters} (the filter count)",
                d.n_coeffs
            )));
        }
        Some(d) => d.n_coeffs,
        None => filters,
    };
    if fe.normalize == NormalizeMode::Global {
        tensors.push(("frontend.mean".to_string(), vec![features]));
        tensors.push(("frontend.std".to_string(), vec![features]));
    }

    let mut largest_tensor = window_samples
        .max(frames * stft.bins())
        .max(frames * filters)
        .max(frames * features);
    // The classifier's input image: the features, or the encoder's hidden states.
    let (rows, cols) = match &config.encoder {
        None => (frames, features),
        Some(enc) => {
            let positions = plan_encoder(enc, frames)?;
            tensors.extend(encoder::tensor_shapes(enc, features));
            // The widest activation is the MLP's [positions, 4·width].
            largest_tensor = largest_tensor.max(positions * 4 * enc.width);
            (positions, enc.width)
        }
    };
    let outputs = if config.layers.is_empty() {
        if config.encoder.is_none() {
            return Err(bad("layers: the model has no layers"));
        }
        0 // an encoder front-end without a head: features only
    } else {
        plan_classifier(
            config,
            Act::Image {
                c: 1,
                h: rows,
                w: cols,
            },
            &mut tensors,
            &mut largest_tensor,
        )?
    };
    finish_plan(
        config,
        Plan {
            window_samples,
            hop_samples,
            min_samples,
            stft,
            feature_shape: [rows, cols],
            filters,
            outputs,
            tensors,
            largest_tensor,
        },
    )
}

/// Walk the classifier's layers from its input `act`: every tensor they need goes into
/// `tensors`, the largest activation into `largest_tensor`; returns the output count, checked
/// against `config.output`.
fn plan_classifier(
    config: &ModelConfig,
    mut act: Act,
    tensors: &mut Vec<(String, Vec<usize>)>,
    largest_tensor: &mut usize,
) -> Result<usize> {
    for (i, layer) in config.layers.iter().enumerate() {
        let at = |msg: String| bad(format!("layer {i} ({}): {msg}", layer_label(layer)));
        let image = |act: Act| match act {
            Act::Image { c, h, w } => Ok((c, h, w)),
            Act::Flat(_) => Err(at(format!(
                "needs a [C, H, W] input, got a flat vector {act:?}"
            ))),
        };
        act = match layer {
            LayerConfig::Conv2d {
                name,
                out_channels,
                kernel,
                stride,
                padding,
                bias,
                batchnorm,
                ..
            } => {
                let (c, h, w) = image(act)?;
                if *out_channels == 0 || stride.contains(&0) {
                    return Err(at("out_channels and stride must be ≥ 1".into()));
                }
                let params = Conv2dParams::symmetric(*stride, *padding);
                let [ho, wo] = params
                    .output_hw(h, w, *kernel)
                    .ok_or_else(|| at(format!("kernel {kernel:?} does not fit input {h}x{w}")))?;
                tensors.push((
                    format!("{name}.weight"),
                    vec![*out_channels, c, kernel[0], kernel[1]],
                ));
                if *bias {
                    tensors.push((format!("{name}.bias"), vec![*out_channels]));
                }
                if *batchnorm {
                    for part in BN_PARTS {
                        tensors.push((format!("{name}.bn.{part}"), vec![*out_channels]));
                    }
                }
                Act::Image {
                    c: *out_channels,
                    h: ho,
                    w: wo,
                }
            }
            LayerConfig::BatchNorm { name, .. } => {
                for part in BN_PARTS {
                    tensors.push((format!("{name}.{part}"), vec![act.channels()]));
                }
                act
            }
            LayerConfig::Mfm => {
                let c = act.channels();
                if !c.is_multiple_of(2) {
                    return Err(at(format!("needs an even channel count, got {c}")));
                }
                match act {
                    Act::Image { c, h, w } => Act::Image { c: c / 2, h, w },
                    Act::Flat(n) => Act::Flat(n / 2),
                }
            }
            LayerConfig::MaxPool2d {
                kernel,
                stride,
                padding,
            } => {
                let (c, h, w) = image(act)?;
                let p = pool_params(*kernel, *stride, *padding);
                if p.stride.contains(&0) || p.kernel.contains(&0) {
                    return Err(at("kernel and stride must be ≥ 1".into()));
                }
                if p.padding[0] * 2 > p.kernel[0] || p.padding[1] * 2 > p.kernel[1] {
                    return Err(at("padding must be at most half the kernel".into()));
                }
                let [ho, wo] = p
                    .output_hw(h, w)
                    .ok_or_else(|| at(format!("kernel {kernel:?} does not fit input {h}x{w}")))?;
                Act::Image { c, h: ho, w: wo }
            }
            LayerConfig::GlobalAvgPool | LayerConfig::GlobalMaxPool => {
                let (c, _, _) = image(act)?;
                Act::Flat(c)
            }
            LayerConfig::Flatten => match act {
                Act::Image { c, h, w } => Act::Flat(c * h * w),
                flat => flat,
            },
            LayerConfig::Linear {
                name,
                out_features,
                bias,
                ..
            } => {
                let Act::Flat(n) = act else {
                    return Err(at(format!(
                        "needs a flat input (add a flatten or global pool layer first), got {act:?}"
                    )));
                };
                if *out_features == 0 {
                    return Err(at("out_features must be ≥ 1".into()));
                }
                tensors.push((format!("{name}.weight"), vec![*out_features, n]));
                if *bias {
                    tensors.push((format!("{name}.bias"), vec![*out_features]));
                }
                Act::Flat(*out_features)
            }
        };
        *largest_tensor = (*largest_tensor).max(act.elements());
    }
    let Act::Flat(outputs) = act else {
        return Err(bad(format!(
            "the last layer must produce a flat vector (end with linear), got {act:?}"
        )));
    };
    match config.output.kind {
        OutputKind::Logit if outputs != 1 => {
            return Err(bad(format!(
                "output.kind \"logit\" needs exactly 1 output, the last layer has {outputs}"
            )));
        }
        OutputKind::Softmax if outputs < 2 || config.output.bona_fide_index >= outputs => {
            return Err(bad(format!(
                "output.kind \"softmax\" needs ≥ 2 outputs and bona_fide_index < outputs \
                 (got {outputs} outputs, index {})",
                config.output.bona_fide_index
            )));
        }
        _ => {}
    }
    Ok(outputs)
}

/// Check the encoder's geometry; the sequence length after its stem.
fn plan_encoder(enc: &EncoderConfig, frames: usize) -> Result<usize> {
    let at = |msg: String| bad(format!("encoder: {msg}"));
    if enc.width == 0 || enc.heads == 0 || !enc.width.is_multiple_of(enc.heads) {
        return Err(at(format!(
            "width {} must be a positive multiple of heads {}",
            enc.width, enc.heads
        )));
    }
    let positions = encoder::positions(frames)
        .ok_or_else(|| at(format!("{frames} frames are too few for the stem")))?;
    if positions > enc.max_positions {
        return Err(at(format!(
            "the window gives {positions} positions, the table has {} (shorten window.seconds)",
            enc.max_positions
        )));
    }
    match &enc.read {
        EncoderRead::Layer(i) if *i > enc.layers => {
            return Err(at(format!(
                "read.layer {i} is past the last block ({})",
                enc.layers
            )));
        }
        EncoderRead::Mix(terms) => {
            if terms.is_empty() {
                return Err(at("read.mix is empty".to_string()));
            }
            for t in terms {
                if t.state > enc.layers + 1 {
                    return Err(at(format!(
                        "read.mix state {} is past the final LayerNorm ({})",
                        t.state,
                        enc.layers + 1
                    )));
                }
                if !t.weight.is_finite() {
                    return Err(at(format!(
                        "read.mix state {}: weight must be finite",
                        t.state
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(positions)
}

/// The checks every plan ends with (calibration, threshold, unique tensor names).
fn finish_plan(config: &ModelConfig, plan: Plan) -> Result<Plan> {
    let cal = config.calibration;
    if !(cal.scale.is_finite() && cal.bias.is_finite()) {
        return Err(bad("calibration scale and bias must be finite"));
    }
    if !(0.0..=1.0).contains(&config.threshold) {
        return Err(bad(format!(
            "threshold {} must be in [0, 1]",
            config.threshold
        )));
    }
    if let Some(rule) = &config.segment_rule {
        rule.check().map_err(bad)?;
    }
    let mut seen = std::collections::HashSet::new();
    for (name, _) in &plan.tensors {
        if !seen.insert(name) {
            return Err(bad(format!("two layers use the same tensor name {name:?}")));
        }
    }
    Ok(plan)
}

/// Batch-norm tensors, in PyTorch's `state_dict` naming.
pub const BN_PARTS: [&str; 4] = ["weight", "bias", "running_mean", "running_var"];
pub(super) const BN_EPS: f32 = 1e-5;

fn layer_label(layer: &LayerConfig) -> String {
    match layer {
        LayerConfig::Conv2d { name, .. } => format!("conv2d {name:?}"),
        LayerConfig::BatchNorm { name, .. } => format!("batch_norm {name:?}"),
        LayerConfig::Linear { name, .. } => format!("linear {name:?}"),
        LayerConfig::Mfm => "mfm".into(),
        LayerConfig::MaxPool2d { .. } => "max_pool2d".into(),
        LayerConfig::GlobalAvgPool => "global_avg_pool".into(),
        LayerConfig::GlobalMaxPool => "global_max_pool".into(),
        LayerConfig::Flatten => "flatten".into(),
    }
}
