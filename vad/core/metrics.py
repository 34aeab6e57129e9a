"""Frame-level and segment-level VAD metrics (numpy only).

Conventions:

* ``labels`` are reference frame labels (bool, or 0/1 numbers); ``scores`` are speech
  scores (higher = more speech). A frame is *detected* when ``score >= threshold``.
* Rates are fractions in [0, 1]. A figure whose denominator is zero (e.g. recall on a
  file without speech, AUC when only one class is present) is ``nan``.
* ``roc_auc`` is the Mann-Whitney statistic with average ranks for ties: the probability
  that a random speech frame scores higher than a random non-speech frame, ties counting
  one half. It equals the trapezoid area under the full ROC curve.
* ``roc_curve`` has one point per distinct score (thresholds in decreasing order, the
  first one ``+inf`` giving the point (0, 0)), like sklearn's ``roc_curve`` with
  ``drop_intermediate=False``.
* ``equal_error_rate``: the miss rate (1 - TPR) and false-alarm rate (FPR) are linearly
  interpolated between consecutive ROC points; the EER is their common value where they
  cross, and its threshold is the score at the crossing's nearer ROC point.
* ``boundary_delays``: for each reference segment, the *onset delay* is
  ``start(first detected segment overlapping it) - start(reference)`` and the *offset
  delay* is ``end(last detected segment overlapping it) - end(reference)``, in ms.
  Positive = late, negative = early. "Overlapping" means a non-empty intersection.
  Reference segments that no detection overlaps are counted as missed and give no delay.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from vad.core.errors import InvalidInputError
from vad.core.labelfiles import Segment, merge_segments

_MS_PER_S = 1000.0


def _labels_scores(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    s = np.asarray(scores)
    if y.ndim != 1:
        raise InvalidInputError(f"labels must be 1-D, got shape {y.shape}")
    if s.ndim != 1:
        raise InvalidInputError(f"scores must be 1-D, got shape {s.shape}")
    if y.shape != s.shape:
        raise InvalidInputError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if y.dtype.kind not in "biuf":
        raise InvalidInputError(f"labels must be boolean or 0/1 numbers, got dtype {y.dtype}")
    if y.dtype.kind != "b":
        bad = ~np.isin(y, (0, 1))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(f"labels must be 0 or 1, got {y[i]!r} at index {i}")
    if s.dtype.kind not in "biuf":
        raise InvalidInputError(f"scores must be numeric, got dtype {s.dtype}")
    s = s.astype(np.float64)
    if not np.all(np.isfinite(s)):
        i = int(np.flatnonzero(~np.isfinite(s))[0])
        raise InvalidInputError(f"scores has a non-finite value ({s[i]}) at index {i}")
    return y.astype(bool), s


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of x with ties given their average rank (scipy's rankdata 'average')."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    # start index of each run of equal values
    new_run = np.concatenate([[True], xs[1:] != xs[:-1]])
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_end = np.concatenate([run_start[1:], [xs.size]])  # exclusive
    avg = (run_start + run_end + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = avg[run_id]
    return ranks


def roc_auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve (ties count one half); nan unless both classes occur."""
    y, s = _labels_scores(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): one point per distinct score, thresholds decreasing.

    The first point is (0, 0) at threshold +inf. With only one class present the rate
    of the missing class is nan.
    """
    y, s = _labels_scores(labels, scores)
    order = np.argsort(-s, kind="mergesort")
    ys = y[order]
    ss = s[order]
    last_of_run = np.flatnonzero(np.concatenate([ss[1:] != ss[:-1], [True]])) if ss.size else np.zeros(0, int)
    tps = np.cumsum(ys)[last_of_run].astype(np.float64)
    fps = (last_of_run + 1) - tps
    tps = np.concatenate([[0.0], tps])
    fps = np.concatenate([[0.0], fps])
    thresholds = np.concatenate([[np.inf], ss[last_of_run]])
    n_pos = float(y.sum())
    n_neg = float(y.size) - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tps / n_pos if n_pos else np.full(tps.shape, np.nan)
        fpr = fps / n_neg if n_neg else np.full(fps.shape, np.nan)
    return fpr, tpr, thresholds


def equal_error_rate(labels: Any, scores: Any) -> tuple[float, float]:
    """(eer, threshold): where miss rate and false-alarm rate are equal (see module doc)."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return float("nan"), float("nan")
    fnr = 1.0 - tpr
    diff = fnr - fpr  # starts at +1 (threshold +inf), ends at -1 (lowest threshold): decreasing
    k = int(np.flatnonzero(diff <= 0)[0])
    if diff[k] == 0 or k == 0:
        return float(fpr[k]), float(thresholds[k])
    # linear interpolation between points k-1 (diff > 0) and k (diff <= 0)
    t = diff[k - 1] / (diff[k - 1] - diff[k])
    eer = fpr[k - 1] + t * (fpr[k] - fpr[k - 1])
    nearer = k - 1 if t < 0.5 else k
    return float(eer), float(thresholds[nearer])


@dataclasses.dataclass(frozen=True)
class ConfusionCounts:
    """Frame counts of a binary decision against reference labels; they add up."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        return ConfusionCounts(self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn)

    @property
    def n_frames(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @staticmethod
    def _ratio(num: int, den: int) -> float:
        return num / den if den else float("nan")

    @property
    def precision(self) -> float:
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """2 tp / (2 tp + fp + fn): nan only when there is neither speech nor detection."""
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def miss_rate(self) -> float:
        """Share of reference speech frames not detected (1 - recall)."""
        return self._ratio(self.fn, self.tp + self.fn)

    @property
    def false_alarm_rate(self) -> float:
        """Share of reference non-speech frames detected as speech."""
        return self._ratio(self.fp, self.fp + self.tn)

    def to_dict(self) -> dict[str, float]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "miss_rate": self.miss_rate,
            "false_alarm_rate": self.false_alarm_rate,
        }


def confusion_counts(labels: Any, scores: Any, threshold: float = 0.5) -> ConfusionCounts:
    """Counts of frames detected (score >= threshold) against reference labels."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
        raise InvalidInputError(f"threshold={threshold!r}: must be a number")
    y, s = _labels_scores(labels, scores)
    d = s >= threshold
    return ConfusionCounts(
        tp=int(np.count_nonzero(d & y)),
        fp=int(np.count_nonzero(d & ~y)),
        tn=int(np.count_nonzero(~d & ~y)),
        fn=int(np.count_nonzero(~d & y)),
    )


def precision_recall_f1(labels: Any, scores: Any, threshold: float = 0.5) -> tuple[float, float, float]:
    c = confusion_counts(labels, scores, threshold)
    return c.precision, c.recall, c.f1


def miss_false_alarm_rates(labels: Any, scores: Any, threshold: float = 0.5) -> tuple[float, float]:
    c = confusion_counts(labels, scores, threshold)
    return c.miss_rate, c.false_alarm_rate


@dataclasses.dataclass(frozen=True)
class BoundaryDelays:
    """Onset/offset delays (ms) of detections against reference segments (module doc)."""

    onset_ms: np.ndarray
    offset_ms: np.ndarray
    n_reference: int
    n_missed: int


def boundary_delays(reference: Sequence[Segment], detected: Sequence[Segment]) -> BoundaryDelays:
    """Delays of the first/last detection overlapping each reference segment, in ms."""
    ref = merge_segments(reference)
    det = merge_segments(detected)
    det_start = np.array([d.start_s for d in det], dtype=np.float64)
    det_end = np.array([d.end_s for d in det], dtype=np.float64)
    onsets, offsets = [], []
    missed = 0
    for r in ref:
        hits = np.flatnonzero((det_start < r.end_s) & (det_end > r.start_s))
        if hits.size == 0:
            missed += 1
            continue
        onsets.append((det_start[hits[0]] - r.start_s) * _MS_PER_S)
        offsets.append((det_end[hits[-1]] - r.end_s) * _MS_PER_S)
    return BoundaryDelays(np.array(onsets), np.array(offsets), len(ref), missed)


def percentile_or_nan(values: Any, q: float) -> float:
    """np.percentile (linear) of values, nan when there are none."""
    arr = np.asarray(values, dtype=np.float64)
    return float(np.percentile(arr, q)) if arr.size else float("nan")
