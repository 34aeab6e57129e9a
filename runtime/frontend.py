"""Streaming log-mel front end (numba): one feature frame per hop, O(1) work per frame.

``StreamingLogMel(spec)`` computes exactly the features of the numpy reference
``vad.core.features.logmel`` (same framing, float64 arithmetic, float32 output), but from chunks
of any length that arrive one after another, e.g. from a microphone callback::

    frontend = StreamingLogMel(spec)          # compiles and warms up the kernels here
    for chunk in chunks:                      # any length, 0 and 1 included
        frames = frontend.process(chunk)      # float32 [n_new_frames, n_mels]

Framing (see ``vad.core.features``): the stream starts with ``win - hop`` zeros of left padding,
and frame ``i`` is emitted by the call that delivers sample ``(i + 1) * hop - 1``. So after
``n`` samples in total, exactly ``n // hop`` frames have been emitted, whatever the chunking.

State is an explicit sample buffer of one window: the last ``win - hop`` samples of the
previous frame followed by the samples of the current, still incomplete hop. ``reset()``
returns to the start of a stream. An instance is not thread-safe; use one per stream.

This module never imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import rocket_fft  # noqa: F401  (registers the FFT overloads numba needs)
from numba import njit
from rocket_fft import r2c

from vad.core.errors import InvalidInputError
from vad.core.features import (
    MAX_FLOAT_SAMPLE_MAGNITUDE,
    FeatureSpec,
    bad_sample_reason,
    check_sample_array,
    hann_window,
    mel_filterbank,
)

# int16 / int32 PCM is scaled by vad.core.features.pcm_scale, exactly like the numpy reference.
_COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int16), np.dtype(np.int32))
_WARMUP_SAMPLES_PER_HOP = 3  # warm-up feeds a few hops of zeros through every compiled dtype


# --- kernels (no checks; they write into preallocated arrays) -----------------------------------


@njit(cache=True, nogil=True)
def _first_bad(x, limit):
    """Index of the first sample of x that is NaN/inf or beyond +-limit, or -1 (the rule of
    vad.core.features.first_bad_sample, in one allocation-free pass for small live chunks)."""
    for i in range(x.size):
        if not abs(x[i]) <= limit:
            return i
    return -1


@njit(cache=True, nogil=True)
def _frame_logmel(buf, window, frame, spectrum, power, axes, mel_start, mel_stop, mel_offset, mel_weights,
                  log_floor, out_row):
    """Log-mel of one full window held in buf -> out_row (float32, n_mels)."""
    win = window.size
    for j in range(win):
        frame[j] = buf[j] * window[j]  # frame[win:] stays zero: the zero-padding to n_fft
    r2c(frame, spectrum, axes, True, 1.0, 1)
    for k in range(power.size):
        re = spectrum[k].real
        im = spectrum[k].imag
        power[k] = re * re + im * im
    for m in range(out_row.size):
        acc = 0.0
        w = mel_offset[m]
        for k in range(mel_start[m], mel_stop[m]):
            acc += power[k] * mel_weights[w]
            w += 1
        out_row[m] = np.log(max(acc, log_floor))


@njit(cache=True, nogil=True)
def _consume(x, scale, buf, pos_state, hop, window, frame, spectrum, power, axes, mel_start, mel_stop,
             mel_offset, mel_weights, log_floor, out):
    """Append the chunk x (times scale) to the window buffer; write each completed frame to out.

    pos_state[0] is the write position in buf (win - hop + samples of the incomplete hop).
    Returns the number of frames written.
    """
    win = buf.size
    keep = win - hop
    pos = pos_state[0]
    n_out = 0
    i = 0
    n = x.size
    while i < n:
        take = min(win - pos, n - i)
        for j in range(take):
            buf[pos + j] = x[i + j] * scale
        pos += take
        i += take
        if pos == win:
            _frame_logmel(buf, window, frame, spectrum, power, axes, mel_start, mel_stop, mel_offset,
                          mel_weights, log_floor, out[n_out])
            n_out += 1
            for j in range(keep):
                buf[j] = buf[j + hop]
            pos = keep
    pos_state[0] = pos
    return n_out


# --- public wrapper -----------------------------------------------------------------------------


def _sparse_filterbank(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each mel filter as its non-zero bin range [start, stop) and the weights in that range."""
    fb = mel_filterbank(spec)
    starts = np.zeros(spec.n_mels, dtype=np.int64)
    stops = np.zeros(spec.n_mels, dtype=np.int64)
    offsets = np.zeros(spec.n_mels, dtype=np.int64)
    weights: list[np.ndarray] = []
    total = 0
    for m in range(spec.n_mels):
        nonzero = np.flatnonzero(fb[m])
        if nonzero.size:
            starts[m], stops[m] = nonzero[0], nonzero[-1] + 1
        offsets[m] = total
        weights.append(fb[m, starts[m]:stops[m]])
        total += int(stops[m] - starts[m])
    return starts, stops, offsets, np.ascontiguousarray(np.concatenate(weights), dtype=np.float64)


class StreamingLogMel:
    """Streaming log-mel features with the framing and numbers of ``spec``.

    Args:
        spec: the feature spec (normally the one carried by the model file).

    Attributes:
        spec: the FeatureSpec in use.
        frames_emitted: frames produced since construction or the last ``reset()``.
        samples_consumed: samples received since construction or the last ``reset()``.
    """

    def __init__(self, spec: FeatureSpec | None = None) -> None:
        spec = FeatureSpec() if spec is None else spec
        if not isinstance(spec, FeatureSpec):
            raise InvalidInputError(f"spec must be a FeatureSpec, got {type(spec).__name__}")
        self.spec = spec
        self._hop = spec.hop_length_samples
        self._keep = spec.left_pad_samples
        self._n_mels = spec.n_mels
        self._window = np.ascontiguousarray(hann_window(spec), dtype=np.float64)
        self._frame = np.zeros(spec.n_fft, dtype=np.float64)
        self._spectrum = np.zeros(spec.n_bins, dtype=np.complex128)
        self._power = np.zeros(spec.n_bins, dtype=np.float64)
        self._axes = np.zeros(1, dtype=np.int64)
        self._mel_start, self._mel_stop, self._mel_offset, self._mel_weights = _sparse_filterbank(spec)
        self._log_floor = float(spec.log_floor)
        self._buf = np.zeros(spec.win_length_samples, dtype=np.float64)
        self._pos = np.zeros(1, dtype=np.int64)
        self.reset()
        self._warm_up()

    # -- state ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new stream: the buffer holds the win - hop zeros of left padding again."""
        self._buf[:] = 0.0
        self._pos[0] = self._keep
        self._pending = 0  # samples of the current, incomplete hop
        self.frames_emitted = 0
        self.samples_consumed = 0

    @property
    def pending_samples(self) -> int:
        """Samples received that do not yet complete a frame (0 .. hop - 1)."""
        return self._pending

    def frames_for(self, n_samples: int) -> int:
        """How many frames a chunk of n_samples would complete now (size of process_into's out)."""
        return (self._pending + int(n_samples)) // self._hop

    # -- processing ----------------------------------------------------------------------------
    def process(self, samples: Any) -> np.ndarray:
        """Feed one chunk; return the frames it completes, float32 [n_new_frames, n_mels].

        samples: 1-D numpy array, float32/float64 in [-1, 1] or int16/int32 PCM (int16 is
        scaled by 1/32768, int32 by 1/2**31), of any length including 0; the sample contract
        of ``vad.core.features`` (other dtypes and bad values are rejected, nothing consumed).
        """
        x, scale = self._validate(samples)
        out = np.empty(((self._pending + x.size) // self._hop, self._n_mels), dtype=np.float32)
        self._run(x, scale, out)
        return out

    def process_into(self, samples: Any, out: np.ndarray) -> int:
        """Like ``process`` but write the frames into out[:n] (preallocated); return n.

        out must be a writeable C-contiguous float32 array of shape [rows, n_mels] with
        rows >= ``frames_for(len(samples))``. Nothing is consumed if it is too small.
        """
        x, scale = self._validate(samples)
        if not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.ndim != 2:
            got = f"{out.dtype} array of shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise InvalidInputError(f"out must be a float32 array [rows, {self._n_mels}], got {got}")
        needed = (self._pending + x.size) // self._hop
        if out.shape[1] != self._n_mels or out.shape[0] < needed or not out.flags.c_contiguous \
                or not out.flags.writeable:
            raise InvalidInputError(
                f"out must be a writeable C-contiguous float32 array with >= {needed} rows and "
                f"{self._n_mels} columns, got shape {out.shape}"
            )
        return self._run(x, scale, out)

    def _run(self, x: np.ndarray, scale: float, out: np.ndarray) -> int:
        n_out = _consume(x, scale, self._buf, self._pos, self._hop, self._window, self._frame, self._spectrum,
                         self._power, self._axes, self._mel_start, self._mel_stop, self._mel_offset,
                         self._mel_weights, self._log_floor, out)
        total = self._pending + x.size
        self._pending = total % self._hop
        self.frames_emitted += n_out
        self.samples_consumed += x.size
        return n_out

    def _validate(self, samples: Any) -> tuple[np.ndarray, float]:
        scale = check_sample_array(samples, "samples")
        if samples.dtype.kind == "f":
            if samples.dtype not in _COMPILED_DTYPES:  # float16 / longdouble: widen once, exactly
                samples = samples.astype(np.float64)
            bad = _first_bad(samples, MAX_FLOAT_SAMPLE_MAGNITUDE)
            if bad >= 0:
                raise InvalidInputError(f"samples has {bad_sample_reason(float(samples[bad]), bad)}")
        if not samples.flags.c_contiguous or not samples.flags.writeable:
            # one kernel specialisation per dtype: strided or read-only views are copied
            samples = np.array(samples, order="C")
        return samples, scale

    def _warm_up(self) -> None:
        """Compile (or load from cache) and run every kernel specialisation once, then reset."""
        n = _WARMUP_SAMPLES_PER_HOP * self._hop
        for dtype in _COMPILED_DTYPES:
            self.process(np.zeros(n, dtype=dtype))
            self.process(np.zeros(0, dtype=dtype))
        self.reset()

    def __repr__(self) -> str:
        return (f"StreamingLogMel(spec={self.spec!r}, frames_emitted={self.frames_emitted}, "
                f"pending_samples={self._pending})")
