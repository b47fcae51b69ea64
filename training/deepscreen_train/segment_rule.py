"""The segment rule's evidence and fit (partial fakes; the engine's src/screen/segment_run.rs):
a file's strongest run of k consecutive window scores, and the rule that flags files on it."""

from __future__ import annotations

import math

from .calibration import just_above


def strongest_run(scores: list[float], k: int) -> tuple[float, int] | None:
    """Max over runs of k consecutive windows of the run's lowest score (the first run on a
    tie), and the run's first window; None with fewer than k windows (as the engine)."""
    best = None
    for i in range(len(scores) - k + 1):
        low = min(scores[i : i + k])
        if best is None or low > best[0]:
            best = (low, i)
    return best


def flags(score: float, windows: list[float], threshold: float, k: int, t: float) -> bool:
    """The engine's verdict: the file score at its threshold, or a run of k windows at t."""
    run = strongest_run(windows, k)
    return score >= threshold or (run is not None and run[0] >= t)


def rule_threshold(real: dict[str, list[tuple[float, list[float]]]], threshold: float, k: int,
                   added_fa: float) -> float:
    """The lowest run threshold (never below the file `threshold`) that flags, in every real
    package, at most floor(added_fa · its files) of the files the file score leaves bona fide,
    as the engine compares (in f32).
    `real`: package → [(file score, window scores)]."""
    edge = 0.0
    for files in real.values():
        quiet = sorted((r[0] for score, windows in files if score < threshold
                        if (r := strongest_run(windows, k))), reverse=True)
        allowed = math.floor(added_fa * len(files))
        edge = max(edge, quiet[allowed] if allowed < len(quiet) else 0.0)
    return max(threshold, just_above(edge))


def fit(real: dict[str, list[tuple[float, list[float]]]], partial: list[tuple[float, list[float]]],
        threshold: float, lengths: list[int], added_fa: float) -> list[tuple[int, float, int]]:
    """For each run length that leaves a threshold ≤ 1: (k, its threshold, partial fakes it flags),
    best first (most flagged; the shorter run on a tie)."""
    out = []
    for k in lengths:
        t = rule_threshold(real, threshold, k, added_fa)
        if t <= 1.0:
            caught = sum(flags(score, windows, threshold, k, t) for score, windows in partial)
            out.append((k, t, caught))
    return sorted(out, key=lambda r: (-r[2], r[0]))
