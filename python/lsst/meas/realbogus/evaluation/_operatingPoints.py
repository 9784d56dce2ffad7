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

"""Operating points of a real/bogus classifier: the confusion matrix and
figures at one threshold, the best purity at a completeness and the best
completeness at a purity, and the thresholds that meet OSS-REQ-0353
(conventions: ``_metrics``).
"""

from __future__ import annotations

__all__ = [
    "REQUIREMENT_COMPLETENESS",
    "REQUIREMENT_PURITY",
    "completeness_at_purity",
    "confusion_matrix",
    "purity_at_completeness",
    "requirement_range",
    "requirement_thresholds",
    "threshold_summary",
]

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._curves import _check_fraction, _operating_points, _validate

REQUIREMENT_COMPLETENESS = 0.90
"""Minimum completeness of OSS-REQ-0353, as checked by `summarize`."""

REQUIREMENT_PURITY = 0.95
"""Minimum purity of OSS-REQ-0353, as checked by `summarize`."""


def confusion_matrix(
    labels: ArrayLike, scores: ArrayLike, threshold: float = 0.5, sample_weight: ArrayLike | None = None
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
    labels: ArrayLike, scores: ArrayLike, threshold: float, sample_weight: ArrayLike | None = None
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
    labels: ArrayLike, scores: ArrayLike, completeness: float = 0.90, sample_weight: ArrayLike | None = None
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
    purity, complete, thresholds = _operating_points(labels, scores, sample_weight)
    # No real: completeness is nan, which meets no target.
    best = _best_rate(purity, complete, target, thresholds, lowest=True)
    return best if best is not None else (math.nan, math.nan)


def completeness_at_purity(
    labels: ArrayLike, scores: ArrayLike, purity: float = 0.95, sample_weight: ArrayLike | None = None
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
    pure, complete, thresholds = _operating_points(labels, scores, sample_weight)
    if np.isnan(complete[-1]):
        return math.nan, math.nan
    best = _best_rate(complete, pure, target, thresholds, lowest=False)
    return best if best is not None else (0.0, math.nan)


def _best_rate(
    rate: np.ndarray, constraint: np.ndarray, target: float, thresholds: np.ndarray, *, lowest: bool
) -> tuple[float, float] | None:
    """The largest ``rate`` over the operating points whose ``constraint``
    is ``>= target``, and its threshold: of tied points, the lowest
    threshold if ``lowest``, else the highest; `None` if no point meets the
    constraint.

    The arrays are those of `_operating_points`, thresholds decreasing.
    """
    eligible = constraint >= target
    if not eligible.any():
        return None
    best = rate[eligible].max()
    tied = np.flatnonzero(eligible & (rate == best))
    return float(best), float(thresholds[tied[-1] if lowest else tied[0]])



def requirement_thresholds(
    labels: ArrayLike,
    scores: ArrayLike,
    min_completeness: float = REQUIREMENT_COMPLETENESS,
    min_purity: float = REQUIREMENT_PURITY,
    sample_weight: ArrayLike | None = None,
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
    purity, completeness, thresholds = _operating_points(labels, scores, sample_weight)
    # nan completeness (no real) compares False: nothing passes.
    meets = (completeness >= min_completeness) & (purity >= min_purity)
    return np.sort(thresholds[meets])


def requirement_range(
    labels: ArrayLike,
    scores: ArrayLike,
    min_completeness: float = REQUIREMENT_COMPLETENESS,
    min_purity: float = REQUIREMENT_PURITY,
    sample_weight: ArrayLike | None = None,
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
