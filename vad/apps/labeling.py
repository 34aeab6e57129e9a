"""Label audio files with speech segments: the Python API behind ``vad label``.

Batch labeling IS the streaming engine run over a file: ``label_file`` decodes the file at
its own rate, feeds the samples through ``runtime.StreamingVAD`` in large chunks and
flushes it, so a file gives exactly the segments a live stream of the same samples gives.

>>> from vad.apps.labeling import label_file
>>> result = label_file("meeting.flac")            # the shipped default model
>>> [(s.start_s, s.end_s, s.score) for s in result.segments]
>>> result.probabilities                           # float32, one per 10 ms frame

``label_files`` does the same for many files (``vad label``): it finds audio files in
folders and globs, writes one label file per input (atomically), skips inputs whose output
already exists, runs several worker processes (one model per process), and reports
unreadable files without stopping the others.

Decisions:

* A file soundfile decodes to 0 samples ("empty audio") and a silent file give an empty
  segment list. A 0-byte file, a corrupt or truncated file, a file that is not audio and a
  file that cannot be opened (permission denied) are errors (``AudioFileError``), reported
  per file.
* Output names: ``<stem>.<ext>`` (``.rttm``, ``.txt`` for Audacity, ``.csv``, ``.json``).
  With ``outdir`` the input tree is mirrored below ``outdir`` relative to the common folder
  of all inputs, so ``a/x.wav`` and ``b/x.wav`` give ``outdir/a/x.rttm`` and
  ``outdir/b/x.rttm``. Without ``outdir`` each output goes next to its input. Inputs that
  still collide (``x.wav`` and ``x.flac`` in one folder) keep their audio suffix:
  ``x.wav.rttm`` and ``x.flac.rttm``.
* Folders are searched recursively for files with an audio suffix (``AUDIO_SUFFIXES``), in
  sorted order; a file named explicitly is labeled whatever its suffix; glob patterns
  (``*``, ``?``, ``[``, ``**``) are expanded like folders' contents (audio suffixes only).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vad.core.errors import InvalidInputError, VADError
from vad.core.postprocess import PostprocessConfig

if TYPE_CHECKING:
    from vad.core.labelfiles import Segment

AUDIO_SUFFIXES = frozenset(
    {
        ".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc",
        ".au", ".snd", ".caf", ".w64", ".rf64", ".voc", ".sd2", ".mat", ".htk", ".pvf", ".xi",
    }
)  # fmt: skip
FORMAT_SUFFIXES = {"rttm": ".rttm", "audacity": ".txt", "csv": ".csv", "json": ".json"}
FORMATS = tuple(FORMAT_SUFFIXES)
# Samples handed to the engine per call: large enough that per-call overhead vanishes,
# small enough that the engine's per-call buffers stay a few MB.
_GLOB_CHARS = frozenset("*?[")
_PROBABILITY_DECIMALS = 4
_TIME_DECIMALS = 6  # microseconds: exact for 8/16/32/48 kHz sample positions to the sample
_HASH_BLOCK_BYTES = 1 << 20


# --- results ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LabelResult:
    """What labeling one audio file gives.

    Attributes:
        path: the audio file.
        segments: speech segments (``vad.core.labelfiles.Segment``; ``score`` = mean speech
            probability of the segment), in time order.
        probabilities: float32 speech probability per frame (frame i covers
            ``[i * frame_hop_s, (i + 1) * frame_hop_s)`` of the file).
        frame_hop_s: frame hop in seconds.
        duration_s: length of the audio.
        sample_rate: the file's own sample rate in Hz (the engine resamples to the model's).
        model_name: the model's name (from its metadata).
        model_sha256: SHA-256 of the model file (hex).
        postprocess: the post-processing options used.
    """

    path: Path
    segments: tuple[Segment, ...]
    probabilities: np.ndarray
    frame_hop_s: float
    duration_s: float
    sample_rate: int
    model_name: str
    model_sha256: str
    postprocess: PostprocessConfig

    @property
    def speech_s(self) -> float:
        return float(sum(s.duration_s for s in self.segments))

    def to_dict(self, probabilities: bool = False) -> dict[str, Any]:
        """The JSON form written by ``vad label --format json``."""
        d: dict[str, Any] = {
            "file": str(self.path),
            "duration_s": self.duration_s,
            "sample_rate": self.sample_rate,
            "model": {"name": self.model_name, "sha256": self.model_sha256},
            "frame_hop_s": self.frame_hop_s,
            "postprocess": self.postprocess.to_dict(),
            "segments": [
                {
                    "start_s": round(s.start_s, _TIME_DECIMALS),
                    "end_s": round(s.end_s, _TIME_DECIMALS),
                    "probability": None if s.score is None else round(s.score, _PROBABILITY_DECIMALS),
                }
                for s in self.segments
            ],
        }
        if probabilities:
            d["probabilities"] = [round(float(p), _PROBABILITY_DECIMALS) for p in self.probabilities]
        return d


def format_result(result: LabelResult, fmt: str, probabilities: bool = False, file_id: str | None = None) -> str:
    """The text of a label file in format fmt (rttm, audacity, csv, json)."""
    from vad.core import labelfiles as labels

    if fmt == "rttm":
        return labels.format_rttm(list(result.segments), _rttm_file_id(file_id or result.path.stem))
    if fmt == "audacity":
        return labels.format_audacity(list(result.segments))
    if fmt == "csv":
        return labels.format_csv(list(result.segments))
    if fmt == "json":
        return _json_text(result.to_dict(probabilities))
    raise InvalidInputError(f"format={fmt!r}: must be one of {', '.join(FORMATS)}")


def _rttm_file_id(stem: str) -> str:
    """RTTM fields are whitespace-separated: spaces in a file name become underscores."""
    return "_".join(stem.split()) or "audio"


def _json_text(data: dict[str, Any]) -> str:
    """Indented JSON, with the (long) probability list kept on one line."""
    probs = data.pop("probabilities", None)
    text = json.dumps(data, indent=2)
    if probs is None:
        return text + "\n"
    return text[:-2] + ',\n  "probabilities": ' + json.dumps(probs, separators=(",", ":")) + "\n}\n"


# --- model and engine ----------------------------------------------------------------------


class _LoadedModel:
    """A loaded model plus what labeling reports about it (name, file hash, defaults)."""

    def __init__(self, model: Any = None):
        from vad.runtime.model import VADModel

        if isinstance(model, VADModel):
            self.model = model
        else:
            self.model = _load_vad_model(model)
        self.metadata = self.model.metadata
        self.path = Path(self.model.path)
        self.name = self.metadata.name
        self.sha256 = _sha256_file(self.path)

    def postprocess(self, postprocess: PostprocessConfig | None) -> PostprocessConfig:
        return postprocess if postprocess is not None else self.metadata.postprocess


def _load_vad_model(model: Any):
    from vad.runtime.model import VADModel

    if model is None or isinstance(model, (str, os.PathLike)):
        return VADModel(None if model is None else Path(model))
    raise InvalidInputError(f"model={model!r}: must be None, a path to an .onnx model, or a runtime.VADModel")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_BLOCK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def events_to_segments(events: Iterable[Any]) -> list[Segment]:
    """Completed segments (the engine's "end" events) as vad.core.labelfiles.Segment."""
    from vad.core.labelfiles import Segment

    return [Segment(ev.start_s, ev.end_s, score=ev.mean_probability) for ev in events if ev.kind == "end"]


def _run_stream(loaded: _LoadedModel, samples: np.ndarray, sample_rate: int, cfg: PostprocessConfig):
    """The file's samples through a fresh StreamingVAD; (probabilities, events)."""
    from vad.runtime.engine import StreamingVAD

    result = StreamingVAD(model=loaded.model, sample_rate=sample_rate, postprocess=cfg).process_signal(samples)
    return result.probabilities, result.events


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Decode a whole file to float32 mono at its own rate (AudioFileError names the reason).

    A well-formed file with 0 samples ("empty audio") gives an empty array: it has no
    speech, which is an answer, not an error.
    """
    from vad.core.audio import load_audio

    samples, rate = load_audio(path, None, allow_empty=True)
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def label_file(
    path: str | os.PathLike,
    model: Any = None,
    postprocess: PostprocessConfig | None = None,
) -> LabelResult:
    """Label one audio file: speech segments and per-frame probabilities.

    Args:
        path: any file soundfile reads (wav, flac, ogg/opus, mp3, ...), any rate and
            channel count (channels are averaged).
        model: None (the shipped default model), a path to an exported ``.onnx`` model, or
            a loaded ``runtime.VADModel`` (reuse one for many files).
        postprocess: post-processing options; None uses the model's recommended defaults.

    Raises:
        AudioFileError: the file is missing, unreadable, empty (0 bytes), corrupt or not audio.
        ModelFileError: the model file is missing or not a model of this project.
    """
    loaded = model if isinstance(model, _LoadedModel) else _LoadedModel(model)
    return _label_with(loaded, Path(path), postprocess)


def _label_with(loaded: _LoadedModel, path: Path, postprocess: PostprocessConfig | None) -> LabelResult:
    if postprocess is not None and not isinstance(postprocess, PostprocessConfig):
        raise InvalidInputError(f"postprocess={postprocess!r}: must be a PostprocessConfig or None")
    cfg = loaded.postprocess(postprocess)
    samples, rate = _read_audio(path)
    probs, events = _run_stream(loaded, samples, rate, cfg)
    return LabelResult(
        path=path,
        segments=tuple(events_to_segments(events)),
        probabilities=probs,
        frame_hop_s=loaded.metadata.feature_spec.hop_s,
        duration_s=samples.size / rate,
        sample_rate=rate,
        model_name=loaded.name,
        model_sha256=loaded.sha256,
        postprocess=cfg,
    )


# --- finding inputs and naming outputs ----------------------------------------------------


def _is_audio(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def _walk_audio(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / f for f in files if _is_audio(Path(f)))
    return sorted(found)


def find_audio_files(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], list[str]]:
    """Expand PATH arguments into audio files; returns (files, arguments that matched nothing).

    Files named explicitly are kept whatever their suffix; folders are searched recursively
    and glob patterns expanded, keeping audio suffixes only. Order: arguments in the order
    given, each expanded in sorted order; duplicates are dropped.
    """
    files: list[Path] = []
    unmatched: list[str] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            files.append(p)

    for arg in paths:
        text = os.fspath(arg)
        p = Path(text)
        if p.is_dir():
            for f in _walk_audio(p):
                add(f)
        elif p.exists() or p.is_symlink():
            add(p)
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            before = len(files)
            for m in map(Path, matches):
                if m.is_dir():
                    for f in _walk_audio(m):
                        add(f)
                elif _is_audio(m):
                    add(m)
            if len(files) == before:
                unmatched.append(text)
        else:
            unmatched.append(text)
    return files, unmatched


def plan_outputs(inputs: Sequence[Path], fmt: str, outdir: str | os.PathLike | None = None) -> list[Path]:
    """The output path of each input (see the module docstring for the naming rules)."""
    if fmt not in FORMAT_SUFFIXES:
        raise InvalidInputError(f"format={fmt!r}: must be one of {', '.join(FORMATS)}")
    suffix = FORMAT_SUFFIXES[fmt]
    if not inputs:
        return []
    parents = [Path(os.path.abspath(p)).parent for p in inputs]
    if outdir is None:
        folders = parents
    else:
        root = Path(os.path.commonpath([str(p) for p in parents]))
        folders = [Path(outdir) / p.relative_to(root) for p in parents]
    outputs = [folder / (Path(p).stem + suffix) for folder, p in zip(folders, inputs, strict=True)]
    # inputs that map to the same output (x.wav, x.flac in one folder), or an output that
    # would overwrite an input, keep their own suffix: x.wav.rttm
    input_keys = {Path(os.path.abspath(p)) for p in inputs}
    counts: dict[Path, int] = {}
    for o in outputs:
        key = Path(os.path.abspath(o))
        counts[key] = counts.get(key, 0) + 1
    for i, o in enumerate(outputs):
        key = Path(os.path.abspath(o))
        if counts[key] > 1 or key in input_keys:
            outputs[i] = folders[i] / (Path(inputs[i]).name + suffix)
    return outputs


# --- batch --------------------------------------------------------------------------------

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"


@dataclasses.dataclass(frozen=True)
class FileOutcome:
    """What happened to one input of a batch.

    Attributes:
        path: the input; output: its label file.
        status: "written", "skipped" (output existed) or "failed".
        error: the reason when failed.
        duration_s: audio length (0 when skipped or failed).
        n_segments: speech segments found.
        speech_s: total speech.
        elapsed_s: wall time spent on this file in its worker.
    """

    path: Path
    output: Path
    status: str
    error: str = ""
    duration_s: float = 0.0
    n_segments: int = 0
    speech_s: float = 0.0
    elapsed_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    outcomes: tuple[FileOutcome, ...]
    wall_s: float

    def _count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def written(self) -> int:
        return self._count(WRITTEN)

    @property
    def skipped(self) -> int:
        return self._count(SKIPPED)

    @property
    def failed(self) -> int:
        return self._count(FAILED)

    @property
    def audio_s(self) -> float:
        return float(sum(o.duration_s for o in self.outcomes))

    @property
    def compute_s(self) -> float:
        return float(sum(o.elapsed_s for o in self.outcomes))


@dataclasses.dataclass(frozen=True)
class _Job:
    index: int
    path: Path
    output: Path


@dataclasses.dataclass(frozen=True)
class _BatchOptions:
    fmt: str
    probabilities: bool
    postprocess: PostprocessConfig | None


def _label_one(loaded: _LoadedModel, job: _Job, opts: _BatchOptions) -> FileOutcome:
    t0 = time.perf_counter()
    try:
        result = _label_with(loaded, job.path, opts.postprocess)
        text = format_result(result, opts.fmt, opts.probabilities)
        job.output.parent.mkdir(parents=True, exist_ok=True)
        _write_output(job.output, text)
    except (VADError, OSError) as exc:
        return FileOutcome(job.path, job.output, FAILED, _reason(exc, job.path), elapsed_s=time.perf_counter() - t0)
    except Exception as exc:  # a bug must not stop the other files; report its type
        return FileOutcome(
            job.path, job.output, FAILED, f"{type(exc).__name__}: {exc}", elapsed_s=time.perf_counter() - t0
        )
    return FileOutcome(
        job.path,
        job.output,
        WRITTEN,
        duration_s=result.duration_s,
        n_segments=len(result.segments),
        speech_s=result.speech_s,
        elapsed_s=time.perf_counter() - t0,
    )


def _write_output(path: Path, text: str) -> None:
    """Atomic write with the usual file mode (vad.core.atomicfile)."""
    from vad.core.atomicfile import atomic_write_text

    atomic_write_text(path, text)


def _reason(exc: BaseException, path: Path) -> str:
    text = str(exc)
    prefix = f"{path}: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
    if isinstance(exc, PermissionError):
        return "permission denied"
    return text or type(exc).__name__


# One model per worker process, created by the pool's initializer (process-local state:
# each worker owns its model; nothing is shared between processes).
_WORKER: dict[str, Any] = {}


def _worker_init(model_path: Path, opts: _BatchOptions) -> None:
    _WORKER["opts"] = opts
    try:
        _WORKER["loaded"] = _LoadedModel(model_path)
    except Exception as exc:  # reported per file instead of killing the pool
        _WORKER["error"] = f"worker could not load the model: {exc}"


def _worker_run(job: _Job) -> tuple[int, FileOutcome]:
    if "error" in _WORKER:
        return job.index, FileOutcome(job.path, job.output, FAILED, _WORKER["error"])
    return job.index, _label_one(_WORKER["loaded"], job, _WORKER["opts"])


def default_jobs() -> int:
    """Worker processes by default: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def label_files(
    paths: Sequence[str | os.PathLike],
    outdir: str | os.PathLike | None = None,
    fmt: str = "rttm",
    *,
    model: Any = None,
    postprocess: PostprocessConfig | None = None,
    probabilities: bool = False,
    overwrite: bool = False,
    jobs: int | None = None,
    on_progress: Callable[[FileOutcome], None] | None = None,
) -> BatchSummary:
    """Label every audio file found in ``paths`` and write one label file per input.

    Args:
        paths: files, folders (searched recursively) and glob patterns.
        outdir: where outputs go (the inputs' tree mirrored below it); None = next to each input.
        fmt: "rttm", "audacity", "csv" or "json".
        model: None (default model), a model path, or a ``runtime.VADModel`` (with jobs > 1
            its file is loaded once in each worker process).
        postprocess: options, or None for the model's defaults.
        probabilities: json only: also write the per-frame probabilities.
        overwrite: relabel inputs whose output exists (otherwise they are skipped).
        jobs: worker processes (None: one per CPU core; 1: in this process).
        on_progress: called with each FileOutcome as it completes (in completion order).

    Returns a BatchSummary whose outcomes are in input order. Unreadable inputs (and
    arguments that matched no file) are FAILED outcomes; the others still complete.
    Raises InvalidInputError when the arguments are invalid or nothing at all was found.
    """
    if fmt not in FORMAT_SUFFIXES:
        raise InvalidInputError(f"format={fmt!r}: must be one of {', '.join(FORMATS)}")
    if probabilities and fmt != "json":
        raise InvalidInputError(f"probabilities=True needs the json format (got format={fmt!r})")
    if jobs is None:
        jobs = default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidInputError(f"jobs={jobs!r}: must be an integer >= 1")
    if postprocess is not None and not isinstance(postprocess, PostprocessConfig):
        raise InvalidInputError(f"postprocess={postprocess!r}: must be a PostprocessConfig or None")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    t0 = time.perf_counter()
    files, unmatched = find_audio_files(paths)
    if not files and not unmatched:
        raise InvalidInputError(f"no audio files found in: {' '.join(os.fspath(p) for p in paths)}")
    outputs = plan_outputs(files, fmt, outdir)

    outcomes: list[FileOutcome | None] = [None] * len(files)
    missing = [FileOutcome(Path(u), Path(), FAILED, "no such file or directory (or no match)") for u in unmatched]
    for m in missing:
        if on_progress:
            on_progress(m)
    pending: list[_Job] = []
    for i, (f, o) in enumerate(zip(files, outputs, strict=True)):
        if o.exists() and not overwrite:
            outcomes[i] = FileOutcome(f, o, SKIPPED)
            if on_progress:
                on_progress(outcomes[i])
        else:
            pending.append(_Job(i, f, o))

    opts = _BatchOptions(fmt, probabilities, postprocess)
    if pending:
        # load the model here first: a bad model is one clear error, not one per file
        loaded = model if isinstance(model, _LoadedModel) else _LoadedModel(model)
        if jobs == 1 or len(pending) == 1:
            for job in pending:
                outcomes[job.index] = _label_one(loaded, job, opts)
                if on_progress:
                    on_progress(outcomes[job.index])
        else:
            _run_pool(pending, min(jobs, len(pending)), loaded.path, opts, outcomes, on_progress)
    done = tuple(o for o in outcomes if o is not None)
    return BatchSummary(tuple(missing) + done, time.perf_counter() - t0)


def _run_pool(pending, jobs, model_path, opts, outcomes, on_progress) -> None:
    import concurrent.futures as cf
    import multiprocessing

    # spawn: workers start clean (no inherited onnxruntime/numba threads from the parent)
    ctx = multiprocessing.get_context("spawn")
    # longest files first keeps all workers busy to the end
    order = sorted(pending, key=lambda j: -_size_or_zero(j.path))
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                                  initargs=(model_path, opts))  # fmt: skip
    # Workers start with Ctrl-C ignored (an ignored signal stays ignored across exec): on
    # Ctrl-C the parent cancels the queue and the workers finish the file they are on, so
    # no output is left half-written and no worker prints a traceback.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _is_main_thread() else None
    try:
        futures = {pool.submit(_worker_run, job): job for job in order}
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        for fut in cf.as_completed(futures):
            job = futures[fut]
            try:
                index, outcome = fut.result()
            except Exception as exc:  # worker died (e.g. killed, or the model failed to load)
                index, outcome = job.index, FileOutcome(job.path, job.output, FAILED, f"worker failed: {exc}")
            outcomes[index] = outcome
            if on_progress:
                on_progress(outcome)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def audio_duration_s(path: Path) -> float:
    """Length of an audio file from its header (0 when unreadable); for progress estimates."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:
        return 0.0
    return float(info.frames) / info.samplerate if info.samplerate else 0.0


# --- progress -----------------------------------------------------------------------------


class ProgressBar:
    """One-line progress on a terminal: files done, audio hours, real-time factor, ETA.

    Writes nothing when ``stream`` is not a terminal. Call ``update(outcome)`` per file and
    ``close()`` at the end.
    """

    _WIDTH = 24
    _MIN_REDRAW_S = 0.1

    def __init__(self, total_files: int, total_audio_s: float, stream=None, enabled: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self.total_files = total_files
        self.total_audio_s = max(total_audio_s, 0.0)
        self.done_files = 0
        self.done_audio_s = 0.0
        self.t0 = time.perf_counter()
        self._last_draw = 0.0

    def update(self, outcome: FileOutcome, expected_audio_s: float = 0.0) -> None:
        self.done_files += 1
        self.done_audio_s += outcome.duration_s
        if outcome.status != WRITTEN:  # skipped or failed: its audio no longer counts as to do
            self.total_audio_s = max(self.total_audio_s - expected_audio_s, self.done_audio_s)
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw >= self._MIN_REDRAW_S or self.done_files == self.total_files):
            self._last_draw = now
            self.stream.write("\r" + self.render(now - self.t0) + "\x1b[K")
            self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line above the bar (e.g. an error) without breaking it."""
        if self.enabled:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        if self.enabled:
            self.stream.write(self.render(time.perf_counter() - self.t0) + "\x1b[K")
        self.stream.flush()

    def render(self, elapsed_s: float) -> str:
        frac = self.done_audio_s / self.total_audio_s if self.total_audio_s > 0 else 0.0
        if self.total_audio_s <= 0 and self.total_files:
            frac = self.done_files / self.total_files
        frac = min(max(frac, 0.0), 1.0)
        filled = int(round(frac * self._WIDTH))
        bar = "#" * filled + "-" * (self._WIDTH - filled)
        rtf = self.done_audio_s / elapsed_s if elapsed_s > 0 else 0.0
        remaining_s = max(self.total_audio_s - self.done_audio_s, 0.0)
        eta = _clock(remaining_s / rtf) if rtf > 0 and self.done_files < self.total_files else "--:--"
        if self.done_files >= self.total_files:
            eta = "0:00"
        return (
            f"[{bar}] {self.done_files}/{self.total_files} files  "
            f"{self.done_audio_s / 3600:.2f}/{self.total_audio_s / 3600:.2f} h audio  "
            f"{rtf:,.0f}x real time  ETA {eta}"
        )

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
