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

__all__ = ["TrainingConfig", "TrainingError", "fit_temperature", "train"]

import copy
import datetime
import hashlib
import json
import logging
import math
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import lsst.pex.config as pexConfig

from . import metrics
from .devices import configure_threads, is_device_name, select_device
from .modelPackage import ModelPackage
from .scoring import calibrated_sigmoid, score_triplets
from .models import modelRegistry
from .tripletData import TripletBatch, TripletData

CHECKPOINT_NAME = "checkpoint.pt"


class TrainingError(RuntimeError):
    """Training cannot start or continue (one-line message)."""


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
    device = pexConfig.Field(
        dtype=str, default="auto", check=is_device_name, doc="'auto', 'cpu', 'cuda' or 'cuda:N'."
    )
    mixedPrecision = pexConfig.Field(
        dtype=bool, default=True, doc="bfloat16 autocast on a GPU (ignored on the CPU)."
    )
    numThreads = pexConfig.RangeField(
        dtype=int, default=0, min=0, doc="CPU threads for torch (0: torch's default)."
    )
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

    def fingerprint(self) -> str:
        """Hash of the settings that change the result (not device, threads,
        checkpointing or progress display), to tell whether a checkpoint
        belongs to this run. ``epochs`` and ``maxSteps`` are in it: the
        learning-rate schedule is planned over them.
        """
        values = {
            k: v
            for k, v in _jsonable(self.toDict()).items()
            if k not in {"device", "numThreads", "checkpointDir", "resume", "progressBar",
                         "cacheMegabytes", "modelVersion", "earlyStoppingPatience"}
        }
        values["model"] = {"name": self.model.name, "config": _jsonable(self.model.active.toDict())}
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


def _epoch_seed(seed: int, epoch: int) -> int:
    """A seed per epoch, so a resumed run repeats the uninterrupted one."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class _Trainer:
    """State of one training run (see `train`)."""

    def __init__(self, config: TrainingConfig, data: TripletData, log: logging.Logger):
        self.config = config
        self.data = data
        self.log = log
        self.device = select_device(config.device)
        self.threads = configure_threads(config.numThreads)
        self.autocast = self.device.type == "cuda" and config.mixedPrecision
        torch.manual_seed(config.seed)
        self.model = config.model.apply(data.cutout_config.size).to(self.device)
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
        self.validation = data.validation()
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"value": None, "epoch": None, "state": None}
        self.bad_epochs = 0
        self.stopped_early = False

    # -- checkpoints ---------------------------------------------------------

    @property
    def checkpoint_path(self) -> str | None:
        return os.path.join(self.config.checkpointDir, CHECKPOINT_NAME) if self.config.checkpointDir else None

    def save_checkpoint(self) -> None:
        path = self.checkpoint_path
        if path is None:
            return
        os.makedirs(self.config.checkpointDir, exist_ok=True)
        state = {
            "fingerprint": self.config.fingerprint(),
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
        torch.save(state, tmp)
        os.replace(tmp, path)  # a kill mid-write never leaves a truncated checkpoint

    def load_checkpoint(self) -> bool:
        path = self.checkpoint_path
        if path is None or not self.config.resume or not os.path.exists(path):
            return False
        try:
            # weights_only: tensors and plain containers only, never arbitrary pickles.
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:
            raise TrainingError(f"cannot read checkpoint {path}: {str(err).splitlines()[0]}") from None
        if state.get("fingerprint") != self.config.fingerprint():
            raise TrainingError(
                f"checkpoint {path} was written with different training settings; remove it or set "
                "resume=False."
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = json.loads(state["history"])
        self.best = {"value": state["best_value"], "epoch": state["best_epoch"], "state": state["best_state"]}
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped_early = bool(state["stopped_early"])
        self.log.info("Resumed from %s after epoch %d (step %d).", path, self.epoch, self.step)
        return True

    # -- loop ----------------------------------------------------------------

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)

    def run(self) -> None:
        c = self.config
        self.load_checkpoint()
        show = c.progressBar and sys.stderr.isatty()
        while self.epoch < c.epochs and not self.stopped_early and not self._out_of_steps():
            seed = _epoch_seed(c.seed, self.epoch)
            rng = np.random.default_rng(seed)
            torch.manual_seed(seed)
            generator = torch.Generator().manual_seed(seed)
            self.model.train()
            start = time.perf_counter()
            losses, seen = [], 0
            bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {self.epoch + 1}/{c.epochs}", disable=not show,
                       leave=False, unit="step")
            for batch in self.data.batches(c.batchSize, rng, c.shuffleBufferRows):
                x = self._tensor(batch.cutouts)
                if c.augment:
                    x = augment(x, generator)
                y = self._tensor(batch.labels)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                    loss = self.loss_fn(self.model(x).float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
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
            record = {"epoch": self.epoch, "step": self.step, "trainLoss": sum(losses) / max(seen, 1),
                      "seconds": elapsed, "samplesPerSecond": seen / elapsed if elapsed > 0 else None}
            record.update(self.evaluate())
            self.history.append(record)
            self._track_best(record)
            self.log.info(
                "Epoch %d/%d: train loss %.4f, validation loss %s, AUC %s, AP %s (%.1f s, %.0f triplets/s).",
                self.epoch, c.epochs, record["trainLoss"], _fmt(record["validationLoss"]),
                _fmt(record["validationAuc"]), _fmt(record["validationAp"]), elapsed,
                record["samplesPerSecond"] or 0.0,
            )
            self.save_checkpoint()
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
) -> ModelPackage:
    """Train a model and package it.

    Parameters
    ----------
    config : `TrainingConfig`
        Training settings.
    data : `~lsst.meas.realbogus.tripletData.TripletData`
        Training and validation triplets.
    provenance : `dict`, optional
        Extra facts recorded under the package's ``training`` metadata
        (input collections, tract...).
    log : `logging.Logger`, optional
        Logger for progress lines.

    Returns
    -------
    package : `~lsst.meas.realbogus.modelPackage.ModelPackage`
        Weights and metadata, including validation metrics and the
        threshold at ``config.thresholdCompleteness``.

    Raises
    ------
    TrainingError
        Raised if a checkpoint is unreadable or belongs to other settings.
    lsst.meas.realbogus.devices.DeviceError
        Raised if the requested device is not available.
    """
    log = log or logging.getLogger(__name__)
    started = time.perf_counter()
    trainer = _Trainer(config, data, log)
    log.info(
        "Training %s (%d parameters) on %s (%d threads, mixed precision %s): %d training triplets (%d real), %d validation "
        "(%d real), %d steps planned.",
        config.model.name, sum(p.numel() for p in trainer.model.parameters()), trainer.device, trainer.threads,
        "on" if trainer.autocast else "off",
        data.n_train, data.counts["train"]["real"], data.n_validation, data.counts["validation"]["real"],
        trainer.total_steps,
    )
    trainer.run()
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
        "configFingerprint": config.fingerprint(),
        "config": {k: v for k, v in _jsonable(config.toDict()).items() if k != "model"},
        "history": trainer.history,
    }
    package = ModelPackage.from_model(
        trainer.model.cpu(),
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
