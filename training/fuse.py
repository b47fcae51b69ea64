#!/usr/bin/env python3
"""Write a fused model: a file with no tensors of its own whose config fuses embedded models
(config `fusion`; the engine combines their calibrated logits per window, see
src/model/fusion.rs). Its network is the first model's (shared_tensors with prefix ""), so
the file is a few kB.

    python training/fuse.py models/music-cnn.safetensors --primary music-cnn \
        --member music-whisper --id music-fusion-v1 --out models/music.safetensors \
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("primary_file", type=Path, help="the first model's file (its config is copied)")
    ap.add_argument("--primary", required=True, help="the first model's embedded name")
    ap.add_argument("--member", nargs="+", required=True, help="embedded names fused with it")
    ap.add_argument("--weights", type=float, nargs="*", help="primary weight, then one per member (default 1)")
    ap.add_argument("--id", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--scores", type=Path, nargs="*", default=[])
    ap.add_argument("--target-fa", type=float, default=0.01)
    args = ap.parse_args()

    weights = args.weights or [1.0] * (1 + len(args.member))
    if len(weights) != 1 + len(args.member):
        raise SystemExit("--weights: one for the primary, then one per member")
    config = config_of(args.primary_file)
    if config.get("fusion") or config.get("shared_tensors"):
        raise SystemExit("the primary must be a plain model")
    threshold = threshold_at(args.scores, args.target_fa) if args.scores else args.threshold
    config.update(
        id=args.id,
        description="Fused detector: " + " + ".join([args.primary, *args.member])
        + " score the same windows; their calibrated logits are summed.",
        shared_tensors={"from": args.primary, "prefix": ""},
        fusion={
            "weight": weights[0],
            "members": [{"model": m, "weight": w} for m, w in zip(args.member, weights[1:])],
            "bias": 0.0,
        },
        threshold=threshold,
        provenance={
            "made_by": "training/fuse.py",
            "primary": args.primary,
            "members": args.member,
            "threshold_rule": f"{args.target_fa:.0%} false alarms on the bona fide trials of "
            + ", ".join(p.name for p in args.scores)
            if args.scores
            else "given",
        },
    )
    head = json.dumps({"__metadata__": {"deepscreen": json.dumps(config)}}).encode()
    head += b" " * (-len(head) % 8)
    args.out.write_bytes(struct.pack("<Q", len(head)) + head)
    print(f"{args.out}: {config['id']} = {args.primary} + {' + '.join(args.member)}, threshold {threshold:.4f}")


if __name__ == "__main__":
    main()
