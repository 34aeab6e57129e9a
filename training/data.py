"""Training data: LibriParty-style streams synthesised from clean speech, noise/music and
room impulse responses, with log-mel features and frame labels cached on disk as memmaps.

Pipeline (``build_cache``):

1. List audio files (any libsndfile format and rate) under the speech, noise and RIR
   directories; a missing or empty directory raises ``InvalidInputError`` naming it.
2. Split speech and noise by SOURCE FILE, never by frame: a file is a validation file when
   the SHA-1 of its path relative to its directory falls in the first ``val_fraction`` of the
   hash range. The split does not depend on the seed, so a file is on the same side in every
   run. Simulated rooms are split by index (``training.rooms``); the few real RIRs are shared.
3. Synthesise fixed-length streams (``StreamOptions.stream_s``), each from its own RNG seeded
   by ``(seed, split, stream index)`` -- deterministic for a seed whatever the worker count:
   * speech streams: utterances (8 kHz sources upsampled; some wideband ones band-limited to
     3.4-4 kHz so narrowband is not a speech cue) at random levels, joined with random
     silences (short pauses, longer gaps and long non-speech stretches of 3-8 s, occasional
     overlaps), many convolved with a real or simulated RIR (far-field), on a background of
     music/noise segments (some band-limited, some reverberated) at a random SNR;
   * non-speech streams: music/noise only (label 0), so music is learnt as non-speech;
   * files are drawn with ``pick_weights``: 1 / sqrt(files of the same source folder), noise
     also times sqrt(duration), so thousands of one-word clips do not drown the few long
     many-speaker recordings, nor short sound effects the music tracks;
   * the whole mixture gets a random peak level (-35..0 dBFS), a low white "microphone" noise
     floor (never digital silence), sometimes a telephone band limit or a random channel EQ.
   Labels follow ``training.augment`` (energy rule on the DRY utterance, shifted by the RIR's
   direct-path delay, smoothed over the stream).
4. Features ``vad.core.features.logmel`` of each stream (float32 [n_frames, n_mels]) and labels
   (uint8) go into ``<split>_features.npy`` / ``<split>_labels.npy`` (numpy .npy, opened with
   ``mmap_mode='r'``), plus ``index.json`` (stream boundaries, spec, options, per-band mean/std
   of the training features, speech fraction, skipped files, build time). Written to temp
   names and renamed; a second call with the same configuration reuses the cache.

Unreadable files in a big corpus are skipped (counted, named in ``index.json`` and logged);
only if nothing is readable does the build fail.

Audio is read by the private ``_read_audio`` (soundfile + soxr) rather than
``vad.core.audio.load_audio`` because noise tracks are read as random excerpts (seek + partial
read) and load_audio reads whole files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from vad.training import augment, rooms
from vad.training.augment import LabelRule
from vad.training.rooms import RirBank, RoomSimOptions

from vad.core.errors import AudioFileError, InvalidInputError
from vad.core.features import FeatureSpec, logmel

log = logging.getLogger(__name__)

CACHE_VERSION = 2
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf")
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
        val_fraction: fraction of speech and noise files held out for validation.
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
    val_fraction: float = 0.1

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
                if len(value) != 2 or not value[0] <= value[1]:
                    raise bad(f.name, "must be a (low, high) pair with low <= high")
        if len(self.gap_probs) != 3 or min(self.gap_probs) < 0 or sum(self.gap_probs) <= 0:
            raise bad("gap_probs", "must be three non-negative weights")
        if not 0.0 < self.val_fraction < 1.0:
            raise bad("val_fraction", "must be in (0, 1)")
        if self.max_noise_segments < 1:
            raise bad("max_noise_segments", "must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- corpus listing and split -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class AudioFile:
    """One source file: its path and its path relative to the directory it was listed from
    (the split key)."""

    path: str
    key: str


def list_audio_files(dirs: Sequence[str | os.PathLike], role: str) -> list[AudioFile]:
    """All audio files (by extension, recursively, sorted) under ``dirs``.

    Raises InvalidInputError naming the directory when one is missing, not a directory or
    holds no audio file, or when ``dirs`` is empty.
    """
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    if not dirs:
        raise InvalidInputError(f"no {role} directory given")
    out: list[AudioFile] = []
    for d in dirs:
        root = Path(d)
        if not root.exists():
            raise InvalidInputError(f"{role} directory {str(root)!r} does not exist")
        if not root.is_dir():
            raise InvalidInputError(f"{role} directory {str(root)!r} is not a directory")
        found = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        if not found:
            raise InvalidInputError(
                f"{role} directory {str(root)!r} holds no audio files (looked for {', '.join(AUDIO_EXTENSIONS)})"
            )
        out.extend(AudioFile(str(p), f"{root.name}/{p.relative_to(root).as_posix()}") for p in found)
    return out


def _hash_unit(key: str) -> float:
    """A stable number in [0, 1) from a string."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big") / 2.0**64


def split_files(files: Sequence[AudioFile], val_fraction: float) -> tuple[list[AudioFile], list[AudioFile]]:
    """(train, val) by hashed relative path. With >= 2 files neither side is empty."""
    ordered = sorted(files, key=lambda f: _hash_unit(f.key))
    val = [f for f in ordered if _hash_unit(f.key) < val_fraction]
    train = [f for f in ordered if _hash_unit(f.key) >= val_fraction]
    if len(ordered) >= 2:
        if not val:
            val, train = ordered[:1], ordered[1:]
        elif not train:
            val, train = ordered[:-1], ordered[-1:]
    else:
        train, val = list(ordered), list(ordered)
    return sorted(train, key=lambda f: f.path), sorted(val, key=lambda f: f.path)


# --- audio reading (private adapter: soundfile + soxr) ------------------------------------

def _read_audio(path: str, rate_hz: int, start_s: float = 0.0, duration_s: float | None = None) -> np.ndarray:
    """Mono float32 at rate_hz of [start_s, start_s + duration_s) of a file; AudioFileError
    naming the file when it cannot be read or is empty."""
    import soundfile as sf
    import soxr

    try:
        with sf.SoundFile(path) as f:
            src_rate = f.samplerate
            start = int(start_s * src_rate)
            if start:
                f.seek(min(start, f.frames))
            n = -1 if duration_s is None else int(np.ceil(duration_s * src_rate))
            data = f.read(n, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError) as exc:
        raise AudioFileError(f"cannot read audio file {path!r}: {exc}") from exc
    if data.shape[0] == 0:
        raise AudioFileError(f"audio file {path!r} is empty")
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(x)):
        raise AudioFileError(f"audio file {path!r} has non-finite samples")
    if src_rate != rate_hz:
        x = soxr.resample(x, src_rate, rate_hz, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def _audio_duration_s(path: str) -> float:
    import soundfile as sf

    try:
        info = sf.info(path)
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError) as exc:
        raise AudioFileError(f"cannot read audio file {path!r}: {exc}") from exc
    return info.frames / info.samplerate


def _load_rir(path: str | os.PathLike, rate_hz: int) -> tuple[np.ndarray, int]:
    return _read_audio(str(path), rate_hz), rate_hz


# --- stream synthesis ---------------------------------------------------------------------

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


def pick_weights(keys: Sequence[str], durations_s: Sequence[float] | None = None) -> np.ndarray:
    """Cumulative pick probabilities: each file's weight is 1 / sqrt(number of files of its
    source) (source = first folder under the listed directory), times sqrt(duration) when
    durations are given. Big sources of short clips (digits, single words) then do not
    drown the few long, many-speaker recordings, and short sound effects do not drown music."""
    sources = [k.split("/")[1] if k.count("/") >= 2 else "" for k in keys]
    counts: dict[str, int] = {}
    for src in sources:
        counts[src] = counts.get(src, 0) + 1
    w = np.array([1.0 / np.sqrt(counts[src]) for src in sources])
    if durations_s is not None:
        w *= np.sqrt(np.maximum(np.asarray(durations_s, dtype=np.float64), 1e-3))
    cdf = np.cumsum(w / w.sum())
    cdf[-1] = 1.0
    return cdf


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
            return _read_audio(ctx.noise[i], sr, start_s, want_s)

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
            _, x = _load_random(rng, ctx.speech, ctx.speech_cdf, skipped, lambda i: _read_audio(ctx.speech[i], sr))
            rms = np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12
            a, b = max(pos, 0), min(pos + x.size, n)
            if b > a:
                out[a:b] += x[a - pos:b - pos] / np.float32(rms)
            pos += x.size + int(rng.uniform(0.0, 0.3) * sr)
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
            _, x = _load_random(rng, ctx.speech, ctx.speech_cdf, skipped, lambda i: _read_audio(ctx.speech[i], sr))
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
        mix = speech
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
    feats = logmel(mix, spec)
    return Stream(mix, feats, labels.astype(np.uint8), skipped, n_utt)


# --- parallel build -----------------------------------------------------------------------

_WORKER_CTX: StreamContext | None = None  # set once per worker process by _init_worker


def _init_worker(ctx: StreamContext) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx


def _stream_result(ctx: StreamContext, index: int) -> tuple:
    s = synthesize_stream(ctx, index)
    teacher = ctx.teacher_scores(s.audio).astype(np.float16) if ctx.teacher else None
    return index, s.features, s.labels, s.skipped, teacher


def _worker_stream(index: int) -> tuple:
    assert _WORKER_CTX is not None  # internal invariant, not user input
    return _stream_result(_WORKER_CTX, index)


def _durations(files: list[AudioFile], skipped: list[str]) -> tuple[list[AudioFile], list[float]]:
    """The readable, non-empty files and their durations (others go to ``skipped``)."""
    keep, durs = [], []
    for f in files:
        try:
            d = _audio_duration_s(f.path)
        except AudioFileError as exc:
            log.warning("skipping %s", exc)
            skipped.append(f.path)
            continue
        if d > 0:
            keep.append(f)
            durs.append(d)
        else:
            skipped.append(f.path)
    return keep, durs


def _write_split(out_dir: Path, ctx: StreamContext, n_streams: int, workers: int,
                 progress: Callable[[str], None] | None) -> dict[str, Any]:
    spec = ctx.spec
    frames_per_stream = spec.n_frames(int(round(ctx.options.stream_s * spec.sample_rate_hz)))
    total = n_streams * frames_per_stream
    tmp_feat = out_dir / f".{ctx.split}_features.tmp.npy"
    tmp_lab = out_dir / f".{ctx.split}_labels.tmp.npy"
    feats = np.lib.format.open_memmap(tmp_feat, mode="w+", dtype=np.float32, shape=(total, spec.n_mels))
    labs = np.lib.format.open_memmap(tmp_lab, mode="w+", dtype=np.uint8, shape=(total,))
    tmp_teacher = out_dir / f".{ctx.split}_teacher.tmp.npy"
    teach = (np.lib.format.open_memmap(tmp_teacher, mode="w+", dtype=np.float16, shape=(total,))
             if ctx.teacher else None)
    skipped: list[str] = []
    t0 = time.time()

    def store(result: tuple, done: int) -> None:
        i, f, lab, sk, teacher = result
        feats[i * frames_per_stream:(i + 1) * frames_per_stream] = f
        labs[i * frames_per_stream:(i + 1) * frames_per_stream] = lab
        if teach is not None:
            teach[i * frames_per_stream:(i + 1) * frames_per_stream] = teacher
        skipped.extend(sk)
        if progress and (done % max(1, n_streams // 20) == 0 or done == n_streams):
            progress(f"{ctx.split}: {done}/{n_streams} streams, {time.time() - t0:.0f} s")

    if workers <= 1 or n_streams <= 1:
        for done, i in enumerate(range(n_streams), 1):
            store(_stream_result(ctx, i), done)
    else:
        mp = multiprocessing.get_context("spawn")
        with mp.Pool(workers, initializer=_init_worker, initargs=(ctx,)) as pool:
            for done, result in enumerate(pool.imap_unordered(_worker_stream, range(n_streams)), 1):
                store(result, done)
    feats.flush()
    labs.flush()
    files = {"features": f"{ctx.split}_features.npy", "labels": f"{ctx.split}_labels.npy"}
    if teach is not None:
        teach.flush()
        files["teacher"] = f"{ctx.split}_teacher.npy"
        os.replace(tmp_teacher, out_dir / files["teacher"])
    speech_fraction = float(labs.mean()) if total else 0.0
    stats: dict[str, Any] = {
        "n_streams": n_streams,
        "frames_per_stream": frames_per_stream,
        "n_frames": total,
        "speech_fraction": speech_fraction,
        "skipped_files": sorted(set(skipped)),
        "files": files,
    }
    if teach is not None:
        hard = np.asarray(labs, dtype=bool)
        soft = np.asarray(teach, dtype=np.float32)
        stats["teacher_agreement"] = float(np.mean((soft >= 0.5) == hard)) if total else 0.0
    if ctx.split == "train":
        mean = np.zeros(spec.n_mels)
        sq = np.zeros(spec.n_mels)
        chunk = 100_000
        for a in range(0, total, chunk):
            block = np.asarray(feats[a:a + chunk], dtype=np.float64)
            mean += block.sum(axis=0)
            sq += (block * block).sum(axis=0)
        mean /= max(total, 1)
        std = np.sqrt(np.maximum(sq / max(total, 1) - mean * mean, 1e-12))
        stats["feature_mean"] = mean.tolist()
        stats["feature_std"] = std.tolist()
    os.replace(tmp_feat, out_dir / f"{ctx.split}_features.npy")
    os.replace(tmp_lab, out_dir / f"{ctx.split}_labels.npy")
    return stats


def build_cache(
    speech_dirs: Sequence[str | os.PathLike],
    noise_dirs: Sequence[str | os.PathLike],
    rir_dirs: Sequence[str | os.PathLike] | None,
    out_dir: str | os.PathLike,
    minutes_train: float = 120.0,
    minutes_val: float = 15.0,
    seed: int = 0,
    spec: FeatureSpec | None = None,
    options: StreamOptions | None = None,
    rule: LabelRule | None = None,
    room_options: RoomSimOptions | None = None,
    workers: int | None = None,
    teacher: Callable[[], Any] | None = None,
    rebuild: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Synthesise and cache training and validation streams; returns ``out_dir``.

    ``rir_dirs`` may be None or empty (simulated rooms only; ``room_options.n_rooms = 0`` and
    no rir_dirs means no reverberation). A cache already in ``out_dir`` with the same
    configuration is reused unless ``rebuild``. ``teacher`` (a picklable factory of an
    object with ``frame_scores(audio_16k) -> one probability per 10 ms frame``, e.g. the
    application layer's ``vad.apps.baselines.SileroBaseline``) also stores the teacher's
    probability per frame of each mixture (``<split>_teacher.npy``, float16) for distillation (``CachedStreams(teacher_weight=...)``). ``workers`` defaults to min(2, cpu count);
    workers are *spawned* (safe when torch is loaded in the caller), so a script that calls
    this at top level needs the usual ``if __name__ == "__main__":`` guard.

    Measured on the 2-core machine (shared with other jobs, load average ~8-10): 180 + 20
    minutes of streams from ../shared/data/train in 89-129 s (2 workers), 188 MiB on disk
    (features 160 B per 10 ms frame); with ``teacher=True`` 181 s (about 1.9x).
    """
    spec = spec or FeatureSpec()
    options = options or StreamOptions()
    rule = rule or LabelRule()
    room_options = room_options or RoomSimOptions()
    for name, value in (("minutes_train", minutes_train), ("minutes_val", minutes_val)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise InvalidInputError(f"{name}={value!r}: must be a positive number of minutes")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"seed={seed!r}: must be a non-negative integer")
    out = Path(out_dir)
    speech_files = list_audio_files(speech_dirs, "speech")
    noise_files = list_audio_files(noise_dirs, "noise")
    rir_files = list_audio_files(rir_dirs, "room impulse response") if rir_dirs else []
    config = {
        "version": CACHE_VERSION,
        "spec": spec.to_dict(),
        "options": options.to_dict(),
        "rule": dataclasses.asdict(rule),
        "rooms": dataclasses.asdict(room_options),
        "minutes_train": float(minutes_train),
        "minutes_val": float(minutes_val),
        "seed": int(seed),
        "teacher": None if teacher is None else f"{teacher.__module__}.{teacher.__qualname__}",
        "speech": sorted(f.key for f in speech_files),
        "noise": sorted(f.key for f in noise_files),
        "rir": sorted(f.key for f in rir_files),
    }
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()
    index_path = out / "index.json"
    if not rebuild and index_path.is_file():
        try:
            if json.loads(index_path.read_text()).get("config_sha1") == digest:
                if progress:
                    progress(f"reusing cache {out}")
                return out
        except (OSError, json.JSONDecodeError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    workers = int(workers or min(2, os.cpu_count() or 1))
    skipped: list[str] = []
    real = rooms.load_real_rirs([Path(f.path) for f in rir_files], spec.sample_rate_hz, _load_rir)
    sim = rooms.simulated_bank_cached(room_options, spec.sample_rate_hz, seed, out)
    sim_train, sim_val = rooms.split_simulated(sim, room_options)
    if progress:
        progress(f"{len(real)} real + {len(sim)} simulated RIRs ready ({time.time() - t0:.0f} s)")
    index: dict[str, Any] = {"version": CACHE_VERSION, "config_sha1": digest, "spec": spec.to_dict(),
                             "seed": int(seed), "options": options.to_dict(), "rule": config["rule"],
                             "rooms": config["rooms"], "splits": {}}
    speech_split = split_files(speech_files, options.val_fraction)
    noise_split = split_files(noise_files, options.val_fraction)
    for k, split in enumerate(SPLITS):
        minutes = minutes_train if split == "train" else minutes_val
        noise_kept, noise_durs = _durations(noise_split[k], skipped)
        if not noise_kept:
            raise AudioFileError(f"no readable noise file for the {split} split under {list(map(str, noise_dirs))}")
        ctx = StreamContext(
            speech=[f.path for f in speech_split[k]], noise=[f.path for f in noise_kept], noise_duration_s=noise_durs,
            speech_cdf=pick_weights([f.key for f in speech_split[k]]),
            noise_cdf=pick_weights([f.key for f in noise_kept], noise_durs),
            real_rirs=real, sim_rirs=sim_train if split == "train" else sim_val,
            spec=spec, options=options, rule=rule, seed=int(seed), split=split, teacher=teacher,
        )
        n_streams = max(1, int(np.ceil(minutes * 60.0 / options.stream_s)))
        stats = _write_split(out, ctx, n_streams, workers, progress)
        stats["speech_files"] = len(speech_split[k])
        stats["noise_files"] = len(noise_kept)
        stats["rooms_simulated"] = len(ctx.sim_rirs)
        stats["rooms_real"] = len(real)
        skipped.extend(stats["skipped_files"])
        index["splits"][split] = stats
    index["feature_mean"] = index["splits"]["train"].pop("feature_mean")
    index["feature_std"] = index["splits"]["train"].pop("feature_std")
    index["skipped_files"] = sorted(set(skipped))
    index["build_seconds"] = round(time.time() - t0, 1)
    if index["skipped_files"]:
        log.warning("%d unreadable file(s) skipped (listed in %s)", len(index["skipped_files"]), index_path)
    tmp = out / f".index.tmp{os.getpid()}.json"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, index_path)
    if progress:
        n_skipped = len(index["skipped_files"])
        progress(f"cache built in {index['build_seconds']} s at {out}"
                 + (f" ({n_skipped} unreadable file(s) skipped, listed in index.json)" if n_skipped else ""))
    return out


# --- reading the cache --------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FeatureAugment:
    """Augmentation of cached log-mel windows, drawn per window at batch time, so that a
    window replayed from the cache is never seen twice the same way.

    Attributes:
        prob: probability that a window is augmented at all.
        gain_db_range: a level change (a constant added to the natural-log mel power;
            values stay at or above the spec's log floor).
        tilt_db_range: a spectral tilt: this many dB from the lowest to the highest band.
        freq_masks / freq_mask_bands: SpecAugment frequency masks (count, max width).
        time_masks / time_mask_frames: SpecAugment time masks (count, max length).
        Masked cells take the band's training mean (0 after the network's normalisation).
    """

    prob: float = 0.8
    gain_db_range: tuple[float, float] = (-10.0, 10.0)
    tilt_db_range: tuple[float, float] = (-6.0, 6.0)
    freq_masks: int = 1
    freq_mask_bands: int = 4
    time_masks: int = 2
    time_mask_frames: int = 10

    def apply(self, rng: np.random.Generator, window: np.ndarray, band_mean: np.ndarray, log_floor: float) -> np.ndarray:
        """An augmented copy of window [T, F] (natural-log mel power)."""
        if rng.random() >= self.prob:
            return window
        t, f = window.shape
        db_to_ln = np.log(10.0) / 10.0
        offset = rng.uniform(*self.gain_db_range) + rng.uniform(*self.tilt_db_range) * (np.arange(f) / max(f - 1, 1) - 0.5)
        out = np.maximum(window + (offset * db_to_ln).astype(np.float32), np.float32(np.log(log_floor)))
        for _ in range(self.freq_masks):
            w = int(rng.integers(0, self.freq_mask_bands + 1))
            a = int(rng.integers(0, f - w + 1))
            out[:, a:a + w] = band_mean[a:a + w]
        for _ in range(self.time_masks):
            w = int(rng.integers(0, self.time_mask_frames + 1))
            a = int(rng.integers(0, max(t - w, 0) + 1))
            out[a:a + w] = band_mean
        return out


class CachedStreams:
    """Random fixed-length windows of cached (features, labels) for one split.

    ``sample_batch(batch_size, rng)`` -> (features float32 tensor [B, T, F], labels float32
    tensor [B, T]); ``iter_streams()`` yields whole streams as numpy arrays (validation).
    Also indexable (``len`` = non-overlapping windows per epoch; item ``i`` is a window at a
    random offset drawn from (seed, epoch, i); ``set_epoch`` changes the draw) for a
    torch DataLoader. Windows never cross stream boundaries.
    """

    def __init__(self, cache_dir: str | os.PathLike, split: str = "train", window_frames: int = 600,
                 seed: int = 0, teacher_weight: float = 0.0, feature_augment: FeatureAugment | None = None):
        root = Path(cache_dir)
        index_path = root / "index.json"
        if not index_path.is_file():
            raise InvalidInputError(f"{str(root)!r} is not a data cache (no index.json); run build_cache first")
        try:
            index = json.loads(index_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"data cache index {str(index_path)!r} is unreadable: {exc}") from exc
        if index.get("version") != CACHE_VERSION:
            raise InvalidInputError(f"data cache {str(root)!r} has version {index.get('version')!r}, "
                                    f"this build reads {CACHE_VERSION}; rebuild it")
        if split not in index["splits"]:
            raise InvalidInputError(f"split={split!r}: the cache has {sorted(index['splits'])}")
        info = index["splits"][split]
        self.index = index
        self.split = split
        self.spec = FeatureSpec.from_dict(index["spec"])
        self.features = np.load(root / info["files"]["features"], mmap_mode="r")
        self.labels = np.load(root / info["files"]["labels"], mmap_mode="r")
        self.frames_per_stream = int(info["frames_per_stream"])
        self.n_streams = int(info["n_streams"])
        self.feature_mean = np.asarray(index["feature_mean"], dtype=np.float32)
        self.feature_std = np.asarray(index["feature_std"], dtype=np.float32)
        self.speech_fraction = float(info["speech_fraction"])
        if not (isinstance(teacher_weight, (int, float)) and 0.0 <= teacher_weight <= 1.0):
            raise InvalidInputError(f"teacher_weight={teacher_weight!r}: must be in [0, 1]")
        self.teacher_weight = float(teacher_weight)
        self.teacher = None
        if "teacher" in info["files"]:
            self.teacher = np.load(root / info["files"]["teacher"], mmap_mode="r")
        elif self.teacher_weight > 0:
            raise InvalidInputError(
                f"teacher_weight={teacher_weight}: the cache {str(root)!r} has no teacher scores "
                f"(build it with teacher=True)"
            )
        if isinstance(window_frames, bool) or not isinstance(window_frames, (int, np.integer)) or not (
            1 <= window_frames <= self.frames_per_stream
        ):
            raise InvalidInputError(
                f"window_frames={window_frames!r}: must be an integer in [1, {self.frames_per_stream}] "
                f"(the cached stream length)"
            )
        self.window_frames = int(window_frames)
        self.feature_augment = feature_augment
        self.seed = int(seed)
        self.epoch = 0

    @property
    def n_frames(self) -> int:
        return self.n_streams * self.frames_per_stream

    def __len__(self) -> int:
        return self.n_streams * (self.frames_per_stream // self.window_frames)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _window_start(self, rng: np.random.Generator) -> int:
        stream = int(rng.integers(self.n_streams))
        offset = int(rng.integers(self.frames_per_stream - self.window_frames + 1))
        return stream * self.frames_per_stream + offset

    def _targets(self, s: int) -> np.ndarray:
        """Training targets of the window at s: hard labels, mixed with the teacher if asked."""
        w = self.window_frames
        y = np.asarray(self.labels[s:s + w], dtype=np.float32)
        if self.teacher_weight > 0:
            y = (1.0 - self.teacher_weight) * y + self.teacher_weight * np.asarray(self.teacher[s:s + w], np.float32)
        return y

    def __getitem__(self, i: int):
        import torch

        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range [0, {len(self)})")
        s = self._window_start(np.random.default_rng([self.seed, self.epoch, int(i)]))
        w = self.window_frames
        return (torch.from_numpy(np.array(self.features[s:s + w], dtype=np.float32)),
                torch.from_numpy(self._targets(s)))

    def sample_batch(self, batch_size: int, rng: np.random.Generator):
        """A batch of random windows as torch tensors (features [B, T, F], targets [B, T]: the
        hard labels, or (1 - teacher_weight) * labels + teacher_weight * teacher); features
        augmented by ``feature_augment`` when set."""
        import torch

        w = self.window_frames
        starts = [self._window_start(rng) for _ in range(batch_size)]
        feats = np.stack([self.features[s:s + w] for s in starts]).astype(np.float32, copy=False)
        if self.feature_augment is not None:
            floor = self.spec.log_floor
            feats = np.stack([self.feature_augment.apply(rng, x, self.feature_mean, floor) for x in feats])
        labs = np.stack([self._targets(s) for s in starts])
        return torch.from_numpy(feats), torch.from_numpy(labs)

    def iter_streams(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Whole streams in order: (features [T, F] float32, labels [T] uint8)."""
        for k in range(self.n_streams):
            a = k * self.frames_per_stream
            b = a + self.frames_per_stream
            yield np.asarray(self.features[a:b]), np.asarray(self.labels[a:b])
