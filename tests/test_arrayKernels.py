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

"""The compiled and vectorized kernels equal the NumPy computations they
replace, bit for bit."""

import unittest
import warnings

import numba
import numpy as np

import lsst.utils.tests
from lsst.meas.realbogus.triplets import _arrayKernels as arrayKernels
from lsst.meas.realbogus.triplets import (
    compile_kernels,
    cut_channel_stamps,
    extract_stamps,
    gather_windows,
    nanmedian_rows,
    stamp_origin,
)


class NanmedianRowsTestCase(lsst.utils.tests.TestCase):
    def reference(self, values):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(values, axis=-1)

    def test_equals_numpy_with_and_without_nan(self):
        rng = np.random.default_rng(1)
        for dtype in (np.float32, np.float64):
            for length in (1, 2, 7, 8, 2601):  # odd, even, and past NumPy's 600-value switch
                values = rng.normal(size=(3, 40, length)).astype(dtype)
                values[rng.random(values.shape) < 0.05] = np.nan
                values[0, 0] = np.nan  # no value at all
                values[0, 1, 1:] = np.nan  # one value
                values[0, 1, 0] = 0.5
                values[1, 2] = rng.normal(size=length)  # no NaN
                got = nanmedian_rows(values)
                self.assertEqual(got.shape, (3, 40))
                self.assertEqual(got.dtype, dtype)
                np.testing.assert_array_equal(got, self.reference(values))
                self.assertTrue(np.isnan(got[0, 0]))
                self.assertEqual(got[0, 1], 0.5)

    def test_no_nan_is_plain_median(self):
        values = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
        np.testing.assert_array_equal(nanmedian_rows(values), np.median(values, axis=-1))

    def test_hard_rows(self):
        """Ties, sorted runs, infinities and the sizes around the switch
        from direct selection to sample bracketing (128 values).
        """
        rng = np.random.default_rng(2)
        for length in (127, 128, 129, 130, 2600, 2601):
            base = rng.normal(size=(6, length))
            rows = [
                np.round(base[0] * 2),  # few distinct values
                np.sort(base[1]),
                -np.sort(base[2]),
                np.where(np.arange(length) < length // 2, 7.0, base[3]),  # half tied at the median
                np.full(length, 3.0),
                base[5],
            ]
            values = np.array(rows)
            values[5, ::7] = np.inf
            values[5, 3::11] = -np.inf
            values[5, 5::13] = np.nan
            for dtype in (np.float32, np.float64):
                got = nanmedian_rows(values.astype(dtype))
                np.testing.assert_array_equal(got, self.reference(values.astype(dtype)))

    def test_median_outside_the_sample(self):
        """The median below the smallest or above the largest sample value
        (the sample is every 41st value of a 2601-value row).
        """
        rng = np.random.default_rng(5)
        length = 2601
        step = length // 63
        sampled = np.arange(63) * step + step // 2
        for sign in (1.0, -1.0):
            values = rng.normal(size=(4, length)).astype(np.float32)
            values[:, sampled] = sign * (1000 + np.arange(63))  # sample far above (or below) the rest
            values[1, 5] = np.nan  # an even count
            np.testing.assert_array_equal(nanmedian_rows(values), self.reference(values))

    def test_empty_rows_and_bad_dtype(self):
        self.assertTrue(np.isnan(nanmedian_rows(np.zeros((2, 0), dtype=np.float32))).all())
        with self.assertRaisesRegex(TypeError, "float32 or float64"):
            nanmedian_rows(np.arange(4).reshape(2, 2))


class CutChannelStampsTestCase(lsst.utils.tests.TestCase):
    """`cut_channel_stamps` against gathering with `extract_stamps` and
    taking `numpy.nanmedian`, on images with every kind of missing pixel.
    """

    size = 9

    def setUp(self):
        rng = np.random.default_rng(3)
        shape = (40, 50)
        self.image = rng.normal(100, 5, shape).astype(np.float32)
        self.image[rng.random(shape) < 0.03] = np.nan
        self.image[rng.random(shape) < 0.01] = np.inf
        self.variance = rng.uniform(20, 30, shape).astype(np.float32)
        self.variance[rng.random(shape) < 0.05] = 0.0
        self.variance[rng.random(shape) < 0.02] = -1.0
        self.variance[rng.random(shape) < 0.02] = np.nan
        self.variance[rng.random(shape) < 0.02] = np.inf
        self.bad = rng.random(shape) < 0.02
        # Interior, every edge and corner, wholly off the image, and a stamp
        # in a block of NaN (nothing left to take a median of).
        self.image[20:31, 20:31] = np.nan
        # And one with pixels but no usable variance (no noise estimate).
        self.variance[5:16, 30:41] = 0.0
        self.x = np.array([25.0, 0.0, 49.0, 10.0, 10.0, 0.2, 49.6, -30.0, 25.0, 12.3, 35.0])
        self.y = np.array([12.0, 20.0, 20.0, 0.0, 39.0, 0.4, 39.4, 500.0, 25.0, 30.7, 10.0])

    def reference(self, mask=None, bits=None):
        pixels, _ = extract_stamps(self.image, self.x, self.y, self.size, fill=np.nan)
        variance, _ = extract_stamps(self.variance, self.x, self.y, self.size, fill=np.nan)
        missing = ~np.isfinite(pixels) | extract_stamps(self.bad, self.x, self.y, self.size, fill=True)[0]
        if mask is not None:
            packed, _ = extract_stamps(mask, self.x, self.y, self.size, fill=0)
            missing |= (packed & bits).any(axis=-1)
        pixels[missing] = np.nan
        on_image, _ = extract_stamps(np.ones(self.image.shape, bool), self.x, self.y, self.size, fill=False)
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            variance[missing | ~(variance > 0) | np.isinf(variance)] = np.nan
            n = len(self.x)
            return (pixels, missing, np.nanmedian(pixels.reshape(n, -1), axis=1),
                    np.nanmedian(variance.reshape(n, -1), axis=1), missing.sum(axis=(1, 2)),
                    (missing & on_image).sum(axis=(1, 2)))

    def standardized_reference(self, divisor, fill):
        """The reference stamps, standardized in NumPy."""
        pixels, missing, center, variance_median, _, _ = self.reference()
        on_image, _ = extract_stamps(np.ones(self.image.shape, bool), self.x, self.y, self.size, fill=False)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            values = ((pixels - center[:, None, None]) / np.sqrt(variance_median)[:, None, None]
                      ) / np.float32(divisor)
        unusable = ~(np.isfinite(values) | missing).all(axis=(1, 2))
        missing = missing | unusable[:, None, None]
        values[missing] = fill
        return (values, missing, center, variance_median, missing.sum(axis=(1, 2)),
                (missing & on_image).sum(axis=(1, 2)))

    def cut(self, **kwargs):
        n = len(self.x)
        cutouts = np.full((n + 2, 3, self.size, self.size), -7.0, dtype=np.float32)
        missing = np.zeros(cutouts.shape, dtype=bool)
        x0, y0 = stamp_origin(self.x, self.y, self.size)
        stamps = cut_channel_stamps(
            self.image, y0, x0, cutouts, missing, channel=1, start=2, variance=self.variance, bad=self.bad,
            **kwargs)
        # Only the requested channel and rows were written.
        self.assertTrue((cutouts[:2] == -7).all() and (cutouts[:, [0, 2]] == -7).all())
        self.assertFalse(missing[:2].any() or missing[:, [0, 2]].any())
        return (cutouts[2:, 1], missing[2:, 1], *stamps)

    def assertSameAsReference(self, got, expected):
        for g, e in zip(got, expected):
            self.assertEqual(g.dtype, e.dtype)
            np.testing.assert_array_equal(g, e)

    def test_equals_numpy(self):
        got = self.cut()
        expected = self.reference()
        self.assertSameAsReference(got, expected)
        pixels, missing, center, variance_median, count, on_image = got
        self.assertTrue(missing[7].all() and np.isnan(center[7]) and np.isnan(variance_median[7]))
        self.assertEqual((count[7], on_image[7]), (81, 0))  # wholly off the image
        self.assertTrue(missing[1, :, :4].all())  # x = 0: four columns off the image
        self.assertEqual(count[1] - on_image[1], 36)
        self.assertTrue(np.isnan(center[8]))  # the stamp in the block of NaN
        self.assertEqual((count[8], on_image[8]), (81, 81))
        self.assertTrue(np.isfinite(center[10]) and np.isnan(variance_median[10]))

    def test_standardized_equals_numpy(self):
        for divisor, fill in ((1.0, 0.0), (10.0, 0.0), (3.0, -2.5)):
            for size in (9, 51):
                with self.subTest(divisor=divisor, fill=fill, size=size):
                    self.size = size
                    got = self.cut(standardize=True, divisor=divisor, fill=fill)
                    expected = self.standardized_reference(divisor, fill)
                    self.assertSameAsReference(got, expected)
                    values, missing, _, _, count, on_image = got
                    if size == 9:  # no noise estimate: filled whole and all missing
                        self.assertTrue(missing[10].all() and (values[10] == fill).all())
                        self.assertEqual((count[10], on_image[10]), (81, 81))
                    self.assertTrue(np.isfinite(values).all())
                    self.assertTrue((values[~missing] != fill).any())

    def test_packed_masks_of_any_width(self):
        rng = np.random.default_rng(4)
        for nbytes in (1, 2, 3, 4, 8):
            mask = (rng.random((*self.image.shape, nbytes)) < 0.1).astype(np.uint8) * rng.integers(
                1, 256, (*self.image.shape, nbytes), dtype=np.uint8)
            bits = np.zeros(nbytes, dtype=np.uint8)
            bits[-1] = 0b00010100  # bits only in the last byte
            with self.subTest(nbytes=nbytes):
                got = self.cut(mask=mask, mask_bits=bits)
                self.assertSameAsReference(got, self.reference(mask, bits))
                self.assertGreater(got[1].sum(), self.cut()[1].sum())
        # No bits set: the mask is not consulted.
        self.assertSameAsReference(self.cut(mask=mask, mask_bits=np.zeros(8, np.uint8)), self.reference())

    def test_bracketed_medians_in_full_size_stamps(self):
        self.size = 51  # over 128 values a stamp: the sample-bracketed selection
        self.assertSameAsReference(self.cut(), self.reference())

    def test_missing_is_optional(self):
        x0, y0 = stamp_origin(self.x, self.y, 51)
        for standardize in (False, True):
            with self.subTest(standardize=standardize):
                recorded = np.empty((len(self.x), 1, 51, 51), dtype=np.float32)
                unrecorded = np.empty_like(recorded)
                kwargs = dict(variance=self.variance, bad=self.bad, standardize=standardize, divisor=10.0,
                              fill=-1.0)
                with_missing = cut_channel_stamps(self.image, y0, x0, recorded,
                                                  np.empty(recorded.shape, bool), **kwargs)
                without = cut_channel_stamps(self.image, y0, x0, unrecorded, None, **kwargs)
                np.testing.assert_array_equal(unrecorded, recorded)
                for got, expected in zip(without, with_missing):
                    np.testing.assert_array_equal(got, expected)

    def test_mask_bits_must_fit_the_mask(self):
        rng = np.random.default_rng(6)
        mask = rng.integers(0, 256, (*self.image.shape, 3), dtype=np.uint8)
        short = np.array([0, 0b100], dtype=np.uint8)  # no bits for the last byte
        self.assertSameAsReference(self.cut(mask=mask, mask_bits=short),
                                   self.reference(mask, np.append(short, 0).astype(np.uint8)))
        flat = mask[:, :, 0]
        self.assertSameAsReference(self.cut(mask=flat, mask_bits=np.array([8], np.uint8)),
                                   self.reference(flat[:, :, None], np.array([8], np.uint8)))
        for bits in (np.ones(4, np.uint8), np.ones((1, 3), np.uint8)):
            with self.assertRaisesRegex(ValueError, "do not fit a packed integer mask"):
                self.cut(mask=mask, mask_bits=bits)
        with self.assertRaisesRegex(ValueError, "do not fit a packed integer mask"):
            self.cut(mask=mask.astype(np.float32), mask_bits=short)

    def test_no_variance(self):
        x0, y0 = stamp_origin(self.x, self.y, self.size)
        cutouts = np.empty((len(self.x), 3, self.size, self.size), dtype=np.float32)
        center, variance_median, _, _ = cut_channel_stamps(self.image, y0, x0, cutouts,
                                                           np.empty(cutouts.shape, bool))
        self.assertTrue(np.isnan(variance_median).all())
        self.assertTrue(np.isfinite(center[:7]).all())

    def test_compile_kernels(self):
        compile_kernels()  # every mask width and both median dtypes, on tiny arrays
        self.assertEqual(len(arrayKernels._gather_median_standardize.signatures), 4)

    def test_refuses_bad_outputs_and_planes(self):
        x0, y0 = stamp_origin(self.x, self.y, self.size)
        shape = (len(self.x), 3, self.size, self.size)
        with self.assertRaisesRegex(ValueError, "cutouts must be a C-contiguous 4-d float32"):
            cut_channel_stamps(self.image, y0, x0, np.empty(shape), np.empty(shape, bool))
        with self.assertRaisesRegex(ValueError, "missing must be"):
            cut_channel_stamps(self.image, y0, x0, np.empty(shape, np.float32), np.empty(shape, bool)[:, 1:])
        with self.assertRaisesRegex(ValueError, "do not fit cutouts"):
            cut_channel_stamps(self.image, y0, x0, np.empty(shape, np.float32), np.empty(shape, bool), start=1)
        with self.assertRaisesRegex(ValueError, "do not fit cutouts"):
            cut_channel_stamps(self.image, y0, x0, np.empty(shape, np.float32), np.empty(shape, bool), channel=3)
        with self.assertRaisesRegex(ValueError, r"variance plane has shape \(4, 4\)"):
            cut_channel_stamps(self.image, y0, x0, np.empty(shape, np.float32), np.empty(shape, bool),
                               variance=np.ones((4, 4), np.float32))


class CompiledTestCase(lsst.utils.tests.TestCase):
    def test_uncacheable_function_still_compiles(self):
        """Where numba has nowhere to cache (here: a function without a
        source file), the kernel compiles per process instead of failing.
        """
        namespace = {}
        exec(compile("def add_one(x):\n    return x + 1\n", "<generated>", "exec"), namespace)
        with self.assertLogs("lsst.meas.realbogus.triplets", level="WARNING") as logs:
            compiled = arrayKernels._compiled(namespace["add_one"])
        self.assertIn("Compiling add_one in every process: cannot cache function", logs.output[0])
        self.assertEqual(compiled(41), 42)
        self.assertIsInstance(compiled, numba.core.registry.CPUDispatcher)


class GatherWindowsTestCase(lsst.utils.tests.TestCase):
    def test_equals_slices(self):
        image = np.arange(30 * 40, dtype=np.float32).reshape(30, 40)
        y0 = np.array([0, 5, 25])
        x0 = np.array([0, 33, 10])
        windows = gather_windows(image, y0, x0, 5)
        self.assertEqual(windows.shape, (3, 5, 5))
        for k in range(3):
            np.testing.assert_array_equal(windows[k], image[y0[k] : y0[k] + 5, x0[k] : x0[k] + 5])
        windows[0, 0, 0] = -1  # a copy, not a view of the image
        self.assertEqual(image[0, 0], 0)


class MemoryTester(lsst.utils.tests.MemoryTestCase):
    pass


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
