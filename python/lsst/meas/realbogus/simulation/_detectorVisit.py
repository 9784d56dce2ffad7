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

"""Simulate one detector-visit: science, template, difference, detections,
truth.

`simulate_detector_visit` runs the steps in order.  Each step draws from the
detector-visit's generators, so the order of the steps, and of the draws
within them, is part of the output: reordering them changes every pixel.
"""

from __future__ import annotations

__all__ = ["simulate_detector_visit"]

import math

import galsim
import numpy as np
from astropy.table import Table
from astropy.time import Time
from scipy import ndimage

from ._config import SimulationConfig
from ._detection import detect_and_measure
from ._difference import DifferenceResult, matching_kernel, subtract
from ._exposures import (
    COADD_EDGE_BAND,
    FWHM_TO_SIGMA,
    ScienceExposure,
    SkyBackground,
    TemplateExposure,
    seeing_pixels,
    simulate_science,
    simulate_template,
)
from ._injection import inject_sources
from ._render import PsfField, draw_psf_image
from ._repository import DetectorVisitProduct
from ._scene import Scene, draw_scene
from ._survey import DetectorVisitSpec
from ._truth import label_detections


def simulate_detector_visit(spec: DetectorVisitSpec, config: SimulationConfig) -> DetectorVisitProduct:
    """Simulate one detector-visit end to end.

    Parameters
    ----------
    spec : `DetectorVisitSpec`
        Which visit and detector, and its WCS.
    config : `SimulationConfig`
        Simulator configuration.

    Returns
    -------
    product : `DetectorVisitProduct`
        Images (nJy), masks, detections and their truth labels.
    """
    rng = _seed(config, spec.visit.visit, spec.detector)
    detector_rng = _seed(config, spec.detector, 0xDE7)  # defects persist across visits
    scene = draw_scene(rng, config, band=spec.visit.band, width=spec.width, height=spec.height)
    injection_rng = _injection_rng(spec, config)
    if injection_rng is not None:
        scene = inject_sources(injection_rng, config, scene, band=spec.visit.band, width=spec.width,
                               height=spec.height, fwhm_px=seeing_pixels(spec, config))
    sky = SkyBackground.of(spec, config)
    science = simulate_science(rng, detector_rng, spec, config, scene, sky, injection_rng)
    template = simulate_template(rng, spec, config, scene, sky)
    # The science PSF *model* the kernel is fitted with has a FWHM error.
    model_scale = 1.0 + rng.normal(0.0, config.template.psfModelError)
    difference = _subtract_template(spec, config, science, template, model_scale, scene.zero_point_e)
    science_masks = science.masks()
    difference_masks = dict(science_masks, NO_DATA=difference.no_data, EDGE=difference.edge)
    sources = _detect(spec, config, science.psf_field, model_scale, difference, difference_masks)
    truth = _label(spec, config, sources, scene, science, sky, difference, template.covered)
    # Detection footprints are not kept: the DETECTED planes are written empty.
    for name in ("DETECTED", "DETECTED_NEGATIVE"):
        difference_masks[name] = np.zeros(science.image.shape, dtype=bool)
    to_njy = 1.0 / scene.zero_point_e
    return DetectorVisitProduct(
        visit=spec.visit.visit,
        detector=spec.detector,
        band=spec.visit.band,
        physical_filter=spec.visit.physical_filter,
        wcs=spec.wcs,
        science_psf_sigma=seeing_pixels(spec, config) * FWHM_TO_SIGMA,
        template_psf_sigma=template.fwhm / config.survey.pixelScale * FWHM_TO_SIGMA,
        difference_psf_sigma=seeing_pixels(spec, config) * FWHM_TO_SIGMA,
        science_image=(science.image * to_njy).astype(np.float32),
        science_variance=(science.variance * to_njy**2).astype(np.float32),
        science_masks=science_masks,
        template_image=(template.image * to_njy).astype(np.float32),
        template_variance=(template.variance * to_njy**2).astype(np.float32),
        template_masks={"NO_DATA": ~template.covered},
        difference_image=difference.image,
        difference_variance=difference.variance,
        difference_masks=difference_masks,
        sources=sources,
        truth=truth,
        obs_time=Time(spec.visit.mjd, format="mjd", scale="tai"),
        exposure_time_s=spec.visit.exposure_time,
    )


def _seed(config: SimulationConfig, *keys: int) -> np.random.Generator:
    """Return the generator of a part of the simulation, from the master
    seed and keys (detector-visits draw independently of one another, so
    results do not depend on how many run in parallel).
    """
    return np.random.default_rng(np.random.SeedSequence([config.seed, *keys]))


def _injection_rng(spec: DetectorVisitSpec, config: SimulationConfig) -> np.random.Generator | None:
    """Return the injection's own generator for a detector-visit of an
    injected tract, else `None`.
    """
    if spec.visit.tract not in config.injection.tracts:
        return None
    return _seed(config, spec.visit.visit, spec.detector, 0x1A7EC7)


def _subtract_template(
    spec: DetectorVisitSpec,
    config: SimulationConfig,
    science: ScienceExposure,
    template: TemplateExposure,
    model_scale: float,
    electrons_per_njy: float,
) -> DifferenceResult:
    """Match the template to a (slightly wrong) model of the science PSF
    and subtract it; the difference is in nJy.
    """
    scale = config.survey.pixelScale
    size = 2 * int(math.ceil(4.0 * seeing_pixels(spec, config))) + 1
    kernel = matching_kernel(draw_psf_image(science.psf_field.nominal(model_scale), size, scale),
                             draw_psf_image(template.psf_field.nominal(), size, scale))
    to_njy = 1.0 / electrons_per_njy
    return subtract(science.image * to_njy, science.variance * to_njy**2, template.image * to_njy,
                    template.variance * to_njy**2, kernel, edge_width=config.artifacts.edgeWidth)


def _detect(
    spec: DetectorVisitSpec,
    config: SimulationConfig,
    science_psf: PsfField,
    model_scale: float,
    difference: DifferenceResult,
    masks: dict[str, np.ndarray],
) -> Table:
    """Detect and measure DIA sources with the science PSF model."""
    scale = config.survey.pixelScale
    fwhm_px = seeing_pixels(spec, config)
    psf_image = draw_psf_image(science_psf.nominal(model_scale), 2 * int(math.ceil(2.0 * fwhm_px)) + 1, scale)
    id_base = (spec.visit.visit * 1000 + spec.detector) * 100000
    return detect_and_measure(difference.image, difference.variance, masks, psf_image,
                              fwhm_px * model_scale * FWHM_TO_SIGMA, config.detection, id_base=id_base,
                              wcs=spec.wcs)


def _label(
    spec: DetectorVisitSpec,
    config: SimulationConfig,
    sources: Table,
    scene: Scene,
    science: ScienceExposure,
    sky: SkyBackground,
    difference: DifferenceResult,
    covered: np.ndarray,
) -> Table:
    """Label every detection with what was injected (``dia_source_truth``)."""
    scale = config.survey.pixelScale
    return label_detections(
        sources,
        scene,
        science.artifacts,
        edge_mask=difference.edge,
        gap_band=_template_gap_band(covered, difference),
        saturated_ids=science.saturated_ids,
        fwhm_px=seeing_pixels(spec, config),
        psf_profile=_radial_profile(science.psf_field.nominal(), scale),
        pixel_noise_e=sky.noise,
        match_radius=config.detection.matchRadius,
        real_min_significance=config.detection.realMinSignificance,
        e_per_njy=scene.zero_point_e,
        pixel_scale=scale,
    )


def _template_gap_band(covered: np.ndarray, difference: DifferenceResult) -> np.ndarray:
    """Return the band along the coadd's edge, grown by the kernel, where
    the difference has data: detections there are ``templateGap``.
    """
    if covered.all():
        return np.zeros(covered.shape, dtype=bool)
    grown = ndimage.binary_dilation(~covered, iterations=COADD_EDGE_BAND + difference.kernel.shape[0] // 2)
    return grown & ~difference.no_data


def _radial_profile(psf: galsim.GSObject, scale: float, radius: int = 80) -> np.ndarray:
    """Return the largest pixel value of a unit-flux PSF at each integer
    radius.
    """
    image = psf.drawImage(nx=2 * radius + 1, ny=2 * radius + 1, scale=scale, method="auto").array
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    r = np.rint(np.hypot(xx, yy)).astype(int).ravel()
    profile = np.zeros(r.max() + 1)
    np.maximum.at(profile, r, image.ravel())
    return profile[: radius + 1]
