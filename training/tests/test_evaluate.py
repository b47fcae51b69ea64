"""evaluate.py --rethreshold: the rates an engine report gives at a new threshold, recomputed from
its score file, must equal what the engine's own rule (score >= threshold) gives there."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evaluate import at_threshold  # noqa: E402


def rows_and_scores():
    rows = [
        {"path": "a", "label": "bonafide", "attack": "-", "source": "pkg1"},
        {"path": "b", "label": "bonafide", "attack": "-", "source": "pkg1"},
        {"path": "c", "label": "bonafide", "attack": "-", "source": "pkg2"},
        {"path": "d", "label": "bonafide", "attack": "-", "source": "pkg2"},
        {"path": "e", "label": "spoof", "attack": "tts", "source": "pkg1"},
        {"path": "f", "label": "spoof", "attack": "tts", "source": "pkg2"},
        {"path": "g", "label": "spoof", "attack": "vocoder", "source": "pkg1"},
        {"path": "h", "label": "bonafide", "attack": "-", "source": "pkg2"},  # failed: not scored
    ]
    scores = {"a": 0.1, "b": 0.6, "c": 0.5, "d": 0.2, "e": 0.9, "f": 0.5, "g": 0.3}
    return rows, scores


def engine_report():
    """As `deepscreen eval --json` wrote it at threshold 0.8 (EER etc. left as they were)."""
    m = lambda fa, det: {"eer": 0.25, "false_alarm_rate": fa, "detection_rate": det}  # noqa: E731
    return {
        "threshold": 0.8,
        "pooled": m(0.0, 1 / 3),
        "per_attack": {"tts": m(0.0, 0.5), "vocoder": m(0.0, 0.0)},
        "per_source": {
            "pkg1": {"bona_fide": 2, "flagged": 0, "false_alarm_rate": 0.0},
            "pkg2": {"bona_fide": 2, "flagged": 0, "false_alarm_rate": 0.0},
        },
        "failed": 1,
    }


def test_rates_at_a_lower_threshold():
    rows, scores = rows_and_scores()
    out = at_threshold(engine_report(), rows, scores, 0.5)
    assert out["threshold"] == 0.5
    # Bona fide 0.1, 0.6, 0.5, 0.2: two of four at or above 0.5 (the engine's >=).
    assert out["pooled"]["false_alarm_rate"] == pytest.approx(0.5)
    assert out["pooled"]["detection_rate"] == pytest.approx(2 / 3)
    assert out["per_attack"]["tts"]["detection_rate"] == pytest.approx(1.0)
    assert out["per_attack"]["vocoder"]["detection_rate"] == pytest.approx(0.0)
    assert out["per_source"]["pkg1"] == {"bona_fide": 2, "flagged": 1, "false_alarm_rate": 0.5}
    assert out["per_source"]["pkg2"] == {"bona_fide": 2, "flagged": 1, "false_alarm_rate": 0.5}
    # What does not depend on the threshold is kept.
    assert out["pooled"]["eer"] == 0.25 and out["failed"] == 1


def test_the_report_is_not_changed_in_place():
    rows, scores = rows_and_scores()
    report = engine_report()
    at_threshold(report, rows, scores, 0.05)
    assert report == engine_report()


def test_a_score_file_that_disagrees_with_the_report_is_refused():
    rows, scores = rows_and_scores()
    del scores["a"]  # the report counted two scored bona fide of pkg1
    with pytest.raises(ValueError, match="pkg1"):
        at_threshold(engine_report(), rows, scores, 0.5)


def test_seen_attacks_come_from_what_the_models_trained_on():
    """The music v3 candidate (a fused file reading its CNN files beside it) never trained on MLSA
    or a GAN codec, whatever today's generator table says; the shipped music v3.2 trained on both,
    on every GAN decoder, and on neither held-out attack. The Whisper heads record no training
    clips, and are named."""
    from deepscreen_train.common import is_seen
    from evaluate import ROOT, trained_attacks

    shipped, silent = trained_attacks("music")
    assert silent == ["music-whisper"]
    assert {"world", "griffin-lim-mel", "ae-rvq", "mlsa", "gan-codec-24k", "gan-istft-32k"} <= shipped
    assert not {"ae-subpixel", "griffin-lim-linear"} & shipped
    assert is_seen("music", "mlsa") and is_seen("music", "gan-codec-24k")  # the table today
    v3, silent = trained_attacks(str(ROOT / "models" / "candidates" / "music-fusion-v3.safetensors"))
    assert silent == ["music-whisper"]
    assert "gan-hifigan-44k" in v3 and not {"mlsa", "gan-codec-24k", "gan-codec-44k"} & v3
    network, silent = trained_attacks(str(ROOT / "models" / "speech-cnn.safetensors"))
    assert silent == [] and "gan-hifigan-16k" in network and "piper-vits" not in network
