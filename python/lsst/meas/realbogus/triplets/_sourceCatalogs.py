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

"""Checks of the source catalogs the tasks read."""

from __future__ import annotations

__all__ = ["SourceColumnsConfig", "check_source_catalog", "match_ids"]

from collections.abc import Iterable

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig

from ..errors import InvalidCatalogError


def check_source_catalog(catalog: Table, required: Iterable[str], what: str = "DIA source catalog") -> None:
    """Check that a catalog has the columns a task needs and unique ids.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        The catalog.
    required : `~collections.abc.Iterable` [`str`]
        Columns that must be present; the first is the id column.
    what : `str`, optional
        Name of the catalog in messages.

    Raises
    ------
    InvalidCatalogError
        Raised with a one-line message if a column is missing or an id
        repeats; its metadata names the catalog and the column(s), and for
        repeated ids counts them and gives one.
    """
    required = list(required)
    missing = [name for name in required if name not in catalog.colnames]
    if missing:
        raise InvalidCatalogError(
            f"{what} lacks required column(s) {', '.join(missing)}.",
            {"catalog": what, "missingColumns": ",".join(missing)},
        )
    ids = np.asarray(catalog[required[0]])
    if len(np.unique(ids)) != len(ids):
        values, counts = np.unique(ids, return_counts=True)
        duplicated = int((counts > 1).sum())
        example = int(values[counts > 1][0])
        raise InvalidCatalogError(
            f"{what} has {duplicated} duplicated {required[0]} value(s), e.g. {example}.",
            {"catalog": what, "column": required[0], "duplicatedIds": duplicated, "exampleId": example},
        )


def match_ids(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Return the row of each needle id in haystack, -1 where absent.

    Parameters
    ----------
    haystack : `numpy.ndarray` of `int`
        Ids of the catalog looked in (unique).
    needles : `numpy.ndarray` of `int`
        Ids looked for.

    Returns
    -------
    rows : `numpy.ndarray` of `int`, like ``needles``
    """
    haystack = np.asarray(haystack, dtype=np.int64)
    needles = np.asarray(needles, dtype=np.int64)
    if len(haystack) == 0:
        return np.full(len(needles), -1)
    order = np.argsort(haystack)
    pos = np.clip(np.searchsorted(haystack, needles, sorter=order), 0, len(haystack) - 1)
    rows = order[pos]
    return np.where(haystack[rows] == needles, rows, -1)


class SourceColumnsConfig(pexConfig.Config):
    """Names of the DIA source columns the tasks read (a mixin of their
    configs).
    """

    idColumn = pexConfig.Field(dtype=str, default="diaSourceId", doc="Source id column.")
    xColumn = pexConfig.Field(dtype=str, default="x", doc="Source column position, pixels.")
    yColumn = pexConfig.Field(dtype=str, default="y", doc="Source row position, pixels.")

    def positions(self, catalog: Table) -> tuple[np.ndarray, np.ndarray]:
        """Return the sources' ``x`` and ``y`` positions, pixels, as float64
        arrays in catalog order.
        """
        return np.asarray(catalog[self.xColumn], dtype=float), np.asarray(catalog[self.yColumn], dtype=float)
