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

import itertools
import threading
import time
import unittest
import warnings

import numpy as np

import lsst.utils.tests
from lsst.meas.realbogus.triplets import (
    CutoutConfig,
    ImagePlanes,
    extract_stamps,
    extract_triplets,
    stamp_origin,
)
from lsst.meas.realbogus.triplets._threads import run_in_threads


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


class TripletDefinitionTestCase(lsst.utils.tests.TestCase):
    """`extract_triplets` against the definition of a triplet written out
    one source and one pixel at a time in NumPy, bit for bit, for every
    normalization and on images with every kind of missing pixel.
    """

    size = 15  # 225 pixels: over the compiled median's direct-selection size

    def setUp(self):
        rng = np.random.default_rng(7)
        shape = (60, 70)
        self.planes = []
        for c in range(3):
            image = rng.normal(100 * c, 5, shape).astype(np.float32)
            image[rng.random(shape) < 0.03] = np.nan
            image[rng.random(shape) < 0.01] = -np.inf
            variance = rng.uniform(20, 30, shape).astype(np.float32)
            variance[rng.random(shape) < 0.05] = 0.0
            variance[rng.random(shape) < 0.02] = np.nan
            variance[40:55, 5:20] = -1.0  # no usable variance: the channel is filled
            mask = rng.integers(0, 256, (*shape, 2), dtype=np.uint8)
            mask[rng.random(shape) > 0.05] = 0
            self.planes.append(ImagePlanes(image=image, variance=variance, bad=rng.random(shape) < 0.02,
                                           x0=1000, y0=2000, mask=mask,
                                           maskBits=np.array([0, 0b10], dtype=np.uint8)))
        self.planes[1].image[5:25, 30:50] = np.nan  # nothing left to take a median of
        x = np.array([35.0, 0.0, 69.0, 12.0, 40.0, 0.3, 69.6, -40.0, 40.0, 12.0, 33.3])
        y = np.array([30.0, 20.0, 20.0, 0.0, 59.0, 0.4, 59.4, 300.0, 15.0, 47.0, 10.6])
        self.x, self.y = x + 1000, y + 2000

    def definition(self, config):
        """Cutouts, edge, noData and noDataFraction as documented."""
        size = config.size
        n = len(self.x)
        cutouts = np.empty((n, 3, size, size), dtype=np.float32)
        edge = np.zeros(n, dtype=bool)
        on_image_missing = np.zeros(n, dtype=bool)
        filled = np.zeros(n, dtype=int)
        for i in range(n):
            for c, p in enumerate(self.planes):
                x0, y0 = stamp_origin(self.x[i : i + 1] - p.x0, self.y[i : i + 1] - p.y0, size)
                pixels = np.full((size, size), np.nan, dtype=np.float32)
                variance = np.full((size, size), np.nan, dtype=np.float32)
                missing = np.ones((size, size), dtype=bool)
                off = np.ones((size, size), dtype=bool)
                for r in range(size):
                    for k in range(size):
                        row, col = y0[0] + r, x0[0] + k
                        if not (0 <= row < p.shape[0] and 0 <= col < p.shape[1]):
                            continue
                        off[r, k] = False
                        v = p.image[row, col]
                        missing[r, k] = (not np.isfinite(v) or p.bad[row, col]
                                         or bool((p.mask[row, col] & p.maskBits).any()))
                        if not missing[r, k]:
                            pixels[r, k] = v
                            w = p.variance[row, col]
                            variance[r, k] = w if (w > 0 and np.isfinite(w)) else np.nan
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    center = np.nanmedian(pixels)
                    noise = np.sqrt(np.nanmedian(variance))
                    if config.normalization == "none":
                        out = pixels
                    elif config.normalization == "l2":
                        out = pixels - center
                        norm = np.sqrt(np.nansum((out * out)[np.newaxis], axis=(1, 2)))[0]
                        out = out / (norm if norm > 0 else np.nan)
                    else:
                        out = (pixels - center) / noise
                        if config.normalization == "snrAsinh":
                            out = np.arcsinh(out / config.asinhSoftening) * config.asinhSoftening
                if not (np.isfinite(out) | missing).all():
                    missing[:] = True
                out[missing] = config.fillValue
                cutouts[i, c] = out
                edge[i] |= off.any()
                on_image_missing[i] |= (missing & ~off).any()
                filled[i] += missing.sum()
        return cutouts, edge, on_image_missing, (filled / (3 * size * size)).astype(np.float32)

    def test_equals_definition(self):
        # fillValue 0 is the default (and the kernel alone fills; -0 too,
        # sign included); -3 makes fills visible (and snrAsinh fills after
        # the asinh).
        for normalization, fill in itertools.product(("snrAsinh", "snr", "l2", "none"), (-3.0, 0.0, -0.0)):
            config = CutoutConfig()
            config.size = self.size
            config.normalization = normalization
            config.fillValue = fill
            with self.subTest(normalization=normalization, fill=fill):
                got = extract_triplets(self.planes, self.x, self.y, config)
                expected = self.definition(config)
                for name, g, e in zip(("cutouts", "edge", "noData", "noDataFraction"),
                                      (got.cutouts, got.edge, got.noData, got.noDataFraction), expected):
                    self.assertEqual(g.dtype, e.dtype, name)
                    np.testing.assert_array_equal(g, e, err_msg=name)
                np.testing.assert_array_equal(np.signbit(got.cutouts), np.signbit(expected[0]))
                # The cases the images were made for are there.
                self.assertEqual(got.edge.tolist(), [False, True, True, True, True, True, True, True, False,
                                                     False, False])
                self.assertTrue((got.cutouts[7] == fill).all())  # wholly off the image
                self.assertTrue(got.noData[8])
                # No usable variance under source 9: its snr channels are filled.
                self.assertEqual(bool((got.cutouts[9] == fill).all()), normalization.startswith("snr"))
                self.assertEqual(got.noDataFraction[7], 1.0)

    def test_asinh_softening_is_bounded(self):
        # Beyond 1e6, s*asinh(v/s) could overflow, which the kernel does not check.
        config = CutoutConfig()
        config.asinhSoftening = 1.0e6
        with self.assertRaisesRegex(ValueError, "outside of valid range"):
            config.asinhSoftening = 1.0e7

    def test_threads_change_nothing(self):
        config = CutoutConfig()
        config.size = self.size
        one = extract_triplets(self.planes, self.x, self.y, config, threads=1)
        for threads in (2, 3, 8):
            many = extract_triplets(self.planes, self.x, self.y, config, threads=threads)
            for name in ("cutouts", "edge", "noData", "noDataFraction"):
                np.testing.assert_array_equal(getattr(many, name), getattr(one, name), err_msg=name)


class RunInThreadsTestCase(lsst.utils.tests.TestCase):
    """The extractor's thread runner."""

    def test_every_item_once_in_up_to_that_many_threads(self):
        for threads, n in ((1, 5), (2, 5), (3, 7), (8, 3), (4, 0), (0, 3)):
            seen, names = [], set()
            barrier = threading.Barrier(min(max(threads, 1), n)) if n else None

            def record(item):
                names.add(threading.current_thread().name)
                if barrier is not None and item < barrier.parties:
                    barrier.wait(timeout=10)  # the first items run at once, one per thread
                seen.append(item)

            run_in_threads(record, list(range(n)), threads)
            self.assertEqual(sorted(seen), list(range(n)), msg=(threads, n))
            self.assertEqual(len(names), min(max(threads, 1), max(n, 1)) if n else 0, msg=(threads, n))
            if n:
                self.assertIn(threading.current_thread().name, names)  # the caller works too

    def test_first_error_reraised_in_caller_after_all_stop(self):
        started = []

        def fail_on_two(item):
            started.append(item)
            if item == 2:
                raise KeyError(item)
            time.sleep(0.001)  # lets the failing thread record its error before the others finish

        for threads in (1, 3):
            started.clear()
            with self.assertRaises(KeyError):
                run_in_threads(fail_on_two, list(range(100)), threads)
            self.assertIn(2, started)
            self.assertLess(len(started), 100)  # items after the error are skipped
            self.assertEqual([t for t in threading.enumerate() if t.name.startswith("extract_triplets-")], [])


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
