"""deepscreen_train.reports: one reader of `screen` JSONL reports; its filters, a summary record
skipped, a path reported twice refused, a broken line named."""

import json

import pytest

from deepscreen_train.reports import read_report


def write(path, lines):
    path.write_text("\n".join(json.dumps(r) if isinstance(r, dict) else r for r in lines) + "\n")
    return path


ROWS = [
    {"path": "ok.wav", "score": 0.2, "segments": [{"start_s": 0, "end_s": 4, "score": 0.2}]},
    {"path": "flat.wav", "score": 0.3},  # screened without --segments
    {"path": "silent.wav", "score": None, "verdict": "no-signal", "segments": []},
    {"path": "broken.wav", "score": None, "error": "decode: not an audio file"},
    {"summary": {"files": 4, "failed": 1}},
]


def test_filters_drop_only_what_they_name(tmp_path):
    p = write(tmp_path / "r.jsonl", ROWS)
    assert list(read_report(p)) == ["ok.wav", "flat.wav", "silent.wav", "broken.wav"]
    assert list(read_report(p, drop_errors=True)) == ["ok.wav", "flat.wav", "silent.wav"]
    assert list(read_report(p, need_score=True)) == ["ok.wav", "flat.wav"]
    assert list(read_report(p, drop_errors=True, need_score=True, need_segments=True)) == ["ok.wav"]


def test_duplicates_and_broken_lines_are_refused(tmp_path):
    with pytest.raises(ValueError, match="ok.wav is reported twice"):
        read_report(write(tmp_path / "d.jsonl", [ROWS[0], ROWS[0]]))
    with pytest.raises(ValueError, match=r"b.jsonl:2: not a JSON row"):
        read_report(write(tmp_path / "b.jsonl", [ROWS[0], '{"path": "cut.wav", "sco']))
