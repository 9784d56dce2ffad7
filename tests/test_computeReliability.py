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

"""Tests of computeReliability and filterReliability on a ci repository."""

import datetime
import json
import os
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.errors import DeviceError, InvalidCatalogError, NonFiniteScoreError
from lsst.meas.realbogus.scoring import (
    RELIABILITY_COLUMNS,
    ComputeReliabilityConfig,
    ComputeReliabilityTask,
    FilterReliabilityTask,
    score_triplets,
)
from lsst.meas.realbogus.scoring import _computeReliability as crModule
from lsst.meas.realbogus.tests import (
    MODEL,
    SIM_COLLECTION,
    TEST_WHERE,
    TRIPLETS,
    ci_model,
    kill_group_when,
    pipeline_path,
    run_pipeline,
)
from lsst.pipe.base import AlgorithmError

BIN = os.path.dirname(sys.executable)
SCORE_WHERE = "instrument='LSSTCam-imSim' AND " + TEST_WHERE
CPU = {"computeReliability": {"device": "cpu", "numThreads": 1}}
IMAGES = {"science": "preliminary_visit_image", "template": "template_detector", "difference": "difference_image"}

POISONED_PIPETASK = """\
import sys
import tempfile
from unittest import mock

import numpy as np

from lsst.ctrl.mpexec.cli.pipetask import main
from lsst.meas.realbogus.scoring import _computeReliability as cr

poisoned = int(sys.argv.pop(1))
original = cr.score_triplets


def score(model, cutouts, **kwargs):
    scores = original(model, cutouts, **kwargs)
    if len(cutouts) == poisoned:
        scores[len(scores) // 2] = np.nan
    return scores


with mock.patch.object(cr, "score_triplets", score):
    main()
"""
"""``pipetask`` (``-j 1``: quanta run in this process) with a model that
scores one source NaN on detector-visits of ``argv[1]`` sources."""


def nan_at(rows, value=np.nan):
    """A stand-in for score_triplets that scores ``rows`` as ``value``."""
    original = crModule.score_triplets

    def score(model, cutouts, **kwargs):
        scores = original(model, cutouts, **kwargs)
        scores[[row for row in rows if row < len(scores)]] = value
        return scores

    return score


class ComputeReliabilityTestCase(lsst.utils.tests.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.package = ci_model()
        run_pipeline(cls.root, "ComputeReliability.yaml", [SIM_COLLECTION, MODEL], "ci/scores", SCORE_WHERE, CPU)
        cls.butler = Butler.from_config(cls.root, collections=["ci/scores", TRIPLETS, SIM_COLLECTION])

    def test_one_score_per_source(self):
        scores = self.butler.query_datasets("dia_source_reliability")
        sources = self.butler.query_datasets("dia_source_unstandardized", where=TEST_WHERE)
        self.assertEqual({r.dataId for r in scores}, {r.dataId for r in sources})
        total = 0
        for ref in scores:
            table = self.butler.get(ref)
            cat = self.butler.get("dia_source_unstandardized", ref.dataId)
            self.assertEqual(table.colnames, list(RELIABILITY_COLUMNS))
            np.testing.assert_array_equal(table["diaSourceId"], cat["id"])
            self.assertEqual(table["reliability"].dtype, np.float32)
            r = np.asarray(table["reliability"])
            self.assertTrue(np.all(np.isfinite(r) & (r >= 0) & (r <= 1)))
            self.assertTrue(all(v == self.package.version for v in table["modelVersion"]))
            total += len(table)
        self.assertGreater(total, 10)
        # A detector-visit without sources: ComputeReliabilityBadInputsTestCase.test_empty_catalog.

    def test_metadata_times_each_step(self):
        """timeMethod records each step of every quantum, in order, and the
        task records the source count.
        """
        steps = ("readInputs", "run", "loadModel", "cutTriplets", "scoreTriplets", "writeOutputs")
        refs = self.butler.query_datasets("computeReliability_metadata")
        self.assertGreater(len(refs), 1)
        for ref in refs:
            metadata = self.butler.get(ref)["computeReliability"]
            times = {}
            for step in steps:
                for edge in ("Start", "End"):
                    times[step + edge] = datetime.datetime.fromisoformat(metadata[f"{step}{edge}Utc"])
                    self.assertIsInstance(metadata[f"{step}{edge}CpuTime"], float)
            order = ["readInputsStart", "readInputsEnd", "runStart", "loadModelStart", "loadModelEnd",
                     "cutTripletsStart", "cutTripletsEnd", "scoreTripletsStart", "scoreTripletsEnd", "runEnd",
                     "writeOutputsStart", "writeOutputsEnd"]
            self.assertEqual(sorted(order, key=times.__getitem__), order)
            scores = self.butler.get("dia_source_reliability", ref.dataId)
            self.assertEqual(metadata["nSources"], len(scores))

    def test_scores_equal_triplet_scores(self):
        """One cutout implementation: scoring rb_triplets gives the same numbers."""
        model = self.package.build_model()
        compared = 0
        for ref in self.butler.query_datasets("dia_source_reliability"):
            table = self.butler.get(ref)
            triplets = self.butler.get("rb_triplets", ref.dataId)
            np.testing.assert_array_equal(triplets["diaSourceId"], table["diaSourceId"])
            expected = score_triplets(model, np.asarray(triplets["cutout"]), device=torch.device("cpu"),
                                      temperature=self.package.temperature, intercept=self.package.intercept)
            np.testing.assert_allclose(table["reliability"], expected, rtol=0, atol=1e-6)
            np.testing.assert_array_equal(table["cutoutFlags_edge"], triplets["cutoutFlags_edge"])
            compared += len(table)
        self.assertGreater(compared, 10)

    def test_filter_splits_at_threshold(self):
        for ref in self.butler.query_datasets("dia_source_reliability"):
            scores = self.butler.get(ref)
            high = self.butler.get("dia_source_high_reliability", ref.dataId)
            low = self.butler.get("dia_source_low_reliability", ref.dataId)
            self.assertEqual(len(high) + len(low), len(scores))
            self.assertTrue(np.all(np.asarray(high["reliability"]) >= 0.5))
            self.assertTrue(np.all(np.asarray(low["reliability"]) < 0.5))
            self.assertEqual(sorted(list(high["id"]) + list(low["id"])),
                             sorted(scores["diaSourceId"]))
            self.assertIn("base_PsfFlux_instFlux", high.colnames)

    def test_filter_refuses_unscored_sources(self):
        ref = max(self.butler.query_datasets("dia_source_reliability"),
                  key=lambda r: len(self.butler.get(r)))
        scores = self.butler.get(ref)
        cat = self.butler.get("dia_source_unstandardized", ref.dataId)
        with self.assertRaisesRegex(InvalidCatalogError, "1 of .* have no reliability"):
            FilterReliabilityTask().run(diaSources=cat, classifications=scores[1:])

    def _inputs(self):
        ref = max(self.butler.query_datasets("dia_source_reliability"), key=lambda r: len(self.butler.get(r)))
        names = {"science": "preliminary_visit_image", "template": "template_detector",
                 "difference": "difference_image", "diaSources": "dia_source_unstandardized"}
        inputs = {k: self.butler.get(v, ref.dataId) for k, v in names.items()}
        inputs["model"] = self.package
        return inputs

    def test_empty_catalog_direct(self):
        inputs = self._inputs()
        inputs["diaSources"] = inputs["diaSources"][:0]
        config = ComputeReliabilityConfig()
        config.device = "cpu"
        table = ComputeReliabilityTask(config=config).run(**inputs).classifications
        self.assertEqual(len(table), 0)
        self.assertEqual(table.colnames, list(RELIABILITY_COLUMNS))
        self.assertEqual(table["reliability"].dtype, np.float32)

    def test_batch_size_does_not_change_scores(self):
        inputs = self._inputs()
        results = []
        for batch in (1, 3, 256):
            config = ComputeReliabilityConfig()
            config.device = "cpu"
            config.batchSize = batch
            results.append(np.asarray(ComputeReliabilityTask(config=config).run(**inputs).classifications["reliability"]))
        for r in results[1:]:
            np.testing.assert_allclose(r, results[0], rtol=0, atol=1e-6)

    @unittest.skipIf(torch.cuda.is_available(), "this machine has a GPU")
    def test_cuda_without_gpu(self):
        config = ComputeReliabilityConfig()
        config.device = "cuda"
        with self.assertRaisesRegex(DeviceError, "no CUDA GPU"):
            ComputeReliabilityTask(config=config)

    def test_missing_model_fails_at_graph_building(self):
        cmd = [os.path.join(BIN, "pipetask"), "qgraph", "-b", self.root, "-i", SIM_COLLECTION, "-o", "ci/none",
               "-p", pipeline_path("ComputeReliability.yaml"), "-d", SCORE_WHERE]
        result = subprocess.run(cmd, capture_output=True, text=True)
        self.assertNotEqual(result.returncode, 0)
        last = [line for line in result.stderr.splitlines() if line.strip()][-1]
        # One line, from what is missing to what to do.
        self.assertIn("No 'rb_model' dataset (the real/bogus model package", last)
        self.assertIn("in the input collections of computeReliability; add the collection that "
                      "trainRealBogus or rb-train wrote to the inputs", last)
        self.assertTrue(last.rstrip().endswith("-i DC2/sim,u/$USER/rbModel."), last)

    def test_failure_leaves_no_partial_output_and_resume_completes(self):
        """A quantum that dies writes nothing; re-running with
        skip-existing finishes the rest and does not touch what was done.
        """
        original = crModule.score_triplets
        calls = {"n": 0}

        def dies_on_third(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("simulated crash")
            return original(*args, **kwargs)

        output = "ci/scores-crash"
        with mock.patch.object(crModule, "score_triplets", dies_on_third):
            with self.assertRaises(Exception):
                run_pipeline(self.root, "ComputeReliability.yaml", [SIM_COLLECTION, MODEL], output, SCORE_WHERE,
                             CPU)
        butler = Butler.from_config(self.root)
        partial = butler.query_datasets("dia_source_reliability", collections=output, explain=False)
        n_total = len(butler.query_datasets("dia_source_unstandardized", collections=SIM_COLLECTION,
                                            where=TEST_WHERE))
        self.assertEqual(len(partial), 2)
        for ref in partial:
            butler.get(ref)  # complete and readable
        first_ids = {ref.id for ref in partial}
        # Resume into the same output chain: only the missing quanta run.
        cmd = [os.path.join(BIN, "pipetask"), "run", "-b", self.root, "-i", f"{SIM_COLLECTION},{MODEL}",
               "-o", output, "--skip-existing-in", output, "--extend-run", "--clobber-outputs",
               "-p", pipeline_path("ComputeReliability.yaml"), "-d", SCORE_WHERE,
               "-c", "computeReliability:device=cpu", "-c", "computeReliability:numThreads=1"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        final = butler.query_datasets("dia_source_reliability", collections=output)
        self.assertEqual(len(final), n_total)
        self.assertTrue(first_ids <= {ref.id for ref in final})
        clean = Butler.from_config(self.root, collections="ci/scores")
        for ref in final:
            np.testing.assert_array_equal(butler.get(ref)["reliability"],
                                          clean.get("dia_source_reliability", ref.dataId)["reliability"])


    def test_sigkill_mid_run_then_resume(self):
        """A real kill -9 of pipetask mid-run: whatever the registry holds is
        complete, and a resumed run ends equal to an uninterrupted one.
        """
        output = "ci/scores-kill"
        cmd = [os.path.join(BIN, "pipetask"), "run", "-b", self.root, "-i", f"{SIM_COLLECTION},{MODEL}",
               "-o", output, "-p", pipeline_path("ComputeReliability.yaml"), "-d", SCORE_WHERE,
               "-c", "computeReliability:device=cpu", "-c", "computeReliability:numThreads=1",
               "--register-dataset-types"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        pattern = os.path.join(self.root, output, "*", "dia_source_reliability", "**", "*.parq*")
        killed_running = kill_group_when(proc, pattern, timeout=300)
        # A kill inside a registry transaction leaves SQLite a hot journal that only a writeable
        # connection may roll back; a read-only Butler would fail until then.
        butler = Butler.from_config(self.root, writeable=True)
        n_total = len(butler.query_datasets("dia_source_unstandardized", collections=SIM_COLLECTION,
                                            where=TEST_WHERE))
        try:
            partial = butler.query_datasets("dia_source_reliability", collections=output, explain=False)
        except Exception:
            partial = []  # killed before the output collection existed
        for ref in partial:
            butler.get(ref)  # every registered output is complete
        if killed_running:
            self.assertLess(len(partial), n_total)
        result = subprocess.run(cmd + ["--skip-existing-in", output, "--extend-run", "--clobber-outputs"],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        butler = Butler.from_config(self.root)
        final = butler.query_datasets("dia_source_reliability", collections=output)
        self.assertEqual(len(final), n_total)
        self.assertTrue({ref.id for ref in partial} <= {ref.id for ref in final})
        clean = Butler.from_config(self.root, collections="ci/scores")
        for ref in final:
            np.testing.assert_array_equal(butler.get(ref)["reliability"],
                                          clean.get("dia_source_reliability", ref.dataId)["reliability"])


class NonFiniteScoreTestCase(lsst.utils.tests.TestCase):
    """A non-finite score is never written (doc/reliability.rst): a package
    whose weights are not finite, or overflow on the probe batch, is
    refused at load (tests/test_hostileModelPackages.py); a score that is
    still not finite fails its quantum with NonFiniteScoreError.
    """

    @classmethod
    def setUpClass(cls):
        cls.root, cls.package = ci_model()
        cls.butler = Butler.from_config(cls.root, collections=[SIM_COLLECTION])
        refs = cls.butler.query_datasets("dia_source_unstandardized", where=TEST_WHERE)
        cls.counts = {ref.dataId: len(cls.butler.get(ref)) for ref in refs}
        cls.data_id = max(cls.counts, key=cls.counts.get)

    def inputs(self):
        inputs = {k: self.butler.get(v, self.data_id) for k, v in IMAGES.items()}
        inputs["diaSources"] = self.butler.get("dia_source_unstandardized", self.data_id)
        return inputs

    def task(self, **values):
        config = ComputeReliabilityConfig()
        config.device, config.numThreads = "cpu", 1
        for key, value in values.items():
            setattr(config, key, value)
        return ComputeReliabilityTask(config=config)

    def test_non_finite_score_fails_the_quantum(self):
        """NaN or inf in any row, in either schema and in any chunk: a
        one-line NonFiniteScoreError (an AlgorithmError, so pipetask records
        it as this quantum's failure) naming the model and a source.
        """
        n = self.counts[self.data_id]
        ids = np.asarray(self.inputs()["diaSources"]["id"])
        for value, schema, chunk in ((np.nan, "package", 4096), (np.inf, "ap", 4096), (np.nan, "package", 2)):
            with self.subTest(value=value, schema=schema, chunk=chunk):
                task = self.task(outputSchema=schema, sourceChunkSize=chunk)
                with mock.patch.object(crModule, "score_triplets", nan_at([1], value)):
                    with self.assertRaises(NonFiniteScoreError) as cm:
                        task.run(**self.inputs(), model=self.package)
                message = str(cm.exception)
                self.assertNotIn("\n", message)
                self.assertIsInstance(cm.exception, AlgorithmError)
                self.assertIn(f"model {self.package.version} gave", message)
                self.assertIn(f"non-finite score (e.g. id {ids[1]})", message)
                nan_rows = 1 if chunk >= n else len(range(1, n, chunk))
                self.assertEqual(cm.exception.metadata["nonFiniteScores"], nan_rows)
                self.assertEqual(cm.exception.metadata["sources"], n)
        # Finite scores pass the same check.
        table = self.task().run(**self.inputs(), model=self.package).classifications
        self.assertTrue(np.isfinite(np.asarray(table["reliability"])).all())

    def test_pipetask_records_the_failure_and_writes_no_scores(self):
        """In a pipetask run, only the quanta with a non-finite score fail,
        with NonFiniteScoreError in the summary, and write nothing; every
        other detector-visit is scored.
        """
        n = self.counts[self.data_id]
        poisoned = {(d["visit"], d["detector"]) for d, count in self.counts.items() if count == n}
        output = "ci/scores-nan"
        with tempfile.TemporaryDirectory() as tmp:
            summary = os.path.join(tmp, "summary.json")
            cmd = [sys.executable, "-c", POISONED_PIPETASK, str(n), "run", "-b", self.root,
                   "-i", f"{SIM_COLLECTION},{MODEL}", "-o", output, "-p", pipeline_path("ComputeReliability.yaml"),
                   "-d", SCORE_WHERE, "-c", "computeReliability:device=cpu",
                   "-c", "computeReliability:numThreads=1", "--register-dataset-types", "--summary", summary]
            result = subprocess.run(cmd, capture_output=True, text=True)
            with open(summary) as stream:
                report = json.load(stream)
        self.assertNotEqual(result.returncode, 0)
        statuses = {label: {(q["dataId"]["visit"], q["dataId"]["detector"]): q for q in report["quantaReports"]
                            if q["taskLabel"] == label}
                    for label in ("computeReliability", "filterDiaSourcePostReliability")}
        scoring = statuses["computeReliability"]
        failed = {key for key, q in scoring.items() if q["status"] == "failure"}
        self.assertEqual(failed, poisoned)
        for key in failed:
            info = scoring[key]["exceptionInfo"]
            self.assertEqual(info["className"], "lsst.meas.realbogus.errors.NonFiniteScoreError")
            self.assertIn("non-finite score", info["message"])
        self.assertEqual({q["status"] for key, q in scoring.items() if key not in failed}, {"success"})
        # The filter of a failed quantum does not run: no alert goes out from
        # a NaN, and none is dropped without a recorded failure.
        filtering = statuses["filterDiaSourcePostReliability"]
        self.assertEqual({key for key, q in filtering.items() if q["status"] == "success"}, set(scoring) - poisoned)
        butler = Butler.from_config(self.root, collections=output)
        for name in ("dia_source_reliability", "dia_source_low_reliability"):
            written = {(r.dataId["visit"], r.dataId["detector"]) for r in butler.query_datasets(name)}
            self.assertEqual(written, set(scoring) - poisoned)
        for ref in butler.query_datasets("dia_source_reliability"):
            self.assertTrue(np.isfinite(np.asarray(butler.get(ref)["reliability"])).all())

    def test_filter_refuses_non_finite_reliability(self):
        """A reliability catalog from elsewhere with a NaN is refused, not
        split into the low-reliability catalog.
        """
        sources = self.inputs()["diaSources"]
        for schema in ("package", "ap"):
            with self.subTest(schema=schema):
                table = self.task(outputSchema=schema).run(**self.inputs(), model=self.package).classifications
                column = "score" if schema == "ap" else "reliability"
                table[column][2] = np.nan
                with self.assertRaisesRegex(InvalidCatalogError, r"^1 of \d+ DIA sources have a non-finite "
                                            rf"reliability, e.g. id {sources['id'][2]};"):
                    FilterReliabilityTask().run(diaSources=sources, classifications=table)

    def test_chunks_give_the_same_scores(self):
        """sourceChunkSize bounds memory and changes nothing but float32
        rounding; a multiple of batchSize makes the same forward batches,
        so the same bits.
        """
        for batch, chunk, atol in ((2, 4, 0.0), (2, 2, 0.0), (64, 1, 1e-6), (64, 3, 1e-6)):
            with self.subTest(batch=batch, chunk=chunk):
                whole = self.task(batchSize=batch).run(**self.inputs(), model=self.package).classifications
                task = self.task(batchSize=batch, sourceChunkSize=chunk)
                table = task.run(**self.inputs(), model=self.package).classifications
                self.assertEqual(task.metadata["nChunks"], -(-len(whole) // chunk))
                self.assertEqual(table.colnames, whole.colnames)
                for name in whole.colnames:
                    if name == "reliability":
                        np.testing.assert_allclose(table[name], whole[name], rtol=0, atol=atol)
                    else:
                        np.testing.assert_array_equal(table[name], whole[name])


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
