"""A quick probe, before any engine work: would a phase-aware (group-delay) front-end catch the
attacks the magnitude models miss (linear Griffin-Lim, MLSA)? Trains a small CNN per front-end
on the same excerpts and prints the EER per attack on excerpts of the held-out real packages.

    python training/probe_phase.py --real DATA/real --kind speech --cache /tmp/probe-speech.pt

Front-ends (16 kHz, Hann window of n_fft, hop 128, no centring; X, Y = STFTs with windows w and
t·w, t = (n - n_fft/2) / n_fft, the frame's time axis; R = Re(X·conj(Y)), the group delay
times |X|²):
  logpow  ln(|X|² + 1e-6)                    the baseline, what the embedded CNNs see
  gdcos   R / (|X|·|Y|)                      cosine of the X/Y phase difference, in [-1, 1]
  gdtau   tanh(4·R / (|X|² + 1e-7))          group delay in frames, squashed
  both    logpow and gdtau as two channels
R comes from three power spectra, R = (|STFT_(1+t)w|² - |X|² - |Y|²) / 2, the form the engine's
`stft_power` op could compute without a complex output.

Fakes (make_fakes.py's own functions, on excerpts at the file's rate, then resampled): training
mel Griffin-Lim + WORLD (or --train-attacks), test mel and linear Griffin-Lim (+ MLSA for speech)
made from the held-out real packages. No channel chain. Results (2026-12-01, 240 training
excerpts, 400 steps of 32) are in models/speech.md, "Phase front-end probe".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchaudio

from deepscreen_train.common import DEV_REAL, read_rows
from deepscreen_train.resynthesis import griffin_lim, mlsa, world
from deepscreen_train.metrics import eer

RATE = 16000
SECONDS = 3.0
SAMPLES = 47000  # a little under 3 s at 16 kHz, so every excerpt gives the same frame count


def excerpts(rows, real: Path, n: int, rng) -> list[tuple[np.ndarray, int]]:
    """n random 3 s excerpts (mono, peak 0.5) of files from rows, skipping unreadable or silent ones."""
    out = []
    while len(out) < n:
        r = rows[rng.integers(len(rows))]
        try:
            x, rate = sf.read(real / r["path"], dtype="float32", always_2d=True)
        except Exception:
            continue
        x = x.mean(1)
        if len(x) < (SECONDS + 1) * rate:
            continue
        start = rng.integers(0, len(x) - int(SECONDS * rate))
        x = x[start : start + int(SECONDS * rate)]
        if np.abs(x).max() >= 1e-3:
            out.append((x / np.abs(x).max() * 0.5, rate))
    return out


def to_model_rate(x: np.ndarray, rate: int) -> torch.Tensor:
    y = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), rate, RATE)
    return y[:SAMPLES]


def build(args) -> dict:
    rng = np.random.default_rng(0)
    rows = [r for r in read_rows(args.real / "real.csv") if r["kind"] == args.kind]
    data = {}
    for split, held, n in (("train", False, args.n), ("test", True, args.n // 2)):
        pool = [r for r in rows if (r["package"] in DEV_REAL[args.kind]) == held]
        real = [to_model_rate(*e) for e in excerpts(pool, args.real, n, rng)]
        src = excerpts(pool, args.real, n, rng)
        fakes = {
            "gl-mel": [to_model_rate(griffin_lim(x, r, True, rng), r) for x, r in src[: n // 2]],
            "gl-lin": [to_model_rate(griffin_lim(x, r, False, rng), r) for x, r in src[n // 2 :]],
        }
        more = excerpts(pool, args.real, n // 2, rng)
        if split == "train":
            fakes["world"] = [to_model_rate(world(x.astype(np.float64), r, rng).astype(np.float32), r) for x, r in more]
        elif args.kind == "speech":
            fakes["mlsa"] = [to_model_rate(mlsa(x.astype(np.float64), r).astype(np.float32), r) for x, r in more]
        data[split] = (real, fakes)
        print(f"{split}: {len(real)} real, " + ", ".join(f"{k} {len(v)}" for k, v in fakes.items()), flush=True)
    return data


def features(x: torch.Tensor, kind: str, n_fft: int) -> torch.Tensor:
    w = torch.hann_window(n_fft, periodic=True)
    t = (torch.arange(n_fft) - n_fft / 2) / n_fft
    x = x / (x.abs().max() + 1e-9)

    def power(window):
        return torch.stft(x, n_fft, 128, window=window, return_complex=True, center=False).abs().T ** 2

    a = power(w)
    if kind == "logpow":
        return torch.log(a + 1e-6)[None]
    b = power(t * w)
    r = (power((1 + t) * w) - a - b) / 2
    if kind == "gdcos":
        return (r / (torch.sqrt(a * b) + 1e-9))[None]
    gd = torch.tanh(4 * r / (a + 1e-7))
    return gd[None] if kind == "gdtau" else torch.stack([torch.log(a + 1e-6), gd])


def probe(data: dict, kind: str, n_fft: int, train_attacks: list[str], steps: int) -> str:
    torch.manual_seed(0)

    def stack(split, attacks):
        real, fakes = data[split]
        xs = [features(x, kind, n_fft) for x in real]
        labels = ["real"] * len(real)
        for a in attacks:
            xs += [features(x, kind, n_fft) for x in fakes[a]]
            labels += [a] * len(fakes[a])
        return torch.stack(xs), np.array(labels)

    xtr, ltr = stack("train", train_attacks)
    test_attacks = list(data["test"][1])
    xte, lte = stack("test", test_attacks)
    mean, std = xtr.mean((0, 2), keepdim=True), xtr.std((0, 2), keepdim=True) + 1e-5
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    ytr = torch.tensor(ltr != "real", dtype=torch.float32)

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))

    net = nn.Sequential(block(xtr.shape[1], 16), block(16, 32), block(32, 32), nn.Conv2d(32, 32, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 1))
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-3)
    balance = (ytr == 0).float() * (ytr.sum() / (1 - ytr).sum()) + ytr  # classes drawn evenly
    crop = min(xtr.shape[2], 180)
    for _ in range(steps):
        idx = torch.multinomial(balance, 32, replacement=True)
        o = np.random.randint(0, xtr.shape[2] - crop + 1)
        loss = F.binary_cross_entropy_with_logits(net(xtr[idx, :, o : o + crop]).squeeze(1), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        scores = torch.cat([net(xte[i : i + 64]).squeeze(1) for i in range(0, len(xte), 64)]).numpy()
    real = scores[lte == "real"]
    per_attack = "  ".join(f"{a} {100 * eer(real, scores[lte == a])[0]:.1f} %" for a in test_attacks)
    return f"{kind:6} n_fft {n_fft:4}  final loss {loss.item():.3f}  EER: {per_attack}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, required=True, help="output of data/fetch_real.py")
    ap.add_argument("--kind", choices=["speech", "music"], required=True)
    ap.add_argument("--cache", type=Path, required=True, help="the built excerpts (made once, reused)")
    ap.add_argument("--n", type=int, default=240, help="real training excerpts (fakes and tests follow)")
    ap.add_argument("--frontends", nargs="+", default=["logpow", "gdcos", "gdtau"],
                    choices=["logpow", "gdcos", "gdtau", "both"])
    ap.add_argument("--n-fft", type=int, default=512)
    ap.add_argument("--train-attacks", nargs="+", default=["gl-mel", "world"])
    ap.add_argument("--steps", type=int, default=400)
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)  # silent stretches of speech otherwise slow training severalfold
    if not args.cache.exists():
        torch.save(build(args), args.cache)
    data = torch.load(args.cache)
    for kind in args.frontends:
        print(probe(data, kind, args.n_fft, args.train_attacks, args.steps), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
