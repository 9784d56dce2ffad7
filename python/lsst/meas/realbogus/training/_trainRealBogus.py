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

"""Train a real/bogus model on the ``rb_triplets`` of a tract: the
``trainRealBogus`` PipelineTask and the ``rb-train`` command, one code path.
"""

from __future__ import annotations

__all__ = ["TrainRealBogusConfig", "TrainRealBogusConnections", "TrainRealBogusTask"]

from collections.abc import Sequence
from typing import Any

import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT

from ..models._devices import configure_quantum_threads
from ..models._modelPackage import training_data_coverage
from ..models._storageClass import STORAGE_CLASS
from ._training import DistributedContext, TrainingConfig, train
from ._tripletData import TripletData


class TrainRealBogusConnections(pipeBase.PipelineTaskConnections, dimensions=("skymap", "tract")):
    triplets = cT.Input(
        doc="Labelled cutout triplets of the detector-visits overlapping the tract.",
        name="rb_triplets",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
        deferLoad=True,
    )
    model = cT.Output(
        doc="Trained model package (weights and metadata).",
        name="rb_model",
        storageClass=STORAGE_CLASS,
        dimensions=(),
    )

    def adjust_all_quanta(self, adjuster):
        # rb_model has no dimensions: two tracts in one graph would both
        # write it, and the second would fail only after the first trained.
        data_ids = list(adjuster.iter_data_ids())
        if len(data_ids) > 1:
            tracts = sorted(f"{d['skymap']}/{d['tract']}" for d in data_ids)
            raise ValueError(
                f"{adjuster.task_label} writes one dimensionless {self.model.name!r} per output collection "
                f"but the data query selects {len(data_ids)} tracts ({', '.join(tracts)}); train one tract "
                "per run, e.g. -d \"skymap='DC2' AND tract=3080\"."
            )


class TrainRealBogusConfig(
    pipeBase.PipelineTaskConfig, TrainingConfig, pipelineConnections=TrainRealBogusConnections
):
    """Configuration of `TrainRealBogusTask`: the fields of
    `~lsst.meas.realbogus.training.TrainingConfig`.
    """


class TrainRealBogusTask(pipeBase.PipelineTask):
    """Train a real/bogus classifier on the triplets of one tract.

    ``rb_model`` has no dimensions: run one tract per output collection,
    e.g. ``-d "skymap='DC2' AND tract=3080"``.
    """

    ConfigClass = TrainRealBogusConfig
    _DefaultName = "trainRealBogus"

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        refs = sorted(inputRefs.triplets, key=lambda ref: (ref.dataId["visit"], ref.dataId["detector"]))
        handles = [butlerQC.get(ref) for ref in refs]
        provenance = _provenance(refs, butlerQC.quantum.dataId["skymap"], butlerQC.quantum.dataId["tract"])
        configure_quantum_threads(self.config.numThreads, butlerQC)
        outputs = self.run(handles, names=[_describe(ref) for ref in refs], provenance=provenance)
        butlerQC.put(outputs, outputRefs)

    def run(
        self,
        triplets: Sequence[Any],
        names: Sequence[str] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> pipeBase.Struct:
        """Train and package a model.

        Parameters
        ----------
        triplets : `~collections.abc.Sequence`
            Handles of ``rb_triplets`` datasets (objects with
            ``get(parameters=...)``, read lazily).
        names : `~collections.abc.Sequence` [`str`], optional
            A name per handle for messages.
        provenance : `dict`, optional
            Facts recorded in the package's training metadata.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``model``: the `~lsst.meas.realbogus.models.ModelPackage`.

        Notes
        -----
        Under ``torchrun`` every rank calls this with the same triplets and
        trains one model with DistributedDataParallel (see
        `~lsst.meas.realbogus.training.train`); every rank returns rank
        0's package.
        """
        c = self.config
        names = list(names) if names is not None else [f"dataset {i}" for i in range(len(triplets))]
        dist = DistributedContext.from_environment()
        shard = (dist.rank, dist.world_size) if dist.active and c.distributedSharding == "datasets" else None
        data = TripletData(
            triplets,
            names,
            validation_fraction=c.validationFraction,
            seed=c.seed,
            cache_megabytes=c.cacheMegabytes,
            log=self.log,
            shard=shard,
            readers=c.loaderThreads,
        )
        package = train(c, data, provenance=provenance, log=self.log, distributed=dist)
        return pipeBase.Struct(model=package)


def _provenance(refs, skymap: str, tract: int) -> dict[str, Any]:
    """What the model package records of its training data."""
    return {
        "inputCollections": sorted({ref.run for ref in refs}),
        "datasets": len(refs),
        "skymap": str(skymap),
        "tract": int(tract),
        # What computeReliability compares with the data it scores.
        **training_data_coverage(ref.dataId for ref in refs),
    }


def _describe(ref) -> str:
    return f"visit={ref.dataId['visit']} detector={ref.dataId['detector']}"
