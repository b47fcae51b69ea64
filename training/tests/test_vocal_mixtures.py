"""The voices-in-music mixer (deepscreen_train/mixing.py, used by data/vocal_mixtures.py): the
voice lands at the level asked for against the bed, in the middle of the stereo image, and the
sum never clips."""

import numpy as np

from deepscreen_train.mixing import mix, rms


def test_the_voice_sits_at_the_level_asked_for():
    rng = np.random.default_rng(1)
    bed = rng.uniform(-0.1, 0.1, size=(2, 44100)).astype(np.float32)
    voice = np.zeros(44100, np.float32)
    voice[10000:30000] = np.sin(np.arange(20000) * 0.05) * 0.3  # half of it silent
    for db in (-8.0, 0.0, 4.0):
        out = mix(bed, voice, db)
        added = out - bed
        # Both channels carry the same voice.
        assert np.allclose(added[0], added[1], atol=1e-6)
        level = 20 * np.log10(rms(added[0, 10000:30000]) / rms(bed))
        assert abs(level - db) < 0.05, (db, level)


def test_a_loud_sum_is_scaled_below_full_scale():
    bed = np.full((2, 1000), 0.9, np.float32)
    voice = np.full(1000, 0.5, np.float32)
    out = mix(bed, voice, 6.0)
    assert np.abs(out).max() <= 0.98 + 1e-6
