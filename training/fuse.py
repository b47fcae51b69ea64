#!/usr/bin/env python3
"""Write a fused model: a composite of embedded networks that score the same windows; the
engine sums their weighted calibrated logits per window (src/model/fusion.rs). The file holds
no tensors and copies no member's network: its config names the members, their weights, a
bias, the windows (rate, length, hop: those of the first member, which also explains windows
on the review page) and the threshold, so it is a few kB.

    python training/fuse.py --member music-cnn music-whisper music-cnn-wb --weights 0.5 1 0.5 \
        --id music-fusion-v2 --out models/music.safetensors \
        [--scores DATA/music/dev.scores.txt DATA/music/dev-channel.scores.txt]

With --scores (`deepscreen eval --scores` files of this fused model on dev lists of held-out
real audio), the threshold is set so that 1 % of their bona fide trials score at or above it;
without, it is left at --threshold.
"""

import argparse
import json
import math
import struct
from pathlib import Path


def config_of(path: Path) -> dict:
    b = path.read_bytes()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(json.loads(b[8 : 8 + n])["__metadata__"]["deepscreen"])


def threshold_at(score_files: list[Path], false_alarms: float) -> float:
    """The score that `false_alarms` of the bona fide trials reach (llr = ln((1-p)/p))."""
    real = sorted(
        1 / (1 + math.exp(float(llr)))
        for f in score_files
        for _, _, key, llr in (line.split() for line in f.read_text().splitlines())
        if key == "bonafide"
    )
    k = min(len(real) - 1, math.ceil((1 - false_alarms) * len(real)))
    return real[k]


def fused_config(members: list[str], weights: list[float], first: dict, model_id: str,
                 threshold: float, provenance: dict) -> dict:
    """The config of a fused model whose windows are `first`'s (the first member's config)."""
    return {
        "format": "deepscreen-model",
        "version": 1,
        "id": model_id,
        "description": "Fused detector: " + " + ".join(members)
        + " score the same windows; their calibrated logits are summed.",
        "sample_rate": first["sample_rate"],
        "window": first["window"],
        "fusion": {
            "members": [{"model": m, "weight": w} for m, w in zip(members, weights)],
            "bias": 0.0,
        },
        "threshold": threshold,
        "aggregation": first.get("aggregation", "mean"),
        "provenance": provenance,
    }


def write_fused(path: Path, config: dict) -> None:
    head = json.dumps({"__metadata__": {"deepscreen": json.dumps(config)}}).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--member", nargs="+", required=True,
                    help="embedded network names, in order (the first sets the windows)")
    ap.add_argument("--weights", type=float, nargs="*", help="one per member (default 1)")
    ap.add_argument("--models", type=Path, default=Path("models"), help="where the members' files are")
    ap.add_argument("--id", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--scores", type=Path, nargs="*", default=[])
    ap.add_argument("--target-fa", type=float, default=0.01)
    args = ap.parse_args()

    weights = args.weights or [1.0] * len(args.member)
    if len(weights) != len(args.member):
        raise SystemExit("--weights: one per member")
    configs = [config_of(args.models / f"{m}.safetensors") for m in args.member]
    for name, c in zip(args.member, configs):
        if "fusion" in c:
            raise SystemExit(f"{name} is itself a fused model (fusions do not nest)")
    threshold = threshold_at(args.scores, args.target_fa) if args.scores else args.threshold
    provenance = {
        "made_by": "training/fuse.py",
        "members": args.member,
        "threshold_rule": f"{args.target_fa:.0%} false alarms on the bona fide trials of "
        + ", ".join(p.name for p in args.scores)
        if args.scores
        else "given",
    }
    config = fused_config(args.member, weights, configs[0], args.id, threshold, provenance)
    write_fused(args.out, config)
    print(f"{args.out}: {config['id']} = {' + '.join(args.member)}, threshold {threshold:.4f}")


if __name__ == "__main__":
    main()
