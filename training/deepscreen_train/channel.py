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


def random_chain(rng: random.Random, kind: str, at_least_one: bool = False) -> list[tuple[str, dict]]:
    """Draw the steps for one clip (the same distribution for real and fake clips)."""
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
            x = quantise(x, p["law"])
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
