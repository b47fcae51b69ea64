//! Elementwise math the CPU kernels run over whole rows, written so the compiler vectorises
//! it: `exp` and `erf` as branch-free polynomials (libm's scalar `expf` / `erff` were most of
//! the encoder's softmax and GELU time), reductions over eight independent lanes. Each row
//! function is compiled for the baseline target and for AVX2 + FMA (or NEON), picked at run
//! time (`multiversion`).

use multiversion::multiversion;

use crate::backend::Activation;

/// Lanes of the manual reductions (one AVX register of f32).
const LANES: usize = 8;

/// e^x for x in about [-87, 88] (clamped there), within 2 ulp: x = n·ln 2 + r with |r| ≤ ln 2 / 2,
/// e^r by Cephes' degree-6 polynomial, 2^n written into the exponent bits. No branch, no
/// float-to-int conversion: it vectorises.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n · LN2_HI is exact.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5 · 2^23 rounds to the nearest integer n and leaves n in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * r * r + r + 1.0;
    // (n + 127) << 23 is 2^n: n sits in the bits of `shifted` above ROUND's.
    let two_n = (shifted
        .to_bits()
        .wrapping_sub(ROUND.to_bits())
        .wrapping_add(127))
        << 23;
    e_r * f32::from_bits(two_n)
}

/// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error 1.5e-7, 5e-7 as evaluated in f32),
/// odd-extended; the
/// formula the WGSL kernels use.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// GELU with the normal CDF, `0.5 · x · (1 + erf(x / √2))`, on [`erf`].
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `row[j] = act(row[j] + bias[j])` (no bias: `act(row[j])`), the epilogue of a projection or
/// convolution, in one pass (the rows are often out of cache by now).
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub fn bias_activate(row: &mut [f32], bias: Option<&[f32]>, act: Activation) {
    match bias {
        Some(bias) => {
            let pairs = row.iter_mut().zip(bias);
            match act {
                Activation::None => pairs.for_each(|(v, b)| *v += b),
                Activation::Relu => pairs.for_each(|(v, b)| *v = (*v + b).max(0.0)),
                Activation::Gelu => pairs.for_each(|(v, b)| *v = gelu(*v + b)),
                _ => pairs.for_each(|(v, b)| *v = act.apply(*v + b)),
            }
        }
        None => match act {
            Activation::None => {}
            Activation::Relu => row.iter_mut().for_each(|v| *v = v.max(0.0)),
            Activation::Gelu => row.iter_mut().for_each(|v| *v = gelu(*v)),
            _ => row.iter_mut().for_each(|v| *v = act.apply(*v)),
        },
    }
}

/// `row[j] = act(row[j] + shift)`: one bias for the whole row (a convolution's output plane).
pub fn shift_activate(row: &mut [f32], shift: f32, act: Activation) {
    row.iter_mut().for_each(|v| *v += shift);
    bias_activate(row, None, act);
}

/// Softmax of `scale · row`, in place.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub fn softmax_scaled(row: &mut [f32], scale: f32) {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = row.chunks_exact(LANES);
    let rest = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for chunk in chunks {
        for (m, &v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v);
        }
    }
    let max = lanes.iter().fold(rest, |m, &v| m.max(v)) * scale;
    let mut sums = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (s, v) in sums.iter_mut().zip(chunk) {
            *v = exp(*v * scale - max);
            *s += *v;
        }
    }
    let mut sum: f32 = 0.0;
    for v in chunks.into_remainder() {
        *v = exp(*v * scale - max);
        sum += *v;
    }
    let inv = 1.0 / (sum + sums.iter().sum::<f32>());
    row.iter_mut().for_each(|v| *v *= inv);
}

/// Layer normalisation of one row, `(x - mean) / sqrt(var + eps) · gamma + beta`, the
/// statistics in f64 over two passes (Whisper's activations reach ~20 and some rows have
/// small variances).
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512bw+avx512dq+avx2+fma",
    "x86_64+avx2+fma",
    "aarch64+neon"
))]
pub fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f64;
    let mean = sum_f64(row, |v| v as f64) / n;
    let var = sum_f64(row, |v| (v as f64 - mean) * (v as f64 - mean)) / n;
    let inv = 1.0 / (var + eps as f64).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = ((*v as f64 - mean) * inv) as f32 * g + b;
    }
}

/// `Σ f(v)` over `row` in f64, on four lanes.
#[inline(always)]
fn sum_f64(row: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut lanes = [0.0f64; 4];
    let chunks = row.chunks_exact(4);
    let rest: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    rest + lanes.iter().sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points across `[lo, hi]`, ends included.
    fn grid(lo: f64, hi: f64, n: usize) -> impl Iterator<Item = f64> {
        (0..=n).map(move |i| lo + (hi - lo) * i as f64 / n as f64)
    }

    #[test]
    fn exp_is_within_three_ulp_of_f64() {
        for x in grid(-87.0, 88.0, 200_003) {
            let x = x as f32;
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            assert!(
                ((got - want) / want).abs() <= 3.0 * f32::EPSILON as f64,
                "exp({x}) = {got}, want {want}"
            );
        }
        // Far outside the range: clamped, finite.
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn erf_and_gelu_match_libm_in_f64() {
        for x in grid(-6.0, 6.0, 120_001) {
            let got = erf(x as f32) as f64;
            // A&S's 1.5e-7, plus the rounding of evaluating it in f32 (4.4e-7 seen).
            let err = (got - libm::erf(x)).abs();
            assert!(err <= 6e-7, "erf({x}) = {got}, off by {err}");
            let want = 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
            let got = gelu(x as f32) as f64;
            assert!(
                (got - want).abs() <= 1e-6 * (1.0 + x.abs()),
                "gelu({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn row_functions_match_f64_references() {
        // Lengths around the lane width, so the remainder loops run too.
        for len in [1usize, 7, 8, 9, 64, 203] {
            let row: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.13)
                .collect();
            let bias: Vec<f32> = (0..len).map(|i| i as f32 * 0.01 - 0.2).collect();

            let mut got = row.clone();
            bias_activate(&mut got, Some(&bias), Activation::Gelu);
            for ((g, &x), &b) in got.iter().zip(&row).zip(&bias) {
                let v = (x + b) as f64;
                let want = 0.5 * v * (1.0 + libm::erf(v / std::f64::consts::SQRT_2));
                assert!((*g as f64 - want).abs() <= 1e-5, "len {len}");
            }

            let scale = 0.3;
            let mut got = row.clone();
            softmax_scaled(&mut got, scale);
            let max = row
                .iter()
                .fold(f64::MIN, |m, &v| m.max(v as f64 * scale as f64));
            let e: Vec<f64> = row
                .iter()
                .map(|&v| (v as f64 * scale as f64 - max).exp())
                .collect();
            let sum: f64 = e.iter().sum();
            for (g, w) in got.iter().zip(&e) {
                assert!((*g as f64 - w / sum).abs() <= 1e-6, "softmax, len {len}");
            }

            let gamma: Vec<f32> = (0..len).map(|i| 1.0 + i as f32 * 0.001).collect();
            let mut got = row.clone();
            layer_norm_row(&mut got, &gamma, &bias, 1e-5);
            let n = len as f64;
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / n;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
            for i in 0..len {
                let want =
                    (row[i] as f64 - mean) / (var + 1e-5).sqrt() * gamma[i] as f64 + bias[i] as f64;
                assert!(
                    (got[i] as f64 - want).abs() <= 1e-5,
                    "layer norm, len {len}"
                );
            }
        }
    }
}
