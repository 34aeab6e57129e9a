"""Live microphone input for the streaming engine (sounddevice / PortAudio).

Three pieces, each with one job:

* device lookup: ``list_input_devices``, ``find_input_device`` (index or name), and
  ``choose_sample_rate`` (the model's rate when the device offers it, else the device's
  native rate; ``StreamingVAD`` resamples). Problems raise ``InvalidInputError`` with the
  list of input devices in the message.
* ``MicrophoneSource``: a ``sounddevice.InputStream`` whose callback only copies each block
  into a queue (and counts overflows); it can stop itself after an exact number of
  samples (``max_samples``), so a duration is measured in audio, not wall-clock, time.
* ``SpeechListener``: the processing thread. It drains the queue, runs ``StreamingVAD`` on
  every block, and reports frames (input level, probability, speech state) and speech
  events to callbacks; ``SpeechClipBuffer`` keeps enough recent audio to return each
  segment's samples (padding included) when it ends.

    >>> source = MicrophoneSource(device="default", sample_rate=16000)
    >>> listener = SpeechListener(source, StreamingVAD(sample_rate=16000), on_event=print)
    >>> listener.start(); ...; listener.stop(); listener.join()

Needs the ``mic`` extra (sounddevice) and the PortAudio library (``libportaudio2``).
"""

from __future__ import annotations

import dataclasses
import math
import queue
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from vad.core.errors import InvalidInputError, MissingDependencyError, require

BLOCK_SECONDS = 0.02  # PortAudio block size: 20 ms keeps latency low and callbacks cheap
QUEUE_SECONDS = 30.0  # audio held while the processing thread catches up (then the callback waits)
_FULL_QUEUE_WAIT_S = 0.05  # a callback facing a full queue re-checks for stop() this often
_INT16_FULL_SCALE = 32768.0
_SILENCE_DBFS = -120.0  # level reported for digital silence


def sounddevice():
    """Import sounddevice, or raise MissingDependencyError naming what to install."""
    try:
        return require("sounddevice", "mic", "listening to a microphone")
    except OSError as exc:  # sounddevice imports but finds no PortAudio library
        raise MissingDependencyError(
            f"listening to a microphone needs the PortAudio library ({exc}): "
            "install it with `apt-get install libportaudio2` (Debian/Ubuntu) or `brew install portaudio`"
        ) from exc


# --- devices ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InputDevice:
    """An audio input device as PortAudio lists it."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate_hz: float
    is_default: bool = False


def list_input_devices() -> list[InputDevice]:
    """All devices with at least one input channel."""
    sd = sounddevice()
    try:
        devices = sd.query_devices()
        hostapis = sd.query_hostapis()
    except sd.PortAudioError as exc:
        raise InvalidInputError(f"cannot list audio devices: {exc}") from exc
    try:
        default_in = int(sd.default.device[0])
    except (TypeError, ValueError, IndexError):
        default_in = -1
    out = []
    for d in devices:
        if int(d["max_input_channels"]) < 1:
            continue
        api = hostapis[d["hostapi"]]["name"] if 0 <= d["hostapi"] < len(hostapis) else "?"
        out.append(
            InputDevice(
                index=int(d["index"]),
                name=str(d["name"]),
                hostapi=str(api),
                max_input_channels=int(d["max_input_channels"]),
                default_samplerate_hz=float(d["default_samplerate"]),
                is_default=int(d["index"]) == default_in,
            )
        )
    return out


def format_device_list(devices: list[InputDevice]) -> str:
    """A table of input devices ("*" marks the default one)."""
    if not devices:
        return "no audio input devices found"
    lines = ["  id  name (host API, input channels, default rate)"]
    for d in devices:
        mark = "*" if d.is_default else " "
        lines.append(
            f"{mark}{d.index:3d}  {d.name} ({d.hostapi}, {d.max_input_channels} in, {d.default_samplerate_hz:g} Hz)"
        )
    return "\n".join(lines)


def _device_error(message: str, devices: list[InputDevice] | None = None) -> InvalidInputError:
    if devices is None:
        try:
            devices = list_input_devices()
        except InvalidInputError:
            devices = []
    return InvalidInputError(f"{message}\ninput devices:\n{format_device_list(devices)}")


def find_input_device(device: int | str | None = None) -> InputDevice:
    """The input device named by index, exact name, or unique case-insensitive name part.

    None means the system's default input device.
    """
    devices = list_input_devices()
    if not devices:
        raise _device_error(
            "no audio input device found (is a microphone connected, and can this user open it?)", devices
        )
    if device is None:
        defaults = [d for d in devices if d.is_default]
        return defaults[0] if defaults else devices[0]
    if isinstance(device, int) or (isinstance(device, str) and device.strip().lstrip("-").isdigit()):
        index = int(device)
        for d in devices:
            if d.index == index:
                return d
        raise _device_error(f"no input device with id {index}", devices)
    if not isinstance(device, str):
        raise InvalidInputError(f"device={device!r}: must be an id (int) or a name (str)")
    exact = [d for d in devices if d.name == device]
    if exact:
        return exact[0]
    partial = [d for d in devices if device.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = ", ".join(repr(d.name) for d in partial)
        raise _device_error(f"input device name {device!r} is ambiguous: it matches {names}", devices)
    raise _device_error(f"no input device named {device!r}", devices)


def supports_rate(device: InputDevice, sample_rate: int) -> bool:
    sd = sounddevice()
    try:
        sd.check_input_settings(device=device.index, samplerate=sample_rate, channels=1, dtype="int16")
    except Exception:  # PortAudioError or ValueError, depending on what PortAudio rejects
        return False
    return True


def choose_sample_rate(device: InputDevice, preferred_hz: int, required: bool = False) -> int:
    """``preferred_hz`` if the device offers it, else the device's native rate.

    With ``required`` (the user asked for that rate) an unsupported rate is an error.
    """
    if supports_rate(device, preferred_hz):
        return int(preferred_hz)
    if required:
        raise _device_error(f"input device {device.index} ({device.name!r}) does not support {preferred_hz} Hz")
    native = int(round(device.default_samplerate_hz))
    if native > 0 and supports_rate(device, native):
        return native
    raise _device_error(
        f"input device {device.index} ({device.name!r}) accepts neither {preferred_hz} Hz nor its default {native} Hz"
    )


# --- capture ------------------------------------------------------------------------------


class MicrophoneSource:
    """Mono int16 blocks from an input device through a queue.

    The PortAudio callback copies the block into the queue, counts overflows, and stops
    the stream once ``max_samples`` samples have been delivered (exactly: the last block
    is cut). ``read`` returns the next block, or None when the stream has ended and the
    queue is empty.

    When the queue is full (the processing thread is ``queue_seconds`` behind) the
    callback waits for room instead of dropping audio: a real device then overflows
    (counted in ``overflows``), and a source faster than real time (a file played as a
    virtual microphone) is paced by the processing, losing nothing. Blocks that arrive
    while ``stop`` is under way are dropped and counted in ``dropped_samples``.

    Args:
        device: an ``InputDevice`` (see ``find_input_device``).
        sample_rate: capture rate in Hz (see ``choose_sample_rate``).
        max_samples: stop after this many samples (None: until ``stop``).
        block_samples: samples per callback (default ``BLOCK_SECONDS`` of audio).
        queue_seconds: audio the queue may hold before the callback waits for room.
    """

    def __init__(
        self,
        device: InputDevice,
        sample_rate: int,
        max_samples: int | None = None,
        block_samples: int | None = None,
        queue_seconds: float = QUEUE_SECONDS,
    ):
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
            raise InvalidInputError(f"sample_rate={sample_rate!r}: must be an integer >= 1")
        if max_samples is not None and (not isinstance(max_samples, int) or max_samples < 0):
            raise InvalidInputError(f"max_samples={max_samples!r}: must be an integer >= 0 or None")
        self.device = device
        self.sample_rate = sample_rate
        self.block_samples = block_samples or max(1, int(round(BLOCK_SECONDS * sample_rate)))
        self.max_samples = max_samples
        self.samples_received = 0
        self.overflows = 0  # PortAudio input overflows (audio lost by the driver)
        self.dropped_samples = 0  # samples that arrived while stopping, with the queue full
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(queue_seconds * sample_rate / self.block_samples)))
        self._finished = threading.Event()
        self._stopping = threading.Event()
        self._stream: Any = None
        self._sd = sounddevice()

    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overflows += 1
        n = frames
        if self.max_samples is not None:
            n = min(frames, self.max_samples - self.samples_received)
        if n > 0:
            block = indata[:n, 0].copy()
            while True:
                try:
                    self._queue.put(block, timeout=_FULL_QUEUE_WAIT_S)
                    self.samples_received += n
                    break
                except queue.Full:
                    if self._stopping.is_set():
                        self.dropped_samples += n
                        break
        if self.max_samples is not None and self.samples_received >= self.max_samples:
            raise self._sd.CallbackStop

    def start(self) -> None:
        sd = self._sd
        if self.max_samples == 0:
            self._finished.set()
            return
        try:
            self._stream = sd.InputStream(
                device=self.device.index,
                samplerate=self.sample_rate,
                channels=1,
                dtype="int16",
                blocksize=self.block_samples,
                callback=self._callback,
                finished_callback=self._finished.set,
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise _device_error(
                f"cannot open input device {self.device.index} ({self.device.name!r}) at {self.sample_rate} Hz "
                f"(busy, unplugged, or rate not supported): {exc}"
            ) from exc

    def read(self, timeout_s: float = 0.1) -> np.ndarray | None:
        """The next block (int16 [n]); an empty array on timeout; None at end of stream."""
        try:
            return self._queue.get(timeout=timeout_s)
        except queue.Empty:
            if self._finished.is_set() and self._queue.empty():
                return None
            return np.zeros(0, dtype=np.int16)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def stop(self) -> None:
        """Stop capturing (idempotent); blocks already queued can still be read."""
        self._stopping.set()  # a callback waiting for queue room gives up
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()
        self._finished.set()


# --- processing ---------------------------------------------------------------------------


class SpeechClipBuffer:
    """Recent input samples, so a segment's audio can be cut out when its end event arrives.

    Keeps at least ``lookback_samples`` before the newest sample, and everything since the
    start of an open segment.
    """

    def __init__(self, lookback_samples: int):
        self.lookback_samples = int(lookback_samples)
        self._blocks: list[np.ndarray] = []
        self._first_sample = 0  # stream position of self._blocks[0][0]
        self._size = 0
        self._hold_from: int | None = None

    def append(self, block: np.ndarray) -> None:
        if block.size:
            self._blocks.append(block)
            self._size += block.size
        self._trim()

    def hold(self, start_sample: int | None) -> None:
        """Keep samples from start_sample on (an open segment); None releases."""
        self._hold_from = start_sample
        self._trim()

    def clip(self, start_sample: int, end_sample: int) -> np.ndarray:
        """Samples [start_sample, end_sample) as far as still held."""
        data = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.int16)
        a = max(0, start_sample - self._first_sample)
        b = max(a, min(data.size, end_sample - self._first_sample))
        return data[a:b]

    def _trim(self) -> None:
        end = self._first_sample + self._size
        keep_from = end - self.lookback_samples
        if self._hold_from is not None:
            keep_from = min(keep_from, self._hold_from)
        while self._blocks and self._first_sample + self._blocks[0].size <= keep_from:
            b = self._blocks.pop(0)
            self._first_sample += b.size
            self._size -= b.size


@dataclasses.dataclass(frozen=True)
class LiveStatus:
    """What the processing thread reports after each block.

    Attributes:
        t_s: audio time received so far (seconds of the input stream).
        level_dbfs: RMS level of the block in dB full scale.
        probability: speech probability of the newest frame (NaN before the first frame).
        speaking: whether a speech segment is open.
    """

    t_s: float
    level_dbfs: float
    probability: float
    speaking: bool


def level_dbfs(block: np.ndarray) -> float:
    """RMS level of an int16 block in dB full scale (``_SILENCE_DBFS`` for silence)."""
    if block.size == 0:
        return _SILENCE_DBFS
    x = block.astype(np.float64) / _INT16_FULL_SCALE
    rms = math.sqrt(float(np.mean(x * x)))
    return max(_SILENCE_DBFS, 20.0 * math.log10(rms)) if rms > 0 else _SILENCE_DBFS


class SpeechListener(threading.Thread):
    """The processing thread: source blocks -> StreamingVAD -> callbacks.

    Args:
        source: a started-or-not ``MicrophoneSource`` (or anything with ``read`` /
            ``start`` / ``stop`` / ``sample_rate``).
        vad: a fresh ``StreamingVAD`` at ``source.sample_rate``.
        on_event: called with each speech event (``runtime.engine.SpeechEvent``) and, for
            "end" events, the segment's int16 samples (None unless ``keep_clips``).
        on_status: called with a ``LiveStatus`` after each block.
        keep_clips: keep audio so that end events come with their samples.
        clip_lookback_s: audio kept before an open segment is known (must cover the
            padding plus the delay of the start event).

    The thread ends when the source ends (``max_samples`` reached, or the stream stops),
    or after ``stop()``; it then flushes the stream, closing an open segment. An exception
    in the thread is kept in ``error`` (re-raised by ``raise_error``).
    """

    def __init__(
        self,
        source,
        vad,
        on_event: Callable[[Any, np.ndarray | None], None] | None = None,
        on_status: Callable[[LiveStatus], None] | None = None,
        keep_clips: bool = False,
        clip_lookback_s: float = 5.0,
    ):
        super().__init__(name="vad-listen", daemon=True)
        if vad.sample_rate != source.sample_rate:
            raise InvalidInputError(
                f"the StreamingVAD runs at {vad.sample_rate} Hz but the source delivers {source.sample_rate} Hz"
            )
        self.source = source
        self.vad = vad
        self.on_event = on_event
        self.on_status = on_status
        self.clips = SpeechClipBuffer(int(clip_lookback_s * source.sample_rate)) if keep_clips else None
        self.samples_processed = 0
        self.segments = 0
        self.speech_samples = 0
        self.error: BaseException | None = None
        self._stop_requested = threading.Event()
        self._done = threading.Event()
        self._speaking = False
        self._last_probability = float("nan")

    def stop(self) -> None:
        """Ask the thread to end (it flushes and returns soon after)."""
        self._stop_requested.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the thread has finished its work (flush included); True when it has.

        Use this rather than ``join(timeout)`` in a thread that may get Ctrl-C: CPython
        (3.11) marks a thread as stopped when a ``join`` is interrupted by
        KeyboardInterrupt, so a later ``join()`` would return before the flush.
        """
        return self._done.wait(timeout_s)

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._done.set()

    def _run(self) -> None:
        try:
            while not self._stop_requested.is_set():
                block = self.source.read(0.05)
                if block is None:
                    break
                if block.size == 0:
                    continue
                self._process(block)
            self.source.stop()
            # blocks already received still count (Ctrl-C keeps what was heard)
            while True:
                block = self.source.read(0.0)
                if block is None or block.size == 0:
                    break
                self._process(block)
            self._handle(self.vad.flush())
        except BaseException as exc:  # reported by the caller's thread
            self.error = exc
            try:
                self.source.stop()
            except Exception:
                pass

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def _process(self, block: np.ndarray) -> None:
        if self.clips is not None:
            self.clips.append(block)
        self.samples_processed += block.size
        self._handle(self.vad.process(block))
        if self.on_status is not None:
            self.on_status(
                LiveStatus(
                    t_s=self.samples_processed / self.source.sample_rate,
                    level_dbfs=level_dbfs(block),
                    probability=self._last_probability,
                    speaking=self._speaking,
                )
            )

    def _handle(self, result) -> None:
        if len(result.probabilities):
            self._last_probability = float(result.probabilities[-1])
        for ev in result.events:
            clip = None
            if ev.kind == "start":
                self._speaking = True
                if self.clips is not None:
                    self.clips.hold(ev.start_sample)
            elif ev.kind == "end":
                self._speaking = False
                self.segments += 1
                self.speech_samples += ev.end_sample - ev.start_sample
                if self.clips is not None:
                    clip = self.clips.clip(ev.start_sample, ev.end_sample)
                    self.clips.hold(None)
            if self.on_event is not None:
                self.on_event(ev, clip)
