"""Streaming log-mel front end (numba): one feature frame per hop, O(1) work per frame.

``StreamingLogMel(spec)`` computes the features of the numpy reference
``vad.core.features.logmel`` (same framing, float64 arithmetic, float32 output; they agree to
rounding, tests/test_features.py), but from chunks of any length that arrive one after
another, e.g. from a microphone callback::

    frontend = StreamingLogMel(spec)          # compiles and warms up the kernels here
    for chunk in chunks:                      # any length, 0 and 1 included
        frames = frontend.process(chunk)      # float32 [n_new_frames, n_mels]

The framing (``frame_samples``) and the per-frame kernel (``logmel_frame``) are also what the
streaming engine's fused step calls (``vad.runtime.network``), so there is one front end.

Framing (see ``vad.core.features``): the stream starts with ``win - hop`` zeros of left padding,
and frame ``i`` is emitted by the call that delivers sample ``(i + 1) * hop - 1``. So after
``n`` samples in total, exactly ``n // hop`` frames have been emitted, whatever the chunking.

State is an explicit sample buffer of one window (kept ``n_fft`` long, the tail always zero: the
zero padding): the last ``win - hop`` samples of the previous frame followed by the samples of
the current, still incomplete hop. ``reset()`` returns to the start of a stream. An instance is
not thread-safe; use one per stream.

The FFT: for ``n_fft == FAST_FFT_SIZE`` (every shipped model) a fixed-size real FFT with
precomputed twiddles: the frame's even/odd samples as one complex 256-point signal, computed as
16 x 16 (radix-4 Stockham stages over 16 lanes, inner twiddles, a transpose as two digit
rotations, the same stages again), then the real-input split. Every loop has compile-time sizes
and unsigned indices, so LLVM vectorizes it. Other sizes use rocket-fft's generic real FFT.
The log is fdlibm's algorithm without branches (< 1 ulp, vectorized over the bands).

Kernels use ``error_model="numpy"``: numba's default error model checks every division for
zero, and the branch stops loops from vectorizing (no kernel divides by zero).

This module never imports torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import rocket_fft  # noqa: F401  (registers the FFT overloads numba needs)
from numba import njit, types, uint64
from numba.extending import overload
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
from vad.core.leveling import DB_TO_LN_AMPLITUDE, LEVEL_COEFFICIENTS, LEVEL_FLOOR_POWER

# int16 / int32 PCM is scaled by vad.core.features.pcm_scale, exactly like the numpy reference.
COMPILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int16), np.dtype(np.int32))
_WARMUP_SAMPLES_PER_HOP = 3  # warm-up feeds a few hops of zeros through every compiled dtype

FAST_FFT_SIZE = 512
_HALF = FAST_FFT_SIZE // 2  # the complex FFT of the fast path: 256 = 16 x 16 points
_SIDE = 16
_RADIX = 4
_STAGE16, _STAGE4 = 0, 12  # offsets of the 16-point and 4-point stages' twiddles (3 m each: m = 4, 1)
_MID = 15  # offset of the 16 x 16 inner twiddles w256^(k1 n2)
_N_TWIDDLES = _MID + _HALF


# --- tables ---------------------------------------------------------------------------------------


class FrontendTables:
    """The constant arrays of the front end for one spec (window, FFT twiddles, sparse mel filters).

    Attributes:
        window: float64 [n_fft], the Hann window zero-padded to n_fft.
        fast: True when the fixed-size FFT is used (n_fft == FAST_FFT_SIZE).
        twiddle_re, twiddle_im: float64 [_N_TWIDDLES], the FFT's twiddles (fast path, ``_stage_twiddles``).
        split: float64 [2, n_bins], cos/sin of -2 pi k / n_fft (the real-input split, fast path).
        mel_range: int64 [n_mels, 3], each filter's non-zero bins [start, stop) and its weights' offset.
        mel_weights: float64, the filters' non-zero weights, filter after filter.
    """

    def __init__(self, spec: FeatureSpec):
        self.spec = spec
        self.window = np.zeros(spec.n_fft, dtype=np.float64)
        self.window[: spec.win_length_samples] = hann_window(spec)
        self.fast = spec.n_fft == FAST_FFT_SIZE
        self.twiddle_re, self.twiddle_im = _stage_twiddles()
        k = np.arange(spec.n_bins)
        angle = -2.0 * np.pi * k / spec.n_fft
        self.split = np.ascontiguousarray(np.stack([np.cos(angle), np.sin(angle)]))
        fb = mel_filterbank(spec)
        self.mel_range = np.zeros((spec.n_mels, 3), dtype=np.int64)
        weights: list[np.ndarray] = []
        total = 0
        for m in range(spec.n_mels):
            nonzero = np.flatnonzero(fb[m])
            start, stop = (int(nonzero[0]), int(nonzero[-1]) + 1) if nonzero.size else (0, 0)
            self.mel_range[m] = (start, stop, total)
            weights.append(fb[m, start:stop])
            total += stop - start
        self.mel_weights = np.ascontiguousarray(np.concatenate(weights), dtype=np.float64)
        self.log_floor = float(spec.log_floor)


def _stage_twiddles() -> tuple[np.ndarray, np.ndarray]:
    """Twiddles of the 256-point complex FFT as 16 x 16 (four-step): the radix-4 stages of a
    16-point DFT (w16^(j p), j = 1..3, p < 4; then w4^(j p), p < 1), then w256^(k1 n2)."""
    angles = []
    for n in (_SIDE, _RADIX):
        p = np.arange(n // _RADIX)
        angles += [-2.0 * np.pi * j * p / n for j in range(1, _RADIX)]
    k1, n2 = np.meshgrid(np.arange(_SIDE), np.arange(_SIDE), indexing="ij")
    angles.append((-2.0 * np.pi * k1 * n2 / _HALF).ravel())
    angle = np.concatenate(angles)
    assert angle.size == _N_TWIDDLES
    return np.cos(angle), np.sin(angle)


def spectrum_array(spec: FeatureSpec) -> np.ndarray:
    """``logmel_frame``'s spectrum scratch, whose dtype picks the FFT (``_power``): empty float64
    for the fixed-size FFT, complex128 [n_bins] for rocket-fft's."""
    if spec.n_fft == FAST_FFT_SIZE:
        return np.zeros(0, dtype=np.float64)
    return np.zeros(spec.n_bins, dtype=np.complex128)


class FrontendScratch:
    """Per-stream working arrays of ``logmel_frame`` (sizes from the spec)."""

    def __init__(self, spec: FeatureSpec):
        fast = spec.n_fft == FAST_FFT_SIZE
        self.a = np.zeros(2 * _HALF if fast else spec.n_fft, dtype=np.float64)
        self.b = np.zeros(2 * _HALF if fast else 0, dtype=np.float64)
        self.spectrum = spectrum_array(spec)
        self.axes = np.zeros(1, dtype=np.int64)
        self.power = np.zeros(spec.n_bins, dtype=np.float64)
        self.mel = np.zeros(spec.n_mels, dtype=np.float64)


# --- kernels (no checks; they write into preallocated arrays) -------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def first_bad(x, limit):
    """Index of the first sample of x that is NaN/inf or beyond +-limit, or -1 (the rule of
    vad.core.features.first_bad_sample, in one allocation-free pass for small live chunks)."""
    for i in range(x.size):
        if not abs(x[i]) <= limit:
            return i
    return -1


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _radix4_stage(x, y, m, s, twr, twi, tw):
    """One radix-4 decimation-in-frequency Stockham stage over the 256 complex values.

    x, y: [re block | im block] of _HALF each; reads x, writes y. Unsigned indices let LLVM
    drop numba's negative-index handling, so the loops vectorize.
    """
    nt = uint64(_HALF)
    m = uint64(m)
    s = uint64(s)
    tw = uint64(tw)
    sm = s * m
    for pp in range(m):
        p = uint64(pp)
        w1r = twr[tw + p]
        w1i = twi[tw + p]
        w2r = twr[tw + m + p]
        w2i = twi[tw + m + p]
        w3r = twr[tw + 2 * m + p]
        w3i = twi[tw + 2 * m + p]
        for qq in range(s):
            q = uint64(qq)
            ia = q + s * p
            ib = ia + sm
            ic = ib + sm
            id_ = ic + sm
            ar = x[ia]
            ai = x[nt + ia]
            br = x[ib]
            bi = x[nt + ib]
            cr = x[ic]
            ci = x[nt + ic]
            dr = x[id_]
            di = x[nt + id_]
            apcr = ar + cr
            apci = ai + ci
            amcr = ar - cr
            amci = ai - ci
            bpdr = br + dr
            bpdi = bi + di
            jr = bi - di  # -i (b - d)
            ji = dr - br
            o = q + 4 * s * p
            y[o] = apcr + bpdr
            y[nt + o] = apci + bpdi
            t1r = amcr + jr
            t1i = amci + ji
            y[o + s] = t1r * w1r - t1i * w1i
            y[nt + o + s] = t1r * w1i + t1i * w1r
            t2r = apcr - bpdr
            t2i = apci - bpdi
            y[o + 2 * s] = t2r * w2r - t2i * w2i
            y[nt + o + 2 * s] = t2r * w2i + t2i * w2r
            t3r = amcr - jr
            t3i = amci - ji
            y[o + 3 * s] = t3r * w3r - t3i * w3i
            y[nt + o + 3 * s] = t3r * w3i + t3i * w3r


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _rotate(x, y, twr, twi, twiddle):
    """y[4 p + k] = x[p + 64 k] (times the inner twiddle when ``twiddle``): moves the top base-4
    digit of the index to the bottom; twice = the 16 x 16 transpose. All four k in one iteration,
    so the vectorizer writes them as one interleaved group."""
    nt = uint64(_HALF)
    q = uint64(_HALF // _RADIX)
    for pp in range(_HALF // _RADIX):
        p = uint64(pp)
        for kk in range(_RADIX):
            k = uint64(kk)
            src = p + q * k
            dst = uint64(_RADIX) * p + k
            re = x[src]
            im = x[nt + src]
            if twiddle:
                wr = twr[uint64(_MID) + src]
                wi = twi[uint64(_MID) + src]
                y[dst] = re * wr - im * wi
                y[nt + dst] = re * wi + im * wr
            else:
                y[dst] = re
                y[nt + dst] = im


@njit(cache=True, nogil=True, error_model="numpy")
def _power_fast(buf, window, a, b, twr, twi, split, power):
    """|rfft(buf * window, 512)|^2 -> power[0:257]: the even/odd samples as one complex 256-point
    signal z, its DFT as 16 x 16 (16-point DFTs down the columns, inner twiddles, transpose,
    16-point DFTs down the columns again; each 16-point DFT two radix-4 Stockham stages over 16
    lanes), then the real-input split. Not inlined by numba (LLVM still may): numba's IR inliner
    copying it up through the framing into the fused step cost ~10 s of the first compile."""
    nt = uint64(_HALF)
    for kk in range(_HALF):  # even samples -> real part, odd -> imaginary part
        k = uint64(kk)
        a[k] = buf[2 * k] * window[2 * k]
        a[nt + k] = buf[2 * k + 1] * window[2 * k + 1]
    _radix4_stage(a, b, 4, 16, twr, twi, _STAGE16)
    _radix4_stage(b, a, 1, 64, twr, twi, _STAGE4)
    _rotate(a, b, twr, twi, True)
    _rotate(b, a, twr, twi, False)
    _radix4_stage(a, b, 4, 16, twr, twi, _STAGE16)
    _radix4_stage(b, a, 1, 64, twr, twi, _STAGE4)
    # real-input split: X[k] = E[k] + w^k O[k], E = (Z[k] + conj Z[N-k]) / 2, O = (Z[k] - conj Z[N-k]) / 2i
    cos = split[0]
    sin = split[1]
    power[0] = (a[0] + a[_HALF]) ** 2
    power[_HALF] = (a[0] - a[_HALF]) ** 2
    for k in range(1, _HALF):  # signed here: LLVM sees the reversed index _HALF - k as affine
        z1r = a[k]
        z1i = a[_HALF + k]
        z2r = a[_HALF - k]
        z2i = -a[2 * _HALF - k]
        er = 0.5 * (z1r + z2r)
        ei = 0.5 * (z1i + z2i)
        orr = 0.5 * (z1i - z2i)
        oi = -0.5 * (z1r - z2r)
        wr = cos[k]
        wi = sin[k]
        xr = er + orr * wr - oi * wi
        xi = ei + orr * wi + oi * wr
        power[k] = xr * xr + xi * xi


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _power_generic(buf, window, frame, spectrum, axes, power):
    n = window.size
    for j in range(n):
        frame[j] = buf[j] * window[j]
    r2c(frame, spectrum, axes, True, 1.0, 1)
    for k in range(power.size):
        re = spectrum[k].real
        im = spectrum[k].imag
        power[k] = re * re + im * im


def _power(buf, window, a, b, twr, twi, split, spectrum, axes, power):
    """|rfft(buf * window)|^2 -> power, the FFT chosen by the *type* of ``spectrum`` when a kernel
    compiles: float64 (empty) selects the fixed-size FFT (a, b: its [re | im] buffers), complex128
    rocket-fft's r2c into spectrum (a: the n_fft windowed frame; axes: int64 [1], zero). So a
    kernel compiles only the FFT it runs (rocket-fft's r2c adds seconds to a first compile)."""
    raise NotImplementedError("_power runs only inside compiled kernels (numba overload below)")


@overload(_power, jit_options={"nogil": True, "error_model": "numpy"})
def _power_overload(buf, window, a, b, twr, twi, split, spectrum, axes, power):
    if isinstance(spectrum, types.Array) and isinstance(spectrum.dtype, types.Complex):
        def generic(buf, window, a, b, twr, twi, split, spectrum, axes, power):
            _power_generic(buf, window, a, spectrum, axes, power)
        return generic

    def fast(buf, window, a, b, twr, twi, split, spectrum, axes, power):
        _power_fast(buf, window, a, b, twr, twi, split, power)
    return fast


# fdlibm's log (e_log.c, error < 1 ulp) without branches, so that the loop over the mel bands
# vectorizes; valid for the positive normal numbers it is given (mel powers >= the log floor).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1, _LG2, _LG3 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01
_LG4, _LG5, _LG6, _LG7 = 2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _log_into(x, out):
    """out[i] = log(x[i]) for positive normal float64 x; x is overwritten (scratch)."""
    bits = x.view(np.int64)
    for i in range(x.size):
        b = bits[i]
        hx = b >> 32
        k = (hx >> 20) - 1023
        hm = hx & 0x000FFFFF
        j = (hm + 0x95F64) & 0x100000  # mantissa >= sqrt(2): take x / 2 and k + 1
        k += j >> 20
        bits[i] = ((hm | (j ^ 0x3FF00000)) << 32) | (b & 0xFFFFFFFF)  # x -> m in [sqrt(2)/2, sqrt(2))
        f = x[i] - 1.0
        s = f / (2.0 + f)
        dk = float(k)
        z = s * s
        w = z * z
        t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
        t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
        r = t2 + t1
        hfsq = 0.5 * f * f
        big = ((hm - 0x6147A) | (0x6B851 - hm)) > 0
        wide = dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)
        narrow = dk * _LN2_HI - ((s * (f - r) - dk * _LN2_LO) - f)
        out[i] = wide if big else narrow


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def logmel_frame(buf, window, twr, twi, split, mel_range, mel_weights, log_floor, a, b, spectrum, axes, power,
                 mel, out):
    """Log-mel of the full window held in buf (float64 [n_fft], zero beyond the window) -> out[:n_mels]
    (mel: float64 [n_mels] scratch). The FFT follows ``spectrum``'s dtype (``_power``).
    """
    _power(buf, window, a, b, twr, twi, split, spectrum, axes, power)
    for m in range(mel_range.shape[0]):
        start = uint64(mel_range[m, 0])
        w = uint64(mel_range[m, 2])
        acc = 0.0
        for kk in range(mel_range[m, 1] - mel_range[m, 0]):
            k = uint64(kk)
            acc += power[start + k] * mel_weights[w + k]
        mel[m] = acc if acc > log_floor else log_floor
    _log_into(mel, out)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def copy_scaled(src, src_start, dst, dst_start, n, scale):
    """dst[dst_start + j] = src[src_start + j] * scale for j < n (unsigned offsets: the loop vectorizes)."""
    a = uint64(src_start)
    b = uint64(dst_start)
    for jj in range(n):
        j = uint64(jj)
        dst[b + j] = src[a + j] * scale


LEVELING_OFF = np.zeros(LEVEL_COEFFICIENTS, dtype=np.float64)  # frame_samples' ``lev`` without leveling


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _level_hop(buf, start, hop, lev, lev_state):
    """vad.core.leveling.level_hops on the one hop buf[start:start + hop], in place: lev = [on,
    target dBFS, max gain dB, rising and falling smoothing factors], lev_state = [level dB, started]."""
    power = 0.0
    for jj in range(hop):
        v = buf[uint64(start) + uint64(jj)]
        power += v * v
    d = 10.0 * math.log10(power / hop + LEVEL_FLOOR_POWER)
    if lev_state[1] == 0.0:
        level = d
        lev_state[1] = 1.0
    else:
        f = lev[3] if d > lev_state[0] else lev[4]
        level = f * lev_state[0] + (1.0 - f) * d
    lev_state[0] = level
    gain = math.exp(min(max(lev[1] - level, -lev[2]), lev[2]) * DB_TO_LN_AMPLITUDE)
    for jj in range(hop):
        buf[uint64(start) + uint64(jj)] *= gain


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def frame_samples(x, start, stop, scale, buf, pos_state, hop, win, window, twr, twi, split, mel_range,
                  mel_weights, log_floor, a, b, spectrum, axes, power, mel, out, out_start, max_frames, lev,
                  lev_state):
    """The framing: append x[start:stop] (times scale) to the window buffer and write the log-mel of
    each frame it completes to out[out_start:], stopping right after ``max_frames`` frames.

    pos_state[0] is the write position in buf (win - hop + samples of the incomplete hop).
    lev[0] != 0: each hop is leveled (``_level_hop``, ``vad.core.leveling``) as its frame completes,
    before the frame is computed; lev_state is the tracker. Returns (index in x after the last
    sample consumed, frames written).
    """
    keep = win - hop
    pos = pos_state[0]
    n_out = 0
    i = start
    while i < stop and n_out < max_frames:
        take = min(win - pos, stop - i)
        copy_scaled(x, i, buf, pos, take, scale)
        pos += take
        i += take
        if pos == win:
            if lev[0] != 0.0:
                _level_hop(buf, win - hop, hop, lev, lev_state)
            logmel_frame(buf, window, twr, twi, split, mel_range, mel_weights, log_floor, a, b, spectrum, axes,
                         power, mel, out[out_start + n_out])
            n_out += 1
            copy_scaled(buf, hop, buf, 0, keep, 1.0)  # forward: never overwrites what it still reads
            pos = keep
    pos_state[0] = pos
    return i, n_out


# --- public wrapper -------------------------------------------------------------------------------


def validate_samples(samples: Any, name: str = "samples") -> tuple[np.ndarray, float]:
    """(C-contiguous samples of a compiled dtype, PCM scale) or InvalidInputError naming the problem:
    the sample contract of ``vad.core.features`` (dtypes; float samples finite and within
    +-MAX_FLOAT_SAMPLE_MAGNITUDE). float16/longdouble are widened to float64 (exact); strided,
    read-only or misaligned arrays are copied.
    """
    scale = check_sample_array(samples, name)
    if samples.dtype.kind == "f":
        if samples.dtype not in COMPILED_DTYPES:  # float16 / longdouble: widen once, exactly
            samples = samples.astype(np.float64)
        bad = first_bad(samples, MAX_FLOAT_SAMPLE_MAGNITUDE)
        if bad >= 0:
            raise InvalidInputError(f"{name} has {bad_sample_reason(float(samples[bad]), bad)}")
    flags = samples.flags
    if not (flags.c_contiguous and flags.writeable and flags.aligned):
        # one kernel specialisation per dtype: strided, read-only or misaligned views are copied
        samples = np.array(samples, order="C")
    return samples, scale


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
        self._tables = FrontendTables(spec)
        self._scratch = FrontendScratch(spec)
        self._buf = np.zeros(spec.n_fft, dtype=np.float64)
        self._pos = np.zeros(1, dtype=np.int64)
        self._lev_state = np.zeros(2, dtype=np.float64)  # (the front end alone does no leveling)
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
        x, scale = validate_samples(samples)
        out = np.empty(((self._pending + x.size) // self._hop, self._n_mels), dtype=np.float32)
        self._run(x, scale, out)
        return out

    def process_into(self, samples: Any, out: np.ndarray) -> int:
        """Like ``process`` but write the frames into out[:n] (preallocated); return n.

        out must be a writeable C-contiguous float32 array of shape [rows, n_mels] with
        rows >= ``frames_for(len(samples))``. Nothing is consumed if it is too small.
        """
        x, scale = validate_samples(samples)
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
        t, s = self._tables, self._scratch
        _end, n_out = frame_samples(x, 0, x.size, scale, self._buf, self._pos, self._hop, self.spec.win_length_samples,
                                    t.window, t.twiddle_re, t.twiddle_im, t.split, t.mel_range, t.mel_weights,
                                    t.log_floor, s.a, s.b, s.spectrum, s.axes, s.power, s.mel, out, 0, x.size + 1,
                                    LEVELING_OFF, self._lev_state)
        total = self._pending + x.size
        self._pending = total % self._hop
        self.frames_emitted += n_out
        self.samples_consumed += x.size
        return n_out

    def _warm_up(self) -> None:
        """Compile (or load from cache) and run every kernel specialisation once, then reset."""
        n = _WARMUP_SAMPLES_PER_HOP * self._hop
        for dtype in COMPILED_DTYPES:
            self.process(np.zeros(n, dtype=dtype))
            self.process(np.zeros(0, dtype=dtype))
        self.reset()

    def __repr__(self) -> str:
        return (f"StreamingLogMel(spec={self.spec!r}, frames_emitted={self.frames_emitted}, "
                f"pending_samples={self._pending})")
