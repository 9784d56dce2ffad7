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
from typing import TYPE_CHECKING, Any

import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
from lsst.utils.timer import timeMethod

from ..models import STORAGE_CLASS, configure_quantum_threads, training_data_coverage
from ._config import TrainingConfig
from ._distributed import DistributedContext
from ._train import train
from ._tripletData import TripletData

if TYPE_CHECKING:
    from lsst.daf.butler import DatasetRef, DeferredDatasetHandle


class TrainRealBogusConnections(pipeBase.PipelineTaskConnections, dimensions=("skymap", "tract")):
    """Inputs and output of `TrainRealBogusTask`: every ``rb_triplets`` of
    the detector-visits overlapping a tract in, one ``rb_model`` out.
    """

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

    def adjust_all_quanta(self, adjuster: pipeBase.QuantaAdjuster) -> None:
        """Refuse, when the graph is built, a query that selects several
        tracts.

        Raises
        ------
        ValueError
            Raised if there is more than one quantum.
        """
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
    config: TrainRealBogusConfig
    _DefaultName = "trainRealBogus"

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        refs = sorted(inputRefs.triplets, key=lambda ref: (ref.dataId["visit"], ref.dataId["detector"]))
        handles = [butlerQC.get(ref) for ref in refs]
        provenance = _provenance(refs, butlerQC.quantum.dataId["skymap"], butlerQC.quantum.dataId["tract"])
        configure_quantum_threads(self.config.numThreads, butlerQC)
        outputs = self.run(handles, names=[_describe(ref) for ref in refs], provenance=provenance)
        butlerQC.put(outputs, outputRefs)

    @timeMethod
    def run(
        self,
        triplets: Sequence[DeferredDatasetHandle],
        names: Sequence[str] | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> pipeBase.Struct:
        """Train and package a model.

        Parameters
        ----------
        triplets : `~collections.abc.Sequence` [`~lsst.daf.butler.DeferredDatasetHandle`]
            Handles of ``rb_triplets`` datasets (any objects with
            ``get(parameters=...)``), read lazily.
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
        dist = DistributedContext.from_environment()
        data = self._open_triplets(triplets, names, dist)
        package = train(self.config, data, provenance=provenance, log=self.log, distributed=dist)
        return pipeBase.Struct(model=package)

    def _open_triplets(self, triplets: Sequence[DeferredDatasetHandle], names: Sequence[str] | None,
                       dist: DistributedContext) -> TripletData:
        """Scan the triplets for streaming; under ``datasets`` sharding, this
        rank's datasets only.
        """
        c = self.config
        names = list(names) if names is not None else [f"dataset {i}" for i in range(len(triplets))]
        shard = (dist.rank, dist.world_size) if dist.active and c.distributedSharding == "datasets" else None
        return TripletData(
            triplets,
            names,
            validation_fraction=c.validationFraction,
            seed=c.seed,
            calibration_fraction=c.naturalCalibrationFraction if c.calibration == "natural" else 0.0,
            cache_megabytes=c.cacheMegabytes,
            log=self.log,
            shard=shard,
            readers=c.loaderThreads,
        )


def _provenance(refs: Sequence[DatasetRef], skymap: str, tract: int) -> dict[str, Any]:
    """What the model package records of its training data."""
    return {
        "inputCollections": sorted({ref.run for ref in refs}),
        "datasets": len(refs),
        "skymap": str(skymap),
        "tract": int(tract),
        # What computeReliability compares with the data it scores.
        **training_data_coverage(ref.dataId for ref in refs),
    }


def _describe(ref: DatasetRef) -> str:
    """A dataset's name in messages."""
    return f"visit={ref.dataId['visit']} detector={ref.dataId['detector']}"
