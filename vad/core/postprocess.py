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
   ``max_speech`` frames, it is split at its lowest-probability frame at least ``min_speech``
   frames (and at least one) after its start, and at most ``max_speech`` (the earliest such
   frame on ties): the first part ends there and the second starts there. The parts are
   adjacent (no padding between them); each is at most ``max_speech`` long, and each but the
   last at least ``min(min_speech, max_speech)``.
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

try:
    from numba import njit
except ImportError:  # an onnxruntime-only install: the same functions run as plain Python (slower)

    def njit(*_args, **_kwargs):
        return lambda function: function


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


# --- the state machine, compiled ----------------------------------------------------------------
# Compiled with numba when it is installed (else the same code runs as Python). The tracker's
# whole state lives in three arrays so that a compiled caller (the streaming engine's per-chunk
# kernel) can run it in line: ``ti`` (int64, indices below), ``tf``
# (float64) and ``buf`` (float64, the probabilities of the open segment, used only with a
# maximum speech length). Events are appended to ``ev_i`` (int64 [cap, 3]: kind, start frame,
# end frame) and ``ev_f`` (float64 [cap], mean probability); a push of n frames appends at most
# ``EVENTS_PER_FRAME * n + EVENTS_SLACK`` events.
EVENT_START, EVENT_END = 0, 1
EVENTS_PER_FRAME = 4  # a pending end, a start, and a max-speech split (end + start)
EVENTS_SLACK = 2  # flush: the open segment's end and a pending one
_EVENT_KINDS = ("start", "end")
(T_FRAMES, T_IN_SPEECH, T_START, T_LAST_ACTIVE, T_SILENCE_RUN, T_CONFIRMED, T_EMITTED_START, T_BUF_LEN,
 T_BOUNDARY, T_HAS_PENDING, T_PEND_START, T_PEND_END, T_MIN_SPEECH, T_MIN_SILENCE, T_PAD, T_MAX_SPEECH) = range(16)
TRACKER_INTS = 16
F_SUM, F_SUM_AT_ACTIVE, F_PEND_MEAN, F_ONSET, F_OFFSET = range(5)
TRACKER_FLOATS = 5


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _emit(ev_i, ev_f, ne, kind, start, end, mean):
    ev_i[ne, 0] = kind
    ev_i[ne, 1] = start
    ev_i[ne, 2] = end
    ev_f[ne] = mean
    return ne + 1


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _resolve_pending(ti, stream_end, has_next, next_start):
    """Close the pending segment (given the next kept segment's detected start); return its padded end."""
    raw_end = ti[T_PEND_END]
    pad = ti[T_PAD]
    end = raw_end + pad
    if has_next and next_start - raw_end < 2 * pad:
        end = raw_end + (next_start - raw_end) // 2
    if stream_end >= 0:
        end = min(end, stream_end)
    ti[T_BOUNDARY] = end
    ti[T_HAS_PENDING] = 0
    return end


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _confirm(ti, tf, ev_i, ev_f, ne):
    ti[T_CONFIRMED] = 1
    if ti[T_HAS_PENDING]:
        start, mean = ti[T_PEND_START], tf[F_PEND_MEAN]
        end = _resolve_pending(ti, -1, True, ti[T_START])
        ne = _emit(ev_i, ev_f, ne, EVENT_END, start, end, mean)
    emitted = max(ti[T_START] - ti[T_PAD], ti[T_BOUNDARY], 0)
    ti[T_EMITTED_START] = emitted
    return _emit(ev_i, ev_f, ne, EVENT_START, emitted, -1, np.nan)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _split(ti, tf, buf, ev_i, ev_f, ne):
    """Split the open segment at its lowest-probability frame from min_speech frames on (earliest on ties)."""
    start = ti[T_START]
    length = ti[T_LAST_ACTIVE] + 1 - start
    stop = min(length, ti[T_MAX_SPEECH] + 1)  # the first part is at most max_speech long
    cut = min(ti[T_MIN_SPEECH], stop - 1)  # ... and at least min_speech (>= 1) where max_speech allows
    low = buf[cut]
    for k in range(cut + 1, stop):
        if buf[k] < low:
            low = buf[k]
            cut = k
    first = 0.0
    for k in range(cut):
        first += buf[k]
    at = start + cut
    ne = _emit(ev_i, ev_f, ne, EVENT_END, ti[T_EMITTED_START], at, first / cut)
    ne = _emit(ev_i, ev_f, ne, EVENT_START, at, -1, np.nan)
    ti[T_BOUNDARY] = at
    ti[T_EMITTED_START] = at
    ti[T_START] = at
    n_left = ti[T_BUF_LEN] - cut
    total = 0.0
    at_active = 0.0
    for k in range(n_left):
        buf[k] = buf[k + cut]
        total += buf[k]
        if k == ti[T_LAST_ACTIVE] - at:
            at_active = total
    ti[T_BUF_LEN] = n_left
    tf[F_SUM] = total
    tf[F_SUM_AT_ACTIVE] = at_active
    return ne


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _end_open(ti, tf):
    if ti[T_CONFIRMED]:
        length = ti[T_LAST_ACTIVE] + 1 - ti[T_START]
        ti[T_HAS_PENDING] = 1
        ti[T_PEND_START] = ti[T_EMITTED_START]
        ti[T_PEND_END] = ti[T_LAST_ACTIVE] + 1
        tf[F_PEND_MEAN] = tf[F_SUM_AT_ACTIVE] / length
    ti[T_IN_SPEECH] = 0
    ti[T_CONFIRMED] = 0
    ti[T_BUF_LEN] = 0


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step(i, p, ti, tf, buf, ev_i, ev_f, ne):
    max_speech = ti[T_MAX_SPEECH]
    if not ti[T_IN_SPEECH]:
        if p >= tf[F_ONSET]:
            ti[T_IN_SPEECH] = 1
            ti[T_START] = i
            ti[T_LAST_ACTIVE] = i
            tf[F_SUM] = p
            tf[F_SUM_AT_ACTIVE] = p
            ti[T_SILENCE_RUN] = 0
            ti[T_CONFIRMED] = 0
            if max_speech:
                buf[0] = p
                ti[T_BUF_LEN] = 1
            if ti[T_MIN_SPEECH] <= 1:
                ne = _confirm(ti, tf, ev_i, ev_f, ne)
        return ne
    tf[F_SUM] += p
    if max_speech:
        buf[ti[T_BUF_LEN]] = p
        ti[T_BUF_LEN] += 1
    if p >= tf[F_OFFSET]:
        ti[T_LAST_ACTIVE] = i
        tf[F_SUM_AT_ACTIVE] = tf[F_SUM]
        ti[T_SILENCE_RUN] = 0
        if not ti[T_CONFIRMED] and i + 1 - ti[T_START] >= ti[T_MIN_SPEECH]:
            ne = _confirm(ti, tf, ev_i, ev_f, ne)
        while ti[T_CONFIRMED] and max_speech and i + 1 - ti[T_START] > max_speech:
            ne = _split(ti, tf, buf, ev_i, ev_f, ne)
    else:
        ti[T_SILENCE_RUN] += 1
        if ti[T_SILENCE_RUN] >= ti[T_MIN_SILENCE]:
            _end_open(ti, tf)
    return ne


@njit(cache=True, nogil=True, error_model="numpy")
def tracker_push(p, n, ti, tf, buf, ev_i, ev_f, ne):
    """Push the frame probabilities p[0:n] (trusted: finite, in [0, 1]); events go to
    ev_i/ev_f from row ``ne`` on; returns the new event count."""
    if not ti[T_IN_SPEECH] and not ti[T_HAS_PENDING]:
        quiet = True
        onset = tf[F_ONSET]
        for k in range(n):
            if p[k] >= onset:
                quiet = False
                break
        if quiet:  # fast path: silence, nothing open
            ti[T_FRAMES] += n
            return ne
    base = ti[T_FRAMES]
    for k in range(n):
        ne = _step(base + k, float(p[k]), ti, tf, buf, ev_i, ev_f, ne)
        ti[T_FRAMES] = base + k + 1
        if ti[T_HAS_PENDING]:  # finish it once no later segment can reach into its padding
            earliest_next = ti[T_START] if ti[T_IN_SPEECH] else ti[T_FRAMES]
            if earliest_next >= ti[T_PEND_END] + 2 * ti[T_PAD]:
                start, mean = ti[T_PEND_START], tf[F_PEND_MEAN]
                end = _resolve_pending(ti, -1, False, 0)
                ne = _emit(ev_i, ev_f, ne, EVENT_END, start, end, mean)
    return ne


@njit(cache=True, nogil=True, error_model="numpy")
def tracker_flush(ti, tf, ev_i, ev_f, ne):
    """End of stream: close the open segment and emit every remaining end; returns the event count."""
    if ti[T_IN_SPEECH]:
        _end_open(ti, tf)
    if ti[T_HAS_PENDING]:
        start, mean = ti[T_PEND_START], tf[F_PEND_MEAN]
        end = _resolve_pending(ti, ti[T_FRAMES], False, 0)
        ne = _emit(ev_i, ev_f, ne, EVENT_END, start, end, mean)
    return ne


@njit(cache=True, nogil=True, error_model="numpy")
def tracker_reset(ti, tf):
    """Back to the start of a stream (the configuration entries are kept)."""
    for k in range(T_MIN_SPEECH):
        ti[k] = 0
    tf[F_SUM] = 0.0
    tf[F_SUM_AT_ACTIVE] = 0.0
    tf[F_PEND_MEAN] = 0.0


def events_from_arrays(ev_i: np.ndarray, ev_f: np.ndarray, n: int) -> list[SegmentEvent]:
    """SegmentEvent objects of the first n rows written by ``tracker_push`` / ``tracker_flush``."""
    events = []
    for row, mean in zip(ev_i[:n].tolist(), ev_f[:n].tolist(), strict=True):
        if row[0] == EVENT_START:
            events.append(SegmentEvent("start", row[1]))
        else:
            events.append(SegmentEvent("end", row[1], row[2], mean))
    return events


class TrackerState:
    """The arrays of one post-processing state machine, built from a config (see ``tracker_push``).

    Attributes: ``ti`` (int64 [TRACKER_INTS]), ``tf`` (float64 [TRACKER_FLOATS]), ``buf``
    (float64, the open segment's probabilities; bounded by the config's frame counts).
    """

    def __init__(self, config: PostprocessConfig, hop_s: float):
        if not isinstance(config, PostprocessConfig):
            raise InvalidInputError(f"config must be a PostprocessConfig, got {type(config).__name__}")
        if isinstance(hop_s, bool) or not isinstance(hop_s, (int, float)) or not math.isfinite(hop_s) or hop_s <= 0:
            raise InvalidInputError(f"hop_s={hop_s!r}: must be a finite number > 0")
        hop_ms = 1000.0 * float(hop_s)
        self.min_speech_frames = max(1, _frames(config.min_speech_ms, hop_ms))
        self.min_silence_frames = max(1, _frames(config.min_silence_ms, hop_ms))
        self.pad_frames = _frames(config.speech_pad_ms, hop_ms)
        self.max_speech_frames = max(1, _frames(1000.0 * config.max_speech_s, hop_ms)) if config.max_speech_s > 0 else 0
        self.ti = np.zeros(TRACKER_INTS, dtype=np.int64)
        self.tf = np.zeros(TRACKER_FLOATS, dtype=np.float64)
        self.ti[T_MIN_SPEECH] = self.min_speech_frames
        self.ti[T_MIN_SILENCE] = self.min_silence_frames
        self.ti[T_PAD] = self.pad_frames
        self.ti[T_MAX_SPEECH] = self.max_speech_frames
        self.tf[F_ONSET] = float(config.onset_threshold)
        self.tf[F_OFFSET] = float(config.offset_threshold)
        # the open segment holds at most max(max_speech, min_speech) active frames plus a silence run
        capacity = self.max_speech_frames + self.min_speech_frames + self.min_silence_frames + 2
        self.buf = np.zeros(capacity if self.max_speech_frames else 1, dtype=np.float64)


class SegmentTracker:
    """Streaming post-processing state machine (rules in the module docstring).

    Args:
        config: the post-processing options.
        hop_s: frame hop in seconds (to convert the config's durations into frames).

    ``push(probabilities)`` takes the next frames' probabilities (any count, incl. 0) and
    returns the events they complete; ``flush()`` ends the stream; ``reset()`` starts anew.
    Work is O(1) per frame (O(max_speech) per split) and memory is bounded by
    ``max_speech`` frames (constant when max_speech_s is 0). The state machine itself is the
    compiled ``tracker_push`` / ``tracker_flush`` over a ``TrackerState``.
    """

    def __init__(self, config: PostprocessConfig, hop_s: float):
        self._state = TrackerState(config, hop_s)  # validates
        self.config = config
        self.hop_s = float(hop_s)
        self.onset = float(config.onset_threshold)
        self.offset = float(config.offset_threshold)
        self.min_speech_frames = self._state.min_speech_frames
        self.min_silence_frames = self._state.min_silence_frames
        self.pad_frames = self._state.pad_frames
        self.max_speech_frames = self._state.max_speech_frames
        self._ev_i = np.zeros((EVENTS_PER_FRAME + EVENTS_SLACK, 3), dtype=np.int64)
        self._ev_f = np.zeros(EVENTS_PER_FRAME + EVENTS_SLACK, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        tracker_reset(self._state.ti, self._state.tf)
        self._flushed = False

    @property
    def frames_pushed(self) -> int:
        return int(self._state.ti[T_FRAMES])

    def _events(self, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        need = EVENTS_PER_FRAME * n_frames + EVENTS_SLACK
        if self._ev_f.shape[0] < need:
            self._ev_i = np.zeros((need, 3), dtype=np.int64)
            self._ev_f = np.zeros(need, dtype=np.float64)
        return self._ev_i, self._ev_f

    # -- public --------------------------------------------------------------------------
    def push(self, probabilities: Any) -> list[SegmentEvent]:
        """Feed the next frames' probabilities (1-D, values in [0, 1]); return completed events."""
        if self._flushed:
            raise StreamStateError("SegmentTracker.push after flush(): call reset() to start a new stream")
        p = probabilities if isinstance(probabilities, np.ndarray) else np.asarray(probabilities)
        if p.ndim != 1:
            raise InvalidInputError(f"probabilities must be 1-D, got shape {p.shape}")
        if p.dtype != np.float32 and p.dtype != np.float64:
            p = p.astype(np.float64)
        if p.shape[0] <= _SMALL_PUSH:
            ok = all(0.0 <= v <= 1.0 for v in p.tolist())  # False for NaN too
        else:
            ok = bool(np.all((p >= 0.0) & (p <= 1.0)))
        if not ok:
            q = p.astype(np.float64)
            bad = int(np.flatnonzero(~((q >= 0.0) & (q <= 1.0)))[0])
            raise InvalidInputError(f"probabilities[{bad}]={q[bad]!r}: must be a finite value in [0, 1]")
        if not p.flags.c_contiguous:
            p = np.ascontiguousarray(p)
        ev_i, ev_f = self._events(p.shape[0])
        s = self._state
        n = tracker_push(p, p.shape[0], s.ti, s.tf, s.buf, ev_i, ev_f, 0)
        return events_from_arrays(ev_i, ev_f, n) if n else []

    def flush(self) -> list[SegmentEvent]:
        """End of stream: close the open segment and emit every remaining end event."""
        if self._flushed:
            return []
        s = self._state
        n = tracker_flush(s.ti, s.tf, self._ev_i, self._ev_f, 0)
        self._flushed = True
        return events_from_arrays(self._ev_i, self._ev_f, n) if n else []


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
