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

"""The bad-input matrix of doc/reliability.rst: every task fed empty,
malformed or mismatched inputs, each ending in a clear error or flagged rows.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import pyarrow as pa
from astropy.table import MaskedColumn, Table

import lsst.images as li
import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.daf.butler.formatters.parquet import arrow_to_astropy
from lsst.meas.realbogus.errors import (
    ImageMismatchError,
    InvalidCatalogError,
    ModelPackageError,
    TripletDataError,
)
from lsst.meas.realbogus.evaluation import EvaluateRealBogusConfig, EvaluateRealBogusTask
from lsst.meas.realbogus.models import ModelPackage, put_model, training_data_coverage
from lsst.meas.realbogus.scoring import (
    RELIABILITY_COLUMNS,
    ComputeReliabilityConfig,
    ComputeReliabilityTask,
    FilterReliabilityTask,
)
from lsst.meas.realbogus.tests import (
    MODEL,
    SIM_COLLECTION,
    TEST_WHERE,
    TRAIN_WHERE,
    TRIPLETS,
    ci_model,
    pipeline_path,
    quick_training_config,
    run_pipeline,
)
from lsst.meas.realbogus.training import TrainRealBogusTask
from lsst.meas.realbogus.triplets import BuildTripletsTask
from lsst.pipe.base import NoWorkFound

SCORE_WHERE = "instrument='LSSTCam-imSim' AND " + TEST_WHERE
IMAGES = {"science": "preliminary_visit_image", "template": "template_detector", "difference": "difference_image"}


class Handle:
    """An in-memory stand-in for a deferred dataset handle."""

    def __init__(self, table):
        self.table = table

    def get(self, parameters=None):
        columns = (parameters or {}).get("columns")
        return self.table[columns] if columns else self.table


def with_training(package, **training):
    """Return a copy of a package whose training metadata has these keys."""
    metadata = package.metadata.model_copy(update={"training": {**package.metadata.training, **training}})
    return ModelPackage(metadata, package.weights_bytes)


def shifted_wcs(image, dx):
    """Return a copy of a difference image whose WCS is shifted by dx pixels."""
    sp = image.sky_projection
    fits = sp.as_fits_wcs(image.bbox)
    fits.wcs.crpix = fits.wcs.crpix + np.array([dx, 0.0])
    return li.DifferenceImage(
        image.image.copy(), mask=image.mask.copy(), variance=image.variance.copy(),
        sky_projection=li.SkyProjection.from_fits_wcs(fits, sp.pixel_frame, sp.pixel_bounds),
        obs_info=image.obs_info, psf=image.psf, detector=image.detector, band=image.band,
    )


class _CiInputs(lsst.utils.tests.TestCase):
    """The inputs of the richest detector-visit of tract 4024."""

    @classmethod
    def setUpClass(cls):
        cls.root, cls.package = ci_model()
        cls.butler = Butler.from_config(cls.root, collections=[SIM_COLLECTION, TRIPLETS])
        refs = cls.butler.query_datasets("dia_source_unstandardized", where=TEST_WHERE)
        cls.ref = max(refs, key=lambda r: len(cls.butler.get(r)))

    def inputs(self, truth=False):
        inputs = {k: self.butler.get(v, self.ref.dataId) for k, v in IMAGES.items()}
        inputs["diaSources"] = self.butler.get("dia_source_unstandardized", self.ref.dataId)
        if truth:
            inputs["truth"] = self.butler.get("dia_source_truth", self.ref.dataId)
        return inputs

    def score(self, model=None, **config_values):
        config = ComputeReliabilityConfig()
        config.device = "cpu"
        config.numThreads = 1
        for key, value in config_values.items():
            setattr(config, key, value)
        return ComputeReliabilityTask(config=config), model or self.package

    def run_score(self, inputs, model=None, **config_values):
        task, model = self.score(model, **config_values)
        return task.run(**inputs, model=model).classifications

    def assertContract(self, table, ids):
        """One finite score in [0, 1] per input id, in input order."""
        self.assertEqual(table.colnames, list(RELIABILITY_COLUMNS))
        np.testing.assert_array_equal(table["diaSourceId"], ids)
        r = np.asarray(table["reliability"])
        self.assertTrue(np.all(np.isfinite(r) & (r >= 0) & (r <= 1)))


class ComputeReliabilityBadInputsTestCase(_CiInputs):
    def test_missing_columns(self):
        for column in ("id", "slot_Centroid_x", "slot_Centroid_y"):
            with self.subTest(column=column):
                inputs = self.inputs()
                inputs["diaSources"] = Table(inputs["diaSources"])
                del inputs["diaSources"][column]
                with self.assertRaisesRegex(InvalidCatalogError, f"lacks required column.*{column}"):
                    self.run_score(inputs)

    def test_empty_catalog(self):
        """A detector-visit without DIA sources gives an empty catalog of
        either schema, not a failure.
        """
        from lsst.meas.realbogus.scoring import AP_RELIABILITY_COLUMNS

        for schema, columns in (("package", RELIABILITY_COLUMNS), ("ap", AP_RELIABILITY_COLUMNS)):
            with self.subTest(outputSchema=schema):
                inputs = self.inputs()
                inputs["diaSources"] = inputs["diaSources"][:0]
                table = self.run_score(inputs, outputSchema=schema)
                self.assertEqual(len(table), 0)
                self.assertEqual(table.colnames, list(columns))

    def test_duplicate_ids(self):
        inputs = self.inputs()
        inputs["diaSources"]["id"][1] = inputs["diaSources"]["id"][0]
        with self.assertRaisesRegex(InvalidCatalogError, "1 duplicated id value"):
            self.run_score(inputs)

    def test_sources_off_image_and_on_edge(self):
        inputs = self.inputs()
        cat = inputs["diaSources"][:6]
        cat["slot_Centroid_x"] = np.array([-1000.0, 0.0, 319.4, np.nan, np.inf, 1e30])
        cat["slot_Centroid_y"] = np.array([-1000.0, 0.0, 160.0, 10.0, 10.0, -1e30])
        inputs["diaSources"] = cat
        table = self.run_score(inputs)
        self.assertContract(table, cat["id"])
        np.testing.assert_array_equal(table["cutoutFlags_edge"], True)
        # Stamps entirely off the image are all fill; those on the edge partly.
        np.testing.assert_array_equal(np.asarray(table["cutoutNoDataFraction"])[[0, 3, 4, 5]], 1.0)
        self.assertTrue(0 < table["cutoutNoDataFraction"][1] < 1)
        self.assertFalse(table["cutoutFlags_noData"][1])

    def test_nan_inf_pixels(self):
        inputs = self.inputs()
        clean = self.run_score(inputs)
        cat = inputs["diaSources"]
        x, y = int(round(cat["slot_Centroid_x"][0])), int(round(cat["slot_Centroid_y"][0]))
        inputs["science"].image.array[y, x] = np.nan
        inputs["difference"].image.array[y, x + 1] = np.inf
        inputs["template"].variance.array[y - 1, x] = -np.inf
        table = self.run_score(inputs)
        self.assertContract(table, cat["id"])
        self.assertTrue(table["cutoutFlags_noData"][0])
        self.assertGreater(table["cutoutNoDataFraction"][0], 0)
        # Sources whose cutouts do not reach the bad pixels are untouched.
        far = ((np.abs(np.asarray(cat["slot_Centroid_x"]) - x) > 30)
               | (np.abs(np.asarray(cat["slot_Centroid_y"]) - y) > 30))
        self.assertTrue(far.any())
        np.testing.assert_array_equal(table["reliability"][far], clean["reliability"][far])

    def test_all_no_data_template(self):
        inputs = self.inputs()
        inputs["template"].mask.set("NO_DATA")
        table = self.run_score(inputs)
        self.assertContract(table, inputs["diaSources"]["id"])
        np.testing.assert_array_equal(table["cutoutFlags_noData"], True)
        self.assertTrue(np.all(np.asarray(table["cutoutNoDataFraction"]) >= 1 / 3 - 1e-6))

    def test_no_data_template_region(self):
        inputs = self.inputs()
        cat = inputs["diaSources"]
        x, y = int(round(cat["slot_Centroid_x"][0])), int(round(cat["slot_Centroid_y"][0]))
        region = np.zeros(inputs["template"].image.array.shape, dtype=bool)
        region[max(y - 3, 0):y + 4, max(x - 3, 0):x + 4] = True
        inputs["template"].mask.set("NO_DATA", region)
        table = self.run_score(inputs)
        self.assertContract(table, cat["id"])
        self.assertTrue(table["cutoutFlags_noData"][0])

    def test_images_of_different_shapes(self):
        inputs = self.inputs()
        inputs["template"] = inputs["template"][li.Box.factory[0:300, 0:320]]
        with self.assertRaisesRegex(ImageMismatchError, "template image covers .* one pixel grid") as cm:
            self.run_score(inputs)
        self.assertEqual(cm.exception.metadata, {"image": "template", "bbox": str(inputs["template"].bbox),
                                                 "scienceBbox": str(inputs["science"].bbox)})

    def test_images_with_different_wcs(self):
        inputs = self.inputs()
        inputs["difference"] = shifted_wcs(inputs["difference"], 2.0)
        with self.assertRaisesRegex(ImageMismatchError, "difference image's WCS .* 2 px") as cm:
            self.run_score(inputs)
        self.assertEqual(cm.exception.metadata["image"], "difference")
        self.assertAlmostEqual(cm.exception.metadata["wcsOffsetPixels"], 2.0, delta=0.01)
        self.assertEqual(cm.exception.metadata["maxWcsOffset"], 0.1)
        # Within maxWcsOffset it scores.
        inputs["difference"] = shifted_wcs(self.inputs()["difference"], 0.01)
        self.assertContract(self.run_score(inputs), inputs["diaSources"]["id"])

    def test_cutout_size_or_normalization_differ_from_config(self):
        cases = ({"expectedCutoutSize": 63}, {"expectedNormalization": "l2"})
        for values in cases:
            with self.subTest(**values):
                with self.assertRaisesRegex(ModelPackageError, "trained on cutouts with .* this config expects"):
                    self.run_score(self.inputs(), **values)
        matching = {"expectedCutoutSize": 51, "expectedNormalization": "snrAsinh"}
        self.assertContract(self.run_score(self.inputs(), **matching), self.inputs()["diaSources"]["id"])

    def test_channel_order_differs(self):
        """A package with another channel order never loads (see also
        test_modelPackage.py::ModelPackageTestCase::test_channel_order_mismatch).
        """
        cutout = self.package.metadata.cutout.model_copy(update={"channels": ["science", "template", "difference"]})
        odd = ModelPackage(self.package.metadata.model_copy(update={"cutout": cutout}), self.package.weights_bytes)
        with self.assertRaisesRegex(ModelPackageError, "channel order"):
            self.run_score(self.inputs(), model=odd)
        with self.assertRaisesRegex(ModelPackageError, "channel order"):
            ModelPackage.from_bytes(odd.to_bytes())

    def test_model_for_another_band_or_instrument(self):
        inputs = self.inputs()
        cases = {"bands": (["g"], "trained on bands g but is scoring bands r"),
                 "instrument": ("HSC", "trained on instrument HSC but is scoring instrument LSSTCam-imSim")}
        for key, (value, message) in cases.items():
            with self.subTest(key=key):
                other = with_training(self.package, **{key: value})
                with self.assertLogs("lsst.computeReliability", level="WARNING") as cm:
                    table = self.run_score(inputs, model=other)
                self.assertIn(message, "\n".join(cm.output))
                self.assertContract(table, inputs["diaSources"]["id"])
                with self.assertRaisesRegex(ModelPackageError, message + r" \(strictModelMatch=True\)"):
                    self.run_score(inputs, model=other, strictModelMatch=True)

    def test_model_for_this_band_and_instrument(self):
        refs = self.butler.query_datasets("rb_triplets", where=TRAIN_WHERE, with_dimension_records=True)
        coverage = training_data_coverage(r.dataId for r in refs)
        self.assertEqual(coverage, {"instrument": ["LSSTCam-imSim"], "bands": ["r"]})
        same = with_training(self.package, **coverage)
        self.assertEqual(ModelPackage.from_bytes(same.to_bytes()).trained_for(), coverage)
        with self.assertNoLogs("lsst.computeReliability", level="WARNING"):
            self.run_score(self.inputs(), model=same, strictModelMatch=True)

    def test_strict_says_what_it_cannot_check(self):
        """A package that records no band or instrument is scored, and strict
        mode says the match was not checked.
        """
        bare = with_training(self.package)
        for key in ("instrument", "bands"):
            bare.metadata.training.pop(key, None)
        with self.assertLogs("lsst.computeReliability", level="WARNING") as cm:
            table = self.run_score(self.inputs(), model=bare, strictModelMatch=True)
        self.assertIn("the model package records no bands", "\n".join(cm.output))
        self.assertContract(table, self.inputs()["diaSources"]["id"])

    def test_strict_refusal_writes_nothing(self):
        """A pipeline refused for a foreign model leaves no output behind and
        the inputs as they were.
        """
        writer = Butler.from_config(self.root, writeable=True)
        put_model(writer, with_training(self.package, bands=["g"]), "bad/model-g")
        before = {r.id for r in writer.query_datasets("dia_source_unstandardized", collections=SIM_COLLECTION)}
        with self.assertRaises(Exception):
            run_pipeline(self.root, "ComputeReliability.yaml", [SIM_COLLECTION, "bad/model-g"], "bad/scores",
                         SCORE_WHERE, {"computeReliability": {"device": "cpu", "numThreads": 1,
                                                              "strictModelMatch": True}})
        butler = Butler.from_config(self.root)
        self.assertEqual(butler.query_datasets("dia_source_reliability", collections="bad/scores", explain=False),
                         [])
        after = {r.id for r in butler.query_datasets("dia_source_unstandardized", collections=SIM_COLLECTION)}
        self.assertEqual(before, after)
        self.assertIsInstance(butler.get("rb_model", collections=MODEL), ModelPackage)


class BuildTripletsBadInputsTestCase(_CiInputs):
    def test_duplicate_truth_ids(self):
        inputs = self.inputs(truth=True)
        inputs["truth"]["id"][1] = inputs["truth"]["id"][0]
        with self.assertRaisesRegex(InvalidCatalogError, "truth catalog has 1 duplicated id") as cm:
            BuildTripletsTask().run(**inputs)
        self.assertEqual(cm.exception.metadata["catalog"], "truth catalog")
        self.assertEqual(cm.exception.metadata["duplicatedIds"], 1)

    def test_truth_missing_columns(self):
        inputs = self.inputs(truth=True)
        del inputs["truth"]["is_real"]
        with self.assertRaisesRegex(InvalidCatalogError, "truth catalog lacks required column.*is_real"):
            BuildTripletsTask().run(**inputs)

    def test_image_mismatch(self):
        inputs = self.inputs(truth=True)
        inputs["difference"] = shifted_wcs(inputs["difference"], 1.0)
        with self.assertRaisesRegex(ImageMismatchError, "difference image's WCS"):
            BuildTripletsTask().run(**inputs)
        inputs = self.inputs(truth=True)
        inputs["science"] = inputs["science"][li.Box.factory[0:320, 5:320]]
        with self.assertRaisesRegex(ImageMismatchError, "science image covers"):
            BuildTripletsTask().run(**inputs)

    def test_invalid_catalog_fails_only_its_quantum(self):
        """pipetask records the quantum whose catalog lacks a column as
        failed with InvalidCatalogError (an AlgorithmError) and runs the
        other quanta of the same run to success.
        """
        bad = Table(self.inputs()["diaSources"])
        del bad["base_PsfFlux_instFlux"]
        writer = Butler.from_config(self.root, writeable=True)
        writer.collections.register("bad/catalog")
        writer.put(bad, "dia_source_unstandardized", self.ref.dataId, run="bad/catalog")
        with tempfile.TemporaryDirectory() as tmp:
            summary = os.path.join(tmp, "summary.json")
            cmd = [os.path.join(os.path.dirname(sys.executable), "pipetask"), "run", "-b", self.root,
                   "-i", f"bad/catalog,{SIM_COLLECTION}", "-o", "bad/triplets",
                   "-p", pipeline_path("BuildTriplets.yaml"), "-d", SCORE_WHERE,
                   "--register-dataset-types", "--summary", summary]
            result = subprocess.run(cmd, capture_output=True, text=True)
            with open(summary) as stream:
                report = json.load(stream)
        self.assertNotEqual(result.returncode, 0)
        self.assertEqual(report["status"], "failure")
        bad_key = (self.ref.dataId["visit"], self.ref.dataId["detector"])
        statuses = {(q["dataId"]["visit"], q["dataId"]["detector"]): q for q in report["quantaReports"]}
        self.assertGreater(len(statuses), 1)
        failed = statuses.pop(bad_key)
        self.assertEqual(failed["status"], "failure")
        self.assertEqual(failed["exceptionInfo"]["className"], "lsst.meas.realbogus.errors.InvalidCatalogError")
        self.assertIn("lacks required column(s) base_PsfFlux_instFlux", failed["exceptionInfo"]["message"])
        self.assertEqual({q["status"] for q in statuses.values()}, {"success"})
        butler = Butler.from_config(self.root, collections="bad/triplets")
        written = {(r.dataId["visit"], r.dataId["detector"]) for r in butler.query_datasets("rb_triplets")}
        self.assertEqual(written, set(statuses))

    def test_bad_pixels_and_positions_flagged(self):
        inputs = self.inputs(truth=True)
        cat = inputs["diaSources"]
        cat["slot_Centroid_x"][0], cat["slot_Centroid_y"][0] = np.nan, np.nan
        inputs["template"].mask.set("NO_DATA")
        table = BuildTripletsTask().run(**inputs).triplets
        self.assertEqual(len(table), len(cat))
        self.assertTrue(table["cutoutFlags_edge"][0])
        np.testing.assert_array_equal(table["cutoutFlags_noData"][1:], True)
        self.assertTrue(np.isfinite(np.asarray(table["cutout"])).all())


class CatalogEdgeCasesTestCase(_CiInputs):
    """Ids must be integers that fit int64; positions numbers, masked ones
    flagged; memory bounded on very large catalogs (doc/reliability.rst,
    "Hostile catalogs").
    """

    def catalog(self, n=6):
        return Table(self.inputs()["diaSources"][:n], copy=True)

    def assertRefused(self, cat, pattern, tasks=("compute", "filter", "build")):
        """Each task refuses the catalog with one line matching ``pattern``."""
        inputs = self.inputs(truth=True)
        runs = {
            "compute": lambda: self.run_score({**{k: v for k, v in inputs.items() if k != "truth"},
                                               "diaSources": cat}),
            "filter": lambda: FilterReliabilityTask().run(diaSources=cat, classifications=self.scores),
            "build": lambda: BuildTripletsTask().run(**{**inputs, "diaSources": cat}),
        }
        for name in tasks:
            with self.subTest(task=name):
                with self.assertRaisesRegex(InvalidCatalogError, pattern) as cm:
                    runs[name]()
                self.assertNotIn("\n", str(cm.exception))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        inputs = {k: cls.butler.get(v, cls.ref.dataId) for k, v in IMAGES.items()}
        inputs["diaSources"] = cls.butler.get("dia_source_unstandardized", cls.ref.dataId)[:6]
        task = ComputeReliabilityTask(config=ComputeReliabilityConfig(device="cpu", numThreads=1))
        cls.scores = task.run(**inputs, model=cls.package).classifications

    def test_float_ids(self):
        """Integral float ids are the same ids; 1.0 and 1.1 are not one id
        (they collapsed to 1 before): refused.
        """
        cat = self.catalog()
        ids = np.asarray(cat["id"])
        cat["id"] = ids.astype(np.float64)
        self.assertContract(self.run_score({**self.inputs(), "diaSources": cat}), ids)
        cat["id"] = np.array([1.0, 1.1, 1.2, 2.0, 3.0, 4.0])
        self.assertRefused(cat, r"^DIA source catalog's id has 2 float id\(s\) that are not integers a float64 holds "
                           r"exactly .*e\.g\. 1\.1\); ids must be integers\.$")
        cat["id"] = np.array([2.0**60, 1, 2, 3, 4, 5])
        self.assertRefused(cat, "float id", tasks=("compute",))

    def test_unsigned_ids(self):
        """uint64 ids >= 2**63 wrapped negative before: refused; smaller
        ones are kept.
        """
        cat = self.catalog()
        ids = np.asarray(cat["id"]).astype(np.uint64)
        cat["id"] = ids
        self.assertContract(self.run_score({**self.inputs(), "diaSources": cat}), ids.astype(np.int64))
        cat["id"] = ids + np.uint64(2**63)
        self.assertRefused(cat, rf"unsigned id\(s\) >= 2\*\*63 \(e\.g\. {int(ids[0]) + 2**63}\) that do not "
                           "fit int64")

    def test_null_and_masked_ids(self):
        """An Arrow null id (read by ArrowAstropy as a masked value over -1)
        and a masked id are refused, not scored as -1.
        """
        cat = self.catalog()
        arrow = pa.table({"id": pa.array([None] + [int(v) for v in cat["id"][1:]], pa.int64())})
        null = arrow_to_astropy(arrow)["id"]
        self.assertEqual(int(np.asarray(null)[0]), -1)  # what was scored before
        for column in (null, MaskedColumn(np.asarray(cat["id"]), mask=[False, False, True, False, False, False])):
            with self.subTest(column=column):
                bad = Table(cat, copy=True)
                bad["id"] = column
                self.assertRefused(bad, r"^DIA source catalog's id has 1 null or masked value\(s\) \(first at row "
                                   r"\d\); ids must be integers\.$")

    def test_non_integer_ids(self):
        for values in (np.array(["a", "b", "c", "d", "e", "f"]), np.ones(6, dtype=bool)):
            with self.subTest(dtype=values.dtype):
                cat = self.catalog()
                cat["id"] = values
                self.assertRefused(cat, rf"id has {values.dtype} values; ids must be integers\.$",
                                   tasks=("compute", "build"))

    def test_string_positions(self):
        """String positions raised a raw ValueError: now one line."""
        cat = self.catalog()
        cat["slot_Centroid_x"] = np.asarray(cat["slot_Centroid_x"]).astype(str)
        self.assertRefused(cat, r"^DIA source catalog's slot_Centroid_x has <U\d+ values; positions must be "
                           r"numbers \(pixels\)\.$", tasks=("compute", "build"))

    def test_masked_positions_flagged(self):
        """A masked position is cut as a source without a position (off the
        image, all filled and flagged), not at the value under its mask,
        and counted in the metadata.
        """
        cat = self.catalog()
        present = self.run_score({**self.inputs(), "diaSources": cat})
        self.assertFalse(present["cutoutFlags_edge"][2])
        masked = Table(cat, copy=True)
        masked["slot_Centroid_x"] = MaskedColumn(np.asarray(cat["slot_Centroid_x"]),
                                                 mask=[False, False, True, False, False, False])
        nan = Table(cat, copy=True)
        nan["slot_Centroid_x"][2] = np.nan
        task, model = self.score()
        table = task.run(**{**self.inputs(), "diaSources": masked}, model=model).classifications
        self.assertEqual(task.metadata["nBadPositions"], 1)
        self.assertContract(table, cat["id"])
        self.assertTrue(table["cutoutFlags_edge"][2])
        self.assertEqual(table["cutoutNoDataFraction"][2], 1.0)
        as_nan = self.run_score({**self.inputs(), "diaSources": nan})
        self.assertEqual(table["reliability"][2], as_nan["reliability"][2])
        np.testing.assert_array_equal(np.delete(np.asarray(table["reliability"]), 2),
                                      np.delete(np.asarray(present["reliability"]), 2))
        triplets = BuildTripletsTask().run(**{**self.inputs(truth=True), "diaSources": masked}).triplets
        self.assertTrue(triplets["cutoutFlags_edge"][2])
        # The AP schema cannot flag it: it gets apNoDataScore, not the
        # network's score of a blank cutout; the others keep theirs.
        for value in (0.0, 0.25):
            with self.subTest(apNoDataScore=value):
                task, model = self.score(outputSchema="ap", apNoDataScore=value)
                ap = task.run(**{**self.inputs(), "diaSources": masked}, model=model).classifications
                self.assertEqual(task.metadata["nNoDataScored"], 1)
                score = np.asarray(ap["score"])
                self.assertEqual(score.dtype, np.float32)
                self.assertEqual(score[2], np.float32(value))
                np.testing.assert_array_equal(np.delete(score, 2), np.delete(np.asarray(present["reliability"]), 2))

    def test_large_catalog_memory_is_bounded_by_chunks(self):
        """The cutouts of one sourceChunkSize chunk are in memory at a time
        (measured with tracemalloc, which counts numpy's buffers): 4000
        sources in chunks of 256 stay under 20 MB (8 MB measured) where the 125 MB of their
        cutouts at once were allocated before.
        """
        import tracemalloc

        inputs = self.inputs()
        base = inputs["diaSources"]
        n = 4000
        rng = np.random.default_rng(3)
        rows = rng.integers(0, len(base), n)
        big = Table({"id": np.arange(n, dtype=np.int64) + 1,
                     "slot_Centroid_x": np.asarray(base["slot_Centroid_x"])[rows] + rng.uniform(-3, 3, n),
                     "slot_Centroid_y": np.asarray(base["slot_Centroid_y"])[rows] + rng.uniform(-3, 3, n)})
        peaks = {}
        for chunk in (256, n):
            task, model = self.score(sourceChunkSize=chunk)
            task.run(**{**inputs, "diaSources": big[:64]}, model=model)  # warm the model cache and kernels
            tracemalloc.start()
            try:
                table = task.run(**{**inputs, "diaSources": big}, model=model).classifications
                peaks[chunk] = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            self.assertContract(table, big["id"])
        cutout_bytes = n * 3 * self.package.metadata.cutout.size**2 * 4
        self.assertGreater(peaks[n], cutout_bytes)  # the measurement sees the cutouts
        self.assertLess(peaks[256], 20e6, peaks)


class PsfSnrTestCase(lsst.utils.tests.TestCase):
    def test_unmeasured_sources_have_no_snr(self):
        """Masked (Arrow null) fluxes or errors, and zero, negative or
        non-finite errors give NaN, outside every SNR cut, not a finite
        value from the masked data or an infinite one.
        """
        from lsst.meas.realbogus.triplets import psf_snr

        flux = MaskedColumn([600.0, 600.0, 600.0, 600.0, 600.0, -700.0, np.nan],
                            mask=[False, True, False, False, False, False, False])
        err = MaskedColumn([100.0, 100.0, 0.0, -5.0, np.inf, 100.0, 100.0],
                           mask=[False, False, False, False, False, False, False])
        snr = psf_snr(flux, err)
        self.assertEqual(snr.dtype, np.float64)
        np.testing.assert_array_equal(snr, [6.0, np.nan, np.nan, np.nan, np.nan, -7.0, np.nan])
        err.mask[0] = True
        self.assertTrue(np.isnan(psf_snr(flux, err)[0]))
        np.testing.assert_array_equal(psf_snr(np.array([5.0]), np.array([2.0])), [2.5])


class FilterReliabilityBadInputsTestCase(_CiInputs):
    def scores(self):
        return self.run_score(self.inputs())

    def test_empty_catalogs(self):
        cat = self.inputs()["diaSources"][:0]
        result = FilterReliabilityTask().run(diaSources=cat, classifications=self.scores()[:0])
        self.assertEqual(len(result.highReliabilitySources), 0)
        self.assertEqual(len(result.lowReliabilitySources), 0)
        self.assertIn("reliability", result.highReliabilitySources.colnames)

    def test_duplicate_ids(self):
        cat, scores = self.inputs()["diaSources"], self.scores()
        for which, column in (("diaSources", "id"), ("classifications", "diaSourceId")):
            with self.subTest(which=which):
                args = {"diaSources": Table(cat, copy=True), "classifications": Table(scores, copy=True)}
                args[which][column][1] = args[which][column][0]
                with self.assertRaisesRegex(InvalidCatalogError, f"duplicated {column} "):
                    FilterReliabilityTask().run(**args)

    def test_missing_columns(self):
        scores = self.scores()
        del scores["reliability"]
        with self.assertRaisesRegex(InvalidCatalogError, "reliability catalog lacks required column.*reliability"):
            FilterReliabilityTask().run(diaSources=self.inputs()["diaSources"], classifications=scores)


class EvaluateBadInputsTestCase(_CiInputs):
    def handles(self):
        key = (self.ref.dataId["visit"], self.ref.dataId["detector"])
        tables = {"classifications": self.run_score(self.inputs()),
                  "truth": self.butler.get("dia_source_truth", self.ref.dataId),
                  "diaSources": self.butler.get("dia_source_unstandardized", self.ref.dataId)}
        return key, {name: {key: Handle(table)} for name, table in tables.items()}

    def evaluate(self, handles):
        config = EvaluateRealBogusConfig()
        config.doGallery = False
        return EvaluateRealBogusTask(config=config).run(handles, self.package)

    def test_empty_catalogs(self):
        key, handles = self.handles()
        handles["classifications"][key] = Handle(handles["classifications"][key].table[:0])
        with self.assertRaisesRegex(NoWorkFound, "No scored, labelled DIA sources"):
            self.evaluate(handles)

    def test_duplicate_ids(self):
        for name, column in (("classifications", "diaSourceId"), ("truth", "id"), ("diaSources", "id")):
            with self.subTest(name=name):
                key, handles = self.handles()
                handles[name][key].table[column][1] = handles[name][key].table[column][0]
                with self.assertRaisesRegex(InvalidCatalogError, r"of visit=\d+ detector=\d+ has 1 duplicated"):
                    self.evaluate(handles)

    def test_missing_columns(self):
        for name, column in (("classifications", "reliability"), ("truth", "is_real"),
                             ("diaSources", "base_PsfFlux_instFluxErr")):
            with self.subTest(name=name):
                key, handles = self.handles()
                del handles[name][key].table[column]
                with self.assertRaisesRegex(InvalidCatalogError, f"lacks required column.*{column}"):
                    self.evaluate(handles)


class TrainingBadInputsTestCase(_CiInputs):
    def triplets(self):
        refs = sorted(self.butler.query_datasets("rb_triplets", where=TRAIN_WHERE),
                      key=lambda r: (r.dataId["visit"], r.dataId["detector"]))
        return [self.butler.get(r, parameters={"strip_astropy_meta_yaml": False}) for r in refs]

    def train(self, tables):
        task = TrainRealBogusTask(config=quick_training_config(maxSteps=1))
        return task.run([Handle(t) for t in tables], names=[f"t{i}" for i in range(len(tables))])

    def test_no_datasets(self):
        with self.assertRaisesRegex(TripletDataError, "no rb_triplets datasets to train on"):
            self.train([])

    def test_empty_catalogs(self):
        with self.assertRaisesRegex(TripletDataError, "has a labelled training triplet"):
            self.train([t[:0] for t in self.triplets()])

    def test_one_class_only(self):
        tables = [t[np.asarray(t["label"]) == 0] for t in self.triplets()]
        with self.assertRaisesRegex(TripletDataError, "only one class"):
            self.train(tables)

    def test_mixed_cutout_settings(self):
        tables = self.triplets()
        tables[-1].meta["cutout"] = {**tables[-1].meta["cutout"], "normalization": "l2"}
        with self.assertRaisesRegex(TripletDataError, "cut with different settings"):
            self.train(tables)

    def test_duplicate_ids(self):
        tables = self.triplets()
        table = max(tables, key=len)
        table["diaSourceId"][1] = table["diaSourceId"][0]
        with self.assertRaisesRegex(TripletDataError, r"rb_triplets t\d+ has 1 duplicated diaSourceId"):
            self.train(tables)

    def test_missing_column(self):
        tables = self.triplets()
        tables[0].remove_column("truthClass")
        with self.assertRaisesRegex(TripletDataError, "rb_triplets t0 .*truthClass"):
            self.train(tables)

    def test_missing_pixels(self):
        """A table without its cutouts passes the scan (which reads no
        pixels) and is refused, named, when its pixels are read.
        """
        tables = self.triplets()
        index = max(range(len(tables)), key=lambda k: len(tables[k]))
        tables[index].remove_column("cutout")
        with self.assertRaisesRegex(TripletDataError, f"rb_triplets t{index} cannot be read for training"):
            self.train(tables)

    def test_missing_cutout_settings(self):
        tables = self.triplets()
        del tables[0].meta["cutout"]
        with self.assertRaisesRegex(TripletDataError, "records no cutout settings"):
            self.train(tables)


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
