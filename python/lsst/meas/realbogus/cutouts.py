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

"""Vectorized extraction of square stamps around source positions.

This is the one place where pixels around sources are cut out: the
simulator's measurement, the triplet builder and the scoring task all call
`extract_stamps`, so a source sees the same pixels in training and inference.

Pixel convention: pixel ``(i, j)`` (row, column) covers
``[j - 0.5, j + 0.5) x [i - 0.5, i + 0.5)`` in ``(x, y)``; a stamp of size
``S`` around ``(x, y)`` is centred on the pixel ``(round(y), round(x))``,
which lands at index ``S // 2`` of the stamp (for even ``S`` the centre is
the lower-right of the four central pixels).
"""

from __future__ import annotations

__all__ = ["extract_stamps", "stamp_origin"]

import numpy as np


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
    cx = np.floor(np.asarray(x, dtype=float) + 0.5).astype(np.int64)
    cy = np.floor(np.asarray(y, dtype=float) + 0.5).astype(np.int64)
    return cx - half, cy - half


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
    image : `numpy.ndarray`, (H, W)
        Parent image.
    x, y : `numpy.ndarray`, (N,)
        Source positions in parent pixel coordinates.
    size : `int`
        Stamp size ``S``.
    fill : `float`, optional
        Value given to stamp pixels that fall off the parent image.

    Returns
    -------
    stamps : `numpy.ndarray`, (N, S, S)
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
    height, width = image.shape
    x0, y0 = stamp_origin(x, y, size)
    offsets = np.arange(size)
    rows = y0[:, None] + offsets[None, :]  # (N, S)
    cols = x0[:, None] + offsets[None, :]
    row_ok = (rows >= 0) & (rows < height)
    col_ok = (cols >= 0) & (cols < width)
    stamps = image[np.clip(rows, 0, height - 1)[:, :, None], np.clip(cols, 0, width - 1)[:, None, :]]
    valid = row_ok[:, :, None] & col_ok[:, None, :]
    off_image = ~valid.all(axis=(1, 2))
    if off_image.any():
        if np.isnan(fill) and not np.issubdtype(stamps.dtype, np.floating):
            stamps = stamps.astype(np.float32)
        stamps = np.where(valid, stamps, np.asarray(fill, dtype=stamps.dtype))
    return stamps, off_image
