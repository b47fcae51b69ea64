"""The vocal threshold's fit in separator/vocal_eval.py: the share of real scores it flags,
leaving each real speech package out (codec variants together: common.source_family), and the floor
that real music without a voice sets, checked against counts made by hand on made-up scores."""

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "separator"))
from vocal_eval import leave_one_out, leave_one_package_out, music_alone_scores, threshold_at  # noqa: E402


def test_the_threshold_flags_at_most_the_share_asked_for():
    rng = np.random.default_rng(5)
    for n in (1, 7, 50, 294):
        real = rng.random(n)
        for fa in (0.0, 0.02, 0.1, 0.5):
            t = threshold_at(real, fa)
            flagged = int(np.sum(real >= t))
            # The most it may flag, and no lower threshold flags as few: the next real score
            # below it would be flagged too.
            assert flagged == int(np.floor(fa * n)), (n, fa, flagged)
            below = real[real < t]
            if len(below):
                assert np.sum(real >= below.max()) > int(np.floor(fa * n))


def test_the_threshold_holds_in_the_engines_f32():
    # The engine compares f32 scores with an f32 threshold: one f64 step above the highest real
    # score would read back as that score and flag it.
    real = np.array([0.2, 0.99997896, 0.4], dtype=np.float32)
    t = np.float32(threshold_at(real.astype(np.float64), 0.0))
    assert np.sum(real >= t) == 0 and np.nextafter(t, np.float32(0)) == real.max()


def test_nothing_real_is_flagged_at_a_zero_share():
    real = np.array([0.2, 0.9, 0.9, 0.4])
    assert np.sum(real >= threshold_at(real, 0.0)) == 0


def test_leaving_a_package_out_fits_on_the_others_only():
    def row(pkg, score):
        return ({"voice_source": pkg}, {"vocal_score": score})

    # Package "a" (two codec variants) scores low, "b" high: fitted without "b", the
    # threshold sits above a's scores and flags every one of b's.
    real = [row("a-wav", 0.1), row("a-gsm", 0.2), row("a-wav", 0.3), row("b", 0.8), row("b", 0.9)]
    fake = [row("x", 0.25), row("x", 0.5), row("x", 0.95)]
    out = leave_one_package_out(real, fake, lambda r: r["vocal_score"], 0.0)
    assert sorted(out) == ["a", "b"]
    assert out["b"]["n"] == 2 and out["b"]["false_alarms"] == 1.0
    assert 0.3 < out["b"]["threshold"] < 0.31
    assert abs(out["b"]["caught"] - 2 / 3) < 1e-9
    # Fitted on b alone, a's scores all fall below: no false alarm, one fake caught.
    assert out["a"]["n"] == 3 and out["a"]["false_alarms"] == 0.0
    assert abs(out["a"]["caught"] - 1 / 3) < 1e-9


def test_a_floor_raises_every_fitted_threshold():
    # The music-alone side may demand a higher threshold than the voices: it is never lowered.
    groups = {"a": np.array([0.1, 0.2]), "b": np.array([0.3, 0.4])}
    low = leave_one_out(groups, 0.0)
    assert 0.2 < low["b"]["threshold"] < 0.21 and low["b"]["false_alarms"] == 1.0
    high = leave_one_out(groups, 0.0, floor=0.5)
    assert high["a"]["threshold"] == high["b"]["threshold"] == 0.5
    assert high["a"]["false_alarms"] == high["b"]["false_alarms"] == 0.0


def test_music_alone_is_grouped_by_package_with_its_codec_variants(tmp_path):
    report = tmp_path / "alone.jsonl"
    rows = [("data/m/asterisk-moh-opsound-wav/a.wav", 0.3), ("data/m/asterisk-moh-opsound-gsm/a.wav", None),
            ("data/m/supertux-data/b.ogg", 0.1)]
    report.write_text("".join(json.dumps({"path": p, "score": 0.01, "vocal_score": v}) + "\n" for p, v in rows))
    got = music_alone_scores(report, lambda r: r["vocal_score"] if r["vocal_score"] is not None else 0.0)
    assert sorted(got) == ["asterisk-moh-opsound", "supertux-data"]
    assert sorted(got["asterisk-moh-opsound"].tolist()) == [0.0, 0.3]
