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
import errno
import glob
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

import numpy as np

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.cli.simulate import main
from lsst.meas.realbogus.errors import RealBogusError
from lsst.meas.realbogus.simulation import (
    BOGUS_CLASSES,
    INCOMPLETE_MARKER,
    REAL_CLASSES,
    Simulator,
    make_config,
    write_detector_visit,
)
from lsst.meas.realbogus.simulation._interrupt import StopBetweenDetectorVisits
from lsst.meas.realbogus.triplets import psf_snr

DATASETS = ("preliminary_visit_image", "template_detector", "difference_image", "dia_source_unstandardized",
            "dia_source_truth")
BUTLER = os.path.join(os.path.dirname(sys.executable), "butler")
RB_SIMULATE = os.path.join(os.path.dirname(sys.executable), "rb-simulate")


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
            self.assertEqual(list(sources["id"]), list(truth["id"]))
            # The names afw's asAstropy gives a real dia_source_unstandardized.
            for col in ("id", "coord_ra", "coord_dec", "parent", "slot_Centroid_x", "slot_Centroid_y",
                        "base_PsfFlux_instFlux", "base_PsfFlux_instFluxErr", "slot_Shape_xx", "slot_Shape_yy",
                        "slot_Shape_xy", "base_PixelFlags_flag_edge", "base_PixelFlags_flag_saturated",
                        "is_negative", "reliability", "reliabilityVersion"):
                self.assertIn(col, sources.colnames)
            self.assertNotIn("snr", sources.colnames)
            # Radians, as afw's Angle fields: DC2's tracts lie at Dec -35 and -42 deg.
            dec = np.abs(np.asarray(sources["coord_dec"]))
            self.assertTrue(np.all((dec > 0.5) & (dec < 0.8)), dec)
            self.assertTrue(np.all(np.isnan(sources["reliability"])))
            # Detected at 5 sigma in the PSF-filtered image; the PSF-fit SNR
            # of a non-PSF-like artifact (a cosmic ray) can be lower.
            self.assertTrue(np.all(np.abs(sources["peakSignificance"]) >= 5.0))
            self.assertTrue(np.all(np.isfinite(psf_snr(sources["base_PsfFlux_instFlux"],
                                                       sources["base_PsfFlux_instFluxErr"]))))
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


# -- Hostile inputs (doc/reliability.rst, "Command-line outputs and interrupted worlds") ------------------

# Run in a child process under RLIMIT_DATA: a regression that lets a case through to its huge
# allocation fails there (MemoryError, recorded) instead of exhausting the machine.
_HOSTILE_CHILD = r"""
import contextlib, io, json, os, resource, sys, traceback
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
from lsst.meas.realbogus.cli.simulate import main
results = []
for case in json.loads(sys.argv[2]):
    root = case["argv"][0]
    err = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(case["argv"])
    except BaseException as exc:
        code, err = "raised", io.StringIO(traceback.format_exc(limit=-3))
    results.append({"code": code, "stderr": err.getvalue(), "written": os.path.exists(root)})
print(json.dumps(results))
"""
_CHILD_DATA_LIMIT = 3 << 30


class HostileConfigTestCase(lsst.utils.tests.TestCase):
    """Every value that once gave a traceback (or a 37 GiB allocation, or a
    plan that never ended) is refused with one line before anything is
    written.
    """

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rb_hostile_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_hostile_values_refused_in_one_line_before_anything_is_written(self):
        nan_file = os.path.join(self.tmp, "nan.py")
        with open(nan_file, "w") as stream:
            stream.write("config.reals.magBright = float('nan')\n")
        cases = [  # (overrides, a fragment of the one line)
            (["--seed", "-5"], "seed must be >= 0"),
            (["-c", "survey.bands=[]"], "survey.bands is empty"),
            (["-c", "survey.pixelScale=0"], "survey.pixelScale must be > 0"),
            (["-c", "survey.detectorWidth=100000", "-c", "survey.detectorHeight=100000"], "memory"),
            (["-c", "survey.tracts=[]"], "survey.tracts is empty"),
            (["-c", "survey.tracts=[3080, 3080]"], "names a tract twice"),
            (["-c", "survey.visitsPerTract=1000000"], "visit ids"),
            (["-c", "survey.visitsByTract={1234: 3}"], "survey.visitsByTract names tract 1234"),
            (["-c", "survey.visitsByTract={3080: 0}"], "survey.visitsByTract[3080] must be >= 1"),
            (["-c", "survey.tracts=[3080]", "-c", "survey.visitsPerTract=100000000"],
             "more than the 200,000 one world may plan"),
            (["-c", "survey.exposureTime=0"], "survey.exposureTime"),
            (["-c", "survey.exposureTime=1e30"], "survey.exposureTime"),
            (["-c", "survey.pixelScale=1e-30"], "PSF FWHM"),
            (["-c", "survey.pixelScale=0.01"], "PSF FWHM"),
            (["-c", "template.fwhm=1e-30"], "PSF FWHM"),
            (["-c", "survey.psfEllipticity=1e30"], "survey.psfEllipticity"),
            (["-c", "survey.psfFwhmGradient=1e30"], "survey.psfFwhmGradient"),
            (["-c", "template.psfModelError=1e30"], "template.psfModelError"),
            (["-c", "template.warpCorrelation=1e30"], "template.warpCorrelation"),
            (["-c", "survey.skyScatter=1e30"], "survey.skyScatter"),
            (["-c", "survey.psfProfile=moffat", "-c", "survey.psfMoffatBeta=1.1"], "psfMoffatBeta"),
            (["-c", "scene.starDensity=1e30"], "scene.starDensity"),
            (["-c", "scene.galaxyCountSlope=1e-30"], "scene.galaxyCountSlope"),
            (["-c", "scene.starMagBright=1e30"], "scene.starMagBright"),
            (["-c", "injection.tracts=[3080]", "-c", "injection.starsPerMegapixel=1e30"],
             "injection.starsPerMegapixel"),
            (["-C", nan_file], "reals.magBright must be a finite number"),
            (["-c", "survey.physicalFilters={'r': 'r_other'}"], "survey.physicalFilters"),
            (["-c", "artifacts.dipoleOffset=[]"], "artifacts.dipoleOffset"),
            (["-c", "run=../outside"], "run must be"),
            (["--gallery", "/proc/gallery.png"], "--gallery /proc/gallery.png"),
        ]
        argvs = [{"argv": [os.path.join(self.tmp, f"r{i}"), "--preset", "ci", "--no-progress", *extra]}
                 for i, (extra, _) in enumerate(cases)]
        child = subprocess.run([sys.executable, "-c", _HOSTILE_CHILD, str(_CHILD_DATA_LIMIT),
                                json.dumps(argvs)], capture_output=True, text=True, timeout=300)
        self.assertEqual(child.returncode, 0, child.stderr[-3000:])
        results = json.loads(child.stdout.strip().splitlines()[-1])
        for (extra, fragment), result in zip(cases, results):
            with self.subTest(extra=extra):
                lines = result["stderr"].strip().splitlines()
                self.assertEqual(result["code"], 2, result["stderr"][-1500:])
                self.assertEqual(len(lines), 1, result["stderr"])
                self.assertTrue(lines[0].startswith("rb-simulate: error:"), lines[0])
                self.assertIn(fragment, lines[0])
                self.assertFalse(result["written"], "something was written")

    def test_configuration_that_cannot_be_simulated_is_refused_before_writing(self):
        """What no check foresees fails on the first detector-visit, which
        is simulated in memory before anything is written.
        """
        root = os.path.join(self.tmp, "r")
        with mock.patch("lsst.meas.realbogus.simulation._simulator.simulate_detector_visit",
                        side_effect=ValueError("lam value too large")):
            code, out, err = _run_cli(root, "--preset", "ci", "--no-progress")
        self.assertEqual(code, 2, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn("cannot be simulated", lines[0])
        self.assertIn("lam value too large", lines[0])
        self.assertFalse(os.path.exists(root))

    def test_memory_estimate_bounds_a_measured_detector_visit(self):
        """`memory_needed` is not below the peak RSS of a real
        detector-visit (1024 x 1024 px, measured with getrusage in a child
        process), and the per-pixel part is not absurdly above it.
        """
        from lsst.meas.realbogus.simulation import make_config, memory_needed

        root = os.path.join(self.tmp, "m")
        side = 1024
        script = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
                  "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)")
        measured = int(subprocess.run(
            [sys.executable, "-c", script, RB_SIMULATE, root, "--preset", "ci", "--no-progress",
             "-c", "survey.tracts=[3080]", "-c", "survey.visitsPerTract=1",
             "-c", "survey.detectorsPerVisit=1", "-c", f"survey.detectorWidth={side}",
             "-c", f"survey.detectorHeight={side}"],
            capture_output=True, text=True, check=True, timeout=300).stdout.strip())
        config = make_config("ci")
        config.survey.detectorWidth = config.survey.detectorHeight = side
        per_process, total = memory_needed(config, jobs=1)
        self.assertEqual(per_process, total)
        self.assertLessEqual(measured, per_process)
        self.assertLess(per_process, 1.6 * measured)


def _at_second_write(action, calls=None):
    """Patch the simulator's write so that ``action()`` runs (and may raise)
    before the second detector-visit is written; ``calls`` collects the
    data IDs written.
    """
    calls = [] if calls is None else calls

    def write(butler, run, product):
        calls.append(product.data_id)
        if len(calls) == 2:
            action()
        return write_detector_visit(butler, run, product)

    return mock.patch("lsst.meas.realbogus.simulation._simulator.write_detector_visit", side_effect=write)


def _raise(exc):
    raise exc


def _default_sigint(test):
    """Give SIGINT Python's default handler for one test: pytest-xdist's
    workers ignore it, and an ignored SIGINT is left ignored on purpose.
    """
    test.addCleanup(signal.signal, signal.SIGINT, signal.signal(signal.SIGINT, signal.default_int_handler))


def _default_sigint_in_child():
    """preexec_fn: an ignored SIGINT survives exec; give the child the
    default disposition, as a terminal's process would have.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class StopBetweenDetectorVisitsTestCase(lsst.utils.tests.TestCase):
    """The first SIGINT is held until the next detector-visit boundary, a
    second raises at once, and the previous handler comes back.
    """

    def setUp(self):
        _default_sigint(self)

    def test_first_sigint_waits_for_check_second_raises(self):
        before = signal.getsignal(signal.SIGINT)
        with StopBetweenDetectorVisits() as quiet:
            quiet.check()  # nothing has arrived: neither this nor leaving raises
        self.assertFalse(quiet.requested)
        with self.assertRaises(KeyboardInterrupt):  # leaving raises what no check did
            with StopBetweenDetectorVisits() as interrupt:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.01)  # the handler runs here; it must not raise
                self.assertTrue(interrupt.requested)
                with self.assertRaises(KeyboardInterrupt):
                    interrupt.check()
                with self.assertRaises(KeyboardInterrupt):  # a second SIGINT raises at once
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.01)
        self.assertIs(signal.getsignal(signal.SIGINT), before)

    def test_ignored_sigint_stays_ignored(self):
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.addCleanup(signal.signal, signal.SIGINT, before)
        with StopBetweenDetectorVisits() as interrupt:
            self.assertIs(signal.getsignal(signal.SIGINT), signal.SIG_IGN)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
        self.assertFalse(interrupt.requested)


class InterruptedWorldTestCase(lsst.utils.tests.TestCase):
    """A world interrupted by SIGINT, SIGKILL or a full disk is marked
    incomplete, is reported so in the CLI's words, and ``--resume`` finishes
    it to the datasets of an uninterrupted run.
    """

    ARGS = ("--preset", "ci", "--no-progress", "-c", "survey.visitsPerTract=3", "--seed", "7")

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rb_interrupted_")
        cls.reference = os.path.join(cls.tmp, "reference")
        code, _, err = _run_cli(cls.reference, *cls.ARGS)
        assert code == 0, err
        cls.checksum = _repo_checksum(cls.reference)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def _root(self, name):
        root = os.path.join(self.tmp, name)
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        return root

    def _interrupt(self, root, sig, jobs):
        """Start rb-simulate, send ``sig`` to its process group once ``jobs``
        difference images are on disk (with workers, once they write);
        return (returncode, stderr).
        """
        proc = subprocess.Popen([RB_SIMULATE, root, *self.ARGS, "-j", str(jobs)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=_default_sigint_in_child)
        pattern = os.path.join(root, "DC2", "sim", "difference_image", "**", "*.fits")
        deadline = time.monotonic() + 240
        while (proc.poll() is None and time.monotonic() < deadline
               and len(glob.glob(pattern, recursive=True)) < jobs):
            time.sleep(0.02)
        self.assertIsNone(proc.poll(), "rb-simulate ended before it could be interrupted")
        os.killpg(proc.pid, sig)
        _, err = proc.communicate(timeout=240)
        return proc.returncode, err

    def _write_marker(self, root):
        """Mark ``root`` incomplete, as a run of ARGS would have."""
        config = make_config("ci")
        config.survey.visitsPerTract, config.seed = 3, 7
        with open(os.path.join(root, INCOMPLETE_MARKER), "w") as stream:
            json.dump({"planDigest": Simulator(config).plan_digest}, stream)

    def _assert_reported_incomplete(self, root):
        self.assertTrue(os.path.exists(os.path.join(root, INCOMPLETE_MARKER)))
        code, _, err = _run_cli(root, *self.ARGS)
        self.assertEqual(code, 2)
        self.assertEqual(err.strip().splitlines(), [
            f"rb-simulate: error: {root} holds an incomplete rb-simulate world (interrupted?); re-run with "
            "--resume to finish it or --overwrite to start again."])

    def _assert_resumes_to_reference(self, root):
        code, out, err = _run_cli(root, *self.ARGS, "--resume")
        self.assertEqual(code, 0, err)
        self.assertEqual(_repo_checksum(root), self.checksum)
        self.assertFalse(os.path.exists(os.path.join(root, INCOMPLETE_MARKER)))
        return out

    def test_sigint_ends_with_one_line_and_resume_finishes(self):
        root = self._root("sigint")
        code, err = self._interrupt(root, signal.SIGINT, jobs=2)
        self.assertEqual(code, 130, err[-3000:])
        self.assertNotIn("Traceback", err)
        lines = [line for line in err.strip().splitlines() if line.startswith("rb-simulate:")]
        self.assertEqual(lines, [f"rb-simulate: interrupted; {root} is marked incomplete: re-run with "
                                 "--resume to finish it or --overwrite to start again."])
        self.assertEqual(err.strip().splitlines()[-1], lines[0])
        self._assert_reported_incomplete(root)
        self._assert_resumes_to_reference(root)

    def test_sigkill_then_resume_equals_uninterrupted(self):
        root = self._root("sigkill")
        code, _ = self._interrupt(root, signal.SIGKILL, jobs=1)
        self.assertEqual(code, -signal.SIGKILL)
        self._assert_reported_incomplete(root)
        self._assert_resumes_to_reference(root)

    def test_full_disk_one_line_then_resume(self):
        root = self._root("full")

        def disk_full():
            full = OSError(errno.ENOSPC, "No space left on device")
            raise RuntimeError("Failed to serialize dataset") from full

        with _at_second_write(disk_full):
            code, _, err = _run_cli(root, *self.ARGS)
        self.assertEqual(code, 1)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn("No space left on device", lines[0])
        self.assertIn("--resume", lines[0])
        self._assert_reported_incomplete(root)
        out = self._assert_resumes_to_reference(root)
        self.assertIn("1 detector-visits were already written", out)

    def test_resume_refused_under_another_survey_plan(self):
        """The marker records the survey plan's digest: a world started
        under another plan (another version of the planner, the same
        configuration), or by a version that recorded none, is refused
        before anything is touched, and still resumes once it matches.
        """
        root = self._root("plan")
        with _at_second_write(lambda: _raise(RealBogusError("stop here"))):
            code, _, _ = _run_cli(root, *self.ARGS)
        self.assertEqual(code, 1)
        marker = os.path.join(root, INCOMPLETE_MARKER)
        with open(marker) as stream:
            record = json.load(stream)
        self.assertEqual(len(record["planDigest"]), 64)
        # Leave a partial detector-visit, which a resume would prune.
        butler = Butler.from_config(root, writeable=True)
        truth = list(butler.query_datasets("dia_source_truth", collections="DC2/sim"))
        self.assertEqual(len(truth), 1)
        butler.pruneDatasets(truth, purge=True, unstore=True, disassociate=True)
        del butler
        for digest, why in ((None, "does not record its survey plan (started by an older rb-simulate)"),
                            ("0" * 64, "was started under another survey plan (another version of the "
                                       "survey planner?)")):
            changed = {key: value for key, value in record.items() if key != "planDigest"}
            if digest:
                changed["planDigest"] = digest
            with open(marker, "w") as stream:
                json.dump(changed, stream)
            before = _tree_state(root)
            code, _, err = _run_cli(root, *self.ARGS, "--resume")
            self.assertEqual(code, 2)
            self.assertEqual(err.strip().splitlines(), [
                f"rb-simulate: error: {root} {why}: its written detector-visits may not match this plan, so "
                "it cannot be resumed, only overwritten."])
            self.assertEqual(_tree_state(root), before)  # nothing pruned, marker untouched
        with open(marker, "w") as stream:
            json.dump(record, stream)
        self._assert_resumes_to_reference(root)

    def test_sigint_in_a_write_stops_at_the_next_boundary(self):
        """A SIGINT that arrives inside a detector-visit's write (-j 1) lets
        that write finish, then ends the run: exit 130, one line, marker
        kept, and a resume keeps the detector-visit written.
        """
        _default_sigint(self)
        root = self._root("sigint_inside")
        calls = []

        def interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the handler runs here, mid-write

        with _at_second_write(interrupt, calls):
            code, _, err = _run_cli(root, *self.ARGS)
        self.assertEqual(code, 130, err)
        self.assertEqual(err.strip().splitlines(), [
            f"rb-simulate: interrupted; {root} is marked incomplete: re-run with --resume to finish it or "
            "--overwrite to start again."])
        self.assertEqual(len(calls), 2)
        out = self._assert_resumes_to_reference(root)
        self.assertIn("2 detector-visits were already written", out)

    def test_refusal_after_writing_began_says_incomplete(self):
        """A detector-visit refused (a RealBogusError) after others were
        written: exit 1, and the one line says REPO is marked incomplete.
        """
        from lsst.meas.realbogus.errors import RealBogusDataError

        root = self._root("refused")

        def refuse():
            raise RealBogusDataError("detector-visit 2 has no usable template")

        with _at_second_write(refuse):
            code, _, err = _run_cli(root, *self.ARGS)
        self.assertEqual(code, 1, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn("no usable template", lines[0])
        self.assertIn("is marked incomplete: re-run with --resume", lines[0])
        self._assert_reported_incomplete(root)
        # The same failure while resuming that world also wrote: exit 1, not 2.
        with _at_second_write(refuse):
            code, _, err = _run_cli(root, *self.ARGS, "--resume")
        self.assertEqual(code, 1, err)
        self.assertIn("is marked incomplete", err)

    def test_resume_rewrites_partial_and_orphaned_detector_visits(self):
        """A detector-visit with some of its five datasets, and one whose
        files are on disk but not in the registry (a kill inside a write),
        are written again; the complete ones are kept.
        """
        root = self._root("partial")
        shutil.copytree(self.reference, root)
        butler = Butler.from_config(root, writeable=True)
        refs = sorted(butler.query_datasets("difference_image", collections="DC2/sim"),
                      key=lambda r: (r.dataId["visit"], r.dataId["detector"]))
        kept = refs[2].dataId
        kept_id = butler.find_dataset("dia_source_truth", kept, collections="DC2/sim").id
        partial = [butler.find_dataset(name, refs[0].dataId, collections="DC2/sim")
                   for name in ("difference_image", "dia_source_truth")]
        orphan = [butler.find_dataset(name, refs[1].dataId, collections="DC2/sim") for name in DATASETS]
        orphan_files = {str(butler.getURI(ref).ospath): open(butler.getURI(ref).ospath, "rb").read()
                        for ref in orphan}
        butler.pruneDatasets(partial + orphan, purge=True, unstore=True, disassociate=True)
        for path, data in orphan_files.items():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as stream:
                stream.write(data)
        self._write_marker(root)
        out = self._assert_resumes_to_reference(root)
        self.assertIn(f"{len(refs) - 2} detector-visits were already written", out)
        butler = Butler.from_config(root, collections="DC2/sim")
        self.assertEqual(butler.find_dataset("dia_source_truth", kept).id, kept_id)

    def test_resume_refuses_another_configuration(self):
        root = self._root("other")
        shutil.copytree(self.reference, root)
        self._write_marker(root)
        before = _tree_state(root)
        code, _, err = _run_cli(root, *self.ARGS[:-1], "8", "--resume")
        self.assertEqual(code, 2)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn("another configuration (seed: 7 != 8)", lines[0])
        self.assertEqual(_tree_state(root), before)

    def test_overwrite_starts_an_incomplete_world_again(self):
        root = self._root("again")
        shutil.copytree(self.reference, root)
        self._write_marker(root)
        code, _, err = _run_cli(root, *self.ARGS, "--overwrite")
        self.assertEqual(code, 0, err)
        self.assertFalse(os.path.exists(os.path.join(root, INCOMPLETE_MARKER)))
        self.assertEqual(_repo_checksum(root), self.checksum)

    def test_rerun_on_a_finished_world_speaks_the_cli_words(self):
        code, _, err = _run_cli(self.reference, *self.ARGS)
        self.assertEqual(code, 2)
        self.assertEqual(err.strip().splitlines(), [
            f"rb-simulate: error: {self.reference} already holds a Butler repository; pass --overwrite to "
            "replace it."])
        self.assertNotIn("overwrite=True", err)


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
