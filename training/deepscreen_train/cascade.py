"""Fitting a fused model's cascade (src/model/fusion.rs): the members not deferred score every
window; their partial fused logit z decides a window alone outside a band [lo, hi], where the
deferred (costly) members are skipped and the window scores sigmoid(z + fill) with the fill of
its side. The band is the narrowest that changes the verdict of at most `max_flips` of the dev
files against the full fusion at the model's threshold.

Input: the windows of `deepscreen screen --exact --segments` reports of the fused model, whose
segments carry every member's score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .reports import read_report

P_EPS = 1e-7  # as the engine: a probability this close to 0 or 1 is taken as its logit bound


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), P_EPS, 1 - P_EPS)
    return np.log(p / (1 - p))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@dataclass
class Windows:
    """Every window of the dev files: partial logit `z` (cheap members and bias), the deferred
    members' contribution `d`, and the file (`file`, an index into `names`) it belongs to."""

    z: np.ndarray
    d: np.ndarray
    file: np.ndarray
    names: list[str]
    lists: list[str]  # the report each file came from


def read_windows(reports: list[Path], weights: list[float], deferred: list[bool], bias: float) -> Windows:
    """The scored windows of exact reports (rows without segments, errors and no-signal rows are
    skipped: they have no windows)."""
    w = np.asarray(weights, dtype=np.float64)
    keep = ~np.asarray(deferred)
    z, d, file, names, lists = [], [], [], [], []
    for report in reports:
        for row in read_report(report, drop_errors=True, need_segments=True).values():
            segments = row["segments"]
            members = np.array([s.get("members") or [None] * len(w) for s in segments], dtype=object)
            if members.shape[1] != len(w) or any(p is None for p in members.ravel()):
                raise ValueError(f"{report}: {row['path']}: a window lacks member scores "
                                 "(screen the dev lists with --exact --segments)")
            lw = logit(members.astype(np.float64)) * w
            z.append(lw[:, keep].sum(axis=1) + bias)
            d.append(lw[:, ~keep].sum(axis=1))
            file.append(np.full(len(segments), len(names)))
            names.append(row["path"])
            lists.append(report.name)
    if not names:
        raise ValueError("no scored windows in the reports")
    return Windows(np.concatenate(z), np.concatenate(d), np.concatenate(file), names, lists)


def file_scores(scores: np.ndarray, file: np.ndarray, files: int, aggregation: str) -> np.ndarray:
    if aggregation == "max":
        out = np.full(files, -np.inf)
        np.maximum.at(out, file, scores)
        return out
    return np.bincount(file, weights=scores, minlength=files) / np.bincount(file, minlength=files)


@dataclass
class Band:
    lo: float
    hi: float
    fill_below: float
    fill_above: float
    flipped: np.ndarray  # per file: verdict differs from the full fusion's
    in_band: np.ndarray  # per window: the deferred members run


def apply(win: Windows, lo: float, hi: float, threshold: float, aggregation: str,
          fills: tuple[float, float] | None = None) -> Band:
    """The cascade with band [lo, hi] on the dev windows; fills default to the deferred
    members' median contribution on each side's dev windows."""
    below, above = win.z < lo, win.z > hi
    if fills is None:
        fills = (float(np.median(win.d[below])) if below.any() else 0.0,
                 float(np.median(win.d[above])) if above.any() else 0.0)
    full = sigmoid(win.z + win.d)
    cascaded = np.where(below, sigmoid(win.z + fills[0]), np.where(above, sigmoid(win.z + fills[1]), full))
    n = len(win.names)
    exact = file_scores(full, win.file, n, aggregation) >= threshold
    got = file_scores(cascaded, win.file, n, aggregation) >= threshold
    return Band(lo, hi, fills[0], fills[1], exact != got, ~(below | above))


def fit(win: Windows, threshold: float, aggregation: str, max_flips: float = 0.002,
        margin: float = 0.5, grid: int = 60) -> Band:
    """The band with the fewest windows inside it whose verdicts differ from the full fusion on
    at most `max_flips` of the files, then widened by `margin` logits each side (the dev files
    that fitted it are not the catalogs it will meet); the fills and flips are those of the
    widened band."""
    qs = np.unique(np.quantile(win.z, np.linspace(0, 1, grid + 1)))
    edges = np.concatenate([[qs[0] - 1.0], qs, [qs[-1] + 1.0]])
    allowed = int(np.floor(max_flips * len(win.names)))
    best = None
    for i, lo in enumerate(edges):
        for hi in edges[i:]:
            band = apply(win, lo, hi, threshold, aggregation)
            if band.flipped.sum() > allowed:
                continue
            key = (band.in_band.mean(), band.flipped.sum(), -(hi - lo))
            if best is None or key < best[0]:
                best = (key, lo, hi)
    assert best is not None, "the band covering every window flips nothing"
    _, lo, hi = best
    return apply(win, float(lo - margin), float(hi + margin), threshold, aggregation)


def summary(win: Windows, band: Band) -> dict:
    """Per dev list: files, windows, the share of windows the deferred members skip, and the
    files whose verdict the cascade changes."""
    out = {}
    file_list = np.asarray(win.lists)
    for name in sorted(set(win.lists)):
        files = file_list == name
        windows = files[win.file]
        out[name] = {
            "files": int(files.sum()),
            "windows": int(windows.sum()),
            "skipped_share": round(float(1 - band.in_band[windows].mean()), 4),
            "flipped_files": int(band.flipped[files].sum()),
        }
    return out


def agreement(exact: Path, cascaded: Path) -> dict:
    """Files, verdicts changed, and windows skipped by a cascaded report against an exact one
    of the same files (`python -m deepscreen_train.cascade EXACT CASCADED`)."""
    a, b = read_report(exact, drop_errors=True), read_report(cascaded, drop_errors=True)
    common = sorted(set(a) & set(b))
    changed = [p for p in common if a[p]["verdict"] != b[p]["verdict"]]
    windows = sum(b[p].get("windows") or 0 for p in common)
    skipped = sum(b[p].get("cascade_skipped") or 0 for p in common)
    return {
        "files": len(common),
        "verdicts_changed": len(changed),
        "changed": changed[:10],
        "windows": windows,
        "skipped_share": round(skipped / max(windows, 1), 4),
        "max_score_change": max((abs(a[p]["score"] - b[p]["score"]) for p in common if a[p]["score"] is not None), default=0.0),
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(agreement(Path(sys.argv[1]), Path(sys.argv[2])), indent=1))
