"""Whisper's log-mel front-end and audio encoder in plain numpy (float64), written from the
paper and model description: the independent reference the engine's encoder is pinned to.

Front-end: periodic Hann window of 400 samples, hop 160, centred STFT with reflect padding, the
last frame dropped, |X|^2, 80 Slaney-scale mel filters with Slaney (area) normalisation,
log10(max(x, 1e-10)), floor at (max - 8), then (x + 4) / 4.
Encoder: conv1d(80→d, k3, p1) + GELU, conv1d(d→d, k3, s2, p1) + GELU, + sinusoidal positions,
N pre-LayerNorm blocks (fused-QKV multi-head self-attention; GELU MLP), final LayerNorm.
GELU is the exact (erf) one; LayerNorm eps 1e-5.
"""

import math

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
N_MELS = 80
LN_EPS = 1e-5

_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def hz_to_mel(f):
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    linear = f / f_sp
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, linear)


def mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS):
    """[n_mels, n_fft/2 + 1] triangular filters, each scaled to unit area (Slaney norm)."""
    bins = np.linspace(0.0, sr / 2.0, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    weights = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (bins - lo) / (mid - lo)
        falling = (hi - bins) / (hi - mid)
        weights[i] = np.maximum(0.0, np.minimum(rising, falling)) * 2.0 / (hi - lo)
    return weights


def log_mel(audio):
    """[80, frames] log-mel of 16 kHz mono `audio` (frames = len // 160)."""
    x = np.asarray(audio, dtype=np.float64)
    pad = N_FFT // 2
    padded = np.pad(x, pad, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(N_FFT) / N_FFT)
    frames = 1 + (len(padded) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(frames)[:, None]
    spectrum = np.fft.rfft(padded[idx] * window, axis=1)
    power = (np.abs(spectrum) ** 2)[:-1]  # Whisper drops the last frame
    mel = mel_filters() @ power.T
    spec = np.log10(np.maximum(mel, 1e-10))
    spec = np.maximum(spec, spec.max() - 8.0)
    return (spec + 4.0) / 4.0


def conv1d(x, weight, bias, stride=1, padding=1):
    """x [C, T], weight [O, C, K] → [O, T']."""
    _, _, k = weight.shape
    xp = np.pad(x, ((0, 0), (padding, padding)))
    t_out = (xp.shape[1] - k) // stride + 1
    cols = np.stack([xp[:, j * stride : j * stride + k] for j in range(t_out)])  # [T', C, K]
    return np.einsum("tck,ock->ot", cols, weight) + bias[:, None]


def layer_norm(x, gamma, beta):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LN_EPS) * gamma + beta


def attention(h, w_qkv, b_qkv, w_out, b_out, heads):
    t, d = h.shape
    qkv = h @ w_qkv.T + b_qkv
    q, k, v = (qkv[:, i * d : (i + 1) * d].reshape(t, heads, d // heads).transpose(1, 0, 2) for i in range(3))
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d // heads)
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    probs = scores / scores.sum(axis=-1, keepdims=True)
    out = (probs @ v).transpose(1, 0, 2).reshape(t, d)
    return out @ w_out.T + b_out


def encoder_weights(variables):
    """The encoder's tensors from a CTranslate2 Whisper model, as float64."""
    f = {k: v.astype(np.float64) for k, v in variables.items() if k.startswith("encoder/") and v.dtype != np.int16}
    heads = int(variables["encoder/num_heads"])
    layers = 0
    while f"encoder/layer_{layers}/ffn/linear_0/weight" in f:
        layers += 1
    return f, heads, layers


def encode(mel, variables, all_layers=False):
    """[T/2, d] final hidden states of a [80, T] log-mel; with `all_layers`, the list
    [stem + positions, block 1, ..., block N, final LayerNorm]."""
    w, heads, layers = encoder_weights(variables)
    x = gelu(conv1d(mel, w["encoder/conv1/weight"], w["encoder/conv1/bias"]))
    x = gelu(conv1d(x, w["encoder/conv2/weight"], w["encoder/conv2/bias"], stride=2))
    x = x.T + w["encoder/position_encodings/encodings"][: x.shape[1]]
    states = [x]
    for i in range(layers):
        p = f"encoder/layer_{i}/"
        a = p + "self_attention/"
        h = layer_norm(x, w[a + "layer_norm/gamma"], w[a + "layer_norm/beta"])
        x = x + attention(h, w[a + "linear_0/weight"], w[a + "linear_0/bias"], w[a + "linear_1/weight"], w[a + "linear_1/bias"], heads)
        m = p + "ffn/"
        h = layer_norm(x, w[m + "layer_norm/gamma"], w[m + "layer_norm/beta"])
        h = gelu(h @ w[m + "linear_0/weight"].T + w[m + "linear_0/bias"])
        x = x + h @ w[m + "linear_1/weight"].T + w[m + "linear_1/bias"]
        states.append(x)
    states.append(layer_norm(x, w["encoder/layer_norm/gamma"], w["encoder/layer_norm/beta"]))
    return states if all_layers else states[-1]
