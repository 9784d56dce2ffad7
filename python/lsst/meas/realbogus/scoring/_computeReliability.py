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

"""Score DIA sources: the ``computeReliability`` step of the AP pipeline.

Two output schemas (``outputSchema``): the package's own
(`RELIABILITY_COLUMNS`: ``diaSourceId``, ``reliability``, the cutout flags
and ``modelVersion``, an astropy table), and the AP pipeline's
(`AP_RELIABILITY_COLUMNS`: ``id``, float32 ``score`` and a ``version`` of at
most 7 characters, what ap_association's ``FilterDiaSourceReliabilityTask``
reads), an afw ``BaseCatalog`` when lsst.afw is importable and the same
schema as an astropy table otherwise.
"""

from __future__ import annotations

__all__ = [
    "AP_RELIABILITY_COLUMNS",
    "AP_VERSION_SIZE",
    "RELIABILITY_COLUMNS",
    "ComputeReliabilityConfig",
    "ComputeReliabilityConnections",
    "ComputeReliabilityTask",
    "afw_table",
    "make_ap_reliability_catalog",
    "make_reliability_table",
]

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
from lsst.utils.timer import timeMethod

from ..errors import ModelPackageError, NonFiniteScoreError, RealBogusError
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
    TripletInputStorageConfig,
    Triplets,
    as_astropy_table,
    catalog_ids,
    check_source_catalog,
    extract_triplets_from_images,
    is_afw_exposure,
    replace_storage_class,
)
from ._scoring import LoadedModel, load_model, score_triplets

if TYPE_CHECKING:
    from lsst.images import DifferenceImage, MaskedImage, VisitImage

RELIABILITY_COLUMNS = (
    "diaSourceId",
    "reliability",
    "cutoutFlags_edge",
    "cutoutFlags_noData",
    "cutoutNoDataFraction",
    "modelVersion",
)
"""Columns of ``dia_source_reliability`` in the package's schema, one row
per input DIA source."""

AP_RELIABILITY_COLUMNS = ("id", "score", "version")
"""Columns (afw fields) of ``dia_source_reliability`` in the AP schema, one
row per input DIA source in input order: the source's ``id``, the float32
``score`` ap_association copies into ``reliability``, and the model's
`~lsst.meas.realbogus.models.ModelPackage.short_version`, which it copies
into the 7-character ``reliabilityVersion``."""

AP_VERSION_SIZE = 7
"""Characters of the AP schema's ``version`` field (those of the DIA
sources' ``reliabilityVersion``)."""

_ASTROPY_STORAGE_CLASSES = frozenset({"ArrowAstropy", "AstropyTable"})


def afw_table() -> Any:
    """Return the ``lsst.afw.table`` module, or `None` where lsst.afw is not
    importable (as here, outside a full stack).
    """
    try:
        return importlib.import_module("lsst.afw.table")
    except ImportError:
        return None


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
        doc="Reliability score of each DIA source, in input order (see outputSchema).",
        name="dia_source_reliability",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )

    def __init__(self, *, config: ComputeReliabilityConfig | None = None):
        super().__init__(config=config)
        if config is not None:
            self.classifications = replace_storage_class(self.classifications,
                                                         config.classificationsStorageClass)

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
    TripletInputStorageConfig,
    pipelineConnections=ComputeReliabilityConnections,
):
    """Configuration of `ComputeReliabilityTask`.

    ``config/ap/computeReliability.py`` sets what a real AP repository
    needs (``ExposureF`` images, the ``SourceCatalog`` read as
    ``AstropyTable``, ``outputSchema="ap"`` written as ``Catalog``).
    """

    outputSchema = pexConfig.ChoiceField(
        dtype=str,
        default="package",
        allowed={
            "package": "diaSourceId, reliability (float32), cutoutFlags_edge, cutoutFlags_noData, "
            "cutoutNoDataFraction and modelVersion: an astropy table (filterReliability and "
            "evaluateRealBogus read it).",
            "ap": "id, score (float32) and version (the model's 7-character short version), in input "
            "order: what ap_association's FilterDiaSourceReliabilityTask reads; an afw BaseCatalog where "
            "lsst.afw is importable, else an astropy table of the same columns.",
        },
        doc="Schema of dia_source_reliability.",
    )
    apNoDataScore = pexConfig.RangeField(
        dtype=float,
        default=0.0,
        min=0.0,
        max=1.0,
        doc="With outputSchema='ap': the score of a source whose cutout holds no image pixel "
        "(cutoutNoDataFraction 1: a null, masked or non-finite position, or one off the images). The "
        "package schema flags such a source; the AP schema cannot, so it gets this score instead of the "
        "network's opinion of a blank cutout (0: no alert from a source nobody could see).",
    )
    classificationsStorageClass = pexConfig.Field(
        dtype=str,
        default="ArrowAstropy",
        doc="Storage class of dia_source_reliability: ArrowAstropy (Parquet) or AstropyTable for an astropy "
        "table; Catalog (afw, a full stack's) with outputSchema='ap', as the AP pipeline registers it.",
    )
    device = device_field()
    numThreads = threads_field()
    batchSize = pexConfig.RangeField(
        dtype=int, default=64, min=1,
        doc="Triplets per forward pass (64: fastest on CPUs for rbcnn and vgg6, benchmarks/inference.py; "
        "a GPU wants more).",
    )
    sourceChunkSize = pexConfig.RangeField(
        dtype=int, default=4096, min=1,
        doc="DIA sources cut and scored at a time, which bounds the memory of a quantum: the cutouts of one "
        "chunk take sourceChunkSize * 3 * S * S * 4 bytes (31 kB a source at S=51: 4096 take 128 MB, where "
        "100k sources at once took 3 GB). Scores do not depend on it.",
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

    def validate(self) -> None:
        super().validate()
        if self.outputSchema == "package" and self.classificationsStorageClass == "Catalog":
            raise pexConfig.FieldValidationError(
                ComputeReliabilityConfig.classificationsStorageClass, self,
                "the package schema is an astropy table; an afw Catalog needs outputSchema='ap'.",
            )


class ComputeReliabilityTask(pipeBase.PipelineTask):
    """Score every DIA source of a detector-visit with a real/bogus model.

    Cutouts are made by `~lsst.meas.realbogus.triplets.extract_triplets`
    with the settings recorded in the model package, the same code and
    settings that made the model's training triplets. The output has one
    row per input source, in input order. Sources are cut and scored
    ``sourceChunkSize`` at a time (``cutTriplets`` and ``scoreTriplets``
    run once per chunk), so memory stays bounded on very large catalogs.

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
        if self.config.classificationsStorageClass == "Catalog" and afw_table() is None:
            raise RealBogusError(
                "classificationsStorageClass 'Catalog' is an afw catalog but lsst.afw is not importable; "
                "run in a full stack or use ArrowAstropy."
            )

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
        """Write the quantum's outputs (timed, as `readInputs`).

        An afw catalog (the AP schema in a full stack) written as an
        astropy storage class is converted first (ArrowAstropy converts
        from no afw type).
        """
        if (self.config.classificationsStorageClass in _ASTROPY_STORAGE_CLASSES
                and not isinstance(outputs.classifications, Table)):
            outputs.classifications = as_astropy_table(outputs.classifications)
        butlerQC.put(outputs, outputRefs)

    @timeMethod
    def run(
        self,
        science: VisitImage | Any,
        template: MaskedImage | Any,
        difference: DifferenceImage | Any,
        diaSources: Table | Any,
        model: ModelPackage,
    ) -> pipeBase.Struct:
        """Score the DIA sources of one detector-visit.

        Parameters
        ----------
        science : `lsst.images.VisitImage` or `lsst.afw.image.Exposure`
            The science image.
        template : `lsst.images.MaskedImage` or `lsst.afw.image.Exposure`
            The template, warped to the science image.
        difference : `lsst.images.DifferenceImage` or `lsst.afw.image.Exposure`
            The difference image.
        diaSources : `astropy.table.Table` or `lsst.afw.table.SourceCatalog`
            DIA sources with id and position columns.
        model : `~lsst.meas.realbogus.models.ModelPackage`
            The model.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``classifications``: with ``outputSchema="package"`` an
            `astropy.table.Table` with `RELIABILITY_COLUMNS`; with
            ``outputSchema="ap"`` the `AP_RELIABILITY_COLUMNS`, an afw
            ``BaseCatalog`` where lsst.afw is importable, else an astropy
            table (`make_ap_reliability_catalog`).

        Raises
        ------
        lsst.meas.realbogus.errors.InvalidCatalogError
            Raised if required columns are missing, an id is not an integer
            that fits int64 (null, masked, a non-integral float, an unsigned
            id >= 2**63) or repeats, or a position column is not numeric.
        lsst.meas.realbogus.errors.ModelPackageError
            Raised if the model package cannot be used, or (with
            ``strictModelMatch``) was trained on another instrument or band.
        lsst.meas.realbogus.errors.ImageMismatchError
            Raised if the three images are not on one pixel grid.
        lsst.meas.realbogus.errors.NonFiniteScoreError
            Raised if any score is not finite; nothing is written.
        """
        c = self.config
        diaSources = as_astropy_table(diaSources)
        check_source_catalog(diaSources, [c.idColumn, c.xColumn, c.yColumn])
        ids = catalog_ids(diaSources, c.idColumn)
        x, y = self.readPositions(diaSources)
        cutout_config = self._check_model(model, science)
        threads = configure_threads(c.numThreads)
        loaded = self.loadModel(model)
        scores, flags = self._cut_and_score(template, science, difference, x, y, cutout_config, threads, loaded,
                                            model)
        self._check_scores(ids, scores, model)
        if c.outputSchema == "ap":
            scores = self._score_blank_cutouts(scores, flags)
            table = make_ap_reliability_catalog(ids, scores, model.short_version, model_version=model.version)
        else:
            table = make_reliability_table(ids, scores, flags, model.version)
        self.metadata["nSources"] = len(table)
        # Only the full version: the short one is its first 7 hex digits
        # after the label, and TaskMetadata's JSON reads an all-digit string
        # ("0216203") back as a number.
        self.metadata["modelVersion"] = model.version
        self.log.info(
            "Scored %d DIA sources with %s (short version %s, %s schema) on %s (%d threads): %d at an edge, "
            "%d with missing pixels.",
            len(table), model.version, model.short_version, c.outputSchema, self.device, threads,
            int(flags["cutoutFlags_edge"].sum()), int(flags["cutoutFlags_noData"].sum()),
        )
        return pipeBase.Struct(classifications=table)

    def readPositions(self, diaSources: Table) -> tuple[np.ndarray, np.ndarray]:
        """Return the sources' positions (float64 pixels), refusing
        non-numeric columns.

        A source whose position is null, masked or not finite is cut as one
        off the image (its cutout all filled, ``cutoutFlags_edge`` set and
        ``cutoutNoDataFraction`` 1), never at the value under a mask; the
        task warns with their count and records it as ``nBadPositions``.

        Raises
        ------
        lsst.meas.realbogus.errors.InvalidCatalogError
            Raised if a position column is not numeric.
        """
        x, y = self.config.positions(diaSources)
        bad = int(np.count_nonzero(~(np.isfinite(x) & np.isfinite(y))))
        self.metadata["nBadPositions"] = bad
        if bad:
            self.log.warning("%d of %d DIA sources have a null, masked or non-finite position; they are cut as "
                             "off the image (cutoutFlags_edge, cutoutNoDataFraction 1).", bad, len(x))
        return x, y

    def _cut_and_score(
        self,
        template: MaskedImage | Any,
        science: VisitImage | Any,
        difference: DifferenceImage | Any,
        x: np.ndarray,
        y: np.ndarray,
        cutout_config: CutoutConfig,
        threads: int,
        loaded: LoadedModel,
        model: ModelPackage,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Cut and score the sources ``sourceChunkSize`` at a time, so that
        only one chunk's cutouts are in memory; return the scores and the
        cutout flag columns, in catalog order.
        """
        chunk = self.config.sourceChunkSize
        starts = range(0, len(x), chunk) if len(x) else [0]
        scores, flags = [], []
        for start in starts:
            part = slice(start, start + chunk)
            triplets = self.cutTriplets(template, science, difference, x[part], y[part], cutout_config, threads)
            scores.append(self.scoreTriplets(loaded, triplets, model.temperature, model.intercept))
            flags.append(triplets.flag_columns())
            del triplets
        self.metadata["nChunks"] = len(starts)
        columns = {name: np.concatenate([part[name] for part in flags]) for name in flags[0]}
        return np.concatenate(scores), columns

    def _score_blank_cutouts(self, scores: np.ndarray, flags: Mapping[str, np.ndarray]) -> np.ndarray:
        """Give ``apNoDataScore`` to the sources whose cutouts hold no image
        pixel (the AP schema has no flag to say so); record how many as
        ``nNoDataScored``.
        """
        blank = np.asarray(flags["cutoutNoDataFraction"]) >= 1.0
        self.metadata["nNoDataScored"] = int(blank.sum())
        if blank.any():
            self.log.warning("%d of %d DIA sources have no image pixel in their cutout; the AP schema cannot "
                             "flag them, so their score is apNoDataScore=%g.", int(blank.sum()), len(scores),
                             self.config.apNoDataScore)
            scores = np.where(blank, np.float32(self.config.apNoDataScore), scores).astype(scores.dtype)
        return scores

    def _check_scores(self, ids: np.ndarray, scores: np.ndarray, model: ModelPackage) -> None:
        """Refuse to write scores that are not finite.

        Raises
        ------
        lsst.meas.realbogus.errors.NonFiniteScoreError
            Raised if any score is NaN or infinite: the quantum fails (and
            ``pipetask`` records it) rather than writing a score that would
            send the source to ``dia_source_low_reliability`` unnoticed.
        """
        bad = ~np.isfinite(scores)
        if bad.any():
            n = int(bad.sum())
            first = int(ids[bad][0])
            raise NonFiniteScoreError(
                f"model {model.version} gave {n} of {len(scores)} DIA sources a non-finite score (e.g. id "
                f"{first}); nothing was written: check the model package and these images.",
                {"modelVersion": model.version, "nonFiniteScores": n, "sources": len(scores),
                 "exampleId": first},
            )

    @timeMethod
    def loadModel(self, model: ModelPackage) -> LoadedModel:
        """Build the package's network on the task's device, or find it in
        the process's model cache (`~lsst.meas.realbogus.scoring.load_model`).
        """
        return load_model(model, self.device)

    @timeMethod
    def cutTriplets(
        self,
        template: MaskedImage | Any,
        science: VisitImage | Any,
        difference: DifferenceImage | Any,
        x: np.ndarray,
        y: np.ndarray,
        cutout_config: CutoutConfig,
        threads: int,
    ) -> Triplets:
        """Cut the triplets of sources at ``(x, y)`` (one chunk of the
        catalog, in its order) with the model's cutout settings.

        Raises
        ------
        lsst.meas.realbogus.errors.ImageMismatchError
            Raised if the three images are not on one pixel grid.
        """
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

    def _check_model(self, model: ModelPackage, science: VisitImage | Any) -> CutoutConfig:
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
        observed = _observed_instrument_and_band(science)
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


def _observed_instrument_and_band(science: Any) -> dict[str, Any]:
    """Return the ``instrument`` and ``bands`` (one band) of a science image,
    `None` where it does not tell: from ``obs_info`` and ``band`` of an
    `lsst.images.VisitImage`, from the visit info and filter label of an
    afw Exposure.
    """
    if not is_afw_exposure(science):
        return {"instrument": _attribute(science, "obs_info", "instrument"),
                "bands": _attribute(science, "band")}
    info = science.getInfo()
    visit_info = info.getVisitInfo() if info.hasVisitInfo() else None
    label = science.getFilter()
    return {
        "instrument": (visit_info.getInstrumentLabel() or None) if visit_info is not None else None,
        "bands": label.bandLabel if label is not None and label.hasBandLabel() else None,
    }


def make_ap_reliability_catalog(
    ids: np.ndarray, scores: np.ndarray, version: str, *, model_version: str | None = None,
    use_afw: bool | None = None,
) -> Any:
    """Assemble ``dia_source_reliability`` in the AP schema.

    Parameters
    ----------
    ids : `numpy.ndarray` of `int`, (N,)
        Ids of the DIA sources, in input order.
    scores : `numpy.ndarray`, (N,)
        Their scores.
    version : `str`
        The model's short version, at most `AP_VERSION_SIZE` characters.
    model_version : `str`, optional
        The model's full version, recorded in an astropy table's metadata.
    use_afw : `bool`, optional
        Build an afw catalog (`True`) or an astropy table (`False`); by
        default an afw catalog where lsst.afw is importable (`afw_table`).

    Returns
    -------
    catalog : `lsst.afw.table.BaseCatalog` or `astropy.table.Table`
        `AP_RELIABILITY_COLUMNS`: ``id`` (int64), ``score`` (float32) and
        ``version`` (a string field of `AP_VERSION_SIZE` characters), one row
        per source, in input order; the astropy table has the columns
        afw's ``asAstropy`` gives the afw catalog.

    Raises
    ------
    ValueError
        Raised if ``version`` is longer than `AP_VERSION_SIZE` characters.
    ImportError
        Raised if ``use_afw`` is `True` and lsst.afw is not importable.
    """
    if len(version) > AP_VERSION_SIZE:
        raise ValueError(f"AP reliability version {version!r} is longer than {AP_VERSION_SIZE} characters.")
    ids = np.asarray(ids, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    docs = {"id": "unique ID", "score": "Reliability (real/bogus probability) of the DIA source.",
            "version": "Version of the reliability model."}
    afw = afw_table() if use_afw is None else (importlib.import_module("lsst.afw.table") if use_afw else None)
    if afw is not None:
        schema = afw.Schema()
        schema.addField("id", type="L", doc=docs["id"])
        schema.addField("score", type="F", doc=docs["score"])
        key = schema.addField("version", type=str, size=AP_VERSION_SIZE, doc=docs["version"])
        catalog = afw.BaseCatalog(schema)
        catalog.resize(len(ids))
        catalog["id"] = ids
        catalog["score"] = scores
        for record in catalog:
            record.set(key, version)
        return catalog
    table = Table()
    table["id"] = ids
    table["score"] = scores
    table["version"] = np.full(len(ids), version, dtype=f"U{AP_VERSION_SIZE}")
    for name, doc in docs.items():
        table[name].description = doc
    if model_version is not None:
        table.meta["modelVersion"] = model_version
    return table


def make_reliability_table(
    ids: np.ndarray, scores: np.ndarray, flags: Triplets | Mapping[str, np.ndarray], version: str
) -> Table:
    """Assemble ``dia_source_reliability`` in the package's schema; its
    metadata names the model.

    ``flags`` are the cutout flag columns (`Triplets.flag_columns`), or
    the triplets that have them.
    """
    if isinstance(flags, Triplets):
        flags = flags.flag_columns()
    table = Table()
    table["diaSourceId"] = ids
    table["reliability"] = np.asarray(scores, dtype=np.float32)
    for name, values in flags.items():
        table[name] = values
    table["modelVersion"] = np.full(len(ids), version, dtype=f"U{max(len(version), 1)}")
    table.meta["modelVersion"] = version
    return table
