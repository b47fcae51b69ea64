//! The model config: JSON stored under the `deepscreen` key of the safetensors metadata.
//!
//! Every field is documented in README.md ("Model format"); unknown fields are rejected so a
//! typo in a training export fails loudly instead of being ignored.

use serde::{Deserialize, Serialize};

/// Value of `format` in every deepscreen model config.
pub const FORMAT_NAME: &str = "deepscreen-model";
/// Config versions this build reads.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];
/// Metadata key that holds the JSON config.
pub const METADATA_KEY: &str = "deepscreen";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Always "deepscreen-model".
    pub format: String,
    /// Schema version; see [`SUPPORTED_VERSIONS`].
    pub version: u32,
    /// Stable identifier reported in every row, e.g. "speech-lcnn-v1".
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// Sample rate the model expects; audio is resampled to it.
    pub sample_rate: u32,
    pub window: WindowConfig,
    pub frontend: FrontendConfig,
    /// A pretrained transformer encoder between the front-end and the classifier (Whisper's);
    /// the classifier then sees its hidden states `[positions, width]` as its input image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderConfig>,
    /// Tensors this file leaves out and takes from an embedded model (a second detector on the
    /// same Whisper encoder carries its head alone, not another 40 MB copy of the encoder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_tensors: Option<SharedTensors>,
    /// The classifier; empty only for an encoder front-end without a head (which can
    /// compute features but not score).
    pub layers: Vec<LayerConfig>,
    pub output: OutputConfig,
    #[serde(default)]
    pub calibration: Calibration,
    /// Default decision threshold on the calibrated score (`--threshold` overrides it).
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    #[serde(default)]
    pub aggregation: Aggregation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_rule: Option<SegmentRule>,
    /// Free-form: training data, commit, date, metrics. Kept for people and model cards; the
    /// engine does not interpret it.
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// Where a model's missing tensors come from: every tensor of the embedded model `from` whose
/// name starts with `prefix` (e.g. `"encoder."`). Both models must declare the same encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedTensors {
    pub from: String,
    pub prefix: String,
}

/// A fused model's config (the file holds no tensors): embedded networks that score the same
/// windows, each given them at its own rate and planned for their length; the fused score is
/// `sigmoid(Σ member.weight · logit(p_member) + bias)`, every `p` calibrated by its own
/// network. Detectors that fail on different attacks cover each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionConfig {
    /// Always "deepscreen-model".
    pub format: String,
    pub version: u32,
    /// Stable identifier reported in every row, e.g. "music-fusion-v3.2".
    pub id: String,
    #[serde(default)]
    pub description: String,
    /// The rate audio is windowed and silence-gated at (each member then gets every window
    /// resampled to its own rate).
    pub sample_rate: u32,
    pub window: WindowConfig,
    pub fusion: Fusion,
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    #[serde(default)]
    pub aggregation: Aggregation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_rule: Option<SegmentRule>,
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// A second route to `synthetic`, for partial fakes (one cloned sentence in a real interview,
/// a generated verse in a real song), which a file score averaged over windows hides: a run
/// of `windows` consecutive scored windows that all score at least `threshold` flags the file
/// even when its file score stays below the model's threshold. `training/segment_rule.py` fits
/// it on long real recordings with and without a spliced-in fake, so that it adds few false
/// alarms on real files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRule {
    pub windows: usize,
    pub threshold: f32,
    /// How it was fitted (trials, false alarms added, detection).
    #[serde(default)]
    pub provenance: serde_json::Value,
}

impl SegmentRule {
    /// At least one window, a threshold in (0, 1].
    pub fn check(&self) -> Result<(), String> {
        if self.windows == 0 || !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(format!(
                "the segment rule needs at least one window and a threshold in (0, 1] (has {} \
                 windows at {})",
                self.windows, self.threshold
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fusion {
    /// In the order their logits are summed; the first one's spectrogram explains a window on
    /// the review page.
    pub members: Vec<FusionMember>,
    #[serde(default)]
    pub bias: f32,
    /// Run the expensive members only where the cheap ones leave the verdict open (absent:
    /// every member scores every window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade: Option<Cascade>,
}

/// A fusion's cascade: the members not named in `deferred` score every window first; their
/// partial fused logit `z = bias + Σ weight · logit(p)` decides a window alone when it lies
/// outside `[lo, hi]`, and the deferred members then skip that window. A window decided so
/// scores `sigmoid(z + fill_below)` (below `lo`) or `sigmoid(z + fill_above)` (above `hi`):
/// the deferred members' median contribution on dev windows on that side, so a cascaded
/// score estimates the full fusion's. `training/fuse.py --cascade` fits it on dev reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cascade {
    /// The members run only inside the band (the costly ones), by name.
    pub deferred: Vec<String>,
    pub lo: f32,
    pub hi: f32,
    pub fill_below: f32,
    pub fill_above: f32,
    /// How the band was fitted (dev lists, agreement with the full fusion).
    #[serde(default)]
    pub provenance: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionMember {
    /// An embedded model's name (a network, not itself a fusion); with `file`, the id of the
    /// network in that file.
    pub model: String,
    pub weight: f32,
    /// A network file to read the member from, relative to the fused model's own file, instead
    /// of an embedded network: a fusion of models not built into the binary (a candidate, a
    /// user's retrained member). Only a fused model loaded from a file can name one; the file's
    /// id must be `model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// A model file's config: one network, or a fusion of networks (a config with a
/// `fusion` key).
// One per loaded file: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum FileConfig {
    Network(ModelConfig),
    Fusion(FusionConfig),
}

impl FileConfig {
    pub fn id(&self) -> &str {
        match self {
            FileConfig::Network(c) => &c.id,
            FileConfig::Fusion(c) => &c.id,
        }
    }
}

fn default_threshold() -> f32 {
    0.5
}

/// How audio is cut into fixed-length windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Window length in seconds.
    pub seconds: f64,
    /// Hop between window starts in seconds (≤ `seconds`).
    pub hop_seconds: f64,
    /// Files shorter than this are reported as errors instead of being padded.
    #[serde(default = "default_min_seconds")]
    pub min_seconds: f64,
    /// How a file shorter than one window is filled up to the window length.
    #[serde(default)]
    pub pad: PadMode,
}

fn default_min_seconds() -> f64 {
    0.25
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Repeat the audio from its start until the window is full (the ASVspoof baselines' rule).
    #[default]
    Repeat,
    /// Append digital silence.
    Zeros,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendConfig {
    pub n_fft: usize,
    /// Window length in samples, ≤ n_fft; the window is zero-padded (centred) to n_fft.
    #[serde(default)]
    pub win_length: Option<usize>,
    pub hop_length: usize,
    #[serde(default)]
    pub window: WindowFunction,
    /// Reflect-pad n_fft/2 on both sides (PyTorch `center=True`).
    #[serde(default)]
    pub center: bool,
    /// 2.0 = power spectrum, 1.0 = magnitude.
    #[serde(default = "default_power")]
    pub power: f32,
    /// Leave out the STFT's last frame (Whisper's log-mel does).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_last_frame: bool,
    pub filterbank: FilterbankConfig,
    pub log: LogConfig,
    /// Cepstral coefficients (DCT-II, orthonormal) after the log, e.g. for LFCC/MFCC.
    #[serde(default)]
    pub dct: Option<DctConfig>,
    #[serde(default)]
    pub normalize: NormalizeMode,
}

fn default_power() -> f32 {
    2.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowFunction {
    /// Periodic Hann (PyTorch's `hann_window` default).
    #[default]
    Hann,
    /// Periodic Hamming.
    Hamming,
    Rectangular,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterbankConfig {
    pub kind: FilterbankKind,
    /// Number of filters (mel, linear); ignored for `bins` and `custom`.
    #[serde(default)]
    pub n_filters: usize,
    #[serde(default)]
    pub f_min: f64,
    /// Upper edge in Hz; defaults to Nyquist.
    #[serde(default)]
    pub f_max: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterbankKind {
    /// Keep the FFT bins whose centre frequency lies in [f_min, f_max] (linear spectrogram).
    Bins,
    /// Triangular filters equally spaced on the HTK mel scale (torchaudio `melscale_fbanks`,
    /// `norm=None`, `mel_scale="htk"`).
    Mel,
    /// Triangular filters equally spaced in Hz (torchaudio `linear_fbanks`), for LFCC.
    Linear,
    /// A `[n_fft/2+1, n_filters]` matrix stored as tensor `frontend.filterbank`.
    Custom,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub kind: LogKind,
    #[serde(default = "default_log_eps")]
    pub eps: f32,
    /// Floor every value at the window's largest minus this, in the log's own units (dB for
    /// `db`), before any DCT or normalisation: Whisper's idea (its max − 8) for any front-end.
    /// Without it, the empty bins of a band-limited or quiet recording sit at `eps` or at
    /// whatever noise its channel left, a cue that says more about the channel than the voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_below_max: Option<f32>,
}

fn default_log_eps() -> f32 {
    1e-6
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// ln(x + eps)
    Ln,
    /// log10(x + eps)
    Log10,
    /// 10·log10(max(x, eps))
    Db,
    /// log10(max(x, eps)) (Whisper's log-mel)
    Log10Clamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DctConfig {
    pub n_coeffs: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalizeMode {
    #[default]
    None,
    /// Subtract each feature's mean over the window.
    Mean,
    /// Mean and variance normalisation per feature over the window.
    MeanVar,
    /// `(x - mean) / std` with tensors `frontend.mean`, `frontend.std`.
    Global,
    /// Whisper's: `(max(x, m - 8) + 4) / 4` with `m` the window's largest value.
    Whisper,
}

/// A pretrained transformer encoder. Tensors (`d` = width, `F` = front-end features):
/// `encoder.conv1.weight` [d, F, 3] and `.bias`, `encoder.conv2.weight` [d, d, 3] and `.bias`
/// (stride 2), `encoder.positions` [max_positions, d], per block `i`
/// `encoder.blocks.{i}.attn_norm|mlp_norm.weight|bias` [d], `.qkv.weight` [3d, d] and
/// `.bias` [3d], `.attn_out.weight` [d, d], `.mlp_in.weight` [4d, d], `.mlp_out.weight`
/// [d, 4d] (each with its bias), and `encoder.final_norm.weight|bias` [d].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    pub kind: EncoderKind,
    /// Hidden width d.
    pub width: usize,
    pub heads: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Rows of the position table: the longest sequence after the stem.
    pub max_positions: usize,
    /// Which hidden state the classifier reads.
    #[serde(default)]
    pub read: EncoderRead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderKind {
    /// Whisper's audio encoder: conv1d + GELU, conv1d (stride 2) + GELU, sinusoidal positions,
    /// pre-LayerNorm blocks (fused-QKV self-attention, GELU MLP), final LayerNorm.
    Whisper,
}

/// What the classifier reads from the encoder: `"final"` (after the final LayerNorm),
/// `{"layer": i}` (0 = stem + positions, i = after block i), or `{"mix": [{"state": i,
/// "weight": w}, …]}`: `Σ w · LayerNorm(state i)` (LayerNorm without gain or bias), where state
/// i indexes [stem + positions, block 1, …, block N, final LayerNorm] — a learned weighted sum
/// of layers (low layers see signal detail, top layers content).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderRead {
    #[default]
    Final,
    Layer(usize),
    Mix(Vec<MixTerm>),
}

/// One term of [`EncoderRead::Mix`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixTerm {
    pub state: usize,
    pub weight: f32,
}

/// One classifier layer. Tensors are looked up by `name` + suffix (see README).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerConfig {
    /// Tensors: `{name}.weight` [out, in, kh, kw], `{name}.bias` [out] (if `bias`), and if
    /// `batchnorm`: `{name}.bn.weight|bias|running_mean|running_var` [out] (folded at load).
    Conv2d {
        name: String,
        out_channels: usize,
        kernel: [usize; 2],
        #[serde(default = "one_pair")]
        stride: [usize; 2],
        #[serde(default)]
        padding: [usize; 2],
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default)]
        batchnorm: bool,
        #[serde(default)]
        bn_eps: Option<f32>,
        #[serde(default)]
        activation: ActivationConfig,
    },
    /// Inference batch norm on its own. Tensors `{name}.weight|bias|running_mean|running_var`.
    BatchNorm {
        name: String,
        #[serde(default)]
        eps: Option<f32>,
        #[serde(default)]
        activation: ActivationConfig,
    },
    /// Max-feature-map over the channel axis (halves the channels).
    Mfm,
    MaxPool2d {
        kernel: [usize; 2],
        /// Defaults to the kernel size.
        #[serde(default)]
        stride: Option<[usize; 2]>,
        #[serde(default)]
        padding: [usize; 2],
    },
    GlobalAvgPool,
    GlobalMaxPool,
    /// `[B, C, H, W]` → `[B, C*H*W]`.
    Flatten,
    /// Tensors `{name}.weight` [out, in], `{name}.bias` [out] (if `bias`).
    Linear {
        name: String,
        out_features: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default)]
        activation: ActivationConfig,
    },
}

fn one_pair() -> [usize; 2] {
    [1, 1]
}
fn yes() -> bool {
    true
}

/// `"none"`, `"relu"`, `"sigmoid"`, `"gelu"` (erf form) or `{"leaky_relu": slope}`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationConfig {
    #[default]
    None,
    Relu,
    Sigmoid,
    LeakyRelu(f32),
    Gelu,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    pub kind: OutputKind,
    /// For `softmax`: index of the bona fide class; synthetic = 1 - p[bona_fide_index].
    #[serde(default)]
    pub bona_fide_index: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// The last layer has one output, a logit where positive means synthetic.
    Logit,
    /// The last layer has N ≥ 2 class outputs, turned into probabilities by softmax.
    Softmax,
}

/// Calibrated score = sigmoid(scale · logit + bias), fitted on a development set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub scale: f32,
    pub bias: f32,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            scale: 1.0,
            bias: 0.0,
        }
    }
}

/// How window scores become the file score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Mean of the calibrated window scores.
    #[default]
    Mean,
    /// Highest window score (flags a file if any part looks synthetic).
    Max,
}
