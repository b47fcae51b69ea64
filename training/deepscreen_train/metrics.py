"""Detection metrics, as the engine computes them (src/metrics.rs). Scores are P(synthetic):
a score at or above a threshold is called spoof."""

from __future__ import annotations

import numpy as np

# minDCF with the ASVspoof 5 costs, as src/metrics.rs: Cmiss 1, Cfa 10, P(spoof) 0.05.
C_MISS, C_FA, P_SPOOF = 1.0, 10.0, 0.05


def det_curve(bona: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, false-alarm rate, miss rate) at every distinct score and +inf."""
    t = np.unique(np.concatenate([bona, spoof, [np.inf]]))
    # Counts over totals, as the engine does (1 - share would round: 1 - 297/300 > 0.01).
    fa = (len(bona) - np.searchsorted(np.sort(bona), t, side="left")) / len(bona)
    miss = np.searchsorted(np.sort(spoof), t, side="left") / len(spoof)
    return t, fa, miss


def eer(bona: np.ndarray, spoof: np.ndarray) -> tuple[float, float]:
    """Equal error rate and the threshold where it is met (the mean of the two rates there)."""
    t, fa, miss = det_curve(np.asarray(bona, float), np.asarray(spoof, float))
    i = int(np.argmin(np.abs(fa - miss)))
    return float((fa[i] + miss[i]) / 2), float(t[i])


def min_dcf(bona: np.ndarray, spoof: np.ndarray) -> float:
    _, fa, miss = det_curve(np.asarray(bona, float), np.asarray(spoof, float))
    norm = min(C_MISS * (1 - P_SPOOF), C_FA * P_SPOOF)
    return float(np.min(C_MISS * (1 - P_SPOOF) * miss + C_FA * P_SPOOF * fa) / norm)


def detection_at_fa(bona: np.ndarray, spoof: np.ndarray, max_fa: float) -> float:
    """Highest share of fakes flagged at a false-alarm rate of at most `max_fa`."""
    _, fa, miss = det_curve(np.asarray(bona, float), np.asarray(spoof, float))
    ok = fa <= max_fa
    return float(1 - miss[ok].min()) if ok.any() else 0.0


def metrics(bona: np.ndarray, spoof: np.ndarray, threshold: float) -> dict:
    """The figures a model card quotes for one list."""
    bona, spoof = np.asarray(bona, float), np.asarray(spoof, float)
    return {
        "n_bona": int(len(bona)), "n_spoof": int(len(spoof)), "eer": eer(bona, spoof)[0],
        "min_dcf": min_dcf(bona, spoof),
        "det_at_1pct_fa": detection_at_fa(bona, spoof, 0.01),
        "det_at_0.1pct_fa": detection_at_fa(bona, spoof, 0.001),
        "fa_at_threshold": float((bona >= threshold).mean()),
        "det_at_threshold": float((spoof >= threshold).mean()),
    }
