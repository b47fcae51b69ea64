"""The channel chain of data v2, applied to BOTH classes alike (../shared/DATA.md, "Shortcuts"):
whatever a real recording went through on its way to a catalog (a phone line, a radio, an 8-bit
sampler, a compressor, a room, a noisy street, a codec), a fake can go through too, so channel
is never a cue for "real" or "fake".

`random_chain(rng, kind)` draws a list of steps; `apply(audio, rate, steps)` runs them. Each step
is a (name, params) pair so the lists can record what a clip went through.

Steps: resampling round trips (8 / 11.025 / 16 / 22.05 kHz), telephone and radio band-passes,
8-bit linear / µ-law / A-law quantisation, soft clipping, dynamic-range compression, synthetic
room reverb, white / pink / brown noise at 5–30 dB SNR, RawBoost-style convolutive (random
multi-notch filter), impulsive (sparse clicks) and coloured stationary noise, and a codec round
trip (ffmpeg; done by the caller, see prepare.py).

Data v3 adds an **archival** family, drawn as one coherent channel (old recordings, CD-ROM-era
game audio, tape and early digital transfers): an 8 or 11.025 kHz resampling round trip, 8-bit /
µ-law / IMA-ADPCM quantisation, tape hiss, wow and flutter, a DC offset and level rides; with
the caller's codec round trip drawn from old low-bitrate MP3, GSM and ADPCM. Real speech from
such sources drew most false alarms on the independent evaluation: fakes go through it as
often as reals.
"""

from __future__ import annotations

import random
from math import gcd

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, resample_poly, sosfilt


def resample_round_trip(x: np.ndarray, rate: int, through: int) -> np.ndarray:
    if through >= rate:
        return x
    g = gcd(rate, through)
    y = resample_poly(resample_poly(x, through // g, rate // g), rate // g, through // g).astype(np.float32)
    return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]


def band_pass(x: np.ndarray, rate: int, low: float, high: float, order: int) -> np.ndarray:
    high = min(high, 0.45 * rate)
    sos = butter(order, [low, high], btype="bandpass", fs=rate, output="sos")
    return sosfilt(sos, x).astype(np.float32)


def quantise(x: np.ndarray, law: str) -> np.ndarray:
    peak = max(np.abs(x).max(), 1e-9)
    y = x / peak
    if law == "linear8":
        return (np.round(y * 127) / 127 * peak).astype(np.float32)
    if law == "mulaw":
        mu = 255.0
        c = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
        c = np.round(c * 127) / 127
        return (np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu * peak).astype(np.float32)
    if law == "alaw":
        a = 87.6
        ay = np.abs(y)
        c = np.where(ay < 1 / a, a * ay / (1 + np.log(a)), (1 + np.log(np.maximum(a * ay, 1e-12))) / (1 + np.log(a)))
        c = np.round(c * 127) / 127
        inv = np.where(c < 1 / (1 + np.log(a)), c * (1 + np.log(a)) / a, np.exp(c * (1 + np.log(a)) - 1) / a)
        return (np.sign(y) * inv * peak).astype(np.float32)
    raise ValueError(law)


def soft_clip(x: np.ndarray, drive: float) -> np.ndarray:
    peak = max(np.abs(x).max(), 1e-9)
    return (np.tanh(drive * x / peak) / np.tanh(drive) * peak).astype(np.float32)


def compress(x: np.ndarray, rate: int, threshold_db: float, ratio: float) -> np.ndarray:
    """Feed-forward compressor: 5 ms attack, 80 ms release envelope on 1 ms blocks."""
    block = max(1, rate // 1000)
    n = len(x) // block
    if n < 2:
        return x
    level = np.sqrt(np.mean(x[: n * block].reshape(n, block) ** 2, axis=1) + 1e-12)
    env = np.empty(n)
    att, rel = np.exp(-1 / 5), np.exp(-1 / 80)
    e = level[0]
    for i, v in enumerate(level):
        e = att * e + (1 - att) * v if v > e else rel * e + (1 - rel) * v
        env[i] = e
    db = 20 * np.log10(env + 1e-12) - 20 * np.log10(max(np.abs(x).max(), 1e-9))
    gain_db = np.where(db > threshold_db, (threshold_db - db) * (1 - 1 / ratio), 0.0)
    gain = np.repeat(10 ** (gain_db / 20), block)
    gain = np.pad(gain, (0, len(x) - len(gain)), mode="edge")
    return (x * gain).astype(np.float32)


def reverb(x: np.ndarray, rate: int, rt60: float, wet: float, rng: np.random.Generator) -> np.ndarray:
    """Synthetic room: exponentially decaying noise (RT60) after a direct path."""
    n = int(rt60 * rate)
    t = np.arange(n) / rate
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    ir[: int(0.002 * rate)] = 0.0
    ir = ir / (np.sqrt(np.sum(ir**2)) + 1e-9)
    y = fftconvolve(x, ir)[: len(x)]
    out = (1 - wet) * x + wet * y * (np.sqrt(np.mean(x**2)) / (np.sqrt(np.mean(y**2)) + 1e-9))
    return out.astype(np.float32)


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if colour == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spec /= np.sqrt(f) if colour == "pink" else f
    return np.fft.irfft(spec, n)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    p = np.mean(x**2) + 1e-12
    pn = np.mean(noise**2) + 1e-12
    return (x + noise * np.sqrt(p / pn * 10 ** (-snr_db / 10))).astype(np.float32)


def rawboost_convolutive(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """RawBoost (1): a cascade of random notch/peaking bands, i.e. an unknown linear channel."""
    y = x.astype(np.float64)
    for _ in range(rng.integers(2, 6)):
        f0 = rng.uniform(100, 0.45 * rate)
        bw = rng.uniform(50, 1500)
        low, high = max(20.0, f0 - bw / 2), min(0.49 * rate, f0 + bw / 2)
        b, a = butter(2, [low, high], btype="bandstop" if rng.random() < 0.5 else "bandpass", fs=rate)
        band = lfilter(b, a, y)
        y = y + rng.uniform(-0.6, 0.6) * band
    return (y * np.sqrt(np.mean(x**2) / (np.mean(y**2) + 1e-12))).astype(np.float32)


def rawboost_impulsive(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RawBoost (2): sparse clicks at up to 10 % of the samples."""
    y = x.copy()
    k = int(len(x) * rng.uniform(0.001, 0.1))
    idx = rng.integers(0, len(x), k)
    peak = max(np.abs(x).max(), 1e-9)
    y[idx] += (rng.uniform(-1, 1, k) * peak * rng.uniform(0.05, 0.5)).astype(np.float32)
    return y


# Share of channel draws that are one archival channel (data v3).
ARCHIVAL_SHARE = 0.15

# IMA ADPCM (the 4-bit DVI codec of early PC and game audio): step sizes and index changes.
IMA_STEPS = np.array([
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66, 73,
    80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449, 494,
    544, 598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499,
    2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630, 9493, 10442, 11487,
    12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794, 32767])
IMA_INDEX = [-1, -1, -1, -1, 2, 4, 6, 8]


def ima_adpcm(x: np.ndarray) -> np.ndarray:
    """An IMA ADPCM round trip (encode to 4-bit codes, decode) at the signal's own rate."""
    pcm = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int64)
    out = np.empty(len(pcm), dtype=np.float32)
    predicted, index = 0, 0
    for i, sample in enumerate(pcm.tolist()):
        step = int(IMA_STEPS[index])
        diff = sample - predicted
        code = 8 if diff < 0 else 0
        diff = abs(diff)
        delta = step >> 3
        for bit, weight in ((4, step), (2, step >> 1), (1, step >> 2)):
            if diff >= weight:
                code |= bit
                diff -= weight
                delta += weight
        predicted = max(-32768, min(32767, predicted - delta if code & 8 else predicted + delta))
        index = max(0, min(88, index + IMA_INDEX[code & 7]))
        out[i] = predicted / 32768
    return out


def wow_flutter(x: np.ndarray, rate: int, wow: float, wow_hz: float, flutter: float, flutter_hz: float,
                phase: float) -> np.ndarray:
    """Tape speed variation: the signal read at a slowly (wow) and quickly (flutter) wandering
    position; depths are relative speed deviations (0.002 = 0.2 %)."""
    t = np.arange(len(x)) / rate
    speed = 1 + wow * np.sin(2 * np.pi * wow_hz * t + phase) + flutter * np.sin(2 * np.pi * flutter_hz * t)
    pos = np.cumsum(speed) - speed[0]
    return np.interp(np.clip(pos, 0, len(x) - 1), np.arange(len(x)), x).astype(np.float32)


def level_ride(x: np.ndarray, rate: int, depth_db: float, seed: int) -> np.ndarray:
    """Slow gain changes (a hand on the fader, an AGC): smooth random gain within ±depth_db."""
    rng = np.random.default_rng(seed)
    knots = max(2, int(len(x) / rate) + 2)
    gain_db = np.interp(np.arange(len(x)), np.linspace(0, len(x) - 1, knots), rng.uniform(-depth_db, depth_db, knots))
    return (x * 10 ** (gain_db / 20)).astype(np.float32)


def archival_chain(rng: random.Random) -> list[tuple[str, dict]]:
    """One old-recording channel: low band, coarse quantisation, then tape-like faults."""
    steps: list[tuple[str, dict]] = [("resample", dict(through=rng.choice([8000, 11025, 11025, 16000])))]
    law = rng.choice(["linear8", "mulaw", "adpcm", "none"])
    if law != "none":
        steps.append(("quantise", dict(law=law)))
    if rng.random() < 0.6:
        steps.append(("noise", dict(colour="white", snr_db=rng.uniform(18, 40), seed=rng.randrange(1 << 30))))
    if rng.random() < 0.5:
        steps.append(("wow_flutter", dict(wow=rng.uniform(0.0005, 0.004), wow_hz=rng.uniform(0.3, 2.0),
                                          flutter=rng.uniform(0.0001, 0.001), flutter_hz=rng.uniform(5.0, 12.0),
                                          phase=rng.uniform(0, 6.28))))
    if rng.random() < 0.3:
        steps.append(("dc", dict(offset=rng.uniform(-0.02, 0.02))))
    if rng.random() < 0.5:
        steps.append(("level", dict(depth_db=rng.uniform(1.0, 6.0), seed=rng.randrange(1 << 30))))
    return steps


def random_chain(rng: random.Random, kind: str, at_least_one: bool = False) -> list[tuple[str, dict]]:
    """Draw the steps for one clip (the same distribution for real and fake clips)."""
    if rng.random() < ARCHIVAL_SHARE:
        return archival_chain(rng)
    steps: list[tuple[str, dict]] = []
    while True:
        if rng.random() < 0.12:
            steps.append(("band", dict(kind="telephone", low=300.0, high=3400.0, order=4)))
        elif rng.random() < 0.08:
            steps.append(("band", dict(kind="radio", low=rng.uniform(80, 250), high=rng.uniform(4000, 8000), order=2)))
            steps.append(("compress", dict(threshold_db=rng.uniform(-30, -15), ratio=rng.uniform(4, 10))))
        if rng.random() < 0.12:
            steps.append(("resample", dict(through=rng.choice([8000, 11025, 16000, 22050]))))
        if rng.random() < 0.1:
            steps.append(("compress", dict(threshold_db=rng.uniform(-30, -10), ratio=rng.uniform(2, 8))))
        if rng.random() < 0.15:
            steps.append(("reverb", dict(rt60=rng.uniform(0.15, 1.0), wet=rng.uniform(0.1, 0.6), seed=rng.randrange(1 << 30))))
        if rng.random() < 0.08:
            steps.append(("rawboost_conv", dict(seed=rng.randrange(1 << 30))))
        if rng.random() < 0.2:
            steps.append(("noise", dict(colour=rng.choice(["white", "pink", "brown"]), snr_db=rng.uniform(5, 30),
                                        seed=rng.randrange(1 << 30))))
        if rng.random() < 0.06:
            steps.append(("rawboost_impulse", dict(seed=rng.randrange(1 << 30))))
        if rng.random() < 0.06:
            steps.append(("soft_clip", dict(drive=rng.uniform(1.5, 6.0))))
        if rng.random() < 0.1:
            steps.append(("quantise", dict(law=rng.choice(["linear8", "mulaw", "alaw"]))))
        if steps or not at_least_one:
            return steps


def apply(x: np.ndarray, rate: int, steps: list[tuple[str, dict]]) -> np.ndarray:
    for name, p in steps:
        if name == "band":
            x = band_pass(x, rate, p["low"], p["high"], p["order"])
        elif name == "resample":
            x = resample_round_trip(x, rate, p["through"])
        elif name == "compress":
            x = compress(x, rate, p["threshold_db"], p["ratio"])
        elif name == "reverb":
            x = reverb(x, rate, p["rt60"], p["wet"], np.random.default_rng(p["seed"]))
        elif name == "rawboost_conv":
            x = rawboost_convolutive(x, rate, np.random.default_rng(p["seed"]))
        elif name == "noise":
            x = add_noise(x, coloured_noise(len(x), p["colour"], np.random.default_rng(p["seed"])), p["snr_db"])
        elif name == "rawboost_impulse":
            x = rawboost_impulsive(x, np.random.default_rng(p["seed"]))
        elif name == "soft_clip":
            x = soft_clip(x, p["drive"])
        elif name == "quantise":
            x = ima_adpcm(x) if p["law"] == "adpcm" else quantise(x, p["law"])
        elif name == "wow_flutter":
            x = wow_flutter(x, rate, p["wow"], p["wow_hz"], p["flutter"], p["flutter_hz"], p["phase"])
        elif name == "dc":
            x = (x + p["offset"]).astype(np.float32)
        elif name == "level":
            x = level_ride(x, rate, p["depth_db"], p["seed"])
        else:
            raise ValueError(name)
    return x


def describe(steps: list[tuple[str, dict]]) -> str:
    """Short label for the lists, e.g. "band:telephone+noise:pink"."""
    parts = []
    for name, p in steps:
        detail = p.get("kind") or p.get("colour") or p.get("law") or (str(p["through"]) if "through" in p else "")
        parts.append(f"{name}:{detail}" if detail else name)
    return "+".join(parts) or "none"
