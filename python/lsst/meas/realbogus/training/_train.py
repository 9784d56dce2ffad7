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

"""`train`: the training run shared by `TrainRealBogusTask` and ``rb-train``."""

from __future__ import annotations

__all__ = ["train"]

import logging
import time
from typing import Any

from ..models import ModelPackage
from ._config import TrainingConfig
from ._distributed import DistributedContext
from ._packaging import package_model
from ._trainer import Trainer
from ._tripletData import TripletData


def train(
    config: TrainingConfig,
    data: TripletData,
    *,
    provenance: dict[str, Any] | None = None,
    log: logging.Logger | None = None,
    distributed: DistributedContext | None = None,
) -> ModelPackage:
    """Train a model and package it.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the processes train one model
    with DistributedDataParallel: the process group is started here unless
    the caller started it (and then ended here on every rank), each rank
    trains on its share of the triplets (``config.distributedSharding``),
    and rank 0 alone validates, calibrates, chooses the threshold and
    writes checkpoints.  Every rank returns rank 0's package; writing it
    is the caller's business, on rank 0 only.

    Parameters
    ----------
    config : `TrainingConfig`
        Training settings.
    data : `~lsst.meas.realbogus.training.TripletData`
        Training and validation triplets.
    provenance : `dict`, optional
        Extra facts recorded under the package's ``training`` metadata
        (input collections, tract...).
    log : `logging.Logger`, optional
        Logger for progress lines.
    distributed : `DistributedContext`, optional
        This process's place in a distributed run; default: read from the
        environment torchrun sets (`DistributedContext.from_environment`).

    Returns
    -------
    package : `~lsst.meas.realbogus.models.ModelPackage`
        Weights and metadata, including validation metrics and the
        threshold at ``config.thresholdCompleteness``.

    Raises
    ------
    lsst.meas.realbogus.errors.TrainingError
        Raised if a checkpoint is unreadable or belongs to other settings,
        or if the triplets cannot be split among the ranks.
    lsst.meas.realbogus.errors.DeviceError
        Raised if the requested device is not available.
    """
    log = log or logging.getLogger("lsst.meas.realbogus.training")
    dist = distributed or DistributedContext.from_environment()
    try:
        started = time.perf_counter()
        trainer = Trainer(config, data, log, dist)
        _log_plan(config, data, trainer, log)
        trainer.run()
        return dist.on_main(package_model, config, data, trainer, log, provenance, started)
    finally:
        dist.close()


def _log_plan(config: TrainingConfig, data: TripletData, trainer: Trainer, log: logging.Logger) -> None:
    """Say what is trained, where, on what, and (under torchrun) how the
    ranks share it.
    """
    log.info(
        "Training %s (%d parameters) on %s (%d threads, mixed precision %s): %d training triplets (%d real), "
        "%d validation (%d real), %d steps planned.",
        config.model.name, sum(p.numel() for p in trainer.model.parameters()), trainer.device,
        trainer.threads, "on" if trainer.autocast else "off",
        data.n_train, data.counts["train"]["real"], data.n_validation, data.counts["validation"]["real"],
        trainer.total_steps,
    )
    dist = trainer.dist
    if dist.active:
        log.info("Distributed: rank %d of %d (%s backend), sharding by %s: %s.", dist.rank, dist.world_size,
                 dist.backend, config.distributedSharding,
                 f"{data.shard_rows(dist.rank, dist.world_size)} training triplets in "
                 f"{len(data.shard_indices)} datasets on this rank"
                 if config.distributedSharding == "datasets" else "every rank reads every dataset")
