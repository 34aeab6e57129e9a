"""Stream synthesis: LibriParty-style training streams from clean speech, noise/music and
room impulse responses, with frame labels from the dry speech (see ``vad.training.data``)."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from vad.training import augment
from vad.training.augment import LabelRule
from vad.training.clipio import read_clip
from vad.training.rooms import RirBank

from vad.core.errors import AudioFileError, InvalidInputError
from vad.core.features import FeatureSpec, logmel
from vad.core.leveling import LevelingConfig, level_stream

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
_SPLIT_IDS = {"train": 1, "val": 2}
_SPEECH_REFERENCE_DBFS = -20.0  # utterances are scaled to this active RMS before their random gain
_FADE_MS = 10.0
_MIN_UTTERANCE_S = 0.3
_MAX_LOAD_ATTEMPTS = 50
_MAX_PEAK = 0.99  # unless a stream is clipped on purpose, its peaks stay below full scale


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    """How training streams are synthesised (probabilities are per stream / utterance / segment).

    Attributes:
        stream_s: length of every stream.
        nonspeech_stream_prob: fraction of streams with music/noise only.
        noise_prob: probability that a speech stream has a music/noise background.
        snr_db_range: speech-to-noise ratio (active speech power over noise power): with
            probability snr_core_prob drawn uniformly from snr_core_db_range, else from the whole
            snr_db_range (most mass at 0-15 dB, tails down to -5 and up to 30 dB).
        level_dbfs_range: level of the final mixture: the active RMS of its speech (speech
            streams) or its RMS (non-speech streams), drawn uniformly; peaks are then kept below
            full scale unless the stream is clipped on purpose (clip_prob).
        clip_prob / clip_overdrive_db_range: probability that a stream is driven past full scale
            by this many dB and hard-clipped (overloaded microphones).
        agc_prob / agc_depth_db_range / agc_period_s_range: probability that a stream gets an
            AGC-like slowly varying gain (a smooth random envelope of this depth and period).
        babble_prob / babble_talkers: probability that a noise segment is babble (this many
            overlapping utterances of other talkers, a non-speech background) instead of a file.
        mic_noise_dbfs_range: RMS of white noise added last (a microphone floor).
        utterance_gain_db_range: level of each utterance around -20 dBFS active RMS.
        short_gap_s, long_gap_s, nonspeech_gap_s: silence ranges between utterances, drawn with
            probabilities gap_probs (short, long, non-speech stretch).
        overlap_prob: probability that the next utterance overlaps the previous one.
        speech_reverb_prob: probability that an utterance is convolved with an RIR.
        real_rir_prob: of reverberated items, the fraction that use a real (measured) RIR.
        noise_reverb_prob: probability that a noise segment is reverberated.
        speech_band_limit_prob: probability that a (wideband) utterance is band-limited.
        noise_band_limit_prob: probability that a noise segment is band-limited.
        colored_noise_prob: probability that a noise segment is synthetic stationary noise
            (spectrum 1/f**e, e uniform in 0..2: white to brown; fans, hum, hiss) instead of a file.
        stream_band_limit_prob: probability that the whole mixture is band-limited.
        stream_eq_prob: probability that the whole mixture gets a random channel colouring
            (high-pass + peaking filter, ``augment.random_eq``).
        band_limit_hz: cutoff range of the band limit.
        max_noise_segments: a stream's background is 1..this many excerpts, cross-faded.
        event_prob / event_rate_hz_range / event_level_db_range / event_excerpt_prob: probability
            that a stream gets short non-speech sound events (``augment.transient``: clicks,
            knocks, rustles, typing; or, with event_excerpt_prob, a 40-500 ms excerpt of a noise
            file) at this many per second, each this many dB (power over its own duration) from
            the speech's active power, or above the background in a speech-free stream; labelled
            non-speech.
        val_fraction: fraction of speech and noise files held out for validation.
        input_leveling: train on leveled input: a ``vad.core.leveling.LevelingConfig`` as a dict
            (e.g. ``{"target_dbfs": -26, "attack_ms": 3000, "release_ms": 30000}``). Each
            mixture's features are computed from it leveled as the runtime levels a primed
            stream (``level_stream``); the teacher still scores the mixture as it is, and a model
            exported from such a run carries the same leveling (``training.export``). None: off.
    """

    stream_s: float = 20.0
    nonspeech_stream_prob: float = 0.3
    noise_prob: float = 0.95
    snr_db_range: tuple[float, float] = (-5.0, 30.0)
    snr_core_db_range: tuple[float, float] = (0.0, 15.0)
    snr_core_prob: float = 0.7
    level_dbfs_range: tuple[float, float] = (-50.0, -12.0)
    clip_prob: float = 0.05
    clip_overdrive_db_range: tuple[float, float] = (1.0, 12.0)
    agc_prob: float = 0.2
    agc_depth_db_range: tuple[float, float] = (3.0, 12.0)
    agc_period_s_range: tuple[float, float] = (0.5, 6.0)
    babble_prob: float = 0.08
    babble_talkers: tuple[int, int] = (3, 7)
    mic_noise_dbfs_range: tuple[float, float] = (-95.0, -65.0)
    utterance_gain_db_range: tuple[float, float] = (-6.0, 6.0)
    short_gap_s: tuple[float, float] = (0.05, 0.6)
    long_gap_s: tuple[float, float] = (0.6, 2.5)
    nonspeech_gap_s: tuple[float, float] = (3.0, 8.0)
    gap_probs: tuple[float, float, float] = (0.65, 0.3, 0.05)
    overlap_prob: float = 0.08
    speech_reverb_prob: float = 0.6
    real_rir_prob: float = 0.3
    noise_reverb_prob: float = 0.2
    speech_band_limit_prob: float = 0.15
    noise_band_limit_prob: float = 0.3
    colored_noise_prob: float = 0.1
    stream_band_limit_prob: float = 0.05
    stream_eq_prob: float = 0.3
    band_limit_hz: tuple[float, float] = (3400.0, 4000.0)
    max_noise_segments: int = 3
    event_prob: float = 0.0
    event_rate_hz_range: tuple[float, float] = (0.2, 1.5)
    event_level_db_range: tuple[float, float] = (-25.0, 0.0)
    event_background_db_range: tuple[float, float] = (0.0, 25.0)
    event_excerpt_prob: float = 0.3
    val_fraction: float = 0.1
    input_leveling: dict[str, float] | None = None

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> InvalidInputError:
            return InvalidInputError(f"StreamOptions.{name}={getattr(self, name)!r}: {why}")

        if not self.stream_s >= 1.0:
            raise bad("stream_s", "must be >= 1 second")
        for f in dataclasses.fields(self):
            if f.name.endswith("_prob"):
                if not 0.0 <= getattr(self, f.name) <= 1.0:
                    raise bad(f.name, "must be in [0, 1]")
            value = getattr(self, f.name)
            if isinstance(value, tuple) and f.name != "gap_probs":
                if len(value) != 2 or not all(math.isfinite(v) for v in value) or not value[0] <= value[1]:
                    raise bad(f.name, "must be a (low, high) pair of finite numbers with low <= high")
        if self.event_rate_hz_range[0] < 0:
            raise bad("event_rate_hz_range", "rates must be >= 0 events per second")
        if len(self.gap_probs) != 3 or min(self.gap_probs) < 0 or sum(self.gap_probs) <= 0:
            raise bad("gap_probs", "must be three non-negative weights")
        if not 0.0 < self.val_fraction < 1.0:
            raise bad("val_fraction", "must be in (0, 1)")
        if self.max_noise_segments < 1:
            raise bad("max_noise_segments", "must be >= 1")
        if self.input_leveling is not None:
            try:
                LevelingConfig.from_dict(self.input_leveling, "StreamOptions.input_leveling")
            except InvalidInputError as exc:
                raise bad("input_leveling", str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; with events off (event_prob 0) the event_* fields are left out, so a
        cache of a recipe from before they existed keeps its fingerprint (its streams are the same);
        so is input_leveling when it is None."""
        out = dataclasses.asdict(self)
        if self.event_prob == 0:
            out = {k: v for k, v in out.items() if not k.startswith("event_")}
        if self.input_leveling is None:
            del out["input_leveling"]
        return out


@dataclasses.dataclass
class StreamContext:
    """Everything one split's stream synthesis needs (sent once to each worker)."""

    speech: list[str]
    noise: list[str]
    noise_duration_s: list[float]
    speech_cdf: np.ndarray  # cumulative pick probability of each speech file
    noise_cdf: np.ndarray  # cumulative pick probability of each noise file
    real_rirs: RirBank
    sim_rirs: RirBank
    spec: FeatureSpec
    options: StreamOptions
    rule: LabelRule
    seed: int
    split: str
    teacher: Callable[[], Any] | None = None  # makes an object with frame_scores(audio) -> (frames,)
    _teacher_model: Any = dataclasses.field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:  # the ONNX session is rebuilt in each worker
        state = dict(self.__dict__)
        state["_teacher_model"] = None
        return state

    def teacher_scores(self, audio: np.ndarray) -> np.ndarray:
        """The teacher's probability per 10 ms frame of a mixture (teacher made on first use)."""
        if self._teacher_model is None:
            self._teacher_model = self.teacher()
        return self._teacher_model.frame_scores(audio)


@dataclasses.dataclass
class Stream:
    """One synthesised stream: audio, features, labels and what went into it."""

    audio: np.ndarray
    features: np.ndarray
    labels: np.ndarray
    skipped: list[str]
    n_utterances: int


def _pick_rir(rng: np.random.Generator, ctx: StreamContext) -> tuple[np.ndarray, int] | None:
    use_real = len(ctx.real_rirs) and (not len(ctx.sim_rirs) or rng.random() < ctx.options.real_rir_prob)
    bank = ctx.real_rirs if use_real else ctx.sim_rirs
    if not len(bank):
        return None
    i = int(rng.integers(len(bank)))
    return bank.rirs[i], bank.direct_index[i]


def _load_random(rng: np.random.Generator, paths: list[str], cdf: np.ndarray, skipped: list[str],
                 reader: Callable) -> tuple:
    for _ in range(_MAX_LOAD_ATTEMPTS):
        i = min(int(np.searchsorted(cdf, rng.random(), side="right")), len(paths) - 1)
        try:
            return i, reader(i)
        except AudioFileError as exc:
            skipped.append(paths[i])
            log.warning("skipping %s", exc)
    raise AudioFileError(f"{_MAX_LOAD_ATTEMPTS} random files in a row could not be read, e.g. {skipped[-1]!r}")


def _excerpt(x: np.ndarray, start: int, n: int) -> np.ndarray:
    """x[start:start + n], zero where that range falls outside x (start may be negative)."""
    out = np.zeros(n, dtype=np.float32)
    a, b = max(start, 0), min(start + n, x.size)
    if b > a:
        out[a - start:b - start] = x[a:b]
    return out


def _repeat_with_pauses(rng: np.random.Generator, x: np.ndarray, length: int, sr: int) -> np.ndarray:
    """Fill ``length`` samples with copies of a short sound: seamless loops half of the time
    (ambience), otherwise each copy followed by a random pause of up to 2 s (sound events)."""
    if rng.random() < 0.5:
        return augment.loop_to_length(x, length, int(rng.integers(x.size)))
    out = np.zeros(length, dtype=np.float32)
    pos = -int(rng.integers(x.size))
    while pos < length:
        a, b = max(pos, 0), min(pos + x.size, length)
        out[a:b] += x[a - pos:b - pos]
        pos += x.size + int(rng.uniform(0.0, 2.0) * sr)
    return out


def _noise_track(rng: np.random.Generator, ctx: StreamContext, n: int, skipped: list[str]) -> np.ndarray:
    """Background of 1..max_noise_segments cross-faded excerpts of random noise files."""
    sr, o = ctx.spec.sample_rate_hz, ctx.options
    n_seg = int(rng.integers(1, o.max_noise_segments + 1))
    cuts = np.sort(rng.integers(0, n, size=n_seg - 1)) if n_seg > 1 else np.zeros(0, int)
    bounds = np.concatenate([[0], cuts, [n]]).astype(int)
    fade_n = int(_FADE_MS * 4 * sr / 1000)
    track = np.zeros(n, dtype=np.float32)
    for s, e in zip(bounds[:-1], bounds[1:], strict=True):
        length = e - s + 2 * fade_n
        if e <= s:
            continue

        def read(i: int, length: int = length) -> np.ndarray:
            dur = ctx.noise_duration_s[i]
            want_s = length / sr
            start_s = float(rng.uniform(0.0, max(0.0, dur - want_s)))
            return read_clip(ctx.noise[i], sr, start_s, want_s)

        kind = rng.random()
        if kind < o.colored_noise_prob:
            x = augment.colored_noise(rng, length, float(rng.uniform(0.0, 2.0)))
        elif kind < o.colored_noise_prob + o.babble_prob:
            x = _babble(rng, ctx, length, skipped)
        else:
            _, x = _load_random(rng, ctx.noise, ctx.noise_cdf, skipped, read)
            if not np.any(x):  # a silent excerpt: leave this segment quiet
                continue
            if x.size < length:
                x = _repeat_with_pauses(rng, x, length, sr)
        if rng.random() < o.noise_band_limit_prob:
            x = augment.band_limit(x, sr, rng.uniform(*o.band_limit_hz))
        if rng.random() < o.noise_reverb_prob:
            picked = _pick_rir(rng, ctx)
            if picked is not None:
                rir, direct = picked
                x = augment.reverberate(x, rir)[direct:direct + length]
        rms = np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12
        x = augment.fade(x / rms * 10 ** (rng.uniform(-3.0, 3.0) / 20), fade_n)
        lo = s - fade_n
        a, b = max(lo, 0), min(lo + length, n)
        track[a:b] += x[a - lo:b - lo]
    return track


def _babble(rng: np.random.Generator, ctx: StreamContext, n: int, skipped: list[str]) -> np.ndarray:
    """Background chatter: a few talkers, each a chain of random utterances at equal level."""
    sr = ctx.spec.sample_rate_hz
    out = np.zeros(n, dtype=np.float32)
    lo, hi = ctx.options.babble_talkers
    for _ in range(int(rng.integers(lo, hi + 1))):
        pos = -int(rng.integers(sr))
        while pos < n:
            _, x = _load_random(rng, ctx.speech, ctx.speech_cdf, skipped, lambda i: read_clip(ctx.speech[i], sr))
            rms = np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12
            a, b = max(pos, 0), min(pos + x.size, n)
            if b > a:
                out[a:b] += x[a - pos:b - pos] / np.float32(rms)
            pos += x.size + int(rng.uniform(0.0, 0.3) * sr)
    return out


def _event_track(rng: np.random.Generator, ctx: StreamContext, n: int, skipped: list[str]) -> np.ndarray:
    """Short non-speech sound events at unit power each (power over the event's own samples),
    at random times; the caller scales the whole track."""
    sr, o = ctx.spec.sample_rate_hz, ctx.options
    out = np.zeros(n, dtype=np.float32)
    n_events = int(rng.poisson(rng.uniform(*o.event_rate_hz_range) * n / sr))
    for _ in range(n_events):
        if rng.random() < o.event_excerpt_prob:
            want_s = float(rng.uniform(0.04, 0.5))

            def read(i: int, want_s: float = want_s) -> np.ndarray:
                start_s = float(rng.uniform(0.0, max(0.0, ctx.noise_duration_s[i] - want_s)))
                return read_clip(ctx.noise[i], sr, start_s, want_s)

            _, x = _load_random(rng, ctx.noise, ctx.noise_cdf, skipped, read)
            x = augment.fade(x, int(0.005 * sr))
        else:
            x = augment.transient(rng, sr, augment.TRANSIENT_KINDS[int(rng.integers(len(augment.TRANSIENT_KINDS)))])
        if rng.random() < o.noise_reverb_prob:
            picked = _pick_rir(rng, ctx)
            if picked is not None:
                rir, direct = picked
                x = augment.reverberate(x, rir)[direct:]
        power = float(np.mean(x.astype(np.float64) ** 2))
        if power <= 0 or x.size == 0:
            continue
        x = x / np.float32(np.sqrt(power)) * np.float32(10 ** (rng.uniform(-3.0, 3.0) / 20))
        pos = int(rng.integers(0, n))
        k = min(x.size, n - pos)
        out[pos:pos + k] += x[:k]
    return out


def _snr_db(rng: np.random.Generator, o: StreamOptions) -> float:
    if rng.random() < o.snr_core_prob:
        return float(rng.uniform(*o.snr_core_db_range))
    return float(rng.uniform(*o.snr_db_range))


def _gap_samples(rng: np.random.Generator, o: StreamOptions, sr: int, prev_len: int) -> int:
    if prev_len and rng.random() < o.overlap_prob:
        return -int(rng.uniform(0.2, 1.0) * min(sr, prev_len // 2))
    kind = rng.choice(3, p=np.asarray(o.gap_probs) / sum(o.gap_probs))
    lo, hi = (o.short_gap_s, o.long_gap_s, o.nonspeech_gap_s)[kind]
    return int(rng.uniform(lo, hi) * sr)


def synthesize_stream(ctx: StreamContext, index: int) -> Stream:
    """Stream ``index`` of ``ctx.split`` (deterministic in ctx.seed, split and index)."""
    rng = np.random.default_rng([ctx.seed, _SPLIT_IDS[ctx.split], index])
    spec, o, rule = ctx.spec, ctx.options, ctx.rule
    sr, hop = spec.sample_rate_hz, spec.hop_length_samples
    frame_ms = 1000.0 * hop / sr
    n = int(round(o.stream_s * sr))
    n_frames = spec.n_frames(n)
    skipped: list[str] = []
    speech = np.zeros(n, dtype=np.float32)
    raw = np.zeros(n_frames, dtype=bool)
    n_utt = 0
    is_speech_stream = rng.random() >= o.nonspeech_stream_prob
    if is_speech_stream:
        pos = int(rng.uniform(0.0, 1.5) * sr)
        while pos < n - int(_MIN_UTTERANCE_S * sr):
            _, x = _load_random(rng, ctx.speech, ctx.speech_cdf, skipped, lambda i: read_clip(ctx.speech[i], sr))
            threshold_db = augment.label_threshold_db(x, hop, rule)
            room = n - pos
            if x.size > room:  # crop a random piece that fits; labels keep the full clip's threshold
                start_frame = int(rng.integers(0, (x.size - room) // hop + 1))
                x = x[start_frame * hop:start_frame * hop + room]
            if rng.random() < o.speech_band_limit_prob:
                x = augment.band_limit(x, sr, rng.uniform(*o.band_limit_hz))
            gain_db = _SPEECH_REFERENCE_DBFS + rng.uniform(*o.utterance_gain_db_range)
            delay, wet = 0, x
            picked = _pick_rir(rng, ctx) if rng.random() < o.speech_reverb_prob else None
            if picked is not None:
                rir, delay = picked
                wet = augment.reverberate(x, rir)
            # labels of the dry utterance, placed where its direct sound lands in the stream
            place = pos + delay
            lead = place % hop
            act = augment.active_frames(np.concatenate([np.zeros(lead, np.float32), x]), hop, rule, threshold_db)
            # level: scale so the (wet) utterance has gain_db active power over its speech frames
            aligned = _excerpt(wet, delay - lead, act.size * hop)
            p_active = augment.active_power(aligned, act, hop)
            scale = np.sqrt(10 ** (gain_db / 10) / max(p_active, 1e-20))
            if picked is not None:
                act = augment.extend_runs(act, int(round(rule.reverb_tail_ms / frame_ms)))
            f0 = place // hop
            m = max(0, min(act.size, n_frames - f0))
            raw[f0:f0 + m] |= act[:m]
            wet = augment.fade(wet, int(_FADE_MS * sr / 1000 / 4)) * np.float32(scale)
            k = min(wet.size, n - pos)
            speech[pos:pos + k] += wet[:k]
            n_utt += 1
            pos += x.size + _gap_samples(rng, o, sr, x.size)
            pos = max(pos, 0)
    labels = augment.smooth_labels(raw, frame_ms, rule)
    if not is_speech_stream or rng.random() < o.noise_prob:
        noise = _noise_track(rng, ctx, n, skipped)
        if is_speech_stream and raw.any():
            p_s = augment.active_power(speech, raw, hop)
            p_n = float(np.mean(noise.astype(np.float64) ** 2)) + 1e-20
            snr_db = _snr_db(rng, o)
            noise *= np.float32(np.sqrt(p_s / p_n / 10 ** (snr_db / 10)))
        mix = speech + noise
    else:
        noise = None
        mix = speech
    if o.event_prob > 0 and rng.random() < o.event_prob:  # no draw when off: recipe v3's streams stay as they were
        events = _event_track(rng, ctx, n, skipped)
        if is_speech_stream and raw.any():
            ref_db = 10 * np.log10(augment.active_power(speech, raw, hop) + 1e-20) + rng.uniform(*o.event_level_db_range)
        else:
            ref = float(np.mean(noise.astype(np.float64) ** 2)) if noise is not None else 0.0
            ref_db = (10 * np.log10(ref) if ref > 0 else -60.0) + rng.uniform(*o.event_background_db_range)
        mix = mix + events * np.float32(10 ** (ref_db / 20))
    if rng.random() < o.stream_band_limit_prob:
        mix = augment.band_limit(mix, sr, rng.uniform(*o.band_limit_hz))
    if rng.random() < o.stream_eq_prob:
        mix = augment.random_eq(rng, mix, sr)
    if rng.random() < o.agc_prob:
        mix = mix * augment.slow_gain(rng, n, sr, o.agc_depth_db_range, o.agc_period_s_range)
    # level: the speech's active RMS (or the whole stream's RMS when there is no speech)
    ref = augment.active_power(mix, raw, hop) if raw.any() else float(np.mean(mix.astype(np.float64) ** 2))
    if ref > 0:
        mix = mix * np.float32(10 ** (rng.uniform(*o.level_dbfs_range) / 20) / np.sqrt(ref))
        peak = float(np.max(np.abs(mix)))
        if rng.random() < o.clip_prob:
            mix = mix * np.float32(10 ** (rng.uniform(*o.clip_overdrive_db_range) / 20) / peak)
        elif peak > _MAX_PEAK:
            mix = mix * np.float32(_MAX_PEAK / peak)
    mic_rms = 10 ** (rng.uniform(*o.mic_noise_dbfs_range) / 20)
    mix = np.clip(mix + rng.normal(0.0, mic_rms, size=n).astype(np.float32), -1.0, 1.0).astype(np.float32)
    heard = mix if o.input_leveling is None else level_stream(
        mix, hop, LevelingConfig.from_dict(o.input_leveling).coefficients(spec.hop_s))
    feats = logmel(heard, spec)  # (level_stream keeps the whole hops: the same frames)
    return Stream(mix, feats, labels.astype(np.uint8), skipped, n_utt)
