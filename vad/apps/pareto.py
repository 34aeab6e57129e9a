"""Accuracy against compute from training and evaluation reports (``vad eval --pareto``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vad.apps.eval_report import figure_class, save_figure
from vad.core.errors import InvalidInputError
from vad.core.modelmeta import MFLOP

_ACCURACY_KEYS = ("dev_roc_auc", "dev_auc", "roc_auc", "auc", "val_roc_auc", "val_auc")
# (key, factor to FLOP/s): total compute first; network-only counts are used when nothing else is given
_FLOPS_KEYS = (
    ("total_flops_per_second", 1.0),
    ("total_mflops_per_second", MFLOP),
    ("total_mflops", MFLOP),
    ("flops_per_second", 1.0),
    ("mflops_per_second", MFLOP),
)
_NETWORK_FLOPS_KEYS = (
    ("network_flops_per_second", 1.0),
    ("network_mflops_per_second", MFLOP),
    ("network_mflops", MFLOP),
)
_FRONTEND_FLOPS_KEYS = (
    ("frontend_flops_per_second", 1.0),
    ("frontend_mflops_per_second", MFLOP),
    ("frontend_mflops", MFLOP),
)
_MAX_SEARCH_DEPTH = 3


def _dicts(data: Any, depth: int = 0):
    """data and the objects nested in it (not in lists), breadth-first, depth <= 3."""
    level = [data] if isinstance(data, dict) else []
    while level and depth <= _MAX_SEARCH_DEPTH:
        yield from level
        level = [v for d in level for v in d.values() if isinstance(v, dict)]
        depth += 1


def _number(d: dict, key: str) -> float | None:
    v = d.get(key)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _find_number(data: Any, keys: Sequence[str]) -> float | None:
    """The first of keys (in priority order) found anywhere in data's nested objects."""
    for key in keys:
        for d in _dicts(data):
            v = _number(d, key)
            if v is not None:
                return v
    return None


def _find_flops(data: Any) -> float | None:
    """FLOP/s of a run report: a total if given, else network + front end (or network alone)."""
    for key, factor in _FLOPS_KEYS:
        v = _find_number(data, [key])
        if v is not None:
            return v * factor
    for d in _dicts(data):
        for key, factor in _NETWORK_FLOPS_KEYS:
            net = _number(d, key)
            if net is None:
                continue
            front = next(
                (_number(d, k) * f for k, f in _FRONTEND_FLOPS_KEYS if _number(d, k) is not None),
                0.0,
            )
            return net * factor + front
    return None


def _run_records(data: Any, default_name: str):
    """(name, auc, flops) of each run in a training report.

    Accepted shapes: one run (an object with an accuracy and a FLOP figure), a list of runs
    (``python -m vad.training.report evaluate``), or ``{"results": [...]}`` whose entries hold
    one object per method (``python -m vad.training.report baselines``: dynamic/fixed/pruned at
    each budget), named ``<method>@<budget>``.
    """
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield from _run_records(item, f"{default_name}[{i}]")
        return
    if not isinstance(data, dict):
        return
    if isinstance(data.get("results"), list):
        for i, item in enumerate(data["results"]):
            yield from _run_records(item, f"{default_name}[{i}]")
        return
    auc, flops = _find_number(data, _ACCURACY_KEYS), _find_flops(data)
    name = str(data.get("name") or data.get("run_name") or default_name)
    methods = {k: v for k, v in data.items() if isinstance(v, dict) and _find_number(v, _ACCURACY_KEYS) is not None
               and _find_flops(v) is not None}
    if len(methods) > 1:
        budget = data.get("budget_mflops")
        for method, entry in methods.items():
            label = f"{method}@{budget}" if budget is not None else f"{name}/{method}"
            yield label, _find_number(entry, _ACCURACY_KEYS), _find_flops(entry)
        return
    if auc is not None and flops is not None:
        yield name, auc, flops


def collect_pareto(paths: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """Points (name, MFLOP/s, AUC) from vad.training-run reports and reference lines from eval reports.

    A training-run JSON gives one point: its accuracy (the first of ``_ACCURACY_KEYS``
    found in it or its nested objects: dev figures before validation figures) and its
    compute (a total FLOP/s or MFLOP/s if given, else network + front end, else the
    network alone; see ``_find_flops``). Lists (e.g. a training history) are not searched. An eval
    report (``vad eval --json``) gives a point for each system with a FLOP count and a
    reference line (pooled AUC) for each system without one (the baselines).
    """
    points, lines = [], []
    for p in paths:
        path = Path(p)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"{path}: not a readable JSON report: {exc}") from exc
        if isinstance(data, dict) and "systems" in data and "report_version" in data:
            for name, entry in data["systems"].items():
                auc = entry.get("pooled", {}).get("roc_auc")
                if auc is None:
                    continue
                if entry.get("flops_per_second"):
                    points.append(
                        {
                            "name": name,
                            "mflops_per_second": entry["flops_per_second"] / MFLOP,
                            "auc": auc,
                            "source": str(path),
                        }
                    )
                else:
                    lines.append({"name": name, "auc": auc, "source": str(path)})
            continue
        default_name = path.parent.name or path.stem
        records = list(_run_records(data, default_name))
        if not records:
            raise InvalidInputError(
                f"{path}: found no accuracy ({'/'.join(_ACCURACY_KEYS)}) or FLOPs "
                f"({'/'.join(k for k, _ in _FLOPS_KEYS + _NETWORK_FLOPS_KEYS)}) in this report"
            )
        for name, auc, flops in records:
            points.append({"name": name, "mflops_per_second": flops / MFLOP, "auc": auc, "source": str(path)})
    if not points and not lines:
        raise InvalidInputError("no run reports given for --pareto")
    return {"points": points, "baselines": lines}


def plot_pareto(collected: dict[str, Any], path: str | os.PathLike) -> None:
    """PNG: AUC vs MFLOP/s of the runs (the Pareto front joined), baselines as lines."""
    Figure = figure_class()
    fig = Figure(figsize=(7.5, 5))
    ax = fig.add_subplot(1, 1, 1)
    pts = sorted(collected["points"], key=lambda q: q["mflops_per_second"])
    if pts:
        x = np.array([q["mflops_per_second"] for q in pts])
        y = np.array([q["auc"] for q in pts])
        ax.scatter(x, y, zorder=3)
        for q in pts:
            ax.annotate(
                q["name"],
                (q["mflops_per_second"], q["auc"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        front, best = [], -np.inf
        for xi, yi in zip(x, y, strict=True):
            if yi > best:
                front.append((xi, yi))
                best = yi
        fx, fy = zip(*front, strict=True)
        ax.step(fx, fy, where="post", color="C0", alpha=0.5, label="Pareto front")
        if np.all(x > 0) and x.max() / max(x.min(), 1e-12) > 20:
            ax.set_xscale("log")
    for i, line in enumerate(collected["baselines"]):
        ax.axhline(
            line["auc"], color=f"C{i + 1}", linestyle="--", label=f"{line['name']} (AUC {line['auc']:.3f})"
        )
    ax.set_xlabel("MFLOP/s (network + front end)")
    ax.set_ylabel("frame ROC-AUC")
    ax.set_title("Accuracy vs compute")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
