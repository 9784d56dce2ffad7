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

"""Tests of evaluateRealBogus and rb-report on a ci repository."""

import base64
import contextlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import numpy as np
from matplotlib.image import imread

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.cli.report import main as report_main
from lsst.meas.realbogus.evaluation import PLOT_NAMES, evaluate, load_scored_sources
from lsst.meas.realbogus.evaluation import _metrics as metrics
from lsst.meas.realbogus.tests import MODEL, SIM_COLLECTION, TEST_WHERE, ci_model, run_pipeline

SCORE_WHERE = "instrument='LSSTCam-imSim' AND " + TEST_WHERE
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class EvaluateTestCase(lsst.utils.tests.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.package = ci_model()
        run_pipeline(cls.root, "ComputeReliability.yaml", [SIM_COLLECTION, MODEL], "ev/scores", SCORE_WHERE,
                     {"computeReliability": {"device": "cpu", "numThreads": 1}})
        run_pipeline(cls.root, "EvaluateRealBogus.yaml", [SIM_COLLECTION, MODEL, "ev/scores"], "ev/eval",
                     TEST_WHERE, {"evaluateRealBogus": {"thresholdFromModel": False, "threshold": 0.3}})
        cls.butler = Butler.from_config(cls.root, collections=["ev/eval", "ev/scores", SIM_COLLECTION])
        cls.tmp = tempfile.mkdtemp(prefix="rb_eval_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_metrics_match_direct_computation(self):
        m = self.butler.get("rb_metrics", skymap="DC2", tract=4024)
        self.assertEqual(list(m["cuts"]), ["all", "snr>5", "snr>6"])
        self.assertEqual(m["threshold"], 0.3)
        self.assertEqual(m["thresholdSource"], "config")
        joined = load_scored_sources(self.butler, ["ev/scores", SIM_COLLECTION], TEST_WHERE)
        labels = np.asarray(joined["label"])
        scores = np.asarray(joined["reliability"], dtype=float)
        snr = np.abs(np.asarray(joined["snr"]))
        for name, cut in (("all", None), ("snr>6", 6.0)):
            keep = np.ones(len(labels), bool) if cut is None else snr > cut
            entry = m["cuts"][name]
            self.assertEqual(entry["n"], int(keep.sum()))
            self.assertEqual(entry["nReal"], int(labels[keep].sum()))
            s = entry["unweighted"]
            self.assertAlmostEqual(s["roc_auc"], metrics.roc_auc(labels[keep], scores[keep]), places=12)
            self.assertAlmostEqual(s["average_precision"], metrics.average_precision(labels[keep], scores[keep]),
                                   places=12)
            cm = metrics.confusion_matrix(labels[keep], scores[keep], 0.3)
            self.assertEqual([[s["tn"], s["fp"]], [s["fn"], s["tp"]]], cm.tolist())
            self.assertIn("20:1", entry["reweighted"]["weighting"])
            per_class = entry["perClass"]
            self.assertEqual(sum(c["n"] for c in per_class.values()), entry["n"])
            self.assertEqual(sum(c["kept"] for c in per_class.values()), s["tp"] + s["fp"])
        self.assertEqual(m["model"]["version"], self.package.version)
        self.assertEqual(m["data"]["tract"], 4024)
        self.assertIn("gitCommit", m["software"])
        self.assertEqual(set(m["requirement"]), {"all", "snr>5", "snr>6"})

    def test_plots_are_png(self):
        for name in PLOT_NAMES:
            uri = self.butler.getURI(f"rb_plot_{name}", skymap="DC2", tract=4024)
            data = uri.read()
            self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n", name)
            self.assertGreater(imread(io.BytesIO(data)).shape[0], 100)

    def run_report(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = report_main(list(args))
        return code, out.getvalue(), err.getvalue()

    def test_report_is_self_contained(self):
        path = os.path.join(self.tmp, "report.html")
        code, out, err = self.run_report(self.root, "-i", "ev/eval", "--tract", "4024", "-o", path)
        self.assertEqual(code, 0, err)
        page = open(path).read()
        self.assertIn(self.package.version, page)
        self.assertIn("OSS-REQ-0353", page)
        sources = re.findall(r"<img [^>]*src='([^']*)'", page)
        self.assertEqual(len(sources), len(PLOT_NAMES))
        for src in sources:
            self.assertTrue(src.startswith("data:image/png;base64,"), src[:40])
            png = base64.b64decode(src.split(",", 1)[1])
            self.assertGreater(imread(io.BytesIO(png)).shape[1], 100)
        self.assertNotRegex(page, r"(src|href)=['\"](http|file|/)")

    @unittest.skipUnless(CHROMIUM, "no headless browser on this machine")
    def test_report_renders_in_headless_browser(self):
        path = os.path.join(self.tmp, "browser.html")
        self.assertEqual(self.run_report(self.root, "-i", "ev/eval", "--tract", "4024", "-o", path)[0], 0)
        probe = os.path.join(self.tmp, "probe.html")
        with open(path) as f, open(probe, "w") as g:
            g.write(f.read().replace("</body>", "<script>window.onload = () => { const bad = [...document.images]"
                                     ".filter(i => !(i.complete && i.naturalWidth > 0)).length; "
                                     "document.title = 'IMAGES ' + document.images.length + ' BROKEN ' + bad; };"
                                     "</script></body>"))
        result = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                                 f"file://{probe}"], capture_output=True, text=True, timeout=120)
        self.assertIn(f"IMAGES {len(PLOT_NAMES)} BROKEN 0", result.stdout)

    def test_report_errors(self):
        code, _, err = self.run_report(self.root, "-i", "ev/scores", "--tract", "4024", "-o",
                                       os.path.join(self.tmp, "x.html"))
        self.assertEqual(code, 2)
        self.assertIn("no rb_metrics for tract 4024", err)
        self.assertEqual(len(err.strip().splitlines()), 1)

    def test_evaluate_on_perfect_scores_meets_requirement(self):
        joined = load_scored_sources(self.butler, ["ev/scores", SIM_COLLECTION], TEST_WHERE)
        joined["reliability"] = np.where(joined["label"] == 1, 0.9, 0.1)
        result = evaluate(joined, threshold=0.5)
        for entry in result["cuts"].values():
            if entry["unweighted"]:
                self.assertTrue(entry["unweighted"]["meets_requirement"])
                self.assertEqual(entry["unweighted"]["requirement_range"], [0.1, 0.9])


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
