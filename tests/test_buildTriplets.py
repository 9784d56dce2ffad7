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

"""Tests of the buildTriplets task on a simulated ci repository."""

import unittest

import numpy as np
from astropy.table import Table

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.errors import InvalidCatalogError
from lsst.meas.realbogus.tests import SIM_COLLECTION, TRIPLETS, ci_repository
from lsst.meas.realbogus.triplets import (
    CHANNELS,
    BuildTripletsConfig,
    BuildTripletsTask,
    CutoutConfig,
    extract_triplets_from_images,
)


class BuildTripletsTestCase(lsst.utils.tests.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = ci_repository()
        cls.butler = Butler.from_config(cls.root, collections=[TRIPLETS, SIM_COLLECTION])

    def test_one_row_per_source_with_labels(self):
        refs = self.butler.query_datasets("rb_triplets")
        sources = self.butler.query_datasets("dia_source_unstandardized")
        # Every detector-visit overlapping a tract has triplets.
        overlapping = {r.dataId for r in self.butler.query_datasets(
            "dia_source_unstandardized", where="skymap='DC2' AND tract IN (3080, 4024)")}
        self.assertEqual({r.dataId for r in refs}, overlapping)
        self.assertGreater(len(refs), 10)
        self.assertLessEqual(len(refs), len(sources))
        total = 0
        for ref in refs:
            table = self.butler.get(ref, parameters={"strip_astropy_meta_yaml": False})
            cat = self.butler.get("dia_source_unstandardized", ref.dataId)
            truth = self.butler.get("dia_source_truth", ref.dataId)
            np.testing.assert_array_equal(table["diaSourceId"], cat["id"])
            size = table.meta["cutout"]["size"]
            self.assertEqual(table.meta["channels"], list(CHANNELS))
            self.assertEqual(table["cutout"].shape, (len(cat), 3, size, size))
            self.assertEqual(table["cutout"].dtype, np.float32)
            self.assertTrue(np.isfinite(table["cutout"]).all())
            by_id = {int(i): (bool(r), str(c)) for i, r, c in
                     zip(truth["id"], truth["is_real"], truth["truth_class"])}
            for row in table:
                real, kind = by_id[int(row["diaSourceId"])]
                self.assertEqual(int(row["label"]), int(real))
                self.assertEqual(str(row["truthClass"]), kind)
            # The SNR is the PSF flux over its error (a real catalog has no snr column).
            snr = np.asarray(cat["base_PsfFlux_instFlux"]) / np.asarray(cat["base_PsfFlux_instFluxErr"])
            np.testing.assert_allclose(table["snr"], snr, rtol=1e-6)
            np.testing.assert_array_equal(table["x"], np.asarray(cat["slot_Centroid_x"], dtype=np.float32))
            total += len(table)
        self.assertGreater(total, 20)

    def test_edge_flags_reach_catalog(self):
        """Sources within S/2 of the border are flagged as padded."""
        refs = self.butler.query_datasets("rb_triplets")
        flagged = 0
        for ref in refs:
            table = self.butler.get(ref)
            image = self.butler.get("difference_image", ref.dataId)
            h, w = image.image.array.shape
            half = CutoutConfig().size // 2
            cx = np.floor(np.asarray(table["x"]) + 0.5)
            cy = np.floor(np.asarray(table["y"]) + 0.5)
            near = (cx < half) | (cy < half) | (cx > w - 1 - half) | (cy > h - 1 - half)
            np.testing.assert_array_equal(np.asarray(table["cutoutFlags_edge"]), near)
            flagged += int(near.sum())
        self.assertGreater(flagged, 0)

    def test_same_pixels_as_direct_extraction(self):
        ref = max(self.butler.query_datasets("rb_triplets"), key=lambda r: r.dataId["visit"])
        table = self.butler.get(ref)
        images = [self.butler.get(name, ref.dataId) for name in
                  ("template_detector", "preliminary_visit_image", "difference_image")]
        # x, y are stored as float32; cut from the catalog's float64 for the exact pixels.
        cat = self.butler.get("dia_source_unstandardized", ref.dataId)
        direct = extract_triplets_from_images(*images, np.asarray(cat["slot_Centroid_x"]),
                                              np.asarray(cat["slot_Centroid_y"]), CutoutConfig())
        np.testing.assert_array_equal(np.asarray(table["cutout"]), direct.cutouts)

    def _inputs(self):
        ref = max(self.butler.query_datasets("rb_triplets"),
                  key=lambda r: len(self.butler.get(r, parameters={"columns": ["diaSourceId"]})))
        names = {"template": "template_detector", "science": "preliminary_visit_image",
                 "difference": "difference_image", "diaSources": "dia_source_unstandardized",
                 "truth": "dia_source_truth"}
        return {k: self.butler.get(v, ref.dataId) for k, v in names.items()}

    def test_empty_catalog(self):
        inputs = self._inputs()
        inputs["diaSources"] = inputs["diaSources"][:0]
        table = BuildTripletsTask().run(**inputs).triplets
        self.assertEqual(len(table), 0)
        self.assertEqual(table["cutout"].shape, (0, 3, 51, 51))
        self.assertIn("cutoutFlags_edge", table.colnames)

    def test_unlabelled_mode(self):
        config = BuildTripletsConfig()
        config.doLabels = False
        inputs = self._inputs()
        del inputs["truth"]
        table = BuildTripletsTask(config=config).run(**inputs).triplets
        np.testing.assert_array_equal(table["label"], -1)

    def test_missing_truth_rows_are_unlabelled(self):
        inputs = self._inputs()
        inputs["truth"] = inputs["truth"][1:]
        with self.assertLogs("lsst.buildTriplets", level="WARNING") as cm:
            table = BuildTripletsTask().run(**inputs).triplets
        self.assertIn("have no truth row", "\n".join(cm.output))
        self.assertEqual(int(table["label"][0]), -1)

    def test_bad_catalogs_refused(self):
        inputs = self._inputs()
        inputs["diaSources"] = Table(inputs["diaSources"])
        del inputs["diaSources"]["base_PsfFlux_instFluxErr"]
        with self.assertRaisesRegex(InvalidCatalogError, "lacks required column.*PsfFlux_instFluxErr") as cm:
            BuildTripletsTask().run(**inputs)
        self.assertEqual(cm.exception.metadata, {"catalog": "DIA source catalog",
                                                 "missingColumns": "base_PsfFlux_instFluxErr"})
        inputs = self._inputs()
        self.assertGreater(len(inputs["diaSources"]), 1)
        first = int(inputs["diaSources"]["id"][0])
        inputs["diaSources"]["id"][1] = first
        with self.assertRaisesRegex(InvalidCatalogError, "duplicated id") as cm:
            BuildTripletsTask().run(**inputs)
        self.assertEqual(cm.exception.metadata, {"catalog": "DIA source catalog", "column": "id",
                                                 "duplicatedIds": 1, "exampleId": first})

    def test_metadata_times_each_step(self):
        task = BuildTripletsTask()
        table = task.run(**self._inputs()).triplets
        self.assertGreater(len(table), 0)
        for step in ("run", "cutTriplets", "lookUpLabels"):
            start = task.metadata[f"{step}StartUtc"]
            end = task.metadata[f"{step}EndUtc"]
            self.assertLessEqual(start, end)  # ISO 8601 UTC strings sort as times
            self.assertLessEqual(task.metadata[f"{step}StartCpuTime"], task.metadata[f"{step}EndCpuTime"])
        self.assertLessEqual(task.metadata["runStartUtc"], task.metadata["cutTripletsStartUtc"])
        self.assertLessEqual(task.metadata["lookUpLabelsEndUtc"], task.metadata["runEndUtc"])


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
