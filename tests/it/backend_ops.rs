//! The backend parity suite: every Backend op against a naive f64 reference on fresh random
//! inputs, odd sizes and stride/padding edge cases included. The bodies are generic over the
//! backend and instantiated for each one by `backend_suite!` (bottom): the CPU backend must be
//! within 1e-5 relative error of f64, GPU backends within 1e-4 (the design's bound vs CPU).
//!
//! A GPU backend that cannot start is skipped with its reason printed, unless
//! `DEEPSCREEN_REQUIRE_<NAME>=1` is set (CI sets it where the backend must run): then it fails.

use crate::common::*;
use deepscreen::backend::cpu::{CpuBackend, Math as CpuMath};
use deepscreen::backend::cuda::Math;
use deepscreen::backend::gpu::GemmKind;
use deepscreen::backend::{
    Activation, Backend, ClassifierOps, Conv1dParams, Conv2dParams, ConvTranspose2dParams, Device,
    DeviceTensor, FrontendOps, GlobalPool, LogSpec, Normalization, PoolParams, Projection,
    RangeFloor, StftParams,
};

fn stft_matches_direct_dft<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(1);
    // (n_fft, hop, len, batch, center, power, drop_last)
    let cases = [
        (16, 4, 64, 1, false, 2.0, false),
        (15, 5, 53, 3, true, 2.0, false),
        (64, 16, 301, 2, true, 1.0, false),
        (512, 160, 2000, 2, false, 2.0, false),
        (100, 33, 100, 1, false, 2.0, false), // exactly one frame
        (400, 160, 1600, 2, true, 2.0, true), // Whisper's: len / hop frames
    ];
    for (n_fft, hop, len, batch, center, power, drop_last) in cases {
        let signal = random_vec(&mut r, batch * len, -1.0, 1.0);
        let window = random_vec(&mut r, n_fft, 0.0, 1.0);
        let p = StftParams {
            n_fft,
            hop,
            center,
            power,
            drop_last,
            keep_bins: None,
        };
        let out = be
            .stft_power(
                &be.upload(&signal, &[batch, len]).unwrap(),
                &be.upload(&window, &[n_fft]).unwrap(),
                &p,
            )
            .unwrap();
        let (all_frames, all) =
            ref_stft_power(&signal, batch, &window, n_fft, hop, center, power as f64);
        // Dropping the last frame keeps the first frames of every window.
        let frames = all_frames - drop_last as usize;
        let bins = n_fft / 2 + 1;
        let reference: Vec<f64> = all
            .chunks(all_frames * bins)
            .flat_map(|item| &item[..frames * bins])
            .copied()
            .collect();
        assert_eq!(
            out.shape(),
            &[batch, frames, n_fft / 2 + 1],
            "case n_fft {n_fft}"
        );
        assert_close(
            &be.download(&out).unwrap(),
            &reference,
            tol,
            &format!("stft n_fft {n_fft} hop {hop}"),
        );
    }
}

fn stft_finds_a_known_sine<B: Backend>(be: &B, _tol: f64) {
    // 1 kHz at 16 kHz with n_fft 512: 31.25 Hz per bin, so the peak is bin 32 exactly.
    let (sr, n_fft) = (16000.0f32, 512);
    let signal: Vec<f32> = (0..4000)
        .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / sr).sin())
        .collect();
    let window = deepscreen::model::dsp::window(
        deepscreen::model::config::WindowFunction::Hann,
        n_fft,
        n_fft,
    );
    let p = StftParams {
        n_fft,
        hop: 256,
        center: false,
        power: 2.0,
        drop_last: false,
        keep_bins: None,
    };
    let out = be
        .stft_power(
            &be.upload(&signal, &[1, 4000]).unwrap(),
            &be.upload(&window, &[n_fft]).unwrap(),
            &p,
        )
        .unwrap();
    let bins = n_fft / 2 + 1;
    let data = be.download(&out).unwrap();
    for frame in data.chunks(bins) {
        let peak = frame
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!(peak, 32);
    }
}

fn filterbank_log_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(2);
    let (batch, frames, bins) = (3, 7, 33);
    let power = random_vec(&mut r, batch * frames * bins, 0.0, 10.0);
    let pt = be.upload(&power, &[batch, frames, bins]).unwrap();
    for log in [
        LogSpec::Ln { eps: 1e-6 },
        LogSpec::Log10 { eps: 1e-3 },
        LogSpec::Db { eps: 1e-10 },
        LogSpec::Log10Clamp { eps: 0.5 },
    ] {
        let f = |x: f64| match log {
            LogSpec::Ln { eps } => (x + eps as f64).ln(),
            LogSpec::Log10 { eps } => (x + eps as f64).log10(),
            LogSpec::Db { eps } => 10.0 * x.max(eps as f64).log10(),
            LogSpec::Log10Clamp { eps } => x.max(eps as f64).log10(),
        };
        // a bin range
        let out = be
            .filterbank_log(&pt, Projection::Bins { start: 3, end: 30 }, log)
            .unwrap();
        assert_eq!(out.shape(), &[batch, frames, 27]);
        let reference: Vec<f64> = power
            .chunks(bins)
            .flat_map(|row| row[3..30].iter().map(|&v| f(v as f64)))
            .collect();
        assert_close(
            &be.download(&out).unwrap(),
            &reference,
            tol,
            "filterbank bins",
        );
        // a matrix (odd filter count)
        let filters = 13;
        let matrix = random_vec(&mut r, bins * filters, 0.0, 1.0);
        let mt = be.upload(&matrix, &[bins, filters]).unwrap();
        let out = be
            .filterbank_log(&pt, Projection::Matrix(&mt), log)
            .unwrap();
        let reference: Vec<f64> = ref_matmul(&power, bins, &matrix, filters)
            .into_iter()
            .map(f)
            .collect();
        assert_close(
            &be.download(&out).unwrap(),
            &reference,
            tol,
            "filterbank matrix",
        );
    }
    // a spectrum with a wrong bin count is an error, not a panic
    let wrong = be.upload(&[1.0; 5 * 2], &[5, 2]).unwrap();
    assert!(
        be.filterbank_log(&pt, Projection::Matrix(&wrong), LogSpec::Ln { eps: 1e-6 })
            .is_err()
    );
}

fn dct_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(3);
    let (batch, frames, filters, coeffs) = (2, 65, 60, 20);
    let x = random_vec(&mut r, batch * frames * filters, -5.0, 5.0);
    let basis = deepscreen::model::dsp::dct_basis(filters, coeffs);
    let out = be
        .dct(
            &be.upload(&x, &[batch, frames, filters]).unwrap(),
            &be.upload(&basis, &[filters, coeffs]).unwrap(),
        )
        .unwrap();
    assert_eq!(out.shape(), &[batch, frames, coeffs]);
    assert_close(
        &be.download(&out).unwrap(),
        &ref_matmul(&x, filters, &basis, coeffs),
        tol,
        "dct",
    );
}

fn normalize_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(4);
    let (batch, frames, feats) = (3, 37, 11);
    let x = random_vec(&mut r, batch * frames * feats, -3.0, 7.0);
    let xt = be.upload(&x, &[batch, frames, feats]).unwrap();
    let stats = |b: usize, f: usize| {
        let vals: Vec<f64> = (0..frames)
            .map(|t| x[(b * frames + t) * feats + f] as f64)
            .collect();
        let mean = vals.iter().sum::<f64>() / frames as f64;
        let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / frames as f64;
        (mean, var)
    };
    let reference = |scale: bool| -> Vec<f64> {
        (0..x.len())
            .map(|i| {
                let (b, f) = (i / (frames * feats), i % feats);
                let (mean, var) = stats(b, f);
                let centred = x[i] as f64 - mean;
                if scale {
                    centred / (var + deepscreen::backend::NORM_EPS as f64).sqrt()
                } else {
                    centred
                }
            })
            .collect()
    };
    let out = be.normalize(&xt, Normalization::Mean).unwrap();
    assert_close(
        &be.download(&out).unwrap(),
        &reference(false),
        tol,
        "normalize mean",
    );
    let out = be.normalize(&xt, Normalization::MeanVar).unwrap();
    assert_close(
        &be.download(&out).unwrap(),
        &reference(true),
        tol,
        "normalize mean_var",
    );
    let mean = random_vec(&mut r, feats, -1.0, 1.0);
    let std = random_vec(&mut r, feats, 0.5, 2.0);
    let (mt, st) = (
        be.upload(&mean, &[feats]).unwrap(),
        be.upload(&std, &[feats]).unwrap(),
    );
    let out = be
        .normalize(
            &xt,
            Normalization::Global {
                mean: &mt,
                std: &st,
            },
        )
        .unwrap();
    let reference: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, v)| (*v as f64 - mean[i % feats] as f64) / std[i % feats] as f64)
        .collect();
    assert_close(
        &be.download(&out).unwrap(),
        &reference,
        tol,
        "normalize global",
    );
    // A floor at the window's maximum: each window's values span 10, so Whisper's (max - 8,
    // then (x + 4) / 4) and a plain floor at max - 6 both clip some of them.
    for (below, shift, scale, name) in [
        (8.0, 4.0, 0.25, "normalize range (whisper)"),
        (6.0, 0.0, 1.0, "normalize range (floor)"),
    ] {
        let range = RangeFloor {
            below_max: below as f32,
            shift: shift as f32,
            scale: scale as f32,
        };
        let out = be.normalize(&xt, Normalization::Range(range)).unwrap();
        let reference: Vec<f64> = x
            .chunks(frames * feats)
            .flat_map(|window| {
                let max = window
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                window
                    .iter()
                    .map(move |&v| ((v as f64).max(max - below) + shift) * scale)
            })
            .collect();
        let clipped: usize = x
            .chunks(frames * feats)
            .map(|w| {
                let max = w.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                w.iter()
                    .filter(|&&v| (v as f64) < max as f64 - below)
                    .count()
            })
            .sum();
        assert!(clipped > 0, "{name}: the case must exercise the floor");
        assert_close(&be.download(&out).unwrap(), &reference, tol, name);
    }
    // silence (constant features) must not produce NaN
    let flat = be
        .upload(
            &vec![-13.8; batch * frames * feats],
            &[batch, frames, feats],
        )
        .unwrap();
    let out = be
        .download(&be.normalize(&flat, Normalization::MeanVar).unwrap())
        .unwrap();
    assert!(out.iter().all(|v| v.is_finite()));
}

fn conv2d_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(5);
    // ([b, c, h, w], [o, kh, kw], stride, [padding before, after], bias, activation)
    let symmetric = |p: [usize; 2]| [p, p];
    let cases = [
        (
            [1, 1, 9, 7],
            [4, 3, 3],
            [1, 1],
            symmetric([1, 1]),
            true,
            Activation::None,
        ),
        (
            [2, 3, 17, 13],
            [5, 5, 3],
            [2, 1],
            symmetric([2, 0]),
            true,
            Activation::Relu,
        ),
        (
            [3, 4, 8, 8],
            [6, 1, 1],
            [1, 1],
            symmetric([0, 0]),
            true,
            Activation::LeakyRelu(0.1),
        ), // direct GEMM path
        (
            [2, 2, 10, 11],
            [3, 1, 1],
            [2, 3],
            symmetric([0, 1]),
            false,
            Activation::None,
        ), // 1x1 but strided
        (
            [1, 2, 5, 5],
            [2, 5, 5],
            [1, 1],
            symmetric([0, 0]),
            true,
            Activation::Sigmoid,
        ), // one output pixel
        (
            [2, 8, 31, 29],
            [16, 3, 3],
            [1, 2],
            symmetric([1, 1]),
            true,
            Activation::Gelu,
        ),
        // Spleeter's encoder: 5x5, stride 2, one zero row/column before and two after.
        (
            [2, 3, 16, 20],
            [4, 5, 5],
            [2, 2],
            [[1, 1], [2, 2]],
            true,
            Activation::None,
        ),
        (
            [1, 2, 9, 12],
            [3, 4, 3],
            [3, 2],
            [[0, 2], [3, 1]],
            true,
            Activation::LeakyRelu(0.2),
        ),
    ];
    for (i, (shape, [o, kh, kw], stride, padding, with_bias, act)) in cases.into_iter().enumerate()
    {
        let [b, c, h, w] = shape;
        let x = random_vec(&mut r, b * c * h * w, -1.0, 1.0);
        let weight = random_vec(&mut r, o * c * kh * kw, -1.0, 1.0);
        let bias = random_vec(&mut r, o, -1.0, 1.0);
        let bt = be.upload(&bias, &[o]).unwrap();
        let params = Conv2dParams {
            stride,
            padding: padding[0],
            padding_end: padding[1],
        };
        let out = be
            .conv2d(
                &be.upload(&x, &shape).unwrap(),
                &be.upload(&weight, &[o, c, kh, kw]).unwrap(),
                with_bias.then_some(&bt),
                &params,
                act,
            )
            .unwrap();
        let bias64 = to_f64(&bias);
        let (reference, [ho, wo]) = ref_conv2d(
            &to_f64(&x),
            shape,
            &to_f64(&weight),
            [o, kh, kw],
            with_bias.then_some(bias64.as_slice()),
            stride,
            padding,
            act,
        );
        assert_eq!(out.shape(), &[b, o, ho, wo], "conv case {i}");
        assert_close(
            &be.download(&out).unwrap(),
            &reference,
            tol,
            &format!("conv case {i}"),
        );
    }
    // mismatched channels and a kernel larger than the input are errors, not panics
    let x = be.upload(&[0.0; 2 * 3 * 3], &[1, 2, 3, 3]).unwrap();
    let w = be.upload(&[0.0; 3 * 3 * 3], &[1, 3, 3, 3]).unwrap();
    let p = Conv2dParams::symmetric([1, 1], [0, 0]);
    assert!(be.conv2d(&x, &w, None, &p, Activation::None).is_err());
    let w = be.upload(&[0.0; 2 * 16], &[1, 2, 4, 4]).unwrap();
    assert!(be.conv2d(&x, &w, None, &p, Activation::None).is_err());
}

/// Transposed convolution against the textbook scatter form in f64: every input pixel adds
/// `x · weight[c, o, ky, kx]` at `(iy · sh + ky, ix · sw + kx)` of the full output, which is
/// then cropped. (The backends gather instead; the CPU's is a GEMM and a col2im.)
fn conv_transpose2d_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(35);
    // ([b, c, h, w], [o, kh, kw], stride, crop, crop_end, bias, activation)
    let cases = [
        // Spleeter's decoder: 5x5 stride 2, crop 1 and 2: the size doubles.
        (
            [2, 6, 4, 6],
            [3, 5, 5],
            [2, 2],
            [1, 1],
            [2, 2],
            true,
            Activation::Relu,
        ),
        (
            [1, 3, 5, 3],
            [4, 3, 3],
            [1, 1],
            [0, 0],
            [0, 0],
            true,
            Activation::None,
        ),
        (
            [2, 2, 3, 4],
            [2, 4, 2],
            [3, 2],
            [0, 1],
            [2, 0],
            false,
            Activation::LeakyRelu(0.2),
        ),
        (
            [1, 5, 1, 1],
            [6, 5, 5],
            [2, 2],
            [0, 0],
            [0, 0],
            true,
            Activation::Sigmoid,
        ), // one pixel
        (
            [1, 40, 8, 16],
            [16, 5, 5],
            [2, 2],
            [1, 1],
            [2, 2],
            true,
            Activation::Relu,
        ),
    ];
    for (i, ([b, c, h, w], [o, kh, kw], stride, crop, crop_end, with_bias, act)) in
        cases.into_iter().enumerate()
    {
        let x = random_vec(&mut r, b * c * h * w, -1.0, 1.0);
        let weight = random_vec(&mut r, c * o * kh * kw, -1.0, 1.0);
        let bias = random_vec(&mut r, o, -1.0, 1.0);
        let p = ConvTranspose2dParams {
            stride,
            crop,
            crop_end,
        };
        let bt = be.upload(&bias, &[o]).unwrap();
        let out = be
            .conv_transpose2d(
                &be.upload(&x, &[b, c, h, w]).unwrap(),
                &be.upload(&weight, &[c, o, kh, kw]).unwrap(),
                with_bias.then_some(&bt),
                &p,
                act,
            )
            .unwrap();
        let (fh, fw) = ((h - 1) * stride[0] + kh, (w - 1) * stride[1] + kw);
        let (ho, wo) = (fh - crop[0] - crop_end[0], fw - crop[1] - crop_end[1]);
        let mut full = vec![0.0f64; b * o * fh * fw];
        for (bi, oc, ic, iy, ix, ky, kx) in every_tap(b, o, c, h, w, kh, kw) {
            full[((bi * o + oc) * fh + iy * stride[0] + ky) * fw + ix * stride[1] + kx] +=
                x[((bi * c + ic) * h + iy) * w + ix] as f64
                    * weight[((ic * o + oc) * kh + ky) * kw + kx] as f64;
        }
        let mut reference = Vec::with_capacity(b * o * ho * wo);
        for bi in 0..b {
            for oc in 0..o {
                for y in 0..ho {
                    for xo in 0..wo {
                        let v = full[((bi * o + oc) * fh + y + crop[0]) * fw + xo + crop[1]]
                            + if with_bias { bias[oc] as f64 } else { 0.0 };
                        reference.push(ref_act(v, act));
                    }
                }
            }
        }
        assert_eq!(out.shape(), &[b, o, ho, wo], "case {i}");
        assert_close(
            &be.download(&out).unwrap(),
            &reference,
            tol,
            &format!("conv_transpose2d case {i}"),
        );
    }
    // A weight for other input channels, and crops that leave nothing, are errors.
    let x = be.upload(&[0.0; 2 * 3 * 3], &[1, 2, 3, 3]).unwrap();
    let w = be.upload(&[0.0; 3 * 4 * 9], &[3, 4, 3, 3]).unwrap();
    let p = ConvTranspose2dParams {
        stride: [1, 1],
        crop: [0, 0],
        crop_end: [0, 0],
    };
    assert!(
        be.conv_transpose2d(&x, &w, None, &p, Activation::None)
            .is_err()
    );
    let w = be.upload(&[0.0; 2 * 4 * 9], &[2, 4, 3, 3]).unwrap();
    let p = ConvTranspose2dParams {
        crop: [3, 0],
        crop_end: [2, 0],
        ..p
    };
    assert!(
        be.conv_transpose2d(&x, &w, None, &p, Activation::None)
            .is_err()
    );
}

/// Every (batch, out channel, in channel, input row, input column, kernel row, kernel column).
fn every_tap(
    b: usize,
    o: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
) -> impl Iterator<Item = (usize, usize, usize, usize, usize, usize, usize)> {
    (0..b).flat_map(move |bi| {
        (0..o).flat_map(move |oc| {
            (0..c).flat_map(move |ic| {
                (0..h).flat_map(move |iy| {
                    (0..w).flat_map(move |ix| {
                        (0..kh)
                            .flat_map(move |ky| (0..kw).map(move |kx| (bi, oc, ic, iy, ix, ky, kx)))
                    })
                })
            })
        })
    })
}

/// Channel concatenation against index arithmetic, on [B, C, H, W] and [B, C, T] inputs; and
/// the elementwise product (both exact: copies and single f32 products).
fn concat_and_mul_match_reference<B: Backend>(be: &B, _tol: f64) {
    let mut r = rng(36);
    for (a_shape, b_shape) in [
        (vec![2, 3, 4, 5], vec![2, 1, 4, 5]),
        (vec![1, 16, 7], vec![1, 16, 7]),
        (vec![3, 1, 1], vec![3, 2, 1]),
    ] {
        let a = random_vec(&mut r, a_shape.iter().product(), -1.0, 1.0);
        let b = random_vec(&mut r, b_shape.iter().product(), -1.0, 1.0);
        let out = be
            .concat_channels(
                &be.upload(&a, &a_shape).unwrap(),
                &be.upload(&b, &b_shape).unwrap(),
            )
            .unwrap();
        let (ca, cb) = (a_shape[1], b_shape[1]);
        let inner: usize = a_shape[2..].iter().product();
        let mut expected = Vec::new();
        for item in 0..a_shape[0] {
            expected.extend_from_slice(&a[item * ca * inner..(item + 1) * ca * inner]);
            expected.extend_from_slice(&b[item * cb * inner..(item + 1) * cb * inner]);
        }
        let mut shape = a_shape.clone();
        shape[1] = ca + cb;
        assert_eq!(out.shape(), shape.as_slice());
        // A copy: exact.
        assert_eq!(
            be.download(&out).unwrap(),
            expected,
            "{a_shape:?} + {b_shape:?}"
        );
    }
    let a = be.upload(&[0.0; 6], &[1, 2, 3]).unwrap();
    let b = be.upload(&[0.0; 4], &[1, 2, 2]).unwrap();
    assert!(be.concat_channels(&a, &b).is_err(), "trailing axes differ");
    assert!(be.mul(&a, &b).is_err(), "shapes differ");
    let (x, y) = (
        random_vec(&mut r, 3 * 5 * 7, -2.0, 2.0),
        random_vec(&mut r, 3 * 5 * 7, 0.0, 1.0),
    );
    let product = be
        .mul(
            &be.upload(&x, &[3, 5, 7]).unwrap(),
            &be.upload(&y, &[3, 5, 7]).unwrap(),
        )
        .unwrap();
    let expected: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a * b).collect();
    assert_eq!(be.download(&product).unwrap(), expected);
}

/// The complex STFT (all bins and the lowest few, both kernels: radix-2 and direct DFT) against
/// the f64 direct DFT; `stft_power` keeps the same lowest bins.
fn stft_complex_matches_direct_dft<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(351);
    // (n_fft, hop, len, batch, center, bins kept)
    let cases = [
        (16, 4, 64, 2, false, None),
        (64, 16, 301, 2, true, Some(20)),
        (15, 5, 53, 1, true, Some(8)),
        (512, 128, 1500, 2, false, Some(128)),
    ];
    for (n_fft, hop, len, batch, center, keep_bins) in cases {
        let signal = random_vec(&mut r, batch * len, -1.0, 1.0);
        let window = random_vec(&mut r, n_fft, 0.0, 1.0);
        let p = StftParams {
            n_fft,
            hop,
            center,
            power: 1.0,
            drop_last: false,
            keep_bins,
        };
        let (x, w) = (
            be.upload(&signal, &[batch, len]).unwrap(),
            be.upload(&window, &[n_fft]).unwrap(),
        );
        let out = be.stft_complex(&x, &w, &p).unwrap();
        let (frames, all) = ref_stft_complex(&signal, batch, &window, n_fft, hop, center);
        let bins = keep_bins.unwrap_or(n_fft / 2 + 1);
        let kept: Vec<(f64, f64)> = all
            .chunks(n_fft / 2 + 1)
            .flat_map(|frame| &frame[..bins])
            .copied()
            .collect();
        assert_eq!(out.shape(), &[batch, frames, bins, 2], "n_fft {n_fft}");
        let reference: Vec<f64> = kept.iter().flat_map(|&(re, im)| [re, im]).collect();
        let what = format!("stft_complex n_fft {n_fft} bins {bins}");
        assert_close(&be.download(&out).unwrap(), &reference, tol, &what);
        let magnitude = be.stft_power(&x, &w, &p).unwrap();
        assert_eq!(magnitude.shape(), &[batch, frames, bins]);
        let reference: Vec<f64> = kept.iter().map(|&(re, im)| re.hypot(im)).collect();
        assert_close(&be.download(&magnitude).unwrap(), &reference, tol, &what);
    }
    let p = StftParams {
        n_fft: 16,
        hop: 4,
        center: false,
        power: 1.0,
        drop_last: false,
        keep_bins: Some(10),
    };
    let x = be.upload(&[0.0; 64], &[1, 64]).unwrap();
    let w = be.upload(&[1.0; 16], &[16]).unwrap();
    assert!(be.stft_complex(&x, &w, &p).is_err(), "10 bins of 9");
}

/// The inverse STFT against an f64 inverse DFT of each frame (bins above those given zero, the
/// DC and Nyquist bins' imaginary parts ignored), windowed and overlap-added; and a round trip
/// through `stft_complex` with a Hann window recovers the signal.
fn istft_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(352);
    // (n_fft, hop, frames, batch, bins given)
    for (n_fft, hop, frames, batch, bins) in [
        (16, 4, 5, 2, 9),
        (64, 16, 7, 1, 20),
        (4096, 1024, 3, 2, 1024),
    ] {
        let spec = random_vec(&mut r, batch * frames * bins * 2, -1.0, 1.0);
        let window = random_vec(&mut r, n_fft, 0.0, 1.0);
        let out = be
            .istft_overlap_add(
                &be.upload(&spec, &[batch, frames, bins, 2]).unwrap(),
                &be.upload(&window, &[n_fft]).unwrap(),
                n_fft,
                hop,
            )
            .unwrap();
        let len = (frames - 1) * hop + n_fft;
        assert_eq!(out.shape(), &[batch, len]);
        let mut reference = vec![0.0f64; batch * len];
        for b in 0..batch {
            for t in 0..frames {
                let frame = &spec[(b * frames + t) * bins * 2..][..bins * 2];
                for n in 0..n_fft {
                    let mut x = frame[0] as f64;
                    for k in 1..bins.min(n_fft / 2 + 1) {
                        let (re, im) = (frame[2 * k] as f64, frame[2 * k + 1] as f64);
                        let ang = 2.0 * std::f64::consts::PI * (k * n) as f64 / n_fft as f64;
                        let term = re * ang.cos() - im * ang.sin();
                        // Bins 1 .. n/2 − 1 stand for their conjugate mirrors too.
                        x += if k == n_fft / 2 { term } else { 2.0 * term };
                    }
                    reference[b * len + t * hop + n] += x / n_fft as f64 * window[n] as f64;
                }
            }
        }
        let what = format!("istft n_fft {n_fft} bins {bins}");
        assert_close(&be.download(&out).unwrap(), &reference, tol, &what);
    }
    // Round trip: Hann window, hop n/4, every bin; inside the fully overlapped part the overlap-
    // added signal divided by Σ window² is the input.
    let (n_fft, hop, len) = (256, 64, 2048);
    let signal = random_vec(&mut r, len, -1.0, 1.0);
    let window = deepscreen::model::dsp::window(
        deepscreen::model::config::WindowFunction::Hann,
        n_fft,
        n_fft,
    );
    let w = be.upload(&window, &[n_fft]).unwrap();
    let p = StftParams {
        n_fft,
        hop,
        center: false,
        power: 1.0,
        drop_last: false,
        keep_bins: None,
    };
    let spec = be
        .stft_complex(&be.upload(&signal, &[1, len]).unwrap(), &w, &p)
        .unwrap();
    let back = be
        .download(&be.istft_overlap_add(&spec, &w, n_fft, hop).unwrap())
        .unwrap();
    let (got, want): (Vec<f32>, Vec<f64>) = (n_fft..len - n_fft)
        .map(|i| {
            let norm: f64 = (0..n_fft)
                .filter(|&n| i >= n && (i - n) % hop == 0 && (i - n) / hop * hop + n_fft <= len)
                .map(|n| (window[n] as f64).powi(2))
                .sum();
            ((back[i] as f64 / norm) as f32, signal[i] as f64)
        })
        .unzip();
    assert_close(&got, &want, tol, "stft → istft round trip");
}

/// The two-stem ratio mask applied to a complex spectrum, against the formula in f64.
fn ratio_mask_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(353);
    let shape = [2, 3, 5, 7];
    let n: usize = shape.iter().product();
    let spec = random_vec(&mut r, n * 2, -3.0, 3.0);
    let mut target = random_vec(&mut r, n, 0.0, 2.0);
    let other = random_vec(&mut r, n, 0.0, 2.0);
    target[0] = 0.0; // both silent somewhere: eps decides (half each)
    let mut other0 = other.clone();
    other0[0] = 0.0;
    let eps = 1e-10f32;
    let out = be
        .apply_ratio_mask(
            &be.upload(&spec, &[2, 3, 5, 7, 2]).unwrap(),
            &be.upload(&target, &shape).unwrap(),
            &be.upload(&other0, &shape).unwrap(),
            eps,
        )
        .unwrap();
    assert_eq!(out.shape(), &[2, 3, 5, 7, 2]);
    let reference: Vec<f64> = (0..n * 2)
        .map(|i| {
            let (t, o) = (target[i / 2] as f64, other0[i / 2] as f64);
            let e = eps as f64;
            spec[i] as f64 * (t * t + e / 2.0) / (t * t + o * o + e)
        })
        .collect();
    assert_close(&be.download(&out).unwrap(), &reference, tol, "ratio mask");
    let got = be.download(&out).unwrap();
    assert!(
        (got[0] - spec[0] / 2.0).abs() <= 1e-6 * spec[0].abs().max(1.0),
        "silent: half"
    );
    let bad = be.upload(&other[..n - 1], &[n - 1]).unwrap();
    assert!(
        be.apply_ratio_mask(
            &be.upload(&spec, &[2, 3, 5, 7, 2]).unwrap(),
            &be.upload(&target, &shape).unwrap(),
            &bad,
            eps
        )
        .is_err(),
        "estimates of another shape"
    );
}

fn channel_affine_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(6);
    for shape in [vec![2usize, 5, 3, 4], vec![3, 7]] {
        let n: usize = shape.iter().product();
        let c = shape[1];
        let inner: usize = shape[2..].iter().product();
        let x = random_vec(&mut r, n, -2.0, 2.0);
        let scale = random_vec(&mut r, c, -2.0, 2.0);
        let shift = random_vec(&mut r, c, -1.0, 1.0);
        let act = Activation::LeakyRelu(0.2);
        let out = be
            .channel_affine(
                &be.upload(&x, &shape).unwrap(),
                &be.upload(&scale, &[c]).unwrap(),
                &be.upload(&shift, &[c]).unwrap(),
                act,
            )
            .unwrap();
        let reference: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let ch = (i / inner.max(1)) % c;
                ref_act(*v as f64 * scale[ch] as f64 + shift[ch] as f64, act)
            })
            .collect();
        assert_close(
            &be.download(&out).unwrap(),
            &reference,
            tol,
            "channel_affine",
        );
    }
}

fn max_pool_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(7);
    let cases = [
        ([1, 1, 4, 4], [2, 2], [2, 2], [0, 0]),
        ([2, 3, 9, 7], [3, 2], [2, 1], [1, 1]),
        ([1, 2, 5, 11], [3, 3], [3, 3], [1, 0]),
        ([2, 1, 6, 6], [1, 1], [1, 1], [0, 0]),
        // Windows that tile the plane (kernel = stride, no padding), with rows and columns
        // left over: the CPU backend's fast path.
        ([2, 3, 9, 7], [2, 2], [2, 2], [0, 0]),
        ([1, 2, 10, 13], [3, 2], [3, 2], [0, 0]),
        ([1, 2, 8, 11], [2, 3], [2, 3], [0, 0]),
    ];
    for (shape, kernel, stride, padding) in cases {
        let [b, c, h, w] = shape;
        let x = random_vec(&mut r, b * c * h * w, -5.0, 5.0);
        let out = be
            .max_pool2d(
                &be.upload(&x, &shape).unwrap(),
                &PoolParams {
                    kernel,
                    stride,
                    padding,
                },
            )
            .unwrap();
        let (reference, [ho, wo]) = ref_max_pool(&to_f64(&x), shape, kernel, stride, padding);
        assert_eq!(out.shape(), &[b, c, ho, wo]);
        assert_close(&be.download(&out).unwrap(), &reference, tol, "max_pool2d");
    }
}

fn mfm_and_global_pool_match_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(8);
    for shape in [vec![2usize, 6, 3, 5], vec![3, 10]] {
        let n: usize = shape.iter().product();
        let x = random_vec(&mut r, n, -1.0, 1.0);
        let out = be.mfm(&be.upload(&x, &shape).unwrap()).unwrap();
        let inner: usize = shape[2..].iter().product();
        let mut expected_shape = shape.clone();
        expected_shape[1] /= 2;
        assert_eq!(out.shape(), expected_shape.as_slice());
        assert_close(
            &be.download(&out).unwrap(),
            &ref_mfm(&to_f64(&x), shape[0], shape[1], inner),
            tol,
            "mfm",
        );
    }
    assert!(
        be.mfm(&be.upload(&[0.0; 6], &[2, 3]).unwrap()).is_err(),
        "odd channel count must be an error"
    );

    let shape = [3, 4, 5, 7];
    let x = random_vec(&mut r, 3 * 4 * 5 * 7, -1.0, 1.0);
    let xt = be.upload(&x, &shape).unwrap();
    let avg: Vec<f64> = x
        .chunks(35)
        .map(|p| p.iter().map(|&v| v as f64).sum::<f64>() / 35.0)
        .collect();
    let max: Vec<f64> = x
        .chunks(35)
        .map(|p| p.iter().map(|&v| v as f64).fold(f64::MIN, f64::max))
        .collect();
    let out = be.global_pool(&xt, GlobalPool::Avg).unwrap();
    assert_eq!(out.shape(), &[3, 4]);
    assert_close(&be.download(&out).unwrap(), &avg, tol, "global avg pool");
    assert_close(
        &be.download(&be.global_pool(&xt, GlobalPool::Max).unwrap())
            .unwrap(),
        &max,
        tol,
        "global max pool",
    );
}

fn linear_sigmoid_softmax_match_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(9);
    for (batch, inputs, outputs, with_bias, act) in [
        (1, 1, 1, true, Activation::Relu),
        (5, 37, 3, true, Activation::Gelu),
        (64, 128, 33, false, Activation::Relu),
        // The CPU's packed kernel: rows past one 144-row block and not a multiple of 6, depth
        // past one 256 block and not a multiple of it, columns not a multiple of 16.
        (301, 600, 37, true, Activation::Gelu),
        (13, 256, 64, false, Activation::None),
    ] {
        let x = random_vec(&mut r, batch * inputs, -1.0, 1.0);
        let w = random_vec(&mut r, outputs * inputs, -1.0, 1.0);
        let b = random_vec(&mut r, outputs, -1.0, 1.0);
        let bt = be.upload(&b, &[outputs]).unwrap();
        let out = be
            .linear(
                &be.upload(&x, &[batch, inputs]).unwrap(),
                &be.upload(&w, &[outputs, inputs]).unwrap(),
                with_bias.then_some(&bt),
                act,
            )
            .unwrap();
        let b64 = to_f64(&b);
        let reference = ref_linear(
            &to_f64(&x),
            batch,
            inputs,
            &to_f64(&w),
            outputs,
            with_bias.then_some(b64.as_slice()),
            act,
        );
        assert_close(&be.download(&out).unwrap(), &reference, tol, "linear");
    }
    let x = vec![-1000.0, -3.0, 0.0, 0.5, 2.0, 1000.0];
    let out = be
        .download(
            &be.sigmoid(&be.upload(&x, &[6, 1]).unwrap(), 1.5, -0.25)
                .unwrap(),
        )
        .unwrap();
    let reference: Vec<f64> = x
        .iter()
        .map(|&v| 1.0 / (1.0 + (-(1.5 * v as f64 - 0.25)).exp()))
        .collect();
    assert!(out.iter().all(|v| v.is_finite()));
    assert_close(&out, &reference, tol, "sigmoid");

    let x = random_vec(&mut r, 4 * 3, -20.0, 20.0);
    let out = be
        .download(&be.softmax(&be.upload(&x, &[4, 3]).unwrap()).unwrap())
        .unwrap();
    let reference: Vec<f64> = x
        .chunks(3)
        .flat_map(|row| {
            let e: Vec<f64> = row.iter().map(|&v| (v as f64).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(move |v| v / s)
        })
        .collect();
    assert_close(&out, &reference, tol, "softmax");
}

/// A projection with the residual added in its epilogue (each half of an encoder block):
/// against the f64 linear layer plus the residual, with the residual in the stream's
/// `[B, T, d]` shape, which the output keeps.
fn linear_residual_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(25);
    for (residual_shape, inputs, with_bias) in [
        (vec![1usize, 1, 1], 1, true),
        (vec![2, 5, 3], 37, false),
        // Whisper's widths at a small sequence: tiles past the 64×64 kernels' edges.
        (vec![2, 70, 80], 300, true),
        (vec![301, 37], 600, true),
    ] {
        let outputs = *residual_shape.last().unwrap();
        let rows: usize = residual_shape.iter().product::<usize>() / outputs;
        let x = random_vec(&mut r, rows * inputs, -1.0, 1.0);
        let w = random_vec(&mut r, outputs * inputs, -1.0, 1.0);
        let b = random_vec(&mut r, outputs, -1.0, 1.0);
        let res = random_vec(&mut r, rows * outputs, -2.0, 2.0);
        let bt = be.upload(&b, &[outputs]).unwrap();
        let out = be
            .linear_residual(
                &be.upload(&x, &[rows, inputs]).unwrap(),
                &be.upload(&w, &[outputs, inputs]).unwrap(),
                with_bias.then_some(&bt),
                &be.upload(&res, &residual_shape).unwrap(),
            )
            .unwrap();
        assert_eq!(out.shape(), residual_shape.as_slice());
        let b64 = to_f64(&b);
        let projected = ref_linear(
            &to_f64(&x),
            rows,
            inputs,
            &to_f64(&w),
            outputs,
            with_bias.then_some(b64.as_slice()),
            Activation::None,
        );
        let reference: Vec<f64> = projected
            .iter()
            .zip(&res)
            .map(|(p, &q)| p + q as f64)
            .collect();
        let what = format!("linear_residual {residual_shape:?} from {inputs}");
        assert_close(&be.download(&out).unwrap(), &reference, tol, &what);
    }
    // A residual that does not hold the output's rows is refused, not read past its end.
    let x = be.upload(&[0.0; 12], &[4, 3]).unwrap();
    let w = be.upload(&[0.0; 6], &[2, 3]).unwrap();
    for wrong in [vec![3usize, 2], vec![2, 4], vec![8]] {
        let residual = be
            .upload(&vec![0.0; wrong.iter().product()], &wrong)
            .unwrap();
        let refused = be.linear_residual(&x, &w, None, &residual);
        assert!(refused.is_err(), "a residual of {wrong:?} for 4 rows of 2");
    }
}

fn stft_rejects_a_too_short_signal<B: Backend>(be: &B, _tol: f64) {
    let s = be.upload(&[0.0; 10], &[1, 10]).unwrap();
    let w = be.upload(&[1.0; 16], &[16]).unwrap();
    assert!(
        be.stft_power(
            &s,
            &w,
            &StftParams {
                n_fft: 16,
                hop: 4,
                center: false,
                power: 2.0,
                drop_last: false,
                keep_bins: None,
            }
        )
        .is_err()
    );
}

/// Long inputs: more workgroups than one dispatch dimension allows (65,535), so GPU kernels
/// fold their grid into two dimensions. Compared with the CPU backend.
fn long_inputs_match_the_cpu_backend<B: Backend>(be: &B, tol: f64) {
    let cpu = CpuBackend::new();
    let mut r = rng(10);
    // 70,000 frames of a 16-point STFT (one workgroup per frame on GPUs)
    let (n_fft, hop, len) = (16, 4, 280_012);
    let signal = random_vec(&mut r, len, -1.0, 1.0);
    let window = random_vec(&mut r, n_fft, 0.0, 1.0);
    let p = StftParams {
        n_fft,
        hop,
        center: false,
        power: 2.0,
        drop_last: false,
        keep_bins: None,
    };
    let got = be
        .download(
            &be.stft_power(
                &be.upload(&signal, &[1, len]).unwrap(),
                &be.upload(&window, &[n_fft]).unwrap(),
                &p,
            )
            .unwrap(),
        )
        .unwrap();
    let want = cpu
        .download(
            &cpu.stft_power(
                &cpu.upload(&signal, &[1, len]).unwrap(),
                &cpu.upload(&window, &[n_fft]).unwrap(),
                &p,
            )
            .unwrap(),
        )
        .unwrap();
    assert_close(&got, &to_f64(&want), tol, "long stft");
    // 17 M elements through an elementwise kernel (over 65,535 × 256 invocations)
    let n = 17_000_000;
    let x: Vec<f32> = (0..n)
        .map(|i| ((i % 2001) as f32 - 1000.0) * 0.01)
        .collect();
    let got = be
        .download(
            &be.sigmoid(&be.upload(&x, &[n, 1]).unwrap(), 0.7, 0.1)
                .unwrap(),
        )
        .unwrap();
    let want = cpu
        .download(
            &cpu.sigmoid(&cpu.upload(&x, &[n, 1]).unwrap(), 0.7, 0.1)
                .unwrap(),
        )
        .unwrap();
    assert_close(&got, &to_f64(&want), tol, "long sigmoid");
}

/// Several batches in flight at once, as the screening pipeline queues them: uploads large
/// enough for CUDA's page-locked staging path (the same length twice, so a staging buffer is
/// reused while its first copy may still be queued), downloads started before any is
/// finished, finished out of order, with the tensors dropped in between. Each readback must
/// hold its own values (naive f64 sigmoid as the reference).
fn queued_downloads_keep_their_own_values<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(11);
    let n = 100_003;
    let inputs: Vec<Vec<f32>> = (0..3).map(|_| random_vec(&mut r, n, -8.0, 8.0)).collect();
    let params = [(1.0f32, 0.0f32), (0.5, -1.0), (2.0, 0.25)];
    let mut pending = Vec::new();
    for (x, &(scale, shift)) in inputs.iter().zip(&params) {
        let t = be.upload(x, &[n]).unwrap();
        let s = be.sigmoid(&t, scale, shift).unwrap();
        pending.push(Some(be.start_download(&s).unwrap()));
    }
    // A small readback in between, which may reuse a buffer handed back below.
    let small = be.upload(&[0.0, 1.0, -1.0], &[3]).unwrap();
    for i in [2, 0, 1] {
        let got = be.finish_download(pending[i].take().unwrap()).unwrap();
        let (scale, shift) = params[i];
        let want: Vec<f64> = inputs[i]
            .iter()
            .map(|&v| 1.0 / (1.0 + (-(scale as f64 * v as f64 + shift as f64)).exp()))
            .collect();
        assert_close(&got, &want, tol, &format!("queued readback {i}"));
    }
    let got = be
        .finish_download(be.start_download(&small).unwrap())
        .unwrap();
    assert_eq!(got, vec![0.0, 1.0, -1.0]);
}

fn conv1d_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(21);
    // ([b, t, c], [o, k], stride, padding, bias, activation): Whisper's stem shapes in small,
    // odd sizes across tile edges, a kernel wider than the padded input's edges.
    let cases = [
        ([2, 37, 5], [7, 3], 1, 1, true, Activation::Gelu),
        ([1, 40, 19], [17, 3], 2, 1, true, Activation::Gelu),
        ([3, 9, 4], [33, 5], 2, 0, false, Activation::None),
        ([1, 1, 3], [2, 1], 1, 0, true, Activation::Relu),
    ];
    for ([b, t, c], [o, k], stride, padding, with_bias, act) in cases {
        let x = random_vec(&mut r, b * t * c, -2.0, 2.0);
        let w = random_vec(&mut r, o * c * k, -0.5, 0.5);
        let bias = random_vec(&mut r, o, -1.0, 1.0);
        let bt = be.upload(&bias, &[o]).unwrap();
        let p = Conv1dParams { stride, padding };
        let out = be
            .conv1d(
                &be.upload(&x, &[b, t, c]).unwrap(),
                &be.upload(&w, &[o, c, k]).unwrap(),
                with_bias.then_some(&bt),
                &p,
                act,
            )
            .unwrap();
        let bias64 = to_f64(&bias);
        let (t_out, reference) = ref_conv1d(
            &to_f64(&x),
            [b, t, c],
            &to_f64(&w),
            [o, k],
            with_bias.then_some(bias64.as_slice()),
            stride,
            padding,
            act,
        );
        assert_eq!(out.shape(), &[b, t_out, o]);
        let what = format!("conv1d {b}x{t}x{c} -> {o} k{k} s{stride} p{padding}");
        assert_close(&be.download(&out).unwrap(), &reference, tol, &what);
    }
    let x = be.upload(&[0.0; 12], &[1, 4, 3]).unwrap();
    let wrong_channels = be.upload(&[0.0; 8], &[2, 4, 1]).unwrap();
    let p = Conv1dParams {
        stride: 1,
        padding: 0,
    };
    assert!(
        be.conv1d(&x, &wrong_channels, None, &p, Activation::None)
            .is_err()
    );
}

fn layer_norm_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(22);
    // Rows shorter and longer than a workgroup, values offset far from zero (as Whisper's
    // residual stream is): the variance must not lose its digits.
    for (shape, offset) in [
        (vec![2usize, 5, 384], 20.0f32),
        (vec![3, 7], 0.0),
        (vec![1, 600], -8.0),
    ] {
        let dim = *shape.last().unwrap();
        let n: usize = shape.iter().product();
        let x: Vec<f32> = random_vec(&mut r, n, -1.0, 1.0)
            .iter()
            .map(|v| v + offset)
            .collect();
        let gamma = random_vec(&mut r, dim, 0.5, 1.5);
        let beta = random_vec(&mut r, dim, -0.5, 0.5);
        let out = be
            .layer_norm(
                &be.upload(&x, &shape).unwrap(),
                &be.upload(&gamma, &[dim]).unwrap(),
                &be.upload(&beta, &[dim]).unwrap(),
                1e-5,
            )
            .unwrap();
        assert_eq!(out.shape(), shape.as_slice());
        let reference = ref_layer_norm(&to_f64(&x), dim, &to_f64(&gamma), &to_f64(&beta), 1e-5);
        assert_close(
            &be.download(&out).unwrap(),
            &reference,
            tol,
            &format!("layer_norm {shape:?}"),
        );
    }
    let x = be.upload(&[0.0; 6], &[2, 3]).unwrap();
    let g = be.upload(&[1.0; 2], &[2]).unwrap();
    assert!(be.layer_norm(&x, &g, &g, 1e-5).is_err());
}

fn attention_matches_reference<B: Backend>(be: &B, tol: f64) {
    let mut r = rng(23);
    // ([b, t, d], heads): one head, Whisper's 64-wide heads, a sequence of one, odd widths, and
    // a sequence as long as a 10 s Whisper window's (many key tiles; a per-thread loop this long
    // once went wrong on lavapipe).
    let mut cases = vec![
        ([2, 13, 8], 1),
        ([1, 37, 128], 2),
        ([2, 1, 12], 3),
        ([1, 70, 30], 5),
        ([1, 520, 64], 1),
        ([1, 45, 256], 2), // the widest heads the GPU kernels take
    ];
    if be.name() == "wgpu" {
        // Whisper's longest sequence (30 s). Lavapipe (CI's adapter) caps a shader loop's
        // iterations: a scalar version of the tiled kernel went wrong past ~450 keys there.
        // Too slow for the CUDA emulator.
        cases.push(([1, 1500, 64], 1));
    }
    for ([b, t, d], heads) in cases {
        let qkv = random_vec(&mut r, b * t * 3 * d, -2.0, 2.0);
        let out = be
            .attention(&be.upload(&qkv, &[b, t, 3 * d]).unwrap(), heads)
            .unwrap();
        assert_eq!(out.shape(), &[b, t, d]);
        let reference = ref_attention(&to_f64(&qkv), [b, t, d], heads);
        let what = format!("attention {b}x{t}x{d}, {heads} heads");
        assert_close(&be.download(&out).unwrap(), &reference, tol, &what);
    }
    let qkv = be.upload(&[0.0; 24], &[1, 2, 12]).unwrap();
    assert!(
        be.attention(&qkv, 3).is_err(),
        "4 does not split into 3 heads"
    );
    assert!(
        be.attention(&be.upload(&[0.0; 10], &[1, 2, 5]).unwrap(), 1)
            .is_err()
    );
}

fn add_broadcasts_over_leading_axes<B: Backend>(be: &B, _tol: f64) {
    let mut r = rng(24);
    let a = random_vec(&mut r, 2 * 5 * 3, -1.0, 1.0);
    for b_shape in [vec![2usize, 5, 3], vec![5, 3], vec![3]] {
        let m: usize = b_shape.iter().product();
        let b = random_vec(&mut r, m, -1.0, 1.0);
        let out = be
            .add(
                &be.upload(&a, &[2, 5, 3]).unwrap(),
                &be.upload(&b, &b_shape).unwrap(),
            )
            .unwrap();
        assert_eq!(out.shape(), &[2, 5, 3]);
        let want: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, &v)| v as f64 + b[i % m] as f64)
            .collect();
        assert_close(
            &be.download(&out).unwrap(),
            &want,
            1e-7,
            &format!("add {b_shape:?}"),
        );
    }
    let a = be.upload(&a, &[2, 5, 3]).unwrap();
    assert!(
        be.add(&a, &be.upload(&[0.0; 5], &[5]).unwrap()).is_err(),
        "not a suffix"
    );
}

/// GELU (erf form) at points whose values are known to 16 digits: the engine's f32 GELU and
/// the f64 reference the op suite compares against.
#[test]
fn gelu_matches_known_values() {
    for (x, want) in [
        (-3.0, -0.00404969409489031),
        (-1.0, -0.15865525393145707),
        (0.0, 0.0),
        (0.5, 0.34573123063700656),
        (1.0, 0.8413447460685429),
        (2.0, 1.9544997361036416),
    ] {
        let engine = deepscreen::backend::gelu(x as f32) as f64;
        assert!(
            (engine - want).abs() <= 1e-6,
            "gelu({x}) = {engine}, want {want}"
        );
        let reference = ref_act(x, Activation::Gelu);
        assert!(
            (reference - want).abs() <= 1e-14,
            "ref gelu({x}) = {reference}"
        );
    }
}

/// The backend under test, or `None` (skip, reason printed) when it cannot start here and the
/// environment does not require it.
fn require<B>(name: &str, made: deepscreen::Result<B>) -> Option<B> {
    match made {
        Ok(b) => Some(b),
        Err(e) => {
            if required(name) {
                panic!("{name} is required but the {name} backend cannot start: {e}");
            }
            eprintln!("skipping {name} tests: {e}");
            None
        }
    }
}

/// Instantiate every test body for one backend.
macro_rules! backend_suite {
    ($module:ident, $name:expr, $make:expr, $tol:expr) => {
        mod $module {
            use super::*;
            macro_rules! case {
                ($test:ident) => {
                    #[test]
                    fn $test() {
                        if let Some(be) = require($name, $make) {
                            super::$test(&be, $tol)
                        }
                    }
                };
            }
            case!(stft_matches_direct_dft);
            case!(stft_finds_a_known_sine);
            case!(stft_rejects_a_too_short_signal);
            case!(filterbank_log_matches_reference);
            case!(dct_matches_reference);
            case!(normalize_matches_reference);
            case!(conv2d_matches_reference);
            case!(channel_affine_matches_reference);
            case!(max_pool_matches_reference);
            case!(mfm_and_global_pool_match_reference);
            case!(linear_sigmoid_softmax_match_reference);
            case!(linear_residual_matches_reference);
            case!(long_inputs_match_the_cpu_backend);
            case!(queued_downloads_keep_their_own_values);
            case!(conv1d_matches_reference);
            case!(layer_norm_matches_reference);
            case!(attention_matches_reference);
            case!(add_broadcasts_over_leading_axes);
            case!(conv_transpose2d_matches_reference);
            case!(concat_and_mul_match_reference);
            case!(stft_complex_matches_direct_dft);
            case!(istft_matches_reference);
            case!(ratio_mask_matches_reference);
        }
    };
}

backend_suite!(
    cpu,
    "cpu",
    Ok::<_, deepscreen::Error>(CpuBackend::new()),
    1e-5
);
// The opt-in bf16 GEMMs (`DEEPSCREEN_CPU_MATH=bf16`: linear layers and convolutions on
// inputs rounded to bf16, f32 sums; AVX512-BF16 only, skipped elsewhere unless
// DEEPSCREEN_REQUIRE_CPU_BF16=1). bf16 keeps 8 significant bits, so each input is off by up to
// 2^-9 relative and a product by up to about 4e-3; over a dot product the errors mostly cancel.
// The bound: ‖out − f64 reference‖ / ‖reference‖ ≤ 1e-2 (measured: 1.4e-4 to 2.7e-3).
backend_suite!(
    cpu_bf16,
    "cpu_bf16",
    CpuBackend::with_math(CpuMath::Bf16),
    BF16_TOL
);
// wgpu as `new` opens it on a software adapter: register-blocked GEMM, subgroup reductions
// where the adapter offers them (lavapipe does).
backend_suite!(
    wgpu,
    "wgpu",
    deepscreen::backend::wgpu::WgpuBackend::with_gemm(GemmKind::RegisterBlocked),
    1e-4
);
// wgpu's 16×16-tile GEMM (`DEEPSCREEN_WGPU_GEMM=tiled`, the default on a GPU), with no optional
// feature: the reductions through workgroup memory, the fallback where subgroups are missing.
backend_suite!(
    wgpu_tiled,
    "wgpu",
    deepscreen::backend::wgpu::WgpuBackend::with_options(deepscreen::backend::wgpu::WgpuOptions {
        gemm: GemmKind::Tiled,
        subgroups: false,
        f16: false,
    }),
    1e-4
);
// Linear layers' GEMM tiles staged in f16 (`DEEPSCREEN_WGPU_F16=1`) on both GEMM kernels.
// Skipped on an adapter without f16 unless DEEPSCREEN_REQUIRE_WGPU_F16=1 (CI sets it: lavapipe
// offers f16).
mod wgpu_f16 {
    use super::*;
    use deepscreen::backend::wgpu::{WgpuBackend, WgpuOptions};

    fn each_gemm(test: impl Fn(&WgpuBackend)) {
        for gemm in [GemmKind::RegisterBlocked, GemmKind::Tiled] {
            let options = WgpuOptions {
                f16: true,
                ..WgpuOptions::offered(gemm)
            };
            if let Some(be) = require("wgpu_f16", WgpuBackend::with_options(options)) {
                test(&be);
            }
        }
    }

    // f16 keeps 11 significant bits, as TF32 does, so each input is off by up to 2^-11
    // relative; the products and sums are f32: the TF32 bound (`cuda_tf32`).
    #[test]
    fn linear_layers_match_reference_within_the_tf32_bound() {
        each_gemm(|be| linear_sigmoid_softmax_match_reference(be, TF32_TOL));
    }

    // The front-end's GEMMs read spectra, beyond f16's range: they stay f32 (with f16 tiles
    // the DCT case misses this bound: 3.1e-4 measured on lavapipe).
    #[test]
    fn front_end_gemms_stay_f32() {
        each_gemm(|be| {
            filterbank_log_matches_reference(be, 1e-4);
            dct_matches_reference(be, 1e-4);
        });
    }

    // The tiles really are f16: 1 + 2^-12 rounds to 1 (an f32 GEMM keeps it), and a value past
    // f16's largest finite one saturates there instead of becoming infinite. 1 + 3·2^-12 tells
    // the conversion's rounding: to nearest gives 1 + 2^-10, toward zero (which WGSL also
    // allows: then inputs are off by up to 2^-10) gives 1.
    #[test]
    fn linear_inputs_are_rounded_to_f16() {
        let linear = |be: &WgpuBackend, x: &[f32]| {
            let out = be
                .linear(
                    &be.upload(x, &[x.len(), 1]).unwrap(),
                    &be.upload(&[1.0], &[1, 1]).unwrap(),
                    None,
                    Activation::None,
                )
                .unwrap();
            be.download(&out).unwrap()
        };
        let nearest = 1.0 + 2f32.powi(-10);
        each_gemm(|be| {
            let got = linear(be, &[1.0 + 3.0 * 2f32.powi(-12)])[0];
            assert!(got == nearest || got == 1.0, "1 + 3·2^-12 staged as {got}");
            assert_eq!(
                linear(be, &[1.0 + 2f32.powi(-12), 1.0e5, -3.0]),
                [1.0, 65504.0, -3.0]
            );
        });
    }

    // The `wgpu` suite runs the subgroup reductions only where the adapter offers them;
    // DEEPSCREEN_REQUIRE_WGPU_SUBGROUPS=1 (CI: lavapipe offers them) makes their absence, or a
    // default backend that runs without them, a failure.
    #[test]
    fn subgroups_run_where_required() {
        if required("wgpu_subgroups") {
            let opened = WgpuBackend::with_gemm(GemmKind::RegisterBlocked)
                .unwrap()
                .options();
            assert!(
                opened.subgroups,
                "the `wgpu` suite's backend runs no subgroup reductions"
            );
            let default = WgpuBackend::new().unwrap().options();
            assert!(
                default.subgroups,
                "WgpuBackend::new runs no subgroup reductions"
            );
        }
    }
}

backend_suite!(
    cuda,
    "cuda",
    deepscreen::backend::cuda::CudaBackend::with_math(Math::F32),
    1e-4
);
// The tensor-core kernels (GEMMs, convolutions, attention on TF32 inputs with f32
// accumulation; the other ops as in `cuda`). TF32 keeps 10 of f32's 23 mantissa bits, so each
// input is off by up to 2^-11 relative and a product by up to about 1e-3; over a dot product
// these errors mostly cancel (PyTorch's TF32 matmuls land near 3e-4 of f64). The bound:
// ‖out − f64 reference‖ / ‖reference‖ ≤ 1e-3 (the emulator, which rounds as the hardware
// does, measured 2.3e-4 to 3.4e-4 on these cases). Devices before compute capability 8.0 run
// f32 here (`with_math` falls back), which passes too.
backend_suite!(
    cuda_tf32,
    "cuda",
    deepscreen::backend::cuda::CudaBackend::with_math(Math::Tf32),
    TF32_TOL
);

// `cuda_tf32` with linear layers' GEMM copying its tiles by cp.async in two stages
// (`DEEPSCREEN_CUDA_ASYNC_COPY=1`, `matmul_tc_async`): the same TF32 rounding, so the same bound.
backend_suite!(
    cuda_tf32_async,
    "cuda",
    deepscreen::backend::cuda::CudaBackend::with_math(Math::Tf32)
        .map(|b| b.with_async_copies(true)),
    TF32_TOL
);

/// The parity bound of the TF32 tensor-core kernels (see `cuda_tf32`).
const TF32_TOL: f64 = 1e-3;

/// The parity bound of the CPU's bf16 GEMMs (see `cpu_bf16`).
const BF16_TOL: f64 = 1e-2;

/// The whole CUDA suite above, on the CPU: `tests/cuda_emulator/` stands in for the driver and
/// runs the real kernels, so the CUDA backend's host code and kernels are checked where no GPU
/// is (CI). Needs NVRTC (it compiles the kernels) and a C++ compiler. The emulator's tensor
/// cores compute each warp's fragments from the documented m16n8k8 layout, with inputs
/// rounded to TF32 as the hardware's `cvt.rna.tf32.f32` rounds them.
#[test]
fn cuda_suite_on_the_cpu_emulator() {
    if std::env::var_os(cuda_emulator::CHILD).is_some() {
        return;
    }
    for (module, cases) in [
        ("backend_ops::cuda::", 23),
        ("backend_ops::cuda_tf32::", 23),
        ("backend_ops::cuda_tf32_async::", 23),
    ] {
        if let Some(passed) = cuda_emulator::run_tests(module, "") {
            assert_eq!(passed, cases, "every case of {module}");
        }
    }
}
