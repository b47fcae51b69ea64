"""The MLSA resynthesis (deepscreen_train/resynthesis.py): with its settings varied per clip, as
music trains on it, the copy keeps the source's pitch, and the draws differ."""

import numpy as np

from deepscreen_train.resynthesis import mlsa


def fundamental(y: np.ndarray, rate: int) -> float:
    """The strongest autocorrelation lag between 2 and 20 ms, as a frequency."""
    y = y - y.mean()
    ac = np.correlate(y, y, "full")[len(y) - 1 :]
    lo, hi = int(rate / 500), int(rate / 50)
    return rate / (lo + int(np.argmax(ac[lo:hi])))


def test_mlsa_copies_keep_the_pitch_under_every_setting():
    rate = 44100
    t = np.arange(int(rate * 1.5)) / rate
    x = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 6)).astype(np.float32)
    x += 0.003 * np.random.default_rng(0).standard_normal(len(x)).astype(np.float32)
    copies = [mlsa(x, rate, np.random.default_rng(seed)) for seed in range(3)] + [mlsa(x, rate)]
    for y in copies:
        assert np.isfinite(y).all() and len(y) > 0.95 * len(x)
        mid = y[len(y) // 4 : 3 * len(y) // 4]
        assert abs(fundamental(mid, rate) - 220) < 11, fundamental(mid, rate)
    # The draws are different vocoders, not one.
    n = min(len(y) for y in copies)
    assert not np.allclose(copies[0][:n], copies[1][:n])
