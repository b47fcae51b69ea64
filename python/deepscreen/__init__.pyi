# Type stub of the deepscreen package (the implementation: __init__.py over the native _engine).
import os
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Literal

import numpy as np

__version__: str

class DeepscreenError(RuntimeError): ...

@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float
    score: float

@dataclass(frozen=True)
class Result:
    path: str
    score: float | None
    verdict: Literal["synthetic", "bona-fide", "no-signal"] | None
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
    cascade_skipped: int | None
    segment_score: float | None
    segment_start_s: float | None
    segment_end_s: float | None
    segment_threshold: float | None
    vocal_share: float | None
    vocal_score: float | None
    vocal_start_s: float | None
    vocal_end_s: float | None
    vocal_threshold: float | None
    warnings: list[str]
    windows: list[Window]
    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Result: ...
    def to_dict(self) -> dict[str, Any]: ...

class Detector:
    info: dict[str, Any]
    def __init__(
        self,
        model: str | os.PathLike[str] = "music",
        backend: Literal["auto", "cpu", "wgpu", "cuda"] = "auto",
        threads: int | None = None,
        batch: int | None = None,
        threshold: float | None = None,
        exact: bool = False,
        segment_threshold: float | Literal["off"] | None = None,
        vocals: Literal["auto", "on", "off"] = "auto",
        vocal_threshold: float | None = None,
    ) -> None: ...
    def score(self, samples: np.ndarray, sample_rate: int) -> Result: ...
    def score_file(self, path: str | os.PathLike[str]) -> Result: ...
    def screen(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        resume: str | os.PathLike[str] | None = None,
        segments: bool = True,
    ) -> Iterator[Result]: ...

def read_report(path: str | os.PathLike[str], as_dataframe: bool | None = None) -> Any: ...
def devices() -> list[dict[str, Any]]: ...
def models() -> list[dict[str, Any]]: ...
