"""Metrics against hand-computed cases and (when installed) sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vad.core.errors import InvalidInputError
from vad.core.labelfiles import Segment
from vad.core.metrics import (
    ConfusionCounts,
    boundary_delays,
    confusion_counts,
    equal_error_rate,
    miss_false_alarm_rates,
    precision_recall_f1,
    roc_auc,
    roc_curve,
)

_trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


def test_auc_hand_cases():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    # all tied: one half
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    # pairs (pos, neg): pos {0.4, 0.8}, neg {0.4, 0.1}: 0.4v0.4 tie=.5, 0.4v0.1=1, 0.8v*=2 -> 3.5/4
    assert roc_auc([1, 1, 0, 0], [0.4, 0.8, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    # 3 pos, 2 neg: pos {3, 1, 2}, neg {2, 0}: 3>2,3>0,1<2,1>0,2=2,2>0 -> 4.5/6
    assert roc_auc(np.array([True, True, True, False, False]), [3, 1, 2, 2, 0]) == pytest.approx(0.75)
    assert math.isnan(roc_auc([1, 1], [0.1, 0.2]))
    assert math.isnan(roc_auc([0, 0], [0.1, 0.2]))


def test_auc_equals_trapezoid_of_roc_curve():
    rng = np.random.default_rng(0)
    y = rng.random(2000) < 0.3
    s = np.round(rng.random(2000) + 0.5 * y, 2)  # rounding makes many ties
    fpr, tpr, thr = roc_curve(y, s)
    assert roc_auc(y, s) == pytest.approx(_trapezoid(tpr, fpr), abs=1e-12)
    assert thr[0] == np.inf and np.all(np.diff(thr) < 0)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1


def test_roc_curve_hand_case():
    fpr, tpr, thr = roc_curve([1, 0, 1, 0], [0.9, 0.6, 0.6, 0.1])
    np.testing.assert_allclose(thr, [np.inf, 0.9, 0.6, 0.1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])


def test_eer_hand_cases():
    # perfect separation -> 0
    eer, thr = equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    assert eer == 0.0 and 0.2 < thr <= 0.8
    # inverted -> 1
    assert equal_error_rate([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1])[0] == 1.0
    # pos {0.6, 0.9}, neg {0.1, 0.7}: at thr 0.7 miss 1/2, fa 1/2 -> exact crossing
    eer, thr = equal_error_rate([1, 1, 0, 0], [0.6, 0.9, 0.1, 0.7])
    assert eer == pytest.approx(0.5) and thr == 0.7
    # interpolated: 1 pos {0.5}, 2 neg {0.7, 0.1}: points (fpr,fnr): inf(0,1) .7(.5,1) .5(.5,0) -> eer .5
    assert equal_error_rate([1, 0, 0], [0.5, 0.7, 0.1])[0] == pytest.approx(0.5)
    # crossing inside a segment: pos {0.9, 0.5}, neg {0.7}: (0,1),(0,.5),(1,.5),(1,0): between .9 and .7
    # diff = fnr - fpr: 1, .5, -.5 -> t = .5 -> eer = fpr 0 + .5*1 = .5
    assert equal_error_rate([1, 1, 0], [0.9, 0.5, 0.7])[0] == pytest.approx(0.5)
    assert math.isnan(equal_error_rate([1, 1], [0.2, 0.3])[0])


def test_confusion_and_rates():
    y = [1, 1, 1, 0, 0, 0, 0, 1]
    s = [0.9, 0.5, 0.2, 0.6, 0.1, 0.0, 0.4, 0.7]
    c = confusion_counts(y, s, 0.5)
    assert (c.tp, c.fp, c.tn, c.fn) == (3, 1, 3, 1)
    assert precision_recall_f1(y, s, 0.5) == pytest.approx((0.75, 0.75, 0.75))
    assert miss_false_alarm_rates(y, s, 0.5) == pytest.approx((0.25, 0.25))
    total = c + confusion_counts([0, 0], [1.0, 0.0])
    assert (total.tp, total.fp, total.tn, total.fn) == (3, 2, 4, 1)
    assert total.n_frames == 10
    empty = ConfusionCounts(tn=5)
    assert math.isnan(empty.precision) and math.isnan(empty.recall) and math.isnan(empty.f1)
    assert empty.false_alarm_rate == 0.0
    d = c.to_dict()
    assert d["tp"] == 3 and d["f1"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "labels,scores,match",
    [
        ([0, 1], [0.1], "differ in length"),
        ([0, 2], [0.1, 0.2], "0 or 1"),
        ([[0, 1]], [[0.1, 0.2]], "1-D"),
        ([0, 1], [0.1, np.nan], "non-finite"),
        (["a", "b"], [0.1, 0.2], "dtype"),
    ],
)
def test_bad_input(labels, scores, match):
    with pytest.raises(InvalidInputError, match=match):
        roc_auc(labels, scores)


def test_bad_threshold():
    with pytest.raises(InvalidInputError, match="threshold"):
        confusion_counts([0, 1], [0.1, 0.2], float("nan"))


def test_boundary_delays_hand_case():
    ref = [Segment(1.0, 2.0), Segment(3.0, 4.0), Segment(6.0, 7.0)]
    det = [
        Segment(1.1, 1.5),  # first overlapping ref 0: onset +100 ms
        Segment(1.6, 1.95),  # last overlapping ref 0: offset -50 ms
        Segment(2.9, 4.2),  # ref 1: onset -100 ms, offset +200 ms
        Segment(5.0, 5.5),  # overlaps nothing: no delay
    ]
    d = boundary_delays(ref, det)
    np.testing.assert_allclose(d.onset_ms, [100.0, -100.0], atol=1e-9)
    np.testing.assert_allclose(d.offset_ms, [-50.0, 200.0], atol=1e-9)
    assert d.n_reference == 3 and d.n_missed == 1
    # a detection only touching a reference boundary does not overlap it
    d = boundary_delays([Segment(1.0, 2.0)], [Segment(2.0, 3.0)])
    assert d.n_missed == 1 and d.onset_ms.size == 0


def test_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    for n, ties in [(50, 1), (3000, 2), (3000, 6)]:
        y = rng.random(n) < 0.4
        s = np.round(rng.random(n) * 0.7 + 0.3 * y, ties)
        assert roc_auc(y, s) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
        fpr, tpr, thr = roc_curve(y, s)
        fpr2, tpr2, thr2 = metrics.roc_curve(y, s, drop_intermediate=False)
        np.testing.assert_allclose(fpr, fpr2)
        np.testing.assert_allclose(tpr, tpr2)
        np.testing.assert_allclose(thr[1:], thr2[1:])
        p, r, f = precision_recall_f1(y, s, 0.5)
        pred = s >= 0.5
        assert p == pytest.approx(metrics.precision_score(y, pred))
        assert r == pytest.approx(metrics.recall_score(y, pred))
        assert f == pytest.approx(metrics.f1_score(y, pred))
