"""One file of a batch, as a worker does it: label, format, write atomically, report.

The same ``run_job`` runs in this process, in a local worker process and in a Ray task, so
every engine writes the same bytes and reports a failure the same way.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from vad.apps.label_audio import LoadedModel, label_with
from vad.apps.label_formats import format_result
from vad.apps.label_outputs import write_output
from vad.core.errors import VADError
from vad.core.postprocess import PostprocessConfig

WRITTEN, SKIPPED, FAILED = "written", "skipped", "failed"


@dataclasses.dataclass(frozen=True)
class FileOutcome:
    """What happened to one input of a batch.

    Attributes:
        path: the input; output: its label file.
        status: "written", "skipped" (output existed) or "failed".
        error: the reason when failed; when skipped, why ``--overwrite`` keeps the output too
            (``label_batch.FOREIGN_OUTPUT``: vad label did not write it), else "".
        duration_s: audio length (0 when skipped or failed).
        n_segments: speech segments found.
        speech_s: total speech.
        elapsed_s: wall time spent on this file in its worker.
        sha256: SHA-256 of the bytes written (written outcomes only).
    """

    path: Path
    output: Path
    status: str
    error: str = ""
    duration_s: float = 0.0
    n_segments: int = 0
    speech_s: float = 0.0
    elapsed_s: float = 0.0
    sha256: str = ""


@dataclasses.dataclass(frozen=True)
class Job:
    index: int
    path: Path
    output: Path


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    fmt: str
    probabilities: bool
    postprocess: PostprocessConfig | None


def run_job(loaded: LoadedModel, job: Job, opts: BatchOptions, root: Path | None = None) -> FileOutcome:
    """Label one file and write its output; every error becomes a FAILED outcome.

    ``root``: the folder the job's relative paths are relative to (the driver's working
    folder, for a worker that runs elsewhere); the outcome and the output's contents show the
    paths as the job gives them, so the bytes do not depend on where the worker runs.
    """
    t0 = time.perf_counter()
    source, output = (job.path, job.output) if root is None else (root / job.path, root / job.output)
    try:
        result = label_with(loaded, source, opts.postprocess, keep_probabilities=opts.probabilities)
        if source != job.path:
            result = dataclasses.replace(result, path=job.path)
        sha256 = write_output(output, format_result(result, opts.fmt, opts.probabilities))
    except (VADError, OSError) as exc:
        return failed(job, failure_reason(exc, source), time.perf_counter() - t0)
    except Exception as exc:  # a bug must not stop the other files; report its type
        return failed(job, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0)
    return FileOutcome(
        job.path,
        job.output,
        WRITTEN,
        duration_s=result.duration_s,
        n_segments=len(result.segments),
        speech_s=result.speech_s,
        elapsed_s=time.perf_counter() - t0,
        sha256=sha256,
    )


def failed(job: Job, reason: str, elapsed_s: float = 0.0) -> FileOutcome:
    return FileOutcome(job.path, job.output, FAILED, reason, elapsed_s=elapsed_s)


def failure_reason(exc: BaseException, path: Path) -> str:
    """The error's message without the input's path (the report puts the path first)."""
    text = str(exc)
    prefix = f"{path}: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
    if isinstance(exc, PermissionError):
        return "permission denied"
    return text or type(exc).__name__
