"""Cache frozen Whisper-encoder features of a clip list, window by window exactly as the engine
cuts them, for training a detector head (train_head.py).

    python training/whisper/features.py --model-dir data/whisper-base \
        --data data/speech --list train --hop 2 --out data/speech/features-base

For each clip of DATA/LIST.csv: 16 kHz mono, cut into windows of --seconds with hop --hop as the
engine cuts them (`deepscreen_train.windowing`: silence gated out, windows while they fit, one
more aligned to the end, a shorter clip repeated to one window, inactive windows skipped,
digital-silence runs given the engine's noise floor), Whisper log-mel per window, CTranslate2's encoder (float32)
→ final hidden states [positions, width], stored as float16. Written in shards of --shard clips
(OUT/LIST-00000.npz: `states` [windows, positions, width], `clip` [windows] = row index in the
list); existing shards are kept, so an interrupted run resumes.

With `--layers 1,2,…` (and `--encoder`, the converted deepscreen model) the hidden states after
those blocks (0 = stem + positions) are written instead, one directory per layer
(OUT/L1/LIST-00000.npz, …), computed by a float32 PyTorch copy of the encoder that stops after
the deepest block asked for — the inputs of a head that reads a weighted sum of layers. `final`
among them (OUT/Lfinal) adds the final states from the same pass, instead of a second pass
through CTranslate2 (they agree to about 1e-2 on states of scale 10).
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import numpy as np

from deepscreen_train import windowing
from deepscreen_train import whisper_reference as reference

RATE = reference.SAMPLE_RATE

def log_mel_batch(batch: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """[B, samples] → [B, 80, frames], reference.log_mel in float32 for a batch."""
    pad = reference.N_FFT // 2
    padded = np.pad(batch, ((0, 0), (pad, pad)), mode="reflect")
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(reference.N_FFT) / reference.N_FFT)).astype(np.float32)
    frames = 1 + (padded.shape[1] - reference.N_FFT) // reference.HOP
    idx = np.arange(reference.N_FFT)[None, :] + reference.HOP * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(padded[:, idx] * window, axis=2)) ** 2
    mel = np.einsum("mf,btf->bmt", filters, power[:, :-1])
    spec = np.log10(np.maximum(mel, 1e-10))
    spec = np.maximum(spec, spec.max(axis=(1, 2), keepdims=True) - 8.0)
    return ((spec + 4.0) / 4.0).astype(np.float32)


class TorchEncoder:
    """Whisper's encoder in float32 PyTorch from a deepscreen encoder file (for intermediate
    layers, which CTranslate2's `encode` does not return)."""

    def __init__(self, path: Path, threads: int):
        import json

        import torch
        from safetensors import safe_open

        torch.set_num_threads(threads)
        self.torch = torch
        with safe_open(str(path), "np") as f:
            encoder = json.loads(f.metadata()["deepscreen"])["encoder"]
            self.heads, self.layers = encoder["heads"], encoder["layers"]
            self.w = {k: torch.from_numpy(f.get_tensor(k).astype(np.float32)) for k in f.keys() if k.startswith("encoder.")}

    def states(self, mel: np.ndarray, layers: list[int], final: bool = False) -> dict:
        """{layer: [B, positions, d]} for a [B, 80, frames] log-mel batch; with `final`, also
        {"final": the final LayerNorm's output} (all blocks run)."""
        torch, w = self.torch, self.w
        F = torch.nn.functional
        with torch.no_grad():
            x = F.gelu(F.conv1d(torch.from_numpy(mel), w["encoder.conv1.weight"], w["encoder.conv1.bias"], padding=1))
            x = F.gelu(F.conv1d(x, w["encoder.conv2.weight"], w["encoder.conv2.bias"], stride=2, padding=1))
            x = x.transpose(1, 2) + w["encoder.positions"][: x.shape[2]]
            out = {0: x} if 0 in layers else {}
            b, t, d = x.shape
            depth = self.layers if final else max(layers)
            for i in range(depth):
                p = f"encoder.blocks.{i}."
                h = F.layer_norm(x, (d,), w[p + "attn_norm.weight"], w[p + "attn_norm.bias"], 1e-5)
                q, k, v = F.linear(h, w[p + "qkv.weight"], w[p + "qkv.bias"]).split(d, dim=2)
                q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
                a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, d)
                x = x + F.linear(a, w[p + "attn_out.weight"], w[p + "attn_out.bias"])
                h = F.layer_norm(x, (d,), w[p + "mlp_norm.weight"], w[p + "mlp_norm.bias"], 1e-5)
                h = F.gelu(F.linear(h, w[p + "mlp_in.weight"], w[p + "mlp_in.bias"]))
                x = x + F.linear(h, w[p + "mlp_out.weight"], w[p + "mlp_out.bias"])
                if i + 1 in layers:
                    out[i + 1] = x
            if final:
                out["final"] = F.layer_norm(x, (d,), w["encoder.final_norm.weight"], w["encoder.final_norm.bias"], 1e-5)
            return {k: v.numpy() for k, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", help="CTranslate2 Whisper model directory (final states)")
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--list", required=True, help="list name: DATA/LIST.csv")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--hop", type=float, default=2.0)
    ap.add_argument("--shard", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", help="comma-separated block indices (0 = stem), or `final` (the final LayerNorm's "
                                     "output, as CTranslate2's): write these hidden states")
    ap.add_argument("--encoder", type=Path, help="deepscreen encoder file (convert.py), for --layers")
    args = ap.parse_args()
    import soundfile as sf
    from deepscreen_train.common import load_audio

    asked = args.layers.split(",") if args.layers else []
    final = "final" in asked
    layers = sorted({int(x) for x in asked if x != "final"})
    if asked:
        if not args.encoder:
            raise SystemExit("--layers needs --encoder")
        torch_encoder = TorchEncoder(args.encoder, args.threads)
        outs = {k: args.out / f"L{k}" for k in layers} | ({"final": args.out / "Lfinal"} if final else {})
    else:
        import ctranslate2

        whisper = ctranslate2.models.Whisper(args.model_dir, device="cpu", compute_type="float32",
                                             intra_threads=args.threads)
        outs = {None: args.out}
    filters = reference.mel_filters().astype(np.float32)
    with open(args.data / f"{args.list}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for out in outs.values():
        out.mkdir(parents=True, exist_ok=True)
    for first in range(0, len(rows), args.shard):
        shard = f"{Path(args.list).name}-{first // args.shard:05d}.npz"
        if all((out / shard).exists() for out in outs.values()):
            continue
        wins, owner = [], []
        for i in range(first, min(len(rows), first + args.shard)):
            path = args.data / rows[i]["path"]
            try:
                x, sr = sf.read(str(path), dtype="float32", always_2d=True)
                x = x.mean(axis=1)
                if sr != RATE:
                    x = load_audio(path, RATE)
            except Exception:
                x = load_audio(path, RATE)
            # The engine's windows: silence gated out, inactive windows skipped, digital
            # silence given its noise floor (a clip too short for a window has none).
            try:
                cut = windowing.windows(x, RATE, args.seconds, args.hop)
            except windowing.TooShort:
                cut = []
            for w in cut:
                wins.append(w.samples)
                owner.append(i)
        states: dict = {k: [] for k in outs}
        for b in range(0, len(wins), args.batch):
            mel = np.ascontiguousarray(log_mel_batch(np.stack(wins[b : b + args.batch]), filters))
            if asked:
                for k, v in torch_encoder.states(mel, layers, final).items():
                    states[k].append(v.astype(np.float16))
            else:
                out = whisper.encode(ctranslate2.StorageView.from_array(mel), to_cpu=True)
                states[None].append(np.array(out).astype(np.float16))
        for k, out in outs.items():
            tmp = out / (shard[:-4] + ".tmp.npz")
            np.savez(tmp, states=np.concatenate(states[k]), clip=np.array(owner, dtype=np.int32))
            os.replace(tmp, out / shard)
        print(f"{shard}: {len(wins)} windows", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
