"""The Ray engine: files labeled as Ray tasks on a running cluster or a local Ray instance.

Each file is one task (one CPU). The model travels with the job as bytes in Ray's object
store, so workers need no shared disk for it: a worker process loads it once (from a private
temporary file, checked against its SHA-256) and keeps it for every later task. Tasks run
``label_jobs.run_job``, the function the local engine runs, so outputs are byte-identical and
failures are reported the same way. The inputs and outputs must be at the same paths on the
driver and on every worker (a shared filesystem); the driver decides what to skip and keeps
the ledger of written files (``label_outputs``), the workers write the label files.

At most ``2 x workers`` files are in flight (longest first), so the driver's memory and the
cluster's queue stay small for any corpus size. On Ctrl-C nothing more is submitted and the
files in flight finish (their outcomes are salvaged); a second Ctrl-C cancels them (their
atomic writes are abandoned, so no partial file is left).
"""

from __future__ import annotations

import collections
import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vad.apps.label_audio import LoadedModel
from vad.apps.label_jobs import BatchOptions, FileOutcome, Job, failed, run_job
from vad.apps.label_pool import Deliver, longest_first
from vad.core.errors import InvalidInputError, VADError, require

EXTRA = "cluster"
_IN_FLIGHT_PER_WORKER = 2  # one file running and one queued per CPU: no idle gap between files
_WAIT_S = 0.5  # ray.wait timeout: the driver stays responsive to Ctrl-C
_REACH_TIMEOUT_S = 5.0  # an unreachable HOST:PORT fails here, not after Ray's minutes of retries

# The model each Ray worker process has loaded, by SHA-256 (process-local; one at a time).
_WORKER_MODELS: dict[str, LoadedModel | str] = {}


def import_ray():
    """The ray module, or MissingDependencyError naming the ``cluster`` extra."""
    return require("ray", EXTRA, "vad label --engine ray")


def run_ray(
    pending: Sequence[Job],
    jobs: int | None,
    loaded: LoadedModel,
    opts: BatchOptions,
    deliver: Deliver,
    salvage: Deliver,
    address: str | None = None,
) -> int:
    """Label ``pending`` as Ray tasks; returns how many files ran at once (the workers).

    Uses the Ray connection of this process when there is one; else joins ``address``
    (``"auto"``: the cluster this machine belongs to) or, without an address, starts a local
    Ray instance with ``jobs`` CPUs (default: all cores) and stops it at the end.
    ``jobs`` caps the files labeled at once (default: every CPU of the cluster).
    """
    ray = import_ray()
    model_bytes = loaded.path.read_bytes()
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,  # not the INFO/WARNING lines of a local start
        }
        if address is None:
            kwargs["num_cpus"] = jobs
        else:
            kwargs["address"] = address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise InvalidInputError(f"cannot connect to {where}: {exc}") from exc
        started = True
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = max(1, min(jobs or cpus, cpus, len(pending)))
        _drive(ray, pending, workers, model_bytes, loaded.sha256, opts, deliver, salvage)
    finally:
        if started:
            ray.shutdown()
    return workers


def check_reachable(address: str) -> None:
    """InvalidInputError when an explicit ``HOST:PORT`` (or ``ray://HOST:PORT``) takes no connection."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and other forms: Ray resolves them and says what is wrong
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise InvalidInputError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def _drive(ray, pending, workers, model_bytes, sha256, opts, deliver: Deliver, salvage: Deliver) -> None:
    task = ray.remote(num_cpus=1)(_label_task)
    root = Path.cwd()  # relative inputs and outputs are the driver's, wherever a worker runs
    model_ref = [ray.put(model_bytes)]  # in a list: the worker fetches it only when it lacks the model
    queue = collections.deque(longest_first(pending))
    in_flight: dict[Any, Job] = {}

    def submit() -> None:
        while queue and len(in_flight) < _IN_FLIGHT_PER_WORKER * workers:
            job = queue.popleft()
            in_flight[task.remote(model_ref, sha256, job, opts, root)] = job

    try:
        submit()
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=_WAIT_S)
            for ref in ready:
                job = in_flight.pop(ref)
                deliver(_outcome(ray, ref, job))
            submit()
    except BaseException:
        queue.clear()  # interrupted: submit nothing more; the files in flight finish
        try:
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=len(in_flight), timeout=_WAIT_S)
                for ref in ready:
                    salvage(_outcome(ray, ref, in_flight.pop(ref)))
        except BaseException:  # interrupted again: abandon them (atomic writes leave nothing)
            for ref in in_flight:
                ray.cancel(ref)
        raise


def _outcome(ray, ref, job: Job) -> FileOutcome:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:  # the worker died, or the task could not run there
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return failed(job, f"Ray task failed: {lines[-1] if lines else type(exc).__name__}")


def _label_task(model_ref: list, sha256: str, job: Job, opts: BatchOptions, root: Path) -> FileOutcome:
    """One file in a Ray worker (runs there; loads the model on the worker's first task)."""
    loaded = _WORKER_MODELS.get(sha256)
    if loaded is None:
        import ray

        try:
            loaded = LoadedModel.from_bytes(ray.get(model_ref[0]), sha256)
        except (VADError, OSError) as exc:
            loaded = f"worker could not load the model: {exc}"
        _WORKER_MODELS.clear()
        _WORKER_MODELS[sha256] = loaded
    if isinstance(loaded, str):
        return failed(job, loaded)
    return run_job(loaded, job, opts, root)
