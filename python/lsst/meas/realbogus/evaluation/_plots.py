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

"""Figures of a classifier's performance, made without pyplot (so they are
safe in pipetask worker processes): precision-recall, ROC, confusion
matrices, score histograms per class, calibration and performance against
SNR (the gallery of examples is `._gallery`'s).
"""

from __future__ import annotations

__all__ = ["PLOT_NAMES", "make_plots"]

from collections.abc import Iterator, Sequence

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure

from . import _metrics as metrics

PLOT_NAMES = (
    "precisionRecall",
    "roc",
    "confusion",
    "scoreHistograms",
    "calibration",
    "snr",
    "gallery",
)
"""Plots made by ``evaluateRealBogus``; each is the dataset
``rb_plot_<name>``."""


def _cut_mask(joined: Table, cut: float | None) -> np.ndarray:
    snr = np.abs(np.asarray(joined["snr"], dtype=float))
    return np.ones(len(snr), bool) if cut is None else snr > cut


def _label(cut: float | None) -> str:
    return "all sources" if cut is None else f"SNR > {cut:g}"


def _arrays(joined: Table, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (np.asarray(joined["label"], dtype=int)[mask],
            np.clip(np.asarray(joined["reliability"], dtype=float)[mask], 0, 1))


def _cuts_with_both_classes(
    joined: Table, cuts: Sequence[float | None]
) -> Iterator[tuple[float | None, np.ndarray, np.ndarray]]:
    """Labels and scores of each SNR cut that has reals and bogus."""
    for cut in cuts:
        labels, scores = _arrays(joined, _cut_mask(joined, cut))
        if 0 < labels.sum() < len(labels):
            yield cut, labels, scores


def precision_recall_figure(joined: Table, cuts: Sequence[float | None], threshold: float) -> Figure:
    """Purity against completeness per SNR cut, with the OSS-REQ-0353
    point (0.90, 0.95) and the operating threshold marked.
    """
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for cut, labels, scores in _cuts_with_both_classes(joined, cuts):
        purity, completeness, thresholds = metrics.precision_recall_curve(labels, scores)
        ap = metrics.average_precision(labels, scores)
        line, = ax.step(completeness, purity, where="post", label=f"{_label(cut)} (AP {ap:.3f})")
        at = metrics.threshold_summary(labels, scores, threshold)
        ax.plot(at["completeness"], at["purity"], "o", color=line.get_color())
    ax.plot([metrics.REQUIREMENT_COMPLETENESS], [metrics.REQUIREMENT_PURITY], "r*", ms=14,
            label="OSS-REQ-0353 (0.90, 0.95)")
    ax.axvline(metrics.REQUIREMENT_COMPLETENESS, color="r", lw=0.5, ls=":")
    ax.axhline(metrics.REQUIREMENT_PURITY, color="r", lw=0.5, ls=":")
    ax.set(xlabel="completeness (recall)", ylabel="purity (precision)", xlim=(0, 1.01), ylim=(0, 1.01),
           title=f"Precision-recall, natural class mix (dots: threshold {threshold:.3g})")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def roc_figure(joined: Table, cuts: Sequence[float | None]) -> Figure:
    """ROC curve per SNR cut."""
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    for cut, labels, scores in _cuts_with_both_classes(joined, cuts):
        fpr, tpr, _ = metrics.roc_curve(labels, scores)
        ax.plot(fpr, tpr, label=f"{_label(cut)} (AUC {metrics.roc_auc(labels, scores):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=0.5)
    ax.set(xlabel="false positive rate", ylabel="true positive rate (completeness)", title="ROC")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def confusion_figure(joined: Table, cuts: Sequence[float | None], threshold: float) -> Figure:
    """Confusion matrices at the threshold, one panel per SNR cut."""
    fig = Figure(figsize=(3.2 * len(cuts), 3.4))
    for k, cut in enumerate(cuts):
        ax = fig.add_subplot(1, len(cuts), k + 1)
        labels, scores = _arrays(joined, _cut_mask(joined, cut))
        cm = metrics.confusion_matrix(labels, scores, threshold) if len(labels) else np.zeros((2, 2))
        ax.imshow(cm, cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, f"{int(v)}", ha="center", va="center", color="k")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["bogus", "real"], yticklabels=["bogus", "real"],
               xlabel="predicted", ylabel="true", title=_label(cut))
    fig.suptitle(f"Confusion at reliability >= {threshold:.3g}")
    fig.tight_layout()
    return fig


def score_histogram_figure(joined: Table, threshold: float) -> Figure:
    """Score histograms per truth class, reals on top."""
    classes = np.asarray(joined["truthClass"]).astype(str)
    labels = np.asarray(joined["label"], dtype=int)
    scores = np.asarray(joined["reliability"], dtype=float)
    kinds = sorted(set(classes), key=lambda c: (-int(labels[classes == c].max(initial=0)), c))
    fig = Figure(figsize=(7, max(2.0, 0.55 * len(kinds) + 1)))
    ax = fig.add_subplot()
    bins = np.linspace(0, 1, 26)
    for row, kind in enumerate(kinds):
        s = scores[classes == kind]
        counts, _ = np.histogram(s, bins)
        scale = 0.8 / max(counts.max(), 1)
        real = bool(labels[classes == kind].max(initial=0))
        ax.bar(bins[:-1], counts * scale, width=np.diff(bins), bottom=-row, align="edge",
               color="tab:green" if real else "tab:red", alpha=0.7)
    ax.axvline(threshold, color="k", ls="--", lw=1)
    ax.set_yticks([-r + 0.4 for r in range(len(kinds))])
    ax.set_yticklabels([f"{k} ({int(np.sum(classes == k))})" for k in kinds], fontsize=8)
    ax.set(xlabel="reliability", xlim=(0, 1), title="Scores per truth class (green: real, red: bogus)")
    fig.tight_layout()
    return fig


def calibration_figure(joined: Table, n_bins: int) -> Figure:
    """Reliability diagram (fraction real against mean score) with ECE."""
    labels, scores = _arrays(joined, np.ones(len(joined), bool))
    fig = Figure(figsize=(6, 5))
    ax = fig.add_subplot()
    if len(labels):
        d = metrics.reliability_diagram(labels, scores, n_bins)
        centres = 0.5 * (d["bin_edges"][1:] + d["bin_edges"][:-1])
        ok = d["counts"] > 0
        ax.plot(d["mean_score"][ok], d["fraction_real"][ok], "o-", label="this model")
        ax2 = ax.twinx()
        ax2.bar(centres, d["counts"], width=1 / n_bins, alpha=0.15, color="gray")
        ax2.set_yscale("log")
        ax2.set_ylabel("sources per bin")
        ece = metrics.expected_calibration_error(labels, scores, n_bins)
        ax.set_title(f"Calibration, all sources (ECE {ece:.3f}, {n_bins} bins)")
    ax.plot([0, 1], [0, 1], "k:", label="calibrated")
    ax.set(xlabel="mean reliability in bin", ylabel="fraction real", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return fig


def snr_figure(joined: Table, threshold: float) -> Figure:
    """Completeness and purity at the threshold in bins of |SNR|."""
    labels = np.asarray(joined["label"], dtype=int)
    scores = np.asarray(joined["reliability"], dtype=float)
    snr = np.abs(np.asarray(joined["snr"], dtype=float))
    edges = np.array([0, 5, 6, 8, 10, 15, 20, 50, 100, np.inf])
    centres, comp, pur, n = [], [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (snr > lo) & (snr <= hi)
        if not m.any():
            continue
        kept = scores[m] >= threshold
        reals = labels[m] == 1
        centres.append(np.sqrt(max(lo, 1) * (hi if np.isfinite(hi) else 2 * lo)))
        comp.append(kept[reals].mean() if reals.any() else np.nan)
        pur.append(reals[kept].mean() if kept.any() else np.nan)
        n.append(int(m.sum()))
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(centres, comp, "o-", label="completeness")
    ax.plot(centres, pur, "s-", label="purity")
    ax.axhline(metrics.REQUIREMENT_COMPLETENESS, color="tab:blue", ls=":", lw=0.8)
    ax.axhline(metrics.REQUIREMENT_PURITY, color="tab:orange", ls=":", lw=0.8)
    ax.set(xscale="log", xlabel="|SNR|", ylabel="fraction", ylim=(0, 1.05),
           title=f"Performance against SNR at reliability >= {threshold:.3g}")
    for x, k in zip(centres, n):
        ax.annotate(str(k), (x, 0.02), ha="center", fontsize=7, color="gray")
    ax.legend(fontsize=8)
    return fig


def make_plots(joined: Table, cuts: Sequence[float | None], threshold: float, n_bins: int) -> dict[str, Figure]:
    """Return every plot but the gallery, keyed by `PLOT_NAMES` entries.

    Parameters
    ----------
    joined : `astropy.table.Table`
        Scored, labelled sources
        (`~lsst.meas.realbogus.evaluation.join_detector_visits`).
    cuts : `~collections.abc.Sequence` [`float` or `None`]
        SNR cuts of the curves and confusion matrices; `None` is all
        sources.
    threshold : `float`
        Operating threshold.
    n_bins : `int`
        Bins of the reliability diagram.

    Returns
    -------
    figures : `dict` [`str`, `matplotlib.figure.Figure`]
    """
    return {
        "precisionRecall": precision_recall_figure(joined, cuts, threshold),
        "roc": roc_figure(joined, cuts),
        "confusion": confusion_figure(joined, cuts, threshold),
        "scoreHistograms": score_histogram_figure(joined, threshold),
        "calibration": calibration_figure(joined, n_bins),
        "snr": snr_figure(joined, threshold),
    }
