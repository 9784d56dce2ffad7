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

"""The training loop shared by `TrainRealBogusTask` and ``rb-train``."""

from __future__ import annotations

__all__ = ["DistributedContext", "TrainingConfig", "fit_temperature", "train"]

import copy
import dataclasses
import datetime
import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import lsst.pex.config as pexConfig

from ..errors import DeviceError, TrainingError, one_line
from ..evaluation import _metrics as metrics
from ..models._devices import configure_threads, device_field, select_device, threads_field
from ..models._modelPackage import ModelPackage
from ..models._registry import modelRegistry
from ..scoring._scoring import calibrated_sigmoid, score_triplets
from ._tripletData import TripletBatch, TripletData

CHECKPOINT_NAME = "checkpoint.pt"


class TrainingConfig(pexConfig.Config):
    """Everything that decides how a model is trained."""

    model = modelRegistry.makeField(doc="Network architecture and its settings.", default="rbcnn")
    epochs = pexConfig.RangeField(dtype=int, default=20, min=1, doc="Passes over the training triplets.")
    maxSteps = pexConfig.RangeField(
        dtype=int, default=0, min=0, doc="Stop after this many optimizer steps in all (0: no limit)."
    )
    batchSize = pexConfig.RangeField(dtype=int, default=128, min=2, doc="Triplets per optimizer step.")
    optimizer = pexConfig.ChoiceField(
        dtype=str,
        default="adamw",
        allowed={"adamw": "AdamW (decoupled weight decay)", "adam": "Adam", "sgd": "SGD with Nesterov momentum"},
        doc="Optimizer.",
    )
    learningRate = pexConfig.RangeField(dtype=float, default=1e-3, min=0.0, inclusiveMin=False, doc="Peak learning rate.")
    momentum = pexConfig.RangeField(dtype=float, default=0.9, min=0.0, max=1.0, doc="SGD momentum.")
    weightDecay = pexConfig.RangeField(dtype=float, default=1e-4, min=0.0, doc="Weight decay.")
    schedule = pexConfig.ChoiceField(
        dtype=str,
        default="cosine",
        allowed={
            "constant": "Constant learning rate.",
            "cosine": "Cosine decay to zero over the planned steps.",
            "step": "Multiply by scheduleGamma every scheduleStepEpochs epochs.",
            "onecycle": "One-cycle: warm up for 30 % of the steps, then anneal.",
        },
        doc="Learning-rate schedule.",
    )
    scheduleStepEpochs = pexConfig.RangeField(dtype=int, default=10, min=1, doc="Period of the 'step' schedule.")
    scheduleGamma = pexConfig.RangeField(dtype=float, default=0.1, min=0.0, max=1.0, doc="Factor of 'step'.")
    classWeighting = pexConfig.ChoiceField(
        dtype=str,
        default="none",
        allowed={
            "none": "Unweighted loss: scores stay close to probabilities at the training class mix.",
            "balanced": "Weight real triplets by n_bogus / n_real of the training split.",
            "fixed": "Weight real triplets by positiveWeight.",
        },
        doc="Weighting of the real class in the loss.",
    )
    positiveWeight = pexConfig.RangeField(
        dtype=float, default=1.0, min=0.0, inclusiveMin=False, doc="Real-class weight for 'fixed'."
    )
    augment = pexConfig.Field(
        dtype=bool, default=True, doc="Random flips and 90-degree rotations of training triplets."
    )
    validationFraction = pexConfig.RangeField(
        dtype=float, default=0.05, min=0.0, max=0.5, doc="Fraction held out for validation (DMTN-272: 0.05)."
    )
    seed = pexConfig.Field(dtype=int, default=1, doc="Seed of initialization, split, shuffles and dropout.")
    device = device_field()
    mixedPrecision = pexConfig.Field(
        dtype=bool, default=True, doc="bfloat16 autocast on a GPU (ignored on the CPU)."
    )
    numThreads = threads_field()
    earlyStoppingPatience = pexConfig.RangeField(
        dtype=int, default=0, min=0, doc="Stop after this many epochs without improvement (0: never)."
    )
    earlyStoppingMetric = pexConfig.ChoiceField(
        dtype=str,
        default="averagePrecision",
        allowed={"averagePrecision": "validation average precision", "loss": "validation loss"},
        doc="What early stopping and best-weight selection watch.",
    )
    restoreBest = pexConfig.Field(
        dtype=bool, default=True, doc="Package the weights of the best validation epoch, not the last."
    )
    checkpointDir = pexConfig.Field(
        dtype=str, default="", doc="Directory for a checkpoint after every epoch ('': no checkpoints)."
    )
    resume = pexConfig.Field(
        dtype=bool, default=True, doc="Continue from the checkpoint in checkpointDir if one exists."
    )
    shuffleBufferRows = pexConfig.RangeField(
        dtype=int, default=65536, min=1, doc="Minimum triplets shuffled together while streaming."
    )
    cacheMegabytes = pexConfig.RangeField(
        dtype=float, default=2048.0, min=0.0, doc="Keep up to this many MB of triplets in memory."
    )
    loaderThreads = pexConfig.RangeField(
        dtype=int, default=2, min=1,
        doc="Threads reading rb_triplets ahead of training (1: read in the training thread). The data and "
        "their order do not depend on it; more keep a GPU fed (benchmarks/training.py).",
    )
    thresholdCompleteness = pexConfig.RangeField(
        dtype=float,
        default=0.90,
        min=0.0,
        max=1.0,
        doc="The package's threshold is the highest one keeping this validation completeness "
        "(OSS-REQ-0353: 0.90).",
    )
    minValidationReal = pexConfig.RangeField(
        dtype=int,
        default=10,
        min=1,
        doc="Fewer real validation triplets than this: the threshold is 0.5, not chosen.",
    )
    calibration = pexConfig.ChoiceField(
        dtype=str,
        default="temperature",
        allowed={
            "none": "Scores are the network's sigmoid outputs.",
            "temperature": "Fit a temperature T on the validation split (minimum log loss) and store it; "
            "scores are sigmoid(logit / T), so that reliability reads as a probability.",
        },
        doc="Calibration of the scores, fitted after training and stored in the model package.",
    )
    modelVersion = pexConfig.Field(
        dtype=str, default="", doc="Version string of the model ('': architecture + weights hash)."
    )
    progressBar = pexConfig.Field(
        dtype=bool, default=True, doc="Show progress bars when standard error is a terminal."
    )
    distributedBackend = pexConfig.ChoiceField(
        dtype=str,
        default="auto",
        allowed={
            "auto": "nccl on CUDA GPUs, gloo on the CPU.",
            "gloo": "gloo (CPU; also works with GPUs, slower than nccl).",
            "nccl": "nccl (CUDA GPUs only).",
        },
        doc="torch.distributed backend when run under torchrun (WORLD_SIZE > 1); unused otherwise.",
    )
    distributedSharding = pexConfig.ChoiceField(
        dtype=str,
        default="datasets",
        allowed={
            "datasets": "Each rank reads only the rb_triplets datasets whose index modulo the world size "
            "is its rank and draws batchSize / worldSize triplets per step from them (the I/O and the "
            "cache are split across ranks). Statistically, not bitwise, the single-process run.",
            "batches": "Every rank reads every dataset, draws the same global batches of batchSize as a "
            "single process and trains on its 1/worldSize slice of each: the single-process run up to "
            "float reduction order (without dropout, and on the CPU without batch norm, which each rank "
            "applies to its own slice). For checks and small data.",
        },
        doc="How a distributed run (WORLD_SIZE > 1) splits the training triplets among ranks.",
    )

    def fingerprint(self, world_size: int = 1) -> str:
        """Hash of the settings that change the result (not device, threads,
        checkpointing or progress display), to tell whether a checkpoint
        belongs to this run. ``epochs`` and ``maxSteps`` are in it: the
        learning-rate schedule is planned over them.

        Parameters
        ----------
        world_size : `int`, optional
            Processes of a distributed run; with more than one, the world
            size and sharding are part of the run.  A single process
            ignores the distributed fields, so its fingerprint is what it
            was before they existed.
        """
        values = {
            k: v
            for k, v in _jsonable(self.toDict()).items()
            if k not in {"device", "numThreads", "checkpointDir", "resume", "progressBar",
                         "cacheMegabytes", "loaderThreads", "modelVersion", "earlyStoppingPatience",
                         "distributedBackend", "distributedSharding"}
        }
        values["model"] = {"name": self.model.name, "config": _jsonable(self.model.active.toDict())}
        if world_size > 1:
            values["distributed"] = {"worldSize": world_size, "sharding": self.distributedSharding}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    """Convert config values to JSON-compatible ones."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _make_optimizer(config: TrainingConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=config.learningRate, momentum=config.momentum, nesterov=config.momentum > 0,
            weight_decay=config.weightDecay,
        )
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=config.learningRate, weight_decay=config.weightDecay)


def _make_scheduler(config: TrainingConfig, optimizer, total_steps: int, steps_per_epoch: int):
    """Return a scheduler stepped once per optimizer step."""
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


def augment(cutouts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply a random element of the dihedral group D4 (flips and
    90-degree rotations) to each triplet, the same to its three channels.

    Parameters
    ----------
    cutouts : `torch.Tensor`, (N, 3, S, S)
        Triplets.
    generator : `torch.Generator`
        CPU generator (deterministic under a seed).

    Returns
    -------
    augmented : `torch.Tensor`, (N, 3, S, S)
    """
    n = cutouts.shape[0]
    choice = torch.randint(0, 8, (n,), generator=generator).to(cutouts.device)
    flipped = torch.where((choice >= 4)[:, None, None, None], cutouts.flip(-1), cutouts)
    out = flipped.clone()
    for k in (1, 2, 3):
        sel = (choice % 4) == k
        if bool(sel.any()):
            out[sel] = torch.rot90(flipped[sel], k, dims=(-2, -1))
    return out


def _epoch_seed(seed: int, epoch: int, rank: int | None = None) -> int:
    """A seed per epoch, so a resumed run repeats the uninterrupted one
    (and per rank, where ranks draw from their own shards).
    """
    entropy = [seed, epoch] if rank is None else [seed, epoch, rank]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


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

    def close(self) -> None:
        """End the process group if `setup` started it (every rank)."""
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


class _Trainer:
    """State of one training run (see `train`)."""

    def __init__(self, config: TrainingConfig, data: TripletData, log: logging.Logger,
                 dist: DistributedContext | None = None):
        self.config = config
        self.data = data
        self.log = log
        self.dist = dist or DistributedContext()
        self.device = self.dist.setup(config, select_device(config.device))
        self.threads = configure_threads(config.numThreads)
        self.autocast = self.device.type == "cuda" and config.mixedPrecision
        torch.manual_seed(config.seed)
        self.model = config.model.apply(data.cutout_config.size).to(self.device)
        # Each rank reads only its own datasets (distributedSharding="datasets").
        self.sharded = self.dist.active and config.distributedSharding == "datasets"
        # self.net is what the training step calls: the model itself, or its
        # DDP wrapper (which averages gradients over ranks in backward).
        self.net = self.model
        if self.dist.active:
            self._check_shards()
            if self.device.type == "cuda":
                # Batch statistics over the global batch, as one process
                # would compute them (SyncBatchNorm needs a GPU).
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        self.optimizer = _make_optimizer(config, self.model.parameters())
        self.steps_per_epoch = max(1, math.ceil(data.n_train / config.batchSize))
        planned = config.epochs * self.steps_per_epoch
        self.total_steps = min(planned, config.maxSteps) if config.maxSteps else planned
        self.scheduler = _make_scheduler(config, self.optimizer, self.total_steps, self.steps_per_epoch)
        pos_weight = {
            "none": 1.0,
            "balanced": data.counts["train"]["bogus"] / max(data.counts["train"]["real"], 1),
            "fixed": config.positiveWeight,
        }[config.classWeighting]
        self.loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, device=self.device))
        # Rank 0 alone validates; the others never read the validation split.
        self.validation = self.dist.on_main(data.validation, share=False)
        if self.validation is None:
            self.validation = TripletBatch.concatenate([], data.shape)
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"value": None, "epoch": None, "state": None}
        self.bad_epochs = 0
        self.stopped_early = False

    def _check_shards(self) -> None:
        """Refuse, on every rank alike, a split that cannot give each rank a
        local batch per step.
        """
        c, world = self.config, self.dist.world_size
        if c.distributedSharding == "batches":
            if c.batchSize < 2 * world:
                raise TrainingError(f"batchSize {c.batchSize} leaves fewer than 2 triplets per rank "
                                    f"for {world} ranks.")
            return
        if c.batchSize % world:
            raise TrainingError(f"batchSize {c.batchSize} is the global batch: it must be a multiple of the "
                                f"{world} ranks (each draws batchSize / {world}).")
        local = c.batchSize // world
        if local < 2:
            raise TrainingError(f"batchSize {c.batchSize} leaves fewer than 2 triplets per rank "
                                f"for {world} ranks (batch norm needs two).")
        rows = [self.data.shard_rows(r, world) for r in range(world)]
        if min(rows) < local:
            raise TrainingError(
                f"{len(self.data.rows)} rb_triplets datasets split over {world} ranks leave a rank "
                f"{min(rows)} training triplets, fewer than its batch of {local}; use fewer ranks or "
                "distributedSharding='batches'."
            )

    # -- checkpoints ---------------------------------------------------------

    @property
    def checkpoint_path(self) -> str | None:
        return os.path.join(self.config.checkpointDir, CHECKPOINT_NAME) if self.config.checkpointDir else None

    def save_checkpoint(self) -> None:
        path = self.checkpoint_path
        if path is None or not self.dist.is_main:
            return
        state = {
            "fingerprint": self.config.fingerprint(self.dist.world_size),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "history": json.dumps(self.history),
            "best_value": self.best["value"],
            "best_epoch": self.best["epoch"],
            "best_state": self.best["state"],
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
        }
        tmp = path + ".tmp"
        try:
            os.makedirs(self.config.checkpointDir, exist_ok=True)
            torch.save(state, tmp)
            os.replace(tmp, path)  # a kill mid-write never leaves a truncated checkpoint
        except OSError as exc:
            raise TrainingError(f"cannot write the checkpoint {path}: {one_line(exc)}") from None

    def load_checkpoint(self) -> bool:
        # Rank 0 reads the checkpoint and hands it (or its error) to every
        # rank, so all resume from the same state, shared disk or not.
        state = self.dist.on_main(self._read_checkpoint)
        if state is None:
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = json.loads(state["history"])
        self.best = {"value": state["best_value"], "epoch": state["best_epoch"], "state": state["best_state"]}
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped_early = bool(state["stopped_early"])
        self.log.info("Resumed from %s after epoch %d (step %d).", self.checkpoint_path, self.epoch, self.step)
        return True

    def _read_checkpoint(self) -> dict[str, Any] | None:
        path = self.checkpoint_path
        if path is None or not self.config.resume or not os.path.exists(path):
            return None
        try:
            # weights_only: tensors and plain containers only, never arbitrary pickles.
            # On the CPU: load_state_dict copies to the model's and optimizer's device.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise TrainingError(f"cannot read checkpoint {path}: {str(err).splitlines()[0]}") from None
        if state.get("fingerprint") != self.config.fingerprint(self.dist.world_size):
            raise TrainingError(
                f"checkpoint {path} was written with different training settings; remove it or set "
                "resume=False."
            )
        return state

    # -- loop ----------------------------------------------------------------

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            # Page-locked memory lets the copy to the GPU run asynchronously.
            tensor = tensor.pin_memory()
        return tensor.to(self.device, non_blocking=True)

    def _epoch_batches(self, seed: int) -> Iterator[tuple[TripletBatch, torch.Tensor, float]]:
        """Yield (local batch, its augmented cutouts on the device, loss
        scale) for every optimizer step of one epoch.

        The loss scale makes DDP's average over ranks of
        ``scale * mean(local loss)`` the mean loss over the global batch,
        whatever the local batch sizes.
        """
        c, dist = self.config, self.dist
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        if not dist.active:
            for batch in self.data.batches(c.batchSize, rng, c.shuffleBufferRows):
                x = self._tensor(batch.cutouts)
                yield batch, (augment(x, generator) if c.augment else x), 1.0
            return
        if not self.sharded:
            # The single-process batch and augmentation, then this rank's slice of it.
            for batch in self.data.batches(c.batchSize, rng, c.shuffleBufferRows):
                if len(batch) < 2 * dist.world_size:
                    # A last partial batch too small to give every rank two rows
                    # (an empty slice has no mean loss): skipped on every rank alike.
                    continue
                x = self._tensor(batch.cutouts)
                if c.augment:
                    x = augment(x, generator)
                rows = np.array_split(np.arange(len(batch)), dist.world_size)[dist.rank]
                index = torch.from_numpy(rows).to(self.device)
                yield batch.take(rows), x[index], len(rows) * dist.world_size / len(batch)
            return
        # Every rank takes the same number of full local batches per epoch, so
        # no rank waits on a gradient all-reduce the others never start:
        # a rank whose shard runs out starts it again, freshly shuffled.
        local, done = c.batchSize // dist.world_size, 0
        while done < self.steps_per_epoch:
            for batch in self.data.batches(local, rng, c.shuffleBufferRows):
                if len(batch) < local:
                    continue  # the partial last batch: the shard starts over instead
                x = self._tensor(batch.cutouts)
                yield batch, (augment(x, generator) if c.augment else x), 1.0
                done += 1
                if done == self.steps_per_epoch:
                    return

    def run(self) -> None:
        c = self.config
        self.load_checkpoint()
        show = c.progressBar and sys.stderr.isatty() and self.dist.is_main
        while self.epoch < c.epochs and not self.stopped_early and not self._out_of_steps():
            # Sharded ranks train on different rows: each shuffles, augments and
            # draws dropout masks with a seed of its own.
            seed = _epoch_seed(c.seed, self.epoch, self.dist.rank if self.sharded else None)
            torch.manual_seed(seed)
            self.net.train()
            start = time.perf_counter()
            losses, seen = [], 0
            bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {self.epoch + 1}/{c.epochs}", disable=not show,
                       leave=False, unit="step")
            for batch, x, scale in self._epoch_batches(seed):
                y = self._tensor(batch.labels)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                    loss = self.loss_fn(self.net(x).float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                (loss * scale if scale != 1.0 else loss).backward()
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                seen += len(batch)
                losses.append(float(loss.detach()) * len(batch))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1] / len(batch):.4f}")
                if self._out_of_steps():
                    break
            bar.close()
            elapsed = time.perf_counter() - start
            self.epoch += 1
            loss_sum, seen = self.dist.sum([sum(losses), float(seen)], self.device)
            record = {"epoch": self.epoch, "step": self.step, "trainLoss": loss_sum / max(seen, 1),
                      "seconds": elapsed, "samplesPerSecond": seen / elapsed if elapsed > 0 else None}
            if self.dist.active:
                record["worldSize"] = self.dist.world_size
            def validate(record=record):
                record.update(self.evaluate())
                self._track_best(record)

            self.dist.on_main(validate, share=False)
            # Every rank keeps rank 0's record and stops when it stops.
            record, self.stopped_early = self.dist.broadcast((record, self.stopped_early))
            self.history.append(record)
            self.log.info(
                "Epoch %d/%d: train loss %.4f, validation loss %s, AUC %s, AP %s (%.1f s, %.0f triplets/s).",
                self.epoch, c.epochs, record["trainLoss"], _fmt(record["validationLoss"]),
                _fmt(record["validationAuc"]), _fmt(record["validationAp"]), elapsed,
                record["samplesPerSecond"] or 0.0,
            )
            self.dist.on_main(self.save_checkpoint, share=False)
        # Only rank 0 tracks the best weights, and only its model is packaged.
        if c.restoreBest and self.best["state"] is not None:
            self.model.load_state_dict(self.best["state"])

    def _out_of_steps(self) -> bool:
        return bool(self.config.maxSteps) and self.step >= self.config.maxSteps

    def predict(self, cutouts: np.ndarray, *, logits: bool = False) -> np.ndarray:
        """Score triplets (or return logits) with the current weights."""
        # fp32, as computeReliability scores by default: the threshold and
        # temperature are chosen on the scores the model will give in use.
        return score_triplets(self.model, cutouts, device=self.device, batch_size=self.config.batchSize,
                              logits=logits)

    def evaluate(self) -> dict[str, Any]:
        """Validation loss, AUC and AP (None where undefined)."""
        val: TripletBatch = self.validation
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

    def _track_best(self, record: dict[str, Any]) -> None:
        key = "validationLoss" if self.config.earlyStoppingMetric == "loss" else "validationAp"
        value = record[key]
        if value is None:
            return
        sign = -1.0 if key == "validationLoss" else 1.0
        if self.best["value"] is None or sign * value > sign * self.best["value"]:
            self.best = {"value": value, "epoch": self.epoch,
                         "state": copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            patience = self.config.earlyStoppingPatience
            if patience and self.bad_epochs >= patience:
                self.stopped_early = True
                self.log.info("Early stop: no %s improvement for %d epochs (best epoch %d).", key, patience,
                              self.best["epoch"])


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


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("lsst-meas-realbogus")
    except PackageNotFoundError:
        own = "unknown"
    return {"meas_realbogus": own, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


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
    TrainingError
        Raised if a checkpoint is unreadable or belongs to other settings.
    lsst.meas.realbogus.errors.DeviceError
        Raised if the requested device is not available.
    """
    log = log or logging.getLogger(__name__)
    dist = distributed or DistributedContext.from_environment()
    try:
        started = time.perf_counter()
        trainer = _Trainer(config, data, log, dist)
        log.info(
            "Training %s (%d parameters) on %s (%d threads, mixed precision %s): %d training triplets (%d real), "
            "%d validation (%d real), %d steps planned.",
            config.model.name, sum(p.numel() for p in trainer.model.parameters()), trainer.device,
            trainer.threads, "on" if trainer.autocast else "off",
            data.n_train, data.counts["train"]["real"], data.n_validation, data.counts["validation"]["real"],
            trainer.total_steps,
        )
        if dist.active:
            log.info("Distributed: rank %d of %d (%s backend), sharding by %s: %s.", dist.rank, dist.world_size,
                     dist.backend, config.distributedSharding,
                     f"{data.shard_rows(dist.rank, dist.world_size)} training triplets in "
                     f"{len(data.shard_indices)} datasets on this rank"
                     if config.distributedSharding == "datasets" else "every rank reads every dataset")
        trainer.run()
        return dist.on_main(_package, config, data, trainer, log, provenance, started)
    finally:
        dist.close()


def _package(config: TrainingConfig, data: TripletData, trainer: _Trainer, log: logging.Logger,
             provenance: dict[str, Any] | None, started: float) -> ModelPackage:
    """Validate, calibrate, choose the threshold and package (rank 0)."""
    val = trainer.validation
    validation_metrics: dict[str, Any] = {"n": len(val), "n_real": int(val.labels.sum())}
    threshold, rule = 0.5, "default 0.5"
    calibration = None
    if len(val) and 0 < val.labels.sum() < len(val):
        enough = val.labels.sum() >= config.minValidationReal
        logits = trainer.predict(val.cutouts, logits=True)
        if config.calibration == "temperature" and enough:
            calibration = fit_temperature(logits, val.labels)
            log.info("Temperature calibration on the validation split: T = %.3f (ECE %.4f -> %.4f).",
                     calibration["temperature"], calibration["eceBefore"], calibration["eceAfter"])
        temperature = calibration["temperature"] if calibration else 1.0
        # One forward pass serves calibration and scores, scored as score_triplets does.
        scores = calibrated_sigmoid(torch.from_numpy(logits), temperature).numpy().astype(np.float64)
        validation_metrics.update(metrics.summarize(val.labels, scores))
        if enough:
            _, threshold = metrics.purity_at_completeness(val.labels, scores, config.thresholdCompleteness)
            rule = f"highest threshold with validation completeness >= {config.thresholdCompleteness:.2f}"
        else:
            rule = f"default 0.5: only {int(val.labels.sum())} real validation triplets"
    training = {
        **(provenance or {}),
        "triplets": data.counts,
        "unlabelled": data.unlabelled,
        "truthClasses": data.classes,
        "seed": config.seed,
        "epochsRun": trainer.epoch,
        "stepsRun": trainer.step,
        "bestEpoch": trainer.best["epoch"],
        "stoppedEarly": trainer.stopped_early,
        "device": str(trainer.device),
        "threads": trainer.threads,
        "mixedPrecision": trainer.autocast,
        "seconds": time.perf_counter() - started,
        "configFingerprint": config.fingerprint(trainer.dist.world_size),
        "config": {k: v for k, v in _jsonable(config.toDict()).items() if k != "model"},
        "history": trainer.history,
    }
    model = trainer.model.cpu()
    if trainer.dist.active:
        training["distributed"] = {"worldSize": trainer.dist.world_size, "backend": trainer.dist.backend,
                                   "sharding": config.distributedSharding}
        # A plain copy of the weights: no SyncBatchNorm in the package.
        model = config.model.apply(data.cutout_config.size)
        model.load_state_dict(trainer.model.cpu().state_dict())
    package = ModelPackage.from_model(
        model,
        architecture=config.model.name,
        model_config=_jsonable(config.model.active.toDict()),
        cutout_config=data.cutout_config,
        version=config.modelVersion or None,
        threshold=float(threshold) if math.isfinite(threshold) else 0.5,
        thresholdRule=rule,
        training=training,
        metrics={"validation": validation_metrics},
        calibration=calibration,
        software=_software_versions(),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    log.info("Model %s: validation %s; threshold %.4f (%s).", package.version,
             {k: validation_metrics.get(k) for k in ("n", "roc_auc", "average_precision")}, package.threshold, rule)
    return package
