"""Measures a model on the prepared dev lists with the Rust engine itself (`deepscreen eval`),
and prints the model card's tables (markdown) and writes them as JSON.

    python training/evaluate.py --kind speech --data data/speech --model models/speech.safetensors \
        --deepscreen target/release/deepscreen --out models/speech-dev.json

Lists scored (all under --data, written by data/prepare.py; subsets are written next to them):
dev (clean), dev-channel (every clip through the channel chain of deepscreen_train/channel.py: band-passes,
noise, reverb, quantisation, codecs…), dev-real-reencoded (the clean bona fide re-encoded to
MP3/Ogg, against the clean fakes); each pooled, per attack, seen vs unseen attacks, and within
bandwidth groups (narrowband ≤ 5.5 kHz vs wideband); detection at 1 % / 0.1 % false alarms and
false alarms per held-out real package at the model's default threshold. "Seen in training" is
what the model's networks record as their training clips (train.py, train_head.py: provenance
`train_clips`; a fused model's members together), not today's generator table, which grows; for
models that record none, the table.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

from deepscreen_train.common import GENERATORS, is_seen, read_rows
from deepscreen_train.metrics import metrics
from fuse import config_of

LISTS = ("dev", "dev-channel", "dev-real-reencoded")
ROOT = Path(__file__).resolve().parents[1]


def run_eval(exe: str, protocol: Path, model: str, audio_dir: Path, scores: Path, vocals: str, exact: bool) -> dict:
    out = subprocess.run([exe, "eval", str(protocol), "--model", model, "--audio-dir", str(audio_dir), "--json",
                          "--scores", str(scores), "--vocals", vocals] + (["--exact"] if exact else []),
                         capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"deepscreen eval {protocol} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def subset_metrics(rows: list[dict], scores: dict[str, float]) -> dict:
    """EER and detection at 1 % false alarms of a subset, from the engine's score file."""
    bona = np.array([scores[r["path"]] for r in rows if r["label"] == "bonafide" and r["path"] in scores])
    spoof = np.array([scores[r["path"]] for r in rows if r["label"] != "bonafide" and r["path"] in scores])
    m = metrics(bona, spoof, 0.5)
    return {"bona_fide": len(bona), "spoof": len(spoof), "eer": m["eer"], "detection_at_1pct_fa": m["det_at_1pct_fa"]}


def model_threshold(model: str) -> float:
    """The default threshold in a model's config."""
    return float(config_of(model_path(model))["threshold"])


def at_threshold(report: dict, rows: list[dict], scores: dict[str, float], threshold: float) -> dict:
    """An engine eval report with its threshold-dependent rates (pooled, per attack, per bona fide
    source; `flagged_rate` is score >= threshold, as src/eval) taken at `threshold` instead."""
    scored = [r for r in rows if r["path"] in scores]
    bona = [scores[r["path"]] for r in scored if r["label"] == "bonafide"]
    rate = lambda xs: sum(x >= threshold for x in xs) / len(xs) if xs else 0.0  # noqa: E731
    out = json.loads(json.dumps(report))
    out["threshold"] = threshold
    out["pooled"]["false_alarm_rate"] = rate(bona)
    out["pooled"]["detection_rate"] = rate([scores[r["path"]] for r in scored if r["label"] != "bonafide"])
    for attack, m in out["per_attack"].items():
        m["false_alarm_rate"] = out["pooled"]["false_alarm_rate"]
        m["detection_rate"] = rate([scores[r["path"]] for r in scored if r["label"] != "bonafide" and r["attack"] == attack])
    for source, m in out["per_source"].items():
        xs = [scores[r["path"]] for r in scored if r["label"] == "bonafide" and r["source"] == source]
        if len(xs) != m["bona_fide"]:  # score file and report from different runs
            raise ValueError(f"{source}: {len(xs)} scored bona fide, the report had {m['bona_fide']}")
        m["flagged"] = sum(x >= threshold for x in xs)
        m["false_alarm_rate"] = rate(xs)
    return out


def model_path(model: str) -> Path:
    """A --model argument's file: a path, or an embedded model's file under models/."""
    path = Path(model)
    return path if path.exists() else ROOT / "models" / f"{model}.safetensors"


def trained_attacks(model: str) -> tuple[set[str] | None, list[str]]:
    """The attacks a model trained on, from its networks' provenance (`train_clips`, written by
    train.py), not from today's generator table, which may have grown since: the union over a
    fused model's members. Returns (attacks or None if no network records them, the networks
    that record none, e.g. the Whisper heads)."""
    config = config_of(model_path(model))
    if "fusion" in config:
        folder = model_path(model).parent
        networks = [(m["model"], folder / m["file"] if "file" in m else ROOT / "models" / f"{m['model']}.safetensors")
                    for m in config["fusion"]["members"]]
    else:
        networks = [(config["id"], model_path(model))]
    attacks: set[str] | None = None
    silent = []
    for name, path in networks:
        clips = config_of(path).get("provenance", {}).get("train_clips")
        if not isinstance(clips, dict):
            silent.append(name)
            continue
        attacks = (attacks or set()) | {a for a in clips if a != "bonafide"}
    return attacks, silent


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["speech", "music"], required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--deepscreen", default="deepscreen")
    ap.add_argument("--out", type=Path, help="write all figures as JSON")
    ap.add_argument("--vocals", choices=["auto", "on", "off"], default="auto",
                    help="the engine's vocal stage (auto: on for a music model); off measures a music network alone")
    ap.add_argument("--exact", action="store_true",
                    help="a fused model's full fusion (every member on every window), not its cascade")
    ap.add_argument("--lists", nargs="+", choices=LISTS, default=list(LISTS), help="the dev lists to score")
    ap.add_argument("--rethreshold", action="store_true",
                    help="do not score again: take --out and the lists' score files of an earlier run (the same "
                         "members, e.g. before fuse.py set the threshold) and recompute the rates at the "
                         "model's threshold now")
    args = ap.parse_args()
    earlier = json.loads(args.out.read_text())["lists"] if args.rethreshold else {}
    threshold = model_threshold(args.model) if args.rethreshold else None
    results: dict[str, dict] = {}
    subsets_out: dict[str, dict] = {}
    trained, silent = trained_attacks(args.model)
    seen = (lambda a: a in trained) if trained is not None else (lambda a: is_seen(args.kind, a))  # noqa: E731
    seen_from = (f"the training clips its networks record ({', '.join(silent)} records none)" if silent else
                 "the training clips its networks record") if trained is not None else "today's generator table"
    for name in args.lists:
        rows = read_rows(args.data / f"{name}.csv")
        for r in rows:
            r["seen"] = "-" if r["attack"] == "-" else ("seen" if seen(r["attack"]) else "unseen")
        # One engine run per list; subsets are cut from its score file.
        score_file = args.data / f"{name}.scores.txt"
        if not args.rethreshold:
            results[f"{name}/all"] = run_eval(args.deepscreen, args.data / f"{name}.csv", args.model, args.data, score_file,
                                               args.vocals, args.exact)
        scores = {}
        for line in score_file.read_text().splitlines():
            ident, _, _, llr = line.split()
            scores[ident] = 1 / (1 + math.exp(float(llr)))  # llr = ln((1-p)/p)
        if args.rethreshold:
            results[f"{name}/all"] = at_threshold(earlier[f"{name}/all"], rows, scores, threshold)
        subsets = {
            "seen": [r for r in rows if r["seen"] != "unseen"],
            "unseen": [r for r in rows if r["seen"] != "seen"],
            "narrowband": [r for r in rows if r["band"] == "narrow"],
            "wideband": [r for r in rows if r["band"] == "wide"],
        }
        for subset, chosen in subsets.items():
            if any(r["label"] == "spoof" for r in chosen) and any(r["label"] == "bonafide" for r in chosen):
                subsets_out[f"{name}/{subset}"] = subset_metrics(chosen, scores)
        print(f"{name}: EER {pct(results[f'{name}/all']['pooled']['eer'])}", file=sys.stderr)

    print("| dev list | bona fide | spoof | EER | minDCF | det. @ 1 % FA | det. @ 0.1 % FA | FA @ default thr. | det. @ default thr. |")
    print("|---|---|---|---|---|---|---|---|---|")
    for key, rep in results.items():
        name = key.split("/")[0]
        p = rep["pooled"]
        print(f"| {name} | {p['bona_fide']} | {p['spoof']} | {pct(p['eer'])} | {p['min_dcf']:.4f} | "
              f"{pct(p['detection_at_1pct_fa'])} | {pct(p['detection_at_0_1pct_fa'])} | {pct(p['false_alarm_rate'])} | "
              f"{pct(p['detection_rate'])} |")
    print("\n| dev list | subset | bona fide | spoof | EER | det. @ 1 % FA |\n|---|---|---|---|---|---|")
    for key, m in subsets_out.items():
        name, subset = key.split("/")
        print(f"| {name} | {subset} | {m['bona_fide']} | {m['spoof']} | {pct(m['eer'])} | {pct(m['detection_at_1pct_fa'])} |")
    print(f"\n\"Seen in training\" from {seen_from}.")
    print("\n| attack | seen in training | EER clean | EER channel | EER real re-encoded | det. @ 1 % FA (clean) | det. @ default thr. (channel) |")
    print("|---|---|---|---|---|---|---|")
    for attack in GENERATORS[args.kind]:
        cells = []
        for name in LISTS:
            m = results.get(f"{name}/all", {}).get("per_attack", {}).get(attack)
            cells.append(pct(m["eer"]) if m else "–")
        clean = results.get("dev/all", {}).get("per_attack", {}).get(attack)
        channel = results.get("dev-channel/all", {}).get("per_attack", {}).get(attack)
        cells.append(pct(clean["detection_at_1pct_fa"]) if clean else "–")
        cells.append(pct(channel["detection_rate"]) if channel else "–")
        print(f"| {attack} | {'yes' if seen(attack) else 'no'} | " + " | ".join(cells) + " |")
    print("\n| held-out real package | list | trials | false alarms @ default thr. |\n|---|---|---|---|")
    for name in args.lists:
        for source, fa in results.get(f"{name}/all", {}).get("per_source", {}).items():
            print(f"| {source} | {name} | {fa['bona_fide']} | {pct(fa['false_alarm_rate'])} |")
    if args.out:
        args.out.write_text(json.dumps({"lists": results, "subsets": subsets_out, "seen_from": seen_from,
                                        "trained_attacks": sorted(trained) if trained is not None else None},
                                       indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
