"""Audio input: read any audio file as float32 mono at a chosen rate, and resample streams.

* ``load_audio(path, target_rate_hz)`` reads WAV/FLAC/Ogg (Vorbis, Opus)/MP3 and anything else
  libsndfile reads (via soundfile), any sample format (int16/int32/float), any channel count
  (mixed down by averaging the channels), and resamples with soxr when a target rate is given.
  Missing, empty, truncated, unreadable and non-audio files raise ``AudioFileError`` naming
  the file and the reason; so does a float file with a sample outside the sample contract of
  ``vad.core.features`` (non-finite, or beyond ``MAX_FLOAT_SAMPLE_MAGNITUDE``), naming the
  sample and its time in the file.
* ``resample(signal, in_rate_hz, out_rate_hz)`` resamples a whole signal.
* ``StreamResampler`` resamples a live stream chunk by chunk (soxr's stream API).

Resampling is soxr at ``RESAMPLE_QUALITY`` with float64 arithmetic. Delay handling (checked in
tests/test_audio.py): soxr removes its own filter delay, so output sample ``j`` of a stream or of a
whole-signal resample is the signal at input time ``j * in_rate / out_rate`` (in input samples),
and the concatenated stream output (after ``flush()``) equals ``resample()`` of the whole signal
sample for sample. What the stream does add is *latency*: it holds back the last few input
samples until the samples after them arrive (``StreamResampler.latency_samples``), and hands them
out at ``flush()``. ``StreamResampler.input_position(j)`` maps output positions back to input
positions exactly.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np
import soundfile
import soxr

from vad.core.errors import AudioFileError, InvalidInputError, StreamStateError
from vad.core.features import (
    MAX_FLOAT_SAMPLE_MAGNITUDE,
    as_float64_samples,
    bad_sample_reason,
    bad_sample_value,
    first_bad_sample,
)

RESAMPLE_QUALITY = "HQ"  # soxr "high quality" (the data bundle used "VHQ"; HQ differs by < -100 dB)

# WAV/AIFF headers written by streaming recorders carry placeholder data sizes; not truncation.
_PLACEHOLDER_DATA_BYTES = {0, 0xFFFFFFFF, 0x7FFFFFFF, 0xFFFFFFFF - 1}
_DECLARED_SIZE = re.compile(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)")
_MP3_FRAME_COUNT_SLACK = 0.01
_EARLY_END_MARKERS = ("ended unexpectedly", "unexpected end of file")
_WHOLE_FILE_BLOCK_FRAMES = 1 << 20  # load_audio reads whole files through AudioReader in blocks this long
# libsndfile subtypes whose samples are int16 values exactly (its float reads are them / 2**15)
_INT16_EXACT_SUBTYPES = frozenset({"PCM_16", "PCM_S8", "PCM_U8", "ULAW", "ALAW"})
BLOCK_DTYPES = ("float64", "float32", "int16")


def _check_rate(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be a positive integer (Hz), got {value!r}")
    if value <= 0:
        raise InvalidInputError(f"{name} must be > 0 Hz, got {value}")
    return int(value)


def resample(signal: np.ndarray, in_rate_hz: int, out_rate_hz: int) -> np.ndarray:
    """Resample a whole mono signal with soxr; returns float32 (a copy even when the rates agree)."""
    in_rate_hz = _check_rate(in_rate_hz, "in_rate_hz")
    out_rate_hz = _check_rate(out_rate_hz, "out_rate_hz")
    x = as_float64_samples(signal, "signal")
    if in_rate_hz == out_rate_hz or x.size == 0:
        n_out = x.size if in_rate_hz == out_rate_hz else 0
        return x[:n_out].astype(np.float32)
    return _resampled_output(soxr.resample(x, in_rate_hz, out_rate_hz, quality=RESAMPLE_QUALITY))


def _resampled_output(y: np.ndarray) -> np.ndarray:
    """float32 resampler output, clipped to +-MAX_FLOAT_SAMPLE_MAGNITUDE: the filter can overshoot
    an accepted input near that bound, and what the resampler hands on must be accepted too."""
    out = y.astype(np.float32)
    np.minimum(out, MAX_FLOAT_SAMPLE_MAGNITUDE, out=out)  # two in-place ufuncs: np.clip costs
    return np.maximum(out, -MAX_FLOAT_SAMPLE_MAGNITUDE, out=out)  # a few us more per live chunk


def _fail(path: Any, reason: str) -> AudioFileError:
    return AudioFileError(f"{os.fspath(path)}: {reason}")


def _libsndfile_reason(exc: Exception) -> str:
    """libsndfile's own message ("Format not recognised", ...) without soundfile's prefix."""
    reason = getattr(exc, "error_string", None) or str(exc)
    return reason.strip().removeprefix("Error : ").rstrip(".")


def _truncation(info: str, frames_declared: int, frames_read: int, is_mp3: bool) -> str | None:
    """Why the file looks truncated, or None."""
    match = _DECLARED_SIZE.search(info)
    if match:
        declared, actual = int(match.group(1)), int(match.group(2))
        if declared not in _PLACEHOLDER_DATA_BYTES and declared > actual:
            return f"truncated: the header declares {declared} bytes of audio data but the file holds {actual}"
    lowered = info.lower()
    if any(marker in lowered for marker in _EARLY_END_MARKERS):
        return "truncated: the file ends in the middle of the audio stream"
    # MP3 frame counts can be estimates (VBR without an exact Xing header): allow 1 % slack there
    shortfall = frames_declared - frames_read
    if shortfall > (frames_declared * _MP3_FRAME_COUNT_SLACK if is_mp3 else 0):
        return f"truncated: the header declares {frames_declared} samples but only {frames_read} could be decoded"
    return None


def _exact_dtype(subtype: str, channels: int) -> str:
    """AudioReader.exact_dtype: "int16" for mono PCM of 16 bits or fewer, else "float32" (a
    mono float32 block holds every other mono subtype's samples as the engine takes them;
    float64 files and several channels, averaged in float64: "float64")."""
    if channels != 1 or subtype == "DOUBLE":  # (a float64 file's rejected values are named as they are)
        return "float64"
    return "int16" if subtype in _INT16_EXACT_SUBTYPES else "float32"


def _nonblocking(path: Any, flags: int) -> int:
    """``open`` opener: never block (opening a FIFO for reading would wait for a writer forever)."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _open_regular(path: Any):
    """Open a regular, non-empty file for binary reading, or raise AudioFileError."""
    try:
        handle = open(path, "rb", opener=_nonblocking)  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except IsADirectoryError:
        raise _fail(path, "is a directory, not an audio file") from None
    except PermissionError:
        raise _fail(path, "permission denied") from None
    except OSError as exc:
        raise _fail(path, f"cannot be opened ({exc.strerror or exc})") from exc
    st = os.fstat(handle.fileno())
    why = None
    if stat.S_ISDIR(st.st_mode):
        why = "is a directory, not an audio file"
    elif not stat.S_ISREG(st.st_mode):
        why = f"is {_kind(st.st_mode)}, not an audio file"
    elif st.st_size == 0:
        why = "empty file (0 bytes)"
    if why:
        handle.close()
        raise _fail(path, why)
    return handle


class AudioReader:
    """An audio file opened for reading block by block, so memory stays flat whatever its length.

    >>> with AudioReader("long.flac") as reader:
    ...     for block in reader.blocks(30 * reader.rate_hz):   # float64 mono, channels averaged
    ...         ...
    >>> with AudioReader("long.flac") as reader:               # the cheapest exact form of the file's
    ...     for block in reader.blocks(30 * reader.rate_hz, reader.exact_dtype):  # samples (see exact_dtype)
    ...         ...

    Opening raises ``AudioFileError`` for what the header shows (missing, not a regular file,
    0 bytes, not audio, invalid rate); ``blocks`` raises it for corrupt data, non-finite samples
    (with their position) and, at the end, truncation and (unless ``allow_empty``) no samples.
    ``load_audio`` reads through this class, so both paths give the same samples and errors.

    Attributes:
        path, rate_hz, channels, frames_declared (from the header; an estimate for some MP3s),
        frames_read (samples per channel decoded so far), subtype (libsndfile's, e.g. "PCM_16"),
        exact_dtype (see ``blocks``).
    """

    def __init__(self, path: str | os.PathLike, allow_empty: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidInputError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        self.path = path
        self._allow_empty = allow_empty
        self._handle = _open_regular(path)
        try:
            self._sound = soundfile.SoundFile(self._handle)
        except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
            self._handle.close()
            raise _fail(path, f"not a readable audio file ({_libsndfile_reason(exc)})") from exc
        except OSError as exc:
            self._handle.close()
            raise _fail(path, f"read error ({exc})") from exc
        self.rate_hz = int(self._sound.samplerate)
        self.channels = int(self._sound.channels)
        self.frames_declared = int(self._sound.frames)
        self.frames_read = 0
        self._info = self._sound.extra_info
        self._is_mp3 = self._sound.format == "MP3"
        self.subtype = str(self._sound.subtype)
        self.exact_dtype = _exact_dtype(self.subtype, self.channels)
        if self.rate_hz <= 0:
            self.close()
            raise _fail(path, f"declares an invalid sample rate ({self.rate_hz} Hz)")

    def blocks(self, block_frames: int, dtype: str = "float64") -> Iterator[np.ndarray]:
        """Yield the rest of the file as mono blocks of ``block_frames`` samples (the last shorter).

        ``dtype``: "float64" (default) or "float32" (full scale +-1.0; channels averaged in
        float64), or "int16", the PCM values themselves, only where they are exactly that
        (``exact_dtype == "int16"``: a mono file of 16 bits or fewer). ``exact_dtype`` is the
        cheapest of these that holds the samples exactly, so reading with it and converting to
        float32 gives the same samples as float64, with less to decode, check and copy.
        """
        if isinstance(block_frames, bool) or not isinstance(block_frames, (int, np.integer)) or block_frames < 1:
            raise InvalidInputError(f"block_frames={block_frames!r}: must be an integer >= 1")
        if dtype not in BLOCK_DTYPES:
            raise InvalidInputError(f"dtype={dtype!r}: must be one of {', '.join(BLOCK_DTYPES)}")
        if dtype == "int16" and self.exact_dtype != "int16":
            raise InvalidInputError(
                f"dtype='int16': {os.fspath(self.path)} is {self.subtype} with {self.channels} channel(s), "
                "not mono int16 PCM; read it as float32 or float64"
            )
        path = self.path
        mono = self.channels == 1
        read_dtype = "float64" if not mono else dtype  # channels are averaged in float64
        while True:
            try:
                data = self._sound.read(int(block_frames), dtype=read_dtype, always_2d=not mono)
            except (soundfile.SoundFileError, RuntimeError) as exc:
                raise _fail(path, f"truncated or corrupt audio data ({_libsndfile_reason(exc)})") from exc
            except OSError as exc:
                raise _fail(path, f"read error ({exc})") from exc
            if data.shape[0] == 0:
                break
            bad = None if dtype == "int16" else first_bad_sample(data)  # int16 values are always accepted
            if bad is not None:
                at = self.frames_read + bad
                raise _fail(path, f"contains {bad_sample_reason(bad_sample_value(data, bad), at, self.rate_hz)}")
            self.frames_read += data.shape[0]
            if mono:
                yield data
            else:
                mixed = data.mean(axis=1)
                yield mixed if dtype == "float64" else mixed.astype(np.float32)
        why = _truncation(self._info, self.frames_declared, self.frames_read, self._is_mp3)
        if why:
            raise _fail(path, why)
        if self.frames_read == 0 and not self._allow_empty:
            raise _fail(path, "contains no audio samples (empty)")

    def close(self) -> None:
        self._sound.close()
        self._handle.close()

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_audio(
    path: str | os.PathLike, target_rate_hz: int | None = None, allow_empty: bool = False
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono samples in [-1, 1].

    Args:
        path: the file (WAV, FLAC, Ogg Vorbis/Opus, MP3, or any format libsndfile reads).
        target_rate_hz: resample to this rate (soxr); None keeps the file's own rate.
        allow_empty: a well-formed file holding 0 samples gives an empty array instead of
            an error (a 0-byte file is always an error: it is not a well-formed file).

    Returns:
        (samples, rate_hz): float32 1-D array (channels averaged) and its sample rate.

    Raises:
        AudioFileError: the file is missing, a directory, unreadable, empty, truncated, not audio,
            or holds a rejected sample (the message gives its position: sample and seconds).
        InvalidInputError: path or target_rate_hz has the wrong type or value.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if target_rate_hz is not None:
        target_rate_hz = _check_rate(target_rate_hz, "target_rate_hz")
    with AudioReader(path, allow_empty) as reader:
        rate = reader.rate_hz
        parts = list(reader.blocks(_WHOLE_FILE_BLOCK_FRAMES))
    mono = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)
    if target_rate_hz is None or target_rate_hz == rate:
        return mono.astype(np.float32), rate
    if mono.size == 0:
        return np.zeros(0, dtype=np.float32), target_rate_hz
    resampled = soxr.resample(mono, rate, target_rate_hz, quality=RESAMPLE_QUALITY)
    return _resampled_output(resampled), target_rate_hz


class StreamResampler:
    """Resample a live mono stream chunk by chunk (soxr.ResampleStream, float64 inside).

    Output sample ``j`` (counted from the start of the stream) is the signal at input sample
    position ``input_position(j) = j * in_rate_hz / out_rate_hz``: soxr compensates its filter
    delay, so nothing needs to be subtracted. After ``flush()`` the concatenated output equals
    ``resample(whole_input, in_rate_hz, out_rate_hz)`` exactly. Until then up to
    ``latency_samples`` output samples are held back waiting for future input. When the rates
    are equal the stream is an exact pass-through with no latency.

    Attributes:
        in_rate_hz, out_rate_hz: the two rates.
        samples_in: input samples received since the start (or ``reset()``).
        samples_out: output samples returned since the start (or ``reset()``).
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        self.in_rate_hz = _check_rate(in_rate_hz, "in_rate_hz")
        self.out_rate_hz = _check_rate(out_rate_hz, "out_rate_hz")
        self._ratio = Fraction(self.in_rate_hz, self.out_rate_hz)
        self._stream = (
            None if self.in_rate_hz == self.out_rate_hz
            else soxr.ResampleStream(self.in_rate_hz, self.out_rate_hz, 1, dtype="float64",
                                     quality=RESAMPLE_QUALITY)
        )
        self.reset()

    def reset(self) -> None:
        """Start a new stream (drops anything held back)."""
        if self._stream is not None:
            self._stream.clear()
        self.samples_in = 0
        self.samples_out = 0
        self._flushed = False

    @property
    def latency_samples(self) -> int:
        """Output samples due for the input received so far but not yet returned."""
        due = int(self.samples_in / self._ratio) if self._stream is not None else self.samples_in
        return max(0, due - self.samples_out)

    def input_position(self, output_index: int | np.ndarray) -> Fraction | np.ndarray:
        """Input sample position (fractional) of output sample(s) ``output_index``.

        A plain int gives an exact ``Fraction``; an integer array gives float64 positions.
        """
        if isinstance(output_index, np.ndarray):
            if output_index.dtype.kind not in "iu":
                raise InvalidInputError(f"output_index must hold integers, got dtype {output_index.dtype}")
            return output_index.astype(np.float64) * self.in_rate_hz / self.out_rate_hz
        if isinstance(output_index, bool) or not isinstance(output_index, (int, np.integer)):
            raise InvalidInputError(f"output_index must be an integer, got {output_index!r}")
        return Fraction(int(output_index)) * self._ratio

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed one chunk (1-D float, int16 or int32 PCM, any length); return new float32 output.

        A rejected chunk (``vad.core.features``' sample contract) raises InvalidInputError and
        leaves the stream as it was.
        """
        if self._flushed:
            raise StreamStateError("StreamResampler.process() after flush(); call reset() to start a new stream")
        x = as_float64_samples(chunk, "chunk")
        self.samples_in += x.size
        if self._stream is None:
            out = x.astype(np.float32)
        else:
            out = _resampled_output(self._stream.resample_chunk(x, last=False))
        self.samples_out += out.size
        return out

    def flush(self) -> np.ndarray:
        """End the stream: return the held-back output. process() then needs reset() first."""
        if self._flushed:
            raise StreamStateError("StreamResampler.flush() called twice; call reset() to start a new stream")
        self._flushed = True
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        out = _resampled_output(self._stream.resample_chunk(np.zeros(0, dtype=np.float64), last=True))
        self.samples_out += out.size
        return out
