"""`training/fuse.py` with a member given as a file: the fused file names it by its id and its
path from the fused file, and the engine reads it from there — its per-window member scores are
the network's own (`deepscreen screen` of the same network), and the fused score sums the
members' weighted logits. Needs the release binary (`cargo build --release`; DEEPSCREEN_BIN
overrides)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from test_windowing import ENGINE, ROOT

sys.path.insert(0, str(ROOT / "training"))
from fuse import config_of  # noqa: E402

FUSE = ROOT / "training" / "fuse.py"


def fuse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(FUSE), *args], capture_output=True, text=True, cwd=ROOT)


def screen(model: str, audio: Path) -> dict:
    out = subprocess.run(
        [str(ENGINE), "screen", "--no-progress", "--segments", "--exact", "--backend", "cpu", "--model", model,
         str(audio)],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout.splitlines()[0])


def test_a_member_file_is_named_by_id_and_read_by_the_engine(tmp_path: Path) -> None:
    (tmp_path / "members").mkdir()
    member = tmp_path / "members" / "cnn.safetensors"
    shutil.copy(ROOT / "models" / "speech-cnn.safetensors", member)
    out = tmp_path / "fused" / "fused.safetensors"
    out.parent.mkdir()
    done = fuse("--member", str(member), "speech-cnn-wb", "--weights", "0.75", "0.5",
                "--id", "test-fusion", "--out", str(out), "--threshold", "0.6")
    assert done.returncode == 0, done.stderr
    members = config_of(out)["fusion"]["members"]
    cnn_id = config_of(member)["id"]
    assert members == [
        {"model": cnn_id, "file": "../members/cnn.safetensors", "weight": 0.75},
        {"model": "speech-cnn-wb", "weight": 0.5},
    ]
    refused = fuse("--member", str(member), "speech-cnn-wb", "--id", "x", "--out", str(out), "--cascade",
                   str(out), "--defer", "speech-whisper")
    assert refused.returncode != 0 and "not among the members" in refused.stderr

    rng = np.random.default_rng(3)
    rate = 16000
    t = np.arange(9 * rate) / rate
    voice = 0.2 * np.sin(2 * np.pi * (140 + 30 * np.sin(2 * np.pi * 3 * t)) * t) * (1 + np.sin(2 * np.pi * 4 * t))
    x = voice + 0.01 * rng.standard_normal(len(t))
    audio = tmp_path / "voice.wav"
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(np.round(x * 32767), -32768, 32767).astype("<i2").tobytes())

    fused = screen(str(out), audio)
    alone = screen("speech-cnn", audio)
    assert fused["model"] == "test-fusion"
    assert len(fused["segments"]) == len(alone["segments"]) >= 2
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    for f, a in zip(fused["segments"], alone["segments"]):
        assert f["members"][0] == pytest.approx(a["score"], abs=1e-6)
        z = 0.75 * logit(f["members"][0]) + 0.5 * logit(f["members"][1])
        assert f["score"] == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-5)
