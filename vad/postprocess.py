"""Post-processing of frame probabilities into speech segments.

ONE implementation, used by the streaming runtime and by batch labeling (which is the
streaming engine run over a file). The algorithm itself is implemented below by the
runtime work; this module also owns the options dataclass that models carry.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from vad.errors import InvalidInputError


@dataclasses.dataclass(frozen=True)
class PostprocessConfig:
    """Options that turn per-frame probabilities into speech segments.

    Attributes:
        onset_threshold: a segment starts when the probability reaches this.
        offset_threshold: an open segment ends when the probability falls below this
            (hysteresis; must be <= onset_threshold).
        min_speech_ms: segments shorter than this (before padding) are dropped.
        min_silence_ms: gaps shorter than this inside speech do not end a segment.
        speech_pad_ms: each segment is widened by this much on both sides (clipped to
            the stream and to its neighbours).
        max_speech_s: segments longer than this are split at their lowest-probability
            frame; 0 means no limit.
    """

    onset_threshold: float = 0.5
    offset_threshold: float = 0.35
    min_speech_ms: float = 100.0
    min_silence_ms: float = 150.0
    speech_pad_ms: float = 30.0
    max_speech_s: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidInputError(f"PostprocessConfig.{f.name}={value!r}: must be a finite number")
            if value < 0:
                raise InvalidInputError(f"PostprocessConfig.{f.name}={value!r}: must be >= 0")
        for name in ("onset_threshold", "offset_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InvalidInputError(f"PostprocessConfig.{name}={getattr(self, name)!r}: must be in [0, 1]")
        if self.offset_threshold > self.onset_threshold:
            raise InvalidInputError(
                f"PostprocessConfig.offset_threshold={self.offset_threshold!r} must be <= "
                f"onset_threshold={self.onset_threshold!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PostprocessConfig:
        if not isinstance(data, dict):
            raise InvalidInputError(f"post-processing config must be an object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInputError(f"post-processing config has unknown field(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> PostprocessConfig:
        """A copy with some fields overridden (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})
