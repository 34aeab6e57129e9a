"""Speech segments and the label files that hold them: RTTM, Audacity, CSV, JSON.

A label file lists speech segments of one audio file. Every segment in it counts as
speech (labels other than "speech" are kept for information only); an empty file means
the audio has no speech.

Formats (chosen by suffix in ``read_labels`` / ``write_labels``):

* ``.rttm``: ``SPEAKER <file-id> <channel> <start> <duration> <NA> <NA> <speaker> <NA> <NA>``.
  Every speaker turn counts as speech; overlapping turns are merged into their union.
  Lines of other types (``SPKR-INFO``, ...) are skipped, as are blank and ``#`` lines.
* ``.txt``: Audacity label track, ``start<TAB>end[<TAB>label]`` per line, seconds.
  Audacity's spectral-selection lines (starting with a backslash) are skipped.
* ``.csv``: header ``start_s,end_s`` plus optional ``label`` and ``probability`` columns
  (other columns are ignored).
* ``.json``: ``{"segments": [{"start_s": .., "end_s": .., "label": .., "probability": ..}]}``
  or a bare list of such objects.

Frame labels follow the front end's framing (see ``vad.core.features``): frame ``i`` is the
interval ``[i * hop, (i + 1) * hop)``. ``segments_to_frames`` marks a frame as speech when
at least half of it is covered by the union of the segments (times are compared in frame
units rounded to 1e-6 of a hop, so decimal boundaries such as 0.015 s at a 10 ms hop
land exactly on the half). ``frames_to_segments`` turns each run of speech frames back
into one segment on the hop grid, so frames -> segments -> frames is the identity.

Writers are atomic: they write a temporary file beside the target and ``os.replace`` it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vad.core.atomicfile import atomic_write_text
from vad.core.errors import InvalidInputError, LabelFormatError

SPEECH_LABEL = "speech"
LABEL_SUFFIXES = (".rttm", ".txt", ".csv", ".json")
_FRAME_ROUND_DIGITS = 6  # boundaries compared in frame units rounded to 1e-6 hop
_TIME_DECIMALS = 3  # written times: milliseconds, the RTTM convention
_SCORE_DECIMALS = 4
# RTTM's record types (NIST RT-05S); lines of the others are read but carry no speech turns
RTTM_TYPES = frozenset({"SPEAKER", "SPKR-INFO", "SEGMENT", "NOSCORE", "NO_RT_METADATA", "LEXEME", "NON-LEX",
                        "NON-SPEECH", "FILLER", "EDIT", "IP", "SU", "CB", "A/P"})
REFERENCE_END_SLACK_S = 1.0  # a reference turn may start this far past the audio's end (rounding, padding)


@dataclasses.dataclass(frozen=True)
class Segment:
    """One labelled time interval ``[start_s, end_s)`` in seconds.

    Attributes:
        start_s: start time, >= 0.
        end_s: end time, >= start_s.
        label: what the interval is ("speech" unless a file says otherwise).
        score: optional confidence (e.g. mean speech probability), or None.
    """

    start_s: float
    end_s: float
    label: str = SPEECH_LABEL
    score: float | None = None

    def __post_init__(self) -> None:
        for name in ("start_s", "end_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InvalidInputError(f"Segment.{name}={value!r}: must be a number")
            if not math.isfinite(value):
                raise InvalidInputError(f"Segment.{name}={value!r}: must be finite")
            object.__setattr__(self, name, float(value))
        if self.start_s < 0:
            raise InvalidInputError(f"Segment.start_s={self.start_s!r}: must be >= 0")
        if self.end_s < self.start_s:
            raise InvalidInputError(f"Segment.end_s={self.end_s!r}: must be >= start_s={self.start_s!r}")
        if not isinstance(self.label, str):
            raise InvalidInputError(f"Segment.label={self.label!r}: must be a string")
        if self.score is not None:
            if isinstance(self.score, bool) or not isinstance(
                self.score, (int, float, np.integer, np.floating)
            ):
                raise InvalidInputError(f"Segment.score={self.score!r}: must be a number or None")
            if not math.isfinite(self.score):
                raise InvalidInputError(f"Segment.score={self.score!r}: must be finite")
            object.__setattr__(self, "score", float(self.score))

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"start_s": self.start_s, "end_s": self.end_s, "label": self.label}
        if self.score is not None:
            d["probability"] = self.score
        return d


# --- segment arithmetic -------------------------------------------------------------------


def _order(seg: Segment) -> tuple[float, float, str]:
    return (seg.start_s, seg.end_s, seg.label)


def _check_segments(segments: Any, name: str = "segments") -> list[Segment]:
    if isinstance(segments, (str, bytes)) or not isinstance(segments, Iterable):
        raise InvalidInputError(f"{name} must be an iterable of Segment, got {type(segments).__name__}")
    out = list(segments)
    for i, seg in enumerate(out):
        if not isinstance(seg, Segment):
            raise InvalidInputError(f"{name}[{i}] must be a Segment, got {type(seg).__name__}")
    return out


def merge_segments(
    segments: Iterable[Segment], max_gap_s: float = 0.0, label: str = SPEECH_LABEL
) -> list[Segment]:
    """Union of segments: sorted, with overlapping ones (or gaps <= max_gap_s) merged.

    Merged segments carry ``label`` and the highest score of their parts (None if none
    had one). Zero-length segments are dropped.
    """
    segs = _check_segments(segments)
    if isinstance(max_gap_s, bool) or not isinstance(max_gap_s, (int, float)) or not math.isfinite(max_gap_s):
        raise InvalidInputError(f"max_gap_s={max_gap_s!r}: must be a finite number")
    if max_gap_s < 0:
        raise InvalidInputError(f"max_gap_s={max_gap_s!r}: must be >= 0")
    segs = sorted((s for s in segs if s.end_s > s.start_s), key=_order)
    merged: list[list[Any]] = []
    for s in segs:
        if merged and s.start_s <= merged[-1][1] + max_gap_s:
            last = merged[-1]
            last[1] = max(last[1], s.end_s)
            if s.score is not None:
                last[2] = s.score if last[2] is None else max(last[2], s.score)
        else:
            merged.append([s.start_s, s.end_s, s.score])
    return [Segment(a, b, label, score) for a, b, score in merged]


def segments_to_frames(segments: Iterable[Segment], n_frames: int, hop_s: float) -> np.ndarray:
    """Boolean frame labels: frame i = [i*hop_s, (i+1)*hop_s) is speech when >= half covered.

    Coverage is measured on the union of the segments (overlaps count once); segment
    parts beyond ``n_frames * hop_s`` are ignored.
    """
    segs = merge_segments(segments)
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise InvalidInputError(f"n_frames={n_frames!r}: must be an integer >= 0")
    _check_hop(hop_s)
    coverage = np.zeros(int(n_frames), dtype=np.float64)
    for seg in segs:
        start_f = round(seg.start_s / hop_s, _FRAME_ROUND_DIGITS)
        end_f = min(round(seg.end_s / hop_s, _FRAME_ROUND_DIGITS), float(n_frames))
        if end_f <= start_f:
            continue
        first = int(math.floor(start_f))
        last = int(math.ceil(end_f))  # exclusive
        idx = np.arange(first, last)
        overlap = np.minimum(end_f, idx + 1.0) - np.maximum(start_f, idx.astype(np.float64))
        coverage[first:last] += overlap
    return coverage >= 0.5 - 10.0 ** (-_FRAME_ROUND_DIGITS)


def frames_to_segments(frame_labels: Any, hop_s: float, label: str = SPEECH_LABEL) -> list[Segment]:
    """Segments covering each run of speech frames (nonzero entries), on the hop grid."""
    _check_hop(hop_s)
    arr = np.asarray(frame_labels)
    if arr.ndim != 1:
        raise InvalidInputError(f"frame_labels must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"frame_labels must be boolean or numeric, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise InvalidInputError("frame_labels has non-finite values")
    speech = arr.astype(bool).astype(np.int8)
    edges = np.diff(np.concatenate([[0], speech, [0]]))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [Segment(float(a) * hop_s, float(b) * hop_s, label) for a, b in zip(starts, ends, strict=True)]


def _check_hop(hop_s: Any) -> None:
    if (
        isinstance(hop_s, bool)
        or not isinstance(hop_s, (int, float, np.floating))
        or not math.isfinite(hop_s)
    ):
        raise InvalidInputError(f"hop_s={hop_s!r}: must be a finite number")
    if hop_s <= 0:
        raise InvalidInputError(f"hop_s={hop_s!r}: must be > 0")


# --- reading ----------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise LabelFormatError(f"label file not found: {path}")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelFormatError(f"{path}: not a UTF-8 text file: {exc}") from exc
    except OSError as exc:
        raise LabelFormatError(f"{path}: cannot read label file: {exc}") from exc


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LabelFormatError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelFormatError(f"{where}: {what} {text!r} is not finite")
    return value


def _segment(start: float, end: float, label: str, score: float | None, where: str) -> Segment:
    try:
        return Segment(start, end, label, score)
    except InvalidInputError as exc:
        raise LabelFormatError(f"{where}: {exc}") from None


def read_rttm(path: str | Path) -> list[Segment]:
    """Speech segments of an RTTM file: the union of all SPEAKER turns (all file ids)."""
    path = Path(path)
    segments = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}:{lineno}"
        if fields[0] not in RTTM_TYPES:
            raise LabelFormatError(f"{where}: not an RTTM line (its type {fields[0]!r} is none of RTTM's; "
                                   f"speech turns are SPEAKER lines): {line!r}")
        if fields[0] != "SPEAKER":
            continue
        if len(fields) < 5:
            raise LabelFormatError(
                f"{where}: RTTM SPEAKER line needs at least 5 fields, got {len(fields)}: {line!r}"
            )
        start = _number(fields[3], "turn onset", where)
        duration = _number(fields[4], "turn duration", where)
        if duration < 0:
            raise LabelFormatError(f"{where}: negative turn duration {fields[4]!r}")
        segments.append(_segment(start, start + duration, SPEECH_LABEL, None, where))
    return merge_segments(segments)


def read_audacity(path: str | Path) -> list[Segment]:
    """Segments of an Audacity label track (``start<TAB>end[<TAB>label]``)."""
    path = Path(path)
    segments = []
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip() or line.startswith("\\"):
            continue
        where = f"{path}:{lineno}"
        fields = line.split("\t")
        if len(fields) < 2:
            fields = line.split()  # tolerate space-separated files written by hand
        if len(fields) < 2:
            raise LabelFormatError(f"{where}: expected 'start<TAB>end[<TAB>label]', got {line!r}")
        start = _number(fields[0].strip(), "start", where)
        end = _number(fields[1].strip(), "end", where)
        label = "\t".join(fields[2:]).strip() if len(fields) > 2 else ""
        segments.append(_segment(start, end, label or SPEECH_LABEL, None, where))
    return sorted(segments, key=_order)


def read_csv(path: str | Path) -> list[Segment]:
    """Segments of a CSV file with header ``start_s,end_s[,label][,probability]``."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        return []
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    segments = []
    for row in reader:
        lineno = reader.line_num
        where = f"{path}:{lineno}"
        if not row or all(not cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip() for cell in row]
            missing = [c for c in ("start_s", "end_s") if c not in header]
            if missing:
                raise LabelFormatError(
                    f"{where}: CSV header must have start_s and end_s columns, got {row!r}"
                )
            continue
        if len(row) != len(header):
            raise LabelFormatError(f"{where}: expected {len(header)} fields (as the header), got {len(row)}")
        rec = dict(zip(header, (cell.strip() for cell in row), strict=True))
        start = _number(rec["start_s"], "start_s", where)
        end = _number(rec["end_s"], "end_s", where)
        label = rec.get("label") or SPEECH_LABEL
        prob = rec.get("probability")
        score = _number(prob, "probability", where) if prob not in (None, "") else None
        segments.append(_segment(start, end, label, score, where))
    return sorted(segments, key=_order)


def read_json(path: str | Path) -> list[Segment]:
    """Segments of a JSON file: ``{"segments": [...]}`` or a bare list of segment objects."""
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabelFormatError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    if isinstance(data, dict):
        if "segments" not in data:
            raise LabelFormatError(f"{path}: JSON object has no 'segments' list")
        data = data["segments"]
    if not isinstance(data, list):
        raise LabelFormatError(f"{path}: 'segments' must be a list, got {type(data).__name__}")
    segments = []
    for i, item in enumerate(data):
        where = f"{path}: segment {i}"
        if not isinstance(item, dict):
            raise LabelFormatError(f"{where}: must be an object, got {type(item).__name__}")
        for key in ("start_s", "end_s"):
            if key not in item:
                raise LabelFormatError(f"{where}: lacks {key!r}")
            if isinstance(item[key], bool) or not isinstance(item[key], (int, float)):
                raise LabelFormatError(f"{where}: {key}={item[key]!r} is not a number")
        label = item.get("label", SPEECH_LABEL)
        if not isinstance(label, str):
            raise LabelFormatError(f"{where}: label={label!r} is not a string")
        score = item.get("probability", item.get("score"))
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise LabelFormatError(f"{where}: probability={score!r} is not a number")
        segments.append(_segment(item["start_s"], item["end_s"], label, score, where))
    return sorted(segments, key=_order)


_READERS = {".rttm": read_rttm, ".txt": read_audacity, ".csv": read_csv, ".json": read_json}


def read_labels(path: str | Path) -> list[Segment]:
    """Read a label file, choosing the format by suffix (.rttm, .txt, .csv, .json)."""
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise LabelFormatError(
            f"{path}: unknown label file suffix {path.suffix!r} (expected one of {', '.join(LABEL_SUFFIXES)})"
        )
    return reader(path)


# --- writing ----------------------------------------------------------------------------

# atomic_write_text is re-exported here for callers of the label writers.


def _t(x: float) -> str:
    return f"{x:.{_TIME_DECIMALS}f}"


def read_reference(path: str | Path, audio_duration_s: float) -> list[Segment]:
    """The reference speech of an audio file ``audio_duration_s`` long: ``read_labels`` without
    empty segments. LabelFormatError when a segment starts more than ``REFERENCE_END_SLACK_S``
    after the audio ends: the label file of another (longer) recording, or times in other units."""
    segments = [s for s in read_labels(path) if s.duration_s > 0]
    late = [s for s in segments if s.start_s > audio_duration_s + REFERENCE_END_SLACK_S]
    if late:
        raise LabelFormatError(
            f"{path}: {len(late)} of its {len(segments)} speech segments start after the audio ends "
            f"({audio_duration_s:.3f} s), the first at {late[0].start_s:.3f} s: the label file of another recording?"
        )
    return segments


def format_rttm(segments: Sequence[Segment], file_id: str) -> str:
    segs = _check_segments(segments)
    if not isinstance(file_id, str) or not file_id or any(c.isspace() for c in file_id):
        raise InvalidInputError(f"file_id={file_id!r}: must be a non-empty string without whitespace")
    lines = []
    for s in sorted(segs, key=_order):
        speaker = "".join(s.label.split()) or SPEECH_LABEL
        lines.append(
            f"SPEAKER {file_id} 1 {_t(s.start_s)} {_t(s.duration_s)} <NA> <NA> {speaker} <NA> <NA>\n"
        )
    return "".join(lines)


def format_audacity(segments: Sequence[Segment]) -> str:
    segs = _check_segments(segments)
    return "".join(
        f"{_t(s.start_s)}\t{_t(s.end_s)}\t{' '.join(s.label.split())}\n" for s in sorted(segs, key=_order)
    )


def format_csv(segments: Sequence[Segment]) -> str:
    segs = _check_segments(segments)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    with_score = any(s.score is not None for s in segs)
    writer.writerow(["start_s", "end_s", "label"] + (["probability"] if with_score else []))
    for s in sorted(segs, key=_order):
        row = [_t(s.start_s), _t(s.end_s), s.label]
        if with_score:
            row.append("" if s.score is None else f"{s.score:.{_SCORE_DECIMALS}f}")
        writer.writerow(row)
    return buf.getvalue()


def format_json(segments: Sequence[Segment], extra: dict[str, Any] | None = None) -> str:
    segs = _check_segments(segments)
    data: dict[str, Any] = dict(extra or {})
    data["segments"] = [s.to_dict() for s in sorted(segs, key=_order)]
    return json.dumps(data, indent=2) + "\n"


def write_rttm(path: str | Path, segments: Sequence[Segment], file_id: str | None = None) -> None:
    """Write segments as RTTM SPEAKER turns; file_id defaults to the file's stem."""
    path = Path(path)
    atomic_write_text(path, format_rttm(segments, file_id or path.stem))


def write_audacity(path: str | Path, segments: Sequence[Segment]) -> None:
    atomic_write_text(path, format_audacity(segments))


def write_csv(path: str | Path, segments: Sequence[Segment]) -> None:
    atomic_write_text(path, format_csv(segments))


def write_json(path: str | Path, segments: Sequence[Segment], extra: dict[str, Any] | None = None) -> None:
    """Write ``{"segments": [...], **extra}`` (extra: e.g. the audio file and model name)."""
    atomic_write_text(path, format_json(segments, extra))


def write_labels(path: str | Path, segments: Sequence[Segment], file_id: str | None = None) -> None:
    """Write a label file in the format its suffix names (.rttm, .txt, .csv, .json)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".rttm":
        write_rttm(path, segments, file_id)
    elif suffix == ".txt":
        write_audacity(path, segments)
    elif suffix == ".csv":
        write_csv(path, segments)
    elif suffix == ".json":
        write_json(path, segments)
    else:
        raise InvalidInputError(
            f"{path}: unknown label file suffix {path.suffix!r} (expected one of {', '.join(LABEL_SUFFIXES)})"
        )
