//! Host-side construction of the front-end's constant tensors (window, filterbanks, DCT),
//! computed in f64 from the config so every backend uploads the same values. The formulas
//! follow torch/torchaudio so models trained there reproduce exactly.

use std::f64::consts::PI;

use super::config::WindowFunction;

/// Periodic window of `win_length` samples, zero-padded centred to `n_fft` (torch.stft rule:
/// `(n_fft - win_length) / 2` zeros on the left).
pub fn window(kind: WindowFunction, win_length: usize, n_fft: usize) -> Vec<f32> {
    let n = win_length as f64;
    let left = (n_fft - win_length) / 2;
    let mut out = vec![0.0f32; n_fft];
    for i in 0..win_length {
        let phase = 2.0 * PI * i as f64 / n;
        out[left + i] = match kind {
            WindowFunction::Hann => 0.5 - 0.5 * phase.cos(),
            WindowFunction::Hamming => 0.54 - 0.46 * phase.cos(),
            WindowFunction::Rectangular => 1.0,
        } as f32;
    }
    out
}

/// Bin range `start..end` of FFT bins whose frequency lies in `[f_min, f_max]`.
pub fn bin_range(sample_rate: u32, n_fft: usize, f_min: f64, f_max: f64) -> (usize, usize) {
    let hz_per_bin = sample_rate as f64 / n_fft as f64;
    let bins = n_fft / 2 + 1;
    let start = ((f_min / hz_per_bin).ceil().max(0.0) as usize).min(bins);
    let end = (((f_max / hz_per_bin) + 1e-9).floor() as usize + 1).min(bins);
    (start, end.max(start))
}

pub fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

pub fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    match n {
        0 => vec![],
        1 => vec![a],
        _ => (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .collect(),
    }
}

/// Triangular filters with the given corner frequencies (`n_filters + 2` points), evaluated
/// on the FFT bin frequencies: `[n_fft/2 + 1, n_filters]`, row-major.
fn triangular(sample_rate: u32, n_fft: usize, corners: &[f64]) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let filters = corners.len().saturating_sub(2);
    // torchaudio uses linspace(0, sample_rate // 2, n_freqs) for the bin frequencies.
    let freqs = linspace(0.0, (sample_rate / 2) as f64, bins);
    let mut out = vec![0.0f32; bins * filters];
    for (i, &f) in freqs.iter().enumerate() {
        for m in 0..filters {
            let down = (f - corners[m]) / (corners[m + 1] - corners[m]);
            let up = (corners[m + 2] - f) / (corners[m + 2] - corners[m + 1]);
            out[i * filters + m] = down.min(up).max(0.0) as f32;
        }
    }
    out
}

/// HTK mel filterbank, as torchaudio's `melscale_fbanks(norm=None, mel_scale="htk")`.
pub fn mel_filterbank(
    sample_rate: u32,
    n_fft: usize,
    n_filters: usize,
    f_min: f64,
    f_max: f64,
) -> Vec<f32> {
    let mels = linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_filters + 2);
    let corners: Vec<f64> = mels.into_iter().map(mel_to_hz).collect();
    triangular(sample_rate, n_fft, &corners)
}

/// Linearly spaced triangular filterbank, as torchaudio's `linear_fbanks`.
pub fn linear_filterbank(
    sample_rate: u32,
    n_fft: usize,
    n_filters: usize,
    f_min: f64,
    f_max: f64,
) -> Vec<f32> {
    triangular(sample_rate, n_fft, &linspace(f_min, f_max, n_filters + 2))
}

/// Orthonormal DCT-II basis `[n_filters, n_coeffs]` (torchaudio `create_dct(norm="ortho")`).
pub fn dct_basis(n_filters: usize, n_coeffs: usize) -> Vec<f32> {
    let n = n_filters as f64;
    let mut out = vec![0.0f32; n_filters * n_coeffs];
    for i in 0..n_filters {
        for k in 0..n_coeffs {
            let norm = if k == 0 {
                (1.0 / n).sqrt()
            } else {
                (2.0 / n).sqrt()
            };
            out[i * n_coeffs + k] = (norm * (PI / n * (i as f64 + 0.5) * k as f64).cos()) as f32;
        }
    }
    out
}
