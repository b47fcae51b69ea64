"""`deepscreen_train.metrics` and `.calibration` against naive computations."""

from __future__ import annotations

import numpy as np

from deepscreen_train import calibration, metrics


def naive_rates(bona, spoof, t):
    return np.mean(np.asarray(bona) >= t), np.mean(np.asarray(spoof) < t)


def test_eer_and_detection_by_hand() -> None:
    rng = np.random.default_rng(1)
    bona, spoof = rng.normal(0, 1, 300), rng.normal(1.5, 1, 200)
    eer, thr = metrics.eer(bona, spoof)
    fa, miss = naive_rates(bona, spoof, thr)
    assert abs(eer - (fa + miss) / 2) < 1e-12
    # No threshold has the two rates closer together.
    gaps = [abs(np.subtract(*naive_rates(bona, spoof, t))) for t in np.concatenate([bona, spoof])]
    assert abs(fa - miss) <= min(gaps) + 1e-12
    # Detection at ≤ 1 % false alarms: the best over every threshold that keeps to it.
    best = max(1 - naive_rates(bona, spoof, t)[1] for t in np.concatenate([bona, spoof, [np.inf]])
               if naive_rates(bona, spoof, t)[0] <= 0.01)
    assert metrics.detection_at_fa(bona, spoof, 0.01) == best
    assert metrics.eer([0.1, 0.2], [0.8, 0.9])[0] == 0.0


def test_calibration_fit_is_the_maximum_likelihood() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < calibration.sigmoid(0.7 * z - 0.4)).astype(float)
    a, b = calibration.fit(z, y, balanced=False)
    assert abs(a - 0.7) < 0.05 and abs(b + 0.4) < 0.05
    # At the optimum the gradient of the (balanced) log loss vanishes.
    a, b = calibration.fit(z, y, balanced=True)
    w = np.where(y > 0.5, 0.5 / y.sum(), 0.5 / (1 - y).sum())
    r = w * (calibration.sigmoid(a * z + b) - y)
    assert abs(np.sum(r * z)) < 1e-9 and abs(np.sum(r)) < 1e-9


def test_threshold_keeps_to_the_false_alarm_rate() -> None:
    bona = np.linspace(0, 1, 1000)
    t = calibration.threshold_at(bona, 0.01)
    assert np.mean(bona >= t) <= 0.01
    assert calibration.file_scores(np.array([0.0, 0.0, 10.0]), np.array([0, 0, 2]), 3, 1.0, 0.0)[0] == 0.5
