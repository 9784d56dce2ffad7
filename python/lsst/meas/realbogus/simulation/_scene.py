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

"""What is on the sky of one detector-visit: static objects and transients.

Fluxes are in electrons of the science exposure; positions in science pixel
coordinates.  Every draw comes from the generator passed in, so a
detector-visit's scene depends only on its seed.
"""

from __future__ import annotations

__all__ = [
    "BOGUS_CLASSES",
    "REAL_CLASSES",
    "Scene",
    "StaticObjects",
    "Transients",
    "draw_scene",
    "electrons_per_njy",
    "host_offsets",
    "misregistration",
    "trails",
]

import dataclasses
import math

import numpy as np

from ._config import ArtifactConfig, RealSourceConfig, SceneConfig, SimulationConfig

# Truth classes. A detection is real if it is caused by an astrophysical
# change between template and science epochs.
REAL_CLASSES = ("snHosted", "snHostless", "variableStar", "asteroid")
BOGUS_CLASSES = (
    "dipole",
    "psfResidual",
    "saturated",
    "cosmicRay",
    "hotPixel",
    "badColumn",
    "satellite",
    "edge",
    "templateGap",
    "noise",
)

STAR, GALAXY = 0, 1
SN_HOSTED, SN_HOSTLESS, ASTEROID = 0, 1, 2
_TRANSIENT_CLASS = {SN_HOSTED: "snHosted", SN_HOSTLESS: "snHostless", ASTEROID: "asteroid"}


def electrons_per_njy(zero_point: float, exposure_time: float) -> float:
    """Electrons per nJy for a zero point (mag for 1 e-/s) and exposure.

    AB magnitudes relate to nJy by ``m = 31.4 - 2.5 log10(f)``.
    """
    zp_exposure = zero_point + 2.5 * math.log10(exposure_time)
    return 10 ** (-0.4 * (31.4 - zp_exposure))


@dataclasses.dataclass
class StaticObjects:
    """Stars and galaxies present in both template and science.

    Attributes are parallel arrays; ``science_flux`` differs from
    ``template_flux`` only for variable stars, and ``offset_x/y`` is the
    misregistration of the object in the template, pixels.
    """

    id: np.ndarray
    kind: np.ndarray
    x: np.ndarray
    y: np.ndarray
    template_flux: np.ndarray
    science_flux: np.ndarray
    sersic_n: np.ndarray
    half_light: np.ndarray
    q: np.ndarray
    beta: np.ndarray
    offset_x: np.ndarray
    offset_y: np.ndarray
    injected: np.ndarray

    def __len__(self) -> int:
        return len(self.id)

    @property
    def is_variable(self) -> np.ndarray:
        return self.science_flux != self.template_flux

    def concatenate(self, other: StaticObjects) -> StaticObjects:
        """Return these objects followed by ``other``'s."""
        return StaticObjects(**{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                                for f in dataclasses.fields(self)})


@dataclasses.dataclass
class Transients:
    """Sources present in the science image only.

    ``trail_x/y`` is the displacement over the exposure (asteroids), pixels.
    """

    id: np.ndarray
    kind: np.ndarray
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    host: np.ndarray
    trail_x: np.ndarray
    trail_y: np.ndarray
    injected: np.ndarray

    def __len__(self) -> int:
        return len(self.id)

    @property
    def truth_class(self) -> np.ndarray:
        return np.array([_TRANSIENT_CLASS[k] for k in self.kind], dtype=object)

    @property
    def moving(self) -> np.ndarray:
        """Whether each transient moves during the exposure."""
        return (self.trail_x != 0) | (self.trail_y != 0)

    def concatenate(self, other: Transients) -> Transients:
        """Return these transients followed by ``other``'s."""
        return Transients(**{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                             for f in dataclasses.fields(self)})


@dataclasses.dataclass
class Scene:
    """Everything in the sky of one detector-visit; what was injected is
    flagged (``injected``) in both parts.
    """

    static: StaticObjects
    transients: Transients
    zero_point_e: float  # electrons per nJy


def draw_scene(
    rng: np.random.Generator,
    config: SimulationConfig,
    *,
    band: str,
    width: int,
    height: int,
    margin: int = 32,
) -> Scene:
    """Draw the static sky and the transients of one detector-visit.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        Source of randomness.
    config : `SimulationConfig`
        Simulator configuration.
    band : `str`
        Band of the visit.
    width, height : `int`
        Detector size, pixels.
    margin : `int`, optional
        Objects are drawn this far beyond the detector so their light spills
        in realistically.

    Returns
    -------
    scene : `Scene`
        The static objects and the transients, in the order drawn.
    """
    survey = config.survey
    field = _Field(rng, width, height, margin, survey.pixelScale,
                   electrons_per_njy(survey.zeroPoints[band], survey.exposureTime))
    star_mag = _draw_star_magnitudes(field, config.scene, band)
    galaxies = _draw_galaxies(field, config.scene)
    static = _draw_static(field, config, star_mag, galaxies)
    hosts = _host_candidates(field, static, np.concatenate([star_mag, galaxies.mag]))
    transients = _draw_transients(field, config.reals, static, hosts, survey.exposureTime)
    return Scene(static=static, transients=transients, zero_point_e=field.e_per_njy)


@dataclasses.dataclass(frozen=True)
class _Field:
    """Where a scene's objects are drawn, and the generator they are drawn
    from.

    Attributes
    ----------
    rng : `numpy.random.Generator`
        Source of randomness.
    width, height : `int`
        Detector size, pixels.
    margin : `int`
        Static objects are drawn this far beyond the detector.
    scale : `float`
        Pixel scale, arcsec.
    e_per_njy : `float`
        Electrons per nJy of the science exposure.
    """

    rng: np.random.Generator
    width: int
    height: int
    margin: int
    scale: float
    e_per_njy: float

    @property
    def area(self) -> float:
        """Area of the detector and its margin, deg^2 (`float`)."""
        return (self.width + 2 * self.margin) * (self.height + 2 * self.margin) * (self.scale / 3600.0) ** 2

    @property
    def inner_area(self) -> float:
        """Area of the detector, deg^2 (`float`)."""
        return self.width * self.height * (self.scale / 3600.0) ** 2

    def count(self, density: float, area_deg2: float) -> int:
        """Draw a Poisson number of objects of ``density`` per deg^2."""
        return int(self.rng.poisson(density * area_deg2))

    def positions(self, n: int, pad: float) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` uniform positions, pixels, up to ``pad`` beyond the
        detector.
        """
        rng = self.rng
        return (rng.uniform(-pad, self.width - 1 + pad, n), rng.uniform(-pad, self.height - 1 + pad, n))

    def electrons(self, mag: np.ndarray) -> np.ndarray:
        """Return the electrons of AB magnitudes."""
        return 10 ** (-0.4 * (mag - 31.4)) * self.e_per_njy


@dataclasses.dataclass(frozen=True)
class _Galaxies:
    """Magnitudes, half-light radii (arcsec) and Sersic indices of
    galaxies.
    """

    mag: np.ndarray
    half_light: np.ndarray
    sersic_n: np.ndarray


def _draw_star_magnitudes(field: _Field, scene: SceneConfig, band: str) -> np.ndarray:
    """Draw the stars' magnitudes: r-band counts with a colour offset per
    star in other bands.
    """
    n_star = field.count(scene.starDensity, field.area)
    star_mag = _power_law_mags(field.rng, n_star, scene.starMagBright, scene.starMagFaint, scene.starCountSlope)
    return star_mag + field.rng.normal(0.0, scene.starColorScatter, n_star) * (band != "r")


def _draw_galaxies(field: _Field, scene: SceneConfig) -> _Galaxies:
    """Draw galaxies: counts, sizes shrinking with magnitude, disks and
    bulges.
    """
    rng = field.rng
    n_gal = field.count(scene.galaxyDensity, field.area)
    gal_mag = _power_law_mags(rng, n_gal, scene.galaxyMagBright, scene.galaxyMagFaint, scene.galaxyCountSlope)
    ref_mag = scene.galaxyMagFaint - 4.0
    half_light = (scene.galaxyHalfLightMedian * 10 ** (-0.1 * (gal_mag - ref_mag))
                  * 10 ** rng.normal(0.0, 0.15, n_gal))
    sersic_n = np.where(rng.random(n_gal) < scene.galaxyBulgeFraction, 4.0, 1.0)
    return _Galaxies(gal_mag, half_light, sersic_n)


def _draw_static(
    field: _Field, config: SimulationConfig, star_mag: np.ndarray, galaxies: _Galaxies
) -> StaticObjects:
    """Place the stars and galaxies, with their variability and their
    misregistration in the template.
    """
    rng = field.rng
    n_star, n_gal = len(star_mag), len(galaxies.mag)
    n_static = n_star + n_gal
    x, y = field.positions(n_static, field.margin)
    kind = np.concatenate([np.full(n_star, STAR), np.full(n_gal, GALAXY)])
    flux = field.electrons(np.concatenate([star_mag, galaxies.mag]))
    science_flux = _vary_stars(rng, kind, flux, config.reals)
    offset_x, offset_y = misregistration(rng, n_static, config.artifacts)
    return StaticObjects(
        id=np.arange(1, n_static + 1, dtype=np.int64),
        kind=kind,
        x=x,
        y=y,
        template_flux=flux,
        science_flux=science_flux,
        sersic_n=np.concatenate([np.zeros(n_star), galaxies.sersic_n]),
        half_light=np.concatenate([np.zeros(n_star), galaxies.half_light]),
        q=np.concatenate([np.ones(n_star), rng.uniform(0.3, 1.0, n_gal)]),
        beta=rng.uniform(0, np.pi, n_static),
        offset_x=offset_x,
        offset_y=offset_y,
        injected=np.zeros(n_static, dtype=bool),
    )


def _vary_stars(
    rng: np.random.Generator, kind: np.ndarray, flux: np.ndarray, reals: RealSourceConfig
) -> np.ndarray:
    """Return the science fluxes: variable stars change magnitude between
    the epochs.
    """
    science_flux = flux.copy()
    is_var = (kind == STAR) & (rng.random(len(flux)) < reals.variableStarFraction)
    dmag = rng.normal(0.0, reals.variableAmplitude, len(flux))
    science_flux[is_var] = flux[is_var] * 10 ** (-0.4 * dmag[is_var])
    return science_flux


def misregistration(
    rng: np.random.Generator, n: int, artifacts: ArtifactConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Return the template-to-science offsets of the static objects, pixels:
    proper motion, DCR and astrometric errors, the source of dipoles.
    """
    lo, hi = artifacts.dipoleOffset
    shifted = rng.random(n) < artifacts.dipoleFraction
    amp = np.where(shifted, rng.uniform(lo, hi, n), 0.0)
    ang = rng.uniform(0, 2 * np.pi, n)
    return amp * np.cos(ang), amp * np.sin(ang)


def _host_candidates(field: _Field, static: StaticObjects, mags: np.ndarray) -> np.ndarray:
    """Return the indices of the galaxies on the detector bright enough to
    host a supernova.
    """
    on_detector = (static.x >= 0) & (static.x < field.width) & (static.y >= 0) & (static.y < field.height)
    return np.flatnonzero((static.kind == GALAXY) & on_detector & (mags < 24.5))


def _draw_transients(
    field: _Field,
    reals: RealSourceConfig,
    static: StaticObjects,
    host_candidates: np.ndarray,
    exposure_time: float,
) -> Transients:
    """Draw the transients over the detector itself: supernovae on hosts,
    hostless transients and trailed moving objects.
    """
    rng = field.rng
    n_host = field.count(reals.snHostedDensity, field.inner_area)
    n_free = field.count(reals.snHostlessDensity, field.inner_area)
    n_ast = field.count(reals.asteroidDensity, field.inner_area)
    if len(host_candidates) == 0:
        n_host = 0
    hosts = rng.choice(host_candidates, n_host) if n_host else np.zeros(0, dtype=np.int64)
    hx, hy = host_offsets(field.rng, reals, static, hosts, field.scale)
    fx, fy = field.positions(n_free, 0)
    ax, ay = field.positions(n_ast, 0)
    n_tr = n_host + n_free + n_ast
    tmag = rng.uniform(reals.magBright, reals.magFaint, n_tr)
    trail_x, trail_y = trails(field.rng, reals, n_ast, exposure_time, field.scale)
    zeros = np.zeros(n_host + n_free)
    n_static = len(static)
    return Transients(
        id=np.arange(n_static + 1, n_static + n_tr + 1, dtype=np.int64),
        kind=np.concatenate([np.full(n_host, SN_HOSTED), np.full(n_free, SN_HOSTLESS),
                             np.full(n_ast, ASTEROID)]),
        x=np.concatenate([hx, fx, ax]),
        y=np.concatenate([hy, fy, ay]),
        flux=field.electrons(tmag),
        host=np.concatenate([static.id[hosts], np.full(n_free + n_ast, -1)]),
        trail_x=np.concatenate([zeros, trail_x]),
        trail_y=np.concatenate([zeros, trail_y]),
        injected=np.zeros(n_tr, dtype=bool),
    )


def host_offsets(
    rng: np.random.Generator, reals: RealSourceConfig, static: StaticObjects, hosts: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return supernova positions: exponential offsets from their hosts in
    units of the host's half-light radius (``scale`` arcsec per pixel).
    """
    r_off = rng.exponential(reals.hostOffsetScale, len(hosts)) * static.half_light[hosts] / scale
    a_off = rng.uniform(0, 2 * np.pi, len(hosts))
    return static.x[hosts] + r_off * np.cos(a_off), static.y[hosts] + r_off * np.sin(a_off)


def trails(
    rng: np.random.Generator, reals: RealSourceConfig, n: int, exposure_time: float, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return the displacements of moving objects over the exposure,
    pixels (``scale`` arcsec per pixel).
    """
    rate_lo, rate_hi = reals.asteroidRate
    rate = rng.uniform(rate_lo, rate_hi, n)  # deg/day
    length = rate * 3600.0 / scale * exposure_time / 86400.0
    direction = rng.uniform(0, 2 * np.pi, n)
    return length * np.cos(direction), length * np.sin(direction)


def _power_law_mags(rng: np.random.Generator, n: int, bright: float, faint: float, slope: float) -> np.ndarray:
    """Draw magnitudes from the inverse CDF of dN/dm ∝ 10^(slope m) on
    [bright, faint].
    """
    if slope == 0:
        return rng.uniform(bright, faint, n)
    lo, hi = 10 ** (slope * bright), 10 ** (slope * faint)
    return np.log10(lo + rng.random(n) * (hi - lo)) / slope
