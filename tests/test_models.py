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

"""Tests of the real/bogus model zoo and the ``rb-models`` command."""

import contextlib
import copy
import io
import json
import unittest

import torch

import lsst.pex.config as pexConfig
import lsst.utils.tests
from lsst.meas.realbogus.cli.models import main
from lsst.meas.realbogus.errors import UnsupportedCutoutSizeError
from lsst.meas.realbogus.models import (
    ARCHITECTURES,
    CHANNELS,
    build_model,
    count_parameters,
    get_architecture,
    make_model_config,
    modelRegistry,
)

# Non-default values for every architecture, to check that configs survive
# a toDict/JSON round trip and change the network as they should.
NON_DEFAULT = {
    "vgg6": {"block1Channels": 8, "denseWidth": 64, "denseDropout": 0.3},
    "resnet50": {"smallInputStem": False, "dropout": 0.2},
    "rbtn": {"stemChannels": [16, 32, 64], "stageChannels": [64, 128], "leakySlope": 0.2, "dropout": 0.1},
    "rbcnn": {"channels": [8, 16], "kernelSize": 3, "denseWidth": 16},
}

class TaskLikeConfig(pexConfig.Config):
    """A config holding a model the way task configs do."""

    model = modelRegistry.makeField(doc="Network.", default="rbcnn")


def _triplets(n, size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(CHANNELS), size, size, generator=generator)


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


class ArchitectureTestCase(lsst.utils.tests.TestCase):
    def test_registry(self):
        self.assertEqual(set(modelRegistry), set(ARCHITECTURES))
        self.assertEqual(ARCHITECTURES, ("vgg6", "resnet50", "rbtn", "rbcnn"))
        for name in ARCHITECTURES:
            cls = get_architecture(name)
            self.assertEqual(cls.name, name)
            self.assertIs(modelRegistry[name].ConfigClass, cls.ConfigClass)
            minSize, maxSize = cls.supported_sizes()
            self.assertEqual(minSize, cls.minCutoutSize)
            self.assertIsNone(maxSize)
            self.assertGreaterEqual(cls.defaultCutoutSize, minSize)

    def test_forward_at_default_size(self):
        for name in ARCHITECTURES:
            with self.subTest(name=name):
                cls = get_architecture(name)
                model = build_model(name, cls.defaultCutoutSize).eval()
                with torch.no_grad():
                    logits = model(_triplets(4, cls.defaultCutoutSize))
                self.assertEqual(logits.shape, (4,))
                self.assertEqual(logits.dtype, torch.float32)
                self.assertTrue(torch.isfinite(logits).all())
                scores = torch.sigmoid(logits)
                self.assertTrue(((scores >= 0) & (scores <= 1)).all())

    def test_odd_and_even_sizes(self):
        for name in ARCHITECTURES:
            cls = get_architecture(name)
            for size in (cls.minCutoutSize, cls.minCutoutSize + 1):
                with self.subTest(name=name, size=size):
                    model = build_model(name, size)
                    # Train mode and a backward pass: BatchNorm and dropout
                    # must cope with the smallest maps too.
                    logits = model(_triplets(2, size))
                    self.assertEqual(logits.shape, (2,))
                    logits.sum().backward()
                    grads = [p.grad for p in model.parameters()]
                    self.assertTrue(all(g is not None and torch.isfinite(g).all() for g in grads))
                    with torch.no_grad():
                        self.assertEqual(model.eval()(_triplets(1, size)).shape, (1,))

    def test_vgg6_parameter_count(self):
        # braai's VGG6 on 63x63x3 triplets (Duev et al. 2019).
        self.assertEqual(count_parameters(build_model("vgg6", 63)), 312081)

    def test_resnet50_adaptation(self):
        seen = {}
        model = build_model("resnet50", 51).eval()
        model.layer1.register_forward_hook(lambda m, i, o: seen.__setitem__("layer1", o.shape[-1]))
        model.layer4.register_forward_hook(lambda m, i, o: seen.__setitem__("layer4", o.shape[-1]))
        with torch.no_grad():
            model(_triplets(1, 51))
        self.assertEqual(seen, {"layer1": 51, "layer4": 7})
        self.assertEqual(tuple(model.conv1.weight.shape), (64, 3, 3, 3))
        self.assertIsInstance(model.maxpool, torch.nn.Identity)
        # Minimum sizes: layer4 yields at least 2x2.
        for small, minSize in ((True, 9), (False, 33)):
            config = make_model_config("resnet50", {"smallInputStem": small})
            self.assertEqual(get_architecture("resnet50").supported_sizes(config), (minSize, None))
            with torch.device("meta"):
                model = build_model("resnet50", minSize, config)
            model.layer4.register_forward_hook(lambda m, i, o: seen.__setitem__("min", o.shape[-1]))
            model.eval()(torch.zeros(1, 3, minSize, minSize, device="meta"))
            self.assertEqual(seen["min"], 2)
            with self.assertRaisesRegex(UnsupportedCutoutSizeError, f"at least {minSize} pixels"):
                build_model("resnet50", minSize - 1, config)

    def test_rbtn_minimum(self):
        # conv4, the first 3x3 stride-2 layer, yields 2x2 at the minimum size.
        seen = {}
        with torch.device("meta"):
            model = build_model("rbtn", 17)
        model.encoder.conv4.register_forward_hook(lambda m, i, o: seen.__setitem__("conv4", o.shape[-1]))
        model.eval()(torch.zeros(1, 3, 17, 17, device="meta"))
        self.assertEqual(seen["conv4"], 2)

    def test_unsupported_sizes(self):
        for name in ARCHITECTURES:
            minSize = get_architecture(name).minCutoutSize
            for size in (minSize - 1, 0):
                with self.subTest(name=name, size=size):
                    with self.assertRaises(UnsupportedCutoutSizeError) as cm:
                        build_model(name, size)
                    self.assertIsInstance(cm.exception, ValueError)
                    self.assertEqual(
                        str(cm.exception), f"{name} needs cutouts of at least {minSize} pixels (got {size})"
                    )

    def test_wrong_input_shape(self):
        model = build_model("rbcnn", 51)
        with self.assertRaisesRegex(ValueError, r"rbcnn built for inputs \(N, 3, 51, 51\)"):
            model(_triplets(2, 50))

    def test_eval_deterministic(self):
        for name in ARCHITECTURES:
            with self.subTest(name=name):
                size = get_architecture(name).minCutoutSize + 3
                torch.manual_seed(1)
                model = build_model(name, size).eval()
                x = _triplets(3, size, seed=2)
                with torch.no_grad():
                    first, second = model(x), model(x)
                    copied = copy.deepcopy(model)(x)
                self.assertTrue(torch.equal(first, second))
                self.assertTrue(torch.equal(first, copied))


class ConfigTestCase(lsst.utils.tests.TestCase):
    def test_round_trip(self):
        for name in ARCHITECTURES:
            for values in ({}, NON_DEFAULT[name]):
                with self.subTest(name=name, values=values):
                    config = make_model_config(name, values)
                    for key, value in values.items():
                        self.assertEqual(getattr(config, key), value)
                    stored = json.loads(json.dumps(config.toDict()))
                    rebuilt = make_model_config(name, stored)
                    self.assertTrue(config.compare(rebuilt, shortcut=False))
                    size = get_architecture(name).defaultCutoutSize
                    with torch.device("meta"):
                        first = build_model(name, size, config)
                        second = build_model(name, size, rebuilt)
                    self.assertEqual(_shapes(first), _shapes(second))
        # The non-default values do change the networks.
        for name in ARCHITECTURES:
            size = get_architecture(name).defaultCutoutSize
            with torch.device("meta"):
                default = build_model(name, size)
                other = build_model(name, size, make_model_config(name, NON_DEFAULT[name]))
            if name == "resnet50":  # Only conv1 changes shape, and dropout has no weights.
                self.assertNotEqual(default.conv1.weight.shape, other.conv1.weight.shape)
            else:
                self.assertNotEqual(_shapes(default), _shapes(other))

    def test_errors(self):
        cases = [
            (("nope",), "unknown model architecture 'nope'; known: "),
            (("vgg6", {"dropout": 0.1}), "unknown field 'dropout' for model 'vgg6'"),
            (("rbcnn", {"kernelSize": 4}), "kernelSize must be odd"),
            (("rbcnn", {"dropout": 1.5}), "model 'rbcnn': "),
            (("rbtn", {"stemKernelSizes": [7, 5]}), "stemKernelSizes has 2 entries"),
        ]
        for args, expected in cases:
            with self.subTest(args=args):
                with self.assertRaises(ValueError) as cm:
                    make_model_config(*args)
                self.assertIn(expected, str(cm.exception))
                self.assertNotIn("\n", str(cm.exception))
        with self.assertRaisesRegex(ValueError, "unknown model architecture 'nope'"):
            build_model("nope", 51)
        with self.assertRaises(TypeError):
            build_model("vgg6", 63, make_model_config("rbcnn"))

    def test_registry_field(self):
        c = TaskLikeConfig()
        self.assertEqual(c.model.name, "rbcnn")
        self.assertEqual(c.model.apply(51).name, "rbcnn")
        c.model.name = "vgg6"
        c.model["vgg6"].denseDropout = 0.3
        self.assertEqual(c.model.active.denseDropout, 0.3)
        m = c.model.apply(63)
        self.assertEqual(m.name, "vgg6")
        self.assertEqual(m.cutoutSize, 63)
        self.assertEqual(m.config.denseDropout, 0.3)
        self.assertEqual(count_parameters(m), 312081)
        # A saved task config restores the selection and the settings.
        restored = TaskLikeConfig()
        restored.loadFromString(c.saveToString())
        self.assertEqual(restored.model.name, "vgg6")
        self.assertEqual(restored.model["vgg6"].denseDropout, 0.3)
        # The model keeps a frozen copy of the config it was built with.
        c.model["vgg6"].denseDropout = 0.1
        self.assertEqual(m.config.denseDropout, 0.3)
        self.assertTrue(m.config._frozen)


class CliTestCase(lsst.utils.tests.TestCase):
    def _run(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(list(argv))
        return status, out.getvalue(), err.getvalue()

    def test_table(self):
        status, out, err = self._run()
        self.assertEqual(status, 0)
        self.assertEqual(err, "")
        for name in ARCHITECTURES:
            self.assertIn(name, out)
        self.assertIn("312,081", out)

    def test_size_and_json(self):
        status, out, _ = self._run("--size", "16", "--json")
        self.assertEqual(status, 0)
        rows = {row["name"]: row for row in map(json.loads, out.splitlines())}
        self.assertEqual(set(rows), set(ARCHITECTURES))
        self.assertFalse(rows["vgg6"]["supported"])
        self.assertEqual(rows["vgg6"]["error"], "vgg6 needs cutouts of at least 20 pixels (got 16)")
        self.assertTrue(rows["rbcnn"]["supported"])
        self.assertGreater(rows["rbcnn"]["mflops"], 0)
        status, out, _ = self._run("--size", "16")
        self.assertIn("unsupported: vgg6 needs cutouts of at least 20 pixels (got 16)", out)

    def test_bad_input(self):
        for argv in (["--size", "0"], ["--size", "x"], ["--bogus"]):
            with self.subTest(argv=argv):
                status, out, err = self._run(*argv)
                self.assertEqual(status, 2)
                self.assertEqual(out, "")
                self.assertEqual(len(err.strip().splitlines()), 1)
                self.assertTrue(err.startswith("rb-models: error: "))


class MemoryTester(lsst.utils.tests.MemoryTestCase):
    pass


def setup_module(module):
    lsst.utils.tests.init()
    # Two shared cores: one thread keeps the suite predictable.
    module._threads = torch.get_num_threads()
    torch.set_num_threads(1)


def teardown_module(module):
    torch.set_num_threads(module._threads)


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
