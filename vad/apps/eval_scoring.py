"""Scoring: every system on every file, the per-file/group/family/SNR/pooled figures
(``evaluate``; see ``vad.apps.evaluation`` for what each figure means)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from vad.apps.eval_inputs import (
    EVAL_SAMPLE_RATE_HZ,
    FRAME_HOP_S,
    FRAME_HOP_SAMPLES,
    EvalItem,
    family_of,
    load_eval_audio,
)
from vad.apps.eval_systems import run_system
from vad.core.errors import AudioFileError, InvalidInputError, VADError
from vad.core.labelfiles import (
    Segment,
    merge_segments,
    read_reference,
    segments_to_frames,
)
from vad.core.metrics import (
    ConfusionCounts,
    boundary_delays,
    confusion_counts,
    equal_error_rate,
    percentile_or_nan,
    roc_auc,
    roc_curve,
)

REPORT_VERSION = 1
_SECONDS_PER_MINUTE = 60.0
_MS_PER_S = 1000.0
_DELAY_PERCENTILE = 90.0


@dataclasses.dataclass
class _FileResult:
    item: EvalItem
    duration_s: float
    reference: list[Segment]
    labels: np.ndarray  # bool per frame, collar-excluded frames removed
    scores: np.ndarray  # per frame, collar-excluded frames removed
    all_scores: np.ndarray  # per frame, for plots
    all_labels: np.ndarray
    counts: ConfusionCounts
    detected: list[Segment]
    seconds: float


def collar_mask(
    reference: Sequence[Segment], n_frames: int, collar_ms: float, hop_s: float = FRAME_HOP_S
) -> np.ndarray:
    """True for frames kept: frames closer than collar_ms to a reference boundary are dropped."""
    keep = np.ones(n_frames, dtype=bool)
    if collar_ms <= 0 or n_frames == 0:
        return keep
    collar_frames = collar_ms / _MS_PER_S / hop_s
    index = np.arange(n_frames)
    for seg in reference:
        for boundary in (seg.start_s, seg.end_s):
            # in frame units, rounded like vad.core.labelfiles does, so decimal times compare exactly
            lo = round(boundary / hop_s - collar_frames, 6)
            hi = round(boundary / hop_s + collar_frames, 6)
            keep &= ~((index + 1 > lo) & (index < hi))
    return keep


def _summary(results: list[_FileResult], threshold: float) -> dict[str, Any]:
    with_speech = [r for r in results if r.all_labels.any()]
    labels = np.concatenate([r.labels for r in with_speech]) if with_speech else np.zeros(0, bool)
    scores = np.concatenate([r.scores for r in with_speech]) if with_speech else np.zeros(0)
    counts = sum((r.counts for r in results), ConfusionCounts())
    eer, eer_threshold = equal_error_rate(labels, scores)
    speech_free = [r for r in results if not r.all_labels.any()]
    free_frames = sum(r.all_scores.size for r in speech_free)
    free_alarms = sum(int(np.count_nonzero(r.all_scores >= threshold)) for r in speech_free)
    onsets, offsets = [], []
    n_ref = n_missed = 0
    for r in results:
        d = boundary_delays(r.reference, r.detected)
        onsets.append(d.onset_ms)
        offsets.append(d.offset_ms)
        n_ref += d.n_reference
        n_missed += d.n_missed
    onsets_ms = np.concatenate(onsets) if onsets else np.zeros(0)
    offsets_ms = np.concatenate(offsets) if offsets else np.zeros(0)
    nonspeech = [r for r in results if not r.reference]
    nonspeech_min = sum(r.duration_s for r in nonspeech) / _SECONDS_PER_MINUTE
    n_fa_segments = sum(len(r.detected) for r in nonspeech)
    duration = sum(r.duration_s for r in results)
    return {
        "files": len(results),
        "duration_s": duration,
        "frames": sum(int(r.labels.size) for r in results),
        "speech_frames": int(labels.sum()),
        "auc_frames": int(labels.size),
        "threshold": threshold,
        "roc_auc": roc_auc(labels, scores),
        "eer": eer,
        "eer_threshold": eer_threshold,
        **counts.to_dict(),
        "nonspeech_minutes": nonspeech_min,
        "nonspeech_false_alarm_rate": free_alarms / free_frames if free_frames else float("nan"),
        "false_alarms_per_minute": n_fa_segments / nonspeech_min if nonspeech_min > 0 else float("nan"),
        "reference_segments": n_ref,
        "missed_segments": n_missed,
        "missed_segment_rate": n_missed / n_ref if n_ref else float("nan"),
        "onset_delay_ms_median": percentile_or_nan(onsets_ms, 50.0),
        "onset_delay_ms_p90": percentile_or_nan(onsets_ms, _DELAY_PERCENTILE),
        "offset_delay_ms_median": percentile_or_nan(offsets_ms, 50.0),
        "offset_delay_ms_p90": percentile_or_nan(offsets_ms, _DELAY_PERCENTILE),
        "processing_s": sum(r.seconds for r in results),
        "real_time_factor": sum(r.seconds for r in results) / duration if duration > 0 else float("nan"),
    }


def _snr_key(snr: float) -> str:
    return f"snr{snr:g}"


def evaluate(
    items: Sequence[EvalItem],
    systems: Sequence[Any],
    collar_ms: float = 0.0,
    on_file: Callable[[int, int, EvalItem], None] | None = None,
) -> dict[str, Any]:
    """Score every system on every item; return the report (a JSON-ready dict).

    Each file is decoded once (16 kHz mono) and given to every system. ``on_file(i, n,
    item)`` is called before file i. Report layout: ``config``, ``files`` (per file: path,
    group, duration, speech), ``systems`` -> name -> ``pooled`` / ``groups`` / ``snr`` /
    ``files`` figures (module doc), ``default_threshold``, ``flops_per_second``; and
    ``worst_file`` (the file with the highest mean frame error rate over the systems).
    Arrays for plots are kept in ``report["_curves"]`` (not written to JSON).
    """
    if isinstance(collar_ms, bool) or not isinstance(collar_ms, (int, float)) or not math.isfinite(collar_ms):
        raise InvalidInputError(f"collar_ms={collar_ms!r}: must be a finite number")
    if collar_ms < 0:
        raise InvalidInputError(f"collar_ms={collar_ms!r}: must be >= 0")
    if not systems:
        raise InvalidInputError("no system to evaluate: give --model and/or --baselines")
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"system names must differ, got {names}")
    if not items:
        raise InvalidInputError("no files to evaluate")
    per_system: dict[str, list[_FileResult]] = {s.name: [] for s in systems}
    file_rows = []
    failed: list[dict[str, str]] = []
    evaluated: list[EvalItem] = []
    for i, item in enumerate(items):
        if on_file is not None:
            on_file(i, len(items), item)
        try:
            audio = load_eval_audio(item.audio_path)
            reference = read_reference(item.label_path, audio.size / EVAL_SAMPLE_RATE_HZ)
        except VADError as exc:  # other files still finish; the report lists the failure
            failed.append({"path": str(item.audio_path), "error": str(exc)})
            continue
        evaluated.append(item)
        n_frames = audio.size // FRAME_HOP_SAMPLES
        duration_s = n_frames * FRAME_HOP_S
        ref_frames = segments_to_frames(reference, n_frames, FRAME_HOP_S)
        reference = merge_segments(reference)
        keep = collar_mask(reference, n_frames, collar_ms)
        file_rows.append(
            {
                "path": str(item.audio_path),
                "labels": str(item.label_path),
                "group": item.group,
                "snr_db": item.snr_db,
                "duration_s": duration_s,
                "speech_s": float(ref_frames.sum() * FRAME_HOP_S),
                "scored_frames": int(keep.sum()),
            }
        )
        for system in systems:
            out, seconds = run_system(system, audio)
            lab, sc = ref_frames[keep], out.scores[keep]
            per_system[system.name].append(
                _FileResult(
                    item=item,
                    duration_s=duration_s,
                    reference=reference,
                    labels=lab,
                    scores=sc,
                    all_scores=out.scores,
                    all_labels=ref_frames,
                    counts=confusion_counts(lab, sc, system.default_threshold),
                    detected=out.segments or [],
                    seconds=seconds,
                )
            )

    if not evaluated:
        raise AudioFileError("no file could be evaluated: " + "; ".join(f["error"] for f in failed[:5]))
    report: dict[str, Any] = {
        "report_version": REPORT_VERSION,
        "config": {
            "sample_rate_hz": EVAL_SAMPLE_RATE_HZ,
            "frame_hop_ms": FRAME_HOP_S * _MS_PER_S,
            "collar_ms": float(collar_ms),
            "frame_rule": "frame [i*hop, (i+1)*hop) is speech when >= half covered by reference speech",
            "segments": "systems without their own segments: vad.core.postprocess defaults, onset = default threshold",
        },
        "files": file_rows,
        "failed": failed,
        "systems": {},
        "_curves": {},
    }
    for system in systems:
        results = per_system[system.name]
        thr = float(system.default_threshold)
        groups = sorted({r.item.group for r in results})
        snrs = sorted({r.item.snr_db for r in results if r.item.snr_db is not None})
        fam = family_of([r.item for r in results])
        entry = {
            "default_threshold": thr,
            "flops_per_second": getattr(system, "flops_per_second", None),
            "pooled": _summary(results, thr),
            "groups": {g: _summary([r for r in results if r.item.group == g], thr) for g in groups},
            "families": {f: _summary([r for r in results if fam.get(r.item.audio_path) == f], thr)
                         for f in sorted(set(fam.values()))},
            "snr": {_snr_key(s): _summary([r for r in results if r.item.snr_db == s], thr) for s in snrs},
            "files": {str(r.item.audio_path): _summary([r], thr) for r in results},
        }
        report["systems"][system.name] = entry
        speech_results = [r for r in results if r.all_labels.any()] or results
        labels = np.concatenate([r.labels for r in speech_results])
        scores = np.concatenate([r.scores for r in speech_results])
        fpr, tpr, _ = roc_curve(labels, scores)
        report["_curves"][system.name] = {
            "fpr": fpr,
            "tpr": tpr,
            "files": {str(r.item.audio_path): (r.all_scores, r.all_labels) for r in results},
        }
    # worst file: highest frame error rate averaged over the systems
    errors = np.zeros(len(evaluated))
    for results in per_system.values():
        errors += np.array([(r.counts.fp + r.counts.fn) / max(r.counts.n_frames, 1) for r in results])
    worst = int(np.argmax(errors / len(systems)))
    report["worst_file"] = {
        "path": str(evaluated[worst].audio_path),
        "mean_frame_error_rate": float(errors[worst] / len(systems)),
    }
    return report
