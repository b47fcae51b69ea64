//! A source separator (issue 35): Spleeter's 2-stem U-Nets, one per stem (vocals,
//! accompaniment), written once over the [`Backend`] trait like the detectors.
//!
//! The file: a `.safetensors` whose metadata key `deepscreen` holds a [`SeparatorConfig`]
//! (format `deepscreen-separator`) and whose tensors are each stem's, named as
//! `training/separator/spleeter.py` writes them (`{stem}.enc.{i}`, `{stem}.enc_bn.{i}`,
//! `{stem}.dec.{i}`, `{stem}.dec_bn.{i}`, `{stem}.mask`; PyTorch's layouts).
//!
//! One stem's U-Net on magnitudes `[B, 2, frames, bins]` (frames and bins multiples of 64):
//! - six encoder steps: a 5×5 convolution of stride 2 padded 1 before and 2 after, whose
//!   output is the skip connection, then batch norm and leaky ReLU;
//! - six decoder steps from the deepest convolution's output: (from the second on, the skip
//!   concatenated before the previous output) a 5×5 transposed convolution of stride 2 cropped
//!   1 and 2, ReLU, batch norm;
//! - a 4×4 convolution dilated 2 (run as the equivalent 7×7 one), a sigmoid, times the input.
//!
//! What it returns is the stem's estimated magnitude. [`Separator::separate`] runs the whole
//! separation: the STFT (centred, zero-padded) of each channel cut into segments of
//! `segment_frames` frames, the U-Nets on the lowest `bins` magnitudes, the ratio mask of the
//! first stem applied to the complex spectrum, and the inverse STFT, all on the backend; only the
//! segments' overlap-added halves are joined and normalised on the host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::tensor::HostTensor;
use crate::backend::{Activation, Backend, Conv2dParams, ConvTranspose2dParams, StftParams};
use crate::{Error, Result};

/// Value of `format` in a separator's config.
pub const SEPARATOR_FORMAT: &str = "deepscreen-separator";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparatorConfig {
    pub format: String,
    pub version: u32,
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub sample_rate: u32,
    pub n_fft: usize,
    pub hop_length: usize,
    /// The lowest bins the U-Nets read (the rest of the spectrum is masked as zero).
    pub bins: usize,
    /// Frames per U-Net input (the signal is cut into such segments).
    pub segment_frames: usize,
    /// Encoder channels, input first (Spleeter: 2, 16, 32, 64, 128, 256, 512).
    pub channels: Vec<usize>,
    pub batch_norm_eps: f32,
    pub leaky_slope: f32,
    /// One U-Net per stem, in this order.
    pub stems: Vec<String>,
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// The six down- and up-sampling steps.
const DEPTH: usize = 6;

/// One stem's U-Net with its batch norms folded into per-channel scales and shifts.
#[derive(Debug, Clone)]
pub struct StemWeights {
    /// Per encoder step: convolution weight, bias; batch-norm scale, shift.
    enc: Vec<[HostTensor; 4]>,
    /// Per decoder step: transposed-convolution weight, bias; batch-norm scale, shift.
    dec: Vec<[HostTensor; 4]>,
    /// The final convolution as 7×7 (its 4×4 kernel dilated 2), and its bias.
    mask: [HostTensor; 2],
}

/// A separator file, validated, on the host.
#[derive(Debug, Clone)]
pub struct SeparatorSpec {
    pub config: SeparatorConfig,
    pub stems: Vec<StemWeights>,
}

/// Parse and validate a separator file; `source` names it in errors.
pub fn load(bytes: &[u8], source: &str) -> Result<SeparatorSpec> {
    let fail = |msg: String| Error::model(format!("{source}: {msg}"));
    let json = super::file::config_json(bytes, source)?;
    let config: SeparatorConfig =
        serde_json::from_str(&json).map_err(|e| fail(format!("invalid config JSON: {e}")))?;
    if config.format != SEPARATOR_FORMAT || config.version != 1 {
        return Err(fail(format!(
            "format {:?} version {} is not a separator this build reads ({SEPARATOR_FORMAT:?} 1)",
            config.format, config.version
        )));
    }
    check_config(&config).map_err(&fail)?;
    let mut tensors = super::file::read_tensors(bytes, source, "")?;
    let stems = config
        .stems
        .iter()
        .map(|stem| stem_weights(&config, stem, &mut tensors).map_err(&fail))
        .collect::<Result<Vec<_>>>()?;
    if let Some(name) = tensors.keys().next() {
        return Err(fail(format!("tensor {name:?} is not used by any stem")));
    }
    Ok(SeparatorSpec { config, stems })
}

/// What a separation needs of a config: a U-Net of `DEPTH` steps on segments and bins it
/// halves that often, an STFT every backend's inverse takes (a power of two up to 4096) whose
/// overlap covers every sample (hop ≤ n_fft / 2), and two stems for the ratio mask.
fn check_config(c: &SeparatorConfig) -> std::result::Result<(), String> {
    let unit = 1 << DEPTH;
    let fails = [
        (
            c.channels.len() != DEPTH + 1 || c.channels.contains(&0),
            format!(
                "a U-Net of {DEPTH} steps needs {} channel counts, none zero (has {:?})",
                DEPTH + 1,
                c.channels
            ),
        ),
        (
            !(c.n_fft.is_power_of_two() && (4..=4096).contains(&c.n_fft)),
            format!("n_fft {} must be a power of two from 4 to 4096", c.n_fft),
        ),
        (
            c.hop_length == 0 || c.hop_length > c.n_fft / 2,
            format!("hop_length {} must be 1 to n_fft / 2", c.hop_length),
        ),
        (
            c.bins == 0 || c.bins > c.n_fft / 2 + 1 || !c.bins.is_multiple_of(unit),
            format!(
                "bins {} must be a multiple of {unit} up to n_fft / 2 + 1",
                c.bins
            ),
        ),
        (
            c.segment_frames == 0 || !c.segment_frames.is_multiple_of(unit),
            format!(
                "segment_frames {} must be a positive multiple of {unit}",
                c.segment_frames
            ),
        ),
        (
            c.stems.len() != 2,
            format!(
                "the ratio mask takes 2 stems, the file names {}",
                c.stems.len()
            ),
        ),
        (
            c.sample_rate == 0,
            "sample_rate must be positive".to_string(),
        ),
    ];
    match fails.into_iter().find(|(bad, _)| *bad) {
        Some((_, why)) => Err(why),
        None => Ok(()),
    }
}

type Tensors = BTreeMap<String, HostTensor>;

/// Tensor `name` out of `tensors`, checked to have `shape`.
fn take(
    tensors: &mut Tensors,
    name: String,
    shape: &[usize],
) -> std::result::Result<HostTensor, String> {
    let t = tensors
        .remove(&name)
        .ok_or_else(|| format!("missing tensor {name:?}"))?;
    if t.shape != shape {
        return Err(format!(
            "tensor {name:?} has shape {:?}, expected {shape:?}",
            t.shape
        ));
    }
    Ok(t)
}

/// The batch norm `prefix` over `n` channels, folded.
fn take_norm(
    tensors: &mut Tensors,
    prefix: &str,
    n: usize,
    eps: f32,
) -> std::result::Result<[HostTensor; 2], String> {
    let mut part = |p: &str| take(tensors, format!("{prefix}.{p}"), &[n]);
    let (gamma, beta) = (part("weight")?, part("bias")?);
    let (mean, var) = (part("running_mean")?, part("running_var")?);
    Ok(fold_batch_norm(&gamma, &beta, &mean, &var, eps))
}

/// Take one stem's tensors out of `tensors`, checking every shape.
fn stem_weights(
    config: &SeparatorConfig,
    stem: &str,
    tensors: &mut Tensors,
) -> std::result::Result<StemWeights, String> {
    let c = &config.channels;
    let eps = config.batch_norm_eps;
    let mut enc = Vec::with_capacity(DEPTH);
    for i in 0..DEPTH {
        let w = take(
            tensors,
            format!("{stem}.enc.{i}.weight"),
            &[c[i + 1], c[i], 5, 5],
        )?;
        let b = take(tensors, format!("{stem}.enc.{i}.bias"), &[c[i + 1]])?;
        let [scale, shift] = take_norm(tensors, &format!("{stem}.enc_bn.{i}"), c[i + 1], eps)?;
        enc.push([w, b, scale, shift]);
    }
    let mut dec = Vec::with_capacity(DEPTH);
    for k in 0..DEPTH {
        // Decoder k mirrors encoder DEPTH − 1 − k; from the second on its input doubles.
        let out = if k + 1 == DEPTH { 1 } else { c[DEPTH - 1 - k] };
        let input = if k == 0 { c[DEPTH] } else { 2 * c[DEPTH - k] };
        let w = take(
            tensors,
            format!("{stem}.dec.{k}.weight"),
            &[input, out, 5, 5],
        )?;
        let b = take(tensors, format!("{stem}.dec.{k}.bias"), &[out])?;
        let [scale, shift] = take_norm(tensors, &format!("{stem}.dec_bn.{k}"), out, eps)?;
        dec.push([w, b, scale, shift]);
    }
    let w = take(tensors, format!("{stem}.mask.weight"), &[c[0], 1, 4, 4])?;
    let b = take(tensors, format!("{stem}.mask.bias"), &[c[0]])?;
    Ok(StemWeights {
        enc,
        dec,
        mask: [dilate(&w, 2), b],
    })
}

/// Inference batch norm as `x · scale + shift`, folded in f64.
fn fold_batch_norm(
    gamma: &HostTensor,
    beta: &HostTensor,
    mean: &HostTensor,
    var: &HostTensor,
    eps: f32,
) -> [HostTensor; 2] {
    let scale: Vec<f64> = (gamma.data.iter().zip(&var.data))
        .map(|(&g, &v)| g as f64 / (v as f64 + eps as f64).sqrt())
        .collect();
    let shift = (beta.data.iter().zip(&mean.data).zip(&scale))
        .map(|((&b, &m), &s)| (b as f64 - m as f64 * s) as f32)
        .collect();
    [
        HostTensor::vector(scale.iter().map(|&s| s as f32).collect()),
        HostTensor::vector(shift),
    ]
}

/// A `[O, C, K, K]` kernel dilated by `d` as the equivalent dense `[O, C, (K−1)·d+1, …]` one.
fn dilate(w: &HostTensor, d: usize) -> HostTensor {
    let [o, c, kh, kw] = [w.shape[0], w.shape[1], w.shape[2], w.shape[3]];
    let (dh, dw) = ((kh - 1) * d + 1, (kw - 1) * d + 1);
    let mut data = vec![0.0; o * c * dh * dw];
    for plane in 0..o * c {
        for i in 0..kh {
            for j in 0..kw {
                data[(plane * dh + i * d) * dw + j * d] = w.data[(plane * kh + i) * kw + j];
            }
        }
    }
    HostTensor {
        shape: vec![o, c, dh, dw],
        data,
    }
}

/// One stem's U-Net on a backend.
pub struct StemNet<B: Backend> {
    enc: Vec<[B::Tensor; 4]>,
    dec: Vec<[B::Tensor; 4]>,
    mask: [B::Tensor; 2],
    slope: f32,
}

/// The separator's U-Nets on a backend.
pub struct Separator<B: Backend> {
    pub config: SeparatorConfig,
    pub stems: Vec<StemNet<B>>,
}

impl<B: Backend> Separator<B> {
    pub fn new(backend: &B, spec: &SeparatorSpec) -> Result<Self> {
        let up = |t: &HostTensor| backend.upload(&t.data, &t.shape);
        let up4 = |ts: &[HostTensor; 4]| -> Result<[B::Tensor; 4]> {
            Ok([up(&ts[0])?, up(&ts[1])?, up(&ts[2])?, up(&ts[3])?])
        };
        let stems = spec
            .stems
            .iter()
            .map(|s| {
                Ok(StemNet {
                    enc: s.enc.iter().map(up4).collect::<Result<_>>()?,
                    dec: s.dec.iter().map(up4).collect::<Result<_>>()?,
                    mask: [up(&s.mask[0])?, up(&s.mask[1])?],
                    slope: spec.config.leaky_slope,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Separator {
            config: spec.config.clone(),
            stems,
        })
    }

    /// The first stem (vocals) of `channels` (each the same length, at `sample_rate`), as two
    /// channels each as long as the input: the U-Nets take stereo, so a mono signal goes in as
    /// itself twice and comes out as two slightly different channels, as Spleeter does.
    pub fn separate(&self, backend: &B, channels: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        self.separate_in_passes(backend, channels, SEGMENTS_PER_PASS)
    }

    /// `separate`, `per_pass` segments at a time: memory stays bounded whatever the length
    /// (the U-Nets' activations are about 50 MB per segment), and the result is the same.
    pub fn separate_in_passes(
        &self,
        backend: &B,
        channels: &[&[f32]],
        per_pass: usize,
    ) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let stereo = self.stereo(channels)?;
        let count = self.segment_count(stereo[0].len());
        let mut halves = Vec::new();
        let mut window = None;
        for chosen in (0..count).collect::<Vec<_>>().chunks(per_pass.max(1)) {
            let seg = self.segments(backend, stereo, chosen)?;
            let spec = backend.stft_complex(&seg.rows, &seg.window, &seg.stft)?;
            let masked =
                backend.apply_ratio_mask(&spec, &seg.estimates[0], &seg.estimates[1], MASK_EPS)?;
            let added = backend.istft_overlap_add(&masked, &seg.window, c.n_fft, c.hop_length)?;
            halves.extend(backend.download(&added)?);
            window = Some(seg.window);
        }
        let window = backend.download(&window.expect("a non-empty signal has a segment"))?;
        Ok(join(&halves, &window, c, count, stereo[0].len()))
    }

    /// Segments of `segment_frames` frames covering the `1 + len / hop` centred frames of a
    /// signal of `len` samples (PyTorch's count).
    fn segment_count(&self, len: usize) -> usize {
        (1 + len / self.config.hop_length).div_ceil(self.config.segment_frames)
    }

    /// The first stem's ratio mask, `[channel][frame · bins + bin]` over the signal's `1 + len /
    /// hop` centred frames and the lowest `bins` bins (what the inverse STFT multiplies). For
    /// checks on short signals: every segment runs in one pass.
    pub fn vocal_mask(&self, backend: &B, channels: &[&[f32]]) -> Result<Vec<Vec<f32>>> {
        let c = &self.config;
        let stereo = self.stereo(channels)?;
        let frames = 1 + stereo[0].len() / c.hop_length;
        let all: Vec<usize> = (0..self.segment_count(stereo[0].len())).collect();
        let seg = self.segments(backend, stereo, &all)?;
        let n = seg.rows_count * c.segment_frames * c.bins;
        let ones: Vec<f32> = (0..2 * n)
            .map(|i| if i % 2 == 0 { 1.0 } else { 0.0 })
            .collect();
        let shape = [seg.rows_count, c.segment_frames, c.bins, 2];
        let unit = backend.upload(&ones, &shape)?;
        let mask =
            backend.apply_ratio_mask(&unit, &seg.estimates[0], &seg.estimates[1], MASK_EPS)?;
        let mask = backend.download(&mask)?;
        let per_frame = c.bins;
        Ok((0..2)
            .map(|ch| {
                (0..frames)
                    .flat_map(|t| {
                        let (s, tt) = (t / c.segment_frames, t % c.segment_frames);
                        let row = s * 2 + ch;
                        let at = (row * c.segment_frames + tt) * per_frame;
                        (0..per_frame).map(move |k| at + k)
                    })
                    .map(|i| mask[2 * i])
                    .collect()
            })
            .collect())
    }

    /// How much of each chosen segment the first stem (the voice) holds: the energy of its
    /// U-Net's magnitude estimate over that of the mix's magnitudes (the lowest `bins` bins,
    /// both channels), for every `every`-th segment of `segment_frames` frames from the first.
    /// Only that stem's U-Net runs, on those segments alone: a cheap test for a voice before
    /// the whole separation. The U-Nets are convolutional, so fewer `bins` (a multiple of 64,
    /// at most the separator's) cost proportionally less: the gate's speed knob.
    pub fn vocal_presence(
        &self,
        backend: &B,
        channels: &[&[f32]],
        every: usize,
        bins: usize,
    ) -> Result<Vec<SegmentShare>> {
        let c = &self.config;
        if bins == 0 || bins > c.bins || !bins.is_multiple_of(64) {
            return Err(Error::model(format!(
                "separator {}: a presence test on {bins} bins (a multiple of 64 up to {})",
                c.id, c.bins
            )));
        }
        let stereo = self.stereo(channels)?;
        let duration = stereo[0].len() as f64 / c.sample_rate as f64;
        let count = self.segment_count(stereo[0].len());
        let chosen: Vec<usize> = (0..count).step_by(every.max(1)).collect();
        let (mut voice, mut mix) = (Vec::new(), Vec::new());
        for pass in chosen.chunks(SEGMENTS_PER_PASS) {
            let (rows, window) = self.rows(backend, stereo, pass)?;
            let magnitudes = self.magnitudes(backend, &rows, &window, pass.len(), bins)?;
            voice.extend(backend.download(&self.stems[0].forward(backend, &magnitudes)?)?);
            mix.extend(backend.download(&magnitudes)?);
        }
        let per_segment = 2 * c.segment_frames * bins;
        let seconds = |frame: usize| (frame * c.hop_length) as f64 / c.sample_rate as f64;
        Ok(chosen
            .iter()
            .zip(voice.chunks(per_segment).zip(mix.chunks(per_segment)))
            .map(|(&s, (v, m))| {
                let energy = |x: &[f32]| x.iter().map(|&a| (a as f64).powi(2)).sum::<f64>();
                SegmentShare {
                    start_s: seconds(s * c.segment_frames),
                    end_s: seconds((s + 1) * c.segment_frames).min(duration),
                    share: (energy(v) / energy(m).max(1e-20)) as f32,
                }
            })
            .collect())
    }

    /// The two channels the U-Nets take (a mono signal twice), checked.
    fn stereo<'a>(&self, channels: &[&'a [f32]]) -> Result<[&'a [f32]; 2]> {
        let id = &self.config.id;
        let pair = match channels {
            [mono] => [*mono, *mono],
            [l, r] => [*l, *r],
            _ => {
                return Err(Error::model(format!(
                    "separator {id}: 1 or 2 channels, got {}",
                    channels.len()
                )));
            }
        };
        if pair[0].len() != pair[1].len() || pair[0].is_empty() {
            return Err(Error::model(format!(
                "separator {id}: channels of {} and {} samples (equal, non-empty, expected)",
                pair[0].len(),
                pair[1].len()
            )));
        }
        Ok(pair)
    }

    /// Rows `[chosen · 2, (T − 1) · hop + n_fft]` (segment-major, channel-minor) of the
    /// centred, zero-padded signal, each covering one chosen segment's frames; and the window.
    fn rows(
        &self,
        backend: &B,
        [left, right]: [&[f32]; 2],
        chosen: &[usize],
    ) -> Result<(B::Tensor, B::Tensor)> {
        let c = &self.config;
        let (n_fft, hop, t) = (c.n_fft, c.hop_length, c.segment_frames);
        let len = left.len();
        let row_len = (t - 1) * hop + n_fft;
        let mut rows = vec![0.0f32; chosen.len() * 2 * row_len];
        for (k, &s) in chosen.iter().enumerate() {
            for (ch, x) in [left, right].iter().enumerate() {
                let row = &mut rows[(k * 2 + ch) * row_len..][..row_len];
                // Row sample i is padded sample s·t·hop + i, i.e. signal sample that − n_fft/2.
                let first = (s * t * hop) as isize - (n_fft / 2) as isize;
                for (i, v) in row.iter_mut().enumerate() {
                    let j = first + i as isize;
                    if j >= 0 && (j as usize) < len {
                        *v = x[j as usize];
                    }
                }
            }
        }
        let rows = backend.upload(&rows, &[chosen.len() * 2, row_len])?;
        let window = super::dsp::window(super::config::WindowFunction::Hann, n_fft, n_fft);
        Ok((rows, backend.upload(&window, &[n_fft])?))
    }

    /// The STFT the separation uses: not centred (the rows are), the lowest `bins` bins.
    fn stft_params(&self, bins: usize) -> StftParams {
        StftParams {
            n_fft: self.config.n_fft,
            hop: self.config.hop_length,
            center: false,
            power: 1.0,
            drop_last: false,
            keep_bins: Some(bins),
        }
    }

    /// The rows' magnitudes on the lowest `bins` bins as the U-Nets take them, `[segments, 2,
    /// T, bins]`.
    fn magnitudes(
        &self,
        backend: &B,
        rows: &B::Tensor,
        window: &B::Tensor,
        segments: usize,
        bins: usize,
    ) -> Result<B::Tensor> {
        let c = &self.config;
        let magnitudes = backend.stft_power(rows, window, &self.stft_params(bins))?;
        backend.reshape(magnitudes, &[segments, 2, c.segment_frames, bins])
    }

    /// The `chosen` segments' rows and both U-Nets' estimates for them.
    fn segments(&self, backend: &B, stereo: [&[f32]; 2], chosen: &[usize]) -> Result<Segments<B>> {
        let c = &self.config;
        if self.stems.len() != 2 {
            return Err(Error::model(format!(
                "separator {}: the ratio mask needs 2 stems, the file has {}",
                c.id,
                self.stems.len()
            )));
        }
        let count = chosen.len();
        let (rows, window) = self.rows(backend, stereo, chosen)?;
        let magnitudes = self.magnitudes(backend, &rows, &window, count, c.bins)?;
        // [segments, 2, T, F] is [segments · 2, T, F] for the complex STFT's rows.
        let estimates = self
            .stem_magnitudes(backend, &magnitudes)?
            .into_iter()
            .map(|e| backend.reshape(e, &[count * 2, c.segment_frames, c.bins]))
            .collect::<Result<Vec<_>>>()?;
        Ok(Segments {
            rows,
            rows_count: count * 2,
            window,
            stft: self.stft_params(c.bins),
            estimates,
        })
    }

    /// Each stem's estimated magnitudes for `[B, 2, frames, bins]` magnitudes.
    pub fn stem_magnitudes(&self, backend: &B, magnitudes: &B::Tensor) -> Result<Vec<B::Tensor>> {
        self.stems
            .iter()
            .map(|s| s.forward(backend, magnitudes))
            .collect()
    }
}

/// A separator file of Spleeter's 2-stem shape (channels 2 to 512, 4096-point STFT at 44.1 kHz,
/// 512-frame segments of 1024 bins) with random weights: the real weights' speed, for machines
/// they do not reach (`examples/separate random-spleeter`, scripts/gpu-check.sh).
pub fn random_spleeter_bytes(seed: u64) -> Result<Vec<u8>> {
    use rand::{Rng, SeedableRng};
    let channels = vec![2, 16, 32, 64, 128, 256, 512];
    let config = SeparatorConfig {
        format: SEPARATOR_FORMAT.into(),
        version: 1,
        id: "random-spleeter-shape".into(),
        description: "Spleeter 2-stem shape, random weights (timing only)".into(),
        sample_rate: 44100,
        n_fft: 4096,
        hop_length: 1024,
        bins: 1024,
        segment_frames: 512,
        channels: channels.clone(),
        batch_norm_eps: 1e-3,
        leaky_slope: 0.2,
        stems: vec!["vocals".into(), "accompaniment".into()],
        provenance: serde_json::Value::Null,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut tensors = BTreeMap::new();
    let mut add = |name: String, shape: Vec<usize>, lo: f32, hi: f32| {
        let n = shape.iter().product();
        let data = (0..n).map(|_| rng.random_range(lo..hi)).collect();
        tensors.insert(name, HostTensor { shape, data });
    };
    for stem in &config.stems {
        let norm = |add: &mut dyn FnMut(String, Vec<usize>, f32, f32), name: String, n: usize| {
            add(format!("{name}.weight"), vec![n], 0.9, 1.1);
            add(format!("{name}.bias"), vec![n], -0.1, 0.1);
            add(format!("{name}.running_mean"), vec![n], -0.1, 0.1);
            add(format!("{name}.running_var"), vec![n], 0.9, 1.1);
        };
        for i in 0..DEPTH {
            let (i_c, o_c) = (channels[i], channels[i + 1]);
            add(
                format!("{stem}.enc.{i}.weight"),
                vec![o_c, i_c, 5, 5],
                -0.05,
                0.05,
            );
            add(format!("{stem}.enc.{i}.bias"), vec![o_c], -0.05, 0.05);
            norm(&mut add, format!("{stem}.enc_bn.{i}"), o_c);
        }
        for k in 0..DEPTH {
            let out = if k + 1 == DEPTH {
                1
            } else {
                channels[DEPTH - 1 - k]
            };
            let input = if k == 0 {
                channels[DEPTH]
            } else {
                2 * channels[DEPTH - k]
            };
            add(
                format!("{stem}.dec.{k}.weight"),
                vec![input, out, 5, 5],
                -0.05,
                0.05,
            );
            add(format!("{stem}.dec.{k}.bias"), vec![out], -0.05, 0.05);
            norm(&mut add, format!("{stem}.dec_bn.{k}"), out);
        }
        add(format!("{stem}.mask.weight"), vec![2, 1, 4, 4], -0.05, 0.05);
        add(format!("{stem}.mask.bias"), vec![2], -0.05, 0.05);
    }
    let json = serde_json::to_string(&config).map_err(|e| Error::model(e.to_string()))?;
    super::file::serialize(json, &tensors)
}

/// How much of one segment of a signal a separator's first stem holds (`vocal_presence`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentShare {
    pub start_s: f64,
    pub end_s: f64,
    /// Energy of the stem's magnitude estimate over the mix's, 0 to 1.
    pub share: f32,
}

/// Spleeter's ratio-mask epsilon.
const MASK_EPS: f32 = 1e-10;

/// Segments a separation pass takes by default (Spleeter's: about 12 s each).
pub const SEGMENTS_PER_PASS: usize = 4;

/// A signal cut into segment rows (`[segments · 2, (T − 1) · hop + n_fft]`, segment-major) and
/// the stems' magnitude estimates for them (`[segments · 2, T, bins]` each).
struct Segments<B: Backend> {
    rows: B::Tensor,
    rows_count: usize,
    window: B::Tensor,
    stft: StftParams,
    estimates: Vec<B::Tensor>,
}

/// Join the `segments` rows' overlap-added halves (segment-major, channel-minor) into each
/// channel's signal of `len` samples: divide by the window's overlapped square and drop the
/// centring (PyTorch's `istft(center=True)`).
fn join(
    halves: &[f32],
    window: &[f32],
    c: &SeparatorConfig,
    segments: usize,
    len: usize,
) -> Vec<Vec<f32>> {
    let (n_fft, hop, t) = (c.n_fft, c.hop_length, c.segment_frames);
    let row_len = (t - 1) * hop + n_fft;
    let total = (segments * t - 1) * hop + n_fft;
    let mut envelope = vec![0.0f64; total];
    for frame in 0..segments * t {
        for (e, w) in envelope[frame * hop..][..n_fft].iter_mut().zip(window) {
            *e += (*w as f64).powi(2);
        }
    }
    (0..2)
        .map(|ch| {
            let mut sum = vec![0.0f64; total];
            for s in 0..segments {
                let row = &halves[(s * 2 + ch) * row_len..][..row_len];
                for (d, v) in sum[s * t * hop..][..row_len].iter_mut().zip(row) {
                    *d += *v as f64;
                }
            }
            (n_fft / 2..n_fft / 2 + len)
                .map(|i| {
                    if envelope[i] > 1e-11 {
                        (sum[i] / envelope[i]) as f32
                    } else {
                        0.0
                    }
                })
                .collect()
        })
        .collect()
}

impl<B: Backend> StemNet<B> {
    fn forward(&self, be: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let down = Conv2dParams {
            stride: [2, 2],
            padding: [1, 1],
            padding_end: [2, 2],
        };
        let up = ConvTranspose2dParams {
            stride: [2, 2],
            crop: [1, 1],
            crop_end: [2, 2],
        };
        let mut skips = Vec::with_capacity(DEPTH);
        let mut h: Option<B::Tensor> = None;
        for [w, b, scale, shift] in &self.enc {
            let z = be.conv2d(h.as_ref().unwrap_or(x), w, Some(b), &down, Activation::None)?;
            h = Some(be.channel_affine(&z, scale, shift, Activation::LeakyRelu(self.slope))?);
            skips.push(z);
        }
        // The deepest convolution's output, before its norm and activation, starts the decoder.
        let mut h = skips.pop().expect("six encoder steps");
        for (k, [w, b, scale, shift]) in self.dec.iter().enumerate() {
            if k > 0 {
                let skip = skips
                    .pop()
                    .expect("a skip per decoder step after the first");
                h = be.concat_channels(&skip, &h)?;
            }
            let y = be.conv_transpose2d(&h, w, Some(b), &up, Activation::Relu)?;
            h = be.channel_affine(&y, scale, shift, Activation::None)?;
        }
        let same = Conv2dParams::symmetric([1, 1], [3, 3]);
        let mask = be.conv2d(
            &h,
            &self.mask[0],
            Some(&self.mask[1]),
            &same,
            Activation::Sigmoid,
        )?;
        be.mul(&mask, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config a separation cannot run is refused with the reason, never a panic later.
    #[test]
    fn configs_a_separation_cannot_run_are_refused() {
        let bytes = random_spleeter_bytes(1).unwrap();
        let good = load(&bytes, "random").unwrap().config;
        assert_eq!(check_config(&good), Ok(()));
        type Spoil = fn(&mut SeparatorConfig);
        let cases: [(&str, Spoil); 6] = [
            ("hop_length", |c| c.hop_length = 0),
            ("hop_length", |c| c.hop_length = 2049),
            ("segment_frames", |c| c.segment_frames = 100),
            ("bins", |c| c.bins = 2112),
            ("n_fft", |c| c.n_fft = 3000),
            ("2 stems", |c| c.stems.truncate(1)),
        ];
        for (what, spoil) in cases {
            let mut c = good.clone();
            spoil(&mut c);
            let why = check_config(&c).unwrap_err();
            assert!(why.contains(what), "{why}");
        }
    }

    /// The random file has Spleeter's shape throughout: the loader checks every tensor's.
    #[test]
    fn a_random_spleeter_loads_with_spleeters_shape() {
        let bytes = random_spleeter_bytes(1).unwrap();
        let spec = load(&bytes, "random").unwrap();
        assert_eq!(spec.config.channels, [2, 16, 32, 64, 128, 256, 512]);
        assert_eq!(spec.stems.len(), 2);
        assert_eq!(spec.stems[0].mask[0].shape, [2, 1, 7, 7]);
        assert_ne!(bytes, random_spleeter_bytes(2).unwrap(), "the seed matters");
    }
}
