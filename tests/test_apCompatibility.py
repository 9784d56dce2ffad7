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

"""The package in a real Rubin AP repository and pipeline, as far as they can
be checked without the full stack (doc/ap_pipeline.rst says what is checked
where):

* a quantum graph of computeReliability (the AP configuration) and
  ap_association's filter builds against a registry holding the AP dataset
  types with their real storage classes (ExposureF, SourceCatalog, Catalog);
* ap_pipe's subsets and contracts survive the package's pipelines (a mimic
  of ap_pipe's pipeline tree), and did not survive the recipe of before;
* the AP output schema meets FilterDiaSourceReliabilityTask's contract;
* ``rb_model`` in a repository made by a plain ``butler create``;
* the cutouts of afw Exposures (duck-typed afw-like images) equal those of
  the same pixels as lsst.images images.
"""

import collections
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import apPipeMimic
import numpy as np
import yaml
from astropy.table import Table

import lsst.pex.config as pexConfig
import lsst.utils.tests
from lsst.daf.butler import Butler, Config
from lsst.meas.realbogus.errors import (
    ImageMismatchError,
    InvalidCatalogError,
    ModelPackageError,
    RealBogusError,
)
from lsst.meas.realbogus.models import ModelPackage, butler_config, butler_config_dir
from lsst.meas.realbogus.scoring import (
    AP_RELIABILITY_COLUMNS,
    RELIABILITY_COLUMNS,
    ComputeReliabilityConfig,
    ComputeReliabilityConnections,
    ComputeReliabilityTask,
    FilterReliabilityConfig,
    FilterReliabilityConnections,
    FilterReliabilityTask,
    afw_table,
    make_ap_reliability_catalog,
)
from lsst.meas.realbogus.tests import MODEL, SIM_COLLECTION, TEST_WHERE, ci_model, package_dir, run_pipeline
from lsst.meas.realbogus.triplets import CutoutConfig, extract_triplets_from_images
from lsst.pipe.base import Pipeline
from lsst.pipe.base.pipelineIR import ContractError

TESTS = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
SCORE_WHERE = "instrument='LSSTCam-imSim' AND " + TEST_WHERE
CPU = {"device": "cpu", "numThreads": 1}
IMAGES = {"science": "preliminary_visit_image", "template": "template_detector",
          "difference": "difference_image"}
AP_CONFIG = str(package_dir() / "config" / "ap" / "computeReliability.py")

AFW_STAND_IN = '''"""Stand-in for lsst.afw.table, for test_apCompatibility only: the two Python
types daf_butler imports to decide that AstropyTable converts from SourceCatalog
(the converter's source type lsst.afw.table.Catalog, with its asAstropy, and
SourceCatalog, a Catalog). Nothing is read or written with them."""


class Catalog:
    def asAstropy(self, cls=None, copy=False, unviewable="copy"):
        raise NotImplementedError("stand-in")


class SourceCatalog(Catalog):
    pass
'''


def write_afw_stand_in(root):
    """Write the ``lsst.afw.table`` stand-in under ``root``; return the path to
    put on ``PYTHONPATH``.
    """
    package = os.path.join(root, "lsst", "afw", "table")
    os.makedirs(package)
    with open(os.path.join(root, "lsst", "__init__.py"), "w") as stream:
        stream.write("import pkgutil\n\n__path__ = pkgutil.extend_path(__path__, __name__)\n")
    open(os.path.join(root, "lsst", "afw", "__init__.py"), "w").close()
    with open(os.path.join(package, "__init__.py"), "w") as stream:
        stream.write(AFW_STAND_IN)
    return root


def child_environment(**values):
    """Return this process's environment with ``values`` set (`None` removes)."""
    env = dict(os.environ)
    for key, value in values.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


class ButlerConfigTestCase(lsst.utils.tests.TestCase):
    """rb_model in repositories made by a plain ``butler create``."""

    PUT_AND_GET = (
        "import sys, torch\n"
        "from lsst.daf.butler import Butler\n"
        "from lsst.meas.realbogus.models import ModelPackage, build_model, make_model_config, put_model, "
        "use_package_butler_config\n"
        "from lsst.meas.realbogus.triplets import CutoutConfig\n"
        "if sys.argv[1] == 'call':\n"
        "    use_package_butler_config()\n"
        "if sys.argv[1] == 'cli':\n"
        "    from lsst.meas.realbogus.cli._options import find_package_storage_classes\n"
        "    find_package_storage_classes()\n"
        "torch.manual_seed(0)\n"
        "config = make_model_config('rbcnn', {})\n"
        "package = ModelPackage.from_model(build_model('rbcnn', 51, config), architecture='rbcnn',\n"
        "                                  model_config=config.toDict(), cutout_config=CutoutConfig())\n"
        "for root in sys.argv[2:]:\n"
        "    put_model(Butler.from_config(root, writeable=True), package, 'models')\n"
        "    got = Butler.from_config(root).get('rb_model', collections='models')\n"
        "    print(type(got).__name__, got.version == package.version)\n"
    )

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="rb_apbutler_")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def put_and_get(self, roots, config_path, call=False, mode=None):
        """Store and read rb_model in each repository, in a child process
        whose DAF_BUTLER_CONFIG_PATH is ``config_path``; one line per
        repository on stdout.
        """
        env = child_environment(DAF_BUTLER_CONFIG_PATH=config_path)
        mode = mode or ("call" if call else "env")
        return subprocess.run([sys.executable, "-c", self.PUT_AND_GET, mode, *roots],
                              capture_output=True, text=True, env=env)

    def butler_create(self, *names):
        roots = [os.path.join(self.tmp, name) for name in names]
        for root in roots:
            subprocess.run([os.path.join(BIN, "butler"), "create", root], check=True, capture_output=True,
                           env=child_environment(DAF_BUTLER_CONFIG_PATH=None))
        return roots

    def test_config_directory_defines_what_butler_config_does(self):
        """config/butler holds the definitions rb-simulate writes into its
        repositories' butler.yaml, in the files daf_butler reads from a
        DAF_BUTLER_CONFIG_PATH directory.
        """
        directory = butler_config_dir()
        self.assertEqual(directory, package_dir() / "config" / "butler")
        with open(directory / "storageClasses.yaml") as stream:
            storage_classes = yaml.safe_load(stream)
        with open(directory / "datastores" / "fileDatastore.yaml") as stream:
            datastore = yaml.safe_load(stream)
        expected = butler_config()
        self.assertEqual(storage_classes, {"storageClasses": expected["storageClasses"]})
        self.assertEqual(datastore, {"datastore": expected["datastore"]})

    def test_plain_repository_stores_and_reads_rb_model(self):
        """With DAF_BUTLER_CONFIG_PATH naming config/butler (the EUPS table
        sets it), a repository made by `butler create` stores and reads
        rb_model with no butler.yaml edit; without it, it cannot. A
        repository that carries the definitions in its butler.yaml (as
        rb-simulate makes them) works with the variable set too.
        """
        refused_root, plain = self.butler_create("refused", "plain")
        with open(os.path.join(plain, "butler.yaml")) as stream:
            self.assertNotIn("RealBogusModelPackage", stream.read())
        refused = self.put_and_get([refused_root], None)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("RealBogusModelPackage", refused.stderr.strip().splitlines()[-1])
        simulated = os.path.join(self.tmp, "simulated")
        Butler.makeRepo(simulated, config=Config(butler_config()))
        stored = self.put_and_get([plain, simulated], str(butler_config_dir()))
        self.assertEqual(stored.returncode, 0, stored.stderr[-2000:])
        self.assertEqual(stored.stdout.split(), ["ModelPackage", "True"] * 2)

    def test_use_package_butler_config(self):
        """A front end that calls use_package_butler_config before its first
        Butler needs no exported variable.
        """
        root, = self.butler_create("called")
        result = self.put_and_get([root], None, call=True)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertEqual(result.stdout.split(), ["ModelPackage", "True"])

    def test_command_line_tools_need_no_exported_variable(self):
        """rb-train, rb-report, rb-gallery and rb-evaluate make their Butlers
        after find_package_storage_classes, which is what a plain repository
        needs.
        """
        import inspect

        from lsst.meas.realbogus.cli import evaluate, gallery, report, train

        for module in (evaluate, gallery, report, train):
            source = inspect.getsource(module.main)
            self.assertIn("find_package_storage_classes()", source, module.__name__)
            self.assertLess(source.index("find_package_storage_classes()"), source.index("parse_args") + 80)
        root, = self.butler_create("cli")
        result = self.put_and_get([root], None, mode="cli")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertEqual(result.stdout.split(), ["ModelPackage", "True"])

    def test_ups_table_sets_the_path(self):
        with open(package_dir() / "ups" / "meas_realbogus.table") as stream:
            table = stream.read()
        pattern = r"^env(?:Append|Prepend)\(DAF_BUTLER_CONFIG_PATH, \$\{PRODUCT_DIR\}/(\S+)\)$"
        match = re.search(pattern, table, re.MULTILINE)
        self.assertIsNotNone(match, table)
        self.assertEqual(package_dir() / match.group(1), butler_config_dir())
        self.assertTrue((butler_config_dir() / "storageClasses.yaml").is_file())


class ApRegistryGraphTestCase(lsst.utils.tests.TestCase):
    """A quantum graph against the AP dataset types with their real storage
    classes (tests/apRegistryGraph.py, in a child process).
    """

    PIPELINE = "pipelines/LSSTCam/ApPipe.yaml#computeReliability,filterDiaSourcePostReliability"
    PACKAGE_DEFAULTS = {"scienceStorageClass": "VisitImage", "templateStorageClass": "DifferenceImage",
                        "differenceStorageClass": "DifferenceImage", "diaSourcesStorageClass": "ArrowAstropy",
                        "outputSchema": "package", "classificationsStorageClass": "ArrowAstropy"}

    @classmethod
    def setUpClass(cls):
        cls.root, _ = ci_model()
        cls.tmp = tempfile.mkdtemp(prefix="rb_apgraph_")
        cls.mimic = apPipeMimic.write_ap_pipe(os.path.join(cls.tmp, "mimic"))
        cls.stand_in = write_afw_stand_in(os.path.join(cls.tmp, "standin"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def graph(self, name, stand_in=True, overrides=None):
        path = os.pathsep.join(([self.stand_in] if stand_in else []) + [TESTS])
        env = child_environment(PYTHONPATH=path, DAF_BUTLER_CONFIG_PATH=str(butler_config_dir()),
                                MEAS_REALBOGUS_DIR=str(package_dir()), **self.mimic)
        cmd = [sys.executable, os.path.join(TESTS, "apRegistryGraph.py"), self.root,
               os.path.join(self.tmp, name), str(package_dir() / self.PIPELINE), json.dumps(overrides or {})]
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        return json.loads(result.stdout.strip().splitlines()[-1])

    def test_ap_configuration_builds(self):
        result = self.graph("ap")
        self.assertNotIn("error", result)
        self.assertEqual(result["registry"], {
            "preliminary_visit_image": "ExposureF", "template_detector": "ExposureF",
            "difference_image": "ExposureF", "dia_source_unstandardized": "SourceCatalog",
            "dia_source_reliability": "Catalog", "dia_source_high_reliability": "SourceCatalog",
            "dia_source_low_reliability": "SourceCatalog"})
        self.assertEqual(result["connections"], {
            "science": "ExposureF", "template": "ExposureF", "difference": "ExposureF",
            "diaSources": "AstropyTable", "model": "RealBogusModelPackage", "classifications": "Catalog"})
        n = result["detectorVisits"]
        self.assertGreater(n, 1)
        self.assertEqual(result["quanta"], {"computeReliability": n, "filterDiaSourcePostReliability": n})

    def test_package_defaults_do_not_build(self):
        """The storage classes of rb-simulate's repositories are not the AP
        pipeline's: the same graph with the package's defaults is refused.
        """
        result = self.graph("package", overrides=self.PACKAGE_DEFAULTS)
        self.assertRegex(result.get("error", ""), "IncompatibleDatasetTypeError: Incompatible definition for "
                         "input dataset type '(preliminary_visit_image|template_detector|difference_image|"
                         "dia_source_unstandardized)'; task 'computeReliability'")

    def test_stand_in_is_what_resolution_imports(self):
        """Without the afw stand-in (here, without afw) AstropyTable does not
        convert from SourceCatalog: the stand-in provides just that type.
        """
        result = self.graph("bare", stand_in=False)
        self.assertRegex(result.get("error", ""),
                         "IncompatibleDatasetTypeError.*AstropyTable.*data repository.*SourceCatalog")


class ApPipeMimicTestCase(lsst.utils.tests.TestCase):
    """ap_pipe's subsets and contracts through the package's pipelines."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rb_appipe_")
        env = apPipeMimic.write_ap_pipe(cls.tmp)
        env["MEAS_REALBOGUS_DIR"] = str(package_dir())
        cls.env = mock.patch.dict(os.environ, env)
        cls.env.start()
        cls.ap_pipe = env["AP_PIPE_DIR"]

    @classmethod
    def tearDownClass(cls):
        cls.env.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as stream:
            stream.write(text)
        return path

    @staticmethod
    def structure(uri):
        """Return the subsets (name: set of labels), the contracts (a
        multiset of their expressions) and the graph of a pipeline.
        """
        pipeline = Pipeline.from_uri(uri)
        graph = pipeline.to_graph()  # evaluates the contracts
        subsets = {name: set(subset) for name, subset in graph.task_subsets.items()}
        contracts = collections.Counter(c.contract for c in pipeline._pipelineIR.contracts)
        return subsets, contracts, graph

    def assertKeepsApPipe(self, uri, reference):
        """Check that a pipeline keeps every subset and contract of an
        ap_pipe pipeline, and that ap_pipe's own pipeline tests pass on it
        (ap_pipe tests/test_pipelines.py: apPipe is every label; preload,
        prompt and afterburner are disjoint and cover all but
        getRegionTimeFromVisit), with this package's computeReliability
        between ap_pipe's neighbours.
        """
        subsets, contracts, graph = self.structure(uri)
        ref_subsets, ref_contracts, ref_graph = self.structure(reference)
        self.assertEqual(subsets, ref_subsets)
        self.assertEqual(contracts, ref_contracts)
        labels = set(graph.tasks.keys())
        self.assertEqual(labels, set(ref_graph.tasks.keys()))
        self.assertEqual(subsets["apPipe"], labels)
        steps = [subsets[name] for name in ("preload", "prompt", "afterburner")]
        self.assertEqual(sum(len(s) for s in steps), len(set().union(*steps)))
        self.assertEqual(set().union(*steps), labels - {"getRegionTimeFromVisit"})
        self.assertEqual(graph.tasks["computeReliability"].task_class, ComputeReliabilityTask)
        self.assertEqual(graph.tasks["filterDiaSourcePostReliability"].task_class,
                         apPipeMimic.FilterDiaSourceReliabilityTask)
        flow = {"difference_image": "detectAndMeasureDiaSource",
                "dia_source_unstandardized": "filterDiaSource",
                "preliminary_visit_image": "calibrateImage", "template_detector": "buildTemplate"}
        for dataset, producer in flow.items():
            self.assertEqual(graph.producer_of(dataset).label, producer)
            self.assertIn("computeReliability", {task.label for task in graph.consumers_of(dataset)})
        self.assertEqual(graph.producer_of("dia_source_reliability").label, "computeReliability")
        self.assertEqual({task.label for task in graph.consumers_of("dia_source_reliability")},
                         {"filterDiaSourcePostReliability"})

    def test_ingredient_keeps_ap_pipe(self):
        self.assertKeepsApPipe(str(package_dir() / "pipelines" / "_ingredients" / "RealBogus.yaml"),
                               os.path.join(self.ap_pipe, "pipelines", "_ingredients", "ApPipe.yaml"))

    def test_instrument_pipelines_keep_ap_pipe(self):
        for instrument in ("LSSTCam", "LSSTCam-imSim"):
            with self.subTest(instrument=instrument):
                ours = package_dir() / "pipelines" / instrument / "ApPipe.yaml"
                theirs = os.path.join(self.ap_pipe, "pipelines", instrument, "ApPipe.yaml")
                self.assertKeepsApPipe(str(ours), theirs)
                _, contracts, _ = self.structure(str(ours))
                expected = len(apPipeMimic.CONTRACTS) + len(apPipeMimic.INSTRUMENT_CONTRACTS)
                self.assertEqual(sum(contracts.values()), expected)

    def test_todays_recipe_loses_subsets_and_contracts(self):
        """The recipe of before (exclude ap_pipe's steps, import a fragment)
        fails the same check: its import drops the prompt and apPipe subsets
        and the 4 contracts that name the excluded labels.
        """
        fragment = self.write("OldRealBogus.yaml", apPipeMimic.TODAYS_FRAGMENT)
        recipe = self.write("OldApPipe.yaml", apPipeMimic.TODAYS_RECIPE.format(fragment=fragment))
        reference = os.path.join(self.ap_pipe, "pipelines", "_ingredients", "ApPipe.yaml")
        with self.assertRaises(AssertionError):
            self.assertKeepsApPipe(recipe, reference)
        subsets, contracts, _ = self.structure(recipe)
        ref_subsets, ref_contracts, _ = self.structure(reference)
        self.assertEqual(set(ref_subsets) - set(subsets), {"prompt", "apPipe"})
        self.assertEqual(sum(ref_contracts.values()) - sum(contracts.values()), 4)

    def test_prompt_processing_import(self):
        """Prompt Processing imports the prompt subset of an instrument's
        pipeline (its pipelines/LSSTCam/ApPipe.yaml); from ours it gets this
        package's computeReliability and every prompt task.
        """
        pp = self.write("PromptProcessingApPipe.yaml", (
            "description: as prompt_processing's pipelines/LSSTCam/ApPipe.yaml, importing meas_realbogus's\n"
            "imports:\n"
            "  - location: $MEAS_REALBOGUS_DIR/pipelines/LSSTCam/ApPipe.yaml\n"
            "    include:\n"
            "      - prompt\n"
            "tasks:\n"
            "  filterDiaSourcePostReliability:\n"
            "    class: apPipeMimic.FilterDiaSourceReliabilityTask\n"
            "    config:\n"
            "      minReliability: 0.5\n"))
        _, _, graph = self.structure(pp)
        self.assertEqual(set(graph.tasks.keys()), set(apPipeMimic.SUBSETS["prompt"]))
        self.assertEqual(graph.tasks["computeReliability"].task_class, ComputeReliabilityTask)
        config = graph.tasks["computeReliability"].config
        self.assertEqual((config.outputSchema, config.classificationsStorageClass), ("ap", "Catalog"))

    def test_contracts_are_checked_against_this_task(self):
        """The kept contracts are evaluated with this package's config: a
        connection renamed away from ap_pipe's is refused.
        """
        pipeline = Pipeline.from_uri(str(package_dir() / "pipelines" / "LSSTCam" / "ApPipe.yaml"))
        pipeline.addConfigOverride("computeReliability", "connections.diaSources", "another_catalog")
        with self.assertRaisesRegex(ContractError, "filterDiaSource.filteredDiaSourceCat != "
                                                   "computeReliability.diaSources"):
            pipeline.to_graph()


def ap_association_filter(dia_sources, reliability, min_reliability=0.5):
    """FilterDiaSourceReliabilityTask.run of ap_association 9cbf784, on
    astropy tables (afw is not installable here), with afw's semantics.

    It requires the reliability ids to equal the sources' row by row (numpy
    refuses catalogs of other lengths), copies ``score`` into the sources'
    float32 ``reliability`` field and ``version`` into their 7-character
    ``reliabilityVersion`` field (afw's String field refuses a longer value,
    LengthError), and splits at ``min_reliability``.
    """
    for field in ("reliability", "reliabilityVersion"):  # made by ip_diffim's detectAndMeasure
        if field not in dia_sources.colnames:
            raise KeyError(f"diaSourceCat has no field {field!r}")
    if not np.all(np.asarray(dia_sources["id"]) == np.asarray(reliability["id"])):
        raise ValueError("Reliability ids do not match DiaSource ids.")
    if "version" not in reliability.colnames:
        raise KeyError("reliability has no field 'version'")
    catalog = Table(dia_sources, copy=True)
    catalog["reliability"] = np.asarray(reliability["score"]).astype(np.float32)
    versions = [str(v) for v in np.asarray(reliability["version"])]
    for version in versions:
        if len(version) > 7:
            raise ValueError(f"String ({len(version)}) is too large for field (7).")
    catalog["reliabilityVersion"] = np.array(versions, dtype="U7")
    low = np.asarray(catalog["reliability"]) < min_reliability
    return catalog[~low], catalog[low]


class ApOutputTestCase(lsst.utils.tests.TestCase):
    """The AP output schema on the ci repository, scored by pipetask's
    executor, against FilterDiaSourceReliabilityTask's contract.
    """

    @classmethod
    def setUpClass(cls):
        cls.root, cls.package = ci_model()
        ap = {**CPU, "outputSchema": "ap", "classificationsStorageClass": "ArrowAstropy"}
        run_pipeline(cls.root, "ComputeReliability.yaml", [SIM_COLLECTION, MODEL], "apc/package", SCORE_WHERE,
                     {"computeReliability": CPU})
        run_pipeline(cls.root, "ComputeReliability.yaml", [SIM_COLLECTION, MODEL], "apc/ap", SCORE_WHERE,
                     {"computeReliability": ap})
        cls.butler = Butler.from_config(cls.root, collections=[SIM_COLLECTION, MODEL])
        cls.refs = cls.butler.query_datasets("dia_source_reliability", collections="apc/ap")

    def get(self, name, ref, collection=None):
        return self.butler.get(name, ref.dataId, collections=[collection] if collection else None)

    def test_short_version(self):
        digest = hashlib.sha256(self.package.weights_bytes).hexdigest()
        self.assertEqual(self.package.short_version, digest[:7])
        self.assertTrue(self.package.version.endswith("-" + digest[:12]))
        metadata = self.butler.get("computeReliability_metadata", self.refs[0].dataId,
                                   collections="apc/ap")["computeReliability"]
        self.assertEqual(metadata["modelVersion"], self.package.version)
        self.assertTrue(metadata["modelVersion"].split("-")[-1].startswith(self.package.short_version))
        # Not stored: TaskMetadata's JSON reads an all-digit short version back as a number.
        self.assertNotIn("modelShortVersion", metadata)

    def test_ap_output_meets_the_filter_contract(self):
        n = 0
        for ref in self.refs:
            scores = self.butler.get(ref)
            sources = self.get("dia_source_unstandardized", ref)
            package = self.get("dia_source_reliability", ref, "apc/package")
            self.assertEqual(scores.colnames, list(AP_RELIABILITY_COLUMNS))
            self.assertEqual(package.colnames, list(RELIABILITY_COLUMNS))
            np.testing.assert_array_equal(scores["id"], sources["id"])  # row by row
            self.assertEqual(scores["score"].dtype, np.float32)
            self.assertTrue(all(str(v) == self.package.short_version for v in scores["version"]))
            # The same scores as the package's schema: only the schema differs.
            np.testing.assert_array_equal(scores["score"], package["reliability"])
            high, low = ap_association_filter(sources, scores)
            ours_high = self.get("dia_source_high_reliability", ref, "apc/ap")
            ours_low = self.get("dia_source_low_reliability", ref, "apc/ap")
            for theirs, ours in ((high, ours_high), (low, ours_low)):
                np.testing.assert_array_equal(ours["id"], theirs["id"])
                np.testing.assert_array_equal(ours["reliability"], theirs["reliability"])
                self.assertEqual(list(ours["reliabilityVersion"]), list(theirs["reliabilityVersion"]))
            n += len(scores)
        self.assertGreater(n, 10)
        # An empty catalog keeps the schema: ComputeReliabilityBadInputsTestCase.test_empty_catalog.

    def test_checker_refuses_what_ap_association_refuses(self):
        """The replica of the filter is a real check: reordered ids and long
        versions fail it, and the package's filter refuses them too.
        """
        ref = max(self.refs, key=lambda r: len(self.butler.get(r)))
        scores, sources = self.butler.get(ref), self.get("dia_source_unstandardized", ref)
        self.assertGreater(len(scores), 2)  # one row fewer must not broadcast
        reordered = scores[::-1]
        with self.assertRaisesRegex(ValueError, "Reliability ids do not match"):
            ap_association_filter(sources, reordered)
        with self.assertRaisesRegex(InvalidCatalogError, "differ from the .* row by row"):
            FilterReliabilityTask().run(diaSources=sources, classifications=reordered)
        with self.assertRaises(ValueError):  # a catalog of another length
            ap_association_filter(sources, scores[:-1])
        with self.assertRaisesRegex(InvalidCatalogError, "row by row"):
            FilterReliabilityTask().run(diaSources=sources, classifications=scores[:-1])
        long = Table(scores, copy=True)
        long["version"] = np.array(["rbcnn-" + self.package.short_version] * len(long))
        with self.assertRaisesRegex(ValueError, "too large for field"):
            ap_association_filter(sources, long)
        with self.assertRaisesRegex(InvalidCatalogError, "longer than the 7 characters"):
            FilterReliabilityTask().run(diaSources=sources, classifications=long)
        with self.assertRaisesRegex(ValueError, "longer than 7"):
            make_ap_reliability_catalog(np.arange(2), np.zeros(2), self.package.version, use_afw=False)

    def test_astropy_form(self):
        table = make_ap_reliability_catalog(np.array([3, 1, 2]), np.array([0.1, 0.9, 0.5]), "abcdef0",
                                            model_version="rbcnn-abcdef012345", use_afw=False)
        self.assertEqual(table.colnames, list(AP_RELIABILITY_COLUMNS))
        self.assertEqual((table["id"].dtype, table["score"].dtype, table["version"].dtype),
                         (np.dtype(np.int64), np.dtype(np.float32), np.dtype("<U7")))
        np.testing.assert_array_equal(table["id"], [3, 1, 2])
        self.assertEqual(table.meta["modelVersion"], "rbcnn-abcdef012345")

    @unittest.skipUnless(afw_table() is not None, "lsst.afw is not importable (checked in a full stack)")
    def test_afw_form(self):  # pragma: no cover - needs the full stack
        catalog = make_ap_reliability_catalog(np.array([3, 1, 2]), np.array([0.1, 0.9, 0.5]), "abcdef0")
        self.assertEqual(type(catalog).__name__, "BaseCatalog")
        schema = catalog.schema
        self.assertEqual([schema.find(name).field.getTypeString() for name in AP_RELIABILITY_COLUMNS],
                         ["L", "F", "String"])
        self.assertEqual(schema.find("version").field.getSize(), 7)
        np.testing.assert_array_equal(catalog["id"], [3, 1, 2])
        self.assertEqual([record["version"] for record in catalog], ["abcdef0"] * 3)
        self.assertEqual(catalog.asAstropy(copy=True).colnames, list(AP_RELIABILITY_COLUMNS))
        if importlib.util.find_spec("lsst.ap.association") is None:
            return
        import lsst.afw.table as afwTable
        from lsst.ap.association import FilterDiaSourceReliabilityTask

        schema = afwTable.SourceTable.makeMinimalSchema()
        schema.addField("reliability", type="F", doc="Reliability score of the DiaSource")
        schema.addField("reliabilityVersion", type=str, size=7, doc="Version of the reliability model")
        sources = afwTable.SourceCatalog(schema)
        for i in (3, 1, 2):
            sources.addNew().setId(i)
        result = FilterDiaSourceReliabilityTask().run(sources, catalog)
        self.assertEqual(len(result.filteredDiaSources) + len(result.rejectedDiaSources), 3)

    def test_configuration(self):
        """The AP configuration file sets the real storage classes; the
        package schema cannot be written as an afw Catalog.
        """
        config = ComputeReliabilityConfig()
        config.load(AP_CONFIG)
        connections = ComputeReliabilityConnections(config=config)
        self.assertEqual({name: getattr(connections, name).storageClass for name in
                          ("science", "template", "difference", "diaSources", "classifications")},
                         {"science": "ExposureF", "template": "ExposureF", "difference": "ExposureF",
                          "diaSources": "AstropyTable", "classifications": "Catalog"})
        self.assertEqual((config.idColumn, config.xColumn, config.yColumn),
                         ("id", "slot_Centroid_x", "slot_Centroid_y"))
        config.outputSchema = "package"
        with self.assertRaises(pexConfig.FieldValidationError):
            config.validate()
        filter_config = FilterReliabilityConfig()
        filter_config.diaSourcesStorageClass = "SourceCatalog"
        filter_config.classificationsStorageClass = "Catalog"
        filter_connections = FilterReliabilityConnections(config=filter_config)
        self.assertEqual((filter_connections.diaSources.storageClass,
                          filter_connections.classifications.storageClass), ("SourceCatalog", "Catalog"))

    @unittest.skipIf(afw_table() is not None, "lsst.afw is importable")
    def test_catalog_output_needs_afw(self):
        config = ComputeReliabilityConfig()
        config.load(AP_CONFIG)
        with self.assertRaisesRegex(RealBogusError, "'Catalog' is an afw catalog but lsst.afw is not "
                                                    "importable"):
            ComputeReliabilityTask(config=config)


class AfwLikeBox:
    """afw's Box2I interface, over an lsst.images box."""

    def __init__(self, bbox, shift=0):
        self.x0, self.y0 = int(bbox.x.start) + shift, int(bbox.y.start)
        self.width, self.height = int(bbox.x.stop - bbox.x.start), int(bbox.y.stop - bbox.y.start)

    def getMinX(self):
        return self.x0

    def getMinY(self):
        return self.y0

    def getWidth(self):
        return self.width

    def getHeight(self):
        return self.height

    def __str__(self):
        x1, y1 = self.x0 + self.width - 1, self.y0 + self.height - 1
        return f"(minimum=({self.x0}, {self.y0}), maximum=({x1}, {y1}))"


class AfwLikePlane:
    def __init__(self, array):
        self.array = array


class AfwLikeMask(AfwLikePlane):
    """afw's Mask: one int32 word per pixel, a bit per named plane."""

    def __init__(self, mask):
        self.planes = {name: bit for bit, name in enumerate(mask.schema.names)}
        array = np.zeros(mask.array.shape[:2], dtype=np.int32)
        for name, bit in self.planes.items():
            array |= np.where(mask.get(name), np.int32(1 << bit), np.int32(0))
        super().__init__(array)

    def getMaskPlaneDict(self):
        return dict(self.planes)

    def getPlaneBitMask(self, names):
        return int(np.bitwise_or.reduce([1 << self.planes[name] for name in names]))


class AfwLikeWcs:
    """afw's SkyWcs array interface (ICRS radians), over an lsst.images
    projection; ``shift`` moves the sky ``shift`` pixels in x.
    """

    def __init__(self, projection, shift=0.0):
        self.transform, self.shift = projection.pixel_to_sky_transform, shift

    def pixelToSkyArray(self, x, y, degrees=False):
        sky = self.transform.apply_forward(x=np.asarray(x) + self.shift, y=np.asarray(y))
        return np.asarray(sky.x) % (2 * np.pi), np.asarray(sky.y)

    def skyToPixelArray(self, ra, dec, degrees=False):
        pixels = self.transform.apply_inverse(x=np.asarray(ra), y=np.asarray(dec))
        return np.asarray(pixels.x) - self.shift, np.asarray(pixels.y)


class AfwLikeExposure:
    """The afw Exposure interface the cutout code and computeReliability use,
    holding an lsst.images image's pixels (afw is not installable here).
    Everything the adapter does with it, it does with a real Exposure; the
    tests compare its results with those of the lsst.images path.
    """

    def __init__(self, image, box_shift=0, wcs_shift=0.0, band=None, instrument=""):
        self.masked = type("MaskedImage", (), {})()
        self.masked.getImage = lambda: AfwLikePlane(image.image.array)
        self.masked.getVariance = lambda: AfwLikePlane(image.variance.array)
        mask = AfwLikeMask(image.mask)
        self.masked.getMask = lambda: mask
        self.box = AfwLikeBox(image.bbox, box_shift)
        self.wcs = AfwLikeWcs(image.sky_projection, wcs_shift)
        self.band, self.instrument = band, instrument

    def getMaskedImage(self):
        return self.masked

    def getBBox(self):
        return self.box

    def getWcs(self):
        return self.wcs

    def getFilter(self):
        if self.band is None:
            return None
        return type("FilterLabel", (), {"bandLabel": self.band, "hasBandLabel": lambda label: True})()

    def getInfo(self):
        visit_info = type("VisitInfo", (), {"getInstrumentLabel": lambda info: self.instrument})()
        return type("ExposureInfo", (), {"hasVisitInfo": lambda info: True,
                                         "getVisitInfo": lambda info: visit_info})()


class AfwLikeSourceCatalog:
    """What computeReliability needs of an afw SourceCatalog: asAstropy."""

    def __init__(self, table):
        self.table = table

    def asAstropy(self, copy=False):
        return Table(self.table, copy=copy)


class AfwExposureAdapterTestCase(lsst.utils.tests.TestCase):
    """The adapter from afw Exposures, on duck-typed afw-like images."""

    @classmethod
    def setUpClass(cls):
        cls.root, cls.package = ci_model()
        butler = Butler.from_config(cls.root, collections=SIM_COLLECTION)
        refs = butler.query_datasets("dia_source_unstandardized", where=TEST_WHERE)
        cls.ref = max(refs, key=lambda r: len(butler.get(r)))
        cls.butler = butler

    def images(self):
        images = {name: self.butler.get(dataset, self.ref.dataId) for name, dataset in IMAGES.items()}
        # A NO_DATA patch on the template at the first source, so that the mask bits by name count.
        sources = self.butler.get("dia_source_unstandardized", self.ref.dataId)
        x, y = int(round(sources["slot_Centroid_x"][0])), int(round(sources["slot_Centroid_y"][0]))
        region = np.zeros(images["template"].image.array.shape, dtype=bool)
        region[max(y - 3, 0):y + 4, max(x - 3, 0):x + 4] = True
        images["template"].mask.set("NO_DATA", region)
        return images, sources

    def afw_like(self, images, **kwargs):
        science = images["science"]
        return {name: AfwLikeExposure(image, band=science.band if name == "science" else None,
                                      instrument=science.obs_info.instrument, **kwargs.get(name, {}))
                for name, image in images.items()}

    def cut(self, images, sources):
        x, y = np.asarray(sources["slot_Centroid_x"]), np.asarray(sources["slot_Centroid_y"])
        return extract_triplets_from_images(images["template"], images["science"], images["difference"], x, y,
                                            CutoutConfig())

    def test_same_cutouts_as_lsst_images(self):
        images, sources = self.images()
        reference = self.cut(images, sources)
        self.assertTrue(reference.noData[0])
        for mixed in (False, True):
            with self.subTest(mixed=mixed):
                afw = self.afw_like(images)
                if mixed:
                    afw = {**images, "template": afw["template"]}
                got = self.cut(afw, sources)
                np.testing.assert_array_equal(got.cutouts, reference.cutouts)
                for name, values in reference.flag_columns().items():
                    np.testing.assert_array_equal(got.flag_columns()[name], values)

    def test_grid_checks(self):
        images, sources = self.images()
        with self.assertRaisesRegex(ImageMismatchError, r"difference image covers \(minimum=\(5, 0\)"):
            self.cut(self.afw_like(images, difference={"box_shift": 5}), sources)
        with self.assertRaisesRegex(ImageMismatchError, "template image's WCS .* 2 px") as cm:
            self.cut(self.afw_like(images, template={"wcs_shift": 2.0}), sources)
        self.assertAlmostEqual(cm.exception.metadata["wcsOffsetPixels"], 2.0, delta=0.01)
        self.cut(self.afw_like(images, template={"wcs_shift": 0.01}), sources)

    def test_task_scores_afw_inputs(self):
        images, sources = self.images()
        config = ComputeReliabilityConfig()
        for key, value in CPU.items():
            setattr(config, key, value)
        task = ComputeReliabilityTask(config=config)
        reference = task.run(**images, diaSources=sources, model=self.package).classifications
        got = task.run(**self.afw_like(images), diaSources=AfwLikeSourceCatalog(sources),
                       model=self.package).classifications
        self.assertEqual(got.colnames, list(RELIABILITY_COLUMNS))
        for name in RELIABILITY_COLUMNS:
            np.testing.assert_array_equal(got[name], reference[name])
        # The band and instrument come from the Exposure's filter label and visit info.
        training = {**self.package.metadata.training, "bands": ["g"]}
        other = ModelPackage(self.package.metadata.model_copy(update={"training": training}),
                             self.package.weights_bytes)
        config.strictModelMatch = True
        task = ComputeReliabilityTask(config=config)
        with self.assertRaisesRegex(ModelPackageError, "trained on bands g but is scoring bands r"):
            task.run(**self.afw_like(images), diaSources=sources, model=other)


def setup_module(module):
    lsst.utils.tests.init()


if __name__ == "__main__":
    lsst.utils.tests.init()
    unittest.main()
