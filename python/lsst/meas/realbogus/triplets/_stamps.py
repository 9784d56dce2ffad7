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

"""Square stamps around source positions, for all sources at once.

The simulator's measurement cuts its stamps here (`extract_stamps`), and
the triplet extractor places its cutouts with the same `stamp_origin`.

Pixel convention: pixel ``(i, j)`` (row, column) covers
``[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)`` in ``(x, y)``; a stamp of size
``S`` around ``(x, y)`` is centred on the pixel ``(round(y), round(x))``,
which lands at index ``S // 2`` of the stamp (for even ``S`` the centre is
the lower-right of the four central pixels).
"""

from __future__ import annotations

__all__ = ["extract_stamps", "stamp_origin"]

import numpy as np

from ._arrayKernels import gather_windows

# Positions beyond this many pixels (or NaN) are treated as this far off
# the image, so that the integer conversion neither overflows nor wraps.
_FAR_OFF = float(2**40)


def stamp_origin(x: np.ndarray, y: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (x0, y0) pixel index of the lower-left stamp pixel.

    Parameters
    ----------
    x, y : `numpy.ndarray`
        Source positions, pixels.
    size : `int`
        Stamp size, pixels.

    Returns
    -------
    x0, y0 : `numpy.ndarray` of `int`
        Column and row of stamp pixel ``[0, 0]`` in the parent image.
    """
    half = size // 2
    # floor(v + 0.5) rather than np.round: numpy rounds halves to even.
    cx = np.floor(_finite_position(x) + 0.5).astype(np.int64)
    cy = np.floor(_finite_position(y) + 0.5).astype(np.int64)
    return cx - half, cy - half


def _finite_position(v: np.ndarray) -> np.ndarray:
    """Clip positions to +-2**40 pixels, NaN to far off the image (a stamp
    there is all fill and flagged at the edge).
    """
    v = np.asarray(v, dtype=float)
    return np.clip(np.nan_to_num(v, nan=-_FAR_OFF, posinf=_FAR_OFF, neginf=-_FAR_OFF), -_FAR_OFF, _FAR_OFF)


def extract_stamps(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    size: int,
    fill: float = np.nan,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut square stamps out of an image, for all sources at once.

    Parameters
    ----------
    image : `numpy.ndarray`, (H, W, ...)
        Parent image; trailing axes (e.g. the bytes of a packed mask) are
        carried along.
    x, y : `numpy.ndarray`, (N,)
        Source positions in parent pixel coordinates.
    size : `int`
        Stamp size ``S``.
    fill : `float`, optional
        Value given to stamp pixels that fall off the parent image.

    Returns
    -------
    stamps : `numpy.ndarray`, (N, S, S, ...)
        The stamps, in the image's dtype (promoted to float if ``fill`` is
        NaN and the image is integral).
    off_image : `numpy.ndarray` of `bool`, (N,)
        True where part of the stamp fell off the image and was filled.
    """
    if size < 1:
        raise ValueError(f"stamp size must be >= 1; got {size}.")
    image = np.asarray(image)
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-d arrays of one length; got shapes {x.shape} and {y.shape}.")
    x0, y0 = stamp_origin(x, y, size)
    off_image = stamps_off_image(image.shape[:2], x0, y0, size)
    dtype = image.dtype
    if off_image.any() and np.isnan(fill) and not np.issubdtype(dtype, np.floating):
        dtype = np.dtype(np.float32)
    stamps = np.empty((len(x), size, size, *image.shape[2:]), dtype=dtype)
    on = ~off_image
    if on.any():
        stamps[on] = gather_windows(image, y0[on], x0[on], size)
    if off_image.any():
        stamps[off_image] = _cut_over_edges(image, x0[off_image], y0[off_image], size, np.asarray(fill, dtype))
    return stamps, off_image


def _cut_over_edges(
    image: np.ndarray, x0: np.ndarray, y0: np.ndarray, size: int, fill: np.ndarray
) -> np.ndarray:
    """Cut stamps that overlap an edge of ``image``: clip the indices, then
    give the pixels off the image the value ``fill``.
    """
    height, width = image.shape[:2]
    offsets = np.arange(size)
    rows = y0[:, None] + offsets[None, :]  # (M, S)
    cols = x0[:, None] + offsets[None, :]
    valid = _pixels_on_image((height, width), x0, y0, size)
    valid = valid.reshape(valid.shape + (1,) * (image.ndim - 2))
    part = image[np.clip(rows, 0, height - 1)[:, :, None], np.clip(cols, 0, width - 1)[:, None, :]]
    return np.where(valid, part, fill)


def stamps_off_image(shape: tuple[int, int], x0: np.ndarray, y0: np.ndarray, size: int) -> np.ndarray:
    """Return the (N,) flags of the stamps (first pixel ``x0``, ``y0``)
    that reach off an image of ``shape`` (rows, columns).
    """
    return (x0 < 0) | (y0 < 0) | (x0 + size > shape[1]) | (y0 + size > shape[0])


def _pixels_on_image(shape: tuple[int, int], x0: np.ndarray, y0: np.ndarray, size: int) -> np.ndarray:
    """Return an (N, S, S) mask of the pixels of the stamps (first pixel
    ``x0``, ``y0``) that lie on an image of ``shape``.
    """
    offsets = np.arange(size)
    rows = y0[:, None] + offsets
    cols = x0[:, None] + offsets
    rows_ok = (rows >= 0) & (rows < shape[0])
    cols_ok = (cols >= 0) & (cols < shape[1])
    return rows_ok[:, :, None] & cols_ok[:, None, :]
