"""Small waveform autoencoders ("neural codecs" / vocoders) trained on allowed real audio, used
to make fakes the way "Detecting music deepfakes is easy but actually hard" (Afchar et al.,
Deezer) does: real audio reconstructed through an autoencoder. The decoders differ in their
upsampling, because each family leaves its own artefacts:

- transposed: transposed convolutions (HiFi-GAN-like upsampling), hop 64;
- nearest: nearest-neighbour upsampling + convolution, hop 32;
- subpixel: sub-pixel convolution (pixel shuffle), hop 96;
- istft: frame-rate convolutions predicting log-magnitude and phase, then an inverse STFT
  (Vocos / iSTFTNet-like), hop 64;
- rvq: a residual vector-quantised latent (4 codebooks of 256) with a transposed-convolution
  decoder, the decoder family of today's neural-codec music generators, hop 64.

    python training/data/codec_ae.py --kind music --real data/real --out data/ae --minutes 4
    python training/data/codec_ae.py --kind speech --real data/real --out data/ae-speech --minutes 3

trains one model per decoder on the *training* packages of that kind only and writes
OUT/<decoder>.pt (a finished decoder is not retrained: reruns resume).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepscreen_train.common import decode, duration, read_rows, real_split

RATES = {"music": 44100, "speech": 16000}
# Encoder strides per decoder (their product is the hop): hop sizes vary across families.
STRIDES = {"transposed": (4, 4, 4), "nearest": (2, 4, 4), "subpixel": (4, 4, 6), "istft": (4, 4, 4), "rvq": (4, 4, 4)}
CHANNELS = (32, 64, 96)
LATENT = 8
DECODERS = ("transposed", "nearest", "subpixel", "istft", "rvq")
ISTFT_FFT = 256  # iSTFT head: n_fft 4 × hop


class ResidualVQ(nn.Module):
    """Residual vector quantisation of the latent frames: each stage quantises what the previous
    left; straight-through gradients, codebooks pulled to their inputs (VQ-VAE losses)."""

    def __init__(self, dim: int, stages: int = 4, size: int = 256):
        super().__init__()
        self.books = nn.Parameter(torch.randn(stages, size, dim) * 0.1)
        self.aux = torch.zeros(())

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # [B, C, T]
        x = z.transpose(1, 2)  # [B, T, C]
        residual, out, aux = x, torch.zeros_like(x), torch.zeros((), device=x.device)
        for book in self.books:
            idx = torch.cdist(residual.reshape(-1, residual.shape[-1]), book).argmin(dim=1)
            q = book[idx].view_as(residual)
            aux = aux + ((q - residual.detach()) ** 2).mean() + 0.25 * ((q.detach() - residual) ** 2).mean()
            out = out + q
            residual = residual - q.detach()
        self.aux = aux
        return (x + (out - x).detach()).transpose(1, 2)


class Upsample(nn.Module):
    def __init__(self, kind: str, cin: int, cout: int, s: int):
        super().__init__()
        self.kind, self.s = kind, s
        if kind == "transposed":
            self.op = nn.ConvTranspose1d(cin, cout, 2 * s, stride=s, padding=s // 2)
        elif kind == "nearest":
            self.op = nn.Conv1d(cin, cout, 2 * s + 1, padding=s)
        elif kind == "subpixel":
            self.op = nn.Conv1d(cin, cout * s, 3, padding=1)
        else:
            raise ValueError(kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "nearest":
            return self.op(nn.functional.interpolate(x, scale_factor=self.s, mode="nearest"))
        y = self.op(x)
        if self.kind == "subpixel":
            b, cs, t = y.shape
            y = y.view(b, cs // self.s, self.s, t).permute(0, 1, 3, 2).reshape(b, cs // self.s, t * self.s)
        return y


class CodecAE(nn.Module):
    def __init__(self, decoder: str):
        super().__init__()
        self.kind = decoder
        self.strides = STRIDES[decoder]
        self.hop = int(np.prod(self.strides))
        enc: list[nn.Module] = [nn.Conv1d(1, CHANNELS[0], 7, padding=3), nn.ELU()]
        c = CHANNELS[0]
        for s, cout in zip(self.strides, CHANNELS):
            enc += [nn.Conv1d(c, cout, 2 * s, stride=s, padding=s // 2), nn.ELU()]
            c = cout
        enc += [nn.Conv1d(c, LATENT, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        self.quantiser = ResidualVQ(LATENT) if decoder == "rvq" else None
        if decoder == "istft":
            bins = ISTFT_FFT // 2 + 1
            self.decoder = nn.Sequential(
                nn.Conv1d(LATENT, 256, 3, padding=1), nn.ELU(), nn.Conv1d(256, 256, 3, padding=1), nn.ELU(),
                nn.Conv1d(256, 256, 3, padding=1), nn.ELU(), nn.Conv1d(256, 2 * bins, 3, padding=1))
            return
        dec: list[nn.Module] = [nn.Conv1d(LATENT, c, 3, padding=1), nn.ELU()]
        outs = list(reversed(CHANNELS))[1:] + [CHANNELS[0]]
        up = "transposed" if decoder == "rvq" else decoder
        for s, cout in zip(reversed(self.strides), outs):
            dec += [Upsample(up, c, cout, s), nn.ELU()]
            c = cout
        dec += [nn.Conv1d(c, 1, 7, padding=3), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        pad = (-n) % self.hop
        z = self.encoder(nn.functional.pad(x, (0, pad)))
        if self.quantiser is not None:
            z = self.quantiser(z)
        if self.kind == "istft":
            h = self.decoder(z)
            log_mag, phase = h.chunk(2, dim=1)
            spec = torch.exp(log_mag.clamp(max=6.0)) * torch.exp(1j * phase)
            y = torch.istft(spec, ISTFT_FFT, self.hop, window=torch.hann_window(ISTFT_FFT),
                            length=z.shape[-1] * self.hop, center=True)[:, None]
            return y[..., :n]
        return self.decoder(z)[..., :n]


def stft_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    loss = torch.zeros(())
    for n in (256, 1024, 2048):
        w = torch.hann_window(n)
        sx = torch.stft(x.squeeze(1), n, n // 4, window=w, return_complex=True).abs()
        sy = torch.stft(y.squeeze(1), n, n // 4, window=w, return_complex=True).abs()
        loss = loss + (torch.log(sx + 1e-5) - torch.log(sy + 1e-5)).abs().mean() + (sx - sy).abs().mean()
    return loss


@torch.no_grad()
def reconstruct(model: CodecAE, audio: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(audio.astype(np.float32))[None, None]
    return model(x)[0, 0].numpy()


def load(path: Path) -> CodecAE:
    state = torch.load(path, map_location="cpu", weights_only=False)
    model = CodecAE(state["decoder"])
    model.load_state_dict(state["weights"])
    return model.eval()


def training_audio(real: Path, kind: str, rng: random.Random) -> np.ndarray:
    """Music: 20 s from each of 60 training tracks; speech: 600 whole training clips."""
    rows = [r for r in read_rows(real / "real.csv") if r["kind"] == kind and real_split(kind, r["source"]) == "train"]
    rng.shuffle(rows)
    pieces = []
    for r in rows[: 60 if kind == "music" else 600]:
        path = real / r["path"]  # real.csv paths are relative to its directory
        if kind == "music":
            d = duration(path)
            pieces.append(decode(path, RATES[kind], rng.uniform(0, max(0.0, d - 20.0)), 20.0))
        else:
            x = decode(path, RATES[kind])
            pieces.append(x / max(1e-3, float(np.abs(x).max())) * 0.5)
    return np.concatenate(pieces)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["music", "speech"], default="music")
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=4.0, help="training time per decoder")
    ap.add_argument("--steps", type=int,
                    help="train each decoder this many steps instead (reproducible: a time budget gives "
                         "other decoders on a faster or busier machine)")
    ap.add_argument("--decoders", nargs="*", default=list(DECODERS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    rate = RATES[args.kind]
    audio = training_audio(args.real, args.kind, rng)
    print(f"training audio: {len(audio) / rate / 60:.1f} min from the training {args.kind} packages")
    args.out.mkdir(parents=True, exist_ok=True)
    seg = 16384 if args.kind == "music" else 8192
    for decoder in args.decoders:
        if (args.out / f"{decoder}.pt").exists():
            continue
        # Seeded per decoder, so a rerun that skips finished decoders trains the rest alike.
        torch.manual_seed(args.seed + DECODERS.index(decoder))
        batches = np.random.default_rng([args.seed, DECODERS.index(decoder)])
        model = CodecAE(decoder)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        t0, step = time.time(), 0
        while (step < args.steps) if args.steps else (time.time() - t0 < args.minutes * 60):
            idx = batches.integers(0, len(audio) - seg, size=16)
            x = torch.from_numpy(np.stack([audio[i : i + seg] for i in idx]))[:, None]
            y = model(x)
            loss = (x - y).abs().mean() + stft_loss(x, y)
            if model.quantiser is not None:
                loss = loss + model.quantiser.aux
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 100 == 0:
                print(f"{decoder}: step {step} loss {loss.item():.4f}", flush=True)
        torch.save({"decoder": decoder, "kind": args.kind, "weights": model.state_dict(), "steps": step},
                   args.out / f"{decoder}.pt")
        print(f"{decoder}: {step} steps in {(time.time() - t0) / 60:.1f} min, final loss {loss.item():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
