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

"""The ``ci`` scoring pipeline through BPS with the Parsl plugin on this
machine (``bps submit bps/local.yaml``), against the same pipeline run by the
pipetask executor.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.tests import MODEL, SIM_COLLECTION, TEST_WHERE, ci_model, run_pipeline

BIN = os.path.dirname(sys.executable)
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUTS = ("dia_source_reliability", "dia_source_high_reliability", "dia_source_low_reliability")
QUERY = "instrument='LSSTCam-imSim' AND " + TEST_WHERE


class BpsParslLocalTestCase(lsst.utils.tests.TestCase):
    """``bps submit bps/local.yaml`` (Parsl, local provider, 2 workers)
    scores the ``ci`` tract 4024 exactly as the pipetask executor does.
    """

    @classmethod
    def setUpClass(cls):
        cls.root, cls.package = ci_model()
        cls.tmp = tempfile.mkdtemp(prefix="rb_bps_")
        # The reference: the same pipeline file by the pipetask executor.
        run_pipeline(cls.root, "ComputeReliability.yaml", [SIM_COLLECTION, MODEL], "ref/scores", QUERY)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def bps(self, *args):
        # bps and its Parsl workers start pipetask and process_worker_pool.py
        # from PATH; ${PWD} in submitPath must be the scratch directory.
        env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
                   MEAS_REALBOGUS_DIR=PACKAGE_DIR, PWD=self.tmp)
        return subprocess.run([os.path.join(BIN, "bps"), *args], cwd=self.tmp, env=env,
                              capture_output=True, text=True, timeout=900)

    def test_submit_local_equals_pipetask(self):
        result = self.bps("submit", os.path.join(PACKAGE_DIR, "bps", "local.yaml"), "-b", self.root,
                          "-i", f"{SIM_COLLECTION},{MODEL}", "-o", "bps/scores", "-d", QUERY)
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        self.assertIn("tasks_failed_count': 0", result.stderr)
        # The submit directory (quantum graph, job logs) went under the scratch directory.
        graphs = glob.glob(os.path.join(self.tmp, "submit", "bps", "scores", "*", "*.qg"))
        self.assertEqual(len(graphs), 1)
        self.assertTrue(glob.glob(os.path.join(os.path.dirname(graphs[0]), "logs", "scoreVisit", "*", "*")))

        butler = Butler.from_config(self.root)
        for name in OUTPUTS:
            with self.subTest(dataset=name):
                reference = {r.dataId: r for r in butler.query_datasets(name, collections="ref/scores")}
                submitted = {r.dataId: r for r in butler.query_datasets(name, collections="bps/scores")}
                self.assertTrue(reference)
                self.assertEqual(submitted.keys(), reference.keys())
                for data_id, ref in reference.items():
                    a, b = butler.get(ref), butler.get(submitted[data_id])
                    self.assertEqual(a.colnames, b.colnames)
                    for column in a.colnames:
                        # Bit for bit (NaN equal to NaN, dtype included).
                        self.assertEqual(a[column].dtype, b[column].dtype)
                        np.testing.assert_array_equal(np.asarray(a[column]), np.asarray(b[column]),
                                                      err_msg=f"{name} {data_id} {column}")
        # The output chain holds its inputs: the model both runs scored with.
        self.assertEqual(butler.get("rb_model", collections="bps/scores"), self.package)

class BpsSimulationTestCase(lsst.utils.tests.TestCase):
    """``bps submit bps/simulation.yaml`` simulates a world registered by
    ``rb-simulate --register-only`` as rb-simulate does on one machine.
    """

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rb_bps_sim_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_submit_simulation(self):
        from lsst.meas.realbogus.simulation import Simulator, make_config

        config = make_config("ci")
        config.survey.visitsPerTract = 1
        reference = os.path.join(self.tmp, "reference")
        Simulator(config).run(reference, progress=False)
        root = os.path.join(self.tmp, "repo")
        Simulator(config).run(root, progress=False, register_only=True)
        env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
                   MEAS_REALBOGUS_DIR=PACKAGE_DIR, PWD=self.tmp)
        result = subprocess.run([os.path.join(BIN, "bps"), "submit",
                                 os.path.join(PACKAGE_DIR, "bps", "simulation.yaml"), "-b", root],
                                cwd=self.tmp, env=env, capture_output=True, text=True, timeout=900)
        self.assertEqual(result.returncode, 0, result.stderr[-4000:])
        self.assertIn("tasks_failed_count': 0", result.stderr)
        a, b = Butler.from_config(reference, collections="DC2/sim"), Butler.from_config(root, collections="DC2/sim")
        refs = a.query_datasets("difference_image")
        self.assertEqual({r.dataId for r in refs}, {r.dataId for r in b.query_datasets("difference_image")})
        self.assertGreaterEqual(len(refs), 3)
        for ref in refs:
            for name in ("preliminary_visit_image", "template_detector", "difference_image"):
                x, y = a.get(name, ref.dataId), b.get(name, ref.dataId)
                np.testing.assert_array_equal(x.image.array, y.image.array)
                np.testing.assert_array_equal(x.variance.array, y.variance.array)
            for name in ("dia_source_unstandardized", "dia_source_truth"):
                x, y = a.get(name, ref.dataId), b.get(name, ref.dataId)
                self.assertEqual(x.colnames, y.colnames)
                for column in x.colnames:
                    np.testing.assert_array_equal(np.asarray(x[column]), np.asarray(y[column]))


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
