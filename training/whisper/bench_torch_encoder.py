"""PyTorch beside `deepscreen bench` and the criterion `encoder` group on a GPU: a Whisper-base
shaped audio encoder (random weights: speed does not depend on them) and its ops one by one,
each in f32 and with TF32 allowed (PyTorch's `allow_tf32`, the arithmetic of deepscreen's
CUDA tensor-core kernels). Times are medians of CUDA-event-timed runs after a warm-up.

    python training/whisper/bench_torch_encoder.py --batch 8 --seconds 4
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F

D, HEADS, MLP, LAYERS, MELS = 512, 8, 2048, 6, 80


def timed(fn, repeats: int) -> float:
    """Median milliseconds of `fn()` over `repeats` runs, after three warm-ups."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.qkv, self.out = torch.nn.Linear(D, 3 * D), torch.nn.Linear(D, D)
        self.fc1, self.fc2 = torch.nn.Linear(D, MLP), torch.nn.Linear(MLP, D)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, D)
        x = x + self.out(a)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv1d(MELS, D, 3, padding=1)
        self.conv2 = torch.nn.Conv1d(D, D, 3, stride=2, padding=1)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln = torch.nn.LayerNorm(D)

    def forward(self, mel):  # [B, 80, frames]
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.ln(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=4.0, help="window length (100 mel frames a second)")
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    frames = int(args.seconds * 100)
    positions = frames // 2
    rows = args.batch * positions
    enc = Encoder().to(dev).eval()
    mel = torch.randn(args.batch, MELS, frames, device=dev)
    x = torch.randn(args.batch, positions, D, device=dev)
    normed = torch.randn(rows, D, device=dev)
    inner = torch.randn(rows, MLP, device=dev)
    qkv = torch.randn(args.batch, HEADS, positions, 3 * (D // HEADS), device=dev).chunk(3, dim=-1)
    stem1 = torch.randn(args.batch, D, frames, device=dev)
    block = enc.blocks[0]
    ops = {
        "conv1_80x512_gelu": lambda: F.gelu(enc.conv1(mel)),
        "conv2_512x512_stride2_gelu": lambda: F.gelu(enc.conv2(stem1)),
        "layer_norm": lambda: block.ln1(x),
        "linear_qkv_512x1536": lambda: block.qkv(normed),
        "attention_8_heads": lambda: F.scaled_dot_product_attention(*qkv),
        "linear_out_512x512": lambda: block.out(normed),
        "linear_mlp_in_512x2048_gelu": lambda: F.gelu(block.fc1(normed)),
        "linear_mlp_out_2048x512": lambda: block.fc2(inner),
        "whole encoder": lambda: enc(mel),
    }
    print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}: Whisper-base shapes, "
          f"batch {args.batch}, {args.seconds:g} s windows ({frames} mel frames), ms (median of {args.repeats})")
    print(f"| op | f32 | TF32 |\n|---|---|---|")
    with torch.inference_mode():
        for name, fn in ops.items():
            got = []
            for tf32 in (False, True):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                got.append(timed(fn, args.repeats))
            print(f"| {name} | {got[0]:.3f} | {got[1]:.3f} |")
    whole = got[1]
    print(f"whole encoder with TF32: {args.batch * args.seconds / (whole / 1000):,.0f}x real time")


if __name__ == "__main__":
    main()
