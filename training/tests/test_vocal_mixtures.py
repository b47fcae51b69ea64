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


def test_the_separated_voices_become_train_py_lists(tmp_path, monkeypatch):
    # vocal_lists.py: each pair's two voices land in their split's list with train.py's labels,
    # sources and attacks; a pair whose voice file is missing is left out.
    import importlib.util
    import sys
    from pathlib import Path

    from deepscreen_train.common import read_rows, write_rows

    spec = importlib.util.spec_from_file_location(
        "vocal_lists", Path(__file__).resolve().parents[1] / "data" / "vocal_lists.py")
    vocal_lists = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vocal_lists)
    rows = [
        {"id": "train-00000-real", "label": "real", "attack": "bona-fide", "family": "real",
         "voice_source": "gcin-voice", "bed": "music/a.ogg", "split": "train", "vocal_db": "0.97"},
        {"id": "train-00000-fake", "label": "fake", "attack": "flite", "family": "tts",
         "voice_source": "flite", "bed": "music/a.ogg", "split": "train", "vocal_db": "0.97"},
        {"id": "dev-00000-fake", "label": "fake", "attack": "world", "family": "vocoder",
         "voice_source": "world", "bed": "music/b.ogg", "split": "dev", "vocal_db": "-3.00"},
        {"id": "dev-00000-real", "label": "real", "attack": "bona-fide", "family": "real",
         "voice_source": "klettres-data", "bed": "music/b.ogg", "split": "dev", "vocal_db": "-3.00"},
    ]
    write_rows(tmp_path / "mixtures.csv", rows, list(rows[0]))
    (tmp_path / "vocals").mkdir()
    for r in rows[:3]:  # dev-00000-real has no voice file
        (tmp_path / "vocals" / f"{r['id']}.flac").write_bytes(b"")
    monkeypatch.setattr(sys, "argv", ["vocal_lists.py", "--mix", str(tmp_path)])
    assert vocal_lists.main() == 0
    train = read_rows(tmp_path / "train.csv")
    assert [(r["path"], r["label"], r["attack"], r["source"]) for r in train] == [
        ("vocals/train-00000-real.flac", "bonafide", "-", "gcin-voice"),
        ("vocals/train-00000-fake.flac", "spoof", "flite", "flite"),
    ]
    dev = read_rows(tmp_path / "dev.csv")
    assert [(r["path"], r["family"]) for r in dev] == [("vocals/dev-00000-fake.flac", "vocoder")]
    assert read_rows(tmp_path / "dev-channel.csv") == []


def test_vocal_lists_leave_out_pairs_from_dev_sources():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("vocal_lists", Path(__file__).parents[1] / "data" / "vocal_lists.py")
    vocal_lists = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vocal_lists)
    pair = {"family": "tts", "voice_source": "gcin-voice", "bed": "music/ufoai-music/a.ogg", "split": "train"}
    assert not vocal_lists.leaks_dev_source(pair)
    assert vocal_lists.leaks_dev_source({**pair, "voice_source": "asterisk-core-sounds-ru-gsm"})
    assert vocal_lists.leaks_dev_source({**pair, "bed": "music/asterisk-moh-opsound-wav/b.wav"})
    alone = {"family": "music-alone", "voice_source": "supertux-data", "bed": "music/supertux-data/c.ogg", "split": "train"}
    assert vocal_lists.leaks_dev_source(alone)
