"""The Python package against the engine's CLI: the same scores for an array, its WAV file and
`deepscreen screen`; resampling and multichannel input; clear errors for bad input; a catalog
with a broken file; two detectors in two threads; reports read back; the README example.
Needs `pip install ./python` and the release CLI (`cargo build --release`; DEEPSCREEN_BIN)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

import deepscreen

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("DEEPSCREEN_BIN", ROOT / "target" / "release" / "deepscreen"))
MODEL = "speech-cnn"  # small and fast; 16 kHz, 4 s windows


def tone(seconds: float, rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return x if channels == 1 else np.repeat(x[:, None], channels, axis=1)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    path.write_bytes(deepscreen._wav_bytes(np.ascontiguousarray(samples.reshape(len(samples), -1)), rate))
    return path


def file_threshold(name: str) -> float:
    """The default threshold stored in `models/<name>.safetensors`' JSON metadata."""
    with open(ROOT / "models" / f"{name}.safetensors", "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return float(json.loads(header["__metadata__"]["deepscreen"])["threshold"])


def cli_rows(*args: str) -> list[dict]:
    out = subprocess.run([str(CLI), "screen", "--no-progress", "--segments", "--backend", "cpu", *args],
                         capture_output=True, text=True, check=False)
    assert out.returncode in (0, 1), out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


@pytest.fixture(scope="module")
def det() -> deepscreen.Detector:
    return deepscreen.Detector(MODEL, backend="cpu", threads=2)


def test_array_file_and_cli_agree_bit_for_bit(det, tmp_path):
    x = tone(9.3, 16000)
    wav = write_wav(tmp_path / "tone.wav", x, 16000)
    from_array, from_file = det.score(x, 16000), det.score_file(wav)
    (cli,) = cli_rows("--model", MODEL, str(wav))
    assert from_array.path == "<array>" and from_file.path == str(wav)
    assert from_array.score == from_file.score == cli["score"]
    assert from_file.verdict == cli["verdict"] and from_file.threshold == cli["threshold"]
    assert [(w.start_s, w.end_s, w.score) for w in from_file.windows] == \
        [(s["start_s"], s["end_s"], s["score"]) for s in cli["segments"]]
    assert len(from_file.windows) == 3  # 4 s windows over 9.3 s: two, and one aligned to the end
    d = from_file.to_dict()
    assert {k: d[k] for k in cli if k != "segments"} == {k: cli[k] for k in cli if k != "segments"}


def test_other_rates_and_channels_are_resampled_and_mixed_down_by_the_engine(det, tmp_path):
    mono = det.score(tone(6.0, 16000), 16000)
    stereo = det.score(tone(6.0, 16000, channels=2), 16000)
    assert stereo.channels == 2 and stereo.score == mono.score  # (x + x) / 2 == x exactly
    # 44.1 kHz stereo: resampled and mixed down by the engine, as the CLI does with that file.
    x = tone(6.0, 44100, channels=2)
    hi = det.score(x, 44100)
    (cli,) = cli_rows("--model", MODEL, str(write_wav(tmp_path / "hi.wav", x, 44100)))
    assert (hi.sample_rate, hi.channels, hi.score) == (44100, 2, cli["score"])
    assert abs(hi.duration_s - 6.0) < 1e-9
    assert [(w.start_s, w.end_s) for w in hi.windows] == [(w.start_s, w.end_s) for w in mono.windows]
    # The same tone at either rate scores alike (not equal: the band above 8 kHz differs).
    assert abs(hi.score - mono.score) < 0.1, (hi.score, mono.score)
    # int16 samples are a 16-bit PCM file's (quantisation fills the empty spectral bins of a
    # pure tone, which the spectrogram models notice: compared with the CLI, not the float).
    pcm = (tone(6.0, 16000) * 32767).astype(np.int16)
    (cli,) = cli_rows("--model", MODEL, str(write_wav(tmp_path / "pcm.wav", pcm, 16000)))
    assert det.score(pcm, 16000).score == cli["score"] and cli["codec"] == "pcm_s16le"


def test_bad_input_raises_clear_errors(det, tmp_path):
    x = tone(2.0, 16000)
    bad = x.copy()
    bad[100] = np.nan
    cases = [
        (lambda: det.score(bad, 16000), ValueError, "NaN"),
        (lambda: det.score(np.zeros(0, np.float32), 16000), ValueError, "empty"),
        (lambda: det.score(x.astype(np.int32), 16000), ValueError, "int32"),
        (lambda: det.score(x, 0), ValueError, "sample_rate"),
        (lambda: det.score(np.zeros((2, 32000), np.float32), 16000), ValueError, "(frames, channels)"),
        (lambda: deepscreen.Detector(MODEL, backend="tpu"), ValueError, "backend"),
        (lambda: deepscreen.Detector("no-such-model"), deepscreen.DeepscreenError, "no-such-model"),
        (lambda: det.score_file(tmp_path / "missing.wav"), FileNotFoundError, "missing"),
    ]
    for call, kind, words in cases:
        with pytest.raises(kind, match=re.escape(words)):
            call()
    # A file the engine cannot read is a Result with an error, as a report row is.
    (tmp_path / "text.wav").write_text("not audio")
    r = det.score_file(tmp_path / "text.wav")
    assert r.score is None and r.verdict is None and "not a recognised audio file" in r.error


def test_screen_streams_a_catalog_with_a_broken_file(det, tmp_path):
    cat = tmp_path / "catalog"
    cat.mkdir()
    for i in range(5):
        write_wav(cat / f"track{i}.wav", tone(2.5, 16000, 200.0 + 40 * i), 16000)
    (cat / "broken.wav").write_bytes(b"RIFF nonsense")
    results = list(det.screen(cat))
    assert [Path(r.path).name for r in results] == sorted(p.name for p in cat.iterdir())
    assert sum(r.error is not None for r in results) == 1
    assert {Path(r.path).name: r.score for r in results} == \
        {Path(r["path"]).name: r["score"] for r in cli_rows("--model", MODEL, str(cat))}
    # resume: the files a report already holds are skipped.
    report = tmp_path / "part.jsonl"
    report.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in results[:3]))
    assert len(list(det.screen(cat, resume=report))) == len(results) - 3


def test_two_detectors_in_two_threads(tmp_path):
    clips = [tone(5.0, 16000, 150.0 + 30 * i) for i in range(4)]
    expected = [deepscreen.Detector(MODEL, backend="cpu").score(c, 16000).score for c in clips]
    got: dict[int, list[float]] = {}

    def work(k: int) -> None:
        d = deepscreen.Detector(MODEL, backend="cpu")
        got[k] = [d.score(c, 16000).score for c in clips]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {0: expected, 1: expected}


def test_reports_read_back_and_models_and_devices(tmp_path):
    wav = write_wav(tmp_path / "a.wav", tone(3.0, 16000), 16000)
    for fmt in ("jsonl", "csv"):
        out = tmp_path / f"r.{fmt}"
        subprocess.run([str(CLI), "screen", "--no-progress", "--backend", "cpu", "--model", MODEL, "-o", str(out),
                        str(wav)], check=True, capture_output=True)
        (row,) = deepscreen.read_report(out, as_dataframe=False)
        assert row["path"] == str(wav) and isinstance(row["score"], float) and row["windows"] == 1
    names = {m["name"]: m for m in deepscreen.models()}
    # The reference: the threshold in the shipped model file's own metadata, read without the engine.
    assert names["music"]["default"] and abs(names["speech"]["threshold"] - file_threshold("speech")) < 1e-6
    backends = {d["backend"]: d for d in deepscreen.devices()}
    assert backends["cpu"]["available"] and set(backends) == {"cpu", "wgpu", "cuda"}


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"<!-- python-example -->\n```python\n(.*?)```", readme, re.S)
    assert example, "README's Python example (marked <!-- python-example -->)"
    folder = tmp_path / "my-catalog"
    folder.mkdir()
    for i in range(3):
        write_wav(folder / f"clip{i}.wav", tone(4.5, 16000, 300.0 + 50 * i), 16000)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(example.group(1), "README.md", "exec"), scope)
    assert len(scope["results"]) == 3


def test_a_music_detector_runs_the_vocal_stage_as_the_cli_does(tmp_path):
    # A plucked backing at 44.1 kHz: the vocal stage's fields match the CLI's row (the Rust
    # tests put a real voice through it); with vocals="off" they are None; bad options are refused.
    rate = 44100
    t = np.arange(int(8.0 * rate)) / rate
    song = (0.1 * np.sin(2 * np.pi * 110 * t) * np.exp(-(t % 0.25) * 5)).astype(np.float32)
    wav = write_wav(tmp_path / "song.wav", song, rate)
    det = deepscreen.Detector("music", backend="cpu", threads=2)
    r = det.score_file(wav)
    (cli,) = cli_rows("--model", "music", str(wav))
    assert r.vocal_share is not None and r.vocal_threshold is not None
    assert (r.vocal_share, r.vocal_score, r.vocal_start_s, r.vocal_end_s, r.vocal_threshold) == \
        (cli["vocal_share"], cli["vocal_score"], cli["vocal_start_s"], cli["vocal_end_s"], cli["vocal_threshold"])
    assert r.score == cli["score"] and r.verdict == cli["verdict"]
    assert det.info["vocal_threshold"] == pytest.approx(cli["vocal_threshold"], rel=1e-6)
    off = deepscreen.Detector("music", backend="cpu", threads=2, vocals="off").score_file(wav)
    assert off.vocal_share is None and off.vocal_score is None and off.vocal_threshold is None
    with pytest.raises(ValueError, match="vocals must be"):
        deepscreen.Detector("music", backend="cpu", vocals="maybe")
    with pytest.raises(deepscreen.DeepscreenError, match="need the vocal stage"):
        deepscreen.Detector(MODEL, backend="cpu", vocal_threshold=0.5)
