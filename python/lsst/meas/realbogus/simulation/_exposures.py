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

"""The science exposure and the warped template of one detector-visit, in
electrons of the science exposure: the scene rendered through each one's
PSF, with noise, the science exposure's artifacts and saturation, and the
template's coadd edge.

The functions draw from the generators they are given, in a fixed order (see
`simulate_detector_visit`).
"""

from __future__ import annotations

# Steps of simulate_detector_visit; not part of the package's API.
__all__: list[str] = []

import dataclasses
import math

import galsim
import numpy as np
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
from ._injection import add_injected_artifacts
from ._render import PsfField, render_sources
from ._scene import Scene, StaticObjects, Transients
from ._survey import DetectorVisitSpec, detector_coverage

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
"""Gaussian sigma per FWHM."""

COADD_EDGE_BAND = 40
"""Width (pixels) of the band inside the coadd's edge where fewer visits went
into the template."""

# Positions along a moving object's trail at which its flux is drawn.
_TRAIL_STEPS = 7


def seeing_pixels(spec: DetectorVisitSpec, config: SimulationConfig) -> float:
    """Return the science seeing FWHM of a detector-visit in pixels."""
    return spec.visit.seeing / config.survey.pixelScale


@dataclasses.dataclass(frozen=True)
class SkyBackground:
    """Sky and read noise per pixel of the science exposure, electrons.

    Attributes
    ----------
    sky : `float`
        Sky level per pixel.
    read_variance : `float`
        Read-noise variance per pixel.
    """

    sky: float
    read_variance: float

    @classmethod
    def of(cls, spec: DetectorVisitSpec, config: SimulationConfig) -> SkyBackground:
        """Return the background of a detector-visit's band and sky
        brightness.
        """
        survey, band = config.survey, spec.visit.band
        zp_e = survey.zeroPoints[band] + 2.5 * math.log10(survey.exposureTime)
        sky = 10 ** (-0.4 * (survey.skyBrightness[band] - 5 * math.log10(survey.pixelScale) - zp_e))
        return cls(sky * spec.visit.sky_scale, survey.readNoise**2)

    @property
    def noise(self) -> float:
        """Per-pixel noise of an empty pixel, electrons (`float`)."""
        return math.sqrt(self.sky + self.read_variance)

    def variance(self, signal: np.ndarray) -> np.ndarray:
        """Return the per-pixel variance of one exposure of ``signal``
        (electrons): Poisson noise of signal and sky, and read noise.
        """
        return np.clip(signal, 0, None) + self.sky + self.read_variance


@dataclasses.dataclass
class ScienceExposure:
    """The background-subtracted science exposure of a detector-visit,
    electrons.

    Attributes
    ----------
    psf_field : `PsfField`
        The true, spatially varying PSF.
    image, variance : `numpy.ndarray`
        Pixels and their variance.
    artifacts : `ArtifactMap`
        Which artifact touched each pixel (for the truth labels).
    saturated, bad, streak : `numpy.ndarray` of `bool`
        The SAT, BAD and STREAK mask planes.
    saturated_ids : `numpy.ndarray`
        Ids of the static objects whose peak pixel saturated.
    """

    psf_field: PsfField
    image: np.ndarray
    variance: np.ndarray
    artifacts: ArtifactMap
    saturated: np.ndarray
    bad: np.ndarray
    streak: np.ndarray
    saturated_ids: np.ndarray

    def masks(self) -> dict[str, np.ndarray]:
        """Return the science mask planes; a masked bad column is
        interpolated over, so it is INTRP as well as BAD.
        """
        return {"SAT": self.saturated, "BAD": self.bad, "INTRP": self.bad.copy(), "STREAK": self.streak}


def simulate_science(
    rng: np.random.Generator,
    detector_rng: np.random.Generator,
    spec: DetectorVisitSpec,
    config: SimulationConfig,
    scene: Scene,
    sky: SkyBackground,
    injection_rng: np.random.Generator | None = None,
) -> ScienceExposure:
    """Render the scene through the visit's PSF, add a satellite trail,
    noise and the sensor's artifacts (and the injected ones, if an
    ``injection_rng`` is given), saturate and subtract the sky.
    """
    survey = config.survey
    psf_field = _science_psf_field(rng, spec, config)
    signal = _render_science(psf_field, scene, spec, survey.pixelScale)
    artifacts = ArtifactMap(signal.shape)
    streak = _add_satellite(rng, signal, artifacts, spec, config, sky)
    image = rng.poisson(np.clip(signal + sky.sky, 0, None)).astype(np.float64)
    image += rng.normal(0.0, survey.readNoise, signal.shape)
    bad = _add_sensor_artifacts(rng, detector_rng, image, artifacts, spec, config)
    if injection_rng is not None:
        add_injected_artifacts(injection_rng, image, artifacts, config, _expected_cosmic_rays(spec, config))
    saturated = np.zeros(signal.shape, dtype=bool)
    apply_saturation(image, artifacts, saturated, survey.fullWell)
    image -= sky.sky  # background-subtracted, as calibrated visit images are
    variance = sky.variance(signal)
    variance[saturated] = np.maximum(variance[saturated], survey.fullWell)
    saturated_ids = _saturated_objects(scene.static, saturated, spec)
    return ScienceExposure(psf_field, image, variance, artifacts, saturated, bad, streak, saturated_ids)


def _science_psf_field(rng: np.random.Generator, spec: DetectorVisitSpec, config: SimulationConfig) -> PsfField:
    """Draw the visit's PSF on this detector: its ellipticity and FWHM
    gradient.
    """
    survey = config.survey
    g1, g2 = rng.normal(0.0, survey.psfEllipticity, 2)
    gx, gy = rng.normal(0.0, survey.psfFwhmGradient, 2)
    return PsfField(survey.psfProfile, spec.visit.seeing, spec.width, spec.height, beta=survey.psfMoffatBeta,
                    g1=float(g1), g2=float(g2), grad_x=float(gx), grad_y=float(gy))


def _render_science(psf_field: PsfField, scene: Scene, spec: DetectorVisitSpec, scale: float) -> np.ndarray:
    """Render the static objects at their science fluxes and the
    transients, electrons.
    """
    image = _blank_image(spec, scale)
    static = scene.static
    _render_static(image, psf_field, static, static.x, static.y, static.science_flux, scale)
    _render_transients(image, psf_field, scene.transients, scale)
    return image.array.astype(np.float64)


def _blank_image(spec: DetectorVisitSpec, scale: float) -> galsim.ImageF:
    """Return an empty GalSim image of the detector, 0-based bounds."""
    return galsim.ImageF(galsim.BoundsI(0, spec.width - 1, 0, spec.height - 1), scale=scale)


def _render_static(
    image: galsim.ImageF,
    psf_field: PsfField,
    static: StaticObjects,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    scale: float,
    *,
    edge_field: PsfField | None = None,
    edge_band: np.ndarray | None = None,
) -> None:
    """Add the static objects at positions ``x, y`` with ``flux``; those in
    ``edge_band`` take the PSF ``edge_field``.
    """
    override = _sample(edge_band, x, y) if edge_band is not None and len(x) else None
    render_sources(image, psf_field, x, y, flux, sersic_n=static.sersic_n, half_light=static.half_light,
                   q=static.q, beta=static.beta, psf_override=override, alt_psf_field=edge_field, scale=scale)


def _render_transients(image: galsim.ImageF, psf_field: PsfField, transients: Transients, scale: float) -> None:
    """Add the transients; a moving object's flux is spread along its
    trail, a stationary one is drawn once.
    """
    tr = transients
    still = ~tr.moving
    render_sources(image, psf_field, tr.x[still], tr.y[still], tr.flux[still], scale=scale, min_flux=0.1)
    moving = np.flatnonzero(tr.moving)
    for k in range(_TRAIL_STEPS):
        frac = k / (_TRAIL_STEPS - 1)
        render_sources(image, psf_field, tr.x[moving] + frac * tr.trail_x[moving],
                       tr.y[moving] + frac * tr.trail_y[moving], tr.flux[moving] / _TRAIL_STEPS, scale=scale,
                       min_flux=0.1)


def _sample(plane: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Return the value of the pixel under each position (clamped to the
    image).
    """
    h, w = plane.shape
    ix = np.clip(np.floor(x + 0.5).astype(int), 0, w - 1)
    iy = np.clip(np.floor(y + 0.5).astype(int), 0, h - 1)
    return plane[iy, ix]


def _add_satellite(
    rng: np.random.Generator,
    signal: np.ndarray,
    artifacts: ArtifactMap,
    spec: DetectorVisitSpec,
    config: SimulationConfig,
    sky: SkyBackground,
) -> np.ndarray:
    """Add a satellite trail to ``signal`` with its probability; return the
    STREAK mask plane.
    """
    acfg = config.artifacts
    streak = np.zeros(signal.shape, dtype=bool)
    if rng.random() < acfg.satelliteProbability:
        peak = rng.uniform(*acfg.satelliteSurfaceBrightness)
        sigma = seeing_pixels(spec, config) * FWHM_TO_SIGMA * rng.uniform(1.0, 2.5)
        before = signal.copy()
        add_satellite_trail(signal, artifacts, rng, peak=peak, sigma=sigma, noise=sky.noise)
        trail = signal - before
        # The pipeline's streak masking finds trails brighter than ~1 sigma
        # per pixel along their length.
        if peak > sky.noise:
            streak = trail > 0.5 * sky.noise
    return streak


def _add_sensor_artifacts(
    rng: np.random.Generator,
    detector_rng: np.random.Generator,
    image: np.ndarray,
    artifacts: ArtifactMap,
    spec: DetectorVisitSpec,
    config: SimulationConfig,
) -> np.ndarray:
    """Add cosmic rays, and the detector's hot pixels and bad column (from
    ``detector_rng``, so they persist across visits); return the BAD mask
    plane.
    """
    acfg = config.artifacts
    add_cosmic_rays(image, artifacts, rng, count=int(rng.poisson(_expected_cosmic_rays(spec, config))),
                    electrons=tuple(acfg.cosmicRayElectrons))
    n_hot = int(detector_rng.poisson(acfg.hotPixelDensity * spec.width * spec.height / 1e6))
    add_hot_pixels(image, artifacts, detector_rng, count=n_hot, electrons=tuple(acfg.hotPixelElectrons))
    bad = np.zeros(image.shape, dtype=bool)
    if detector_rng.random() < acfg.badColumnProbability:
        add_bad_column(image, artifacts, bad, detector_rng,
                       masked=detector_rng.random() < acfg.badColumnMaskedFraction)
    return bad


def _expected_cosmic_rays(spec: DetectorVisitSpec, config: SimulationConfig) -> float:
    """Return the mean number of cosmic rays on the detector in one
    exposure.
    """
    area_cm2 = spec.width * spec.height * 1e-6  # 10 um pixels
    return config.artifacts.cosmicRayRate * area_cm2 * config.survey.exposureTime


def _saturated_objects(static: StaticObjects, saturated: np.ndarray, spec: DetectorVisitSpec) -> np.ndarray:
    """Return the ids of the static objects on the detector whose peak pixel
    saturated.
    """
    peak_saturated = _sample(saturated, static.x, static.y)
    inside = (static.x >= 0) & (static.x < spec.width) & (static.y >= 0) & (static.y < spec.height)
    return static.id[peak_saturated & inside]


@dataclasses.dataclass
class TemplateExposure:
    """The warped template coadd of a detector-visit, electrons of the
    science exposure.

    Attributes
    ----------
    psf_field : `PsfField`
        The coadd's PSF.
    fwhm : `float`
        The coadd's PSF FWHM, arcsec.
    image, variance : `numpy.ndarray`
        Pixels and their variance; NaN where the coadd has no data.
    covered : `numpy.ndarray` of `bool`
        Where the coadd has data (the tract's pixel grid).
    """

    psf_field: PsfField
    fwhm: float
    image: np.ndarray
    variance: np.ndarray
    covered: np.ndarray


def simulate_template(
    rng: np.random.Generator,
    spec: DetectorVisitSpec,
    config: SimulationConfig,
    scene: Scene,
    sky: SkyBackground,
) -> TemplateExposure:
    """Render the scene as the deeper, better-seeing coadd sees it,
    misregistered and warped, ending where the tract ends.
    """
    survey, tcfg = config.survey, config.template
    covered = detector_coverage(spec)
    edge_band = _coadd_edge_band(covered)
    fwhm = min(tcfg.fwhm, tcfg.maxFwhmRatio * spec.visit.seeing)
    psf_field = PsfField(survey.psfProfile, fwhm, spec.width, spec.height, beta=survey.psfMoffatBeta)
    # Fewer, different visits at the coadd edge: a wider PSF and more noise.
    edge_field = PsfField(survey.psfProfile, fwhm * 1.2, spec.width, spec.height, beta=survey.psfMoffatBeta)
    shift = tuple(rng.normal(0.0, tcfg.astrometricScatter, 2))
    signal = _render_template(psf_field, edge_field, edge_band, scene, spec, survey.pixelScale, shift)
    signal *= 1.0 + rng.normal(0.0, tcfg.photometricScatter)
    depth = np.where(edge_band, tcfg.depthVisits / 4.0, tcfg.depthVisits)
    variance = sky.variance(signal) / depth
    image = signal + _warped_noise(rng, signal.shape, tcfg.warpCorrelation) * np.sqrt(variance)
    image[~covered] = np.nan
    variance[~covered] = np.nan
    return TemplateExposure(psf_field, fwhm, image, variance, covered)




def _coadd_edge_band(covered: np.ndarray) -> np.ndarray:
    """Return the band inside the coadd's edge where fewer visits went in."""
    if covered.all():
        return np.zeros(covered.shape, dtype=bool)
    return covered & (ndimage.distance_transform_edt(covered) <= COADD_EDGE_BAND)


def _render_template(
    psf_field: PsfField,
    edge_field: PsfField,
    edge_band: np.ndarray,
    scene: Scene,
    spec: DetectorVisitSpec,
    scale: float,
    shift: tuple[float, float],
) -> np.ndarray:
    """Render the static objects at their template fluxes and misregistered
    positions, electrons.
    """
    image = _blank_image(spec, scale)
    static = scene.static
    x = static.x + static.offset_x + shift[0]
    y = static.y + static.offset_y + shift[1]
    _render_static(image, psf_field, static, x, y, static.template_flux, scale, edge_field=edge_field,
                   edge_band=edge_band)
    return image.array.astype(np.float64)


def _warped_noise(rng: np.random.Generator, shape: tuple[int, int], correlation: float) -> np.ndarray:
    """Return unit-variance noise, correlated as warping correlates it.

    The variance plane keeps the per-pixel value and ignores the
    covariance, as the pipeline does.
    """
    noise = rng.normal(0.0, 1.0, shape)
    if correlation > 0:
        noise = ndimage.gaussian_filter(noise, correlation)
        noise /= noise.std()
    return noise
