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

"""Score DIA sources: the ``computeReliability`` step of the AP pipeline."""

from __future__ import annotations

__all__ = [
    "RELIABILITY_COLUMNS",
    "ComputeReliabilityConfig",
    "ComputeReliabilityConnections",
    "ComputeReliabilityTask",
]

from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
from lsst.utils.timer import timeMethod

from ..errors import ModelPackageError
from ..models._devices import (
    configure_quantum_threads,
    configure_threads,
    device_field,
    select_device,
    threads_field,
)
from ..models._modelPackage import ModelPackage
from ..models._storageClass import STORAGE_CLASS
from ..triplets import (
    CutoutConfig,
    SourceColumnsConfig,
    TripletImagesConfig,
    TripletInputConnections,
    Triplets,
    check_source_catalog,
    extract_triplets_from_images,
)
from ._scoring import LoadedModel, load_model, score_triplets

if TYPE_CHECKING:
    from lsst.images import DifferenceImage, VisitImage

RELIABILITY_COLUMNS = (
    "diaSourceId",
    "reliability",
    "cutoutFlags_edge",
    "cutoutFlags_noData",
    "cutoutNoDataFraction",
    "modelVersion",
)
"""Columns of ``dia_source_reliability``, one row per input DIA source."""


class ComputeReliabilityConnections(
    TripletInputConnections,
    dimensions=("instrument", "visit", "detector"),
):
    model = cT.PrerequisiteInput(
        doc="Trained real/bogus model package.",
        name="rb_model",
        storageClass=STORAGE_CLASS,
        dimensions=(),
    )
    classifications = cT.Output(
        doc="Reliability score and cutout flags of each DIA source.",
        name="dia_source_reliability",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )

    def adjustQuantum(self, inputs, outputs, label, data_id):
        # The default message does not say what to do; this is the most
        # common set-up mistake, so say it at graph building.
        # pipe_base does not pass adjustQuantum the input collections, so
        # the message says where to look without naming them.
        connection, refs = inputs["model"]
        if not refs:
            raise FileNotFoundError(
                f"No {connection.name!r} dataset (the real/bogus model package, storage class "
                f"{connection.storageClass}) in the input collections of {label}; add the collection "
                "that trainRealBogus or rb-train wrote to the inputs, e.g. -i DC2/sim,u/$USER/rbModel."
            )
        return super().adjustQuantum(inputs, outputs, label, data_id)


class ComputeReliabilityConfig(
    pipeBase.PipelineTaskConfig,
    SourceColumnsConfig,
    TripletImagesConfig,
    pipelineConnections=ComputeReliabilityConnections,
):
    """Configuration of `ComputeReliabilityTask`."""

    device = device_field()
    numThreads = threads_field()
    batchSize = pexConfig.RangeField(
        dtype=int, default=64, min=1,
        doc="Triplets per forward pass (64: fastest on CPUs for rbcnn and vgg6, benchmarks/inference.py; "
        "a GPU wants more).",
    )
    mixedPrecision = pexConfig.Field(
        dtype=bool, default=False,
        doc="bfloat16 autocast on a GPU (scores then differ by ~1e-3 from fp32; without it TF32 is turned "
        "off so GPU scores match CPU ones to ~1e-7).",
    )
    strictModelMatch = pexConfig.Field(
        dtype=bool,
        default=False,
        doc="If True, refuse a model package trained on another instrument or band than the data scored; "
        "if False, log a warning and score anyway. Packages that do not record them are not checked.",
    )
    expectedCutoutSize = pexConfig.RangeField(
        dtype=int,
        default=0,
        min=0,
        doc="Refuse a model package whose cutout size differs (0: accept the package's size).",
    )
    expectedNormalization = pexConfig.ChoiceField(
        dtype=str,
        default=None,
        optional=True,
        allowed={k: v for k, v in CutoutConfig.normalization.allowed.items() if k is not None},
        doc="Refuse a model package whose cutout normalization differs (None: accept the package's).",
    )


class ComputeReliabilityTask(pipeBase.PipelineTask):
    """Score every DIA source of a detector-visit with a real/bogus model.

    Cutouts are made by `~lsst.meas.realbogus.triplets.extract_triplets`
    with the settings recorded in the model package, the same code and
    settings that made the model's training triplets. The output has one
    row per input source, in input order.

    The steps of a quantum are timed with `~lsst.utils.timer.timeMethod`,
    so that its wall time splits into Butler reads (``readInputs``), the
    network (``loadModel``), cutouts (``cutTriplets``), the forward passes
    (``scoreTriplets``) and the Butler write (``writeOutputs``), with
    ``run`` around the middle three: the task metadata has ``<step>StartUtc``,
    ``<step>EndUtc``, ``<step>StartCpuTime``, ... for each, and
    ``nSources``.
    """

    ConfigClass = ComputeReliabilityConfig
    _DefaultName = "computeReliability"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.device = select_device(self.config.device)

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        configure_quantum_threads(self.config.numThreads, butlerQC)
        inputs = self.readInputs(butlerQC, inputRefs)
        outputs = self.run(**inputs)
        self.writeOutputs(butlerQC, outputs, outputRefs)

    @timeMethod
    def readInputs(
        self, butlerQC: pipeBase.QuantumContext, inputRefs: pipeBase.InputQuantizedConnection
    ) -> dict[str, Any]:
        """Read the quantum's inputs (a step of its own so that the Butler
        reads are timed apart from ``run``).
        """
        return butlerQC.get(inputRefs)

    @timeMethod
    def writeOutputs(
        self,
        butlerQC: pipeBase.QuantumContext,
        outputs: pipeBase.Struct,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        """Write the quantum's outputs (timed, as `readInputs`)."""
        butlerQC.put(outputs, outputRefs)

    @timeMethod
    def run(
        self,
        science: VisitImage,
        template: DifferenceImage,
        difference: DifferenceImage,
        diaSources: Table,
        model: ModelPackage,
    ) -> pipeBase.Struct:
        """Score the DIA sources of one detector-visit.

        Parameters
        ----------
        science : `lsst.images.VisitImage`
            The science image.
        template : `lsst.images.DifferenceImage`
            The template, warped to the science image.
        difference : `lsst.images.DifferenceImage`
            The difference image.
        diaSources : `astropy.table.Table`
            DIA sources with id and position columns.
        model : `~lsst.meas.realbogus.models.ModelPackage`
            The model.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``classifications``: `astropy.table.Table` with
            `RELIABILITY_COLUMNS`.

        Raises
        ------
        lsst.meas.realbogus.errors.InvalidCatalogError
            Raised if required columns are missing or ids repeat.
        lsst.meas.realbogus.errors.ModelPackageError
            Raised if the model package cannot be used, or (with
            ``strictModelMatch``) was trained on another instrument or band.
        lsst.meas.realbogus.errors.ImageMismatchError
            Raised if the three images are not on one pixel grid.
        """
        c = self.config
        check_source_catalog(diaSources, [c.idColumn, c.xColumn, c.yColumn])
        cutout_config = self._check_model(model, science)
        threads = configure_threads(c.numThreads)
        loaded = self.loadModel(model)
        triplets = self.cutTriplets(template, science, difference, diaSources, cutout_config, threads)
        scores = self.scoreTriplets(loaded, triplets, model.temperature, model.intercept)
        table = make_reliability_table(np.asarray(diaSources[c.idColumn], dtype=np.int64), scores, triplets,
                                       model.version)
        self.metadata["nSources"] = len(table)
        self.log.info(
            "Scored %d DIA sources with %s on %s (%d threads): %d at an edge, %d with missing pixels.",
            len(table), model.version, self.device, threads, int(triplets.edge.sum()), int(triplets.noData.sum()),
        )
        return pipeBase.Struct(classifications=table)

    @timeMethod
    def loadModel(self, model: ModelPackage) -> LoadedModel:
        """Build the package's network on the task's device, or find it in
        the process's model cache (`~lsst.meas.realbogus.scoring.load_model`).
        """
        return load_model(model, self.device)

    @timeMethod
    def cutTriplets(
        self,
        template: DifferenceImage,
        science: VisitImage,
        difference: DifferenceImage,
        diaSources: Table,
        cutout_config: CutoutConfig,
        threads: int,
    ) -> Triplets:
        """Cut the triplets of the DIA sources, in catalog order, with the
        model's cutout settings.

        Raises
        ------
        lsst.meas.realbogus.errors.ImageMismatchError
            Raised if the three images are not on one pixel grid.
        """
        x, y = self.config.positions(diaSources)
        return extract_triplets_from_images(
            template, science, difference, x, y, cutout_config, max_wcs_offset=self.config.maxWcsOffset,
            threads=threads,
        )

    @timeMethod
    def scoreTriplets(
        self, loaded: LoadedModel, triplets: Triplets, temperature: float, intercept: float = 0.0
    ) -> np.ndarray:
        """Return the score of each triplet, in order, calibrated with the
        package's ``temperature`` (not the cached network's package's: the
        cache is keyed by weights, which two calibrations may share).
        """
        c = self.config
        return score_triplets(
            loaded.model, triplets.cutouts, device=self.device, batch_size=c.batchSize,
            mixed_precision=c.mixedPrecision, temperature=temperature, intercept=intercept,
        )

    def _check_model(self, model: ModelPackage, science: VisitImage) -> CutoutConfig:
        """Check that a model package suits this config and these data, and
        return its cutout settings.

        Cutout settings that differ from the config's expectations are
        always refused; another instrument or band is refused only with
        ``strictModelMatch`` (a warning otherwise).
        """
        c = self.config
        cutout = model.cutout_config()  # refuses a foreign channel order
        for field, name, expected, actual in (
            ("expectedCutoutSize", "size", c.expectedCutoutSize or None, cutout.size),
            ("expectedNormalization", "normalization", c.expectedNormalization, cutout.normalization),
        ):
            if expected is not None and expected != actual:
                raise ModelPackageError(
                    f"model {model.version} was trained on cutouts with {name} {actual!r} but this config "
                    f"expects {expected!r} ({field})."
                )
        trained = model.trained_for()
        observed = {"instrument": _attribute(science, "obs_info", "instrument"),
                    "bands": _attribute(science, "band")}
        for key, value in observed.items():
            if key not in trained or value is None:
                if c.strictModelMatch:
                    # Strict means checked: say which side does not tell.
                    side = "the model package records no" if key not in trained else "the science image has no"
                    self.log.warning("strictModelMatch: %s %s; that match is not checked.", side, key)
                continue
            if str(value) in trained[key]:
                continue
            message = (f"model {model.version} was trained on {key} {', '.join(trained[key])} but is scoring "
                       f"{key} {value}")
            if c.strictModelMatch:
                raise ModelPackageError(message + " (strictModelMatch=True).")
            self.log.warning("%s; scores may be unreliable (set strictModelMatch to refuse).", message)
        return cutout


def _attribute(obj: Any, *names: str) -> Any:
    """Follow attributes, returning None where one is missing."""
    for name in names:
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def make_reliability_table(ids: np.ndarray, scores: np.ndarray, triplets: Triplets, version: str) -> Table:
    """Assemble ``dia_source_reliability``; its metadata names the model."""
    table = Table()
    table["diaSourceId"] = ids
    table["reliability"] = np.asarray(scores, dtype=np.float32)
    for name, values in triplets.flag_columns().items():
        table[name] = values
    table["modelVersion"] = np.full(len(ids), version, dtype=f"U{max(len(version), 1)}")
    table.meta["modelVersion"] = version
    return table
