#!/usr/bin/env python3
"""Fit a model's segment rule (partial fakes; issue 29, item 6) and measure it.

A file score averaged over windows hides a fake stretch inside real audio. The engine's
segment rule (src/screen/segment_run.rs) flags a file whose strongest run of `windows`
consecutive windows all score at or above `threshold`, whatever its file score says. This
script picks both on trials of long real recordings with and without a spliced-in fake
(`training/data/partial_trials.py`), from the engine's own per-window scores:

    deepscreen screen --model speech --segments --segment-threshold off \
        --files-from <(sed 1d data/partial/trials.csv | cut -d, -f1 | sed 's|^|data/partial/|') \
        -o data/partial/speech.jsonl
    python training/segment_rule.py --model models/speech.safetensors \
        --trials data/partial/trials.csv --report data/partial/speech.jsonl \
        [--real-report REPORT.jsonl ...] [--check-report REPORT.jsonl ...] [--write]

For each run length, the threshold is the lowest that flags, in every real package, at most
--added-fa of its files beyond those its file score flags (the trials' real files and every
--real-report, reports of other real audio the model never trained on; a package is a parent
folder), and never below the model's own threshold. The length that then catches the most partial fakes wins. Printed per
real package (false alarms added) and per fake generator (caught by the file score, by the
rule, by either; and whether the run found lies on the fake stretch). --write stores the rule,
with these figures in its provenance, in the model file (a fused model's config; its threshold,
members and cascade are kept).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from deepscreen_train import reports
from deepscreen_train.segment_rule import fit, flags, strongest_run
from fuse import config_of, write_fused


def read_report(path: Path) -> dict[str, dict]:
    """The rows a segment rule can be fitted on: scored, with their windows."""
    return reports.read_report(path, drop_errors=True, need_score=True, need_segments=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="the model file the reports were screened with")
    ap.add_argument("--trials", type=Path, required=True, help="partial_trials.py's trials.csv")
    ap.add_argument("--report", type=Path, required=True,
                    help="`screen --segments --segment-threshold off` report of the trials")
    ap.add_argument("--real-report", type=Path, nargs="*", default=[],
                    help="such reports of other real audio never trained on (package = parent folder)")
    ap.add_argument("--check-report", type=Path, nargs="*", default=[],
                    help="reports of real audio measured at the chosen rule but not fitted on (e.g. packages "
                         "the model trained on)")
    ap.add_argument("--windows", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--added-fa", type=float, default=0.005,
                    help="share of each real package's files the rule may flag beyond the file score's")
    ap.add_argument("--write", action="store_true", help="store the chosen rule in --model")
    args = ap.parse_args()

    config = config_of(args.model)
    threshold = config["threshold"]
    report = read_report(args.report)
    base = args.trials.parent
    files = []  # (label, package, attack, fake span, row)
    for t in csv.DictReader(args.trials.open()):
        row = report.get(str(base / t["path"])) or report.get(t["path"])
        if row is None:
            continue
        span = (float(t["fake_start_s"]), float(t["fake_end_s"])) if t["label"] == "partial" else None
        files.append((t["label"], t["package"], t["attack"], span, row))
    for extra in args.real_report:
        for path, row in read_report(extra).items():
            files.append(("real", Path(path).parent.name, "", None, row))
    real = [f for f in files if f[0] == "real"]
    partial = [f for f in files if f[0] == "partial"]
    print(f"{len(real)} real files ({len({f[1] for f in real})} packages), {len(partial)} partial fakes; "
          f"file threshold {threshold:.4f}")

    def scores(row):
        return [s["score"] for s in row["segments"]]

    by_package = defaultdict(list)
    for f in real:
        by_package[f[1]].append((f[4]["score"], scores(f[4])))
    results = fit(by_package, [(f[4]["score"], scores(f[4])) for f in partial], threshold, args.windows,
                  args.added_fa)
    for k_, t_, caught in sorted(results):
        print(f"windows {k_}: threshold {t_:.4f}: {caught} of {len(partial)} partial fakes flagged")
    if not results:
        raise SystemExit("no run length leaves room under --added-fa")
    k, t, _ = results[0]
    print(f"\nchosen: {k} windows at {t:.4f}")
    figures = measure(real, partial, k, t, threshold, scores)
    if args.check_report:
        check = [("real", Path(path).parent.name, "", None, row)
                 for extra in args.check_report for path, row in read_report(extra).items()]
        print("\nnot fitted on:")
        figures["checked_false_alarms"] = measure(check, [], k, t, threshold, scores)["false_alarms"]
    if args.write:
        config["segment_rule"] = {
            "windows": k,
            "threshold": t,
            "provenance": {
                "made_by": "training/segment_rule.py",
                "rule": f"lowest threshold adding at most {args.added_fa:.1%} false alarms in any real "
                        "package, over the run lengths "
                        + ", ".join(map(str, args.windows)) + "; the length catching most partial fakes",
                "trials": str(args.trials),
                # The pooled figures and the worst package (per package: the model card).
                "false_alarms_pooled": figures["false_alarms"]["pooled"],
                "false_alarms_added_in": sorted(
                    p for p, v in figures["false_alarms"].items()
                    if p != "pooled" and v["with_rule"] > v["file_score"]),
                "partial_fakes_pooled": figures["detection"]["pooled"],
            },
        }
        write_fused(args.model, config)
        print(f"{args.model}: segment rule {k} windows at {t:.4f} written")


def flagged(row: dict, k: int, t: float, threshold: float) -> bool:
    return flags(row["score"], [s["score"] for s in row["segments"]], threshold, k, t)


def measure(real, partial, k, t, threshold, scores) -> dict:
    """False alarms per real package and detection per generator, printed and returned."""
    fa = defaultdict(lambda: [0, 0, 0])  # package: files, flagged by file score, by either
    for _, package, _, _, row in real:
        fa[package][0] += 1
        fa[package][1] += row["score"] >= threshold
        fa[package][2] += flagged(row, k, t, threshold)
    print("\nreal package | files | false alarms: file score | with the rule")
    out = {"false_alarms": {}, "detection": {}}
    for p, (n, a, b) in sorted(fa.items()):
        print(f"{p} | {n} | {a / n:.1%} | {b / n:.1%}")
        out["false_alarms"][p] = {"files": n, "file_score": round(a / n, 4), "with_rule": round(b / n, 4)}
    total = [sum(v[i] for v in fa.values()) for i in range(3)]
    print(f"pooled | {total[0]} | {total[1] / total[0]:.1%} | {total[2] / total[0]:.1%}")
    out["false_alarms"]["pooled"] = {"files": total[0], "file_score": round(total[1] / total[0], 4),
                                     "with_rule": round(total[2] / total[0], 4)}
    if not partial:
        return out
    det = defaultdict(lambda: [0, 0, 0, 0, 0])  # attack: files, file score, rule, either, run on the fake
    for _, _, attack, span, row in partial:
        run = strongest_run(scores(row), k)
        by_rule = run is not None and run[0] >= t
        segs = row["segments"]
        on_fake = by_rule and segs[run[1]]["start_s"] < span[1] and segs[run[1] + k - 1]["end_s"] > span[0]
        d = det[attack]
        d[0] += 1
        d[1] += row["score"] >= threshold
        d[2] += by_rule
        d[3] += row["score"] >= threshold or by_rule
        d[4] += on_fake
    print("\ngenerator | partial fakes | caught: file score | rule | either | rule's run on the fake")
    for a, (n, f, r, e, o) in sorted(det.items()) + [("pooled", [sum(v[i] for v in det.values()) for i in range(5)])]:
        print(f"{a} | {n} | {f / n:.1%} | {r / n:.1%} | {e / n:.1%} | {o} of {r}")
        out["detection"][a] = {"files": n, "file_score": round(f / n, 4), "rule": round(r / n, 4),
                               "either": round(e / n, 4), "run_on_fake": o}
    return out


if __name__ == "__main__":
    main()
