//! Model format validation and the whole forward pass against an f64 reference that applies
//! every layer literally (batch norms unfolded, softmax then logit, calibration).

use std::collections::BTreeMap;

use crate::common::*;
use deepscreen::backend::cpu::CpuBackend;
use deepscreen::backend::{Activation, BackendKind};
use deepscreen::model::HostTensor;
use deepscreen::model::config::*;
use deepscreen::model::{Detector, FusionSpec, Model, ModelConfig, dsp, file};
use serde_json::json;

/// Every layer type, mel + DCT + mean/var normalisation, centred Hamming STFT, softmax output.
fn config_a() -> ModelConfig {
    serde_json::from_value(json!({
        "format": "deepscreen-model", "version": 1, "id": "test-a",
        "sample_rate": 8000,
        "window": {"seconds": 0.25, "hop_seconds": 0.125},
        "frontend": {
            "n_fft": 64, "win_length": 48, "hop_length": 32, "window": "hamming", "center": true,
            "filterbank": {"kind": "mel", "n_filters": 20, "f_min": 50.0, "f_max": 3800.0},
            "log": {"kind": "ln", "eps": 1e-6},
            "dct": {"n_coeffs": 12},
            "normalize": "mean_var"
        },
        "layers": [
            {"type": "conv2d", "name": "c1", "out_channels": 8, "kernel": [3, 3], "padding": [1, 1], "batchnorm": true},
            {"type": "mfm"},
            {"type": "max_pool2d", "kernel": [2, 2], "padding": [1, 1]},
            {"type": "batch_norm", "name": "bn1", "activation": "relu"},
            {"type": "conv2d", "name": "c2", "out_channels": 6, "kernel": [3, 1], "stride": [2, 1], "bias": false,
             "activation": {"leaky_relu": 0.1}},
            {"type": "global_max_pool"},
            {"type": "batch_norm", "name": "bn2"},
            {"type": "linear", "name": "fc1", "out_features": 4, "activation": "sigmoid"},
            {"type": "mfm"},
            {"type": "linear", "name": "fc2", "out_features": 3}
        ],
        "output": {"kind": "softmax", "bona_fide_index": 1},
        "calibration": {"scale": 0.8, "bias": 0.3},
        "threshold": 0.4
    }))
    .unwrap()
}

/// Bins front-end in dB, global normalisation, strided conv, flatten, logit output.
fn config_b() -> ModelConfig {
    serde_json::from_value(json!({
        "format": "deepscreen-model", "version": 1, "id": "test-b",
        "sample_rate": 16000,
        "window": {"seconds": 0.1, "hop_seconds": 0.1, "pad": "zeros"},
        "frontend": {
            "n_fft": 128, "hop_length": 40,
            "filterbank": {"kind": "bins", "f_min": 300.0, "f_max": 6000.0},
            "log": {"kind": "db", "eps": 1e-10},
            "normalize": "global"
        },
        "layers": [
            {"type": "conv2d", "name": "conv", "out_channels": 4, "kernel": [5, 5], "stride": [2, 2], "activation": "relu"},
            {"type": "max_pool2d", "kernel": [2, 3], "stride": [1, 2]},
            {"type": "flatten"},
            {"type": "linear", "name": "out", "out_features": 1}
        ],
        "output": {"kind": "logit"},
        "calibration": {"scale": 1.3, "bias": -0.2}
    }))
    .unwrap()
}

fn act_of(cfg: ActivationConfig) -> Activation {
    match cfg {
        ActivationConfig::None => Activation::None,
        ActivationConfig::Relu => Activation::Relu,
        ActivationConfig::Sigmoid => Activation::Sigmoid,
        ActivationConfig::LeakyRelu(s) => Activation::LeakyRelu(s),
        ActivationConfig::Gelu => Activation::Gelu,
    }
}

fn t64(tensors: &BTreeMap<String, HostTensor>, name: &str) -> Vec<f64> {
    to_f64(&tensors[name].data)
}

fn bn_params(tensors: &BTreeMap<String, HostTensor>, prefix: &str) -> [Vec<f32>; 4] {
    ["weight", "bias", "running_mean", "running_var"]
        .map(|p| tensors[&format!("{prefix}{p}")].data.clone())
}

/// The model computed literally in f64 from the config, one window at a time.
fn reference_scores(
    config: &ModelConfig,
    tensors: &BTreeMap<String, HostTensor>,
    windows: &[f32],
    count: usize,
) -> Vec<f64> {
    let fe = &config.frontend;
    let len = windows.len() / count;
    let win = dsp::window(fe.window, fe.win_length.unwrap_or(fe.n_fft), fe.n_fft);
    let (frames, power) = ref_stft_power(
        windows,
        count,
        &win,
        fe.n_fft,
        fe.hop_length,
        fe.center,
        fe.power as f64,
    );
    let bins = fe.n_fft / 2 + 1;
    let log = |x: f64| match fe.log.kind {
        LogKind::Ln => (x + fe.log.eps as f64).ln(),
        LogKind::Log10 => (x + fe.log.eps as f64).log10(),
        LogKind::Db => 10.0 * x.max(fe.log.eps as f64).log10(),
        LogKind::Log10Clamp => x.max(fe.log.eps as f64).log10(),
    };
    let sr = config.sample_rate;
    let top = fe.filterbank.f_max.unwrap_or(sr as f64 / 2.0);
    let mut feats: Vec<f64>;
    let mut width: usize;
    match fe.filterbank.kind {
        FilterbankKind::Bins => {
            let start = (0..bins)
                .find(|k| *k as f64 * sr as f64 / fe.n_fft as f64 >= fe.filterbank.f_min)
                .unwrap();
            let end = (0..bins)
                .rfind(|k| *k as f64 * sr as f64 / fe.n_fft as f64 <= top)
                .unwrap()
                + 1;
            width = end - start;
            feats = power
                .chunks(bins)
                .flat_map(|row| row[start..end].iter().map(|&v| log(v)).collect::<Vec<_>>())
                .collect();
        }
        FilterbankKind::Mel => {
            width = fe.filterbank.n_filters;
            let fb = dsp::mel_filterbank(sr, fe.n_fft, width, fe.filterbank.f_min, top);
            feats = power
                .chunks(bins)
                .flat_map(|row| {
                    (0..width)
                        .map(|m| log((0..bins).map(|k| row[k] * fb[k * width + m] as f64).sum()))
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        _ => unimplemented!("not used by these tests"),
    }
    if let Some(d) = fe.dct {
        let basis = dsp::dct_basis(width, d.n_coeffs);
        feats = feats
            .chunks(width)
            .flat_map(|row| {
                (0..d.n_coeffs)
                    .map(|k| {
                        (0..width)
                            .map(|i| row[i] * basis[i * d.n_coeffs + k] as f64)
                            .sum()
                    })
                    .collect::<Vec<f64>>()
            })
            .collect();
        width = d.n_coeffs;
    }
    match fe.normalize {
        NormalizeMode::None => {}
        NormalizeMode::Global => {
            let (m, s) = (t64(tensors, "frontend.mean"), t64(tensors, "frontend.std"));
            feats
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = (*v - m[i % width]) / s[i % width]);
        }
        mode => {
            for item in feats.chunks_mut(frames * width) {
                for f in 0..width {
                    let vals: Vec<f64> = (0..frames).map(|t| item[t * width + f]).collect();
                    let mean = vals.iter().sum::<f64>() / frames as f64;
                    let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / frames as f64;
                    for t in 0..frames {
                        let c = item[t * width + f] - mean;
                        item[t * width + f] = if mode == NormalizeMode::MeanVar {
                            c / (var + 1e-5).sqrt()
                        } else {
                            c
                        };
                    }
                }
            }
        }
    }
    let _ = len;
    // classifier
    let mut x = feats;
    let mut shape = vec![count, 1, frames, width];
    for layer in &config.layers {
        match layer {
            LayerConfig::Conv2d {
                name,
                out_channels,
                kernel,
                stride,
                padding,
                bias,
                batchnorm,
                activation,
                ..
            } => {
                let b = bias.then(|| t64(tensors, &format!("{name}.bias")));
                let (mut y, [ho, wo]) = ref_conv2d(
                    &x,
                    [shape[0], shape[1], shape[2], shape[3]],
                    &t64(tensors, &format!("{name}.weight")),
                    [*out_channels, kernel[0], kernel[1]],
                    b.as_deref(),
                    *stride,
                    [*padding, *padding],
                    Activation::None,
                );
                if *batchnorm {
                    y = ref_batch_norm(
                        &y,
                        *out_channels,
                        ho * wo,
                        &bn_params(tensors, &format!("{name}.bn.")),
                        1e-5,
                    );
                }
                x = y
                    .into_iter()
                    .map(|v| ref_act(v, act_of(*activation)))
                    .collect();
                shape = vec![shape[0], *out_channels, ho, wo];
            }
            LayerConfig::BatchNorm {
                name, activation, ..
            } => {
                let inner: usize = shape[2..].iter().product();
                x = ref_batch_norm(
                    &x,
                    shape[1],
                    inner,
                    &bn_params(tensors, &format!("{name}.")),
                    1e-5,
                )
                .into_iter()
                .map(|v| ref_act(v, act_of(*activation)))
                .collect();
            }
            LayerConfig::Mfm => {
                let inner: usize = shape[2..].iter().product();
                x = ref_mfm(&x, shape[0], shape[1], inner);
                shape[1] /= 2;
            }
            LayerConfig::MaxPool2d {
                kernel,
                stride,
                padding,
            } => {
                let (y, [ho, wo]) = ref_max_pool(
                    &x,
                    [shape[0], shape[1], shape[2], shape[3]],
                    *kernel,
                    stride.unwrap_or(*kernel),
                    *padding,
                );
                x = y;
                shape = vec![shape[0], shape[1], ho, wo];
            }
            LayerConfig::GlobalAvgPool | LayerConfig::GlobalMaxPool => {
                let inner = shape[2] * shape[3];
                x = x
                    .chunks(inner)
                    .map(|p| {
                        if matches!(layer, LayerConfig::GlobalAvgPool) {
                            p.iter().sum::<f64>() / inner as f64
                        } else {
                            p.iter().copied().fold(f64::MIN, f64::max)
                        }
                    })
                    .collect();
                shape = vec![shape[0], shape[1]];
            }
            LayerConfig::Flatten => shape = vec![shape[0], shape[1..].iter().product()],
            LayerConfig::Linear {
                name,
                out_features,
                bias,
                activation,
            } => {
                let b = bias.then(|| t64(tensors, &format!("{name}.bias")));
                x = ref_linear(
                    &x,
                    shape[0],
                    shape[1],
                    &t64(tensors, &format!("{name}.weight")),
                    *out_features,
                    b.as_deref(),
                    act_of(*activation),
                );
                shape = vec![shape[0], *out_features];
            }
        }
    }
    let cal = config.calibration;
    let n = shape[1];
    x.chunks(n)
        .map(|row| {
            let logit = match config.output.kind {
                OutputKind::Logit => row[0],
                OutputKind::Softmax => {
                    let e: Vec<f64> = row.iter().map(|v| v.exp()).collect();
                    let p_bona = e[config.output.bona_fide_index] / e.iter().sum::<f64>();
                    ((1.0 - p_bona) / p_bona).ln()
                }
            };
            1.0 / (1.0 + (-(cal.scale as f64 * logit + cal.bias as f64)).exp())
        })
        .collect()
}

fn check_forward(config: ModelConfig, seed: u64) {
    let mut tensors = file::random_tensors(&config, seed).unwrap();
    if let Some(std) = tensors.get_mut("frontend.std") {
        std.data.iter_mut().for_each(|s| *s *= 20.0); // dB features have a wide range
    }
    let bytes = file::to_bytes(&config, &tensors).unwrap();
    let spec = file::load_bytes(&bytes, "test").unwrap();
    let backend = CpuBackend::new();
    let model = Model::new(&backend, spec).unwrap();
    let count = 5;
    let len = model.facts.window_samples;
    let mut r = rng(seed);
    let windows: Vec<f32> = (0..count * len)
        .map(|i| {
            0.5 * (i as f32 * 0.05 * (1 + i / len) as f32).sin()
                + 0.05 * rand::Rng::random_range(&mut r, -1.0f32..1.0)
        })
        .collect();
    let scores = model.scores(&backend, &windows, count).unwrap();
    let reference = reference_scores(&config, &tensors, &windows, count);
    for (s, r) in scores.iter().zip(&reference) {
        assert!(
            (*s as f64 - r).abs() <= 1e-4,
            "{}: score {s} vs f64 reference {r}",
            config.id
        );
    }
    // the scores must not all be the same: the test would then be blind
    assert!(
        reference.iter().any(|r| (r - reference[0]).abs() > 1e-6),
        "{}: degenerate scores {reference:?}",
        config.id
    );
}

#[test]
fn forward_matches_f64_reference_all_layer_types() {
    check_forward(config_a(), 11);
}

#[test]
fn forward_matches_f64_reference_bins_global_flatten() {
    check_forward(config_b(), 12);
}

#[test]
fn presets_load_and_score_silence_without_nan() {
    for config in [
        deepscreen::model::presets::speech_lcnn("s"),
        deepscreen::model::presets::music_cnn("m"),
    ] {
        let spec =
            file::load_bytes(&file::random_model_bytes(&config, 3).unwrap(), "preset").unwrap();
        let backend = CpuBackend::new();
        let len = spec.facts.window_samples;
        let model = Model::new(&backend, spec).unwrap();
        let scores = model.scores(&backend, &vec![0.0; 2 * len], 2).unwrap();
        assert!(
            scores
                .iter()
                .all(|s| s.is_finite() && (0.0..=1.0).contains(s)),
            "{scores:?}"
        );
    }
}

// ---- validation: each broken file fails with a message naming the problem ----

fn load_err(config: &ModelConfig, tensors: &BTreeMap<String, HostTensor>) -> String {
    let bytes = file::to_bytes(config, tensors).unwrap();
    file::load_bytes(&bytes, "m.safetensors")
        .unwrap_err()
        .to_string()
}

fn valid() -> (ModelConfig, BTreeMap<String, HostTensor>) {
    let c = config_a();
    let t = file::random_tensors(&c, 1).unwrap();
    (c, t)
}

#[test]
fn valid_model_round_trips() {
    let (c, t) = valid();
    let spec = file::load_bytes(&file::to_bytes(&c, &t).unwrap(), "m").unwrap();
    assert_eq!(spec.facts.config, c);
    assert_eq!(
        spec.facts.parameter_count,
        t.values().map(|t| t.data.len()).sum::<usize>()
    );
    assert_eq!(spec.facts.window_samples, 2000);
    assert_eq!(spec.facts.hop_samples, 1000);
    assert_eq!(spec.facts.feature_shape, [63, 12]);
}

#[test]
fn missing_tensor_is_named() {
    let (c, mut t) = valid();
    t.remove("c1.bn.running_var");
    let e = load_err(&c, &t);
    assert!(
        e.contains("m.safetensors") && e.contains("missing tensor \"c1.bn.running_var\""),
        "{e}"
    );
}

#[test]
fn wrong_shape_is_named() {
    let (c, mut t) = valid();
    t.insert(
        "fc1.weight".into(),
        HostTensor {
            shape: vec![4, 5],
            data: vec![0.0; 20],
        },
    );
    let e = load_err(&c, &t);
    assert!(
        e.contains("\"fc1.weight\" has shape [4, 5]") && e.contains("[4, 6]"),
        "{e}"
    );
}

#[test]
fn unused_tensor_is_named() {
    let (c, mut t) = valid();
    t.insert(
        "c9.weight".into(),
        HostTensor {
            shape: vec![1],
            data: vec![0.0],
        },
    );
    let e = load_err(&c, &t);
    assert!(e.contains("\"c9.weight\" is not used"), "{e}");
}

#[test]
fn non_finite_weight_is_named() {
    let (c, mut t) = valid();
    t.get_mut("fc2.bias").unwrap().data[1] = f32::NAN;
    let e = load_err(&c, &t);
    assert!(
        e.contains("\"fc2.bias\" holds a non-finite value at index 1"),
        "{e}"
    );
}

#[test]
fn unsupported_version_is_named() {
    let (mut c, t) = valid();
    c.version = 99;
    let e = load_err(&c, &t);
    assert!(e.contains("unsupported config version 99"), "{e}");
}

fn with_json_edit(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let (c, t) = valid();
    let mut value = serde_json::to_value(&c).unwrap();
    edit(&mut value);
    // bypass the typed config: write the edited JSON straight into the metadata
    let raw: Vec<(String, Vec<u8>, Vec<usize>)> = t
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
            )
        })
        .collect();
    let views: Vec<(&str, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(n, b, s)| {
            (
                n.as_str(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    let meta = std::collections::HashMap::from([("deepscreen".to_string(), value.to_string())]);
    let bytes = safetensors::serialize(views, Some(meta)).unwrap();
    file::load_bytes(&bytes, "m.safetensors")
        .unwrap_err()
        .to_string()
}

#[test]
fn unknown_layer_type_is_named() {
    let e = with_json_edit(|v| v["layers"][0]["type"] = json!("conv3d"));
    assert!(e.contains("unknown variant `conv3d`"), "{e}");
}

#[test]
fn misspelled_field_is_rejected() {
    let e = with_json_edit(|v| v["frontend"]["hop_lenght"] = json!(10));
    assert!(e.contains("unknown field `hop_lenght`"), "{e}");
}

#[test]
fn inconsistent_layers_are_explained() {
    let (mut c, t) = valid();
    c.layers.remove(5); // drop the global pool: a linear layer then sees an image
    let e = load_err(&c, &t);
    assert!(e.contains("needs a flat input"), "{e}");
    let (mut c, t) = valid();
    c.output.kind = OutputKind::Logit; // the last layer has 3 outputs
    let e = load_err(&c, &t);
    assert!(e.contains("\"logit\" needs exactly 1 output"), "{e}");
    let (mut c, t) = valid();
    c.window.seconds = 0.005; // 40 samples < n_fft 64
    c.window.hop_seconds = 0.005;
    let e = load_err(&c, &t);
    assert!(e.contains("shorter than n_fft"), "{e}");
}

#[test]
fn non_model_files_are_explained() {
    let e = file::load_bytes(b"definitely not safetensors", "x.safetensors")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("x.safetensors") && e.contains("not a valid safetensors file"),
        "{e}"
    );
    // a safetensors file without our metadata
    let data = [0u8; 8];
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    let bytes = safetensors::serialize([("w", view)], None).unwrap();
    let e = file::load_bytes(&bytes, "x").unwrap_err().to_string();
    assert!(e.contains("no deepscreen config"), "{e}");
    // a bf16 tensor (F32 and F16 are the dtypes a model may store)
    let (c, t) = valid();
    let mut raw: Vec<(String, Vec<u8>, Vec<usize>, safetensors::Dtype)> = t
        .iter()
        .map(|(n, t)| {
            (
                n.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                t.shape.clone(),
                safetensors::Dtype::F32,
            )
        })
        .collect();
    let half = &mut raw[0];
    half.1.truncate(half.1.len() / 2);
    half.3 = safetensors::Dtype::BF16;
    let views: Vec<(&str, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(n, b, s, d)| {
            (
                n.as_str(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let meta = std::collections::HashMap::from([(
        "deepscreen".to_string(),
        serde_json::to_string(&c).unwrap(),
    )]);
    let e = file::load_bytes(&safetensors::serialize(views, Some(meta)).unwrap(), "x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("dtype BF16"), "{e}");
}

/// Weights stored as F16 (half the file; the pretrained encoder ships that way) load as the
/// same f32 values as an F32 file holding the f16-rounded weights.
#[test]
fn f16_tensors_are_widened_on_load() {
    let (c, t) = valid();
    let rounded: Vec<(String, Vec<f32>, Vec<usize>)> = t
        .iter()
        .map(|(n, t)| {
            let v = t
                .data
                .iter()
                .map(|&x| half::f16::from_f32(x).to_f32())
                .collect();
            (n.clone(), v, t.shape.clone())
        })
        .collect();
    assert!(
        rounded
            .iter()
            .zip(t.values())
            .any(|((_, r, _), t)| r != &t.data),
        "rounding bites"
    );
    let write = |dtype: safetensors::Dtype| {
        let raw: Vec<(String, Vec<u8>, Vec<usize>)> = rounded
            .iter()
            .map(|(n, v, s)| {
                let bytes = match dtype {
                    safetensors::Dtype::F16 => v
                        .iter()
                        .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                        .collect(),
                    _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                };
                (n.clone(), bytes, s.clone())
            })
            .collect();
        let views: Vec<(&str, safetensors::tensor::TensorView)> = raw
            .iter()
            .map(|(n, b, s)| {
                let view = safetensors::tensor::TensorView::new(dtype, s.clone(), b).unwrap();
                (n.as_str(), view)
            })
            .collect();
        let meta = std::collections::HashMap::from([(
            "deepscreen".to_string(),
            serde_json::to_string(&c).unwrap(),
        )]);
        file::load_bytes(&safetensors::serialize(views, Some(meta)).unwrap(), "x").unwrap()
    };
    let (from_f16, from_f32) = (
        write(safetensors::Dtype::F16),
        write(safetensors::Dtype::F32),
    );
    assert_eq!(from_f16.layers, from_f32.layers);
    assert_eq!(
        from_f16.facts.parameter_count,
        from_f32.facts.parameter_count
    );
}

#[test]
fn model_resolution_explains_unknown_names() {
    let e = deepscreen::model::resolve("no-such-model")
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("\"no-such-model\" is neither an embedded model"),
        "{e}"
    );
}

#[test]
fn unavailable_backends_are_refused_with_a_reason() {
    let (c, t) = valid();
    let spec = file::load_bytes(&file::to_bytes(&c, &t).unwrap(), "m").unwrap();
    let cuda_ok = deepscreen::backend::cuda::status().0;
    if !cuda_ok {
        let e = deepscreen::model::bind(BackendKind::Cuda, spec.clone())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("cuda") && (e.contains("no CUDA") || e.contains("not found")),
            "{e}"
        );
    }
    // auto: cuda, then wgpu on a hardware GPU (never a software adapter), then cpu
    let scorer = deepscreen::model::bind(BackendKind::Auto, spec).unwrap();
    let expected = if cuda_ok {
        "cuda"
    } else if deepscreen::backend::wgpu::preferred_by_auto() {
        "wgpu"
    } else {
        "cpu"
    };
    assert_eq!(scorer.backend_name(), expected);
}

// ---- front-end constants: properties from their definitions ----

#[test]
fn mel_scale_and_filterbank_follow_htk() {
    assert!(
        (dsp::hz_to_mel(1000.0) - 1000.0).abs() < 0.1,
        "HTK: 1000 Hz ≈ 1000 mel"
    );
    assert!((dsp::mel_to_hz(dsp::hz_to_mel(4321.0)) - 4321.0).abs() < 1e-6);
    // Each triangle peaks at its centre frequency, and only neighbouring triangles overlap.
    let (sr, n_fft, n) = (16000, 512, 40);
    let fb = dsp::mel_filterbank(sr, n_fft, n, 0.0, 8000.0);
    let bins = n_fft / 2 + 1;
    let hz_per_bin = 8000.0 / (bins - 1) as f64;
    for m in 0..n {
        let centre = dsp::mel_to_hz(dsp::hz_to_mel(8000.0) * (m + 1) as f64 / (n + 1) as f64);
        let peak = (0..bins)
            .max_by(|a, b| fb[a * n + m].total_cmp(&fb[b * n + m]))
            .unwrap();
        assert!(
            (peak as f64 * hz_per_bin - centre).abs() <= hz_per_bin,
            "filter {m}: peak bin {peak}, centre {centre} Hz"
        );
        assert!(fb.iter().all(|v| (0.0..=1.0).contains(v)));
    }
}

#[test]
fn dct_basis_is_orthonormal() {
    let n = 24;
    let b = dsp::dct_basis(n, n);
    for i in 0..n {
        for j in 0..n {
            let dot: f64 = (0..n)
                .map(|k| b[k * n + i] as f64 * b[k * n + j] as f64)
                .sum();
            assert!(
                (dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-6,
                "columns {i},{j}: {dot}"
            );
        }
    }
}

#[test]
fn periodic_hann_window_is_centred_in_n_fft() {
    let w = dsp::window(WindowFunction::Hann, 400, 512);
    assert!(w[..56].iter().all(|v| *v == 0.0) && w[456..].iter().all(|v| *v == 0.0));
    assert_eq!(w[56], 0.0);
    assert!(
        (w[56 + 200] - 1.0).abs() < 1e-7,
        "periodic Hann peaks at N/2"
    );
}

/// The Whisper encoder front-end (`models/whisper-tiny-en-encoder.safetensors`): its geometry
/// is checked against the window, and without a classifier it refuses to score.
#[test]
fn encoder_config_is_validated() {
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/whisper-tiny-en-encoder.safetensors"),
    )
    .unwrap();
    let (config, tensors) = file::read(&bytes, "whisper").unwrap();
    let spec = deepscreen::model::ModelSpec::new(config.clone(), tensors.clone()).unwrap();
    // 10 s: 1000 log-mel frames, 500 positions of width 384 for the classifier.
    assert_eq!(spec.facts.feature_shape, [500, 384]);
    assert_eq!(spec.facts.outputs, 0);
    let e = deepscreen::model::bind(BackendKind::Cpu, spec)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("without a classifier head"), "{e}");
    let with = |edit: &dyn Fn(&mut ModelConfig)| {
        let mut c = config.clone();
        edit(&mut c);
        deepscreen::model::ModelSpec::new(c, tensors.clone())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = with(&|c| {
        c.window.seconds = 31.0;
        c.window.hop_seconds = 31.0;
    });
    assert!(e.contains("1550 positions, the table has 1500"), "{e}");
    let e = with(&|c| c.encoder.as_mut().unwrap().heads = 5);
    assert!(e.contains("multiple of heads 5"), "{e}");
    let e = with(&|c| {
        c.encoder.as_mut().unwrap().read = deepscreen::model::config::EncoderRead::Layer(5)
    });
    assert!(e.contains("past the last block"), "{e}");
    use deepscreen::model::config::{EncoderRead, MixTerm};
    let e = with(&|c| c.encoder.as_mut().unwrap().read = EncoderRead::Mix(vec![]));
    assert!(e.contains("read.mix is empty"), "{e}");
    let e = with(&|c| {
        c.encoder.as_mut().unwrap().read = EncoderRead::Mix(vec![
            MixTerm {
                state: 1,
                weight: 0.5,
            },
            MixTerm {
                state: 6,
                weight: 0.5,
            },
        ])
    });
    assert!(e.contains("state 6 is past the final LayerNorm (5)"), "{e}");
    let e = with(&|c| {
        c.encoder.as_mut().unwrap().read = EncoderRead::Mix(vec![MixTerm {
            state: 2,
            weight: f32::NAN,
        }])
    });
    assert!(e.contains("weight must be finite"), "{e}");
    let e = with(&|c| c.encoder.as_mut().unwrap().layers = 3);
    assert!(
        e.contains("encoder.blocks.3"),
        "an unused block is reported: {e}"
    );
}

/// A head-only file that takes the encoder from the embedded Whisper speech model
/// (`shared_tensors`) loads into the whole model: with that model's own head it scores exactly
/// as the model does.
/// A missing source, a clash, or another encoder geometry is refused with a reason.
#[test]
fn shared_tensors_come_from_the_embedded_model() {
    let (_, bytes) = deepscreen::model::EMBEDDED
        .iter()
        .find(|(name, _)| *name == "speech-whisper")
        .unwrap();
    let (config, tensors) = file::read(bytes, "speech-whisper").unwrap();
    assert!(
        config.encoder.is_some(),
        "speech-whisper reads a Whisper encoder"
    );
    let head: BTreeMap<String, HostTensor> = tensors
        .iter()
        .filter(|(name, _)| !name.starts_with("encoder."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert!(head.len() < tensors.len() && !head.is_empty());
    let mut shared = config.clone();
    shared.id = "speech-head-only".into();
    shared.shared_tensors = Some(SharedTensors {
        from: "speech-whisper".into(),
        prefix: "encoder.".into(),
    });
    let head_bytes = file::to_bytes(&shared, &head).unwrap();
    assert!(
        head_bytes.len() * 10 < bytes.len(),
        "the head alone is small"
    );

    let backend = CpuBackend::new();
    let spec = file::load_bytes(&head_bytes, "head").unwrap();
    assert_eq!(
        spec.facts.config.shared_tensors, None,
        "resolved once loaded"
    );
    let n = (spec.facts.config.window.seconds * spec.facts.config.sample_rate as f64) as usize;
    let mut rng = rng(17);
    let windows = random_vec(&mut rng, 2 * n, -0.3, 0.3);
    let got = Model::new(&backend, spec)
        .unwrap()
        .scores(&backend, &windows, 2)
        .unwrap();
    let speech = file::load_bytes(bytes, "speech-whisper").unwrap();
    let want = Model::new(&backend, speech)
        .unwrap()
        .scores(&backend, &windows, 2)
        .unwrap();
    assert_eq!(got, want);

    let refused = |config: &ModelConfig, tensors: &BTreeMap<String, HostTensor>| {
        let b = file::to_bytes(config, tensors).unwrap();
        file::load_bytes(&b, "head").unwrap_err().to_string()
    };
    let mut missing = shared.clone();
    missing.shared_tensors.as_mut().unwrap().from = "no-such-model".into();
    assert!(refused(&missing, &head).contains("which this build lacks"));
    let mut clash = head.clone();
    clash.insert(
        "encoder.final_norm.weight".into(),
        tensors["encoder.final_norm.weight"].clone(),
    );
    assert!(refused(&shared, &clash).contains("both in the file and shared"));
    let mut other = shared.clone();
    other.encoder.as_mut().unwrap().layers += 1;
    assert!(refused(&other, &head).contains("another encoder"));
}

/// An embedded fused model: its spec, checked to window audio at `rate` in windows of `window`
/// samples and to fuse `members` (in order), each given as (id, rate, window length as
/// planned for the fused windows).
fn fused_model(name: &str, rate: u32, window: usize, members: &[(&str, u32, usize)]) -> FusionSpec {
    let Detector::Fusion(fused) = deepscreen::model::load(name).unwrap() else {
        panic!("{name} is a fused model");
    };
    assert_eq!(
        (fused.config.sample_rate, fused.window_samples),
        (rate, window)
    );
    let got: Vec<(&str, u32, usize)> = fused
        .members
        .iter()
        .map(|m| {
            let facts = &m.spec.facts;
            (
                facts.config.id.as_str(),
                facts.config.sample_rate,
                facts.window_samples,
            )
        })
        .collect();
    assert_eq!(got, members);
    fused
}

/// `count` windows scored by `detector` on the CPU backend (`inputs`: one per network).
fn cpu_scores(detector: impl Into<Detector>, inputs: &[&[f32]], count: usize) -> Vec<f32> {
    let s = deepscreen::model::bind(BackendKind::Cpu, detector).unwrap();
    s.collect(s.submit(inputs, count).unwrap()).unwrap().windows
}

/// `count` windows of the fused model's length, as the decode workers hand them to its
/// members: one buffer per member.
fn member_inputs(fused: &FusionSpec, windows: &[f32]) -> Vec<Vec<f32>> {
    let info = fused.info();
    let mut inputs = vec![Vec::new(); info.networks.len()];
    let mut network_inputs = deepscreen::audio::NetworkInputs::new(&info).unwrap();
    for w in windows.chunks_exact(info.window_samples) {
        let each = network_inputs.of(w.to_vec()).unwrap();
        inputs
            .iter_mut()
            .zip(each)
            .for_each(|(all, x)| all.extend(x));
    }
    inputs
}

/// The fused model's exact scores of `windows` (at its own rate; every member on every
/// window, its cascade off), its members given them as in `screen`.
fn fused_scores(fused: &FusionSpec, windows: &[f32], count: usize) -> Vec<f32> {
    let inputs = member_inputs(fused, windows);
    let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    cpu_scores(Detector::Fusion(fused.clone()).exact(), &refs, count)
}

/// Checks each fused window score against `sigmoid(Σ w_m·logit(p_m) + b)` in f64 from the
/// members' own scores (`members` in the fusion's order), within `tolerance`.
fn expect_fused(fused: &FusionSpec, got: &[f32], members: &[&[f32]], tolerance: f64) {
    assert_eq!(members.len(), fused.members.len());
    let logit = |p: f32| (f64::from(p) / (1.0 - f64::from(p))).ln();
    for i in 0..got.len() {
        let z = fused
            .members
            .iter()
            .zip(members)
            .map(|(m, scores)| m.weight as f64 * logit(scores[i]))
            .sum::<f64>()
            + fused.config.fusion.bias as f64;
        let want = 1.0 / (1.0 + (-z).exp());
        let each: Vec<f32> = members.iter().map(|m| m[i]).collect();
        eprintln!("window {i}: members {each:?} fused {} (f64 {want})", got[i]);
        assert!(
            (got[i] as f64 - want).abs() < tolerance,
            "window {i}: fused {} vs reference {want} (members {each:?})",
            got[i],
        );
    }
}

/// The embedded `music` model fuses the music CNN with the Whisper-encoder music head and the
/// wideband music CNN: each window scores `sigmoid(Σ w_m·logit(p_m) + b)`.
/// Reference: the two CNNs alone on the 44.1 kHz windows (the wideband one planned for them),
/// the head alone (planned for 5 s windows) on the same tones written directly at 16 kHz,
/// combined in f64. The head's path differs only by the resampler's edge transients, so the bar
/// is loose; a wrong rule (averaging probabilities, a member left out) misses it by far more.
#[test]
fn the_fused_music_model_sums_its_members_calibrated_logits() {
    // Planned for the fused model's 5 s windows.
    let fused = fused_model(
        "music",
        44100,
        220_500,
        &[
            ("music-cnn-v3.2", 44100, 220_500),
            ("music-whisper-base-v1", 16000, 80_000),
            ("music-cnn-wb-v3.2", 44100, 220_500),
        ],
    );

    // Tones below 8 kHz, the same at both rates; different per window.
    let tones = |rate: f64, n: usize, k: usize| -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 / rate;
                let f = 220.0 * (k + 1) as f64;
                (0.3 * (2.0 * std::f64::consts::PI * f * t).sin()
                    + 0.1 * (2.0 * std::f64::consts::PI * 3.1 * f * t).sin()
                    + 0.05 * (2.0 * std::f64::consts::PI * 5_000.0 * t).sin())
                    as f32
            })
            .collect()
    };
    let count = 3;
    let hi: Vec<f32> = (0..count)
        .flat_map(|k| tones(44100.0, 220_500, k))
        .collect();
    let lo: Vec<f32> = (0..count).flat_map(|k| tones(16000.0, 80_000, k)).collect();

    let got = fused_scores(&fused, &hi, count);
    let cnn = cpu_scores(
        deepscreen::model::resolve("music-cnn").unwrap(),
        &[&hi],
        count,
    );
    let head = cpu_scores(fused.members[1].spec.clone(), &[&lo], count);
    let wideband = cpu_scores(fused.members[2].spec.clone(), &[&hi], count);
    expect_fused(&fused, &got, &[&cnn, &head, &wideband], 0.02);
}

/// The embedded `speech` model fuses the narrowband speech CNN with the Whisper-encoder speech
/// head and the wideband speech CNN. All run at 16 kHz on the CNN's 4 s windows, so each member
/// sees the very samples the CNN sees and the fused score must equal
/// `sigmoid(Σ w_m·logit(p_m) + b)` computed in f64 from the models scored on their own, to float
/// rounding. (The wideband CNN, trained on 2 s windows, is scored as the fusion plans it: on the
/// same 4 s windows.)
#[test]
fn the_fused_speech_model_sums_its_members_calibrated_logits() {
    let fused = fused_model(
        "speech",
        16000,
        64_000,
        &[
            ("speech-cnn-v3", 16000, 64_000),
            ("speech-whisper-base-v4", 16000, 64_000),
            ("speech-cnn-wb-v3", 16000, 64_000),
        ],
    );

    let count = 3;
    let windows = voice_like_windows(count, 0.01);
    let got = fused_scores(&fused, &windows, count);
    let cnn = cpu_scores(
        deepscreen::model::resolve("speech-cnn").unwrap(),
        &[&windows],
        count,
    );
    let head = cpu_scores(
        deepscreen::model::resolve("speech-whisper").unwrap(),
        &[&windows],
        count,
    );
    let wideband = cpu_scores(fused.members[2].spec.clone(), &[&windows], count);
    expect_fused(&fused, &got, &[&cnn, &head, &wideband], 1e-5);
}

/// Voice-like 4 s windows at 16 kHz: a harmonic series on a gliding pitch plus `noise` of
/// white noise, one pitch per window, so the scores are not all saturated at one end.
fn voice_like_windows(count: usize, noise: f32) -> Vec<f32> {
    let mut rng = rng(29);
    let noise = random_vec(&mut rng, count * 64_000, -noise, noise);
    (0..count * 64_000)
        .map(|j| {
            let (k, i) = (j / 64_000, j % 64_000);
            let t = i as f64 / 16000.0;
            let f0 = 110.0 + 40.0 * k as f64 + 20.0 * (2.0 * std::f64::consts::PI * 0.5 * t).sin();
            let v: f64 = (1..=8)
                .map(|h| (2.0 * std::f64::consts::PI * f0 * h as f64 * t).sin() * 0.2 / h as f64)
                .sum();
            v as f32 + noise[j]
        })
        .collect()
}

/// A cascade runs the deferred member only on windows whose partial fused logit (the other
/// members') lies in [lo, hi]; those score exactly as the full fusion, the others
/// `sigmoid(partial + fill)` with the fill of their side, and say which member they skipped.
/// Reference: the members scored alone, combined in f64. The band is put between the windows'
/// partial logits so that one falls below it, one above, and the rest inside.
#[test]
fn a_cascade_skips_the_deferred_member_outside_its_band() {
    let Detector::Fusion(mut fused) = deepscreen::model::load("speech").unwrap() else {
        panic!("speech is a fusion");
    };
    let count = 5;
    // Noisier windows than the fusion test's, so the partial logits spread.
    let windows: Vec<f32> = voice_like_windows(count, 0.01)
        .chunks(64_000)
        .enumerate()
        .flat_map(|(k, w)| {
            let mut rng = rng(40 + k as u64);
            let hiss = random_vec(&mut rng, w.len(), -1.0, 1.0);
            w.iter()
                .zip(hiss)
                .map(move |(x, n)| x + n * 0.05 * k as f32)
                .collect::<Vec<f32>>()
        })
        .collect();
    let member = |k: usize| cpu_scores(fused.members[k].spec.clone(), &[&windows], count);
    let (cnn, head, wideband) = (member(0), member(1), member(2));
    let logit = |p: f32| (f64::from(p) / (1.0 - f64::from(p))).ln();
    let (w0, w1, w2) = (
        f64::from(fused.members[0].weight),
        f64::from(fused.members[1].weight),
        f64::from(fused.members[2].weight),
    );
    let bias = f64::from(fused.config.fusion.bias);
    let partial: Vec<f64> = (0..count)
        .map(|i| w0 * logit(cnn[i]) + w2 * logit(wideband[i]) + bias)
        .collect();
    let mut sorted = partial.clone();
    sorted.sort_by(f64::total_cmp);
    eprintln!("partial logits {partial:?}");
    assert!(
        sorted.windows(2).all(|p| p[1] - p[0] > 1e-3),
        "the windows' partial logits must differ to place a band between them: {sorted:?}"
    );
    let (lo, hi) = ((sorted[0] + sorted[1]) / 2.0, (sorted[3] + sorted[4]) / 2.0);
    let (fill_below, fill_above) = (-1.5f32, 0.75f32);
    fused.config.fusion.cascade = Some(Cascade {
        deferred: vec!["speech-whisper".into()],
        lo: lo as f32,
        hi: hi as f32,
        fill_below,
        fill_above,
        provenance: json!(null),
    });

    let scorer = deepscreen::model::bind(BackendKind::Cpu, fused.clone()).unwrap();
    assert!(scorer.info().cascade);
    let scores = scorer
        .collect(
            scorer
                .submit(&[&windows, &windows, &windows], count)
                .unwrap(),
        )
        .unwrap();
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    for i in 0..count {
        let (want, skipped) = if partial[i] < lo {
            (sigmoid(partial[i] + f64::from(fill_below)), true)
        } else if partial[i] > hi {
            (sigmoid(partial[i] + f64::from(fill_above)), true)
        } else {
            (sigmoid(partial[i] + w1 * logit(head[i])), false)
        };
        let got = scores.windows[i];
        assert!(
            (f64::from(got) - want).abs() < 1e-5,
            "window {i}: cascaded {got} vs reference {want} (partial {})",
            partial[i]
        );
        assert_eq!(scores.skipped(i), skipped, "window {i}");
        let row = &scores.members[i];
        assert_eq!(row[1].is_none(), skipped, "window {i}: the head's score");
        assert!(
            row[0].is_some() && row[2].is_some(),
            "the cheap members ran"
        );
        if let Some(p) = row[1] {
            assert!(
                (p - head[i]).abs() < 1e-6,
                "the head on a subset scores as on all"
            );
        }
    }
    assert_eq!((0..count).filter(|&i| scores.skipped(i)).count(), 2);

    // Exact: the cascade off, every member on every window.
    let exact = deepscreen::model::bind(BackendKind::Cpu, Detector::Fusion(fused).exact()).unwrap();
    assert!(!exact.info().cascade);
    let all = exact
        .collect(
            exact
                .submit(&[&windows, &windows, &windows], count)
                .unwrap(),
        )
        .unwrap();
    for i in 0..count {
        let want = sigmoid(partial[i] + w1 * logit(head[i]));
        assert!(
            (f64::from(all.windows[i]) - want).abs() < 1e-5,
            "exact window {i}"
        );
        assert!(!all.skipped(i));
    }
}

/// The cascade is written once over the backend: on wgpu it skips the same windows and scores
/// them as the CPU does (lavapipe in CI; skipped where no adapter starts, unless required). A
/// fusion of the two speech CNNs, deferring the wideband one, keeps it cheap on a software GPU.
#[test]
fn a_cascade_runs_alike_on_wgpu() {
    let Detector::Fusion(mut fused) = deepscreen::model::load("speech").unwrap() else {
        panic!("speech is a fusion");
    };
    fused.members.remove(1);
    fused.config.fusion.members.remove(1);
    let count = 4;
    let windows: Vec<f32> = voice_like_windows(count, 0.2);
    let narrow = cpu_scores(fused.members[0].spec.clone(), &[&windows], count);
    let logit = |p: f32| (f64::from(p) / (1.0 - f64::from(p))).ln();
    let mut partial: Vec<f64> = narrow
        .iter()
        .map(|&p| f64::from(fused.members[0].weight) * logit(p))
        .collect();
    partial.sort_by(f64::total_cmp);
    eprintln!("partial logits {partial:?}");
    assert!(
        partial.windows(2).all(|p| p[1] - p[0] > 1e-3),
        "{partial:?}"
    );
    fused.config.fusion.cascade = Some(Cascade {
        deferred: vec!["speech-cnn-wb".into()],
        lo: ((partial[0] + partial[1]) / 2.0) as f32,
        hi: ((partial[2] + partial[3]) / 2.0) as f32,
        fill_below: -1.0,
        fill_above: 1.0,
        provenance: json!(null),
    });
    let score = |kind: BackendKind| {
        deepscreen::model::bind(kind, fused.clone()).map(|s| {
            s.collect(s.submit(&[&windows, &windows], count).unwrap())
                .unwrap()
        })
    };
    let cpu = score(BackendKind::Cpu).unwrap();
    assert_eq!((0..count).filter(|&i| cpu.skipped(i)).count(), 2);
    match score(BackendKind::Wgpu) {
        Ok(gpu) => {
            for i in 0..count {
                assert_eq!(gpu.skipped(i), cpu.skipped(i), "wgpu window {i}");
                let d = (gpu.windows[i] - cpu.windows[i]).abs();
                assert!(
                    d < 1e-4,
                    "wgpu window {i}: {} vs cpu {}",
                    gpu.windows[i],
                    cpu.windows[i]
                );
            }
        }
        Err(e) => {
            assert!(!required("wgpu"), "wgpu is required but cannot start: {e}");
            eprintln!("skipping the wgpu cascade check: {e}");
        }
    }
}

/// A cascade must defer some members but not all, name members, and have a finite band.
#[test]
fn a_cascade_that_cannot_work_is_refused() {
    let Some(deepscreen::model::config::FileConfig::Fusion(base)) =
        deepscreen::model::embedded("speech").map(|b| file::read_config(b, "speech").unwrap())
    else {
        panic!("speech is a fusion");
    };
    let refused = |deferred: &[&str], lo: f32, hi: f32| {
        let mut c = base.clone();
        c.fusion.cascade = Some(Cascade {
            deferred: deferred.iter().map(|s| s.to_string()).collect(),
            lo,
            hi,
            fill_below: 0.0,
            fill_above: 0.0,
            provenance: json!(null),
        });
        file::load_detector(&file::fusion_to_bytes(&c).unwrap(), "cascaded")
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    assert!(refused(&["music-whisper"], -1.0, 1.0).contains("not a member"));
    assert!(refused(&["speech-whisper", "speech-whisper"], -1.0, 1.0).contains("twice"));
    assert!(
        refused(
            &["speech-cnn", "speech-whisper", "speech-cnn-wb"],
            -1.0,
            1.0
        )
        .contains("keeps at least one")
    );
    assert!(refused(&[], -1.0, 1.0).contains("defers at least one"));
    assert!(refused(&["speech-whisper"], 1.0, -1.0).contains("lo > hi"));
    // A non-finite number reaches the file as JSON null, itself refused.
    let nan = refused(&["speech-whisper"], f32::NAN, 1.0);
    assert!(nan.contains("null") || nan.contains("not finite"), "{nan}");
}

/// The windows a fused model's members get: a member at the fused rate gets the samples
/// themselves; the Whisper head of `music` gets each 44.1 kHz window resampled to 16 kHz on
/// its own: a 1 kHz tone stays the 1 kHz tone away from the window's edges (the filter sees
/// zeros beyond them), with the same amplitude, a constant shift under half a sample (rubato's
/// delay is trimmed in whole output samples; measured 0.18), and nothing else.
#[test]
fn fused_members_get_the_window_at_their_rate() {
    let Detector::Fusion(fused) = deepscreen::model::load("music").unwrap() else {
        panic!("music is fused");
    };
    let tone = |rate: f64, n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (0.5 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate).sin()) as f32)
            .collect()
    };
    let hi = [tone(44100.0, 220_500), tone(44100.0, 220_500)].concat();
    let inputs = member_inputs(&fused, &hi);
    assert_eq!(inputs[0], hi, "music-cnn runs at the fused rate");
    assert_eq!(inputs[2], hi, "music-cnn-wb runs at the fused rate");
    let out = &inputs[1];
    assert_eq!(out.len(), 2 * 80_000);
    let omega = 2.0 * std::f64::consts::PI * 1000.0 / 16000.0;
    for w in out.chunks(80_000) {
        let interior = 400..79_600;
        // Least-squares fit of a·sin + b·cos over the interior (whole periods: 16 samples each).
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for i in interior.clone() {
            a += w[i] as f64 * (omega * i as f64).sin();
            b += w[i] as f64 * (omega * i as f64).cos();
        }
        let half = interior.len() as f64 / 2.0;
        let (a, b) = (a / half, b / half);
        let amp = (a * a + b * b).sqrt();
        let shift = b.atan2(a) / omega;
        assert!((amp - 0.5).abs() < 5e-4, "amplitude {amp}");
        assert!(shift.abs() < 0.5, "shift {shift} samples");
        let residual = interior
            .map(|i| {
                (w[i] as f64 - a * (omega * i as f64).sin() - b * (omega * i as f64).cos()).abs()
            })
            .fold(0.0f64, f64::max);
        assert!(residual < 2e-3, "residual {residual}");
    }
}

/// A fused model file is a composite: no tensors, no network of its own, only its members,
/// weights, windows and threshold.
#[test]
fn fused_model_files_copy_no_network() {
    for name in ["music", "speech"] {
        let bytes = deepscreen::model::embedded(name).unwrap();
        let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
        assert_eq!(file.tensors().len(), 0, "{name} holds tensors");
        let FileConfig::Fusion(config) = file::read_config(bytes, name).unwrap() else {
            panic!("{name} is a fusion");
        };
        assert!(config.fusion.members.len() >= 2, "{name}");
        assert!(bytes.len() < 4096, "{name}: {} bytes", bytes.len());
    }
}

/// A fusion whose member this build lacks, or whose member is itself fused, is refused; so is
/// a fused model in the old layout (a copy of a member's network plus `fusion`).
#[test]
fn a_fusion_of_missing_or_fused_members_is_refused() {
    let bytes = deepscreen::model::embedded("music").unwrap();
    let FileConfig::Fusion(config) = file::read_config(bytes, "music").unwrap() else {
        panic!("music is a fusion");
    };
    for (member, expected) in [
        ("no-such-model", "which this build lacks"),
        ("music", "do not nest"),
    ] {
        let mut c = config.clone();
        // The wideband CNN: the Whisper head (member 1) is the one its cascade defers.
        c.fusion.members[2].model = member.into();
        let e = file::load_detector(&file::fusion_to_bytes(&c).unwrap(), "fused")
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{member}: {e}");
    }
    let mut empty = config.clone();
    empty.fusion.members.clear();
    let e = file::load_detector(&file::fusion_to_bytes(&empty).unwrap(), "fused")
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least one member"), "{e}");

    let (network, _) =
        file::read(deepscreen::model::embedded("music-cnn").unwrap(), "cnn").unwrap();
    let mut old = serde_json::to_value(&network).unwrap();
    old["fusion"] = serde_json::json!({"weight": 0.5, "members": [], "bias": 0.0});
    let meta = std::collections::HashMap::from([(METADATA_KEY.to_string(), old.to_string())]);
    let none: Vec<(&str, safetensors::tensor::TensorView)> = Vec::new();
    let e = file::load_detector(&safetensors::serialize(none, Some(meta)).unwrap(), "old")
        .unwrap_err()
        .to_string();
    assert!(e.contains("old layout"), "{e}");
    assert!(
        deepscreen::model::resolve("music")
            .unwrap_err()
            .to_string()
            .contains("fused model"),
        "a fusion has no network of its own"
    );
}

/// `--resume` names the embedded model that wrote a report: every embedded id maps back to
/// its own name (ids are unique), and an unknown id to none.
#[test]
fn each_embedded_id_names_its_model() {
    for (name, _) in deepscreen::model::EMBEDDED {
        let id = deepscreen::model::load(name).unwrap().info().id;
        assert_eq!(
            deepscreen::model::embedded_name_of(&id),
            Some(*name),
            "{id}"
        );
    }
    assert_eq!(deepscreen::model::embedded_name_of("no-such-model"), None);
}

/// models/README.md lists every embedded model once and counts them right; `screen --help`'s
/// examples name only models a user has (embedded ones), but for the one that says it is the
/// user's own.
#[test]
fn the_model_list_and_the_help_examples_name_models_a_user_has() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/README.md"),
    )
    .unwrap();
    let listed: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let mut embedded: Vec<&str> = deepscreen::model::EMBEDDED
        .iter()
        .map(|(n, _)| *n)
        .collect();
    let mut sorted = listed.clone();
    sorted.sort_unstable();
    embedded.sort_unstable();
    assert_eq!(sorted, embedded, "models/README.md's table");
    let words = [
        "", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen",
    ];
    let count = format!("All {} are compiled into the binary", words[embedded.len()]);
    assert!(
        readme.contains(&count),
        "models/README.md should say {count:?}"
    );

    let help = std::process::Command::new(env!("CARGO_BIN_EXE_deepscreen"))
        .args(["screen", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let examples: Vec<&str> = help
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("deepscreen screen") || l.contains("| deepscreen screen")
        })
        .collect();
    assert!(examples.len() >= 4, "{help}");
    for line in examples {
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(i) = words.iter().position(|w| *w == "--model") {
            let model = words[i + 1];
            assert!(
                embedded.contains(&model) || line.contains("a model you trained"),
                "the example names a model a user does not have: {line}"
            );
        }
    }
}

/// The README's "Reading the results" quotes the default models' thresholds and the figures of
/// their cards: they must be the embedded models' own and the cards' own.
#[test]
fn reading_the_results_quotes_the_models_and_their_cards() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let readme = read("README.md");
    let start = readme
        .find("## Reading the results")
        .expect("the section exists");
    let section = &readme[start..start + readme[start..].find("\n## Usage").unwrap()];
    for (name, card, figures) in [
        (
            "music",
            "models/music.md",
            ["0.33 %", "1.42 %", "1.7 %", "58.3 %"],
        ),
        (
            "speech",
            "models/speech.md",
            ["0.87 %", "1.12 %", "22.5 %", "64.6 %"],
        ),
    ] {
        let threshold = deepscreen::model::load(name).unwrap().info().threshold;
        let quoted = format!("**{threshold:.3}** (`{name}`)");
        assert!(section.contains(&quoted), "README should quote {quoted}");
        let card = read(card);
        assert!(
            card.contains(&format!("Default **{threshold:.3} = 1 % false alarms")),
            "{name}'s card states another threshold than the model's {threshold:.3}"
        );
        // The segment rule (partial fakes), as README and card state it.
        let info = deepscreen::model::load(name).unwrap().info();
        let rule = info
            .segment_rule
            .as_ref()
            .expect("the defaults carry a segment rule");
        // Three decimals, or five where three would round it to 1.000 (music's 0.99998).
        let t = rule.threshold;
        let t = if t < 0.9995 {
            format!("{t:.3}")
        } else {
            format!("{t:.5}")
        };
        assert!(
            section.contains(&format!("at or above {t}")),
            "README should quote {name}'s segment threshold {t}"
        );
        assert!(
            card.contains(&format!("scoring ≥ {t}**")),
            "{name}'s card states another segment threshold than {t}"
        );
        for figure in figures {
            assert!(section.contains(figure), "README lacks {name}'s {figure}");
            assert!(card.contains(figure), "{name}'s card lacks {figure}");
        }
    }
    assert!(section.contains("10 false flags for each true"));
}

/// A fused model file may read members from network files beside it (a candidate, a retrained
/// member) instead of the embedded ones: the file's network is the one scored, named by its
/// id; a file missing, holding another model, or named by a fusion that is not itself a file
/// is refused.
#[test]
fn a_fused_model_reads_member_files_beside_it() {
    let FileConfig::Fusion(speech) =
        file::read_config(deepscreen::model::embedded("speech").unwrap(), "speech").unwrap()
    else {
        panic!("speech is a fusion");
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("members")).unwrap();
    // speech-cnn retrained, as far as the fusion can tell: its calibration moved by +2 logits.
    let (mut cnn, tensors) =
        file::read(deepscreen::model::embedded("speech-cnn").unwrap(), "cnn").unwrap();
    cnn.id = "speech-cnn-moved".into();
    cnn.calibration.bias += 2.0;
    let member_file = dir.path().join("members/cnn.safetensors");
    std::fs::write(&member_file, file::to_bytes(&cnn, &tensors).unwrap()).unwrap();

    let mut fused = speech.clone();
    fused.id = "speech-with-a-file-member".into();
    fused.fusion.cascade = None;
    fused.fusion.members = vec![
        FusionMember {
            model: "speech-cnn-moved".into(),
            weight: 0.5,
            file: Some("members/cnn.safetensors".into()),
        },
        FusionMember {
            model: "speech-cnn-wb".into(),
            weight: 0.5,
            file: None,
        },
    ];
    let write = |config: &FusionConfig, name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, file::fusion_to_bytes(config).unwrap()).unwrap();
        path.display().to_string()
    };
    let Detector::Fusion(loaded) =
        deepscreen::model::load(&write(&fused, "fused.safetensors")).unwrap()
    else {
        panic!("a fusion");
    };
    assert_eq!(loaded.members[0].spec.facts.config.id, "speech-cnn-moved");

    let count = 3;
    let windows = voice_like_windows(count, 0.01);
    let got = fused_scores(&loaded, &windows, count);
    let moved = cpu_scores(file::load_path(&member_file).unwrap(), &[&windows], count);
    let embedded = cpu_scores(
        deepscreen::model::resolve("speech-cnn").unwrap(),
        &[&windows],
        count,
    );
    // Trained on 2 s windows: scored as the fusion plans it, on its 4 s windows.
    let wideband = cpu_scores(loaded.members[1].spec.clone(), &[&windows], count);
    for (m, e) in moved.iter().zip(&embedded) {
        assert!(
            (m - e).abs() > 1e-3,
            "the moved calibration must show: {m} vs {e}"
        );
    }
    expect_fused(&loaded, &got, &[&moved, &wideband], 1e-5);

    let refused = |config: &FusionConfig| {
        deepscreen::model::load(&write(config, "refused.safetensors"))
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let mut missing = fused.clone();
    missing.fusion.members[0].file = Some("members/none.safetensors".into());
    let e = refused(&missing);
    assert!(
        e.contains("none.safetensors") && e.contains("cannot be read"),
        "{e}"
    );
    let mut other = fused.clone();
    other.fusion.members[0].model = "speech-cnn-v3".into();
    let e = refused(&other);
    assert!(e.contains("holds the model \"speech-cnn-moved\""), "{e}");
    let e = file::load_detector(&file::fusion_to_bytes(&fused).unwrap(), "bytes")
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(e.contains("only when it is itself a file"), "{e}");
}
