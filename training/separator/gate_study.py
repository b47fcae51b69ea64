"""The vocal-presence gate (issue 35, item 4): how well the voice U-Net's energy share on one
segment (`spleeter.vocal_presence`, the engine's `Separator::vocal_presence`) tells music with
a voice from music without one, and at what threshold.

Excerpts of 11.5 s (one 512-frame segment) of allowed real music tracks, each alone and with
real speech laid over it (data/vocal_mixtures.py's `voice_track` and `mix`) at several voice
levels. Prints the share's distribution on music alone per package, the threshold that lets
through the asked share of music-alone excerpts, and the voiced excerpts caught at it per level.
Most tracks of these game soundtracks are instrumental; a package whose music alone scores high
may hold singing.

    python training/separator/gate_study.py --real data/real --model data/spleeter-2stems.safetensors \\
        --excerpts 150 --out models/separator-gate.txt
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import spleeter  # noqa: E402
from vocal_mixtures import bed_excerpt, voice_track  # noqa: E402

from deepscreen_train.common import read_rows  # noqa: E402
from deepscreen_train.mixing import mix  # noqa: E402

SECONDS = 11.5  # 496 frames: one segment
LEVELS = (-12.0, -8.0, -4.0, 0.0, 4.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, required=True)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--excerpts", type=int, default=150)
    ap.add_argument("--pass-rate", type=float, default=0.10,
                    help="share of music-alone excerpts the threshold lets through (they are separated for nothing)")
    ap.add_argument("--seed", type=int, default=35)
    ap.add_argument("--bins", type=int, default=spleeter.BINS,
                    help="the gate's lowest bins (multiple of 64; fewer cost proportionally less)")
    ap.add_argument("--out", type=Path, help="also write the report here")
    args = ap.parse_args()
    nets = spleeter.load(args.model)
    rows = read_rows(args.real / "real.csv")
    tracks = [args.real / r["path"] for r in rows if r["kind"] == "music"]
    speech: dict[str, list[Path]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "speech":
            speech[r["package"]].append(args.real / r["path"])
    rng = random.Random(args.seed)
    alone: list[tuple[str, float]] = []
    voiced: dict[float, list[float]] = defaultdict(list)
    while len(alone) < args.excerpts:
        track = rng.choice(tracks)
        bed = bed_excerpt(track, SECONDS, rng)
        voice = voice_track(speech[rng.choice(sorted(speech))], SECONDS, rng)
        if bed is None or voice is None:
            continue
        package = track.parent.name
        alone.append((package, spleeter.vocal_presence(nets, bed, bins=args.bins)[0]))
        for db in LEVELS:
            voiced[db].append(spleeter.vocal_presence(nets, mix(bed, voice, db), bins=args.bins)[0])
        if len(alone) % 25 == 0:
            print(f"{len(alone)} excerpts", flush=True)
    shares = np.array([s for _, s in alone])
    threshold = float(np.quantile(shares, 1 - args.pass_rate))
    lines = [f"vocal-presence gate: {len(alone)} excerpts of {SECONDS} s of real music (seed {args.seed}), "
             f"the voice U-Net's energy share on one segment's lowest {args.bins} bins",
             f"music alone: median {np.median(shares):.4f}, 90th percentile {np.quantile(shares, 0.9):.4f}, "
             f"max {shares.max():.4f}",
             f"threshold letting {args.pass_rate:.0%} of music alone through: {threshold:.4f}",
             "voiced (real speech over the same excerpts), caught at that threshold:"]
    for db in LEVELS:
        v = np.array(voiced[db])
        lines.append(f"  voice at {db:+.0f} dB: median share {np.median(v):.4f}, caught {np.mean(v >= threshold):.1%}")
    lines.append("music alone per package (excerpts, median share, passing the gate):")
    by_package: dict[str, list[float]] = defaultdict(list)
    for package, s in alone:
        by_package[package].append(s)
    for package, s in sorted(by_package.items()):
        s = np.array(s)
        lines.append(f"  {package:32} {len(s):3}  {np.median(s):.4f}  {np.mean(s >= threshold):.0%}")
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
