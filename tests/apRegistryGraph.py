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

"""Child process of test_apCompatibility: build a quantum graph of
``computeReliability`` and ap_association's ``filterDiaSourcePostReliability``
(a stand-in with the real connections) against a repository whose registry
holds the AP dataset types with their real storage classes.

Usage: ``python apRegistryGraph.py SOURCE_REPO NEW_REPO PIPELINE [CONFIG_OVERRIDES_JSON]``.
The new repository is made as ``butler create`` makes one (no storage class
of this package in its butler.yaml), with the dimension records of a few
detector-visits of tract 4024 of ``SOURCE_REPO``; the input datasets are
registry entries only (no files: a graph needs none). ``rb_model`` is
stored for real, so ``$DAF_BUTLER_CONFIG_PATH`` must name the package's
``config/butler``. Prints one JSON line: the quanta per task, the storage
classes of the registry and of computeReliability's connections, or the
error that stopped the graph.

Run it in a child process: resolving ``AstropyTable`` from ``SourceCatalog``
imports ``lsst.afw.table``, which the parent may provide as a stand-in on
``PYTHONPATH``; a stand-in must not leak into the test process.

Not a test module (pytest collects test_*.py only).
"""

import json
import sys

AP_STORAGE_CLASSES = {
    "preliminary_visit_image": "ExposureF",
    "template_detector": "ExposureF",
    "difference_image": "ExposureF",
    "dia_source_unstandardized": "SourceCatalog",
    "dia_source_reliability": "Catalog",
    "dia_source_high_reliability": "SourceCatalog",
    "dia_source_low_reliability": "SourceCatalog",
}
"""The storage classes the AP pipeline registers (ap_pipe 99d3e6f)."""

INPUTS = ("preliminary_visit_image", "template_detector", "difference_image", "dia_source_unstandardized")
DETECTOR_VISITS = 3


def make_ap_repository(source_root: str, root: str):
    """Make the repository; return it and the data IDs of its inputs."""
    from lsst.daf.butler import Butler, DatasetType
    from lsst.meas.realbogus.models import put_model
    from lsst.meas.realbogus.tests import MODEL, SIM_COLLECTION, TEST_WHERE

    source = Butler.from_config(source_root, collections=SIM_COLLECTION)
    refs = sorted(source.query_datasets("dia_source_unstandardized", where=TEST_WHERE),
                  key=lambda r: (r.dataId["visit"], r.dataId["detector"]))[:DETECTOR_VISITS]
    Butler.makeRepo(root)
    butler = Butler.from_config(root, writeable=True)
    butler.transfer_dimension_records_from(source, refs)
    for name, storage_class in AP_STORAGE_CLASSES.items():
        butler.registry.registerDatasetType(
            DatasetType(name, ("instrument", "visit", "detector"), storage_class, universe=butler.dimensions))
    butler.registry.registerRun("ap/inputs")
    for name in INPUTS:
        butler.registry.insertDatasets(name, [ref.dataId for ref in refs], run="ap/inputs")
    put_model(butler, source.get("rb_model", collections=MODEL), "ap/model")
    return butler, [ref.dataId for ref in refs]


def main(source_root: str, root: str, pipeline: str, overrides: dict) -> dict:
    from lsst.pipe.base import Pipeline
    from lsst.pipe.base.all_dimensions_quantum_graph_builder import AllDimensionsQuantumGraphBuilder

    butler, data_ids = make_ap_repository(source_root, root)
    registered = {name: butler.get_dataset_type(name).storageClass_name for name in AP_STORAGE_CLASSES}
    result = {"registry": registered, "detectorVisits": len(data_ids)}
    p = Pipeline.from_uri(pipeline)
    for key, value in overrides.items():
        p.addConfigOverride("computeReliability", key, value)
    try:
        graph = p.to_graph(registry=butler.registry)
        task = graph.tasks["computeReliability"]
        edges = [*task.inputs.items(), *task.prerequisite_inputs.items(), *task.outputs.items()]
        result["connections"] = {name: edge.storage_class_name for name, edge in edges}
        builder = AllDimensionsQuantumGraphBuilder(graph, butler, input_collections=["ap/inputs", "ap/model"],
                                                   output_run="ap/out")
        qg = builder.build(attach_datastore_records=False)
        result["quanta"] = {label: len(qg.get_task_quanta(label)) for label in graph.tasks}
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3],
                          json.loads(sys.argv[4]) if len(sys.argv) > 4 else {})))
