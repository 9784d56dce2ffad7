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

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table, vstack

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT

from ..models._modelPackage import ModelPackage
from ..models._storageClass import STORAGE_CLASS
from ..triplets._cutouts import CutoutConfig, extract_triplets_from_images
from ._evaluation import evaluate, join_scores, plain
from ._plots import make_gallery, make_plots

_PER_DETECTOR = ("instrument", "visit", "detector")


def _per_detector_input(name: str, storage_class: str, doc: str) -> cT.Input:
    return cT.Input(doc=doc, name=name, storageClass=storage_class, dimensions=_PER_DETECTOR, multiple=True,
                    deferLoad=True)


class EvaluateRealBogusConnections(pipeBase.PipelineTaskConnections, dimensions=("skymap", "tract")):
    classifications = _per_detector_input("dia_source_reliability", "ArrowAstropy", "Scores.")
    truth = _per_detector_input("dia_source_truth", "ArrowAstropy", "Labels of the DIA sources.")
    diaSources = _per_detector_input("dia_source_unstandardized", "ArrowAstropy", "DIA sources (SNR).")
    template = _per_detector_input("template_detector", "DifferenceImage", "Templates, for galleries.")
    science = _per_detector_input("preliminary_visit_image", "VisitImage", "Science images, for galleries.")
    difference = _per_detector_input("difference_image", "DifferenceImage", "Differences, for galleries.")
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
    doGallery = pexConfig.Field(dtype=bool, default=True, doc="Draw the gallery of examples.")
    galleryPerCategory = pexConfig.RangeField(dtype=int, default=3, min=1, doc="Examples per category.")


class EvaluateRealBogusTask(pipeBase.PipelineTask):
    """Compute metrics and plots of reliability scores against truth on one
    tract.
    """

    ConfigClass = EvaluateRealBogusConfig
    _DefaultName = "evaluateRealBogus"

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        def by_key(refs):
            return {(r.dataId["visit"], r.dataId["detector"]): butlerQC.get(r) for r in refs}

        handles = {name: by_key(getattr(inputRefs, name)) for name in
                   ("classifications", "truth", "diaSources", "template", "science", "difference")
                   if hasattr(inputRefs, name)}
        model = butlerQC.get(inputRefs.model)
        data = {
            "skymap": str(butlerQC.quantum.dataId["skymap"]),
            "tract": int(butlerQC.quantum.dataId["tract"]),
            "inputCollections": sorted({r.run for r in inputRefs.classifications}),
        }
        outputs = self.run(handles, model, data=data)
        butlerQC.put(outputs, outputRefs)

    def run(self, handles: dict[str, dict], model: ModelPackage, data: dict[str, Any] | None = None):
        """Evaluate.

        Parameters
        ----------
        handles : `dict` [`str`, `dict`]
            Per input connection name, handles keyed by (visit, detector).
        model : `~lsst.meas.realbogus.models.ModelPackage`
            The model that produced the scores.
        data : `dict`, optional
            Provenance of the data, recorded in the metrics.

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
        c = self.config
        parts = []
        for key in sorted(handles["classifications"]):
            scores = handles["classifications"][key].get()
            if len(scores) == 0:
                continue
            if key not in handles["truth"] or key not in handles["diaSources"]:
                self.log.warning("No truth or sources for visit=%d detector=%d; skipped.", *key)
                continue
            joined = join_scores(scores, handles["truth"][key].get(), handles["diaSources"][key].get(),
                                 f"visit={key[0]} detector={key[1]}")
            joined["visit"] = np.full(len(joined), key[0])
            joined["detector"] = np.full(len(joined), key[1])
            parts.append(joined)
        if not parts:
            raise pipeBase.NoWorkFound("No scored, labelled DIA sources on this tract.")
        joined = vstack(parts)
        threshold = model.threshold if (c.thresholdFromModel and model.threshold is not None) else c.threshold
        cuts = [None, *c.snrCuts]
        result = evaluate(joined, threshold=threshold, snr_cuts=cuts, positive_ratio=c.positiveRatio)
        result["model"] = {
            "version": model.version,
            "architecture": model.architecture,
            "threshold": model.threshold,
            "thresholdRule": model.metadata.thresholdRule,
            "training": {k: v for k, v in model.metadata.training.items() if k not in ("history", "config")},
            "validation": model.metadata.metrics.get("validation"),
        }
        result["thresholdSource"] = "model" if threshold == model.threshold and c.thresholdFromModel else "config"
        result["data"] = {**(data or {}), "detectorVisits": len(parts), "sources": len(joined)}
        result["software"] = {**model.metadata.software, "gitCommit": _git_commit()}
        result["requirement"] = {
            name: {"met": bool(entry["unweighted"]["meets_requirement"]) if entry["unweighted"] else None,
                   "range": entry["unweighted"]["requirement_range"] if entry["unweighted"] else None}
            for name, entry in result["cuts"].items()
        }
        figures = make_plots(joined, cuts, threshold, c.calibrationBins)
        outputs = {f"plot_{name}": fig for name, fig in figures.items()}
        if c.doGallery:
            outputs["plot_gallery"] = make_gallery(self._examples(joined, threshold, handles),
                                                   f"Most confident examples at reliability >= {threshold:.3g}")
        for name, entry in result["cuts"].items():
            s = entry["unweighted"]
            if s:
                self.log.info("%s: n=%d (%d real) AUC %.3f AP %.3f purity@0.90 %s; OSS-REQ-0353 %s.", name,
                              entry["n"], entry["nReal"], s["roc_auc"], s["average_precision"],
                              s["purity_at_completeness_0.90"], "met" if s["meets_requirement"] else "not met")
        return pipeBase.Struct(metrics=plain(result), **outputs)

    def _examples(self, joined: Table, threshold: float, handles: dict[str, dict]) -> list[dict[str, Any]]:
        """Pick the most confident examples of each outcome and cut their
        (unnormalized) triplets for display.
        """
        n = self.config.galleryPerCategory
        labels = np.asarray(joined["label"], dtype=int)
        scores = np.asarray(joined["reliability"], dtype=float)
        kept = scores >= threshold
        picks = []
        for category, mask, highest in (("true positive", (labels == 1) & kept, True),
                                        ("false positive", (labels == 0) & kept, True),
                                        ("false negative", (labels == 1) & ~kept, False),
                                        ("true negative", (labels == 0) & ~kept, False)):
            rows = np.flatnonzero(mask)
            rows = rows[np.argsort(-scores[rows] if highest else scores[rows], kind="stable")][:n]
            picks.extend((category, int(r)) for r in rows)
        display = CutoutConfig()
        display.normalization = "none"
        display.fillValue = float("nan")
        examples = []
        by_key: dict[tuple[int, int], list[tuple[str, int]]] = {}
        for category, row in picks:
            by_key.setdefault((int(joined["visit"][row]), int(joined["detector"][row])), []).append((category, row))
        stamps: dict[int, np.ndarray] = {}
        for key, items in by_key.items():
            if not all(key in handles.get(name, {}) for name in ("template", "science", "difference")):
                continue
            images = [handles[name][key].get() for name in ("template", "science", "difference")]
            rows = [row for _, row in items]
            x, y = np.asarray(joined["x"])[rows], np.asarray(joined["y"])[rows]
            cut = extract_triplets_from_images(*images, x, y, display)
            for row, triplet in zip(rows, cut.cutouts):
                stamps[row] = triplet
        for category, row in picks:
            if row in stamps:
                examples.append({"stamps": stamps[row], "category": category,
                                 "truthClass": str(joined["truthClass"][row]),
                                 "reliability": float(scores[row]), "snr": float(joined["snr"][row]),
                                 "diaSourceId": int(joined["diaSourceId"][row])})
        return examples


def _git_commit() -> str:
    """The package checkout's git commit, or "unknown" for an installed copy."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
