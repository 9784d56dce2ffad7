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

import dataclasses

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

from ..triplets import extract_stamps
from ._artifacts import ArtifactMap
from ._scene import Scene, StaticObjects


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
        Detections (``id``, ``slot_Centroid_x``, ``slot_Centroid_y``,
        ``base_PsfFlux_instFluxErr``, ``is_negative``).
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
        ``id`` (the detection's, so that the two join by the same column
        name), ``is_real``, ``truth_class``, ``truth_id``,
        ``true_flux`` (nJy, the change; NaN for bogus),
        ``match_distance`` (pixels; NaN if unmatched) and ``injected``
        (an injected source caused the detection, or its light reaches it).
    """
    labels = _Labels.unlabelled(sources)
    radius = match_radius * fwhm_px
    _label_real_changes(labels, _RealChanges.of(scene, e_per_njy), radius, real_min_significance)
    is_real = labels.truth_class != ""
    _label_pixel_artifacts(labels, amap)
    _label_geometry(labels, edge_mask, gap_band)
    reach = _static_reach(scene.static, psf_profile, pixel_noise_e, radius, pixel_scale)
    _label_static_residuals(labels, scene.static, saturated_ids, reach)
    labels.truth_class[labels.truth_class == ""] = "noise"
    _flag_near_injected(labels, scene, reach, radius)
    return labels.table(sources, is_real)


@dataclasses.dataclass
class _Labels:
    """The detections being labelled and their labels so far.

    Attributes
    ----------
    x, y, flux_err : `numpy.ndarray`
        Positions (pixels) and PSF flux errors (nJy) of the detections.
    negative : `numpy.ndarray` of `bool`
        Whether each detection is negative.
    truth_class : `numpy.ndarray` of `object`
        Label of each detection; ``""`` while unlabelled.
    truth_id, true_flux, distance : `numpy.ndarray`
        Matched object, its change (nJy) and distance (pixels); -1, NaN
        and NaN while unmatched.
    injected : `numpy.ndarray` of `bool`
        Whether an injected source or artifact caused the detection.
    """

    x: np.ndarray
    y: np.ndarray
    flux_err: np.ndarray
    negative: np.ndarray
    truth_class: np.ndarray
    truth_id: np.ndarray
    true_flux: np.ndarray
    distance: np.ndarray
    injected: np.ndarray

    @classmethod
    def unlabelled(cls, sources: Table) -> _Labels:
        """Return the detections of a catalog, none labelled."""
        n = len(sources)
        return cls(
            x=np.asarray(sources["slot_Centroid_x"], dtype=float),
            y=np.asarray(sources["slot_Centroid_y"], dtype=float),
            flux_err=np.asarray(sources["base_PsfFlux_instFluxErr"], dtype=float),
            negative=np.asarray(sources["is_negative"], dtype=bool),
            truth_class=np.full(n, "", dtype=object),
            truth_id=np.full(n, -1, dtype=np.int64),
            true_flux=np.full(n, np.nan),
            distance=np.full(n, np.nan),
            injected=np.zeros(n, dtype=bool),
        )

    def todo(self) -> np.ndarray:
        """Return which detections are still unlabelled."""
        return self.truth_class == ""

    def table(self, sources: Table, is_real: np.ndarray) -> Table:
        """Return the ``dia_source_truth`` table of the labels."""
        return Table({
            "id": np.asarray(sources["id"], dtype=np.int64),
            "is_real": is_real,
            "truth_class": np.asarray(self.truth_class, dtype=str),
            "truth_id": self.truth_id,
            "true_flux": self.true_flux,
            "match_distance": self.distance,
            "injected": self.injected,
        })


@dataclasses.dataclass(frozen=True)
class _RealChanges:
    """The injected astrophysical changes: transients (at the middle of a
    trail) and variable stars, with their difference fluxes in nJy.
    """

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    truth_class: np.ndarray
    id: np.ndarray
    injected: np.ndarray

    @classmethod
    def of(cls, scene: Scene, e_per_njy: float) -> _RealChanges:
        """Return the real changes of a scene."""
        st, tr = scene.static, scene.transients
        var = st.is_variable
        return cls(
            x=np.concatenate([tr.x + 0.5 * tr.trail_x, st.x[var]]),
            y=np.concatenate([tr.y + 0.5 * tr.trail_y, st.y[var]]),
            flux=np.concatenate([tr.flux, (st.science_flux - st.template_flux)[var]]) / e_per_njy,
            truth_class=np.concatenate([tr.truth_class, np.full(var.sum(), "variableStar", dtype=object)]),
            id=np.concatenate([tr.id, st.id[var]]),
            injected=np.concatenate([tr.injected, st.injected[var]]),
        )


def _label_real_changes(labels: _Labels, changes: _RealChanges, radius: float, min_significance: float) -> None:
    """Rule 1: label real the detections with a significant change of their
    sign within ``radius``; the nearest such change is the match.
    """
    if not len(labels.x) or not len(changes.x):
        return
    tree = cKDTree(np.column_stack([changes.x, changes.y]))
    for i, cands in enumerate(tree.query_ball_point(np.column_stack([labels.x, labels.y]), radius)):
        if not cands:
            continue
        cands = np.asarray(cands)
        ok = (np.sign(changes.flux[cands]) == (-1 if labels.negative[i] else 1)) & (
            np.abs(changes.flux[cands]) >= min_significance * labels.flux_err[i])
        if not ok.any():
            continue
        cands = cands[ok]
        d = np.hypot(changes.x[cands] - labels.x[i], changes.y[cands] - labels.y[i])
        j = cands[np.argmin(d)]
        labels.truth_class[i] = changes.truth_class[j]
        labels.truth_id[i], labels.true_flux[i], labels.distance[i] = changes.id[j], changes.flux[j], d.min()
        labels.injected[i] = changes.injected[j]


def _label_pixel_artifacts(labels: _Labels, amap: ArtifactMap) -> None:
    """Rule 2: label a detection with the pixel artifact within 2 pixels of
    its peak, if any.
    """
    todo = labels.todo()
    if todo.any():
        x, y, idx = labels.x[todo], labels.y[todo], np.flatnonzero(todo)
        near = amap.class_near(x, y, radius=2)
        labels.truth_class[idx] = np.where(near != "", near, "")
        labels.injected[idx] |= (near != "") & amap.injected_near(x, y, radius=2)


def _label_geometry(labels: _Labels, edge_mask: np.ndarray, gap_band: np.ndarray) -> None:
    """Rule 3: label ``edge`` the detections whose peak is in the detector's
    border, ``templateGap`` those along the template coadd's edge.
    """
    todo = labels.todo()
    for name, plane in (("edge", edge_mask), ("templateGap", gap_band)):
        if todo.any():
            hit, _ = extract_stamps(plane, labels.x[todo], labels.y[todo], 1, fill=True)
            labels.truth_class[np.flatnonzero(todo)[hit[:, 0, 0]]] = name
            todo = labels.todo()


def _static_reach(
    static: StaticObjects, psf_profile: np.ndarray, pixel_noise_e: float, radius: float, pixel_scale: float
) -> np.ndarray:
    """Return how far from each static object (pixels) its light can cause
    a detection: its residuals' reach plus its half-light radius.
    """
    influence = _static_influence(np.maximum(static.template_flux, static.science_flux), psf_profile,
                                  pixel_noise_e, radius)
    return influence + static.half_light / pixel_scale


def _label_static_residuals(
    labels: _Labels, static: StaticObjects, saturated_ids: np.ndarray, reach: np.ndarray
) -> None:
    """Rule 4: label a detection within the ``reach`` of a static object's
    light a residual of it: ``saturated`` if it saturated, ``dipole`` if it
    was misregistered, else ``psfResidual``; the nearest object in units of
    its reach is the match.
    """
    todo = labels.todo()
    if not todo.any() or not len(static):
        return
    tree = cKDTree(np.column_stack([static.x, static.y]))
    idx = np.flatnonzero(todo)
    shifted = np.hypot(static.offset_x, static.offset_y) > 0
    saturated = np.isin(static.id, saturated_ids)
    for i, cands in zip(idx, tree.query_ball_point(np.column_stack([labels.x[idx], labels.y[idx]]),
                                                    reach.max())):
        if not cands:
            continue
        cands = np.asarray(cands)
        d = np.hypot(static.x[cands] - labels.x[i], static.y[cands] - labels.y[i])
        inside = d <= reach[cands]
        if not inside.any():
            continue
        cands, d = cands[inside], d[inside]
        j = cands[np.argmin(d / reach[cands])]
        labels.truth_id[i] = static.id[j]
        labels.distance[i] = np.hypot(static.x[j] - labels.x[i], static.y[j] - labels.y[i])
        labels.truth_class[i] = "saturated" if saturated[j] else ("dipole" if shifted[j] else "psfResidual")
        labels.injected[i] = static.injected[j]


def _flag_near_injected(labels: _Labels, scene: Scene, reach: np.ndarray, radius: float) -> None:
    """Flag as injected every detection an injected source's light reaches
    (within its reach for a static object, within ``radius`` of a
    transient's trail), whatever its label: the detections left unflagged
    are those of the natural sky alone.
    """
    st, tr = scene.static, scene.transients
    if not len(labels.x) or not (st.injected.any() or tr.injected.any()):
        return
    half_trail = 0.5 * np.hypot(tr.trail_x, tr.trail_y)
    x = np.concatenate([st.x[st.injected], (tr.x + 0.5 * tr.trail_x)[tr.injected]])
    y = np.concatenate([st.y[st.injected], (tr.y + 0.5 * tr.trail_y)[tr.injected]])
    far = np.concatenate([reach[st.injected], (radius + half_trail)[tr.injected]])
    tree = cKDTree(np.column_stack([labels.x, labels.y]))
    for k, near in enumerate(tree.query_ball_point(np.column_stack([x, y]), far)):
        labels.injected[near] = True


def _static_influence(flux: np.ndarray, psf_profile: np.ndarray, noise: float, base: float) -> np.ndarray:
    """Return how far from each static object its residuals are detected,
    pixels (at least ``base``).

    That is the outermost radius at which the object's own light is still
    above half the per-pixel noise: residual rings of a few per cent, summed
    by the detection filter over hundreds of pixels, are detected that far
    out.  The PSF's wings, not a Gaussian's, decide the reach.
    """
    above = flux[:, None] * psf_profile[None, :] >= 0.5 * noise
    last = np.where(above.any(axis=1), psf_profile.size - 1 - np.argmax(above[:, ::-1], axis=1), 0)
    return np.maximum(last.astype(float), base)
