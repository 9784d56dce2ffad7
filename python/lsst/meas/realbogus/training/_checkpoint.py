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

"""Checkpoints of a training run: ``checkpointDir/checkpoint.pt``, written
by rank 0 after every epoch and read back to resume.
"""

from __future__ import annotations

__all__ = ["CHECKPOINT_NAME", "Checkpoint", "TrainingProgress"]

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

import torch

from ..errors import TrainingError, first_line, one_line

if TYPE_CHECKING:
    from ._config import TrainingConfig

CHECKPOINT_NAME = "checkpoint.pt"


@dataclasses.dataclass
class TrainingProgress:
    """How far a run has got: what a checkpoint holds besides the model,
    optimizer and scheduler states.

    Attributes
    ----------
    epoch : `int`
        Epochs finished.
    step : `int`
        Optimizer steps taken.
    history : `list` [`dict`]
        One record per epoch (losses, validation metrics, rates).
    best_value : `float` or `None`
        Best value of ``earlyStoppingMetric`` so far.
    best_epoch : `int` or `None`
        The epoch that reached it.
    best_state : `dict` [`str`, `torch.Tensor`] or `None`
        The model's weights after that epoch (on the CPU).
    bad_epochs : `int`
        Epochs since the last improvement.
    stopped_early : `bool`
        Whether early stopping ended the run.
    """

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_value: float | None = None
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped_early: bool = False


class Checkpoint:
    """The checkpoint file of one run.

    Parameters
    ----------
    config : `TrainingConfig`
        Gives ``checkpointDir`` ('': no checkpoints) and ``resume``.
    world_size : `int`
        Processes of the run, part of the fingerprint that ties a
        checkpoint to its settings.
    """

    def __init__(self, config: TrainingConfig, world_size: int) -> None:
        self.directory: str = config.checkpointDir
        self.path: str | None = os.path.join(self.directory, CHECKPOINT_NAME) if self.directory else None
        self.resume: bool = config.resume
        self.fingerprint: str = config.fingerprint(world_size)

    def save(self, progress: TrainingProgress, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        """Write the checkpoint (nothing without ``checkpointDir``).

        Raises
        ------
        lsst.meas.realbogus.errors.TrainingError
            Raised if the file cannot be written.
        """
        if self.path is None:
            return
        state = {
            "fingerprint": self.fingerprint,
            "epoch": progress.epoch,
            "step": progress.step,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "history": json.dumps(progress.history),
            "best_value": progress.best_value,
            "best_epoch": progress.best_epoch,
            "best_state": progress.best_state,
            "bad_epochs": progress.bad_epochs,
            "stopped_early": progress.stopped_early,
        }
        tmp = self.path + ".tmp"
        try:
            os.makedirs(self.directory, exist_ok=True)
            torch.save(state, tmp)
            os.replace(tmp, self.path)  # a kill mid-write never leaves a truncated checkpoint
        except OSError as exc:
            raise TrainingError(f"cannot write the checkpoint {self.path}: {one_line(exc)}") from None

    def read(self) -> dict[str, Any] | None:
        """Read the checkpoint to resume from.

        Returns
        -------
        state : `dict` or `None`
            The saved states, or `None` without ``checkpointDir``, with
            ``resume`` off, or if no checkpoint exists yet.

        Raises
        ------
        lsst.meas.realbogus.errors.TrainingError
            Raised if the checkpoint is unreadable or was written with
            other training settings.
        """
        if self.path is None or not self.resume or not os.path.exists(self.path):
            return None
        try:
            # weights_only: tensors and plain containers only, never arbitrary pickles.
            # On the CPU: load_state_dict copies to the model's and optimizer's device.
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise TrainingError(f"cannot read checkpoint {self.path}: {first_line(err)}") from None
        if state.get("fingerprint") != self.fingerprint:
            raise TrainingError(
                f"checkpoint {self.path} was written with different training settings; remove it or set "
                "resume=False."
            )
        return state

    @staticmethod
    def restore(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler) -> TrainingProgress:
        """Load a `read` checkpoint into the model, optimizer and scheduler.

        Returns
        -------
        progress : `TrainingProgress`
            Where the checkpointed run stood.
        """
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        return TrainingProgress(
            epoch=int(state["epoch"]),
            step=int(state["step"]),
            history=json.loads(state["history"]),
            best_value=state["best_value"],
            best_epoch=state["best_epoch"],
            best_state=state["best_state"],
            bad_epochs=int(state["bad_epochs"]),
            stopped_early=bool(state["stopped_early"]),
        )
