"""Two models side by side on the same files: `deepscreen screen` reports of each, grouped.

A retrained default is shipped only if it is no worse than the one it replaces where the product
fails: real recordings it has never heard (false alarms per package, at each model's own
threshold and segment rule, as a user gets them) and generators it has never seen. This reads the
JSONL reports `deepscreen screen --files-from LIST -o REPORT` wrote for each model over the same
lists and prints one table per group, the models in columns.

    python -m deepscreen_train.compare --model v2 v3 \
        --real data/ab/real.v2.jsonl data/ab/real.v3.jsonl \
        --fake data/ab/fake.v2.jsonl data/ab/fake.v3.jsonl --held-out-real asterisk-core-sounds-ru ...

A row's group is taken from its path: real files group by their package directory (the one
below `speech/` or `music/`, or the part of the file name before `--`), fakes by their generator
directory (the one above `dev/`). Error rows are counted apart, never scored; a `no-signal` row
(silence: no score) counts as not flagged / not caught and is left out of the EERs.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from .metrics import detection_at_fa, eer
from .reports import read_report


def group_of(path: str, fake: bool) -> str:
    parts = Path(path).parts
    if fake:
        return parts[parts.index("dev") - 1] if "dev" in parts else parts[-2]
    name = parts[-1]
    if "--" in name:
        return name.split("--")[0] + " (" + name.split("--")[1] + ")"
    for kind in ("speech", "music"):
        if kind in parts[:-1]:
            return parts[parts.index(kind) + 1]
    return parts[-2]


def flagged(row: dict) -> bool:
    return row.get("verdict") == "synthetic"


def package_of(group: str) -> str:
    """The package of a real group ("klettres-data (mulaw8k)" is klettres-data re-encoded)."""
    return group.split(" (")[0]


def scores(rows: list[dict]) -> np.ndarray:
    """The scores of the rows that have one: a `no-signal` row (silence) has none, and counts in
    the verdict columns (not flagged, not caught) but not in the EERs."""
    return np.array([r["score"] for r in rows if r.get("score") is not None], dtype=float)


def summarise(real: list[dict[str, dict]], fake: list[dict[str, dict]], held_out: set[str]) -> dict:
    """Per model: false alarms per real group, detection and EER per fake group (EER against the
    pooled held-out real files' scores). Only paths every model scored are compared."""
    def common(reports: list[dict[str, dict]]) -> list[str]:
        ok = [set(p for p, r in rep.items() if r.get("error") is None) for rep in reports]
        return sorted(set.intersection(*ok)) if ok else []

    def grouped(paths: list[str], fake: bool) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for p in paths:
            groups[group_of(p, fake)].append(p)
        return dict(sorted(groups.items()))

    real_groups, fake_groups = grouped(common(real), False), grouped(common(fake), True)
    held_paths = [p for g, paths in real_groups.items() if package_of(g) in held_out for p in paths]
    out = []
    for rep_real, rep_fake in zip(real, fake):
        bona = scores([rep_real[p] for p in held_paths])
        res = {"real": {}, "fake": {}}
        for g, paths in real_groups.items():
            res["real"][g] = {"files": len(paths), "flagged": sum(flagged(rep_real[p]) for p in paths)}
        all_fake = []
        for g, paths in fake_groups.items():
            rows = [rep_fake[p] for p in paths]
            spoof = scores(rows)
            all_fake.append(spoof)
            res["fake"][g] = {"files": len(rows), "caught": sum(map(flagged, rows)),
                              "eer": eer(bona, spoof)[0] if len(bona) else float("nan"),
                              "det_1pct": detection_at_fa(bona, spoof, 0.01) if len(bona) else float("nan")}
        pooled = np.concatenate(all_fake) if all_fake else np.array([])
        res["pooled"] = {"held_out_real": len(bona),
                         "eer": eer(bona, pooled)[0] if len(bona) and len(pooled) else float("nan")}
        out.append(res)
    return {"models": out, "errors": {
        "real": [sum(r.get("error") is not None for r in rep.values()) for rep in real],
        "fake": [sum(r.get("error") is not None for r in rep.values()) for rep in fake]}}


def print_tables(names: list[str], s: dict, held_out: set[str]) -> None:
    models = s["models"]
    print("| real package | held out | files | " + " | ".join(f"flagged {n}" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for g in models[0]["real"]:
        cells = [f"{m['real'][g]['flagged']} ({100 * m['real'][g]['flagged'] / m['real'][g]['files']:.1f} %)"
                 for m in models]
        print(f"| {g} | {'yes' if package_of(g) in held_out else 'no'} | {models[0]['real'][g]['files']} | "
              + " | ".join(cells) + " |")
    print()
    print("| generator | files | " + " | ".join(f"caught {n}" for n in names) + " | "
          + " | ".join(f"EER {n}" for n in names) + " | " + " | ".join(f"det. @ 1 % FA {n}" for n in names) + " |")
    print("|---|---|" + "---|" * (3 * len(names)))
    for g in models[0]["fake"]:
        m0 = models[0]["fake"][g]
        print(f"| {g} | {m0['files']} | "
              + " | ".join(f"{100 * m['fake'][g]['caught'] / m['fake'][g]['files']:.1f} %" for m in models) + " | "
              + " | ".join(f"{100 * m['fake'][g]['eer']:.1f} %" for m in models) + " | "
              + " | ".join(f"{100 * m['fake'][g]['det_1pct']:.1f} %" for m in models) + " |")
    print()
    print("pooled EER against the held-out real files: "
          + ", ".join(f"{n} {100 * m['pooled']['eer']:.1f} % ({m['pooled']['held_out_real']} real)"
                      for n, m in zip(names, models)))
    print("error rows (real, fake):", s["errors"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", nargs="+", required=True, help="a name per model, in report order")
    ap.add_argument("--real", nargs="+", type=Path, required=True, help="one report per model")
    ap.add_argument("--fake", nargs="+", type=Path, required=True, help="one report per model")
    ap.add_argument("--held-out-real", nargs="+", default=[],
                    help="real packages no model trained on: the bona fide side of the EERs")
    args = ap.parse_args()
    if not len(args.model) == len(args.real) == len(args.fake):
        ap.error("--model, --real and --fake need one entry per model")
    held = set(args.held_out_real)
    s = summarise([read_report(p) for p in args.real], [read_report(p) for p in args.fake], held)
    print_tables(args.model, s, held)


if __name__ == "__main__":
    main()
