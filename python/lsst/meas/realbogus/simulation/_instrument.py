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

"""The simulated instrument, LSSTCam-imSim: its Butler name, bands and
physical filters, and its science detectors (names, a nominal focal-plane
layout, and `lsst.images.cameras.Detector` objects with camera frames).
"""

from __future__ import annotations

__all__ = (
    "BANDS",
    "FIELD_ANGLE_PER_MM",
    "INSTRUMENT",
    "PHYSICAL_FILTERS",
    "PIXEL_SIZE_MM",
    "detector_focal_plane_position",
    "detector_full_name",
    "make_detector",
)

import math

from lsst.images import Box
from lsst.images.cameras import (
    CameraFrameSetSerializationModel,
    Detector,
    DetectorAttributes,
    DetectorType,
    Orientation,
)

INSTRUMENT = "LSSTCam-imSim"
"""Butler name of the simulated instrument (as in the DC2 repository)."""

BANDS = ("u", "g", "r", "i", "z", "y")
"""The LSST bands."""

PHYSICAL_FILTERS: dict[str, str] = {band: f"{band}_sim_1.4" for band in BANDS}
"""imSim (DC2 Run 2.2i) physical filter of each band."""

PIXEL_SIZE_MM = 0.010
"""Pixel size of the simulated (ITL-like) sensors, in mm."""

FIELD_ANGLE_PER_MM = math.radians(0.2 / 3600.0) / PIXEL_SIZE_MM
"""Nominal plate scale (field angle in radians per focal-plane mm) for
0.2 arcsec pixels of 10 microns."""

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
    instrument: str = INSTRUMENT,
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

