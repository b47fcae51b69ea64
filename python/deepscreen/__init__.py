"""deepscreen from Python: screen audio for AI-generated deepfakes with the embedded detectors, on
the same Rust engine as the `deepscreen` command (its decoding, resampling, windows, backends
and calibrated scores; a file's score here is the CLI's, bit for bit on the CPU backend).

    import deepscreen
    det = deepscreen.Detector("speech")            # or "music" (default), or a .safetensors file
    r = det.score_file("interview.flac")
    print(r.score, r.verdict, r.threshold)          # calibrated P(synthetic), its verdict
    for w in r.windows:                             # which part looks fake
        print(w.start_s, w.end_s, w.score)
    r = det.score(samples, 44100)                   # a NumPy array, mono or (frames, channels)
    for r in det.screen(["catalog/"]):              # a folder, streamed, as `deepscreen screen`
        ...

`score` is calibrated on the project's own held-out data and the default thresholds are set
for 1 % false alarms there; on real audio unlike the training data, and where fakes are rare,
read the README's "Reading the results" before trusting a verdict.
"""

from __future__ import annotations

import csv
import json
import os
import struct
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from . import _engine

__all__ = ["Detector", "Result", "Window", "read_report", "devices", "models", "DeepscreenError"]
__version__ = _engine.__version__


class DeepscreenError(RuntimeError):
    """The engine could not do what was asked (a model or backend that cannot start, …)."""


@dataclass(frozen=True)
class Window:
    """One scored window: its span in the file (seconds) and its calibrated score."""

    start_s: float
    end_s: float
    score: float


@dataclass(frozen=True)
class Result:
    """One file's result: the fields of a report row (README "Usage"). `score` and `verdict`
    are None when the file could not be scored (`error` says why) or holds no signal
    (`verdict` "no-signal")."""

    path: str
    score: float | None
    verdict: str | None
    threshold: float | None
    max_window_score: float | None
    mean_window_score: float | None
    windows_scored: int | None
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    codec: str | None
    container: str | None
    model: str
    backend: str
    error: str | None
    cascade_skipped: int | None = None
    segment_score: float | None = None
    segment_start_s: float | None = None
    segment_end_s: float | None = None
    segment_threshold: float | None = None
    vocal_share: float | None = None
    vocal_score: float | None = None
    vocal_start_s: float | None = None
    vocal_end_s: float | None = None
    vocal_threshold: float | None = None
    warnings: list[str] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Result":
        return cls(
            path=row["path"], score=row.get("score"), verdict=row.get("verdict"),
            threshold=row.get("threshold"), max_window_score=row.get("max_window_score"),
            mean_window_score=row.get("mean_window_score"), windows_scored=row.get("windows"),
            duration_s=row.get("duration_s"), sample_rate=row.get("sample_rate"),
            channels=row.get("channels"), codec=row.get("codec"), container=row.get("container"),
            model=row.get("model", ""), backend=row.get("backend", ""), error=row.get("error"),
            cascade_skipped=row.get("cascade_skipped"), segment_score=row.get("segment_score"),
            segment_start_s=row.get("segment_start_s"), segment_end_s=row.get("segment_end_s"),
            segment_threshold=row.get("segment_threshold"), vocal_share=row.get("vocal_share"),
            vocal_score=row.get("vocal_score"), vocal_start_s=row.get("vocal_start_s"),
            vocal_end_s=row.get("vocal_end_s"), vocal_threshold=row.get("vocal_threshold"),
            warnings=list(row.get("warnings") or []),
            windows=[Window(s["start_s"], s["end_s"], s["score"]) for s in row.get("segments") or []],
        )

    def to_dict(self) -> dict[str, Any]:
        """The result as a report row (the keys of `deepscreen screen`'s JSONL)."""
        d = asdict(self)
        segments = d.pop("windows")
        d["windows"] = d.pop("windows_scored")
        d["segments"] = segments
        return d


def _row_result(json_row: str) -> Result:
    return Result.from_row(json.loads(json_row))


def _wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """`samples` ((frames,) or (frames, channels), float32 or int16) as a WAV file's bytes:
    float32 as IEEE float, int16 as PCM — the engine decodes them to exactly these values."""
    frames, channels = samples.shape
    if samples.dtype == np.int16:
        fmt, width, data = 1, 2, samples.astype("<i2").tobytes()
    else:
        fmt, width, data = 3, 4, samples.astype("<f4").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, fmt, channels,
        sample_rate, sample_rate * channels * width, channels * width, 8 * width, b"data", len(data),
    )
    return header + data


def _checked(samples: Any, sample_rate: Any) -> np.ndarray:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), not {sample_rate!r}")
    a = np.asarray(samples)
    if a.dtype not in (np.float32, np.float64, np.int16):
        raise ValueError(f"samples must be float32, float64 or int16, not {a.dtype}")
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"samples must be (frames,) or (frames, channels), not shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"samples are empty (shape {a.shape})")
    if a.shape[1] > 64:
        raise ValueError(f"{a.shape[1]} channels: pass (frames, channels), not (channels, frames)")
    if a.dtype != np.int16:
        if not np.isfinite(a).all():
            raise ValueError("samples hold NaN or infinite values")
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


class Detector:
    """An embedded detector (`"music"`, the default, `"speech"`, … see `models()`) or a model
    file, on a backend (`"auto"`: CUDA, else a hardware GPU through wgpu, else the CPU).
    `threads`: decode workers and CPU compute threads (default: all cores); `batch`: windows
    per backend call (default: the CLI's); `threshold`: the verdict's threshold (default: the
    model's); `exact`: a fused model's every member on every window (its cascade off; see
    `deepscreen screen --exact`); `segment_threshold`: the segment rule's threshold for partial
    fakes (default: the model's rule, where it has one; "off": the file score alone decides; see
    `deepscreen screen --segment-threshold`); `vocals`: voices inside music, "auto" (on for a
    music model), "on" or "off", and `vocal_threshold` its threshold on `vocal_score` (see
    `deepscreen screen --vocals`). Thread-safe: one Detector may score from several threads."""

    def __init__(self, model: str | os.PathLike = "music", backend: str = "auto", threads: int | None = None,
                 batch: int | None = None, threshold: float | None = None, exact: bool = False,
                 segment_threshold: float | str | None = None, vocals: str = "auto",
                 vocal_threshold: float | None = None):
        try:
            self._engine = _engine.Engine(os.fspath(model), backend, threads, batch, threshold, exact,
                                          segment_threshold, vocals, vocal_threshold)
        except RuntimeError as e:
            raise DeepscreenError(str(e)) from None
        self.info: dict[str, Any] = json.loads(self._engine.info())

    def __repr__(self) -> str:
        i = self.info
        return f"Detector({i['id']!r}, backend={i['backend']!r}, threshold={i['threshold']:.4f})"

    def screen(self, paths: str | os.PathLike | Iterable[str | os.PathLike], resume: str | os.PathLike | None = None,
               segments: bool = True) -> Iterator[Result]:
        """Results for files and directories (walked as `deepscreen screen` walks them), in input
        order, as they finish. Broken files give a Result with `error` set; the run goes on.
        `resume`: a report (JSONL or CSV) whose files are skipped."""
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        skip = [r["path"] for r in read_report(resume, as_dataframe=False)] if resume else []
        try:
            rows = self._engine.screen([os.fspath(p) for p in paths], skip, segments)
            for row in rows:
                yield _row_result(row)
        except RuntimeError as e:
            raise DeepscreenError(str(e)) from None

    def score_file(self, path: str | os.PathLike) -> Result:
        """One file's result (an unreadable file gives a Result with `error` set)."""
        if not Path(path).exists():
            raise FileNotFoundError(path)
        if Path(path).is_dir():
            raise IsADirectoryError(f"{path} is a directory: use screen() for a folder")
        (result,) = list(self.screen([path]))
        return result

    def score(self, samples: np.ndarray, sample_rate: int) -> Result:
        """Score audio in memory: `samples` as (frames,) or (frames, channels), float32/float64
        (full scale ±1) or int16, at `sample_rate` Hz; resampled and mixed down by the engine,
        exactly as a WAV file of those samples would be. `path` reads "<array>"."""
        a = _checked(samples, sample_rate)
        with tempfile.TemporaryDirectory(prefix="deepscreen-") as tmp:
            wav = Path(tmp) / "array.wav"
            wav.write_bytes(_wav_bytes(a, int(sample_rate)))
            result = self.score_file(wav)
        row = result.to_dict()
        row["path"] = "<array>"
        return Result.from_row(row)


def read_report(path: str | os.PathLike, as_dataframe: bool | None = None):
    """The rows of a report written by `deepscreen screen` (JSONL or CSV), as dicts; as a pandas
    DataFrame when pandas is installed (or `as_dataframe=True`)."""
    path = Path(path)
    rows: list[dict[str, Any]] = []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        head = f.read(1)
        f.seek(0)
        if head == "{":
            rows = [json.loads(line) for line in f if line.strip()]
        else:
            for r in csv.DictReader(f):
                rows.append({k: _csv_value(k, v) for k, v in r.items()})
    if as_dataframe is False:
        return rows
    try:
        import pandas as pd
    except ImportError:
        if as_dataframe:
            raise
        return rows
    return pd.DataFrame(rows)


_CSV_FLOATS = {"score", "threshold", "max_window_score", "mean_window_score", "duration_s", "segment_score",
               "segment_start_s", "segment_end_s", "segment_threshold", "vocal_share", "vocal_score",
               "vocal_start_s", "vocal_end_s", "vocal_threshold"}
_CSV_INTS = {"windows", "sample_rate", "channels"}


def _csv_value(key: str, value: str) -> Any:
    if value == "":
        return None
    if key in _CSV_FLOATS:
        return float(value)
    if key in _CSV_INTS:
        return int(value)
    if key == "segments":
        return json.loads(value)
    if key == "warnings":
        return value.split("; ")
    return value


def devices() -> list[dict[str, Any]]:
    """Every backend: whether it can start here (`available`), and its device or why not."""
    return json.loads(_engine.devices())


def models() -> list[dict[str, Any]]:
    """The embedded models: name, id, default threshold, rate, window, aggregation."""
    return json.loads(_engine.models())
