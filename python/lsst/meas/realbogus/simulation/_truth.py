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

"""Labelling detections by what was injected.

The rules, in order (the first that applies wins):

1. **Real**: an injected astrophysical change (transient, variable star)
   lies within ``matchRadius`` FWHM of the detection, has the detection's
   sign, and its true difference flux is at least ``realMinSignificance``
   times the measured flux error.
2. **Pixel artifact**: a cosmic ray, hot pixel, bad column, satellite trail
   or saturated/bled pixel within 2 pixels of the peak.
3. **Geometry**: the peak is in the EDGE border (``edge``) or within the
   kernel-grown NO_DATA band of the template coadd edge (``templateGap``).
4. **Static-object residual**: the peak lies where a static object's light
   (PSF wings included) is above half the per-pixel noise; it is ``saturated`` if that object saturated, ``dipole``
   if it was misregistered, else ``psfResidual``.
5. Otherwise ``noise``.
"""

from __future__ import annotations

__all__ = ["label_detections"]

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

from ..triplets._cutouts import extract_stamps
from ._artifacts import ArtifactMap
from ._scene import Scene


def _static_influence(flux: np.ndarray, psf_profile: np.ndarray, noise: float, base: float) -> np.ndarray:
    # Outermost radius at which the object's own light is still above half
    # the per-pixel noise: residual rings of a few per cent, summed by the
    # detection filter over hundreds of pixels, are detected that far out.
    # The PSF's wings, not a Gaussian's, decide the reach.
    above = flux[:, None] * psf_profile[None, :] >= 0.5 * noise
    last = np.where(above.any(axis=1), psf_profile.size - 1 - np.argmax(above[:, ::-1], axis=1), 0)
    return np.maximum(last.astype(float), base)


def label_detections(
    sources: Table,
    scene: Scene,
    amap: ArtifactMap,
    *,
    edge_mask: np.ndarray,
    gap_band: np.ndarray,
    saturated_ids: np.ndarray,
    fwhm_px: float,
    psf_profile: np.ndarray,
    pixel_noise_e: float,
    match_radius: float,
    real_min_significance: float,
    e_per_njy: float,
    pixel_scale: float,
) -> Table:
    """Build ``dia_source_truth`` for a detection catalog.

    Parameters
    ----------
    sources : `astropy.table.Table`
        Detections (``x``, ``y``, ``psfFluxErr``, ``isNegative``).
    scene : `Scene`
        What was injected.
    amap : `ArtifactMap`
        Pixel artifacts.
    edge_mask, gap_band : `numpy.ndarray` of `bool`
        Detector border and template-coadd edge band.
    saturated_ids : `numpy.ndarray`
        Ids of static objects that saturated in the science image.
    fwhm_px : `float`
        Science PSF FWHM, pixels.
    psf_profile : `numpy.ndarray`
        Largest per-pixel value of the unit-flux science PSF at integer
        radii 0, 1, 2, ... pixels.
    pixel_noise_e : `float`
        Per-pixel noise of the science image, electrons.
    match_radius : `float`
        Matching radius in FWHM.
    real_min_significance : `float`
        Minimum true flux over measured error for a real match.
    e_per_njy : `float`
        Electrons per nJy.
    pixel_scale : `float`
        Arcsec per pixel.

    Returns
    -------
    truth : `astropy.table.Table`
        ``diaSourceId``, ``is_real``, ``truth_class``, ``truth_id``,
        ``true_flux`` (nJy, the injected change; NaN for bogus),
        ``match_distance`` (pixels; NaN if unmatched).
    """
    n = len(sources)
    x = np.asarray(sources["x"], dtype=float)
    y = np.asarray(sources["y"], dtype=float)
    err = np.asarray(sources["psfFluxErr"], dtype=float)
    negative = np.asarray(sources["isNegative"], dtype=bool)
    klass = np.full(n, "", dtype=object)
    truth_id = np.full(n, -1, dtype=np.int64)
    true_flux = np.full(n, np.nan)
    distance = np.full(n, np.nan)
    radius = match_radius * fwhm_px

    # 1. Real changes: transients and variable stars.
    st, tr = scene.static, scene.transients
    var = st.is_variable
    cx = np.concatenate([tr.x + 0.5 * tr.trail_x, st.x[var]])
    cy = np.concatenate([tr.y + 0.5 * tr.trail_y, st.y[var]])
    cflux = np.concatenate([tr.flux, (st.science_flux - st.template_flux)[var]]) / e_per_njy
    cclass = np.concatenate([tr.truth_class, np.full(var.sum(), "variableStar", dtype=object)])
    cid = np.concatenate([tr.id, st.id[var]])
    if n and len(cx):
        tree = cKDTree(np.column_stack([cx, cy]))
        for i, cands in enumerate(tree.query_ball_point(np.column_stack([x, y]), radius)):
            if not cands:
                continue
            cands = np.asarray(cands)
            ok = (np.sign(cflux[cands]) == (-1 if negative[i] else 1)) & (
                np.abs(cflux[cands]) >= real_min_significance * err[i])
            if not ok.any():
                continue
            cands = cands[ok]
            d = np.hypot(cx[cands] - x[i], cy[cands] - y[i])
            j = cands[np.argmin(d)]
            klass[i], truth_id[i], true_flux[i], distance[i] = cclass[j], cid[j], cflux[j], d.min()
    is_real = klass != ""

    # 2. Pixel artifacts near the peak.
    todo = ~is_real
    if todo.any():
        near = amap.class_near(x[todo], y[todo], radius=2)
        klass[np.flatnonzero(todo)] = np.where(near != "", near, "")

    # 3. Detector border and template coadd edge.
    todo = klass == ""
    for name, plane in (("edge", edge_mask), ("templateGap", gap_band)):
        if todo.any():
            hit, _ = extract_stamps(plane, x[todo], y[todo], 1, fill=True)
            idx = np.flatnonzero(todo)[hit[:, 0, 0]]
            klass[idx] = name
            todo = klass == ""

    # 4. Residuals of static objects, within the reach of their light.
    if todo.any() and len(st):
        influence = _static_influence(np.maximum(st.template_flux, st.science_flux), psf_profile,
                                      pixel_noise_e, radius)
        influence = influence + st.half_light / pixel_scale
        tree = cKDTree(np.column_stack([st.x, st.y]))
        idx = np.flatnonzero(todo)
        shifted = np.hypot(st.offset_x, st.offset_y) > 0
        saturated = np.isin(st.id, saturated_ids)
        for i, cands in zip(idx, tree.query_ball_point(np.column_stack([x[idx], y[idx]]),
                                                        influence.max())):
            if not cands:
                continue
            cands = np.asarray(cands)
            d = np.hypot(st.x[cands] - x[i], st.y[cands] - y[i])
            inside = d <= influence[cands]
            if not inside.any():
                continue
            cands, d = cands[inside], d[inside]
            j = cands[np.argmin(d / influence[cands])]
            truth_id[i] = st.id[j]
            distance[i] = np.hypot(st.x[j] - x[i], st.y[j] - y[i])
            klass[i] = "saturated" if saturated[j] else ("dipole" if shifted[j] else "psfResidual")
    klass[klass == ""] = "noise"

    return Table({
        "diaSourceId": np.asarray(sources["diaSourceId"], dtype=np.int64),
        "is_real": is_real,
        "truth_class": np.asarray(klass, dtype=str),
        "truth_id": truth_id,
        "true_flux": true_flux,
        "match_distance": distance,
    })
