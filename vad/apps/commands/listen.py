"""`vad listen`: detect speech live on a microphone."""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from pathlib import Path

NAME = "listen"
HELP = "detect speech live on a microphone (live level/probability line, segments, JSON events)"

_EPILOG = """\
examples:
  vad listen                          # default input device, Ctrl-C to stop
  vad listen --list-devices
  vad listen --device 2 --json | my-program
  vad listen --record-speech clips/ --duration 60

--duration counts audio time (samples received), not wall-clock time.
With --json, stdout carries one JSON object per event and nothing else:
  {"event": "start", "t_s": 1.23, "start_s": 1.23}
  {"event": "end", "t_s": 2.5, "start_s": 1.23, "end_s": 2.5, "duration_s": 1.27, "probability": 0.91}
"""

_LIVE_REDRAW_S = 0.1  # the live line is redrawn at most 10 times a second
_LEVEL_BAR_DB = 60.0  # the level bar spans -60 .. 0 dBFS
_LEVEL_BAR_WIDTH = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vad.apps.commands.label import add_postprocess_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("--device", metavar="ID|NAME", help="input device id or (part of its) name")
    parser.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    parser.add_argument(
        "--sample-rate", type=int, metavar="R",
        help="capture rate in Hz (default: the model's rate if the device offers it, else the device's own)",
    )  # fmt: skip
    parser.add_argument("--model", metavar="M", help="exported .onnx model (default: the shipped default model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per speech event on stdout")
    parser.add_argument("--record-speech", metavar="DIR", help="save each speech segment (with padding) as a wav file")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    parser.add_argument("--no-prime", action="store_true",
                        help="first probabilities at once, from the zero state (default: the stream is primed on "
                        "its first 400 ms, which the first results wait for; vad.core.priming)")
    add_postprocess_arguments(parser)


def _round(x: float) -> float:
    return round(float(x), 4)


def event_json(ev, clip_path: str | None = None) -> dict:
    """The --json object of a speech event."""
    if ev.kind == "start":
        return {"event": "start", "t_s": _round(ev.start_s), "start_s": _round(ev.start_s)}
    d = {
        "event": "end",
        "t_s": _round(ev.end_s),
        "start_s": _round(ev.start_s),
        "end_s": _round(ev.end_s),
        "duration_s": _round(ev.end_s - ev.start_s),
        "probability": None if ev.mean_probability is None else _round(ev.mean_probability),
    }
    if clip_path is not None:
        d["file"] = clip_path
    return d


def write_wav_atomic(path: Path, samples, sample_rate: int) -> None:
    """Write int16 mono samples as a 16-bit wav, atomically."""
    import soundfile as sf

    from vad.core.atomicfile import atomic_output

    with atomic_output(path, "wb") as fh:
        sf.write(fh, samples, sample_rate, subtype="PCM_16", format="WAV")


class _Console:
    """Everything `vad listen` prints: the live line (stderr, terminals only), segment lines
    (stdout) or JSON events (stdout, nothing else), messages (stderr)."""

    def __init__(self, json_mode: bool):
        self.json_mode = json_mode
        self.live = _isatty(sys.stderr)
        self._lock = threading.Lock()
        self._last_draw = 0.0
        self._line_shown = False

    @property
    def stdout_closed(self) -> bool:
        """The reader of stdout went away (e.g. `| head`): the CLI's stdout guard drops the rest."""
        from vad.apps.cli import stdout_reader_gone

        return stdout_reader_gone()

    def status(self, st) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if now - self._last_draw < _LIVE_REDRAW_S:
            return
        self._last_draw = now
        with self._lock:
            sys.stderr.write("\r" + live_line(st) + "\x1b[K")
            sys.stderr.flush()
            self._line_shown = True

    def _clear(self) -> None:
        if self._line_shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self._line_shown = False
            self._last_draw = 0.0  # redraw at the next status, not a throttle period later

    def event(self, ev, clip_path: str | None) -> None:
        with self._lock:
            if self.stdout_closed:
                return
            if self.json_mode:
                text = json.dumps(event_json(ev, clip_path)) + "\n"
            elif ev.kind == "end":
                self._clear()
                prob = "" if ev.mean_probability is None else f"  p={ev.mean_probability:.2f}"
                saved = f"  -> {clip_path}" if clip_path else ""
                text = f"speech {_clock(ev.start_s)} - {_clock(ev.end_s)}  ({ev.end_s - ev.start_s:.2f} s){prob}{saved}\n"
            else:
                return
            sys.stdout.write(text)
            sys.stdout.flush()  # a reader that went away is seen here (stdout_closed)

    def message(self, text: str) -> None:
        with self._lock:
            self._clear()
            sys.stderr.write(text + "\n")
            sys.stderr.flush()


def live_line(st) -> str:
    """`  12.3 s  -23.4 dBFS [#######.....]  p=0.87  SPEECH`"""
    level = st.level_dbfs
    filled = int(round(min(max((level + _LEVEL_BAR_DB) / _LEVEL_BAR_DB, 0.0), 1.0) * _LEVEL_BAR_WIDTH))
    bar = "#" * filled + "." * (_LEVEL_BAR_WIDTH - filled)
    prob = "p=----" if math.isnan(st.probability) else f"p={st.probability:.2f}"
    state = "SPEECH " if st.speaking else "silence"
    return f"{_clock(st.t_s)}  {level:6.1f} dBFS [{bar}]  {prob}  {state}"


def _clock(t_s: float) -> str:
    m, s = divmod(max(t_s, 0.0), 60.0)
    return f"{int(m)}:{s:06.3f}"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def prepare_record_dir(arg: str) -> Path:
    """The --record-speech folder, created if needed; InvalidInputError naming it when it is a
    file, cannot be created or is not writable (checked before the microphone opens)."""
    import os

    from vad.core.errors import InvalidInputError

    path = Path(arg)
    if path.exists() and not path.is_dir():
        raise InvalidInputError(f"--record-speech {arg}: exists and is not a folder; give a folder for the speech clips")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"--record-speech {arg}: cannot create the folder ({exc.strerror or exc})") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise InvalidInputError(f"--record-speech {arg}: the folder is not writable")
    return path


def unused_clip_path(folder: Path, stem: str) -> Path:
    """``folder/stem.wav``, or ``stem-2.wav``, ... when that name is taken: clips never replace a file."""
    path = folder / f"{stem}.wav"
    n = 1
    while path.exists() or path.is_symlink():
        n += 1
        path = folder / f"{stem}-{n}.wav"
    return path


def run(args) -> int:
    from vad.core.errors import AudioFileError, InvalidInputError

    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise InvalidInputError(f"--duration {args.duration}: must be a positive number of seconds")
    if args.sample_rate is not None and args.sample_rate < 1:
        raise InvalidInputError(f"--sample-rate {args.sample_rate}: must be a positive integer (Hz)")
    record_dir = None if args.list_devices or not args.record_speech else prepare_record_dir(args.record_speech)

    from vad.runtime import microphone

    if args.list_devices:
        print(microphone.format_device_list(microphone.list_input_devices()))
        return 0

    from vad.apps.commands.label import model_path_from_args, postprocess_from_args
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import VADModel

    model = VADModel(model_path_from_args(args.model))
    postprocess = postprocess_from_args(args, model.metadata.postprocess)
    device = microphone.find_input_device(args.device)
    model_rate = model.metadata.feature_spec.sample_rate_hz
    rate = microphone.choose_sample_rate(
        device, args.sample_rate or model_rate, required=args.sample_rate is not None
    )

    max_samples = None if args.duration is None else int(round(args.duration * rate))
    source = microphone.MicrophoneSource(device, rate, max_samples=max_samples)
    vad = StreamingVAD(model=model, sample_rate=rate, postprocess=postprocess, prime=not args.no_prime)
    console = _Console(args.json)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    def on_event(ev, clip) -> None:
        clip_path = None
        if ev.kind == "end" and record_dir is not None and clip is not None:
            path = unused_clip_path(record_dir, f"speech-{stamp}-{ev.start_s:010.3f}s")
            try:
                write_wav_atomic(path, clip, rate)
            except OSError as exc:  # disk full, folder removed while listening, ...
                raise AudioFileError(f"--record-speech: cannot write {path} ({exc.strerror or exc})") from exc
            clip_path = str(path)
        console.event(ev, clip_path)
        if console.stdout_closed:
            listener.stop()

    pad_s = postprocess.speech_pad_ms / 1000.0
    lookback_s = 2.0 + pad_s + postprocess.min_speech_ms / 1000.0 + postprocess.min_silence_ms / 1000.0
    listener = microphone.SpeechListener(
        source, vad, on_event=on_event, on_status=console.status,
        keep_clips=record_dir is not None, clip_lookback_s=lookback_s,
    )  # fmt: skip
    note = "" if rate == model_rate else f" (resampled to {model_rate} Hz)"
    until = f"{args.duration:g} s of audio" if args.duration else "Ctrl-C"
    console.message(
        f"vad listen: device {device.index} ({device.name}) at {rate} Hz{note}, model {model.metadata.name}; "
        f"until {until}"
    )
    interrupted = False
    try:
        source.start()
        listener.start()
        while not listener.wait(0.2):
            pass
    except KeyboardInterrupt:
        interrupted = True
        listener.stop()
        if listener.ident is not None:
            listener.wait()  # it flushes the stream: an open segment is closed and reported
        else:
            source.stop()
    listener.raise_error()
    heard_s = listener.samples_processed / rate
    speech_s = listener.speech_samples / rate
    lost = f", {source.dropped_samples / rate:.2f} s dropped while stopping" if source.dropped_samples else ""
    console.message(
        f"vad listen: {'interrupted; ' if interrupted else ''}"
        f"{'stdout closed; ' if console.stdout_closed else ''}{heard_s:.2f} s of audio, "
        f"{listener.segments} speech segment{'s' if listener.segments != 1 else ''}, {speech_s:.2f} s of speech, "
        f"{source.overflows} input overflow{'s' if source.overflows != 1 else ''}{lost}"
    )
    return 0
