"""deepscreen_train.compare: two models' reports over the same files, grouped by package and
generator; counts and EERs recomputed by hand for a small case."""

import json

import pytest

from deepscreen_train.compare import group_of, read_report, summarise


def write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def row(path, score, verdict=None, error=None):
    return {"path": path, "score": score, "verdict": verdict or ("synthetic" if score >= 0.5 else "bona-fide"),
            "error": error}


def test_groups_come_from_the_path():
    assert group_of("data/real/speech/klettres-data/a/b.ogg", False) == "klettres-data"
    assert group_of("data/ab/archival/klettres-data--mulaw8k--x.wav", False) == "klettres-data (mulaw8k)"
    assert group_of("data/fake/speech/piper-vits/dev/00001.wav", True) == "piper-vits"


def test_counts_and_eer_on_the_files_both_models_scored(tmp_path):
    real_a = write(tmp_path / "ra.jsonl", [
        row("r/speech/p1/1.wav", 0.1), row("r/speech/p1/2.wav", 0.6),
        row("r/speech/p2/1.wav", 0.2), row("r/speech/p2/2.wav", 0.3),
        row("r/speech/p2/3.wav", 0.0, error="too short")])
    real_b = write(tmp_path / "rb.jsonl", [
        row("r/speech/p1/1.wav", 0.1), row("r/speech/p1/2.wav", 0.2),
        row("r/speech/p2/1.wav", 0.2), row("r/speech/p2/2.wav", 0.9),
        row("r/speech/p2/3.wav", 0.4)])
    fake_a = write(tmp_path / "fa.jsonl", [row("f/g1/dev/1.wav", 0.7), row("f/g1/dev/2.wav", 0.8)])
    fake_b = write(tmp_path / "fb.jsonl", [row("f/g1/dev/1.wav", 0.4), row("f/g1/dev/2.wav", 0.95)])
    s = summarise([read_report(real_a), read_report(real_b)], [read_report(fake_a), read_report(fake_b)],
                  held_out={"p1"})
    a, b = s["models"]
    # p2/3.wav failed for model a: left out for both.
    assert a["real"]["p2"] == {"files": 2, "flagged": 0}
    assert b["real"]["p2"] == {"files": 2, "flagged": 1}
    assert a["real"]["p1"]["flagged"] == 1 and b["real"]["p1"]["flagged"] == 0
    assert a["fake"]["g1"]["caught"] == 2 and b["fake"]["g1"]["caught"] == 1
    # Bona fide = held-out p1 only: a's {0.1, 0.6} vs fakes {0.7, 0.8} separate fully.
    assert a["fake"]["g1"]["eer"] == pytest.approx(0.0)
    # b's {0.1, 0.2} vs {0.4, 0.95}: separate too; its p2 false alarm is not on the bona fide side.
    assert b["fake"]["g1"]["eer"] == pytest.approx(0.0)
    assert s["errors"] == {"real": [1, 0], "fake": [0, 0]}


def test_a_path_reported_twice_is_refused(tmp_path):
    p = write(tmp_path / "r.jsonl", [row("x.wav", 0.1), row("x.wav", 0.2)])
    with pytest.raises(ValueError, match="twice"):
        read_report(p)


def test_a_silent_file_is_not_caught_and_not_scored(tmp_path):
    # A no-signal fake has no score: it counts as not caught, and stays out of the EER (it must
    # not enter it as a NaN, which the DET curve would count as detected at every threshold).
    real = write(tmp_path / "r.jsonl", [row("r/speech/p1/1.wav", 0.1), row("r/speech/p1/2.wav", 0.6)])
    fake = write(tmp_path / "f.jsonl", [
        row("f/g1/dev/1.wav", 0.4),
        {"path": "f/g1/dev/2.wav", "score": None, "verdict": "no-signal", "error": None}])
    s = summarise([read_report(real)], [read_report(fake)], held_out={"p1"})
    g1 = s["models"][0]["fake"]["g1"]
    assert g1["files"] == 2 and g1["caught"] == 0
    # One fake at 0.4 against real {0.1, 0.6}: at 0.4 FA 1/2, miss 0, EER (1/2 + 0) / 2. With the
    # silent file as a NaN "fake" the curve would meet at 0.6 instead (FA 1/2, miss 1/2): 0.5.
    assert g1["eer"] == pytest.approx(0.25)
