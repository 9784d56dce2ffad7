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

"""Build `lsst.images` objects for the DC2-like simulator from plain numpy
arrays.

The physics code of the simulator works with numpy arrays, a simple
gnomonic `TanWcs` and Gaussian PSF widths; this module turns those into the
`lsst.images.VisitImage` and `lsst.images.DifferenceImage` objects that are
written to the Butler.
"""

from __future__ import annotations

__all__ = (
    "DEFAULT_INSTRUMENT",
    "FIELD_ANGLE_PER_MM",
    "LEGACY_MASK_PLANE_NAMES",
    "MASK_PLANES",
    "PIXEL_SIZE_MM",
    "TanWcs",
    "detector_focal_plane_position",
    "detector_full_name",
    "make_detector",
    "make_difference_image",
    "make_mask",
    "make_visit_image",
    "read_mask_planes",
)

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import astropy.units as u
import astropy.wcs
import numpy as np
from astro_metadata_translator import ObservationInfo
from astropy.time import Time

import lsst.sphgeom
from lsst.images import (
    Box,
    DifferenceImage,
    Image,
    Mask,
    MaskPlane,
    MaskSchema,
    SkyProjection,
    VisitImage,
)
from lsst.images.cameras import (
    CameraFrameSetSerializationModel,
    Detector,
    DetectorAttributes,
    DetectorType,
    Orientation,
)
from lsst.images.psfs import GaussianPointSpreadFunction

DEFAULT_INSTRUMENT = "LSSTCam-imSim"
"""Butler name of the simulated instrument."""

PIXEL_SIZE_MM = 0.010
"""Pixel size of the simulated (ITL-like) sensors, in mm."""

FIELD_ANGLE_PER_MM = math.radians(0.2 / 3600.0) / PIXEL_SIZE_MM
"""Nominal plate scale (field angle in radians per focal-plane mm) for
0.2 arcsec pixels of 10 microns."""

# Rubin's (afw) mask plane names, mapped to the planes that lsst.images uses
# for the same flags in visit and difference images (DP2 conventions).
MASK_PLANES: dict[str, MaskPlane] = {
    "BAD": MaskPlane("BAD", "Bad pixel in the instrument, including bad amplifiers."),
    "SAT": MaskPlane("SATURATED", "Pixel was saturated or affected by saturation in a neighboring pixel."),
    "CR": MaskPlane("COSMIC_RAY", "A cosmic ray affected this pixel."),
    "EDGE": MaskPlane(
        "DETECTION_EDGE",
        "Pixel was too close to the edge to be considered for detection, "
        "due to the finite size of the detection kernel.",
    ),
    "NO_DATA": MaskPlane("NO_DATA", "No data was available for this pixel."),
    "DETECTED": MaskPlane("DETECTED", "Pixel was part of a detected source."),
    "DETECTED_NEGATIVE": MaskPlane(
        "DETECTED_NEGATIVE", "Pixel was part of a detected source with negative flux."
    ),
    "INTRP": MaskPlane("INTERPOLATED", "Original pixel value was interpolated."),
    "SUSPECT": MaskPlane("SUSPECT", "Pixel was close to the saturation level."),
    "STREAK": MaskPlane(
        "STREAK", "An extended streak (probably an artificial satellite) affected this pixel."
    ),
}
"""Mask planes written by the simulator, keyed by Rubin's (afw) plane name.

The values are the `lsst.images.MaskPlane` objects actually stored; their
names follow `lsst.images.get_legacy_difference_image_mask_planes` (for
example ``SAT`` is stored as ``SATURATED`` and ``CR`` as ``COSMIC_RAY``), so
simulated images look like real DP2 images read through `lsst.images`.
"""

LEGACY_MASK_PLANE_NAMES: dict[str, str] = {plane.name: legacy for legacy, plane in MASK_PLANES.items()}
"""Map from stored (`lsst.images`) mask plane name to Rubin's (afw) name."""

_MASK_SCHEMA = MaskSchema(list(MASK_PLANES.values()))

# LSSTCam(-imSim) science rafts in detector-id order; 9 sensors each.
_SCIENCE_RAFTS = (
    "R01", "R02", "R03",
    "R10", "R11", "R12", "R13", "R14",
    "R20", "R21", "R22", "R23", "R24",
    "R30", "R31", "R32", "R33", "R34",
    "R41", "R42", "R43",
)  # fmt: skip
_SENSORS = ("S00", "S01", "S02", "S10", "S11", "S12", "S20", "S21", "S22")
_RAFT_PITCH_MM = 127.0
_SENSOR_PITCH_MM = 42.25


@dataclasses.dataclass(frozen=True)
class TanWcs:
    """A pure gnomonic (TAN) world coordinate system.

    Pixel coordinates are 0-based: the centre of the first pixel of an array
    is ``(0, 0)``, with ``x`` the column and ``y`` the row index.

    Parameters
    ----------
    crpix_x, crpix_y : `float`
        0-based pixel position of the tangent point.
    crval_ra_deg, crval_dec_deg : `float`
        ICRS coordinates of the tangent point, in degrees.
    cd : `tuple` [`tuple` [`float`, `float`], `tuple` [`float`, `float`]]
        FITS CD matrix, degrees per pixel: ``(xi, eta) = cd @ (dx, dy)``.
    """

    crpix_x: float
    crpix_y: float
    crval_ra_deg: float
    crval_dec_deg: float
    cd: tuple[tuple[float, float], tuple[float, float]]

    def __post_init__(self) -> None:
        cd = tuple(tuple(float(v) for v in row) for row in self.cd)
        if len(cd) != 2 or any(len(row) != 2 for row in cd):
            raise ValueError(f"cd must be a 2x2 matrix; got {self.cd!r}.")
        if np.linalg.det(np.array(cd)) == 0.0:
            raise ValueError("cd matrix is singular.")
        object.__setattr__(self, "cd", cd)
        for name in ("crpix_x", "crpix_y", "crval_ra_deg", "crval_dec_deg"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_pointing(
        cls,
        ra_deg: float,
        dec_deg: float,
        *,
        rotation_deg: float = 0.0,
        pixel_scale_arcsec: float = 0.2,
        crpix: tuple[float, float] = (0.0, 0.0),
    ) -> TanWcs:
        """Make a WCS with square pixels from a pointing and a rotation.

        Parameters
        ----------
        ra_deg, dec_deg : `float`
            ICRS coordinates of the tangent point, in degrees.
        rotation_deg : `float`, optional
            Rotation of the pixel grid on the sky, in degrees; at zero
            ``+y`` points north and ``+x`` points west (east left, as seen on
            the sky).
        pixel_scale_arcsec : `float`, optional
            Pixel scale in arcseconds.
        crpix : `tuple` [`float`, `float`], optional
            0-based ``(x, y)`` pixel position of the tangent point.

        Returns
        -------
        wcs : `TanWcs`
            The new WCS.
        """
        scale = pixel_scale_arcsec / 3600.0
        c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
        cd = ((-scale * c, -scale * s), (-scale * s, scale * c))
        return cls(float(crpix[0]), float(crpix[1]), float(ra_deg), float(dec_deg), cd)

    @property
    def cd_matrix(self) -> np.ndarray:
        """The CD matrix as a 2x2 array, degrees per pixel
        (`numpy.ndarray`).
        """
        return np.array(self.cd, dtype=float)

    @property
    def pixel_scale_arcsec(self) -> float:
        """Geometric-mean pixel scale at the tangent point, in arcseconds
        (`float`).
        """
        return math.sqrt(abs(np.linalg.det(self.cd_matrix))) * 3600.0

    def pixel_to_sky(self, x: Any, y: Any) -> tuple[Any, Any]:
        """Transform 0-based pixel coordinates to ICRS coordinates.

        Parameters
        ----------
        x, y : `float` or array-like
            0-based pixel coordinates (broadcast against each other).

        Returns
        -------
        ra, dec : `float` or `numpy.ndarray`
            ICRS coordinates in degrees; RA is in ``[0, 360)``.
        """
        dx = np.asarray(x, dtype=float) - self.crpix_x
        dy = np.asarray(y, dtype=float) - self.crpix_y
        (a, b), (c, d) = self.cd
        xi = np.radians(a * dx + b * dy)
        eta = np.radians(c * dx + d * dy)
        ra0 = math.radians(self.crval_ra_deg)
        dec0 = math.radians(self.crval_dec_deg)
        denom = math.cos(dec0) - eta * math.sin(dec0)
        ra = ra0 + np.arctan2(xi, denom)
        dec = np.arctan2(math.sin(dec0) + eta * math.cos(dec0), np.hypot(xi, denom))
        return _maybe_scalar(np.degrees(ra) % 360.0), _maybe_scalar(np.degrees(dec))

    def sky_to_pixel(self, ra: Any, dec: Any) -> tuple[Any, Any]:
        """Transform ICRS coordinates to 0-based pixel coordinates.

        Parameters
        ----------
        ra, dec : `float` or array-like
            ICRS coordinates in degrees (broadcast against each other).

        Returns
        -------
        x, y : `float` or `numpy.ndarray`
            0-based pixel coordinates.  Points on the far hemisphere (not
            representable in a gnomonic projection) give NaN.
        """
        ra_rad = np.radians(np.asarray(ra, dtype=float))
        dec_rad = np.radians(np.asarray(dec, dtype=float))
        ra0 = math.radians(self.crval_ra_deg)
        dec0 = math.radians(self.crval_dec_deg)
        dra = ra_rad - ra0
        cos_c = math.sin(dec0) * np.sin(dec_rad) + math.cos(dec0) * np.cos(dec_rad) * np.cos(dra)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos_c = np.where(cos_c > 0.0, cos_c, np.nan)
            xi = np.degrees(np.cos(dec_rad) * np.sin(dra) / cos_c)
            eta = np.degrees(
                (math.cos(dec0) * np.sin(dec_rad) - math.sin(dec0) * np.cos(dec_rad) * np.cos(dra)) / cos_c
            )
        inv = np.linalg.inv(self.cd_matrix)
        x = inv[0, 0] * xi + inv[0, 1] * eta + self.crpix_x
        y = inv[1, 0] * xi + inv[1, 1] * eta + self.crpix_y
        return _maybe_scalar(x), _maybe_scalar(y)

    def to_fits_wcs(self) -> astropy.wcs.WCS:
        """Return the equivalent FITS WCS (1-based ``CRPIX``).

        Returns
        -------
        wcs : `astropy.wcs.WCS`
            An Astropy WCS; like all Astropy WCS objects, it uses 0-based
            pixel coordinates in ``pixel_to_world`` calls.
        """
        wcs = astropy.wcs.WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.cunit = ["deg", "deg"]
        wcs.wcs.radesys = "ICRS"
        wcs.wcs.crpix = [self.crpix_x + 1.0, self.crpix_y + 1.0]
        wcs.wcs.crval = [self.crval_ra_deg, self.crval_dec_deg]
        wcs.wcs.cd = self.cd_matrix
        return wcs

    def to_sky_projection(self, pixel_frame: Any, pixel_bounds: Box | None = None) -> SkyProjection:
        """Return the equivalent `lsst.images.SkyProjection`.

        Parameters
        ----------
        pixel_frame : `lsst.images.Frame`
            Coordinate frame of the pixel grid; a `lsst.images.DetectorFrame`
            for visit and difference images.
        pixel_bounds : `lsst.images.Box`, optional
            Region of valid pixels.

        Returns
        -------
        projection : `lsst.images.SkyProjection`
            Projection whose pixel coordinates are these 0-based ones (an
            image whose bounding box starts at ``(0, 0)``).
        """
        return SkyProjection.from_fits_wcs(
            self.to_fits_wcs(), pixel_frame, pixel_bounds=pixel_bounds, x0=0, y0=0
        )

    def sky_polygon(self, shape: tuple[int, int], padding: float = 0.0) -> lsst.sphgeom.ConvexPolygon:
        """Return the sky region covered by an array, as a polygon.

        Parameters
        ----------
        shape : `tuple` [`int`, `int`]
            Array shape, numpy order ``(ny, nx)``.
        padding : `float`, optional
            Pixels to add on every side.

        Returns
        -------
        polygon : `lsst.sphgeom.ConvexPolygon`
            Polygon through the outer corners of the corner pixels (the
            sides of a pixel box are great circles in a TAN projection).
        """
        ny, nx = shape
        lo_x, hi_x = -0.5 - padding, nx - 0.5 + padding
        lo_y, hi_y = -0.5 - padding, ny - 0.5 + padding
        ra, dec = self.pixel_to_sky(
            np.array([lo_x, hi_x, hi_x, lo_x]), np.array([lo_y, lo_y, hi_y, hi_y])
        )
        vertices = [
            lsst.sphgeom.UnitVector3d(lsst.sphgeom.LonLat.fromDegrees(float(r), float(d)))
            for r, d in zip(ra, dec)
        ]
        return lsst.sphgeom.ConvexPolygon(vertices)


def _maybe_scalar(value: np.ndarray) -> Any:
    """Return a Python float for 0-d arrays, the array otherwise."""
    return float(value) if np.ndim(value) == 0 else value


def detector_full_name(detector: int) -> str:
    """Return the ``Rxx_Syy`` name of an LSSTCam(-imSim) science detector.

    Parameters
    ----------
    detector : `int`
        Detector id, 0-188.

    Returns
    -------
    name : `str`
        Full name, e.g. ``"R22_S11"`` for detector 94.
    """
    if not 0 <= detector < len(_SCIENCE_RAFTS) * len(_SENSORS):
        raise ValueError(f"Detector id {detector} is not an LSSTCam-imSim science detector (0-188).")
    raft, sensor = divmod(detector, len(_SENSORS))
    return f"{_SCIENCE_RAFTS[raft]}_{_SENSORS[sensor]}"


def detector_focal_plane_position(detector: int) -> tuple[float, float]:
    """Return the nominal focal-plane position of a detector's centre.

    Parameters
    ----------
    detector : `int`
        Detector id, 0-188.

    Returns
    -------
    x, y : `float`
        Focal-plane coordinates in mm, on a regular grid of 127 mm rafts and
        42.25 mm sensors (the first digit of ``Rxy``/``Sxy`` is taken as the
        row, the second as the column).  This is a nominal layout for the
        simulator, not the as-built LSSTCam geometry.
    """
    raft_name, sensor_name = detector_full_name(detector).split("_")
    raft_row, raft_col = int(raft_name[1]), int(raft_name[2])
    sensor_row, sensor_col = int(sensor_name[1]), int(sensor_name[2])
    x = (raft_col - 2) * _RAFT_PITCH_MM + (sensor_col - 1) * _SENSOR_PITCH_MM
    y = (raft_row - 2) * _RAFT_PITCH_MM + (sensor_row - 1) * _SENSOR_PITCH_MM
    return x, y


def _camera_frame_set_ast(detector: int, detector_shape: tuple[int, int]) -> str:
    """Return the AST native serialization of a one-detector camera frame
    set.

    Parameters
    ----------
    detector : `int`
        Detector id.
    detector_shape : `tuple` [`int`, `int`]
        Detector shape, numpy order ``(ny, nx)``.

    Returns
    -------
    text : `str`
        Serialized ``FrameSet`` with frames ``FOCAL_PLANE`` (base, mm),
        ``FIELD_ANGLE`` (rad) and ``DETECTOR_nnn`` (pixels).
    """
    import starlink.Ast as Ast

    ny, nx = detector_shape
    fp_x, fp_y = detector_focal_plane_position(detector)
    focal_plane = Ast.Frame(2, "Ident=FOCAL_PLANE,Domain=FOCAL_PLANE,Unit(1)=mm,Unit(2)=mm")
    frame_set = Ast.FrameSet(focal_plane)
    field_angle = Ast.Frame(2, "Ident=FIELD_ANGLE,Domain=FIELD_ANGLE,Unit(1)=rad,Unit(2)=rad")
    frame_set.addframe(Ast.BASE, Ast.ZoomMap(2, FIELD_ANGLE_PER_MM), field_angle)
    pixels = Ast.Frame(2, f"Ident=DETECTOR_{detector:03d},Domain=DETECTOR_{detector:03d}")
    # lsst.images reads the detector bounding box from Bottom/Top, with Top
    # the (exclusive) end of the interval: the full size, not size - 1.
    pixels.Bottom_1, pixels.Top_1 = 0, nx
    pixels.Bottom_2, pixels.Top_2 = 0, ny
    # Focal plane (mm) -> pixels: the detector centre sits at (fp_x, fp_y).
    to_pixels = Ast.CmpMap(
        Ast.CmpMap(Ast.ShiftMap([-fp_x, -fp_y]), Ast.ZoomMap(2, 1.0 / PIXEL_SIZE_MM), True),
        Ast.ShiftMap([(nx - 1) / 2.0, (ny - 1) / 2.0]),
        True,
    )
    frame_set.addframe(Ast.BASE, to_pixels, pixels)
    lines: list[str] = []

    class _Sink:
        def astsink(self, line: str) -> None:
            lines.append(line)

    Ast.Channel(None, _Sink()).write(frame_set)
    return "\n".join(lines) + "\n"


def make_detector(
    detector: int,
    detector_shape: tuple[int, int],
    *,
    instrument: str = DEFAULT_INSTRUMENT,
    visit: int | None = None,
) -> Detector:
    """Make an `lsst.images.cameras.Detector` for a simulated ITL-like
    sensor.

    Parameters
    ----------
    detector : `int`
        Detector id (0-188).
    detector_shape : `tuple` [`int`, `int`]
        Detector shape, numpy order ``(ny, nx)``.
    instrument : `str`, optional
        Butler instrument name.
    visit : `int`, optional
        Visit the detector geometry is attached to.

    Returns
    -------
    detector : `lsst.images.cameras.Detector`
        Detector with no amplifiers and a nominal focal-plane position.
    """
    ny, nx = (int(n) for n in detector_shape)
    frames = CameraFrameSetSerializationModel(
        instrument=instrument, ast=_camera_frame_set_ast(detector, (ny, nx))
    ).deserialize(None)
    fp_x, fp_y = detector_focal_plane_position(detector)
    attributes = DetectorAttributes(
        name=detector_full_name(detector),
        id=detector,
        type=DetectorType.SCIENCE,
        serial=f"ITL-SIM-{detector:03d}",
        bbox=Box.factory[0:ny, 0:nx],
        orientation=Orientation(
            focal_plane_x=fp_x,
            focal_plane_y=fp_y,
            focal_plane_z=0.0,
            pixel_reference_x=(nx - 1) / 2.0,
            pixel_reference_y=(ny - 1) / 2.0,
        ),
        pixel_size=PIXEL_SIZE_MM,
        physical_type="ITL",
    )
    return Detector(attributes, [], frames, visit=visit)


def make_mask(mask_planes: Mapping[str, np.ndarray], shape: tuple[int, int]) -> Mask:
    """Make an `lsst.images.Mask` with the simulator's mask planes.

    Parameters
    ----------
    mask_planes : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Boolean arrays keyed by Rubin's plane names (``BAD``, ``SAT``, ``CR``,
        ``EDGE``, ``NO_DATA``, ``DETECTED``, ``DETECTED_NEGATIVE``, ``INTRP``,
        ``SUSPECT``, ``STREAK``) or by the stored `lsst.images` names
        (``SATURATED``, ...).  Any subset; missing planes are left clear.
    shape : `tuple` [`int`, `int`]
        Image shape, numpy order ``(ny, nx)``.

    Returns
    -------
    mask : `lsst.images.Mask`
        Mask whose schema always holds all of `MASK_PLANES`.

    Raises
    ------
    ValueError
        Raised for an unknown plane name or an array of the wrong shape.
    """
    mask = Mask(schema=_MASK_SCHEMA, bbox=Box.factory[0 : shape[0], 0 : shape[1]])
    for name, values in mask_planes.items():
        plane = _stored_plane_name(name)
        array = np.asarray(values)
        if array.shape != tuple(shape):
            raise ValueError(f"Mask plane {name!r} has shape {array.shape}; expected {tuple(shape)}.")
        mask.set(plane, array.astype(bool, copy=False))
    return mask


def _stored_plane_name(name: str) -> str:
    """Return the stored plane name for a Rubin or `lsst.images` name."""
    if name in MASK_PLANES:
        return MASK_PLANES[name].name
    if name in LEGACY_MASK_PLANE_NAMES:
        return name
    raise ValueError(f"Unknown mask plane {name!r}; expected one of {sorted(MASK_PLANES)}.")


def read_mask_planes(mask: Mask) -> dict[str, np.ndarray]:
    """Return the planes of a mask as boolean arrays keyed by Rubin's
    (afw) plane names.

    Parameters
    ----------
    mask : `lsst.images.Mask`
        Mask to read, e.g. ``butler.get(...).mask``.

    Returns
    -------
    planes : `dict` [`str`, `numpy.ndarray`]
        One boolean array per plane of the mask's schema; planes that are
        not simulator planes keep their stored name.
    """
    return {LEGACY_MASK_PLANE_NAMES.get(name, name): mask.get(name) for name in mask.schema.names}


def _make_obs_info(
    *,
    instrument: str,
    physical_filter: str,
    visit: int,
    detector: int,
    exposure_time_s: float,
    obs_time: Time,
) -> ObservationInfo:
    """Make the `~astro_metadata_translator.ObservationInfo` of a simulated
    detector-visit.
    """
    begin = obs_time.tai
    raft, sensor = detector_full_name(detector).split("_")
    return ObservationInfo(
        instrument=instrument,
        physical_filter=physical_filter,
        exposure_time=exposure_time_s * u.s,
        exposure_time_requested=exposure_time_s * u.s,
        dark_time=exposure_time_s * u.s,
        datetime_begin=begin,
        datetime_end=begin + exposure_time_s * u.s,
        visit_id=visit,
        exposure_id=visit,
        observation_id=f"{instrument}_{visit}",
        detector_num=detector,
        detector_name=sensor,
        detector_group=raft,
        detector_unique_name=f"{raft}_{sensor}",
        detector_serial=f"ITL-SIM-{detector:03d}",
        observation_type="science",
        observation_reason="science",
        science_program="DC2",
        has_simulated_content=True,
        can_see_sky=True,
    )


def _build(
    cls: type[VisitImage],
    image: np.ndarray,
    variance: np.ndarray,
    mask_planes: Mapping[str, np.ndarray],
    wcs: TanWcs,
    psf_sigma_pixels: float,
    *,
    band: str,
    physical_filter: str,
    instrument: str,
    visit: int,
    detector: int,
    exposure_time_s: float,
    obs_time: Time,
    detector_shape: tuple[int, int] | None,
) -> Any:
    """Shared implementation of `make_visit_image` and
    `make_difference_image`.
    """
    image = np.asarray(image)
    variance = np.asarray(variance)
    if image.ndim != 2:
        raise ValueError(f"image must be 2-d; got shape {image.shape}.")
    if variance.shape != image.shape:
        raise ValueError(f"variance shape {variance.shape} differs from image shape {image.shape}.")
    shape = (int(image.shape[0]), int(image.shape[1]))
    if detector_shape is None:
        detector_shape = shape
    detector_shape = (int(detector_shape[0]), int(detector_shape[1]))
    if shape[0] > detector_shape[0] or shape[1] > detector_shape[1]:
        raise ValueError(f"image shape {shape} does not fit in detector shape {detector_shape}.")
    camera_detector = make_detector(detector, detector_shape, instrument=instrument, visit=visit)
    bbox = Box.factory[0 : shape[0], 0 : shape[1]]
    sky_projection = wcs.to_sky_projection(camera_detector.frame, pixel_bounds=camera_detector.bbox)
    return cls(
        Image(image.astype(np.float32), bbox=bbox, unit=u.nJy, sky_projection=sky_projection),
        mask=make_mask(mask_planes, shape),
        variance=Image(variance.astype(np.float32), bbox=bbox, unit=u.nJy**2),
        obs_info=_make_obs_info(
            instrument=instrument,
            physical_filter=physical_filter,
            visit=visit,
            detector=detector,
            exposure_time_s=exposure_time_s,
            obs_time=obs_time,
        ),
        psf=GaussianPointSpreadFunction(
            float(psf_sigma_pixels),
            bounds=camera_detector.bbox,
            stamp_size=2 * int(math.ceil(5.0 * psf_sigma_pixels)) + 1,
        ),
        detector=camera_detector,
        band=band,
    )


def make_visit_image(
    image: np.ndarray,
    variance: np.ndarray,
    mask_planes: Mapping[str, np.ndarray],
    wcs: TanWcs,
    psf_sigma_pixels: float,
    *,
    band: str,
    physical_filter: str,
    instrument: str = DEFAULT_INSTRUMENT,
    visit: int,
    detector: int,
    exposure_time_s: float,
    obs_time: Time,
    detector_shape: tuple[int, int] | None = None,
) -> VisitImage:
    """Make an `lsst.images.VisitImage` from numpy arrays.

    Parameters
    ----------
    image : `numpy.ndarray`
        Calibrated pixel values in nJy, shape ``(ny, nx)``; stored as
        float32.
    variance : `numpy.ndarray`
        Per-pixel variance in nJy², same shape; stored as float32.
    mask_planes : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Boolean arrays keyed by mask plane name (see `make_mask`).
    wcs : `TanWcs`
        Pixel-to-sky mapping of the array (0-based pixels).
    psf_sigma_pixels : `float`
        Gaussian PSF width (sigma) in pixels.
    band : `str`
        Band name, e.g. ``"r"``.
    physical_filter : `str`
        Physical filter name, e.g. ``"r_sim_1.4"``.
    instrument : `str`, optional
        Butler instrument name.
    visit : `int`
        Visit id.
    detector : `int`
        Detector id (0-188).
    exposure_time_s : `float`
        Exposure time in seconds.
    obs_time : `astropy.time.Time`
        Start of the exposure.
    detector_shape : `tuple` [`int`, `int`], optional
        Full detector shape ``(ny, nx)``; defaults to the image shape.  The
        image covers ``[0:ny, 0:nx]`` of the detector.

    Returns
    -------
    visit_image : `lsst.images.VisitImage`
        The image, with a `~lsst.images.psfs.GaussianPointSpreadFunction`,
        a nominal `~lsst.images.cameras.Detector` and an
        `~astro_metadata_translator.ObservationInfo`.
    """
    return _build(
        VisitImage,
        image,
        variance,
        mask_planes,
        wcs,
        psf_sigma_pixels,
        band=band,
        physical_filter=physical_filter,
        instrument=instrument,
        visit=visit,
        detector=detector,
        exposure_time_s=exposure_time_s,
        obs_time=obs_time,
        detector_shape=detector_shape,
    )


def make_difference_image(
    image: np.ndarray,
    variance: np.ndarray,
    mask_planes: Mapping[str, np.ndarray],
    wcs: TanWcs,
    psf_sigma_pixels: float,
    *,
    band: str,
    physical_filter: str,
    instrument: str = DEFAULT_INSTRUMENT,
    visit: int,
    detector: int,
    exposure_time_s: float,
    obs_time: Time,
    detector_shape: tuple[int, int] | None = None,
) -> DifferenceImage:
    """Make an `lsst.images.DifferenceImage` from numpy arrays.

    Used for both the warped template (``template_detector``) and the
    difference image (``difference_image``), which live on the science
    image's pixel grid.

    Parameters
    ----------
    image : `numpy.ndarray`
        Pixel values in nJy, shape ``(ny, nx)``; stored as float32.
    variance : `numpy.ndarray`
        Per-pixel variance in nJy², same shape; stored as float32.
    mask_planes : `~collections.abc.Mapping` [`str`, `numpy.ndarray`]
        Boolean arrays keyed by mask plane name (see `make_mask`).
    wcs : `TanWcs`
        Pixel-to-sky mapping of the array (that of the science image).
    psf_sigma_pixels : `float`
        Gaussian PSF width (sigma) in pixels.
    band : `str`
        Band name.
    physical_filter : `str`
        Physical filter name of the science visit.
    instrument : `str`, optional
        Butler instrument name.
    visit : `int`
        Science visit id.
    detector : `int`
        Detector id (0-188).
    exposure_time_s : `float`
        Exposure time of the science visit in seconds.
    obs_time : `astropy.time.Time`
        Start of the science exposure.
    detector_shape : `tuple` [`int`, `int`], optional
        Full detector shape ``(ny, nx)``; defaults to the image shape.

    Returns
    -------
    difference_image : `lsst.images.DifferenceImage`
        The image, with no kernel or template provenance attached.
    """
    return _build(
        DifferenceImage,
        image,
        variance,
        mask_planes,
        wcs,
        psf_sigma_pixels,
        band=band,
        physical_filter=physical_filter,
        instrument=instrument,
        visit=visit,
        detector=detector,
        exposure_time_s=exposure_time_s,
        obs_time=obs_time,
        detector_shape=detector_shape,
    )
