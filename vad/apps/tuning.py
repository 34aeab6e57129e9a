"""Tune a model's post-processing defaults on labelled audio (the API behind ``vad tune``).

The network's targets are tight (a pause of 100 ms or more is non-speech), so bridging pauses
into segments, padding and the hysteresis thresholds are the post-processing's job. This
searches ``PostprocessConfig`` over a grid and keeps the options with the best segment-frame
F1: a reference frame counts as detected when a detected segment covers it (the frame rule of
``vad eval``), pooled over all files. Probabilities are computed once per file by the
streaming engine; each grid point re-runs only the post-processing.

With ``max_false_alarm``, only options whose onset threshold keeps the false alarms on the
speech-free files among the inputs (files with an empty label file) at or below that share of
their frames are eligible: the frame rule of ``vad eval``'s speech-free figure (frames scored at
or above the onset threshold). This is how a model is tuned for an always-on budget of false
alarms rather than for F1 alone.

Tune on one part of your labelled data and report on another (``vad eval`` on the rest);
the chosen options go into the model with ``vad export --onset ... --min-silence-ms ...``
or are printed as ``vad label`` flags.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vad.apps.evaluation import (
    EVAL_SAMPLE_RATE_HZ,
    FRAME_HOP_S,
    FRAME_HOP_SAMPLES,
    EvalItem,
    ModelSystem,
    load_eval_audio,
)
from vad.core.errors import InvalidInputError
from vad.core.labelfiles import Segment, read_reference, segments_to_frames
from vad.core.postprocess import PostprocessConfig, segments_from_probabilities

ONSETS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
OFFSET_GAPS = (0.0, 0.1, 0.2)  # offset threshold = onset - gap
MIN_SILENCE_MS = (50.0, 100.0, 150.0, 250.0, 400.0)
SPEECH_PAD_MS = (0.0, 30.0, 60.0)
MIN_SPEECH_MS = (50.0, 100.0, 200.0)


@dataclasses.dataclass(frozen=True)
class TuneResult:
    """The best options, their pooled segment-frame figures, and the model's current figures."""

    config: PostprocessConfig
    f1: float
    precision: float
    recall: float
    current_f1: float
    files: int
    false_alarm: float | None = None  # share of speech-free frames >= onset, when there are such files
    speech_free_files: int = 0

    def export_flags(self) -> str:
        c = self.config
        return (f"--onset {c.onset_threshold:g} --offset {c.offset_threshold:g} --min-speech-ms {c.min_speech_ms:g} "
                f"--min-silence-ms {c.min_silence_ms:g} --speech-pad-ms {c.speech_pad_ms:g}")

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "f1": self.f1, "precision": self.precision, "recall": self.recall,
                "current_f1": self.current_f1, "files": self.files, "false_alarm": self.false_alarm,
                "speech_free_files": self.speech_free_files, "export_flags": self.export_flags()}


def full_grid(base: PostprocessConfig) -> list[PostprocessConfig]:
    out = []
    for onset, gap, silence, pad, speech in itertools.product(ONSETS, OFFSET_GAPS, MIN_SILENCE_MS, SPEECH_PAD_MS,
                                                              MIN_SPEECH_MS):
        out.append(base.replace(onset_threshold=onset, offset_threshold=max(onset - gap, 0.0),
                                min_silence_ms=silence, speech_pad_ms=pad, min_speech_ms=speech))
    return out


def _covered(probabilities: np.ndarray, config: PostprocessConfig, n_frames: int) -> np.ndarray:
    segments = [Segment(s.start_s, s.end_s) for s in segments_from_probabilities(probabilities, FRAME_HOP_S, config)]
    return segments_to_frames(segments, n_frames, FRAME_HOP_S)


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def tune_postprocess(model: str | os.PathLike | None, items: Sequence[EvalItem],
                     on_file: Callable[[int, int, EvalItem], None] | None = None,
                     grid: Sequence[PostprocessConfig] | None = None,
                     max_false_alarm: float | None = None) -> TuneResult:
    """Grid-search the post-processing of ``model`` on ``items`` (``vad.apps.evaluation.discover``);
    ``grid`` defaults to every combination of the module's ONSETS, OFFSET_GAPS, MIN_SILENCE_MS,
    SPEECH_PAD_MS and MIN_SPEECH_MS. ``max_false_alarm`` (a share in [0, 1]) restricts the search
    as the module doc says; InvalidInputError when no speech-free file is among ``items`` or no
    option meets it (naming the least false-alarm share the grid reaches)."""
    if not items:
        raise InvalidInputError("no labelled files to tune on")
    if max_false_alarm is not None and not 0.0 <= max_false_alarm <= 1.0:
        raise InvalidInputError(f"max_false_alarm={max_false_alarm!r}: must be a share in [0, 1]")
    system = ModelSystem(model)
    current = system.model.metadata.postprocess
    scored: list[tuple[np.ndarray, np.ndarray]] = []
    for i, item in enumerate(items):
        if on_file is not None:
            on_file(i, len(items), item)
        audio = load_eval_audio(item.audio_path)
        n_frames = audio.size // FRAME_HOP_SAMPLES
        reference = read_reference(item.label_path, audio.size / EVAL_SAMPLE_RATE_HZ)  # as vad eval
        scored.append((system.score(audio).scores, segments_to_frames(reference, n_frames, FRAME_HOP_S)))

    free_files = [probs for probs, ref in scored if ref.size and not ref.any()]
    speech_free = np.concatenate(free_files or [np.zeros(0)])
    if max_false_alarm is not None and not speech_free.size:
        raise InvalidInputError("a false-alarm budget needs speech-free files (an empty label file) among the inputs")

    @functools.cache
    def false_alarm_at(onset: float) -> float | None:  # the grid has few distinct onsets
        return float(np.mean(speech_free >= onset)) if speech_free.size else None

    def false_alarm(config: PostprocessConfig) -> float | None:
        return false_alarm_at(config.onset_threshold)

    def eligible(config: PostprocessConfig) -> bool:
        return max_false_alarm is None or false_alarm(config) <= max_false_alarm

    def figures(config: PostprocessConfig) -> tuple[float, float, float]:
        tp = fp = fn = 0
        for probs, ref in scored:
            det = _covered(probs, config, ref.size)
            tp += int(np.count_nonzero(det & ref))
            fp += int(np.count_nonzero(det & ~ref))
            fn += int(np.count_nonzero(~det & ref))
        return _f1(tp, fp, fn)

    current_fig = figures(current)
    best, best_fig = (current, current_fig) if eligible(current) else (None, None)
    candidates = full_grid(current) if grid is None else list(grid)
    for config in candidates:
        if eligible(config):
            fig = figures(config)
            if best_fig is None or fig[0] > best_fig[0]:
                best, best_fig = config, fig
    if best is None:
        least = min(false_alarm(c) for c in [current, *candidates])
        raise InvalidInputError(f"no post-processing option keeps the false alarms on the speech-free files at "
                                f"or below {100 * max_false_alarm:g} % of their frames (the least is {100 * least:.3g} %)")
    return TuneResult(best, best_fig[0], best_fig[1], best_fig[2], current_fig[0], len(scored), false_alarm(best),
                      len(free_files))
