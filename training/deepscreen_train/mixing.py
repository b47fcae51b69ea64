"""Laying a voice over a music bed (data/vocal_mixtures.py), numpy only so it is testable
without the recipe's audio stack."""

from __future__ import annotations

import numpy as np


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2) + 1e-12))


def mix(bed: np.ndarray, voice: np.ndarray, vocal_db: float) -> np.ndarray:
    """A mono voice in the middle of a stereo bed ([2, n]), its loudness over its active part
    `vocal_db` from the bed's; the sum scaled down if it would clip."""
    active = voice[np.abs(voice) > 1e-4]
    gain = rms(bed) / max(rms(active), 1e-6) * 10 ** (vocal_db / 20)
    out = bed + gain * voice[None, :]
    peak = float(np.abs(out).max())
    return out / peak * 0.98 if peak > 0.98 else out
