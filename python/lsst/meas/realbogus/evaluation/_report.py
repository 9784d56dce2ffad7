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

"""``rb-report``: one self-contained HTML page of a tract's evaluation."""

from __future__ import annotations

__all__ = ["render_report"]

import base64
import datetime
import html
from typing import Any

from ._plots import PLOT_NAMES

_CAPTIONS = {
    "precisionRecall": "Purity against completeness at the natural class mix; the star is OSS-REQ-0353.",
    "roc": "ROC curves per SNR cut.",
    "confusion": "Confusion matrices at the operating threshold.",
    "scoreHistograms": "Reliability per truth class.",
    "calibration": "Reliability diagram: a calibrated model follows the diagonal.",
    "snr": "Completeness and purity at the threshold against |SNR| (counts at the bottom).",
    "gallery": "Most confident true/false positives/negatives (template, science, difference).",
}

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
.met { color: #070; font-weight: bold; } .notmet { color: #a00; font-weight: bold; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 520px; }
figure.wide { display: block; max-width: 100%; }
figure img { max-width: 100%; } figcaption { font-size: 0.85em; color: #555; }
"""

_WIDE = {"gallery"}
"""Plots shown at full width (a grid of stamps must not shrink)."""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _summary_table(metrics: dict[str, Any], weighting: str) -> str:
    cols = [("n", "n"), ("n_real", "real"), ("roc_auc", "ROC AUC"), ("average_precision", "AP"),
            ("accuracy", "accuracy"), ("f1", "F1"), ("purity_at_completeness_0.90", "purity @ compl. 0.90"),
            ("completeness_at_purity_0.95", "compl. @ purity 0.95"), ("ece", "ECE")]
    intervals = weighting == "unweighted"
    rows = ["<tr><th class=l>sources</th>" + "".join(f"<th>{h}</th>" for _, h in cols)
            + ("<th>95 % intervals (bootstrap): purity, compl.</th>" if intervals else "")
            + "<th>TN FP / FN TP</th><th>OSS-REQ-0353</th><th>thresholds meeting it</th></tr>"]
    for name, entry in metrics["cuts"].items():
        s = entry.get(weighting)
        if not s:
            rows.append(f"<tr><td class=l>{html.escape(name)}</td><td colspan={len(cols) + 3 + intervals}>one "
                        "class only</td></tr>")
            continue
        met = s["meets_requirement"]
        span = s["requirement_range"]
        rows.append(
            f"<tr><td class=l>{html.escape(name)}</td>" + "".join(f"<td>{_fmt(s.get(k))}</td>" for k, _ in cols)
            + (f"<td>{_interval_cells(entry.get('intervals'))}</td>" if intervals else "")
            + f"<td>{s['tn']:.0f} {s['fp']:.0f} / {s['fn']:.0f} {s['tp']:.0f}</td>"
            + f"<td class={'met' if met else 'notmet'}>{'met' if met else 'not met'}</td>"
            + f"<td>{'(%s, %s]' % (_fmt(span[0]), _fmt(span[1])) if span else 'none'}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _interval_cells(intervals: dict[str, Any] | None) -> str:
    """The bootstrap intervals of a cut, for the summary table."""
    if not intervals:
        return "-"
    spans = []
    for key in ("purity_at_completeness_0.90", "completeness_at_purity_0.95"):
        span = intervals.get(key)
        spans.append(f"[{_fmt(span[0])}, {_fmt(span[1])}]" if span else "-")
    meeting = intervals.get("fraction_meeting_requirement")
    return html.escape(f"{spans[0]}, {spans[1]}; met in {_fmt(meeting, 2)} of {intervals.get('resamples')}")


def _class_table(metrics: dict[str, Any]) -> str:
    names = list(metrics["cuts"])
    kinds = sorted({k for e in metrics["cuts"].values() for k in e["perClass"]},
                   key=lambda k: (not any(e["perClass"].get(k, {}).get("real") for e in metrics["cuts"].values()), k))
    rows = ["<tr><th class=l>truth class</th><th class=l>kind</th>"
            + "".join(f"<th>{html.escape(n)}: kept / n</th>" for n in names) + "</tr>"]
    for kind in kinds:
        real = any(e["perClass"].get(kind, {}).get("real") for e in metrics["cuts"].values())
        cells = []
        for n in names:
            c = metrics["cuts"][n]["perClass"].get(kind)
            cells.append(f"<td>{c['kept']} / {c['n']}</td>" if c else "<td>&ndash;</td>")
        rows.append(f"<tr><td class=l>{html.escape(kind)}</td><td class=l>{'real' if real else 'bogus'}</td>"
                    + "".join(cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _provenance_table(metrics: dict[str, Any]) -> str:
    """The model, the data, the threshold and the code of an evaluation."""
    model = metrics.get("model", {})
    data = metrics.get("data", {})
    software = metrics.get("software", {})
    training = model.get("training", {})
    evaluated_by = f"; evaluated by {html.escape(data['evaluatedBy'])}" if data.get("evaluatedBy") else ""
    return (
        "<table>"
        f"<tr><th class=l>model</th><td class=l>{_fmt(model.get('version'))} ({_fmt(model.get('architecture'))}), "
        f"trained on tract {_fmt(training.get('tract'))} from {_fmt(', '.join(training.get('inputCollections', [])))}"
        f", {_fmt(training.get('epochsRun'))} epochs on {_fmt(training.get('device'))}</td></tr>"
        f"<tr><th class=l>data</th><td class=l>skymap {_fmt(data.get('skymap'))} tract {_fmt(data.get('tract'))}: "
        f"{_fmt(data.get('sources'))} scored, labelled DIA sources in {_fmt(data.get('detectorVisits'))} "
        f"detector-visits, from {_fmt(', '.join(data.get('inputCollections', [])))}{evaluated_by}</td></tr>"
        f"<tr><th class=l>threshold</th><td class=l>{_fmt(metrics.get('threshold'), 4)} "
        f"(from the {_fmt(metrics.get('thresholdSource'))}; model rule: {_fmt(model.get('thresholdRule'))})</td></tr>"
        f"<tr><th class=l>software</th><td class=l>trained with meas_realbogus "
        f"{_fmt(software.get('meas_realbogus'))}, torch {_fmt(software.get('torch'))}; evaluated at commit "
        f"{_fmt(software.get('gitCommit'))}</td></tr>"
        f"<tr><th class=l>made</th><td class=l>{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC</td></tr>"
        "</table>"
    )


def render_report(metrics: dict[str, Any], images: dict[str, bytes], title: str) -> str:
    """Render the HTML page.

    Parameters
    ----------
    metrics : `dict`
        ``rb_metrics`` of a tract.
    images : `dict` [`str`, `bytes`]
        PNG bytes by plot name (see `~lsst.meas.realbogus.evaluation.PLOT_NAMES`).
    title : `str`
        Page title.

    Returns
    -------
    page : `str`
        A self-contained page: the images are embedded as data URIs.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>", _provenance_table(metrics)]
    parts.append("<h2>Natural class mix (what OSS-REQ-0353 is stated at)</h2>")
    parts.append("<p>OSS-REQ-0353: a threshold with completeness &ge; 0.90 and purity &ge; 0.95 at SNR 6.</p>")
    parts.append(_summary_table(metrics, "unweighted"))
    ratio = metrics.get("positiveRatio", 20)
    parts.append(f"<h2>Real sources re-weighted to bogus:real = {ratio:g}:1 (DMTN-272; does not count for "
                 "the requirement)</h2>")
    parts.append(_summary_table(metrics, "reweighted"))
    parts.append(f"<h2>Kept per truth class at reliability &ge; {_fmt(metrics.get('threshold'), 4)}</h2>")
    parts.append(_class_table(metrics))
    parts.append("<h2>Plots</h2>")
    for name in PLOT_NAMES:
        if name in images:
            encoded = base64.b64encode(images[name]).decode()
            wide = " class=wide" if name in _WIDE else ""
            parts.append(f"<figure{wide}><img alt='{name}' src='data:image/png;base64,{encoded}'>"
                         f"<figcaption>{html.escape(_CAPTIONS[name])}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)
