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

"""The vectorized kernels equal the NumPy calls they replace, bit for bit."""

import unittest
import warnings

import numpy as np

import lsst.utils.tests

from lsst.meas.realbogus.arrayKernels import gather_windows, nanmedian_rows


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
