"""The feature spec and the numpy reference log-mel front end.

``FeatureSpec`` is the only place the front end's numbers live. Every exported model
carries it (as JSON in its metadata) and the runtime builds its feature extractor from
that copy, never from its own defaults.

Framing (shared by all three implementations: this numpy reference, the torch batch
version in ``training.features`` and the numba streaming version in ``runtime.frontend``):

* The signal is left-padded with ``win_length_samples - hop_length_samples`` zeros, so
  frame ``i`` covers input samples ``[(i + 1) * hop - win, (i + 1) * hop)``. Frame ``i``
  is complete as soon as sample ``(i + 1) * hop - 1`` has arrived: the front end adds no
  lookahead, and frame ``i`` is the label frame ``[i * hop, (i + 1) * hop)``.
* A signal of ``n`` samples yields ``n // hop`` frames; a trailing partial hop yields none.
* Each frame is multiplied by a periodic Hann window of ``win_length_samples``, zero-padded
  to ``n_fft``, transformed with a real FFT; the power spectrum ``|X|^2`` is projected onto
  ``n_mels`` Slaney-style mel filters (librosa's ``htk=False, norm='slaney'``) and the
  natural log of ``max(mel_power, log_floor)`` is returned as float32.
* Arithmetic is float64 internally in every implementation, so they agree to ~1e-6.

Per-band normalisation (mean/std) is part of each trained network, not of the front end.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np

from vad.core.errors import InvalidFeatureSpecError, InvalidInputError

FEATURE_SPEC_VERSION = 1


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Everything that defines the log-mel features a model reads.

    Attributes:
        sample_rate_hz: rate the model runs at; input audio is resampled to it.
        win_length_samples: analysis window length (400 = 25 ms at 16 kHz).
        hop_length_samples: frame hop (160 = 10 ms at 16 kHz); one output frame per hop.
        n_fft: FFT size (>= win_length_samples; the window is zero-padded to it).
        n_mels: number of mel bands.
        fmin_hz: lowest mel filter edge.
        fmax_hz: highest mel filter edge (<= sample_rate_hz / 2).
        log_floor: mel power is clipped to at least this before the natural log.
    """

    sample_rate_hz: int = 16000
    win_length_samples: int = 400
    hop_length_samples: int = 160
    n_fft: int = 512
    n_mels: int = 40
    fmin_hz: float = 30.0
    fmax_hz: float = 8000.0
    log_floor: float = 1e-10

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> InvalidFeatureSpecError:
            return InvalidFeatureSpecError(f"FeatureSpec.{name}={getattr(self, name)!r}: {why}")

        for name in ("sample_rate_hz", "win_length_samples", "hop_length_samples", "n_fft", "n_mels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise bad(name, "must be an integer")
            if value <= 0:
                raise bad(name, "must be > 0")
        for name in ("fmin_hz", "fmax_hz", "log_floor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise bad(name, "must be a number")
            if not math.isfinite(value):
                raise bad(name, "must be finite")
        if self.hop_length_samples > self.win_length_samples:
            raise bad("hop_length_samples", f"must be <= win_length_samples ({self.win_length_samples})")
        if self.n_fft < self.win_length_samples:
            raise bad("n_fft", f"must be >= win_length_samples ({self.win_length_samples})")
        if self.fmin_hz < 0:
            raise bad("fmin_hz", "must be >= 0")
        if not self.fmin_hz < self.fmax_hz <= self.sample_rate_hz / 2:
            raise bad("fmax_hz", f"must be in (fmin_hz={self.fmin_hz}, sample_rate_hz/2={self.sample_rate_hz / 2}]")
        if self.log_floor <= 0:
            raise bad("log_floor", "must be > 0")
        if self.n_mels > self.n_fft // 2 + 1:
            raise bad("n_mels", f"must be <= n_fft // 2 + 1 ({self.n_fft // 2 + 1})")

    # --- derived quantities -------------------------------------------------------------
    @property
    def n_bins(self) -> int:
        """Number of real-FFT bins (n_fft // 2 + 1)."""
        return self.n_fft // 2 + 1

    @property
    def hop_s(self) -> float:
        return self.hop_length_samples / self.sample_rate_hz

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate_hz / self.hop_length_samples

    @property
    def left_pad_samples(self) -> int:
        """Zeros prepended so frame i ends at sample (i + 1) * hop."""
        return self.win_length_samples - self.hop_length_samples

    def n_frames(self, n_samples: int) -> int:
        """Frames produced by a signal of n_samples (the framing rule above)."""
        return int(n_samples) // self.hop_length_samples

    def flops_per_frame(self) -> float:
        """Analytic FLOPs of one front-end frame (a multiply-add = 2 FLOPs).

        window (win mults) + real FFT (2.5 * n_fft * log2(n_fft), the usual split-radix count
        for a real transform) + power (3 per bin) + mel projection (2 per non-zero filter
        weight) + log (1 per band, counted as one FLOP).
        """
        nonzero = int(np.count_nonzero(mel_filterbank(self)))
        return float(
            self.win_length_samples
            + 2.5 * self.n_fft * math.log2(self.n_fft)
            + 3 * self.n_bins
            + 2 * nonzero
            + self.n_mels
        )

    def flops_per_second(self) -> float:
        return self.flops_per_frame() * self.frames_per_second

    # --- JSON round trip ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["version"] = FEATURE_SPEC_VERSION
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> FeatureSpec:
        if not isinstance(data, dict):
            raise InvalidFeatureSpecError(f"feature spec must be a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", FEATURE_SPEC_VERSION)
        if version != FEATURE_SPEC_VERSION:
            raise InvalidFeatureSpecError(
                f"feature spec version {version!r} is not supported (this build reads {FEATURE_SPEC_VERSION})"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidFeatureSpecError(f"feature spec has unknown field(s): {', '.join(unknown)}")
        missing = sorted(names - set(data))
        if missing:
            raise InvalidFeatureSpecError(f"feature spec lacks field(s): {', '.join(missing)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise InvalidFeatureSpecError(f"feature spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


# --- mel filterbank (Slaney scale and area normalisation, as librosa's default) --------

_F_SP = 200.0 / 3  # Slaney: linear part, Hz per mel
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    log_part = hz >= _MIN_LOG_HZ
    mel = np.where(log_part, _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-300) / _MIN_LOG_HZ) / _LOGSTEP, mel)
    return mel


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    return np.where(mel >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), hz)


def mel_filterbank(spec: FeatureSpec) -> np.ndarray:
    """Mel filter matrix of shape (n_mels, n_bins), float64, equal to librosa.filters.mel."""
    fft_hz = np.linspace(0.0, spec.sample_rate_hz / 2, spec.n_bins)
    mel_edges_hz = mel_to_hz(np.linspace(hz_to_mel(spec.fmin_hz), hz_to_mel(spec.fmax_hz), spec.n_mels + 2))
    fdiff = np.diff(mel_edges_hz)
    ramps = mel_edges_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_edges_hz[2:] - mel_edges_hz[:-2])
    return weights * enorm[:, None]


def hann_window(spec: FeatureSpec) -> np.ndarray:
    """Periodic Hann window of win_length_samples, float64 (same as torch.hann_window)."""
    n = np.arange(spec.win_length_samples, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / spec.win_length_samples)


# --- the sample contract: what every front end, the resampler and the engine accept ------------
#
# * float (float16/32/64): full scale is +-1.0; samples up to MAX_FLOAT_SAMPLE_MAGNITUDE
#   (FLOAT_HEADROOM_DB above full scale) are accepted as they are; louder or non-finite ones are
#   rejected before anything is consumed. Louder is not float audio (integer PCM stored as float?)
#   and it overflows soxr's single-precision filter state, which then stays NaN for the stream.
# * int16: 16-bit PCM, scaled by 1/2**15; int32: 32-bit PCM, scaled by 1/2**31.
# * any other dtype (int8, int64, unsigned, bool, complex, ...) is rejected with a message that
#   says how to convert it: ``np.array(list_of_ints)`` gives int64 even for 16-bit values, and
#   guessing its scale would silently turn speech into silence.

PCM_FULL_SCALE = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}
FLOAT_HEADROOM_DB = 60.0
MAX_FLOAT_SAMPLE_MAGNITUDE = 10.0 ** (FLOAT_HEADROOM_DB / 20.0)
_INT16_MIN, _INT16_MAX = -(2**15), 2**15 - 1


def _unsupported_dtype(dtype: np.dtype, values: np.ndarray | None, name: str) -> InvalidInputError:
    what = (f"{name} has dtype {dtype}; samples must be float (full scale +-1.0), int16 (16-bit PCM) "
            "or int32 (32-bit PCM)")
    if dtype.kind not in "iu":
        return InvalidInputError(what)
    if dtype.itemsize == 1:
        hint = ("if it is 8-bit PCM, pass (x.astype(np.float32) - 128) / 128 (unsigned, as in WAV)"
                if dtype.kind == "u" else "if it is 8-bit PCM, pass x.astype(np.float32) / 128")
    elif values is not None and (
        values.size == 0 or (int(values.min()) >= _INT16_MIN and int(values.max()) <= _INT16_MAX)
    ):
        hint = "its values fit 16-bit PCM: pass x.astype(np.int16)"
    else:
        hint = ("pass x.astype(np.int16) if its values are 16-bit PCM, else float samples in [-1, 1]: "
                "x / 2**(bits - 1) for signed bits-bit PCM (e.g. x / 2**23 for 24-bit)")
    return InvalidInputError(f"{what}: {hint}")


def pcm_scale(samples: np.ndarray | np.dtype, name: str = "samples") -> float:
    """Factor that maps samples of this dtype to full scale +-1.0: 1.0 for float, 1/2**15 for
    int16, 1/2**31 for int32 (the one scaling rule of every front end).

    ``samples`` is the array (then a rejection looks at its values to say how to convert it)
    or just its dtype. Raises InvalidInputError naming ``name`` for any other dtype.
    """
    values = samples if isinstance(samples, np.ndarray) else None
    dtype = samples.dtype if values is not None else np.dtype(samples)
    if dtype.kind == "f":
        return 1.0
    full_scale = PCM_FULL_SCALE.get(dtype)
    if full_scale is None:
        raise _unsupported_dtype(dtype, values, name)
    return 1.0 / full_scale


def check_sample_array(signal: Any, name: str = "samples") -> float:
    """Check that ``signal`` is a 1-D array of a supported sample dtype; return its ``pcm_scale``.

    Values are not looked at (see ``first_bad_sample``).
    """
    if not isinstance(signal, np.ndarray):
        raise InvalidInputError(f"{name} must be a 1-D numpy array, got {type(signal).__name__}")
    if signal.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D (mono samples), got shape {signal.shape}; downmix first")
    return pcm_scale(signal, name)


def first_bad_sample(samples: np.ndarray) -> int | None:
    """Index of the first float sample that is non-finite or beyond +-MAX_FLOAT_SAMPLE_MAGNITUDE.

    ``samples`` is [n] or [n, channels] (then the frame index); None when all are fine.
    """
    ok = np.abs(samples) <= MAX_FLOAT_SAMPLE_MAGNITUDE  # False for NaN too
    if ok.ndim == 2:
        ok = ok.all(axis=1)
    if ok.all():
        return None
    return int(np.argmin(ok))


def bad_sample_reason(value: float, index: int | tuple[int, ...], rate_hz: int | None = None) -> str:
    """Why sample ``value`` is rejected and where: 'a non-finite value (nan) at index 3', or at
    'sample 3 (0.000 s)' when ``rate_hz`` is given (a position in a file or a whole signal)."""
    where = f"index {index}" if rate_hz is None else f"sample {index} ({index / rate_hz:.3f} s)"
    if not math.isfinite(value):
        return f"a non-finite value ({value}) at {where}"
    return (f"a value of {value:g} at {where}, beyond the accepted +-{MAX_FLOAT_SAMPLE_MAGNITUDE:g} for "
            f"float samples (full scale is +-1.0; integer PCM stored as float? divide it by 2**15 for 16-bit)")


def bad_sample_value(samples: np.ndarray, index: int) -> float:
    """The rejected value at ``first_bad_sample``'s ``index`` (of the channel that has it)."""
    row = np.atleast_1d(samples[index]).astype(np.float64)
    return float(row[~(np.abs(row) <= MAX_FLOAT_SAMPLE_MAGNITUDE)][0])


def check_sample_values(samples: np.ndarray, name: str = "samples", rate_hz: int | None = None) -> None:
    """Raise InvalidInputError naming ``name`` and the position of the first bad float sample.

    Integer PCM (int16/int32) is always in range. ``rate_hz`` adds the time to the position.
    """
    if samples.dtype.kind != "f":
        return
    bad = first_bad_sample(samples)
    if bad is not None:
        raise InvalidInputError(f"{name} has {bad_sample_reason(bad_sample_value(samples, bad), bad, rate_hz)}")


def as_float64_samples(signal: Any, name: str = "signal") -> np.ndarray:
    """Validated 1-D float64 samples at full scale +-1.0; int16/int32 PCM scaled by ``pcm_scale``.

    Raises InvalidInputError naming ``name`` for a non-array, a wrong shape or dtype, or a
    rejected sample (non-finite or too loud, with its index); see the sample contract above.
    """
    scale = check_sample_array(signal, name)
    if signal.dtype.kind != "f":
        return signal.astype(np.float64) * scale
    check_sample_values(signal, name)
    return np.ascontiguousarray(signal, dtype=np.float64)


def logmel(signal: np.ndarray, spec: FeatureSpec | None = None) -> np.ndarray:
    """Reference log-mel features of a whole mono signal at spec.sample_rate_hz.

    Integer PCM is scaled to [-1, 1). Returns float32 of shape (n_samples // hop, n_mels).
    """
    spec = spec or FeatureSpec()
    x = as_float64_samples(signal)
    n_frames = spec.n_frames(x.size)
    if n_frames == 0:
        return np.zeros((0, spec.n_mels), dtype=np.float32)
    padded = np.concatenate([np.zeros(spec.left_pad_samples), x[: n_frames * spec.hop_length_samples]])
    idx = np.arange(spec.win_length_samples)[None, :] + spec.hop_length_samples * np.arange(n_frames)[:, None]
    frames = padded[idx] * hann_window(spec)[None, :]
    power = np.abs(np.fft.rfft(frames, n=spec.n_fft, axis=1)) ** 2
    mel = power @ mel_filterbank(spec).T
    return np.log(np.maximum(mel, spec.log_floor)).astype(np.float32)
