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

"""A pure gnomonic (TAN) WCS for the simulator's pixel grids (detectors,
tracts), convertible to FITS, `astropy.wcs` and `lsst.images`.
"""

from __future__ import annotations

__all__ = ("TanWcs",)

import dataclasses
import math
from typing import TYPE_CHECKING

import astropy.wcs
import numpy as np

import lsst.sphgeom
from lsst.images import Box, SkyProjection

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from lsst.images import Frame



@dataclasses.dataclass(frozen=True)
class TanWcs:
    """A pure gnomonic (TAN) world coordinate system.

    Pixel coordinates are 0-based: the centre of the first pixel of an array
    is ``(0, 0)``, with ``x`` the column and ``y`` the row index.

    Parameters
    ----------
    crpix_x, crpix_y : `float`
        0-based pixel position of the tangent point.
    crval_ra_deg, crval_dec_deg : `float`
        ICRS coordinates of the tangent point, in degrees.
    cd : `tuple` [`tuple` [`float`, `float`], `tuple` [`float`, `float`]]
        FITS CD matrix, degrees per pixel: ``(xi, eta) = cd @ (dx, dy)``.
    """

    crpix_x: float
    crpix_y: float
    crval_ra_deg: float
    crval_dec_deg: float
    cd: tuple[tuple[float, float], tuple[float, float]]

    def __post_init__(self) -> None:
        cd = tuple(tuple(float(v) for v in row) for row in self.cd)
        if len(cd) != 2 or any(len(row) != 2 for row in cd):
            raise ValueError(f"cd must be a 2x2 matrix; got {self.cd!r}.")
        if np.linalg.det(np.array(cd)) == 0.0:
            raise ValueError("cd matrix is singular.")
        object.__setattr__(self, "cd", cd)
        for name in ("crpix_x", "crpix_y", "crval_ra_deg", "crval_dec_deg"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_pointing(
        cls,
        ra_deg: float,
        dec_deg: float,
        *,
        rotation_deg: float = 0.0,
        pixel_scale_arcsec: float = 0.2,
        crpix: tuple[float, float] = (0.0, 0.0),
    ) -> TanWcs:
        """Make a WCS with square pixels from a pointing and a rotation.

        Parameters
        ----------
        ra_deg, dec_deg : `float`
            ICRS coordinates of the tangent point, in degrees.
        rotation_deg : `float`, optional
            Rotation of the pixel grid on the sky, in degrees; at zero
            ``+y`` points north and ``+x`` points west (east left, as seen on
            the sky).
        pixel_scale_arcsec : `float`, optional
            Pixel scale in arcseconds.
        crpix : `tuple` [`float`, `float`], optional
            0-based ``(x, y)`` pixel position of the tangent point.

        Returns
        -------
        wcs : `TanWcs`
            The new WCS.
        """
        scale = pixel_scale_arcsec / 3600.0
        c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
        cd = ((-scale * c, -scale * s), (-scale * s, scale * c))
        return cls(float(crpix[0]), float(crpix[1]), float(ra_deg), float(dec_deg), cd)

    @property
    def cd_matrix(self) -> np.ndarray:
        """The CD matrix as a 2x2 array, degrees per pixel
        (`numpy.ndarray`).
        """
        return np.array(self.cd, dtype=float)

    @property
    def pixel_scale_arcsec(self) -> float:
        """Geometric-mean pixel scale at the tangent point, in arcseconds
        (`float`).
        """
        return math.sqrt(abs(np.linalg.det(self.cd_matrix))) * 3600.0

    def pixel_to_sky(self, x: ArrayLike, y: ArrayLike) -> tuple[float | np.ndarray, float | np.ndarray]:
        """Transform 0-based pixel coordinates to ICRS coordinates.

        Parameters
        ----------
        x, y : `float` or array-like
            0-based pixel coordinates (broadcast against each other).

        Returns
        -------
        ra, dec : `float` or `numpy.ndarray`
            ICRS coordinates in degrees; RA is in ``[0, 360)``.
        """
        dx = np.asarray(x, dtype=float) - self.crpix_x
        dy = np.asarray(y, dtype=float) - self.crpix_y
        (a, b), (c, d) = self.cd
        xi = np.radians(a * dx + b * dy)
        eta = np.radians(c * dx + d * dy)
        ra0 = math.radians(self.crval_ra_deg)
        dec0 = math.radians(self.crval_dec_deg)
        denom = math.cos(dec0) - eta * math.sin(dec0)
        ra = ra0 + np.arctan2(xi, denom)
        dec = np.arctan2(math.sin(dec0) + eta * math.cos(dec0), np.hypot(xi, denom))
        return _maybe_scalar(np.degrees(ra) % 360.0), _maybe_scalar(np.degrees(dec))

    def sky_to_pixel(self, ra: ArrayLike, dec: ArrayLike) -> tuple[float | np.ndarray, float | np.ndarray]:
        """Transform ICRS coordinates to 0-based pixel coordinates.

        Parameters
        ----------
        ra, dec : `float` or array-like
            ICRS coordinates in degrees (broadcast against each other).

        Returns
        -------
        x, y : `float` or `numpy.ndarray`
            0-based pixel coordinates.  Points on the far hemisphere (not
            representable in a gnomonic projection) give NaN.
        """
        ra_rad = np.radians(np.asarray(ra, dtype=float))
        dec_rad = np.radians(np.asarray(dec, dtype=float))
        ra0 = math.radians(self.crval_ra_deg)
        dec0 = math.radians(self.crval_dec_deg)
        dra = ra_rad - ra0
        cos_c = math.sin(dec0) * np.sin(dec_rad) + math.cos(dec0) * np.cos(dec_rad) * np.cos(dra)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos_c = np.where(cos_c > 0.0, cos_c, np.nan)
            xi = np.degrees(np.cos(dec_rad) * np.sin(dra) / cos_c)
            eta = np.degrees(
                (math.cos(dec0) * np.sin(dec_rad) - math.sin(dec0) * np.cos(dec_rad) * np.cos(dra)) / cos_c
            )
        inv = np.linalg.inv(self.cd_matrix)
        x = inv[0, 0] * xi + inv[0, 1] * eta + self.crpix_x
        y = inv[1, 0] * xi + inv[1, 1] * eta + self.crpix_y
        return _maybe_scalar(x), _maybe_scalar(y)

    def to_fits_wcs(self) -> astropy.wcs.WCS:
        """Return the equivalent FITS WCS (1-based ``CRPIX``).

        Returns
        -------
        wcs : `astropy.wcs.WCS`
            An Astropy WCS; like all Astropy WCS objects, it uses 0-based
            pixel coordinates in ``pixel_to_world`` calls.
        """
        wcs = astropy.wcs.WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.cunit = ["deg", "deg"]
        wcs.wcs.radesys = "ICRS"
        wcs.wcs.crpix = [self.crpix_x + 1.0, self.crpix_y + 1.0]
        wcs.wcs.crval = [self.crval_ra_deg, self.crval_dec_deg]
        wcs.wcs.cd = self.cd_matrix
        return wcs

    def to_sky_projection(self, pixel_frame: Frame, pixel_bounds: Box | None = None) -> SkyProjection:
        """Return the equivalent `lsst.images.SkyProjection`.

        Parameters
        ----------
        pixel_frame : `lsst.images.Frame`
            Coordinate frame of the pixel grid; a `lsst.images.DetectorFrame`
            for visit and difference images.
        pixel_bounds : `lsst.images.Box`, optional
            Region of valid pixels.

        Returns
        -------
        projection : `lsst.images.SkyProjection`
            Projection whose pixel coordinates are these 0-based ones (an
            image whose bounding box starts at ``(0, 0)``).
        """
        return SkyProjection.from_fits_wcs(
            self.to_fits_wcs(), pixel_frame, pixel_bounds=pixel_bounds, x0=0, y0=0
        )

    def sky_polygon(self, shape: tuple[int, int], padding: float = 0.0) -> lsst.sphgeom.ConvexPolygon:
        """Return the sky region covered by an array, as a polygon.

        Parameters
        ----------
        shape : `tuple` [`int`, `int`]
            Array shape, numpy order ``(ny, nx)``.
        padding : `float`, optional
            Pixels to add on every side.

        Returns
        -------
        polygon : `lsst.sphgeom.ConvexPolygon`
            Polygon through the outer corners of the corner pixels (the
            sides of a pixel box are great circles in a TAN projection).
        """
        ny, nx = shape
        lo_x, hi_x = -0.5 - padding, nx - 0.5 + padding
        lo_y, hi_y = -0.5 - padding, ny - 0.5 + padding
        ra, dec = self.pixel_to_sky(
            np.array([lo_x, hi_x, hi_x, lo_x]), np.array([lo_y, lo_y, hi_y, hi_y])
        )
        vertices = [
            lsst.sphgeom.UnitVector3d(lsst.sphgeom.LonLat.fromDegrees(float(r), float(d)))
            for r, d in zip(ra, dec)
        ]
        return lsst.sphgeom.ConvexPolygon(vertices)


def _maybe_scalar(value: np.ndarray) -> float | np.ndarray:
    """Return a Python float for 0-d arrays, the array otherwise (scalar in,
    scalar out, as callers pass single positions as often as arrays).
    """
    return float(value) if np.ndim(value) == 0 else value
