"""Writing an evaluation report: JSON, a plain-text table, a Markdown table and plots."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from vad.apps.eval_inputs import FRAME_HOP_S
from vad.core.labelfiles import (
    atomic_write_text,
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def report_json(report: dict[str, Any]) -> str:
    """The report as JSON (nan/inf -> null; plot arrays left out)."""
    return json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n"


def write_report(path: str | os.PathLike, report: dict[str, Any]) -> None:
    atomic_write_text(path, report_json(report))


_TABLE_COLUMNS = [
    ("AUC", "roc_auc", "{:.4f}"),
    ("EER", "eer", "{:.3f}"),
    ("P", "precision", "{:.3f}"),
    ("R", "recall", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("Miss", "miss_rate", "{:.3f}"),
    ("FA", "false_alarm_rate", "{:.3f}"),
    ("FA/min", "false_alarms_per_minute", "{:.1f}"),
    ("FAns%", "nonspeech_false_alarm_rate", "{:.3%}"),
    ("On50ms", "onset_delay_ms_median", "{:.0f}"),
    ("On90ms", "onset_delay_ms_p90", "{:.0f}"),
    ("Off50ms", "offset_delay_ms_median", "{:.0f}"),
    ("Off90ms", "offset_delay_ms_p90", "{:.0f}"),
    ("RTF", "real_time_factor", "{:.4f}"),
]


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table: per system, pooled then per group and per SNR."""
    rows = []
    for name, entry in report["systems"].items():
        scopes = [("pooled", entry["pooled"])]
        if len(entry["groups"]) > 1:
            scopes += list(entry["groups"].items())
        scopes += list(entry.get("families", {}).items())
        scopes += list(entry["snr"].items())
        for scope, fig in scopes:
            cells = [name, scope, str(fig["files"])]
            for _, key, fmt in _TABLE_COLUMNS:
                v = fig[key]
                cells.append(
                    "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)
                )
            rows.append(cells)
    header = ["system", "scope", "files"] + [c[0] for c in _TABLE_COLUMNS]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [header, *rows]
    ]
    cfg = report["config"]
    lines.append(
        f"frames of {cfg['frame_hop_ms']:g} ms, collar {cfg['collar_ms']:g} ms; P/R/F1/Miss/FA at each system's "
        "default threshold; AUC/EER over files with speech only; FA/min and FAns% (frames >= threshold) on files "
        "without speech; delays signed (late > 0); RTF = compute s / audio s"
    )
    return "\n".join(lines)


def format_markdown(report: dict[str, Any]) -> str:
    """A Markdown table: one row per scope (pooled, each group, family and SNR), one column
    per system; frame ROC-AUC where the scope has speech, else the share of its frames scored
    as speech (false alarms on speech-free audio)."""
    systems = list(report["systems"])
    first = report["systems"][systems[0]]
    scopes = [("pooled (AUC over the files with speech)", "pooled", None)]
    scopes += [(g, "groups", g) for g in first["groups"]]
    scopes += [(f, "families", f) for f in first.get("families", {})]
    scopes += [(k, "snr", k) for k in first["snr"]]
    lines = ["| scope | files | " + " | ".join(systems) + " |", "|---|---:|" + "---:|" * len(systems)]
    for label, kind, key in scopes:
        figs = [report["systems"][n][kind] if key is None else report["systems"][n][kind][key] for n in systems]
        has_speech = figs[0]["speech_frames"] > 0
        cells = []
        for fig in figs:
            v = fig["roc_auc"] if has_speech else fig["nonspeech_false_alarm_rate"]
            ok = isinstance(v, float) and math.isfinite(v)
            cells.append(("{:.3f}" if has_speech else "FA {:.3%}").format(v) if ok else "-")
        lines.append(f"| {label} | {figs[0]['files']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Frame ROC-AUC over the files with speech; `FA` = share of the frames of speech-free files "
                 "scored >= the system's default threshold.")
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------


def figure_class():
    from vad.core.errors import require

    require("matplotlib", "plot", "plotting (--plot, --pareto)")
    from matplotlib.figure import Figure

    return Figure


def save_figure(fig: Any, path: str | os.PathLike) -> None:
    from vad.core.atomicfile import atomic_output

    with atomic_output(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)


def plot_report(report: dict[str, Any], path: str | os.PathLike) -> None:
    """PNG: pooled ROC curve per system, and probability over time on the worst file."""
    Figure = figure_class()
    fig = Figure(figsize=(12, 5.5))
    ax_roc = fig.add_subplot(1, 2, 1)
    ax_t = fig.add_subplot(1, 2, 2)
    for name, curve in report["_curves"].items():
        auc = report["systems"][name]["pooled"]["roc_auc"]
        ax_roc.plot(curve["fpr"], curve["tpr"], label=f"{name} (AUC {auc:.3f})")
    ax_roc.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
    ax_roc.set_xlabel("false-alarm rate (non-speech frames detected)")
    ax_roc.set_ylabel("recall (speech frames detected)")
    ax_roc.set_title(f"Frame ROC, pooled ({len(report['files'])} files)")
    ax_roc.set_xlim(0, 1)
    ax_roc.set_ylim(0, 1.01)
    ax_roc.grid(alpha=0.3)
    ax_roc.legend(loc="lower right")
    worst = report["worst_file"]["path"]
    ref_drawn = False
    for name, curve in report["_curves"].items():
        scores, labels = curve["files"][worst]
        t = np.arange(scores.size) * FRAME_HOP_S
        if not ref_drawn:
            ax_t.fill_between(t, 0, labels.astype(float), step="post", color="0.85", label="reference speech")
            ref_drawn = True
        ax_t.plot(t, scores, linewidth=0.9, label=name)
    ax_t.set_ylim(-0.02, 1.02)
    ax_t.set_xlabel("time (s)")
    ax_t.set_ylabel("speech score")
    ax_t.set_title(
        f"Worst file: {Path(worst).name} (mean frame error {report['worst_file']['mean_frame_error_rate']:.2f})"
    )
    ax_t.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
