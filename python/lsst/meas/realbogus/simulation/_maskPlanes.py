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

"""The simulator's mask planes: Rubin's (afw) names, the `lsst.images`
planes they are stored as, and conversion between boolean arrays and
`lsst.images.Mask`.
"""

from __future__ import annotations

__all__ = (
    "LEGACY_MASK_PLANE_NAMES",
    "MASK_PLANES",
    "make_mask",
    "read_mask_planes",
)

from collections.abc import Mapping

import numpy as np

from lsst.images import Box, Mask, MaskPlane, MaskSchema

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

