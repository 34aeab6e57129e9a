"""The local engine: files labeled in this process or in a pool of worker processes.

Each worker process loads the model once (the pool's initializer) and labels whole files
(``label_jobs.run_job``). On Ctrl-C the queue is cancelled and the workers finish the file
they are on, so no output is left half-written; their outcomes are still handed back
(``salvage``) so the batch can list the files they wrote.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vad.apps.label_audio import LoadedModel
from vad.apps.label_jobs import BatchOptions, FileOutcome, Job, failed, run_job

Deliver = Callable[[FileOutcome], None]


def default_jobs() -> int:
    """Worker processes by default: the CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_local(
    pending: Sequence[Job], jobs: int, loaded: LoadedModel, opts: BatchOptions, deliver: Deliver, salvage: Deliver
) -> None:
    """Label ``pending``: in this process when jobs == 1 (or one file), else in ``jobs`` processes.

    ``deliver`` gets each outcome as it completes; after an interruption, ``salvage`` gets
    the outcomes of the files the workers finished meanwhile.
    """
    if jobs == 1 or len(pending) == 1:
        for job in pending:
            deliver(run_job(loaded, job, opts))
        return
    _run_pool(pending, min(jobs, len(pending)), loaded.path, opts, deliver, salvage)


# One model per worker process, created by the pool's initializer (process-local state:
# each worker owns its model; nothing is shared between processes).
_WORKER: dict[str, Any] = {}


def _worker_init(model_path: Path, opts: BatchOptions) -> None:
    _WORKER["opts"] = opts
    try:
        _WORKER["loaded"] = LoadedModel(model_path)
    except Exception as exc:  # reported per file instead of killing the pool
        _WORKER["error"] = f"worker could not load the model: {exc}"


def _worker_run(job: Job) -> FileOutcome:
    if "error" in _WORKER:
        return failed(job, _WORKER["error"])
    return run_job(_WORKER["loaded"], job, _WORKER["opts"])


def _run_pool(pending, jobs, model_path, opts, deliver: Deliver, salvage: Deliver) -> None:
    import concurrent.futures as cf
    import multiprocessing

    # spawn: workers start clean (no inherited onnxruntime/numba threads from the parent)
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                                  initargs=(model_path, opts))  # fmt: skip
    # Workers start with Ctrl-C ignored (an ignored signal stays ignored across exec): on
    # Ctrl-C the parent cancels the queue and the workers finish the file they are on.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _is_main_thread() else None
    try:
        futures = {pool.submit(_worker_run, job): job for job in longest_first(pending)}
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    delivered: set = set()
    try:
        for fut in cf.as_completed(futures):
            delivered.add(fut)
            deliver(_outcome(fut, futures[fut]))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for fut, job in futures.items():
            if fut not in delivered and fut.done() and not fut.cancelled():
                salvage(_outcome(fut, job))
        raise
    pool.shutdown(wait=True)


def _outcome(fut, job: Job) -> FileOutcome:
    try:
        return fut.result()
    except Exception as exc:  # worker died (e.g. killed)
        return failed(job, f"worker failed: {exc}")


def longest_first(pending: Sequence[Job]) -> list[Job]:
    """Biggest files first: keeps every worker busy to the end."""
    return sorted(pending, key=lambda j: -_size_or_zero(j.path))


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
