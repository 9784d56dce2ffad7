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

"""Sources injected into a detector-visit, as real training sets are made.

`inject_sources` adds injected variable stars and bright stars to a scene's
static objects and injected supernovae (on hosts and hostless) and moving
objects to its transients, all flagged ``injected``;
`add_injected_artifacts` adds injected cosmic rays and a bad column to the
science exposure.  They draw from a generator of their own, after the
natural scene, so a detector-visit's natural sky is the same with and
without injection.  Injected sources keep `InjectionConfig.minSeparation`
from each other and from the natural transients and variable stars, so no
two real changes overlap and a detection has one cause.
"""

from __future__ import annotations

__all__ = ["add_injected_artifacts", "inject_sources"]

import dataclasses

import numpy as np

from ._artifacts import ArtifactMap, add_bad_column, add_cosmic_rays
from ._config import InjectionConfig, SimulationConfig
from ._scene import (
    ASTEROID,
    GALAXY,
    SN_HOSTED,
    SN_HOSTLESS,
    STAR,
    Scene,
    StaticObjects,
    Transients,
    electrons_per_njy,
    host_offsets,
    misregistration,
    trails,
)

# Attempts to place each injected source before giving up on it.
_TRIES = 20


def inject_sources(
    rng: np.random.Generator,
    config: SimulationConfig,
    scene: Scene,
    *,
    band: str,
    width: int,
    height: int,
    fwhm_px: float,
) -> Scene:
    """Return the scene with injected sources added.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        The injection's own generator.
    config : `SimulationConfig`
        Simulator configuration; ``config.injection`` sets the counts.
    scene : `Scene`
        The natural scene.
    band : `str`
        Band of the visit.
    width, height : `int`
        Detector size, pixels.
    fwhm_px : `float`
        Science PSF FWHM, pixels (the unit of the separation).

    Returns
    -------
    scene : `Scene`
        The natural objects followed by the injected ones.
    """
    inj = config.injection
    survey = config.survey
    e_per_njy = electrons_per_njy(survey.zeroPoints[band], survey.exposureTime)
    plan = _Plan(rng, inj, width, height, inj.minSeparation * fwhm_px, e_per_njy)
    plan.reserve_natural_changes(scene)
    next_id = int(max(scene.static.id.max(initial=0), scene.transients.id.max(initial=0))) + 1
    variables = plan.variable_stars(next_id)
    stars = plan.bright_stars(next_id + len(variables), config)
    next_id += len(variables) + len(stars)
    hosted = plan.hosted_supernovae(next_id, scene.static, config)
    hostless = plan.free_transients(next_id + len(hosted), SN_HOSTLESS, inj.hostlessPerMegapixel, config)
    movers = plan.free_transients(next_id + len(hosted) + len(hostless), ASTEROID, inj.moversPerMegapixel,
                                  config)
    static = scene.static.concatenate(variables).concatenate(stars)
    transients = scene.transients.concatenate(hosted).concatenate(hostless).concatenate(movers)
    return Scene(static=static, transients=transients, zero_point_e=scene.zero_point_e)


def add_injected_artifacts(
    rng: np.random.Generator,
    image: np.ndarray,
    artifacts: ArtifactMap,
    config: SimulationConfig,
    natural_cosmic_rays: float,
) -> None:
    """Add injected cosmic rays and, with its probability, an unmasked bad
    column to the science exposure (electrons), flagged injected.

    Parameters
    ----------
    rng : `numpy.random.Generator`
        The injection's own generator.
    image : `numpy.ndarray`
        The science exposure, electrons; changed in place.
    artifacts : `ArtifactMap`
        Where the artifacts are recorded.
    config : `SimulationConfig`
        Simulator configuration.
    natural_cosmic_rays : `float`
        The expected number of natural cosmic rays on the detector.
    """
    inj, acfg = config.injection, config.artifacts
    add_cosmic_rays(image, artifacts, rng, count=int(rng.poisson(inj.cosmicRayFactor * natural_cosmic_rays)),
                    electrons=tuple(acfg.cosmicRayElectrons), injected=True)
    if rng.random() < inj.badColumnProbability:
        bad = np.zeros(image.shape, dtype=bool)  # unmasked: its residuals are the bogus
        add_bad_column(image, artifacts, bad, rng, masked=False, injected=True)


@dataclasses.dataclass
class _Plan:
    """Places injected sources, each at least ``separation`` pixels from
    every real change placed or reserved before it.
    """

    rng: np.random.Generator
    inj: InjectionConfig
    width: int
    height: int
    separation: float
    e_per_njy: float

    def __post_init__(self) -> None:
        self._x = np.zeros(0)
        self._y = np.zeros(0)
        self._megapixels = self.width * self.height / 1e6

    def reserve_natural_changes(self, scene: Scene) -> None:
        """Keep injected sources away from the natural transients and
        variable stars.
        """
        st, tr = scene.static, scene.transients
        var = st.is_variable
        self._x = np.concatenate([tr.x + 0.5 * tr.trail_x, st.x[var]])
        self._y = np.concatenate([tr.y + 0.5 * tr.trail_y, st.y[var]])

    def count(self, per_megapixel: float) -> int:
        return int(self.rng.poisson(per_megapixel * self._megapixels))

    def place(self, x: float, y: float) -> bool:
        """Take the position if it keeps the separation; say whether it was
        taken.
        """
        if self.separation > 0 and len(self._x):
            if np.min((self._x - x) ** 2 + (self._y - y) ** 2) < self.separation**2:
                return False
        self._x = np.append(self._x, x)
        self._y = np.append(self._y, y)
        return True

    def free_positions(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw up to ``n`` positions on the detector that keep the
        separation.
        """
        xs, ys = [], []
        for _ in range(n):
            for _ in range(_TRIES):
                x, y = self.rng.uniform(0, self.width - 1), self.rng.uniform(0, self.height - 1)
                if self.place(x, y):
                    xs.append(x)
                    ys.append(y)
                    break
        return np.array(xs), np.array(ys)

    def change_fluxes(self, n: int) -> np.ndarray:
        """Draw difference fluxes (electrons), uniform in magnitude over the
        injection's range.
        """
        mag = self.rng.uniform(self.inj.magBright, self.inj.magFaint, n)
        return 10 ** (-0.4 * (mag - 31.4)) * self.e_per_njy

    def variable_stars(self, first_id: int) -> StaticObjects:
        """Stars whose science flux differs from the template's by an
        injected change of either sign.
        """
        x, y = self.free_positions(self.count(self.inj.variablesPerMegapixel))
        n = len(x)
        lo, hi = self.inj.variableStarMags
        template = 10 ** (-0.4 * (self.rng.uniform(lo, hi, n) - 31.4)) * self.e_per_njy
        change = self.change_fluxes(n)
        # A star can fade by less than its own flux only.
        sign = np.where((self.rng.random(n) < 0.5) & (change < template), -1.0, 1.0)
        return _stars(first_id, x, y, template, template + sign * change)

    def bright_stars(self, first_id: int, config: SimulationConfig) -> StaticObjects:
        """Bright non-variable stars, misregistered as natural stars are."""
        x, y = self.free_positions(self.count(self.inj.starsPerMegapixel))
        lo, hi = self.inj.starMags
        flux = 10 ** (-0.4 * (self.rng.uniform(lo, hi, len(x)) - 31.4)) * self.e_per_njy
        stars = _stars(first_id, x, y, flux, flux.copy())
        stars.offset_x, stars.offset_y = misregistration(self.rng, len(x), config.artifacts)
        return stars

    def hosted_supernovae(self, first_id: int, static: StaticObjects, config: SimulationConfig) -> Transients:
        """Supernovae on distinct natural host galaxies at realistic
        offsets.
        """
        on_detector = (static.x >= 0) & (static.x < self.width) & (static.y >= 0) & (static.y < self.height)
        mags = 31.4 - 2.5 * np.log10(np.maximum(static.template_flux / self.e_per_njy, 1e-30))
        candidates = np.flatnonzero((static.kind == GALAXY) & on_detector & (mags < 24.5) & ~static.injected)
        wanted = self.count(self.inj.hostedPerMegapixel)
        hosts, xs, ys = [], [], []
        for host in self.rng.permutation(candidates):
            if len(hosts) == wanted:
                break
            hx, hy = host_offsets(self.rng, config.reals, static, np.array([host]), config.survey.pixelScale)
            if 0 <= hx[0] < self.width and 0 <= hy[0] < self.height and self.place(float(hx[0]), float(hy[0])):
                hosts.append(host)
                xs.append(float(hx[0]))
                ys.append(float(hy[0]))
        n = len(hosts)
        return _transients(first_id, SN_HOSTED, np.array(xs), np.array(ys), self.change_fluxes(n),
                           static.id[np.array(hosts, dtype=np.int64)], np.zeros(n), np.zeros(n))

    def free_transients(self, first_id: int, kind: int, per_megapixel: float,
                        config: SimulationConfig) -> Transients:
        """Hostless transients, or moving objects trailed at the natural
        rates.
        """
        x, y = self.free_positions(self.count(per_megapixel))
        n = len(x)
        if kind == ASTEROID:
            trail_x, trail_y = trails(self.rng, config.reals, n, config.survey.exposureTime,
                                      config.survey.pixelScale)
            # The middle of the trail is where it was placed.
            x, y = x - 0.5 * trail_x, y - 0.5 * trail_y
        else:
            trail_x = trail_y = np.zeros(n)
        return _transients(first_id, kind, x, y, self.change_fluxes(n), np.full(n, -1), trail_x, trail_y)


def _stars(first_id: int, x: np.ndarray, y: np.ndarray, template: np.ndarray,
           science: np.ndarray) -> StaticObjects:
    n = len(x)
    return StaticObjects(
        id=np.arange(first_id, first_id + n, dtype=np.int64),
        kind=np.full(n, STAR),
        x=x, y=y, template_flux=template, science_flux=science,
        sersic_n=np.zeros(n), half_light=np.zeros(n), q=np.ones(n), beta=np.zeros(n),
        offset_x=np.zeros(n), offset_y=np.zeros(n), injected=np.ones(n, dtype=bool),
    )


def _transients(first_id: int, kind: int, x: np.ndarray, y: np.ndarray, flux: np.ndarray, host: np.ndarray,
                trail_x: np.ndarray, trail_y: np.ndarray) -> Transients:
    n = len(x)
    return Transients(
        id=np.arange(first_id, first_id + n, dtype=np.int64), kind=np.full(n, kind), x=x, y=y, flux=flux,
        host=np.asarray(host, dtype=np.int64), trail_x=trail_x, trail_y=trail_y,
        injected=np.ones(n, dtype=bool),
    )
