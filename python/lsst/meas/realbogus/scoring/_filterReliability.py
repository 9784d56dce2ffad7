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

It reads ``dia_source_reliability`` in either schema `ComputeReliabilityTask`
writes: the package's (joined by id) or the AP pipeline's (``id``, ``score``,
``version``, as an astropy table or an afw catalog), which must match the
DIA sources row by row, as ap_association's ``FilterDiaSourceReliabilityTask``
requires.
"""

from __future__ import annotations

__all__ = ["FilterReliabilityConfig", "FilterReliabilityConnections", "FilterReliabilityTask"]

from typing import Any

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
from lsst.utils.timer import timeMethod

from ..errors import InvalidCatalogError
from ..triplets import as_astropy_table, catalog_ids, check_source_catalog, match_ids, replace_storage_class
from ._computeReliability import AP_RELIABILITY_COLUMNS, AP_VERSION_SIZE


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

    def __init__(self, *, config: FilterReliabilityConfig | None = None):
        super().__init__(config=config)
        if config is not None:
            self.diaSources = replace_storage_class(self.diaSources, config.diaSourcesStorageClass)
            self.classifications = replace_storage_class(self.classifications,
                                                         config.classificationsStorageClass)


class FilterReliabilityConfig(pipeBase.PipelineTaskConfig, pipelineConnections=FilterReliabilityConnections):
    """Configuration of `FilterReliabilityTask`."""

    minReliability = pexConfig.RangeField(
        dtype=float, default=0.5, min=0.0, max=1.0, doc="Sources at or above this reliability are kept."
    )
    idColumn = pexConfig.Field(dtype=str, default="id", doc="Source id column of the DIA sources.")
    diaSourcesStorageClass = pexConfig.Field(
        dtype=str,
        default="ArrowAstropy",
        doc="Storage class to read the DIA sources with: ArrowAstropy, AstropyTable (converts a real "
        "SourceCatalog) or SourceCatalog (afw, converted by the task).",
    )
    classificationsStorageClass = pexConfig.Field(
        dtype=str,
        default="ArrowAstropy",
        doc="Storage class to read dia_source_reliability with: ArrowAstropy or AstropyTable (either "
        "schema), or Catalog (afw, the AP schema in a full stack).",
    )


class FilterReliabilityTask(pipeBase.PipelineTask):
    """Split DIA sources into high- and low-reliability catalogs.

    Both outputs are the input DIA source rows, in input order, with their
    reliability; together they hold every source exactly once. A
    reliability catalog of the package's schema is joined by id (its
    ``reliability``, cutout flags and ``modelVersion`` come along); one of
    the AP schema must list the sources in the same order, and its
    ``score`` and ``version`` become ``reliability`` and
    ``reliabilityVersion``, as ap_association's filter does.
    """

    ConfigClass = FilterReliabilityConfig
    _DefaultName = "filterReliability"

    @timeMethod
    def run(self, diaSources: Table | Any, classifications: Table | Any) -> pipeBase.Struct:
        """Split the sources.

        Parameters
        ----------
        diaSources : `astropy.table.Table` or `lsst.afw.table.SourceCatalog`
            DIA sources.
        classifications : `astropy.table.Table` or `lsst.afw.table.BaseCatalog`
            ``dia_source_reliability`` of the same detector-visit, in the
            package's schema or the AP schema.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``highReliabilitySources`` and ``lowReliabilitySources``
            (`astropy.table.Table`).

        Raises
        ------
        lsst.meas.realbogus.errors.InvalidCatalogError
            Raised if a source has no reliability, or ids repeat; for the
            AP schema, if the ids differ from the sources' row by row or a
            version is longer than 7 characters; if a reliability is NaN
            or infinite (it would go to the low-reliability catalog
            unnoticed).
        """
        diaSources = as_astropy_table(diaSources)
        classifications = as_astropy_table(classifications)
        check_source_catalog(diaSources, [self.config.idColumn])
        if _is_ap_schema(classifications):
            table = self._copy_ap_reliability(diaSources, classifications)
        else:
            table = self._join_package_reliability(diaSources, classifications)
        _check_finite(table, self.config.idColumn)
        high = np.asarray(table["reliability"]) >= self.config.minReliability
        self.log.info("%d of %d DIA sources have reliability >= %.3f.", int(high.sum()), len(table),
                      self.config.minReliability)
        return pipeBase.Struct(highReliabilitySources=table[high], lowReliabilitySources=table[~high])

    def _join_package_reliability(self, diaSources: Table, classifications: Table) -> Table:
        """Join a reliability catalog of the package's schema to the
        sources by id.
        """
        ids = catalog_ids(diaSources, self.config.idColumn)
        check_source_catalog(classifications, ["diaSourceId", "reliability"], what="reliability catalog")
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
        return table

    def _copy_ap_reliability(self, diaSources: Table, classifications: Table) -> Table:
        """Copy a reliability catalog of the AP schema into the sources,
        row by row, as ap_association's ``FilterDiaSourceReliabilityTask``
        does: ``score`` into ``reliability`` (float32), ``version`` into
        ``reliabilityVersion`` (at most 7 characters).
        """
        check_source_catalog(classifications, AP_RELIABILITY_COLUMNS, what="reliability catalog")
        ids = catalog_ids(diaSources, self.config.idColumn)
        scored = catalog_ids(classifications, "id", "reliability catalog")
        if len(scored) != len(ids) or not np.array_equal(scored, ids):
            differ = np.flatnonzero(scored[: len(ids)] != ids[: len(scored)])
            row = int(differ[0]) if len(differ) else min(len(ids), len(scored))
            raise InvalidCatalogError(
                f"the reliability catalog's ids ({len(scored)} rows) differ from the {len(ids)} DIA sources' "
                f"row by row (first at row {row}); the AP schema lists the sources in their order.",
                {"catalog": "reliability catalog", "rows": len(scored), "sources": len(ids), "firstRow": row},
            )
        versions = np.asarray(classifications["version"]).astype(str)
        too_long = [v for v in versions if len(v) > AP_VERSION_SIZE]
        if too_long:
            raise InvalidCatalogError(
                f"reliability version {too_long[0]!r} is longer than the {AP_VERSION_SIZE} characters of "
                "reliabilityVersion.",
                {"catalog": "reliability catalog", "version": too_long[0]},
            )
        table = Table(diaSources, copy=True)
        table["reliability"] = np.asarray(classifications["score"], dtype=np.float32)
        table["reliabilityVersion"] = versions.astype(f"U{AP_VERSION_SIZE}")
        return table


def _is_ap_schema(classifications: Table) -> bool:
    """Return whether a reliability catalog has the AP schema (``id``,
    ``score``, ``version``) rather than the package's.
    """
    return "score" in classifications.colnames and "reliability" not in classifications.colnames


def _check_finite(table: Table, id_column: str) -> None:
    """Refuse sources whose reliability is not finite
    (`ComputeReliabilityTask` never writes one; another producer might).
    """
    reliability = np.asarray(table["reliability"], dtype=np.float64)
    bad = ~np.isfinite(reliability)
    if bad.any():
        n, example = int(bad.sum()), int(np.asarray(table[id_column])[bad][0])
        raise InvalidCatalogError(
            f"{n} of {len(table)} DIA sources have a non-finite reliability, e.g. id {example}; a score must be "
            "a probability.",
            {"catalog": "reliability catalog", "nonFiniteScores": n, "exampleId": example},
        )
