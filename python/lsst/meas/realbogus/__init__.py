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

"""Real/bogus (reliability) classification of Rubin difference-image
sources.

The package reads as its data flow, one subpackage per stage:

- `~lsst.meas.realbogus.simulation`: the DC2-like world (``rb-simulate``);
- `~lsst.meas.realbogus.triplets`: cutout triplets and ``buildTriplets``;
- `~lsst.meas.realbogus.models`: architectures and the model package;
- `~lsst.meas.realbogus.training`: ``trainRealBogus`` (``rb-train``);
- `~lsst.meas.realbogus.scoring`: ``computeReliability`` and
  ``filterDiaSourcePostReliability``;
- `~lsst.meas.realbogus.evaluation`: ``evaluateRealBogus``, plots, report;
- `~lsst.meas.realbogus.cli`: the command-line front ends.

The tasks are exported here (``lsst.meas.realbogus.ComputeReliabilityTask``)
and imported on first use, so that a ``buildTriplets`` quantum or the
simulator does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BuildTripletsConfig": "triplets",
    "BuildTripletsConnections": "triplets",
    "BuildTripletsTask": "triplets",
    "ComputeReliabilityConfig": "scoring",
    "ComputeReliabilityConnections": "scoring",
    "ComputeReliabilityTask": "scoring",
    "CutoutConfig": "triplets",
    "EvaluateRealBogusConfig": "evaluation",
    "EvaluateRealBogusConnections": "evaluation",
    "EvaluateRealBogusTask": "evaluation",
    "FilterReliabilityConfig": "scoring",
    "FilterReliabilityConnections": "scoring",
    "FilterReliabilityTask": "scoring",
    "ModelPackage": "models",
    "TrainRealBogusConfig": "training",
    "TrainRealBogusConnections": "training",
    "TrainRealBogusTask": "training",
    "TrainingConfig": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    stage = _EXPORTS.get(name)
    if stage is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{stage}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
