"""Evaluation inputs: labelled audio files found under PATHs (``discover``), their groups,
families and SNRs, and decoding them at the evaluation rate."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vad.core.errors import AudioFileError, InvalidInputError, LabelFormatError
from vad.core.labelfiles import (
    LABEL_SUFFIXES,
)

EVAL_SAMPLE_RATE_HZ = 16000
FRAME_HOP_SAMPLES = 160
FRAME_HOP_S = FRAME_HOP_SAMPLES / EVAL_SAMPLE_RATE_HZ
REPORT_VERSION = 1
_SECONDS_PER_MINUTE = 60.0
_MS_PER_S = 1000.0
_DELAY_PERCENTILE = 90.0
_SNR_PATTERN = re.compile(r"snr[_=]?(m?-?\d+(?:\.\d+)?)", re.IGNORECASE)  # "snr-5" = -5 dB
_AUDIO_SUFFIXES_FALLBACK = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif"})


@dataclasses.dataclass(frozen=True)
class EvalItem:
    """One audio file to evaluate with its label file, group and (if named) SNR."""

    audio_path: Path
    label_path: Path
    group: str
    snr_db: float | None = None


def _audio_suffixes() -> frozenset[str]:
    try:  # one list of audio suffixes in the project: the labeling module's
        from vad.apps.labeling import AUDIO_SUFFIXES

        return frozenset(AUDIO_SUFFIXES)
    except ImportError:  # pragma: no cover - labeling module absent
        return _AUDIO_SUFFIXES_FALLBACK


def snr_from_name(path: str | Path) -> float | None:
    """SNR in dB carried by a path (``snr10``; ``snr-5``, ``snr_-5`` and ``SNRm5`` all mean -5), or None."""
    matches = _SNR_PATTERN.findall(str(path))
    if not matches:
        return None
    text = matches[-1]
    return -float(text[1:]) if text[:1].lower() == "m" else float(text)


def find_label_file(audio: Path, labels_dir: Path | None = None, relative: Path | None = None) -> Path | None:
    """The label file of an audio file (module doc), or None."""
    candidates: list[Path] = []
    if labels_dir is not None:
        if relative is not None:
            candidates += [labels_dir / relative.parent / (audio.stem + s) for s in LABEL_SUFFIXES]
        candidates += [labels_dir / (audio.stem + s) for s in LABEL_SUFFIXES]
    candidates += [audio.with_suffix(s) for s in LABEL_SUFFIXES]
    for c in candidates:
        if c.is_file():
            return c
    return None


def discover(
    paths: Sequence[str | os.PathLike], labels_dir: str | os.PathLike | None = None
) -> list[EvalItem]:
    """Audio files under PATHs (folders recursively, in sorted order) with their labels.

    Raises AudioFileError for a PATH that does not exist or holds no audio, and
    LabelFormatError naming every audio file that has no label file.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise InvalidInputError("no PATH given: name audio files or folders to evaluate")
    ldir = Path(labels_dir) if labels_dir is not None else None
    if ldir is not None and not ldir.is_dir():
        raise LabelFormatError(f"labels folder not found: {ldir}")
    suffixes = _audio_suffixes()
    items: list[EvalItem] = []
    missing: list[str] = []
    seen: set[Path] = set()
    for arg in paths:
        root = Path(arg)
        if root.is_dir():
            files = sorted(
                p
                for p in root.rglob("*")
                if p.is_file()
                and p.suffix.lower() in suffixes
                and not any(part.startswith(".") for part in p.parts[len(root.parts) :])
            )
            if not files:
                raise AudioFileError(
                    f"{root}: folder holds no audio files ({', '.join(sorted(suffixes)[:6])}, ...)"
                )
            base_name = root.resolve().name or str(root)
        elif root.is_file():
            files = [root]
            root = root.parent
            base_name = root.resolve().name or str(root)
        else:
            raise AudioFileError(f"{arg}: no such file or folder")
        for f in files:
            key = f.resolve()
            if key in seen:
                continue
            seen.add(key)
            rel = f.relative_to(root)
            label = find_label_file(f, ldir, rel)
            if label is None:
                missing.append(str(f))
                continue
            group = "/".join([base_name, *rel.parent.parts])
            items.append(EvalItem(f, label, group, snr_from_name(rel)))
    if missing:
        where = f" next to it or in {ldir}" if ldir is not None else " next to it"
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise LabelFormatError(
            f"no label file ({'/'.join(LABEL_SUFFIXES)} of the same stem{where}) for: {shown}"
        )
    return items


def _family(path: Path) -> str:
    return path.stem.split("_", 1)[0]


def family_of(items: Sequence[EvalItem]) -> dict[Path, str]:
    """``group/family`` of each file whose folder holds several families, for families of >= 2 files."""
    members: dict[str, dict[str, list[Path]]] = {}
    for it in items:
        members.setdefault(it.group, {}).setdefault(_family(it.audio_path), []).append(it.audio_path)
    out: dict[Path, str] = {}
    for group, fams in members.items():
        if len(fams) > 1:
            for fam, paths in fams.items():
                if len(paths) >= 2:
                    out.update({p: f"{group}/{fam}" for p in paths})
    return out


def load_eval_audio(path: Path) -> np.ndarray:
    from vad.core.audio import load_audio

    audio, _ = load_audio(path, EVAL_SAMPLE_RATE_HZ)
    return np.ascontiguousarray(audio, dtype=np.float32)
