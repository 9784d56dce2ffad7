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

"""Calibration of reliability scores: the reliability diagram and the
expected calibration error (conventions: ``_metrics``).
"""

from __future__ import annotations

__all__ = [
    "expected_calibration_error",
    "reliability_diagram",
]

import math

import numpy as np
from numpy.typing import ArrayLike

from ._curves import _validate


def _calibration_bins(
    labels: ArrayLike, scores: ArrayLike, n_bins: int, sample_weight: ArrayLike | None, allow_empty: bool
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
    labels: ArrayLike, scores: ArrayLike, n_bins: int = 10, sample_weight: ArrayLike | None = None
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
    labels: ArrayLike, scores: ArrayLike, n_bins: int = 15, sample_weight: ArrayLike | None = None
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
