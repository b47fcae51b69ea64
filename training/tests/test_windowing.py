"""`deepscreen_train.windowing` against the engine: on signals with pauses, quiet passages and
digital-silence gaps, the windows it cuts (gated, end-aligned tail, skipped when inactive,
times mapped back to the file's clock) are the ones `deepscreen screen --segments` scores, for
models with overlapping, adjacent and 44.1 kHz windows; short and silent files as the engine
treats them. Needs the release binary (`cargo build --release`; DEEPSCREEN_BIN overrides)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from deepscreen_train import windowing

ROOT = Path(__file__).resolve().parents[2]
ENGINE = Path(os.environ.get("DEEPSCREEN_BIN", ROOT / "target" / "release" / "deepscreen"))

sys.path.insert(0, str(ROOT / "training"))
from fuse import config_of  # noqa: E402


def model_window(name: str) -> tuple[int, dict]:
    config = config_of(ROOT / "models" / f"{name}.safetensors")
    return config["sample_rate"], config["window"]


def write_wav(path: Path, x: np.ndarray, rate: int) -> np.ndarray:
    """16-bit PCM; returns the samples as the engine decodes them."""
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return pcm.astype(np.float32) / 32768


def signal(rate: int, seed: int = 7) -> np.ndarray:
    """Tones and noise with a long digital-silence pause, a -70 dBFS passage (both cut by the
    gate), a 15 ms gap inside loud audio (filled, not cut) and short pauses."""
    rng = np.random.default_rng(seed)

    def tone(seconds: float, dbfs: float = -20.0, freq: float = 440.0) -> np.ndarray:
        t = np.arange(int(seconds * rate)) / rate
        return 10 ** (dbfs / 20) * np.sqrt(2) * np.sin(2 * np.pi * freq * t)

    loud = np.concatenate([tone(1.2), np.zeros(int(0.015 * rate)), tone(1.2, freq=660.0)])
    loud = loud + 0.01 * rng.standard_normal(len(loud))
    pieces = [
        tone(1.3), np.zeros(int(0.7 * rate)), loud, tone(1.0, dbfs=-70.0), tone(3.1, freq=300.0),
        np.zeros(int(0.3 * rate)), tone(0.9, freq=900.0), np.zeros(int(0.05 * rate)), tone(2.3),
    ]
    return np.concatenate(pieces)


def engine_rows(path: Path, model: str) -> dict:
    out = subprocess.run(
        [str(ENGINE), "screen", "--no-progress", "--segments", "--backend", "cpu", "--model", model, str(path)],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout.splitlines()[0])


@pytest.mark.parametrize("model", ["speech-lcnn", "speech-cnn-wb", "music-cnn-wb"])
def test_the_windows_are_the_engines(tmp_path: Path, model: str) -> None:
    rate, window = model_window(model)
    x = write_wav(tmp_path / "signal.wav", signal(rate), rate)
    ours = windowing.windows(
        x, rate, window["seconds"], window["hop_seconds"], window.get("min_seconds", 0.25),
        window.get("pad", "repeat"),
    )
    row = engine_rows(tmp_path / "signal.wav", model)
    theirs = [(s["start_s"], s["end_s"]) for s in row["segments"]]
    assert len(ours) >= 3, "the signal should give several windows"
    assert len(ours) == len(theirs), (ours, theirs)
    for w, (start, end) in zip(ours, theirs):
        assert abs(w.start / rate - start) < 1e-6 and abs(w.end / rate - end) < 1e-6, (w, start, end)
        assert len(w.samples) == int(round(window["seconds"] * rate))
    # The gate cut something (the pauses): some window spans more file time than its length.
    assert any(w.end - w.start > len(w.samples) for w in ours)


def test_short_and_silent_files_as_the_engine_treats_them(tmp_path: Path) -> None:
    rate, window = model_window("speech-lcnn")  # 4 s windows, at least 0.5 s
    args = (rate, window["seconds"], window["hop_seconds"], window["min_seconds"])
    t = np.arange(int(0.8 * rate)) / rate
    short = write_wav(tmp_path / "short.wav", 0.1 * np.sin(2 * np.pi * 440 * t), rate)
    (w,) = windowing.windows(short, *args)
    assert (w.start, w.end) == (0, len(short))
    assert np.array_equal(w.samples[len(short) : 2 * len(short)], w.samples[: len(short)]), "repeated"
    row = engine_rows(tmp_path / "short.wav", "speech-lcnn")
    assert [(s["start_s"], s["end_s"]) for s in row["segments"]] == [(0.0, 0.8)]
    tiny = write_wav(tmp_path / "tiny.wav", 0.1 * np.sin(2 * np.pi * 440 * t[: int(0.3 * rate)]), rate)
    with pytest.raises(windowing.TooShort):
        windowing.windows(tiny, *args)
    assert "too short" in engine_rows(tmp_path / "tiny.wav", "speech-lcnn")["error"]
    silent = write_wav(tmp_path / "silent.wav", np.zeros(3 * rate), rate)
    assert windowing.windows(silent, *args) == []
    assert engine_rows(tmp_path / "silent.wav", "speech-lcnn")["verdict"] == "no-signal"


def test_digital_silence_gets_the_engines_noise_floor() -> None:
    # The engine's noise for seed 0 (src/audio/activity.rs `uniform`): first values, by hand from
    # its SplitMix64-style hash, and the floor's level.
    x = np.zeros(1600, dtype=np.float32)
    filled = windowing.fill_digital_silence(x, 16000, seed=3)
    rms_db = 20 * np.log10(np.sqrt(np.mean(filled.astype(np.float64) ** 2)))
    assert abs(rms_db - windowing.FLOOR_DBFS) < 0.5
    assert np.array_equal(windowing.fill_digital_silence(x, 16000, seed=3), filled), "deterministic"
    assert not np.array_equal(windowing.fill_digital_silence(x, 16000, seed=4), filled)
    # A run shorter than 10 ms is left alone.
    y = np.full(1600, 0.5, dtype=np.float32)
    y[100:150] = 0
    assert np.array_equal(windowing.fill_digital_silence(y, 16000, seed=3), y)
