"""Calibration: P(synthetic) = sigmoid(a · logit + b) fitted on window logits (the `calibration`
of a model's config), the engine's file score (the mean of calibrated window scores) and the
threshold at a false-alarm rate."""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, float)))


def fit(logits: np.ndarray, labels: np.ndarray, balanced: bool = True) -> tuple[float, float]:
    """(a, b) of the logistic fit of `labels` (1 = spoof) on `logits` by Newton's method (the
    log loss is convex in (a, b)); `balanced`: the two classes weigh equally, whatever their
    counts."""
    z = np.asarray(logits, float).ravel()
    y = np.asarray(labels, float).ravel()
    if balanced:
        w = np.where(y > 0.5, 0.5 / max(y.sum(), 1.0), 0.5 / max((1 - y).sum(), 1.0))
    else:
        w = np.full(len(y), 1.0 / len(y))

    def loss(a: float, b: float) -> float:
        s = a * z + b
        return float(np.sum(w * (np.logaddexp(0.0, s) - y * s)))

    a, b = 1.0, 0.0
    for _ in range(100):
        p = sigmoid(a * z + b)
        r, v = w * (p - y), w * p * (1 - p)
        grad = np.array([np.sum(r * z), np.sum(r)])
        hess = np.array([[np.sum(v * z * z), np.sum(v * z)], [np.sum(v * z), np.sum(v)]])
        step = np.linalg.solve(hess + 1e-12 * np.eye(2), grad)
        # Halve the step until the loss falls (separable data would run off otherwise).
        t, before = 1.0, loss(a, b)
        while t > 1e-6 and loss(a - t * step[0], b - t * step[1]) > before:
            t /= 2
        a, b = a - t * step[0], b - t * step[1]
        if np.max(np.abs(t * step)) < 1e-10:
            break
    return float(a), float(b)


def file_scores(logits: np.ndarray, clip: np.ndarray, n: int, a: float, b: float) -> np.ndarray:
    """The engine's file score: mean of the calibrated scores of each clip's windows (`clip`:
    each window's clip index; NaN for a clip without windows)."""
    s = sigmoid(a * np.asarray(logits, float) + b)
    total = np.bincount(clip, weights=s, minlength=n)
    count = np.bincount(clip, minlength=n)
    with np.errstate(invalid="ignore"):
        return total / count


def just_above(score: float) -> float:
    """The lowest threshold that leaves `score` unflagged as the engine compares: it reads scores
    and thresholds as f32 and flags at >=, so one f64 step above an f32 score reads back as that
    score (and flags it); the next f32 does not."""
    return float(np.nextafter(np.float32(score), np.float32(2.0)))


def threshold_at(bona: np.ndarray, false_alarms: float) -> float:
    """The score that `false_alarms` of the real (bona fide) scores reach: at most that share
    is flagged (score ≥ threshold) when the scores are distinct."""
    real = np.sort(np.asarray(bona, float))
    k = min(len(real) - 1, int(np.ceil((1 - false_alarms) * len(real))))
    return float(real[k])
