"""Time CTranslate2's Whisper encoder on the same batch `deepscreen bench` uses, for the ratio
in BENCHMARKS.md (float32, CPU, the given threads).

    python training/whisper/bench_ct2.py /data/pkgs/whisper-tiny-en --batch 4 --seconds 10 --threads 2

The input is `--batch` windows of the engine's synthetic test signal (src/bench/stages.rs),
turned into log-mel by deepscreen_train/whisper_reference.py, so both engines see the same features; the log-mel is not
timed here (CTranslate2 takes features), so compare with the engine's whole forward knowing
that it includes its own front-end.
"""

import argparse
import os
import sys
import time

import numpy as np

from deepscreen_train import whisper_reference as reference


def synthetic_windows(count, length):
    """The engine's `bench::synthetic_windows`: two tones and a chirp-like term per window."""
    i = np.arange(count * length)
    w, t = (i // length).astype(np.float32), (i % length).astype(np.float32)
    return (0.3 * np.sin(t * (0.013 + 0.001 * w)) + 0.2 * np.sin(t * 0.291) + 0.05 * np.sin(t * t * 1e-7)).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compute-type", default="float32",
                    help="CTranslate2's arithmetic on the CPU: float32, int8 or int8_float32 "
                         "(the side to put beside DEEPSCREEN_CPU_MATH=bf16)")
    args = ap.parse_args()
    import ctranslate2

    n = int(args.seconds * reference.SAMPLE_RATE)
    windows = synthetic_windows(args.batch, n).reshape(args.batch, n)
    mel = np.stack([reference.log_mel(w) for w in windows]).astype(np.float32)
    model = ctranslate2.models.Whisper(args.model_dir, device="cpu", compute_type=args.compute_type,
                                       intra_threads=args.threads)
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel))
    model.encode(features, to_cpu=True)  # warm-up
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        np.array(model.encode(features, to_cpu=True))
        times.append(time.perf_counter() - t)
    ms = 1e3 * float(np.median(times))
    print(f"CTranslate2 {ctranslate2.__version__} {args.compute_type}, {args.threads} threads: "
          f"{args.batch} x {args.seconds:g} s log-mel -> encoder in {ms:.1f} ms (median of {args.repeats}), "
          f"{args.batch * args.seconds / (ms / 1e3):.0f}x real time")


if __name__ == "__main__":
    main()
