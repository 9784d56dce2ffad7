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
import html
import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
from matplotlib.image import imread

import lsst.meas.realbogus.evaluation
import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.cli._files import is_report, mark_report
from lsst.meas.realbogus.cli.evaluate import main as evaluate_main
from lsst.meas.realbogus.cli.report import main as report_main
from lsst.meas.realbogus.evaluation import PLOT_NAMES, evaluate, load_scored_sources, package_commit
from lsst.meas.realbogus.evaluation import _gallery as gallery
from lsst.meas.realbogus.evaluation import _metrics as metrics
from lsst.meas.realbogus.evaluation._provenance import _checkout_commit
from lsst.meas.realbogus.tests import MODEL, SIM_COLLECTION, TEST_WHERE, ci_model, run_pipeline

RB_REPORT = os.path.join(os.path.dirname(sys.executable), "rb-report")

SCORE_WHERE = "instrument='LSSTCam-imSim' AND " + TEST_WHERE
NO_BROWSER = os.environ.get("RB_NO_BROWSER") == "1"
"""RB_NO_BROWSER=1 skips the browser test; otherwise a missing browser fails
it (``make test`` installs Debian's chromium; CI never sets the variable)."""
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--virtual-time-budget=10000")
# Written into the page: at its load event (every image fetched, decoded or failed; --dump-dom
# waits for it), a <pre> says how many images have a size.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const broken = images.filter(i => !(i.complete && i.naturalWidth > 0));
  const p = document.createElement("pre");
  p.id = "rb-image-check";
  p.textContent = "IMAGES " + images.length + " DECODED " + (images.length - broken.length) + " BROKEN "
    + broken.map(i => i.alt).join(",");
  document.body.appendChild(p);
});
</script>"""
BROKEN_IMAGE = "<img alt='deliberately-broken' src='data:image/png;base64,AAAA'>"


def find_browser() -> str | None:
    """Chromium (Debian's /usr/bin/chromium, else one on the PATH)."""
    return next((path for path in ("/usr/bin/chromium", shutil.which("chromium"),
                                   shutil.which("chromium-browser"), shutil.which("google-chrome"))
                 if path and os.access(path, os.X_OK)), None)


def images_decoded_in_browser(browser: str, page: str, workdir: str) -> str:
    """Open ``page`` (HTML text) in headless Chromium with `IMAGE_PROBE`;
    return the probe's line (``IMAGES n DECODED m BROKEN alts``).
    """
    probe = os.path.join(workdir, "probe.html")
    with open(probe, "w") as stream:
        stream.write(page.replace("</body>", IMAGE_PROBE + "</body>"))
    profile = tempfile.mkdtemp(prefix="chromium_", dir=workdir)
    result = subprocess.run([browser, *BROWSER_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                             Path(probe).as_uri()], capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="rb-image-check">([^<]*)</pre>', result.stdout)
    if found is None:
        raise AssertionError(f"the browser wrote no image check (exit {result.returncode}): "
                             f"{result.stderr[-2000:]}")
    return html.unescape(found.group(1)).strip()


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
        self.assertEqual(m["software"]["gitCommit"], package_commit())
        self.assertEqual(m["software"]["meas_realbogus"], self.package.metadata.software["meas_realbogus"])
        self.assertEqual(set(m["requirement"]), {"all", "snr>5", "snr>6"})

    def test_ap_schema_joins_like_the_package_schema(self):
        """Scores written with outputSchema='ap' (id, score, version) join
        to the same labels, SNR and scores; their cutout flags read False.
        """
        from lsst.meas.realbogus.evaluation import join_scores
        from lsst.meas.realbogus.scoring import make_ap_reliability_catalog

        ref = self.butler.query_datasets("dia_source_reliability", collections="ev/scores", limit=1)[0]
        package_schema = self.butler.get(ref)
        truth = self.butler.get("dia_source_truth", ref.dataId)
        sources = self.butler.get("dia_source_unstandardized", ref.dataId)
        ap = make_ap_reliability_catalog(np.asarray(package_schema["diaSourceId"]),
                                         np.asarray(package_schema["reliability"]), self.package.short_version)
        expected = join_scores(package_schema, truth, sources)
        joined = join_scores(ap, truth, sources)
        self.assertGreater(len(joined), 0)
        for name in ("diaSourceId", "reliability", "label", "truthClass", "snr"):
            np.testing.assert_array_equal(joined[name], expected[name])
        self.assertFalse(np.any(joined["cutoutFlags_edge"]) or np.any(joined["cutoutFlags_noData"]))

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

    @unittest.skipIf(NO_BROWSER, "RB_NO_BROWSER=1")
    def test_report_renders_in_headless_browser(self):
        browser = find_browser()
        self.assertIsNotNone(browser, "no chromium: `make test` installs Debian's (as root or with sudo); "
                             "RB_NO_BROWSER=1 skips this test")
        path = os.path.join(self.tmp, "browser.html")
        self.assertEqual(self.run_report(self.root, "-i", "ev/eval", "--tract", "4024", "-o", path)[0], 0)
        page = open(path).read()
        self.assertEqual(images_decoded_in_browser(browser, page, self.tmp),
                         f"IMAGES {len(PLOT_NAMES)} DECODED {len(PLOT_NAMES)} BROKEN")
        # The check sees a broken image, so a page whose plots do not decode fails it.
        broken = page.replace("<h2>Plots</h2>", "<h2>Plots</h2>" + BROKEN_IMAGE)
        self.assertEqual(images_decoded_in_browser(browser, broken, self.tmp),
                         f"IMAGES {len(PLOT_NAMES) + 1} DECODED {len(PLOT_NAMES)} BROKEN deliberately-broken")

    def test_report_errors(self):
        out = os.path.join(self.tmp, "x.html")
        for args, message in (
            (["-i", "ev/scores"], "no rb_metrics for tract 4024"),
            (["-i", "ev/eval", "--threshold", "0.3"], "--threshold needs --evaluate"),
            (["-i", SIM_COLLECTION, "--evaluate"], "no rb_model in"),
            (["-i", MODEL, "--evaluate"], "cannot evaluate tract 4024"),
        ):
            with self.subTest(args=args):
                if os.path.exists(out):
                    os.remove(out)
                code, _, err = self.run_report(self.root, *args, "--tract", "4024", "-o", out)
                self.assertEqual(code, 2)
                self.assertIn(message, err)
                self.assertEqual(len(err.strip().splitlines()), 1)
                self.assertFalse(os.path.exists(out))

    # -- rb-report's output file (doc/reliability.rst, "Command-line outputs") ----------------------------

    def test_report_refuses_to_overwrite_a_registry_before_evaluating(self):
        """``-o REPO/gen3.sqlite3`` is refused with one line before any
        evaluation; the registry is untouched.
        """
        repo = os.path.join(self.tmp, "other_repo")
        Butler.makeRepo(repo)
        registry = os.path.join(repo, "gen3.sqlite3")
        with open(registry, "rb") as stream:
            before = stream.read()
        never = AssertionError("evaluated before checking -o")
        with mock.patch("lsst.meas.realbogus.cli.report._read", side_effect=never), \
                mock.patch("lsst.meas.realbogus.cli.report._evaluate", side_effect=never):
            code, _, err = self.run_report(self.root, "-i", "ev/eval", "--tract", "4024", "-o", registry)
        self.assertEqual(code, 2)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(f"-o {registry} exists and is not an rb-report page", lines[0])
        self.assertIn("--overwrite", lines[0])
        with open(registry, "rb") as stream:
            self.assertEqual(stream.read(), before)

    def test_report_replaces_only_its_own_page(self):
        page = os.path.join(self.tmp, "own.html")
        args = (self.root, "-i", "ev/eval", "--tract", "4024")
        for _ in range(2):  # the second run replaces the first's page
            code, _, err = self.run_report(*args, "-o", page)
            self.assertEqual(code, 0, err)
            self.assertTrue(is_report(page))
        notes = os.path.join(self.tmp, "notes.html")
        with open(notes, "w") as stream:
            stream.write("<!DOCTYPE html><html><body>my notes</body></html>")
        code, _, err = self.run_report(*args, "-o", notes)
        self.assertEqual(code, 2)
        self.assertIn("is not an rb-report page", err)
        with open(notes) as stream:
            self.assertIn("my notes", stream.read())
        code, _, err = self.run_report(*args, "-o", notes, "--overwrite")
        self.assertEqual(code, 0, err)
        self.assertTrue(is_report(notes))

    def test_report_write_is_atomic(self):
        """A write that fails part-way (a full disk, made by RLIMIT_FSIZE in
        the child process) leaves the old page whole and no temporary file.
        """
        directory = tempfile.mkdtemp(dir=self.tmp)
        page = os.path.join(directory, "report.html")
        old = mark_report("<!DOCTYPE html><html><head><title>old</title></head><body>old</body></html>")
        with open(page, "w") as stream:
            stream.write(old)

        def small_disk():
            resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill

        result = subprocess.run([RB_REPORT, self.root, "-i", "ev/eval", "--tract", "4024", "-o", page],
                                preexec_fn=small_disk, capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 2, result.stderr[-2000:])
        last = result.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith(f"rb-report: error: cannot write {page}"), result.stderr[-2000:])
        with open(page) as stream:
            self.assertEqual(stream.read(), old)
        self.assertEqual(os.listdir(directory), ["report.html"])

    def test_one_evaluation_path(self):
        """The task, ``rb-report --evaluate`` and ``python -m`` compute the
        same figures from the same scores.
        """
        stored = self.butler.get("rb_metrics", skymap="DC2", tract=4024)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = evaluate_main([self.root, "-i", "ev/scores", "-i", SIM_COLLECTION, "--where", TEST_WHERE,
                                  "--threshold", "0.3", "--json"])
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out.getvalue()),
                         {key: stored[key] for key in ("threshold", "positiveRatio", "cuts")})

        paths = {name: os.path.join(self.tmp, f"{name}.html") for name in ("stored", "evaluated")}
        code, stored_out, err = self.run_report(self.root, "-i", "ev/eval", "--tract", "4024", "-o",
                                                paths["stored"])
        self.assertEqual(code, 0, err)
        code, evaluated_out, err = self.run_report(self.root, "-i", "ev/scores", "-i", SIM_COLLECTION,
                                                   "-i", MODEL, "--tract", "4024", "--evaluate",
                                                   "--threshold", "0.3", "-o", paths["evaluated"])
        self.assertEqual(code, 0, err)
        self.assertEqual(evaluated_out.splitlines()[:-1], stored_out.splitlines()[:-1])  # not "Wrote ..."
        pages = {name: open(path).read() for name, path in paths.items()}
        self.assertIn("evaluated by rb-report --evaluate", pages["evaluated"])
        # Past the provenance table (collections, time): the same figures to the digit.
        tables = {name: re.findall(r"<table>.*?</table>", page, flags=re.S)[1:]
                  for name, page in pages.items()}
        self.assertEqual(len(tables["evaluated"]), 3)  # unweighted, re-weighted, per class
        self.assertEqual(tables["evaluated"], tables["stored"])
        for src in re.findall(r"<img [^>]*src='data:image/png;base64,([^']*)'", pages["evaluated"]):
            self.assertGreater(imread(io.BytesIO(base64.b64decode(src))).shape[1], 100)

    def test_gallery_plot_is_a_grid(self):
        """rb_plot_gallery: a row per outcome, a column per example."""
        png = imread(io.BytesIO(self.butler.getURI("rb_plot_gallery", skymap="DC2", tract=4024).read()))
        m = self.butler.get("rb_metrics", skymap="DC2", tract=4024)
        kept = sum(c["kept"] for c in m["cuts"]["all"]["perClass"].values())
        rejected = m["cuts"]["all"]["n"] - kept
        self.assertGreaterEqual(rejected, 3)  # so that some outcome fills the 3 columns
        example = 3 * gallery.PANEL_IN + 2 * gallery.PANEL_GAP_IN + gallery.EXAMPLE_GAP_IN
        row = gallery.PANEL_IN + gallery.CAPTION_HEIGHT_IN + gallery.ROW_GAP_IN
        self.assertAlmostEqual(png.shape[0], gallery.DPI * (gallery.HEADER_HEIGHT_IN + 4 * row), delta=1)
        self.assertAlmostEqual(png.shape[1], gallery.DPI * (gallery.LABEL_WIDTH_IN + 3 * example
                                                            + gallery.MARGIN_IN), delta=1)

    def test_evaluate_on_perfect_scores_meets_requirement(self):
        joined = load_scored_sources(self.butler, ["ev/scores", SIM_COLLECTION], TEST_WHERE)
        joined["reliability"] = np.where(joined["label"] == 1, 0.9, 0.1)
        result = evaluate(joined, threshold=0.5)
        for entry in result["cuts"].values():
            if entry["unweighted"]:
                self.assertTrue(entry["unweighted"]["meets_requirement"])
                self.assertEqual(entry["unweighted"]["requirement_range"], [0.1, 0.9])


class ProvenanceTestCase(unittest.TestCase):
    """The commit recorded in rb_metrics, read from .git files."""

    SHA = "0123456789abcdef0123456789abcdef01234567"
    OTHER = "fedcba9876543210fedcba9876543210fedcba98"

    def setUp(self):
        self.root = Path(tempfile.mkdtemp(prefix="rb_git_"))
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        self.git = self.root / "checkout" / ".git"
        (self.git / "refs" / "heads").mkdir(parents=True)
        (self.git / "HEAD").write_text("ref: refs/heads/main\n")
        self.inside = self.root / "checkout" / "python" / "lsst"
        self.inside.mkdir(parents=True)

    def test_loose_packed_and_detached(self):
        self.assertIsNone(_checkout_commit(self.inside))  # a branch without commits
        (self.git / "packed-refs").write_text(f"# pack-refs with: peeled\n{self.OTHER} refs/heads/other\n"
                                              f"{self.SHA} refs/heads/main\n^{self.OTHER}\n")
        self.assertEqual(_checkout_commit(self.inside), self.SHA)
        (self.git / "refs" / "heads" / "main").write_text(self.OTHER + "\n")  # loose refs win
        self.assertEqual(_checkout_commit(self.inside), self.OTHER)
        (self.git / "HEAD").write_text(self.SHA + "\n")
        self.assertEqual(_checkout_commit(self.inside), self.SHA)
        (self.git / "HEAD").write_text("garbage\n")
        self.assertIsNone(_checkout_commit(self.inside))

    def test_worktree(self):
        (self.git / "refs" / "heads" / "feature").write_text(self.OTHER + "\n")
        worktree_git = self.git / "worktrees" / "wt"
        worktree_git.mkdir(parents=True)
        (worktree_git / "HEAD").write_text("ref: refs/heads/feature\n")
        (worktree_git / "commondir").write_text("../..\n")
        worktree = self.root / "wt"
        (worktree / "pkg").mkdir(parents=True)
        (worktree / ".git").write_text(f"gitdir: {worktree_git}\n")
        self.assertEqual(_checkout_commit(worktree / "pkg"), self.OTHER)

    def test_not_a_checkout(self):
        self.assertIsNone(_checkout_commit(Path(tempfile.gettempdir()).resolve() / "no" / "such"))

    def test_package_commit_is_git_head(self):
        """The commit read without git is the one git names."""
        package = Path(lsst.meas.realbogus.evaluation.__file__).resolve().parent
        if not any((directory / ".git").exists() for directory in (package, *package.parents)):
            self.skipTest("the package is not in a git checkout")
        try:
            head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=package,
                                  capture_output=True, text=True, timeout=30)
        except OSError:
            self.skipTest("no git")
        if head.returncode != 0:
            self.skipTest(f"git rev-parse failed: {head.stderr.strip()}")
        self.assertEqual(package_commit(), head.stdout.strip())


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
