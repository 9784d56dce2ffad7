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

"""`DistributedContext`: where a process stands in a torchrun run, and the
collective calls that keep the ranks of one training in step.
"""

from __future__ import annotations

__all__ = ["DistributedContext"]

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from ..errors import DeviceError, TrainingError, one_line

if TYPE_CHECKING:
    from ._config import TrainingConfig
    from ._tripletData import TripletData


@dataclasses.dataclass
class DistributedContext:
    """Where this process stands in a torchrun (DistributedDataParallel)
    run; ``world_size`` 1 is a plain single process.

    Attributes
    ----------
    rank : `int`
        Global rank (``RANK``).
    world_size : `int`
        Number of processes (``WORLD_SIZE``).
    local_rank : `int`
        Rank on this node (``LOCAL_RANK``): the GPU it uses.
    owns_group : `bool`
        Whether `setup` initialized the process group (and `close` ends it).
    backend : `str`
        The process group's backend, once set up.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False
    backend: str = ""

    @classmethod
    def from_environment(cls) -> DistributedContext:
        """Read the variables torchrun sets (a single process without
        them, or with ``WORLD_SIZE`` 1).
        """
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        return cls(rank=int(os.environ["RANK"]), world_size=world_size,
                   local_rank=int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def active(self) -> bool:
        """Whether several processes train together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0: it validates, writes checkpoints and the
        model.
        """
        return self.rank == 0

    def setup(self, config: TrainingConfig, device: torch.device) -> torch.device:
        """Start the process group if nobody has, and pick this rank's device.

        Parameters
        ----------
        config : `TrainingConfig`
            Gives the backend.
        device : `torch.device`
            The device the config asks for.

        Returns
        -------
        device : `torch.device`
            ``cuda:LOCAL_RANK`` for a GPU (one GPU per process), else the CPU.
        """
        if not self.active:
            return device
        import torch.distributed as dist

        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise DeviceError(f"LOCAL_RANK {self.local_rank} but torch sees {torch.cuda.device_count()} GPU(s); "
                                  "start at most one process per GPU.")
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        backend = config.distributedBackend
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl" and device.type != "cuda":
            raise TrainingError("distributedBackend 'nccl' needs CUDA GPUs; use 'gloo' (or 'auto') on the CPU.")
        if not dist.is_initialized():
            dist.init_process_group(backend=backend)  # env:// from torchrun
            self.owns_group = True
        self.backend = dist.get_backend()
        return device

    def broadcast(self, value: Any) -> Any:
        """Return rank 0's ``value`` on every rank (any picklable object)."""
        if not self.active:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, function: Callable[..., Any], *args: Any, share: bool = True) -> Any:
        """Run ``function(*args)`` on rank 0 only, keeping the ranks in step
        if it fails.

        Every rank must call this at the same point. Rank 0's error is
        raised on rank 0 as it is, and on every other rank as a one-line
        `TrainingError`, instead of leaving them blocked in (or torn out
        of) their next collective call.

        Parameters
        ----------
        function : `~collections.abc.Callable`
            The work of rank 0.
        *args
            Its arguments.
        share : `bool`, optional
            Broadcast the result to every rank (else the other ranks get
            `None`).
        """
        if not self.active:
            return function(*args)
        result, error, failure = None, None, None
        if self.is_main:
            try:
                result = function(*args)
            except Exception as exc:
                failure = exc
                error = f"rank 0 failed: {type(exc).__name__}: {one_line(exc)}"
        if share:
            result, error = self.broadcast((result, error))
        else:
            error = self.broadcast(error)
        if failure is not None:
            raise failure
        if error:
            raise TrainingError(error)
        return result

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Sum numbers over ranks."""
        if not self.active:
            return values
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def check_sharding(self, config: TrainingConfig, data: TripletData) -> None:
        """Refuse, on every rank alike, a split that cannot give each rank a
        local batch per step.

        Parameters
        ----------
        config : `TrainingConfig`
            Gives ``batchSize`` (the global batch) and
            ``distributedSharding``.
        data : `~lsst.meas.realbogus.training.TripletData`
            The training triplets, all datasets (not only this rank's).

        Raises
        ------
        lsst.meas.realbogus.errors.TrainingError
            Raised if a rank would get fewer than two triplets a step, or
            (``datasets`` sharding) if the global batch does not divide
            among the ranks or a rank's datasets hold less than its batch.
        """
        if not self.active:
            return
        world, sharded = self.world_size, config.distributedSharding == "datasets"
        if sharded and config.batchSize % world:
            raise TrainingError(f"batchSize {config.batchSize} is the global batch: it must be a multiple of "
                                f"the {world} ranks (each draws batchSize / {world}).")
        local = config.batchSize // world
        if local < 2:
            raise TrainingError(f"batchSize {config.batchSize} leaves fewer than 2 triplets per rank for {world} "
                                f"ranks{' (batch norm needs two)' if sharded else ''}.")
        if not sharded:
            return
        rows = [data.shard_rows(r, world) for r in range(world)]
        if min(rows) < local:
            raise TrainingError(
                f"{len(data.rows)} rb_triplets datasets split over {world} ranks leave a rank "
                f"{min(rows)} training triplets, fewer than its batch of {local}; use fewer ranks or "
                "distributedSharding='batches'."
            )

    def close(self) -> None:
        """End the process group if `setup` started it (every rank)."""
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False

