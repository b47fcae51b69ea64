"""The cascade fit (deepscreen_train/cascade.py) against brute-force expectations on made-up
windows: verdicts recomputed window by window in plain Python."""

import json
import math

import numpy as np

from deepscreen_train import cascade


def windows(n_files=400, per_file=3, seed=0):
    """Files whose cheap members already lean one way; the deferred member adds a little."""
    rng = np.random.default_rng(seed)
    label = rng.random(n_files) < 0.5
    z = np.repeat(np.where(label, 2.0, -2.0), per_file) + rng.normal(0, 1.5, n_files * per_file)
    d = rng.normal(0, 0.7, n_files * per_file)
    file = np.repeat(np.arange(n_files), per_file)
    return cascade.Windows(z, d, file, [f"f{i}" for i in range(n_files)], ["dev.jsonl"] * n_files)


def verdicts_by_hand(win, lo, hi, fills, threshold):
    """Each file's (full, cascaded) verdict at `threshold`, mean aggregation, in plain Python."""
    sig = lambda x: 1 / (1 + math.exp(-x))
    full, cut = {}, {}
    for z, d, f in zip(win.z, win.d, win.file):
        full.setdefault(f, []).append(sig(z + d))
        fill = fills[0] if z < lo else fills[1] if z > hi else None
        cut.setdefault(f, []).append(sig(z + d) if fill is None else sig(z + fill))
    mean = lambda v: sum(v) / len(v)
    return {f: (mean(full[f]) >= threshold, mean(cut[f]) >= threshold) for f in full}


def test_the_fit_keeps_verdicts_and_skips_windows():
    win = windows()
    band = cascade.fit(win, threshold=0.5, aggregation="mean", max_flips=0.01, margin=0.25)
    by_hand = verdicts_by_hand(win, band.lo, band.hi, (band.fill_below, band.fill_above), 0.5)
    flipped = sum(a != b for a, b in by_hand.values())
    assert flipped == band.flipped.sum() <= 4  # 1 % of 400 files
    # The fills are the deferred member's median contribution on each side.
    assert math.isclose(band.fill_below, float(np.median(win.d[win.z < band.lo])))
    assert math.isclose(band.fill_above, float(np.median(win.d[win.z > band.hi])))
    # Cheap members that lean clearly one way leave most windows decided.
    assert band.in_band.mean() < 0.6, band.in_band.mean()
    assert band.lo < band.hi


def test_no_flips_allowed_and_a_band_over_everything_changes_nothing():
    win = windows(seed=1)
    everything = cascade.apply(win, win.z.min() - 1, win.z.max() + 1, 0.5, "mean")
    assert not everything.flipped.any() and everything.in_band.all()
    band = cascade.fit(win, 0.5, "max", max_flips=0.0, margin=0.0)
    assert not band.flipped.any()


def test_reports_are_read_with_their_member_scores(tmp_path):
    rows = [
        {"path": "a.wav", "segments": [{"start_s": 0, "end_s": 4, "score": 0.5, "members": [0.9, 0.2, 0.6]}]},
        {"path": "b.wav", "error": "broken"},
        {"path": "c.wav", "verdict": "no-signal", "windows": 0},
    ]
    report = tmp_path / "dev.jsonl"
    report.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    win = cascade.read_windows([report], [0.5, 1.0, 0.5], [False, True, False], bias=0.25)
    lg = lambda p: math.log(p / (1 - p))
    assert win.names == ["a.wav"]
    assert math.isclose(win.z[0], 0.5 * lg(0.9) + 0.5 * lg(0.6) + 0.25)
    assert math.isclose(win.d[0], lg(0.2))
    rows[0]["segments"][0]["members"] = [0.9, None, 0.6]
    report.write_text(json.dumps(rows[0]) + "\n")
    try:
        cascade.read_windows([report], [0.5, 1.0, 0.5], [False, True, False], bias=0.0)
        raise AssertionError("a cascaded report was accepted")
    except ValueError as e:
        assert "--exact" in str(e)
