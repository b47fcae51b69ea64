"""The segment rule's fit (deepscreen_train/segment_rule.py) against brute-force expectations
on made-up window scores."""

import itertools
import random

import numpy as np

from deepscreen_train.segment_rule import fit, flags, rule_threshold, strongest_run


def test_strongest_run_is_the_best_run_minimum():
    rng = random.Random(3)
    for k in range(1, 5):
        for n in range(0, 10):
            scores = [rng.random() for _ in range(n)]
            runs = [(min(scores[i : i + k]), i) for i in range(n - k + 1)]
            got = strongest_run(scores, k)
            if not runs:
                assert got is None
            else:
                best = max(r[0] for r in runs)
                assert got == (best, min(i for low, i in runs if low == best))


def test_threshold_adds_no_more_than_the_budget_in_any_package():
    rng = random.Random(5)
    real = {p: [(rng.random() * 0.9, [rng.random() for _ in range(rng.randint(1, 8))]) for _ in range(n)]
            for p, n in [("a", 150), ("b", 400), ("c", 60)]}
    threshold = 0.8
    for k, budget in itertools.product([1, 2, 3], [0.0, 0.005, 0.02]):
        t = rule_threshold(real, threshold, k, budget)
        assert t >= threshold
        for files in real.values():
            added = sum(flags(s, w, threshold, k, t) and s < threshold for s, w in files)
            assert added <= int(budget * len(files))
        # And it is the lowest such: a little lower breaks the budget somewhere (or hits the floor).
        if t > threshold:
            lower = t - 1e-6
            assert any(sum(flags(s, w, threshold, k, lower) and s < threshold for s, w in files)
                       > int(budget * len(files)) for files in real.values())


def test_threshold_stays_above_the_real_run_in_f32():
    # The engine reads window scores and the rule's threshold as f32 and flags at >=. A real run
    # near 1 (music's highest real window scored 0.99997896) set a threshold one f64 step above it,
    # which the engine read back as the same f32 and flagged that real file.
    for top in [0.99997896, 0.9918769, 0.5, 0.123456789]:
        score = float(np.float32(top))
        real = {"r": [(0.01, [0.02, score, 0.03])] + [(0.01, [0.02, 0.03]) for _ in range(30)]}
        t = rule_threshold(real, 0.05, 1, 0.0)
        assert np.float32(t) > np.float32(score)
        assert not flags(np.float32(0.01), [np.float32(w) for w in real["r"][0][1]], np.float32(0.05), 1,
                         np.float32(t))
        # and it is the next f32: the one below it is the real run itself
        assert np.nextafter(np.float32(t), np.float32(0)) == np.float32(score)


def test_fit_prefers_the_length_that_catches_most():
    # Real files: isolated single high windows (so one window is a poor rule); partial fakes: a
    # run of three high windows inside low ones.
    real = {"r": [(0.3, [0.1, 0.97, 0.1, 0.2]) for _ in range(50)]}
    partial = [(0.5, [0.1, 0.95, 0.96, 0.94, 0.1]) for _ in range(20)]
    results = fit(real, partial, 0.8, [1, 2, 3], 0.0)
    k, t, caught = results[0]
    assert (k, caught) == (2, 20) and 0.1 < t <= 0.95
    assert [r[0] for r in results] == [2, 3, 1]
