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

"""The observing plan: tracts, visits, detectors and their WCSs."""

from __future__ import annotations

__all__ = [
    "DetectorVisitSpec",
    "TRACT_BOXES",
    "TractBox",
    "VisitSpec",
    "detector_layout",
    "plan_survey",
    "detector_coverage",
    "template_coverage",
]

import dataclasses
import math

import numpy as np

from ._config import SimulationConfig, SurveyConfig
from ._skymap import PIXEL_SCALE_ARCSEC, TRACT_SIZE, tract_wcs
from ._tanWcs import TanWcs


@dataclasses.dataclass(frozen=True)
class TractBox:
    """Inner RA/Dec box of a DC2 tract, degrees (RingsSkyMap, doc/simulation.rst).

    Visits are pointed inside it; the template covers the whole tract
    (`template_coverage`), which extends past it by the patch border.
    """

    tract: int
    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float


TRACT_BOXES = {
    3080: TractBox(3080, 60.663, 62.652, -43.140, -41.653),
    4024: TractBox(4024, 52.836, 54.627, -35.702, -34.215),
}


def template_coverage(tract: int, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """True where the tract's template coadd has data (its full pixel grid)."""
    tx, ty = tract_wcs(tract).sky_to_pixel(ra, dec)
    lo, hi = -0.5, TRACT_SIZE - 0.5
    return (tx >= lo) & (tx < hi) & (ty >= lo) & (ty < hi)


def detector_coverage(spec: DetectorVisitSpec, *, border_only: bool = False) -> np.ndarray | bool:
    """Return where the tract's template covers a detector-visit's pixels.

    Both WCSs are gnomonic, and the composition of two gnomonic projections
    maps straight lines to straight lines, so the covered region is convex
    in detector pixels; a tract is far larger than a detector. So if the
    detector's border is covered, all of it is, and if none of the border
    is, none of the detector is: only a detector the tract's edge crosses
    needs every pixel's sky position.

    Parameters
    ----------
    spec : `DetectorVisitSpec`
        The detector-visit.
    border_only : `bool`, optional
        Return only whether any pixel is covered (`bool`), from the border.

    Returns
    -------
    covered : `numpy.ndarray` of `bool`, (height, width), or `bool`
    """
    h, w = spec.height, spec.width
    xs, ys = np.arange(w, dtype=float), np.arange(h, dtype=float)
    bx = np.concatenate([xs, xs, np.zeros(h), np.full(h, w - 1.0)])
    by = np.concatenate([np.zeros(w), np.full(w, h - 1.0), ys, ys])
    border = template_coverage(spec.visit.tract, *spec.wcs.pixel_to_sky(bx, by))
    if border_only:
        return bool(border.any())
    if border.all() or not border.any():
        return np.full((h, w), bool(border.all()))
    yy, xx = np.mgrid[0:h, 0:w]
    ra, dec = spec.wcs.pixel_to_sky(xx.ravel(), yy.ravel())
    return template_coverage(spec.visit.tract, ra, dec).reshape(h, w)


# LSSTCam-imSim detector numbers, centre raft R22 (90-98) first.
_DETECTOR_ORDER = list(range(90, 99)) + [d for d in range(189) if not 90 <= d < 99]


@dataclasses.dataclass(frozen=True)
class VisitSpec:
    """One simulated visit."""

    visit: int
    tract: int
    band: str
    physical_filter: str
    mjd: float
    exposure_time: float
    boresight_ra: float
    boresight_dec: float
    rotation: float
    seeing: float
    sky_scale: float


@dataclasses.dataclass(frozen=True)
class DetectorVisitSpec:
    """One simulated detector-visit: everything needed to render it."""

    visit: VisitSpec
    detector: int
    wcs: TanWcs
    width: int
    height: int


def detector_layout(n: int, width: int, height: int, gap: int) -> dict[int, tuple[float, float]]:
    """Focal-plane offsets (pixels) of the centres of ``n`` detectors.

    Detectors sit in a near-square grid around the boresight.
    """
    ncol = math.ceil(math.sqrt(n))
    nrow = math.ceil(n / ncol)
    layout = {}
    for k, det in enumerate(_DETECTOR_ORDER[:n]):
        row, col = divmod(k, ncol)
        layout[det] = ((col - (ncol - 1) / 2) * (width + gap), (row - (nrow - 1) / 2) * (height + gap))
    return layout


def _detector_wcs(
    visit: VisitSpec, offset: tuple[float, float], width: int, height: int, scale: float
) -> TanWcs:
    """Return the WCS of a detector at a focal-plane offset (pixels) from the
    boresight of a visit.
    """
    # The tangent point is the boresight; the detector centre sits at the
    # focal-plane offset. East is left (RA increases to -x) before rotation.
    theta = math.radians(visit.rotation)
    s = scale / 3600.0
    cd = ((-s * math.cos(theta), s * math.sin(theta)), (s * math.sin(theta), s * math.cos(theta)))
    crpix_x = (width - 1) / 2 - offset[0]
    crpix_y = (height - 1) / 2 - offset[1]
    return TanWcs(crpix_x, crpix_y, visit.boresight_ra, visit.boresight_dec, cd)


def _boresight(rng: np.random.Generator, box: TractBox, edge_fraction: float, fov_px: float) -> tuple[float, float]:
    """Draw a visit's boresight (RA, Dec, degrees): uniform in the tract's
    inner box or, for ``edge_fraction`` of the visits, near the edge of its
    pixel grid.
    """
    if rng.random() < edge_fraction:
        # On the edge of the tract's pixel grid, where its template ends, so
        # that the coverage boundary crosses some detectors of this visit.
        side = int(rng.integers(4))
        along = rng.uniform(0, TRACT_SIZE)
        across = (0.0 if side % 2 == 0 else TRACT_SIZE) + rng.normal(0.0, fov_px / 4)
        tx, ty = (along, across) if side < 2 else (across, along)
        ra, dec = tract_wcs(box.tract).pixel_to_sky(tx, ty)
        return float(ra), float(dec)
    ra = rng.uniform(box.ra_min, box.ra_max)
    dec = rng.uniform(box.dec_min, box.dec_max)
    return ra, dec


def plan_survey(config: SimulationConfig) -> list[DetectorVisitSpec]:
    """Lay out every detector-visit of a simulated repository.

    The plan depends only on the configuration (including its seed), so the
    same configuration always yields the same visits and WCSs. Each tract
    draws its visits from its own generator, so a tract's visits do not
    depend on how many the other tracts have (the demo's test tract stays
    the same whatever its training tract's ``visitsByTract``).

    Parameters
    ----------
    config : `SimulationConfig`
        Simulator configuration.

    Returns
    -------
    specs : `list` [`DetectorVisitSpec`]
        Detector-visits ordered by visit, then detector. A detector that
        no template covers (off the tract, in a visit pointed at its edge)
        is left out: Alert Production makes nothing of it either.
    """
    survey = config.survey
    layout = detector_layout(survey.detectorsPerVisit, survey.detectorWidth, survey.detectorHeight,
                             survey.detectorGap)
    extent = max(abs(v) for xy in layout.values() for v in xy) + max(survey.detectorWidth,
                                                                      survey.detectorHeight)
    fov_px = 2 * extent * survey.pixelScale / PIXEL_SCALE_ARCSEC
    specs = []
    for tract in survey.tracts:
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0x5EED, tract]))
        for i in range(survey.visits_of_tract(tract)):
            visit = _draw_visit(rng, survey, tract, i, fov_px)
            for det, offset in layout.items():
                wcs = _detector_wcs(visit, offset, survey.detectorWidth, survey.detectorHeight,
                                    survey.pixelScale)
                spec = DetectorVisitSpec(visit, det, wcs, survey.detectorWidth, survey.detectorHeight)
                if detector_coverage(spec, border_only=True):
                    specs.append(spec)
    return specs


def _draw_visit(rng: np.random.Generator, survey: SurveyConfig, tract: int, i: int, fov_px: float) -> VisitSpec:
    """Draw the ``i``-th visit of a tract: its pointing and conditions (bands
    cycle over the visits).
    """
    band = survey.bands[i % len(survey.bands)]
    ra, dec = _boresight(rng, TRACT_BOXES[tract], survey.edgePointingFraction, fov_px)
    seeing = float(np.clip(
        survey.seeingMedian * 10 ** rng.normal(0.0, survey.seeingScatter),
        survey.seeingMin, survey.seeingMax,
    ))
    return VisitSpec(
        visit=tract * 1000 + i,
        tract=tract,
        band=band,
        physical_filter=survey.physicalFilters[band],
        mjd=survey.startMjd + i * 0.9 + (0.0 if tract == 3080 else 400.0),
        exposure_time=survey.exposureTime,
        boresight_ra=ra,
        boresight_dec=dec,
        rotation=float(rng.uniform(-90.0, 90.0)),
        seeing=seeing,
        sky_scale=float(10 ** abs(rng.normal(0.0, survey.skyScatter))),
    )
