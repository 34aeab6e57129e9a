"""Frame labels derived from clean speech, and the signal operations that turn clean
speech and noise into training mixtures (band-limiting, reverberation, mixing at an SNR).

Label rule (``LabelRule``; frames are the front end's label frames: frame i = samples
``[i * hop, (i + 1) * hop)``, 10 ms at 16 kHz):

1. Frame energy ``E_i = 10 log10(mean(x[i*hop:(i+1)*hop] ** 2))`` dB of the CLEAN (dry)
   utterance, before any noise, gain or reverberation.
2. A frame is *active* when ``E_i > threshold`` with
   ``threshold = max(peak - relative_db, min(floor + floor_margin_db, peak - max_floor_gap_db),
   absolute_floor_db)`` where ``peak = max_i E_i`` and ``floor`` is the ``floor_percentile``
   percentile of ``E_i``. In words: speech is within 40 dB of the utterance's loudest frame,
   and, for recordings with a background-noise floor (volunteer recordings 30-50 dB below
   the peak), also ``floor_margin_db`` above that floor -- but the floor never pushes the
   threshold above ``peak - max_floor_gap_db`` (tightly trimmed clips have no silence to
   measure a floor in). An absolute floor rejects near-digital silence.
3. Smoothing (``smooth_labels``), applied to the whole stream's label track once all
   utterances are placed: speech runs shorter than ``min_speech_ms`` (30 ms) are removed
   (clicks), then non-speech holes of at most ``max_hole_ms`` (90 ms) *between* two speech
   runs are filled: targets are tight, a pause of 100 ms or more is non-speech (bridging
   pauses into turns is the post-processing's job, not the network's).
4. Reverberated speech: labels come from the dry utterance placed where its direct sound lands
   in the mixture (shifted by the RIR's direct-path delay), and each speech run is extended
   by ``reverb_tail_ms`` (50 ms) for the audible early tail (``extend_runs``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from vad.core.errors import InvalidInputError


@dataclasses.dataclass(frozen=True)
class LabelRule:
    """Parameters of the speech-label rule (see module docstring)."""

    relative_db: float = 40.0
    floor_percentile: float = 5.0
    floor_margin_db: float = 8.0
    max_floor_gap_db: float = 20.0
    absolute_floor_db: float = -75.0
    min_speech_ms: float = 30.0
    max_hole_ms: float = 90.0
    reverb_tail_ms: float = 50.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value):
                raise InvalidInputError(f"LabelRule.{f.name}={value!r}: must be finite")
        for name in ("relative_db", "floor_margin_db", "max_floor_gap_db", "min_speech_ms", "max_hole_ms",
                     "reverb_tail_ms"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"LabelRule.{name}={getattr(self, name)!r}: must be >= 0")
        if not 0 <= self.floor_percentile <= 100:
            raise InvalidInputError(f"LabelRule.floor_percentile={self.floor_percentile!r}: must be in [0, 100]")


def frame_energy_db(signal: np.ndarray, hop_samples: int) -> np.ndarray:
    """Mean-square energy (dB) of each complete hop-sized frame; trailing partial hop dropped."""
    n = signal.size // hop_samples
    frames = np.asarray(signal[: n * hop_samples], dtype=np.float64).reshape(n, hop_samples)
    return 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-20)


def label_threshold_db(signal: np.ndarray, hop_samples: int, rule: LabelRule = LabelRule()) -> float:
    """Step 2's threshold (dB) for one clean utterance (-inf for a signal shorter than a frame)."""
    energy = frame_energy_db(signal, hop_samples)
    if energy.size == 0:
        return float("-inf")
    peak = float(energy.max())
    floor = float(np.percentile(energy, rule.floor_percentile))
    return max(peak - rule.relative_db,
               min(floor + rule.floor_margin_db, peak - rule.max_floor_gap_db),
               rule.absolute_floor_db)


def active_frames(signal: np.ndarray, hop_samples: int, rule: LabelRule = LabelRule(),
                  threshold_db: float | None = None) -> np.ndarray:
    """Steps 1-2 of the rule: bool [n // hop] mask of frames loud enough to be speech
    (unsmoothed). ``threshold_db`` overrides the threshold (e.g. the one of the whole clip
    when labelling an excerpt of it)."""
    if not isinstance(signal, np.ndarray) or signal.ndim != 1:
        raise InvalidInputError("signal must be a 1-D numpy array")
    if threshold_db is None:
        threshold_db = label_threshold_db(signal, hop_samples, rule)
    return frame_energy_db(signal, hop_samples) > max(threshold_db, rule.absolute_floor_db)


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the True runs of a bool mask."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return edges[0::2], edges[1::2]


def smooth_labels(mask: np.ndarray, frame_ms: float, rule: LabelRule = LabelRule()) -> np.ndarray:
    """Step 3: drop speech runs shorter than min_speech_ms, then fill holes <= max_hole_ms
    between speech runs. Returns a new bool array."""
    out = np.asarray(mask, dtype=bool).copy()
    min_run = int(np.ceil(rule.min_speech_ms / frame_ms - 1e-9))
    starts, ends = _runs(out)
    for s, e in zip(starts, ends, strict=True):
        if e - s < min_run:
            out[s:e] = False
    max_hole = int(np.floor(rule.max_hole_ms / frame_ms + 1e-9))
    starts, ends = _runs(out)
    for prev_end, next_start in zip(ends[:-1], starts[1:], strict=True):
        if next_start - prev_end <= max_hole:
            out[prev_end:next_start] = True
    return out


def extend_runs(mask: np.ndarray, n_frames: int) -> np.ndarray:
    """Extend every speech run's end by n_frames (reverberant tail)."""
    out = np.asarray(mask, dtype=bool).copy()
    if n_frames <= 0:
        return out
    _, ends = _runs(out)
    for e in ends:
        out[e:e + n_frames] = True
    return out


def speech_frame_labels(signal: np.ndarray, hop_samples: int, frame_ms: float,
                        rule: LabelRule = LabelRule()) -> np.ndarray:
    """The whole rule on one clean utterance: bool [n // hop] speech labels."""
    return smooth_labels(active_frames(signal, hop_samples, rule), frame_ms, rule)


# --- signal operations --------------------------------------------------------------------

def band_limit(signal: np.ndarray, sample_rate_hz: int, cutoff_hz: float) -> np.ndarray:
    """Telephone-style band limit: resample down to 2 * cutoff_hz and back (soxr, steep
    anti-alias filter), so nothing above ~cutoff_hz remains. Length is preserved."""
    import soxr

    low_rate = 2.0 * float(cutoff_hz)
    if low_rate >= sample_rate_hz:
        return signal.astype(np.float32, copy=True)
    down = soxr.resample(signal.astype(np.float32), sample_rate_hz, low_rate, quality="HQ")
    up = soxr.resample(down, low_rate, sample_rate_hz, quality="HQ")
    out = np.zeros(signal.size, dtype=np.float32)
    n = min(up.size, signal.size)
    out[:n] = up[:n]
    return out


def random_eq(rng: np.random.Generator, signal: np.ndarray, sample_rate_hz: int) -> np.ndarray:
    """A random microphone/channel colouring: a 2nd-order high-pass at 40-250 Hz followed by a
    peaking filter of -8..+8 dB (Q 0.7-2) at 250-5000 Hz (RBJ cookbook biquad)."""
    from scipy.signal import butter, sosfilt

    hp = butter(2, rng.uniform(40.0, 250.0), btype="highpass", fs=sample_rate_hz, output="sos")
    gain_db, f0_hz, q = rng.uniform(-8.0, 8.0), rng.uniform(250.0, 5000.0), rng.uniform(0.7, 2.0)
    a_lin = 10 ** (gain_db / 40.0)
    w0 = 2 * np.pi * f0_hz / sample_rate_hz
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_lin, -2 * np.cos(w0), 1 - alpha * a_lin])
    a = np.array([1 + alpha / a_lin, -2 * np.cos(w0), 1 - alpha / a_lin])
    peak = np.concatenate([b / a[0], a / a[0]])[None, :]
    return sosfilt(np.vstack([hp, peak]), signal.astype(np.float64)).astype(np.float32)


def reverberate(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve with an RIR; output has len(signal) + len(rir) - 1 samples (direct sound at
    the RIR's direct index)."""
    from scipy.signal import fftconvolve

    return fftconvolve(signal.astype(np.float64), rir.astype(np.float64)).astype(np.float32)


def active_power(signal: np.ndarray, labels: np.ndarray, hop_samples: int) -> float:
    """Mean power over the frames labelled speech (whole-signal power if none)."""
    n = min(labels.size, signal.size // hop_samples)
    frames = signal[: n * hop_samples].astype(np.float64).reshape(n, hop_samples)
    sel = frames[labels[:n]] if np.any(labels[:n]) else frames
    if sel.size == 0:
        return float(np.mean(signal.astype(np.float64) ** 2)) if signal.size else 0.0
    return float(np.mean(sel * sel))


def colored_noise(rng: np.random.Generator, n_samples: int, exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum ~ 1 / f**exponent (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n_samples))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spectrum / f ** (exponent / 2.0), n=n_samples)
    return (x / (np.sqrt(np.mean(x * x)) + 1e-20)).astype(np.float32)


def loop_to_length(signal: np.ndarray, n_samples: int, start: int = 0) -> np.ndarray:
    """Repeat (wrapping from ``start``) a non-empty signal until it has n_samples."""
    if signal.size == 0:
        raise InvalidInputError("cannot loop an empty signal")
    reps = int(np.ceil((start + n_samples) / signal.size)) + 1
    return np.tile(signal, reps)[start:start + n_samples]


def fade(signal: np.ndarray, fade_samples: int) -> np.ndarray:
    """Raised-cosine fade in and out (in place on a copy) to avoid clicks at segment edges."""
    out = signal.astype(np.float32, copy=True)
    n = min(fade_samples, out.size // 2)
    if n > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)).astype(np.float32)
        out[:n] *= ramp
        out[out.size - n:] *= ramp[::-1]
    return out


TRANSIENT_KINDS = ("click", "knock", "rustle", "typing")


def transient(rng: np.random.Generator, sample_rate_hz: int, kind: str) -> np.ndarray:
    """One short non-speech sound event (float32, unit peak), as heard in rooms and meetings:

    * ``click``: a noise burst with an exponential decay of 2-30 ms, band-passed at 300-6000 Hz
      (taps, clicks, a cup set down, a pen);
    * ``knock``: a damped 60-400 Hz resonance (decay 10-80 ms) with a noisy attack (knocks,
      thumps on a table, a door);
    * ``rustle``: 100-800 ms of band-passed noise under a fluctuating envelope (paper, clothes,
      handling noise);
    * ``typing``: 3-15 clicks 80-250 ms apart (a keyboard).
    """
    from scipy.signal import butter, sosfilt

    sr = float(sample_rate_hz)

    def bandpassed(x: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
        high_hz = min(high_hz, 0.45 * sr)
        low_hz = min(low_hz, 0.5 * high_hz)
        return sosfilt(butter(2, (low_hz, high_hz), btype="bandpass", fs=sr, output="sos"), x)

    def click() -> np.ndarray:
        tau_s = rng.uniform(0.002, 0.03)
        t = np.arange(int(5 * tau_s * sr) + 1) / sr
        centre_hz = np.exp(rng.uniform(np.log(300.0), np.log(6000.0)))
        return bandpassed(rng.standard_normal(t.size) * np.exp(-t / tau_s), centre_hz / 2, centre_hz * 2)

    if kind == "click":
        x = click()
    elif kind == "knock":
        tau_s = rng.uniform(0.01, 0.08)
        t = np.arange(int(5 * tau_s * sr) + 1) / sr
        x = np.sin(2 * np.pi * rng.uniform(60.0, 400.0) * t) * np.exp(-t / tau_s)
        x = x + rng.uniform(0.1, 0.6) * rng.standard_normal(t.size) * np.exp(-t / 0.003)
    elif kind == "rustle":
        n = int(rng.uniform(0.1, 0.8) * sr)
        steps = max(2, n // int(0.02 * sr))
        env = np.interp(np.arange(n), np.linspace(0, n - 1, steps), np.abs(rng.standard_normal(steps)))
        x = bandpassed(rng.standard_normal(n), rng.uniform(300.0, 2000.0), rng.uniform(3000.0, 8000.0)) * env
    elif kind == "typing":
        n_keys = int(rng.integers(3, 16))
        starts = np.cumsum(rng.uniform(0.08, 0.25, size=n_keys) * sr).astype(int)
        x = np.zeros(starts[-1] + int(0.2 * sr))
        for s in starts:
            c = click() * rng.uniform(0.5, 1.0)
            x[s:s + c.size] += c[: x.size - s]
    else:
        raise InvalidInputError(f"transient kind {kind!r}: choose from {', '.join(TRANSIENT_KINDS)}")
    peak = float(np.max(np.abs(x))) or 1.0
    return (x / peak).astype(np.float32)


def slow_gain(rng: np.random.Generator, n_samples: int, sample_rate_hz: int,
              depth_db_range: tuple[float, float], period_s_range: tuple[float, float]) -> np.ndarray:
    """An AGC-like gain curve (float32, ``n_samples``): a smooth random walk in dB whose
    peak-to-peak depth is drawn from ``depth_db_range``, changing over ``period_s_range``."""
    period_s = float(rng.uniform(*period_s_range))
    n_knots = max(2, int(np.ceil(n_samples / (period_s * sample_rate_hz))) + 2)
    knots = np.cumsum(rng.normal(size=n_knots))
    span = float(np.ptp(knots)) or 1.0
    knots_db = (knots - knots.mean()) / span * float(rng.uniform(*depth_db_range))
    t = np.linspace(0.0, n_knots - 1.0, n_samples)
    curve_db = np.interp(t, np.arange(n_knots), knots_db)
    return (10.0 ** (curve_db / 20.0)).astype(np.float32)
