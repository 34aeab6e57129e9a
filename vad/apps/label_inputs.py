"""Finding the audio files that PATH arguments name (files, folders, glob patterns).

Folders are searched recursively for files with an audio suffix (``AUDIO_SUFFIXES``), in
sorted order, hidden entries skipped and symlinked folders not followed; a file named
explicitly is labeled whatever its suffix; glob patterns (``*``, ``?``, ``[``, ``**``) are
expanded like folders' contents (audio suffixes only). Anything found is labeled or reported
per file: a broken link, a symlink loop or a FIFO named ``x.wav`` becomes that file's error.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

AUDIO_SUFFIXES = frozenset(
    {
        ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
        ".au", ".snd", ".caf", ".w64", ".rf64", ".voc", ".sd2", ".mat", ".htk", ".pvf", ".xi",
    }
)  # fmt: skip
_GLOB_CHARS = frozenset("*?[")


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def _walk_audio(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in files if _is_audio(Path(f)))
    return sorted(found)


def _identity(path: Path) -> Path:
    """What two names of one file share (their resolved path); a symlink loop keeps its own name."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: "Symlink loop" (Python < 3.13)
        return Path(os.path.abspath(path))


def find_audio_files(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Expand PATH arguments into audio files; returns (files, arguments that matched nothing).

    Files named explicitly are kept whatever their suffix; folders are searched recursively
    and glob patterns expanded, keeping audio suffixes only. Order: arguments in the order
    given, each expanded in sorted order; duplicates are dropped.
    """
    files: list[Path] = []
    unmatched: list[str] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = _identity(p)
        if key not in seen:
            seen.add(key)
            files.append(p)

    for arg in paths:
        text = os.fspath(arg)
        p = Path(text)
        if p.is_dir():
            for f in _walk_audio(p):
                add(f)
        elif p.exists() or p.is_symlink():
            add(p)
        elif _GLOB_CHARS & set(text):
            matched = False  # a pattern that matches only files already given still matched
            for m in map(Path, sorted(glob.glob(text, recursive=True))):
                found = _walk_audio(m) if m.is_dir() else [m] if _is_audio(m) else []
                for f in found:
                    add(f)
                matched = matched or bool(found)
            if not matched:
                unmatched.append(text)
        else:
            unmatched.append(text)
    return files, unmatched


def audio_duration_s(path: Path) -> float:
    """Length of an audio file from its header (0 when unreadable); for progress estimates."""
    from vad.core.audio import AudioReader
    from vad.core.errors import VADError

    try:
        with AudioReader(path, allow_empty=True) as reader:
            return reader.frames_declared / reader.rate_hz
    except (VADError, OSError):
        return 0.0
