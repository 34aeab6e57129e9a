"""Evaluate VAD systems against labeled audio: the Python API behind ``vad eval``.

>>> from vad.apps.evaluation import discover, evaluate, format_table
>>> items = discover(["../shared/data/dev"])
>>> report = evaluate(items, [ModelSystem("model.onnx"), *make_baselines("webrtc,silero")])
>>> print(format_table(report))

**Systems.** A system is any object with ``name`` (str), ``default_threshold`` (float) and
``frame_scores(audio) -> array``: ``audio`` is float32 mono at 16 kHz, the result has one
speech score per 10 ms reference frame (``n_samples // 160``; frame ``i`` is
``[i * 10 ms, (i + 1) * 10 ms)``). A system may instead offer
``score(audio) -> SystemOutput`` to also return its own detected segments (our models
return the segments of their own default post-processing, from the streaming runtime).
Without it, a system's detected segments come from the shared post-processing
(``vad.core.postprocess``) at its default options, with the onset threshold set to the
system's ``default_threshold`` (``default_segments``), so the segment figures of all
systems follow the same rules. Optional attribute
``flops_per_second`` (None when unknown) is copied into the report.

**Labels.** Every audio file needs a label file of the same stem (``.rttm``, ``.txt``
Audacity, ``.csv``, ``.json``; first found in that order), looked up in ``labels_dir``
(mirroring the audio's path below its PATH argument, then flat) and next to the audio.
A file without labels is an error naming it; an empty label file means no speech.
Reference frame labels use ``vad.core.labelfiles.segments_to_frames`` (at least half covered).

**Figures** (per system; per file, per group, per SNR and pooled over all files):

* frame ``roc_auc`` and ``eer`` over all scored frames (pooled = frames of all files
  together), ``precision``/``recall``/``f1``/``miss_rate``/``false_alarm_rate`` at the
  system's default threshold (score >= threshold is speech);
* ``false_alarms_per_minute``: detected segments per minute of the files without any
  reference speech (nan when there are none);
* onset/offset delay median and 90th percentile in ms (``vad.core.metrics.boundary_delays``:
  first/last detected segment overlapping each reference segment; signed, late > 0),
  and the share of reference segments no detection overlaps;
* ``real_time_factor``: seconds the system spent / seconds of audio (audio decoding and
  resampling excluded).

A collar of C ms excludes from the frame figures every frame whose interval comes closer
than C ms to a reference segment boundary (segment figures are not affected).
Groups are the folders of the files relative to the PATH argument they were found under
(``dev``, ``dev/nonspeech``). Where a folder holds several file families (the file name up
to its first ``_``), each family of two or more files is also summarised (``families``:
``dev/ami``, ``dev/nonspeech/0ad``, ...).
The SNR of a file is read from its path (``snr10``, ``snr_-5``, ``SNR5.5`` ...); files with an
SNR are also summarised per SNR.

**Speech-free files never enter an AUC.** ``roc_auc`` and ``eer`` of a pooled or group summary
use only the files with reference speech (frames of speech-free music or noise are easy
negatives that would lift any AUC); files without speech are judged by
``nonspeech_false_alarm_rate`` (share of their frames scored >= the default threshold) and
``false_alarms_per_minute``. ``speech_pooled`` is the summary of all files with speech.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vad.core.errors import AudioFileError, InvalidInputError, LabelFormatError, VADError
from vad.core.labelfiles import (
    LABEL_SUFFIXES,
    Segment,
    atomic_write_text,
    merge_segments,
    read_labels,
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
from vad.core.modelmeta import MFLOP

EVAL_SAMPLE_RATE_HZ = 16000
FRAME_HOP_SAMPLES = 160
FRAME_HOP_S = FRAME_HOP_SAMPLES / EVAL_SAMPLE_RATE_HZ
REPORT_VERSION = 1
_SECONDS_PER_MINUTE = 60.0
_MS_PER_S = 1000.0
_DELAY_PERCENTILE = 90.0
_SNR_PATTERN = re.compile(r"snr[_=]?(m?-?\d+(?:\.\d+)?)", re.IGNORECASE)  # "snr-5" = -5 dB
_AUDIO_SUFFIXES_FALLBACK = frozenset({".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif"})


# --- discovery ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class EvalItem:
    """One audio file to evaluate with its label file, group and (if named) SNR."""

    audio_path: Path
    label_path: Path
    group: str
    snr_db: float | None = None


def _audio_suffixes() -> frozenset[str]:
    try:  # one list of audio suffixes in the project: the labeling module's
        from vad.apps.labeling import AUDIO_SUFFIXES

        return frozenset(AUDIO_SUFFIXES)
    except ImportError:  # pragma: no cover - labeling module absent
        return _AUDIO_SUFFIXES_FALLBACK


def snr_from_name(path: str | Path) -> float | None:
    """SNR in dB carried by a path (``snr10``; ``snr-5``, ``snr_-5`` and ``SNRm5`` all mean -5), or None."""
    matches = _SNR_PATTERN.findall(str(path))
    if not matches:
        return None
    text = matches[-1]
    return -float(text[1:]) if text[:1].lower() == "m" else float(text)


def find_label_file(audio: Path, labels_dir: Path | None = None, relative: Path | None = None) -> Path | None:
    """The label file of an audio file (module doc), or None."""
    candidates: list[Path] = []
    if labels_dir is not None:
        if relative is not None:
            candidates += [labels_dir / relative.parent / (audio.stem + s) for s in LABEL_SUFFIXES]
        candidates += [labels_dir / (audio.stem + s) for s in LABEL_SUFFIXES]
    candidates += [audio.with_suffix(s) for s in LABEL_SUFFIXES]
    for c in candidates:
        if c.is_file():
            return c
    return None


def discover(
    paths: Sequence[str | os.PathLike], labels_dir: str | os.PathLike | None = None
) -> list[EvalItem]:
    """Audio files under PATHs (folders recursively, in sorted order) with their labels.

    Raises AudioFileError for a PATH that does not exist or holds no audio, and
    LabelFormatError naming every audio file that has no label file.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise InvalidInputError("no PATH given: name audio files or folders to evaluate")
    ldir = Path(labels_dir) if labels_dir is not None else None
    if ldir is not None and not ldir.is_dir():
        raise LabelFormatError(f"labels folder not found: {ldir}")
    suffixes = _audio_suffixes()
    items: list[EvalItem] = []
    missing: list[str] = []
    seen: set[Path] = set()
    for arg in paths:
        root = Path(arg)
        if root.is_dir():
            files = sorted(
                p
                for p in root.rglob("*")
                if p.is_file()
                and p.suffix.lower() in suffixes
                and not any(part.startswith(".") for part in p.parts[len(root.parts) :])
            )
            if not files:
                raise AudioFileError(
                    f"{root}: folder holds no audio files ({', '.join(sorted(suffixes)[:6])}, ...)"
                )
            base_name = root.resolve().name or str(root)
        elif root.is_file():
            files = [root]
            root = root.parent
            base_name = root.resolve().name or str(root)
        else:
            raise AudioFileError(f"{arg}: no such file or folder")
        for f in files:
            key = f.resolve()
            if key in seen:
                continue
            seen.add(key)
            rel = f.relative_to(root)
            label = find_label_file(f, ldir, rel)
            if label is None:
                missing.append(str(f))
                continue
            group = "/".join([base_name, *rel.parent.parts])
            items.append(EvalItem(f, label, group, snr_from_name(rel)))
    if missing:
        where = f" next to it or in {ldir}" if ldir is not None else " next to it"
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise LabelFormatError(
            f"no label file ({'/'.join(LABEL_SUFFIXES)} of the same stem{where}) for: {shown}"
        )
    return items


def _family(path: Path) -> str:
    return path.stem.split("_", 1)[0]


def family_of(items: Sequence[EvalItem]) -> dict[Path, str]:
    """``group/family`` of each file whose folder holds several families, for families of >= 2 files."""
    members: dict[str, dict[str, list[Path]]] = {}
    for it in items:
        members.setdefault(it.group, {}).setdefault(_family(it.audio_path), []).append(it.audio_path)
    out: dict[Path, str] = {}
    for group, fams in members.items():
        if len(fams) > 1:
            for fam, paths in fams.items():
                if len(paths) >= 2:
                    out.update({p: f"{group}/{fam}" for p in paths})
    return out


# --- systems --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SystemOutput:
    """What a system says about one file: a score per 10 ms frame, and its segments."""

    scores: np.ndarray
    segments: list[Segment] | None = None


def run_system(system: Any, audio: np.ndarray) -> tuple[SystemOutput, float]:
    """(output, seconds spent) of a system on 16 kHz audio; scores validated and sized."""
    n_frames = audio.size // FRAME_HOP_SAMPLES
    t0 = time.perf_counter()
    if hasattr(system, "score"):
        out = system.score(audio)
    else:
        out = SystemOutput(np.asarray(system.frame_scores(audio)))
    elapsed = time.perf_counter() - t0
    scores = np.asarray(out.scores, dtype=np.float64).reshape(-1)
    if scores.size != n_frames:
        raise InvalidInputError(
            f"system {system.name!r} returned {scores.size} frame scores for {n_frames} frames of 10 ms"
        )
    if not np.all(np.isfinite(scores)):
        raise InvalidInputError(f"system {system.name!r} returned non-finite scores")
    segments = out.segments
    if segments is None:
        segments = default_segments(scores, system.default_threshold)
    return SystemOutput(scores, segments), elapsed


def default_segments(scores: np.ndarray, threshold: float) -> list[Segment]:
    """Segments of a system without its own: the shared post-processing (``vad.core.postprocess``,
    default options) with the onset threshold set to the system's threshold (and the offset
    threshold lowered to it when the default offset is higher)."""
    from vad.core.postprocess import PostprocessConfig, segments_from_probabilities

    defaults = PostprocessConfig()
    config = defaults.replace(
        onset_threshold=float(threshold), offset_threshold=min(defaults.offset_threshold, float(threshold))
    )
    return [
        Segment(s.start_s, s.end_s, score=s.mean_probability)
        for s in segments_from_probabilities(np.asarray(scores, dtype=np.float64), FRAME_HOP_S, config)
    ]


class ModelSystem:
    """One of our exported models, run through the streaming runtime at its default
    post-processing (the model's metadata); threshold = its onset threshold."""

    def __init__(self, path: str | os.PathLike | None = None, name: str | None = None) -> None:
        from vad.runtime.model import VADModel

        self.model = VADModel(path)
        meta = self.model.metadata
        self.path = Path(self.model.path)
        self.name = name or meta.name or self.path.stem
        self.default_threshold = float(meta.postprocess.onset_threshold)
        self.flops_per_second = float(meta.total_flops_per_second)
        spec = meta.feature_spec
        # model hop expressed in 16 kHz samples (the eval rate)
        self._hop_eval_samples = spec.hop_length_samples * EVAL_SAMPLE_RATE_HZ / spec.sample_rate_hz

    def score(self, audio: np.ndarray) -> SystemOutput:
        from vad.apps.baselines import map_scores_to_frames
        from vad.apps.labeling import events_to_segments
        from vad.runtime.engine import StreamingVAD

        result = StreamingVAD(model=self.model, sample_rate=EVAL_SAMPLE_RATE_HZ).process_signal(audio)
        p = result.probabilities.astype(np.float64)
        n_frames = audio.size // FRAME_HOP_SAMPLES
        if self._hop_eval_samples != FRAME_HOP_SAMPLES or p.size != n_frames:
            p = map_scores_to_frames(p, self._hop_eval_samples, n_frames, FRAME_HOP_SAMPLES)
        return SystemOutput(p, events_to_segments(result.events))


# --- evaluation -----------------------------------------------------------------------------


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


def load_eval_audio(path: Path) -> np.ndarray:
    from vad.core.audio import load_audio

    audio, _ = load_audio(path, EVAL_SAMPLE_RATE_HZ)
    return np.ascontiguousarray(audio, dtype=np.float32)


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
            reference = [s for s in read_labels(item.label_path) if s.duration_s > 0]
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


# --- output ---------------------------------------------------------------------------------


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


def _figure_class():
    from vad.core.errors import require

    require("matplotlib", "plot", "plotting (--plot, --pareto)")
    from matplotlib.figure import Figure

    return Figure


def _save_figure(fig: Any, path: str | os.PathLike) -> None:
    from vad.core.atomicfile import atomic_output

    with atomic_output(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)


def plot_report(report: dict[str, Any], path: str | os.PathLike) -> None:
    """PNG: pooled ROC curve per system, and probability over time on the worst file."""
    Figure = _figure_class()
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
    _save_figure(fig, path)


# --- pareto ---------------------------------------------------------------------------------

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
    Figure = _figure_class()
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
    _save_figure(fig, path)
