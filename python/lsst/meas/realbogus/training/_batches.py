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

"""The batches of an epoch: what each optimizer step trains on, in one
process or on each rank of a torchrun run, and the seed that draws them.
"""

from __future__ import annotations

__all__ = ["EpochBatches", "to_device"]

from collections.abc import Iterator
from typing import TypeAlias

import numpy as np
import torch

from ._augmentation import random_dihedral
from ._config import TrainingConfig
from ._distributed import DistributedContext
from ._tripletData import TripletBatch, TripletData

Step: TypeAlias = tuple[TripletBatch, torch.Tensor, float]
"""A local batch, its (augmented) cutouts on the device, and its loss scale."""


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Copy an array to the device (asynchronously to a GPU)."""
    tensor = torch.from_numpy(array)
    if device.type == "cuda":
        # Page-locked memory lets the copy to the GPU run asynchronously.
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)


class EpochBatches:
    """Draw the local batch of every optimizer step of an epoch.

    One process draws global batches of ``batchSize``.  Under torchrun,
    ``distributedSharding`` decides: ``datasets``, each rank draws full
    batches of ``batchSize / worldSize`` from its own datasets; ``batches``,
    every rank draws the single-process batches and keeps its slice.

    Parameters
    ----------
    config : `TrainingConfig`
        Gives ``seed``, ``batchSize``, ``shuffleBufferRows``, ``augment``
        and ``distributedSharding``.
    data : `~lsst.meas.realbogus.training.TripletData`
        The training triplets (this rank's shard, if sharded).
    dist : `DistributedContext`
        This process's place in the run.
    device : `torch.device`
        Where the cutouts go.
    steps_per_epoch : `int`
        Optimizer steps of an epoch (every rank takes as many).
    """

    def __init__(self, config: TrainingConfig, data: TripletData, dist: DistributedContext,
                 device: torch.device, steps_per_epoch: int) -> None:
        self.config = config
        self.data = data
        self.dist = dist
        self.device = device
        self.steps_per_epoch = steps_per_epoch
        # Each rank reads only its own datasets (distributedSharding="datasets").
        self.sharded = dist.active and config.distributedSharding == "datasets"

    def seed(self, epoch: int) -> int:
        """A seed per epoch, so a resumed run repeats the uninterrupted one;
        sharded ranks train on different rows, so each has its own (for
        shuffles, augmentation and dropout).
        """
        entropy = [self.config.seed, epoch, self.dist.rank] if self.sharded else [self.config.seed, epoch]
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def __call__(self, seed: int) -> Iterator[Step]:
        """Yield (local batch, its augmented cutouts on the device, loss
        scale) for every optimizer step of one epoch.

        The loss scale makes DDP's average over ranks of
        ``scale * mean(local loss)`` the mean loss over the global batch,
        whatever the local batch sizes.
        """
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        if not self.dist.active:
            for batch in self.data.batches(self.config.batchSize, rng, self.config.shuffleBufferRows):
                yield batch, self._augmented(batch, generator), 1.0
        elif self.sharded:
            yield from self._shard_batches(rng, generator)
        else:
            yield from self._global_batch_slices(rng, generator)

    def _global_batch_slices(self, rng: np.random.Generator, generator: torch.Generator) -> Iterator[Step]:
        """The single-process batches and augmentation, then this rank's
        slice of each (``distributedSharding="batches"``).
        """
        c, dist = self.config, self.dist
        for batch in self.data.batches(c.batchSize, rng, c.shuffleBufferRows):
            if len(batch) < 2 * dist.world_size:
                # A last partial batch too small to give every rank two rows
                # (an empty slice has no mean loss): skipped on every rank alike.
                continue
            x = self._augmented(batch, generator)
            rows = np.array_split(np.arange(len(batch)), dist.world_size)[dist.rank]
            index = torch.from_numpy(rows).to(self.device)
            yield batch.take(rows), x[index], len(rows) * dist.world_size / len(batch)

    def _shard_batches(self, rng: np.random.Generator, generator: torch.Generator) -> Iterator[Step]:
        """Full local batches from this rank's datasets
        (``distributedSharding="datasets"``).
        """
        # Every rank takes the same number of full local batches per epoch, so
        # no rank waits on a gradient all-reduce the others never start:
        # a rank whose shard runs out starts it again, freshly shuffled.
        local, done = self.config.batchSize // self.dist.world_size, 0
        while done < self.steps_per_epoch:
            for batch in self.data.batches(local, rng, self.config.shuffleBufferRows):
                if len(batch) < local:
                    continue  # the partial last batch: the shard starts over instead
                yield batch, self._augmented(batch, generator), 1.0
                done += 1
                if done == self.steps_per_epoch:
                    return

    def _augmented(self, batch: TripletBatch, generator: torch.Generator) -> torch.Tensor:
        """The batch's cutouts on the device, randomly flipped and rotated
        if ``augment``.
        """
        x = to_device(batch.cutouts, self.device)
        x = random_dihedral(x, generator) if self.config.augment else x
        return x.contiguous(memory_format=torch.channels_last) if self.config.channelsLast else x
