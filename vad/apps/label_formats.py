"""What labeling one file gives (``LabelResult``) and the text of its label file in each format."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vad.core.errors import InvalidInputError
from vad.core.postprocess import PostprocessConfig

if TYPE_CHECKING:
    from vad.core.labelfiles import Segment

FORMAT_SUFFIXES = {"rttm": ".rttm", "audacity": ".txt", "csv": ".csv", "json": ".json"}
FORMATS = tuple(FORMAT_SUFFIXES)
_PROBABILITY_DECIMALS = 4
_TIME_DECIMALS = 6  # microseconds: exact for 8/16/32/48 kHz sample positions to the sample


def check_format(fmt: Any) -> str:
    """fmt itself, or InvalidInputError naming the formats."""
    if fmt not in FORMAT_SUFFIXES:
        raise InvalidInputError(f"format={fmt!r}: must be one of {', '.join(FORMATS)}")
    return fmt


@dataclasses.dataclass(frozen=True)
class LabelResult:
    """What labeling one audio file gives.

    Attributes:
        path: the audio file.
        segments: speech segments (``vad.core.labelfiles.Segment``; ``score`` = mean speech
            probability of the segment), in time order.
        probabilities: float32 speech probability per frame (frame i covers
            ``[i * frame_hop_s, (i + 1) * frame_hop_s)`` of the file).
        frame_hop_s: frame hop in seconds.
        duration_s: length of the audio.
        sample_rate: the file's own sample rate in Hz (the engine resamples to the model's).
        model_name: the model's name (from its metadata).
        model_sha256: SHA-256 of the model file (hex).
        postprocess: the post-processing options used.
    """

    path: Path
    segments: tuple[Segment, ...]
    probabilities: np.ndarray
    frame_hop_s: float
    duration_s: float
    sample_rate: int
    model_name: str
    model_sha256: str
    postprocess: PostprocessConfig

    @property
    def speech_s(self) -> float:
        return float(sum(s.duration_s for s in self.segments))

    def to_dict(self, probabilities: bool = False) -> dict[str, Any]:
        """The JSON form written by ``vad label --format json``."""
        d: dict[str, Any] = {
            "file": str(self.path),
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "frame_hop_s": self.frame_hop_s,
            "postprocess": self.postprocess.to_dict(),
            "segments": [
                {
                    "start_s": round(s.start_s, _TIME_DECIMALS),
                    "end_s": round(s.end_s, _TIME_DECIMALS),
                    "probability": None if s.score is None else round(s.score, _PROBABILITY_DECIMALS),
                }
                for s in self.segments
            ],
        }
        if probabilities:
            d["probabilities"] = [round(float(p), _PROBABILITY_DECIMALS) for p in self.probabilities]
        return d


def format_result(result: LabelResult, fmt: str, probabilities: bool = False, file_id: str | None = None) -> str:
    """The text of a label file in format fmt (rttm, audacity, csv, json)."""
    from vad.core import labelfiles as labels

    check_format(fmt)
    if fmt == "rttm":
        return labels.format_rttm(list(result.segments), _rttm_file_id(file_id or result.path.stem))
    if fmt == "audacity":
        return labels.format_audacity(list(result.segments))
    if fmt == "csv":
        return labels.format_csv(list(result.segments))
    return _json_text(result.to_dict(probabilities))


def _rttm_file_id(stem: str) -> str:
    """RTTM fields are whitespace-separated: spaces in a file name become underscores."""
    return "_".join(stem.split()) or "audio"


def _json_text(data: dict[str, Any]) -> str:
    """Indented JSON, with the (long) probability list kept on one line."""
    probs = data.pop("probabilities", None)
    text = json.dumps(data, indent=2)
    if probs is None:
        return text + "\n"
    return text[:-2] + ',\n  "probabilities": ' + json.dumps(probs, separators=(",", ":")) + "\n}\n"
