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
"""

from __future__ import annotations

__all__ = ["DIA_SOURCE_FLAGS", "detect_and_measure"]

import warnings

import numpy as np
from astropy.table import Table
from photutils.segmentation import detect_sources
from photutils.utils.exceptions import NoDetectionsWarning
from scipy import ndimage, signal

from ..triplets._cutouts import extract_stamps
from ._config import DetectionConfig

# Flag columns and the mask planes (and stamp half-size) they test.
DIA_SOURCE_FLAGS = {
    "pixelFlags_edge": ("EDGE", 0),
    "pixelFlags_nodata": ("NO_DATA", 2),
    "pixelFlags_bad": ("BAD", 2),
    "pixelFlags_saturated": ("SAT", 2),
    "pixelFlags_saturatedCenter": ("SAT", 1),
    "pixelFlags_interpolated": ("INTRP", 2),
    "pixelFlags_cr": ("CR", 2),
    "pixelFlags_streak": ("STREAK", 1),
}


def _empty_table() -> Table:
    cols = {
        "diaSourceId": np.int64, "x": np.float64, "y": np.float64, "coord_ra": np.float64,
        "coord_dec": np.float64, "psfFlux": np.float64, "psfFluxErr": np.float64, "snr": np.float64,
        "apFlux": np.float64, "apFluxErr": np.float64, "ixx": np.float64, "iyy": np.float64,
        "ixy": np.float64, "footprintArea": np.int32, "peakSignificance": np.float64,
        "isNegative": bool,
    }
    table = Table({k: np.zeros(0, dtype=v) for k, v in cols.items()})
    for name in DIA_SOURCE_FLAGS:
        table[name] = np.zeros(0, dtype=bool)
    return table


def _find_peaks(snr: np.ndarray, config: DetectionConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
        return (np.zeros(0, int),) * 2 + (np.zeros(0),) + (np.zeros(0, np.int32),)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(sig), np.concatenate(area)


def _refine(filtered: np.ndarray, px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Parabola through the peak and its neighbours, per axis.
    stamps, _ = extract_stamps(filtered, px, py, 3, fill=0.0)
    c = stamps[:, 1, 1]

    def offset(lo, hi):
        denom = lo - 2 * c + hi
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where(denom != 0, 0.5 * (lo - hi) / denom, 0.0)
        return np.clip(np.nan_to_num(d), -0.5, 0.5)

    return px + offset(stamps[:, 1, 0], stamps[:, 1, 2]), py + offset(stamps[:, 0, 1], stamps[:, 2, 1])


def detect_and_measure(
    image: np.ndarray,
    variance: np.ndarray,
    masks: dict[str, np.ndarray],
    psf_image: np.ndarray,
    psf_sigma: float,
    config: DetectionConfig,
    *,
    id_base: int,
    wcs=None,
) -> Table:
    """Detect sources of both signs and measure them.

    Parameters
    ----------
    image, variance : `numpy.ndarray`
        Difference image and its variance, nJy; NaN where there is no data.
    masks : `dict` [`str`, `numpy.ndarray`]
        Boolean mask planes of the difference image.
    psf_image : `numpy.ndarray`
        Unit-sum PSF model image (odd size), for filtering and aperture
        correction.
    psf_sigma : `float`
        Gaussian-equivalent PSF width, pixels, of the fitting model.
    config : `DetectionConfig`
        Thresholds and sizes.
    id_base : `int`
        ``diaSourceId`` of the first source; the rest follow.
    wcs : `TanWcs`, optional
        Gives ``coord_ra``/``coord_dec``.

    Returns
    -------
    sources : `astropy.table.Table`
        One row per detection (``dia_source_unstandardized`` schema).
    """
    valid = np.isfinite(image) & np.isfinite(variance) & (variance > 0)
    data = np.where(valid, image, 0.0)
    var = np.where(valid, variance, 0.0)
    filtered = signal.fftconvolve(data, psf_image, mode="same")
    filtered_var = signal.fftconvolve(var, psf_image**2, mode="same")
    good = valid & (filtered_var > 0)
    snr = np.zeros_like(filtered)
    snr[good] = filtered[good] / np.sqrt(filtered_var[good])
    px, py, peak_sig, area = _find_peaks(snr, config)
    if len(px) > config.maxSources:
        keep = np.argsort(-np.abs(peak_sig), kind="stable")[: config.maxSources]
        px, py, peak_sig, area = px[keep], py[keep], peak_sig[keep], area[keep]
    order = np.lexsort((px, py))
    px, py, peak_sig, area = px[order], py[order], peak_sig[order], area[order]
    n = len(px)
    table = _empty_table()
    if n == 0:
        return table
    x, y = _refine(filtered, px, py)

    size = config.stampSize
    half = size // 2
    d_st, off = extract_stamps(data, x, y, size, fill=0.0)
    v_st, _ = extract_stamps(var, x, y, size, fill=0.0)
    x0 = np.floor(x + 0.5) - half
    y0 = np.floor(y + 0.5) - half
    grid = np.arange(size)
    dx = grid[None, None, :] + x0[:, None, None] - x[:, None, None]
    dy = grid[None, :, None] + y0[:, None, None] - y[:, None, None]
    r2 = dx**2 + dy**2
    model = np.exp(-0.5 * r2 / psf_sigma**2)
    model /= model.sum(axis=(1, 2), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_var = np.where(v_st > 0, 1.0 / v_st, 0.0)
    denom = np.sum(model**2 * inv_var, axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        flux = np.sum(model * d_st * inv_var, axis=(1, 2)) / denom
        flux_err = 1.0 / np.sqrt(denom)
    # Aperture correction: the Gaussian fitting model on the true PSF.
    c = psf_image.shape[0] // 2
    pg = np.arange(psf_image.shape[0]) - c
    pmodel = np.exp(-0.5 * (pg[None, :] ** 2 + pg[:, None] ** 2) / psf_sigma**2)
    pmodel /= pmodel.sum()
    apcorr = float(np.sum(pmodel**2) / np.sum(pmodel * psf_image))
    flux *= apcorr
    flux_err *= apcorr

    radius = max(2.0, 2.0 * psf_sigma * 1.1774)  # one FWHM
    in_ap = r2 <= radius**2
    ap_flux = np.sum(d_st * in_ap, axis=(1, 2))
    ap_err = np.sqrt(np.sum(v_st * in_ap, axis=(1, 2)))

    sign = np.where(peak_sig < 0, -1.0, 1.0)
    weight = np.exp(-0.5 * r2 / psf_sigma**2) * d_st * sign[:, None, None]
    norm = weight.sum(axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        ixx = np.where(norm > 0, np.sum(weight * dx**2, axis=(1, 2)) / norm, np.nan)
        iyy = np.where(norm > 0, np.sum(weight * dy**2, axis=(1, 2)) / norm, np.nan)
        ixy = np.where(norm > 0, np.sum(weight * dx * dy, axis=(1, 2)) / norm, np.nan)

    rows = {
        "diaSourceId": id_base + np.arange(n, dtype=np.int64),
        "x": x,
        "y": y,
        "psfFlux": flux,
        "psfFluxErr": flux_err,
        "snr": flux / flux_err,
        "apFlux": ap_flux,
        "apFluxErr": ap_err,
        "ixx": ixx,
        "iyy": iyy,
        "ixy": ixy,
        "footprintArea": area,
        "peakSignificance": peak_sig,
        "isNegative": peak_sig < 0,
    }
    if wcs is not None:
        rows["coord_ra"], rows["coord_dec"] = wcs.pixel_to_sky(x, y)
    else:
        rows["coord_ra"] = rows["coord_dec"] = np.full(n, np.nan)
    for name, (plane, h) in DIA_SOURCE_FLAGS.items():
        if plane not in masks:
            rows[name] = np.zeros(n, dtype=bool)
            continue
        st, st_off = extract_stamps(masks[plane], x, y, 2 * h + 1, fill=plane in ("EDGE", "NO_DATA"))
        rows[name] = st.reshape(n, -1).any(axis=1)
    rows["pixelFlags_edge"] |= off
    table = Table({name: np.asarray(rows[name]).astype(table[name].dtype) for name in table.colnames})
    table["coord_ra"].unit = "deg"
    table["coord_dec"].unit = "deg"
    for name in ("psfFlux", "psfFluxErr", "apFlux", "apFluxErr"):
        table[name].unit = "nJy"
    return table
