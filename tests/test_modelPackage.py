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

"""Tests of the model package: round trips, refusals, and safe loading."""

import io
import json
import os
import pickle
import shutil
import tempfile
import unittest
import zipfile

import torch

import lsst.utils.tests
from lsst.daf.butler import Butler, Config, DatasetType
from lsst.meas.realbogus.errors import ModelPackageError
from lsst.meas.realbogus.models import (
    STORAGE_CLASS,
    ModelPackage,
    build_model,
    butler_config,
    make_model_config,
)
from lsst.meas.realbogus.triplets import CutoutConfig


def make_package(name="rbcnn", size=51, **config_values):
    torch.manual_seed(0)
    config = make_model_config(name, config_values)
    model = build_model(name, size, config)
    cutout = CutoutConfig()
    cutout.size = size
    return model, ModelPackage.from_model(model, architecture=name, model_config=config.toDict(),
                                          cutout_config=cutout, threshold=0.42, metrics={"validation": {"n": 3}})


def rezip(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def members_of(data):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


class _Trap:
    """Unpickling this would create a marker file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class ModelPackageTestCase(lsst.utils.tests.TestCase):
    def setUp(self):
        self.model, self.package = make_package()
        self.tmp = tempfile.mkdtemp(prefix="rb_pkg_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.marker = os.path.join(self.tmp, "pwned")

    def assertOneLineRefusal(self, data, pattern):
        with self.assertRaisesRegex(ModelPackageError, pattern) as cm:
            ModelPackage.from_bytes(data, source="pkg.zip").build_model()
        self.assertNotIn("\n", str(cm.exception))
        return cm.exception

    def test_round_trip_is_byte_identical(self):
        data = self.package.to_bytes()
        again = ModelPackage.from_bytes(data)
        self.assertEqual(again, self.package)
        self.assertEqual(again.to_bytes(), data)
        self.assertEqual(again.weights_bytes, self.package.weights_bytes)
        self.assertEqual(again.threshold, 0.42)
        self.assertEqual(again.cutout_config().size, 51)
        model = again.build_model()
        self.assertFalse(model.training)
        x = torch.randn(4, 3, 51, 51)
        self.model.eval()
        with torch.no_grad():
            torch.testing.assert_close(model(x), self.model(x), rtol=0, atol=0)
        path = os.path.join(self.tmp, "m.zip")
        self.package.write(path)
        self.assertEqual(ModelPackage.read(path), self.package)

    def test_version_and_metadata(self):
        meta = json.loads(members_of(self.package.to_bytes())["metadata.json"])
        self.assertEqual(meta["architecture"], "rbcnn")
        self.assertEqual(meta["cutout"]["channels"], ["template", "science", "difference"])
        self.assertEqual(meta["cutout"]["size"], 51)
        self.assertTrue(self.package.version.startswith("rbcnn-"))
        self.assertEqual(meta["formatVersion"], 1)

    def test_format_version_follows_calibration(self):
        """A calibration with an intercept (which a version-1 reader would
        ignore) is written as format 2; the others stay readable by 1.
        """
        for calibration, version in ((None, 1), ({"method": "temperature", "temperature": 1.5}, 1),
                                     ({"method": "platt", "temperature": 1.2, "intercept": -2.0}, 2),
                                     ({"method": "priorShift", "temperature": 1.0, "intercept": -3.0}, 2)):
            with self.subTest(calibration=calibration):
                _, package = make_package()
                package = ModelPackage.from_model(self.model, architecture="rbcnn",
                                                  model_config=package.metadata.modelConfig,
                                                  cutout_config=package.cutout_config(), calibration=calibration)
                again = ModelPackage.from_bytes(package.to_bytes())
                self.assertEqual(again.metadata.formatVersion, version)
                self.assertEqual(again.intercept, (calibration or {}).get("intercept", 0.0))

    def test_calibration_out_of_bounds_refused(self):
        """T and b outside what the fitters search are refused at load:
        with |b| > 20 every float32 score would be 0 or 1.
        """
        members = members_of(self.package.to_bytes())
        for calibration, pattern in (
                ({"method": "temperature", "temperature": 50.0}, r"temperature 50.0 is not a number in \[0.05, 20"),
                ({"method": "platt", "temperature": 0.001, "intercept": 0.0}, "temperature 0.001"),
                ({"method": "platt", "temperature": 1.0, "intercept": 25.0}, r"intercept 25.0 is not a number in"),
                ({"method": "priorShift", "temperature": 1.0, "intercept": -1e300}, r"intercept -1e\+300"),
                ({"method": "priorShift", "temperature": 1.0, "intercept": "x"}, "intercept 'x'")):
            with self.subTest(calibration=calibration):
                meta = json.loads(members["metadata.json"])
                meta["calibration"], meta["formatVersion"] = calibration, 2
                self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}), pattern)

    def test_missing_member(self):
        members = members_of(self.package.to_bytes())
        for name in ("metadata.json", "weights.safetensors"):
            rest = {k: v for k, v in members.items() if k != name}
            self.assertOneLineRefusal(rezip(rest), f"pkg.zip has no {name}")

    def test_not_a_zip(self):
        self.assertOneLineRefusal(b"hello", "not a model package")
        self.assertOneLineRefusal(self.package.to_bytes()[:200], "not a model package|corrupt")

    def test_corrupted_weights(self):
        members = members_of(self.package.to_bytes())
        weights = bytearray(members["weights.safetensors"])
        weights[-5] ^= 0xFF  # a flipped bit in tensor data still parses; the checksum catches it
        self.assertOneLineRefusal(rezip({**members, "weights.safetensors": bytes(weights)}), "SHA-256")

    def test_unparseable_weights_with_matching_checksum(self):
        members = members_of(self.package.to_bytes())
        meta = json.loads(members["metadata.json"])
        junk = b"\x00" * 64
        import hashlib

        meta["weightsSha256"] = hashlib.sha256(junk).hexdigest()
        meta["version"] = "rbcnn-" + meta["weightsSha256"][:12]
        data = rezip({"metadata.json": json.dumps(meta), "weights.safetensors": junk})
        self.assertOneLineRefusal(data, "weights.safetensors is corrupt")

    def test_bad_metadata(self):
        members = members_of(self.package.to_bytes())
        self.assertOneLineRefusal(rezip({**members, "metadata.json": b"{not json"}), "not valid JSON")
        meta = json.loads(members["metadata.json"])
        del meta["architecture"]
        meta["cutout"]["size"] = "big"
        err = self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}),
                                        "invalid metadata.json")
        self.assertIn("architecture", str(err))
        self.assertIn("cutout.size", str(err))
        meta = json.loads(members["metadata.json"])
        meta["formatVersion"] = 99
        self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}), "format version 99")

    def test_weights_that_do_not_fit(self):
        members = members_of(self.package.to_bytes())
        meta = json.loads(members["metadata.json"])
        meta["modelConfig"]["denseWidth"] = 64  # declares a wider head than the weights have
        err = self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}),
                                        "weights do not fit architecture 'rbcnn'")
        self.assertIn("shape", str(err))
        meta = json.loads(members["metadata.json"])
        meta["architecture"] = "vgg6"
        meta["modelConfig"] = {}
        self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}),
                                  "unusable architecture|do not fit architecture 'vgg6'")
        meta["architecture"] = "transformer9000"
        self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}),
                                  "unknown model architecture 'transformer9000'")

    def test_channel_order_mismatch(self):
        members = members_of(self.package.to_bytes())
        meta = json.loads(members["metadata.json"])
        meta["cutout"]["channels"] = ["science", "template", "difference"]
        # Refused at load, not at the first detector scored.
        self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}),
                                  "pkg.zip: model package cutout settings: channel order")

    def test_unusable_cutout_settings_refused_at_load(self):
        members = members_of(self.package.to_bytes())
        for key, value, pattern in (("normalization", "zscore", "invalid cutout setting normalization"),
                                    ("size", 2, "invalid cutout setting size")):
            with self.subTest(key=key):
                meta = json.loads(members["metadata.json"])
                meta["cutout"][key] = value
                self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}), pattern)

    def test_metadata_schema(self):
        """Unknown fields and wrong types are refused with the field named."""
        members = members_of(self.package.to_bytes())
        for change, field in ((lambda m: m.update(evil="x"), "evil"),
                              (lambda m: m["cutout"].update(pickle="x"), "cutout.pickle"),
                              (lambda m: m.update(training={"bands": 3}), "training.bands"),
                              (lambda m: m.update(threshold="high"), "threshold")):
            with self.subTest(field=field):
                meta = json.loads(members["metadata.json"])
                change(meta)
                err = self.assertOneLineRefusal(rezip({**members, "metadata.json": json.dumps(meta)}),
                                                "pkg.zip")
                self.assertIn(field, str(err))

    def test_pickle_in_place_of_weights_is_never_executed(self):
        trap = pickle.dumps(_Trap(self.marker))
        members = members_of(self.package.to_bytes())
        meta = json.loads(members["metadata.json"])
        import hashlib

        meta["weightsSha256"] = hashlib.sha256(trap).hexdigest()
        meta["version"] = "rbcnn-" + meta["weightsSha256"][:12]
        data = rezip({"metadata.json": json.dumps(meta), "weights.safetensors": trap})
        self.assertOneLineRefusal(data, "weights.safetensors is corrupt")
        # A torch.save checkpoint (a pickle) offered as a package is refused too.
        buffer = io.BytesIO()
        torch.save({"x": _Trap(self.marker)}, buffer)
        self.assertOneLineRefusal(buffer.getvalue(), "not a model package|has no|unexpected member")
        self.assertFalse(os.path.exists(self.marker))

    def test_butler_round_trip(self):
        root = os.path.join(self.tmp, "repo")
        Butler.makeRepo(root, config=Config(butler_config()))
        butler = Butler.from_config(root, writeable=True, run="models")
        dataset_type = DatasetType("rb_model", (), STORAGE_CLASS, universe=butler.dimensions)
        butler.registry.registerDatasetType(dataset_type)
        ref = butler.put(self.package, dataset_type)
        got = Butler.from_config(root).get("rb_model", collections="models")
        self.assertIsInstance(got, ModelPackage)
        self.assertEqual(got.weights_bytes, self.package.weights_bytes)
        self.assertEqual(butler.getURI(ref).read(), self.package.to_bytes())
        self.assertTrue(butler.getURI(ref).path.endswith(".zip"))


class CommittedPackagesTestCase(lsst.utils.tests.TestCase):
    """The packages in benchmarks/reference load with the current reader and
    are the models their learning-curve lines describe.
    """

    REFERENCE = os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks", "reference")

    def test_committed_packages_match_their_lines(self):
        with open(os.path.join(self.REFERENCE, "learning_curve.jsonl")) as stream:
            lines = [json.loads(line) for line in stream]
        versions = {line["modelVersion"] for line in lines}
        for name in ("rbcnn-train64k.zip", "rbcnn-train120k.zip"):
            with self.subTest(name):
                package = ModelPackage.read(os.path.join(self.REFERENCE, name))
                self.assertIn(package.version, versions)
                line = next(line for line in lines if line["modelVersion"] == package.version)
                if "threshold" in line:
                    self.assertAlmostEqual(package.threshold, line["threshold"], places=6)
                model = package.build_model()
                with torch.no_grad():
                    scores = torch.sigmoid(model(torch.zeros(2, 3, 51, 51)))
                self.assertEqual(scores.shape, (2,))
                self.assertTrue(bool(torch.isfinite(scores).all()))


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
