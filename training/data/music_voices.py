"""What the vocal stage's judge sees in real music without a voice (issue 35): excerpts of
allowed real music tracks alone whose voice share passes the gate (lead instruments, whistles,
choirs and pads the separator takes for a voice), separated like the mixtures, as more bona fide
voices for the vocal head. Without them a head trained on speech-over-music alone calls those
"voices" synthetic (5 of 95 real tracks flagged by the voice on a first try).

Splits follow the music packages' (deepscreen_train.common.real_split). Outputs OUT/vocals/
<split>-music-<n>.flac (16 kHz mono) and OUT/music-alone.csv (the columns of mixtures.csv; label
real, attack bona-fide, family music-alone, voice_source the music package); resumable.

    python training/data/music_voices.py --real data/real --separator data/spleeter-2stems.safetensors \\
        --out data/vocal-mix --train 300 --dev 100
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import soundfile as sf

from deepscreen_train.common import read_rows, real_split

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "separator"))
import spleeter  # noqa: E402
from vocal_mixtures import FIELDS, VOICE_RATE, bed_excerpt, save_rows, spleeter_to_voice_rate  # noqa: E402

GATE_BINS = 256
GATE_SHARE = 0.0743  # src/screen/vocals.rs GATE_SHARE


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--separator", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train", type=int, default=300, help="passing excerpts to keep from the training packages")
    ap.add_argument("--dev", type=int, default=100)
    ap.add_argument("--seed", type=int, default=36)
    ap.add_argument("--max-tries", type=int, default=20, help="excerpts tried per one kept, at most")
    args = ap.parse_args()
    nets = spleeter.load(args.separator)
    csv_path = args.out / "music-alone.csv"
    rows = {r["id"]: r for r in read_rows(csv_path)} if csv_path.exists() else {}
    (args.out / "vocals").mkdir(parents=True, exist_ok=True)
    tracks: dict[str, list[Path]] = {"train": [], "dev": []}
    for r in read_rows(args.real / "real.csv"):
        if r["kind"] == "music":
            tracks[real_split("music", r["package"])].append(args.real / r["path"])
    for split, want in (("train", args.train), ("dev", args.dev)):
        rng = random.Random(f"{args.seed}-{split}")
        kept = sum(1 for r in rows.values() if r["split"] == split)
        tries = 0
        while kept < want and tries < want * args.max_tries:
            tries += 1
            track = rng.choice(tracks[split])
            bed = bed_excerpt(track, rng.uniform(8.0, 12.0), rng)
            if bed is None or spleeter.vocal_presence(nets, bed, bins=GATE_BINS)[0] < GATE_SHARE:
                continue
            pid = f"{split}-music-{kept:05d}"
            (vocals, _), _ = spleeter.separate(nets, bed)
            sf.write(args.out / "vocals" / f"{pid}.flac", spleeter_to_voice_rate(vocals.mean(axis=0)), VOICE_RATE)
            rows[pid] = {"id": pid, "label": "real", "attack": "bona-fide", "family": "music-alone",
                         "voice_source": track.parent.name, "bed": str(track.relative_to(args.real)),
                         "split": split, "vocal_db": ""}
            kept += 1
            if kept % 10 == 0:
                save_rows(csv_path, rows)
                print(f"{split}: {kept} kept of {tries} tried", flush=True)
        save_rows(csv_path, rows)
        print(f"{split}: {kept} kept of {tries} tried", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
