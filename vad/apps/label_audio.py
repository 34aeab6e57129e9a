"""Labeling one audio file: the loaded model, block-by-block reading, the streaming engine.

Batch labeling IS the streaming engine run over a file: the file is decoded at its own rate
in blocks (``vad.core.audio.AudioReader``), each block goes through ``StreamingVAD.process``
and the stream is flushed at the end, so a file gives exactly the segments a live stream of
the same samples gives, and memory stays flat whatever the file's length (tested: equal to
labeling the whole signal at once).

A file soundfile decodes to 0 samples ("empty audio") and a silent file give an empty
segment list. A 0-byte file, a corrupt or truncated file, a file that is not audio, a
FIFO or device, and a file that cannot be opened (permission denied, symlink loop) are
errors (``AudioFileError``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vad.apps.label_formats import LabelResult
from vad.core.errors import InvalidInputError, ModelFileError
from vad.core.postprocess import PostprocessConfig

if TYPE_CHECKING:
    from vad.core.labelfiles import Segment

_NO_PROBABILITIES = np.zeros(0, dtype=np.float32)


class LoadedModel:
    """A loaded model plus what labeling reports about it (name, SHA-256 of the file, defaults)."""

    def __init__(self, model: Any = None, sha256: str | None = None):
        from vad.runtime.model import VADModel

        if isinstance(model, VADModel):
            self.model = model
        elif model is None or isinstance(model, (str, os.PathLike)):
            self.model = VADModel(None if model is None else Path(model))
        else:
            raise InvalidInputError(
                f"model={model!r}: must be None, a path to an .onnx model, or a vad.runtime.VADModel"
            )
        self.metadata = self.model.metadata
        self.name = self.metadata.name
        self.sha256 = sha256 if sha256 is not None else _sha256_of(Path(self.model.path))

    @classmethod
    def from_bytes(cls, data: bytes, sha256: str) -> LoadedModel:
        """Load a model shipped as bytes (a worker with no access to the model file).

        The bytes go to a private temporary file for the loading only (VADModel reads its file
        in ``__init__``); ModelFileError when they do not hash to ``sha256``.
        """
        got = hashlib.sha256(data).hexdigest()
        if got != sha256:
            raise ModelFileError(f"model bytes received have SHA-256 {got}, expected {sha256}")
        with tempfile.TemporaryDirectory(prefix="vad-model-") as folder:
            path = Path(folder) / "model.onnx"
            path.write_bytes(data)
            return cls(path, sha256=sha256)

    @property
    def path(self) -> Path:
        return Path(self.model.path)

    def postprocess(self, postprocess: PostprocessConfig | None) -> PostprocessConfig:
        return postprocess if postprocess is not None else self.metadata.postprocess


def _sha256_of(path: Path) -> str:
    from vad.apps.label_outputs import sha256_file

    return sha256_file(path)


def events_to_segments(events: Iterable[Any]) -> list[Segment]:
    """Completed segments (the engine's "end" events) as vad.core.labelfiles.Segment."""
    from vad.core.labelfiles import Segment

    return [Segment(ev.start_s, ev.end_s, score=ev.mean_probability) for ev in events if ev.kind == "end"]


def label_file(
    path: str | os.PathLike,
    model: Any = None,
    postprocess: PostprocessConfig | None = None,
) -> LabelResult:
    """Label one audio file: speech segments and per-frame probabilities.

    Args:
        path: any file soundfile reads (wav, flac, ogg/opus, mp3, ...), any rate and
            channel count (channels are averaged).
        model: None (the shipped default model), a path to an exported ``.onnx`` model, or
            a loaded ``vad.runtime.VADModel`` (reuse one for many files).
        postprocess: post-processing options; None uses the model's recommended defaults.

    Raises:
        InvalidInputError: path, model or postprocess has the wrong type.
        AudioFileError: the file is missing, unreadable, empty (0 bytes), corrupt or not audio.
        ModelFileError: the model file is missing or not a model of this project.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"path must be a str or os.PathLike (an audio file), got {type(path).__name__}")
    loaded = model if isinstance(model, LoadedModel) else LoadedModel(model)
    return label_with(loaded, Path(path), postprocess)


def label_with(
    loaded: LoadedModel,
    path: Path,
    postprocess: PostprocessConfig | None,
    keep_probabilities: bool = True,
    block_s: float | None = None,
) -> LabelResult:
    """Label ``path`` reading it in blocks of ``block_s`` seconds (None: the engine's chunk length).

    ``keep_probabilities=False`` keeps no per-frame list (the result's ``probabilities`` is
    empty), for outputs that do not need one.
    """
    from vad.core.audio import AudioReader
    from vad.runtime.engine import SIGNAL_CHUNK_SECONDS, StreamingVAD

    if postprocess is not None and not isinstance(postprocess, PostprocessConfig):
        raise InvalidInputError(f"postprocess={postprocess!r}: must be a PostprocessConfig or None")
    if block_s is not None and not block_s > 0:
        raise InvalidInputError(f"block_s={block_s!r}: must be > 0")
    cfg = loaded.postprocess(postprocess)
    probabilities: list[np.ndarray] = []
    segments: list[Segment] = []
    with AudioReader(path, allow_empty=True) as reader:
        rate = reader.rate_hz
        stream = StreamingVAD(model=loaded.model, sample_rate=rate, postprocess=cfg)
        block = max(1, int((SIGNAL_CHUNK_SECONDS if block_s is None else block_s) * rate))
        for samples in reader.blocks(block, reader.exact_dtype):  # int16 PCM goes to the engine as it is
            chunk = samples if samples.dtype != np.float64 else samples.astype(np.float32)
            _collect(stream.process(chunk), probabilities, segments, keep_probabilities)
        n_samples = reader.frames_read
    _collect(stream.flush(), probabilities, segments, keep_probabilities)
    if not keep_probabilities:
        probs = _NO_PROBABILITIES
    else:
        probs = np.concatenate(probabilities) if probabilities else _NO_PROBABILITIES.copy()
    return LabelResult(
        path=path,
        segments=tuple(segments),
        probabilities=probs,
        frame_hop_s=loaded.metadata.feature_spec.hop_s,
        duration_s=n_samples / rate,
        sample_rate=rate,
        model_name=loaded.name,
        model_sha256=loaded.sha256,
        postprocess=cfg,
    )


def _collect(result, probabilities: list, segments: list, keep_probabilities: bool) -> None:
    if keep_probabilities and result.probabilities.shape[0]:
        probabilities.append(result.probabilities)
    segments.extend(events_to_segments(result.events))
