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

"""GalSim rendering of PSFs, stars, galaxies and transients."""

from __future__ import annotations

__all__ = ["PsfField", "draw_psf_image", "make_psf", "render_sources"]

import dataclasses
import math

import galsim
import numpy as np

# Bright stars must not alias their wings across the FFT stamp.
_GSPARAMS = galsim.GSParams(folding_threshold=2e-3, maximum_fft_size=16384)


def make_psf(profile: str, fwhm: float, *, beta: float = 3.5, g1: float = 0.0, g2: float = 0.0) -> galsim.GSObject:
    """Build a unit-flux PSF.

    Parameters
    ----------
    profile : `str`
        ``gaussian``, ``moffat`` or ``kolmogorov``.
    fwhm : `float`
        Full width at half maximum, arcsec.
    beta : `float`, optional
        Moffat index.
    g1, g2 : `float`, optional
        Reduced shear applied to the PSF (ellipticity).
    """
    if profile == "gaussian":
        psf = galsim.Gaussian(fwhm=fwhm, gsparams=_GSPARAMS)
    elif profile == "moffat":
        psf = galsim.Moffat(beta=beta, fwhm=fwhm, gsparams=_GSPARAMS)
    elif profile == "kolmogorov":
        psf = galsim.Kolmogorov(fwhm=fwhm, gsparams=_GSPARAMS)
    else:
        raise ValueError(f"unknown PSF profile {profile!r}.")
    if g1 or g2:
        psf = psf.shear(g1=g1, g2=g2)
    return psf


def draw_psf_image(psf: galsim.GSObject, size: int, scale: float) -> np.ndarray:
    """Draw a PSF, pixel-convolved and centred, normalized to unit sum."""
    image = psf.drawImage(nx=size, ny=size, scale=scale, method="auto").array.astype(np.float64)
    return image / image.sum()


@dataclasses.dataclass
class PsfField:
    """A PSF that varies across the detector, sampled on a coarse grid.

    The FWHM changes linearly with position; objects take the PSF of the
    grid cell they fall in, which keeps GalSim's caches effective.
    """

    profile: str
    fwhm: float
    width: int
    height: int
    beta: float = 3.5
    g1: float = 0.0
    g2: float = 0.0
    grad_x: float = 0.0
    grad_y: float = 0.0
    cells: int = 3

    def __post_init__(self) -> None:
        # One GalSim object per cell, built when first needed.
        self._psfs: dict[int, galsim.GSObject] = {}

    def fwhm_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """FWHM (arcsec) at pixel positions."""
        return self.fwhm * (1.0 + self.grad_x * (2 * np.asarray(x) / self.width - 1)
                            + self.grad_y * (2 * np.asarray(y) / self.height - 1))

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Index of the grid cell of each pixel position."""
        cx = np.clip((np.asarray(x) / self.width * self.cells).astype(int), 0, self.cells - 1)
        cy = np.clip((np.asarray(y) / self.height * self.cells).astype(int), 0, self.cells - 1)
        return cy * self.cells + cx

    def psf_of_cell(self, cell: int) -> galsim.GSObject:
        """The PSF at the centre of a grid cell."""
        if cell not in self._psfs:
            cy, cx = divmod(cell, self.cells)
            xc = (cx + 0.5) / self.cells * self.width
            yc = (cy + 0.5) / self.cells * self.height
            self._psfs[cell] = make_psf(self.profile, float(self.fwhm_at(xc, yc)), beta=self.beta,
                                        g1=self.g1, g2=self.g2)
        return self._psfs[cell]

    def nominal(self, fwhm_scale: float = 1.0) -> galsim.GSObject:
        """The PSF at the detector centre, optionally rescaled (a PSF model)."""
        return make_psf(self.profile, self.fwhm * fwhm_scale, beta=self.beta, g1=self.g1, g2=self.g2)


def _stamp_half_size(flux: float, fwhm_px: float, extent_px: float) -> int:
    """Half-size of the stamp an object is drawn on: wide enough that the
    flux left outside is below the sky noise.
    """
    half = fwhm_px * (2.0 + 1.5 * max(0.0, math.log10(max(flux, 1.0) / 1e4))) + 3.0 * extent_px
    return int(min(max(math.ceil(half), 4), 160))


def render_sources(
    image: galsim.ImageF,
    psf_field: PsfField,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    *,
    sersic_n: np.ndarray | None = None,
    half_light: np.ndarray | None = None,
    q: np.ndarray | None = None,
    beta: np.ndarray | None = None,
    psf_override: np.ndarray | None = None,
    alt_psf_field: PsfField | None = None,
    scale: float,
    min_flux: float = 1.0,
) -> None:
    """Add PSF-convolved sources to a GalSim image, in place.

    Parameters
    ----------
    image : `galsim.ImageF`
        Target image, with 0-based bounds (pixel centres at integers).
    psf_field : `PsfField`
        PSF to convolve with.
    x, y, flux : `numpy.ndarray`
        Positions (pixels) and fluxes (electrons).
    sersic_n, half_light, q, beta : `numpy.ndarray`, optional
        Galaxy shapes; ``sersic_n == 0`` means a point source.
    psf_override : `numpy.ndarray` of `bool`, optional
        Where True, use ``alt_psf_field`` instead of ``psf_field``.
    alt_psf_field : `PsfField`, optional
        Alternative PSF (e.g. at the template coadd's edge).
    scale : `float`
        Pixel scale, arcsec.
    min_flux : `float`, optional
        Sources fainter than this (electrons) are skipped.
    """
    n = len(x)
    if n == 0:
        return
    if sersic_n is None:
        sersic_n = np.zeros(n)
    cells = psf_field.cell_of(x, y)
    alt_cells = alt_psf_field.cell_of(x, y) if alt_psf_field is not None else None
    for i in range(n):
        f = float(flux[i])
        if f < min_flux:
            continue
        if psf_override is not None and psf_override[i]:
            field, cell = alt_psf_field, int(alt_cells[i])
        else:
            field, cell = psf_field, int(cells[i])
        psf = field.psf_of_cell(cell)
        if sersic_n[i] > 0:
            obj, extent = _galaxy(psf, f, float(sersic_n[i]), float(half_light[i]), float(q[i]), float(beta[i]),
                                  scale)
        else:
            obj, extent = psf.withFlux(f), 0.0
        _draw_stamp(image, obj, float(x[i]), float(y[i]), _stamp_half_size(f, field.fwhm / scale, extent), scale)


def _galaxy(
    psf: galsim.GSObject, flux: float, sersic_n: float, half_light: float, q: float, beta: float, scale: float
) -> tuple[galsim.GSObject, float]:
    """Return a sheared Sersic galaxy convolved with the PSF, and its
    half-light radius in pixels.
    """
    gal = galsim.Sersic(n=sersic_n, half_light_radius=half_light, gsparams=_GSPARAMS)
    gal = gal.shear(q=q, beta=beta * galsim.radians)
    return galsim.Convolve(gal, psf).withFlux(flux), half_light / scale


def _draw_stamp(image: galsim.ImageF, obj: galsim.GSObject, x: float, y: float, half: int, scale: float) -> None:
    """Draw an object on a square stamp of half-size ``half`` centred on the
    pixel of ``x, y`` and add the part that overlaps the image.
    """
    ix, iy = int(math.floor(x + 0.5)), int(math.floor(y + 0.5))
    bounds = galsim.BoundsI(ix - half, ix + half, iy - half, iy + half)
    overlap = bounds & image.bounds
    if not overlap.isDefined():
        return
    stamp = galsim.ImageF(bounds, scale=scale)
    obj.drawImage(stamp, center=galsim.PositionD(x, y), method="auto")
    image[overlap] += stamp[overlap]
