"""Small waveform autoencoders ("neural codecs") trained on allowed real music, used to make
music fakes the way "Detecting music deepfakes is easy but actually hard" (Afchar et al., Deezer)
does: real music reconstructed through an autoencoder. The three decoders differ only in their
upsampling layers — transposed convolution, nearest-neighbour + convolution, sub-pixel
(pixel-shuffle) — because each leaves its own spectral artefacts.

    python training/data/codec_ae.py --real data/real --out data/ae --minutes 4

trains one model per decoder on the *training* music packages only and writes OUT/<decoder>.pt.
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

sys.path.insert(0, str(Path(__file__).parent))
from common import decode, duration, read_rows, real_split  # noqa: E402

RATE = 44100
STRIDES = (4, 4, 4)  # 64× fewer frames; 8 latent channels → 8× fewer numbers than samples
CHANNELS = (32, 64, 96)
LATENT = 8
DECODERS = ("transposed", "nearest", "subpixel")


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
        enc: list[nn.Module] = [nn.Conv1d(1, CHANNELS[0], 7, padding=3), nn.ELU()]
        c = CHANNELS[0]
        for s, cout in zip(STRIDES, CHANNELS):
            enc += [nn.Conv1d(c, cout, 2 * s, stride=s, padding=s // 2), nn.ELU()]
            c = cout
        enc += [nn.Conv1d(c, LATENT, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv1d(LATENT, c, 3, padding=1), nn.ELU()]
        outs = list(reversed(CHANNELS))[1:] + [CHANNELS[0]]
        for s, cout in zip(reversed(STRIDES), outs):
            dec += [Upsample(decoder, c, cout, s), nn.ELU()]
            c = cout
        dec += [nn.Conv1d(c, 1, 7, padding=3), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        hop = int(np.prod(STRIDES))
        pad = (-n) % hop
        y = self.decoder(self.encoder(nn.functional.pad(x, (0, pad))))
        return y[..., :n]


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
    state = torch.load(path, map_location="cpu")
    model = CodecAE(state["decoder"])
    model.load_state_dict(state["weights"])
    return model.eval()


def training_audio(real: Path, seconds: float, rng: random.Random) -> np.ndarray:
    rows = [r for r in read_rows(real / "real.csv") if r["kind"] == "music" and real_split("music", r["source"]) == "train"]
    rng.shuffle(rows)
    pieces = []
    for r in rows[:60]:
        path = real / r["path"]  # real.csv paths are relative to its directory
        d = duration(path)
        start = rng.uniform(0, max(0.0, d - seconds))
        pieces.append(decode(path, RATE, start, seconds))
    return np.concatenate(pieces)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=4.0, help="training time per decoder")
    ap.add_argument("--decoders", nargs="*", default=list(DECODERS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    audio = training_audio(args.real, 20.0, rng)
    print(f"training audio: {len(audio) / RATE / 60:.1f} min from the training music packages")
    args.out.mkdir(parents=True, exist_ok=True)
    seg = 16384
    for decoder in args.decoders:
        model = CodecAE(decoder)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        t0, step = time.time(), 0
        while time.time() - t0 < args.minutes * 60:
            idx = np.random.randint(0, len(audio) - seg, size=16)
            x = torch.from_numpy(np.stack([audio[i : i + seg] for i in idx]))[:, None]
            y = model(x)
            loss = (x - y).abs().mean() + stft_loss(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step % 100 == 0:
                print(f"{decoder}: step {step} loss {loss.item():.4f}", flush=True)
        torch.save({"decoder": decoder, "weights": model.state_dict(), "steps": step}, args.out / f"{decoder}.pt")
        print(f"{decoder}: {step} steps in {args.minutes} min, final loss {loss.item():.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
