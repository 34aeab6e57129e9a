"""Label files: round trips for every format, frame conversion, malformed input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from vad.core.errors import InvalidInputError, LabelFormatError
from vad.core.labelfiles import (
    Segment,
    frames_to_segments,
    merge_segments,
    read_audacity,
    read_csv,
    read_json,
    read_labels,
    read_rttm,
    segments_to_frames,
    write_labels,
)

SEGMENTS = [
    Segment(0.25, 1.5),
    Segment(2.0, 2.375, "speech", 0.8125),
    Segment(3.1, 4.999, "laugh"),
]


def _same(a, b, score=True):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.start_s == pytest.approx(y.start_s, abs=1e-9)
        assert x.end_s == pytest.approx(y.end_s, abs=1e-9)
        assert x.label == y.label
        if score:
            assert x.score == (None if y.score is None else pytest.approx(y.score, abs=1e-4))


# --- Segment and merging -------------------------------------------------------------------


def test_segment_validation():
    with pytest.raises(InvalidInputError, match="end_s"):
        Segment(2.0, 1.0)
    with pytest.raises(InvalidInputError, match="start_s"):
        Segment(-0.1, 1.0)
    with pytest.raises(InvalidInputError, match="finite"):
        Segment(0.0, float("nan"))
    with pytest.raises(InvalidInputError, match="score"):
        Segment(0.0, 1.0, score=float("inf"))
    assert Segment(1, 2).duration_s == 1.0
    assert isinstance(Segment(np.int64(1), np.float32(2)).start_s, float)


def test_merge_segments_union_and_gap():
    segs = [
        Segment(3, 4),
        Segment(0, 1, score=0.2),
        Segment(0.5, 2, score=0.9),
        Segment(2, 2.5),
        Segment(5, 5),
    ]
    merged = merge_segments(segs)
    assert [(s.start_s, s.end_s) for s in merged] == [(0, 2.5), (3, 4)]
    assert merged[0].score == 0.9 and merged[1].score is None
    assert [(s.start_s, s.end_s) for s in merge_segments(segs, max_gap_s=0.5)] == [(0, 4)]
    with pytest.raises(InvalidInputError, match="max_gap_s"):
        merge_segments(segs, max_gap_s=-1)
    with pytest.raises(InvalidInputError, match=r"segments\[0\]"):
        merge_segments([(0, 1)])


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".json"])
def test_round_trip_keeps_segments(tmp_path, suffix):
    path = tmp_path / f"a{suffix}"
    write_labels(path, SEGMENTS)
    back = read_labels(path)
    # Audacity tracks carry no score; CSV and JSON do
    _same(back, SEGMENTS, score=suffix != ".txt")
    # writing what was read gives the same bytes
    path2 = tmp_path / f"b{suffix}"
    write_labels(path2, back)
    assert path.read_bytes() == path2.read_bytes()


def test_rttm_round_trip_and_file_id(tmp_path):
    path = tmp_path / "meeting.rttm"
    write_labels(path, SEGMENTS)
    lines = path.read_text().splitlines()
    assert lines[0].split()[:5] == ["SPEAKER", "meeting", "1", "0.250", "1.250"]
    back = read_rttm(path)
    # RTTM reads every turn as speech
    _same(back, [Segment(s.start_s, s.end_s) for s in SEGMENTS], score=False)
    write_labels(path, SEGMENTS, file_id="other")
    assert path.read_text().split()[1] == "other"
    with pytest.raises(InvalidInputError, match="file_id"):
        write_labels(path, SEGMENTS, file_id="has space")


def test_rttm_overlapping_turns_merge(tmp_path):
    path = tmp_path / "x.rttm"
    path.write_text(
        "SPEAKER x 1 1.000 2.000 <NA> <NA> A <NA> <NA>\n"
        "SPEAKER x 1 2.500 1.000 <NA> <NA> B <NA> <NA>\n"
        "SPKR-INFO x 1 <NA> <NA> <NA> unknown A <NA> <NA>\n"
        "\n# comment\n"
        "SPEAKER x 1 5.000 0.500 <NA> <NA> A <NA> <NA>\n"
        "SPEAKER x 1 0.000 0.000 <NA> <NA> A <NA> <NA>\n"
    )
    assert [(s.start_s, s.end_s, s.label) for s in read_rttm(path)] == [
        (1.0, 3.5, "speech"),
        (5.0, 5.5, "speech"),
    ]


def test_json_bare_list_and_extra(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(
        json.dumps([{"start_s": 1, "end_s": 2}, {"start_s": 0, "end_s": 0.5, "probability": 0.7}])
    )
    segs = read_json(path)
    assert [(s.start_s, s.end_s, s.score) for s in segs] == [(0, 0.5, 0.7), (1, 2, None)]


def test_csv_minimal_header_and_extra_columns(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("start_s,end_s,note\n0.5,1.0,hello\n")
    assert [(s.start_s, s.end_s, s.label) for s in read_csv(path)] == [(0.5, 1.0, "speech")]


def test_audacity_skips_spectral_lines(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("1.0\t2.0\tword one\n\\\t100.0\t2000.0\n3.0\t3.5\n")
    assert [(s.start_s, s.end_s, s.label) for s in read_audacity(path)] == [
        (1, 2, "word one"),
        (3, 3.5, "speech"),
    ]


@pytest.mark.parametrize("suffix", [".rttm", ".txt", ".csv", ".json"])
def test_empty_file_means_no_speech(tmp_path, suffix):
    path = tmp_path / f"e{suffix}"
    path.write_text("")
    assert read_labels(path) == []
    write_labels(path, [])
    assert read_labels(path) == []


# --- malformed input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,text,where",
    [
        ("a.rttm", "SPEAKER a 1 0.0 1.0 <NA> <NA> A <NA> <NA>\nSPEAKER a 1 zero 1.0\n", "a.rttm:2"),
        ("a.rttm", "SPEAKER a 1 0.0\n", "a.rttm:1"),
        ("a.rttm", "SPEAKER a 1 1.0 -1.0 <NA> <NA> A <NA> <NA>\n", "a.rttm:1"),
        ("a.rttm", "SPEAKER a 1 nan 1.0 <NA> <NA> A <NA> <NA>\n", "a.rttm:1"),
        ("a.txt", "0\t1\tok\n\n2.0\n", "a.txt:3"),
        ("a.txt", "2.0\t1.0\tbackwards\n", "a.txt:1"),
        ("a.csv", "begin,end\n0,1\n", "a.csv:1"),
        ("a.csv", "start_s,end_s\n0,1\n1,x\n", "a.csv:3"),
        ("a.csv", "start_s,end_s\n0,1,2\n", "a.csv:2"),
        ("a.json", '{"segments": [\n{"start_s": 0}]}', "segment 0"),
        ("a.json", '{"segments": [{"start_s": 0, "end_s": "1"}]}', "segment 0"),
        ("a.json", '{"segs": []}', "segments"),
        ("a.json", '{"segments": [\n', "a.json:2"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(LabelFormatError) as info:
        read_labels(path)
    assert where in str(info.value)


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(LabelFormatError, match="suffix"):
        read_labels(tmp_path / "a.lab")
    with pytest.raises(LabelFormatError, match="not found"):
        read_labels(tmp_path / "missing.rttm")
    with pytest.raises(InvalidInputError, match="suffix"):
        write_labels(tmp_path / "a.lab", SEGMENTS)


def test_writer_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "keep.csv"
    write_labels(path, SEGMENTS)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_labels(path, SEGMENTS[:1])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv"]  # temp file cleaned up


# --- frames ---------------------------------------------------------------------------------


@pytest.mark.parametrize("hop_s", [0.01, 0.016, 0.02, 0.032, 0.1])
def test_frames_round_trip_at_several_hops(hop_s):
    rng = np.random.default_rng(int(hop_s * 1000))
    frames = rng.random(500) < 0.4
    frames[:3] = True
    frames[-2:] = True
    segs = frames_to_segments(frames, hop_s)
    assert all(abs(s.start_s / hop_s - round(s.start_s / hop_s)) < 1e-9 for s in segs)
    np.testing.assert_array_equal(segments_to_frames(segs, frames.size, hop_s), frames)
    # grid-aligned segments survive segments -> frames -> segments
    back = frames_to_segments(segments_to_frames(segs, frames.size, hop_s), hop_s)
    _same(back, segs)


def test_half_coverage_rule():
    hop = 0.01
    # [0.015, 0.035): frame 1 covered 0.005 (exactly half -> speech), frames 2, 3 (half) speech
    f = segments_to_frames([Segment(0.015, 0.035)], 6, hop)
    assert f.tolist() == [False, True, True, True, False, False]
    # [0.016, 0.034): frames 1 and 3 covered 0.4 -> not speech
    f = segments_to_frames([Segment(0.016, 0.034)], 6, hop)
    assert f.tolist() == [False, False, True, False, False, False]
    # two short segments in one frame add up (union coverage), overlaps count once
    f = segments_to_frames([Segment(0.0, 0.003), Segment(0.007, 0.01), Segment(0.001, 0.002)], 2, hop)
    assert f.tolist() == [True, False]
    f = segments_to_frames([Segment(0.0, 0.004), Segment(0.001, 0.004)], 1, hop)
    assert f.tolist() == [False]
    # segments beyond the end are clipped; n_frames=0 gives an empty array
    assert segments_to_frames([Segment(0.0, 10.0)], 3, hop).tolist() == [True] * 3
    assert segments_to_frames([Segment(0.0, 10.0)], 0, hop).shape == (0,)


def test_frame_conversion_bad_input():
    with pytest.raises(InvalidInputError, match="hop_s"):
        segments_to_frames([], 10, 0.0)
    with pytest.raises(InvalidInputError, match="n_frames"):
        segments_to_frames([], -1, 0.01)
    with pytest.raises(InvalidInputError, match="1-D"):
        frames_to_segments(np.zeros((2, 2)), 0.01)
    with pytest.raises(InvalidInputError, match="non-finite"):
        frames_to_segments(np.array([0.0, np.nan]), 0.01)
    assert frames_to_segments(np.zeros(0, dtype=bool), 0.01) == []


# --- the dev set ----------------------------------------------------------------------------


def test_read_every_dev_rttm(shared_data):
    paths = sorted((shared_data / "dev").rglob("*.rttm"))
    assert paths
    for path in paths:
        segs = read_rttm(path)
        for a, b in zip(segs, segs[1:], strict=False):
            assert a.end_s < b.start_s  # union: sorted and disjoint
        if path.stat().st_size == 0:
            assert segs == []
        else:
            assert segs and all(s.label == "speech" and s.duration_s > 0 for s in segs)
            turns = [line.split() for line in path.read_text().splitlines() if line.strip()]
            assert min(float(t[3]) for t in turns) == pytest.approx(segs[0].start_s)
            assert max(float(t[3]) + float(t[4]) for t in turns) == pytest.approx(segs[-1].end_s)


def test_rttm_lines_of_no_rttm_type_and_references_past_the_audio_are_errors(tmp_path):
    from vad.core.labelfiles import read_reference, read_rttm

    good = tmp_path / "a.rttm"
    good.write_text("SPKR-INFO a 1 <NA> <NA> <NA> unknown s1 <NA> <NA>\n"
                    "SPEAKER a 1 0.5 1.0 <NA> <NA> s1 <NA> <NA>\nNON-SPEECH a 1 2.0 1.0 <NA> <NA> <NA> <NA> <NA>\n")
    assert [(s.start_s, s.end_s) for s in read_rttm(good)] == [(0.5, 1.5)]  # other RTTM types carry no turns
    bad = tmp_path / "b.rttm"
    bad.write_text("garbage line here\n")
    with pytest.raises(LabelFormatError, match=r"b\.rttm:1: not an RTTM line \(its type 'garbage'"):
        read_rttm(bad)
    assert len(read_reference(good, 1.0)) == 1  # ends past the audio: allowed (padding, rounding)
    late = tmp_path / "c.rttm"
    late.write_text("SPEAKER c 1 50.0 10.0 <NA> <NA> s1 <NA> <NA>\nSPEAKER c 1 1.0 1.0 <NA> <NA> s1 <NA> <NA>\n")
    with pytest.raises(LabelFormatError, match=r"1 of its 2 speech segments start after the audio ends \(8\.000 s\), "
                                               r"the first at 50\.000 s"):
        read_reference(late, 8.0)
