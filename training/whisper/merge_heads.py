"""Merge two heads on the same Whisper encoder into one head whose window logit is the weighted
sum of theirs, calibrated: w_a * (s_a * z_a + c_a) + w_b * (s_b * z_b + c_b). Both heads must read
the same encoder states with the same layer weights (train the second with train_head.py
--fixed-mix FIRST), so the sum is exact and the encoder runs once for both, where a fusion of the
two would run it twice.

    python training/whisper/merge_heads.py models/speech-whisper.safetensors DATA/vocal-head-full.safetensors \
        --weights 1 1 --id vocal-whisper-base-v2 --threshold 0.5 --share-from speech-whisper \
        --out models/vocal-whisper.safetensors

With --fit DATA (a prepared directory with dev.csv and its cached features, features.py's
features-base and features-base-layers), the threshold is the file score that --target-fa of
its dev bona fide clips reach, from the merged model run on those features (float64, the layer
mix and head as golden_head.py runs them);
without, it is --threshold.

The merged head: first dense layers stacked (hidden_a + hidden_b units), second dense layers
block-diagonal (no unit of one head sees the other's), the output layer the two output layers
side by side, scaled by w * s, with bias w_a * (s_a * b_a + c_a) + w_b * (s_b * b_b + c_b); its
calibration is the identity. The output layer is stored as f32 (the scaled weights are not
f16-exact); the dense layers keep their stored values. With --share-from NAME the file holds the
head only and takes the encoder from the embedded model NAME (which must be FIRST's encoder,
bit for bit).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HEAD = ("head.frame1.weight", "head.frame1.bias", "head.frame2.weight", "head.frame2.bias",
        "head.out.weight", "head.out.bias")
# What must agree for the two heads to read the same input.
SAME = ("sample_rate", "window", "frontend", "encoder")


def merge(a: dict, b: dict, wa: float, wb: float, cal_a: dict, cal_b: dict) -> dict[str, np.ndarray]:
    """The merged head's tensors from heads `a` and `b` (tensor dicts) and their calibrations."""
    f = lambda t, k: t[k].astype(np.float32)  # noqa: E731
    ha, hb = f(a, "head.frame1.bias").shape[0], f(b, "head.frame1.bias").shape[0]
    frame2 = np.zeros((ha + hb, ha + hb, 1, 1), dtype=np.float32)
    frame2[:ha, :ha] = f(a, "head.frame2.weight")
    frame2[ha:, ha:] = f(b, "head.frame2.weight")
    sa, sb = wa * cal_a["scale"], wb * cal_b["scale"]
    bias = wa * (cal_a["scale"] * f(a, "head.out.bias") + cal_a["bias"]) + \
        wb * (cal_b["scale"] * f(b, "head.out.bias") + cal_b["bias"])
    return {
        "head.frame1.weight": np.concatenate([a["head.frame1.weight"], b["head.frame1.weight"]]),
        "head.frame1.bias": np.concatenate([a["head.frame1.bias"], b["head.frame1.bias"]]),
        "head.frame2.weight": frame2.astype(a["head.frame2.weight"].dtype),
        "head.frame2.bias": np.concatenate([a["head.frame2.bias"], b["head.frame2.bias"]]),
        "head.out.weight": np.concatenate([sa * f(a, "head.out.weight"), sb * f(b, "head.out.weight")], axis=1),
        "head.out.bias": bias.astype(np.float32),
    }


def fit_threshold(data: Path, config: dict, head: dict, target_fa: float) -> float:
    """The file score reached by `target_fa` of DATA's dev bona fide clips under the merged
    model `config` with `head`: its layer mix and head in float64, as golden_head.py runs them."""
    from golden_head import head_forward
    from train_head import load_stack

    from deepscreen_train import calibration
    from deepscreen_train.whisper_reference import layer_norm

    read = config["encoder"]["read"]["mix"]
    mix = np.array([r["weight"] for r in read])
    t = {k: v.astype(np.float64) for k, v in head.items()}
    states, clip, rows = load_stack([(data, data / "features-base")], [data / "features-base-layers"],
                                    [r["state"] for r in read[:-1]], "dev")
    logits = np.array([head_forward(np.tensordot(mix, layer_norm(w.astype(np.float64), 1.0, 0.0), axes=1), config, t)
                       for w in states])
    scores = calibration.file_scores(logits, clip, len(rows), 1.0, 0.0)
    bona = np.array([s for s, r in zip(scores, rows) if r["label"] == "bonafide" and np.isfinite(s)])
    threshold = calibration.threshold_at(bona, target_fa)
    print(f"threshold {threshold:.4f}: {target_fa:.0%} of {len(bona)} dev bona fide clips of {data}")
    return threshold


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first", help="a head model with its encoder (e.g. models/speech-whisper.safetensors)")
    ap.add_argument("second", help="a head model on the same encoder and layer weights (its own encoder copy)")
    ap.add_argument("--weights", type=float, nargs=2, default=[1.0, 1.0])
    ap.add_argument("--id", required=True)
    ap.add_argument("--threshold", type=float, help="the merged model's own threshold (without --fit)")
    ap.add_argument("--fit", type=Path, help="fit the threshold on this prepared directory's dev list")
    ap.add_argument("--target-fa", type=float, default=0.02)
    ap.add_argument("--share-from", help="the embedded model FIRST is (its encoder is shared, not copied)")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    from share_encoder import load

    ca, ta = load(args.first)
    cb, tb = load(args.second)
    for key in SAME:
        if ca.get(key) != cb.get(key):
            raise SystemExit(f"the two heads differ in {key!r}: they do not read the same input "
                             "(train the second with train_head.py --fixed-mix FIRST)")
    if "shared_tensors" in ca:
        raise SystemExit(f"{args.first} holds no encoder of its own: give the model it shares from")
    encoder = sorted(k for k in ta if not k.startswith("head."))
    for k in encoder:
        if k in tb and not np.array_equal(ta[k], tb[k]):
            raise SystemExit(f"{k} differs between the two files: not the same encoder")
    for model, t in ((args.first, ta), (args.second, tb)):
        if missing := [k for k in HEAD if k not in t]:
            raise SystemExit(f"{model} lacks {missing}: not a train_head.py head")
    if (args.fit is None) == (args.threshold is None):
        raise SystemExit("give --threshold or --fit")
    head = merge(ta, tb, *args.weights, ca["calibration"], cb["calibration"])
    hidden = head["head.frame1.bias"].shape[0]
    config = dict(ca)
    config["layers"] = [dict(layer, out_channels=hidden) if layer.get("name") in ("head.frame1", "head.frame2")
                        else layer for layer in ca["layers"]]
    config.update({
        "id": args.id,
        "description": f"Two heads on one frozen Whisper encoder ({ca['id']} and {cb['id']}), merged: "
                       "their calibrated window logits summed.",
        "calibration": {"scale": 1.0, "bias": 0.0},
    })
    config["threshold"] = fit_threshold(args.fit, config, head, args.target_fa) if args.fit else args.threshold
    config["provenance"] = {
        "merged": {"made_by": "training/whisper/merge_heads.py", "note": args.note,
                   "threshold_rule": (f"{args.target_fa:.0%} of the dev bona fide clips of {args.fit}"
                                      if args.fit else "given"),
                   "heads": [{"id": c["id"], "weight": w, "calibration": c["calibration"],
                              "head": c["provenance"].get("head")}
                             for c, w in ((ca, args.weights[0]), (cb, args.weights[1]))]},
        "encoder": ca["provenance"].get("encoder"),
    }
    tensors = {k: ta[k] for k in encoder} | head
    if args.share_from:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("encoder.")}
        config["shared_tensors"] = {"from": args.share_from, "prefix": "encoder."}
    from safetensors.numpy import save_file

    save_file(tensors, args.out, metadata={"deepscreen": json.dumps(config)})
    print(f"wrote {args.out}: heads {ca['id']} + {cb['id']}, {hidden} hidden units, threshold {config['threshold']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
