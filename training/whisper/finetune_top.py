"""Fine-tune the top blocks of the Whisper encoder with low-rank adapters, together with a detector
head, from cached hidden states; then merge the adapters into the blocks' weights, so the
exported model is an ordinary encoder + head file (same shapes, same run-time cost).

    python training/whisper/finetune_top.py --data data/speech --features data/speech/features-base \
        --layer-features data/speech/features-base-layers --mix 2 4 --from-block 4 --rank 8 \
        --encoder data/whisper-base-encoder.safetensors --init-head models/speech-whisper.safetensors \
        --hop 4 --out data/speech-whisper-ft.safetensors --report data/speech-ft.json

What trains: rank-R adapters, W + (alpha / R) · B · A with B = 0 at the start (the frozen
encoder), on the qkv, attention-out and both MLP linears of blocks FROM … layers − 1, and the
head (train_head.py's, from --init-head's weights or new). Norms, biases and every block below
FROM stay frozen. Input: the cached states after block FROM (features.py --layers, which must be
the highest of the head's --mix blocks); the head reads the --mix states as cached and the final states
recomputed through the adapted blocks and the final LayerNorm.

The dev figures are those of the model as exported: the merged weights rounded to the encoder
file's float16 before the dev lists are scored. Measurement, threshold and export are
train_head.py's (same report, same --log).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from share_encoder import load  # noqa: E402
from train_head import (  # noqa: E402
    Head,
    balanced_sampling,
    clip_counts,
    export,
    fixed_mix_of,
    load_stack,
    measure,
    score_dev,
    train_steps,
    trained_on,
    without_sources,
)

ADAPTED = ("qkv", "attn_out", "mlp_in", "mlp_out")


class AdaptedLinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, rank: int, alpha: float):
        super().__init__()
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        out_features, in_features = weight.shape
        self.a = nn.Parameter(torch.randn(rank, in_features) / math.sqrt(in_features))
        self.b = nn.Parameter(torch.zeros(out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias) + self.scale * F.linear(F.linear(x, self.a), self.b)

    def merged(self) -> torch.Tensor:
        return self.weight + self.scale * (self.b @ self.a)

    def fold(self, weight: torch.Tensor) -> None:
        """Make `weight` the frozen weight and the update zero (e.g. the merged weight, rounded)."""
        with torch.no_grad():
            self.weight.copy_(weight)
            self.b.zero_()


class TopBlocks(nn.Module):
    """Blocks FROM … layers − 1 of a deepscreen Whisper encoder file, then its final LayerNorm:
    the states after block FROM [B, T, width] → the final states."""

    def __init__(self, tensors: dict[str, np.ndarray], heads: int, layers: int, first: int, rank: int, alpha: float):
        super().__init__()
        self.heads, self.first = heads, first

        def frozen(name: str) -> torch.Tensor:
            return torch.from_numpy(tensors[name].astype(np.float32))

        self.blocks = nn.ModuleList()
        self.norms: list[dict[str, torch.Tensor]] = []
        for i in range(first, layers):
            p = f"encoder.blocks.{i}."
            self.blocks.append(nn.ModuleDict({name: AdaptedLinear(frozen(p + name + ".weight"), frozen(p + name + ".bias"), rank, alpha)
                                              for name in ADAPTED}))
            self.norms.append({k: frozen(p + k) for k in ("attn_norm.weight", "attn_norm.bias", "mlp_norm.weight", "mlp_norm.bias")})
        self.final = (frozen("encoder.final_norm.weight"), frozen("encoder.final_norm.bias"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        for block, norm in zip(self.blocks, self.norms):
            h = F.layer_norm(x, (d,), norm["attn_norm.weight"], norm["attn_norm.bias"], 1e-5)
            q, k, v = block["qkv"](h).split(d, dim=2)
            q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
            a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
            x = x + block["attn_out"](a)
            h = F.layer_norm(x, (d,), norm["mlp_norm.weight"], norm["mlp_norm.bias"], 1e-5)
            x = x + block["mlp_out"](F.gelu(block["mlp_in"](h)))
        return F.layer_norm(x, (d,), *self.final, 1e-5)

    def merged(self, dtype=np.float16) -> dict[str, np.ndarray]:
        """The adapted weights with their updates merged, as the encoder file stores them."""
        out = {}
        with torch.no_grad():
            for i, block in enumerate(self.blocks):
                for name in ADAPTED:
                    out[f"encoder.blocks.{self.first + i}.{name}.weight"] = block[name].merged().numpy().astype(dtype)
        return out

    def fold_merged(self, dtype=np.float16) -> dict[str, np.ndarray]:
        """Replace every adapter by its merged weight rounded to `dtype` (what ships); returns it."""
        merged = self.merged(dtype)
        for i, block in enumerate(self.blocks):
            for name in ADAPTED:
                block[name].fold(torch.from_numpy(merged[f"encoder.blocks.{self.first + i}.{name}.weight"].astype(np.float32)))
        return merged


class Detector(nn.Module):
    """The head over [mix states…, final]: the final slot recomputed from the states after the
    first adapted block, which sit in slot `source` of the stack."""

    def __init__(self, top: TopBlocks, head: Head, source: int):
        super().__init__()
        self.top, self.head, self.source = top, head, source

    def forward(self, stack: torch.Tensor) -> torch.Tensor:  # [B, len(mix) + 1, T, width] → [B]
        final = self.top(stack[:, self.source])
        return self.head(torch.cat([stack[:, :-1], final[:, None]], dim=1))


def init_head(head: Head, path: Path, mix: list[int]) -> None:
    """Load the head weights and layer mix of a model exported by train_head.py."""
    weights = fixed_mix_of(path, mix)  # checks that it mixes blocks `mix` and the final states
    _, tensors = load(str(path))
    with torch.no_grad():
        for name in ("frame1", "frame2", "out"):
            layer = getattr(head, name)
            w = tensors[f"head.{name}.weight"].astype(np.float32)
            if w.shape[0] != layer.weight.shape[0]:
                raise SystemExit(f"{path}: its head has {w.shape[0]} units in {name}, not {layer.weight.shape[0]} (--hidden)")
            layer.weight.copy_(torch.from_numpy(w.reshape(layer.weight.shape)))
            layer.bias.copy_(torch.from_numpy(tensors[f"head.{name}.bias"].astype(np.float32)))
        head.mix.copy_(torch.log(torch.tensor(weights, dtype=torch.float32)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, nargs="+", required=True, help="prepare.py outputs (one or more)")
    ap.add_argument("--features", type=Path, nargs="+", required=True, help="features.py final states, one per --data")
    ap.add_argument("--layer-features", type=Path, nargs="+", required=True, help="features.py --layers outputs, one per --data")
    ap.add_argument("--mix", type=int, nargs="+", required=True, help="blocks whose states the head mixes with the final ones")
    ap.add_argument("--from-block", type=int, required=True, help="adapt the blocks after this one (the highest of --mix)")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16.0)
    ap.add_argument("--encoder", type=Path, required=True, help="the encoder's deepscreen model (convert.py)")
    ap.add_argument("--init-head", type=Path, help="start from this train_head.py model's head and layer mix")
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--group", nargs="*", default=[], help="generator (or real package) name prefixes that weigh as one family")
    ap.add_argument("--kind", default="speech")
    ap.add_argument("--hold-out-family", nargs="*", default=[], help="families (common.GENERATORS) not trained on")
    ap.add_argument("--drop-dev-source", nargs="*", default=[], help="real packages left out of the dev figures")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=5e-4, help="adapters")
    ap.add_argument("--head-lr", type=float, default=3e-4)
    ap.add_argument("--weight-decay", type=float, default=0.05, help="head only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--hop", type=float, default=2.0)
    ap.add_argument("--target-fa", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--id", default="speech-whisper-base-ft")
    ap.add_argument("--out", type=Path, help="write the model (encoder with merged blocks + head) here")
    ap.add_argument("--note", default="")
    ap.add_argument("--log", type=Path)
    ap.add_argument("--report", type=Path)
    args = ap.parse_args()
    args.fixed_mix = None
    args.description = (f"{args.kind.capitalize()} deepfake detector: Whisper encoder with blocks {args.from_block}+ "
                        f"fine-tuned (rank-{args.rank} adapters, merged), a small per-position head averaged over the window, "
                        "calibrated logit.")
    if max(args.mix) != args.from_block:
        # Cached states of a block above FROM would be the unadapted ones, unlike what ships.
        raise SystemExit("--from-block must be the highest of --mix (its cached states are the adapted blocks' input)")
    if not (len(args.data) == len(args.features) == len(args.layer_features)):
        raise SystemExit("give one --features and one --layer-features directory per --data directory")
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()

    config, tensors = load(str(args.encoder))
    enc = config["encoder"]
    top = TopBlocks(tensors, enc["heads"], enc["layers"], args.from_block, args.rank, args.alpha)
    sets = list(zip(args.data, args.features))
    held_out = frozenset(args.hold_out_family)
    keep = trained_on(args.kind, held_out)
    stack, clip, rows = load_stack(sets, args.layer_features, args.mix, "train", keep)
    width = stack.shape[-1]
    head = Head(width, args.hidden, args.dropout, len(args.mix) + 1)
    if args.init_head:
        init_head(head, args.init_head, args.mix)
    model = Detector(top, head, args.mix.index(args.from_block))
    with torch.no_grad():  # the unadapted blocks reproduce the cached final states (CTranslate2's)
        probe = torch.from_numpy(stack[:8].astype(np.float32))
        gap = (top(probe[:, model.source]) - probe[:, -1]).abs().max().item()
    print(f"blocks {args.from_block}..{enc['layers'] - 1} recomputed: max |d| {gap:.3g} from the cached final states", flush=True)
    labels, weights = balanced_sampling(clip, rows, args.group)

    # --steps 0 measures the starting point (--init-head on the frozen encoder) the same way.
    if args.steps:
        opt = torch.optim.AdamW([{"params": top.parameters(), "lr": args.lr, "weight_decay": 0.0},
                                 {"params": head.parameters(), "lr": args.head_lr, "weight_decay": args.weight_decay}])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[args.lr, args.head_lr], total_steps=args.steps)
        train_steps(model, opt, sched, args.steps, args.batch, stack, labels, weights, rng, report_every=50)
    del stack

    merged = top.fold_merged(tensors[f"encoder.blocks.{args.from_block}.qkv.weight"].dtype)
    dev = without_sources(score_dev(model, sets, args.layer_features, args.mix, batch=64), args.drop_dev_source)
    a, b, threshold, report = measure(args, dev, held_out, head.mix_weights(), t0, extra={"finetune": {
        "from_block": args.from_block, "rank": args.rank, "alpha": args.alpha, "adapted": list(ADAPTED), "steps": args.steps}})
    if args.out:
        export(args, head, width, a, b, threshold, report, clip_counts(rows, keep), encoder_tensors=merged)
    return 0


if __name__ == "__main__":
    sys.exit(main())
