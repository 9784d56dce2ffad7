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

"""The ``DC2`` skymap: tract and patch geometry and their dimension records.

``lsst.skymap`` is not available, so the ``DC2`` skymap's tract and patch
records are computed here from the RingsSkyMap parameters of DC2 (tract
centres from the skymap's ring formula, 28,000-pixel tracts of 7x7 patches of
4,000 + 2x100 pixels at 0.2 arcsec), for the tracts in `TRACTS` only.
"""

from __future__ import annotations

__all__ = (
    "NUM_PATCHES",
    "PATCH_BORDER",
    "PATCH_INNER_SIZE",
    "PIXEL_SCALE_ARCSEC",
    "SKYMAP",
    "TRACTS",
    "TRACT_SIZE",
    "patch_regions",
    "register_skymap",
    "tract_region",
    "tract_wcs",
)

import hashlib
import math

import lsst.sphgeom
from lsst.daf.butler import Butler

from ._tanWcs import TanWcs

SKYMAP = "DC2"
"""Name of the skymap."""

TRACTS: dict[int, tuple[float, float]] = {
    3080: (61.6575, -42.3967),
    4024: (53.7313, -34.9587),
}
"""Centres (RA, Dec in degrees) of the simulated DC2 tracts: 3080 (training)
and 4024 (test)."""


# DC2 skymap (obs_lsst config/makeSkyMap.py): RingsSkyMap, 120 rings, TAN,
# 0.2 arcsec pixels, legacy patches of 4000 px with a 100 px border, 7x7
# patches per tract.
PIXEL_SCALE_ARCSEC = 0.2
"""Pixel scale of the tracts, arcsec."""

PATCH_INNER_SIZE = 4000
"""Side of a patch's inner box, pixels."""

PATCH_BORDER = 100
"""Border added to every side of a patch's inner box, pixels."""

NUM_PATCHES = 7
"""Patches along each side of a tract."""

TRACT_SIZE = PATCH_INNER_SIZE * NUM_PATCHES
"""Side of a tract's pixel grid, pixels."""

_NUM_RINGS = 120
_SKYMAP_CONFIG = (
    "RingsSkyMap(numRings=120, raStart=0.0, projection=TAN, tractOverlap=1/60 deg, "
    "pixelScale=0.2 arcsec, patchInnerDimensions=4000x4000, patchBorder=100, tractBuilder=legacy)"
)


def _tract_max() -> int:
    """Return the number of tracts of the DC2 RingsSkyMap."""
    theta = math.pi / (_NUM_RINGS + 1)
    total = 2  # the two polar caps
    for ring in range(_NUM_RINGS):
        dec0 = theta * (ring + 0.5) - math.pi / 2
        total += int(2 * math.pi * math.cos(min(abs(dec0), abs(dec0 + theta))) / theta) + 1
    return total


def tract_wcs(tract: int) -> TanWcs:
    """Return the WCS of a DC2 tract.

    Parameters
    ----------
    tract : `int`
        Tract id, a key of `TRACTS`.

    Returns
    -------
    wcs : `TanWcs`
        North-up, east-left TAN projection at the tract centre with 0.2
        arcsec pixels, for a ``TRACT_SIZE`` square pixel grid starting at 0.
    """
    ra, dec = TRACTS[tract]
    centre = (TRACT_SIZE - 1) / 2.0
    return TanWcs.from_pointing(
        ra, dec, pixel_scale_arcsec=PIXEL_SCALE_ARCSEC, crpix=(centre, centre)
    )


def _box_polygon(wcs: TanWcs, x0: int, x1: int, y0: int, y1: int) -> lsst.sphgeom.ConvexPolygon:
    """Return the sky polygon of the pixel box ``[x0, x1) x [y0, y1)``."""
    return TanWcs(
        wcs.crpix_x - x0, wcs.crpix_y - y0, wcs.crval_ra_deg, wcs.crval_dec_deg, wcs.cd
    ).sky_polygon((y1 - y0, x1 - x0))


def tract_region(tract: int) -> lsst.sphgeom.ConvexPolygon:
    """Return the (outer) sky region of a DC2 tract.

    Parameters
    ----------
    tract : `int`
        Tract id, a key of `TRACTS`.

    Returns
    -------
    region : `lsst.sphgeom.ConvexPolygon`
        The whole ``TRACT_SIZE`` pixel grid (about 1.56 deg on a side).
    """
    return _box_polygon(tract_wcs(tract), 0, TRACT_SIZE, 0, TRACT_SIZE)


def patch_regions(tract: int) -> dict[int, tuple[int, int, lsst.sphgeom.ConvexPolygon]]:
    """Return the (outer) sky regions of the patches of a DC2 tract.

    Parameters
    ----------
    tract : `int`
        Tract id, a key of `TRACTS`.

    Returns
    -------
    patches : `dict` [`int`, `tuple` [`int`, `int`, `lsst.sphgeom.ConvexPolygon`]]
        ``(cell_x, cell_y, region)`` keyed by patch id
        ``cell_y * NUM_PATCHES + cell_x``; a region is the patch's inner
        box grown by ``PATCH_BORDER`` pixels and clipped to the tract.
    """
    wcs = tract_wcs(tract)
    result = {}
    for cell_y in range(NUM_PATCHES):
        for cell_x in range(NUM_PATCHES):
            x0 = max(cell_x * PATCH_INNER_SIZE - PATCH_BORDER, 0)
            x1 = min((cell_x + 1) * PATCH_INNER_SIZE + PATCH_BORDER, TRACT_SIZE)
            y0 = max(cell_y * PATCH_INNER_SIZE - PATCH_BORDER, 0)
            y1 = min((cell_y + 1) * PATCH_INNER_SIZE + PATCH_BORDER, TRACT_SIZE)
            result[cell_y * NUM_PATCHES + cell_x] = (cell_x, cell_y, _box_polygon(wcs, x0, x1, y0, y1))
    return result


def register_skymap(butler: Butler) -> None:
    """Insert the ``DC2`` skymap record and the records of the tracts in
    `TRACTS` and their patches.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler.  Records that already exist identically are left
        alone.
    """
    registry = butler.registry
    registry.syncDimensionData(
        "skymap",
        {
            "name": SKYMAP,
            "hash": hashlib.sha1(_SKYMAP_CONFIG.encode()).digest(),
            "tract_max": _tract_max(),
            "patch_nx_max": NUM_PATCHES,
            "patch_ny_max": NUM_PATCHES,
        },
    )
    for tract in TRACTS:
        registry.syncDimensionData("tract", {"skymap": SKYMAP, "id": tract, "region": tract_region(tract)})
        patches = [
            {"skymap": SKYMAP, "tract": tract, "id": patch, "cell_x": cx, "cell_y": cy, "region": region}
            for patch, (cx, cy, region) in patch_regions(tract).items()
        ]
        registry.insertDimensionData("patch", *patches, skip_existing=True)
