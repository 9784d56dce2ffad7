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

"""ROC and precision-recall curves, ROC AUC and average precision, and the
input checks and cumulative counts that every metric of
`lsst.meas.realbogus.evaluation` builds on (conventions: ``_metrics``).
"""

from __future__ import annotations

__all__ = [
    "average_precision",
    "precision_recall_curve",
    "roc_auc",
    "roc_curve",
]

import math

import numpy as np
from numpy.typing import ArrayLike


def _validate(
    labels: ArrayLike,
    scores: ArrayLike,
    sample_weight: ArrayLike | None = None,
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
    labels: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the arguments; return purity, completeness and threshold at
    every distinct score, highest first.

    Purity is always defined here (every threshold keeps a source of
    non-zero weight); completeness is `nan` when there is no real weight.
    """
    labels, scores, weight = _validate(labels, scores, sample_weight)
    tps, fps, thresholds = _cumulative_counts(labels, scores, weight)
    purity = tps / (tps + fps)
    with np.errstate(invalid="ignore", divide="ignore"):
        completeness = tps / tps[-1] if tps.size and tps[-1] > 0 else np.full_like(tps, np.nan)
    return purity, completeness, thresholds


def roc_curve(
    labels: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None = None
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


def roc_auc(labels: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
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
    labels: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None = None
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
    purity, completeness, thresholds = _operating_points(labels, scores, sample_weight)
    return purity[::-1], completeness[::-1], thresholds[::-1]


def average_precision(labels: ArrayLike, scores: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
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
