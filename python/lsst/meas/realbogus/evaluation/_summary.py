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

"""The headline figures of a real/bogus classifier in one JSON-ready dict,
and the class re-weighting of DMTN-272 (conventions: ``_metrics``).
"""

from __future__ import annotations

__all__ = [
    "positive_reweighting",
    "summarize",
]

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._calibration import expected_calibration_error
from ._curves import _validate, average_precision, roc_auc
from ._operatingPoints import (
    REQUIREMENT_COMPLETENESS,
    REQUIREMENT_PURITY,
    completeness_at_purity,
    purity_at_completeness,
    requirement_range,
    threshold_summary,
)


def positive_reweighting(labels: ArrayLike, ratio: float = 20.0) -> np.ndarray:
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




def _plain(value: bool | int | float | np.generic) -> bool | int | float | None:
    """A JSON-friendly copy: builtin numbers, `None` for non-finite."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None


def summarize(
    labels: ArrayLike, scores: ArrayLike, threshold: float = 0.5, sample_weight: ArrayLike | None = None
) -> dict[str, Any]:
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
