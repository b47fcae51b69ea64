"""Shared pieces of the data recipe: the source-wise splits, the generator table, audio I/O
through ffmpeg, and the CSV lists the steps hand to each other.

Splits follow ../shared/DATA.md: a package (real audio) or a voice (TTS) lies wholly in train or
wholly in dev, and some generators are kept out of training entirely ("unseen" attacks).
"""

from __future__ import annotations

import csv
import re
import subprocess
from pathlib import Path

import numpy as np

# Real audio: which sources are development data (everything else trains). Data v3 (issue 29)
# holds out packages with different channels, so dev says how unfamiliar real audio fares: for
# speech a studio game dub (fillets-ng-data-nl), a children's game (klettres-data), telephone
# prompts through real telephony codecs (asterisk-core-sounds-ru: its WAV, GSM and G.722
# variants are one source) and old low-band game voice acting (flight-of-the-amazon-queen:
# 11 kHz, 16 kbps MP3); for music two game soundtracks and music on hold through telephony
# codecs. The shipped models (data v2) held out fillets-ng-data-nl and klettres-data /
# planetblupi-music-ogg and supertux-data only.
DEV_REAL = {
    "speech": {"fillets-ng-data-nl", "klettres-data", "asterisk-core-sounds-ru", "flight-of-the-amazon-queen"},
    "music": {"planetblupi-music-ogg", "supertux-data", "asterisk-moh-opsound"},
}

# Fake generators: (name, family, seen-in-training). Unseen ones only produce dev data.
GENERATORS = {
    "speech": {
        "espeak-ng": ("tts", True),
        "flite": ("tts", True),
        "festival-diphone": ("tts", True),
        "world": ("vocoder", True),
        # Held out after a first model, as for music (dev EER 47 %: magnitude restored, phase
        # artefacts invisible to a power spectrogram).
        "griffin-lim-linear": ("vocoder", False),
        "griffin-lim-mel": ("vocoder", True),
        "piper-vits": ("tts", False),
        "mlsa": ("vocoder", False),
        # Neural vocoders / codecs trained here on the training speech packages (codec_ae.py);
        # the sub-pixel family is held out.
        "ae-transposed": ("neural-vocoder", True),
        "ae-nearest": ("neural-vocoder", True),
        "ae-istft": ("neural-vocoder", True),
        "ae-rvq": ("neural-codec", True),
        "ae-subpixel": ("neural-vocoder", False),
        # Data v3: GAN-trained vocoders (data/gan_vocoder.py), two instances per family; the
        # family is what a leave-one-family-out dev holds out.
        **{f"gan-{name}": (f"gan-{name.split('-')[0]}", True) for name in (
            "hifigan-16k", "hifigan-22k", "melgan-16k", "melgan-24k", "istft-16k", "istft-24k",
            "bigvgan-16k", "bigvgan-24k")},
        # GAN-trained neural codecs (encoder, residual VQ, transposed-conv decoder): a family of
        # their own, as the decoders of codec-based TTS.
        **{f"gan-{name}": ("gan-codec", True) for name in ("codec-16k", "codec-24k")},
    },
    "music": {
        # Held out after a first model: Griffin-Lim on a linear spectrogram restores the magnitude
        # a spectrogram detector sees (its artefacts are in the phase), so as a training attack it
        # was near-unlearnable (dev EER 37 %) and only blurred the rest.
        "griffin-lim-linear": ("vocoder", False),
        "griffin-lim-mel": ("vocoder", True),
        "ae-transposed": ("autoencoder", True),
        "ae-nearest": ("autoencoder", True),
        "ae-istft": ("autoencoder", True),
        "ae-rvq": ("neural-codec", True),
        # WORLD trains (DSP-vocoder resyntheses were a weak spot on unseen data: ~24 % EER). MLSA
        # was held out until 2026-12-06, when the independent evaluation put source-filter
        # resyntheses (LPC, MLSA) at 14-16 % EER for music v2: it now trains, its settings varied
        # per clip; a DSP vocoder unseen is measured by holding out the family (--hold-out-family
        # vocoder), and linear Griffin-Lim and the sub-pixel decoder stay out.
        "world": ("vocoder", True),
        "mlsa": ("vocoder", True),
        "ae-subpixel": ("autoencoder", False),
        **{f"gan-{name}": (f"gan-{name.split('-')[0]}", True) for name in (
            "hifigan-44k", "hifigan-24k", "melgan-32k", "melgan-44k", "istft-44k", "istft-32k",
            "bigvgan-44k", "bigvgan-24k")},
        # GAN-trained neural codecs at 24, 32 and 44.1 kHz (issue 29), apart from the autoencoder
        # ae-rvq, which learns by reconstruction alone.
        **{f"gan-{name}": ("gan-codec", True) for name in ("codec-24k", "codec-32k", "codec-44k")},
    },
}

# TTS voices, split by voice: (train voices, dev voices). espeak-ng's voices are listed at run
# time (every language it ships, see `espeak_voices`); these languages always go to dev.
ESPEAK_DEV_LANGUAGES = {"nl", "it", "es", "sv"}
FLITE_VOICES = (["kal", "awb", "rms"], ["kal16", "slt"])
FESTIVAL_VOICES = (["kal_diphone"], ["ked_diphone"])


def espeak_voices() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Every espeak-ng language voice as (voice, text language), split by language: every fifth
    (sorted) plus ESPEAK_DEV_LANGUAGES go to dev, the rest trains."""
    out = subprocess.run(["espeak-ng", "--voices"], capture_output=True, text=True, check=True).stdout
    voices = sorted({line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1})
    train, dev = [], []
    for i, v in enumerate(voices):
        lang = v.split("-")[0]
        (dev if i % 5 == 2 or lang in ESPEAK_DEV_LANGUAGES else train).append((v, lang))
    return train, dev


def espeak_variants() -> tuple[list[str], list[str]]:
    """espeak-ng voice variants (`+name`), split like the voices: every fifth goes to dev."""
    out = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = sorted({line.split()[4].split("/")[-1] for line in out.splitlines()[1:] if len(line.split()) > 4})
    return [v for i, v in enumerate(names) if i % 5 != 2], [v for i, v in enumerate(names) if i % 5 == 2]


MODEL_RATE = {"speech": 16000, "music": 44100}

# Music is cut into excerpts of this length (real and fake alike).
MUSIC_EXCERPT_S = 10.0


def is_seen(kind: str, attack: str, held_out: frozenset[str] = frozenset()) -> bool:
    """Whether an attack is used in training (bona fide rows count as seen). `held_out`: generator
    families kept out of this training run as well (a leave-one-family-out dev)."""
    if attack == "-":
        return True
    family, seen = GENERATORS[kind][attack]
    return seen and family not in held_out


# Data v3 ships the Asterisk recordings once per channel (`-wav`, `-gsm`, `-g722`): the same
# studio takes, so the three variants are one source and must fall on the same side.
CHANNEL_VARIANT = re.compile(r"-(wav|gsm|g722)$")


def source_family(package: str) -> str:
    """The source a package belongs to: its name without a channel-variant suffix."""
    return CHANNEL_VARIANT.sub("", package)


def real_split(kind: str, package: str) -> str:
    """'dev' or 'train' for a real package (or a fake's source package), by its source family."""
    return "dev" if source_family(package) in DEV_REAL[kind] else "train"



def decode(path: Path | str, rate: int, start: float | None = None, seconds: float | None = None) -> np.ndarray:
    """Any file ffmpeg reads → mono float32 at `rate` (channel average, like the engine)."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error"]
    if start is not None:
        cmd += ["-ss", f"{start:.3f}"]
    if seconds is not None:
        cmd += ["-t", f"{seconds:.3f}"]
    cmd += ["-i", str(path), "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4").copy()


def load_audio(path: Path | str, rate: int, start: float | None = None, seconds: float | None = None) -> np.ndarray:
    """Like `decode`, in-process (libsndfile + polyphase resampling): no process per clip.
    Falls back to ffmpeg for what libsndfile cannot read."""
    import soundfile as sf
    from math import gcd

    from scipy.signal import resample_poly

    try:
        with sf.SoundFile(str(path)) as f:
            sr = f.samplerate
            if start is not None:
                f.seek(int(start * sr))
            frames = -1 if seconds is None else int(seconds * sr)
            x = f.read(frames, dtype="float32", always_2d=True).mean(axis=1)
    except Exception:
        return decode(path, rate, start, seconds)
    if sr != rate:
        g = gcd(sr, rate)
        x = resample_poly(x, rate // g, sr // g).astype(np.float32)
    return x


def duration(path: Path | str) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        return float(out)
    except ValueError:
        return 0.0


def write_flac(path: Path, audio: np.ndarray, rate: int) -> None:
    """16-bit FLAC (both classes are stored the same way)."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole, then renamed: an interrupted run never leaves a partial file to resume from.
    tmp = path.with_name("." + path.name)
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), rate, subtype="PCM_16", format="FLAC")
    tmp.replace(path)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
