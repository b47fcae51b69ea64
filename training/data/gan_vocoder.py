"""GAN-trained neural vocoders for data v3 (issue 29): mel spectrogram → waveform decoders
trained the way the decoders of real TTS and music generators are — adversarial (least-squares)
against multi-period and multi-scale discriminators, feature matching, a mel L1 loss and a
multi-resolution STFT loss — then used for copy-synthesis of allowed real audio
(`make_fakes.py`): real audio → its mel → the vocoder → a fake. Five families, each with its
own upsampling (or bottleneck) and so its own artefacts:

- `hifigan`: transposed-convolution upsampling, each followed by multi-receptive-field residual
  blocks (HiFi-GAN's generator, small);
- `melgan`: multi-band MelGAN: transposed convolutions and dilated residual stacks generate four
  sub-bands at a quarter of the rate, joined by a PQMF synthesis filter bank;
- `istft`: ConvNeXt blocks at the frame rate predict log-magnitude and phase, inverted by an
  inverse STFT (Vocos / iSTFTNet-like: no upsampling layer at all);
- `bigvgan`: HiFi-GAN's layout with periodic Snake activations, each wrapped in 2× anti-aliased
  up- and down-sampling (BigVGAN's AMP blocks);
- `codec`: a neural audio codec: an encoder (ConvNeXt blocks on the log-mel), residual vector
  quantisation of its latent (SoundStream / EnCodec's quantiser) and HiFi-GAN's
  transposed-convolution decoder, trained end to end with the same adversarial losses.

Each family has instances that differ in rate, hop / upsampling factors and seed (`INSTANCES`).
They are trained on the *training* packages only (the split of deepscreen_train.common), so a
held-out package's fakes are never its own reconstructions by a vocoder that heard it.

    python training/data/gan_vocoder.py --kind speech --real data/real --out data/gan-speech --minutes 30
    python training/data/gan_vocoder.py --kind music --real data/real --out data/gan --minutes 30 \\
        --instances hifigan-44k melgan-32k --device cuda

A checkpoint (OUT/<instance>.ckpt) is written every 200 steps or 5 minutes and `--minutes` is
the total budget of compute (CPU time per thread on a CPU, so sharing the machine or a pause
does not shorten the training): a stopped run resumes where it was; OUT/<instance>.pt is the
finished vocoder (not retrained on a rerun). `copy_synthesis(load(path), audio, rate)` is what make_fakes.py calls.

On a lent GPU machine, which has PyTorch but neither the packages nor ffmpeg, `--pack FILE`
writes the training audio of `--kind` here once (48 kHz Ogg Opus, 96 kbit/s: the GPU call's
working tree is limited to 64 MiB) and `--audio FILE` trains from it there (libsndfile decodes,
a polyphase filter resamples to each instance's rate):

    python training/data/gan_vocoder.py --kind music --real data/real --pack .gan/music.opus
    python training/data/gan_vocoder.py --kind music --audio .gan/music.opus --out OUT --device cuda --batch 16
"""

from __future__ import annotations

import argparse
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchaudio
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrizations

from deepscreen_train.common import decode, duration, read_rows, real_split


@dataclass(frozen=True)
class Instance:
    family: str
    rate: int
    ups: tuple[int, ...]  # upsampling factors (istft: the hop alone; melgan: ×4 by the PQMF bank)
    mels: int  # the vocoder's input bands; for a codec, those of its mel loss
    seed: int
    latent: int = 0  # codec: the width of the quantised latent
    books: int = 0  # codec: residual codebooks (each of CODEBOOK_SIZE entries)

    @property
    def hop(self) -> int:
        return int(np.prod(self.ups)) * (BANDS if self.family == "melgan" else 1)


# At least two instances per family and kind: other rates, other upsampling factors, other seeds.
INSTANCES = {
    "speech": {
        "hifigan-16k": Instance("hifigan", 16000, (5, 4, 4, 2), 80, 1),
        "hifigan-22k": Instance("hifigan", 22050, (8, 8, 2, 2), 80, 2),
        "melgan-16k": Instance("melgan", 16000, (5, 4, 2), 80, 3),  # ×4 by the PQMF bank: hop 160
        "melgan-24k": Instance("melgan", 24000, (4, 4, 4), 80, 4),  # hop 256
        "istft-16k": Instance("istft", 16000, (160,), 80, 5),
        "istft-24k": Instance("istft", 24000, (256,), 100, 6),
        "bigvgan-16k": Instance("bigvgan", 16000, (4, 4, 5, 2), 80, 7),
        "bigvgan-24k": Instance("bigvgan", 24000, (8, 4, 2, 4), 100, 8),
        # Codecs: 50 and 100 latent frames a second, 6 and 8 codebooks.
        "codec-16k": Instance("codec", 16000, (8, 5, 4, 2), 80, 9, latent=64, books=6),
        "codec-24k": Instance("codec", 24000, (6, 5, 4, 2), 100, 10, latent=64, books=8),
    },
    "music": {
        "hifigan-44k": Instance("hifigan", 44100, (8, 8, 4, 2), 128, 11),
        "hifigan-24k": Instance("hifigan", 24000, (5, 4, 4, 3), 100, 12),
        "melgan-32k": Instance("melgan", 32000, (5, 4, 4), 128, 13),  # hop 320
        "melgan-44k": Instance("melgan", 44100, (4, 4, 4, 2), 128, 14),  # hop 512
        "istft-44k": Instance("istft", 44100, (512,), 128, 15),
        "istft-32k": Instance("istft", 32000, (320,), 128, 16),
        "bigvgan-44k": Instance("bigvgan", 44100, (8, 4, 4, 4), 128, 17),
        "bigvgan-24k": Instance("bigvgan", 24000, (4, 5, 4, 3), 100, 18),
        # Codecs at the three rates: 75, 100 and 86 latent frames a second.
        "codec-24k": Instance("codec", 24000, (8, 5, 4, 2), 100, 19, latent=64, books=8),
        "codec-32k": Instance("codec", 32000, (8, 5, 4, 2), 128, 20, latent=64, books=8),
        "codec-44k": Instance("codec", 44100, (8, 8, 4, 2), 128, 21, latent=96, books=9),
    },
}

CHANNELS = 128  # the generator's first width (HiFi-GAN V1 uses 512; small enough for a CPU)
BANDS = 4  # multi-band MelGAN's sub-bands
CODEBOOK_SIZE = 256  # entries per residual codebook (EnCodec uses 1,024; fewer fill on CPU batches)


def weight_norm(m: nn.Module) -> nn.Module:
    return parametrizations.weight_norm(m)


class MelFeatures(nn.Module):
    """Log-mel input of the vocoders (n_fft 4 × hop, clamped at 1e-5 before the log)."""

    def __init__(self, inst: Instance):
        super().__init__()
        self.hop = inst.hop
        self.mel = torchaudio.transforms.MelSpectrogram(
            inst.rate, n_fft=4 * inst.hop, hop_length=inst.hop, n_mels=inst.mels, power=1.0, center=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] → [B, mels, T / hop + 1]
        return torch.log(self.mel(x).clamp(min=1e-5))


class Snake(nn.Module):
    """x + sin²(αx)/α, α learned per channel: a periodic inductive bias (BigVGAN)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.sin(self.alpha * x) ** 2 / (self.alpha + 1e-9)


def kaiser_lowpass(cutoff: float, taps: int = 12) -> torch.Tensor:
    """A windowed-sinc low-pass (Kaiser, β 5), cutoff as a fraction of the rate."""
    n = torch.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * torch.sinc(2 * cutoff * n) * torch.kaiser_window(taps, periodic=False, beta=5.0)
    return (h / h.sum()).view(1, 1, -1)


class AntiAliased(nn.Module):
    """An activation at twice the rate: upsample 2×, act, low-pass, downsample (alias-free)."""

    def __init__(self, act: nn.Module):
        super().__init__()
        self.act = act
        self.register_buffer("lowpass", kaiser_lowpass(0.25))

    def filt(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        k = self.lowpass.expand(c, 1, -1)
        return F.conv1d(F.pad(x, (5, 6), mode="replicate"), k, groups=c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = torch.zeros(x.shape[0], x.shape[1], 2 * x.shape[2], device=x.device, dtype=x.dtype)
        up[..., ::2] = 2 * x
        return self.filt(self.act(self.filt(up)))[..., ::2]


class ResBlock(nn.Module):
    """Dilated residual convolutions (HiFi-GAN's ResBlock1), activation as given."""

    def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...], act):
        super().__init__()
        self.convs1 = nn.ModuleList(weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d,
                                                          padding=d * (kernel - 1) // 2)) for d in dilations)
        self.convs2 = nn.ModuleList(weight_norm(nn.Conv1d(channels, channels, kernel,
                                                          padding=(kernel - 1) // 2)) for _ in dilations)
        self.acts1 = nn.ModuleList(act(channels) for _ in dilations)
        self.acts2 = nn.ModuleList(act(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, self.acts1, self.acts2):
            x = x + c2(a2(c1(a1(x))))
        return x


def leaky(_channels: int) -> nn.Module:
    return nn.LeakyReLU(0.1)


def snake_aa(channels: int) -> nn.Module:
    return AntiAliased(Snake(channels))


class UpsamplingGenerator(nn.Module):
    """HiFi-GAN (leaky ReLU) or BigVGAN (anti-aliased Snake): per upsampling factor a transposed
    convolution, then the mean of multi-receptive-field residual blocks (kernels 3, 7, 11)."""

    def __init__(self, inst: Instance, out_channels: int = 1, kernels=(3, 7, 11)):
        super().__init__()
        act = snake_aa if inst.family == "bigvgan" else leaky
        self.pre = weight_norm(nn.Conv1d(inst.latent or inst.mels, CHANNELS, 7, padding=3))
        self.ups, self.blocks = nn.ModuleList(), nn.ModuleList()
        c = CHANNELS
        for u in inst.ups:
            self.ups.append(weight_norm(nn.ConvTranspose1d(c, c // 2, 2 * u, stride=u, padding=u // 2 + u % 2,
                                                           output_padding=u % 2)))
            c //= 2
            self.blocks.append(nn.ModuleList(ResBlock(c, k, (1, 3, 5), act) for k in kernels))
        self.act_post = act(c)
        self.post = weight_norm(nn.Conv1d(c, out_channels, 7, padding=3))
        self.act_up = nn.ModuleList(act(CHANNELS // 2**i) for i in range(len(inst.ups)))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.pre(mel)
        for up, blocks, act in zip(self.ups, self.blocks, self.act_up):
            x = up(act(x))
            x = sum(b(x) for b in blocks) / len(blocks)
        return torch.tanh(self.post(self.act_post(x)))


class PQMF(nn.Module):
    """A 4-band pseudo-QMF bank (cosine-modulated Kaiser prototype, 63 taps): synthesis joins
    sub-band signals at a quarter of the rate into one full-band signal; analysis splits."""

    def __init__(self, bands: int = BANDS, taps: int = 62, cutoff: float = 0.142, beta: float = 9.0):
        super().__init__()
        n = torch.arange(taps + 1, dtype=torch.float64) - taps / 2
        proto = (torch.sinc(cutoff * n) * cutoff) * torch.kaiser_window(taps + 1, periodic=False, beta=beta,
                                                                          dtype=torch.float64)
        k = torch.arange(bands, dtype=torch.float64)[:, None]
        phase = (-1) ** k * math.pi / 4
        mod = torch.cos((2 * k + 1) * math.pi / (2 * bands) * n[None, :] + phase)
        self.register_buffer("analysis_filters", (2 * proto * mod).float()[:, None, :])
        self.register_buffer("synthesis_filters", (2 * proto * mod).float().flip(-1)[None, :, :].transpose(0, 1))
        self.bands, self.taps = bands, taps

    def synthesis(self, x: torch.Tensor) -> torch.Tensor:  # [B, bands, T] → [B, 1, T·bands]
        up = torch.zeros(x.shape[0], self.bands, x.shape[2] * self.bands, device=x.device, dtype=x.dtype)
        up[..., :: self.bands] = x * self.bands
        filters = self.synthesis_filters.transpose(0, 1)  # [1, bands, taps+1]
        return F.conv1d(F.pad(up, (self.taps // 2, self.taps // 2)), filters)

    def analysis(self, x: torch.Tensor) -> torch.Tensor:  # [B, 1, T] → [B, bands, T/bands]
        y = F.conv1d(F.pad(x, (self.taps // 2, self.taps // 2)), self.analysis_filters)
        return y[..., :: self.bands]


class MelGANGenerator(nn.Module):
    """Multi-band MelGAN: transposed convolutions with residual stacks (dilations 1, 3, 9) to a
    quarter of the rate, four sub-band outputs, PQMF synthesis."""

    def __init__(self, inst: Instance):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad1d(3), weight_norm(nn.Conv1d(inst.mels, CHANNELS * 2, 7))]
        c = CHANNELS * 2
        for u in inst.ups:
            layers += [nn.LeakyReLU(0.2), weight_norm(nn.ConvTranspose1d(c, c // 2, 2 * u, stride=u,
                                                                         padding=u // 2 + u % 2,
                                                                         output_padding=u % 2))]
            c //= 2
            for d in (1, 3, 9):
                layers.append(Residual(nn.Sequential(
                    nn.LeakyReLU(0.2), nn.ReflectionPad1d(d), weight_norm(nn.Conv1d(c, c, 3, dilation=d)),
                    nn.LeakyReLU(0.2), weight_norm(nn.Conv1d(c, c, 1)))))
        layers += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(3), weight_norm(nn.Conv1d(c, BANDS, 7)), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.pqmf = PQMF()

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.pqmf.synthesis(self.net(mel))


class Residual(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvNeXt(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.dw = nn.Conv1d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1, self.pw2 = nn.Linear(c, 3 * c), nn.Linear(3 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dw(x).transpose(1, 2))
        return x + self.pw2(F.gelu(self.pw1(y))).transpose(1, 2)


class ISTFTGenerator(nn.Module):
    """Vocos-like: ConvNeXt blocks at the frame rate, then magnitude and phase of an STFT with
    n_fft 4 × hop, inverted."""

    def __init__(self, inst: Instance, blocks: int = 6):
        super().__init__()
        self.hop, self.n_fft = inst.hop, 4 * inst.hop
        c = CHANNELS * 2
        self.pre = nn.Conv1d(inst.mels, c, 7, padding=3)
        self.blocks = nn.Sequential(*[ConvNeXt(c) for _ in range(blocks)])
        self.norm = nn.LayerNorm(c)
        self.head = nn.Linear(c, 2 * (self.n_fft // 2 + 1))
        self.register_buffer("window", torch.hann_window(self.n_fft))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.blocks(self.pre(mel)).transpose(1, 2))
        log_mag, phase = self.head(h).transpose(1, 2).chunk(2, dim=1)
        spec = torch.exp(log_mag.clamp(max=6.0)) * torch.exp(1j * phase)
        frames = mel.shape[-1]
        y = torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True,
                        length=(frames - 1) * self.hop)
        return y[:, None]


def generator(inst: Instance) -> nn.Module:
    return {"hifigan": UpsamplingGenerator, "bigvgan": UpsamplingGenerator, "melgan": MelGANGenerator,
            "istft": ISTFTGenerator, "codec": UpsamplingGenerator}[inst.family](inst)


# ---------------------------------------------------------------- the codec's encoder and quantiser


class CodecEncoder(nn.Module):
    """The codec's analysis: the log-mel of the waveform (`inst.mels` bands at the decoder's hop),
    ConvNeXt blocks at the frame rate, a projection to the latent. (A strided convolutional
    encoder on the waveform, as SoundStream's, carried nothing of its input after 800 steps on a
    CPU: its latent was the same for a 110 Hz and an 880 Hz tone. From the mel, the latent
    carries the signal from the first step; the quantiser and the transposed-conv decoder, whose
    artefacts a detector learns, are a codec's.)"""

    def __init__(self, inst: Instance, blocks: int = 3):
        super().__init__()
        c = CHANNELS * 2
        self.mel = MelFeatures(inst)
        self.pre = nn.Conv1d(inst.mels, c, 7, padding=3)
        self.blocks = nn.Sequential(*[ConvNeXt(c) for _ in range(blocks)])
        self.post = nn.Conv1d(c, inst.latent, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] → [B, latent, T / hop + 1]
        return self.post(self.blocks(self.pre(self.mel(x))))


class ResidualVQ(nn.Module):
    """Residual vector quantisation (SoundStream): each codebook quantises what the ones before it
    left, to its nearest entry. The codebooks are not trained by gradients: each entry follows
    the mean of the vectors assigned to it (exponential moving averages, decay 0.99), and an
    entry left unused is restarted on a vector of the batch. The encoder gets the decoder's
    gradient straight through the quantiser and a commitment loss that pulls its output
    towards what was chosen."""

    def __init__(self, dim: int, books: int, size: int = CODEBOOK_SIZE, decay: float = 0.99):
        super().__init__()
        self.decay = decay
        self.register_buffer("codebooks", torch.zeros(books, size, dim))
        self.register_buffer("counts", torch.ones(books, size))  # moving count of assignments
        self.register_buffer("sums", torch.zeros(books, size, dim))  # moving sum of assigned vectors
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, dim, T] → (the quantised latent, same shape, with straight-through gradients; the
        commitment loss)."""
        b, d, t = z.shape
        x = z.detach().transpose(1, 2).reshape(-1, d)
        residual, total = x, torch.zeros_like(x)
        for k in range(self.codebooks.shape[0]):
            if self.training:
                self._learn(k, residual)
            q = self.codebooks[k][self.nearest(k, residual)]
            total = total + q
            residual = residual - q
        if self.training:
            self.ready.fill_(True)
        q = total.view(b, t, d).transpose(1, 2)
        return z + (q - z).detach(), F.mse_loss(z, q)

    def nearest(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(x, self.codebooks[k]).argmin(dim=1)

    @torch.no_grad()
    def _learn(self, k: int, x: torch.Tensor) -> None:
        size = self.codebooks.shape[1]
        if not self.ready:  # start from the data: random vectors of the first batch
            pick = torch.randint(len(x), (size,), device=x.device)
            self.codebooks[k] = x[pick] + 1e-3 * torch.randn_like(x[pick])
            self.sums[k] = self.codebooks[k].clone()
        onehot = F.one_hot(self.nearest(k, x), size).to(x.dtype)  # [N, size]
        self.counts[k].mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.sums[k].mul_(self.decay).add_(onehot.T @ x, alpha=1 - self.decay)
        self.codebooks[k] = self.sums[k] / self.counts[k].clamp(min=1e-5)[:, None]
        dead = self.counts[k] < 1e-2  # unused for about 450 steps
        if dead.any():
            pick = torch.randint(len(x), (int(dead.sum()),), device=x.device)
            self.codebooks[k][dead] = x[pick]
            self.sums[k][dead] = x[pick]
            self.counts[k][dead] = 1.0


class Codec(nn.Module):
    """Encoder and quantiser: waveform [B, T] → (quantised latent [B, latent, T / hop + 1],
    commitment loss). The decoder is `generator(inst)`, as for the vocoders."""

    def __init__(self, inst: Instance):
        super().__init__()
        self.encoder = CodecEncoder(inst)
        self.quantiser = ResidualVQ(inst.latent, inst.books)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.quantiser(self.encoder(x))


def analysis(inst: Instance) -> nn.Module:
    """What the generator decodes from: a codec's quantised latent, or a vocoder's log-mel."""
    return Codec(inst) if inst.family == "codec" else MelFeatures(inst)


def analyse(front: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the generator's input, the front's own loss: a codec's commitment, else 0)."""
    out = front(x)
    return out if isinstance(out, tuple) else (out, torch.zeros((), device=x.device))


# ---------------------------------------------------------------- discriminators


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int):
        super().__init__()
        self.period = period
        chans = [1, 32, 64, 128, 128]
        self.convs = nn.ModuleList(weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1), padding=(2, 0)))
                                   for a, b in zip(chans, chans[1:]))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, c, t = x.shape
        x = F.pad(x, (0, (-t) % self.period), mode="reflect").view(b, c, -1, self.period)
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.post(x).flatten(1), feats


class ScaleDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        spec = [(1, 32, 15, 1, 1), (32, 64, 41, 4, 8), (64, 128, 41, 4, 16), (128, 128, 41, 4, 16),
                (128, 128, 5, 1, 1)]
        self.convs = nn.ModuleList(weight_norm(nn.Conv1d(a, b, k, s, groups=g, padding=k // 2))
                                   for a, b, k, s, g in spec)
        self.post = weight_norm(nn.Conv1d(128, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            feats.append(x)
        return self.post(x).flatten(1), feats


class Discriminators(nn.Module):
    """HiFi-GAN's multi-period (2, 3, 5, 7, 11) and multi-scale (×1, ×2, ×4 average-pooled)."""

    def __init__(self):
        super().__init__()
        self.periods = nn.ModuleList(PeriodDiscriminator(p) for p in (2, 3, 5, 7, 11))
        self.scales = nn.ModuleList(ScaleDiscriminator() for _ in range(3))

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        out = [d(x) for d in self.periods]
        for i, d in enumerate(self.scales):
            out.append(d(F.avg_pool1d(x, 2**i * 2, 2**i, padding=2**i) if i else x))
        return out


# ---------------------------------------------------------------- losses and training


def stft_loss(x: torch.Tensor, y: torch.Tensor, sizes=(512, 1024, 2048)) -> torch.Tensor:
    """Multi-resolution STFT loss: spectral convergence + log-magnitude L1."""
    loss = torch.zeros((), device=x.device)
    for n in sizes:
        w = torch.hann_window(n, device=x.device)
        sx = torch.stft(x.squeeze(1), n, n // 4, window=w, return_complex=True).abs()
        sy = torch.stft(y.squeeze(1), n, n // 4, window=w, return_complex=True).abs()
        loss = loss + torch.linalg.norm(sy - sx) / torch.linalg.norm(sy).clamp(min=1e-7)
        loss = loss + (torch.log(sx + 1e-5) - torch.log(sy + 1e-5)).abs().mean()
    return loss / len(sizes)


def training_audio(real: Path, kind: str, rate: int, rng: random.Random) -> np.ndarray:
    """Music: 20 s from each of 60 training tracks; speech: 800 whole training clips, each
    peak-normalised to 0.5."""
    rows = [r for r in read_rows(real / "real.csv") if r["kind"] == kind and real_split(kind, r["source"]) == "train"]
    rng.shuffle(rows)
    pieces = []
    for r in rows[: 60 if kind == "music" else 800]:
        path = real / r["path"]
        if kind == "music":
            x = decode(path, rate, rng.uniform(0, max(0.0, duration(path) - 20.0)), 20.0)
        else:
            x = decode(path, rate)
        pieces.append(x / max(1e-3, float(np.abs(x).max())) * 0.5)
    return np.concatenate(pieces).astype(np.float32)


PACK_RATE = 48000  # Opus's own rate: every instance's rate is reached by resampling down


def pack_audio(real: Path, kind: str, out: Path) -> None:
    """The training audio of `kind`, as `training_audio` picks it, into one Ogg Opus file."""
    import subprocess

    audio = training_audio(real, kind, PACK_RATE, random.Random(0))
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "f32le", "-ar", str(PACK_RATE), "-ac", "1",
                    "-i", "-", "-c:a", "libopus", "-b:a", "96k", str(out)], input=audio.tobytes(), check=True)
    print(f"{out}: {len(audio) / PACK_RATE / 60:.1f} min of {kind}, {out.stat().st_size / 1e6:.1f} MB", flush=True)


def packed_audio(path: Path, rate: int) -> np.ndarray:
    """A `pack_audio` file at `rate`, mono float32."""
    import soundfile as sf
    from scipy.signal import resample_poly

    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    g = math.gcd(rate, sr)
    return resample_poly(x, rate // g, sr // g).astype(np.float32)


def train(inst: Instance, name: str, audio: np.ndarray, out: Path, minutes: float, steps: int | None,
          device: str, batch: int) -> None:
    ckpt, final = out / f"{name}.ckpt", out / f"{name}.pt"
    torch.manual_seed(inst.seed)
    gen, disc, feats = generator(inst).to(device), Discriminators().to(device), MelFeatures(inst).to(device)
    # The generator's input: the mel itself, or a codec's encoder and quantiser, trained with it.
    front = analysis(inst).to(device).train()
    og = torch.optim.AdamW([*gen.parameters(), *front.parameters()], 2e-4, betas=(0.8, 0.99))
    od = torch.optim.AdamW(disc.parameters(), 2e-4, betas=(0.8, 0.99))
    step, elapsed = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        gen.load_state_dict(state["gen"])
        if "front" in state:
            front.load_state_dict(state["front"])
        disc.load_state_dict(state["disc"])
        og.load_state_dict(state["og"])
        od.load_state_dict(state["od"])
        step, elapsed = state["step"], state["elapsed"]
        print(f"{name}: resumed at step {step} ({elapsed / 60:.1f} min done)", flush=True)
    batches = np.random.default_rng([inst.seed, step])
    seg = inst.hop * (8192 // inst.hop + 1)  # whole frames, about 8k samples
    # The budget is compute time (this process's CPU seconds per thread; wall time on a GPU), not
    # wall time: a run that shares the machine, or is paused (SIGSTOP), gets the same training.
    if device == "cpu":
        threads = max(1, torch.get_num_threads())
        clock = lambda: time.process_time() / threads  # noqa: E731
    else:
        clock = time.time
    t0 = clock() - elapsed
    saved = clock()
    while (step < steps) if steps else (clock() - t0 < minutes * 60):
        idx = batches.integers(0, len(audio) - seg, size=batch)
        x = torch.from_numpy(np.stack([audio[i : i + seg] for i in idx])).to(device)
        cond, front_loss = analyse(front, x)
        y = gen(cond)[..., :seg]
        x = x[:, None, : y.shape[-1]]
        # Discriminators: real → 1, generated → 0 (least squares).
        d_loss = sum(((1 - r) ** 2).mean() + (g**2).mean()
                     for (r, _), (g, _) in zip(disc(x), disc(y.detach())))
        od.zero_grad()
        d_loss.backward()
        od.step()
        # Generator: fool them, match their features, match the mel and the STFTs.
        real_out, fake_out = disc(x), disc(y)
        adv = sum(((1 - g) ** 2).mean() for g, _ in fake_out)
        fm = sum(F.l1_loss(gf, rf.detach()) for (_, rfs), (_, gfs) in zip(real_out, fake_out)
                 for rf, gf in zip(rfs, gfs))
        mel_l1 = F.l1_loss(feats(y.squeeze(1)), feats(x.squeeze(1)))
        g_loss = adv + 2 * fm + 45 * mel_l1 + stft_loss(y, x) + front_loss
        og.zero_grad()
        g_loss.backward()
        og.step()
        step += 1
        if step % 50 == 0:
            print(f"{name}: step {step} d {d_loss.item():.3f} adv {adv.item():.3f} fm {fm.item():.3f} "
                  f"mel {mel_l1.item():.3f} ({(clock() - t0) / 60:.1f} min)", flush=True)
        # A checkpoint every 200 steps or 5 minutes of compute, whichever comes first (slow CPU
        # steps must not lose half an hour to a stopped session).
        if step % 200 == 0 or clock() - saved > 300:
            state = {"gen": gen.state_dict(), "front": front.state_dict(), "disc": disc.state_dict(),
                     "og": og.state_dict(), "od": od.state_dict(), "step": step, "elapsed": clock() - t0}
            torch.save(state, ckpt.with_suffix(".tmp"))
            ckpt.with_suffix(".tmp").replace(ckpt)
            saved = clock()
    torch.save({"instance": inst.__dict__, "name": name, "weights": gen.state_dict(),
                "front": front.state_dict(), "steps": step, "minutes": (clock() - t0) / 60}, final)
    ckpt.unlink(missing_ok=True)
    print(f"{name}: {step} steps in {(clock() - t0) / 60:.1f} min → {final}", flush=True)


def load(path: Path) -> tuple[nn.Module, nn.Module, Instance]:
    """(generator, its front: `analysis(inst)`, the instance) of a finished vocoder or codec."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    inst = Instance(**{**state["instance"], "ups": tuple(state["instance"]["ups"])})
    gen, front = generator(inst), analysis(inst)
    gen.load_state_dict(state["weights"])
    if "front" in state:  # vocoders finished before codecs existed saved none (a mel has no weights)
        front.load_state_dict(state["front"])
    return gen.eval(), front.eval(), inst


@torch.no_grad()
def copy_synthesis(vocoder: tuple[nn.Module, nn.Module, Instance], audio: np.ndarray) -> np.ndarray:
    """`audio` at the vocoder's rate → its mel (or the codec's quantised latent) → the decoder's
    waveform, same length."""
    gen, front, _ = vocoder
    n = len(audio)
    x = torch.from_numpy(np.asarray(audio, np.float32))[None]
    y = gen(analyse(front, x)[0])[0, 0].numpy()
    return np.pad(y, (0, max(0, n - len(y))))[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["music", "speech"], required=True)
    ap.add_argument("--real", type=Path, help="the real audio (fetch_real.py's folder)")
    ap.add_argument("--audio", type=Path, help="train from this --pack file instead of --real")
    ap.add_argument("--pack", type=Path, help="only write the training audio into this file (Ogg Opus)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--instances", nargs="*", help="default: every instance of --kind")
    ap.add_argument("--minutes", type=float, default=30.0, help="training budget per instance (total, resumed)")
    ap.add_argument("--steps", type=int, help="train each instance this many steps instead")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.pack:
        if not args.real:
            ap.error("--pack needs --real")
        pack_audio(args.real, args.kind, args.pack)
        return 0
    if not args.out or not (args.real or args.audio):
        ap.error("training needs --out and one of --real or --audio")
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    names = args.instances or list(INSTANCES[args.kind])
    args.out.mkdir(parents=True, exist_ok=True)
    cache: dict[int, np.ndarray] = {}
    for name in names:
        inst = INSTANCES[args.kind][name]
        if (args.out / f"{name}.pt").exists():
            continue
        if inst.rate not in cache:
            cache[inst.rate] = (packed_audio(args.audio, inst.rate) if args.audio
                                else training_audio(args.real, args.kind, inst.rate, random.Random(0)))
            print(f"training audio at {inst.rate} Hz: {len(cache[inst.rate]) / inst.rate / 60:.1f} min", flush=True)
        train(inst, name, cache[inst.rate], args.out, args.minutes, args.steps, args.device, args.batch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
