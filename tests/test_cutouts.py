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

"""Tests of the stamp extractor shared by measurement, training and scoring."""

import unittest

import numpy as np

import lsst.utils.tests
from lsst.meas.realbogus.cutouts import extract_stamps


class ExtractStampsTestCase(lsst.utils.tests.TestCase):
    def setUp(self):
        self.image = np.arange(40 * 30, dtype=np.float32).reshape(40, 30)  # (H, W)

    def test_matches_plain_slice(self):
        for size in (5, 6, 51):
            x = np.array([14.0, 14.4, 15.6])
            y = np.array([20.0, 19.5, 20.49])
            image = np.pad(self.image, 30)
            stamps, off = extract_stamps(image, x + 30, y + 30, size)
            self.assertEqual(stamps.shape, (3, size, size))
            self.assertFalse(off.any())
            for k in range(3):
                cx, cy = int(np.floor(x[k] + 0.5)) + 30, int(np.floor(y[k] + 0.5)) + 30
                expected = image[cy - size // 2: cy - size // 2 + size, cx - size // 2: cx - size // 2 + size]
                np.testing.assert_array_equal(stamps[k], expected)
            # The source pixel lands at index size // 2.
            self.assertEqual(stamps[0, size // 2, size // 2], image[50, 44])

    def test_edges_and_corners_padded(self):
        h, w = self.image.shape
        xs = np.array([0, w - 1, 0, w - 1, 15, 0, w - 1, 15], dtype=float)
        ys = np.array([0, 0, h - 1, h - 1, 0, 20, 20, h - 1], dtype=float)
        stamps, off = extract_stamps(self.image, xs, ys, 7, fill=-1.0)
        self.assertTrue(off.all())
        # Lower-left corner: 3 rows and 3 columns off the image.
        np.testing.assert_array_equal(stamps[0, :3, :], -1.0)
        np.testing.assert_array_equal(stamps[0, :, :3], -1.0)
        np.testing.assert_array_equal(stamps[0, 3:, 3:], self.image[0:4, 0:4])
        # Upper-right corner.
        np.testing.assert_array_equal(stamps[3, 3:, 3:][1:, 1:], -1.0)
        np.testing.assert_array_equal(stamps[3, :4, :4], self.image[h - 4:, w - 4:])
        # Fully off the image: all fill.
        far, off_far = extract_stamps(self.image, [-100.0], [500.0], 5, fill=0.0)
        self.assertTrue(off_far[0])
        np.testing.assert_array_equal(far, 0.0)

    def test_nan_fill_and_integer_images(self):
        stamps, off = extract_stamps(self.image.astype(np.int16), [0.0], [0.0], 3)
        self.assertTrue(np.isnan(stamps[0, 0, 0]))
        mask = np.zeros((10, 10), dtype=bool)
        mstamps, _ = extract_stamps(mask, [0.0], [0.0], 3, fill=True)
        self.assertEqual(mstamps.dtype, bool)
        self.assertTrue(mstamps[0, 0, 0])

    def test_zero_and_one_source(self):
        stamps, off = extract_stamps(self.image, np.zeros(0), np.zeros(0), 9)
        self.assertEqual(stamps.shape, (0, 9, 9))
        self.assertEqual(off.shape, (0,))
        stamps, off = extract_stamps(self.image, 10.0, 10.0, 9)
        self.assertEqual(stamps.shape, (1, 9, 9))

    def test_non_finite_and_huge_positions(self):
        """NaN, infinite and absurdly large positions are off the image, not
        wrapped around by the integer conversion.
        """
        x = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 2.0**63, 15.0])
        y = np.array([10.0, 10.0, 10.0, 10.0, 10.0, 10.0, np.nan])
        with np.errstate(invalid="raise", over="raise"):
            stamps, off = extract_stamps(self.image, x, y, 5, fill=-1.0)
        self.assertTrue(off.all())
        np.testing.assert_array_equal(stamps, -1.0)

    def test_bad_arguments(self):
        with self.assertRaisesRegex(ValueError, "stamp size"):
            extract_stamps(self.image, [1.0], [1.0], 0)
        with self.assertRaisesRegex(ValueError, "one length"):
            extract_stamps(self.image, [1.0, 2.0], [1.0], 3)


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
