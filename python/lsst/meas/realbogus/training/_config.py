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

"""`TrainingConfig`: every setting that decides how a model is trained, and
the fingerprint of those that change the result.
"""

from __future__ import annotations

__all__ = ["TrainingConfig"]

import hashlib
import json
from typing import Any

import lsst.pex.config as pexConfig

from ..models import device_field, modelRegistry, threads_field

# Left out of the fingerprint, so a checkpoint still belongs to a run that
# changes them: where and how fast it runs (memory layout included), not what it computes (the
# distributed fields enter through the world size), its label, and
# earlyStoppingPatience, which only decides when to stop.
_NOT_FINGERPRINTED = frozenset({
    "device", "numThreads", "checkpointDir", "resume", "progressBar", "cacheMegabytes", "loaderThreads",
    "modelVersion", "earlyStoppingPatience", "distributedBackend", "distributedSharding", "channelsLast",
})


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
    channelsLast = pexConfig.Field(
        dtype=bool, default=True,
        doc="Train in the channels-last (NHWC) memory layout, which oneDNN and cuDNN convolve and pool "
            "faster (rbcnn on 2 CPU threads: 1.14x); the weights differ only by rounding, like another thread count.",
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
            "scores are sigmoid(logit / T), so that reliability reads as a probability at the training "
            "set's class mix.",
            "natural": "Fit sigmoid(logit / T + b) (Platt scaling: a temperature and a prior shift) on the "
            "natural-mix calibration split, the triplets no injected source caused, held out with "
            "naturalCalibrationFraction: reliability then reads as a probability at the natural class mix "
            "even when training on a world made by injection. The threshold is chosen on that split too. A "
            "split with fewer than minValidationReal reals shifts the prior only (b = logit of its real "
            "fraction minus that of the training split's; T = 1) and keeps the threshold 0.5.",
        },
        doc="Calibration of the scores, fitted after training and stored in the model package.",
    )
    naturalCalibrationFraction = pexConfig.RangeField(
        dtype=float,
        default=0.3,
        min=0.0,
        max=0.9,
        inclusiveMin=False,
        doc="With calibration='natural': the fraction of the natural-mix triplets (rb_triplets' 'injected' "
        "False) held out from training to calibrate on and choose the threshold (by id hash).",
    )
    modelVersion = pexConfig.Field(
        dtype=str, default="",
        doc="Label of the model's version ('': the architecture); the version is '<label>-<first 12 hex "
        "digits of the weights' SHA-256>', so that it names these weights only.",
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

        Returns
        -------
        fingerprint : `str`
            16 hexadecimal digits.
        """
        values = {k: v for k, v in _jsonable(self.toDict()).items() if k not in _NOT_FINGERPRINTED}
        values["model"] = {"name": self.model.name, "config": _jsonable(self.model.active.toDict())}
        if world_size > 1:
            values["distributed"] = {"worldSize": world_size, "sharding": self.distributedSharding}
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    """Convert config values to JSON-compatible ones (`str` for the rest)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
