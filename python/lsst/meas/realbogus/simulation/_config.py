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

"""Configuration of the DC2-like repository simulator.

Every number the simulator uses is a field here; the defaults and their
sources are tabulated in ``doc/simulation.rst``.  Densities are per square
degree and rates per detector-visit are scaled by the simulated detector area,
so the presets differ mainly in how many detector-visits they make and how
large the detectors are.
"""

from __future__ import annotations

__all__ = [
    "ArtifactConfig",
    "DetectionConfig",
    "InjectionConfig",
    "PRESETS",
    "RealSourceConfig",
    "SceneConfig",
    "SimulationConfig",
    "SurveyConfig",
    "TemplateConfig",
    "FWHM_PIXEL_RANGE",
    "MAGNITUDE_RANGE",
    "MAX_DETECTOR_VISITS",
    "RATE_FACTOR",
    "make_config",
]

import math
import re
from collections.abc import Iterator
from typing import Any

from lsst.pex.config import ChoiceField, Config, ConfigField, DictField, Field, ListField, RangeField

from ..errors import UnknownPresetError
from ._instrument import PHYSICAL_FILTERS

# Per-band photometry of a 30 s LSST visit (SMTN-002): zero point in AB mag
# for 1 e-/s and dark-sky brightness in mag/arcsec^2.
_ZERO_POINTS = {"u": 26.52, "g": 28.51, "r": 28.36, "i": 28.17, "z": 27.78, "y": 26.82}
_SKY_BRIGHTNESS = {"u": 23.05, "g": 22.25, "r": 21.2, "i": 20.46, "z": 19.61, "y": 18.6}


class SurveyConfig(Config):
    """Visits, detectors and observing conditions."""

    tracts = ListField[int](doc="Tracts of skymap DC2 to observe.", default=[3080, 4024])
    visitsPerTract = RangeField[int](doc="Visits pointed at each tract.", default=12, min=1)
    visitsByTract = DictField[int, int](
        doc="Visits of the tracts named here, in place of visitsPerTract (e.g. {3080: 8}: a training tract "
        "made by injection needs fewer visits than the natural-mix test tract).", default={},
    )
    detectorsPerVisit = RangeField[int](
        doc="Detectors read out per visit (a compact block of the focal plane).", default=4, min=1, max=189
    )
    detectorWidth = RangeField[int](
        doc="Simulated detector width in pixels (imSim ITL: 4072).", default=1024, min=64
    )
    detectorHeight = RangeField[int](
        doc="Simulated detector height in pixels (imSim ITL: 4000).", default=1024, min=64
    )
    detectorGap = RangeField[int](doc="Gap between detectors in the focal plane, pixels.", default=50, min=0)
    pixelScale = RangeField[float](doc="Pixel scale, arcsec/pixel (LSSTCam: 0.2).", default=0.2, min=0.0)
    bands = ListField[str](doc="Bands observed, cycled over visits.", default=["g", "r", "i"])
    exposureTime = RangeField[float](doc="Exposure time per visit, s (DC2: 30).", default=30.0, min=0.0)
    gain = RangeField[float](doc="Gain, e-/ADU (DC2: 0.7).", default=0.7, min=0.0)
    readNoise = RangeField[float](doc="Read noise, e- (DC2: 7 ADU = 4.9 e-).", default=4.9, min=0.0)
    fullWell = RangeField[float](doc="Full well; bleeds above this, e- (imSim: 1e5).", default=1.0e5, min=0.0)
    seeingMedian = RangeField[float](doc="Median delivered FWHM, arcsec.", default=0.83, min=0.0)
    seeingScatter = RangeField[float](doc="Log-normal scatter of the FWHM, dex.", default=0.09, min=0.0)
    seeingMin = RangeField[float](doc="Smallest FWHM drawn, arcsec.", default=0.5, min=0.0)
    seeingMax = RangeField[float](doc="Largest FWHM drawn, arcsec.", default=1.3, min=0.0)
    psfProfile = ChoiceField[str](
        doc="Atmospheric PSF profile.",
        allowed={
            "gaussian": "Gaussian.",
            "moffat": "Moffat with beta = psfMoffatBeta.",
            "kolmogorov": "Kolmogorov (imSim's atmosphere without the outer scale).",
        },
        default="kolmogorov",
    )
    psfMoffatBeta = RangeField[float](doc="Moffat beta.", default=3.5, min=1.1)
    psfEllipticity = RangeField[float](doc="RMS PSF ellipticity (each component).", default=0.02, min=0.0)
    psfFwhmGradient = RangeField[float](
        doc="RMS fractional FWHM change across a detector (the PSF varies; the matching kernel does not).",
        default=0.02,
        min=0.0,
    )
    edgePointingFraction = RangeField[float](
        doc="Fraction of visits pointed at the tract boundary, so the template coverage ends on the "
        "detector (DC2 templates were built per tract).",
        default=0.15,
        min=0.0,
        max=1.0,
    )
    startMjd = Field[float](doc="MJD of the first visit.", default=60800.1)
    zeroPoints = DictField[str, float](
        doc="Zero points by band, AB mag for 1 e-/s (SMTN-002).", default=dict(_ZERO_POINTS)
    )
    skyBrightness = DictField[str, float](
        doc="Dark-sky brightness by band, mag/arcsec^2 (SMTN-002).", default=dict(_SKY_BRIGHTNESS)
    )
    physicalFilters = DictField[str, str](
        doc="Physical filter name by band (imSim).", default=dict(PHYSICAL_FILTERS)
    )
    skyScatter = RangeField[float](
        doc="Log-normal scatter of the sky level over visits (moon, airmass), dex.", default=0.1, min=0.0
    )

    def visits_of_tract(self, tract: int) -> int:
        """The number of visits pointed at ``tract``: ``visitsByTract``
        where it names the tract, else ``visitsPerTract``.
        """
        return self.visitsByTract.get(tract, self.visitsPerTract)

    def validate(self) -> None:
        super().validate()
        if self.seeingMin > self.seeingMax:
            raise ValueError(f"seeingMin ({self.seeingMin}) > seeingMax ({self.seeingMax}).")
        for b in self.bands:
            for name, table in (("zeroPoints", self.zeroPoints), ("skyBrightness", self.skyBrightness),
                                ("physicalFilters", self.physicalFilters)):
                if b not in table:
                    raise ValueError(f"band {b!r} has no entry in survey.{name}.")
        for tract in self.tracts:
            if tract not in (3080, 4024):
                raise ValueError(f"tract {tract} is not simulated; choose from 3080, 4024.")


class SceneConfig(Config):
    """The static sky: stars and galaxies."""

    starDensity = RangeField[float](
        doc="Stars per deg^2 brighter than starMagFaint (r band; high-latitude Galfast-like).",
        default=2.0e4,
        min=0.0,
    )
    starMagBright = Field[float](doc="Brightest star, AB mag.", default=14.0)
    starMagFaint = Field[float](doc="Faintest star, AB mag.", default=26.0)
    starCountSlope = RangeField[float](doc="d log10 N / dm for stars.", default=0.15, min=0.0)
    galaxyDensity = RangeField[float](
        doc="Galaxies per deg^2 brighter than galaxyMagFaint (deep counts: ~1.8e5 to r=26).",
        default=1.8e5,
        min=0.0,
    )
    galaxyMagBright = Field[float](doc="Brightest galaxy, AB mag.", default=17.0)
    galaxyMagFaint = Field[float](doc="Faintest galaxy, AB mag.", default=26.0)
    galaxyCountSlope = RangeField[float](doc="d log10 N / dm for galaxies.", default=0.33, min=0.0)
    galaxyHalfLightMedian = RangeField[float](
        doc="Median half-light radius at galaxyMagFaint - 4 mag, arcsec; scales as 10^(-0.1 dm).",
        default=0.6,
        min=0.0,
    )
    galaxyBulgeFraction = RangeField[float](
        doc="Fraction of galaxies drawn as n=4 bulges (the rest n=1 disks).", default=0.3, min=0.0, max=1.0
    )
    starColorScatter = RangeField[float](doc="Per-band magnitude scatter of stars (colours).", default=0.4,
                                          min=0.0)


class TemplateConfig(Config):
    """The warped coadd template."""

    depthVisits = RangeField[float](
        doc="Effective number of visits in the coadd: noise falls as 1/sqrt(depthVisits) "
        "(DP0.2: best-seeing third of 5 yr).",
        default=20.0,
        min=1.0,
    )
    fwhm = RangeField[float](doc="Coadd PSF FWHM, arcsec.", default=0.7, min=0.0)
    maxFwhmRatio = RangeField[float](
        doc="Template FWHM is capped at this fraction of the science FWHM so the template is "
        "always the image convolved (AP's default convolution direction).",
        default=0.85,
        min=0.1,
        max=1.0,
    )
    warpCorrelation = RangeField[float](
        doc="Sigma (pixels) of the Gaussian smoothing that mimics warping-correlated noise; the variance "
        "plane ignores it, as in the real pipeline.",
        default=0.5,
        min=0.0,
    )
    astrometricScatter = RangeField[float](
        doc="RMS per-detector template-to-science misregistration, pixels.", default=0.02, min=0.0
    )
    photometricScatter = RangeField[float](
        doc="RMS relative flux-scale error of the template (PSF-shaped residuals of bright stars).",
        default=0.005,
        min=0.0,
    )
    psfModelError = RangeField[float](
        doc="RMS fractional error of the science PSF FWHM used to fit the matching kernel.",
        default=0.015,
        min=0.0,
    )


class RealSourceConfig(Config):
    """Astrophysical changes between template and science: the 'real' class."""

    snHostedDensity = RangeField[float](
        doc="Supernovae on host galaxies per deg^2 per visit (WFD: ~20/deg^2; raised so reals are "
        "~5 % of detections, as in the DL dataset).",
        default=130.0,
        min=0.0,
    )
    snHostlessDensity = RangeField[float](doc="Hostless transients per deg^2 per visit.", default=35.0,
                                          min=0.0)
    variableStarFraction = RangeField[float](
        doc="Fraction of stars that vary between template and science (DP0.2: ~10 %).", default=0.1,
        min=0.0, max=1.0,
    )
    variableAmplitude = RangeField[float](doc="RMS magnitude change of a variable star.", default=0.3,
                                          min=0.0)
    asteroidDensity = RangeField[float](doc="Moving objects per deg^2 per visit.", default=65.0, min=0.0)
    asteroidRate = ListField[float](doc="Range of apparent rates, deg/day (main belt ~0.25).",
                                    default=[0.1, 1.0])
    magBright = Field[float](doc="Brightest transient, AB mag.", default=19.0)
    magFaint = Field[float](
        doc="Faintest transient, AB mag: below the 5 sigma limit, so detection is incomplete.",
        default=25.5,
    )
    hostOffsetScale = RangeField[float](doc="SN offset from host centre in half-light radii (exp. scale).",
                                        default=1.0, min=0.0)


class ArtifactConfig(Config):
    """Instrumental and processing artifacts: the 'bogus' classes.

    Densities are per deg^2 per detector-visit; probabilities are per
    detector-visit; fractions are of static objects.
    """

    dipoleFraction = RangeField[float](
        doc="Fraction of static objects misregistered between template and science (proper motion, "
        "DCR, astrometric errors) by dipoleOffset pixels.",
        default=0.12,
        min=0.0,
        max=1.0,
    )
    dipoleOffset = ListField[float](doc="Range of misregistration offsets, pixels.", default=[0.15, 0.6])
    cosmicRayRate = RangeField[float](
        doc="Cosmic rays per cm^2 per s left after repair (imSim CTIO rate 0.012; raised for the "
        "DC2-like artifact mix).",
        default=0.05,
        min=0.0,
    )
    cosmicRayElectrons = ListField[float](doc="Range of CR deposit per pixel of track, e-.",
                                          default=[300.0, 5000.0])
    hotPixelDensity = RangeField[float](
        doc="Hot pixels per Mpx missing from the defect mask (fixed per detector; LSSTCam has <= 10 "
        "masked defects per 1 Mpx amplifier).",
        default=3.0,
        min=0.0,
    )
    hotPixelElectrons = ListField[float](doc="Range of hot-pixel excess, e-.", default=[200.0, 5000.0])
    badColumnProbability = RangeField[float](
        doc="Probability that a detector has a bad column (fixed per detector).", default=0.3, min=0.0,
        max=1.0,
    )
    badColumnMaskedFraction = RangeField[float](
        doc="Fraction of bad columns in the defect mask (BAD); the rest leave residuals.", default=0.5,
        min=0.0, max=1.0,
    )
    satelliteProbability = RangeField[float](
        doc="Probability that a detector-visit has a satellite trail.", default=0.05, min=0.0, max=1.0
    )
    satelliteSurfaceBrightness = ListField[float](doc="Range of trail brightness, e- per pixel along "
                                                  "the trail.", default=[200.0, 3000.0])
    edgeWidth = RangeField[int](
        doc="Border (pixels) where the template convolution runs off the image: masked EDGE.", default=10,
        min=0,
    )


class InjectionConfig(Config):
    """Sources injected into the detector-visits of some tracts, the way real
    training sets are made (source_injection for DMTN-337, GOTO's automated
    sets): many more reals per detector-visit than the sky holds, over a flux
    range reaching below the detection threshold, and bright stars and
    cosmic rays that add bogus detections of the same physics.

    Injection draws from a generator of its own, after everything else, so a
    detector-visit's natural sky is the same with and without it; every
    detection an injected source causes is flagged ``injected`` in
    ``dia_source_truth`` and ``rb_triplets``, so the non-injected rows are an
    exact natural-mix sample of the same data.  Counts are per megapixel of
    detector (an LSSTCam CCD has 16.3).
    """

    tracts = ListField[int](doc="Tracts whose detector-visits receive injected sources ([]: none).",
                            default=[])
    hostedPerMegapixel = RangeField[float](
        doc="Supernovae on host galaxies (hosts brighter than 24.5 mag, one each, at exponential offsets "
        "of reals.hostOffsetScale half-light radii).", default=220.0, min=0.0)
    hostlessPerMegapixel = RangeField[float](doc="Hostless transients.", default=150.0, min=0.0)
    moversPerMegapixel = RangeField[float](
        doc="Moving objects, trailed at reals.asteroidRate.", default=80.0, min=0.0)
    variablesPerMegapixel = RangeField[float](
        doc="Variable stars: stars whose science flux differs from the template's by an injected amount.",
        default=140.0, min=0.0)
    magBright = Field[float](doc="Brightest injected change (difference flux), AB mag.", default=19.0)
    magFaint = Field[float](
        doc="Faintest injected change, AB mag: below the 5 sigma limit, so some are not detected.",
        default=25.5)
    variableStarMags = ListField[float](
        doc="Range of the template magnitudes of injected variable stars.", default=[17.0, 23.0])
    starsPerMegapixel = RangeField[float](
        doc="Bright non-variable stars, some misregistered as natural ones are (artifacts.dipoleFraction): "
        "PSF-residual, dipole and saturated bogus.", default=60.0, min=0.0)
    starMags = ListField[float](doc="Range of the injected stars' magnitudes.", default=[14.0, 21.0])
    cosmicRayFactor = RangeField[float](
        doc="Cosmic rays injected, as a multiple of the natural rate (artifacts.cosmicRayRate).",
        default=4.0, min=0.0)
    badColumnProbability = RangeField[float](
        doc="Probability that a detector-visit gets an injected, unmasked bad column.", default=0.5,
        min=0.0, max=1.0)
    minSeparation = RangeField[float](
        doc="Smallest distance between injected sources, and from natural transients, in science PSF "
        "FWHM: injected sources never overlap each other.", default=4.0, min=0.0)


class DetectionConfig(Config):
    """Detection and measurement on the difference image."""

    threshold = RangeField[float](doc="Detection threshold in sigma of the PSF-filtered image.",
                                  default=5.0, min=0.0)
    minPixels = RangeField[int](doc="Minimum connected pixels above threshold.", default=3, min=1)
    stampSize = RangeField[int](doc="Measurement stamp size, pixels (odd).", default=15, min=5)
    matchRadius = RangeField[float](doc="Truth-matching radius in units of the PSF FWHM.", default=1.0,
                                    min=0.0)
    realMinSignificance = RangeField[float](
        doc="A transient within the match radius labels a detection real only if its true difference "
        "flux is at least this many sigma of the measured flux error.",
        default=2.0,
        min=0.0,
    )
    maxSources = RangeField[int](doc="Cap on detections per detector-visit (AP refuses > 1000).",
                                 default=2000, min=1)


class SimulationConfig(Config):
    """Configuration of `lsst.meas.realbogus.simulation.Simulator`."""

    seed = Field[int](doc="Master random seed; every detector-visit derives its own from it.", default=1)
    run = Field[str](doc="RUN collection the datasets are written to.", default="DC2/sim")
    survey = ConfigField[SurveyConfig](doc="Visits, detectors and conditions.")
    scene = ConfigField[SceneConfig](doc="Stars and galaxies.")
    template = ConfigField[TemplateConfig](doc="The template coadd.")
    reals = ConfigField[RealSourceConfig](doc="Real sources.")
    artifacts = ConfigField[ArtifactConfig](doc="Bogus sources.")
    detection = ConfigField[DetectionConfig](doc="Detection and measurement.")
    injection = ConfigField[InjectionConfig](doc="Injected sources (training worlds).")
    compressImages = Field[bool](
        doc="Compress the image and variance planes (lsst.images' lossless GZIP_2, one tile per row). "
        "False writes them uncompressed (masks stay compressed): 5x faster to write and 6x to read back "
        "(benchmarks/triplet_throughput.py), 1.6x the disk.",
        default=False,
    )

    def validate(self) -> None:
        super().validate()
        for name in ("artifacts.dipoleOffset", "artifacts.cosmicRayElectrons", "artifacts.hotPixelElectrons",
                     "artifacts.satelliteSurfaceBrightness", "reals.asteroidRate",
                     "injection.variableStarMags", "injection.starMags"):
            values = list(_get(self, name))
            if len(values) != 2:
                raise ValueError(f"{name} must be a range [lo, hi] of two numbers; got {values}.")
        _check_simulable(self)
        for name in ("dipoleOffset", "cosmicRayElectrons", "hotPixelElectrons", "satelliteSurfaceBrightness"):
            lo, hi = getattr(self.artifacts, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"artifacts.{name} must be a range [lo, hi] with 0 <= lo <= hi; got "
                                 f"[{lo}, {hi}].")
        lo, hi = self.reals.asteroidRate
        if not 0 <= lo <= hi:
            raise ValueError(f"reals.asteroidRate must be 0 <= lo <= hi; got [{lo}, {hi}].")
        if self.reals.magBright > self.reals.magFaint:
            raise ValueError("reals.magBright must be brighter (smaller) than reals.magFaint.")
        if self.detection.stampSize % 2 == 0:
            raise ValueError(f"detection.stampSize must be odd; got {self.detection.stampSize}.")
        inj = self.injection
        if inj.magBright > inj.magFaint:
            raise ValueError("injection.magBright must be brighter (smaller) than injection.magFaint.")
        for name in ("variableStarMags", "starMags"):
            values = list(getattr(inj, name))
            if len(values) != 2 or values[0] > values[1]:
                raise ValueError(f"injection.{name} must be a range [bright, faint]; got {values}.")
        unknown = sorted(set(inj.tracts) - set(self.survey.tracts))
        if unknown:
            raise ValueError(f"injection.tracts {unknown} are not among survey.tracts {list(self.survey.tracts)}.")


# -- Values a detector-visit can be simulated with -------------------------------------
# Every field was set to 0, -1, NaN, inf, 1e30, 1e-30, [], ... (tests/test_rbSimulate.py,
# doc/reliability.rst): these are the checks that turn the tracebacks found into one-line refusals.

_RUN_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]+(/[A-Za-z0-9_+=,.@-]+)*")
"""A RUN collection name that is also a safe relative path in the
datastore (no empty, '.' or '..' component, no spaces)."""

MAGNITUDE_RANGE = (0.0, 40.0)
"""AB magnitudes (and zero points, sky brightness) outside this range are
refused: 1e30 overflows, and a 0 mag star is already 10**11 e-."""

FWHM_PIXEL_RANGE = (0.5, 15.0)
"""PSF FWHMs, in pixels, that GalSim draws in bounded time and memory: at
0.17 px one 96x96 detector-visit took more than 15 minutes, at 50 px
3.6 GB; at 15 px 1.4 s and 0.6 GB."""

MAX_DETECTOR_VISITS = 200_000
"""Most detector-visits a plan may have (``survey.visitsPerTract *
survey.detectorsPerVisit`` per tract): planning 165,000 took 60 s and
0.3 GB here, and time and memory grow linearly (1e8 visits would plan for
days before anything is written). DMTN-272's 183,750 triplets are about
1,600 detector-visits of the train preset."""

RATE_FACTOR = 1000.0
"""Densities and rates may be at most this many times their defaults
(1e30 made Poisson draws fail; far below that a detector-visit would take
days)."""

_MAGNITUDES = ("scene.starMagBright", "scene.starMagFaint", "scene.galaxyMagBright", "scene.galaxyMagFaint",
               "reals.magBright", "reals.magFaint", "injection.magBright", "injection.magFaint",
               "injection.variableStarMags", "injection.starMags", "survey.zeroPoints",
               "survey.skyBrightness")
_RATES = ("scene.starDensity", "scene.galaxyDensity", "reals.snHostedDensity", "reals.snHostlessDensity",
          "reals.asteroidDensity", "artifacts.cosmicRayRate", "artifacts.hotPixelDensity",
          "injection.hostedPerMegapixel", "injection.hostlessPerMegapixel", "injection.moversPerMegapixel",
          "injection.variablesPerMegapixel", "injection.starsPerMegapixel", "injection.cosmicRayFactor")
# RMS fractions drawn from a normal distribution: beyond 0.1 a draw of a
# shear >= 1, or a FWHM <= 0, stops being astronomically unlikely.
_RMS_FRACTIONS = ("survey.psfEllipticity", "survey.psfFwhmGradient", "template.psfModelError")
_UPPER_BOUNDS = {"survey.exposureTime": (3600.0, "s"), "survey.skyScatter": (1.0, "dex"),
                 "template.warpCorrelation": (10.0, "pixels")}


def _get(config: Config, dotted: str) -> Any:
    target = config
    for part in dotted.split("."):
        target = getattr(target, part)
    return target


def _default(config: Config, dotted: str) -> Any:
    *path, name = dotted.split(".")
    return _get(config, ".".join(path))._fields[name].default if path else config._fields[name].default


def _numbers(config: Config, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted name, value) of every number of a config, including the items
    of list and dict fields.
    """
    for name in config._fields:
        value = getattr(config, name)
        dotted = prefix + name
        if isinstance(value, Config):
            yield from _numbers(value, dotted + ".")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield dotted, value
        elif hasattr(value, "items"):
            for key, item in value.items():
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    yield f"{dotted}[{key!r}]", item
        elif isinstance(value, (list, tuple)) or hasattr(value, "__len__") and not isinstance(value, str):
            for i, item in enumerate(value):
                if isinstance(item, (int, float)) and not isinstance(item, bool):
                    yield f"{dotted}[{i}]", item


def _check_simulable(config: SimulationConfig) -> None:
    """Refuse, with one line, the values that validate field by field but
    cannot be simulated.

    Raises
    ------
    ValueError
        Raised for the first such value.
    """
    for name, value in _numbers(config):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {value}.")
    if config.seed < 0:
        raise ValueError(f"seed must be >= 0; got {config.seed}.")
    if not _RUN_NAME.fullmatch(config.run) or any(part in (".", "..") for part in config.run.split("/")):
        raise ValueError(f"run must be a RUN collection name such as DC2/sim (letters, digits, _+=,.@- and / "
                         f"between non-empty parts, no '.' or '..'); got {config.run!r}.")
    survey = config.survey
    if not survey.tracts:
        raise ValueError("survey.tracts is empty; give at least one of 3080, 4024.")
    if len(set(survey.tracts)) != len(survey.tracts):
        raise ValueError(f"survey.tracts {list(survey.tracts)} names a tract twice.")
    tracts = sorted(survey.tracts)
    for tract, visits in survey.visitsByTract.items():
        if tract not in tracts:
            raise ValueError(f"survey.visitsByTract names tract {tract}, which survey.tracts {tracts} lacks.")
        if visits < 1:
            raise ValueError(f"survey.visitsByTract[{tract}] must be >= 1; got {visits}.")
    visits = {tract: survey.visits_of_tract(tract) for tract in tracts}
    if len(tracts) > 1 and max(visits.values()) > 1000 * min(b - a for a, b in zip(tracts, tracts[1:])):
        raise ValueError(f"{max(visits.values())} visits of a tract are too many: visit ids are "
                         "tract * 1000 + i, and those of two tracts would collide.")
    planned = sum(visits.values()) * survey.detectorsPerVisit
    if planned > MAX_DETECTOR_VISITS:
        raise ValueError(f"{len(tracts)} tract(s) of {'+'.join(map(str, visits.values()))} visits of "
                         f"{survey.detectorsPerVisit} detectors are {planned:,} detector-visits, more than the "
                         f"{MAX_DETECTOR_VISITS:,} one world may plan; simulate several worlds (other seeds or "
                         "runs) instead.")
    if not survey.bands:
        raise ValueError("survey.bands is empty; give at least one band, e.g. ['r'].")
    for band in survey.bands:
        if band not in PHYSICAL_FILTERS:
            raise ValueError(f"survey.bands: unknown band {band!r}; choose from "
                             f"{', '.join(PHYSICAL_FILTERS)}.")
        if band in survey.physicalFilters and survey.physicalFilters[band] != PHYSICAL_FILTERS[band]:
            raise ValueError(f"survey.physicalFilters[{band!r}] must be {PHYSICAL_FILTERS[band]!r} (the "
                             f"filter the instrument registers); got {survey.physicalFilters[band]!r}.")
    if survey.pixelScale <= 0:
        raise ValueError(f"survey.pixelScale must be > 0 arcsec/pixel; got {survey.pixelScale}.")
    if survey.exposureTime <= 0:
        raise ValueError(f"survey.exposureTime must be > 0 s; got {survey.exposureTime}.")
    if survey.psfProfile == "moffat" and survey.psfMoffatBeta <= 1.1:
        raise ValueError("survey.psfMoffatBeta must be > 1.1 (GalSim draws only truncated Moffats below); "
                         f"got {survey.psfMoffatBeta}.")
    lo, hi = FWHM_PIXEL_RANGE
    template_low = min(config.template.fwhm, config.template.maxFwhmRatio * survey.seeingMin)
    for name, fwhm in (("survey.seeingMin", survey.seeingMin), ("survey.seeingMax", survey.seeingMax),
                       ("template.fwhm", config.template.fwhm),
                       ("template.maxFwhmRatio * survey.seeingMin", template_low)):
        pixels = fwhm / survey.pixelScale
        if not lo <= pixels <= hi:
            raise ValueError(f"{name} is a PSF FWHM of {pixels:.3g} pixels at survey.pixelScale="
                             f"{survey.pixelScale}; it must be {lo} to {hi} pixels "
                             f"({lo * survey.pixelScale:.3g} to {hi * survey.pixelScale:.3g} arcsec).")
    for name in _MAGNITUDES:
        value = _get(config, name)
        values = list(value.values()) if hasattr(value, "values") else (
            list(value) if hasattr(value, "__len__") else [value])
        for item in values:
            if not MAGNITUDE_RANGE[0] <= item <= MAGNITUDE_RANGE[1]:
                raise ValueError(f"{name} must be (a) magnitude(s) from {MAGNITUDE_RANGE[0]:g} to "
                                 f"{MAGNITUDE_RANGE[1]:g}; got {item}.")
    for kind in ("star", "galaxy"):
        bright, faint = getattr(config.scene, f"{kind}MagBright"), getattr(config.scene, f"{kind}MagFaint")
        if bright > faint:
            raise ValueError(f"scene.{kind}MagBright ({bright}) must be brighter (smaller) than "
                             f"scene.{kind}MagFaint ({faint}).")
        slope = getattr(config.scene, f"{kind}CountSlope")
        if slope != 0 and not 0.01 <= slope <= 1.0:
            raise ValueError(f"scene.{kind}CountSlope must be 0 or from 0.01 to 1 (d log10 N / dm); "
                             f"got {slope}.")
    for name in _RATES:
        value, limit = _get(config, name), RATE_FACTOR * _default(config, name)
        if value > limit:
            raise ValueError(f"{name}={value:g} is more than {RATE_FACTOR:g} times its default "
                             f"({limit:g} at most).")
    for name in _RMS_FRACTIONS:
        if _get(config, name) > 0.1:
            raise ValueError(f"{name} must be at most 0.1 (an RMS fraction); got {_get(config, name)}.")
    for name, (limit, unit) in _UPPER_BOUNDS.items():
        if _get(config, name) > limit:
            raise ValueError(f"{name} must be at most {limit:g} {unit}; got {_get(config, name)}.")


def _preset_ci(config: SimulationConfig) -> None:
    # Seconds: a handful of small detector-visits. Transient and artifact
    # rates are raised (as a fake-injection run would) so that a test
    # repository holds reals and most bogus classes.
    config.survey.visitsPerTract = 4
    config.survey.detectorsPerVisit = 2
    config.survey.detectorWidth = 320
    config.survey.detectorHeight = 320
    config.survey.bands = ["r"]
    config.survey.edgePointingFraction = 0.25
    config.reals.snHostedDensity *= 6
    config.reals.snHostlessDensity *= 6
    config.reals.asteroidDensity *= 6
    config.artifacts.cosmicRayRate *= 4
    config.artifacts.hotPixelDensity *= 4
    config.artifacts.satelliteProbability = 0.25


def _preset_demo(config: SimulationConfig) -> None:
    # A few minutes on two cores. Tract 3080 is a small training world made
    # by injection (30 visits, ~24,000 labelled triplets, 70 % real: the
    # learning curve passes 0.89 purity at 16k and climbs to 0.94 at 64k),
    # tract 4024 the natural-mix test tract (24 visits, ~900 detections).
    config.survey.visitsPerTract = 24
    config.survey.visitsByTract = {3080: 30}
    config.survey.detectorsPerVisit = 6
    config.survey.detectorWidth = 512
    config.survey.detectorHeight = 512
    config.injection.tracts = [3080]


def _preset_dl(config: SimulationConfig) -> None:
    # On the order of DL dataset v0.1.2 (183,750 triplets, ~5 % real): run
    # with -j on a large machine.
    config.survey.visitsPerTract = 300
    config.survey.detectorsPerVisit = 9
    config.survey.detectorWidth = 1024
    config.survey.detectorHeight = 1024
    config.survey.bands = ["u", "g", "r", "i", "z", "y"]


def _preset_train(config: SimulationConfig) -> None:
    # The training world: tract 3080 with injected sources, demo-sized
    # detectors; ~115 labelled triplets per detector-visit (70 % real), so
    # 100 visits make ~65,000 (size it with -c survey.visitsPerTract=N).
    config.survey.tracts = [3080]
    config.survey.visitsPerTract = 100
    config.survey.detectorsPerVisit = 6
    config.survey.detectorWidth = 512
    config.survey.detectorHeight = 512
    config.injection.tracts = [3080]


def _preset_test(config: SimulationConfig) -> None:
    # The fixed test world: tract 4024 at the natural class mix, large enough
    # to judge OSS-REQ-0353 (>= 400 reals at SNR > 6; the demo's tract 4024
    # holds 68). A full raft of 9 detectors: the per-detector defects (hot
    # pixels, bad columns) come from more detectors than six.
    config.survey.tracts = [4024]
    config.survey.visitsPerTract = 115
    config.survey.detectorsPerVisit = 9
    config.survey.detectorWidth = 512
    config.survey.detectorHeight = 512
    config.seed = 4024


PRESETS = {"ci": _preset_ci, "demo": _preset_demo, "dl": _preset_dl, "train": _preset_train,
           "test": _preset_test}


def make_config(preset: str | None = None) -> SimulationConfig:
    """Return a `SimulationConfig` with a preset applied.

    Parameters
    ----------
    preset : `str`, optional
        One of ``ci``, ``demo``, ``dl`` (natural class mix), ``train``
        (tract 3080 with injected sources) and ``test`` (tract 4024, natural
        mix, large); `None` gives the bare defaults.

    Raises
    ------
    UnknownPresetError
        If ``preset`` is not a known preset name.
    """
    config = SimulationConfig()
    if preset is not None:
        try:
            apply = PRESETS[preset]
        except KeyError:
            raise UnknownPresetError(
                f"unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}."
            ) from None
        apply(config)
    return config
