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

"""Simulate one detector-visit: science, template, difference, detections, truth."""

from __future__ import annotations

__all__ = ["simulate_detector_visit"]

import math

import galsim
import numpy as np
from astropy.time import Time
from scipy import ndimage

from ._artifacts import (
    ArtifactMap,
    add_bad_column,
    add_cosmic_rays,
    add_hot_pixels,
    add_satellite_trail,
    apply_saturation,
)
from ._config import SimulationConfig
from ._detection import detect_and_measure
from ._difference import matching_kernel, subtract
from ._render import PsfField, draw_psf_image, render_sources
from ._repository import DetectorVisitProduct
from ._scene import Scene, draw_scene
from ._survey import DetectorVisitSpec, template_coverage

_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
# Width of the coadd-edge band where fewer visits went into the template.
_COADD_EDGE_BAND = 40


def _seed(config: SimulationConfig, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([config.seed, *keys]))


def _render(shape, psf_field, scene: Scene, scale, *, template: bool, shift=(0.0, 0.0), alt_field=None,
            in_band=None) -> np.ndarray:
    height, width = shape
    image = galsim.ImageF(galsim.BoundsI(0, width - 1, 0, height - 1), scale=scale)
    st = scene.static
    if template:
        x, y, flux = st.x + st.offset_x + shift[0], st.y + st.offset_y + shift[1], st.template_flux
    else:
        x, y, flux = st.x, st.y, st.science_flux
    override = None
    if alt_field is not None and in_band is not None and len(x):
        override = _sample(in_band, x, y)
    render_sources(image, psf_field, x, y, flux, sersic_n=st.sersic_n, half_light=st.half_light, q=st.q,
                   beta=st.beta, psf_override=override, alt_psf_field=alt_field, scale=scale)
    if not template:
        tr = scene.transients
        # Moving objects: the flux spread along the trail.
        steps = 7
        for k in range(steps):
            frac = k / (steps - 1) if steps > 1 else 0.0
            render_sources(image, psf_field, tr.x + frac * tr.trail_x, tr.y + frac * tr.trail_y,
                           tr.flux / steps, scale=scale, min_flux=0.1)
    return image.array.astype(np.float64)


def _sample(plane: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Value of the pixel under each position (clamped to the image).
    h, w = plane.shape
    ix = np.clip(np.floor(x + 0.5).astype(int), 0, w - 1)
    iy = np.clip(np.floor(y + 0.5).astype(int), 0, h - 1)
    return plane[iy, ix]


def _radial_profile(psf: galsim.GSObject, scale: float, radius: int = 80) -> np.ndarray:
    """Largest pixel value of a unit-flux PSF at each integer radius."""
    image = psf.drawImage(nx=2 * radius + 1, ny=2 * radius + 1, scale=scale, method="auto").array
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    r = np.rint(np.hypot(xx, yy)).astype(int).ravel()
    profile = np.zeros(r.max() + 1)
    np.maximum.at(profile, r, image.ravel())
    return profile[: radius + 1]


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
    from ._truth import label_detections

    survey, tcfg, acfg = config.survey, config.template, config.artifacts
    visit = spec.visit
    rng = _seed(config, visit.visit, spec.detector)
    det_rng = _seed(config, spec.detector, 0xDE7)  # defects persist across visits
    shape = (spec.height, spec.width)
    scale = survey.pixelScale
    band = visit.band

    scene = draw_scene(rng, config, band=band, width=spec.width, height=spec.height)
    e_per_njy = scene.zero_point_e
    zp_e = survey.zeroPoints[band] + 2.5 * math.log10(survey.exposureTime)
    sky_e = 10 ** (-0.4 * (survey.skyBrightness[band] - 5 * math.log10(scale) - zp_e)) * visit.sky_scale
    read_var = survey.readNoise**2

    # --- Science exposure (electrons) ---
    g1, g2 = rng.normal(0.0, survey.psfEllipticity, 2)
    gx, gy = rng.normal(0.0, survey.psfFwhmGradient, 2)
    sci_field = PsfField(survey.psfProfile, visit.seeing, spec.width, spec.height, beta=survey.psfMoffatBeta,
                         g1=float(g1), g2=float(g2), grad_x=float(gx), grad_y=float(gy))
    signal = _render(shape, sci_field, scene, scale, template=False)
    amap = ArtifactMap(shape)
    noise_e = math.sqrt(sky_e + read_var)
    sat_trail = rng.random() < acfg.satelliteProbability
    streak = np.zeros(shape, dtype=bool)
    if sat_trail:
        peak = rng.uniform(*acfg.satelliteSurfaceBrightness)
        sigma = visit.seeing / scale * _FWHM_TO_SIGMA * rng.uniform(1.0, 2.5)
        before = signal.copy()
        add_satellite_trail(signal, amap, rng, peak=peak, sigma=sigma, noise=noise_e)
        trail = signal - before
        # The pipeline's streak masking finds trails brighter than ~1 sigma
        # per pixel along their length.
        if peak > noise_e:
            streak = trail > 0.5 * noise_e
    science_e = rng.poisson(np.clip(signal + sky_e, 0, None)).astype(np.float64)
    science_e += rng.normal(0.0, survey.readNoise, shape)
    area_cm2 = spec.width * spec.height * 1e-6  # 10 um pixels
    add_cosmic_rays(science_e, amap, rng, count=int(rng.poisson(acfg.cosmicRayRate * area_cm2
                                                                  * survey.exposureTime)),
                    electrons=tuple(acfg.cosmicRayElectrons))
    n_hot = int(det_rng.poisson(acfg.hotPixelDensity * spec.width * spec.height / 1e6))
    add_hot_pixels(science_e, amap, det_rng, count=n_hot, electrons=tuple(acfg.hotPixelElectrons))
    bad = np.zeros(shape, dtype=bool)
    if det_rng.random() < acfg.badColumnProbability:
        add_bad_column(science_e, amap, bad, det_rng, masked=det_rng.random() < acfg.badColumnMaskedFraction)
    sat = np.zeros(shape, dtype=bool)
    apply_saturation(science_e, amap, sat, survey.fullWell)
    science_e -= sky_e  # background-subtracted, as calibrated visit images are
    science_var_e = np.clip(signal, 0, None) + sky_e + read_var
    science_var_e[sat] = np.maximum(science_var_e[sat], survey.fullWell)

    # Static objects whose peak pixel saturated.
    st = scene.static
    peak_vals = _sample(sat, st.x, st.y)
    inside = (st.x >= 0) & (st.x < spec.width) & (st.y >= 0) & (st.y < spec.height)
    saturated_ids = st.id[peak_vals & inside]

    # --- Template: deeper, better seeing, warped, ending where the tract ends ---
    yy, xx = np.mgrid[0:spec.height, 0:spec.width]
    ra, dec = spec.wcs.pixel_to_sky(xx.ravel(), yy.ravel())
    covered = template_coverage(visit.tract, ra, dec).reshape(shape)
    in_band = np.zeros(shape, dtype=bool)
    if not covered.all():
        in_band = covered & (ndimage.distance_transform_edt(covered) <= _COADD_EDGE_BAND)
    t_fwhm = min(tcfg.fwhm, tcfg.maxFwhmRatio * visit.seeing)
    tmpl_field = PsfField(survey.psfProfile, t_fwhm, spec.width, spec.height, beta=survey.psfMoffatBeta)
    # Fewer, different visits at the coadd edge: a wider PSF and more noise.
    edge_field = PsfField(survey.psfProfile, t_fwhm * 1.2, spec.width, spec.height, beta=survey.psfMoffatBeta)
    shift = tuple(rng.normal(0.0, tcfg.astrometricScatter, 2))
    t_signal = _render(shape, tmpl_field, scene, scale, template=True, shift=shift, alt_field=edge_field,
                       in_band=in_band)
    t_signal *= 1.0 + rng.normal(0.0, tcfg.photometricScatter)
    depth = np.where(in_band, tcfg.depthVisits / 4.0, tcfg.depthVisits)
    t_var_e = (np.clip(t_signal, 0, None) + sky_e + read_var) / depth
    t_noise = rng.normal(0.0, 1.0, shape)
    if tcfg.warpCorrelation > 0:
        # Warping correlates the noise; the variance plane keeps the
        # per-pixel value and ignores the covariance, as the pipeline does.
        t_noise = ndimage.gaussian_filter(t_noise, tcfg.warpCorrelation)
        t_noise /= t_noise.std()
    template_e = t_signal + t_noise * np.sqrt(t_var_e)
    template_e[~covered] = np.nan
    t_var_e[~covered] = np.nan

    # --- Difference: the template matched to a (slightly wrong) science PSF model ---
    fwhm_px = visit.seeing / scale
    ksize = 2 * int(math.ceil(4.0 * fwhm_px)) + 1
    model_scale = 1.0 + rng.normal(0.0, tcfg.psfModelError)
    kernel = matching_kernel(draw_psf_image(sci_field.nominal(model_scale), ksize, scale),
                             draw_psf_image(tmpl_field.nominal(), ksize, scale))
    to_njy = 1.0 / e_per_njy
    diff = subtract(science_e * to_njy, science_var_e * to_njy**2, template_e * to_njy, t_var_e * to_njy**2,
                    kernel, edge_width=acfg.edgeWidth)
    gap_band = ndimage.binary_dilation(~covered, iterations=_COADD_EDGE_BAND + ksize // 2) & ~diff.no_data \
        if not covered.all() else np.zeros(shape, dtype=bool)

    science_masks = {"SAT": sat, "BAD": bad, "INTRP": bad.copy(), "STREAK": streak}
    template_masks = {"NO_DATA": ~covered}
    diff_masks = dict(science_masks, NO_DATA=diff.no_data, EDGE=diff.edge)

    # --- Detection, measurement and truth ---
    psf_size = 2 * int(math.ceil(2.0 * fwhm_px)) + 1
    psf_image = draw_psf_image(sci_field.nominal(model_scale), psf_size, scale)
    id_base = (visit.visit * 1000 + spec.detector) * 100000
    sources = detect_and_measure(diff.image, diff.variance, diff_masks, psf_image,
                                 fwhm_px * model_scale * _FWHM_TO_SIGMA, config.detection,
                                 id_base=id_base, wcs=spec.wcs)
    truth = label_detections(
        sources, scene, amap, edge_mask=diff.edge, gap_band=gap_band, saturated_ids=saturated_ids,
        fwhm_px=fwhm_px, psf_profile=_radial_profile(sci_field.nominal(), scale), pixel_noise_e=noise_e, match_radius=config.detection.matchRadius,
        real_min_significance=config.detection.realMinSignificance, e_per_njy=e_per_njy,
        pixel_scale=scale,
    )
    for name in ("DETECTED", "DETECTED_NEGATIVE"):
        diff_masks[name] = np.zeros(shape, dtype=bool)

    return DetectorVisitProduct(
        visit=visit.visit,
        detector=spec.detector,
        band=band,
        physical_filter=visit.physical_filter,
        wcs=spec.wcs,
        science_psf_sigma=fwhm_px * _FWHM_TO_SIGMA,
        template_psf_sigma=t_fwhm / scale * _FWHM_TO_SIGMA,
        difference_psf_sigma=fwhm_px * _FWHM_TO_SIGMA,
        science_image=(science_e * to_njy).astype(np.float32),
        science_variance=(science_var_e * to_njy**2).astype(np.float32),
        science_masks=science_masks,
        template_image=(template_e * to_njy).astype(np.float32),
        template_variance=(t_var_e * to_njy**2).astype(np.float32),
        template_masks=template_masks,
        difference_image=diff.image,
        difference_variance=diff.variance,
        difference_masks=diff_masks,
        sources=sources,
        truth=truth,
        obs_time=Time(visit.mjd, format="mjd", scale="tai"),
        exposure_time_s=visit.exposure_time,
    )
