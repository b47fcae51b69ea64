"""Golden vectors for an exported model: PyTorch features, raw outputs and calibrated scores on
deterministic windows that `tests/it/golden.rs` rebuilds bit for bit (so no audio is shipped)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from deepscreen_train.torch_model import DeepscreenModel

M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (wrapping u64 arithmetic): white, bit-exact in Rust too."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def golden_windows(count: int, n: int, rate: int, n_fft: int) -> np.ndarray:
    """Window k: a multisine with one cosine on every FFT bin centre (bins 1 … n_fft/2-1,
    equal amplitude, phases from SplitMix64 of (k << 32) + bin), so it repeats every n_fft
    samples. Every bin of every frame then holds real energy: random noise would leave some bins
    nearly empty, where any f32 FFT (PyTorch's or ours) has large relative error, and the test
    would measure rounding instead of the engine."""
    half = n_fft // 2
    bins = np.arange(1, half, dtype=np.uint64)
    i = np.arange(n_fft, dtype=np.float64)
    amp = 0.3 / np.sqrt(len(bins) / 2)
    out = []
    with np.errstate(over="ignore"):
        for k in range(count):
            bits = splitmix64(bins + (np.uint64(k) << np.uint64(32)))
            phases = (bits >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2 * np.pi
            period = np.zeros(n_fft)
            for b, ph in zip(bins.astype(np.float64), phases):  # ascending bins, as the Rust test sums
                period += amp * np.cos(2 * np.pi * b * i / n_fft + ph)
            out.append(np.tile(period, n // n_fft + 1)[:n].astype(np.float32))
    return np.stack(out)


def write_golden(model: DeepscreenModel, path: Path) -> None:
    cfg = model.config
    n = round(cfg["window"]["seconds"] * cfg["sample_rate"])
    count = 3 if n * 4 < 400_000 else 2
    windows = torch.from_numpy(golden_windows(count, n, cfg["sample_rate"], cfg["frontend"]["n_fft"]))
    with torch.inference_mode():
        feats = model.features(windows)
        outputs = model.classify(feats)
        scores = model.scores(windows)
    save_file(
        {"features_every_4th_frame": feats[:, ::4].contiguous(), "outputs": outputs.contiguous(),
         "scores": scores.contiguous(), "window_head": windows[:, :64].contiguous()},
        str(path), metadata={"torch": torch.__version__, "model": cfg["id"]},
    )
    print(f"wrote {path}: scores {scores.tolist()}")
