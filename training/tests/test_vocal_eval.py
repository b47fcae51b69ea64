"""The vocal threshold's fit in separator/vocal_eval.py: the share of real scores it flags, and
leaving each real speech package out (codec variants of one recording together), checked
against counts made by hand on made-up scores."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "separator"))
from vocal_eval import leave_one_package_out, recording, threshold_at  # noqa: E402


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


def test_nothing_real_is_flagged_at_a_zero_share():
    real = np.array([0.2, 0.9, 0.9, 0.4])
    assert np.sum(real >= threshold_at(real, 0.0)) == 0


def test_codec_variants_are_one_recording():
    assert recording("asterisk-core-sounds-ru-wav") == "asterisk-core-sounds-ru"
    assert recording("asterisk-core-sounds-ru-g722") == "asterisk-core-sounds-ru"
    assert recording("asterisk-core-sounds-ru-gsm") == "asterisk-core-sounds-ru"
    assert recording("fillets-ng-data-nl") == "fillets-ng-data-nl"
    assert recording("gswav") == "gswav"  # only a suffix after a dash is a codec


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
