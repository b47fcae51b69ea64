"""Resynthesis of real audio (the allowed DSP vocoders of the data rules): Griffin-Lim on a
linear or mel spectrogram, WORLD (pyworld) and MLSA (pysptk). Used by data/make_fakes.py for
fakes and by probe_phase.py."""

from __future__ import annotations

import numpy as np


def griffin_lim(x: np.ndarray, rate: int, mel: bool, rng: np.random.Generator) -> np.ndarray:
    import torch
    import torchaudio

    torch.set_num_threads(1)  # one process per core already (the pool)
    n_fft = int(rng.choice([512, 1024])) if rate <= 16000 else int(rng.choice([1024, 2048]))
    hop = n_fft // 4
    spec = torch.stft(torch.from_numpy(x), n_fft, hop, window=torch.hann_window(n_fft), return_complex=True).abs()
    if mel:
        fb = torchaudio.functional.melscale_fbanks(n_fft // 2 + 1, 0.0, rate / 2, 80 if rate <= 16000 else 128, rate)
        melspec = fb.T @ spec**2
        spec = torch.clamp(torch.linalg.pinv(fb.T) @ melspec, min=0.0).sqrt()
    gl = torchaudio.transforms.GriffinLim(n_fft=n_fft, hop_length=hop, power=1.0, n_iter=32, momentum=0.99)
    y = gl(spec).numpy()
    return y[: len(x)]


def world(x: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """WORLD copy-synthesis; half the time with the pitch scaled (0.75–1.33×) and the spectral
    envelope warped (formant shift 0.85–1.18×), the "pitch/formant-modified real speech" kind."""
    import pyworld

    d = x.astype(np.float64)
    f0, t = pyworld.dio(d, rate, frame_period=5.0)
    f0 = pyworld.stonemask(d, f0, t, rate)
    sp = pyworld.cheaptrick(d, f0, t, rate)
    ap = pyworld.d4c(d, f0, t, rate)
    if rng.random() < 0.5:
        f0 = f0 * 2 ** rng.uniform(-0.42, 0.42)
        warp = rng.uniform(0.85, 1.18)
        bins = np.arange(sp.shape[1])
        src = np.clip(bins / warp, 0, sp.shape[1] - 1)
        sp = np.stack([np.interp(src, bins, frame) for frame in sp])
        ap = np.stack([np.interp(src, bins, frame) for frame in ap])
    return pyworld.synthesize(f0, sp, ap, rate, frame_period=5.0).astype(np.float32)[: len(x)]


def mlsa(x: np.ndarray, rate: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """MLSA copy-synthesis: mel-cepstra per frame, SWIPE pitch, pulse/noise excitation through
    the MLSA filter. Without `rng`, one fixed setting (speech's held-out attack); with it, the
    settings vary per clip (a training attack should not be one vocoder configuration): frame
    hop 2.5–10 ms, cepstral order, all-pass constant, Gaussian or M-sequence noise, Padé order."""
    import pysptk
    from pysptk.synthesis import MLSADF, Synthesizer

    # Speech settings at 16 kHz; music (44.1 kHz) keeps 5 ms frames, the all-pass constant that
    # approximates the mel scale at that rate, and a pitch range up to 1 kHz.
    if rate <= 16000:
        hop, frame, order, alpha, f0_max = 80, 512, 20, 0.42, 300
    else:
        hop, frame, order, alpha, f0_max = 220, 1024, 30, 0.55, 1000
    gaussian, pade = False, 5
    if rng is not None:
        hop = int(hop * rng.choice([0.5, 1.0, 2.0]))
        order = int(order * rng.uniform(0.7, 1.4))
        alpha = float(alpha + rng.uniform(-0.05, 0.05))
        gaussian, pade = bool(rng.random() < 0.5), int(rng.choice([4, 5]))
    # A small noise floor keeps the mel-cepstra finite in empty bands (narrowband sources), which
    # otherwise drive the MLSA filter unstable.
    d = x.astype(np.float64) + 3e-3 * np.random.default_rng(0).standard_normal(len(x))
    pad = np.pad(d, (0, frame))
    n = 1 + (len(d) - 1) // hop
    frames = np.stack([pad[i * hop : i * hop + frame] for i in range(n)]) * np.blackman(frame)
    mc = pysptk.mcep(frames, order=order, alpha=alpha, etype=1, eps=1e-6)
    b = pysptk.mc2b(mc, alpha)
    pitch = pysptk.swipe(d, fs=rate, hopsize=hop, min=60, max=f0_max, otype="pitch")
    m = min(len(pitch), len(b))
    excitation = pysptk.excite(pitch[:m].astype(np.float64), hop, gaussian=gaussian)
    y = Synthesizer(MLSADF(order=order, alpha=alpha, pd=pade), hop).synthesis(excitation, b[:m])
    return y.astype(np.float32)[: len(x)]
