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
import functools
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


@functools.cache
def pcm_scale(dtype: np.dtype) -> float:
    """Factor that maps signed integer PCM of ``dtype`` to [-1, 1) (1.0 for floats).

    int16 -> 1/32768, int32 -> 1/2**31: the one scaling rule of every front end.
    """
    dtype = np.dtype(dtype)
    return 1.0 / float(-np.iinfo(dtype).min) if dtype.kind == "i" else 1.0


def as_float64_samples(signal: Any, name: str = "signal") -> np.ndarray:
    """Validated 1-D float64 samples; signed integer PCM scaled by ``pcm_scale``.

    Raises InvalidInputError naming ``name`` for a non-array, a wrong shape or dtype, or a
    non-finite sample (with its index).
    """
    if not isinstance(signal, np.ndarray):
        raise InvalidInputError(f"{name} must be a 1-D numpy array, got {type(signal).__name__}")
    if signal.ndim != 1:
        raise InvalidInputError(f"{name} must be 1-D (mono samples), got shape {signal.shape}")
    if signal.dtype.kind == "i":
        return signal.astype(np.float64) * pcm_scale(signal.dtype)
    if signal.dtype.kind != "f":
        raise InvalidInputError(f"{name} must be float or signed integer PCM, got dtype {signal.dtype}")
    out = np.ascontiguousarray(signal, dtype=np.float64)
    finite = np.isfinite(out)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise InvalidInputError(f"{name} has a non-finite sample ({out[bad]}) at index {bad}")
    return out


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
