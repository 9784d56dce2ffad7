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

"""Cut labelled template/science/difference triplets for training."""

from __future__ import annotations

__all__ = [
    "BuildTripletsConfig",
    "BuildTripletsConnections",
    "BuildTripletsTask",
    "TRIPLET_COLUMNS",
    "make_triplet_table",
]

from typing import TYPE_CHECKING

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
from lsst.utils.timer import timeMethod

from ._connections import TripletInputConnections, TripletInputStorageConfig
from ._contract import CHANNELS, CutoutConfig
from ._extractTriplets import Triplets
from ._images import TripletImagesConfig, extract_triplets_from_images
from ._sourceCatalogs import (
    SourceColumnsConfig,
    as_astropy_table,
    catalog_ids,
    check_source_catalog,
    match_ids,
)

if TYPE_CHECKING:
    from lsst.images import DifferenceImage, MaskedImage, VisitImage

TRIPLET_COLUMNS = (
    "diaSourceId",
    "cutout",
    "label",
    "truthClass",
    "injected",
    "snr",
    "x",
    "y",
    "cutoutFlags_edge",
    "cutoutFlags_noData",
    "cutoutNoDataFraction",
)
"""Columns of ``rb_triplets``; ``cutout`` is (N, 3, S, S) float32 in
`~lsst.meas.realbogus.triplets.CHANNELS` order, ``label`` is 1 for real, 0
for bogus and -1 where no truth was available, ``injected`` True where an
injected source caused the detection.
"""

UNLABELLED = -1


class BuildTripletsConnections(
    TripletInputConnections,
    dimensions=("instrument", "visit", "detector"),
):
    truth = cT.Input(
        doc="Real/bogus label of each DIA source.",
        name="dia_source_truth",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )
    triplets = cT.Output(
        doc="Cutout triplets with id, label, truth class, SNR and cutout flags.",
        name="rb_triplets",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )

    def __init__(self, *, config: BuildTripletsConfig | None = None):
        super().__init__(config=config)
        if config is not None and not config.doLabels:
            del self.truth


class BuildTripletsConfig(
    pipeBase.PipelineTaskConfig,
    SourceColumnsConfig,
    TripletImagesConfig,
    TripletInputStorageConfig,
    pipelineConnections=BuildTripletsConnections,
):
    """Configuration of `BuildTripletsTask`."""

    cutout = pexConfig.ConfigField(dtype=CutoutConfig, doc="Cutout size and normalization.")
    doLabels = pexConfig.Field(
        dtype=bool,
        default=True,
        doc="Join the truth catalog for labels; if False, labels are -1 (for unlabelled data).",
    )
    labelColumn = pexConfig.Field(dtype=str, default="is_real", doc="Truth column: True for real.")
    truthClassColumn = pexConfig.Field(dtype=str, default="truth_class", doc="Truth column: kind of source.")
    injectedColumn = pexConfig.Field(
        dtype=str,
        default="injected",
        doc="Truth column: True where an injected source caused the detection (training worlds made by "
        "injection); a truth catalog without it has none.",
    )


class BuildTripletsTask(pipeBase.PipelineTask):
    """Cut template/science/difference triplets around every DIA source of
    a detector-visit and attach their labels.

    The cutouts are made by `~lsst.meas.realbogus.triplets.extract_triplets`,
    the same code `ComputeReliabilityTask` scores with. Sources near an
    edge are padded and flagged, never dropped, so ``rb_triplets`` has one
    row per DIA source. `run` and its steps are timed with
    `~lsst.utils.timer.timeMethod` (the task metadata's ``runStart*``,
    ``cutTripletsStart*``, ``lookUpLabelsStart*`` and ``...End*`` keys).
    """

    ConfigClass = BuildTripletsConfig
    _DefaultName = "buildTriplets"

    @timeMethod
    def run(
        self,
        template: MaskedImage,
        science: VisitImage,
        difference: DifferenceImage,
        diaSources: Table,
        truth: Table | None = None,
    ) -> pipeBase.Struct:
        """Cut and label the triplets of one detector-visit.

        Parameters
        ----------
        template : `lsst.images.MaskedImage` or `lsst.afw.image.Exposure`
            The template, warped to the science image.
        science : `lsst.images.VisitImage` or `lsst.afw.image.Exposure`
            The science image.
        difference : `lsst.images.DifferenceImage` or `lsst.afw.image.Exposure`
            The difference image.
        diaSources : `astropy.table.Table` or `lsst.afw.table.SourceCatalog`
            DIA sources, with id, position and PSF flux columns.
        truth : `astropy.table.Table`, optional
            Labels by source id; required when ``config.doLabels``.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``triplets``: `astropy.table.Table` with `TRIPLET_COLUMNS`, one
            row per DIA source in catalog order.

        Raises
        ------
        lsst.meas.realbogus.errors.InvalidCatalogError
            Raised if a catalog lacks a required column or ids repeat.
        lsst.meas.realbogus.errors.ImageMismatchError
            Raised if the three images are not on one pixel grid.
        """
        c = self.config
        diaSources = as_astropy_table(diaSources)
        check_source_catalog(diaSources,
                             [c.idColumn, c.xColumn, c.yColumn, c.psfFluxColumn, c.psfFluxErrColumn])
        ids = catalog_ids(diaSources, c.idColumn)
        triplets = self.cutTriplets(template, science, difference, diaSources)
        labels, classes, injected = self.lookUpLabels(ids, truth)
        table = make_triplet_table(ids, triplets, labels, classes, injected, diaSources, c)
        self.log.info(
            "Cut %d triplets of %dx%d (%d real, %d bogus, %d unlabelled; %d at an edge, %d with missing "
            "pixels).",
            len(table), c.cutout.size, c.cutout.size, int((labels == 1).sum()), int((labels == 0).sum()),
            int((labels == UNLABELLED).sum()), int(triplets.edge.sum()), int(triplets.noData.sum()),
        )
        return pipeBase.Struct(triplets=table)

    @timeMethod
    def cutTriplets(
        self, template: MaskedImage, science: VisitImage, difference: DifferenceImage, diaSources: Table
    ) -> Triplets:
        """Cut the triplets of the DIA sources, in catalog order, with
        ``config.cutout``.

        Raises
        ------
        lsst.meas.realbogus.errors.ImageMismatchError
            Raised if the three images are not on one pixel grid.
        """
        x, y = self.config.positions(diaSources)
        return extract_triplets_from_images(
            template, science, difference, x, y, self.config.cutout, max_wcs_offset=self.config.maxWcsOffset
        )

    @timeMethod
    def lookUpLabels(self, ids: np.ndarray, truth: Table | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Look up each source's label, truth class and whether it was
        injected (-1, "" and False when unknown).

        Raises
        ------
        lsst.meas.realbogus.errors.InvalidCatalogError
            Raised if the truth catalog lacks a required column or ids
            repeat.
        """
        c = self.config
        labels = np.full(len(ids), UNLABELLED, dtype=np.int8)
        classes = np.full(len(ids), "", dtype=object)
        injected = np.zeros(len(ids), dtype=bool)
        if truth is None or not c.doLabels:
            return labels, classes, injected
        check_source_catalog(truth, [c.idColumn, c.labelColumn, c.truthClassColumn], what="truth catalog")
        rows = match_ids(truth[c.idColumn], ids)
        found = rows >= 0
        rows = rows[found]
        labels[found] = np.asarray(truth[c.labelColumn])[rows].astype(np.int8)
        classes[found] = np.asarray(truth[c.truthClassColumn]).astype(str)[rows]
        if c.injectedColumn in truth.colnames:
            injected[found] = np.asarray(truth[c.injectedColumn], dtype=bool)[rows]
        if not found.all():
            self.log.warning("%d of %d DIA sources have no truth row; they are unlabelled (-1).",
                             int((~found).sum()), len(ids))
        return labels, classes, injected


def make_triplet_table(
    ids: np.ndarray,
    triplets: Triplets,
    labels: np.ndarray,
    classes: np.ndarray,
    injected: np.ndarray,
    diaSources: Table,
    config: BuildTripletsConfig,
) -> Table:
    """Assemble the ``rb_triplets`` table; its metadata records the cutout
    settings.
    """
    table = Table()
    table["diaSourceId"] = ids
    table["cutout"] = triplets.cutouts
    table["label"] = labels
    table["truthClass"] = np.asarray(classes, dtype=str) if len(classes) else np.zeros(0, dtype="U1")
    table["injected"] = np.asarray(injected, dtype=bool)
    table["snr"] = config.snr(diaSources).astype(np.float32)
    table["x"] = np.asarray(diaSources[config.xColumn], dtype=np.float32)
    table["y"] = np.asarray(diaSources[config.yColumn], dtype=np.float32)
    for name, values in triplets.flag_columns().items():
        table[name] = values
    table.meta["cutout"] = config.cutout.to_metadata()
    table.meta["channels"] = list(CHANNELS)
    return table
