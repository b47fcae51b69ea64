//! Shared test helpers: seeded random data and naive f64 reference implementations that
//! share no code with the backends (plain loops, a direct DFT, textbook formulas).
#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Whether the backend (or library) `name` — "wgpu", "cuda" or "nvrtc" — must run here, so a
/// test that cannot start it fails instead of skipping: `DEEPSCREEN_REQUIRE_<NAME>=1`, or the
/// cargo feature `require-wgpu` / `require-cuda` (set by the `cargo test-wgpu` / `test-cuda`
/// aliases in `.cargo/config.toml`; `require-cuda` requires NVRTC too).
pub fn required(name: &str) -> bool {
    let by_feature = match name {
        "wgpu" => cfg!(feature = "require-wgpu"),
        "cuda" | "nvrtc" => cfg!(feature = "require-cuda"),
        _ => false,
    };
    let var = format!("DEEPSCREEN_REQUIRE_{}", name.to_uppercase());
    by_feature || std::env::var(var).is_ok_and(|v| v == "1")
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn random_vec(rng: &mut StdRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// max |a - b| / max |b|: the error relative to the reference's scale.
pub fn rel_error(actual: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(actual.len(), reference.len(), "length mismatch");
    let scale = reference
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()))
        .max(1e-30);
    let err = actual
        .iter()
        .zip(reference)
        .fold(0.0f64, |m, (a, r)| m.max((*a as f64 - r).abs()));
    err / scale
}

pub fn assert_close(actual: &[f32], reference: &[f64], tol: f64, what: &str) {
    let e = rel_error(actual, reference);
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
}

pub fn to_f64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Direct DFT power spectrum of framed, windowed signals (reflect padding when `center`).
pub fn ref_stft_power(
    signal: &[f32],
    batch: usize,
    window: &[f32],
    n_fft: usize,
    hop: usize,
    center: bool,
    power: f64,
) -> (usize, Vec<f64>) {
    let (frames, spectrum) = ref_stft_complex(signal, batch, window, n_fft, hop, center);
    let out = spectrum
        .iter()
        .map(|&(re, im)| (re * re + im * im).powf(power / 2.0))
        .collect();
    (frames, out)
}

/// Direct DFT of framed, windowed signals (reflect padding when `center`): `(frames, [B,
/// frames, n_fft / 2 + 1] as (re, im))`.
pub fn ref_stft_complex(
    signal: &[f32],
    batch: usize,
    window: &[f32],
    n_fft: usize,
    hop: usize,
    center: bool,
) -> (usize, Vec<(f64, f64)>) {
    let len = signal.len() / batch;
    let pad = if center { n_fft / 2 } else { 0 };
    let padded_len = len + 2 * pad;
    let frames = 1 + (padded_len - n_fft) / hop;
    let bins = n_fft / 2 + 1;
    let mut out = Vec::with_capacity(batch * frames * bins);
    for b in 0..batch {
        let x = &signal[b * len..(b + 1) * len];
        let padded: Vec<f64> = (0..padded_len)
            .map(|j| {
                let i = j as i64 - pad as i64;
                let i = if i < 0 {
                    -i
                } else if i >= len as i64 {
                    2 * (len as i64 - 1) - i
                } else {
                    i
                };
                x[i as usize] as f64
            })
            .collect();
        for t in 0..frames {
            for k in 0..bins {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for n in 0..n_fft {
                    let v = padded[t * hop + n] * window[n] as f64;
                    let ang = -2.0 * std::f64::consts::PI * (k * n) as f64 / n_fft as f64;
                    re += v * ang.cos();
                    im += v * ang.sin();
                }
                out.push((re, im));
            }
        }
    }
    (frames, out)
}

/// `[rows, k] · [k, n]` in f64.
pub fn ref_matmul(x: &[f32], k: usize, m: &[f32], n: usize) -> Vec<f64> {
    let rows = x.len() / k;
    let mut out = vec![0.0f64; rows * n];
    for r in 0..rows {
        for j in 0..n {
            out[r * n + j] = (0..k)
                .map(|i| x[r * k + i] as f64 * m[i * n + j] as f64)
                .sum();
        }
    }
    out
}

pub fn ref_act(x: f64, act: deepscreen::backend::Activation) -> f64 {
    use deepscreen::backend::Activation::*;
    match act {
        None => x,
        Relu => x.max(0.0),
        LeakyRelu(s) => {
            if x >= 0.0 {
                x
            } else {
                x * s as f64
            }
        }
        Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Gelu => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
    }
}

/// Direct NCHW convolution with zero padding.
#[allow(clippy::too_many_arguments)]
pub fn ref_conv2d(
    x: &[f64],
    [b, c, h, w]: [usize; 4],
    weight: &[f64],
    [o, kh, kw]: [usize; 3],
    bias: Option<&[f64]>,
    stride: [usize; 2],
    [padding, padding_end]: [[usize; 2]; 2],
    act: deepscreen::backend::Activation,
) -> (Vec<f64>, [usize; 2]) {
    let ho = (h + padding[0] + padding_end[0] - kh) / stride[0] + 1;
    let wo = (w + padding[1] + padding_end[1] - kw) / stride[1] + 1;
    let mut out = vec![0.0; b * o * ho * wo];
    for bi in 0..b {
        for oc in 0..o {
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut acc = bias.map_or(0.0, |b| b[oc]);
                    for ic in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let ih = (oh * stride[0] + i) as i64 - padding[0] as i64;
                                let iw = (ow * stride[1] + j) as i64 - padding[1] as i64;
                                if ih < 0 || iw < 0 || ih >= h as i64 || iw >= w as i64 {
                                    continue;
                                }
                                acc += x[((bi * c + ic) * h + ih as usize) * w + iw as usize]
                                    * weight[((oc * c + ic) * kh + i) * kw + j];
                            }
                        }
                    }
                    out[((bi * o + oc) * ho + oh) * wo + ow] = ref_act(acc, act);
                }
            }
        }
    }
    (out, [ho, wo])
}

pub fn ref_max_pool(
    x: &[f64],
    [b, c, h, w]: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> (Vec<f64>, [usize; 2]) {
    let ho = (h + 2 * padding[0] - kernel[0]) / stride[0] + 1;
    let wo = (w + 2 * padding[1] - kernel[1]) / stride[1] + 1;
    let mut out = Vec::with_capacity(b * c * ho * wo);
    for p in 0..b * c {
        for oh in 0..ho {
            for ow in 0..wo {
                let mut m = f64::NEG_INFINITY;
                for i in 0..kernel[0] {
                    for j in 0..kernel[1] {
                        let ih = (oh * stride[0] + i) as i64 - padding[0] as i64;
                        let iw = (ow * stride[1] + j) as i64 - padding[1] as i64;
                        if ih >= 0 && iw >= 0 && ih < h as i64 && iw < w as i64 {
                            m = m.max(x[p * h * w + ih as usize * w + iw as usize]);
                        }
                    }
                }
                out.push(m);
            }
        }
    }
    (out, [ho, wo])
}

pub fn ref_mfm(x: &[f64], batch: usize, channels: usize, inner: usize) -> Vec<f64> {
    let half = channels / 2;
    let mut out = Vec::new();
    for b in 0..batch {
        for c in 0..half {
            for i in 0..inner {
                let a = x[(b * channels + c) * inner + i];
                let z = x[(b * channels + c + half) * inner + i];
                out.push(a.max(z));
            }
        }
    }
    out
}

pub fn ref_linear(
    x: &[f64],
    batch: usize,
    inputs: usize,
    weight: &[f64],
    outputs: usize,
    bias: Option<&[f64]>,
    act: deepscreen::backend::Activation,
) -> Vec<f64> {
    let mut out = Vec::new();
    for b in 0..batch {
        for o in 0..outputs {
            let s: f64 = (0..inputs)
                .map(|i| x[b * inputs + i] * weight[o * inputs + i])
                .sum();
            out.push(ref_act(s + bias.map_or(0.0, |b| b[o]), act));
        }
    }
    out
}

/// Inference batch norm, unfolded: (x - mean) / sqrt(var + eps) * gamma + beta, per channel.
pub fn ref_batch_norm(
    x: &[f64],
    channels: usize,
    inner: usize,
    p: &[Vec<f32>; 4],
    eps: f64,
) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            let c = (i / inner) % channels;
            let (g, b, m, var) = (
                p[0][c] as f64,
                p[1][c] as f64,
                p[2][c] as f64,
                p[3][c] as f64,
            );
            (v - m) / (var + eps).sqrt() * g + b
        })
        .collect()
}

pub mod cuda_emulator;

/// The `deepscreen` binary, its standard input closed.
pub fn bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_deepscreen"));
    c.stdin(std::process::Stdio::null());
    c
}

/// Channels-last 1-D convolution with zero padding: x `[b, t, c]`, w `[o, c, k]` → `[b, t', o]`.
#[allow(clippy::too_many_arguments)]
pub fn ref_conv1d(
    x: &[f64],
    [b, t, c]: [usize; 3],
    w: &[f64],
    [o, k]: [usize; 2],
    bias: Option<&[f64]>,
    stride: usize,
    padding: usize,
    act: deepscreen::backend::Activation,
) -> (usize, Vec<f64>) {
    let t_out = (t + 2 * padding - k) / stride + 1;
    let mut out = vec![0.0; b * t_out * o];
    for bi in 0..b {
        for ti in 0..t_out {
            for oi in 0..o {
                let mut acc = bias.map_or(0.0, |v| v[oi]);
                for ki in 0..k {
                    let src = (ti * stride + ki) as isize - padding as isize;
                    if src < 0 || src >= t as isize {
                        continue;
                    }
                    for ci in 0..c {
                        acc += x[(bi * t + src as usize) * c + ci] * w[(oi * c + ci) * k + ki];
                    }
                }
                out[(bi * t_out + ti) * o + oi] = ref_act(acc, act);
            }
        }
    }
    (t_out, out)
}

/// Layer norm over the last axis of rows of `dim` values.
pub fn ref_layer_norm(x: &[f64], dim: usize, gamma: &[f64], beta: &[f64], eps: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(dim) {
        let mean = row.iter().sum::<f64>() / dim as f64;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / dim as f64;
        for (i, v) in row.iter().enumerate() {
            out.push((v - mean) / (var + eps).sqrt() * gamma[i] + beta[i]);
        }
    }
    out
}

/// Multi-head self-attention on qkv `[b, t, 3d]` → `[b, t, d]`, straight from the definition.
pub fn ref_attention(qkv: &[f64], [b, t, d]: [usize; 3], heads: usize) -> Vec<f64> {
    let dh = d / heads;
    let at = |bi: usize, ti: usize, part: usize, h: usize, i: usize| {
        qkv[(bi * t + ti) * 3 * d + part * d + h * dh + i]
    };
    let mut out = vec![0.0; b * t * d];
    for bi in 0..b {
        for h in 0..heads {
            for qi in 0..t {
                let scores: Vec<f64> = (0..t)
                    .map(|ki| {
                        (0..dh)
                            .map(|i| at(bi, qi, 0, h, i) * at(bi, ki, 1, h, i))
                            .sum::<f64>()
                            / (dh as f64).sqrt()
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let total: f64 = weights.iter().sum();
                for i in 0..dh {
                    out[(bi * t + qi) * d + h * dh + i] = (0..t)
                        .map(|ki| weights[ki] / total * at(bi, ki, 2, h, i))
                        .sum();
                }
            }
        }
    }
    out
}

/// A small random-weight model file `dir/model.safetensors` for CLI tests: 16 kHz, 1 s windows
/// with 0.5 s hop (`min_seconds` if given), a 32-band log-mel front-end with mean removal, then
/// `layers` (the classifier, as JSON) under model id `id`, weights drawn from `seed`.
pub fn write_small_model(
    dir: &std::path::Path,
    id: &str,
    min_seconds: Option<f64>,
    layers: serde_json::Value,
    seed: u64,
) -> std::path::PathBuf {
    write_small_model_with(dir, id, min_seconds, layers, seed, serde_json::json!({}))
}

/// [`write_small_model`] with the config's top-level fields in `extra` added or replaced
/// (e.g. a `segment_rule`).
pub fn write_small_model_with(
    dir: &std::path::Path,
    id: &str,
    min_seconds: Option<f64>,
    layers: serde_json::Value,
    seed: u64,
    extra: serde_json::Value,
) -> std::path::PathBuf {
    let mut window = serde_json::json!({"seconds": 1.0, "hop_seconds": 0.5});
    if let Some(s) = min_seconds {
        window["min_seconds"] = s.into();
    }
    let mut json = serde_json::json!({
        "format": "deepscreen-model", "version": 1, "id": id,
        "sample_rate": 16000,
        "window": window,
        "frontend": {
            "n_fft": 256, "hop_length": 128,
            "filterbank": {"kind": "mel", "n_filters": 32},
            "log": {"kind": "ln"},
            "normalize": "mean"
        },
        "layers": layers,
        "output": {"kind": "logit"}
    });
    for (key, value) in extra.as_object().expect("extra is a JSON object") {
        json[key] = value.clone();
    }
    let config: deepscreen::model::ModelConfig = serde_json::from_value(json).unwrap();
    let path = dir.join("model.safetensors");
    let bytes = deepscreen::model::file::random_model_bytes(&config, seed).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A WAV file of `frames` frames: 16-bit PCM (clamped) or 32-bit float, `sample(frame, channel)`.
pub fn write_wav(
    path: &std::path::Path,
    rate: u32,
    channels: u16,
    frames: usize,
    float: bool,
    sample: impl Fn(usize, u16) -> f32,
) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: if float { 32 } else { 16 },
        sample_format: if float {
            hound::SampleFormat::Float
        } else {
            hound::SampleFormat::Int
        },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..frames {
        for c in 0..channels {
            let v = sample(i, c);
            if float {
                w.write_sample(v).unwrap();
            } else {
                w.write_sample((v.clamp(-1.0, 1.0) * 32767.0) as i16)
                    .unwrap();
            }
        }
    }
    w.finalize().unwrap();
}

/// A 16 kHz mono 16-bit WAV of `seconds`, `sample(t)` at time t in seconds.
pub fn write_wav_16k(path: &std::path::Path, seconds: f32, sample: impl Fn(f32) -> f32) {
    let frames = (seconds * 16000.0) as usize;
    write_wav(path, 16000, 1, frames, false, |i, _| {
        sample(i as f32 / 16000.0)
    });
}
