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
event objects only when the post-processing completed one. With onnxruntime the float32
samples (the < 1 hop remainder and an incomplete block kept pending here) go to the model's
raw-audio graph in blocks of ``block_frames`` hops (``VADModel.run``).

Files: ``process_signal`` (a whole signal) or ``process`` on consecutive blocks then
``flush`` (a file read block by block, memory flat) is the batch path: large chunks run the
network's non-recurrent layers as matrix products over blocks of frames and only the GRU frame
by frame, with the same probabilities and events as any other chunking (tested).

Start of a stream: the stream's opening (its first ``PRIME_OPENING_HOPS`` hops, 400 ms) is held
back and the network primed on a pre-roll made of it before its first frame (``vad.core.priming``;
``prime=False`` runs from the zero state), by the fused step itself or, with onnxruntime, by one
graph run on the pre-roll; frame numbers are the stream's own.

Timing: every frame ``i`` of the model covers model-rate samples ``[i*hop, (i+1)*hop)``;
positions are mapped back to the input stream's sample positions (nearest sample of
``t * input_rate / model_rate``) and converted to seconds only on output.

Latency: a frame's probability is returned once the frame is complete (numba), or once its
block of ``block_frames`` frames is full (onnxruntime): ``block_frames * hop`` after its first
sample (``StreamingVAD.latency_ms``; one hop, 10 ms, with the numba backend), plus the
resampler's hold-back at other rates. Once per stream, at its start, the frames of the opening
wait until the whole opening is there (priming): the first probability comes after 400 ms of
audio with the numba backend (390 ms later than without priming), after
``max(PRIME_OPENING_HOPS, block_frames)`` hops with onnxruntime. Events come later by what the post-processing rules need
(see ``vad.core.postprocess``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from vad.runtime.model import DEFAULT_BACKEND, VADModel

from vad.core.errors import InvalidInputError, StreamStateError
from vad.core.features import as_float64_samples, check_sample_array, check_sample_values, pcm_scale
from vad.core.leveling import LevelState, level_hops
from vad.core.postprocess import (
    PostprocessConfig,
    SegmentEvent,
    SegmentTracker,
    TrackerState,
    events_from_arrays,
)
from vad.core.priming import PRIME_OPENING_HOPS, prime_samples

# (vad.runtime.network and .frontend are imported only when the numba backend runs: an
# onnxruntime-only install has no numba)

# Frames per network call when block_frames=None, by backend: the fused numba step runs every
# frame as soon as it is complete (no per-call overhead to amortize); onnxruntime costs tens of
# microseconds per call, so it gets 16-frame blocks (160 ms latency); see `vad bench`.
# Chunk length process_signal feeds a whole signal in: within one compiled call's limit
# (MAX_CHUNK_HOPS hops) at the model rate, so each chunk is one call.
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
        leveling: apply the model's input leveling (``vad.core.leveling``; models whose metadata
            has a ``leveling`` configuration) before the network (True, the default).
        prime: prime the network on the stream's opening (its first ``PRIME_OPENING_HOPS``
            hops) before its first frame (True, the default; ``vad.core.priming``: no false climb
            from the zero state at the start of a stream; the first probabilities come that much
            later, once), after every ``reset`` too; False starts each stream from the zero state.

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
        prime: bool = True,
        leveling: bool = True,
    ):
        from vad.core.audio import StreamResampler

        self.sample_rate = _check_rate(sample_rate, "sample_rate")
        if block_frames is not None and (
            isinstance(block_frames, bool) or not isinstance(block_frames, (int, np.integer)) or block_frames < 1
        ):
            raise InvalidInputError(f"block_frames={block_frames!r}: must be None or an integer >= 1")
        for name, flag in (("prime", prime), ("leveling", leveling)):
            if not isinstance(flag, (bool, np.bool_)):
                raise InvalidInputError(f"{name}={flag!r}: must be True or False")
        self.prime = bool(prime)
        if not isinstance(model, VADModel):
            model = VADModel(model, intra_op_threads=intra_op_threads, backend=backend)
        self.block_frames = int(block_frames) if block_frames is not None else DEFAULT_BLOCK_FRAMES[model.backend]
        self.model = model
        self._grouping_invariant = model.grouping_invariant
        spec = model.spec
        self._spec = spec
        self._model_rate = spec.sample_rate_hz
        self._hop = spec.hop_length_samples
        # the model's input leveling (vad.core.leveling), as coefficients; None: the model has none or leveling=False
        level = model.metadata.leveling if leveling else None
        self._leveling = None if level is None else level.coefficients(spec.hop_s)
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
        self._tracker = SegmentTracker(self.config, spec.hop_s)
        backend = model.numba_backend
        if backend is not None:
            from vad.runtime.frontend import validate_samples
            from vad.runtime.network import MAX_CHUNK_HOPS

            self._fused = _FusedStep(backend, TrackerState(self.config, spec.hop_s),
                                     PRIME_OPENING_HOPS if self.prime else 0, self._leveling)
            self._validate_samples = validate_samples  # bound once, not imported per chunk
            self._max_chunk = MAX_CHUNK_HOPS * self._hop  # model-rate samples per fused call
        else:
            self._fused = None
            # samples not yet run: < one block of block_frames hops
            self._pending = np.zeros(self.block_frames * self._hop, dtype=np.float32)
        self.reset()

    # -- state ---------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the stream (state, buffers, counters); the next ``process`` starts a new one."""
        if self._resampler is not None:
            self._resampler.reset()
        if self._fused is not None:
            self._fused.reset()
        else:
            self._tracker.reset()
            self._state = self.model.initial_state()
            self._n_pending = 0
            self._opening = [] if self.prime else None  # the held-back opening until _infer primes the stream
            self._level_state = LevelState()
        self.frames_processed = 0
        self.samples_received = 0
        self._flushed = False
        # process()'s direct path: the sample codes of the dtypes it takes (none while it does not apply)
        self._live_codes = self._fused.codes if self._fused is not None and self._resampler is None else _NO_CODES

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
        check_sample_array(chunk, "chunk")  # the sample contract (dtypes) of vad.core.features
        return chunk

    def _infer(self, samples: np.ndarray, final: bool) -> np.ndarray:
        """onnxruntime: run the whole blocks of pending + new float32 samples (every whole hop when
        final); keep the rest pending (dropped when final: a partial hop yields no frame). Returns
        the probabilities."""
        block = self.block_frames * self._hop
        if self._opening is not None:
            samples = self._prime_on_opening(samples, final)
            if samples is None:
                return _EMPTY_F32
        if not self._n_pending and samples.shape[0] == block:  # the common live case: one block arrived
            return self._run(samples)
        if self._n_pending:
            samples = np.concatenate([self._pending[: self._n_pending], samples])
            self._n_pending = 0
        n = samples.shape[0]
        stop = n - n % (self._hop if final else block)
        out = []
        # blocks are counted from the start of the stream; a grouping-invariant backend may take
        # all of them in one call (same result, less overhead)
        step = stop if self._grouping_invariant else block
        for pos in range(0, stop, max(step, 1)):
            p = self._run(samples[pos : min(pos + step, stop)])
            out.append(p)
        if stop < n and not final:
            self._pending[: n - stop] = samples[stop:]
            self._n_pending = n - stop
        if not out:
            return _EMPTY_F32
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _run(self, samples: np.ndarray) -> np.ndarray:
        """onnxruntime: whole hops through the model's input leveling (when it has one) and the graph."""
        if self._leveling is not None:
            samples, _ = level_hops(samples, self._hop, self._leveling, self._level_state)
        probs, self._state = self.model.run(samples, self._state)
        return probs

    def _prime_on_opening(self, samples: np.ndarray, final: bool) -> np.ndarray | None:
        """onnxruntime: hold samples back until the stream's opening is complete (or the stream
        ends), then prime the state on it (``vad.core.priming``) and return everything held, to
        run as the stream's first samples; None while still holding."""
        self._opening.append(samples.copy())  # (it may be the caller's buffer, reused for the next chunk)
        held = sum(x.shape[0] for x in self._opening)
        if held < PRIME_OPENING_HOPS * self._hop and not final:
            return None
        samples = self._opening[0] if len(self._opening) == 1 else np.concatenate(self._opening)
        self._opening = None
        if held >= self._hop:
            opening = samples[: PRIME_OPENING_HOPS * self._hop]
            self._run(prime_samples(opening, self._hop))  # its probabilities are dropped
        return samples

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
        """Feed the next chunk (1-D float32/float64, int16 or int32 mono, any length incl. 0).

        ``sample_rate``, when given, must equal the stream's rate. Raises InvalidInputError
        (bad dtype/shape/non-finite/rate; the stream state is unchanged) or StreamStateError
        (called after ``flush`` without ``reset``).
        """
        if sample_rate is None and type(chunk) is np.ndarray:  # the live case, checked once
            code = self._live_codes.get(chunk.dtype)
            if code is not None and chunk.ndim == 1:  # the kernel checks layout, alignment and length itself
                fused = self._fused
                if code == _RAW_CODE:
                    r = fused.entry(chunk, code, fused.model, fused.state)
                elif chunk.flags.c_contiguous:  # (a strided float chunk has no int16 view: copied below)
                    r = fused.entry(chunk.view(np.int16), code, fused.model, fused.state)
                else:
                    r = _NOT_TAKEN
                if r >= 0:
                    n = r & _FRAMES_MASK
                    first = self.frames_processed
                    self.frames_processed = first + n
                    self.samples_received += chunk.size
                    return StreamResult((fused.heads[n] if n < _HEAD_VIEWS else fused.probs[:n]).copy(), first,
                                        [self._event(e) for e in fused.events(r >> _EVENTS_SHIFT)] if r > _FRAMES_MASK else [],
                                        self.sample_rate, self._hop, self._model_rate)
                if r != _NOT_TAKEN:
                    check_sample_values(chunk, "chunk")  # names the rejected sample; nothing was consumed
        x = self._check_chunk(chunk, sample_rate)
        if self._resampler is not None:
            x = self._resampler.process(x)  # validates values first; float32 at the model rate
        if self._fused is None:
            if self._resampler is None:
                x = _model_samples(x)
            self.samples_received += chunk.shape[0]
            probs = self._infer(x, final=False)
            events = self._tracker.push(probs) if probs.shape[0] else []
            return self._result(probs, events)
        probs, events = self._run_fused(x)
        self.samples_received += chunk.shape[0]
        return self._result(probs, events)

    def _run_fused(self, x: np.ndarray) -> tuple[np.ndarray, list[SegmentEvent]]:
        """Any 1-D model-rate chunk through the fused step, in pieces of at most ``_max_chunk`` samples."""
        x, _scale = self._validate_samples(x, "chunk")  # nothing is consumed if a sample is bad
        if x.shape[0] <= self._max_chunk:
            return self._fused.run(x)
        parts, events = [], []
        for start in range(0, x.shape[0], self._max_chunk):
            p, e = self._fused.run(x[start : start + self._max_chunk])
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
            held, held_events, end_events = self._fused.flush()  # a stream shorter than its opening runs now
            if held.shape[0]:
                probs = np.concatenate([probs, held])
            events += held_events + end_events
        else:
            rest = _EMPTY_F32 if self._resampler is None else self._resampler.flush()
            probs = self._infer(rest, final=True)
            events = self._tracker.push(probs) if probs.shape[0] else []
            events += self._tracker.flush()
        self._flushed = True
        self._live_codes = _NO_CODES
        return self._result(probs, events)

    def process_signal(self, samples: np.ndarray, chunk_seconds: float = SIGNAL_CHUNK_SECONDS) -> StreamResult:
        """Run a whole signal through the stream and flush it: every probability and event.

        This is how files are labeled (batch labeling IS the streaming engine over a file);
        the signal is fed in chunks of ``chunk_seconds`` so working memory stays bounded.
        The result is identical to any other chunking (tested). Needs ``reset()`` afterwards.
        """
        check_sample_array(samples, "samples")
        check_sample_values(samples, "samples", self.sample_rate)  # position in the signal, nothing consumed
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

    def __init__(self, backend, tracker: TrackerState, prime_hops: int, leveling: np.ndarray | None):
        from vad.runtime.network import INPUT_CODES, INPUT_INT16, S_EV_F, S_EV_I, S_PROBS, compiled_entry

        self.step = backend.step  # the compiled per-chunk kernel, looked up once (not per call)
        self.codes = dict(INPUT_CODES)  # dtype -> the kernel's sample code
        self.model = backend.packed.buffer
        self.kind = backend.kind  # the FFT's spectrum type, for vad bench --breakdown's breakdown_chunks
        self._packed = backend.new_stream_state(tracker, prime_hops, leveling)
        self.state = self._packed.buffer
        self.probs = self._packed.view(S_PROBS)
        self.heads = [self.probs[:n] for n in range(_HEAD_VIEWS)]  # probs[:n] made once: a slice per call costs ~0.15 us
        self._ev_i = self._packed.view(S_EV_I)
        self._ev_f = self._packed.view(S_EV_F)
        self.run(_EMPTY_F32)  # load (or compile) the kernel now, not in the first callback
        # the live path's call: the compiled overload itself, for chunks whose type is exactly the
        # warmed-up signature (StreamingVAD.process checks dtype and dimensions first)
        self.entry = compiled_entry(self.step, _EMPTY_F32.view(np.int16), INPUT_INT16, self.model, self.state)

    def reset(self) -> None:
        from vad.runtime.network import reset_stream

        reset_stream(self.model, self.state)

    def events(self, n: int) -> list[SegmentEvent]:
        return events_from_arrays(self._ev_i, self._ev_f, n)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, list[SegmentEvent]]:
        """x: validated C-contiguous, aligned samples of a compiled dtype, at most MAX_CHUNK_HOPS * hop long."""
        code = self.codes[x.dtype]
        r = self.step(x if code == _RAW_CODE else x.view(np.int16), code, self.model, self.state)
        if r < 0:
            raise RuntimeError(f"the fused step refused validated samples (code {r}): an engine bug")
        n = r & _FRAMES_MASK
        return self.probs[:n].copy(), self.events(r >> _EVENTS_SHIFT) if r > _FRAMES_MASK else []

    def flush(self) -> tuple[np.ndarray, list[SegmentEvent], list[SegmentEvent]]:
        """End of stream: the frames and events of an opening still held back for priming (the
        stream is primed on its whole hops), then the post-processing's closing events."""
        from vad.runtime.network import I_PRIME, I_RELEASE, S_INTS, stream_flush

        probs, events = _EMPTY_F32, []
        ints = self._packed.view(S_INTS)
        if ints[I_PRIME] > 0:
            ints[I_RELEASE] = 1
            probs, events = self.run(_EMPTY_F32)
        n = stream_flush(self.state)
        return probs, events, self.events(n) if n else []


_EVENTS_SHIFT = 32
_HEAD_VIEWS = 17  # the live path's result views of S_PROBS made in advance: chunks of up to 16 hops (160 ms)
# vad.runtime.network's INPUT_INT16 and CHUNK_NOT_TAKEN, here so that the engine imports it only
# for the numba backend (tests/test_runtime.py checks them equal)
_RAW_CODE = 0
_NOT_TAKEN = -(1 << 62)
_NO_CODES: dict = {}
_FRAMES_MASK = (1 << _EVENTS_SHIFT) - 1
_EMPTY_F32 = np.zeros(0, dtype=np.float32)
_INT16_SCALE = np.float32(pcm_scale(np.dtype(np.int16)))  # exact: int16 * 2**-15 is a float32


def _model_samples(chunk: np.ndarray) -> np.ndarray:
    """The onnxruntime backend's input: C-contiguous float32 samples (int16/int32 PCM scaled by
    ``pcm_scale``); InvalidInputError naming the first rejected sample (the sample contract of
    ``vad.core.features``) before any state changes. int16, the common case, takes one numpy call."""
    if chunk.dtype == np.int16:
        return np.multiply(chunk, _INT16_SCALE, dtype=np.float32)
    if chunk.dtype == np.float32 and chunk.flags.c_contiguous:
        check_sample_values(chunk, "chunk")
        return chunk
    return as_float64_samples(chunk, "chunk").astype(np.float32)
