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

"""Compiled and vectorized array kernels of the cutout hot path.

``benchmarks/cutouts.py`` measures their effect:

- `cut_channel_stamps`: one compiled pass per stamp (numba, without the
  GIL, so threads overlap) gathers the pixels of one channel, marks the
  missing ones (off the image, not finite, bad, masked), takes the two
  exact medians the normalization needs (pixels and usable variance) and,
  for the 'snr' normalizations, standardizes the stamp while it is in
  cache. In NumPy these were a dozen passes over every stamp, and the
  medians alone a ~25 us sort per 51x51 stamp, or a Python loop per row in
  `numpy.nanmedian`; the selection here finds the same value in ~3-5 us.
  The planes are read flat, by unsigned offsets (numba's negative-index
  wraparound cost as much as the pixel work), each test of a row is its own
  loop so that it vectorizes, and while a stamp's row is cut the same row
  of the next stamp is prefetched. Without the prefetch, 212 scattered
  stamps of a detector took twice as long as one stamp cut 212 times
  (70 against 32 us a source, three channels), waiting on memory;
  prefetching a whole stamp at once gave 64, row by row 39.
- `nanmedian_rows`: the same median over the rows of an array.
- `gather_windows`: fancy indexing with (N, S, S) index arrays gathers one
  element at a time; a strided view copies whole rows.
"""

from __future__ import annotations

__all__ = ["ChannelStamps", "compile_kernels", "cut_channel_stamps", "gather_windows", "nanmedian_rows"]

import logging
import math
from collections.abc import Callable
from typing import NamedTuple

import llvmlite.ir
import numba
import numba.core.cgutils
import numba.extending
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import first_line

_LOG = logging.getLogger(__name__)


def _compiled(function: Callable) -> Callable:
    """Compile ``function`` with numba, to run without the GIL.

    The machine code is cached on disk where numba finds a writable place
    (beside this module, or ``NUMBA_CACHE_DIR``); where there is none, the
    kernels are compiled once per process instead of failing the import.
    """
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError as error:  # numba: "cannot cache function ...: no locator available"
        _LOG.warning("Compiling %s in every process: %s", function.__name__, first_line(error))
        return numba.njit(nogil=True)(function)

@numba.extending.intrinsic
def _prefetch(typingctx, array, index):
    """Ask the CPU to fetch ``array[index]`` (flat, unchecked) into cache;
    a hint, so a stamp's scattered rows arrive while the one before is cut.
    """
    if not isinstance(array, numba.types.Array) or not isinstance(index, numba.types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        data = context.make_array(array_type)(context, builder, args[0])
        pointer = numba.core.cgutils.get_item_pointer(context, builder, array_type, data, [args[1]],
                                                      wraparound=False, boundscheck=False)
        byte_pointer = llvmlite.ir.IntType(8).as_pointer()
        int32 = llvmlite.ir.IntType(32)
        function = numba.core.cgutils.get_or_insert_function(
            builder.module, llvmlite.ir.FunctionType(llvmlite.ir.VoidType(), [byte_pointer, int32, int32, int32]),
            "llvm.prefetch.p0")
        # read, keep in all cache levels, data cache
        builder.call(function, [builder.bitcast(pointer, byte_pointer), int32(0), int32(3), int32(1)])
        return context.get_dummy_value()

    return numba.types.void(array, index), codegen


# Rows up to this long are selected directly; longer ones are first narrowed
# to the values between two sample points that bracket the median.
_DIRECT_SELECT = 128
_SAMPLE = 63


def nanmedian_rows(values: np.ndarray) -> np.ndarray:
    """Median over the last axis, ignoring NaN; equal to
    ``numpy.nanmedian(values, axis=-1)``, bit for bit.

    Parameters
    ----------
    values : `numpy.ndarray`, (..., K)
        Floating-point values.

    Returns
    -------
    median : `numpy.ndarray`, (...)
        In the dtype of ``values``; NaN where a row has no non-NaN value.
        Rows with an even count of values get the mean of the two middle
        ones, as `numpy.median` does.

    Notes
    -----
    Two differences from `numpy.nanmedian` that no image here reaches: an
    odd count gives the middle value itself, where NumPy's path for rows
    with NaN averages it with itself and overflows to inf above half the
    largest float; and where a row holds both +0 and -0 at the median,
    either zero may come back (NumPy's order of equal values is not
    defined either).
    """
    values = np.asarray(values)
    if not np.issubdtype(values.dtype, np.floating) or values.dtype.itemsize not in (4, 8):
        raise TypeError(f"nanmedian_rows needs float32 or float64 values; got {values.dtype}.")
    if values.shape[-1] == 0:
        return np.full(values.shape[:-1], np.nan, dtype=values.dtype)
    flat = np.ascontiguousarray(values.reshape(-1, values.shape[-1]))
    out = np.empty(len(flat), dtype=values.dtype)
    _nanmedian_rows(flat, out)
    return out.reshape(values.shape[:-1])


class ChannelStamps(NamedTuple):
    """What `cut_channel_stamps` measured of each stamp of one channel."""

    center: np.ndarray
    """Median of the stamp's pixels that are not missing (NaN if none),
    `numpy.float32`."""
    variance_median: np.ndarray
    """Median of the variance over those pixels, where it is finite and
    positive (NaN if none, or if there is no variance), `numpy.float32`."""
    missing_count: np.ndarray
    """Number of the stamp's pixels marked missing, `numpy.int64`."""
    missing_on_image: np.ndarray
    """How many of those lie on the image, `numpy.int64`."""


def cut_channel_stamps(
    image: np.ndarray,
    y0: np.ndarray,
    x0: np.ndarray,
    cutouts: np.ndarray,
    missing: np.ndarray | None = None,
    channel: int = 0,
    start: int = 0,
    variance: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    mask_bits: np.ndarray | None = None,
    bad: np.ndarray | None = None,
    standardize: bool = False,
    divisor: float = 1.0,
    fill: float = np.nan,
) -> ChannelStamps:
    """Cut one channel's stamps, take the medians that normalize them and,
    optionally, standardize them.

    Parameters
    ----------
    image : `numpy.ndarray`, (H, W)
        Pixels (converted to `numpy.float32`).
    y0, x0 : `numpy.ndarray` of `int`, (N,)
        Row and column of each stamp's first pixel (`stamp_origin`);
        stamps may reach off the image.
    cutouts : `numpy.ndarray` of `numpy.float32`, (M, C, S, S), C-contiguous
        Output: ``cutouts[start + i, channel]`` receives stamp ``i``.
    missing : `numpy.ndarray` of `bool`, (M, C, S, S), C-contiguous, optional
        Output, likewise: pixels off the image, not finite, ``bad``, or with
        a bit of ``mask_bits`` set in ``mask`` (and, if standardized, every
        pixel of a stamp that cannot be). Not recorded if `None` (the
        counts are).
    channel : `int`, optional
        Channel index to write.
    start : `int`, optional
        Index of stamp 0 along the first axis of ``cutouts``.
    variance : `numpy.ndarray`, (H, W), optional
        Variance (converted to `numpy.float32`).
    mask : `numpy.ndarray` of unsigned `int`, (H, W, B), optional
        A packed bit mask (as `lsst.images.Mask.array`).
    mask_bits : `numpy.ndarray`, (B,), optional
        The bits of ``mask`` that mean missing.
    bad : `numpy.ndarray` of `bool`, (H, W), optional
        Missing pixels.
    standardize : `bool`, optional
        If `False`, a stamp holds its pixels, NaN where missing. If `True`,
        it holds ``((v - center) / sqrt(variance_median)) / divisor`` and
        ``fill`` where missing; a stamp where that is not finite for some
        pixel (no usable noise, or an overflow) is all ``fill`` and all
        missing.
    divisor : `float`, optional
        The last divisor of a standardized stamp (converted to
        `numpy.float32`; the asinh softening, or 1).
    fill : `float`, optional
        Value of the missing pixels of a standardized stamp.

    Returns
    -------
    stamps : `ChannelStamps`
        Per stamp: the two medians and the counts of missing pixels.

    Notes
    -----
    Equal, bit for bit, to gathering the stamps and taking
    ``numpy.nanmedian`` of the pixels and of the usable variance (but for
    the corner cases in `nanmedian_rows`), then doing the standardization
    in `numpy.float32` arithmetic in the order written above.
    """
    outputs = [("cutouts", cutouts, np.float32)]
    if missing is not None:
        outputs.append(("missing", missing, np.bool_))
    for name, array, dtype in outputs:
        if array.dtype != dtype or array.ndim != 4 or not array.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous 4-d {np.dtype(dtype)} array.")
    count = len(y0)
    # The compiled loop does not check bounds, so everything is checked here.
    if cutouts.shape[2] != cutouts.shape[3] or (missing is not None and missing.shape != cutouts.shape):
        raise ValueError(f"cutouts {cutouts.shape} and missing {getattr(missing, 'shape', None)} must be "
                         "one (M, C, S, S) shape.")
    if len(x0) != count or not (0 <= start and start + count <= len(cutouts)) or not (
        0 <= channel < cutouts.shape[1]
    ):
        raise ValueError(f"{count} stamps from index {start} into channel {channel} do not fit cutouts "
                         f"{cutouts.shape} (or x0 has {len(x0)} values).")
    image = np.ascontiguousarray(image, dtype=np.float32)
    variance = np.ascontiguousarray(_ABSENT_VARIANCE if variance is None else variance, dtype=np.float32)
    mask, mask_bits = _mask_words(mask, mask_bits)
    bad = np.ascontiguousarray(_ABSENT_BAD if bad is None else bad, dtype=bool)
    for name, plane in (("variance", variance), ("mask", mask), ("bad", bad)):
        if plane.size and plane.shape[:2] != image.shape:
            raise ValueError(f"the {name} plane has shape {plane.shape[:2]}, the image {image.shape}.")
    result = ChannelStamps(
        center=np.empty(count, dtype=np.float32),
        variance_median=np.empty(count, dtype=np.float32),
        missing_count=np.empty(count, dtype=np.int64),
        missing_on_image=np.empty(count, dtype=np.int64),
    )
    _gather_median_standardize(
        image, variance, mask, mask_bits, bad, np.asarray(y0, dtype=np.int64), np.asarray(x0, dtype=np.int64),
        int(channel), int(start), bool(standardize), np.float32(divisor), np.float32(fill), cutouts,
        _NO_MISSING if missing is None else missing, *result,
    )
    return result


def _mask_words(mask: np.ndarray | None, bits: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Return a packed mask as (H, W, K) words and its bits as (K,) words.

    A mask of 1, 2, 4 or 8 bytes per pixel becomes one unsigned word per
    pixel (a view), so a pixel is tested with one AND instead of one per
    byte; only the zero test matters, so byte order does not.
    """
    if mask is None or bits is None or not np.any(bits):
        return _ABSENT_MASK, _ABSENT_MASK_BITS
    mask = np.ascontiguousarray(mask)
    if mask.ndim == 2:
        mask = mask[:, :, np.newaxis]
    bits = np.asarray(bits)
    # The compiled loop reads one mask element per bit word: more words
    # than the mask has would read past it.
    if mask.ndim != 3 or not np.issubdtype(mask.dtype, np.integer) or bits.ndim != 1 or (
        len(bits) > mask.shape[2]
    ):
        raise ValueError(f"mask bits of shape {bits.shape} do not fit a packed integer mask of shape "
                         f"{mask.shape} (one bit word per element of its last axis).")
    words = np.zeros(mask.shape[2], dtype=mask.dtype)
    words[: len(bits)] = bits
    nbytes = mask.shape[2] * mask.dtype.itemsize
    if nbytes in (1, 2, 4, 8):
        word = np.dtype(f"u{nbytes}")
        return mask.view(word), words.view(word)
    return mask, words


def compile_kernels() -> None:
    """Compile the kernels for the types the extractor uses, so that the
    first detector a process cuts does not pay for it.

    numba compiles a kernel on its first call (about 5 s for all of them)
    and caches the machine code beside this module, or under
    ``NUMBA_CACHE_DIR`` where that is not writable; later processes load it
    (about 0.3 s). Call this once when building an image or a software
    environment (``python -c "from lsst.meas.realbogus.triplets import
    compile_kernels; compile_kernels()"``).
    """
    image = np.zeros((4, 4), dtype=np.float32)
    for nbytes in (1, 2, 4, 8):
        cutouts = np.empty((1, 1, 2, 2), dtype=np.float32)
        cut_channel_stamps(image, np.zeros(1, np.int64), np.zeros(1, np.int64), cutouts,
                           np.empty(cutouts.shape, dtype=bool), variance=image,
                           mask=np.zeros((4, 4, nbytes), np.uint8), mask_bits=np.ones(nbytes, np.uint8))


# Zero-size stand-ins for absent planes (numba needs arrays of fixed types).
_ABSENT_VARIANCE = np.empty((0, 0), dtype=np.float32)
_ABSENT_MASK = np.empty((0, 0, 0), dtype=np.uint8)
_ABSENT_MASK_BITS = np.empty(0, dtype=np.uint8)
_ABSENT_BAD = np.empty((0, 0), dtype=bool)
_NO_MISSING = np.empty((0, 0, 0, 0), dtype=bool)


@_compiled
def _gather_median_standardize(image, variance, mask, mask_bits, bad, y0, x0, channel, start, standardize,
                               divisor, fill, cutouts, missing, center, variance_median, missing_count,
                               missing_on_image):  # pragma: no cover - compiled
    """The compiled body of `cut_channel_stamps`, one pass per stamp: gather
    its pixels (NaN where missing) and usable variance, take the two
    medians and, if ``standardize``, standardize it while it is in cache.
    """
    size = cutouts.shape[2]
    area = size * size
    height, width = image.shape
    words = np.uint64(mask_bits.size)
    # Flat arrays indexed by unsigned offsets: numba then skips its
    # negative-index wraparound, which cost as much as the pixel work.
    image_flat = image.reshape(-1)
    variance_flat = variance.reshape(-1)
    mask_flat = mask.reshape(-1)
    bad_flat = bad.reshape(-1)
    out_flat = cutouts.reshape(-1)
    record = missing.size > 0
    lost_flat = missing.reshape(-1)
    # The usable variance of a stamp, NaN elsewhere (as the stamp is NaN
    # where missing); only stamps with NaN are compacted for the median.
    usable_variance = np.empty(area, np.float32)
    work = np.empty(area, np.float32)
    dense = np.empty(area, np.float32)
    sample = np.empty(_SAMPLE, np.float32)
    row_lost = np.empty(size, np.bool_)
    for i in range(len(y0)):
        base = ((start + i) * cutouts.shape[1] + channel) * area
        stamp = out_flat[base : base + area]
        lost_stamp = lost_flat[base : base + area] if record else lost_flat
        # Columns [first, stop) of the stamp are on the image; clipping
        # once per stamp keeps bounds tests out of the pixel loop.
        first = min(max(-x0[i], 0), size)
        stop = max(min(width - x0[i], size), first)
        on_image = 0
        n_pixels = 0
        n_variance = 0
        for r in range(size):
            # Row r of the next stamp, a stamp's time ahead of its use.
            if i + 1 < len(y0):
                _prefetch_row(image_flat, variance_flat, mask_flat, mask_bits.size, y0[i + 1] + r, x0[i + 1],
                              size, height, width)
            row = y0[i] + r
            first_on, stop_on = (first, stop) if 0 <= row < height else (size, size)
            on_image += stop_on - first_on
            _mark_off_image(stamp, usable_variance, lost_stamp, r * size, r * size + first_on, record)
            _mark_off_image(stamp, usable_variance, lost_stamp, r * size + stop_on, (r + 1) * size, record)
            if stop_on == first_on:
                continue
            present, usable = _gather_row(
                image_flat, variance_flat, mask_flat, mask_bits, words, bad_flat,
                np.uint64(row * width + x0[i] + first_on), np.uint64(stop_on - first_on),
                stamp, lost_stamp, usable_variance, np.uint64(r * size + first_on), row_lost,
            )
            n_pixels += present
            n_variance += usable
        center[i] = _median(stamp, n_pixels, sample, work, dense)
        variance_median[i] = _median(usable_variance, n_variance, sample, work, dense)
        n_missing = area - n_pixels
        n_missing_on_image = on_image - n_pixels
        if standardize:
            # Done while the stamp is in cache, with NumPy's float32
            # operations in NumPy's order: (v - center) / noise / divisor.
            # numba divides float32 in float64; rounding each step to
            # float32 gives float32 division exactly (double rounding is
            # harmless for a quotient).
            middle = center[i]
            noise = np.float32(math.sqrt(np.float64(variance_median[i])))
            unusable = False
            for c in range(area):
                v = stamp[c]
                lost = v != v  # a stamp is NaN exactly where missing
                value = np.float32(np.float32(np.float32(v - middle) / noise) / divisor)
                unusable |= (not lost) & (value - value != 0)
                stamp[c] = fill if lost else value
            if unusable:
                stamp[:] = fill
                if record:
                    lost_stamp[:] = True
                n_missing = area
                n_missing_on_image = on_image
        missing_count[i] = n_missing
        missing_on_image[i] = n_missing_on_image


@_compiled
def _mark_off_image(stamp, usable_variance, lost_stamp, begin, end, record):  # pragma: no cover - compiled
    """Mark stamp pixels [begin, end), which are off the image, missing."""
    nan = np.float32(np.nan)
    for c in range(begin, end):
        stamp[c] = nan
        usable_variance[c] = nan
        if record:
            lost_stamp[c] = True


@_compiled
def _gather_row(image, variance, mask, mask_bits, words, bad, src, count, stamp, lost_stamp,
                usable_variance, dst, lost):  # pragma: no cover - compiled
    """Gather ``count`` pixels of a stamp row from offset ``src`` of the
    flat planes to offset ``dst`` of the stamp (NaN where missing), of its
    usable variance (NaN where not usable) and, unless it is empty, of
    ``lost_stamp``; return how many pixels are present and how many of
    their variances usable. Each step is its own loop without branches, so
    that it vectorizes: one loop with every test took twice as long (43
    against 31 us a source for the whole kernel, stamps in cache).
    """
    nan = np.float32(np.nan)
    for c in range(count):
        v = image[src + c]
        lost[c] = v - v != 0  # not finite; cheaper than np.isfinite here
    if bad.size:
        for c in range(count):
            lost[c] |= bad[src + c]
    if mask.size:
        if words == 1:  # the usual case
            bit = mask_bits[0]
            for c in range(count):
                lost[c] |= (mask[src + c] & bit) != 0
        else:
            for c in range(count):
                for b in range(words):
                    lost[c] |= (mask[(src + c) * words + b] & mask_bits[b]) != 0
    present = 0
    for c in range(count):
        v = image[src + c]
        stamp[dst + c] = nan if lost[c] else v
        present += not lost[c]
    usable = 0
    if variance.size:
        for c in range(count):
            w = variance[src + c]
            ok = (not lost[c]) & (w > 0) & (w - w == 0)  # positive and finite
            usable_variance[dst + c] = w if ok else nan
            usable += ok
    if lost_stamp.size:
        for c in range(count):
            lost_stamp[dst + c] = lost[c]
    return present, usable


@_compiled
def _prefetch_row(image, variance, mask, words, row, x0, size, height, width):  # pragma: no cover - compiled
    """Prefetch, one hint per cache line, the on-image part of one stamp
    row (``row``, columns from ``x0``) of the flat image, variance and mask
    planes (the last two may be empty).
    """
    if row < 0 or row >= height or width == 0:
        return
    line = 64  # bytes
    begin = row * width + min(max(x0, 0), width - 1)
    end = row * width + min(max(x0 + size - 1, 0), width - 1)
    pixel_step = line // image.itemsize
    for k in range(begin, end + pixel_step, pixel_step):
        _prefetch(image, min(k, end))
        if variance.size:
            _prefetch(variance, min(k, end))
    if mask.size:
        mask_step = max(line // mask.itemsize, 1)
        for k in range(begin * words, (end + 1) * words + mask_step, mask_step):
            _prefetch(mask, min(k, (end + 1) * words - 1))


@_compiled
def _nanmedian_rows(rows, out):  # pragma: no cover - compiled
    count, length = rows.shape
    work = np.empty(length, rows.dtype)
    dense = np.empty(length, rows.dtype)
    sample = np.empty(_SAMPLE, rows.dtype)
    for r in range(count):
        row = rows[r]
        n = 0
        for j in range(length):
            n += row[j] == row[j]  # not NaN
        out[r] = _median(row, n, sample, work, dense)


@_compiled
def _median(values, n, sample, work, dense):  # pragma: no cover - compiled
    """Median, as `numpy.median` gives it, of the n values of ``values``
    that are not NaN; NaN if n is 0. Where there is NaN, the n values are
    first copied to ``dense``.
    """
    if n == 0:
        return np.nan
    if n < values.size:
        m = 0
        for j in range(values.size):
            v = values[j]
            dense[m] = v
            m += v == v  # branch-free: keep all but NaN
        return _dense_median(dense[:n], sample, work)
    return _dense_median(values, sample, work)


@_compiled
def _dense_median(values, sample, work):  # pragma: no cover - compiled
    n = values.size
    upper = _kth_smallest(values, n // 2, sample, work)
    if n % 2:
        return upper
    lower = _kth_smallest(values, n // 2 - 1, sample, work)
    return (lower + upper) / 2


@_compiled
def _kth_smallest(values, k, sample, work):  # pragma: no cover - compiled
    """The k-th smallest (0-based) of ``values``, which has no NaN and is
    not modified.
    """
    n = values.size
    if n <= _DIRECT_SELECT:
        work[:n] = values
        return _select(work, n, k)
    # Sort a sample, then binary-search it, by counting, for the last sample
    # value with at most k values below it; the answer lies between that
    # sample value and the next, where few values are. Counting and the
    # branch-free copy below run at memory speed, unlike a sort.
    step = n // _SAMPLE
    for j in range(_SAMPLE):
        sample[j] = values[j * step + step // 2]
    _insertion_sort(sample)  # faster than sample.sort() for so few
    low, high = -1, _SAMPLE - 1
    while low < high:
        mid = (low + high + 1) // 2
        if _count_below(values, sample[mid]) <= k:
            low = mid
        else:
            high = mid - 1
    m = 0
    if low < 0:
        top = sample[0]
        for j in range(n):
            work[m] = values[j]
            m += values[j] < top
        return _select(work, m, k)
    bottom = sample[low]
    # Many equal values (variance planes have them) end here, without a copy.
    at_most = 0
    for j in range(n):
        at_most += values[j] <= bottom
    if at_most > k:
        return bottom
    if low + 1 < _SAMPLE:
        top = sample[low + 1]
        for j in range(n):
            v = values[j]
            work[m] = v
            m += (v > bottom) & (v < top)
    else:
        for j in range(n):
            work[m] = values[j]
            m += values[j] > bottom
    return _select(work, m, k - at_most)


@_compiled
def _insertion_sort(a):  # pragma: no cover - compiled
    for i in range(1, a.size):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@_compiled
def _count_below(values, threshold):  # pragma: no cover - compiled
    c = 0
    for j in range(values.size):
        c += values[j] < threshold
    return c


@_compiled
def _select(a, n, k):  # pragma: no cover - compiled
    """Quickselect (Hoare partition, median-of-three pivot) of a[:n] in
    place; returns the k-th smallest.
    """
    lo, hi = 0, n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        x, y, z = a[lo], a[mid], a[hi]
        if x > y:
            x, y = y, x
        if y > z:
            y = z
        if x > y:
            y = x
        pivot = y
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return a[k]
    return a[k]


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
