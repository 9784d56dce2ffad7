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

"""The one evaluation path: scores joined to truth per detector-visit, and
the headline figures per SNR cut.

`evaluate_detector_visits` is what `EvaluateRealBogusTask.run`,
``rb-report --evaluate`` and ``python -m lsst.meas.realbogus.evaluation``
compute; they differ only in where the handles come from (a quantum, or
`~lsst.meas.realbogus.evaluation.query_inputs` on a repository).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_SNR_CUTS",
    "SCORE_INPUTS",
    "TractEvaluation",
    "evaluate",
    "evaluate_detector_visits",
    "format_summary",
    "join_detector_visits",
    "join_scores",
    "load_scored_sources",
    "plain",
]

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import Table, vstack

import lsst.pipe.base as pipeBase

from ..triplets._sourceCatalogs import SourceColumnsConfig, as_astropy_table, check_source_catalog, match_ids
from . import _metrics as metrics
from ._repository import query_inputs

if TYPE_CHECKING:
    from lsst.daf.butler import Butler, DeferredDatasetHandle

_LOG = logging.getLogger(__name__)

DEFAULT_SNR_CUTS: tuple[float | None, ...] = (None, 5.0, 6.0)
"""SNR cuts evaluated by default: all sources, SNR > 5, SNR > 6."""

SCORE_INPUTS = ("classifications", "truth", "diaSources")
"""The inputs of the join (`EvaluateRealBogusTask` connection names)."""


@dataclasses.dataclass
class TractEvaluation:
    """Scores joined to truth, and the figures computed from them."""

    joined: Table
    """Every scored, labelled source (see `join_scores`), with ``visit`` and
    ``detector`` columns."""

    metrics: dict[str, Any]
    """Figures per SNR cut (see `evaluate`)."""

    detector_visits: int
    """Number of detector-visits joined."""


def join_scores(
    reliability: Table,
    truth: Table,
    sources: Table,
    where: str = "",
    columns: SourceColumnsConfig | None = None,
) -> Table:
    """Join one detector-visit's scores, labels and SNR by source id.

    Parameters
    ----------
    reliability : `astropy.table.Table`
        ``dia_source_reliability`` in the package's schema
        (``diaSourceId``, ``reliability``, cutout flags) or the AP
        pipeline's (``id``, ``score``, ``version``; an afw catalog is
        converted), which has no cutout flags: they read as False.
    truth : `astropy.table.Table`
        ``dia_source_truth`` (id, ``is_real``, ``truth_class``); its id
        column has the sources' id column name.
    sources : `astropy.table.Table`
        ``dia_source_unstandardized`` (id, position and PSF flux columns);
        an afw catalog is converted.
    where : `str`, optional
        The detector-visit, for messages (e.g. ``"visit=1 detector=2"``).
    columns : `~lsst.meas.realbogus.triplets.SourceColumnsConfig`, optional
        The source column names (default: a real catalog's, which
        ``rb-simulate`` writes); the SNR is the PSF flux over its error.

    Returns
    -------
    joined : `astropy.table.Table`
        ``diaSourceId``, ``reliability``, ``label``, ``truthClass``,
        ``snr``, ``x``, ``y``, ``cutoutFlags_edge``, ``cutoutFlags_noData``;
        sources without truth are dropped.

    Raises
    ------
    lsst.meas.realbogus.errors.InvalidCatalogError
        Raised if a catalog lacks a required column or ids repeat.
    """
    c = columns if columns is not None else SourceColumnsConfig()
    sources = as_astropy_table(sources)
    reliability = _package_schema(as_astropy_table(reliability))
    of = f" of {where}" if where else ""
    # A repeated id would pair a score with another source's label.
    check_source_catalog(reliability, ["diaSourceId", "reliability", "cutoutFlags_edge", "cutoutFlags_noData"],
                         what=f"reliability catalog{of}")
    check_source_catalog(truth, [c.idColumn, "is_real", "truth_class"], what=f"truth catalog{of}")
    check_source_catalog(sources, [c.idColumn, c.psfFluxColumn, c.psfFluxErrColumn, c.xColumn, c.yColumn],
                         what=f"DIA source catalog{of}")
    ids = np.asarray(reliability["diaSourceId"], dtype=np.int64)
    truth_rows = match_ids(np.asarray(truth[c.idColumn], dtype=np.int64), ids)
    source_rows = match_ids(np.asarray(sources[c.idColumn], dtype=np.int64), ids)
    keep = (truth_rows >= 0) & (source_rows >= 0)
    out = Table()
    out["diaSourceId"] = ids[keep]
    out["reliability"] = np.asarray(reliability["reliability"], dtype=np.float64)[keep]
    out["label"] = np.asarray(truth["is_real"]).astype(np.int8)[truth_rows[keep]]
    out["truthClass"] = np.asarray(truth["truth_class"]).astype(str)[truth_rows[keep]]
    x, y = c.positions(sources)
    for name, values in (("snr", c.snr(sources)), ("x", x), ("y", y)):
        out[name] = values[source_rows[keep]]
    for name in ("cutoutFlags_edge", "cutoutFlags_noData"):
        out[name] = np.asarray(reliability[name], dtype=bool)[keep]
    return out


def _package_schema(reliability: Table) -> Table:
    """A reliability catalog of the AP schema (``outputSchema="ap"``) in
    the package's column names; others unchanged.
    """
    names = set(reliability.colnames)
    if "diaSourceId" in names or not {"id", "score"} <= names:
        return reliability
    no_flag = np.zeros(len(reliability), dtype=bool)
    return Table({"diaSourceId": reliability["id"], "reliability": reliability["score"],
                  "cutoutFlags_edge": no_flag, "cutoutFlags_noData": no_flag.copy()})


def join_detector_visits(
    handles: Mapping[str, Mapping[tuple[int, int], DeferredDatasetHandle]],
    log: logging.Logger | None = None,
) -> tuple[Table, int]:
    """Join the scores, truth and SNR of every scored detector-visit.

    Parameters
    ----------
    handles : `~collections.abc.Mapping`
        Handles of ``classifications`` (``dia_source_reliability``),
        ``truth`` (``dia_source_truth``) and ``diaSources``
        (``dia_source_unstandardized``), each by (visit, detector).
    log : `logging.Logger`, optional
        Where to warn of a detector-visit scored but lacking truth or
        sources (it is skipped).

    Returns
    -------
    joined : `astropy.table.Table`
        See `join_scores`, plus ``visit`` and ``detector``; in (visit,
        detector) order; empty if nothing was joined.
    detector_visits : `int`
        Number of detector-visits with scored sources that were joined.

    Raises
    ------
    lsst.meas.realbogus.errors.InvalidCatalogError
        Raised if a catalog lacks a required column or ids repeat.
    """
    log = log or _LOG
    parts = []
    for key in sorted(handles["classifications"]):
        scores = handles["classifications"][key].get()
        if len(scores) == 0:
            continue
        if key not in handles["truth"] or key not in handles["diaSources"]:
            log.warning("No truth or sources for visit=%d detector=%d; skipped.", *key)
            continue
        joined = join_scores(scores, handles["truth"][key].get(), handles["diaSources"][key].get(),
                             f"visit={key[0]} detector={key[1]}")
        joined["visit"] = np.full(len(joined), key[0])
        joined["detector"] = np.full(len(joined), key[1])
        parts.append(joined)
    return (vstack(parts) if parts else _empty_join()), len(parts)


def _empty_join() -> Table:
    reliability = Table({"diaSourceId": np.zeros(0, np.int64), "reliability": np.zeros(0, np.float32),
                         "cutoutFlags_edge": np.zeros(0, bool), "cutoutFlags_noData": np.zeros(0, bool)})
    c = SourceColumnsConfig()
    truth = Table({c.idColumn: np.zeros(0, np.int64), "is_real": np.zeros(0, bool),
                   "truth_class": np.zeros(0, "U1")})
    sources = Table({name: np.zeros(0, np.int64 if name == c.idColumn else np.float64)
                     for name in (c.idColumn, c.psfFluxColumn, c.psfFluxErrColumn, c.xColumn, c.yColumn)})
    joined = join_scores(reliability, truth, sources, columns=c)
    joined["visit"] = np.zeros(0, np.int64)
    joined["detector"] = np.zeros(0, np.int64)
    return joined


def evaluate_detector_visits(
    handles: Mapping[str, Mapping[tuple[int, int], DeferredDatasetHandle]],
    *,
    threshold: float = 0.5,
    snr_cuts: Iterable[float | None] = DEFAULT_SNR_CUTS,
    positive_ratio: float = 20.0,
    bootstrap_resamples: int = metrics.DEFAULT_RESAMPLES,
    log: logging.Logger | None = None,
) -> TractEvaluation:
    """Join the scores of every detector-visit to truth and compute the
    figures per SNR cut: the evaluation of `EvaluateRealBogusTask`,
    ``rb-report --evaluate`` and ``python -m lsst.meas.realbogus.evaluation``.

    Parameters
    ----------
    handles : `~collections.abc.Mapping`
        See `join_detector_visits`.
    threshold, snr_cuts, positive_ratio, bootstrap_resamples
        See `evaluate`.
    log : `logging.Logger`, optional
        See `join_detector_visits`.

    Returns
    -------
    evaluation : `TractEvaluation`

    Raises
    ------
    lsst.pipe.base.NoWorkFound
        Raised if no detector-visit has scored, labelled sources.
    lsst.meas.realbogus.errors.InvalidCatalogError
        Raised if a catalog lacks a required column or ids repeat.
    """
    joined, detector_visits = join_detector_visits(handles, log)
    if detector_visits == 0:
        raise pipeBase.NoWorkFound("No scored, labelled DIA sources on this tract.")
    result = evaluate(joined, threshold=threshold, snr_cuts=snr_cuts, positive_ratio=positive_ratio,
                      bootstrap_resamples=bootstrap_resamples)
    return TractEvaluation(joined=joined, metrics=result, detector_visits=detector_visits)


def load_scored_sources(
    butler: Butler, collections: Sequence[str], where: str, bind: Mapping[str, Any] | None = None
) -> Table:
    """Read and join the scores, truth and SNR of every detector-visit
    matching a query.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Repository.
    collections : `~collections.abc.Sequence` [`str`]
        Collections holding ``dia_source_reliability`` and the simulator's
        outputs.
    where : `str`
        Data query, e.g. ``"skymap='DC2' AND tract=4024"``.
    bind : `~collections.abc.Mapping`, optional
        Bind values of ``where``.

    Returns
    -------
    joined : `astropy.table.Table`
        See `join_detector_visits`; empty if nothing matched.
    """
    return join_detector_visits(query_inputs(butler, collections, where, SCORE_INPUTS, bind=bind))[0]


def evaluate(
    joined: Table,
    *,
    threshold: float = 0.5,
    snr_cuts: Iterable[float | None] = DEFAULT_SNR_CUTS,
    positive_ratio: float = 20.0,
    bootstrap_resamples: int = metrics.DEFAULT_RESAMPLES,
) -> dict[str, Any]:
    """Compute the headline figures per SNR cut, unweighted and with real
    sources re-weighted to ``positive_ratio``:1 (DMTN-272), with bootstrap
    intervals of the OSS-REQ-0353 figures at the natural mix.

    Parameters
    ----------
    joined : `astropy.table.Table`
        Output of `join_detector_visits`.
    threshold : `float`, optional
        Operating threshold for the confusion matrix and per-class counts.
    snr_cuts : `~collections.abc.Iterable` [`float` or `None`]
        Keep ``|snr| > cut``; `None` keeps all.
    positive_ratio : `float`, optional
        Bogus:real weight ratio of the re-weighted figures.
    bootstrap_resamples : `int`, optional
        Resamples of `~lsst.meas.realbogus.evaluation.bootstrap_requirement`
        (0: no intervals).

    Returns
    -------
    result : `dict`
        ``{"threshold": ..., "cuts": {name: {"unweighted": summary,
        "reweighted": summary or None, "intervals": intervals or None,
        "perClass": {class: {"n", "kept"}}}}}`` with summaries from
        `lsst.meas.realbogus.evaluation.summarize` and intervals from
        `~lsst.meas.realbogus.evaluation.bootstrap_requirement` (unweighted);
        a cut with fewer than two classes has ``None`` summaries.
    """
    labels = np.asarray(joined["label"], dtype=np.int64)
    scores = np.clip(np.asarray(joined["reliability"], dtype=np.float64), 0.0, 1.0)
    snr = np.abs(np.asarray(joined["snr"], dtype=np.float64))
    classes = np.asarray(joined["truthClass"]).astype(str)
    cuts: dict[str, Any] = {}
    for cut in snr_cuts:
        name = "all" if cut is None else f"snr>{cut:g}"
        keep = np.ones(len(labels), bool) if cut is None else snr > cut
        lab, sco = labels[keep], scores[keep]
        both = 0 < lab.sum() < len(lab)
        entry: dict[str, Any] = {"snrMin": cut, "unweighted": None, "reweighted": None, "intervals": None}
        if both:
            entry["unweighted"] = metrics.summarize(lab, sco, threshold)
            if bootstrap_resamples:
                entry["intervals"] = metrics.bootstrap_requirement(lab, sco, resamples=bootstrap_resamples)
            weights = metrics.positive_reweighting(lab, positive_ratio)
            entry["reweighted"] = metrics.summarize(lab, sco, threshold, sample_weight=weights)
            entry["reweighted"]["weighting"] = f"real re-weighted to bogus:real = {positive_ratio:g}:1"
        entry["n"] = int(keep.sum())
        entry["nReal"] = int(lab.sum())
        entry["perClass"] = {
            kind: {
                "real": bool(lab[classes[keep] == kind][0]) if np.any(classes[keep] == kind) else None,
                "n": int(np.sum(classes[keep] == kind)),
                "kept": int(np.sum((classes[keep] == kind) & (sco >= threshold))),
            }
            for kind in sorted(set(classes[keep].tolist()))
        }
        cuts[name] = entry
    return plain({"threshold": threshold, "positiveRatio": positive_ratio, "cuts": cuts})


def plain(value: Any) -> Any:
    """Return a copy with numpy scalars and arrays turned into builtin
    types, so it serializes as YAML or JSON.
    """
    return json.loads(json.dumps(value, default=_builtin))


def _builtin(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _f(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _span(interval: list[float] | None) -> str:
    return "-" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def format_summary(result: dict[str, Any]) -> str:
    """Format `evaluate` output as a plain-text table (unweighted figures,
    the natural class mix that OSS-REQ-0353 is stated at).
    """
    header = (f"{'sources':<9}{'n':>6}{'real':>6}{'AUC':>7}{'AP':>7}{'purity@0.90':>13}{'95% interval':>15}"
              f"{'compl@0.95':>12}{'95% interval':>15}{'ECE':>7}  OSS-REQ-0353")
    lines = [header, "-" * len(header)]
    for name, entry in result["cuts"].items():
        s = entry["unweighted"] or {}
        meets = "-" if not s else ("met" if s["meets_requirement"] else "not met")
        ci = entry.get("intervals") or {}
        lines.append(
            f"{name:<9}{entry['n']:>6}{entry['nReal']:>6}{_f(s.get('roc_auc')):>7}"
            f"{_f(s.get('average_precision')):>7}{_f(s.get('purity_at_completeness_0.90')):>13}"
            f"{_span(ci.get('purity_at_completeness_0.90')):>15}"
            f"{_f(s.get('completeness_at_purity_0.95')):>12}{_span(ci.get('completeness_at_purity_0.95')):>15}"
            f"{_f(s.get('ece')):>7}  {meets}"
        )
    first = next(iter(result["cuts"].values()), None)
    if first:
        t = result["threshold"]
        kept = ", ".join(f"{k} {v['kept']}/{v['n']}" for k, v in first["perClass"].items())
        lines.append(f"kept at reliability >= {t:g} (all sources): {kept}")
    return "\n".join(lines)
