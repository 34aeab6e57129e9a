"""Reading training audio (private adapter of the data pipeline: soundfile + soxr).

Noise tracks are read as random excerpts (seek + partial read), which
``vad.core.audio.load_audio`` (whole files) does not do.
"""

from __future__ import annotations

import os

import numpy as np

from vad.core.errors import AudioFileError


def read_clip(path: str, rate_hz: int, start_s: float = 0.0, duration_s: float | None = None) -> np.ndarray:
    """Mono float32 at rate_hz of [start_s, start_s + duration_s) of a file; AudioFileError
    naming the file when it cannot be read or is empty."""
    import soundfile as sf
    import soxr

    try:
        with sf.SoundFile(path) as f:
            src_rate = f.samplerate
            start = int(start_s * src_rate)
            if start:
                f.seek(min(start, f.frames))
            n = -1 if duration_s is None else int(np.ceil(duration_s * src_rate))
            data = f.read(n, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError) as exc:
        raise AudioFileError(f"cannot read audio file {path!r}: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioFileError(f"audio file {path!r} is empty")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(x)):
        raise AudioFileError(f"audio file {path!r} has non-finite samples")
    if src_rate != rate_hz:
        x = soxr.resample(x, src_rate, rate_hz, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def clip_duration_s(path: str) -> float:
    import soundfile as sf

    try:
        info = sf.info(path)
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError) as exc:
        raise AudioFileError(f"cannot read audio file {path!r}: {exc}") from exc
    return info.frames / info.samplerate


def load_rir(path: str | os.PathLike, rate_hz: int) -> tuple[np.ndarray, int]:
    return read_clip(str(path), rate_hz), rate_hz
