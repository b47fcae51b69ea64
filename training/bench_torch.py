"""Times the PyTorch forward pass of a deepscreen model file on one batch, for the ratio
against the Rust backends measured in the same session (BENCHMARKS.md).

    python training/bench_torch.py demo/untrained-music.safetensors --batch 32 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from deepscreen_train.torch_model import load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load(args.model).to(args.device)
    cfg = model.config
    length = int(round(cfg["window"]["seconds"] * cfg["sample_rate"]))
    i = torch.arange(length, dtype=torch.float32)
    windows = (0.3 * (torch.sin(i * 0.0137) + torch.sin(i * 0.291))).repeat(args.batch, 1).to(args.device)
    times = []
    with torch.inference_mode():
        model(windows)  # warm-up
        for _ in range(args.repeats):
            if args.device != "cpu":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(windows)
            if args.device != "cpu":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    hop = cfg["window"]["hop_seconds"]
    print(
        f"pytorch {torch.__version__} {args.device} threads={args.threads} model={cfg['id']} batch={args.batch}: "
        f"median {med * 1e3:.1f} ms/batch, {args.batch / med:.1f} windows/s, {args.batch / med * hop:.0f}x real time"
    )


if __name__ == "__main__":
    main()
