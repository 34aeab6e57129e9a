"""The corpus side of the data pipeline: listing audio files, the train/validation split by
source file, and the per-file pick weights of the stream synthesis."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from vad.training.clipio import clip_duration_s

from vad.core.errors import AudioFileError, InvalidInputError

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf")


@dataclasses.dataclass(frozen=True)
class AudioFile:
    """One source file: its path and its path relative to the directory it was listed from
    (the split key)."""

    path: str
    key: str


def list_audio_files(dirs: Sequence[str | os.PathLike], role: str) -> list[AudioFile]:
    """All audio files (by extension, recursively, sorted) under ``dirs``.

    Raises InvalidInputError naming the directory when one is missing, not a directory or
    holds no audio file, or when ``dirs`` is empty.
    """
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    if not dirs:
        raise InvalidInputError(f"no {role} directory given")
    out: list[AudioFile] = []
    for d in dirs:
        root = Path(d)
        if not root.exists():
            raise InvalidInputError(f"{role} directory {str(root)!r} does not exist")
        if not root.is_dir():
            raise InvalidInputError(f"{role} directory {str(root)!r} is not a directory")
        found = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        if not found:
            raise InvalidInputError(
                f"{role} directory {str(root)!r} holds no audio files (looked for {', '.join(AUDIO_EXTENSIONS)})"
            )
        out.extend(AudioFile(str(p), f"{root.name}/{p.relative_to(root).as_posix()}") for p in found)
    return out


def _hash_unit(key: str) -> float:
    """A stable number in [0, 1) from a string."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2.0**64


def in_validation_split(key: str, val_fraction: float) -> bool:
    """Whether the file of split key ``key`` (``AudioFile.key``) is in the validation split."""
    return _hash_unit(key) < val_fraction


def split_files(files: Sequence[AudioFile], val_fraction: float) -> tuple[list[AudioFile], list[AudioFile]]:
    """(train, val) by hashed relative path (``in_validation_split``). With >= 2 files neither side
    is empty."""
    ordered = sorted(files, key=lambda f: _hash_unit(f.key))
    val = [f for f in ordered if in_validation_split(f.key, val_fraction)]
    train = [f for f in ordered if not in_validation_split(f.key, val_fraction)]
    if len(ordered) >= 2:
        if not val:
            val, train = ordered[:1], ordered[1:]
        elif not train:
            val, train = ordered[:-1], ordered[-1:]
    else:
        train, val = list(ordered), list(ordered)
    return sorted(train, key=lambda f: f.path), sorted(val, key=lambda f: f.path)


def pick_weights(keys: Sequence[str], durations_s: Sequence[float] | None = None) -> np.ndarray:
    """Cumulative pick probabilities: each file's weight is 1 / sqrt(number of files of its
    source) (source = first folder under the listed directory), times sqrt(duration) when
    durations are given. Big sources of short clips (digits, single words) then do not
    drown the few long, many-speaker recordings, and short sound effects do not drown music."""
    sources = [k.split("/")[1] if k.count("/") >= 2 else "" for k in keys]
    counts: dict[str, int] = {}
    for src in sources:
        counts[src] = counts.get(src, 0) + 1
    w = np.array([1.0 / np.sqrt(counts[src]) for src in sources])
    if durations_s is not None:
        w *= np.sqrt(np.maximum(np.asarray(durations_s, dtype=np.float64), 1e-3))
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


def readable_with_durations(files: list[AudioFile], skipped: list[str]) -> tuple[list[AudioFile], list[float]]:
    """The readable, non-empty files and their durations (others go to ``skipped``)."""
    keep, durs = [], []
    for f in files:
        try:
            d = clip_duration_s(f.path)
        except AudioFileError as exc:
            log.warning("skipping %s", exc)
            skipped.append(f.path)
            continue
        if d > 0:
            keep.append(f)
            durs.append(d)
        else:
            skipped.append(f.path)
    return keep, durs
