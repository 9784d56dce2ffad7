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
]

import dataclasses
import math

import numpy as np

from ._config import SimulationConfig

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

    def __len__(self) -> int:
        return len(self.id)

    @property
    def is_variable(self) -> np.ndarray:
        return self.science_flux != self.template_flux


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

    def __len__(self) -> int:
        return len(self.id)

    @property
    def truth_class(self) -> np.ndarray:
        return np.array([_TRANSIENT_CLASS[k] for k in self.kind], dtype=object)


@dataclasses.dataclass
class Scene:
    """Everything injected into one detector-visit."""

    static: StaticObjects
    transients: Transients
    zero_point_e: float  # electrons per nJy


def _power_law_mags(rng: np.random.Generator, n: int, bright: float, faint: float, slope: float) -> np.ndarray:
    # Inverse CDF of dN/dm ∝ 10^(slope m) on [bright, faint].
    if slope == 0:
        return rng.uniform(bright, faint, n)
    lo, hi = 10 ** (slope * bright), 10 ** (slope * faint)
    return np.log10(lo + rng.random(n) * (hi - lo)) / slope


def _count(rng: np.random.Generator, density: float, area_deg2: float) -> int:
    return int(rng.poisson(density * area_deg2))


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
    """
    survey, scene_cfg, reals = config.survey, config.scene, config.reals
    e_per_njy = electrons_per_njy(survey.zeroPoints[band], survey.exposureTime)
    scale = survey.pixelScale
    area = (width + 2 * margin) * (height + 2 * margin) * (scale / 3600.0) ** 2
    inner_area = width * height * (scale / 3600.0) ** 2

    def mag_to_e(m):
        return 10 ** (-0.4 * (m - 31.4)) * e_per_njy

    def positions(n, pad):
        return (rng.uniform(-pad, width - 1 + pad, n), rng.uniform(-pad, height - 1 + pad, n))

    # Stars: magnitudes in the r band with a per-star colour offset.
    n_star = _count(rng, scene_cfg.starDensity, area)
    star_mag = _power_law_mags(rng, n_star, scene_cfg.starMagBright, scene_cfg.starMagFaint,
                               scene_cfg.starCountSlope)
    star_mag = star_mag + rng.normal(0.0, scene_cfg.starColorScatter, n_star) * (band != "r")
    # Galaxies: counts, sizes shrinking with magnitude, disks and bulges.
    n_gal = _count(rng, scene_cfg.galaxyDensity, area)
    gal_mag = _power_law_mags(rng, n_gal, scene_cfg.galaxyMagBright, scene_cfg.galaxyMagFaint,
                              scene_cfg.galaxyCountSlope)
    ref_mag = scene_cfg.galaxyMagFaint - 4.0
    half_light = (scene_cfg.galaxyHalfLightMedian * 10 ** (-0.1 * (gal_mag - ref_mag))
                  * 10 ** rng.normal(0.0, 0.15, n_gal))
    sersic_n = np.where(rng.random(n_gal) < scene_cfg.galaxyBulgeFraction, 4.0, 1.0)
    n_static = n_star + n_gal
    sx, sy = positions(n_static, margin)
    kind = np.concatenate([np.full(n_star, STAR), np.full(n_gal, GALAXY)])
    mags = np.concatenate([star_mag, gal_mag])
    flux = mag_to_e(mags)
    science_flux = flux.copy()
    # Variable stars: a magnitude change between the epochs.
    is_var = (kind == STAR) & (rng.random(n_static) < reals.variableStarFraction)
    dmag = rng.normal(0.0, reals.variableAmplitude, n_static)
    science_flux[is_var] = flux[is_var] * 10 ** (-0.4 * dmag[is_var])
    # Misregistration between template and science (proper motion, DCR,
    # astrometric error): the source of dipoles.
    lo, hi = config.artifacts.dipoleOffset
    shifted = rng.random(n_static) < config.artifacts.dipoleFraction
    amp = np.where(shifted, rng.uniform(lo, hi, n_static), 0.0)
    ang = rng.uniform(0, 2 * np.pi, n_static)
    static = StaticObjects(
        id=np.arange(1, n_static + 1, dtype=np.int64),
        kind=kind,
        x=sx,
        y=sy,
        template_flux=flux,
        science_flux=science_flux,
        sersic_n=np.concatenate([np.zeros(n_star), sersic_n]),
        half_light=np.concatenate([np.zeros(n_star), half_light]),
        q=np.concatenate([np.ones(n_star), rng.uniform(0.3, 1.0, n_gal)]),
        beta=rng.uniform(0, np.pi, n_static),
        offset_x=amp * np.cos(ang),
        offset_y=amp * np.sin(ang),
    )

    # Transients, drawn over the detector itself.
    n_host = _count(rng, reals.snHostedDensity, inner_area)
    n_free = _count(rng, reals.snHostlessDensity, inner_area)
    n_ast = _count(rng, reals.asteroidDensity, inner_area)
    gal_idx = np.flatnonzero((kind == GALAXY) & (sx >= 0) & (sx < width) & (sy >= 0) & (sy < height)
                             & (mags < 24.5))
    if len(gal_idx) == 0:
        n_host = 0
    hosts = rng.choice(gal_idx, n_host) if n_host else np.zeros(0, dtype=np.int64)
    r_off = rng.exponential(reals.hostOffsetScale, n_host) * static.half_light[hosts] / scale
    a_off = rng.uniform(0, 2 * np.pi, n_host)
    hx = static.x[hosts] + r_off * np.cos(a_off)
    hy = static.y[hosts] + r_off * np.sin(a_off)
    fx, fy = positions(n_free, 0)
    ax, ay = positions(n_ast, 0)
    n_tr = n_host + n_free + n_ast
    tmag = rng.uniform(reals.magBright, reals.magFaint, n_tr)
    rate_lo, rate_hi = reals.asteroidRate
    rate = rng.uniform(rate_lo, rate_hi, n_ast)  # deg/day
    length = rate * 3600.0 / scale * survey.exposureTime / 86400.0
    direction = rng.uniform(0, 2 * np.pi, n_ast)
    zeros = np.zeros(n_host + n_free)
    transients = Transients(
        id=np.arange(n_static + 1, n_static + n_tr + 1, dtype=np.int64),
        kind=np.concatenate([np.full(n_host, SN_HOSTED), np.full(n_free, SN_HOSTLESS),
                             np.full(n_ast, ASTEROID)]),
        x=np.concatenate([hx, fx, ax]),
        y=np.concatenate([hy, fy, ay]),
        flux=mag_to_e(tmag),
        host=np.concatenate([static.id[hosts], np.full(n_free + n_ast, -1)]),
        trail_x=np.concatenate([zeros, length * np.cos(direction)]),
        trail_y=np.concatenate([zeros, length * np.sin(direction)]),
    )
    return Scene(static=static, transients=transients, zero_point_e=e_per_njy)
