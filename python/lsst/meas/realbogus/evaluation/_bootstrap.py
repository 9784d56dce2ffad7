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

"""Bootstrap intervals of the OSS-REQ-0353 figures.

Purity at completeness 0.90 and completeness at purity 0.95 are set by a
handful of reals near the operating point (a test set with 71 reals at
SNR > 6 puts the 0.90-completeness point at the seventh-worst real), so
each figure comes with a percentile bootstrap interval over sources: the
test set resampled with replacement, the figure recomputed on each
resample.
"""

from __future__ import annotations

__all__ = ["DEFAULT_RESAMPLES", "bootstrap_requirement"]

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ._curves import _validate
from ._operatingPoints import (
    REQUIREMENT_COMPLETENESS,
    REQUIREMENT_PURITY,
    completeness_at_purity,
    purity_at_completeness,
    requirement_range,
)

DEFAULT_RESAMPLES = 1000
"""Bootstrap resamples of `bootstrap_requirement`."""


def bootstrap_requirement(
    labels: ArrayLike,
    scores: ArrayLike,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile bootstrap intervals of the requirement figures.

    Parameters
    ----------
    labels : array-like of `int` or `bool`, (N,)
        1 for real, 0 for bogus.
    scores : array-like of `float`, (N,)
        Classifier scores.
    resamples : `int`, optional
        Bootstrap resamples of the sources.
    level : `float`, optional
        Central probability of the intervals.
    seed : `int`, optional
        Seed of the resampling (the intervals are reproducible).

    Returns
    -------
    intervals : `dict`
        ``purity_at_completeness_0.90`` and ``completeness_at_purity_0.95``:
        ``[lo, hi]`` (`None` where undefined in every resample);
        ``fraction_meeting_requirement``: the fraction of resamples in which
        some threshold meets OSS-REQ-0353; ``level``, ``resamples``,
        ``seed``.
    """
    labels, scores, _ = _validate(labels, scores)
    rng = np.random.default_rng(seed)
    n = labels.size
    purities, completenesses, meets = [], [], 0
    for _ in range(resamples):
        # Weights = how often each source is drawn: one sort per resample.
        weight = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
        if not weight[labels].sum() or not weight[~labels].sum():
            continue
        purities.append(purity_at_completeness(labels, scores, REQUIREMENT_COMPLETENESS, weight)[0])
        completenesses.append(completeness_at_purity(labels, scores, REQUIREMENT_PURITY, weight)[0])
        meets += requirement_range(labels, scores, REQUIREMENT_COMPLETENESS, REQUIREMENT_PURITY,
                                   weight) is not None
    tails = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    return {
        f"purity_at_completeness_{REQUIREMENT_COMPLETENESS:.2f}": _interval(purities, tails),
        f"completeness_at_purity_{REQUIREMENT_PURITY:.2f}": _interval(completenesses, tails),
        "fraction_meeting_requirement": meets / len(purities) if purities else None,
        "level": level,
        "resamples": len(purities),
        "seed": seed,
    }


def _interval(values: list[float], tails: list[float]) -> list[float] | None:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    lo, hi = np.percentile(finite, tails)
    return [float(lo), float(hi)]
