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

"""Vectorized array kernels of the cutout hot path.

Both replace a NumPy call that loops in Python per row or per element for
the shapes cutouts have (``benchmarks/cutouts.py`` measures the effect):
`numpy.nanmedian` runs ``apply_along_axis`` (one Python call per source and
channel) for rows longer than 600 values, and fancy indexing with (N, S, S)
index arrays gathers one element at a time.
"""

from __future__ import annotations

__all__ = ["gather_windows", "nanmedian_rows"]

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """Median over the last axis, ignoring NaN; equal to
    ``numpy.nanmedian(values, axis=-1)`` but without a Python loop.

    Parameters
    ----------
    values : `numpy.ndarray`, (..., K)
        Floating-point values.

    Returns
    -------
    median : `numpy.ndarray`, (...)
        In the dtype of ``values``; NaN where a row has no non-NaN value.
    """
    values = np.asarray(values)
    flat = values.reshape(-1, values.shape[-1])
    out = np.empty(len(flat), dtype=values.dtype)
    has_nan = np.isnan(flat).any(axis=1)
    clean = ~has_nan
    if clean.any():
        out[clean] = _median_rows(flat if clean.all() else flat[clean])
    if has_nan.any():
        # NaN sorts last, so the k non-NaN values of a row are its first k.
        rows = np.sort(flat[has_nan], axis=1)
        k = np.count_nonzero(~np.isnan(rows), axis=1)
        index = np.arange(len(rows))
        lo = rows[index, np.maximum((k - 1) // 2, 0)]
        hi = rows[index, np.maximum(k // 2, 0)]
        out[has_nan] = np.where(k > 0, (lo + hi) / 2, np.nan)
    return out.reshape(values.shape[:-1])


def _median_rows(rows: np.ndarray) -> np.ndarray:
    """Median of each row of a NaN-free 2-d array, as `numpy.median` computes
    it (the mean of the two middle values for an even count).

    A full sort rather than `numpy.partition`: introselect slows down ~5x
    on rows with many equal values (variance planes have them), a sort
    does not, and costs about the same as a partition otherwise.
    """
    k = rows.shape[1]
    middle = k // 2
    ordered = np.sort(rows, axis=1)
    if k % 2:
        return ordered[:, middle]
    return (ordered[:, middle - 1] + ordered[:, middle]) / 2


def gather_windows(image: np.ndarray, y0: np.ndarray, x0: np.ndarray, size: int) -> np.ndarray:
    """Copy square windows that lie wholly on an image.

    Parameters
    ----------
    image : `numpy.ndarray`, (H, W, ...)
        Parent image; trailing axes are carried along.
    y0, x0 : `numpy.ndarray` of `int`, (N,)
        Row and column of each window's first pixel; every window must lie
        on the image (callers handle the others).
    size : `int`
        Window size ``S``.

    Returns
    -------
    windows : `numpy.ndarray`, (N, S, S, ...)
        Copies, in the image's dtype.
    """
    # A strided view of every window; indexing it copies whole rows of S
    # pixels instead of gathering S*S scattered elements.
    view = sliding_window_view(image, (size, size), axis=(0, 1))  # (H', W', ..., S, S)
    windows = view[y0, x0]
    if image.ndim > 2:
        windows = np.moveaxis(windows, (-2, -1), (1, 2))
    return np.ascontiguousarray(windows)
