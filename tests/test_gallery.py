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

"""Tests of the example-triplet gallery (``rb-gallery``)."""

import collections
import contextlib
import io
import os
import shutil
import tempfile
import unittest

import matplotlib.image
import numpy as np

from lsst.daf.butler import Butler
from lsst.meas.realbogus.cli.gallery import main
from lsst.meas.realbogus.evaluation import select_examples, write_gallery
from lsst.meas.realbogus.evaluation._gallery import DPI, HEADER_HEIGHT_IN, ROW_HEIGHT_IN
from lsst.meas.realbogus.simulation import BOGUS_CLASSES, REAL_CLASSES, Simulator, make_config

PER_CLASS = 2


def _expected_height(rows: int) -> int:
    return int(round(DPI * (HEADER_HEIGHT_IN + max(rows, 1) * ROW_HEIGHT_IN)))


class GalleryTestCase(unittest.TestCase):
    """Write a gallery of a small simulated repository."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="test_gallery_")
        cls.root = os.path.join(cls.tmp, "repo")
        config = make_config("ci")
        config.survey.visitsPerTract = 2
        cls.collection = config.run
        Simulator(config).run(cls.root, jobs=1, progress=False)
        butler = Butler.from_config(cls.root, collections=cls.collection)
        # Truth classes of detections that are in both catalogs.
        cls.present = collections.Counter()
        for ref in butler.query_datasets("dia_source_truth"):
            truth = butler.get(ref)
            sources = butler.get("dia_source_unstandardized", ref.dataId)
            keep = np.isin(np.asarray(truth["diaSourceId"]), np.asarray(sources["diaSourceId"]))
            cls.present.update(str(c) for c in np.asarray(truth["truth_class"])[keep])
        cls.png = os.path.join(cls.tmp, "gallery.png")
        cls.counts = write_gallery(cls.root, cls.png, collections=cls.collection, per_class=PER_CLASS,
                                   size=31)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_counts(self):
        self.assertGreater(sum(self.present.values()), 0)
        self.assertGreater(sum(self.counts.values()), 0)
        self.assertEqual(set(self.counts), set(self.present))
        for name, n in self.counts.items():
            self.assertLessEqual(n, PER_CLASS)
            self.assertEqual(n, min(PER_CLASS, self.present[name]), name)
        order = [c for c in REAL_CLASSES + BOGUS_CLASSES if c in self.counts]
        self.assertEqual(list(self.counts), order)

    def test_png(self):
        self.assertTrue(os.path.isfile(self.png))
        self.assertLess(os.path.getsize(self.png), 2 * 1024**2)
        image = matplotlib.image.imread(self.png)
        rows = sum(self.counts.values())
        self.assertAlmostEqual(image.shape[0], _expected_height(rows), delta=1)
        self.assertGreater(image.shape[1], 0)

    def test_deterministic(self):
        other = os.path.join(self.tmp, "again.png")
        counts = write_gallery(self.root, other, collections=[self.collection], per_class=PER_CLASS, size=31)
        self.assertEqual(counts, self.counts)
        self.assertTrue(np.array_equal(matplotlib.image.imread(other), matplotlib.image.imread(self.png)))

    def test_main(self):
        out = os.path.join(self.tmp, "cli.png")
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            status = main([self.root, out, "--collections", self.collection, "--per-class", "1",
                           "--size", "21"])
        self.assertEqual(status, 0)
        image = matplotlib.image.imread(out)
        self.assertAlmostEqual(image.shape[0], _expected_height(len(self.present)), delta=1)
        self.assertIn("wrote", stdout.getvalue())

    def _main_error(self, argv):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            status = main(argv)
        self.assertEqual(status, 2)
        lines = stderr.getvalue().strip().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("rb-gallery: error:"), lines[0])
        return lines[0]

    def test_missing_repo(self):
        missing = os.path.join(self.tmp, "no_such_repo")
        line = self._main_error([missing, os.path.join(self.tmp, "x.png")])
        self.assertIn("no_such_repo", line)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x.png")))

    def test_missing_collection(self):
        line = self._main_error([self.root, os.path.join(self.tmp, "y.png"), "--collections", "no/such"])
        self.assertIn("no/such", line)


class SelectExamplesTestCase(unittest.TestCase):
    """Choice of examples within one class."""

    def test_spread(self):
        snr = np.concatenate([np.full(50, 5.5), [20.0, 200.0, 2000.0]])
        picks = select_examples(snr, 4, np.random.default_rng(0))
        self.assertEqual(len(picks), 4)
        self.assertEqual(len(set(picks.tolist())), 4)
        self.assertIn(52, picks)  # the brightest one is in a bin of its own
        self.assertTrue(np.all(np.diff(snr[picks]) >= 0))

    def test_deterministic(self):
        snr = np.random.default_rng(1).lognormal(2.0, 1.0, 100)
        a = select_examples(snr, 5, np.random.default_rng(3))
        b = select_examples(snr, 5, np.random.default_rng(3))
        np.testing.assert_array_equal(a, b)

    def test_few_and_nan(self):
        self.assertEqual(len(select_examples(np.array([]), 4, np.random.default_rng(0))), 0)
        picks = select_examples(np.array([np.nan, 7.0, -6.0]), 4, np.random.default_rng(0))
        self.assertEqual(sorted(picks.tolist()), [0, 1, 2])

    def test_near_duplicates(self):
        # Three detections of one star and one elsewhere: take the distinct one.
        snr = np.array([10.0, 10.0, 10.0, 10.0])
        detector = np.array([1, 1, 1, 1])
        x = np.array([100.0, 101.0, 102.0, 300.0])
        y = np.array([100.0, 100.0, 100.0, 300.0])
        for seed in range(5):
            picks = select_examples(snr, 2, np.random.default_rng(seed), detector=detector, x=x, y=y,
                                    min_separation=10.0)
            self.assertIn(3, picks)
        picks = select_examples(snr, 3, np.random.default_rng(0), detector=detector, x=x, y=y,
                                min_separation=10.0)
        self.assertEqual(len(picks), 3)


if __name__ == "__main__":
    unittest.main()
