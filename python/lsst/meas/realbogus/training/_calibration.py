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

"""Calibration of the scores, fitted on the validation split after training
and stored in the model package.
"""

from __future__ import annotations

__all__ = ["calibrate", "calibrated_scores", "effective_real_fraction", "fit_platt", "fit_prior_shift",
           "fit_temperature"]

import logging
from typing import Any

import numpy as np
import torch

from ..evaluation import _metrics as metrics
from ..models import CALIBRATION_INTERCEPT_LIMIT, CALIBRATION_TEMPERATURE_RANGE
from ..scoring import calibrated_sigmoid

# Bounds of the fits, in log T and b: those a package reader accepts.
_LOG_T_BOUNDS = tuple(np.log(CALIBRATION_TEMPERATURE_RANGE))
_B_BOUNDS = (-CALIBRATION_INTERCEPT_LIMIT, CALIBRATION_INTERCEPT_LIMIT)


def calibrate(method: str, logits: np.ndarray, labels: np.ndarray,
              log: logging.Logger | None = None) -> dict[str, Any] | None:
    """Fit the calibration that ``method`` (``TrainingConfig.calibration``)
    names.

    Parameters
    ----------
    method : `str`
        ``none``, ``temperature`` or ``natural``.
    logits : `numpy.ndarray`
        Network outputs before the sigmoid, of the split calibrated on (the
        validation split, or the natural-mix calibration split for
        ``natural``).
    labels : `numpy.ndarray`
        1 for real, 0 for bogus.
    log : `logging.Logger`, optional
        Logger for the fitted values.

    Returns
    -------
    calibration : `dict` or `None`
        The package's ``calibration`` (see `fit_temperature` and
        `fit_platt`), or `None` for ``none``.
    """
    if method == "temperature":
        calibration = fit_temperature(logits, labels)
    elif method == "natural":
        calibration = fit_platt(logits, labels)
    else:
        return None
    if log is not None:
        log.info("Calibration on the %s: T = %.3f, b = %.3f (ECE %.4f -> %.4f).", calibration["fittedOn"],
                 calibration["temperature"], calibration.get("intercept", 0.0), calibration["eceBefore"],
                 calibration["eceAfter"])
    return calibration


def calibrated_scores(logits: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """Return the scores a model package with ``calibration`` gives for
    ``logits``, computed as `~lsst.meas.realbogus.scoring.score_triplets`
    computes them (float32), as float64.
    """
    temperature = calibration["temperature"] if calibration else 1.0
    intercept = calibration.get("intercept", 0.0) if calibration else 0.0
    return calibrated_sigmoid(torch.from_numpy(logits), temperature, intercept).numpy().astype(np.float64)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Fit the temperature T minimizing the log loss of sigmoid(logit / T).

    Parameters
    ----------
    logits : `numpy.ndarray`
        Network outputs before the sigmoid.
    labels : `numpy.ndarray`
        1 for real, 0 for bogus.

    Returns
    -------
    calibration : `dict`
        ``method``, ``temperature``, ``fittedOn`` and the expected
        calibration error before and after (15 bins).
    """
    from scipy.optimize import minimize_scalar
    from scipy.special import expit, log_expit

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)

    def loss(log_t: float) -> float:
        u = z / np.exp(log_t)
        return float(-np.mean(y * log_expit(u) + (1 - y) * log_expit(-u)))

    best = minimize_scalar(loss, bounds=_LOG_T_BOUNDS, method="bounded")
    temperature = float(np.exp(best.x))
    return {
        "method": "temperature",
        "temperature": temperature,
        "fittedOn": f"validation split ({len(y)} triplets, {int(y.sum())} real)",
        "eceBefore": metrics.expected_calibration_error(y, expit(z)),
        "eceAfter": metrics.expected_calibration_error(y, expit(z / temperature)),
    }


def fit_prior_shift(logits: np.ndarray, labels: np.ndarray, training_real_fraction: float) -> dict[str, Any]:
    """Shift the prior only: sigmoid(logit + b), b = logit(natural real
    fraction) - logit(training real fraction).

    What a natural-mix calibration split too small to fit T and b by
    (`fit_platt`) still says: its real fraction, estimated as (reals + 1/2)
    / (triplets + 1) so that no real gives a finite shift.

    Parameters
    ----------
    logits : `numpy.ndarray`
        Network outputs before the sigmoid on the natural-mix split.
    labels : `numpy.ndarray`
        1 for real, 0 for bogus.
    training_real_fraction : `float`
        Real fraction of the training split as the loss saw it, in (0, 1)
        (with the class weighting applied: see `effective_real_fraction`).

    Returns
    -------
    calibration : `dict`
        ``method`` ("priorShift"), ``temperature`` (1), ``intercept``,
        ``fittedOn`` and the expected calibration error before and after.
    """
    from scipy.special import expit, logit

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    natural = (y.sum() + 0.5) / (len(y) + 1.0)
    intercept = float(np.clip(logit(natural) - logit(training_real_fraction), *_B_BOUNDS))
    return {
        "method": "priorShift",
        "temperature": 1.0,
        "intercept": intercept,
        "fittedOn": f"real fractions of the natural-mix calibration split ({len(y)} triplets, {int(y.sum())} "
                    f"real) and the training split ({training_real_fraction:.3f})",
        "eceBefore": metrics.expected_calibration_error(y, expit(z)),
        "eceAfter": metrics.expected_calibration_error(y, expit(z + intercept)),
    }


def effective_real_fraction(n_real: int, n_bogus: int, positive_weight: float) -> float:
    """Return the real fraction the loss saw: reals count ``positive_weight``
    times (``classWeighting``), so a balanced loss trains towards a prior of
    1/2 whatever the counts.
    """
    weighted = positive_weight * n_real
    return weighted / max(weighted + n_bogus, 1e-12)


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Fit sigmoid(logit / T + b) by minimum log loss (Platt scaling).

    On a natural-mix sample this corrects both the network's confidence (T)
    and the prior of its training mix (b: the logit shift between the
    training set's and the natural real fractions, as the data have it).

    Parameters
    ----------
    logits : `numpy.ndarray`
        Network outputs before the sigmoid.
    labels : `numpy.ndarray`
        1 for real, 0 for bogus.

    Returns
    -------
    calibration : `dict`
        ``method`` ("platt"), ``temperature``, ``intercept``, ``fittedOn``
        and the expected calibration error before and after (15 bins).
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)

    def loss(params: np.ndarray) -> float:
        u = z / np.exp(params[0]) + params[1]
        return float(-np.mean(y * log_expit(u) + (1 - y) * log_expit(-u)))

    best = minimize(loss, x0=np.zeros(2), method="L-BFGS-B",
                    bounds=[_LOG_T_BOUNDS, _B_BOUNDS])
    temperature, intercept = float(np.exp(best.x[0])), float(best.x[1])
    return {
        "method": "platt",
        "temperature": temperature,
        "intercept": intercept,
        "fittedOn": f"natural-mix calibration split ({len(y)} triplets, {int(y.sum())} real)",
        "eceBefore": metrics.expected_calibration_error(y, expit(z)),
        "eceAfter": metrics.expected_calibration_error(y, expit(z / temperature + intercept)),
    }
