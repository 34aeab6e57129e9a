"""Post-processing of frame probabilities into speech segments.

ONE implementation, used by the streaming runtime and by batch labeling (which is the
streaming engine run over a file): ``SegmentTracker`` is a streaming state machine fed
frame probabilities in order; ``segments_from_probabilities`` runs the same class over a
whole array, so streaming and batch give identical segments.

Rules, in frames of the model (durations in the config are converted with
``round(ms / hop_ms)``; a frame index ``i`` covers ``[i * hop, (i + 1) * hop)``):

1. Hysteresis: outside speech a segment starts at the first frame with
   ``p >= onset_threshold``. Inside speech a frame with ``p >= offset_threshold`` is
   *active*; the segment's detected end is one past its last active frame.
2. Minimum silence: a segment ends only after ``min_silence`` consecutive frames with
   ``p < offset_threshold`` (at least one); shorter dips are bridged.
3. Minimum speech: a detected segment shorter than ``min_speech`` frames is dropped
   (judged on the whole detected segment, before any split).
4. Maximum speech (``max_speech_s > 0``): whenever the detected segment gets longer than
   ``max_speech`` frames, it is split at its lowest-probability frame after its first frame
   (the earliest such frame on ties): the first part ends there and the second starts there.
   The parts are adjacent (no padding between them); each is at most ``max_speech`` long.
5. Padding: each segment is widened by ``speech_pad`` frames on both sides, clipped to the
   stream (frame 0 and the last frame) and to its neighbours: when two segments' paddings
   would overlap, the boundary is the midpoint of the gap, ``end + gap // 2``.

Each segment's ``mean_probability`` is the mean over its detected frames (before padding).

Event delay (streaming): a ``start`` event is emitted when the segment has lasted
``min_speech`` frames; an ``end`` event when ``min_silence`` frames of silence ended it and
no later segment can still reach into its padding, i.e. ``max(min_silence, 2 * speech_pad)``
frames after its last active frame at most (an end at a max-speech split is immediate).
``flush()`` closes everything at the end of the stream.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from vad.core.errors import InvalidInputError, StreamStateError


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


# --- the algorithm -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SegmentEvent:
    """A segment boundary in frames.

    Attributes:
        kind: "start" (``end_frame``/``mean_probability`` are None) or "end" (the complete segment).
        start_frame: first frame of the padded segment.
        end_frame: one past its last frame ("end" only).
        mean_probability: mean probability over its detected frames ("end" only).
    """

    kind: str
    start_frame: int
    end_frame: int | None = None
    mean_probability: float | None = None


@dataclasses.dataclass(frozen=True)
class SpeechSegment:
    """A complete speech segment: frames ``[start_frame, end_frame)`` at hop ``hop_s``."""

    start_frame: int
    end_frame: int
    mean_probability: float
    hop_s: float

    @property
    def start_s(self) -> float:
        return self.start_frame * self.hop_s

    @property
    def end_s(self) -> float:
        return self.end_frame * self.hop_s


_SMALL_PUSH = 32  # below this many frames, validating in Python beats numpy's per-call cost


def _frames(ms: float, hop_ms: float) -> int:
    return int(round(ms / hop_ms))


class SegmentTracker:
    """Streaming post-processing state machine (rules in the module docstring).

    Args:
        config: the post-processing options.
        hop_s: frame hop in seconds (to convert the config's durations into frames).

    ``push(probabilities)`` takes the next frames' probabilities (any count, incl. 0) and
    returns the events they complete; ``flush()`` ends the stream; ``reset()`` starts anew.
    Work is O(1) per frame (O(max_speech) per split) and memory is bounded by
    ``max_speech`` frames (constant when max_speech_s is 0).
    """

    def __init__(self, config: PostprocessConfig, hop_s: float):
        if not isinstance(config, PostprocessConfig):
            raise InvalidInputError(f"config must be a PostprocessConfig, got {type(config).__name__}")
        if isinstance(hop_s, bool) or not isinstance(hop_s, (int, float)) or not math.isfinite(hop_s) or hop_s <= 0:
            raise InvalidInputError(f"hop_s={hop_s!r}: must be a finite number > 0")
        self.config = config
        self.hop_s = float(hop_s)
        hop_ms = 1000.0 * self.hop_s
        self.onset = float(config.onset_threshold)
        self.offset = float(config.offset_threshold)
        self.min_speech_frames = max(1, _frames(config.min_speech_ms, hop_ms))
        self.min_silence_frames = max(1, _frames(config.min_silence_ms, hop_ms))
        self.pad_frames = _frames(config.speech_pad_ms, hop_ms)
        self.max_speech_frames = _frames(1000.0 * config.max_speech_s, hop_ms) if config.max_speech_s > 0 else 0
        if config.max_speech_s > 0:
            self.max_speech_frames = max(1, self.max_speech_frames)
        self.reset()

    def reset(self) -> None:
        self.frames_pushed = 0
        self._in_speech = False
        self._start = 0  # detected start of the open segment
        self._last_active = 0
        self._sum = 0.0  # sum of p over [start, current]
        self._sum_at_active = 0.0  # sum of p over [start, last_active]
        self._silence_run = 0
        self._confirmed = False  # its start event is out
        self._emitted_start = 0  # padded start of the open (confirmed) segment
        self._buffer: list[float] = []  # p over [start, current], only with max speech
        self._boundary = 0  # no segment may start before this frame (end of the last one)
        self._pending: tuple[int, int, float] | None = None  # (padded start, detected end, mean)
        self._flushed = False

    # -- internals ---------------------------------------------------------------------
    def _resolve_pending(self, next_start: int | None, stream_end: int | None, events: list) -> None:
        """Emit the pending segment's end given the next kept segment's detected start."""
        start, raw_end, mean = self._pending
        end = raw_end + self.pad_frames
        if next_start is not None and next_start - raw_end < 2 * self.pad_frames:
            end = raw_end + (next_start - raw_end) // 2
        if stream_end is not None:
            end = min(end, stream_end)
        events.append(SegmentEvent("end", start, end, mean))
        self._boundary = end
        self._pending = None

    def _confirm(self, events: list) -> None:
        self._confirmed = True
        if self._pending is not None:
            self._resolve_pending(self._start, None, events)
        self._emitted_start = max(self._start - self.pad_frames, self._boundary, 0)
        events.append(SegmentEvent("start", self._emitted_start))

    def _split(self, events: list) -> None:
        buf = self._buffer
        length = self._last_active + 1 - self._start
        stop = min(length, self.max_speech_frames + 1)  # the first part is at most max_speech long
        cut = 1 + int(np.argmin(np.asarray(buf[1:stop], dtype=np.float64)))
        first = 0.0
        for p in buf[:cut]:
            first += p
        at = self._start + cut
        events.append(SegmentEvent("end", self._emitted_start, at, first / cut))
        events.append(SegmentEvent("start", at))
        self._boundary = at
        self._emitted_start = at
        self._start = at
        self._buffer = buf[cut:]
        total = 0.0
        at_active = 0.0
        for k, p in enumerate(self._buffer):
            total += p
            if k == self._last_active - at:
                at_active = total
        self._sum = total
        self._sum_at_active = at_active

    def _end_open(self, events: list) -> None:
        if self._confirmed:
            length = self._last_active + 1 - self._start
            self._pending = (self._emitted_start, self._last_active + 1, self._sum_at_active / length)
        self._in_speech = False
        self._confirmed = False
        self._buffer = []

    def _step(self, i: int, p: float, events: list) -> None:
        if not self._in_speech:
            if p >= self.onset:
                self._in_speech = True
                self._start = i
                self._last_active = i
                self._sum = p
                self._sum_at_active = p
                self._silence_run = 0
                self._confirmed = False
                if self.max_speech_frames:
                    self._buffer = [p]
                if self.min_speech_frames <= 1:
                    self._confirm(events)
            return
        self._sum += p
        if self.max_speech_frames:
            self._buffer.append(p)
        if p >= self.offset:
            self._last_active = i
            self._sum_at_active = self._sum
            self._silence_run = 0
            if not self._confirmed and i + 1 - self._start >= self.min_speech_frames:
                self._confirm(events)
            while self._confirmed and self.max_speech_frames and i + 1 - self._start > self.max_speech_frames:
                self._split(events)
        else:
            self._silence_run += 1
            if self._silence_run >= self.min_silence_frames:
                self._end_open(events)

    def _try_finish_pending(self, events: list) -> None:
        if self._pending is None:
            return
        earliest_next = self._start if self._in_speech else self.frames_pushed
        if earliest_next >= self._pending[1] + 2 * self.pad_frames:
            self._resolve_pending(None, None, events)

    # -- public --------------------------------------------------------------------------
    def push(self, probabilities: Any) -> list[SegmentEvent]:
        """Feed the next frames' probabilities (1-D, values in [0, 1]); return completed events."""
        if self._flushed:
            raise StreamStateError("SegmentTracker.push after flush(): call reset() to start a new stream")
        p = probabilities if isinstance(probabilities, np.ndarray) else np.asarray(probabilities)
        if p.ndim != 1:
            raise InvalidInputError(f"probabilities must be 1-D, got shape {p.shape}")
        values = p.tolist()  # Python floats: the per-frame loop below is cheaper on them
        if len(values) == 1:
            ok = 0.0 <= values[0] <= 1.0  # False for NaN too
        elif len(values) <= _SMALL_PUSH:
            ok = all(0.0 <= v <= 1.0 for v in values)
        else:
            q = p.astype(np.float64, copy=False)
            ok = bool(np.all((q >= 0.0) & (q <= 1.0)))
        if not ok:
            q = p.astype(np.float64)
            bad = int(np.flatnonzero(~((q >= 0.0) & (q <= 1.0)))[0])
            raise InvalidInputError(f"probabilities[{bad}]={q[bad]!r}: must be a finite value in [0, 1]")
        events: list[SegmentEvent] = []
        base = self.frames_pushed
        if not self._in_speech and self._pending is None and (not values or max(values) < self.onset):
            self.frames_pushed += len(values)  # fast path: silence, nothing open
            return events
        for k, value in enumerate(values):
            self._step(base + k, float(value), events)
            self.frames_pushed = base + k + 1
            self._try_finish_pending(events)
        return events

    def flush(self) -> list[SegmentEvent]:
        """End of stream: close the open segment and emit every remaining end event."""
        events: list[SegmentEvent] = []
        if self._flushed:
            return events
        if self._in_speech:
            self._end_open(events)
        if self._pending is not None:
            self._resolve_pending(None, self.frames_pushed, events)
        self._flushed = True
        return events


def segments_from_events(events: list[SegmentEvent], hop_s: float) -> list[SpeechSegment]:
    """The complete segments (the "end" events) as SpeechSegment."""
    return [
        SpeechSegment(e.start_frame, e.end_frame, e.mean_probability, hop_s) for e in events if e.kind == "end"
    ]


def segments_from_probabilities(probabilities: Any, hop_s: float, config: PostprocessConfig) -> list[SpeechSegment]:
    """Segments of a whole probability array: ``SegmentTracker`` pushed everything, then flushed."""
    tracker = SegmentTracker(config, hop_s)
    events = tracker.push(probabilities)
    events += tracker.flush()
    return segments_from_events(events, hop_s)
