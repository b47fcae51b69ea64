"""The engine's windows, as `screen` cuts them (src/audio/mod.rs `read_windows`), so that what a
model trains and calibrates on is what it scores. At the model's rate:

1. the silence gate (src/audio/activity.rs `SilenceGate`): every 20 ms frame whose RMS is at or
   below -60 dBFS is cut out, the active parts on either side joined;
2. windows (src/audio/windows.rs): one every hop while they fit, one more aligned to the end if
   audio remains; a stream shorter than a window but at least `min_seconds` long is padded to one
   window (repeated, or zeros), a shorter one is refused;
3. a window with fewer than a tenth of its 20 ms frames active is not scored;
4. inside a scored window, every run of digital silence (|x| ≤ one 16-bit step) of 10 ms or more
   becomes a -75 dBFS noise floor — the engine's own deterministic noise, reproduced here
   bit for bit.

Window times are the file's own (positions mapped back through the gate's cuts), as the
report's segments give them. `tests/test_windowing.py` checks all of this against the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVE_DBFS = -60.0
ACTIVE_SHARE = 0.1
SILENCE_LEVEL = np.float32(1.0 / 32768.0)
SILENCE_RUN_S = 0.01
FLOOR_DBFS = -75.0


@dataclass
class Window:
    """Source positions (samples at the model rate) `start..end` and the samples scored."""

    start: int
    end: int
    samples: np.ndarray


class TooShort(ValueError):
    """The audio is shorter than the model's `min_seconds` (the engine's error row)."""


def lengths(seconds: float, hop_seconds: float, min_seconds: float, rate: int) -> tuple[int, int, int]:
    """Window, hop and minimum length in samples, rounded as src/model/geometry.rs does."""
    n = int(round(seconds * rate))
    return n, max(1, int(round(hop_seconds * rate))), min(max(1, int(round(min_seconds * rate))), n)


def _frame_active(frame: np.ndarray) -> bool:
    power = np.sum(frame.astype(np.float64) ** 2) / len(frame)
    return bool(power > float(np.float32(10 ** (ACTIVE_DBFS / 20))) ** 2)


def is_active(w: np.ndarray, rate: int) -> bool:
    """At least a tenth of the window's 20 ms frames are louder than -60 dBFS."""
    frame = min(max(rate // 50, 1), max(len(w), 1))
    flags = [_frame_active(w[i : i + frame]) for i in range(0, len(w), frame)]
    return len(flags) > 0 and sum(flags) >= ACTIVE_SHARE * len(flags)


def gate(x: np.ndarray, rate: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The stream with its quiet 20 ms frames cut out (the last partial frame judged alone), and
    the cuts: (gated position, samples dropped before it), one where output resumes after a cut."""
    frame = max(rate // 50, 1)
    kept, cuts = [], []
    emitted = dropped = 0
    for i in range(0, len(x), frame):
        f = x[i : i + frame]
        if _frame_active(f):
            if (cuts[-1][1] if cuts else 0) < dropped:
                cuts.append((emitted, dropped))
            kept.append(f)
            emitted += len(f)
        else:
            dropped += len(f)
    gated = np.concatenate(kept) if kept else np.zeros(0, dtype=x.dtype)
    return gated, cuts


def source_start(cuts: list[tuple[int, int]], pos: int) -> int:
    before = [d for g, d in cuts if g <= pos]
    return pos + (before[-1] if before else 0)


def source_end(cuts: list[tuple[int, int]], end: int) -> int:
    before = [d for g, d in cuts if g < end]
    return end + (before[-1] if before else 0)


def spans(total: int, n: int, hop: int) -> list[tuple[int, int]]:
    """(start, end) of the windows of a stream of `total` ≥ `n` samples."""
    out = [(s, s + n) for s in range(0, total - n + 1, hop)]
    if out[-1][1] < total:
        out.append((total - n, total))
    return out


def pad(x: np.ndarray, n: int, mode: str = "repeat") -> np.ndarray:
    """A stream shorter than a window, made one: repeated from its start, or zero-padded."""
    if mode == "zeros":
        return np.concatenate([x, np.zeros(n - len(x), dtype=x.dtype)])
    return np.tile(x, -(-n // max(1, len(x))))[:n]


def uniform(seed: int, index: np.ndarray) -> np.ndarray:
    """The engine's noise: a value in [-1, 1) from a SplitMix64-style hash of (seed, index)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + index.astype(np.uint64) * np.uint64(
            0xBF58476D1CE4E5B9
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return ((z >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)) * np.float32(2) - np.float32(1)


def fill_digital_silence(w: np.ndarray, rate: int, seed: int) -> np.ndarray:
    """Runs of digital silence ≥ 10 ms replaced by the engine's -75 dBFS noise floor (the
    noise depends on `seed`, the window's gated start, and the position in the window)."""
    w = np.asarray(w, dtype=np.float32).copy()
    quiet = np.abs(w) <= SILENCE_LEVEL
    if not quiet.any():
        return w
    min_run = max(int(np.float32(rate) * np.float32(SILENCE_RUN_S)), 1)
    amplitude = np.float32(10 ** (FLOOR_DBFS / 20)) * np.float32(np.sqrt(np.float32(3)))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]])))
    for start, end in zip(edges[::2], edges[1::2]):
        if end - start >= min_run:
            w[start:end] = amplitude * uniform(seed, np.arange(start, end))
    return w


def windows(
    x: np.ndarray, rate: int, seconds: float, hop_seconds: float, min_seconds: float = 0.25,
    pad_mode: str = "repeat",
) -> list[Window]:
    """The windows the engine scores for mono `x` at the model's `rate` (steps 1–4 above).
    Empty when nothing is active (the engine's verdict no-signal); `TooShort` when the gated
    audio is shorter than `min_seconds` (an error row when the file itself is that short, a
    no-signal verdict when silence made it so)."""
    x = np.asarray(x, dtype=np.float32)
    n, hop, least = lengths(seconds, hop_seconds, min_seconds, rate)
    gated, cuts = gate(x, rate)
    if len(gated) == 0:
        return []
    if len(gated) < least:
        raise TooShort(f"{len(gated) / rate:.2f} s of active audio, the model needs {least / rate:.2f} s")
    if len(gated) >= n:
        cut = [(s, e, gated[s:e]) for s, e in spans(len(gated), n, hop)]
    else:
        cut = [(0, len(gated), pad(gated, n, pad_mode))]
    out = []
    for s, e, w in cut:
        if is_active(w, rate):
            out.append(Window(source_start(cuts, s), source_end(cuts, e), fill_digital_silence(w, rate, s)))
    return out
