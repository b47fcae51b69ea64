"""Golden vectors for the engine's Whisper encoder, from the numpy reference (deepscreen_train/whisper_reference.py) on
the CTranslate2 weights — the source the converted model file was made from, so the test also
pins the conversion.

    python training/whisper/golden.py /data/pkgs/whisper-tiny-en \
        --out tests/golden/whisper_tiny_en_io.safetensors [--seconds 1]

Writes `audio` [samples], `log_mel` [frames, 80] (frame-major, as the engine lays features out)
and `hidden.0` … `hidden.N+1` [positions, width]: the stem with positions, each block's output,
and the final LayerNorm.
"""

import argparse
import os
import sys

import numpy as np
from safetensors.numpy import save_file

from deepscreen_train import ct2
from deepscreen_train import whisper_reference as reference
from check_ct2 import test_audio


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=1.0)
    args = ap.parse_args()
    _, variables = ct2.read(os.path.join(args.model_dir, "model.bin"))
    audio = test_audio(args.seconds, seed=1)
    mel = reference.log_mel(audio.astype(np.float64))
    states = reference.encode(mel, variables, all_layers=True)
    tensors = {"audio": audio, "log_mel": np.ascontiguousarray(mel.T.astype(np.float32))}
    for i, h in enumerate(states):
        tensors[f"hidden.{i}"] = h.astype(np.float32)
    save_file(tensors, args.out)
    print(f"{args.out}: log-mel {mel.T.shape}, {len(states)} hidden states {states[0].shape}, "
          f"values up to {max(np.abs(h).max() for h in states):.1f}")


if __name__ == "__main__":
    main()
