"""Measure what the streaming engine costs on this machine per layer width, and fit a cost model.

``calibrate`` exports probe networks (random weights: the engine's cost does not depend on
the values) at a space-filling design of widths (``design_widths``), times each one with the
same code as ``vad bench`` (``vad.apps.benchmark.bench_ours``: int16 audio through
``StreamingVAD.process`` in 10 ms chunks, front end + network + post-processing, one thread),
``passes`` timed passes per load, in ``rounds`` interleaved rounds (the order shuffled every
round, so a burst of load on a shared machine hits every model alike), and fits the
microseconds per frame as a non-negative linear model of the width terms
(``vad.core.costmodel``: least squares on the *relative* error, ``scipy.optimize.nnls``).

The fitted statistic is each model's fastest pass (``statistic="min"``, the default): on a
machine shared with other jobs the median measures the other jobs as much as the engine,
while short passes that ran undisturbed give its own cost; it is ``vad bench``'s "(best)"
column. ``statistic="median"`` fits the median of all passes (``vad bench``'s us/10ms); on an
idle machine the two agree. Whatever engine is installed is what gets measured: nothing here
knows its internals.
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

from vad.core.costmodel import WIDTH_TERMS, CostModel, width_terms
from vad.core.errors import InvalidInputError, require

DEFAULT_POINTS = 16
DEFAULT_SECONDS = 10.0  # audio per timed pass
DEFAULT_PASSES = 5  # timed passes per model load
DEFAULT_ROUNDS = 3
STATISTICS = ("min", "median")
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


def calibrate(
    max_width: int = DEFAULT_MAX_WIDTH,
    n_points: int = DEFAULT_POINTS,
    seconds: float = DEFAULT_SECONDS,
    rounds: int = DEFAULT_ROUNDS,
    passes: int = DEFAULT_PASSES,
    statistic: str = "min",
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
    from vad.apps.benchmark import bench_ours
    from vad.core.features import FeatureSpec

    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInputError(f"seconds={seconds!r}: must be > 0")
    if rounds < 1 or passes < 1:
        raise InvalidInputError(f"rounds={rounds!r}, passes={passes!r}: must be >= 1")
    if statistic not in STATISTICS:
        raise InvalidInputError(f"statistic={statistic!r}: must be one of {', '.join(STATISTICS)}")
    spec = FeatureSpec() if n_features is None else FeatureSpec(n_mels=n_features)
    hop_ms = 1000.0 * spec.hop_s
    design = design_widths(max_width, n_points)
    best: list[list[float]] = [[] for _ in design]  # fastest pass of each load
    typical: list[list[float]] = [[] for _ in design]  # median pass of each load
    backends = set()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="vad-calibrate-") as tmp:
        paths = [_export_probe(w, Path(tmp) / f"probe{i}.onnx", spec.n_mels, conv_kernel_frames)
                 for i, w in enumerate(design)]
        rng = np.random.default_rng(DESIGN_SEED)
        for r in range(rounds):
            for i in rng.permutation(len(paths)):
                row = bench_ours(str(paths[i]), seconds, block_frames, backend, repeats=passes, chunk_ms=chunk_ms)
                best[i].append(row["us_per_10ms_best"] * hop_ms / 10.0)
                typical[i].append(row["us_per_10ms"] * hop_ms / 10.0)
                backends.add((row["backend"], row["block_frames"], row["chunk_samples"]))
            if log:
                log(f"round {r + 1}/{rounds} done ({time.monotonic() - t0:.0f} s)")
    fastest = [float(min(t)) for t in best]
    median = [float(np.median(t)) for t in typical]
    target = fastest if statistic == "min" else median
    coefficients = fit_coefficients(design, target)
    points = []
    for w, lo, med, y in zip(design, fastest, median, target, strict=True):
        fitted = sum(coefficients[k] * float(v) for k, v in width_terms(w["input"], w["conv"], w["gru"]).items())
        points.append({"widths": w, "us_per_frame": y, "us_per_frame_min": lo, "us_per_frame_median": med,
                       "fitted_us_per_frame": fitted, "relative_error": fitted / y - 1.0})
    errors = np.array([p["relative_error"] for p in points])
    engine_backend, engine_block, engine_chunk = sorted(backends)[0]
    return CostModel(
        coefficients_us=coefficients,
        n_features=spec.n_mels,
        conv_kernel_frames=conv_kernel_frames,
        hop_ms=hop_ms,
        engine={"what": "StreamingVAD.process, int16 chunks, front end + network + post-processing, 1 thread "
                        "(vad.apps.benchmark.bench_ours, as `vad bench`)",
                "backend": engine_backend, "block_frames": engine_block, "chunk_samples": engine_chunk,
                "package_version": __version__, "seconds_per_pass": seconds, "passes": passes,
                "rounds": rounds, "statistic": statistic},
        machine={"host": platform.node(), "processor": platform.processor() or platform.machine(),
                 "cpu_count": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()},
        measured_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        points=points,
        fit={"max_abs_relative_error": float(np.max(np.abs(errors))),
             "rms_relative_error": float(np.sqrt(np.mean(errors**2))), "n_points": len(points),
             "calibration_seconds": time.monotonic() - t0},
    )


def format_points(cost_model: CostModel) -> str:
    lines = [f"{'widths in/conv/gru':>20} {'fastest':>8} {'median':>8} {'fitted':>8} {'error':>7}",
             "-" * 56]
    for p in cost_model.points:
        w = p["widths"]
        lines.append(f"{w['input']:>8}/{w['conv']:>3}/{w['gru']:>3}      {p['us_per_frame_min']:>8.2f} "
                     f"{p['us_per_frame_median']:>8.2f} {p['fitted_us_per_frame']:>8.2f} {100 * p['relative_error']:>6.1f}%")
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
