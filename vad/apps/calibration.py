"""Measure what the streaming engine costs on this machine per layer width, and fit a cost model.

``calibrate`` exports probe networks (random weights: the engine's cost does not depend on
the values) at a space-filling design of widths (``design_widths``), times each one with the
same code as ``vad bench`` (``vad.apps.benchmark.bench_ours``: int16 audio through
``StreamingVAD.process`` in 10 ms chunks, front end + network + post-processing, one thread),
``passes`` timed passes per load, in ``rounds`` interleaved rounds (the order shuffled every
round, so a burst of load on a shared machine hits every model alike), and fits the
microseconds per frame as a non-negative linear model of the width terms
(``vad.core.costmodel``: least squares on the *relative* error, ``scipy.optimize.nnls``).

The fitted statistic (``statistic``): ``"cpu"`` (the default) is each model's least process
CPU time per frame over its passes: on a machine shared with other jobs the wall time
measures the other jobs as much as the engine (measured here at load 7 on 2 cores: the
same 1/1/1-wide model took 8 us per frame in one calibration and 17 in the next), the CPU
time the engine's own cost (``vad bench``'s figures, which are CPU time). ``"min"`` fits the
fastest wall pass, ``"median"`` the median wall pass (``vad bench --json``'s
``us_per_10ms_wall_best`` and ``us_per_10ms_wall``). On an idle core
all three agree. Whatever engine is installed is what gets measured: nothing here knows its
internals.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vad.core.costmodel import WIDTH_TERMS, CostModel, linear_cost, width_terms
from vad.core.errors import InvalidInputError, require
from vad.core.modelmeta import ARCHITECTURE_NAME

DEFAULT_POINTS = 16
DEFAULT_SECONDS = 3.0  # audio per timed pass: short, so that many passes run without being preempted
DEFAULT_PASSES = 10  # timed passes per model load
DEFAULT_ROUNDS = 5
STATISTICS = ("cpu", "min", "median")
DEFAULT_MAX_WIDTH = 48
DESIGN_SEED = 2024
PROBE_WEIGHT_SEED = 7


def design_widths(max_width: int, n_points: int = DEFAULT_POINTS, min_width: int = 1) -> list[dict[str, int]]:
    """Widths to measure: the two corners, the diagonal's middle, then a seeded Latin hypercube.

    The hypercube spreads every layer's width over [min_width, max_width] independently, so
    the products c1*c2, c2*h and h*h are not collinear with the single widths.
    """
    if n_points < len(WIDTH_TERMS) + 1:
        raise InvalidInputError(f"n_points={n_points}: need at least {len(WIDTH_TERMS) + 1} to fit {len(WIDTH_TERMS)} terms")
    if not 1 <= min_width < max_width:
        raise InvalidInputError(f"need 1 <= min_width ({min_width}) < max_width ({max_width})")

    def at(fraction: float) -> int:
        return int(round(min_width + fraction * (max_width - min_width)))

    points = [(min_width,) * 3, (max_width,) * 3, (at(0.5),) * 3]
    rng = np.random.default_rng(DESIGN_SEED)
    n = n_points - len(points)
    strata = [(rng.permutation(n) + rng.random(n)) / n for _ in range(3)]
    points += [tuple(at(float(s[i])) for s in strata) for i in range(n)]
    return [{"input": c1, "conv": c2, "gru": h} for c1, c2, h in points]


def _export_probe(widths: dict[str, int], path: Path, n_features: int, conv_kernel_frames: int) -> Path:
    import torch

    from vad.core.features import FeatureSpec
    from vad.training.export import build_metadata, export_onnx
    from vad.training.model import ArchConfig, FrozenVAD

    torch.manual_seed(PROBE_WEIGHT_SEED)
    model = FrozenVAD(ArchConfig(n_features, widths["input"], widths["conv"], widths["gru"], conv_kernel_frames))
    name = f"probe-{widths['input']}-{widths['conv']}-{widths['gru']}"
    return export_onnx(model, build_metadata(model, FeatureSpec(n_mels=n_features), name=name), path)


def fit_coefficients(widths: list[dict[str, int]], us_per_frame: list[float]) -> dict[str, float]:
    """Non-negative least squares of the relative error: sum_i ((A c - y) / y)_i^2, c >= 0."""
    scipy_optimize = require("scipy.optimize", "train", "vad calibrate")
    y = np.asarray(us_per_frame, dtype=np.float64)
    if y.shape[0] != len(widths) or not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise InvalidInputError("fit_coefficients: need one positive finite time per widths entry")
    a = np.array([[float(width_terms(w["input"], w["conv"], w["gru"])[t]) for t in WIDTH_TERMS] for w in widths])
    coef, _residual = scipy_optimize.nnls(a / y[:, None], np.ones_like(y))
    return {t: float(c) for t, c in zip(WIDTH_TERMS, coef, strict=True)}


def _check_protocol(seconds: float, rounds: int, passes: int, statistic: str) -> None:
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInputError(f"seconds={seconds!r}: must be > 0")
    if rounds < 1 or passes < 1:
        raise InvalidInputError(f"rounds={rounds!r}, passes={passes!r}: must be >= 1")
    if statistic not in STATISTICS:
        raise InvalidInputError(f"statistic={statistic!r}: must be one of {', '.join(STATISTICS)}")


def measure(
    paths: list[str],
    seconds: float = DEFAULT_SECONDS,
    rounds: int = DEFAULT_ROUNDS,
    passes: int = DEFAULT_PASSES,
    backend: str | None = None,
    block_frames: int | None = None,
    chunk_ms: float = 10.0,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, float]], dict[str, Any]]:
    """Microseconds per 10 ms of each model file by every statistic (module doc), and the engine used.

    Models are timed in ``rounds`` interleaved rounds (shuffled order), ``passes`` passes of
    ``seconds`` of audio per load, with ``vad.apps.benchmark.bench_ours``.
    """
    from vad.apps.benchmark import bench_ours

    _check_protocol(seconds, rounds, passes, STATISTICS[0])
    best: list[list[float]] = [[] for _ in paths]  # fastest wall pass of each load
    typical: list[list[float]] = [[] for _ in paths]  # median wall pass of each load
    cpu: list[list[float]] = [[] for _ in paths]  # least CPU time of each load
    engines = set()
    t0 = time.monotonic()
    rng = np.random.default_rng(DESIGN_SEED)
    for r in range(rounds):
        for i in rng.permutation(len(paths)):
            row = bench_ours(str(paths[i]), seconds, block_frames, backend, repeats=passes, chunk_ms=chunk_ms)
            best[i].append(row["us_per_10ms_wall_best"])
            typical[i].append(row["us_per_10ms_wall"])
            cpu[i].append(row["us_per_10ms_best"])
            engines.add((row["backend"], row["block_frames"], row["chunk_samples"]))
        if log:
            log(f"round {r + 1}/{rounds} done ({time.monotonic() - t0:.0f} s)")
    stats = [{"cpu": float(min(c)), "min": float(min(b)), "median": float(np.median(t))}
             for c, b, t in zip(cpu, best, typical, strict=True)]
    backend_used, block_used, chunk_used = sorted(engines)[0]
    engine = {"backend": backend_used, "block_frames": block_used, "chunk_samples": chunk_used,
              "seconds_per_pass": seconds, "passes": passes, "rounds": rounds,
              "measure_seconds": time.monotonic() - t0}
    return stats, engine


def calibrate(
    max_width: int = DEFAULT_MAX_WIDTH,
    n_points: int = DEFAULT_POINTS,
    seconds: float = DEFAULT_SECONDS,
    rounds: int = DEFAULT_ROUNDS,
    passes: int = DEFAULT_PASSES,
    statistic: str = "cpu",
    backend: str | None = None,
    block_frames: int | None = None,
    chunk_ms: float = 10.0,
    n_features: int | None = None,
    conv_kernel_frames: int = 4,
    log: Callable[[str], None] | None = None,
) -> CostModel:
    """Measure the engine at ``design_widths`` and return the fitted ``CostModel`` (see module doc)."""
    require("torch", "train", "vad calibrate (it exports probe networks)")
    from vad import __version__
    from vad.core.features import FeatureSpec

    _check_protocol(seconds, rounds, passes, statistic)
    spec = FeatureSpec() if n_features is None else FeatureSpec(n_mels=n_features)
    per_frame = 1000.0 * spec.hop_s / 10.0  # us per 10 ms -> us per frame
    design = design_widths(max_width, n_points)
    with tempfile.TemporaryDirectory(prefix="vad-calibrate-") as tmp:
        paths = [str(_export_probe(w, Path(tmp) / f"probe{i}.onnx", spec.n_mels, conv_kernel_frames))
                 for i, w in enumerate(design)]
        stats, engine = measure(paths, seconds, rounds, passes, backend, block_frames, chunk_ms, log)
    target = [st[statistic] * per_frame for st in stats]
    coefficients = fit_coefficients(design, target)
    points = []
    for w, st, y in zip(design, stats, target, strict=True):
        fitted = float(linear_cost(coefficients, w["input"], w["conv"], w["gru"]))
        points.append({"widths": w, "us_per_frame": y, "us_per_frame_min": st["min"] * per_frame,
                       "us_per_frame_median": st["median"] * per_frame, "us_per_frame_cpu": st["cpu"] * per_frame,
                       "fitted_us_per_frame": fitted, "relative_error": fitted / y - 1.0})
    errors = np.array([p["relative_error"] for p in points])
    return CostModel(
        coefficients_us=coefficients,
        n_features=spec.n_mels,
        conv_kernel_frames=conv_kernel_frames,
        hop_ms=1000.0 * spec.hop_s,
        engine={"what": "StreamingVAD.process, int16 chunks, front end + network + post-processing, 1 thread "
                        "(vad.apps.benchmark.bench_ours, as `vad bench`)",
                **engine, "package_version": __version__, "statistic": statistic},
        machine={"host": platform.node(), "processor": platform.processor() or platform.machine(),
                 "cpu_count": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        points=points,
        fit={"max_abs_relative_error": float(np.max(np.abs(errors))),
             "rms_relative_error": float(np.sqrt(np.mean(errors**2))), "n_points": len(points),
             "calibration_seconds": engine["measure_seconds"]},
    )


def check_models(
    model_paths: list[str],
    cost_model: CostModel,
    seconds: float = DEFAULT_SECONDS,
    rounds: int = DEFAULT_ROUNDS,
    passes: int = DEFAULT_PASSES,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Predicted (``cost_model``) vs measured us per 10 ms of exported models, and the machine's drift.

    The models are measured with the calibration's protocol and statistic, interleaved with
    the cost model's own design points (probes exported afresh). ``drift`` is the median ratio
    of the probes' times now to their times at calibration: on a machine shared with other
    jobs the speed changes with their load, and ``ratio / drift`` is the cost model's own
    error, ``ratio`` what the user gets now. Returns (rows, drift).
    """
    from vad.core.modelmeta import read_model_metadata

    require("torch", "train", "vad calibrate --check (it exports the probe networks)")
    engine = cost_model.engine
    statistic = engine.get("statistic", STATISTICS[0])
    widths = [read_model_metadata(p).architecture.get("widths") or {} for p in model_paths]
    for p, w in zip(model_paths, widths, strict=True):
        if not {"input", "conv", "gru"} <= set(w):
            raise InvalidInputError(f"{p}: no layer widths in its metadata (not a {ARCHITECTURE_NAME} model)")
    per_10ms = 10.0 / cost_model.hop_ms
    design = [pt["widths"] for pt in cost_model.points]
    with tempfile.TemporaryDirectory(prefix="vad-calibrate-") as tmp:
        probes = [str(_export_probe(w, Path(tmp) / f"probe{i}.onnx", cost_model.n_features, cost_model.conv_kernel_frames))
                  for i, w in enumerate(design)]
        stats, _engine = measure(probes + [str(p) for p in model_paths], seconds, rounds, passes, engine.get("backend"),
                                 engine.get("block_frames"), 1000.0 * engine.get("chunk_samples", 160) / 16000.0, log)
    then = [pt["us_per_frame"] * per_10ms for pt in cost_model.points]
    drift = float(np.median([st[statistic] / t for st, t in zip(stats[: len(probes)], then, strict=True)])) \
        if probes else float("nan")
    rows = []
    for p, w, st in zip(model_paths, widths, stats[len(probes):], strict=True):
        predicted = cost_model.us_of(w) * per_10ms
        rows.append({"model": str(p), "widths": w, "predicted_us_per_10ms": predicted,
                     "measured_us_per_10ms": st[statistic], "statistic": statistic, "measured": st,
                     "ratio": st[statistic] / predicted, "drift_corrected_ratio": st[statistic] / predicted / drift})
    return rows, drift


def format_check(rows: list[dict[str, Any]], drift: float) -> str:
    lines = [f"{'model':<28} {'widths':>10} {'predicted':>9} {'measured':>9} {'ratio':>6} {'/drift':>7}"]
    for r in rows:
        w = r["widths"]
        lines.append(f"{Path(r['model']).name:<28} {w['input']:>4}/{w['conv']}/{w['gru']:<3} "
                     f"{r['predicted_us_per_10ms']:>9.2f} {r['measured_us_per_10ms']:>9.2f} {r['ratio']:>6.3f} "
                     f"{r['drift_corrected_ratio']:>7.3f}")
    stat = rows[0]["statistic"] if rows else ""
    lines.append(f"(us per 10 ms, statistic {stat}; the calibration's widths measured now / then: x{drift:.3f} "
                 "= the machine's drift; /drift = the cost model's own error)")
    return "\n".join(lines)


def format_points(cost_model: CostModel) -> str:
    lines = [f"{'widths in/conv/gru':>20} {'cpu':>8} {'wall min':>8} {'median':>8} {'fitted':>8} {'error':>7}",
             "-" * 65]
    for p in cost_model.points:
        w = p["widths"]
        lines.append(f"{w['input']:>8}/{w['conv']:>3}/{w['gru']:>3}      {p['us_per_frame_cpu']:>8.2f} "
                     f"{p['us_per_frame_min']:>8.2f} {p['us_per_frame_median']:>8.2f} {p['fitted_us_per_frame']:>8.2f} "
                     f"{100 * p['relative_error']:>6.1f}%")
    lines.append(f"(us per frame; fitted to the {cost_model.engine.get('statistic')}; error relative to it)")
    coefs = ", ".join(f"{k} {v:.4g}" for k, v in cost_model.coefficients_us.items())
    lines.append(f"us per {cost_model.hop_ms:g} ms frame = {coefs} (x width terms)")
    lines.append(f"fit: max |error| {100 * cost_model.fit['max_abs_relative_error']:.1f}%, "
                 f"rms {100 * cost_model.fit['rms_relative_error']:.1f}% over {cost_model.fit['n_points']} widths")
    return "\n".join(lines)


def describe(cost_model: CostModel) -> dict[str, Any]:
    """Small summary for messages: where and when it was measured, and its range."""
    lo = min(p["us_per_frame"] for p in cost_model.points) if cost_model.points else math.nan
    hi = max(p["us_per_frame"] for p in cost_model.points) if cost_model.points else math.nan
    return {"host": cost_model.machine.get("host"), "measured_at": cost_model.measured_at, "min_us": lo, "max_us": hi}
