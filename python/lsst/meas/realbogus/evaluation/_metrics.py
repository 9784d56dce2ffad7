# This file is part of meas_realbogus.
#
# Developed for the LSST Data Management System.
# This product includes software developed by the LSST Project
# (https://www.lsst.org).
# See the COPYRIGHT file at the top-level directory of this distribution
# for details of code ownership.
#
# This program is free software: you can redistribute it and/or modify
# it under the terms of the GNU General Public License as published by
# the Free Software Foundation, either version 3 of the License, or
# (at your option) any later version.
#
# This program is distributed in the hope that it will be useful,
# but WITHOUT ANY WARRANTY; without even the implied warranty of
# MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
# GNU General Public License for more details.
#
# You should have received a copy of the GNU General Public License
# along with this program.  If not, see <https://www.gnu.org/licenses/>.

"""Classification metrics of a real/bogus classifier, in numpy only.

Conventions shared by every function here:

- ``labels``: 1 (or `True`) is a real source, 0 (or `False`) a bogus one.
- ``scores``: higher means more likely real; the reliability scores of this
  package lie in [0, 1], which only the calibration functions require.
- A source is *kept* (classified real) at threshold ``t`` when
  ``score >= t``, as in scikit-learn.
- completeness = recall = kept reals / all reals;
  purity = precision = kept reals / all kept sources.
- ``sample_weight`` (optional, one non-negative finite weight per source)
  replaces every count by a sum of weights, e.g. to re-weight the classes to
  an on-sky mix with `positive_reweighting` (DMTN-272). As in scikit-learn,
  sources of zero weight are dropped before thresholds are formed, so they
  neither add a threshold nor move a curve.
- The candidate thresholds of the curves and operating points are the
  distinct scores: the classification only changes there, a threshold ``t``
  behaving like the lowest distinct score ``>= t``.
- A metric that is undefined for the input (e.g. ROC AUC with one class)
  is `nan`; invalid input (mismatched lengths, labels other than 0/1,
  non-finite scores or weights, empty input where a rate is asked for) raises
  `ValueError`.

The figures match `sklearn.metrics` (``roc_auc_score``,
``average_precision_score``, ``roc_curve`` with
``drop_intermediate=False``, ``precision_recall_curve`` without its final
``(1, 0)`` point, ``confusion_matrix``, ``accuracy_score``, ``f1_score``
with ``zero_division=np.nan``); the tests check this on random inputs. The
curves, ROC AUC and average precision sum in sklearn's order and agree with
it to the last bit.
"""

from __future__ import annotations

__all__ = [
    "REQUIREMENT_COMPLETENESS",
    "REQUIREMENT_PURITY",
    "average_precision",
    "completeness_at_purity",
    "confusion_matrix",
    "expected_calibration_error",
    "positive_reweighting",
    "precision_recall_curve",
    "purity_at_completeness",
    "reliability_diagram",
    "requirement_range",
    "requirement_thresholds",
    "roc_auc",
    "roc_curve",
    "summarize",
    "threshold_summary",
]

import math
from typing import Any

import numpy as np

REQUIREMENT_COMPLETENESS = 0.90
"""Minimum completeness of OSS-REQ-0353, as checked by `summarize`."""

REQUIREMENT_PURITY = 0.95
"""Minimum purity of OSS-REQ-0353, as checked by `summarize`."""


def _validate(
    labels: Any,
    scores: Any,
    sample_weight: Any = None,
    *,
    allow_empty: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Check and convert the common arguments.

    Returns
    -------
    labels : `numpy.ndarray` of `bool`, (N,)
    scores : `numpy.ndarray` of `float`, (N,)
    weight : `numpy.ndarray` of `float`, (N,), or `None`
    """
    labels = np.asarray(labels)
    try:
        scores = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("scores must be numbers.") from None
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError(f"labels and scores must be 1-d; got shapes {labels.shape} and {scores.shape}.")
    if labels.size != scores.size:
        raise ValueError(f"labels and scores must have one length; got {labels.size} and {scores.size}.")
    if labels.size == 0 and not allow_empty:
        raise ValueError("labels and scores are empty; the metric needs at least one source.")
    # Compare as numbers so that bools, ints and 0.0/1.0 floats are all fine.
    try:
        is_real = labels == 1
        valid = is_real | (labels == 0)
    except (TypeError, ValueError):
        valid = np.zeros(labels.shape, dtype=bool)
    if labels.dtype.kind not in "biuf" or not np.all(valid):
        bad = np.unique(labels[~valid])[:5] if labels.dtype.kind in "biuf" else labels.dtype
        raise ValueError(f"labels must be 0 (bogus) or 1 (real); got {bad}.")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"scores must be finite; got {np.count_nonzero(~np.isfinite(scores))} that are not.")
    weight = None
    if sample_weight is not None:
        try:
            weight = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("sample_weight must be numbers.") from None
        if weight.shape != scores.shape:
            raise ValueError(f"sample_weight must have shape {scores.shape}; got {weight.shape}.")
        if not np.all(np.isfinite(weight) & (weight >= 0)):
            raise ValueError("sample_weight must be finite and non-negative.")
    return np.asarray(is_real, dtype=bool), scores, weight


def _check_fraction(value: float, name: str) -> float:
    """Check that a target rate lies in [0, 1]."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1]; got {value}.")
    return value


def _cumulative_counts(
    labels: np.ndarray, scores: np.ndarray, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept reals and kept bogus at every distinct score, highest first.

    Returns
    -------
    tps, fps : `numpy.ndarray` of `float`, (T,)
        (Weighted) number of reals and bogus with ``score >= thresholds``.
    thresholds : `numpy.ndarray` of `float`, (T,)
        The distinct scores (of sources with non-zero weight), decreasing.
    """
    if weight is not None:
        # Zero-weight sources must not create thresholds (as in sklearn).
        nonzero = weight != 0
        labels, scores, weight = labels[nonzero], scores[nonzero], weight[nonzero]
    # Stable sort of -score: ties keep input order, so the cumulative sums run
    # in sklearn's order and give its figures to the last bit.
    order = np.argsort(-scores, kind="stable")
    scores = scores[order]
    real = labels[order].astype(np.float64)
    w = np.ones_like(real) if weight is None else weight[order]
    # One operating point per run of tied scores: the last source of each run.
    last = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    tps = np.cumsum(real * w)[last]
    # A cumsum (not total - tps) keeps fps non-decreasing under rounding.
    fps = np.cumsum((1.0 - real) * w)[last]
    return tps, fps, scores[last]


def _operating_points(
    labels: np.ndarray, scores: np.ndarray, weight: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purity and completeness at every distinct score, highest first.

    Purity is always defined here (every threshold keeps a source of
    non-zero weight); completeness is `nan` when there is no real weight.
    """
    tps, fps, thresholds = _cumulative_counts(labels, scores, weight)
    purity = tps / (tps + fps)
    with np.errstate(invalid="ignore", divide="ignore"):
        completeness = tps / tps[-1] if tps.size and tps[-1] > 0 else np.full_like(tps, np.nan)
    return purity, completeness, thresholds


def roc_curve(
    labels: Any, scores: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Receiver operating characteristic: false- vs true-positive rate.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, higher is more real.
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    fpr : `numpy.ndarray`, (T + 1,)
        Fraction of bogus kept at each threshold (the bogus-contamination
        rate), non-decreasing; all `nan` when there is no bogus.
    tpr : `numpy.ndarray`, (T + 1,)
        Fraction of reals kept (completeness), non-decreasing; all `nan`
        when there is no real.
    thresholds : `numpy.ndarray`, (T + 1,)
        ``inf`` (nothing kept, the curve's ``(0, 0)`` point) followed by the
        T distinct scores, decreasing.

    Notes
    -----
    Equal to ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``:
    every distinct score is a point, none dropped as collinear.
    """
    labels, scores, weight = _validate(labels, scores, sample_weight)
    tps, fps, thresholds = _cumulative_counts(labels, scores, weight)
    tps, fps = np.r_[0.0, tps], np.r_[0.0, fps]
    # Undefined rates are nan throughout, as in sklearn.
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full_like(fps, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full_like(tps, np.nan)
    return fpr, tpr, np.r_[np.inf, thresholds]


def roc_auc(labels: Any, scores: Any, sample_weight: Any = None) -> float:
    """Area under the ROC curve.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, higher is more real.
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    auc : `float`
        The (weighted) probability that a random real scores above a random
        bogus, ties counting one half; `nan` if either class is absent (or
        has zero total weight).

    Notes
    -----
    The trapezoid rule over `roc_curve` counts a run of tied scores as a
    diagonal segment, which is what makes ties count one half. Equal to
    ``sklearn.metrics.roc_auc_score``.
    """
    labels, scores, weight = _validate(labels, scores, sample_weight)
    tps, fps, _ = _cumulative_counts(labels, scores, weight)
    if tps[-1] <= 0 or fps[-1] <= 0:
        return math.nan
    # Integrating over the corners of the curve only (collinear points add
    # no area) is sklearn's summation, so the result agrees to the last bit.
    if tps.size > 2:
        corner = np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True]
        tps, fps = tps[corner], fps[corner]
    return float(np.trapezoid(np.r_[0.0, tps] / tps[-1], np.r_[0.0, fps] / fps[-1]))


def precision_recall_curve(
    labels: Any, scores: Any, sample_weight: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purity (precision) and completeness (recall) at every distinct score.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, higher is more real.
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    precision : `numpy.ndarray`, (T,)
        Purity when keeping ``score >= thresholds[i]``.
    recall : `numpy.ndarray`, (T,)
        Completeness when keeping ``score >= thresholds[i]``, non-increasing;
        all `nan` when there is no real.
    thresholds : `numpy.ndarray`, (T,)
        The distinct scores, increasing.

    Notes
    -----
    The three arrays have one length. ``sklearn.metrics.
    precision_recall_curve`` returns the same arrays with an extra final
    ``(precision, recall) = (1, 0)`` point that has no threshold, and sets
    recall to 1 rather than `nan` when there is no real.
    """
    labels, scores, weight = _validate(labels, scores, sample_weight)
    purity, completeness, thresholds = _operating_points(labels, scores, weight)
    return purity[::-1], completeness[::-1], thresholds[::-1]


def average_precision(labels: Any, scores: Any, sample_weight: Any = None) -> float:
    """Average precision: purity averaged over completeness, step-wise.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, higher is more real.
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    ap : `float`
        ``sum_n (R_n - R_{n-1}) P_n`` over the thresholds from the highest
        down (``R_0 = 0``); `nan` when there is no real.

    Notes
    -----
    A step-wise sum, not the trapezoid rule, which would interpolate purity
    optimistically between points. Equal to
    ``sklearn.metrics.average_precision_score``.
    """
    precision, recall, _ = precision_recall_curve(labels, scores, sample_weight)
    if np.isnan(recall[0]):
        return math.nan
    # Increasing thresholds, closed by the (recall 0) point of no threshold.
    return float(max(0.0, -np.sum(np.diff(np.r_[recall, 0.0]) * precision)))


def confusion_matrix(
    labels: Any, scores: Any, threshold: float = 0.5, sample_weight: Any = None
) -> np.ndarray:
    """The 2x2 confusion matrix at one threshold.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores; ``score >= threshold`` is classified real.
    threshold : `float`, optional
        Score threshold.
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    matrix : `numpy.ndarray`, (2, 2)
        ``[[TN, FP], [FN, TP]]`` (rows: true bogus, real; columns:
        classified bogus, real), as ``sklearn.metrics.confusion_matrix``
        with ``labels=[0, 1]``. Integer counts without weights, `float`
        sums of weights with them. Empty input gives zeros.
    """
    labels, scores, weight = _validate(labels, scores, sample_weight, allow_empty=True)
    if math.isnan(threshold):
        raise ValueError("threshold must not be nan.")
    kept = scores >= threshold
    # Cell index 2 * truth + classification lays the bins out row-major.
    cells = 2 * labels.astype(np.intp) + kept
    if weight is None:
        return np.bincount(cells, minlength=4).astype(np.int64).reshape(2, 2)
    return np.bincount(cells, weights=weight, minlength=4).reshape(2, 2)


def _ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, `nan` when the denominator is zero."""
    return float(numerator / denominator) if denominator > 0 else math.nan


def threshold_summary(
    labels: Any, scores: Any, threshold: float, sample_weight: Any = None
) -> dict[str, Any]:
    """Figures of merit at one threshold.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores; ``score >= threshold`` is classified real.
    threshold : `float`
        Score threshold.
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    summary : `dict`
        ``threshold``; ``tp``, ``fp``, ``tn``, ``fn`` (`int`, or `float`
        with weights); ``accuracy``; ``purity`` (`nan` if nothing is kept);
        ``completeness`` (`nan` if there is no real); ``f1``, the harmonic
        mean of the two, ``2 TP / (2 TP + FP + FN)`` (`nan` if that
        denominator is zero; 0 when nothing real is kept).

    Notes
    -----
    ``accuracy`` and ``f1`` equal ``sklearn.metrics.accuracy_score`` and
    ``sklearn.metrics.f1_score(..., zero_division=np.nan)``.
    """
    _validate(labels, scores, sample_weight)
    (tn, fp), (fn, tp) = confusion_matrix(labels, scores, threshold, sample_weight).tolist()
    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "purity": _ratio(tp, tp + fp),
        "completeness": _ratio(tp, tp + fn),
    }


def purity_at_completeness(
    labels: Any, scores: Any, completeness: float = 0.90, sample_weight: Any = None
) -> tuple[float, float]:
    """The best purity of any threshold that keeps enough reals.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, higher is more real.
    completeness : `float`, optional
        Target completeness, in [0, 1].
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    purity : `float`
        The maximum purity over the candidate thresholds (the distinct
        scores) whose completeness is ``>= completeness``; `nan` if there is
        no real.
    threshold : `float`
        The threshold giving it: of several with that purity, the lowest
        (it keeps the most reals). Usually the highest threshold that meets
        the target, but purity need not rise with the threshold. `nan` if
        there is no real.

    Notes
    -----
    The lowest score always has completeness 1, so a threshold exists
    whenever there is a real.
    """
    target = _check_fraction(completeness, "completeness")
    labels, scores, weight = _validate(labels, scores, sample_weight)
    purity, complete, thresholds = _operating_points(labels, scores, weight)
    eligible = complete >= target
    if not eligible.any():
        return math.nan, math.nan
    best = purity[eligible].max()
    # Thresholds decrease along the arrays: the last index is the lowest.
    index = np.flatnonzero(eligible & (purity == best))[-1]
    return float(best), float(thresholds[index])


def completeness_at_purity(
    labels: Any, scores: Any, purity: float = 0.95, sample_weight: Any = None
) -> tuple[float, float]:
    """The largest completeness of any threshold that is pure enough.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, higher is more real.
    purity : `float`, optional
        Target purity, in [0, 1].
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    completeness : `float`
        The maximum completeness over the candidate thresholds (the distinct
        scores) whose purity is ``>= purity``; 0.0 if no threshold is that
        pure; `nan` if there is no real.
    threshold : `float`
        The threshold giving it: of several with that completeness, the
        highest (it keeps the fewest bogus). `nan` if there is none.
    """
    target = _check_fraction(purity, "purity")
    labels, scores, weight = _validate(labels, scores, sample_weight)
    pure_, complete, thresholds = _operating_points(labels, scores, weight)
    if np.isnan(complete[-1]):
        return math.nan, math.nan
    eligible = pure_ >= target
    if not eligible.any():
        return 0.0, math.nan
    # Completeness rises as the threshold falls: the last eligible index has
    # the most; the first eligible one with as much has the highest threshold.
    best = complete[np.flatnonzero(eligible)[-1]]
    index = np.flatnonzero(eligible & (complete == best))[0]
    return float(best), float(thresholds[index])


def requirement_thresholds(
    labels: Any,
    scores: Any,
    min_completeness: float = REQUIREMENT_COMPLETENESS,
    min_purity: float = REQUIREMENT_PURITY,
    sample_weight: Any = None,
) -> np.ndarray:
    """The thresholds that meet a completeness and a purity requirement.

    This is the check of OSS-REQ-0353 (completeness >= 0.90 at
    purity >= 0.95 by default).

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, higher is more real.
    min_completeness, min_purity : `float`, optional
        Requirements, in [0, 1].
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    thresholds : `numpy.ndarray`, (M,)
        The candidate thresholds (distinct scores) with completeness
        ``>= min_completeness`` and purity ``>= min_purity``, increasing;
        empty if none (or if there is no real).

    Notes
    -----
    A threshold between two distinct scores classifies like the higher
    one, so thresholds in ``(previous score, t]`` also meet it for each
    returned ``t``. The set need not be contiguous among the distinct
    scores: purity can dip as the threshold rises.
    """
    _check_fraction(min_completeness, "min_completeness")
    _check_fraction(min_purity, "min_purity")
    labels, scores, weight = _validate(labels, scores, sample_weight)
    purity, completeness, thresholds = _operating_points(labels, scores, weight)
    # nan completeness (no real) compares False: nothing passes.
    meets = (completeness >= min_completeness) & (purity >= min_purity)
    return np.sort(thresholds[meets])


def requirement_range(
    labels: Any,
    scores: Any,
    min_completeness: float = REQUIREMENT_COMPLETENESS,
    min_purity: float = REQUIREMENT_PURITY,
    sample_weight: Any = None,
) -> tuple[float, float] | None:
    """The span of score thresholds that meet the requirement.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, higher is more real.
    min_completeness, min_purity : `float`, optional
        Requirements, in [0, 1].
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    span : `tuple` [`float`, `float`] or `None`
        ``(lo, hi)``, open below and closed above: a threshold ``t`` with
        ``lo < t <= hi`` meets the requirement. ``hi`` is the highest
        threshold of `requirement_thresholds`; ``lo`` is the distinct score
        just below its lowest one (``-inf`` if that is the lowest score, so
        keeping everything meets it). So for perfectly separated classes the
        span holds the whole gap between the top bogus and the bottom real.
        `None` if no threshold meets the requirement.

    Notes
    -----
    If the passing thresholds are not contiguous (purity dips within the
    span) the span is their hull and some thresholds in it fail;
    `requirement_thresholds` gives the passing ones exactly.
    """
    passing = requirement_thresholds(labels, scores, min_completeness, min_purity, sample_weight)
    if passing.size == 0:
        return None
    labels, scores, weight = _validate(labels, scores, sample_weight)
    if weight is not None:
        scores = scores[weight != 0]
    below = scores[scores < passing[0]]
    lo = float(below.max()) if below.size else -math.inf
    return lo, float(passing[-1])


def _calibration_bins(
    labels: Any, scores: Any, n_bins: int, sample_weight: Any, allow_empty: bool
) -> dict[str, np.ndarray]:
    """Per-bin sums behind `reliability_diagram` and ECE."""
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer; got {n_bins}.")
    n_bins = int(n_bins)
    labels, scores, weight = _validate(labels, scores, sample_weight, allow_empty=allow_empty)
    if np.any((scores < 0) | (scores > 1)):
        raise ValueError("scores must lie in [0, 1] for calibration.")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bins are [e_k, e_k+1), the last one closed so that score 1 is counted;
    # searchsorted on the returned edges keeps bins and edges consistent.
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, n_bins - 1)
    w = np.ones_like(scores) if weight is None else weight
    total = np.bincount(index, weights=w, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(index, weights=w * scores, minlength=n_bins) / total
        fraction_real = np.bincount(index, weights=w * labels, minlength=n_bins) / total
    empty = total == 0
    mean_score[empty] = np.nan
    fraction_real[empty] = np.nan
    return {
        "bin_edges": edges,
        "mean_score": mean_score,
        "fraction_real": fraction_real,
        "counts": np.bincount(index, minlength=n_bins).astype(np.int64),
        "weight": total,
    }


def reliability_diagram(
    labels: Any, scores: Any, n_bins: int = 10, sample_weight: Any = None
) -> dict[str, np.ndarray]:
    """Mean score and fraction of reals in equal-width score bins.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, in [0, 1].
    n_bins : `int`, optional
        Number of equal-width bins on [0, 1].
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    diagram : `dict` [`str`, `numpy.ndarray`]
        ``bin_edges`` (n_bins + 1); per bin: ``mean_score`` and
        ``fraction_real`` (weighted means; `nan` for a bin of no weight),
        ``counts`` (number of sources, `int`) and ``weight`` (sum of
        weights, equal to ``counts`` without weights). Bins are
        ``[e_k, e_k+1)``, the last one closed. A calibrated classifier
        has ``fraction_real == mean_score``.
    """
    return _calibration_bins(labels, scores, n_bins, sample_weight, allow_empty=True)


def expected_calibration_error(
    labels: Any, scores: Any, n_bins: int = 15, sample_weight: Any = None
) -> float:
    """Expected calibration error of the real-class score.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, in [0, 1].
    n_bins : `int`, optional
        Number of equal-width bins on [0, 1].
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights.

    Returns
    -------
    ece : `float`
        ``sum_k (W_k / W) |fraction_real_k - mean_score_k|`` over the bins
        of `reliability_diagram`, ``W_k`` the bin's weight (its count
        without weights); `nan` if the total weight is zero.

    Notes
    -----
    Binned on the score of the real class, not on the confidence of the
    predicted class as in Guo et al. (2017), which folds ``p`` and
    ``1 - p`` into one bin. With weights that change the class mix, the
    ECE measures calibration to the re-weighted mix.
    """
    bins = _calibration_bins(labels, scores, n_bins, sample_weight, allow_empty=False)
    total = bins["weight"].sum()
    if total <= 0:
        return math.nan
    filled = bins["weight"] > 0
    gaps = np.abs(bins["fraction_real"][filled] - bins["mean_score"][filled])
    return float(np.sum(bins["weight"][filled] * gaps) / total)


def positive_reweighting(labels: Any, ratio: float = 20.0) -> np.ndarray:
    """Weights that put the classes in a chosen bogus:real ratio.

    Training and test sets are often balanced far from the on-sky mix of
    difference-image sources; DMTN-272 re-weights the reals so that metrics
    describe a chosen mix. Bogus keep weight 1 and each real gets
    ``n_bogus / (ratio * n_real)``, so that the total bogus weight is
    ``ratio`` times the total real weight.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus; both classes must be present.
    ratio : `float`, optional
        Wanted total bogus weight / total real weight, > 0.

    Returns
    -------
    weights : `numpy.ndarray` of `float`, (N,)
        ``sample_weight`` for the other functions here.
    """
    ratio = float(ratio)
    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be finite and positive; got {ratio}.")
    labels, _, _ = _validate(labels, np.zeros(np.shape(labels)), allow_empty=True)
    n_real = np.count_nonzero(labels)
    n_bogus = labels.size - n_real
    if n_real == 0 or n_bogus == 0:
        raise ValueError(f"re-weighting needs reals and bogus; got {n_real} real and {n_bogus} bogus.")
    return np.where(labels, n_bogus / (ratio * n_real), 1.0)


def _plain(value: Any) -> Any:
    """A JSON-friendly copy: builtin numbers, `None` for non-finite."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def summarize(labels: Any, scores: Any, threshold: float = 0.5, sample_weight: Any = None) -> dict[str, Any]:
    """The headline figures of a real/bogus classifier, ready for JSON.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores, in [0, 1].
    threshold : `float`, optional
        Operating threshold for the threshold summary.
    sample_weight : array-like of `float`, (N,), optional
        Per-source weights, applied to every figure but the counts ``n``,
        ``n_real``, ``n_bogus``.

    Returns
    -------
    summary : `dict` [`str`, `int` | `float` | `bool` | `list` | `None`]
        ``n``, ``n_real``, ``n_bogus``, ``weight_real``, ``weight_bogus``;
        ``roc_auc``, ``average_precision``; the `threshold_summary` at
        ``threshold`` (``threshold``, ``tp``, ``fp``, ``tn``, ``fn``,
        ``accuracy``, ``f1``, ``purity``, ``completeness``);
        ``purity_at_completeness_0.90`` and its ``..._threshold``;
        ``completeness_at_purity_0.95`` and its ``..._threshold``;
        ``requirement_range`` (``[lo, hi]`` from `requirement_range`, lo
        exclusive and `None` where it is ``-inf``; `None` if no threshold
        meets the requirement); ``meets_requirement`` (some threshold
        meets OSS-REQ-0353); ``threshold_meets_requirement`` (``threshold``
        itself does);
        ``ece`` (`expected_calibration_error`, 15 bins). Builtin types only;
        undefined or infinite values are `None` (strict JSON has no nan).
    """
    labels, scores, weight = _validate(labels, scores, sample_weight)
    w = np.ones_like(scores) if weight is None else weight
    n_real = int(np.count_nonzero(labels))
    p_at_c, p_at_c_threshold = purity_at_completeness(labels, scores, REQUIREMENT_COMPLETENESS, weight)
    c_at_p, c_at_p_threshold = completeness_at_purity(labels, scores, REQUIREMENT_PURITY, weight)
    span = requirement_range(labels, scores, REQUIREMENT_COMPLETENESS, REQUIREMENT_PURITY, weight)
    at_threshold = threshold_summary(labels, scores, threshold, weight)
    threshold_meets = (
        at_threshold["completeness"] >= REQUIREMENT_COMPLETENESS
        and at_threshold["purity"] >= REQUIREMENT_PURITY
    )  # nan compares False
    summary = {
        "n": labels.size,
        "n_real": n_real,
        "n_bogus": labels.size - n_real,
        "weight_real": w[labels].sum(),
        "weight_bogus": w[~labels].sum(),
        "roc_auc": roc_auc(labels, scores, weight),
        "average_precision": average_precision(labels, scores, weight),
        **at_threshold,
        f"purity_at_completeness_{REQUIREMENT_COMPLETENESS:.2f}": p_at_c,
        f"purity_at_completeness_{REQUIREMENT_COMPLETENESS:.2f}_threshold": p_at_c_threshold,
        f"completeness_at_purity_{REQUIREMENT_PURITY:.2f}": c_at_p,
        f"completeness_at_purity_{REQUIREMENT_PURITY:.2f}_threshold": c_at_p_threshold,
        "meets_requirement": span is not None,
        "threshold_meets_requirement": threshold_meets,
        "ece": expected_calibration_error(labels, scores, 15, weight),
    }
    summary = {key: _plain(value) for key, value in summary.items()}
    summary["requirement_range"] = None if span is None else [_plain(span[0]), _plain(span[1])]
    return summary
