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

"""Tests of the gallery of example triplets (``rb-gallery``, ``rb_plot_gallery``)."""

import collections
import contextlib
import io
import os
import shutil
import tempfile
import unittest

import matplotlib.colors
import matplotlib.image
import numpy as np
from astropy.table import Table

from lsst.daf.butler import Butler
from lsst.meas.realbogus.cli._files import is_gallery
from lsst.meas.realbogus.cli.gallery import main
from lsst.meas.realbogus.evaluation import (
    OUTCOMES,
    GalleryExample,
    GalleryRow,
    draw_gallery,
    outcome_rows,
    select_examples,
    write_gallery,
)
from lsst.meas.realbogus.evaluation import _gallery as layout
from lsst.meas.realbogus.simulation import BOGUS_CLASSES, REAL_CLASSES, Simulator, make_config

PER_CLASS = 2

# The grid, from the layout constants: a column is an example (three panels and a gap), a row a class.
EXAMPLE_IN = 3 * layout.PANEL_IN + 2 * layout.PANEL_GAP_IN + layout.EXAMPLE_GAP_IN
ROW_IN = layout.PANEL_IN + layout.CAPTION_HEIGHT_IN + layout.ROW_GAP_IN


def _expected_shape(rows: int, columns: int) -> tuple[float, float]:
    """(height, width) in pixels of a gallery of ``rows`` x ``columns``."""
    return (layout.DPI * (layout.HEADER_HEIGHT_IN + max(rows, 1) * ROW_IN),
            layout.DPI * (layout.LABEL_WIDTH_IN + max(columns, 1) * EXAMPLE_IN + layout.MARGIN_IN))


def _panel_pixels(image: np.ndarray, row: int, column: int, panel: int) -> np.ndarray:
    """The inside of one stamp panel of a gallery PNG (RGB, frame excluded)."""
    top = layout.DPI * (layout.HEADER_HEIGHT_IN + row * ROW_IN)
    left = layout.DPI * (layout.LABEL_WIDTH_IN + column * EXAMPLE_IN
                         + panel * (layout.PANEL_IN + layout.PANEL_GAP_IN))
    side = layout.DPI * layout.PANEL_IN
    return image[int(top) + 3:int(top + side) - 3, int(left) + 3:int(left + side) - 3, :3]


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
            keep = np.isin(np.asarray(truth["id"]), np.asarray(sources["id"]))
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
        height, width = _expected_shape(len(self.counts), max(self.counts.values()))
        self.assertAlmostEqual(image.shape[0], height, delta=1)
        self.assertAlmostEqual(image.shape[1], width, delta=1)
        # A grid: a row per class and PER_CLASS columns, not a row per example.
        self.assertEqual(max(self.counts.values()), PER_CLASS)
        self.assertLess(image.shape[0], _expected_shape(sum(self.counts.values()), 1)[0] * 0.7)

    def test_grid(self):
        """Row r holds the examples of the r-th class, one per column, each
        three panels; the rest of the row is blank.
        """
        image = matplotlib.image.imread(self.png)
        for row, n in enumerate(self.counts.values()):
            for column in range(PER_CLASS):
                for panel in range(3):
                    pixels = _panel_pixels(image, row, column, panel)
                    drawn = bool(np.any(pixels < 0.97))
                    self.assertEqual(drawn, column < n, (row, column, panel))

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
        height, width = _expected_shape(len(self.present), 1)
        self.assertAlmostEqual(image.shape[0], height, delta=1)
        self.assertAlmostEqual(image.shape[1], width, delta=1)
        self.assertIn("wrote", stdout.getvalue())

    def test_main_replaces_only_its_own_png(self):
        """rb-gallery marks its PNG (a ``Software`` text chunk) and replaces
        an existing file only if it carries that mark, or with
        ``--overwrite``.
        """
        own = os.path.join(self.tmp, "own.png")
        argv = ["--collections", self.collection, "--per-class", "1", "--size", "21"]
        for _ in range(2):  # the second run replaces the first's picture
            with contextlib.redirect_stdout(io.StringIO()):
                self.assertEqual(main([self.root, own, *argv]), 0)
            self.assertTrue(is_gallery(own))
            self.assertGreater(matplotlib.image.imread(own).shape[0], 100)
        photo = os.path.join(self.tmp, "photo.png")
        matplotlib.image.imsave(photo, np.zeros((4, 4)))
        with open(photo, "rb") as stream:
            before = stream.read()
        line = self._main_error([self.root, photo, *argv])
        self.assertIn(f"{photo} exists and is not an rb-gallery PNG", line)
        with open(photo, "rb") as stream:
            self.assertEqual(stream.read(), before)
        with contextlib.redirect_stdout(io.StringIO()):
            self.assertEqual(main([self.root, photo, *argv, "--overwrite"]), 0)
        self.assertTrue(is_gallery(photo))
        self.assertEqual(sorted(f for f in os.listdir(self.tmp) if f.startswith(".")), [])  # no temporaries

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

    def test_priority(self):
        snr = np.array([5.0, 6.0, 7.0, 8.0, 9.0])
        priority = np.array([0.2, 0.9, 0.5, 0.9, 0.1])
        np.testing.assert_array_equal(select_examples(snr, 3, priority=priority), [1, 3, 2])
        # A near-duplicate of a pick comes after every distinct candidate.
        detector = np.zeros(5, int)
        x = np.array([0.0, 100.0, 200.0, 101.0, 400.0])
        y = np.zeros(5)
        picks = select_examples(snr, 5, priority=priority, detector=detector, x=x, y=y, min_separation=10.0)
        np.testing.assert_array_equal(picks, [1, 2, 0, 4, 3])
        with self.assertRaisesRegex(ValueError, "needs rng"):
            select_examples(snr, 2)

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


class DrawGalleryTestCase(unittest.TestCase):
    """The layout and labels of a gallery figure."""

    def rows(self):
        rng = np.random.default_rng(0)

        def example(caption):
            return GalleryExample(key=(1, 2), x=10.0, y=20.0, caption=caption,
                                  stamps=[rng.normal(size=(15, 15)) for _ in range(3)])

        return [GalleryRow("snHosted", "real, 3 of 9", True, [example(f"a{k}") for k in range(3)]),
                GalleryRow("dipole", "bogus, 1 of 1", False, [example("b0")]),
                GalleryRow("unknownThing", "0 of 0", None, [])]

    def texts(self, fig):
        return [(t.get_text(), t.get_position(), t.get_color()) for t in fig.texts]

    def test_size(self):
        fig = draw_gallery(self.rows(), "title")
        width, height = fig.get_size_inches() * fig.dpi
        self.assertEqual(fig.dpi, layout.DPI)
        expected_height, expected_width = _expected_shape(3, 3)
        self.assertAlmostEqual(height, expected_height, places=6)
        self.assertAlmostEqual(width, expected_width, places=6)
        self.assertEqual(len(fig.axes), 3 * 4)  # one axes per stamp panel
        empty = draw_gallery([], "nothing")
        self.assertIn("no DIA sources", [t for t, _, _ in self.texts(empty)])
        self.assertEqual(tuple(empty.get_size_inches() * empty.dpi)[::-1], _expected_shape(1, 1))

    def test_labels(self):
        texts = self.texts(draw_gallery(self.rows(), "the title"))
        strings = [t for t, _, _ in texts]
        self.assertIn("the title", strings)
        for name in ("template", "science", "difference"):
            self.assertEqual(strings.count(name), 3)  # one header per column
        labels = {t: (position, color) for t, position, color in texts
                  if t in ("snHosted", "dipole", "unknownThing")}
        self.assertEqual(list(labels), ["snHosted", "dipole", "unknownThing"])
        heights = [position[1] for position, _ in labels.values()]
        self.assertEqual(heights, sorted(heights, reverse=True))  # top to bottom
        self.assertEqual([matplotlib.colors.to_hex(c) for _, c in labels.values()],
                         [matplotlib.colors.to_hex(c) for c in ("tab:green", "tab:red", "black")])
        for caption in ("a0", "a1", "a2", "b0"):
            self.assertIn(caption, strings)
        self.assertIn("none", strings)
        self.assertIn("real, 3 of 9", strings)

    def test_panels_in_grid(self):
        fig = draw_gallery(self.rows(), "title")
        width, height = fig.get_size_inches()
        lefts = sorted({round(ax.get_position().x0 * width, 6) for ax in fig.axes})
        expected = sorted({round(layout.LABEL_WIDTH_IN + c * EXAMPLE_IN
                                 + p * (layout.PANEL_IN + layout.PANEL_GAP_IN), 6)
                           for c in range(3) for p in range(3)})
        self.assertEqual(lefts, expected)
        tops = sorted({round((1 - ax.get_position().y1) * height, 6) for ax in fig.axes})
        self.assertEqual(tops, [round(layout.HEADER_HEIGHT_IN + r * ROW_IN, 6) for r in range(2)])


class OutcomeRowsTestCase(unittest.TestCase):
    """The rows of rb_plot_gallery: the most confident of each outcome."""

    def joined(self, n=40, seed=0):
        rng = np.random.default_rng(seed)
        label = (rng.random(n) < 0.4).astype(np.int8)
        label[:2] = [0, 1]
        return Table({"diaSourceId": np.arange(n), "reliability": rng.random(n), "label": label,
                      "truthClass": np.where(label == 1, "snHosted", "dipole"), "snr": rng.normal(10, 3, n),
                      "x": rng.uniform(0, 4000, n), "y": rng.uniform(0, 4000, n), "visit": np.full(n, 7),
                      "detector": np.arange(n)})

    def test_most_confident(self):
        joined = self.joined()
        scores, real = np.asarray(joined["reliability"]), np.asarray(joined["label"]) == 1
        rows = outcome_rows(joined, 0.5, 3, 21)
        self.assertEqual([row.label for row in rows], [name for name, _, _ in OUTCOMES])
        for row, (_, is_real, is_kept) in zip(rows, OUTCOMES):
            members = np.flatnonzero((real == is_real) & ((scores >= 0.5) == is_kept))
            best = members[np.argsort(-scores[members] if is_kept else scores[members], kind="stable")][:3]
            self.assertEqual([e.key for e in row.examples], [(7, int(d)) for d in best])
            self.assertIs(row.is_real, is_real)
            self.assertTrue(row.note.endswith(f"{len(best)} of {len(members)}"), row.note)
            for example, i in zip(row.examples, best):
                self.assertEqual(example.caption, f"{joined['truthClass'][i]}  r={scores[i]:.2f}  "
                                 f"SNR {joined['snr'][i]:.1f}\nv7 d{i} ({joined['x'][i]:.0f},{joined['y'][i]:.0f})")

    def test_near_duplicates_give_way(self):
        joined = self.joined()
        joined["detector"] = 1
        tp = np.flatnonzero((joined["label"] == 1) & (joined["reliability"] >= 0.5))
        order = tp[np.argsort(-np.asarray(joined["reliability"])[tp])]
        # The second most confident true positive sits on the first (a star seen twice).
        joined["x"][order[1]], joined["y"][order[1]] = joined["x"][order[0]] + 1, joined["y"][order[0]]
        xs = [e.x for e in outcome_rows(joined, 0.5, 2, 21)[0].examples]
        self.assertEqual(xs, [float(joined["x"][order[0]]), float(joined["x"][order[2]])])


if __name__ == "__main__":
    unittest.main()
