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

"""The source catalogs the tasks read: their column names, checks, and
the astropy form of an afw catalog.

The default column names are those ``lsst.afw.table`` gives a real
``dia_source_unstandardized`` (a ``SourceCatalog``) in its astropy form
(``asAstropy``, which the ``AstropyTable`` storage class converts with):
``id``, ``slot_Centroid_x``, ``slot_Centroid_y``, ``base_PsfFlux_instFlux``
and ``base_PsfFlux_instFluxErr``. The simulator writes the same names.
"""

from __future__ import annotations

__all__ = [
    "SourceColumnsConfig",
    "as_astropy_table",
    "catalog_ids",
    "catalog_positions",
    "check_source_catalog",
    "match_ids",
    "psf_snr",
]

from collections.abc import Iterable
from typing import Any

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig

from ..errors import InvalidCatalogError


def as_astropy_table(catalog: Any) -> Table:
    """Return a catalog as an `astropy.table.Table`.

    Parameters
    ----------
    catalog : `astropy.table.Table` or `lsst.afw.table.BaseCatalog`
        An astropy table (returned as is) or an afw catalog, such as a
        ``SourceCatalog`` read with its own storage class; an afw catalog is
        converted with its ``asAstropy`` (copying, so that string and flag
        fields come along), which gives the column names the tasks'
        defaults expect.

    Returns
    -------
    table : `astropy.table.Table`
    """
    if isinstance(catalog, Table):
        return catalog
    as_astropy = getattr(catalog, "asAstropy", None)
    if as_astropy is None:
        raise InvalidCatalogError(
            f"expected an astropy table or an afw catalog; got {type(catalog).__name__}.",
            {"catalogType": type(catalog).__name__},
        )
    return as_astropy(copy=True)


def psf_snr(flux: np.ndarray, flux_err: np.ndarray) -> np.ndarray:
    """Return the PSF-flux signal-to-noise ratio, ``flux / flux_err``, as
    float64.

    It is NaN where either value is masked (an Arrow null) or not finite,
    or the error is not positive: such a source has no measured SNR, so it
    falls outside every SNR cut instead of passing them all as an infinite
    one.
    """
    flux, flux_err = _as_float(flux), _as_float(flux_err)
    good = np.isfinite(flux) & np.isfinite(flux_err) & (flux_err > 0)
    return np.divide(flux, flux_err, out=np.full(flux.shape, np.nan), where=good)


def _as_float(values: Any) -> np.ndarray:
    """float64 values with masked entries as NaN."""
    if isinstance(values, np.ma.MaskedArray):
        return np.ma.filled(values.astype(np.float64), np.nan)
    return np.asarray(values, dtype=np.float64)


_EXACT_FLOAT_ID = 2**53
"""Largest magnitude a float64 id can hold exactly (larger ones are refused:
their digits are already lost)."""

_INT64_MAX = np.iinfo(np.int64).max


def _null_mask(values: Any) -> np.ndarray | None:
    """Return the mask of a masked column (`None` if nothing is masked):
    an Arrow null read by the ``ArrowAstropy`` storage class is one.
    """
    mask = getattr(values, "mask", None)
    if mask is None or mask is np.ma.nomask:
        return None
    mask = np.asarray(mask, dtype=bool)
    return mask if mask.any() else None


def _refuse(what: str, column: str, problem: str, **facts: str | int | float) -> InvalidCatalogError:
    return InvalidCatalogError(f"{what}'s {column} {problem}",
                               {"catalog": what, "column": column, **facts})


def catalog_ids(catalog: Table, column: str, what: str = "DIA source catalog") -> np.ndarray:
    """Return a catalog's ids as int64, refusing what is not an integer id.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        The catalog.
    column : `str`
        Its id column.
    what : `str`, optional
        Name of the catalog in messages.

    Returns
    -------
    ids : `numpy.ndarray` of `numpy.int64`, (N,)
        The ids, in catalog order, equal to the column's values.

    Raises
    ------
    InvalidCatalogError
        Raised with a one-line message if an id is null or masked (an Arrow
        null), is a float that is not an integer (or beyond 2**53, which a
        float64 cannot hold exactly), an unsigned integer >= 2**63 (it would
        wrap negative), a boolean, a string or any other non-integer.
    """
    values = catalog[column]
    mask = _null_mask(values)
    if mask is not None:
        raise _refuse(what, column, f"has {int(mask.sum())} null or masked value(s) (first at row "
                      f"{int(np.flatnonzero(mask)[0])}); ids must be integers.", nullIds=int(mask.sum()))
    data = np.asarray(values)
    kind = data.dtype.kind
    if len(data) == 0:
        return np.zeros(0, dtype=np.int64)
    if kind == "i":
        return data.astype(np.int64, copy=False)
    if kind == "u":
        if data.max() > _INT64_MAX:
            bad = int(data[data > _INT64_MAX][0])
            raise _refuse(what, column, f"has unsigned id(s) >= 2**63 (e.g. {bad}) that do not fit int64.",
                          exampleId=str(bad))
        return data.astype(np.int64)
    if kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(data) | (np.abs(data) > _EXACT_FLOAT_ID) | (data != np.round(data))
        if bad.any():
            example = float(data[bad][0])
            raise _refuse(what, column, f"has {int(bad.sum())} float id(s) that are not integers a float64 holds exactly (|id| <= 2**53; "
                          f"e.g. {example!r}); ids must be integers.", badIds=int(bad.sum()), exampleId=example)
        return data.astype(np.int64)
    if kind == "O" and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                           for v in data):
        if any(not -_INT64_MAX - 1 <= int(v) <= _INT64_MAX for v in data):
            raise _refuse(what, column, "has id(s) that do not fit int64.")
        return np.array([int(v) for v in data], dtype=np.int64)
    raise _refuse(what, column, f"has {data.dtype} values; ids must be integers.", dtype=str(data.dtype))


def catalog_positions(catalog: Table, column: str, what: str = "DIA source catalog") -> np.ndarray:
    """Return a position column as float64, masked values as NaN.

    Parameters
    ----------
    catalog : `astropy.table.Table`
        The catalog.
    column : `str`
        A position column (pixels).
    what : `str`, optional
        Name of the catalog in messages.

    Returns
    -------
    positions : `numpy.ndarray` of `numpy.float64`, (N,)
        The positions; a null or masked value (an Arrow null) is NaN, so
        that the source is cut as one without a position (off the image,
        its cutout all filled and flagged), never at the value under its
        mask.

    Raises
    ------
    InvalidCatalogError
        Raised with a one-line message if the column is not numeric
        (strings, booleans, objects).
    """
    values = catalog[column]
    data = np.asarray(values)
    if data.dtype.kind not in "iuf":
        raise _refuse(what, column, f"has {data.dtype} values; positions must be numbers (pixels).",
                      dtype=str(data.dtype))
    positions = data.astype(np.float64)
    mask = _null_mask(values)
    if mask is not None:
        positions[mask] = np.nan
    return positions


def check_source_catalog(catalog: Table, required: Iterable[str], what: str = "DIA source catalog") -> None:
    """Check that a catalog has the columns a task needs and unique
    integer ids.

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
        Raised with a one-line message if a column is missing, an id is
        not an integer that fits int64 (`catalog_ids`) or an id repeats;
        its metadata names the catalog and the column(s), and for
        repeated ids counts them and gives one.
    """
    required = list(required)
    missing = [name for name in required if name not in catalog.colnames]
    if missing:
        raise InvalidCatalogError(
            f"{what} lacks required column(s) {', '.join(missing)}.",
            {"catalog": what, "missingColumns": ",".join(missing)},
        )
    ids = catalog_ids(catalog, required[0], what)
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

    The defaults are the names of a real ``dia_source_unstandardized`` in
    its astropy form (afw's ``asAstropy``), which the simulator writes too;
    the truth catalog's id column has the same name as the sources'.
    """

    idColumn = pexConfig.Field(
        dtype=str, default="id", doc="Source id column (also the id column of dia_source_truth)."
    )
    xColumn = pexConfig.Field(
        dtype=str, default="slot_Centroid_x", doc="Source column position, pixels (parent coordinates)."
    )
    yColumn = pexConfig.Field(
        dtype=str, default="slot_Centroid_y", doc="Source row position, pixels (parent coordinates)."
    )
    psfFluxColumn = pexConfig.Field(
        dtype=str, default="base_PsfFlux_instFlux",
        doc="Source PSF flux column; the signal-to-noise ratio is this over psfFluxErrColumn.",
    )
    psfFluxErrColumn = pexConfig.Field(
        dtype=str, default="base_PsfFlux_instFluxErr", doc="Source PSF flux error column."
    )

    def positions(self, catalog: Table) -> tuple[np.ndarray, np.ndarray]:
        """Return the sources' ``x`` and ``y`` positions, pixels, as float64
        arrays in catalog order (`catalog_positions`: masked values are
        NaN; a non-numeric column is refused with `InvalidCatalogError`).
        """
        return catalog_positions(catalog, self.xColumn), catalog_positions(catalog, self.yColumn)

    def snr(self, catalog: Table) -> np.ndarray:
        """Return the sources' PSF-flux signal-to-noise ratio (`psf_snr`),
        float64, in catalog order.

        A real catalog has no ``snr`` column (the AP pipeline's
        ``standardizeDiaSource`` makes one later, from the footprints), so
        the ratio is computed from the PSF flux and its error.
        """
        return psf_snr(catalog[self.psfFluxColumn], catalog[self.psfFluxErrColumn])
