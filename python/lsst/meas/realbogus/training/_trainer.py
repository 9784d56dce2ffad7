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

"""The training loop: `Trainer` runs the epochs of one model, in one process
or as one rank of a torchrun run, for `~lsst.meas.realbogus.training.train`.
"""

from __future__ import annotations

__all__ = ["Trainer"]

import copy
import logging
import sys
import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from ..evaluation import _metrics as metrics
from ..models import configure_threads, select_device
from ..scoring import score_triplets
from ._batches import EpochBatches, to_device
from ._checkpoint import Checkpoint, TrainingProgress
from ._config import TrainingConfig
from ._distributed import DistributedContext
from ._optimization import make_loss, make_optimizer, make_scheduler, plan_steps
from ._tripletData import TripletBatch, TripletData


class Trainer:
    """State of one training run.

    Building it sets up the device (and, under torchrun, the process
    group), the network, optimizer, schedule and loss, and reads the
    validation split on rank 0; `run` trains.

    Parameters
    ----------
    config : `TrainingConfig`
        Training settings.
    data : `~lsst.meas.realbogus.training.TripletData`
        Training and validation triplets.
    log : `logging.Logger`
        Logger for progress lines.
    dist : `DistributedContext`, optional
        This process's place in a distributed run (default: a single
        process).

    Raises
    ------
    lsst.meas.realbogus.errors.DeviceError
        Raised if the requested device is not available.
    lsst.meas.realbogus.errors.TrainingError
        Raised if the triplets cannot be split among the ranks.
    """

    def __init__(self, config: TrainingConfig, data: TripletData, log: logging.Logger,
                 dist: DistributedContext | None = None) -> None:
        self.config = config
        self.data = data
        self.log = log
        self.dist = dist or DistributedContext()
        self.device = self.dist.setup(config, select_device(config.device))
        self.threads = configure_threads(config.numThreads)
        self.autocast = self.device.type == "cuda" and config.mixedPrecision
        self.dist.check_sharding(config, data)
        torch.manual_seed(config.seed)
        self.model, self.net = self._build_network()
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.steps_per_epoch, self.total_steps = plan_steps(config, data.n_train)
        self.scheduler = make_scheduler(config, self.optimizer, self.total_steps, self.steps_per_epoch)
        self.batches = EpochBatches(config, data, self.dist, self.device, self.steps_per_epoch)
        self.loss_fn = make_loss(config, data.counts["train"], self.device)
        self.validation, self.calibration = self._read_held_out()
        self.checkpoint = Checkpoint(config, self.dist.world_size)
        self.progress = TrainingProgress()

    def _build_network(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        """Return the model on the device and what the training step calls:
        the model itself, or its DDP wrapper (which averages gradients over
        ranks in backward).
        """
        model = self.config.model.apply(self.data.cutout_config.size).to(self.device)
        if self.config.channelsLast:
            model = model.to(memory_format=torch.channels_last)
        if not self.dist.active:
            return model, model
        if self.device.type == "cuda":
            # Batch statistics over the global batch, as one process would
            # compute them (SyncBatchNorm needs a GPU).
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None
        )
        return model, net

    def _read_held_out(self) -> tuple[TripletBatch, TripletBatch]:
        """Read the validation and calibration splits: rank 0 alone
        validates and calibrates, so the other ranks get empty batches and
        never read them.
        """
        held_out = self.dist.on_main(self.data.held_out, share=False)
        if held_out is None:
            empty = TripletBatch.concatenate([], self.data.shape)
            return empty, empty
        return held_out

    def save_checkpoint(self) -> None:
        """Write the checkpoint, if ``checkpointDir`` is set (rank 0)."""
        if self.dist.is_main:
            self.checkpoint.save(self.progress, self.model, self.optimizer, self.scheduler)

    def load_checkpoint(self) -> bool:
        """Resume from the checkpoint if there is one; return whether it
        did.
        """
        # Rank 0 reads the checkpoint and hands it (or its error) to every
        # rank, so all resume from the same state, shared disk or not.
        state = self.dist.on_main(self.checkpoint.read)
        if state is None:
            return False
        self.progress = Checkpoint.restore(state, self.model, self.optimizer, self.scheduler)
        self.log.info("Resumed from %s after epoch %d (step %d).", self.checkpoint.path, self.progress.epoch,
                      self.progress.step)
        return True

    def run(self) -> None:
        """Train until ``epochs``, ``maxSteps`` or early stopping, from the
        checkpoint if one exists, with a checkpoint after every epoch; then
        restore the best epoch's weights if ``restoreBest``.
        """
        self.load_checkpoint()
        while not self._finished():
            record = self._train_epoch()
            seconds = record["seconds"]  # this rank's, for its own log line
            self.dist.on_main(self._validate, record, share=False)
            # Every rank keeps rank 0's record and stops when it stops.
            record, self.progress.stopped_early = self.dist.broadcast((record, self.progress.stopped_early))
            self.progress.history.append(record)
            self._log_epoch(record, seconds)
            self.dist.on_main(self.save_checkpoint, share=False)
        # Only rank 0 tracks the best weights, and only its model is packaged.
        if self.config.restoreBest and self.progress.best_state is not None:
            self.model.load_state_dict(self.progress.best_state)

    def _finished(self) -> bool:
        return self.progress.epoch >= self.config.epochs or self.progress.stopped_early or self._out_of_steps()

    def _out_of_steps(self) -> bool:
        return bool(self.config.maxSteps) and self.progress.step >= self.config.maxSteps

    def _train_epoch(self) -> dict[str, Any]:
        """Take one epoch's optimizer steps; return the epoch's record
        (training loss over all ranks, time, rate).
        """
        c, progress = self.config, self.progress
        seed = self.batches.seed(progress.epoch)
        torch.manual_seed(seed)  # dropout draws from torch's global generator
        self.net.train()
        start = time.perf_counter()
        losses, seen = [], 0
        show = c.progressBar and sys.stderr.isatty() and self.dist.is_main
        bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {progress.epoch + 1}/{c.epochs}", disable=not show,
                   leave=False, unit="step")
        for batch, x, scale in self.batches(seed):
            losses.append(self._step(batch, x, scale) * len(batch))
            seen += len(batch)
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1] / len(batch):.4f}")
            if self._out_of_steps():
                break
        bar.close()
        elapsed = time.perf_counter() - start
        progress.epoch += 1
        loss_sum, seen = self.dist.sum([sum(losses), float(seen)], self.device)
        record = {"epoch": progress.epoch, "step": progress.step, "trainLoss": loss_sum / max(seen, 1),
                  "seconds": elapsed, "samplesPerSecond": seen / elapsed if elapsed > 0 else None}
        if self.dist.active:
            record["worldSize"] = self.dist.world_size
        return record

    def _step(self, batch: TripletBatch, x: torch.Tensor, scale: float) -> float:
        """Take one optimizer step on a local batch; return its mean loss."""
        y = to_device(batch.labels, self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            loss = self.loss_fn(self.net(x).float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        (loss * scale if scale != 1.0 else loss).backward()
        self.optimizer.step()
        self.scheduler.step()
        self.progress.step += 1
        return float(loss.detach())

    def _log_epoch(self, record: dict[str, Any], seconds: float) -> None:
        """Log an epoch's losses and metrics (``seconds``: this rank's time)."""
        self.log.info(
            "Epoch %d/%d: train loss %.4f, validation loss %s, AUC %s, AP %s (%.1f s, %.0f triplets/s).",
            self.progress.epoch, self.config.epochs, record["trainLoss"], _fmt(record["validationLoss"]),
            _fmt(record["validationAuc"]), _fmt(record["validationAp"]), seconds,
            record["samplesPerSecond"] or 0.0,
        )

    def predict(self, cutouts: np.ndarray, *, logits: bool = False) -> np.ndarray:
        """Score triplets (or return logits) with the current weights."""
        # fp32, as computeReliability scores by default: the threshold and
        # temperature are chosen on the scores the model will give in use.
        return score_triplets(self.model, cutouts, device=self.device, batch_size=self.config.batchSize,
                              logits=logits)

    def evaluate(self) -> dict[str, Any]:
        """Validation loss, AUC and AP (None where undefined)."""
        val = self.validation
        if len(val) == 0:
            return {"validationLoss": None, "validationAuc": None, "validationAp": None}
        scores = self.predict(val.cutouts).astype(np.float64)
        eps = 1e-7
        p = np.clip(scores, eps, 1 - eps)
        pos_weight = float(self.loss_fn.pos_weight)
        loss = -np.mean(pos_weight * val.labels * np.log(p) + (1 - val.labels) * np.log(1 - p))
        both = 0 < val.labels.sum() < len(val)
        return {
            "validationLoss": float(loss),
            "validationAuc": metrics.roc_auc(val.labels, scores) if both else None,
            "validationAp": metrics.average_precision(val.labels, scores) if both else None,
        }

    def _validate(self, record: dict[str, Any]) -> None:
        """Add the validation metrics to an epoch's record and track the
        best epoch (rank 0).
        """
        record.update(self.evaluate())
        self._track_best(record)

    def _track_best(self, record: dict[str, Any]) -> None:
        """Keep the best weights by ``earlyStoppingMetric``; stop after
        ``earlyStoppingPatience`` epochs without improvement.
        """
        key = "validationLoss" if self.config.earlyStoppingMetric == "loss" else "validationAp"
        value = record[key]
        if value is None:
            return
        progress = self.progress
        sign = -1.0 if key == "validationLoss" else 1.0
        if progress.best_value is None or sign * value > sign * progress.best_value:
            progress.best_value, progress.best_epoch = value, progress.epoch
            progress.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
            progress.bad_epochs = 0
            return
        progress.bad_epochs += 1
        patience = self.config.earlyStoppingPatience
        if patience and progress.bad_epochs >= patience:
            progress.stopped_early = True
            self.log.info("Early stop: no %s improvement for %d epochs (best epoch %d).", key, patience,
                          progress.best_epoch)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
