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

"""Detection and measurement of DIA sources on a difference image.

As in the pipeline's ``detectAndMeasure``: the difference is filtered with
its PSF, thresholded at 5 sigma in both polarities, and each footprint's
peak is measured with a PSF fit, an aperture and second moments.

The catalog has the column names that a real ``dia_source_unstandardized``
(an afw ``SourceCatalog``) has in its astropy form (``asAstropy``, which
the ``AstropyTable`` storage class converts with): ``id``, ``coord_ra`` and
``coord_dec`` (radians), ``parent``, ``slot_Centroid_x``/``_y``,
``base_PsfFlux_instFlux``/``_instFluxErr``, ``slot_ApFlux_instFlux``/
``_instFluxErr``, ``slot_Shape_xx``/``_yy``/``_xy``,
``base_FootprintArea_value``, ``is_negative``, the ``base_PixelFlags_flag_*``
flags of `DIA_SOURCE_FLAGS`, and ``reliability``/``reliabilityVersion``
(unset, as ``detectAndMeasure`` leaves them for the reliability filter to
fill). Fluxes are in nJy, the unit of the images. One column is not afw's:
``peakSignificance``, the signed peak of the PSF-filtered significance,
which a real catalog keeps in its footprints' peaks (``standardizeDiaSource``
turns it into the APDB ``snr``). There is no ``snr`` column: the tasks
compute the PSF-flux signal-to-noise ratio from the PSF flux and its error
(`~lsst.meas.realbogus.triplets.psf_snr`).
"""

from __future__ import annotations

__all__ = ["DIA_SOURCE_FLAGS", "detect_and_measure"]

import dataclasses
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
from astropy.table import Table
from photutils.segmentation import detect_sources
from photutils.utils.exceptions import NoDetectionsWarning
from scipy import ndimage, signal

from ..triplets import extract_stamps
from ._config import DetectionConfig

if TYPE_CHECKING:
    from ._tanWcs import TanWcs

# Flag columns (meas_base's PixelFlags names; "Center" flags test the 3x3
# pixels around the centroid, as there) and the mask planes (and stamp
# half-size) they test.
DIA_SOURCE_FLAGS = {
    "base_PixelFlags_flag_edge": ("EDGE", 0),
    "base_PixelFlags_flag_nodata": ("NO_DATA", 2),
    "base_PixelFlags_flag_bad": ("BAD", 2),
    "base_PixelFlags_flag_saturated": ("SAT", 2),
    "base_PixelFlags_flag_saturatedCenter": ("SAT", 1),
    "base_PixelFlags_flag_interpolated": ("INTRP", 2),
    "base_PixelFlags_flag_cr": ("CR", 2),
    "base_PixelFlags_flag_streakCenter": ("STREAK", 1),
}

RELIABILITY_VERSION_SIZE = 7
"""Characters of ``reliabilityVersion``, as ip_diffim's detectAndMeasure
declares it."""


def detect_and_measure(
    image: np.ndarray,
    variance: np.ndarray,
    masks: Mapping[str, np.ndarray],
    psf_image: np.ndarray,
    psf_sigma: float,
    config: DetectionConfig,
    *,
    id_base: int,
    wcs: TanWcs | None = None,
) -> Table:
    """Detect sources of both signs and measure them.

    Parameters
    ----------
    image, variance : `numpy.ndarray`
        Difference image and its variance, nJy; NaN where there is no data.
    masks : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Boolean mask planes of the difference image.
    psf_image : `numpy.ndarray`
        Unit-sum PSF model image (odd size), for filtering and aperture
        correction.
    psf_sigma : `float`
        Gaussian-equivalent PSF width, pixels, of the fitting model.
    config : `DetectionConfig`
        Thresholds and sizes.
    id_base : `int`
        ``id`` of the first source; the rest follow.
    wcs : `TanWcs`, optional
        Gives ``coord_ra``/``coord_dec``.

    Returns
    -------
    sources : `astropy.table.Table`
        One row per detection (``dia_source_unstandardized`` schema), in
        order of peak row, then column.
    """
    filtered = _FilteredImage.of(image, variance, psf_image)
    peaks = _find_peaks(filtered.snr, config).brightest(config.maxSources).in_row_order()
    if not len(peaks):
        return _empty_table()
    x, y = _refine(filtered.filtered, peaks.x, peaks.y)
    stamps = _Stamps.cut(filtered.data, filtered.variance, x, y, config.stampSize, psf_sigma)
    n = len(x)
    rows = {
        "id": id_base + np.arange(n, dtype=np.int64),
        **_sky_coordinates(wcs, x, y),
        "parent": np.zeros(n, dtype=np.int64),
        "slot_Centroid_x": x,
        "slot_Centroid_y": y,
        **_psf_photometry(stamps, psf_image, psf_sigma),
        **_aperture_photometry(stamps, psf_sigma),
        **_moments(stamps, peaks.significance),
        "base_FootprintArea_value": peaks.area,
        "peakSignificance": peaks.significance,
        "is_negative": peaks.significance < 0,
        **_pixel_flags(masks, x, y, stamps.off_image),
        "reliability": np.full(n, np.nan, dtype=np.float32),
        "reliabilityVersion": np.full(n, "", dtype=f"U{RELIABILITY_VERSION_SIZE}"),
    }
    return _as_table(rows)


def _empty_table() -> Table:
    """Return a ``dia_source_unstandardized`` table with no rows: the
    schema.
    """
    cols = {
        "id": np.int64, "coord_ra": np.float64, "coord_dec": np.float64, "parent": np.int64,
        "slot_Centroid_x": np.float64, "slot_Centroid_y": np.float64,
        "base_PsfFlux_instFlux": np.float64, "base_PsfFlux_instFluxErr": np.float64,
        "slot_ApFlux_instFlux": np.float64, "slot_ApFlux_instFluxErr": np.float64,
        "slot_Shape_xx": np.float64, "slot_Shape_yy": np.float64, "slot_Shape_xy": np.float64,
        "base_FootprintArea_value": np.int32, "peakSignificance": np.float64, "is_negative": bool,
    }
    table = Table({k: np.zeros(0, dtype=v) for k, v in cols.items()})
    for name in DIA_SOURCE_FLAGS:
        table[name] = np.zeros(0, dtype=bool)
    table["reliability"] = np.zeros(0, dtype=np.float32)
    table["reliabilityVersion"] = np.zeros(0, dtype=f"U{RELIABILITY_VERSION_SIZE}")
    return table


def _as_table(rows: Mapping[str, np.ndarray]) -> Table:
    """Return measured columns as a table of the `_empty_table` schema,
    with units.
    """
    schema = _empty_table()
    table = Table({name: np.asarray(rows[name]).astype(schema[name].dtype) for name in schema.colnames})
    table["coord_ra"].unit = "rad"
    table["coord_dec"].unit = "rad"
    for name in ("base_PsfFlux_instFlux", "base_PsfFlux_instFluxErr", "slot_ApFlux_instFlux",
                 "slot_ApFlux_instFluxErr"):
        table[name].unit = "nJy"
    for name in ("slot_Centroid_x", "slot_Centroid_y"):
        table[name].unit = "pix"
    for name in ("slot_Shape_xx", "slot_Shape_yy", "slot_Shape_xy"):
        table[name].unit = "pix2"
    return table


@dataclasses.dataclass(frozen=True)
class _FilteredImage:
    """A difference image with no-data pixels zeroed, and its significance
    after filtering with the PSF.

    Attributes
    ----------
    data, variance : `numpy.ndarray`
        Image and variance, 0 where either is not finite or the variance
        not positive.
    filtered : `numpy.ndarray`
        ``data`` convolved with the PSF.
    snr : `numpy.ndarray`
        Significance of ``filtered``; 0 where it has no variance.
    """

    data: np.ndarray
    variance: np.ndarray
    filtered: np.ndarray
    snr: np.ndarray

    @classmethod
    def of(cls, image: np.ndarray, variance: np.ndarray, psf_image: np.ndarray) -> _FilteredImage:
        """Filter an image and its variance with a PSF image."""
        valid = np.isfinite(image) & np.isfinite(variance) & (variance > 0)
        data = np.where(valid, image, 0.0)
        var = np.where(valid, variance, 0.0)
        filtered = signal.fftconvolve(data, psf_image, mode="same")
        filtered_var = signal.fftconvolve(var, psf_image**2, mode="same")
        good = valid & (filtered_var > 0)
        snr = np.zeros_like(filtered)
        snr[good] = filtered[good] / np.sqrt(filtered_var[good])
        return cls(data, var, filtered, snr)


@dataclasses.dataclass(frozen=True)
class _Peaks:
    """Peaks of detected footprints.

    Attributes
    ----------
    x, y : `numpy.ndarray` of `int`
        Peak pixel.
    significance : `numpy.ndarray`
        Signed significance at the peak.
    area : `numpy.ndarray` of `numpy.int32`
        Footprint area, pixels.
    """

    x: np.ndarray
    y: np.ndarray
    significance: np.ndarray
    area: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def _take(self, index: np.ndarray) -> _Peaks:
        return _Peaks(self.x[index], self.y[index], self.significance[index], self.area[index])

    def brightest(self, n: int) -> _Peaks:
        """Return the ``n`` most significant peaks of either sign (ties in
        detection order), or all if there are no more.
        """
        if len(self) <= n:
            return self
        return self._take(np.argsort(-np.abs(self.significance), kind="stable")[:n])

    def in_row_order(self) -> _Peaks:
        """Return the peaks sorted by row, then column."""
        return self._take(np.lexsort((self.x, self.y)))


def _find_peaks(snr: np.ndarray, config: DetectionConfig) -> _Peaks:
    """Return the peaks of the footprints above threshold, positive ones
    first.
    """
    xs, ys, sig, area = [], [], [], []
    for polarity in (1.0, -1.0):
        with warnings.catch_warnings():
            # An empty detector is a normal outcome, not a warning.
            warnings.simplefilter("ignore", NoDetectionsWarning)
            seg = detect_sources(polarity * snr, config.threshold, config.minPixels)
        if seg is None:
            continue
        labels = seg.labels
        peaks = ndimage.maximum_position(polarity * snr, seg.data, labels)
        peaks = np.asarray(peaks, dtype=int).reshape(-1, 2)
        ys.append(peaks[:, 0])
        xs.append(peaks[:, 1])
        sig.append(snr[peaks[:, 0], peaks[:, 1]])
        area.append(np.asarray(seg.areas, dtype=np.int32))
    if not xs:
        return _Peaks(np.zeros(0, int), np.zeros(0, int), np.zeros(0), np.zeros(0, np.int32))
    return _Peaks(np.concatenate(xs), np.concatenate(ys), np.concatenate(sig), np.concatenate(area))


def _refine(filtered: np.ndarray, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return sub-pixel peak positions: the vertex of a parabola through
    the peak and its neighbours, per axis.
    """
    stamps, _ = extract_stamps(filtered, px, py, 3, fill=0.0)
    c = stamps[:, 1, 1]

    def offset(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        denom = lo - 2 * c + hi
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(denom != 0, 0.5 * (lo - hi) / denom, 0.0)
        return np.clip(np.nan_to_num(d), -0.5, 0.5)

    return px + offset(stamps[:, 1, 0], stamps[:, 1, 2]), py + offset(stamps[:, 0, 1], stamps[:, 2, 1])


@dataclasses.dataclass(frozen=True)
class _Stamps:
    """Measurement stamps around the refined peaks.

    Attributes
    ----------
    data, variance : `numpy.ndarray`, (N, size, size)
        Image and variance stamps, 0 off the image.
    off_image : `numpy.ndarray` of `bool`
        Whether each stamp runs off the image.
    dx, dy : `numpy.ndarray`, (N, size, size)
        Offsets of the stamp pixels from the refined peak (broadcastable).
    r2 : `numpy.ndarray`, (N, size, size)
        Squared distance of the stamp pixels from the refined peak.
    gaussian : `numpy.ndarray`, (N, size, size)
        Unnormalized Gaussian of the PSF width around the refined peak.
    """

    data: np.ndarray
    variance: np.ndarray
    off_image: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    r2: np.ndarray
    gaussian: np.ndarray

    @classmethod
    def cut(
        cls, data: np.ndarray, variance: np.ndarray, x: np.ndarray, y: np.ndarray, size: int, psf_sigma: float
    ) -> _Stamps:
        """Cut ``size`` x ``size`` stamps centred on the pixels of
        ``x, y``.
        """
        half = size // 2
        d_st, off = extract_stamps(data, x, y, size, fill=0.0)
        v_st, _ = extract_stamps(variance, x, y, size, fill=0.0)
        x0 = np.floor(x + 0.5) - half
        y0 = np.floor(y + 0.5) - half
        grid = np.arange(size)
        dx = grid[None, None, :] + x0[:, None, None] - x[:, None, None]
        dy = grid[None, :, None] + y0[:, None, None] - y[:, None, None]
        r2 = dx**2 + dy**2
        return cls(d_st, v_st, off, dx, dy, r2, np.exp(-0.5 * r2 / psf_sigma**2))


def _psf_photometry(stamps: _Stamps, psf_image: np.ndarray, psf_sigma: float) -> dict[str, np.ndarray]:
    """Return the aperture-corrected flux of a Gaussian PSF fit at the
    refined peak and its error.
    """
    model = stamps.gaussian / stamps.gaussian.sum(axis=(1, 2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_var = np.where(stamps.variance > 0, 1.0 / stamps.variance, 0.0)
    denom = np.sum(model**2 * inv_var, axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        flux = np.sum(model * stamps.data * inv_var, axis=(1, 2)) / denom
        flux_err = 1.0 / np.sqrt(denom)
    apcorr = _aperture_correction(psf_image, psf_sigma)
    flux *= apcorr
    flux_err *= apcorr
    return {"base_PsfFlux_instFlux": flux, "base_PsfFlux_instFluxErr": flux_err}


def _aperture_correction(psf_image: np.ndarray, psf_sigma: float) -> float:
    """Return the flux of the PSF over that a Gaussian fitting model of
    ``psf_sigma`` measures of it.
    """
    c = psf_image.shape[0] // 2
    pg = np.arange(psf_image.shape[0]) - c
    pmodel = np.exp(-0.5 * (pg[None, :] ** 2 + pg[:, None] ** 2) / psf_sigma**2)
    pmodel /= pmodel.sum()
    return float(np.sum(pmodel**2) / np.sum(pmodel * psf_image))


def _aperture_photometry(stamps: _Stamps, psf_sigma: float) -> dict[str, np.ndarray]:
    """Return the flux in a circular aperture of one FWHM radius, and its
    error.
    """
    radius = max(2.0, 2.0 * psf_sigma * 1.1774)  # one FWHM
    in_ap = stamps.r2 <= radius**2
    return {
        "slot_ApFlux_instFlux": np.sum(stamps.data * in_ap, axis=(1, 2)),
        "slot_ApFlux_instFluxErr": np.sqrt(np.sum(stamps.variance * in_ap, axis=(1, 2))),
    }


def _moments(stamps: _Stamps, peak_significance: np.ndarray) -> dict[str, np.ndarray]:
    """Return the second moments weighted with the PSF-width Gaussian, of
    the flux of the detection's sign; NaN where that is not positive.
    """
    sign = np.where(peak_significance < 0, -1.0, 1.0)
    weight = stamps.gaussian * stamps.data * sign[:, None, None]
    norm = weight.sum(axis=(1, 2))
    dx, dy = stamps.dx, stamps.dy
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "slot_Shape_xx": np.where(norm > 0, np.sum(weight * dx**2, axis=(1, 2)) / norm, np.nan),
            "slot_Shape_yy": np.where(norm > 0, np.sum(weight * dy**2, axis=(1, 2)) / norm, np.nan),
            "slot_Shape_xy": np.where(norm > 0, np.sum(weight * dx * dy, axis=(1, 2)) / norm, np.nan),
        }


def _sky_coordinates(wcs: TanWcs | None, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Return ``coord_ra`` and ``coord_dec``, radians as afw's ``Angle``
    fields are (NaN without a WCS).
    """
    if wcs is None:
        nan = np.full(len(x), np.nan)
        return {"coord_ra": nan, "coord_dec": nan}
    ra, dec = wcs.pixel_to_sky(x, y)
    return {"coord_ra": np.deg2rad(ra), "coord_dec": np.deg2rad(dec)}


def _pixel_flags(
    masks: Mapping[str, np.ndarray], x: np.ndarray, y: np.ndarray, off_image: np.ndarray
) -> dict[str, np.ndarray]:
    """Return the `DIA_SOURCE_FLAGS`: whether any pixel of each flag's
    stamp is in its mask plane (off the image counts for EDGE and NO_DATA,
    and a measurement stamp off the image sets ``base_PixelFlags_flag_edge``).
    """
    n = len(x)
    flags = {}
    for name, (plane, h) in DIA_SOURCE_FLAGS.items():
        if plane not in masks:
            flags[name] = np.zeros(n, dtype=bool)
            continue
        stamps, _ = extract_stamps(masks[plane], x, y, 2 * h + 1, fill=plane in ("EDGE", "NO_DATA"))
        flags[name] = stamps.reshape(n, -1).any(axis=1)
    flags["base_PixelFlags_flag_edge"] |= off_image
    return flags
