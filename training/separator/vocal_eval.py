"""Voices inside music, measured as a user runs it (issue 35): `deepscreen screen --model music`
(the vocal stage on) over `vocal_mixtures.py`'s mixtures of one split, each real-voice mixture
paired with a fake-voice one over the same music at the same level.

Prints, and writes as JSON with --out:
- pooled EER of the file `score` (what a ranking sees) over real- vs fake-voice mixtures, and of
  `vocal_score` alone, and of the music score alone (`--vocals off`'s score: the whole-mix view);
- at the file threshold: false alarms on the real-voice mixtures, fakes caught; detection at 1 %
  false alarms;
- per generator family and per attack: the gate's pass rate, EER against all real voices,
  caught at the threshold;
- per real speech package: false alarms at the threshold.
With --calibrate FA: the vocal threshold that flags FA of the real-voice mixtures (their
vocal scores; a mixture the gate let through without an active voice counts as 0), and the
same fitted leaving each real speech package out, with that package's false alarms and the
fakes caught at it (does the threshold transfer to unheard real voices?). With --music-alone (a
screen of real music without a voice by the same judge) the threshold is raised, if need be, to
flag at most --music-fa of those tracks, and that side is also fitted leaving each music
package out.

    python training/separator/vocal_eval.py --mix data/vocal-mix --split dev \\
        --deepscreen target/release/deepscreen --out models/vocals-dev.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from deepscreen_train import metrics
from deepscreen_train.calibration import just_above
from deepscreen_train.common import read_rows, source_family
from deepscreen_train.reports import read_report


def screen(deepscreen: Path, files: list[Path], out: Path, extra: list[str]) -> dict[str, dict]:
    """Rows by file name, screened once: an existing report is continued (`--resume` screens only
    the files it lacks, e.g. after more pairs were built), a complete one reused."""
    if not (out.exists() and sum(1 for _ in out.open()) == len(files)):
        lst = out.with_suffix(".list")
        lst.write_text("".join(f"{f}\n" for f in files))
        cmd = [str(deepscreen), "screen", "--files-from", str(lst), "--model", "music", "--no-progress",
               "-o", str(out), *extra]
        # Exit code 2 on --resume: the report was written with other settings; start it again.
        if not out.exists() or subprocess.run([*cmd, "--resume"], check=False).returncode == 2:
            subprocess.run([*cmd, "--force"], check=False)
    return {Path(p).stem: r for p, r in read_report(out).items()}


def rate(x) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def threshold_at(real_scores: np.ndarray, fa: float) -> float:
    """The lowest threshold (score >= threshold flags, in the engine's f32) that flags at most
    `fa` of `real_scores`."""
    v = np.sort(np.asarray(real_scores, dtype=np.float64))
    k = int(np.floor(fa * len(v)))
    return just_above(v[len(v) - 1 - k]) if k < len(v) else 0.0


def leave_one_out(groups: dict[str, np.ndarray], fa: float, floor: float = 0.0) -> dict:
    """For each group of real scores: the threshold (at least `floor`) flagging `fa` of the
    *other* groups' scores, and the share of the held-out group's it flags."""
    out = {}
    for held, own in sorted(groups.items()):
        others = np.concatenate([v for k, v in groups.items() if k != held])
        fitted = max(threshold_at(others, fa), floor)
        out[held] = {"n": len(own), "threshold": fitted, "false_alarms": rate(own >= fitted)}
    return out


def leave_one_package_out(real: list, fake: list, vocal, fa: float, floor: float = 0.0) -> dict:
    """Whether a vocal threshold transfers to real voices it was not fitted on: for each real
    speech package (its codec variants together), the threshold (at least `floor`) flagging `fa`
    of the *other* packages' real-voice mixtures, and at it the false alarms on the held-out
    package and the fakes caught (vocal_score alone). `real` and `fake` hold (pair, row, ...)
    tuples."""
    groups: dict[str, list] = defaultdict(list)
    for x in real:
        groups[source_family(x[0]["voice_source"])].append(vocal(x[1]))
    fakes = np.array([vocal(x[1]) for x in fake])
    out = leave_one_out({k: np.array(v) for k, v in groups.items()}, fa, floor)
    for held in out.values():
        held["caught"] = rate(fakes >= held["threshold"])
    return out


def music_alone_scores(path: Path, vocal) -> dict[str, np.ndarray]:
    """The vocal scores of a screen of real music without a voice, by package (the folder a
    track lies in; codec variants together)."""
    groups: dict[str, list] = defaultdict(list)
    for p, row in read_report(path, drop_errors=True).items():
        groups[source_family(Path(p).parent.name)].append(vocal(row))
    return {k: np.array(v) for k, v in groups.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mix", type=Path, required=True, help="vocal_mixtures.py's output")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--deepscreen", type=Path, required=True)
    ap.add_argument("--work", type=Path, help="where the reports go (default: MIX/eval-SPLIT)")
    ap.add_argument("--vocal-args", default="", help="extra screen options, e.g. '--vocal-model FILE'")
    ap.add_argument("--calibrate", type=float, help="print the vocal threshold at this false-alarm rate")
    ap.add_argument("--music-alone", type=Path, help="a screen of real music without a voice by the same judge "
                    "(--vocals on): the threshold must also flag at most --music-fa of its tracks")
    ap.add_argument("--music-fa", type=float, default=0.005,
                    help="the share of --music-alone tracks the vocal threshold may flag [0.005]")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    pairs = [r for r in read_rows(args.mix / "mixtures.csv") if r["split"] == args.split]
    files = [args.mix / "mix" / f"{r['id']}.flac" for r in pairs]
    work = args.work or args.mix / f"eval-{args.split}"
    work.mkdir(parents=True, exist_ok=True)
    tag = args.vocal_args.replace(" ", "_").replace("/", "_") or "default"
    rows = screen(args.deepscreen, files, work / f"vocals-{tag}.jsonl", args.vocal_args.split())
    music = screen(args.deepscreen, files, work / "vocals-off.jsonl", ["--vocals", "off"])
    scored = [(p, rows.get(p["id"]), music.get(p["id"])) for p in pairs]
    scored = [(p, r, m) for p, r, m in scored if r and m and r["score"] is not None and m["score"] is not None]
    real = [(p, r, m) for p, r, m in scored if p["label"] == "real"]
    fake = [(p, r, m) for p, r, m in scored if p["label"] == "fake"]
    threshold = scored[0][1]["threshold"]
    vocal = lambda r: r["vocal_score"] if r["vocal_score"] is not None else 0.0  # noqa: E731
    arr = lambda xs, key: np.array([key(x) for x in xs], dtype=np.float64)  # noqa: E731
    score = lambda x: x[1]["score"]  # noqa: E731
    report: dict = {"split": args.split, "pairs": len(pairs) // 2, "real": len(real), "fake": len(fake),
                    "threshold": threshold, "vocal_threshold": scored[0][1]["vocal_threshold"],
                    "vocal_args": args.vocal_args}
    b, s = arr(real, score), arr(fake, score)
    report["pooled"] = {
        "eer_score": metrics.eer(b, s)[0],
        "eer_vocal_score": metrics.eer(arr(real, lambda x: vocal(x[1])), arr(fake, lambda x: vocal(x[1])))[0],
        "eer_music_score": metrics.eer(arr(real, lambda x: x[2]["score"]), arr(fake, lambda x: x[2]["score"]))[0],
        "false_alarms": rate(np.array([x[1]["verdict"] == "synthetic" for x in real])),
        "caught": rate(np.array([x[1]["verdict"] == "synthetic" for x in fake])),
        "detection_at_1pct_fa": metrics.detection_at_fa(b, s, 0.01),
        "gate_passed_real": rate(np.array([x[1]["vocal_score"] is not None for x in real])),
        "gate_passed_fake": rate(np.array([x[1]["vocal_score"] is not None for x in fake])),
    }
    by_family: dict[str, list] = defaultdict(list)
    by_attack: dict[str, list] = defaultdict(list)
    for x in fake:
        by_family[x[0]["family"]].append(x)
        by_attack[x[0]["attack"]].append(x)
    for name, groups in (("family", by_family), ("attack", by_attack)):
        report[name] = {k: {"n": len(v), "gate_passed": rate(np.array([x[1]["vocal_score"] is not None for x in v])),
                            "eer": metrics.eer(b, arr(v, score))[0],
                            "caught": rate(np.array([x[1]["verdict"] == "synthetic" for x in v]))}
                        for k, v in sorted(groups.items())}
    by_package: dict[str, list] = defaultdict(list)
    for x in real:
        by_package[x[0]["voice_source"]].append(x)
    report["real_package_false_alarms"] = {
        k: {"n": len(v), "false_alarms": rate(np.array([x[1]["verdict"] == "synthetic" for x in v]))}
        for k, v in sorted(by_package.items())}
    if args.calibrate is not None:
        voices = arr(real, lambda x: vocal(x[1]))
        fitted = threshold_at(voices, args.calibrate)
        floor, every = 0.0, None
        if args.music_alone:
            # Most of a catalog is music without a voice: the threshold may not flag more than
            # --music-fa of it, whatever the voices allow.
            music_alone = music_alone_scores(args.music_alone, vocal)
            every = np.concatenate(list(music_alone.values()))
            floor = threshold_at(every, args.music_fa)
            report["music_alone"] = {"tracks": len(every), "threshold": floor,
                                     "leave_one_package_out": leave_one_out(music_alone, args.music_fa)}
        fitted = max(fitted, floor)
        fakes = arr(fake, lambda x: vocal(x[1]))
        report["calibrated_vocal_threshold"] = fitted
        report["at_calibrated"] = {"real_voice_false_alarms": rate(voices >= fitted), "caught": rate(fakes >= fitted)}
        if every is not None:
            report["at_calibrated"]["music_alone_false_alarms"] = rate(every >= fitted)
        report["leave_one_package_out"] = leave_one_package_out(real, fake, vocal, args.calibrate, floor)
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
