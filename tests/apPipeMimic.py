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

"""A mimic of ap_pipe's pipelines, for test_apCompatibility (ap_pipe,
ap_association, ip_diffim and analysis_tools are not installable here).

`write_ap_pipe` writes an ``$AP_PIPE_DIR``-like tree (``pipelines/_ingredients/
ApPipe.yaml``, ``_ingredients/ApPipeWithIsrTaskLSST.yaml``,
``LSSTCam/ApPipe.yaml``, ``LSSTCam-imSim/ApPipe.yaml``) and an
``$ANALYSIS_TOOLS_DIR``-like one (``pipelines/apDetectorVisitQualityCore.yaml``)
with the structure of ap_pipe 99d3e6f: the same imports, task labels,
subsets (preload, prompt, afterburner, apPipe, apPipeSingleFrame), contracts
(verbatim), and, for computeReliability and the tasks just upstream and
downstream of it (detectAndMeasureDiaSource, filterDiaSource,
filterDiaSourcePostReliability, standardizeDiaSource, and the producers of
its images), the config ApPipe.yaml sets and the connections (dataset names,
storage classes, dimensions) of the real tasks. The tasks are stand-ins of
this module with those connections and the config fields the contracts
read; they never run. Departures: the ``instrument:`` lines are left out
(lsst.obs.lsst is not importable), as are config lines that need the real
tasks' subtask configs (``idGenerator.release_id``).

Not a test module (pytest collects test_*.py only).
"""

from __future__ import annotations

import os
import textwrap
import types
from collections.abc import Mapping, Sequence
from typing import Any

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT

VD = ("instrument", "visit", "detector")
ED = ("instrument", "exposure", "detector")
GD = ("instrument", "group", "detector")


def _stand_in(
    name: str,
    connections: Sequence[tuple[str, type, str, str, Sequence[str], Mapping[str, Any]]] = (),
    fields: Mapping[str, pexConfig.Field] | None = None,
    dimensions: Sequence[str] = (),
    templates: Mapping[str, str] | None = None,
) -> type[pipeBase.PipelineTask]:
    """Make a stand-in PipelineTask class named ``name`` in this module."""

    def connections_body(ns: dict) -> None:
        ns["__module__"] = __name__
        for attr, kind, dataset, storage_class, dims, extra in connections:
            kwargs = dict(doc=f"{name}.{attr}", name=dataset, storageClass=storage_class, **extra)
            if kind not in (cT.InitInput, cT.InitOutput):
                kwargs["dimensions"] = dims
            ns[attr] = kind(**kwargs)

    class_kwargs: dict[str, Any] = {"dimensions": tuple(dimensions)}
    if templates:
        class_kwargs["defaultTemplates"] = dict(templates)
    connections_class = types.new_class(f"{name}Connections", (pipeBase.PipelineTaskConnections,),
                                        class_kwargs, connections_body)

    def config_body(ns: dict) -> None:
        ns["__module__"] = __name__
        ns.update(fields or {})

    config_class = types.new_class(f"{name}Config", (pipeBase.PipelineTaskConfig,),
                                   {"pipelineConnections": connections_class}, config_body)
    task_class = type(name, (pipeBase.PipelineTask,),
                      {"__module__": __name__, "ConfigClass": config_class, "_DefaultName": name})
    for cls in (connections_class, config_class, task_class):
        cls.__qualname__ = cls.__name__
        globals()[cls.__name__] = cls
    return task_class


def _flag(default: bool = False) -> pexConfig.Field:
    return pexConfig.Field(dtype=bool, default=default, doc="stand-in")


def _text(default: str | None = None) -> pexConfig.Field:
    return pexConfig.Field(dtype=str, default=default, optional=True, doc="stand-in")


I, O, P, II, IO = cT.Input, cT.Output, cT.PrerequisiteInput, cT.InitInput, cT.InitOutput
NONE: dict[str, Any] = {}
COADD = {"coaddName": "deep", "fakesType": ""}

# The real tasks' connections (ap_pipe 99d3e6f, ip_diffim 3a2e29f, ap_association 9cbf784,
# meas_transiNet d42b450, pipe_tasks 5b638a4): dataset names as ApPipe.yaml configures them.
_stand_in("IsrTask", [("ccdExposure", I, "raw", "Exposure", ED, NONE),
                      ("outputExposure", O, "post_isr_image", "Exposure", ED, NONE)], dimensions=ED)
_stand_in("IsrTaskLSST", [("ccdExposure", I, "raw", "Exposure", ED, NONE),
                          ("outputExposure", O, "post_isr_image", "Exposure", ED, NONE)],
          {"doBrighterFatter": _flag(True), "doAmpOffset": _flag(True)}, dimensions=ED)
_stand_in("CalibrateImageTask",
          [("exposures", I, "post_isr_image", "ExposureF", ED, {"multiple": True}),
           ("exposure", O, "preliminary_visit_image", "ExposureF", VD, NONE),
           ("stars_footprints", O, "single_visit_star_footprints", "SourceCatalog", VD, NONE)],
          {"run_sattle": _flag()}, dimensions=VD)
_stand_in("GetTemplateTask",
          [("coaddExposures", I, "template_coadd", "ExposureF", ("tract", "patch", "skymap", "band"),
            {"multiple": True, "deferLoad": True}),
           ("template", O, "template_detector", "ExposureF", VD, NONE)],
          dimensions=VD, templates=COADD)
_stand_in("AlardLuptonSubtractTask",
          [("template", I, "template_detector", "ExposureF", VD, NONE),
           ("science", I, "preliminary_visit_image", "ExposureF", VD, NONE),
           ("sources", I, "single_visit_star_footprints", "SourceCatalog", VD, NONE),
           ("difference", O, "difference_image_predetection", "ExposureF", VD, NONE),
           ("matchedTemplate", O, "template_matched", "ExposureF", VD, NONE)],
          dimensions=VD, templates=COADD)
_stand_in("DetectAndMeasureTask",
          [("science", I, "preliminary_visit_image", "ExposureF", VD, NONE),
           ("matchedTemplate", I, "template_matched", "ExposureF", VD, NONE),
           ("difference", I, "difference_image_predetection", "ExposureF", VD, NONE),
           ("kernelSources", I, "difference_kernel_sources", "SourceCatalog", VD, NONE),
           ("outputSchema", IO, "dia_source_schema", "SourceCatalog", (), NONE),
           ("diaSources", O, "dia_source_unfiltered", "SourceCatalog", VD, NONE),
           ("subtractedMeasuredExposure", O, "difference_image", "ExposureF", VD, NONE),
           ("maskedStreaks", O, "goodSeeingDiff_streaks", "ArrowNumpyDict", VD, NONE)],
          {"doSkySources": _flag(), "run_sattle": _flag()}, dimensions=VD, templates=COADD)
_stand_in("FilterDiaSourceCatalogTask",
          [("diaSourceCat", I, "dia_source_unfiltered", "SourceCatalog", VD, NONE),
           ("diffImVisitInfo", I, "difference_image.visitInfo", "VisitInfo", VD, NONE),
           ("filteredDiaSourceCat", O, "dia_source_unstandardized", "SourceCatalog", VD, NONE),
           ("rejectedDiaSources", O, "rejected_dia_source", "SourceCatalog", VD, NONE),
           ("longTrailedSources", O, "long_trailed_source_detector", "ArrowAstropy", VD, NONE)],
          {"doRemoveSkySources": _flag()}, dimensions=VD, templates=COADD)
_stand_in("RBTransiNetTask",
          [("template", I, "template_detector", "ExposureF", VD, NONE),
           ("science", I, "preliminary_visit_image", "ExposureF", VD, NONE),
           ("difference", I, "difference_image", "ExposureF", VD, NONE),
           ("diaSources", I, "dia_source_unstandardized", "SourceCatalog", VD, NONE),
           ("pretrainedModel", P, "pretrainedModelPackage", "NNModelPackagePayload", (), NONE),
           ("classifications", O, "dia_source_reliability", "Catalog", VD, NONE)],
          {"modelPackageStorageMode": pexConfig.ChoiceField(
              dtype=str, default="neighbor", doc="stand-in",
              allowed={"local": "", "neighbor": "", "butler": ""}),
           "modelPackageName": _text()},
          dimensions=VD, templates=COADD)
_stand_in("FilterDiaSourceReliabilityTask",
          [("diaSourceCat", I, "dia_source_unstandardized", "SourceCatalog", VD, NONE),
           ("reliability", I, "dia_source_reliability", "Catalog", VD, NONE),
           ("filteredDiaSources", O, "dia_source_high_reliability", "SourceCatalog", VD, NONE),
           ("rejectedDiaSources", O, "dia_source_low_reliability", "SourceCatalog", VD, NONE)],
          {"minReliability": pexConfig.Field(dtype=float, default=0.0, doc="stand-in")},
          dimensions=VD, templates=COADD)
_stand_in("TransformDiaSourceCatalogTask",
          [("diaSourceSchema", II, "dia_source_schema", "SourceCatalog", (), NONE),
           ("diaSourceCat", I, "dia_source_high_reliability", "SourceCatalog", VD, NONE),
           ("diffIm", I, "difference_image", "ExposureF", VD, NONE),
           ("diaSourceTable", O, "dia_source_detector", "DataFrame", VD, NONE)],
          {"doRemoveSkySources": _flag(), "doUseSchema": _flag(), "schemaFile": _text()},
          dimensions=VD, templates=COADD)
_stand_in("LoadDiaCatalogsTask",
          [("regionTime", I, "regionTimeInfo", "RegionTimeInfo", GD, NONE),
           ("diaObjects", O, "preloaded_dia_object", "DataFrame", GD, NONE),
           ("diaSources", O, "preloaded_dia_source", "DataFrame", GD, NONE),
           ("diaForcedSources", O, "preloaded_dia_forced_source", "DataFrame", GD, NONE)],
          {"apdb_config_url": _text()}, dimensions=GD)
_stand_in("GetRegionTimeFromVisitTask",
          [("dummy_visit", I, "single_visit_star_footprints", "SourceCatalog", VD, NONE),
           ("output", O, "regionTimeInfo", "RegionTimeInfo", GD, NONE)],
          dimensions=("instrument", "group", "detector", "visit"))
_stand_in("MPSkyEphemerisQueryTask",
          [("predictedRegionTime", I, "regionTimeInfo", "RegionTimeInfo", GD, NONE),
           ("ssObjects", O, "preloaded_ss_object", "DataFrame", GD, NONE)],
          dimensions=GD)
_stand_in("DiaPipelineTask",
          [("diaSourceTable", I, "dia_source_detector", "DataFrame", VD, NONE),
           ("diffIm", I, "difference_image", "ExposureF", VD, NONE),
           ("exposure", I, "preliminary_visit_image", "ExposureF", VD, NONE),
           ("template", I, "template_detector", "ExposureF", VD, NONE),
           ("preloadedDiaObjects", I, "preloaded_dia_object", "DataFrame", GD, NONE),
           ("preloadedDiaSources", I, "preloaded_dia_source", "DataFrame", GD, NONE),
           ("preloadedDiaForcedSources", I, "preloaded_dia_forced_source", "DataFrame", GD, NONE),
           ("solarSystemObjectTable", I, "preloaded_ss_object", "DataFrame", GD, NONE),
           ("associatedDiaSources", O, "dia_source_apdb", "DataFrame", VD, NONE)],
          {"apdb_config_url": _text(), "doSolarSystemAssociation": _flag(True)},
          dimensions=("instrument", "visit", "group", "detector"), templates=COADD)
_stand_in("SpatiallySampledMetricsTask",
          [("science", I, "preliminary_visit_image", "ExposureF", VD, NONE),
           ("template", I, "template_detector", "ExposureF", VD, NONE),
           ("difference", I, "difference_image", "ExposureF", VD, NONE),
           ("diaSources", I, "dia_source_detector", "DataFrame", VD, NONE),
           ("spatiallySampledMetrics", O, "spatially_sampled_metrics", "ArrowAstropy", VD, NONE)],
          dimensions=VD, templates=COADD)
_stand_in("ConsolidateSourceTableTask",
          [("inputCatalogs", I, "dia_source_detector", "DataFrame", VD, {"multiple": True}),
           ("outputCatalog", O, "dia_source_visit", "DataFrame", ("instrument", "visit"), NONE)],
          dimensions=("instrument", "visit"))
_stand_in("AnalysisPipelineTask", [("data", I, "analysis_input", "ArrowAstropy", VD, NONE)], dimensions=VD)
_stand_in("StandInTask")

_TASK_CLASSES = {
    "isr": "IsrTask", "calibrateImage": "CalibrateImageTask", "buildTemplate": "GetTemplateTask",
    "subtractImages": "AlardLuptonSubtractTask", "detectAndMeasureDiaSource": "DetectAndMeasureTask",
    "filterDiaSource": "FilterDiaSourceCatalogTask", "computeReliability": "RBTransiNetTask",
    "filterDiaSourcePostReliability": "FilterDiaSourceReliabilityTask",
    "standardizeDiaSource": "TransformDiaSourceCatalogTask", "loadDiaCatalogs": "LoadDiaCatalogsTask",
    "getRegionTimeFromVisit": "GetRegionTimeFromVisitTask", "mpSkyEphemerisQuery": "MPSkyEphemerisQueryTask",
    "associateApdb": "DiaPipelineTask", "makeSampledImageSubtractionMetrics": "SpatiallySampledMetricsTask",
    "consolidateDiaSourceTable": "ConsolidateSourceTableTask", "consolidateVisitSummary": "StandInTask",
    "singleFrameDetectAndMeasure": "StandInTask", "standardizePromptSource": "StandInTask",
    "consolidatePromptSource": "StandInTask", "splitPromptSource": "StandInTask",
}
"""ApPipe.yaml's own labels and the stand-in of each."""

_ANALYSIS_INPUTS = {
    "analyzeAssociatedDiaSourceTable": "dia_source_apdb",
    "analyzeTrailedDiaSourceTable": "long_trailed_source_detector",
    "analyzeImageDifferenceMetrics": "difference_image_metrics_input",
    "analyzeDiaSourceDetectionMetrics": "dia_source_detection_metrics_input",
    "analyzeLoadDiaCatalogsMetrics": "load_dia_catalogs_metrics_input",
    "analyzeDiaSourceAssociationMetrics": "dia_source_association_metrics_input",
    "analyzeAssociateDiaSourceTiming": "associate_dia_source_timing_input",
    "analyzeSampledImageSubtractionMetrics": "spatially_sampled_metrics",
    "analyzePreliminarySummaryStats": "preliminary_visit_image.summaryStats",
    "analyzeVisitSampledImageSubtractionMetrics": "visit_sampled_metrics_input",
}
"""The analysis_tools labels ApPipe.yaml imports, and what each reads."""

SUBSETS = {
    "apPipeSingleFrame": ["isr", "calibrateImage", "analyzePreliminarySummaryStats"],
    "apPipe": ["loadDiaCatalogs", "isr", "calibrateImage", "buildTemplate", "subtractImages",
               "detectAndMeasureDiaSource", "filterDiaSource", "computeReliability",
               "filterDiaSourcePostReliability", "standardizeDiaSource", "getRegionTimeFromVisit",
               "mpSkyEphemerisQuery", "associateApdb", "analyzeAssociatedDiaSourceTable",
               "analyzeTrailedDiaSourceTable", "makeSampledImageSubtractionMetrics",
               "analyzeImageDifferenceMetrics", "analyzeDiaSourceDetectionMetrics",
               "analyzeLoadDiaCatalogsMetrics", "analyzeDiaSourceAssociationMetrics",
               "analyzeAssociateDiaSourceTiming", "analyzeSampledImageSubtractionMetrics",
               "analyzePreliminarySummaryStats", "consolidateVisitSummary", "consolidateDiaSourceTable",
               "analyzeVisitSampledImageSubtractionMetrics", "singleFrameDetectAndMeasure",
               "standardizePromptSource", "consolidatePromptSource", "splitPromptSource"],
    "preload": ["loadDiaCatalogs", "analyzeLoadDiaCatalogsMetrics", "mpSkyEphemerisQuery"],
    "prompt": ["isr", "calibrateImage", "buildTemplate", "subtractImages", "detectAndMeasureDiaSource",
               "filterDiaSource", "computeReliability", "filterDiaSourcePostReliability",
               "standardizeDiaSource", "associateApdb", "analyzeAssociatedDiaSourceTable",
               "analyzeTrailedDiaSourceTable", "analyzeImageDifferenceMetrics",
               "analyzeDiaSourceDetectionMetrics", "analyzeDiaSourceAssociationMetrics",
               "analyzeAssociateDiaSourceTiming", "analyzePreliminarySummaryStats"],
    "afterburner": ["consolidateVisitSummary", "consolidateDiaSourceTable",
                    "makeSampledImageSubtractionMetrics", "analyzeSampledImageSubtractionMetrics",
                    "analyzeVisitSampledImageSubtractionMetrics", "singleFrameDetectAndMeasure",
                    "standardizePromptSource", "consolidatePromptSource", "splitPromptSource"],
}
"""ApPipe.yaml's subsets, verbatim (RFC-997: preload, prompt, afterburner)."""


def _c(a: str, conn_a: str, b: str, conn_b: str) -> str:
    return (f"{a}.connections.ConnectionsClass(config={a}).{conn_a}.name == "
            f"{b}.connections.ConnectionsClass(config={b}).{conn_b}.name")


CONTRACTS: list[tuple[str, str | None]] = [
    ("detectAndMeasureDiaSource.doSkySources == filterDiaSource.doRemoveSkySources", None),
    ("loadDiaCatalogs.apdb_config_url == associateApdb.apdb_config_url", None),
    ("calibrateImage.run_sattle == detectAndMeasureDiaSource.run_sattle", None),
    (_c("loadDiaCatalogs", "diaObjects", "associateApdb", "preloadedDiaObjects"),
     "loadDiaCatalogs.diaObjects != associateApdb.preloadedDiaObjects"),
    (_c("loadDiaCatalogs", "diaSources", "associateApdb", "preloadedDiaSources"),
     "loadDiaCatalogs.diaSources != associateApdb.preloadedDiaSources"),
    (_c("loadDiaCatalogs", "diaForcedSources", "associateApdb", "preloadedDiaForcedSources"),
     "loadDiaCatalogs.diaForcedSources != associateApdb.preloadedDiaForcedSources"),
    (_c("buildTemplate", "template", "subtractImages", "template"),
     "buildTemplate.template != subtractImages.template"),
    (_c("buildTemplate", "template", "makeSampledImageSubtractionMetrics", "template"),
     "buildTemplate.template != makeSampledImageSubtractionMetrics.template"),
    (_c("subtractImages", "difference", "detectAndMeasureDiaSource", "difference"),
     "subtractImages.difference != detectAndMeasureDiaSource.difference"),
    (_c("subtractImages", "science", "detectAndMeasureDiaSource", "science"),
     "subtractImages.science != detectAndMeasureDiaSource.science"),
    (_c("subtractImages", "template", "associateApdb", "template"),
     "subtractImages.template != associateApdb.template"),
    (_c("subtractImages", "science", "associateApdb", "exposure"),
     "subtractImages.science != associateApdb.exposure"),
    (_c("detectAndMeasureDiaSource", "diaSources", "filterDiaSource", "diaSourceCat"),
     "detectAndMeasureDiaSource.diaSources != filterDiaSource.diaSourceCat"),
    (_c("detectAndMeasureDiaSource", "subtractedMeasuredExposure", "computeReliability", "difference"),
     "detectAndMeasureDiaSource.subtractedMeasuredExposure != computeReliability.difference"),
    (_c("detectAndMeasureDiaSource", "subtractedMeasuredExposure", "standardizeDiaSource", "diffIm"),
     "detectAndMeasureDiaSource.subtractedMeasuredExposure != standardizeDiaSource.diffIm"),
    (_c("detectAndMeasureDiaSource", "subtractedMeasuredExposure", "associateApdb", "diffIm"),
     "detectAndMeasureDiaSource.subtractedMeasuredExposure != associateApdb.diffIm"),
    (_c("detectAndMeasureDiaSource", "subtractedMeasuredExposure", "makeSampledImageSubtractionMetrics",
        "difference"),
     "detectAndMeasureDiaSource.subtractedMeasuredExposure != makeSampledImageSubtractionMetrics.difference"),
    (_c("filterDiaSource", "filteredDiaSourceCat", "computeReliability", "diaSources"),
     "filterDiaSource.filteredDiaSourceCat != computeReliability.diaSources"),
    (_c("filterDiaSource", "filteredDiaSourceCat", "filterDiaSourcePostReliability", "diaSourceCat"),
     "filterDiaSource.filteredDiaSourceCat != filterDiaSourcePostReliability.diaSourceCat"),
    (_c("standardizeDiaSource", "diaSourceTable", "makeSampledImageSubtractionMetrics", "diaSources"),
     "standardizeDiaSource.diaSourceTable != makeSampledImageSubtractionMetrics.diaSources"),
    (_c("filterDiaSource", "longTrailedSources", "analyzeTrailedDiaSourceTable", "data"),
     "filterDiaSource.longTrailedSources != analyzeTrailedDiaSourceTable.data"),
    (_c("computeReliability", "classifications", "filterDiaSourcePostReliability", "reliability"),
     "computeReliability.classifications != filterDiaSourcePostReliability.reliability"),
    (_c("standardizeDiaSource", "diaSourceTable", "associateApdb", "diaSourceTable"),
     "standardizeDiaSource.diaSourceTable != associateApdb.diaSourceTable"),
    (_c("getRegionTimeFromVisit", "output", "mpSkyEphemerisQuery", "predictedRegionTime"),
     "mpSkyEphemerisQuery.predictedRegionTime != getRegionTimeFromVisit.output"),
    ("(not associateApdb.doSolarSystemAssociation) or ("
     + _c("mpSkyEphemerisQuery", "ssObjects", "associateApdb", "solarSystemObjectTable") + ")",
     "mpSkyEphemerisQuery.ssObjects != associateApdb.solarSystemObjectTable"),
    (_c("associateApdb", "associatedDiaSources", "analyzeAssociatedDiaSourceTable", "data"),
     "associateApdb.associatedDiaSources != analyzeAssociatedDiaSourceTable.data"),
    (_c("makeSampledImageSubtractionMetrics", "spatiallySampledMetrics",
        "analyzeSampledImageSubtractionMetrics", "data"),
     "makeSampledImageSubtractionMetrics.spatiallySampledMetrics != "
     "analyzeSampledImageSubtractionMetrics.data"),
    (_c("consolidateDiaSourceTable", "inputCatalogs", "standardizeDiaSource", "diaSourceTable"),
     "consolidateDiaSourceTable.inputCatalogs != standardizeDiaSource.diaSourceTable"),
]
"""ApPipe.yaml's contracts (the same expressions)."""

INSTRUMENT_CONTRACTS: list[tuple[str, str]] = [
    (_c("calibrateImage", "exposure", "subtractImages", "science"),
     "calibrateImage.exposure != subtractImages.science"),
    (_c("calibrateImage", "stars_footprints", "subtractImages", "sources"),
     "calibrateImage.footprints_stars != subtractImages.sources"),
    (_c("calibrateImage", "exposure", "computeReliability", "science"),
     "calibrateImage.exposure != computeReliability.science"),
    (_c("calibrateImage", "exposure", "makeSampledImageSubtractionMetrics", "science"),
     "calibrateImage.exposure != makeSampledImageSubtractionMetrics.science"),
    ("calibrateImage.connections.ConnectionsClass(config=calibrateImage).exposure.name"
     " + \".summaryStats\" == analyzePreliminarySummaryStats.connections"
     ".ConnectionsClass(config=analyzePreliminarySummaryStats).data.name",
     "calibrateImage.exposure != analyzePreliminarySummaryStats.data"),
    (_c("calibrateImage", "stars_footprints", "getRegionTimeFromVisit", "dummy_visit"),
     "calibrateImage.stars_footprints != getRegionTimeFromVisit.dummy_visit"),
]
"""The contracts ap_pipe's LSSTCam and LSSTCam-imSim ApPipe.yaml add."""

# ApPipe.yaml's config of the tasks around computeReliability, verbatim but for
# idGenerator.release_id (a subtask config the stand-in lacks).
_TASK_CONFIG = {
    "detectAndMeasureDiaSource": {
        "connections.coaddName": "parameters.coaddName",
        "connections.science": "preliminary_visit_image",
        "connections.matchedTemplate": "template_matched",
        "connections.difference": "difference_image_predetection",
        "connections.kernelSources": "difference_kernel_sources",
        "connections.outputSchema": "dia_source_schema",
        "connections.diaSources": "dia_source_unfiltered",
        "connections.subtractedMeasuredExposure": "difference_image",
        "connections.maskedStreaks": "goodSeeingDiff_streaks",
        "doSkySources": True,
    },
    "filterDiaSource": {
        "connections.coaddName": "parameters.coaddName",
        "connections.diaSourceCat": "dia_source_unfiltered",
        "connections.filteredDiaSourceCat": "dia_source_unstandardized",
        "connections.rejectedDiaSources": "rejected_dia_source",
        "connections.diffImVisitInfo": "difference_image.visitInfo",
        "connections.longTrailedSources": "long_trailed_source_detector",
        "doRemoveSkySources": True,
    },
    "computeReliability": {
        "connections.coaddName": "parameters.coaddName",
        "connections.science": "preliminary_visit_image",
        "connections.template": "template_detector",
        "connections.difference": "difference_image",
        "connections.diaSources": "dia_source_unstandardized",
        "connections.classifications": "dia_source_reliability",
        "modelPackageStorageMode": "butler",
    },
    "filterDiaSourcePostReliability": {
        "connections.coaddName": "parameters.coaddName",
        "connections.diaSourceCat": "dia_source_unstandardized",
        "connections.reliability": "dia_source_reliability",
        "connections.filteredDiaSources": "dia_source_high_reliability",
        "connections.rejectedDiaSources": "dia_source_low_reliability",
        "minReliability": 0.5,
    },
    "standardizeDiaSource": {
        "connections.coaddName": "parameters.coaddName",
        "connections.diaSourceSchema": "dia_source_schema",
        "connections.diaSourceCat": "dia_source_high_reliability",
        "connections.diffIm": "difference_image",
        "connections.diaSourceTable": "dia_source_detector",
        "doRemoveSkySources": True,
        "doUseSchema": True,
        "schemaFile": "apdb.yaml",
    },
}


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _tasks_yaml(labels: Mapping[str, str], configs: Mapping[str, Mapping[str, Any]]) -> str:
    lines = ["tasks:"]
    for label, cls in labels.items():
        lines += [f"  {label}:", f"    class: {__name__}.{cls}"]
        if label in configs:
            lines.append("    config:")
            lines += [f"      {key}: {_yaml_value(value)}" for key, value in configs[label].items()]
    return "\n".join(lines) + "\n"


def _subsets_yaml() -> str:
    lines = ["subsets:"]
    for name, labels in SUBSETS.items():
        lines += [f"  {name}:", "    subset:"] + [f"      - {label}" for label in labels]
    return "\n".join(lines) + "\n"


def _contracts_yaml(contracts: Sequence[tuple[str, str | None]]) -> str:
    lines = ["contracts:"]
    for contract, msg in contracts:
        if msg is None:
            lines.append(f"  - {contract}")
        else:
            lines += [f"  - contract: {contract}", f"    msg: \"{msg}\""]
    return "\n".join(lines) + "\n"


def write_ap_pipe(root: str) -> dict[str, str]:
    """Write the mimic trees under ``root``.

    Returns
    -------
    environment : `dict` [`str`, `str`]
        ``AP_PIPE_DIR`` and ``ANALYSIS_TOOLS_DIR`` to set.
    """
    ap_pipe = os.path.join(root, "ap_pipe")
    analysis_tools = os.path.join(root, "analysis_tools")
    for folder in ("_ingredients", "LSSTCam", "LSSTCam-imSim"):
        os.makedirs(os.path.join(ap_pipe, "pipelines", folder), exist_ok=True)
    os.makedirs(os.path.join(analysis_tools, "pipelines"), exist_ok=True)
    analysis_configs = {label: {"connections.data": data} for label, data in _ANALYSIS_INPUTS.items()}
    files = {
        os.path.join(analysis_tools, "pipelines", "apDetectorVisitQualityCore.yaml"):
            "description: mimic of analysis_tools' AP detector-visit metrics\n"
            + _tasks_yaml({label: "AnalysisPipelineTask" for label in _ANALYSIS_INPUTS}, analysis_configs),
        os.path.join(ap_pipe, "pipelines", "_ingredients", "ApPipe.yaml"):
            "description: mimic of ap_pipe's End to end Alert Production pipeline\n"
            "imports:\n  - $ANALYSIS_TOOLS_DIR/pipelines/apDetectorVisitQualityCore.yaml\n"
            "parameters:\n  coaddName: goodSeeing\n  apdb_config:\n  release_id: 0\n"
            + _tasks_yaml(_TASK_CLASSES, _TASK_CONFIG) + _subsets_yaml() + _contracts_yaml(CONTRACTS),
        os.path.join(ap_pipe, "pipelines", "_ingredients", "ApPipeWithIsrTaskLSST.yaml"):
            "description: mimic of ap_pipe's AP pipeline with IsrTaskLSST\n"
            "imports:\n  - $AP_PIPE_DIR/pipelines/_ingredients/ApPipe.yaml\n"
            + _tasks_yaml({"isr": "IsrTaskLSST"},
                          {"isr": {"connections.outputExposure": "post_isr_image", "doBrighterFatter": False,
                                   "doAmpOffset": False}}),
        os.path.join(ap_pipe, "pipelines", "LSSTCam", "ApPipe.yaml"):
            "description: mimic of ap_pipe's LSSTCam AP pipeline (without its instrument line)\n"
            "imports:\n  - location: $AP_PIPE_DIR/pipelines/_ingredients/ApPipeWithIsrTaskLSST.yaml\n"
            + _contracts_yaml(INSTRUMENT_CONTRACTS),
        os.path.join(ap_pipe, "pipelines", "LSSTCam-imSim", "ApPipe.yaml"):
            "description: mimic of ap_pipe's ImSim AP pipeline (without its instrument line)\n"
            "imports:\n  - location: $AP_PIPE_DIR/pipelines/_ingredients/ApPipe.yaml\n"
            + _contracts_yaml(INSTRUMENT_CONTRACTS),
    }
    for path, text in files.items():
        with open(path, "w") as stream:
            stream.write(text)
    return {"AP_PIPE_DIR": ap_pipe, "ANALYSIS_TOOLS_DIR": analysis_tools}


TODAYS_RECIPE = textwrap.dedent("""\
    description: AP with meas_realbogus's reliability step (the recipe doc/ap_pipeline.rst gave before)
    imports:
      - location: $AP_PIPE_DIR/pipelines/_ingredients/ApPipe.yaml
        exclude: [computeReliability, filterDiaSourcePostReliability]
      - location: {fragment}
    """)
"""The import doc/ap_pipeline.rst documented before this package kept ap_pipe's
subsets: exclude ap_pipe's two steps and import a fragment defining them."""

TODAYS_FRAGMENT = textwrap.dedent("""\
    description: the fragment pipelines/_ingredients/RealBogus.yaml was before
    tasks:
      computeReliability:
        class: lsst.meas.realbogus.ComputeReliabilityTask
        config:
          device: cpu
      filterDiaSourcePostReliability:
        class: lsst.meas.realbogus.FilterReliabilityTask
        config:
          minReliability: 0.5
    """)
