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

"""Butler repository plumbing of the DC2-like simulator: repository
creation, dimension records (instrument, skymap, visits) and writing one
detector-visit's datasets.

``lsst.skymap`` is not available, so the ``DC2`` skymap's tract and patch
records are computed here from the RingsSkyMap parameters of DC2 (tract
centres from the skymap's ring formula, 28,000-pixel tracts of 7x7 patches of
4,000 + 2x100 pixels at 0.2 arcsec), for the tracts in `TRACTS` only.
"""

from __future__ import annotations

__all__ = (
    "BANDS",
    "DATASET_TYPES",
    "INSTRUMENT",
    "NUM_PATCHES",
    "PATCH_BORDER",
    "PATCH_INNER_SIZE",
    "PHYSICAL_FILTERS",
    "SKYMAP",
    "TRACTS",
    "TRACT_SIZE",
    "DetectorVisitProduct",
    "create_repository",
    "day_obs_from_time",
    "patch_regions",
    "register_dataset_types",
    "register_instrument",
    "register_skymap",
    "register_visit",
    "tract_region",
    "tract_wcs",
    "write_detector_visit",
)

import dataclasses
import hashlib
import math
import os
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from astropy.table import Table
from astropy.time import Time, TimeDelta

import lsst.sphgeom
from lsst.daf.butler import Butler, Config, DatasetRef, DatasetType, Timespan

from ..errors import RepositoryExistsError
from ._imageFactory import TanWcs, detector_full_name, make_difference_image, make_visit_image

INSTRUMENT = "LSSTCam-imSim"
"""Butler name of the simulated instrument (as in the DC2 repository)."""

INSTRUMENT_CLASS_NAME = "lsst.obs.lsst.LsstCamImSim"
"""Instrument class recorded in the instrument record (not importable
here)."""

SKYMAP = "DC2"
"""Name of the skymap."""

TRACTS: dict[int, tuple[float, float]] = {
    3080: (61.6575, -42.3967),
    4024: (53.7313, -34.9587),
}
"""Centres (RA, Dec in degrees) of the simulated DC2 tracts: 3080 (training)
and 4024 (test)."""

BANDS = ("u", "g", "r", "i", "z", "y")
"""The LSST bands."""

PHYSICAL_FILTERS: dict[str, str] = {band: f"{band}_sim_1.4" for band in BANDS}
"""imSim (DC2 Run 2.2i) physical filter of each band."""

DATASET_TYPES: dict[str, str] = {
    "preliminary_visit_image": "VisitImage",
    "template_detector": "DifferenceImage",
    "difference_image": "DifferenceImage",
    "dia_source_unstandardized": "ArrowAstropy",
    "dia_source_truth": "ArrowAstropy",
}
"""Storage class of each simulated dataset type; all have dimensions
``{instrument, visit, detector}``."""

DATASET_DIMENSIONS = ("instrument", "visit", "detector")
"""Dimensions of every simulated dataset type."""

# DC2 skymap (obs_lsst config/makeSkyMap.py): RingsSkyMap, 120 rings, TAN,
# 0.2 arcsec pixels, legacy patches of 4000 px with a 100 px border, 7x7
# patches per tract.
PIXEL_SCALE_ARCSEC = 0.2
PATCH_INNER_SIZE = 4000
PATCH_BORDER = 100
NUM_PATCHES = 7
TRACT_SIZE = PATCH_INNER_SIZE * NUM_PATCHES
_NUM_RINGS = 120
_SKYMAP_CONFIG = (
    "RingsSkyMap(numRings=120, raStart=0.0, projection=TAN, tractOverlap=1/60 deg, "
    "pixelScale=0.2 arcsec, patchInnerDimensions=4000x4000, patchBorder=100, tractBuilder=legacy)"
)

DETECTOR_MAX = 189
VISIT_MAX = 2**26
VISIT_SYSTEM_ONE_TO_ONE = 0

_DAY_OBS_OFFSET = TimeDelta(12 * 3600.0, format="sec")


# -- repository --------------------------------------------------------------


def create_repository(root: str, *, overwrite: bool = False) -> Butler:
    """Create a new, empty Butler repository (SQLite registry, file
    datastore).

    Parameters
    ----------
    root : `str`
        Local directory of the repository.
    overwrite : `bool`, optional
        If `True`, an existing Butler repository at ``root`` is deleted
        first.  A directory that is not a Butler repository (no
        ``butler.yaml``) is never deleted.

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        A writeable Butler for the new repository.

    Raises
    ------
    RepositoryExistsError
        Raised if ``root`` is a non-empty directory and ``overwrite`` is
        `False`, if ``overwrite`` is `True` but ``root`` is not a Butler
        repository, or if ``root`` is a file.  Nothing is touched then.
    """
    root = os.path.abspath(root)
    if os.path.exists(root) and not os.path.isdir(root):
        raise RepositoryExistsError(f"Cannot create a repository at {root}: it is a file.")
    if os.path.isdir(root) and os.listdir(root):
        if not overwrite:
            raise RepositoryExistsError(
                f"Directory {root} exists and is not empty; "
                "use overwrite=True to replace a Butler repository."
            )
        if not os.path.isfile(os.path.join(root, "butler.yaml")):
            raise RepositoryExistsError(
                f"Refusing to delete {root}: it is not a Butler repository (no butler.yaml)."
            )
        shutil.rmtree(root)
    # The package's model storage class goes into the new butler.yaml so
    # that pipetask can store rb_model without extra set-up.
    # Imported here: the models package imports torch, which workers do not need.
    from ..models import butler_config

    Butler.makeRepo(root, config=Config(butler_config()))
    return Butler.from_config(root, writeable=True)


# -- skymap geometry -----------------------------------------------------------


def _tract_max() -> int:
    """Return the number of tracts of the DC2 RingsSkyMap."""
    theta = math.pi / (_NUM_RINGS + 1)
    total = 2  # the two polar caps
    for ring in range(_NUM_RINGS):
        dec0 = theta * (ring + 0.5) - math.pi / 2
        total += int(2 * math.pi * math.cos(min(abs(dec0), abs(dec0 + theta))) / theta) + 1
    return total


def tract_wcs(tract: int) -> TanWcs:
    """Return the WCS of a DC2 tract.

    Parameters
    ----------
    tract : `int`
        Tract id, a key of `TRACTS`.

    Returns
    -------
    wcs : `TanWcs`
        North-up, east-left TAN projection at the tract centre with 0.2
        arcsec pixels, for a ``TRACT_SIZE`` square pixel grid starting at 0.
    """
    ra, dec = TRACTS[tract]
    centre = (TRACT_SIZE - 1) / 2.0
    return TanWcs.from_pointing(
        ra, dec, pixel_scale_arcsec=PIXEL_SCALE_ARCSEC, crpix=(centre, centre)
    )


def _box_polygon(wcs: TanWcs, x0: int, x1: int, y0: int, y1: int) -> lsst.sphgeom.ConvexPolygon:
    """Return the sky polygon of the pixel box ``[x0, x1) x [y0, y1)``."""
    return TanWcs(
        wcs.crpix_x - x0, wcs.crpix_y - y0, wcs.crval_ra_deg, wcs.crval_dec_deg, wcs.cd
    ).sky_polygon((y1 - y0, x1 - x0))


def tract_region(tract: int) -> lsst.sphgeom.ConvexPolygon:
    """Return the (outer) sky region of a DC2 tract.

    Parameters
    ----------
    tract : `int`
        Tract id, a key of `TRACTS`.

    Returns
    -------
    region : `lsst.sphgeom.ConvexPolygon`
        The whole ``TRACT_SIZE`` pixel grid (about 1.56 deg on a side).
    """
    return _box_polygon(tract_wcs(tract), 0, TRACT_SIZE, 0, TRACT_SIZE)


def patch_regions(tract: int) -> dict[int, tuple[int, int, lsst.sphgeom.ConvexPolygon]]:
    """Return the (outer) sky regions of the patches of a DC2 tract.

    Parameters
    ----------
    tract : `int`
        Tract id, a key of `TRACTS`.

    Returns
    -------
    patches : `dict` [`int`, `tuple` [`int`, `int`, `lsst.sphgeom.ConvexPolygon`]]
        ``(cell_x, cell_y, region)`` keyed by patch id
        ``cell_y * NUM_PATCHES + cell_x``; a region is the patch's inner
        box grown by ``PATCH_BORDER`` pixels and clipped to the tract.
    """
    wcs = tract_wcs(tract)
    result = {}
    for cell_y in range(NUM_PATCHES):
        for cell_x in range(NUM_PATCHES):
            x0 = max(cell_x * PATCH_INNER_SIZE - PATCH_BORDER, 0)
            x1 = min((cell_x + 1) * PATCH_INNER_SIZE + PATCH_BORDER, TRACT_SIZE)
            y0 = max(cell_y * PATCH_INNER_SIZE - PATCH_BORDER, 0)
            y1 = min((cell_y + 1) * PATCH_INNER_SIZE + PATCH_BORDER, TRACT_SIZE)
            result[cell_y * NUM_PATCHES + cell_x] = (cell_x, cell_y, _box_polygon(wcs, x0, x1, y0, y1))
    return result


# -- dimension records ---------------------------------------------------------


def register_skymap(butler: Butler) -> None:
    """Insert the ``DC2`` skymap record and the records of the tracts in
    `TRACTS` and their patches.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler.  Records that already exist identically are left
        alone.
    """
    registry = butler.registry
    registry.syncDimensionData(
        "skymap",
        {
            "name": SKYMAP,
            "hash": hashlib.sha1(_SKYMAP_CONFIG.encode()).digest(),
            "tract_max": _tract_max(),
            "patch_nx_max": NUM_PATCHES,
            "patch_ny_max": NUM_PATCHES,
        },
    )
    for tract in TRACTS:
        registry.syncDimensionData("tract", {"skymap": SKYMAP, "id": tract, "region": tract_region(tract)})
        patches = [
            {"skymap": SKYMAP, "tract": tract, "id": patch, "cell_x": cx, "cell_y": cy, "region": region}
            for patch, (cx, cy, region) in patch_regions(tract).items()
        ]
        registry.insertDimensionData("patch", *patches, skip_existing=True)


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
    """
    if detector_shape is not None and (len(detector_shape) != 2 or min(detector_shape) <= 0):
        raise ValueError(f"Invalid detector shape {detector_shape!r}.")
    registry = butler.registry
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
    for band in bands:
        if band not in PHYSICAL_FILTERS:
            raise ValueError(f"Unknown band {band!r}; expected one of {BANDS}.")
        registry.syncDimensionData(
            "physical_filter", {"instrument": INSTRUMENT, "name": PHYSICAL_FILTERS[band], "band": band}
        )
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
    register_skymap(butler)


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
    expected_day_obs = day_obs_from_time(begin)
    if day_obs is None:
        day_obs = expected_day_obs
    elif day_obs != expected_day_obs:
        raise ValueError(
            f"day_obs {day_obs} disagrees with obs_begin {begin.isot} (day_obs {expected_day_obs})."
        )
    timespan = Timespan(begin, begin + TimeDelta(exposure_time_s, format="sec"))
    group = f"{INSTRUMENT}_{visit}"
    common = {"instrument": INSTRUMENT, "physical_filter": physical_filter, "day_obs": day_obs}
    registry = butler.registry
    with butler.transaction():
        registry.syncDimensionData(
            "day_obs", {"instrument": INSTRUMENT, "id": day_obs, "timespan": _day_obs_timespan(day_obs)}
        )
        registry.syncDimensionData("group", {"instrument": INSTRUMENT, "name": group})
        registry.insertDimensionData(
            "exposure",
            {
                **common,
                "id": visit,
                "obs_id": group,
                "group": group,
                "exposure_time": exposure_time_s,
                "dark_time": exposure_time_s,
                "observation_type": "science",
                "observation_reason": "science",
                "seq_num": visit,
                "target_name": "WFD",
                "science_program": "DC2",
                "tracking_ra": float(boresight_ra),
                "tracking_dec": float(boresight_dec),
                "sky_angle": float(rotation_deg),
                "has_simulated": True,
                "can_see_sky": True,
                "timespan": timespan,
            },
        )
        registry.insertDimensionData(
            "visit",
            {
                **common,
                "id": visit,
                "name": str(visit),
                "seq_num": visit,
                "exposure_time": exposure_time_s,
                "target_name": "WFD",
                "observation_reason": "science",
                "science_program": "DC2",
                "region": _hull(detector_regions.values()),
                "timespan": timespan,
            },
        )
        registry.insertDimensionData(
            "visit_definition", {"instrument": INSTRUMENT, "exposure": visit, "visit": visit}
        )
        registry.insertDimensionData(
            "visit_system_membership",
            {"instrument": INSTRUMENT, "visit_system": VISIT_SYSTEM_ONE_TO_ONE, "visit": visit},
        )
        registry.insertDimensionData(
            "visit_detector_region",
            *[
                {"instrument": INSTRUMENT, "visit": visit, "detector": int(detector), "region": region}
                for detector, region in detector_regions.items()
            ],
        )


def register_dataset_types(butler: Butler) -> dict[str, DatasetType]:
    """Register the simulated dataset types (`DATASET_TYPES`).

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler.

    Returns
    -------
    dataset_types : `dict` [`str`, `lsst.daf.butler.DatasetType`]
        The dataset types, by name.
    """
    result = {}
    for name, storage_class in DATASET_TYPES.items():
        dataset_type = DatasetType(name, DATASET_DIMENSIONS, storage_class, universe=butler.dimensions)
        butler.registry.registerDatasetType(dataset_type)
        result[name] = dataset_type
    return result


# -- datasets -------------------------------------------------------------------


@dataclasses.dataclass
class DetectorVisitProduct:
    """Everything the simulator made for one detector-visit, as plain numpy
    and astropy data (picklable, so it can come back from worker processes).

    Images are in nJy and variances in nJy², all on the science pixel grid
    (``wcs``); mask dictionaries map Rubin mask plane names to boolean
    arrays (see `~.imageFactory.make_mask`).
    """

    visit: int
    detector: int
    band: str
    physical_filter: str
    wcs: TanWcs
    science_psf_sigma: float
    template_psf_sigma: float
    difference_psf_sigma: float
    science_image: np.ndarray
    science_variance: np.ndarray
    science_masks: dict[str, np.ndarray]
    template_image: np.ndarray
    template_variance: np.ndarray
    template_masks: dict[str, np.ndarray]
    difference_image: np.ndarray
    difference_variance: np.ndarray
    difference_masks: dict[str, np.ndarray]
    sources: Table
    truth: Table
    obs_time: Time
    exposure_time_s: float
    detector_shape: tuple[int, int] | None = None
    """Full detector shape ``(ny, nx)``; the image shape if `None`."""

    @property
    def data_id(self) -> dict[str, Any]:
        """Butler data ID of the detector-visit (`dict`)."""
        return {"instrument": INSTRUMENT, "visit": self.visit, "detector": self.detector}


def _make_datasets(product: DetectorVisitProduct) -> dict[str, Any]:
    """Build the in-memory datasets of a detector-visit."""
    common = {
        "band": product.band,
        "physical_filter": product.physical_filter,
        "instrument": INSTRUMENT,
        "visit": product.visit,
        "detector": product.detector,
        "exposure_time_s": product.exposure_time_s,
        "obs_time": product.obs_time,
        "detector_shape": product.detector_shape,
    }
    return {
        "preliminary_visit_image": make_visit_image(
            product.science_image,
            product.science_variance,
            product.science_masks,
            product.wcs,
            product.science_psf_sigma,
            **common,
        ),
        "template_detector": make_difference_image(
            product.template_image,
            product.template_variance,
            product.template_masks,
            product.wcs,
            product.template_psf_sigma,
            **common,
        ),
        "difference_image": make_difference_image(
            product.difference_image,
            product.difference_variance,
            product.difference_masks,
            product.wcs,
            product.difference_psf_sigma,
            **common,
        ),
        "dia_source_unstandardized": _as_table(product.sources, "sources"),
        "dia_source_truth": _as_table(product.truth, "truth"),
    }


def _as_table(table: Any, what: str) -> Table:
    """Check that a catalog is an `astropy.table.Table`."""
    if not isinstance(table, Table):
        raise TypeError(f"DetectorVisitProduct.{what} must be an astropy Table; got {type(table).__name__}.")
    return table


def write_detector_visit(butler: Butler, run: str, product: DetectorVisitProduct) -> dict[str, DatasetRef]:
    """Write the five datasets of one detector-visit, all or none.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable Butler whose repository has the dimension records of the
        detector-visit and the dataset types (`register_dataset_types`).
    run : `str`
        RUN collection to write to; registered if needed.
    product : `DetectorVisitProduct`
        What to write.

    Returns
    -------
    refs : `dict` [`str`, `lsst.daf.butler.DatasetRef`]
        The written datasets, by dataset type name.

    Notes
    -----
    All in-memory objects are built before anything is written, and the puts
    run in one Butler transaction: if one fails, the datasets (registry
    entries and files) already written for this detector-visit are removed
    before the exception propagates.
    """
    datasets = _make_datasets(product)
    butler.collections.register(run)
    refs: dict[str, DatasetRef] = {}
    try:
        with butler.transaction():
            for name, dataset in datasets.items():
                refs[name] = butler.put(dataset, name, product.data_id, run=run)
    except BaseException:
        _remove_leftovers(butler, refs.values())
        raise
    return refs


def _remove_leftovers(butler: Butler, refs: Iterable[DatasetRef]) -> None:
    """Remove datasets that survived a rolled-back transaction, if any."""
    leftovers = [ref for ref in refs if butler.stored(ref) or _known(butler, ref)]
    if leftovers:
        butler.pruneDatasets(leftovers, purge=True, unstore=True, disassociate=True)


def _known(butler: Butler, ref: DatasetRef) -> bool:
    """Return whether the registry still knows a dataset."""
    return butler.get_dataset(ref.id) is not None
