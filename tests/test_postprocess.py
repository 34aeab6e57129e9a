"""The one post-processing implementation: each rule by hand, and streaming == batch."""

from __future__ import annotations

import numpy as np
import pytest

from vad.core.errors import InvalidInputError, StreamStateError
from vad.core.postprocess import (
    PostprocessConfig,
    SegmentTracker,
    segments_from_events,
    segments_from_probabilities,
)

HOP_S = 0.01


def cfg(**kw) -> PostprocessConfig:
    base = dict(onset_threshold=0.5, offset_threshold=0.3, min_speech_ms=0, min_silence_ms=0, speech_pad_ms=0,
                max_speech_s=0)
    base.update(kw)
    return PostprocessConfig(**base)


def spans(probs, config) -> list[tuple[int, int]]:
    return [(s.start_frame, s.end_frame) for s in segments_from_probabilities(np.asarray(probs, float), HOP_S, config)]


def test_hysteresis_onset_and_offset():
    p = [0.1, 0.4, 0.6, 0.4, 0.35, 0.2, 0.45, 0.1]
    # starts only at >= onset (frame 2), stays while >= offset (3, 4), ends at 5;
    # 0.45 at frame 6 is below onset: no new segment
    assert spans(p, cfg()) == [(2, 5)]
    assert spans(p, cfg(offset_threshold=0.5)) == [(2, 3)]
    assert spans([0.5], cfg()) == [(0, 1)]  # the onset threshold itself counts


def test_min_silence_bridges_short_gaps():
    p = [0.9] * 5 + [0.0] * 3 + [0.9] * 5 + [0.0] * 10
    assert spans(p, cfg(min_silence_ms=40)) == [(0, 13)]  # a 3-frame dip is bridged
    assert spans(p, cfg(min_silence_ms=30)) == [(0, 5), (8, 13)]  # min_silence frames of silence end it
    assert spans(p, cfg(min_silence_ms=0)) == [(0, 5), (8, 13)]


def test_min_speech_drops_short_segments():
    p = [0.9] * 2 + [0.0] * 5 + [0.9] * 4 + [0.0] * 5
    assert spans(p, cfg(min_speech_ms=30)) == [(7, 11)]
    assert spans(p, cfg(min_speech_ms=20)) == [(0, 2), (7, 11)]
    assert spans(p, cfg(min_speech_ms=50)) == []


def test_padding_clipped_to_stream_and_split_between_neighbours():
    p = [0.9] * 3 + [0.0] * 4 + [0.9] * 3 + [0.0] * 20 + [0.9] * 2
    # pad 3: first segment would start at -3 (clipped to 0); the 4-frame gap is shared at
    # its midpoint (3 + 4 // 2 = 5); the last segment's padding is clipped to the stream end
    assert spans(p, cfg(speech_pad_ms=30, min_silence_ms=10)) == [(0, 5), (5, 13), (27, 32)]
    assert spans(p, cfg(speech_pad_ms=10, min_silence_ms=10)) == [(0, 4), (6, 11), (29, 32)]


def test_max_speech_splits_at_lowest_probability():
    p = [0.0] + [0.9, 0.8, 0.9, 0.6, 0.9, 0.9, 0.7, 0.9, 0.95, 0.9] + [0.0] * 3
    # 10 detected frames, max 5: split at the lowest of the first part's candidates
    # (frames 2..6 -> 0.6 at frame 4), then the rest (4..11, 7 frames) at 0.7 (frame 7)
    segs = segments_from_probabilities(np.array(p), HOP_S, cfg(max_speech_s=0.05))
    assert [(s.start_frame, s.end_frame) for s in segs] == [(1, 4), (4, 7), (7, 11)]
    assert all(s.end_frame - s.start_frame <= 5 for s in segs)


def test_max_speech_parts_are_at_least_min_speech_long():
    # the lowest frame right after the start (0.31 at frame 2) is no cut: a part is >= min_speech (3 frames)
    p = [0.0] + [0.9, 0.31, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9] + [0.0] * 3
    segs = segments_from_probabilities(np.array(p), HOP_S, cfg(max_speech_s=0.06, min_speech_ms=30))
    assert [(s.start_frame, s.end_frame) for s in segs] == [(1, 5), (5, 8), (8, 13)]  # ties: the earliest
    assert all(s.end_frame - s.start_frame >= 3 for s in segs[:-1])
    # min_speech above max_speech: parts of exactly max_speech
    segs = segments_from_probabilities(np.array(p), HOP_S, cfg(max_speech_s=0.04, min_speech_ms=60))
    assert [(s.start_frame, s.end_frame) for s in segs] == [(1, 5), (5, 9), (9, 13)]


def test_mean_probability_over_detected_frames():
    p = [0.0, 0.6, 0.8, 0.4, 0.0, 0.0, 0.0]
    (seg,) = segments_from_probabilities(np.array(p), HOP_S, cfg(speech_pad_ms=10))
    assert (seg.start_frame, seg.end_frame) == (0, 5)  # padded
    assert seg.mean_probability == pytest.approx((0.6 + 0.8 + 0.4) / 3)  # padding not counted
    assert seg.start_s == 0.0 and seg.end_s == pytest.approx(0.05)


def test_events_order_and_delay():
    c = cfg(min_speech_ms=30, min_silence_ms=40, speech_pad_ms=10)
    tracker = SegmentTracker(c, HOP_S)
    p = [0.0] * 5 + [0.9] * 6 + [0.0] * 10
    got = {}
    for i, value in enumerate(p):
        for ev in tracker.push([value]):
            got[ev.kind] = (i, ev)
    i_start, start = got["start"]
    assert i_start == 7  # confirmed once min_speech (3 frames: 5, 6, 7) has been seen
    assert start.start_frame == 4
    i_end, end = got["end"]
    assert i_end == 14  # 4 frames of silence (11..14) end it; 2*pad <= min_silence: no extra wait
    assert (end.start_frame, end.end_frame) == (4, 12)
    assert tracker.flush() == []


def test_flush_closes_open_segment_and_requires_reset():
    tracker = SegmentTracker(cfg(speech_pad_ms=50), HOP_S)
    assert [e.kind for e in tracker.push([0.0, 0.9, 0.9])] == ["start"]
    (end,) = tracker.flush()
    assert (end.kind, end.start_frame, end.end_frame) == ("end", 0, 3)
    with pytest.raises(StreamStateError):
        tracker.push([0.1])
    tracker.reset()
    assert tracker.push([0.9])[0].start_frame == 0


@pytest.mark.parametrize("bad", [[float("nan")], [1.5], [-0.1], [0.2, float("inf")]])
def test_invalid_probabilities_are_rejected(bad):
    tracker = SegmentTracker(cfg(), HOP_S)
    with pytest.raises(InvalidInputError):
        tracker.push(np.array(bad))
    with pytest.raises(InvalidInputError):
        tracker.push(np.zeros((2, 2)))
    assert tracker.frames_pushed == 0  # nothing consumed


def test_streaming_equals_batch_for_random_configs_and_chunkings():
    rng = np.random.default_rng(0)
    n_segments = 0
    for _trial in range(120):
        c = cfg(
            onset_threshold=0.6,
            offset_threshold=float(rng.uniform(0.2, 0.6)),
            min_speech_ms=int(rng.integers(0, 8)) * 10,
            min_silence_ms=int(rng.integers(0, 8)) * 10,
            speech_pad_ms=int(rng.integers(0, 8)) * 10,
            max_speech_s=float(rng.choice([0.0, 0.05, 0.2])),
        )
        p = np.clip(np.convolve(rng.random(600), np.ones(8) / 8, "same") + rng.normal(0, 0.2, 600), 0, 1)
        batch = segments_from_probabilities(p, HOP_S, c)
        tracker = SegmentTracker(c, HOP_S)
        events = []
        i = 0
        while i < p.size:
            n = int(rng.integers(0, 25))
            events += tracker.push(p[i : i + n])
            i += n
        events += tracker.flush()
        assert segments_from_events(events, HOP_S) == batch
        kinds = [e.kind for e in events]
        assert kinds == ["start", "end"] * (len(kinds) // 2)  # strictly alternating
        starts = [e.start_frame for e in events if e.kind == "start"]
        assert starts == [s.start_frame for s in batch]
        for a, b in zip(batch, batch[1:], strict=False):
            assert a.end_frame <= b.start_frame
        n_segments += len(batch)
    assert n_segments > 100  # the random cases do exercise the rules


def test_config_durations_convert_with_hop():
    t = SegmentTracker(PostprocessConfig(min_speech_ms=250, min_silence_ms=100, speech_pad_ms=30, max_speech_s=2), 0.02)
    assert (t.min_speech_frames, t.min_silence_frames, t.pad_frames, t.max_speech_frames) == (12, 5, 2, 100)
    with pytest.raises(InvalidInputError):
        SegmentTracker(PostprocessConfig(), 0.0)
