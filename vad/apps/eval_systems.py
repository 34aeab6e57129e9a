"""Systems under evaluation: our models through the streaming runtime, and the output type any
system returns."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from vad.apps.eval_inputs import EVAL_SAMPLE_RATE_HZ, FRAME_HOP_S, FRAME_HOP_SAMPLES
from vad.core.errors import InvalidInputError
from vad.core.labelfiles import (
    Segment,
)


@dataclasses.dataclass(frozen=True)
class SystemOutput:
    """What a system says about one file: a score per 10 ms frame, and its segments."""

    scores: np.ndarray
    segments: list[Segment] | None = None


def run_system(system: Any, audio: np.ndarray) -> tuple[SystemOutput, float]:
    """(output, seconds spent) of a system on 16 kHz audio; scores validated and sized."""
    n_frames = audio.size // FRAME_HOP_SAMPLES
    t0 = time.perf_counter()
    if hasattr(system, "score"):
        out = system.score(audio)
    else:
        out = SystemOutput(np.asarray(system.frame_scores(audio)))
    elapsed = time.perf_counter() - t0
    scores = np.asarray(out.scores, dtype=np.float64).reshape(-1)
    if scores.size != n_frames:
        raise InvalidInputError(
            f"system {system.name!r} returned {scores.size} frame scores for {n_frames} frames of 10 ms"
        )
    if not np.all(np.isfinite(scores)):
        raise InvalidInputError(f"system {system.name!r} returned non-finite scores")
    segments = out.segments
    if segments is None:
        segments = default_segments(scores, system.default_threshold)
    return SystemOutput(scores, segments), elapsed


def default_segments(scores: np.ndarray, threshold: float) -> list[Segment]:
    """Segments of a system without its own: the shared post-processing (``vad.core.postprocess``,
    default options) with the onset threshold set to the system's threshold (and the offset
    threshold lowered to it when the default offset is higher)."""
    from vad.core.postprocess import PostprocessConfig, segments_from_probabilities

    defaults = PostprocessConfig()
    config = defaults.replace(
        onset_threshold=float(threshold), offset_threshold=min(defaults.offset_threshold, float(threshold))
    )
    return [
        Segment(s.start_s, s.end_s, score=s.mean_probability)
        for s in segments_from_probabilities(np.asarray(scores, dtype=np.float64), FRAME_HOP_S, config)
    ]


class ModelSystem:
    """One of our exported models, run through the streaming runtime at its default
    post-processing (the model's metadata); threshold = its onset threshold. ``prime``: each file
    is a stream primed on its opening, as the runtime does by default (``vad.core.priming``)."""

    def __init__(self, path: str | os.PathLike | None = None, name: str | None = None, prime: bool = True) -> None:
        from vad.runtime.model import VADModel

        self.prime = prime
        self.model = VADModel(path)
        meta = self.model.metadata
        self.path = Path(self.model.path)
        self.name = name or meta.name or self.path.stem
        self.default_threshold = float(meta.postprocess.onset_threshold)
        self.flops_per_second = float(meta.total_flops_per_second)
        spec = meta.feature_spec
        # model hop expressed in 16 kHz samples (the eval rate)
        self._hop_eval_samples = spec.hop_length_samples * EVAL_SAMPLE_RATE_HZ / spec.sample_rate_hz

    def score(self, audio: np.ndarray) -> SystemOutput:
        from vad.apps.baselines import map_scores_to_frames
        from vad.apps.labeling import events_to_segments
        from vad.runtime.engine import StreamingVAD

        result = StreamingVAD(model=self.model, sample_rate=EVAL_SAMPLE_RATE_HZ, prime=self.prime).process_signal(audio)
        p = result.probabilities.astype(np.float64)
        n_frames = audio.size // FRAME_HOP_SAMPLES
        if self._hop_eval_samples != FRAME_HOP_SAMPLES or p.size != n_frames:
            p = map_scores_to_frames(p, self._hop_eval_samples, n_frames, FRAME_HOP_SAMPLES)
        return SystemOutput(p, events_to_segments(result.events))
