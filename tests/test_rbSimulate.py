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

"""End-to-end tests of ``rb-simulate``: repositories, queries, determinism, errors."""

import contextlib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.cli.simulate import main
from lsst.meas.realbogus.simulation import BOGUS_CLASSES, REAL_CLASSES

DATASETS = ("preliminary_visit_image", "template_detector", "difference_image", "dia_source_unstandardized",
            "dia_source_truth")
BUTLER = os.path.join(os.path.dirname(sys.executable), "butler")


def _run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _repo_checksum(root, collections="DC2/sim"):
    """Digest of every pixel, variance and catalog in a repository."""
    butler = Butler.from_config(root, collections=collections)
    digest = hashlib.sha256()
    refs = sorted(butler.query_datasets("difference_image"), key=lambda r: (r.dataId["visit"],
                                                                             r.dataId["detector"]))
    for ref in refs:
        data_id = ref.dataId
        for name in ("preliminary_visit_image", "template_detector", "difference_image"):
            image = butler.get(name, data_id)
            digest.update(np.ascontiguousarray(image.image.array).tobytes())
            digest.update(np.ascontiguousarray(image.variance.array).tobytes())
        for name in ("dia_source_unstandardized", "dia_source_truth"):
            table = butler.get(name, data_id)
            for col in table.colnames:
                digest.update(np.ascontiguousarray(np.asarray(table[col])).tobytes())
    return digest.hexdigest(), len(refs)


def _tree_state(root):
    state = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            path = os.path.join(dirpath, f)
            with open(path, "rb") as fh:
                state[os.path.relpath(path, root)] = hashlib.sha256(fh.read()).hexdigest()
    return state


class RbSimulateTestCase(lsst.utils.tests.TestCase):
    """One ``ci`` repository, simulated once, checked many ways."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.root = os.path.join(cls.tmp, "repo")
        code, cls.out, cls.err = _run_cli(cls.root, "--preset", "ci", "--no-progress")
        assert code == 0, cls.err

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_summary_printed(self):
        self.assertIn("real fraction", self.out)
        for name in REAL_CLASSES + BOGUS_CLASSES:
            self.assertIn(name, self.out)

    def test_query_datasets_cli(self):
        result = subprocess.run([BUTLER, "query-datasets", self.root, "*", "--collections", "DC2/sim"],
                                capture_output=True, text=True, check=True)
        for name in DATASETS:
            self.assertIn(name, result.stdout)

    def test_every_dataset_per_detector_visit(self):
        butler = Butler.from_config(self.root, collections="DC2/sim")
        ids = {name: {(r.dataId["visit"], r.dataId["detector"]) for r in butler.query_datasets(name)}
               for name in DATASETS}
        # ci: 4 visits x 2 detectors in each of two tracts, but for the
        # detectors of edge pointings that no template covers (not planned).
        from lsst.meas.realbogus.simulation import make_config, plan_survey

        planned = {(s.visit.visit, s.detector) for s in plan_survey(make_config("ci"))}
        self.assertEqual(ids["difference_image"], planned)
        self.assertGreater(len(planned), 12)
        for name in DATASETS:
            self.assertEqual(ids[name], ids["difference_image"], name)

    def test_spatial_tract_queries(self):
        for tract in (3080, 4024):
            result = subprocess.run(
                [BUTLER, "query-data-ids", self.root, "visit", "detector", "--where",
                 f"skymap='DC2' AND tract={tract}"],
                capture_output=True, text=True, check=True,
            )
            visits = {int(tok) for line in result.stdout.splitlines() for tok in line.split()
                      if tok.isdigit() and len(tok) == 7}
            self.assertTrue(visits, result.stdout)
            # Visit ids carry their tract: 3080000+i and 4024000+i.
            self.assertEqual({v // 1000 for v in visits}, {tract})

    def test_catalogs_and_truth(self):
        butler = Butler.from_config(self.root, collections="DC2/sim")
        n = real = 0
        classes = set()
        for ref in butler.query_datasets("dia_source_unstandardized"):
            sources = butler.get(ref)
            truth = butler.get("dia_source_truth", ref.dataId)
            self.assertEqual(list(sources["diaSourceId"]), list(truth["diaSourceId"]))
            for col in ("diaSourceId", "x", "y", "coord_ra", "coord_dec", "psfFlux", "psfFluxErr", "snr",
                        "ixx", "iyy", "ixy", "pixelFlags_edge", "pixelFlags_saturated"):
                self.assertIn(col, sources.colnames)
            # Detected at 5 sigma in the PSF-filtered image; the PSF-fit SNR
            # of a non-PSF-like artifact (a cosmic ray) can be lower.
            self.assertTrue(np.all(np.abs(sources["peakSignificance"]) >= 5.0))
            self.assertTrue(np.all(np.isfinite(sources["snr"])))
            n += len(truth)
            real += int(np.sum(truth["is_real"]))
            classes |= set(truth["truth_class"])
        self.assertGreater(n, 30)
        self.assertGreater(real, 0)
        self.assertLess(real, n)
        self.assertGreaterEqual(len(classes & set(BOGUS_CLASSES)), 5)


class DeterminismTestCase(lsst.utils.tests.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _simulate(self, name, *extra):
        root = os.path.join(self.tmp, name)
        code, out, err = _run_cli(root, "--preset", "ci", "--no-progress", "-c", "survey.visitsPerTract=1",
                                  *extra)
        self.assertEqual(code, 0, err)
        return _repo_checksum(root)

    def test_same_seed_same_checksum_any_jobs(self):
        first, n = self._simulate("a", "--seed", "7")
        self.assertEqual(n, 4)
        second, _ = self._simulate("b", "--seed", "7", "-j", "2")
        self.assertEqual(first, second)
        other, _ = self._simulate("c", "--seed", "8")
        self.assertNotEqual(first, other)

    def test_registered_world_simulated_by_pipetask_is_the_same(self):
        """``--register-only`` then pipelines/Simulate.yaml (one quantum per
        detector-visit, the executor pipetask uses) writes what rb-simulate
        writes, bit for bit.
        """
        from lsst.meas.realbogus.tests import run_pipeline

        reference, n = self._simulate("a", "--seed", "7")
        root = os.path.join(self.tmp, "registered")
        code, out, err = _run_cli(root, "--preset", "ci", "--no-progress", "-c", "survey.visitsPerTract=1",
                                  "--seed", "7", "--register-only")
        self.assertEqual(code, 0, err)
        self.assertIn(f"registered {n} detector-visits", out)
        butler = Butler.from_config(root)
        self.assertEqual(butler.query_datasets("difference_image", collections="*", find_first=False,
                                               explain=False), [])
        self.assertEqual(len(butler.query_datasets("rb_simulation_plan", collections="DC2/sim/config")), n)
        quanta = run_pipeline(root, "Simulate.yaml", ["DC2/sim/config"], "DC2/sim", "instrument='LSSTCam-imSim'")
        self.assertEqual(len(quanta), n)
        self.assertEqual(_repo_checksum(root), (reference, n))


class CliErrorTestCase(lsst.utils.tests.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _assert_one_line_error(self, argv, fragment):
        code, out, err = _run_cli(*argv)
        self.assertEqual(code, 2)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertTrue(lines[0].startswith("rb-simulate: error:"), err)
        self.assertIn(fragment, lines[0])

    def test_unknown_preset(self):
        root = os.path.join(self.tmp, "r")
        self._assert_one_line_error([root, "--preset", "huge"], "unknown preset 'huge'")
        self.assertFalse(os.path.exists(root))

    def test_negative_rate(self):
        root = os.path.join(self.tmp, "r")
        self._assert_one_line_error([root, "--preset", "ci", "-c", "artifacts.cosmicRayRate=-1"],
                                    "cosmicRayRate")
        self.assertFalse(os.path.exists(root))

    def test_bad_range_and_unknown_field(self):
        root = os.path.join(self.tmp, "r")
        self._assert_one_line_error([root, "-c", "artifacts.dipoleOffset=[0.5, 0.1]"], "dipoleOffset")
        self._assert_one_line_error([root, "-c", "survey.noSuchThing=3"], "noSuchThing")
        self._assert_one_line_error([root, "--config-file", os.path.join(self.tmp, "missing.py")],
                                    "does not exist")

    def test_existing_repo_untouched(self):
        root = os.path.join(self.tmp, "existing")
        os.makedirs(root)
        with open(os.path.join(root, "precious.txt"), "w") as fh:
            fh.write("keep me")
        before = _tree_state(root)
        self._assert_one_line_error([root, "--preset", "ci"], root)
        self.assertEqual(_tree_state(root), before)
        # --overwrite does not delete something that is not a butler repository.
        self._assert_one_line_error([root, "--preset", "ci", "--overwrite"], "butler")
        self.assertEqual(_tree_state(root), before)


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
