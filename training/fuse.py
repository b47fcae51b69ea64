#!/usr/bin/env python3
"""Write a fused model: a composite of networks that score the same windows; the
engine sums their weighted calibrated logits per window (src/model/fusion.rs). The file holds
no tensors and copies no member's network: its config names the members, their weights, a
bias, the windows (rate, length, hop: those of the first member, which also explains windows
on the review page) and the threshold, so it is a few kB.

A member is an embedded network's name, or a network file (`*.safetensors`): the fused file then
names it by its id and its path relative to the fused file, and the engine reads it from there
at load (a candidate scored without a rebuild; keep the files together).

    python training/fuse.py --member music-cnn music-whisper music-cnn-wb --weights 0.5 1 0.5 \
        --id music-fusion-v3.2 --out models/music.safetensors \
        [--scores DATA/music/dev.scores.txt DATA/music/dev-channel.scores.txt]

With --scores (`deepscreen eval --scores` files of this fused model on dev lists of held-out
real audio), the threshold is set so that 1 % of their bona fide trials score at or above it;
without, it is left at --threshold.

With --cascade (`deepscreen screen --exact --segments` JSONL reports of this fused model on the
dev lists, real and fake), the --defer members (the costly ones) run only on windows whose
other members leave the verdict open: the band is the narrowest that changes at most
--max-flips of the dev files' verdicts at the threshold, widened by --cascade-margin logits
(deepscreen_train/cascade.py). Its agreement per list is printed and kept in the provenance.
To refit only the cascade of an existing fused model (its members, weights, threshold and
provenance kept):

    python training/fuse.py --refit models/speech.safetensors --defer speech-whisper \
        --cascade DATA/speech/dev.exact.jsonl DATA/speech/dev-channel.exact.jsonl
"""

import argparse
import json
import math
import os
import struct
from pathlib import Path

from deepscreen_train import cascade


def config_of(path: Path) -> dict:
    """A deepscreen model file's config (from the safetensors header alone)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(json.loads(f.read(n))["__metadata__"]["deepscreen"])


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


def member_entry(member: str, config: dict, out: Path) -> dict:
    """How the fused file names a member: an embedded name, or a file's id and its path from the
    fused file's folder."""
    if not is_file(member):
        return {"model": member}
    return {"model": config["id"], "file": os.path.relpath(Path(member).resolve(), out.resolve().parent)}


def is_file(member: str) -> bool:
    return member.endswith(".safetensors")


def fused_config(members: list[dict], weights: list[float], first: dict, model_id: str,
                 threshold: float, provenance: dict) -> dict:
    """The config of a fused model whose windows are `first`'s (the first member's config);
    `members` as `member_entry` gives them."""
    return {
        "format": "deepscreen-model",
        "version": 1,
        "id": model_id,
        "description": "Fused detector: " + " + ".join(m["model"] for m in members)
        + " score the same windows; their calibrated logits are summed.",
        "sample_rate": first["sample_rate"],
        "window": first["window"],
        "fusion": {
            "members": [{**m, "weight": w} for m, w in zip(members, weights)],
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
    ap.add_argument("--member", nargs="+",
                    help="embedded network names or network files (*.safetensors), in order (the first "
                    "sets the windows)")
    ap.add_argument("--refit", type=Path, help="a fused model file: refit its cascade alone, in place")
    ap.add_argument("--weights", type=float, nargs="*", help="one per member (default 1)")
    ap.add_argument("--models", type=Path, default=Path("models"), help="where the embedded members' files are")
    ap.add_argument("--id")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--scores", type=Path, nargs="*", default=[])
    ap.add_argument("--target-fa", type=float, default=0.01)
    ap.add_argument("--cascade", type=Path, nargs="*", default=[],
                    help="exact reports with segments of this fused model on the dev lists")
    ap.add_argument("--defer", nargs="+", default=[], help="the members the cascade defers (as --member names them)")
    ap.add_argument("--max-flips", type=float, default=0.002)
    ap.add_argument("--cascade-margin", type=float, default=0.5)
    args = ap.parse_args()
    if args.refit:
        refit(args)
        return
    if not (args.member and args.id and args.out):
        raise SystemExit("--member, --id and --out are needed (or --refit FILE)")

    weights = args.weights or [1.0] * len(args.member)
    if len(weights) != len(args.member):
        raise SystemExit("--weights: one per member")
    configs = [config_of(Path(m) if is_file(m) else args.models / f"{m}.safetensors") for m in args.member]
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
    entries = [member_entry(m, c, args.out) for m, c in zip(args.member, configs)]
    config = fused_config(entries, weights, configs[0], args.id, threshold, provenance)
    names = [e["model"] for e in entries]
    unknown = [d for d in args.defer if d not in args.member and d not in names]
    if unknown:
        raise SystemExit(f"--defer {' '.join(unknown)}: not among the members")
    # The cascade names members as the fused file does.
    args.defer = [n for m, n in zip(args.member, names) if m in args.defer or n in args.defer]
    args.member = names
    if args.cascade:
        config["fusion"]["cascade"] = fit_cascade(args, weights, config)
    write_fused(args.out, config)
    print(f"{args.out}: {config['id']} = {' + '.join(args.member)}, threshold {threshold:.4f}")


def refit(args) -> None:
    config = config_of(args.refit)
    if "fusion" not in config or not args.cascade:
        raise SystemExit(f"--refit needs a fused model and --cascade reports ({args.refit})")
    args.member = [m["model"] for m in config["fusion"]["members"]]
    weights = [m["weight"] for m in config["fusion"]["members"]]
    config["fusion"]["cascade"] = fit_cascade(args, weights, config)
    write_fused(args.refit, config)
    c = config["fusion"]["cascade"]
    print(f"{args.refit}: cascade band [{c['lo']:.3f}, {c['hi']:.3f}], fills {c['fill_below']:.3f} / {c['fill_above']:.3f}")


def fit_cascade(args, weights: list[float], config: dict) -> dict:
    if not args.defer or any(m not in args.member for m in args.defer):
        raise SystemExit("--cascade needs --defer naming the members to defer")
    deferred = [m in args.defer for m in args.member]
    win = cascade.read_windows(args.cascade, weights, deferred, config["fusion"]["bias"])
    band = cascade.fit(win, config["threshold"], config["aggregation"], args.max_flips, args.cascade_margin)
    per_list = cascade.summary(win, band)
    for name, s in per_list.items():
        print(f"cascade on {name}: {s['files']} files, {s['windows']} windows, "
              f"{s['skipped_share']:.1%} skip {'+'.join(args.defer)}, {s['flipped_files']} verdicts changed")
    return {
        "deferred": args.defer,
        "lo": band.lo,
        "hi": band.hi,
        "fill_below": band.fill_below,
        "fill_above": band.fill_above,
        "provenance": {
            "rule": f"narrowest band changing at most {args.max_flips:.1%} of the dev files' verdicts at "
            f"the threshold, widened by {args.cascade_margin} logits each side",
            "lists": per_list,
        },
    }


if __name__ == "__main__":
    main()
