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

"""Property-based tests (hypothesis) of the triplet extractor and of
computeReliability's output contract, for any positions and pixel values.
"""

import unittest

import numpy as np
from astropy.table import Table
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.scoring import RELIABILITY_COLUMNS, ComputeReliabilityConfig, ComputeReliabilityTask
from lsst.meas.realbogus.tests import SIM_COLLECTION, TEST_WHERE, ci_model
from lsst.meas.realbogus.triplets import CutoutConfig, ImagePlanes, extract_triplets, stamp_origin

# Deterministic (derandomize) and without an example database, so CI runs
# the same examples every time and writes nothing into the checkout.
FAST = settings(max_examples=60, deadline=None, derandomize=True, database=None)
SLOW = settings(max_examples=50, deadline=None, derandomize=True, database=None)

# Any float32 pixel value, NaN and infinities included.
PIXELS = st.floats(width=32, allow_nan=True, allow_infinity=True)
# Positions on, near and far off an image, and non-finite ones.
POSITIONS = st.one_of(
    st.floats(-30.0, 360.0, allow_nan=False),
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def planes_and_sources(draw):
    """Three channels of one shape with arbitrary pixels, a cutout size and
    source positions.
    """
    height, width = draw(st.integers(4, 24)), draw(st.integers(4, 24))
    planes = []
    for _ in range(3):
        image = draw(hnp.arrays(np.float32, (height, width), elements=PIXELS))
        variance = draw(hnp.arrays(np.float32, (height, width), elements=PIXELS))
        bad = draw(hnp.arrays(bool, (height, width)))
        planes.append(ImagePlanes(image, variance, bad))
    n = draw(st.integers(0, 8))
    xs = draw(st.lists(st.one_of(st.floats(-10.0, width + 10.0), POSITIONS), min_size=n, max_size=n))
    ys = draw(st.lists(st.one_of(st.floats(-10.0, height + 10.0), POSITIONS), min_size=n, max_size=n))
    config = CutoutConfig()
    config.size = draw(st.integers(4, 15))
    config.normalization = draw(st.sampled_from(["none", "snr", "snrAsinh", "l2"]))
    return planes, np.array(xs, dtype=float), np.array(ys, dtype=float), config


class ExtractTripletsPropertyTestCase(lsst.utils.tests.TestCase):
    @FAST
    @given(planes_and_sources())
    def test_shapes_finiteness_and_flags(self, case):
        planes, x, y, config = case
        size, n = config.size, len(x)
        t = extract_triplets(planes, x, y, config)
        self.assertEqual(t.cutouts.shape, (n, 3, size, size))
        self.assertEqual(t.cutouts.dtype, np.float32)
        self.assertTrue(np.isfinite(t.cutouts).all())
        fraction = np.asarray(t.noDataFraction)
        self.assertTrue(np.all((fraction >= 0) & (fraction <= 1)))
        # The edge flag says exactly whether the stamp leaves the image.
        x0, y0 = stamp_origin(x, y, size)
        height, width = planes[0].shape
        inside = (x0 >= 0) & (y0 >= 0) & (x0 + size <= width) & (y0 + size <= height)
        np.testing.assert_array_equal(t.edge, ~inside)
        # Nothing filled means no flag; any flag means something filled.
        np.testing.assert_array_equal(fraction == 0, ~(t.edge | t.noData))
        off = (x0 + size <= 0) | (y0 + size <= 0) | (x0 >= width) | (y0 >= height)
        np.testing.assert_array_equal(fraction[off], 1.0)

    @FAST
    @given(planes_and_sources())
    def test_each_source_independent_of_the_others(self, case):
        planes, x, y, config = case
        together = extract_triplets(planes, x, y, config)
        for k in range(len(x)):
            alone = extract_triplets(planes, x[k:k + 1], y[k:k + 1], config)
            np.testing.assert_array_equal(alone.cutouts[0], together.cutouts[k])
            self.assertEqual(alone.noDataFraction[0], together.noDataFraction[k])


class ComputeReliabilityContractTestCase(lsst.utils.tests.TestCase):
    """For any positions and pixel values: one finite score in [0, 1] per
    input id, in input order.
    """

    @classmethod
    def setUpClass(cls):
        root, cls.package = ci_model()
        butler = Butler.from_config(root, collections=[SIM_COLLECTION])
        ref = butler.query_datasets("dia_source_unstandardized", where=TEST_WHERE)[0]
        cls.images = {name: butler.get(dataset, ref.dataId) for name, dataset in
                      (("science", "preliminary_visit_image"), ("template", "template_detector"),
                       ("difference", "difference_image"))}
        config = ComputeReliabilityConfig()
        config.device = "cpu"
        config.numThreads = 1
        config.batchSize = 7
        cls.task = ComputeReliabilityTask(config=config)

    @SLOW
    @given(
        ids=st.lists(st.integers(-(2**62), 2**62), unique=True, max_size=12),
        data=st.data(),
        pixels=st.lists(st.tuples(st.sampled_from(["science", "template", "difference"]),
                                  st.sampled_from(["image", "variance"]),
                                  st.integers(0, 319), st.integers(0, 319), PIXELS), max_size=20),
    )
    def test_one_finite_score_in_unit_interval_per_id(self, ids, data, pixels):
        n = len(ids)
        x = data.draw(st.lists(POSITIONS, min_size=n, max_size=n))
        y = data.draw(st.lists(POSITIONS, min_size=n, max_size=n))
        # Also put an arbitrary value on the pixel under each source on the image.
        under = data.draw(st.lists(st.tuples(st.sampled_from(["science", "template", "difference"]),
                                             st.sampled_from(["image", "variance"]), PIXELS),
                                   min_size=n, max_size=n))
        for (name, plane, value), xk, yk in zip(under, x, y):
            if np.isfinite(xk) and np.isfinite(yk) and 0 <= round(xk) < 320 and 0 <= round(yk) < 320:
                pixels.append((name, plane, int(round(yk)), int(round(xk)), value))
        saved = []
        try:
            for name, plane, row, col, value in pixels:
                array = getattr(self.images[name], plane).array
                saved.append((array, row, col, array[row, col]))
                array[row, col] = value
            sources = Table({"id": np.array(ids, dtype=np.int64), "slot_Centroid_x": np.array(x, dtype=float),
                             "slot_Centroid_y": np.array(y, dtype=float)})
            table = self.task.run(**self.images, diaSources=sources, model=self.package).classifications
        finally:
            for array, row, col, value in reversed(saved):
                array[row, col] = value
        self.assertEqual(table.colnames, list(RELIABILITY_COLUMNS))
        np.testing.assert_array_equal(table["diaSourceId"], np.array(ids, dtype=np.int64))
        r = np.asarray(table["reliability"])
        self.assertEqual(r.dtype, np.float32)
        self.assertTrue(np.all(np.isfinite(r) & (r >= 0) & (r <= 1)), r)
        fraction = np.asarray(table["cutoutNoDataFraction"])
        self.assertTrue(np.all((fraction >= 0) & (fraction <= 1)))
        self.assertTrue(np.all(np.asarray(table["cutoutFlags_edge"])[~np.isfinite(x)]))


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
