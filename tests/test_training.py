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

"""Tests of training: pipetask and rb-train, determinism, resume, data
streaming, and device selection.
"""

import contextlib
import errno
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import numpy as np
import torch

import lsst.utils.tests
from lsst.daf.butler import Butler
from lsst.meas.realbogus.cli.train import main
from lsst.meas.realbogus.errors import DeviceError, TrainingError, TripletDataError
from lsst.meas.realbogus.models import ModelPackage, select_device
from lsst.meas.realbogus.tests import (
    SIM_COLLECTION,
    TRAIN_WHERE,
    TRIPLETS,
    ci_repository,
    pipeline_path,
    quick_training_config,
    triplet_handles,
)
from lsst.meas.realbogus.training import (
    TrainingConfig,
    TrainRealBogusTask,
    TripletData,
    calibrate,
    calibrated_scores,
    effective_real_fraction,
    fit_platt,
    fit_prior_shift,
    fit_temperature,
    random_dihedral,
    validation_mask,
)
from lsst.meas.realbogus.training._checkpoint import Checkpoint, TrainingProgress
from lsst.meas.realbogus.training._optimization import make_loss, make_optimizer, make_scheduler, plan_steps
from lsst.meas.realbogus.training._trainer import Trainer

BIN = os.path.dirname(sys.executable)
QUICK = ("-c", "epochs=3", "-c", "batchSize=8", "-c", "device=cpu", "-c", "numThreads=1",
         "-c", "validationFraction=0.2", "-c", "progressBar=False")
"""rb-train's flags for `quick_training_config`."""
WRITE_PACKAGE = "lsst.meas.realbogus.cli.train.write_bytes_atomically"
"""Where rb-train writes ``--package`` (patched to make the disk full)."""
TASK_RUN = "lsst.meas.realbogus.cli.train.TrainRealBogusTask.run"
"""The training rb-train runs (patched where the model itself does not matter)."""


def train_in_process(root, **values):
    _, handles, names = triplet_handles(root)
    return TrainRealBogusTask(config=quick_training_config(**values)).run(handles, names=names).model


class PipetaskTrainingTestCase(lsst.utils.tests.TestCase):
    """``pipetask run`` (the real command) builds triplets and trains."""

    @classmethod
    def setUpClass(cls):
        cls.root = ci_repository()

    def pipetask(self, *args):
        cmd = [os.path.join(BIN, "pipetask"), "run", "-b", self.root, "--register-dataset-types", *args]
        result = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        return result

    def test_pipetask_triplets_then_training(self):
        self.pipetask("-i", SIM_COLLECTION, "-o", "pt/triplets", "-p", pipeline_path("BuildTriplets.yaml"),
                      "-d", "instrument='LSSTCam-imSim' AND skymap='DC2' AND tract IN (3080, 4024)", "-j", "2")
        butler = Butler.from_config(self.root)
        for tract in (3080, 4024):
            refs = butler.query_datasets("rb_triplets", collections="pt/triplets",
                                         where=f"skymap='DC2' AND tract={tract}")
            self.assertGreater(len(refs), 3, tract)
        result = self.pipetask(
            "-i", "pt/triplets", "-o", "pt/model", "-p", pipeline_path("TrainRealBogus.yaml"),
            "-d", TRAIN_WHERE, "-c", "trainRealBogus:epochs=3", "-c", "trainRealBogus:batchSize=8",
            "-c", "trainRealBogus:device=cpu", "-c", "trainRealBogus:numThreads=1",
            "-c", "trainRealBogus:validationFraction=0.2",
        )
        self.assertIn("Epoch 3/3", result.stderr + result.stdout)
        package = butler.get("rb_model", collections="pt/model")
        self.assertIsInstance(package, ModelPackage)
        ref = butler.find_dataset("rb_model", collections="pt/model")
        # The stored file holds exactly these bytes.
        self.assertEqual(butler.getURI(ref).read(), package.to_bytes())
        training_meta = package.metadata.training
        self.assertEqual(training_meta["tract"], 3080)
        self.assertEqual(training_meta["epochsRun"], 3)
        # computeReliability's band/instrument check reads these.
        self.assertEqual(package.trained_for(), {"instrument": ["LSSTCam-imSim"], "bands": ["r"]})
        self.assertTrue(training_meta["inputCollections"][0].startswith("pt/triplets/"))
        self.assertEqual(training_meta["datasets"], len(butler.query_datasets(
            "rb_triplets", collections="pt/triplets", where=TRAIN_WHERE)))
        self.assertEqual(package.metadata.software["torch"], torch.__version__)
        # The same settings in-process give byte-identical weights.
        again = train_in_process(self.root)
        self.assertEqual(again.weights_bytes, package.weights_bytes)


class TwoTractsTestCase(lsst.utils.tests.TestCase):
    def test_two_tracts_refused_at_graph_building(self):
        root = ci_repository()
        cmd = [os.path.join(BIN, "pipetask"), "qgraph", "-b", root, "-i", TRIPLETS, "-o", "pt/none",
               "-p", pipeline_path("TrainRealBogus.yaml"), "-d", "skymap='DC2' AND tract IN (3080, 4024)"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        self.assertNotEqual(result.returncode, 0)
        last = [line for line in result.stderr.splitlines() if line.strip()][-1]
        self.assertIn("selects 2 tracts (DC2/3080, DC2/4024)", last)


class TrainingTestCase(lsst.utils.tests.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = ci_repository()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rb_train_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_natural_calibration_too_small_shifts_the_prior(self):
        """The ci world's natural-mix split holds too few reals to fit T and
        b: the package still corrects the prior, by the split's counts.
        """
        from scipy.special import logit

        package = train_in_process(self.root, calibration="natural", naturalCalibrationFraction=0.2,
                                   validationFraction=0.1)
        calibration = package.metadata.calibration
        self.assertEqual(calibration["method"], "priorShift")
        counts = package.metadata.training["triplets"]
        held, train = counts["calibration"], counts["train"]
        self.assertLess(held["real"], 10)
        expected = (logit((held["real"] + 0.5) / (held["real"] + held["bogus"] + 1))
                    - logit(train["real"] / (train["real"] + train["bogus"])))
        self.assertAlmostEqual(package.intercept, expected, places=12)
        self.assertEqual(package.temperature, 1.0)
        self.assertEqual(package.threshold, 0.5)

    def test_prior_shift_of_a_balanced_loss(self):
        """package_model hands the loss's class weight to the prior shift: a
        balanced loss trained towards a 1/2 prior, not the split's counts.
        """
        from scipy.special import logit

        package = train_in_process(self.root, calibration="natural", naturalCalibrationFraction=0.2,
                                   validationFraction=0.1, classWeighting="balanced")
        self.assertEqual(package.metadata.calibration["method"], "priorShift")
        held = package.metadata.training["triplets"]["calibration"]
        expected = logit((held["real"] + 0.5) / (held["real"] + held["bogus"] + 1)) - logit(0.5)
        self.assertAlmostEqual(package.intercept, expected, places=6)

    def test_same_seed_same_weights(self):
        a = train_in_process(self.root)
        b = train_in_process(self.root)
        c = train_in_process(self.root, seed=2)
        self.assertEqual(a.weights_bytes, b.weights_bytes)
        self.assertNotEqual(a.weights_bytes, c.weights_bytes)
        model = a.build_model()
        with torch.no_grad():
            scores = torch.sigmoid(model(torch.randn(5, 3, 51, 51)))
        self.assertEqual(scores.shape, (5,))
        self.assertTrue(bool(((scores >= 0) & (scores <= 1)).all()))
        meta = a.metadata
        self.assertEqual(meta.training["seed"], 1)
        self.assertEqual(len(meta.training["history"]), 3)
        counts = meta.training["triplets"]
        self.assertGreater(counts["train"]["real"], 0)
        self.assertGreater(counts["train"]["bogus"], 0)
        self.assertIn("thresholdRule", meta.model_dump())

    def test_channels_last_changes_only_rounding(self):
        """The memory layout is a speed choice: the same seed trains the same
        network to within rounding, and the package's weights are stored
        contiguous (safetensors refuses anything else).
        """
        self.assertEqual(quick_training_config(channelsLast=True).fingerprint(),
                         quick_training_config(channelsLast=False).fingerprint())  # a checkpoint resumes
        a = train_in_process(self.root, channelsLast=True, epochs=1)
        b = train_in_process(self.root, channelsLast=False, epochs=1)
        for name, weight in a.state_dict().items():
            self.assertTrue(weight.is_contiguous(), name)
            torch.testing.assert_close(weight, b.state_dict()[name], rtol=1e-3, atol=1e-4, msg=name)

    def test_resume_continues_where_it_stopped(self):
        uninterrupted = train_in_process(self.root, epochs=4)
        ckpt = os.path.join(self.tmp, "ckpt")
        original = Trainer.save_checkpoint

        def save_then_die(trainer):
            original(trainer)
            if trainer.progress.epoch == 2:
                raise KeyboardInterrupt("simulated kill after epoch 2")

        with mock.patch.object(Trainer, "save_checkpoint", save_then_die):
            with self.assertRaises(KeyboardInterrupt):
                train_in_process(self.root, epochs=4, checkpointDir=ckpt)
        self.assertTrue(os.path.exists(os.path.join(ckpt, "checkpoint.pt")))
        with self.assertLogs("lsst.trainRealBogus", level="INFO") as cm:
            resumed = train_in_process(self.root, epochs=4, checkpointDir=ckpt)
        self.assertIn("after epoch 2", "\n".join(cm.output))
        self.assertEqual(resumed.metadata.training["epochsRun"], 4)
        self.assertEqual(resumed.weights_bytes, uninterrupted.weights_bytes)
        # A checkpoint from other settings is refused, not silently mixed in;
        # epochs count, since the schedule is planned over them.
        for other in ({"learningRate": 0.5}, {"epochs": 6}):
            with self.assertRaisesRegex(TrainingError, "different training settings"):
                train_in_process(self.root, checkpointDir=ckpt, **{"epochs": 4, **other})

    def test_booby_trapped_checkpoint_not_executed(self):
        ckpt = os.path.join(self.tmp, "ckpt")
        os.makedirs(ckpt)
        marker = os.path.join(self.tmp, "pwned")

        class Trap:
            def __reduce__(self):
                return (open, (marker, "w"))

        torch.save({"fingerprint": Trap()}, os.path.join(ckpt, "checkpoint.pt"))
        with self.assertRaisesRegex(TrainingError, "cannot read checkpoint"):
            train_in_process(self.root, checkpointDir=ckpt)
        self.assertFalse(os.path.exists(marker))

    def test_every_architecture_trains_one_step(self):
        for name in ("vgg6", "rbtn", "resnet50"):
            with self.subTest(name=name):
                config = quick_training_config(maxSteps=1, batchSize=4)
                config.model.name = name
                _, handles, names = triplet_handles(self.root)
                package = TrainRealBogusTask(config=config).run(handles, names=names).model
                self.assertEqual(package.architecture, name)
                self.assertEqual(package.metadata.training["stepsRun"], 1)
                package.build_model()

    def test_run_is_timed(self):
        _, handles, names = triplet_handles(self.root)
        task = TrainRealBogusTask(config=quick_training_config(maxSteps=1))
        task.run(handles, names=names)
        for key in ("runStartCpuTime", "runEndCpuTime", "runStartUtc", "runEndUtc"):
            self.assertIn(key, task.metadata)
        self.assertGreater(task.metadata["runEndCpuTime"], task.metadata["runStartCpuTime"])

    def test_early_stopping_and_schedules(self):
        for schedule in ("constant", "step", "onecycle"):
            package = train_in_process(self.root, schedule=schedule, optimizer="sgd", epochs=2)
            self.assertEqual(package.metadata.training["epochsRun"], 2)
        package = train_in_process(self.root, epochs=8, earlyStoppingPatience=1, earlyStoppingMetric="loss",
                                   learningRate=0.05)
        meta = package.metadata.training
        if meta["stoppedEarly"]:
            self.assertLess(meta["epochsRun"], 8)
            self.assertEqual(meta["bestEpoch"], meta["epochsRun"] - 1)


class RbTrainCliTestCase(lsst.utils.tests.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = ci_repository()

    def setUp(self):
        # rb-train's default checkpoints go under $XDG_CACHE_HOME: a directory of the test's own.
        cache = tempfile.mkdtemp(prefix="rb_cache_")
        self.addCleanup(shutil.rmtree, cache, ignore_errors=True)
        patcher = mock.patch.dict(os.environ, {"XDG_CACHE_HOME": cache})
        patcher.start()
        self.addCleanup(patcher.stop)
        self.checkpoints = os.path.join(cache, "meas_realbogus", "rb-train")
        os.makedirs(self.checkpoints)

    def run_cli(self, *args):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    # -- rb-train's outputs and checkpoints (doc/reliability.rst, "Command-line outputs") ----------------

    def test_package_path_checked_before_training(self):
        """``--package /proc/model.zip``, or a file that is not a model
        package, is refused with one line before any training.
        """
        tmp = tempfile.mkdtemp(prefix="rb_cli_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        notes = os.path.join(tmp, "notes.zip")
        with open(notes, "wb") as stream:
            stream.write(b"my notes")
        for package, message in (("/proc/model.zip", "cannot write --package /proc/model.zip"),
                                 (notes, f"--package {notes} exists and is not a model package")):
            with self.subTest(package=package):
                with mock.patch("lsst.meas.realbogus.training._trainRealBogus.train") as never:
                    code, _, err = self.run_cli(self.root, "-i", TRIPLETS, "--tract", "3080",
                                                "--package", package)
                self.assertEqual(code, 2)
                lines = err.strip().splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertIn(message, lines[0])
                never.assert_not_called()
        with open(notes, "rb") as stream:
            self.assertEqual(stream.read(), b"my notes")

    def test_model_stored_in_butler_when_package_cannot_be_written(self):
        """The Butler put comes first; a --package that fails after training
        (a full disk) is reported with exit status 1 and where the model is.
        """
        tmp = tempfile.mkdtemp(prefix="rb_cli_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "model.zip")
        full = OSError(errno.ENOSPC, "No space left on device")
        with mock.patch(WRITE_PACKAGE, side_effect=full, create=True):
            code, _, err = self.run_cli(self.root, "-i", TRIPLETS, "--tract", "3080", "-o", "cli/fullDisk",
                                        "--package", path, *QUICK)
        self.assertEqual(code, 1, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertIn(f"cannot write --package {path}: No space left on device; it is stored in RUN "
                      "collection 'cli/fullDisk'", lines[0])
        stored = Butler.from_config(self.root).get("rb_model", collections="cli/fullDisk")
        self.assertIn(stored.version, lines[0])
        self.assertFalse(os.path.exists(path))
        # The model is safe in the Butler: rb-train's own checkpoint is gone.
        self.assertEqual(os.listdir(self.checkpoints), [])

    def test_default_checkpoint_kept_when_nothing_holds_the_model_then_resumed(self):
        """Without checkpointDir, rb-train checkpoints into a directory it
        names at start; when nothing could take the model, the checkpoint
        stays, and the same command resumes from it (no training) to the
        weights of an uninterrupted run, then removes it.
        """
        tmp = tempfile.mkdtemp(prefix="rb_cli_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "model.zip")
        args = (self.root, "-i", TRIPLETS, "--tract", "3080", "--package", path, *QUICK)
        full = OSError(errno.ENOSPC, "No space left on device")
        with mock.patch(WRITE_PACKAGE, side_effect=full, create=True):
            with self.assertLogs(level="INFO") as logs:
                code, _, err = self.run_cli(*args)
        self.assertEqual(code, 1, err)
        [directory] = [os.path.join(self.checkpoints, name) for name in os.listdir(self.checkpoints)]
        self.assertTrue(any(f"Checkpoints in {directory}" in line for line in logs.output), logs.output)
        self.assertIn(f"the checkpoint in {directory} is kept", err)
        self.assertTrue(os.path.exists(os.path.join(directory, "checkpoint.pt")))
        with self.assertLogs(level="INFO") as logs:
            code, _, err = self.run_cli(*args)
        self.assertEqual(code, 0, err)
        resumed = [line for line in logs.output if f"Resumed from {directory}" in line]
        self.assertTrue(resumed and "after epoch 3" in resumed[0], logs.output)
        self.assertEqual(ModelPackage.read(path).weights_bytes, train_in_process(self.root).weights_bytes)
        self.assertFalse(os.path.exists(directory))

    def _small_model(self):
        from lsst.meas.realbogus.models import build_model, make_model_config
        from lsst.meas.realbogus.triplets import CutoutConfig

        config = make_model_config("rbcnn", {})
        return ModelPackage.from_model(build_model("rbcnn", 51, config), architecture="rbcnn",
                                       model_config=config.toDict(), cutout_config=CutoutConfig())

    def test_package_written_when_butler_put_fails(self):
        """Whatever the Butler put raises, the model still reaches --package,
        and one line says so (exit status 1).
        """
        tmp = tempfile.mkdtemp(prefix="rb_cli_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "model.zip")
        model = self._small_model()
        with mock.patch(TASK_RUN, return_value=mock.Mock(model=model)), \
                mock.patch("lsst.meas.realbogus.cli.train.put_model",
                           side_effect=RuntimeError("database is locked")):
            code, _, err = self.run_cli(self.root, "-i", TRIPLETS, "--tract", "3080", "-o", "cli/locked",
                                        "--package", path, "--no-checkpoint")
        self.assertEqual(code, 1, err)
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 1, err)
        self.assertEqual(lines[0], f"rb-train: error: trained rb_model {model.version} but cannot store "
                         f"it in RUN collection 'cli/locked': database is locked; it is stored in {path}.")
        self.assertEqual(ModelPackage.read(path), model)

    def test_ctrl_c_ends_with_one_line_naming_the_checkpoint(self):
        tmp = tempfile.mkdtemp(prefix="rb_cli_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        args = (self.root, "-i", TRIPLETS, "--tract", "3080", "--package", os.path.join(tmp, "model.zip"),
                "-c", f"checkpointDir={tmp}")
        with mock.patch(TASK_RUN, side_effect=KeyboardInterrupt):
            code, _, err = self.run_cli(*args)
        self.assertEqual(code, 130)
        self.assertEqual(err.strip().splitlines(), [
            "rb-train: interrupted; no epoch had finished, so there is no checkpoint yet; the same command "
            "starts again."])
        open(os.path.join(tmp, "checkpoint.pt"), "wb").close()
        with mock.patch(TASK_RUN, side_effect=KeyboardInterrupt):
            code, _, err = self.run_cli(*args)
        self.assertEqual(code, 130)
        self.assertEqual(err.strip().splitlines(), [
            f"rb-train: interrupted; the checkpoint of the last finished epoch is in {tmp}: run the same "
            "command again to resume from it."])
        self.assertFalse(os.path.exists(os.path.join(tmp, "model.zip")))

    def test_cli_writes_package_and_dataset(self):
        tmp = tempfile.mkdtemp(prefix="rb_cli_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "model.zip")
        code, _, err = self.run_cli(self.root, "-i", TRIPLETS, "--tract", "3080", "-o", "cli/model",
                                    "--package", path, "-c", "epochs=3", "-c", "batchSize=8", "-c", "device=cpu",
                                    "-c", "numThreads=1", "-c", "validationFraction=0.2", "-c", "progressBar=False")
        self.assertEqual(code, 0, err)
        from_file = ModelPackage.read(path)
        from_butler = Butler.from_config(self.root).get("rb_model", collections="cli/model")
        self.assertEqual(from_file, from_butler)
        self.assertEqual(from_file.trained_for(), {"instrument": ["LSSTCam-imSim"], "bands": ["r"]})
        # One code path: the task with the same settings gives the same weights.
        self.assertEqual(from_file.weights_bytes, train_in_process(self.root).weights_bytes)

    def test_cli_refuses_taken_output_before_training(self):
        code, _, err = self.run_cli(self.root, "-i", TRIPLETS, "--tract", "3080", "-o", "cli/taken",
                                    "-c", "maxSteps=1", "-c", "device=cpu", "-c", "progressBar=False")
        self.assertEqual(code, 0, err)
        # Where TrainRealBogusTask.run looks train up.
        with mock.patch("lsst.meas.realbogus.training._trainRealBogus.train") as never:
            code, _, err = self.run_cli(self.root, "-i", TRIPLETS, "--tract", "3080", "-o", "cli/taken")
        self.assertEqual(code, 2)
        self.assertIn("already holds rb_model", err)
        never.assert_not_called()

    def test_cli_errors_are_one_line(self):
        cases = [
            (("--tract", "9999", "--package", "x.zip"), "no rb_triplets overlap tract 9999"),
            (("--tract", "3080"), "give --output"),
            (("--tract", "3080", "--package", "x.zip", "-c", "epochs=0"), "0 is outside of valid range"),
            (("--tract", "3080", "--package", "x.zip", "-c", "model.name=nope"), "nope"),
            (("--tract", "3080", "--package", "x.zip", "-c", "bogusField=1"), "no config field 'bogusField'"),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                code, _, err = self.run_cli(self.root, "-i", TRIPLETS, *extra)
                self.assertEqual(code, 2)
                lines = err.strip().splitlines()
                self.assertEqual(len(lines), 1, err)
                self.assertTrue(lines[0].startswith("rb-train: error:"), err)
                self.assertIn(message, lines[0])

    @unittest.skipIf(torch.cuda.is_available(), "this machine has a GPU")
    def test_cuda_without_gpu(self):
        with self.assertRaisesRegex(DeviceError, "no CUDA GPU"):
            select_device("cuda")
        code, _, err = self.run_cli(self.root, "-i", TRIPLETS, "--tract", "3080", "--package", "x.zip",
                                    "-c", "device=cuda")
        self.assertEqual(code, 2)
        self.assertIn("no CUDA GPU", err)
        self.assertEqual(select_device("auto").type, "cpu")


class CalibrationTestCase(lsst.utils.tests.TestCase):
    def test_temperature_recovers_overconfidence(self):
        rng = np.random.default_rng(5)
        true_logit = rng.normal(-2.5, 2.0, 20000)
        labels = (rng.uniform(size=true_logit.size) < 1 / (1 + np.exp(-true_logit))).astype(float)
        fit = fit_temperature(3.0 * true_logit, labels)  # a network 3x overconfident
        self.assertAlmostEqual(fit["temperature"], 3.0, delta=0.15)
        self.assertGreater(fit["eceBefore"], 0.05)
        self.assertLess(fit["eceAfter"], 0.02)

    def test_calibrate_and_scores(self):
        rng = np.random.default_rng(6)
        logits = rng.normal(0.0, 3.0, 500).astype(np.float32)
        labels = (rng.uniform(size=logits.size) < 0.5).astype(float)
        self.assertIsNone(calibrate("none", logits, labels))
        fitted = calibrate("temperature", logits, labels)
        self.assertEqual(fitted, fit_temperature(logits, labels))
        # The package's scores: float32 sigmoid(logit / T), as scoring computes them.
        expected = torch.sigmoid(torch.from_numpy(logits) / fitted["temperature"]).numpy()
        scores = calibrated_scores(logits, fitted)
        self.assertEqual(scores.dtype, np.float64)
        np.testing.assert_array_equal(scores, expected.astype(np.float64))
        np.testing.assert_array_equal(calibrated_scores(logits, None),
                                      torch.sigmoid(torch.from_numpy(logits)).numpy().astype(np.float64))
        self.assertNotEqual(fitted["temperature"], 1.0)


class PlattCalibrationTestCase(lsst.utils.tests.TestCase):
    def test_platt_recovers_confidence_and_prior_shift(self):
        """A network 2x overconfident trained at a 50 % real mix, applied
        to a 5 % mix: the fit finds T = 2 and the prior's logit shift.
        """
        rng = np.random.default_rng(8)
        true_logit = rng.normal(-3.0, 2.0, 40000)
        labels = (rng.uniform(size=true_logit.size) < 1 / (1 + np.exp(-true_logit))).astype(float)
        shift = -1.5  # log-odds of the training mix over the natural one
        fit = fit_platt(2.0 * (true_logit - shift), labels)
        self.assertEqual(fit["method"], "platt")
        self.assertAlmostEqual(fit["temperature"], 2.0, delta=0.1)
        self.assertAlmostEqual(fit["intercept"], shift, delta=0.1)
        self.assertLess(fit["eceAfter"], 0.01)
        self.assertGreater(fit["eceBefore"], 0.05)
        self.assertEqual(calibrate("natural", 2.0 * (true_logit - shift), labels), fit)
        # The package's scores are sigmoid(logit / T + b), as scoring computes them.
        logits = np.linspace(-5, 5, 11, dtype=np.float32)
        expected = torch.sigmoid(torch.from_numpy(logits) / fit["temperature"] + fit["intercept"]).numpy()
        np.testing.assert_array_equal(calibrated_scores(logits, fit), expected.astype(np.float64))


    def test_prior_shift_from_counts(self):
        """Too few natural reals to fit T and b: the logit shift between the
        natural and the training real fractions, and the package scores
        with it.
        """
        labels = np.array([1.0] * 3 + [0.0] * 60)
        logits = np.linspace(-4, 4, labels.size)
        fit = fit_prior_shift(logits, labels, 0.7)
        natural = 3.5 / 64
        self.assertEqual(fit["method"], "priorShift")
        self.assertEqual(fit["temperature"], 1.0)
        self.assertAlmostEqual(fit["intercept"], np.log(natural / (1 - natural)) - np.log(0.7 / 0.3))
        expected = torch.sigmoid(torch.from_numpy(logits.astype(np.float32)) + fit["intercept"]).numpy()
        np.testing.assert_array_equal(calibrated_scores(logits.astype(np.float32), fit), expected.astype(np.float64))
        self.assertTrue(np.isfinite(fit_prior_shift(logits, np.zeros(63), 0.7)["intercept"]))


    def test_prior_shift_sees_the_class_weighting(self):
        """A balanced loss trains towards a 1/2 prior whatever the counts;
        the shift starts from the prior the loss saw, and stays within the
        bounds a package reader accepts.
        """
        self.assertEqual(effective_real_fraction(300, 700, 700 / 300), 0.5)
        self.assertAlmostEqual(effective_real_fraction(300, 700, 1.0), 0.3)
        self.assertAlmostEqual(effective_real_fraction(300, 700, 2.0), 600 / 1300)
        labels = np.zeros(10_000)
        self.assertEqual(fit_prior_shift(np.zeros(10_000), labels, 1 - 1e-12)["intercept"], -20.0)


class EmptyNaturalSplitTestCase(lsst.utils.tests.TestCase):
    def test_warns_and_says_why_in_the_rule(self):
        """calibration='natural' with no natural-mix triplet to hold out:
        uncalibrated, with a warning and the reason in the threshold rule.
        """
        import logging

        from lsst.meas.realbogus.training._packaging import _validate
        from lsst.meas.realbogus.training._tripletData import TripletBatch

        empty = TripletBatch.concatenate([], (3, 8, 8))
        trainer = type("T", (), {"validation": empty, "calibration": empty,
                                 "predict": lambda self, cutouts, logits=False: np.zeros(len(cutouts))})()
        config = quick_training_config(calibration="natural", naturalCalibrationFraction=0.5)
        log = logging.getLogger("rb.test.calibration")
        with self.assertLogs(log, "WARNING") as logs:
            result = _validate(config, trainer, log, 0.7)
        self.assertIsNone(result.calibration)
        self.assertIn("found no natural-mix triplet", result.rule)
        self.assertIn("not calibrated", logs.output[0])


class NaturalCalibrationSplitTestCase(lsst.utils.tests.TestCase):
    """The natural-mix calibration split holds out non-injected rows only,
    by id hash, and takes them from training and validation alike.
    """

    class _Handle:
        def __init__(self, table):
            self.table = table

        def get(self, parameters=None):
            columns = (parameters or {}).get("columns")
            missing = [c for c in columns or () if c not in self.table.colnames]
            if missing:
                raise KeyError(f"no column {missing[0]}")
            return self.table[columns] if columns else self.table

    def make_handles(self, with_injected=True):
        from astropy.table import Table

        from lsst.meas.realbogus.triplets import CutoutConfig

        rng = np.random.default_rng(1)
        handles = []
        for k in range(4):
            n = 500
            table = Table({
                "diaSourceId": np.arange(n, dtype=np.int64) + 10_000 * k,
                "label": (rng.random(n) < 0.5).astype(np.int8),
                "snr": np.full(n, 10.0, dtype=np.float32),
                "truthClass": np.full(n, "x"),
                "cutout": np.zeros((n, 3, 8, 8), dtype=np.float32),
            })
            if with_injected:
                table["injected"] = rng.random(n) < 0.8
            cutout = CutoutConfig()
            cutout.size = 8
            table.meta["cutout"] = cutout.to_metadata()
            handles.append(self._Handle(table))
        return handles

    def test_split(self):
        handles = self.make_handles()
        data = TripletData(handles, [str(k) for k in range(4)], validation_fraction=0.1, seed=1,
                           calibration_fraction=0.5)
        validation, calibration = data.held_out()
        natural = sum(int((~h.table["injected"]).sum()) for h in handles)
        self.assertEqual(len(calibration), data.n_calibration)
        self.assertAlmostEqual(len(calibration) / natural, 0.5, delta=0.07)
        self.assertFalse(calibration.injected.any())
        trained = {int(i) for batch in data.batches(64, np.random.default_rng(0), 10_000) for i in batch.ids}
        self.assertFalse(trained & set(calibration.ids.tolist()))
        self.assertFalse(set(validation.ids.tolist()) & set(calibration.ids.tolist()))
        self.assertEqual(len(trained) + len(validation) + len(calibration), 2000)
        # Without the fraction, no calibration split; rb_triplets without an
        # injected column read as natural.
        plain = TripletData(self.make_handles(with_injected=False), list("abcd"), validation_fraction=0.1,
                            seed=1, calibration_fraction=0.5)
        self.assertAlmostEqual(plain.n_calibration / 2000, 0.5, delta=0.05)
        none = TripletData(handles, list("abcd"), validation_fraction=0.1, seed=1)
        self.assertEqual(none.n_calibration, 0)

    def test_read_error_does_not_make_rows_natural(self):
        """Only a missing ``injected`` column reads as natural: a read that
        fails for another reason is an error, even if a retry would work.
        """
        handles = self.make_handles()

        class Flaky:
            def __init__(self, inner, error):
                self.inner, self.error, self.calls = inner, error, 0

            def get(self, parameters=None):
                self.calls += 1
                if self.calls == 1:
                    raise self.error
                return self.inner.get(parameters)

        # Even an error whose text names the column (a path here) is not a missing column.
        for error, pattern in ((OSError("connection reset by peer"), "connection reset by peer"),
                               (OSError(5, "Input/output error", "/data/injected/t.parq"), "Input/output")):
            with self.subTest(error=str(error)):
                flaky = [Flaky(h, error) for h in handles]
                with self.assertRaisesRegex(TripletDataError, f"rb_triplets a cannot be read for training: .*"
                                            f"{pattern}"):
                    TripletData(flaky, list("abcd"), validation_fraction=0.1, seed=1, calibration_fraction=0.5)


class TrainingPiecesTestCase(lsst.utils.tests.TestCase):
    """The step plan, loss weighting and checkpoint file, without data."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rb_pieces_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_plan_steps(self):
        config = TrainingConfig()
        config.batchSize, config.epochs = 8, 3
        self.assertEqual(plan_steps(config, 20), (3, 9))
        self.assertEqual(plan_steps(config, 0), (1, 3))
        config.maxSteps = 4
        self.assertEqual(plan_steps(config, 20), (3, 4))

    def test_class_weighting(self):
        config = TrainingConfig()
        counts = {"real": 4, "bogus": 12}
        for weighting, expected in (("none", 1.0), ("balanced", 3.0), ("fixed", 2.5)):
            config.classWeighting, config.positiveWeight = weighting, 2.5
            loss = make_loss(config, counts, torch.device("cpu"))
            self.assertEqual(float(loss.pos_weight), expected)

    def small_run(self, config):
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        optimizer = make_optimizer(config, model.parameters())
        return model, optimizer, make_scheduler(config, optimizer, 10, 2)

    def test_checkpoint_round_trip(self):
        config = TrainingConfig()
        config.checkpointDir = os.path.join(self.tmp, "ckpt")
        model, optimizer, scheduler = self.small_run(config)
        model(torch.ones(2, 3)).sum().backward()
        optimizer.step()
        scheduler.step()
        best = {k: v.detach().clone() for k, v in model.state_dict().items()}
        progress = TrainingProgress(epoch=2, step=5, history=[{"epoch": 1, "trainLoss": 0.5, "x": None}],
                                    best_value=0.75, best_epoch=1, best_state=best, bad_epochs=1)
        checkpoint = Checkpoint(config, world_size=1)
        self.assertIsNone(checkpoint.read())  # nothing written yet
        checkpoint.save(progress, model, optimizer, scheduler)
        self.assertEqual(os.listdir(config.checkpointDir), ["checkpoint.pt"])

        other_model, other_optimizer, other_scheduler = self.small_run(config)
        torch.nn.init.zeros_(other_model.weight)
        restored = Checkpoint.restore(checkpoint.read(), other_model, other_optimizer, other_scheduler)
        self.assertEqual(restored.history, progress.history)
        self.assertEqual((restored.epoch, restored.step, restored.best_value, restored.best_epoch,
                          restored.bad_epochs, restored.stopped_early), (2, 5, 0.75, 1, 1, False))
        for key, value in model.state_dict().items():
            torch.testing.assert_close(other_model.state_dict()[key], value, rtol=0, atol=0)
            torch.testing.assert_close(restored.best_state[key], best[key], rtol=0, atol=0)
        torch.testing.assert_close(other_optimizer.state_dict(), optimizer.state_dict(), rtol=0, atol=0)
        self.assertEqual(other_scheduler.state_dict(), scheduler.state_dict())

        # Another world size, or resume off, or no directory: not this run's checkpoint.
        with self.assertRaisesRegex(TrainingError, "different training settings"):
            Checkpoint(config, world_size=2).read()
        config.resume = False
        self.assertIsNone(Checkpoint(config, world_size=1).read())
        config.checkpointDir = ""
        nowhere = Checkpoint(config, world_size=1)
        nowhere.save(progress, model, optimizer, scheduler)
        self.assertIsNone(nowhere.path)
        self.assertIsNone(nowhere.read())


class TripletDataTestCase(lsst.utils.tests.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = ci_repository()

    def test_split_is_stable_and_near_fraction(self):
        ids = np.arange(1, 200001, dtype=np.int64) * 7919
        mask = validation_mask(ids, 0.05, 1)
        self.assertAlmostEqual(mask.mean(), 0.05, delta=0.003)
        np.testing.assert_array_equal(mask[::-1], validation_mask(ids[::-1], 0.05, 1))
        self.assertFalse(np.array_equal(mask, validation_mask(ids, 0.05, 2)))

    def test_streaming_epoch_sees_each_training_row_once(self):
        _, handles, names = triplet_handles(self.root)
        for cache in (0.0, 100.0):
            data = TripletData(handles, names, validation_fraction=0.2, seed=1, cache_megabytes=cache)
            seen = []
            for batch in data.batches(4, np.random.default_rng(0), buffer_rows=5):
                self.assertLessEqual(len(batch), 4)
                self.assertEqual(batch.cutouts.shape[1:], (3, 51, 51))
                seen.extend(batch.ids.tolist())
            self.assertEqual(len(seen), len(set(seen)))
            # Only a single leftover row may be dropped (batch norm needs two).
            self.assertIn(data.n_train - len(seen), (0, 1))
            val = data.validation()
            self.assertFalse(set(seen) & set(val.ids.tolist()))
            self.assertEqual(len(val), data.n_validation)

    def test_reader_threads_change_nothing(self):
        """Reading ahead in threads yields the same batches in the same
        order, cached or not, and the same validation split.
        """
        _, handles, names = triplet_handles(self.root)

        def epochs(readers, cache):
            data = TripletData(handles, names, validation_fraction=0.2, seed=1, cache_megabytes=cache,
                               readers=readers)
            val = data.validation()
            out = [val.ids.tolist()]
            for epoch in range(2):
                out.append([(b.ids.tolist(), b.cutouts.sum()) for b in
                            data.batches(4, np.random.default_rng(epoch), buffer_rows=5)])
            return out

        for cache in (0.0, 100.0):
            self.assertEqual(epochs(1, cache), epochs(3, cache))

    def test_augmentation_is_a_symmetry(self):
        x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
        y = random_dihedral(x.repeat(50, 1, 1, 1), torch.Generator().manual_seed(0))
        for k in range(len(y)):
            torch.testing.assert_close(torch.sort(y[k].flatten()).values, torch.sort(x[k % 2].flatten()).values)
            # The three channels move together: the offset between channels is preserved.
            torch.testing.assert_close(y[k, 1] - y[k, 0], torch.full((5, 5), 25.0))
        distinct = {tuple(y[k].flatten().tolist()) for k in range(0, len(y), 2)}
        self.assertEqual(len(distinct), 8)


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
