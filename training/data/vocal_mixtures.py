"""Voices inside music (issue 35, item 3): real and synthetic voices over the same real music,
separated by the engine's separator, for a head that judges the separated voice.

Each *pair* shares one bed — an excerpt of an allowed music track — and one vocal-to-music
level, and differs only in the voice laid over it:

- `real`: consecutive real speech clips of one speech package (pauses between);
- `fake`: clips of one fake generator (data/fake: TTS, DSP vocoders, our autoencoders and GAN
  vocoders; `make_fakes.py` built them), the same way.

The voice is mono in the middle of the stereo bed, at a level drawn from -8 to +4 dB against
the bed's loudness (0 dB: the music's loudness, the issue's trials). With --channel P, a share P
of the pairs pass both voices through one recording channel (deepscreen_train.channel: archival,
telephone, radio, noise, codecs...), the same for the real and the fake voice, so old and lo-fi
real voices are not what tells the classes apart (`channel` column). Then both mixtures go
through the Spleeter separator (`training/separator/spleeter.py`, the PyTorch reference the
engine matches to 4e-7), so a head trained on the vocal stems learns the separator's artefacts
on both classes alike.

Splits follow the detectors': a speech package, a fake generator's split and a music package
lie wholly in train or in dev (deepscreen_train.common), so dev pairs have unheard voices and
unheard music. The generator's family is kept for leave-one-family-out figures.

Outputs: OUT/mix/<id>.flac (44.1 kHz stereo, for `deepscreen screen`), OUT/vocals/<id>.flac
(the separated vocal stem, 16 kHz mono: the speech detector's input) and OUT/mixtures.csv (id,
label, attack, family, voice_source, bed, split, vocal_db), rewritten after every 20 pairs.
Resumable: a pair whose files and rows exist is not built again.

    python training/data/vocal_mixtures.py --real data/real --fake data/fake \\
        --separator data/spleeter-2stems.safetensors --out data/vocal-mix --train-pairs 1200 --dev-pairs 300
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from deepscreen_train import channel
from deepscreen_train.common import GENERATORS, decode, read_rows, real_split, write_rows
from deepscreen_train.mixing import mix, rms

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "separator"))
import spleeter  # noqa: E402

MIX_RATE = 44100
VOICE_RATE = 16000
FIELDS = ["id", "label", "attack", "family", "voice_source", "bed", "split", "vocal_db", "channel"]


def voice_track(clips: list[Path], seconds: float, rng: random.Random) -> np.ndarray | None:
    """Random clips of one source at 44.1 kHz with 0.2-0.8 s pauses, cut to `seconds`, starting
    after a short lead-in of music alone."""
    n = int(seconds * MIX_RATE)
    parts = [np.zeros(int(rng.uniform(0.3, 1.5) * MIX_RATE), np.float32)]
    total = len(parts[0])
    for _ in range(50):
        if total >= n:
            break
        x = decode(rng.choice(clips), MIX_RATE)
        if len(x) < MIX_RATE // 4 or np.abs(x).max() < 1e-3:
            continue
        parts += [x, np.zeros(int(rng.uniform(0.2, 0.8) * MIX_RATE), np.float32)]
        total += len(x) + len(parts[-1])
    if total < n // 2:
        return None
    y = np.concatenate(parts)[:n]
    return np.pad(y, (0, n - len(y)))


def bed_excerpt(track: Path, seconds: float, rng: random.Random) -> np.ndarray | None:
    """`seconds` of a music track at 44.1 kHz, stereo ([2, n]; a mono track on both channels)."""
    x = spleeter.decode(track)
    n = int(seconds * MIX_RATE)
    if x.shape[1] < n or rms(x) < 1e-3:
        return None
    start = rng.randrange(0, x.shape[1] - n + 1)
    return x[:, start : start + n]


def plan(args, rng: random.Random) -> list[dict]:
    """Every pair to build: (split, index) → bed track, fake attack and its clips, real source."""
    reals = read_rows(args.real / "real.csv")
    speech: dict[str, dict[str, list[Path]]] = {"train": {}, "dev": {}}
    music: dict[str, list[Path]] = {"train": [], "dev": []}
    for r in reals:
        split = real_split(r["kind"], r["package"])
        if r["kind"] == "speech":
            speech[split].setdefault(r["package"], []).append(args.real / r["path"])
        else:
            music[split].append(args.real / r["path"])
    fakes: dict[str, dict[str, list[Path]]] = {"train": {}, "dev": {}}
    for r in read_rows(args.fake / "fake-speech.csv"):
        fakes[r["split"]].setdefault(r["attack"], []).append(args.fake / r["path"])
    pairs = []
    for split, count in (("train", args.train_pairs), ("dev", args.dev_pairs)):
        if count == 0:
            continue  # e.g. dev pairs only, to measure a judge the heads never trained on
        attacks = sorted(fakes[split])
        packages = sorted(speech[split])
        if not (attacks and packages and music[split]):
            raise SystemExit(f"{split}: no fakes, real speech or music to mix (run make_fakes.py first)")
        for i in range(count):
            attack = attacks[i % len(attacks)]  # round robin: every generator alike
            package = rng.choice(packages)
            pairs.append({
                "split": split, "index": i, "bed": rng.choice(music[split]), "attack": attack,
                "fake_clips": fakes[split][attack], "package": package, "real_clips": speech[split][package],
                "seconds": rng.uniform(8.0, 12.0), "vocal_db": rng.uniform(-8.0, 4.0), "seed": rng.getrandbits(32),
            })
    return pairs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--fake", type=Path, required=True, help="make_fakes.py's output (fake-speech.csv)")
    ap.add_argument("--separator", type=Path, required=True, help="spleeter.py convert's model file")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train-pairs", type=int, default=1200)
    ap.add_argument("--dev-pairs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=35)
    ap.add_argument("--channel", type=float, default=0.0,
                    help="share of pairs whose two voices pass through one recording channel")
    args = ap.parse_args()
    nets = spleeter.load(args.separator)
    csv_path = args.out / "mixtures.csv"
    rows = {r["id"]: r for r in read_rows(csv_path)} if csv_path.exists() else {}
    for sub in ("mix", "vocals"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    built = 0
    # Dev pairs first: they are what a first look measures on. Each pair draws from its own
    # seed, so the order changes nothing in what is built.
    for pair in sorted(plan(args, random.Random(args.seed)), key=lambda p: p["split"] != "dev"):
        ids = [f"{pair['split']}-{pair['index']:05d}-{label}" for label in ("real", "fake")]
        if all(i in rows and (args.out / "vocals" / f"{i}.flac").exists() for i in ids):
            continue
        rng = random.Random(pair["seed"])
        bed = bed_excerpt(pair["bed"], pair["seconds"], rng)
        voices = [voice_track(pair[k], pair["seconds"], rng) for k in ("real_clips", "fake_clips")]
        if bed is None or any(v is None for v in voices):
            continue  # a track too short or silent, or too little voice: the pair is left out
        # Drawn from the pair's own seed (not the plan's), so --channel 0 builds what it did.
        crng = random.Random(pair["seed"] ^ 0xC4A77E1)
        steps = channel.random_chain(crng, "speech", at_least_one=True) if crng.random() < args.channel else []
        voices = [channel.apply(v, MIX_RATE, steps) for v in voices]
        for pid, label, voice in zip(ids, ("real", "fake"), voices):
            mixture = mix(bed, voice, pair["vocal_db"])
            (vocals, _), _ = spleeter.separate(nets, mixture)
            sf.write(args.out / "mix" / f"{pid}.flac", mixture.T, MIX_RATE)
            mono = spleeter_to_voice_rate(vocals.mean(axis=0))
            sf.write(args.out / "vocals" / f"{pid}.flac", mono, VOICE_RATE)
            attack = pair["attack"] if label == "fake" else "bona-fide"
            family = GENERATORS["speech"].get(attack, ("real",))[0] if label == "fake" else "real"
            source = pair["package"] if label == "real" else attack
            rows[pid] = {"id": pid, "label": label, "attack": attack, "family": family, "voice_source": source,
                         "bed": str(pair["bed"].relative_to(args.real)), "split": pair["split"],
                         "vocal_db": f"{pair['vocal_db']:.2f}", "channel": channel.describe(steps)}
        built += 1
        if built % 20 == 0:
            save_rows(csv_path, rows)
            print(f"{len(rows)} mixtures", flush=True)
    save_rows(csv_path, rows)
    print(f"{len(rows)} mixtures in {csv_path}", flush=True)
    return 0


def save_rows(path: Path, rows: dict[str, dict]) -> None:
    """The CSV rewritten whole, atomically (a crash leaves the previous one)."""
    tmp = path.with_suffix(".tmp")
    write_rows(tmp, sorted(rows.values(), key=lambda r: r["id"]), FIELDS)
    tmp.replace(path)


def spleeter_to_voice_rate(x: np.ndarray) -> np.ndarray:
    """44.1 kHz → 16 kHz (polyphase, as the engine's resampler does in spirit)."""
    from scipy.signal import resample_poly

    return resample_poly(x.astype(np.float64), 160, 441).astype(np.float32)


if __name__ == "__main__":
    raise SystemExit(main())
