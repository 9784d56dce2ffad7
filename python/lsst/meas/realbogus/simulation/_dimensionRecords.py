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

"""Dimension records of the simulated instrument and its visits: instrument,
physical filters, detectors (and the ``DC2`` skymap with them), day_obs,
groups, exposures and visits with their detector regions.
"""

from __future__ import annotations

__all__ = (
    "day_obs_from_time",
    "register_instrument",
    "register_visit",
)

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from astropy.time import Time, TimeDelta

import lsst.sphgeom
from lsst.daf.butler import Butler, Registry, Timespan

from ._instrument import BANDS, INSTRUMENT, PHYSICAL_FILTERS, detector_full_name
from ._skymap import register_skymap

INSTRUMENT_CLASS_NAME = "lsst.obs.lsst.LsstCamImSim"
"""Instrument class recorded in the instrument record (not importable
here)."""

DETECTOR_MAX = 189
VISIT_MAX = 2**26
VISIT_SYSTEM_ONE_TO_ONE = 0

_DAY_OBS_OFFSET = TimeDelta(12 * 3600.0, format="sec")


def register_instrument(
    butler: Butler,
    *,
    detector_ids: Iterable[int],
    detector_shape: tuple[int, int] | None = None,
    bands: Iterable[str] = BANDS,
) -> None:
    """Insert the instrument, detector, physical_filter and skymap records.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler.  Records that already exist identically are left
        alone, so this may be called again (e.g. with more detectors).
    detector_ids : `~collections.abc.Iterable` [`int`]
        Detector ids to register (0-188, LSSTCam-imSim numbering).
    detector_shape : `tuple` [`int`, `int`], optional
        Detector shape ``(ny, nx)``.  Dimension records do not hold it; it is
        only checked for sanity.
    bands : `~collections.abc.Iterable` [`str`], optional
        Bands whose imSim physical filters (`PHYSICAL_FILTERS`) to register.
        The ``band`` dimension has no table of its own: its values are those
        of the ``physical_filter`` records.

    Raises
    ------
    ValueError
        Raised for an invalid detector shape or an unknown band.
    """
    if detector_shape is not None and (len(detector_shape) != 2 or min(detector_shape) <= 0):
        raise ValueError(f"Invalid detector shape {detector_shape!r}.")
    registry = butler.registry
    _sync_instrument(registry)
    _sync_physical_filters(registry, bands)
    _sync_detectors(registry, detector_ids)
    register_skymap(butler)


def _sync_instrument(registry: Registry) -> None:
    """Insert the instrument and its one-to-one visit system."""
    registry.syncDimensionData(
        "instrument",
        {
            "name": INSTRUMENT,
            "visit_max": VISIT_MAX,
            "visit_system": VISIT_SYSTEM_ONE_TO_ONE,
            "exposure_max": VISIT_MAX,
            "detector_max": DETECTOR_MAX,
            "class_name": INSTRUMENT_CLASS_NAME,
        },
    )
    registry.syncDimensionData(
        "visit_system", {"instrument": INSTRUMENT, "id": VISIT_SYSTEM_ONE_TO_ONE, "name": "one-to-one"}
    )


def _sync_physical_filters(registry: Registry, bands: Iterable[str]) -> None:
    """Insert the imSim physical filter of each band."""
    for band in bands:
        if band not in PHYSICAL_FILTERS:
            raise ValueError(f"Unknown band {band!r}; expected one of {BANDS}.")
        registry.syncDimensionData(
            "physical_filter", {"instrument": INSTRUMENT, "name": PHYSICAL_FILTERS[band], "band": band}
        )


def _sync_detectors(registry: Registry, detector_ids: Iterable[int]) -> None:
    """Insert science detectors, named as in LSSTCam-imSim."""
    for detector in detector_ids:
        full_name = detector_full_name(int(detector))
        raft, name_in_raft = full_name.split("_")
        registry.syncDimensionData(
            "detector",
            {
                "instrument": INSTRUMENT,
                "id": int(detector),
                "full_name": full_name,
                "raft": raft,
                "name_in_raft": name_in_raft,
                "purpose": "SCIENCE",
            },
        )


def day_obs_from_time(time: Time) -> int:
    """Return the Rubin ``day_obs`` (YYYYMMDD) of a time.

    Parameters
    ----------
    time : `astropy.time.Time`
        Time of an observation.

    Returns
    -------
    day_obs : `int`
        The date of ``time`` - 12 h in TAI (Rubin's day rolls over at
        noon, as obs_lsst defines it).
    """
    shifted = (time.tai - _DAY_OBS_OFFSET).strftime("%Y%m%d")
    return int(shifted)


def _day_obs_timespan(day_obs: int) -> Timespan:
    """Return the timespan of a ``day_obs``."""
    iso = f"{day_obs // 10000:04d}-{day_obs // 100 % 100:02d}-{day_obs % 100:02d}T00:00:00"
    begin = Time(iso, format="isot", scale="tai") + _DAY_OBS_OFFSET
    return Timespan(begin, begin + TimeDelta(86400.0, format="sec"))


def _hull(regions: Iterable[lsst.sphgeom.ConvexPolygon]) -> lsst.sphgeom.ConvexPolygon:
    """Return the convex hull of the vertices of some polygons."""
    vertices = [v for region in regions for v in region.getVertices()]
    return lsst.sphgeom.ConvexPolygon.convexHull(vertices)


def register_visit(
    butler: Butler,
    *,
    visit: int,
    band: str,
    physical_filter: str,
    day_obs: int | None = None,
    exposure_time_s: float,
    obs_begin: Time,
    boresight_ra: float,
    boresight_dec: float,
    rotation_deg: float,
    detector_regions: Mapping[int, lsst.sphgeom.ConvexPolygon],
) -> None:
    """Insert the records of one visit, so that it relates to tracts
    spatially.

    Inserts ``day_obs``, ``group``, ``exposure`` (one exposure per visit,
    with the same id), ``visit`` (its region is the convex hull of the
    detector regions), ``visit_definition``, ``visit_system_membership``
    (one-to-one visit system) and one ``visit_detector_region`` per
    detector.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler, with `register_instrument` already run for the
        band and detectors.
    visit : `int`
        Visit id (also used as exposure id).
    band : `str`
        Band; must match ``physical_filter``.
    physical_filter : `str`
        Physical filter, e.g. ``"r_sim_1.4"``.
    day_obs : `int`, optional
        Observing day (YYYYMMDD); computed from ``obs_begin`` if not given.
    exposure_time_s : `float`
        Exposure time in seconds.
    obs_begin : `astropy.time.Time`
        Start of the exposure.
    boresight_ra, boresight_dec : `float`
        ICRS boresight in degrees (stored in the exposure record).
    rotation_deg : `float`
        Rotation of the focal plane on the sky in degrees (the exposure
        record's ``sky_angle``).
    detector_regions : `~collections.abc.Mapping` [`int`, `lsst.sphgeom.ConvexPolygon`]
        Sky region of each detector of the visit.

    Raises
    ------
    ValueError
        Raised if ``band`` does not match ``physical_filter``, if
        ``day_obs`` disagrees with ``obs_begin`` or if there is no detector
        region.
    """
    if not detector_regions:
        raise ValueError(f"Visit {visit} has no detector regions.")
    if PHYSICAL_FILTERS.get(band, physical_filter) != physical_filter:
        raise ValueError(f"Physical filter {physical_filter!r} is not that of band {band!r}.")
    begin = obs_begin.tai
    records = _VisitRecords(
        visit=visit,
        physical_filter=physical_filter,
        day_obs=_checked_day_obs(day_obs, begin),
        exposure_time_s=exposure_time_s,
        timespan=Timespan(begin, begin + TimeDelta(exposure_time_s, format="sec")),
        boresight_ra=float(boresight_ra),
        boresight_dec=float(boresight_dec),
        rotation_deg=float(rotation_deg),
    )
    with butler.transaction():
        records.insert(butler.registry, detector_regions)


def _checked_day_obs(day_obs: int | None, begin: Time) -> int:
    """Return ``day_obs``, or that of ``begin`` if `None`; raise
    `ValueError` if they disagree.
    """
    expected_day_obs = day_obs_from_time(begin)
    if day_obs is None:
        return expected_day_obs
    if day_obs != expected_day_obs:
        raise ValueError(
            f"day_obs {day_obs} disagrees with obs_begin {begin.isot} (day_obs {expected_day_obs})."
        )
    return day_obs


@dataclasses.dataclass(frozen=True)
class _VisitRecords:
    """The dimension records of one visit, which is one exposure of the same
    id in the one-to-one visit system.
    """

    visit: int
    physical_filter: str
    day_obs: int
    exposure_time_s: float
    timespan: Timespan
    boresight_ra: float
    boresight_dec: float
    rotation_deg: float

    @property
    def group(self) -> str:
        """Name of the visit's group and observation id (`str`)."""
        return f"{INSTRUMENT}_{self.visit}"

    def insert(self, registry: Registry, detector_regions: Mapping[int, lsst.sphgeom.ConvexPolygon]) -> None:
        """Insert the records, in an order that satisfies their foreign
        keys: day_obs and group, exposure, visit, its memberships and its
        detector regions.
        """
        registry.syncDimensionData(
            "day_obs",
            {"instrument": INSTRUMENT, "id": self.day_obs, "timespan": _day_obs_timespan(self.day_obs)},
        )
        registry.syncDimensionData("group", {"instrument": INSTRUMENT, "name": self.group})
        registry.insertDimensionData("exposure", self.exposure_record())
        registry.insertDimensionData("visit", self.visit_record(_hull(detector_regions.values())))
        registry.insertDimensionData(
            "visit_definition", {"instrument": INSTRUMENT, "exposure": self.visit, "visit": self.visit}
        )
        registry.insertDimensionData(
            "visit_system_membership",
            {"instrument": INSTRUMENT, "visit_system": VISIT_SYSTEM_ONE_TO_ONE, "visit": self.visit},
        )
        registry.insertDimensionData(
            "visit_detector_region",
            *[
                {"instrument": INSTRUMENT, "visit": self.visit, "detector": int(detector), "region": region}
                for detector, region in detector_regions.items()
            ],
        )

    def _common(self) -> dict[str, Any]:
        """Return the fields that the exposure and visit records share."""
        return {"instrument": INSTRUMENT, "physical_filter": self.physical_filter, "day_obs": self.day_obs}

    def exposure_record(self) -> dict[str, Any]:
        """Return the ``exposure`` record."""
        return {
            **self._common(),
            "id": self.visit,
            "obs_id": self.group,
            "group": self.group,
            "exposure_time": self.exposure_time_s,
            "dark_time": self.exposure_time_s,
            "observation_type": "science",
            "observation_reason": "science",
            "seq_num": self.visit,
            "target_name": "WFD",
            "science_program": "DC2",
            "tracking_ra": self.boresight_ra,
            "tracking_dec": self.boresight_dec,
            "sky_angle": self.rotation_deg,
            "has_simulated": True,
            "can_see_sky": True,
            "timespan": self.timespan,
        }

    def visit_record(self, region: lsst.sphgeom.ConvexPolygon) -> dict[str, Any]:
        """Return the ``visit`` record, with the sky region of the whole
        visit.
        """
        return {
            **self._common(),
            "id": self.visit,
            "name": str(self.visit),
            "seq_num": self.visit,
            "exposure_time": self.exposure_time_s,
            "target_name": "WFD",
            "observation_reason": "science",
            "science_program": "DC2",
            "region": region,
            "timespan": self.timespan,
        }
