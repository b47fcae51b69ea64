"""Turn an exported encoder-based model into a head-only file that takes its encoder from an
embedded model (config `shared_tensors`), so the binary carries one copy of the encoder.

    python training/whisper/share_encoder.py FULL.safetensors models/speech-whisper.safetensors \
        --from speech-whisper --out models/music-whisper.safetensors

Refuses unless every `encoder.*` tensor of FULL equals (bit for bit) the embedded model's.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file


def load(path: str) -> tuple[dict, dict]:
    with safe_open(path, "np") as f:
        return json.loads(f.metadata()["deepscreen"]), {k: f.get_tensor(k) for k in f.keys()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("full", help="the exported model with its own encoder tensors")
    ap.add_argument("source", help="the embedded model's file (e.g. models/speech-whisper.safetensors)")
    ap.add_argument("--from", dest="name", required=True, help="the embedded model's name (e.g. speech-whisper)")
    ap.add_argument("--prefix", default="encoder.")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    config, tensors = load(args.full)
    _, source = load(args.source)
    shared = sorted(k for k in tensors if k.startswith(args.prefix))
    if not shared or shared != sorted(k for k in source if k.startswith(args.prefix)):
        raise SystemExit(f"the two files do not hold the same {args.prefix}* tensors")
    for k in shared:
        if tensors[k].dtype != source[k].dtype or not np.array_equal(tensors[k], source[k]):
            raise SystemExit(f"{k} differs from {args.source}'s: not the same encoder")
    head = {k: v for k, v in tensors.items() if not k.startswith(args.prefix)}
    config["shared_tensors"] = {"from": args.name, "prefix": args.prefix}
    save_file(head, args.out, metadata={"deepscreen": json.dumps(config)})
    print(f"wrote {args.out}: {len(head)} tensors of its own, {len(shared)} shared from {args.name!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
