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

"""Tests of the triplet extractor shared by training and scoring."""

import unittest

import numpy as np

import lsst.utils.tests
from lsst.meas.realbogus.triplets import CHANNELS, CutoutConfig, ImagePlanes, extract_triplets


def make_planes(shape=(60, 80), seed=0, sigma=(2.0, 3.0, 4.0)):
    """Three channels of Gaussian noise with known variance, distinct
    offsets, and a unique value pattern to check positions.
    """
    rng = np.random.default_rng(seed)
    planes = []
    for c in range(3):
        image = (rng.normal(100.0 * c, sigma[c], shape)).astype(np.float32)
        planes.append(ImagePlanes(image=image, variance=np.full(shape, sigma[c] ** 2, np.float32)))
    return planes


class TripletTestCase(lsst.utils.tests.TestCase):
    def config(self, size, normalization="none"):
        config = CutoutConfig()
        config.size = size
        config.normalization = normalization
        return config

    def test_matches_plain_slice(self):
        planes = make_planes()
        x = np.array([30.0, 40.4, 25.6])
        y = np.array([20.0, 30.5, 29.49])
        for size in (5, 6, 11, 16):
            t = extract_triplets(planes, x, y, self.config(size))
            self.assertEqual(t.cutouts.shape, (3, 3, size, size))
            self.assertEqual(t.cutouts.dtype, np.float32)
            self.assertFalse(t.edge.any() or t.noData.any())
            np.testing.assert_array_equal(t.noDataFraction, 0.0)
            for k in range(3):
                cx, cy = int(np.floor(x[k] + 0.5)), int(np.floor(y[k] + 0.5))
                for c in range(3):
                    expected = planes[c].image[cy - size // 2: cy - size // 2 + size,
                                               cx - size // 2: cx - size // 2 + size]
                    np.testing.assert_array_equal(t.cutouts[k, c], expected)

    def test_channel_order(self):
        self.assertEqual(CHANNELS, ("template", "science", "difference"))
        planes = make_planes()
        t = extract_triplets(planes, [40.0], [30.0], self.config(7))
        # make_planes offsets channel c by 100*c.
        np.testing.assert_allclose(t.cutouts[0].mean(axis=(1, 2)), [0.0, 100.0, 200.0], atol=5.0)

    def test_origin_offset(self):
        planes = make_planes()
        shifted = [ImagePlanes(p.image, p.variance, None, x0=1000, y0=2000) for p in planes]
        a = extract_triplets(planes, [30.0], [20.0], self.config(9))
        b = extract_triplets(shifted, [1030.0], [2020.0], self.config(9))
        np.testing.assert_array_equal(a.cutouts, b.cutouts)

    def test_edges_and_corners_padded_and_flagged(self):
        planes = make_planes()
        h, w = planes[0].shape
        xs = np.array([0, w - 1, 0, w - 1, 40, 0, w - 1, 40, 40], dtype=float)
        ys = np.array([0, 0, h - 1, h - 1, 0, 30, 30, h - 1, 30], dtype=float)
        config = self.config(9)
        config.fillValue = -7.0
        t = extract_triplets(planes, xs, ys, config)
        self.assertEqual(len(t), 9)
        np.testing.assert_array_equal(t.edge, [True] * 8 + [False])
        # Padding is not missing data.
        self.assertFalse(t.noData.any())
        # Lower-left corner: 4 rows and 4 columns off the image, filled.
        np.testing.assert_array_equal(t.cutouts[0, :, :4, :], -7.0)
        np.testing.assert_array_equal(t.cutouts[0, :, :, :4], -7.0)
        np.testing.assert_array_equal(t.cutouts[0, 1, 4:, 4:], planes[1].image[0:5, 0:5])
        # Upper-right corner.
        np.testing.assert_array_equal(t.cutouts[3, :, 5:, :], -7.0)
        np.testing.assert_array_equal(t.cutouts[3, 2, :5, :5], planes[2].image[h - 5:, w - 5:])
        self.assertAlmostEqual(float(t.noDataFraction[0]), 1 - 25 / 81, places=6)
        self.assertEqual(float(t.noDataFraction[8]), 0.0)

    def test_far_off_image(self):
        planes = make_planes()
        t = extract_triplets(planes, [-100.0], [-100.0], self.config(5, "snr"))
        self.assertTrue(t.edge[0])
        np.testing.assert_array_equal(t.cutouts, 0.0)
        self.assertEqual(float(t.noDataFraction[0]), 1.0)
        self.assertTrue(np.isfinite(t.cutouts).all())

    def test_nan_inf_and_masked_pixels_filled_and_flagged(self):
        planes = make_planes()
        planes[0].image[30, 40] = np.nan
        planes[1].image[31, 41] = np.inf
        bad = np.zeros(planes[2].shape, dtype=bool)
        bad[10:12, 10:12] = True
        planes[2] = ImagePlanes(planes[2].image, planes[2].variance, bad)
        x = np.array([40.0, 10.0, 60.0])
        y = np.array([30.0, 10.0, 45.0])
        for normalization in ("none", "snr", "snrAsinh", "l2"):
            t = extract_triplets(planes, x, y, self.config(5, normalization))
            self.assertTrue(np.isfinite(t.cutouts).all(), normalization)
            np.testing.assert_array_equal(t.noData, [True, True, False])
            self.assertFalse(t.edge.any())
            self.assertEqual(t.cutouts[0, 0, 2, 2], 0.0)
            self.assertEqual(t.cutouts[0, 1, 3, 3], 0.0)
            np.testing.assert_array_equal(t.cutouts[1, 2, 2:4, 2:4], 0.0)
            self.assertAlmostEqual(float(t.noDataFraction[0]), 2 / 75, places=6)

    def test_all_missing_channel(self):
        planes = make_planes()
        planes[0].image[:] = np.nan
        t = extract_triplets(planes, [40.0], [30.0], self.config(7, "snr"))
        self.assertTrue(t.noData[0])
        np.testing.assert_array_equal(t.cutouts[0, 0], 0.0)
        self.assertTrue(np.isfinite(t.cutouts).all())
        self.assertAlmostEqual(float(t.noDataFraction[0]), 1 / 3, places=6)

    def test_snr_normalization(self):
        planes = make_planes(sigma=(2.0, 3.0, 4.0))
        t = extract_triplets(planes, [40.0], [30.0], self.config(25, "snr"))
        for c, sigma in enumerate((2.0, 3.0, 4.0)):
            stamp = planes[c].image[18:43, 28:53]
            expected = (stamp - np.median(stamp)) / sigma
            np.testing.assert_allclose(t.cutouts[0, c], expected, rtol=1e-5, atol=1e-5)
            self.assertAlmostEqual(float(np.std(t.cutouts[0, c])), 1.0, delta=0.15)

    def test_asinh_compresses_bright_pixels(self):
        planes = make_planes()
        planes[2].image[30, 40] += 1e5
        config = self.config(9, "snrAsinh")
        t = extract_triplets(planes, [40.0], [30.0], config)
        peak = t.cutouts[0, 2, 4, 4]
        s = config.asinhSoftening
        snr = (planes[2].image[30, 40] - np.median(planes[2].image[26:35, 36:45])) / 4.0
        self.assertAlmostEqual(float(peak), s * np.arcsinh(snr / s), delta=0.05)
        self.assertLess(peak, 100.0)

    def test_l2_normalization(self):
        planes = make_planes()
        t = extract_triplets(planes, [40.0], [30.0], self.config(11, "l2"))
        np.testing.assert_allclose(np.sqrt((t.cutouts[0] ** 2).sum(axis=(1, 2))), 1.0, rtol=1e-5)

    def test_single_and_zero_sources(self):
        planes = make_planes()
        one = extract_triplets(planes, [40.0], [30.0], self.config(51, "snr"))
        self.assertEqual(one.cutouts.shape, (1, 3, 51, 51))
        zero = extract_triplets(planes, np.array([]), np.array([]), self.config(51, "snr"))
        self.assertEqual(zero.cutouts.shape, (0, 3, 51, 51))
        self.assertEqual(zero.edge.shape, (0,))
        self.assertEqual(zero.noDataFraction.dtype, np.float32)

    def test_batch_independence(self):
        """A source's cutout does not depend on which others are cut with it."""
        planes = make_planes()
        rng = np.random.default_rng(3)
        x, y = rng.uniform(-5, 85, 20), rng.uniform(-5, 65, 20)
        config = self.config(13, "snrAsinh")
        together = extract_triplets(planes, x, y, config).cutouts
        for k in (0, 7, 19):
            np.testing.assert_array_equal(extract_triplets(planes, x[k:k + 1], y[k:k + 1], config).cutouts[0],
                                          together[k])

    def test_shape_mismatch_refused(self):
        planes = make_planes()
        planes[1] = ImagePlanes(planes[1].image[:, :70], planes[1].variance[:, :70])
        with self.assertRaisesRegex(ValueError, "science image covers .* one pixel grid"):
            extract_triplets(planes, [10.0], [10.0], self.config(5))
        with self.assertRaisesRegex(ValueError, "need 3 channels"):
            extract_triplets(planes[:2], [10.0], [10.0], self.config(5))

    def test_variance_required_for_snr(self):
        planes = [ImagePlanes(p.image) for p in make_planes()]
        with self.assertRaisesRegex(ValueError, "needs the template variance"):
            extract_triplets(planes, [10.0], [10.0], self.config(5, "snr"))
        # Raised in whichever thread cuts the channel, re-raised in the caller.
        planes = make_planes()
        planes[2] = ImagePlanes(planes[2].image)
        for threads in (2, 4):
            with self.assertRaisesRegex(ValueError, "needs the difference variance"):
                extract_triplets(planes, [10.0, 20.0, 30.0], [10.0, 12.0, 14.0], self.config(5, "snr"),
                                 threads=threads)

    def test_metadata_round_trip(self):
        config = self.config(63, "l2")
        config.fillValue = -1.0
        again = CutoutConfig.from_metadata(config.to_metadata())
        self.assertEqual(again.to_metadata(), config.to_metadata())
        bad = config.to_metadata()
        bad["channels"] = ["science", "template", "difference"]
        with self.assertRaisesRegex(ValueError, "channel order"):
            CutoutConfig.from_metadata(bad)
        with self.assertRaisesRegex(ValueError, "unknown cutout setting 'colour'"):
            CutoutConfig.from_metadata({**config.to_metadata(), "colour": 1})
        with self.assertRaisesRegex(ValueError, "invalid cutout setting size"):
            CutoutConfig.from_metadata({**config.to_metadata(), "size": 1000})


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
