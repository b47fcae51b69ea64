"""Train a detector head on cached frozen Whisper-encoder features (features.py), calibrate it,
set its threshold for catalogs, measure it on the held-out dev lists, and export the whole model
(encoder + head) in the engine's format.

    python training/whisper/train_head.py --data data/speech --features data/speech/features-base \
        --encoder data/whisper-base-encoder.safetensors --hop 4 --out models/speech-whisper.safetensors

Head (engine layers, so every backend runs it): the encoder's final states [positions, width]
are the classifier's input image; conv2d with kernel [1, width] = one shared dense layer per
position (+ ReLU), a second per-position dense layer (+ ReLU), global average pooling over
positions, a linear logit. Training: source-balanced sampling (every real package and every
generator/voice family weighs the same, so no single source or channel defines a class),
dropout on the encoder features, AdamW, binary cross-entropy on window logits.

Calibration: logistic regression of window logits on the dev lists (bona fide and every dev
attack, clean and channel); `score` = mean of calibrated window scores. Threshold: 1 % false
alarms on the held-out real packages (dev bona fide, clean and channel together). Figures: EER,
minDCF, detection at 1 % and 0.1 % false alarms, per attack, per held-out source, per channel.
Each run appends its figures to --log (JSON lines) so experiments stay on record.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepscreen_train import calibration
from deepscreen_train.common import is_seen, read_rows
from deepscreen_train.metrics import metrics


def load_stack(sets: list[tuple[Path, Path]], layer_dirs: list[Path], mix: list[int], name: str,
               keep_row: Callable[[dict], bool] | None = None):
    """One list (train, dev, …) over every (data, features) set: the cached final states
    [windows, positions, width], or with `mix` the states of those blocks (LAYER_DIR/L{k}) stacked
    before the final ones [windows, len(mix) + 1, positions, width]; the window → row index into
    the joined rows; the rows. Filled shard by shard into one array (the stack can be most of
    the machine's memory: no second copy is made). With `keep_row`, only the windows of the rows
    it keeps are read in (the rows themselves all stay, so indices are those of the lists)."""
    rows: list[dict] = []
    shards: list[tuple[list[Path], int]] = []  # per shard: its files (mix blocks…, final), row offset
    for i, (data, features) in enumerate(sets):
        if not (data / f"{name}.csv").exists():
            continue
        these = read_rows(data / f"{name}.csv")
        files = sorted(features.glob(f"{name}-*.npz"))
        if not files and these:
            raise SystemExit(f"no features for {name} in {features}: run features.py first")
        shards += [([layer_dirs[i] / f"L{k}" / p.name for k in mix] + [p], len(rows)) for p in files]
        rows += these
    clips = [np.load(files[-1])["clip"] + offset for files, offset in shards]
    if not clips:
        raise SystemExit(f"no {name} list in {[str(d) for d, _ in sets]}")
    kept_rows = np.array([keep_row is None or keep_row(r) for r in rows], dtype=bool)
    keeps = [kept_rows[c] for c in clips]
    stack = None  # allocated at the first shard read, whose shape and dtype it takes
    at = 0
    for (files, offset), clip, keep in zip(shards, clips, keeps):
        for j, path in enumerate(files):
            if not path.exists():
                raise SystemExit(f"{path} is missing beside {files[-1]} (rerun features.py)")
            d = np.load(path)
            if not np.array_equal(d["clip"] + offset, clip):
                raise SystemExit(f"{path} does not match the final states' windows (rerun features.py)")
            states = d["states"][keep]
            if stack is None:
                n = sum(int(k.sum()) for k in keeps)
                stack = np.empty((n, *([len(mix) + 1] if mix else []), *states.shape[1:]), states.dtype)
            if mix:
                stack[at : at + len(states), j] = states
            else:
                stack[at : at + len(states)] = states
        at += int(keep.sum())
    return stack, np.concatenate([c[k] for c, k in zip(clips, keeps)]), rows


def trained_on(kind: str, held_out: frozenset[str]) -> Callable[[dict], bool]:
    """`load_stack`'s `keep_row` for a training list: bona fide rows and fakes of a generator that
    trains (`common.is_seen`), none of a family in `held_out`."""
    return lambda row: is_seen(kind, row["attack"], held_out)


def clip_counts(rows: list[dict], keep: Callable[[dict], bool]) -> dict[str, int]:
    """The training clips per attack ("bonafide" for real), as train.py records them in a model's
    provenance (`train_clips`: what evaluate.py calls seen in training)."""
    counts: dict[str, int] = {}
    for r in rows:
        if keep(r):
            key = "bonafide" if r["label"] == "bonafide" else r["attack"]
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def family(row: dict, groups: list[str] = ()) -> str:
    """The unit of balancing: a real package, or a generator (TTS voices of one tool together);
    generators or real packages whose name starts with one of `groups` weigh as one (e.g. all
    "ae-" vocoders, or "asterisk-core-sounds" for the Asterisk prompts of every language)."""
    name = row["source"] if row["label"] == "bonafide" else row["attack"]
    return next((g for g in groups if name.startswith(g)), name)


class Head(nn.Module):
    """`layers` > 1: the input is [B, layers, T, width] and the head first mixes the layers:
    each LayerNorm-ed (no affine), weighted by a learned softmax, summed."""

    def __init__(self, width: int, hidden: int, dropout: float, layers: int = 1,
                 fixed_mix: np.ndarray | None = None):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.mix = nn.Parameter(torch.zeros(layers)) if layers > 1 else None
        if fixed_mix is not None:
            # Another head's layer weights, frozen: both heads then read the same input and can
            # be merged into one (merge_heads.py), so the encoder runs once for both.
            self.mix = nn.Parameter(torch.log(torch.tensor(fixed_mix, dtype=torch.float32)), requires_grad=False)
        self.frame1 = nn.Linear(width, hidden)
        self.frame2 = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, 1)

    def mix_weights(self) -> np.ndarray:
        return torch.softmax(self.mix, 0).detach().numpy() if self.mix is not None else np.ones(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, width] or [B, L, T, width] → [B]
        if self.mix is not None:
            x = nn.functional.layer_norm(x, x.shape[-1:], eps=1e-5)
            x = (torch.softmax(self.mix, 0)[None, :, None, None] * x).sum(dim=1)
        h = torch.relu(self.frame1(self.drop(x)))
        h = torch.relu(self.frame2(h))
        return self.out(h.mean(dim=1)).squeeze(1)

    def engine_layers(self, width: int) -> tuple[list[dict], dict[str, np.ndarray]]:
        hidden = self.frame1.out_features
        layers = [
            {"type": "conv2d", "name": "head.frame1", "out_channels": hidden, "kernel": [1, width], "activation": "relu"},
            {"type": "conv2d", "name": "head.frame2", "out_channels": hidden, "kernel": [1, 1], "activation": "relu"},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "head.out", "out_features": 1},
        ]
        t = {
            "head.frame1.weight": self.frame1.weight.detach().numpy().reshape(hidden, 1, 1, width),
            "head.frame1.bias": self.frame1.bias.detach().numpy(),
            "head.frame2.weight": self.frame2.weight.detach().numpy().reshape(hidden, hidden, 1, 1),
            "head.frame2.bias": self.frame2.bias.detach().numpy(),
            "head.out.weight": self.out.weight.detach().numpy(),
            "head.out.bias": self.out.bias.detach().numpy(),
        }
        return layers, t


def fixed_mix_of(model: Path | None, mix: list[int]) -> np.ndarray | None:
    """The layer weights of an exported head model, checked to read blocks `mix` + final."""
    if model is None:
        return None
    from safetensors import safe_open

    with safe_open(str(model), "np") as f:
        config = json.loads(f.metadata()["deepscreen"])
    read = config["encoder"].get("read")
    read = read.get("mix") if isinstance(read, dict) else None  # "final": an encoder that mixes nothing
    final = config["encoder"]["layers"] + 1
    if not read or [r["state"] for r in read] != [*mix, final]:
        raise SystemExit(f"{model} does not mix blocks {mix} and the final states: give its --mix")
    return np.array([r["weight"] for r in read])


def window_logits(head: nn.Module, states: np.ndarray, batch: int = 256) -> np.ndarray:
    """Window logits of `head` (a Head, or finetune_top's Detector) over states, in eval mode."""
    head.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(states), batch):
            out.append(head(torch.from_numpy(states[i : i + batch].astype(np.float32))).numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="prepare.py outputs (one or more)")
    ap.add_argument("--features", type=Path, nargs="+", required=True, help="features.py outputs, one per --data")
    ap.add_argument("--layer-features", type=Path, nargs="*", default=[],
                    help="features.py --layers outputs, one per --data (with --mix)")
    ap.add_argument("--mix", type=int, nargs="*", default=[],
                    help="encoder blocks whose states are mixed with the final ones (learned weights)")
    ap.add_argument("--fixed-mix", type=Path,
                    help="an exported head model (e.g. models/speech-whisper.safetensors): use its layer "
                         "weights, frozen, instead of learning them (with --mix listing its blocks)")
    ap.add_argument("--train-sets", type=int, help="train on the first K --data sets only (all are measured): "
                                                   "the baseline for an addition")
    ap.add_argument("--group", nargs="*", default=[], help="generator (or real package) name prefixes that weigh as one family "
                                                            "in the balanced sampling (e.g. ae-)")
    ap.add_argument("--kind", default="speech")
    ap.add_argument("--drop-dev-source", nargs="*", default=[],
                    help="real packages left out of the dev figures and threshold (e.g. one trained on through another --data set)")
    ap.add_argument("--hold-out-family", nargs="*", default=[],
                    help="generator families (deepscreen_train.common.GENERATORS, e.g. tts) whose training clips "
                         "are left out: a leave-one-family-out head, whose dev figures on that family are what an "
                         "unseen family of its kind would get")
    ap.add_argument("--encoder", type=Path, required=True, help="the encoder's deepscreen model (convert.py)")
    ap.add_argument("--out", type=Path, help="write the model here")
    ap.add_argument("--id", default="speech-whisper-tiny-v1")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--hop", type=float, default=2.0)
    ap.add_argument("--target-fa", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--note", default="", help="what this experiment changed (for the log)")
    ap.add_argument("--log", type=Path, help="append the figures here (JSON lines)")
    ap.add_argument("--report", type=Path, help="write the full figures here (JSON)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()

    if len(args.data) != len(args.features):
        raise SystemExit("give one --features directory per --data directory")
    sets = list(zip(args.data, args.features))
    if args.mix and len(args.layer_features) != len(args.data):
        raise SystemExit("--mix needs one --layer-features directory per --data directory")
    n_train = args.train_sets or len(sets)
    held_out = frozenset(args.hold_out_family)
    keep = trained_on(args.kind, held_out)
    states, clip, rows = load_stack(sets[:n_train], args.layer_features[:n_train], args.mix, "train", keep)
    width = states.shape[-1]
    labels, weights = balanced_sampling(clip, rows, args.group)

    head = Head(width, args.hidden, args.dropout, len(args.mix) + 1, fixed_mix_of(args.fixed_mix, args.mix))
    opt = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps)
    train_steps(head, opt, sched, args.steps, args.batch, states, labels, weights, rng, report_every=500)
    dev = without_sources(score_dev(head, sets, args.layer_features, args.mix), args.drop_dev_source)
    a, b, threshold, report = measure(args, dev, held_out, head.mix_weights(), t0)
    if args.out:
        export(args, head, width, a, b, threshold, report, clip_counts(rows, keep))
    return 0


def train_steps(model: nn.Module, opt, sched, steps: int, batch: int, states: np.ndarray, labels: np.ndarray,
                weights: np.ndarray, rng: np.random.Generator, report_every: int) -> None:
    """`steps` AdamW steps of binary cross-entropy on batches drawn with `weights`."""
    t0 = time.time()
    for step in range(steps):
        model.train()
        idx = rng.choice(len(labels), batch, p=weights)
        loss = nn.functional.binary_cross_entropy_with_logits(model(torch.from_numpy(states[idx].astype(np.float32))),
                                                              torch.from_numpy(labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % report_every == 0:
            print(f"step {step} loss {loss.item():.4f} ({time.time() - t0:.0f} s)", flush=True)


def score_dev(model: nn.Module, sets: list[tuple[Path, Path]], layer_dirs: list[Path], mix: list[int],
              batch: int = 256) -> dict:
    """{dev list: (window logits, clip, rows)}, each list's states loaded and freed in turn."""
    dev = {}
    for name in dev_lists(sets):
        s, c, r = load_stack(sets, layer_dirs, mix, name)
        dev[name] = (window_logits(model, s, batch), c, r)
        del s
    return dev


def without_sources(dev: dict, sources: list[str]) -> dict:
    """`dev` (score_dev's) without the clips of these real packages (e.g. one trained on, which is
    then no longer held out); rows renumbered."""
    if not sources:
        return dev
    out = {}
    for name, (logits, clip, rows) in dev.items():
        keep = [i for i, r in enumerate(rows) if not (r["label"] == "bonafide" and r["source"] in sources)]
        index = np.full(len(rows), -1)
        index[keep] = np.arange(len(keep))
        windows = index[clip] >= 0
        out[name] = (logits[windows], index[clip][windows], [rows[i] for i in keep])
    return out


def balanced_sampling(clip: np.ndarray, rows: list[dict], groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Window labels (1 = fake) and sampling probabilities: each class half the batch, each
    family of a class (`family`) alike, whatever its number of windows."""
    labels = np.array([rows[c]["label"] != "bonafide" for c in clip], dtype=np.float32)
    fams = np.array([f"{rows[c]['label']}:{family(rows[c], groups)}" for c in clip])
    weights = np.zeros(len(clip))
    for cls in (0.0, 1.0):
        names = np.unique(fams[labels == cls])
        for name in names:
            m = fams == name
            weights[m] = 0.5 / len(names) / m.sum()
    weights /= weights.sum()
    print(f"train: {len(clip)} windows of {len(np.unique(clip))} clips, families "
          f"{sorted(set(fams))}", flush=True)
    return labels, weights


def dev_lists(sets: list[tuple[Path, Path]]) -> list[str]:
    """The dev lists that some --data set has clips in (the vocal head's lists have no
    dev-channel)."""
    return [name for name in ("dev", "dev-channel")
            if any((data / f"{name}.csv").exists() and read_rows(data / f"{name}.csv") for data, _ in sets)]


def measure(args, dev: dict, held_out: frozenset[str], mix_weights: np.ndarray, t0: float,
            extra: dict | None = None) -> tuple[float, float, float, dict]:
    """Calibrate window logits on the dev lists (`dev`: name → (window logits, clip, rows)), set
    the threshold at --target-fa of their bona fide files, and report: pooled, per attack, per
    held-out real package, threshold transfer between packages; `extra` entries added to the
    report. Printed, and written to --log and --report when given. Returns (scale, bias,
    threshold, report)."""
    cal_logits = np.concatenate([dev[n][0] for n in dev])
    cal_labels = np.concatenate([[dev[n][2][c]["label"] != "bonafide" for c in dev[n][1]] for n in dev]).astype(np.float32)
    a, b = calibration.fit(cal_logits, cal_labels, balanced=False)
    scored = {}
    for name, (lg, c, r) in dev.items():
        scored[name] = (calibration.file_scores(lg, c, len(r), a, b), r)
    bona_all = np.concatenate([s[[i for i, x in enumerate(r) if x["label"] == "bonafide"]] for s, r in scored.values()])
    bona_all = bona_all[np.isfinite(bona_all)]
    threshold = calibration.threshold_at(bona_all, args.target_fa)

    if args.mix:
        print("layer weights", dict(zip([*args.mix, "final"], mix_weights.round(3).tolist())))
    report = {"note": args.note, "id": args.id, "calibration": [a, b], "threshold": threshold,
              "mix": dict(zip([str(k) for k in [*args.mix, "final"]], mix_weights.tolist())),
              "args": {k: str(v) for k, v in vars(args).items()}, "lists": {}}
    for name, (s, r) in scored.items():
        ok = np.isfinite(s)
        lab = np.array([x["label"] for x in r])
        bona = s[(lab == "bonafide") & ok]
        spoof_rows = [(i, x) for i, x in enumerate(r) if x["label"] != "bonafide" and ok[i]]
        entry = {"pooled": metrics(bona, s[[i for i, _ in spoof_rows]], threshold), "attacks": {}, "sources": {},
                 "unscored": int((~ok).sum())}
        for attack in sorted({x["attack"] for _, x in spoof_rows}):
            sp = s[[i for i, x in spoof_rows if x["attack"] == attack]]
            seen = is_seen(args.kind, attack, held_out)
            entry["attacks"][attack] = dict(metrics(bona, sp, threshold), seen=seen)
        for source in sorted({x["source"] for x in r if x["label"] == "bonafide"}):
            bs = s[[i for i, x in enumerate(r) if x["label"] == "bonafide" and x["source"] == source and ok[i]]]
            entry["sources"][source] = {"n": int(len(bs)), "fa_at_threshold": float((bs >= threshold).mean()),
                                        "eer_vs_all_spoof": metrics(bs, s[[i for i, _ in spoof_rows]], threshold)["eer"]}
        report["lists"][name] = entry
    # Threshold transfer between the two held-out real packages (an honest FA estimate: the
    # threshold is set on one package and measured on the other).
    sources = sorted({x["source"] for _, r in scored.values() for x in r if x["label"] == "bonafide"})
    transfer = {}
    for src in sources:
        fit = np.concatenate([s[[i for i, x in enumerate(r) if x["label"] == "bonafide" and x["source"] == src]] for s, r in scored.values()])
        fit = fit[np.isfinite(fit)]
        thr = calibration.threshold_at(fit, args.target_fa)
        for other in sources:
            if other != src:
                test = np.concatenate([s[[i for i, x in enumerate(r) if x["label"] == "bonafide" and x["source"] == other]] for s, r in scored.values()])
                test = test[np.isfinite(test)]
                transfer[f"{src}->{other}"] = {"threshold": thr, "fa": float((test >= thr).mean())}
    report["threshold_transfer"] = transfer
    report["train_seconds"] = time.time() - t0
    report.update(extra or {})

    for name, e in report["lists"].items():
        p = e["pooled"]
        print(f"{name}: EER {p['eer']:.3f} minDCF {p['min_dcf']:.3f} det@1%FA {p['det_at_1pct_fa']:.3f} "
              f"FA@thr {p['fa_at_threshold']:.3f} det@thr {p['det_at_threshold']:.3f}")
        for att, m in e["attacks"].items():
            print(f"   {att:20} {'seen' if m['seen'] else 'UNSEEN':6} EER {m['eer']:.3f} det@1%FA {m['det_at_1pct_fa']:.3f} det@thr {m['det_at_threshold']:.3f}")
        for src, m in e["sources"].items():
            print(f"   real {src:20} FA@thr {m['fa_at_threshold']:.3f} EER {m['eer_vs_all_spoof']:.3f}")
    print("threshold", threshold, "transfer", json.dumps(transfer))
    if args.log:
        with open(args.log, "a") as f:
            f.write(json.dumps({k: report[k] for k in ("note", "threshold", "threshold_transfer")} |
                               {"pooled": {n: e["pooled"] for n, e in report["lists"].items()}}) + "\n")
    if args.report:
        args.report.write_text(json.dumps(report, indent=1))
    return a, b, threshold, report


def export(args, head: Head, width: int, a: float, b: float, threshold: float, report: dict,
           train_clips: dict[str, int], encoder_tensors: dict[str, np.ndarray] | None = None) -> None:
    """Write encoder + head as one model file; `encoder_tensors` replace the --encoder file's
    tensors of the same names (a fine-tuned encoder's blocks)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(args.encoder), "np") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for k, v in (encoder_tensors or {}).items():
        if k not in tensors or tensors[k].shape != v.shape:
            raise SystemExit(f"{k}: not a tensor of {args.encoder} with shape {v.shape}")
        tensors[k] = v.astype(tensors[k].dtype)
    config = json.loads(meta["deepscreen"])
    layers, head_tensors = head.engine_layers(width)
    tensors.update({k: v.astype(np.float16) for k, v in head_tensors.items()})
    if args.mix:
        # Engine states: 0 = stem, i = after block i, layers + 1 = final LayerNorm.
        states = [*args.mix, config["encoder"]["layers"] + 1]
        config["encoder"]["read"] = {"mix": [{"state": int(k), "weight": float(w)}
                                             for k, w in zip(states, head.mix_weights())]}
    config.update({
        "id": args.id,
        "description": getattr(args, "description", None) or
                       f"{args.kind.capitalize()} deepfake detector: frozen {config['provenance'].get('package', 'Whisper')} encoder "
                       "features, a small per-position head averaged over the window, calibrated logit.",
        "window": {"seconds": args.seconds, "hop_seconds": args.hop, "pad": "repeat"},
        "layers": layers,
        "output": {"kind": "logit"},
        "calibration": {"scale": a, "bias": b},
        "threshold": threshold,
        "aggregation": "mean",
    })
    config["provenance"] = {
        "encoder": config["provenance"],
        "train_clips": train_clips,
        "head": {"trained_on": [str(d) for d in args.data], "note": args.note, "threshold_rule": f"{args.target_fa:.0%} false alarms on held-out real (dev bona fide)",
                 "dev": {n: e["pooled"] for n, e in report["lists"].items()}},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata={"deepscreen": json.dumps(config)})
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    sys.exit(main())
