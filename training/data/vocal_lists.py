"""The vocal head's lists (issue 35, item 3): the separated voices of `vocal_mixtures.py`'s pairs
(and of `music_voices.py`'s real music alone, as bona fide) as `train.py` reads a prepared data directory — OUT/train.csv, dev.csv and an empty
dev-channel.csv (path relative to OUT, label bonafide/spoof, attack, source, family, split).

Each real voice's `source` is its speech package and each fake's its generator, so
`train.py --balance-sources` draws bona fide evenly over packages, and dev holds speech packages,
music packages and generator clips that train never saw (vocal_mixtures.py's splits).

    python training/data/vocal_lists.py --mix data/vocal-mix
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deepscreen_train.common import read_rows, real_split, write_rows

FIELDS = ["path", "label", "attack", "source", "family", "split", "vocal_db", "bed"]


def leaks_dev_source(row: dict) -> bool:
    """Whether a pair's voice or bed comes from a dev source. Pairs planned before the split knew
    the Asterisk channel variants are one source can, and must not train."""
    voice_kind = "music" if row["family"] == "music-alone" else "speech"
    bed_package = row["bed"].split("/")[1]
    return real_split(voice_kind, row["voice_source"]) == "dev" or real_split("music", bed_package) == "dev"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mix", type=Path, required=True, help="vocal_mixtures.py's output directory")
    args = ap.parse_args()
    lists: dict[str, list[dict]] = {"train": [], "dev": [], "dev-channel": []}
    rows = read_rows(args.mix / "mixtures.csv")
    # Real music alone that passed the gate (music_voices.py), separated: bona fide too.
    if (args.mix / "music-alone.csv").exists():
        rows += read_rows(args.mix / "music-alone.csv")
    left_out = 0
    for r in rows:
        voice = args.mix / "vocals" / f"{r['id']}.flac"
        if not voice.exists():
            continue
        if r["split"] == "train" and leaks_dev_source(r):
            left_out += 1
            continue
        real = r["label"] == "real"
        lists[r["split"]].append({
            "path": f"vocals/{r['id']}.flac", "label": "bonafide" if real else "spoof",
            "attack": "-" if real else r["attack"], "source": r["voice_source"], "family": r["family"],
            "split": r["split"], "vocal_db": r["vocal_db"], "bed": r["bed"],
        })
    if left_out:
        print(f"{left_out} training pairs with a dev voice or bed left out")
    for name, rows in lists.items():
        write_rows(args.mix / f"{name}.csv", rows, FIELDS)
        print(f"{args.mix / (name + '.csv')}: {sum(r['label'] == 'bonafide' for r in rows)} bona fide, "
              f"{sum(r['label'] == 'spoof' for r in rows)} spoof")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
