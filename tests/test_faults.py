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

"""Faults and determinism: real SIGKILLs of a ``pipetask run -j 2`` scoring
run and of an ``rb-train`` run, each resumed to the uninterrupted result; and
bit-identical scores across runs on the CPU.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.models import ModelPackage
from lsst.meas.realbogus.scoring import ComputeReliabilityConfig, ComputeReliabilityTask
from lsst.meas.realbogus.scoring import _scoring as scoring
from lsst.meas.realbogus.tests import (
    MODEL,
    SIM_COLLECTION,
    TEST_WHERE,
    TRIPLETS,
    ci_model,
    kill_group_when,
    pipeline_path,
    quick_training_config,
    run_pipeline,
    triplet_handles,
)
from lsst.meas.realbogus.training import TrainRealBogusTask

BIN = os.path.dirname(sys.executable)
SCORE_WHERE = "instrument='LSSTCam-imSim' AND " + TEST_WHERE
# Three quanta of computeReliability alone: with -j 2 every quantum is a fresh
# Python (seconds of imports), so few quanta keep the kill test short; the
# third starts only after one of the first two ends, so a kill at the first
# output is always mid-run.
KILL_WHERE = SCORE_WHERE + " AND (visit = 4024000 OR (visit = 4024001 AND detector = 90))"
KILL_PIPELINE = "ComputeReliability.yaml#computeReliability"
CPU = {"device": "cpu", "numThreads": 1}
# Enough epochs that a kill after the first checkpoint lands mid-run.
EPOCHS = 6


class ScoringKillTestCase(lsst.utils.tests.TestCase):
    """A real SIGKILL of ``pipetask run -j 2`` mid-way, then a resume."""

    @classmethod
    def setUpClass(cls):
        cls.root, cls.package = ci_model()
        cls.reference = "faults/scores-ref"
        run_pipeline(cls.root, KILL_PIPELINE, [SIM_COLLECTION, MODEL], cls.reference, KILL_WHERE,
                     {"computeReliability": CPU})

    def test_kill_j2_then_skip_existing_equals_uninterrupted(self):
        output = "faults/scores-j2"
        cmd = [os.path.join(BIN, "pipetask"), "run", "-j", "2", "-b", self.root, "-i", f"{SIM_COLLECTION},{MODEL}",
               "-o", output, "-p", pipeline_path(KILL_PIPELINE), "-d", KILL_WHERE,
               "-c", "computeReliability:device=cpu", "-c", "computeReliability:numThreads=1",
               "--register-dataset-types"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        killed = kill_group_when(proc, os.path.join(self.root, output, "*", "dia_source_reliability", "**",
                                                    "*.parq*"))
        self.assertTrue(killed, "pipetask finished before any output appeared; nothing was interrupted")
        # A kill inside a registry transaction leaves SQLite a hot journal that only a
        # writeable connection may roll back.
        butler = Butler.from_config(self.root, writeable=True)
        expected = butler.query_datasets("dia_source_reliability", collections=self.reference)
        self.assertEqual(len(expected), 3)
        try:
            partial = butler.query_datasets("dia_source_reliability", collections=output, explain=False)
        except Exception:
            partial = []  # killed before the output collection was registered
        self.assertLess(len(partial), len(expected))
        for ref in partial:
            butler.get(ref)  # whatever is registered is complete
        result = subprocess.run(cmd + ["--skip-existing-in", output, "--extend-run", "--clobber-outputs"],
                                capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        butler = Butler.from_config(self.root)
        final = butler.query_datasets("dia_source_reliability", collections=output)
        self.assertEqual({r.dataId for r in final}, {r.dataId for r in expected})
        # What survived the kill was kept, not redone.
        self.assertTrue({r.id for r in partial} <= {r.id for r in final})
        for ref in final:
            got = butler.get(ref)
            want = butler.get("dia_source_reliability", ref.dataId, collections=self.reference)
            self.assertEqual(got.colnames, want.colnames)
            for name in got.colnames:
                np.testing.assert_array_equal(got[name], want[name], err_msg=name)
            self.assertEqual(got["reliability"].dtype, np.float32)


class TrainingKillTestCase(lsst.utils.tests.TestCase):
    """A real SIGKILL of ``rb-train`` after its first checkpoint, then a
    resume: the weights equal those of an uninterrupted run.
    """

    def setUp(self):
        self.root, _ = ci_model()
        self.tmp = tempfile.mkdtemp(prefix="rb_faults_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_kill_after_checkpoint_then_resume_equals_uninterrupted(self):
        ckpt = os.path.join(self.tmp, "ckpt")
        path = os.path.join(self.tmp, "model.zip")
        cmd = [os.path.join(BIN, "rb-train"), self.root, "-i", TRIPLETS, "--tract", "3080", "--package", path,
               "-c", f"epochs={EPOCHS}", "-c", "batchSize=8", "-c", "device=cpu", "-c", "numThreads=1",
               "-c", "validationFraction=0.2", "-c", "progressBar=False", "-c", f"checkpointDir={ckpt}"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        killed = kill_group_when(proc, os.path.join(ckpt, "checkpoint.pt"))
        self.assertTrue(killed, "rb-train finished before its first checkpoint was seen")
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assertFalse(os.path.exists(path))
        result = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        resumed_after = re.search(r"Resumed from .* after epoch (\d+)", result.stderr)
        self.assertIsNotNone(resumed_after, result.stderr[-3000:])
        self.assertTrue(1 <= int(resumed_after.group(1)) < EPOCHS)
        resumed = ModelPackage.read(path)
        self.assertEqual(resumed.metadata.training["epochsRun"], EPOCHS)
        _, handles, names = triplet_handles(self.root)
        uninterrupted = TrainRealBogusTask(config=quick_training_config(epochs=EPOCHS)).run(
            handles, names=names).model
        self.assertEqual(resumed.weights_bytes, uninterrupted.weights_bytes)


class DeterminismTestCase(lsst.utils.tests.TestCase):
    """Scores of the same inputs and model on the CPU."""

    @classmethod
    def setUpClass(cls):
        root, cls.package = ci_model()
        cls.butler = Butler.from_config(root, collections=[SIM_COLLECTION])
        cls.inputs = []
        for ref in cls.butler.query_datasets("dia_source_unstandardized", where=TEST_WHERE):
            names = {"science": "preliminary_visit_image", "template": "template_detector",
                     "difference": "difference_image", "diaSources": "dia_source_unstandardized"}
            cls.inputs.append({k: cls.butler.get(v, ref.dataId) for k, v in names.items()})

    def scores(self, batch_size=256):
        config = ComputeReliabilityConfig()
        config.device = "cpu"
        config.numThreads = 1
        config.batchSize = batch_size
        task = ComputeReliabilityTask(config=config)
        # A fresh network each time, not the cached one.
        scoring._CACHE.clear()
        return np.concatenate([np.asarray(task.run(**inputs, model=self.package).classifications["reliability"])
                               for inputs in self.inputs])

    def test_bit_identical_across_runs(self):
        first, second = self.scores(), self.scores()
        self.assertGreater(len(first), 10)
        self.assertEqual(first.tobytes(), second.tobytes())

    def test_batch_sizes_agree(self):
        reference = self.scores(64)
        for batch in (1, 7):
            np.testing.assert_allclose(self.scores(batch), reference, rtol=0, atol=1e-6, err_msg=f"batch {batch}")


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
