"""StreamingVAD: run an exported model on a live or file audio stream, chunk by chunk.

    >>> vad = StreamingVAD(sample_rate=48000)          # shipped default model
    >>> for chunk in chunks:                            # int16 or float32 mono, any length
    ...     result = vad.process(chunk)
    ...     for event in result.events:
    ...         print(event.kind, event.start_s, event.end_s)
    >>> vad.flush()                                     # end of stream: closes an open segment
    >>> vad.reset()                                     # ready for a new stream

Pipeline per stream: (resampler to the model's rate when the stream's rate differs) ->
numba streaming log-mel front end built from the model's feature spec -> the network run
on blocks of ``block_frames`` frames -> ``vad.postprocess.SegmentTracker`` (the one
post-processing implementation, shared with batch labeling).

Timing: every frame ``i`` of the model covers model-rate samples ``[i*hop, (i+1)*hop)``;
positions are mapped back to the input stream's sample positions (nearest sample of
``t * input_rate / model_rate``) and converted to seconds only on output.

Latency: a frame's probability is returned once the frame is complete (one hop) and its
block of ``block_frames`` frames is full, i.e. up to ``block_frames * hop`` after the frame
ended, plus the resampler's delay for other rates. Events come later by what the
post-processing rules need (see ``vad.postprocess``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from runtime.model import VADModel
from vad.postprocess import PostprocessConfig

DEFAULT_BLOCK_FRAMES = 4


@dataclasses.dataclass(frozen=True)
class SpeechEvent:
    """A speech start or end, in samples of the input stream.

    Attributes:
        kind: "start" (a segment began; ``end_sample`` is None) or "end" (a segment is complete).
        start_sample: first input sample of the (padded) segment.
        end_sample: one past its last input sample ("end" events only).
        mean_probability: mean network probability over the segment's detected frames
            (before padding); "end" events only.
        sample_rate: the input stream's rate (for the seconds properties).
    """

    kind: str
    start_sample: int
    end_sample: int | None
    mean_probability: float | None
    sample_rate: int

    @property
    def start_s(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def end_s(self) -> float | None:
        return None if self.end_sample is None else self.end_sample / self.sample_rate


@dataclasses.dataclass(frozen=True)
class StreamResult:
    """What one ``process``/``flush`` call completed.

    Attributes:
        probabilities: float32 [n] speech probability of each frame completed by this call.
        frame_indices: int64 [n] their frame numbers in the stream (0-based, consecutive).
        frame_start_samples / frame_end_samples: int64 [n] each frame's span in input samples.
        events: speech start/end events completed by this call, in stream order.
        sample_rate: the input stream's rate.
    """

    probabilities: np.ndarray
    frame_indices: np.ndarray
    frame_start_samples: np.ndarray
    frame_end_samples: np.ndarray
    events: list[SpeechEvent]
    sample_rate: int

    @property
    def frame_times_s(self) -> np.ndarray:
        """Start time of each returned frame, seconds of the input stream."""
        return self.frame_start_samples / self.sample_rate


class StreamingVAD:
    """Per-stream voice activity detection state over a (possibly shared) ``VADModel``.

    Args:
        model: a ``VADModel`` (shared, never modified), a model file path, or None for the
            shipped default model.
        sample_rate: rate of the audio given to ``process`` (any rate >= 1 Hz; resampled
            internally to the model's rate).
        postprocess: None (the model's recommended defaults), a ``PostprocessConfig``, or a
            dict of overrides applied to the model's defaults.
        block_frames: frames per network call (>= 1); trades latency (block_frames * hop)
            for per-call overhead.
        intra_op_threads, backend: passed to ``VADModel`` when ``model`` is a path/None.

    Not thread-safe per instance: use one StreamingVAD per stream (they may share a model).
    """

    def __init__(
        self,
        model: VADModel | str | Path | None = None,
        sample_rate: int = 16000,
        postprocess: PostprocessConfig | dict | None = None,
        block_frames: int = DEFAULT_BLOCK_FRAMES,
        intra_op_threads: int = 1,
        backend: str = "onnxruntime",
    ):
        raise NotImplementedError("StreamingVAD is being implemented (runtime helper)")

    def process(self, chunk: np.ndarray, sample_rate: int | None = None) -> StreamResult:
        """Feed the next chunk (1-D int16 or float32/float64 mono, any length incl. 0).

        ``sample_rate``, when given, must equal the stream's rate. Raises InvalidInputError
        (bad dtype/shape/non-finite/rate; the stream state is unchanged) or StreamStateError
        (called after ``flush`` without ``reset``).
        """
        raise NotImplementedError

    def flush(self) -> StreamResult:
        """End the stream: run the remaining frames, close an open segment, return the rest."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the stream (state, buffers, counters); the next ``process`` starts a new one."""
        raise NotImplementedError
