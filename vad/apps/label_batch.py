"""A batch (``vad label``): find the inputs, plan the outputs, skip or refuse, run an engine.

``label_corpus`` finds the audio files in folders and globs, writes one label file per input
(atomically), skips inputs whose output already exists, never replaces a file it did not
write (``label_outputs``), and reports unreadable files without stopping the others. The
engine is ``"local"`` (worker processes on this machine, ``label_pool``) or ``"ray"`` (Ray
tasks, ``label_ray``); both run the same per-file code, so their outputs are byte-identical.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vad.apps.label_audio import LoadedModel
from vad.apps.label_formats import check_format
from vad.apps.label_inputs import find_audio_files
from vad.apps.label_jobs import FAILED, SKIPPED, WRITTEN, BatchOptions, FileOutcome, Job
from vad.apps.label_outputs import OutputLedger, check_outdir, plan_outputs
from vad.apps.label_pool import default_jobs, run_local
from vad.core.errors import InvalidInputError
from vad.core.postprocess import PostprocessConfig

ENGINES = ("local", "ray")
FOREIGN_OUTPUT = "the output exists and vad label did not write it: --overwrite keeps it too"


@dataclasses.dataclass(frozen=True)
class BatchSummary:
    """The outcomes of a batch (in input order) and how it ran.

    Attributes:
        outcomes: one FileOutcome per input (arguments that matched nothing first).
        wall_s: wall time of the whole batch.
        engine: "local" or "ray".
        workers: files labeled at once (worker processes, or Ray CPUs used).
    """

    outcomes: tuple[FileOutcome, ...]
    wall_s: float
    engine: str = "local"
    workers: int = 1

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


def check_setup(outdir: str | os.PathLike | None, engine: str = "local", address: str | None = None) -> None:
    """What must hold before any work (InvalidInputError, or MissingDependencyError naming the
    extra): a known engine, an address only for Ray, Ray installed for it, a cluster address that
    takes connections, a usable output folder."""
    if engine not in ENGINES:
        raise InvalidInputError(f"engine={engine!r}: must be one of {', '.join(ENGINES)}")
    if address is not None and engine != "ray":
        raise InvalidInputError(f"a cluster address ({address!r}) needs the ray engine (--engine ray)")
    if engine == "ray":
        from vad.apps.label_ray import check_reachable, import_ray

        import_ray()
        if address is not None:
            check_reachable(address)
    check_outdir(outdir)


def _check_jobs(jobs: Any) -> None:
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise InvalidInputError(f"jobs={jobs!r}: must be an integer >= 1 or None")


def label_corpus(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    outdir: str | os.PathLike | None = None,
    fmt: str = "rttm",
    *,
    model: Any = None,
    postprocess: PostprocessConfig | None = None,
    probabilities: bool = False,
    overwrite: bool = False,
    jobs: int | None = None,
    engine: str = "local",
    address: str | None = None,
    on_progress: Callable[[FileOutcome], None] | None = None,
) -> BatchSummary:
    """Label every audio file found in ``paths`` and write one label file per input.

    Args:
        paths: files, folders (searched recursively) and glob patterns.
        outdir: where outputs go (the inputs' tree mirrored below it); None = next to each input.
        fmt: "rttm", "audacity", "csv" or "json".
        model: None (default model), a model path, or a ``vad.runtime.VADModel`` (its file is
            loaded once in each worker).
        postprocess: options, or None for the model's defaults.
        probabilities: json only: also write the per-frame probabilities.
        overwrite: relabel inputs whose output exists, when vad label wrote that output
            (any other existing file is refused, per file).
        jobs: files labeled at once. local: worker processes (None: one per CPU core; 1: in
            this process). ray: at most this many tasks at once (None: every CPU).
        engine: "local" or "ray" (needs the ``cluster`` extra).
        address: ray only: the cluster to join ("auto", "HOST:PORT", "ray://HOST:PORT");
            None starts a local Ray instance (unless this process is connected already).
        on_progress: called with each FileOutcome as it completes (in completion order).

    Returns a BatchSummary whose outcomes are in input order. Unreadable inputs (and
    arguments that matched no file) are FAILED outcomes; the others still complete.
    Raises InvalidInputError when the arguments are invalid (an output folder that is a file
    or not writable included, before any work) or nothing at all was found.
    """
    check_format(fmt)
    if probabilities and fmt != "json":
        raise InvalidInputError(f"probabilities=True needs the json format (got format={fmt!r})")
    _check_jobs(jobs)
    if postprocess is not None and not isinstance(postprocess, PostprocessConfig):
        raise InvalidInputError(f"postprocess={postprocess!r}: must be a PostprocessConfig or None")
    check_setup(outdir, engine, address)
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
    ledger = OutputLedger()
    pending: list[Job] = []
    for i, (f, o) in enumerate(zip(files, outputs, strict=True)):
        if not (o.exists() or o.is_symlink()):
            pending.append(Job(i, f, o))
            continue
        if not overwrite:
            outcomes[i] = FileOutcome(f, o, SKIPPED, "" if ledger.wrote(o) else FOREIGN_OUTPUT)
        elif ledger.wrote(o):
            pending.append(Job(i, f, o))
            continue
        else:
            outcomes[i] = FileOutcome(f, o, FAILED, refusal(o))
        if on_progress:
            on_progress(outcomes[i])
    index = {job.output: job.index for job in pending}

    def record(outcome: FileOutcome) -> None:
        if outcome.status == WRITTEN:
            ledger.record(outcome.output, outcome.sha256)
        outcomes[index[outcome.output]] = outcome

    def deliver(outcome: FileOutcome) -> None:
        record(outcome)
        if on_progress:
            on_progress(outcome)

    workers = 1
    if pending:
        # load the model here first: a bad model is one clear error, not one per file
        loaded = model if isinstance(model, LoadedModel) else LoadedModel(model)
        opts = BatchOptions(fmt, probabilities, postprocess)
        if engine == "ray":
            from vad.apps.label_ray import run_ray

            workers = run_ray(pending, jobs, loaded, opts, deliver, record, address)
        else:
            workers = max(1, min(jobs or default_jobs(), len(pending)))
            run_local(pending, workers, loaded, opts, deliver, record)
    done = tuple(o for o in outcomes if o is not None)
    return BatchSummary(tuple(missing) + done, time.perf_counter() - t0, engine, workers)


def refusal(output: Path) -> str:
    """Why an existing output is not replaced under --overwrite."""
    return (
        f"output {output} exists and vad label did not write it (or it was edited since): "
        "not overwritten; move it away to relabel this file"
    )


label_files = label_corpus  # the earlier name of label_corpus
