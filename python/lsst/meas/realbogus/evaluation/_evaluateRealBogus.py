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

"""Judge a classifier on a tract: ``rb_metrics`` and ``rb_plot_*``."""

from __future__ import annotations

__all__ = ["EvaluateRealBogusConfig", "EvaluateRealBogusConnections", "EvaluateRealBogusTask"]

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
from lsst.utils.timer import timeMethod

from ..models._storageClass import STORAGE_CLASS
from ._evaluation import TractEvaluation, evaluate_detector_visits, plain
from ._gallery import outcome_gallery
from ._plots import make_plots
from ._provenance import package_commit
from ._repository import INPUT_DATASETS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lsst.daf.butler import DeferredDatasetHandle

    from ..models._modelPackage import ModelPackage

_PER_DETECTOR = ("instrument", "visit", "detector")


def _per_detector_input(connection: str, storage_class: str, doc: str) -> cT.Input:
    return cT.Input(doc=doc, name=INPUT_DATASETS[connection], storageClass=storage_class,
                    dimensions=_PER_DETECTOR, multiple=True, deferLoad=True)


class EvaluateRealBogusConnections(pipeBase.PipelineTaskConnections, dimensions=("skymap", "tract")):
    classifications = _per_detector_input("classifications", "ArrowAstropy", "Scores.")
    truth = _per_detector_input("truth", "ArrowAstropy", "Labels of the DIA sources.")
    diaSources = _per_detector_input("diaSources", "ArrowAstropy", "DIA sources (SNR).")
    template = _per_detector_input("template", "DifferenceImage", "Templates, for the gallery.")
    science = _per_detector_input("science", "VisitImage", "Science images, for the gallery.")
    difference = _per_detector_input("difference", "DifferenceImage", "Differences, for the gallery.")
    model = cT.PrerequisiteInput(
        doc="The model that made the scores (version, threshold, provenance).",
        name="rb_model",
        storageClass=STORAGE_CLASS,
        dimensions=(),
    )
    metrics = cT.Output(
        doc="Metrics per SNR cut, unweighted and re-weighted, per class, calibration.",
        name="rb_metrics",
        storageClass="StructuredDataDict",
        dimensions=("skymap", "tract"),
    )
    plot_precisionRecall = cT.Output(doc="Precision-recall.", name="rb_plot_precisionRecall",
                                     storageClass="Plot", dimensions=("skymap", "tract"))
    plot_roc = cT.Output(doc="ROC.", name="rb_plot_roc", storageClass="Plot", dimensions=("skymap", "tract"))
    plot_confusion = cT.Output(doc="Confusion matrices.", name="rb_plot_confusion", storageClass="Plot",
                               dimensions=("skymap", "tract"))
    plot_scoreHistograms = cT.Output(doc="Scores per class.", name="rb_plot_scoreHistograms",
                                     storageClass="Plot", dimensions=("skymap", "tract"))
    plot_calibration = cT.Output(doc="Reliability diagram.", name="rb_plot_calibration", storageClass="Plot",
                                 dimensions=("skymap", "tract"))
    plot_snr = cT.Output(doc="Completeness and purity vs SNR.", name="rb_plot_snr", storageClass="Plot",
                         dimensions=("skymap", "tract"))
    plot_gallery = cT.Output(doc="Most confident true/false positives/negatives.", name="rb_plot_gallery",
                             storageClass="Plot", dimensions=("skymap", "tract"))

    def __init__(self, *, config: EvaluateRealBogusConfig | None = None):
        super().__init__(config=config)
        if config is not None and not config.doGallery:
            for name in ("template", "science", "difference", "plot_gallery"):
                delattr(self, name)


class EvaluateRealBogusConfig(pipeBase.PipelineTaskConfig, pipelineConnections=EvaluateRealBogusConnections):
    """Configuration of `EvaluateRealBogusTask`."""

    snrCuts = pexConfig.ListField(
        dtype=float, default=[5.0, 6.0], doc="Evaluate |SNR| > each cut, besides all sources."
    )
    thresholdFromModel = pexConfig.Field(
        dtype=bool, default=True,
        doc="Use the model package's threshold (chosen at the requirement point on its validation "
        "split) for threshold-dependent figures; else 'threshold'.",
    )
    threshold = pexConfig.RangeField(dtype=float, default=0.5, min=0.0, max=1.0, doc="Fixed threshold.")
    positiveRatio = pexConfig.RangeField(
        dtype=float, default=20.0, min=0.0, inclusiveMin=False,
        doc="Bogus:real weight ratio of the re-weighted figures (DMTN-272: 20).",
    )
    calibrationBins = pexConfig.RangeField(dtype=int, default=15, min=2, doc="Bins of the reliability diagram.")
    bootstrapResamples = pexConfig.RangeField(
        dtype=int, default=1000, min=0,
        doc="Bootstrap resamples of the sources for the 95 % intervals of purity at completeness 0.90 and "
        "completeness at purity 0.95 (0: none).",
    )
    doGallery = pexConfig.Field(dtype=bool, default=True, doc="Draw the gallery of examples.")
    galleryPerCategory = pexConfig.RangeField(dtype=int, default=3, min=1, doc="Examples per category.")


class EvaluateRealBogusTask(pipeBase.PipelineTask):
    """Compute metrics and plots of reliability scores against truth on one
    tract.
    """

    ConfigClass = EvaluateRealBogusConfig
    _DefaultName = "evaluateRealBogus"

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        handles = {name: {(r.dataId["visit"], r.dataId["detector"]): butlerQC.get(r)
                          for r in getattr(inputRefs, name)}
                   for name in INPUT_DATASETS if hasattr(inputRefs, name)}
        data = {
            "skymap": str(butlerQC.quantum.dataId["skymap"]),
            "tract": int(butlerQC.quantum.dataId["tract"]),
            "inputCollections": sorted({r.run for r in inputRefs.classifications}),
        }
        outputs = self.run(handles, butlerQC.get(inputRefs.model), data=data)
        butlerQC.put(outputs, outputRefs)

    @timeMethod
    def run(
        self,
        handles: Mapping[str, Mapping[tuple[int, int], DeferredDatasetHandle]],
        model: ModelPackage,
        data: Mapping[str, Any] | None = None,
    ) -> pipeBase.Struct:
        """Evaluate.

        Parameters
        ----------
        handles : `~collections.abc.Mapping`
            Per input connection name, handles keyed by (visit, detector).
        model : `~lsst.meas.realbogus.models.ModelPackage`
            The model that produced the scores.
        data : `~collections.abc.Mapping`, optional
            Provenance of the data (skymap, tract, input collections),
            recorded in the metrics.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``metrics`` (`dict`) and one ``plot_<name>`` figure per plot.

        Raises
        ------
        lsst.pipe.base.NoWorkFound
            Raised if no detector-visit has scored, labelled sources.
        lsst.meas.realbogus.errors.InvalidCatalogError
            Raised if a catalog lacks a required column or ids repeat.
        """
        cuts = [None, *self.config.snrCuts]
        threshold, threshold_source = self._threshold(model)
        evaluation = evaluate_detector_visits(handles, threshold=threshold, snr_cuts=cuts,
                                              positive_ratio=self.config.positiveRatio,
                                              bootstrap_resamples=self.config.bootstrapResamples, log=self.log)
        metrics = self._record(evaluation, model, threshold_source, data)
        figures = make_plots(evaluation.joined, cuts, threshold, self.config.calibrationBins)
        if self.config.doGallery:
            figures["gallery"] = self._gallery(evaluation, threshold, handles, model)
        self._log_summary(metrics)
        return pipeBase.Struct(metrics=metrics, **{f"plot_{name}": fig for name, fig in figures.items()})

    def _threshold(self, model: ModelPackage) -> tuple[float, str]:
        """The operating threshold and where it came from ("model" or
        "config").
        """
        if self.config.thresholdFromModel and model.threshold is not None:
            return model.threshold, "model"
        return self.config.threshold, "config"

    def _record(
        self,
        evaluation: TractEvaluation,
        model: ModelPackage,
        threshold_source: str,
        data: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """``rb_metrics``: the figures per SNR cut, with the provenance of
        the model, the data and the code.
        """
        result = dict(evaluation.metrics)
        result["model"] = {
            "version": model.version,
            "architecture": model.architecture,
            "threshold": model.threshold,
            "thresholdRule": model.metadata.thresholdRule,
            "training": {k: v for k, v in model.metadata.training.items() if k not in ("history", "config")},
            "validation": model.metadata.metrics.get("validation"),
        }
        result["thresholdSource"] = threshold_source
        result["data"] = {**(data or {}), "detectorVisits": evaluation.detector_visits,
                          "sources": len(evaluation.joined)}
        # The software that trained the model, and the commit that evaluated.
        result["software"] = {**model.metadata.software, "gitCommit": package_commit()}
        result["requirement"] = {
            name: {"met": bool(entry["unweighted"]["meets_requirement"]) if entry["unweighted"] else None,
                   "range": entry["unweighted"]["requirement_range"] if entry["unweighted"] else None}
            for name, entry in result["cuts"].items()
        }
        return plain(result)

    def _gallery(
        self,
        evaluation: TractEvaluation,
        threshold: float,
        handles: Mapping[str, Mapping[tuple[int, int], DeferredDatasetHandle]],
        model: ModelPackage,
    ) -> Figure:
        """The most confident examples of each outcome, in stamps of the
        model's cutout size.
        """
        return outcome_gallery(evaluation.joined, threshold,
                               [handles[name] for name in ("template", "science", "difference")],
                               self.config.galleryPerCategory, model.metadata.cutout.size, log=self.log)

    def _log_summary(self, metrics: Mapping[str, Any]) -> None:
        for name, entry in metrics["cuts"].items():
            s = entry["unweighted"]
            if s:
                met = "met" if s["meets_requirement"] else "not met"
                self.log.info("%s: n=%d (%d real) AUC %.3f AP %.3f purity@0.90 %s; OSS-REQ-0353 %s.", name,
                              entry["n"], entry["nReal"], s["roc_auc"], s["average_precision"],
                              s["purity_at_completeness_0.90"], met)
