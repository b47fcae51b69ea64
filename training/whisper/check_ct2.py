"""Check deepscreen_train/whisper_reference.py against CTranslate2's own Whisper encoder on the same log-mel input.

    python training/whisper/check_ct2.py /data/pkgs/whisper-tiny-en [--seconds 10]

Needs the `ctranslate2` package (PyPI). Prints the largest absolute difference of the final
hidden states and their scale; exits non-zero above the tolerance.
"""

import argparse
import os
import sys

import numpy as np

from deepscreen_train import ct2
from deepscreen_train import whisper_reference as reference


def test_audio(seconds, seed=0):
    """Two tones, a chirp and noise: broadband, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * reference.SAMPLE_RATE)) / reference.SAMPLE_RATE
    audio = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 1750 * t)
    audio += 0.1 * np.sin(2 * np.pi * (300 + 900 * t) * t) + 0.02 * rng.standard_normal(len(t))
    return audio.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tolerance", type=float, default=2e-3)
    args = ap.parse_args()
    import ctranslate2

    _, variables = ct2.read(os.path.join(args.model_dir, "model.bin"))
    mel = reference.log_mel(test_audio(args.seconds))
    ours = reference.encode(mel, variables)
    whisper = ctranslate2.models.Whisper(args.model_dir, device="cpu", compute_type="float32")
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[None].astype(np.float32)))
    theirs = np.array(whisper.encode(features, to_cpu=True))[0]
    diff = np.abs(ours - theirs).max()
    print(f"{args.model_dir}: hidden states {ours.shape}, max |ours - ctranslate2| {diff:.3e} "
          f"(values up to {np.abs(theirs).max():.1f})")
    sys.exit(0 if diff <= args.tolerance else 1)


if __name__ == "__main__":
    main()
