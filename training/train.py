"""Trains a reference detector on the prepared data (data/prepare.py), calibrates it on the dev
set and exports it in the engine's format, with golden vectors for the parity test.

    python training/train.py --kind speech --config speech-cnn --id speech-cnn-v3 --balance-sources \
        --data data/speech --minutes 30 --batch 32 --freq-mask 16 \
        --out models/speech-cnn.safetensors --golden tests/golden/embedded_speech-cnn_io.safetensors

The architecture and front-end are `training/configs/<config or kind>.json` (`speech.json` and
`music.json` are also the engine's presets). Training: balanced batches (half bona fide, spoof drawn evenly over the seen
attacks), one random window per clip cut the way the engine cuts them (random start, or
repeat-padding for short clips), binary cross-entropy on the "synthetic" logit, Adam.

Calibration: logistic regression of the window logits on the dev bona fide and SEEN-attack dev
clips (clean and codec lists), so `score` is P(synthetic); the default threshold is the EER point
of the calibrated file scores on that same set. Unseen attacks play no part in either.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn
from torch.nn import functional as F

from deepscreen_train import calibration, metrics, windowing
from deepscreen_train.common import is_seen, read_rows
from deepscreen_train.torch_model import DeepscreenModel, activation, parameter_free_layer, save

CONFIGS = Path(__file__).parent / "configs"


# ---------------------------------------------------------------- trainable network


class Classifier(nn.Module):
    """The config's layer list as trainable modules (BN in training mode while training)."""

    def __init__(self, config: dict):
        super().__init__()
        self.layers = config["layers"]
        self.mods = nn.ModuleDict()
        c = 1
        for layer in self.layers:
            t = layer["type"]
            if t == "conv2d":
                conv = nn.Conv2d(c, layer["out_channels"], tuple(layer["kernel"]), stride=tuple(layer.get("stride", [1, 1])),
                                 padding=tuple(layer.get("padding", [0, 0])), bias=layer.get("bias", True))
                self.mods[layer["name"]] = conv
                c = layer["out_channels"]
                if layer.get("batchnorm"):
                    self.mods[layer["name"] + "_bn"] = nn.BatchNorm2d(c)
            elif t == "batch_norm":
                self.mods[layer["name"]] = nn.BatchNorm2d(c)
            elif t == "mfm":
                c //= 2
            elif t == "linear":
                self.mods[layer["name"]] = nn.Linear(c, layer["out_features"], bias=layer.get("bias", True))
                c = layer["out_features"]
            elif t not in ("max_pool2d", "global_avg_pool", "global_max_pool"):
                raise ValueError(f"training does not support layer {t!r}")

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = feats.unsqueeze(1)
        for layer in self.layers:
            t = layer["type"]
            if t == "conv2d":
                x = self.mods[layer["name"]](x)
                if layer.get("batchnorm"):
                    x = self.mods[layer["name"] + "_bn"](x)
                x = activation(x, layer.get("activation"))
            elif t == "batch_norm":
                x = activation(self.mods[layer["name"]](x), layer.get("activation"))
            elif t == "linear":
                x = activation(self.mods[layer["name"]](x), layer.get("activation"))
            else:
                x = parameter_free_layer(x, layer)
        return x[:, 0]

    def engine_tensors(self) -> dict[str, torch.Tensor]:
        """Parameters under the model format's names (PyTorch state_dict style)."""
        out: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            name = layer.get("name")
            if layer["type"] in ("conv2d", "linear"):
                m = self.mods[name]
                out[f"{name}.weight"] = m.weight
                if m.bias is not None:
                    out[f"{name}.bias"] = m.bias
                if layer.get("batchnorm"):
                    bn = self.mods[name + "_bn"]
                    for part in ("weight", "bias", "running_mean", "running_var"):
                        out[f"{name}.bn.{part}"] = getattr(bn, part)
            elif layer["type"] == "batch_norm":
                bn = self.mods[name]
                for part in ("weight", "bias", "running_mean", "running_var"):
                    out[f"{name}.{part}"] = getattr(bn, part)
        return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


# ---------------------------------------------------------------- data


def window_len(config: dict) -> tuple[int, int, int]:
    w = config["window"]
    return windowing.lengths(w["seconds"], w["hop_seconds"], w.get("min_seconds", 0.25), config["sample_rate"])


def load_list(data: Path, name: str, rate: int) -> list[dict]:
    rows = read_rows(data / f"{name}.csv")
    for r in rows:
        audio, sr = sf.read(data / r["path"], dtype="float32", always_2d=True)
        assert sr == rate, f"{r['path']}: {sr} Hz"
        r["audio"] = audio.mean(axis=1)
    return rows


def mask_frequencies(feats: torch.Tensor, width: int, rng: random.Random) -> torch.Tensor:
    """Two bands of up to `width` rows per example set to the example's mean (the features are
    mean-normalised, so about 0): the detector cannot lean on one narrow band."""
    feats = feats.clone()  # [batch, frames, bins]
    bins = feats.shape[2]
    for i in range(feats.shape[0]):
        for _ in range(2):
            w = rng.randrange(0, width + 1)
            f0 = rng.randrange(0, max(1, bins - w))
            feats[i, :, f0 : f0 + w] = feats[i].mean()
    return feats


def random_window(x: np.ndarray, n: int, rng: random.Random) -> np.ndarray:
    if len(x) <= n:
        return windowing.pad(x, n)
    s = rng.randrange(0, len(x) - n + 1)
    return x[s : s + n]


# ---------------------------------------------------------------- calibration


@torch.no_grad()
def window_logits(front: DeepscreenModel, net: Classifier, rows: list[dict], config: dict) -> list[np.ndarray]:
    """Each clip's window logits, its windows cut as the engine cuts them (none when silent)."""
    net.eval()
    w, rate = config["window"], config["sample_rate"]
    out = []
    for r in rows:
        try:
            windows = windowing.windows(r["audio"], rate, w["seconds"], w["hop_seconds"],
                                        w.get("min_seconds", 0.25), w.get("pad", "repeat"))
        except windowing.TooShort:
            windows = []  # the engine's error row (too little active audio): left out, like silence
        x = torch.from_numpy(np.stack([win.samples for win in windows])) if windows else None
        out.append(net(front.features(x)).numpy() if x is not None else np.zeros(0, np.float32))
    return out


def file_scores(logits: list[np.ndarray], a: float, b: float) -> np.ndarray:
    clip = np.concatenate([np.full(len(l), i) for i, l in enumerate(logits)]).astype(int)
    return calibration.file_scores(np.concatenate(logits), clip, len(logits), a, b)


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["speech", "music"], required=True)
    ap.add_argument("--data", type=Path, nargs="+", required=True,
                    help="output(s) of data/prepare.py; lists of the same name are joined")
    ap.add_argument("--config", help="training/configs/<CONFIG>.json (default: --kind)")
    ap.add_argument("--id", help="the model's id (default: --kind)")
    ap.add_argument("--balance-sources", action="store_true",
                    help="draw bona fide clips evenly over their source packages, not over clips")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--golden", type=Path, help="write golden vectors here")
    ap.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--freq-mask", type=int, default=0,
                    help="SpecAugment-style: up to this many frequency rows set to the mean, twice per example")
    ap.add_argument("--target-fa", type=float, default=0.01, help="threshold = this false-alarm rate on dev bona fide")
    ap.add_argument("--hold-out-family", nargs="*", default=[],
                    help="generator families (deepscreen_train.common.GENERATORS, e.g. gan-hifigan) kept out of "
                         "training and calibration: a leave-one-family-out model, whose dev EER on that family "
                         "is what an unseen family of its kind would get")
    ap.add_argument("--checkpoint", type=Path, help="save training state here every 100 steps")
    ap.add_argument("--resume", action="store_true", help="continue from --checkpoint (the time budget is the total)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    held_out = frozenset(args.hold_out_family)
    config = json.loads((CONFIGS / f"{args.config or args.kind}.json").read_text())
    rate = config["sample_rate"]
    n, _, _ = window_len(config)
    front = DeepscreenModel(config).eval()
    net = Classifier(config)

    t_load = time.time()
    train = [r for d in args.data for r in load_list(d, "train", rate)]
    reals = [r for r in train if r["label"] == "bonafide"]
    # One package with most of the clips would otherwise define "real" (its channel, its voices).
    real_groups: list[list[dict]] = [reals]
    if args.balance_sources:
        by_source: dict[str, list[dict]] = {}
        for r in reals:
            by_source.setdefault(r["source"], []).append(r)
        real_groups = [by_source[k] for k in sorted(by_source)]
        print("bona fide sources: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(by_source.items())))
    by_attack: dict[str, list[dict]] = {}
    for r in train:
        if r["label"] == "spoof" and is_seen(args.kind, r["attack"], held_out):
            by_attack.setdefault(r["attack"], []).append(r)
    print(f"train: {len(reals)} bona fide, {sum(map(len, by_attack.values()))} spoof {sorted(by_attack)} "
          f"(loaded in {time.time() - t_load:.0f} s)", flush=True)

    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    attacks = sorted(by_attack)
    t0, step, smooth = time.time(), 0, None
    if args.resume and args.checkpoint and args.checkpoint.exists():
        state = torch.load(args.checkpoint, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step, t0 = state["step"], time.time() - state["elapsed"]
        rng.setstate(state["rng"])
        print(f"resumed at step {step} ({state['elapsed'] / 60:.1f} min done)", flush=True)
    budget = args.minutes * 60
    while time.time() - t0 < budget:
        net.train()
        half = args.batch // 2
        picks = [rng.choice(rng.choice(real_groups) if args.balance_sources else reals) for _ in range(half)] + [rng.choice(by_attack[rng.choice(attacks)]) for _ in range(half)]
        x = torch.from_numpy(np.stack([random_window(r["audio"], n, rng) for r in picks]))
        x = x * torch.from_numpy(10 ** (np.random.uniform(-10, 10, size=(len(picks), 1)) / 20)).float()
        y = torch.tensor([0.0] * half + [1.0] * half)
        with torch.no_grad():
            feats = front.features(x)
            if args.freq_mask:
                feats = mask_frequencies(feats, args.freq_mask, rng)
        loss = F.binary_cross_entropy_with_logits(net(feats), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        # cosine decay over the time budget
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (time.time() - t0) / budget)))
        step += 1
        smooth = loss.item() if smooth is None else 0.98 * smooth + 0.02 * loss.item()
        if step % 50 == 0:
            print(f"step {step} loss {smooth:.4f} ({time.time() - t0:.0f} s)", flush=True)
        if args.checkpoint and step % 100 == 0:
            tmp = args.checkpoint.with_suffix(".tmp")
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "step": step,
                        "elapsed": time.time() - t0, "rng": rng.getstate()}, tmp)
            tmp.replace(args.checkpoint)
    train_s = time.time() - t0
    print(f"trained {step} steps in {train_s / 60:.1f} min", flush=True)

    # Calibration on dev bona fide + seen attacks (clean and channel lists).
    cal_rows = [r for name in ("dev", "dev-channel") for d in args.data for r in load_list(d, name, rate)
                if is_seen(args.kind, r["attack"], held_out)]
    logits = window_logits(front, net, cal_rows, config)
    labels = np.array([1.0 if r["label"] == "spoof" else 0.0 for r in cal_rows])
    # Clips the engine would call no-signal have no windows: they are left out.
    scored = [i for i, l in enumerate(logits) if len(l)]
    logits, labels, cal_rows = [logits[i] for i in scored], labels[scored], [cal_rows[i] for i in scored]
    a, b = calibration.fit(np.concatenate(logits),
                           np.concatenate([np.full(len(l), y) for l, y in zip(logits, labels)]))
    scores = file_scores(logits, a, b)
    cal_eer, _ = metrics.eer(scores[labels == 0], scores[labels == 1])
    # A catalog screen must not cry wolf: the threshold is the target false-alarm rate on the
    # held-out real audio (its packages never trained), not the EER point.
    threshold = calibration.threshold_at(scores[labels == 0], args.target_fa)
    caught = float((scores[labels == 1] >= threshold).mean())
    print(f"calibration: scale {a:.4f} bias {b:.4f}; seen-attack dev EER {cal_eer * 100:.2f} %; "
          f"threshold {threshold:.4f} ({args.target_fa:.0%} FA) catches {caught:.1%} of seen-attack dev fakes")

    config["id"] = args.id or args.kind
    config["calibration"] = {"scale": a, "bias": b}
    config["threshold"] = threshold
    config["aggregation"] = "mean"
    config["provenance"] = {
        "made_by": "training/train.py",
        "torch": torch.__version__,
        "train_clips": {"bonafide": len(reals), **{k: len(v) for k, v in by_attack.items()}},
        "steps": step,
        "batch": args.batch,
        "train_minutes": round(train_s / 60, 1),
        "freq_mask": args.freq_mask,
        "balanced_sources": args.balance_sources,
        "calibration": f"logistic on dev bona fide + seen attacks (clean + channel), threshold = {args.target_fa:.0%} "
                       "false alarms on dev bona fide (held-out packages)",
        "seen_dev_eer": round(cal_eer, 4),
    }
    config["description"] = (
        f"deepscreen reference {args.kind} detector: trained only on allowed Debian audio and allowed generators "
        f"({', '.join(attacks)}); see models/{args.config or args.kind}.md"
    )
    model = DeepscreenModel(config, net.engine_tensors()).eval()
    # The exported model must be the trained network: compare on a dev batch.
    with torch.no_grad():
        w = torch.from_numpy(np.stack([windowing.pad(r["audio"][:n], n) for r in cal_rows[:8]]))
        d = (model.logits(model.classify(model.features(w))) - net(front.features(w))).abs().max().item()
    assert d < 1e-3, f"export differs from the trained network by {d}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(model, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")

    if args.golden:
        from deepscreen_train.golden_vectors import write_golden

        write_golden(model, args.golden)
    return 0


if __name__ == "__main__":
    sys.exit(main())
