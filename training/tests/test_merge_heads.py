"""merge_heads.py: the merged head's window logit equals the weighted sum of the two heads'
calibrated logits, each head run by hand (numpy, per-position dense layers, ReLU, mean, linear)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "whisper"))
from merge_heads import merge  # noqa: E402


def head(rng, width, hidden, dtype):
    return {
        "head.frame1.weight": rng.normal(0, 0.2, (hidden, 1, 1, width)).astype(dtype),
        "head.frame1.bias": rng.normal(0, 0.1, hidden).astype(dtype),
        "head.frame2.weight": rng.normal(0, 0.3, (hidden, hidden, 1, 1)).astype(dtype),
        "head.frame2.bias": rng.normal(0, 0.1, hidden).astype(dtype),
        "head.out.weight": rng.normal(0, 0.5, (1, hidden)).astype(dtype),
        "head.out.bias": rng.normal(0, 0.5, 1).astype(dtype),
    }


def logit(t, x):
    """One window [positions, width] through a head, in f64."""
    g = lambda k: t[k].astype(np.float64)  # noqa: E731
    h = np.maximum(x @ g("head.frame1.weight")[:, 0, 0, :].T + g("head.frame1.bias"), 0)
    h = np.maximum(h @ g("head.frame2.weight")[:, :, 0, 0].T + g("head.frame2.bias"), 0)
    return float(h.mean(axis=0) @ g("head.out.weight")[0] + g("head.out.bias")[0])


def test_the_merged_head_is_the_weighted_sum_of_the_calibrated_heads():
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float16):
        a, b = head(rng, 24, 8, dtype), head(rng, 24, 5, dtype)
        cal_a, cal_b = {"scale": 0.64, "bias": 0.81}, {"scale": 0.57, "bias": -0.35}
        for wa, wb in ((1.0, 1.0), (0.5, 2.0)):
            m = merge(a, b, wa, wb, cal_a, cal_b)
            assert m["head.frame1.weight"].shape == (13, 1, 1, 24)
            assert m["head.frame2.weight"].shape == (13, 13, 1, 1)
            assert m["head.frame1.weight"].dtype == dtype  # the dense layers keep their stored values
            for _ in range(5):
                x = rng.normal(0, 1, (30, 24))
                want = wa * (cal_a["scale"] * logit(a, x) + cal_a["bias"]) + \
                    wb * (cal_b["scale"] * logit(b, x) + cal_b["bias"])
                assert abs(logit(m, x) - want) < 1e-5 * max(1.0, abs(want)), (dtype, wa, wb)


def test_no_unit_of_one_head_reads_the_other():
    rng = np.random.default_rng(4)
    a, b = head(rng, 6, 3, np.float32), head(rng, 6, 2, np.float32)
    m = merge(a, b, 1.0, 1.0, {"scale": 1.0, "bias": 0.0}, {"scale": 1.0, "bias": 0.0})
    w = m["head.frame2.weight"][:, :, 0, 0]
    assert not w[:3, 3:].any() and not w[3:, :3].any()
