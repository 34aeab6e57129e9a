"""StreamingVAD: run an exported model on a live or file audio stream, chunk by chunk.

    >>> vad = StreamingVAD(sample_rate=48000)          # shipped default model
    >>> for chunk in chunks:                            # int16 or float32 mono, any length
    ...     result = vad.process(chunk)
    ...     for event in result.events:
    ...         print(event.kind, event.start_s, event.end_s)
    >>> vad.flush()                                     # end of stream: closes an open segment
    >>> vad.reset()                                     # ready for a new stream

Pipeline per stream: (resampler to the model's rate when the stream's rate differs) ->
log-mel front end built from the model's feature spec -> the network -> the post-processing
state machine of ``vad.core.postprocess`` (the one implementation, shared with batch
labeling). With the numba backend all of it after the resampler is ONE compiled call per
chunk (``vad.runtime.network.stream_chunk``), state in preallocated buffers; Python builds
event objects only when the post-processing completed one. With onnxruntime the numba front
end feeds the graph in blocks of ``block_frames`` frames.

Files: ``process_signal`` (a whole signal) or ``process`` on consecutive blocks then
``flush`` (a file read block by block, memory flat) is the batch path: large chunks run the
network's non-recurrent layers as matrix products over blocks of frames and only the GRU frame
by frame, with the same probabilities and events as any other chunking (tested).

Timing: every frame ``i`` of the model covers model-rate samples ``[i*hop, (i+1)*hop)``;
positions are mapped back to the input stream's sample positions (nearest sample of
``t * input_rate / model_rate``) and converted to seconds only on output.

Latency: a frame's probability is returned once the frame is complete (numba), or once its
block of ``block_frames`` frames is full (onnxruntime): ``block_frames * hop`` after its first
sample (``StreamingVAD.latency_ms``; one hop, 10 ms, with the numba backend), plus the
resampler's hold-back at other rates. Events come later by what the post-processing rules need
(see ``vad.core.postprocess``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from vad.runtime.frontend import COMPILED_DTYPES
from vad.runtime.model import DEFAULT_BACKEND, VADModel
from vad.runtime.network import (
    MAX_CALL_FRAMES,
    S_EV_F,
    S_EV_I,
    S_PROBS,
    reset_stream,
    stream_chunk,
    stream_flush,
)

from vad.core.errors import InvalidInputError, StreamStateError
from vad.core.features import pcm_scale
from vad.core.postprocess import (
    PostprocessConfig,
    SegmentEvent,
    SegmentTracker,
    TrackerState,
    events_from_arrays,
)

# Frames per network call when block_frames=None, by backend: the fused numba step runs every
# frame as soon as it is complete (no per-call overhead to amortize); onnxruntime costs tens of
# microseconds per call, so it gets 16-frame blocks (160 ms latency); see `vad bench`.
# Chunk length process_signal feeds a whole signal in: within one compiled call's limit
# ((MAX_CALL_FRAMES - 1) hops) at the model rate, so each chunk is one call.
SIGNAL_CHUNK_SECONDS = 10.0

DEFAULT_BLOCK_FRAMES = {"numba": 1, "onnxruntime": 16}


@dataclasses.dataclass(frozen=True, slots=True)
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


@dataclasses.dataclass(slots=True)
class StreamResult:
    """What one ``process``/``flush`` call completed.

    Attributes:
        probabilities: float32 [n] speech probability of each frame completed by this call.
        first_frame: frame number (0-based, in the stream) of ``probabilities[0]``.
        events: speech start/end events completed by this call, in stream order.
        sample_rate: the input stream's rate.

    Properties (computed on access): ``frame_indices`` int64 [n]; ``frame_start_samples`` /
    ``frame_end_samples`` int64 [n], each frame's span in input-stream samples;
    ``frame_times_s`` float64 [n], each frame's start in seconds.
    """

    probabilities: np.ndarray
    first_frame: int
    events: list[SpeechEvent]
    sample_rate: int
    hop_samples: int  # the model's hop, at model_rate
    model_rate: int

    @property
    def frame_indices(self) -> np.ndarray:
        return np.arange(self.first_frame, self.first_frame + self.probabilities.shape[0], dtype=np.int64)

    def _to_input(self, model_samples: np.ndarray) -> np.ndarray:
        return _model_to_input_samples(model_samples, self.sample_rate, self.model_rate)

    @property
    def frame_start_samples(self) -> np.ndarray:
        return self._to_input(self.frame_indices * self.hop_samples)

    @property
    def frame_end_samples(self) -> np.ndarray:
        return self._to_input((self.frame_indices + 1) * self.hop_samples)

    @property
    def frame_times_s(self) -> np.ndarray:
        """Start time of each returned frame, seconds of the input stream."""
        return self.frame_start_samples / self.sample_rate


def _model_to_input_samples(model_samples, input_rate: int, model_rate: int):
    """Nearest input-stream sample position of model-rate sample position(s) (exact integers)."""
    if input_rate == model_rate:
        return model_samples
    return (2 * model_samples * input_rate + model_rate) // (2 * model_rate)


def _check_rate(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name}={value!r}: must be an integer sample rate >= 1 Hz")
    return int(value)


class StreamingVAD:
    """Per-stream voice activity detection state over a (possibly shared) ``VADModel``.

    Args:
        model: a ``VADModel`` (shared, never modified), a model file path, or None for the
            shipped default model.
        sample_rate: rate of the audio given to ``process`` (any rate >= 1 Hz; resampled
            internally to the model's rate).
        postprocess: None (the model's recommended defaults), a ``PostprocessConfig``, or a
            dict of overrides applied to the model's defaults.
        block_frames: frames per network call (>= 1) of the onnxruntime backend; trades
            latency (block_frames * hop) for per-call overhead; None: ``DEFAULT_BLOCK_FRAMES``
            of the model's backend. Blocks are counted from the start of the stream, so the
            results do not depend on how the audio is chunked. The numba backend's fused step
            has no per-call overhead to amortize: it returns every frame as soon as it is
            complete, whatever ``block_frames`` says.
        intra_op_threads, backend: passed to ``VADModel`` when ``model`` is a path/None.

    Attributes:
        model, sample_rate, config (the PostprocessConfig in use), frames_processed,
        samples_received.

    Not thread-safe per instance: use one StreamingVAD per stream (they may share a model).
    """

    def __init__(
        self,
        model: VADModel | str | Path | None = None,
        sample_rate: int = 16000,
        postprocess: PostprocessConfig | dict | None = None,
        block_frames: int | None = None,
        intra_op_threads: int = 1,
        backend: str = DEFAULT_BACKEND,
    ):
        from vad.core.audio import StreamResampler

        self.sample_rate = _check_rate(sample_rate, "sample_rate")
        if block_frames is not None and (
            isinstance(block_frames, bool) or not isinstance(block_frames, (int, np.integer)) or block_frames < 1
        ):
            raise InvalidInputError(f"block_frames={block_frames!r}: must be None or an integer >= 1")
        if not isinstance(model, VADModel):
            model = VADModel(model, intra_op_threads=intra_op_threads, backend=backend)
        self.block_frames = int(block_frames) if block_frames is not None else DEFAULT_BLOCK_FRAMES[model.backend]
        self.model = model
        self._grouping_invariant = model.grouping_invariant
        spec = model.spec
        self._spec = spec
        self._model_rate = spec.sample_rate_hz
        self._hop = spec.hop_length_samples
        defaults = model.metadata.postprocess
        if postprocess is None:
            self.config = defaults
        elif isinstance(postprocess, PostprocessConfig):
            self.config = postprocess
        elif isinstance(postprocess, dict):
            unknown = sorted(set(postprocess) - set(defaults.to_dict()))
            if unknown:
                raise InvalidInputError(f"postprocess has unknown option(s): {', '.join(unknown)}")
            self.config = defaults.replace(**postprocess)
        else:
            raise InvalidInputError(
                f"postprocess must be None, a PostprocessConfig or a dict of overrides, got {type(postprocess).__name__}"
            )
        self._resampler = None if self.sample_rate == self._model_rate else StreamResampler(self.sample_rate, self._model_rate)
        net = model.numba_network
        if net is not None:
            self._fused = _FusedStep(net, TrackerState(self.config, spec.hop_s))
        else:
            from vad.runtime.frontend import StreamingLogMel

            self._fused = None
            self._frontend = StreamingLogMel(spec)  # from the model's metadata, never defaults
            self._tracker = SegmentTracker(self.config, spec.hop_s)
            self._pending = np.zeros((self.block_frames, spec.n_mels), dtype=np.float32)
        self._max_chunk = (MAX_CALL_FRAMES - 1) * self._hop  # model-rate samples per fused call
        self.reset()

    # -- state ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the stream (state, buffers, counters); the next ``process`` starts a new one."""
        if self._resampler is not None:
            self._resampler.reset()
        if self._fused is not None:
            self._fused.reset()
        else:
            self._frontend.reset()
            self._tracker.reset()
            self._state = self.model.initial_state()
            self._n_pending = 0
        self.frames_processed = 0
        self.samples_received = 0
        self._flushed = False
        self._live = self._fused is not None and self._resampler is None  # process()'s direct path applies

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency: from a frame's first sample to its probability (frame + block wait), at the model rate."""
        block = 1 if self._fused is not None else self.block_frames
        return 1000.0 * self._spec.hop_s * block

    # -- mapping model positions to input samples -----------------------------------------
    def _to_input_samples(self, model_samples: int) -> int:
        return _model_to_input_samples(model_samples, self.sample_rate, self._model_rate)

    def _event(self, ev: SegmentEvent) -> SpeechEvent:
        start = int(self._to_input_samples(ev.start_frame * self._hop))
        end = None if ev.end_frame is None else int(self._to_input_samples(ev.end_frame * self._hop))
        return SpeechEvent(ev.kind, start, end, ev.mean_probability, self.sample_rate)

    # -- processing ----------------------------------------------------------------------
    def _check_chunk(self, chunk, sample_rate) -> np.ndarray:
        if self._flushed:
            raise StreamStateError("StreamingVAD.process() after flush(): call reset() to start a new stream")
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise InvalidInputError(
                f"chunk sample_rate={sample_rate!r} does not match the stream's sample_rate={self.sample_rate} "
                "(make a StreamingVAD for that rate)"
            )
        if not isinstance(chunk, np.ndarray):
            raise InvalidInputError(f"chunk must be a 1-D numpy array, got {type(chunk).__name__}")
        if chunk.ndim != 1:
            raise InvalidInputError(f"chunk must be 1-D mono samples, got shape {chunk.shape} (downmix first)")
        if chunk.dtype.kind not in "fi":
            raise InvalidInputError(f"chunk must be float or signed integer PCM (int16), got dtype {chunk.dtype}")
        return chunk

    def _infer(self, features: np.ndarray, final: bool) -> np.ndarray:
        """onnxruntime: run whole blocks of the pending + new frames (all of them when final); return probabilities."""
        block = self.block_frames
        n = features.shape[0]
        if not self._n_pending and n == block:  # the common live case: exactly one block arrived
            probs, self._state = self.model.run(features, self._state)
            return probs
        out = []
        pos = 0
        if self._n_pending:
            take = min(block - self._n_pending, n)
            self._pending[self._n_pending : self._n_pending + take] = features[:take]
            self._n_pending += take
            pos = take
            if self._n_pending == block or (final and self._n_pending):
                p, self._state = self.model.run(self._pending[: self._n_pending], self._state)
                out.append(p)
                self._n_pending = 0
        while n - pos >= block or (final and n - pos > 0):
            if self._grouping_invariant:  # all whole blocks in one call: same result, less overhead
                stop = n if final else pos + (n - pos) // block * block
            else:
                stop = min(pos + block, n)
            p, self._state = self.model.run(np.ascontiguousarray(features[pos:stop]), self._state)
            out.append(p)
            pos = stop
        rest = n - pos
        if rest:
            self._pending[:rest] = features[pos:]
            self._n_pending = rest
        if not out:
            return _EMPTY_F32
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _result(self, probs: np.ndarray, events: list[SegmentEvent]) -> StreamResult:
        first = self.frames_processed
        self.frames_processed = first + probs.shape[0]
        return StreamResult(
            probs,
            first,
            [self._event(e) for e in events] if events else [],
            self.sample_rate,
            self._hop,
            self._model_rate,
        )

    def process(self, chunk: np.ndarray, sample_rate: int | None = None) -> StreamResult:
        """Feed the next chunk (1-D int16 or float32/float64 mono, any length incl. 0).

        ``sample_rate``, when given, must equal the stream's rate. Raises InvalidInputError
        (bad dtype/shape/non-finite/rate; the stream state is unchanged) or StreamStateError
        (called after ``flush`` without ``reset``).
        """
        if self._live and sample_rate is None and type(chunk) is np.ndarray:  # the live case, checked once
            scale = _FUSED_SCALES.get(chunk.dtype)
            if scale is not None and chunk.ndim == 1 and chunk.flags.c_contiguous and chunk.shape[0] <= self._max_chunk:
                fused = self._fused
                r = stream_chunk(chunk, scale, fused.model, fused.state)
                if r >= 0:
                    n = r & _FRAMES_MASK
                    first = self.frames_processed
                    self.frames_processed = first + n
                    self.samples_received += chunk.shape[0]
                    return StreamResult(fused.probs[:n].copy(), first,
                                        [self._event(e) for e in fused.events(r >> _EVENTS_SHIFT)] if r > _FRAMES_MASK else [],
                                        self.sample_rate, self._hop, self._model_rate)
        fused = self._fused
        x = self._check_chunk(chunk, sample_rate)
        if self._resampler is not None:
            x = self._resampler.process(x)  # validates values first; float32 at the model rate
        if fused is None:
            features = self._frontend.process(x)
            self.samples_received += chunk.shape[0]
            probs = self._infer(features, final=False)
            events = self._tracker.push(probs) if probs.shape[0] else []
            return self._result(probs, events)
        probs, events = self._run_fused(x)
        self.samples_received += chunk.shape[0]
        return self._result(probs, events)

    def _run_fused(self, x: np.ndarray) -> tuple[np.ndarray, list[SegmentEvent]]:
        """Any 1-D model-rate chunk through the fused step, in pieces of at most ``_max_chunk`` samples."""
        from vad.runtime.frontend import validate_samples

        x, scale = validate_samples(x)  # nothing is consumed if a sample is bad
        if x.shape[0] <= self._max_chunk:
            return self._fused.run(x, scale)
        parts, events = [], []
        for start in range(0, x.shape[0], self._max_chunk):
            p, e = self._fused.run(x[start : start + self._max_chunk], scale)
            parts.append(p)
            events += e
        return np.concatenate(parts), events

    def flush(self) -> StreamResult:
        """End the stream: run the remaining frames, close an open segment, return the rest.

        A trailing partial hop (fewer than ``hop`` model-rate samples) yields no frame.
        After ``flush`` the stream needs ``reset()`` before the next ``process``.
        """
        if self._flushed:
            raise StreamStateError("StreamingVAD.flush() called twice: call reset() to start a new stream")
        if self._fused is not None:
            if self._resampler is not None:
                probs, events = self._run_fused(self._resampler.flush())
            else:
                probs, events = _EMPTY_F32, []
            events += self._fused.flush()
        else:
            features = _EMPTY_FEATURES if self._resampler is None else self._frontend.process(self._resampler.flush())
            if features.shape[1:] != (self._spec.n_mels,):
                features = features.reshape(-1, self._spec.n_mels)
            probs = self._infer(features, final=True)
            events = self._tracker.push(probs) if probs.shape[0] else []
            events += self._tracker.flush()
        self._flushed = True
        self._live = False
        return self._result(probs, events)

    def process_signal(self, samples: np.ndarray, chunk_seconds: float = SIGNAL_CHUNK_SECONDS) -> StreamResult:
        """Run a whole signal through the stream and flush it: every probability and event.

        This is how files are labeled (batch labeling IS the streaming engine over a file);
        the signal is fed in chunks of ``chunk_seconds`` so working memory stays bounded.
        The result is identical to any other chunking (tested). Needs ``reset()`` afterwards.
        """
        if not isinstance(samples, np.ndarray):
            raise InvalidInputError(f"samples must be a 1-D numpy array, got {type(samples).__name__}")
        if not chunk_seconds > 0:
            raise InvalidInputError(f"chunk_seconds={chunk_seconds!r}: must be > 0")
        first = self.frames_processed
        step = max(1, int(chunk_seconds * self.sample_rate))
        results = [self.process(samples[i : i + step]) for i in range(0, samples.shape[0], step)]
        results.append(self.flush())
        return StreamResult(
            np.concatenate([r.probabilities for r in results]),
            first,
            [ev for r in results for ev in r.events],
            self.sample_rate,
            self._hop,
            self._model_rate,
        )

    def __repr__(self) -> str:
        return (
            f"StreamingVAD(model={self.model!r}, sample_rate={self.sample_rate}, block_frames={self.block_frames}, "
            f"frames_processed={self.frames_processed})"
        )


class _FusedStep:
    """One stream's packed state for ``vad.runtime.network.stream_chunk`` and its outputs as Python objects."""

    def __init__(self, net, tracker: TrackerState):
        self.model = net.packed.buffer
        self._packed = net.new_stream_state(tracker)
        self.state = self._packed.buffer
        self.probs = self._packed.view(S_PROBS)
        self._ev_i = self._packed.view(S_EV_I)
        self._ev_f = self._packed.view(S_EV_F)

    def reset(self) -> None:
        reset_stream(self.model, self.state)

    def events(self, n: int) -> list[SegmentEvent]:
        return events_from_arrays(self._ev_i, self._ev_f, n)

    def run(self, x: np.ndarray, scale: float) -> tuple[np.ndarray, list[SegmentEvent]]:
        """x: C-contiguous samples of a compiled dtype, at most (MAX_CALL_FRAMES - 1) * hop long."""
        r = stream_chunk(x, scale, self.model, self.state)
        if r < 0:
            bad = -1 - r
            raise InvalidInputError(f"chunk has a non-finite sample ({x[bad]}) at index {bad}")
        n = r & _FRAMES_MASK
        return self.probs[:n].copy(), self.events(r >> _EVENTS_SHIFT) if r > _FRAMES_MASK else []

    def flush(self) -> list[SegmentEvent]:
        n = stream_flush(self.state)
        return self.events(n) if n else []


_EVENTS_SHIFT = 32
_FRAMES_MASK = (1 << _EVENTS_SHIFT) - 1
_FUSED_SCALES = {np.dtype(d): pcm_scale(np.dtype(d)) for d in COMPILED_DTYPES}
_EMPTY_F32 = np.zeros(0, dtype=np.float32)
_EMPTY_FEATURES = np.zeros((0, 0), dtype=np.float32)
