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

"""Split DIA sources at a reliability threshold, as the AP pipeline's
``filterDiaSourcePostReliability`` step does.
"""

from __future__ import annotations

__all__ = ["FilterReliabilityConfig", "FilterReliabilityConnections", "FilterReliabilityTask"]

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT

from ..errors import InvalidCatalogError
from ..triplets import check_source_catalog, match_ids


class FilterReliabilityConnections(
    pipeBase.PipelineTaskConnections,
    dimensions=("instrument", "visit", "detector"),
):
    diaSources = cT.Input(
        doc="DIA sources.",
        name="dia_source_unstandardized",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )
    classifications = cT.Input(
        doc="Reliability of each DIA source.",
        name="dia_source_reliability",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )
    highReliabilitySources = cT.Output(
        doc="DIA sources with reliability >= minReliability, with their reliability.",
        name="dia_source_high_reliability",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )
    lowReliabilitySources = cT.Output(
        doc="DIA sources with reliability < minReliability, with their reliability.",
        name="dia_source_low_reliability",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )


class FilterReliabilityConfig(pipeBase.PipelineTaskConfig, pipelineConnections=FilterReliabilityConnections):
    """Configuration of `FilterReliabilityTask`."""

    minReliability = pexConfig.RangeField(
        dtype=float, default=0.5, min=0.0, max=1.0, doc="Sources at or above this reliability are kept."
    )
    idColumn = pexConfig.Field(dtype=str, default="diaSourceId", doc="Source id column.")


class FilterReliabilityTask(pipeBase.PipelineTask):
    """Split DIA sources into high- and low-reliability catalogs.

    Both outputs are the input DIA source rows, in input order, with the
    ``reliability`` column and cutout flags joined by id; together they
    hold every source exactly once.
    """

    ConfigClass = FilterReliabilityConfig
    _DefaultName = "filterReliability"

    def run(self, diaSources: Table, classifications: Table) -> pipeBase.Struct:
        """Split the sources.

        Parameters
        ----------
        diaSources : `astropy.table.Table`
            DIA sources.
        classifications : `astropy.table.Table`
            ``dia_source_reliability`` of the same detector-visit.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``highReliabilitySources`` and ``lowReliabilitySources``.

        Raises
        ------
        lsst.meas.realbogus.errors.InvalidCatalogError
            Raised if a source has no reliability, or ids repeat.
        """
        key = self.config.idColumn
        check_source_catalog(diaSources, [key])
        check_source_catalog(classifications, ["diaSourceId", "reliability"], what="reliability catalog")
        ids = np.asarray(diaSources[key], dtype=np.int64)
        rows = match_ids(classifications["diaSourceId"], ids)
        found = rows >= 0
        if not found.all():
            unscored, example = int((~found).sum()), int(ids[~found][0])
            raise InvalidCatalogError(
                f"{unscored} of {len(ids)} DIA sources have no reliability, e.g. id {example}; were they "
                "scored with another catalog?",
                {"catalog": "reliability catalog", "unscoredSources": unscored, "exampleId": example},
            )
        table = Table(diaSources, copy=True)
        for name in classifications.colnames:
            if name != "diaSourceId":
                table[name] = np.asarray(classifications[name])[rows]
        high = np.asarray(table["reliability"]) >= self.config.minReliability
        self.log.info("%d of %d DIA sources have reliability >= %.3f.", int(high.sum()), len(table),
                      self.config.minReliability)
        return pipeBase.Struct(highReliabilitySources=table[high], lowReliabilitySources=table[~high])
