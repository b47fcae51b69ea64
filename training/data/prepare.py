"""Turns real audio (fetch_real.py) and fakes (make_fakes.py) into the training and dev sets,
processing BOTH classes identically so that channel, loudness and silence are not cues
(../shared/DATA.md, "Shortcuts"):

1. decode at the model's rate (mono); music: a 10 s excerpt;
2. trim leading/trailing silence (both classes), then a low noise floor (both);
3. bandwidth: clips are measured (narrowband = nothing above 5 kHz) and wideband clips of each
   class are band-limited by a resampling round trip (8 or 11.025 kHz) just often enough that
   both classes end up with the same narrowband share (music: 22.05/32 kHz round trips, same
   probability for both);
4. loudness: RMS to a random level in [-32, -16] dBFS, peak ≤ 0.99;
5. training clips: the channel chain of deepscreen_train/channel.py (band-passes, resampling round trips,
   compression, reverb, noise, RawBoost-style distortions, soft clipping, 8-bit / µ-law / A-law
   quantisation), then a codec round trip for 40 % of them (MP3, AAC, Opus, Vorbis at 8–192
   kbit/s; speech also GSM, µ-law): the same distribution for both classes;
6. stored as 16-bit FLAC at the model rate.

Dev data is written twice: clean, and through the channel chain (at least one step, a codec for
half the clips), and the clean bona fide clips are also re-encoded to MP3 and Ogg (a
container/codec check). Lists (CSV: path,label,attack,source,band,seen,codec,chain; readable by
`deepscreen eval`):

    OUT/train.csv   OUT/dev.csv   OUT/dev-channel.csv   OUT/dev-real-reencoded.csv

    python training/data/prepare.py --kind speech --real data/real --fake data/fake --out data/speech
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import subprocess
import sys
from pathlib import Path

import numpy as np

from deepscreen_train import channel
from deepscreen_train.common import GENERATORS, MODEL_RATE, MUSIC_EXCERPT_S, duration, load_audio, read_rows, real_split, write_flac, write_rows

# Data v3 adds the archival codecs: old low-bitrate MP3 (8–24 kbps, mono, low rates), GSM for
# music too, IMA ADPCM in WAV. Speech adds the telephone codecs Speex and G.726 (2026-12-07:
# through them, real old low-band speech was flagged up to 8 % / 3 % of the time; models/speech.md,
# "telephone codecs it never trained on"). G.723.1 stays out, to measure an unseen codec.
SPEECH_CODECS = ["mp3", "aac", "opus", "vorbis", "gsm", "mulaw", "mp3-old", "adpcm", "speex", "g726"]
MUSIC_CODECS = ["mp3", "aac", "opus", "vorbis", "mp3-old", "gsm", "adpcm"]


def codec_args(codec: str, rng: random.Random) -> tuple[list[str], str, int | None]:
    """ffmpeg encoder arguments, container, and the rate the codec forces (if any)."""
    if codec == "mp3":
        return ["-c:a", "libmp3lame", "-b:a", f"{rng.choice([16, 24, 32, 64, 96, 128, 192])}k"], "mp3", None
    if codec == "aac":
        return ["-c:a", "aac", "-b:a", f"{rng.choice([24, 32, 48, 64, 96, 128])}k"], "adts", None
    if codec == "opus":
        return ["-c:a", "libopus", "-b:a", f"{rng.choice([8, 12, 16, 24, 32, 64, 96])}k"], "ogg", 48000
    if codec == "vorbis":
        return ["-c:a", "libvorbis", "-q:a", str(rng.choice([1, 3, 5]))], "ogg", None
    if codec == "gsm":
        return ["-c:a", "libgsm"], "gsm", 8000
    if codec == "mulaw":
        return ["-c:a", "pcm_mulaw"], "wav", 8000
    if codec == "mp3-old":
        rate = rng.choice([8000, 11025, 16000, 22050])
        return ["-c:a", "libmp3lame", "-b:a", f"{rng.choice([8, 16, 24])}k"], "mp3", rate
    if codec == "adpcm":
        return ["-c:a", "adpcm_ima_wav"], "wav", rng.choice([11025, 22050])
    if codec == "speex":
        rate = rng.choice([8000, 16000])
        return ["-c:a", "libspeex", "-b:a", f"{rng.choice([8, 11, 15])}k"], "ogg", rate
    if codec == "g726":
        return ["-c:a", "g726", "-b:a", f"{rng.choice([16, 24, 32])}k"], "wav", 8000
    raise ValueError(codec)


def ffmpeg_filter(audio: np.ndarray, rate: int, out_args: list[str], fmt: str, through: int | None) -> bytes:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", "-"]
    if through:
        cmd += ["-ar", str(through)]
    cmd += out_args + ["-f", fmt, "-"]
    return subprocess.run(cmd, input=audio.astype("<f4").tobytes(), capture_output=True, check=True).stdout


def codec_round_trip(audio: np.ndarray, rate: int, codec: tuple[list[str], str, int | None]) -> np.ndarray:
    """Encode and decode through ffmpeg; `codec` is what `codec_args` drew."""
    args, fmt, through = codec
    encoded = ffmpeg_filter(audio, rate, args, fmt, through)
    decoded = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", "-", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
        input=encoded, capture_output=True, check=True,
    ).stdout
    y = np.frombuffer(decoded, dtype="<f4").copy()
    return np.pad(y, (0, max(0, len(audio) - len(y))))[: len(audio)]


def band_limit(audio: np.ndarray, rate: int, through: int) -> np.ndarray:
    """Resampling round trip through a lower rate."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, through)
    y = resample_poly(resample_poly(audio, through // g, rate // g), rate // g, through // g).astype(np.float32)
    return np.pad(y, (0, max(0, len(audio) - len(y))))[: len(audio)]


def trim(audio: np.ndarray, rate: int) -> np.ndarray:
    """Drop leading/trailing parts quieter than 40 dB below the peak (20 ms frames)."""
    hop = rate // 50
    n = len(audio) // hop
    if n < 3:
        return audio
    rms = np.sqrt(np.mean(audio[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(rms > rms.max() * 10 ** (-40 / 20))[0]
    return audio[max(0, loud[0] - 1) * hop : min(n, loud[-1] + 2) * hop]


def is_narrowband(audio: np.ndarray, rate: int) -> bool:
    if rate <= 11025:
        return True
    spec = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)
    return spec[freqs > 5000].sum() < 1e-5 * spec.sum()


def load(item: dict) -> np.ndarray:
    rate = MODEL_RATE[item["kind"]]
    return load_audio(item["input"], rate, item.get("start"), item.get("seconds"))


def measure(item: dict) -> dict | None:
    try:
        audio = trim(load(item), MODEL_RATE[item["kind"]])
    except Exception as e:
        print(f"skip {item['input']}: {e}", file=sys.stderr)
        return None
    if len(audio) < MODEL_RATE[item["kind"]] // 2 or np.abs(audio).max() < 1e-3:
        return None
    item["native_narrow"] = bool(item["kind"] == "speech" and is_narrowband(audio, MODEL_RATE[item["kind"]]))
    return item


def process(item: dict) -> list[dict]:
    """Writes the training version, or (dev) the clean, channel and re-encoded real versions.

    Every random choice for the item is drawn first (from its own seed), so a rerun knows the
    rows without touching audio and skips items whose files are all there (resume)."""
    rate = MODEL_RATE[item["kind"]]
    rng = random.Random(item["seed"])
    codecs = SPEECH_CODECS if item["kind"] == "speech" else MUSIC_CODECS
    floor_db = rng.uniform(-80, -60)
    target_db = rng.uniform(-32, -16)

    def draw_channel(at_least_one: bool, codec_share: float) -> tuple[list, str | None, tuple | None]:
        """The channel chain (deepscreen_train/channel.py), then maybe a codec: the same draw for both classes."""
        steps = channel.random_chain(rng, item["kind"], at_least_one)
        codec = rng.choice(codecs) if rng.random() < codec_share else None
        return steps, codec, codec_args(codec, rng) if codec else None

    base = dict(label=item["label"], attack=item["attack"], source=item["source"], seen=item["seen"],
                band="narrow" if item["native_narrow"] or item["limit_to"] in (8000, 11025) else "wide")
    out: Path = item["out"]
    name = item["name"]
    # (list, relative path, what to write: "clean", a channel draw, or a re-encoding format)
    outputs: list[tuple[str, str, object]] = []
    if item["split"] == "train":
        outputs.append(("train", f"train/{name}.flac", draw_channel(False, 0.4)))
    else:
        outputs.append(("dev", f"dev/{name}.flac", "clean"))
        outputs.append(("dev-channel", f"dev-channel/{name}.flac", draw_channel(True, 0.5)))
        if item["label"] == "bonafide":
            fmt = rng.choice(["mp3", "ogg"])
            outputs.append(("dev-real-reencoded", f"dev-real-reencoded/{name}.{fmt}", fmt))
    rows = []
    for lst, path, what in outputs:
        if isinstance(what, tuple):
            steps, codec, _ = what
            rows.append(dict(base, list=lst, path=path, codec=codec or "none", chain=channel.describe(steps)))
        else:
            rows.append(dict(base, list=lst, path=path, codec="none" if what == "clean" else what, chain="none"))
    if all((out / path).exists() for _, path, _ in outputs):
        return rows
    try:
        audio = trim(load(item), rate)
        if item["limit_to"]:
            audio = band_limit(audio, rate, item["limit_to"])
        nrng = np.random.default_rng(item["seed"])
        audio = audio + nrng.standard_normal(len(audio)).astype(np.float32) * 10 ** (floor_db / 20)

        def level(x: np.ndarray) -> np.ndarray:
            x = x * 10 ** (target_db / 20) / (np.sqrt(np.mean(x**2)) + 1e-9)
            return x / max(1.0, np.abs(x).max() / 0.99)

        audio = level(audio)
        for _, path, what in outputs:
            target = out / path
            if isinstance(what, tuple):
                steps, _, codec = what
                y = level(channel.apply(audio, rate, steps))
                write_flac(target, codec_round_trip(y, rate, codec) if codec else y, rate)
            elif what == "clean":
                write_flac(target, audio, rate)
            else:
                args = ["-c:a", "libmp3lame", "-b:a", "128k"] if what == "mp3" else ["-c:a", "libvorbis", "-q:a", "4"]
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name("." + target.name)
                tmp.write_bytes(ffmpeg_filter(audio, rate, args, what, None))
                tmp.replace(target)
        return rows
    except Exception as e:
        print(f"skip {item['input']}: {e}", file=sys.stderr)
        return []


def plan(args, rng: random.Random) -> list[dict]:
    kind = args.kind
    fakes = read_rows(args.fake / f"fake-{kind}.csv")
    if args.attacks:
        fakes = [f for f in fakes if f["attack"] in args.attacks]
    # Fakes made for training from a source that is now dev (planned before the split knew the
    # Asterisk channel variants are one source) would teach dev's voices as fake: left out.
    kept = [f for f in fakes if not (f["split"] == "train" and real_split(kind, f["source"]) == "dev")]
    if len(kept) < len(fakes):
        print(f"{len(fakes) - len(kept)} training fakes made from dev sources left out", file=sys.stderr)
    fakes = kept
    items = []
    for f in fakes:
        seen = GENERATORS[kind][f["attack"]][1]
        items.append(dict(kind=kind, label="spoof", attack=f["attack"], source=f["source"], split=f["split"],
                          seen="seen" if seen else "unseen", input=str(args.fake / f["path"])))
    reals = [r for r in read_rows(args.real / "real.csv") if r["kind"] == kind]
    rng.shuffle(reals)
    for split in ("train", "dev"):
        want = sum(1 for i in items if i["split"] == split) * args.real_ratio
        pool = [r for r in reals if real_split(kind, r["source"]) == split]
        if kind == "speech":
            chosen = [(r, None) for r in pool[: int(want)]]
        else:  # 10 s excerpts spread over the tracks
            durs = [(r, duration(args.real / r["path"])) for r in pool]
            durs = [(r, d) for r, d in durs if d >= MUSIC_EXCERPT_S + 2]
            chosen = []
            for i in range(int(want)):
                r, d = durs[i % len(durs)]
                chosen.append((r, rng.uniform(1.0, d - MUSIC_EXCERPT_S - 1)))
        for r, start in chosen:
            item = dict(kind=kind, label="bonafide", attack="-", source=r["source"], split=split, seen="-",
                        input=str(args.real / r["path"]))
            if start is not None:
                item.update(start=start, seconds=MUSIC_EXCERPT_S)
            items.append(item)
    for n, item in enumerate(items):
        item.update(seed=rng.randrange(1 << 30), name=f"{n:06d}", out=args.out)
    return items


def check_plan(items: list[dict], out: Path) -> None:
    """Outputs are named by position in the plan, and a rerun keeps existing files: that is only
    right while the plan is the same. The plan's identity (name → input, excerpt, label, attack)
    is recorded on the first run; a rerun with another plan (other fakes, ratio or seed) stops
    instead of silently reusing files under names that now mean other clips."""
    ident = {i["name"]: [i["input"], i.get("start"), i["label"], i["attack"], i["seed"]] for i in items}
    path = out / "plan.json"
    if path.exists():
        before = json.loads(path.read_text())
        changed = [n for n in ident if n in before and before[n] != ident[n]]
        if changed:
            raise SystemExit(f"{out} was prepared from another plan ({len(changed)} clips differ, e.g. {changed[0]}): "
                             "prepare into a new --out (or delete it)")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ident))


def assign_band_limits(items: list[dict], kind: str, rng: random.Random) -> None:
    """Same narrowband share for both classes in each split (DATA.md: bandwidth shortcut)."""
    if kind == "music":
        for it in items:
            it["limit_to"] = rng.choice([22050, 32000]) if rng.random() < 0.3 else None
        return
    for split in ("train", "dev"):
        groups = {lab: [i for i in items if i["split"] == split and i["label"] == lab] for lab in ("bonafide", "spoof")}
        share = {lab: sum(i["native_narrow"] for i in g) / max(1, len(g)) for lab, g in groups.items()}
        target = max(0.4, *share.values())
        for lab, g in groups.items():
            p = (target - share[lab]) / max(1e-9, 1 - share[lab])
            for it in g:
                it["limit_to"] = rng.choice([8000, 11025]) if not it["native_narrow"] and rng.random() < p else None
        print(f"{split}: native narrowband share {share}, target {target:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["speech", "music"], required=True)
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--fake", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--real-ratio", type=float, default=1.0, help="bona fide clips per fake clip")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--attacks", nargs="*", help="only these fake generators (e.g. an addition, with --real-ratio 0 "
                                                 "and its own --out)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    items = plan(args, rng)
    check_plan(items, args.out)
    # Measurements are cached (a rerun resumes without decoding every clip again).
    cache_path = args.out / "measured.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    key = lambda i: f"{i['input']}@{i.get('start')}"  # noqa: E731
    with mp.Pool(args.jobs) as pool:
        todo = [i for i in items if key(i) not in cache]
        for i in todo:
            cache[key(i)] = None
        for m in pool.map(measure, todo, chunksize=16):
            if m:
                cache[key(m)] = m["native_narrow"]
        args.out.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache))
        items = [dict(i, native_narrow=cache[key(i)]) for i in items if cache[key(i)] is not None]
        assign_band_limits(items, args.kind, rng)
        rows = [r for rs in pool.map(process, items, chunksize=8) for r in rs]
    fields = ["path", "label", "attack", "source", "band", "seen", "codec", "chain"]
    for name in ("train", "dev", "dev-channel", "dev-real-reencoded"):
        chosen = [r for r in rows if r["list"] == name]
        if name == "dev-real-reencoded":  # the re-encoded reals against the clean dev fakes
            chosen += [r for r in rows if r["list"] == "dev" and r["label"] == "spoof"]
        write_rows(args.out / f"{name}.csv", chosen, fields)
        counts: dict[str, int] = {}
        for r in chosen:
            counts[r["attack"]] = counts.get(r["attack"], 0) + 1
        print(f"{name}: {len(chosen)} clips {dict(sorted(counts.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
