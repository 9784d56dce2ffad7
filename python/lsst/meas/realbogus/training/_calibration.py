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

__all__ = ["calibrate", "calibrated_scores", "fit_temperature"]

import logging
from typing import Any

import numpy as np
import torch

from ..evaluation import _metrics as metrics
from ..scoring import calibrated_sigmoid


def calibrate(method: str, logits: np.ndarray, labels: np.ndarray,
              log: logging.Logger | None = None) -> dict[str, Any] | None:
    """Fit the calibration that ``method`` (``TrainingConfig.calibration``)
    names.

    Parameters
    ----------
    method : `str`
        ``none`` or ``temperature``.
    logits : `numpy.ndarray`
        Network outputs before the sigmoid, of the validation split.
    labels : `numpy.ndarray`
        1 for real, 0 for bogus.
    log : `logging.Logger`, optional
        Logger for the fitted values.

    Returns
    -------
    calibration : `dict` or `None`
        The package's ``calibration`` (see `fit_temperature`), or `None`
        for ``none``.
    """
    if method != "temperature":
        return None
    calibration = fit_temperature(logits, labels)
    if log is not None:
        log.info("Temperature calibration on the validation split: T = %.3f (ECE %.4f -> %.4f).",
                 calibration["temperature"], calibration["eceBefore"], calibration["eceAfter"])
    return calibration


def calibrated_scores(logits: np.ndarray, calibration: dict[str, Any] | None) -> np.ndarray:
    """Return the scores a model package with ``calibration`` gives for
    ``logits``, computed as `~lsst.meas.realbogus.scoring.score_triplets`
    computes them (float32), as float64.
    """
    temperature = calibration["temperature"] if calibration else 1.0
    return calibrated_sigmoid(torch.from_numpy(logits), temperature).numpy().astype(np.float64)


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

    best = minimize_scalar(loss, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    temperature = float(np.exp(best.x))
    return {
        "method": "temperature",
        "temperature": temperature,
        "fittedOn": f"validation split ({len(y)} triplets, {int(y.sum())} real)",
        "eceBefore": metrics.expected_calibration_error(y, expit(z)),
        "eceAfter": metrics.expected_calibration_error(y, expit(z / temperature)),
    }
