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

"""The end of a training run on rank 0: validation metrics, calibration,
the threshold, provenance, and the `~lsst.meas.realbogus.models.ModelPackage`.
"""

from __future__ import annotations

__all__ = ["package_model"]

import dataclasses
import datetime
import logging
import math
import platform
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..evaluation import _metrics as metrics
from ..models import ModelPackage
from ._calibration import calibrate, calibrated_scores, effective_real_fraction, fit_prior_shift
from ._config import _jsonable

if TYPE_CHECKING:
    from ._config import TrainingConfig
    from ._trainer import Trainer
    from ._tripletData import TripletData


@dataclasses.dataclass
class _Validation:
    """What the validation split says of the trained model."""

    metrics: dict[str, Any]
    threshold: float = 0.5
    rule: str = "default 0.5"
    calibration: dict[str, Any] | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def package_model(config: TrainingConfig, data: TripletData, trainer: Trainer, log: logging.Logger,
                  provenance: dict[str, Any] | None, started: float) -> ModelPackage:
    """Validate, calibrate, choose the threshold and package (rank 0).

    Parameters
    ----------
    config : `TrainingConfig`
        The run's settings.
    data : `~lsst.meas.realbogus.training.TripletData`
        Its triplets (counts and cutout settings).
    trainer : `~lsst.meas.realbogus.training._trainer.Trainer`
        The finished run.
    log : `logging.Logger`
        Logger for the calibration and the result.
    provenance : `dict` or `None`
        Caller's facts for the ``training`` metadata.
    started : `float`
        `time.perf_counter` at the start of the run.

    Returns
    -------
    package : `~lsst.meas.realbogus.models.ModelPackage`
        Weights and metadata.
    """
    train = data.counts["train"]
    # The prior the network learnt is the loss's: reals weighted by pos_weight.
    prior = effective_real_fraction(train["real"], train["bogus"], float(trainer.loss_fn.pos_weight))
    validation = _validate(config, trainer, log, prior)
    training = _training_metadata(config, data, trainer, provenance, started)
    package = ModelPackage.from_model(
        _plain_model(config, data, trainer),
        architecture=config.model.name,
        model_config=_jsonable(config.model.active.toDict()),
        cutout_config=data.cutout_config,
        version=config.modelVersion or None,
        threshold=validation.threshold,
        thresholdRule=validation.rule,
        training=training,
        metrics={"validation": validation.metrics, **validation.extra},
        calibration=validation.calibration,
        software=_software_versions(),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    log.info("Model %s: validation %s; threshold %.4f (%s).", package.version,
             {k: validation.metrics.get(k) for k in ("n", "roc_auc", "average_precision")}, package.threshold,
             validation.rule)
    return package


def _validate(config: TrainingConfig, trainer: Trainer, log: logging.Logger,
              train_real_fraction: float) -> _Validation:
    """Score the held-out splits once: calibration, metrics and threshold.

    The calibration and the threshold are fitted on the validation split,
    or, with ``calibration="natural"``, on the natural-mix calibration split
    (whose figures are then the package's ``calibration`` metrics); one
    too small to fit on still shifts the prior (`fit_prior_shift`) by the
    real fractions of that split and of the training split
    (``train_real_fraction``, class weighting applied). An empty natural
    split leaves the model uncalibrated, with a warning and the reason in
    the threshold rule.
    """
    val = trainer.validation
    result = _Validation(metrics={"n": len(val), "n_real": int(val.labels.sum())})
    natural = config.calibration == "natural"
    fit = trainer.calibration if natural else val
    val_logits = trainer.predict(val.cutouts, logits=True) if len(val) else None
    fit_logits = val_logits if not natural else trainer.predict(fit.cutouts, logits=True) if len(fit) else None
    n_real = int(fit.labels.sum())
    if natural and not len(fit):
        # Every labelled triplet came from an injected source (or the
        # fraction held out none): nothing says what the natural mix is.
        result.rule = ("default 0.5: calibration='natural' found no natural-mix triplet (rb_triplets "
                       "'injected' False) to hold out; the scores are not calibrated")
        log.warning("Calibration: %s.", result.rule.removeprefix("default 0.5: "))
    elif natural and len(fit) and n_real < config.minValidationReal and 0 < train_real_fraction < 1:
        # Too few reals to fit T and b, or to choose a threshold: the counts
        # still correct the training mix's prior (a model trained on 70 %
        # reals would otherwise read as over-confident at the natural mix).
        result.calibration = fit_prior_shift(fit_logits, fit.labels, train_real_fraction)
        log.info("Calibration on the %s: b = %.3f (ECE %.4f -> %.4f).", result.calibration["fittedOn"],
                 result.calibration["intercept"], result.calibration["eceBefore"],
                 result.calibration["eceAfter"])
        result.rule = f"default 0.5: only {n_real} real triplets in the {_split_name(config)}"
    elif not 0 < n_real < len(fit):
        pass  # no triplet, or one class: nothing to fit or choose
    elif n_real < config.minValidationReal:
        result.rule = f"default 0.5: only {n_real} real triplets in the {_split_name(config)}"
    else:
        result.calibration = calibrate(config.calibration, fit_logits, fit.labels, log)
        scores = calibrated_scores(fit_logits, result.calibration)
        result.threshold, result.rule = _choose_threshold(config, fit.labels, scores)
        if natural:
            result.extra["calibration"] = {"n": len(fit), "n_real": n_real,
                                           **metrics.summarize(fit.labels, scores)}
    if val_logits is not None and 0 < val.labels.sum() < len(val):
        result.metrics.update(metrics.summarize(val.labels, calibrated_scores(val_logits, result.calibration)))
    return result


def _split_name(config: TrainingConfig) -> str:
    return "natural-mix calibration split" if config.calibration == "natural" else "validation split"


def _choose_threshold(config: TrainingConfig, labels: np.ndarray, scores: np.ndarray) -> tuple[float, str]:
    """The highest threshold keeping ``thresholdCompleteness``, and its rule."""
    _, threshold = metrics.purity_at_completeness(labels, scores, config.thresholdCompleteness)
    rule = f"highest threshold with completeness >= {config.thresholdCompleteness:.2f} on the {_split_name(config)}"
    return (float(threshold) if math.isfinite(threshold) else 0.5), rule


def _training_metadata(config: TrainingConfig, data: TripletData, trainer: Trainer,
                       provenance: dict[str, Any] | None, started: float) -> dict[str, Any]:
    """The package's ``training`` metadata: data, run and settings."""
    progress, dist = trainer.progress, trainer.dist
    training = {
        **(provenance or {}),
        "triplets": data.counts,
        "unlabelled": data.unlabelled,
        "truthClasses": data.classes,
        "seed": config.seed,
        "epochsRun": progress.epoch,
        "stepsRun": progress.step,
        "bestEpoch": progress.best_epoch,
        "stoppedEarly": progress.stopped_early,
        "device": str(trainer.device),
        "threads": trainer.threads,
        "mixedPrecision": trainer.autocast,
        "seconds": time.perf_counter() - started,
        "configFingerprint": config.fingerprint(dist.world_size),
        "config": {k: v for k, v in _jsonable(config.toDict()).items() if k != "model"},
        "history": progress.history,
    }
    if dist.active:
        training["distributed"] = {"worldSize": dist.world_size, "backend": dist.backend,
                                   "sharding": config.distributedSharding}
    return training


def _plain_model(config: TrainingConfig, data: TripletData, trainer: Trainer) -> torch.nn.Module:
    """The trained network on the CPU, as a single process would have it."""
    model = trainer.model.cpu()
    if trainer.dist.active:
        # A plain copy of the weights: no SyncBatchNorm in the package.
        model = config.model.apply(data.cutout_config.size)
        model.load_state_dict(trainer.model.cpu().state_dict())
    return model


def _software_versions() -> dict[str, str]:
    """Versions of meas_realbogus, torch, numpy and Python."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("lsst-meas-realbogus")
    except PackageNotFoundError:
        own = "unknown"
    return {"meas_realbogus": own, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}
