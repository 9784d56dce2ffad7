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

"""What training minimizes and how: the loss, the optimizer and the
learning-rate schedule of a `TrainingConfig`.
"""

from __future__ import annotations

__all__ = ["make_loss", "make_optimizer", "make_scheduler", "plan_steps"]

import math
from collections.abc import Iterable

import torch

from ._config import TrainingConfig


def plan_steps(config: TrainingConfig, n_train: int) -> tuple[int, int]:
    """Return the optimizer steps per epoch and in all.

    Parameters
    ----------
    config : `TrainingConfig`
        Gives ``batchSize``, ``epochs`` and ``maxSteps``.
    n_train : `int`
        Training triplets.

    Returns
    -------
    steps_per_epoch : `int`
        Global batches per epoch (at least one).
    total_steps : `int`
        The steps the schedule is planned over.
    """
    steps_per_epoch = max(1, math.ceil(n_train / config.batchSize))
    planned = config.epochs * steps_per_epoch
    return steps_per_epoch, min(planned, config.maxSteps) if config.maxSteps else planned


def make_loss(config: TrainingConfig, counts: dict[str, int], device: torch.device) -> torch.nn.Module:
    """Return the binary cross-entropy on logits, with the real class
    weighted as ``config.classWeighting`` says.

    Parameters
    ----------
    config : `TrainingConfig`
        Gives ``classWeighting`` and ``positiveWeight``.
    counts : `dict` [`str`, `int`]
        ``real`` and ``bogus`` triplets of the training split.
    device : `torch.device`
        Where the loss is computed.
    """
    pos_weight = {
        "none": 1.0,
        "balanced": counts["bogus"] / max(counts["real"], 1),
        "fixed": config.positiveWeight,
    }[config.classWeighting]
    return torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=device))


def make_optimizer(config: TrainingConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Return the optimizer ``config.optimizer`` names, at the peak
    learning rate.
    """
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.learningRate, momentum=config.momentum, nesterov=config.momentum > 0,
            weight_decay=config.weightDecay,
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.learningRate, weight_decay=config.weightDecay)


def make_scheduler(
    config: TrainingConfig, optimizer: torch.optim.Optimizer, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Return the learning-rate schedule ``config.schedule`` names, stepped
    once per optimizer step.
    """
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.learningRate, total_steps=max(total_steps, 1), pct_start=0.3
        )
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=config.scheduleStepEpochs * steps_per_epoch, gamma=config.scheduleGamma
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
