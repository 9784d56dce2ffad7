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

"""Which examples a gallery shows (`~lsst.meas.realbogus.evaluation._gallery`
draws them).

One picker, `select_examples`: spread over SNR for the truth classes of
``rb-gallery``, the most confident first for the outcomes of
``rb_plot_gallery``; either way near-duplicates (one bright star in several
visits, one hot pixel in every visit of a detector) are taken only when
nothing else is left.
"""

from __future__ import annotations

__all__ = ["GalleryExample", "GalleryRow", "OUTCOMES", "outcome_rows", "select_examples", "truth_candidates",
           "truth_class_rows"]

import dataclasses
import logging
import math

import numpy as np
from astropy.table import Table, vstack

from ..simulation._scene import BOGUS_CLASSES, REAL_CLASSES
from ..triplets._sourceCatalogs import SourceColumnsConfig, as_astropy_table, match_ids
from ._repository import DetectorVisitHandles

_LOG = logging.getLogger(__name__)

PANEL_COUNT = 3
"""Panels of an example: template, science, difference."""

OUTCOMES = (("true positives", True, True), ("false positives", False, True),
            ("false negatives", True, False), ("true negatives", False, False))
"""Rows of ``rb_plot_gallery``: name, whether the sources are real, whether
they are kept."""


@dataclasses.dataclass
class GalleryExample:
    """One DIA source drawn in a gallery."""

    key: tuple[int, int]
    """(visit, detector) of its images."""

    x: float
    """Column of the source, parent pixel coordinates."""

    y: float
    """Row of the source, parent pixel coordinates."""

    caption: str
    """Text under the triplet."""

    stamps: list[np.ndarray | None] = dataclasses.field(default_factory=lambda: [None] * PANEL_COUNT)
    """Unstretched (template, science, difference) stamps; `None` for a
    missing image."""


@dataclasses.dataclass
class GalleryRow:
    """One row of a gallery: a truth class or an outcome."""

    label: str
    """Name of the row, in bold."""

    note: str
    """Line under the name (kind, how many shown of how many)."""

    is_real: bool | None
    """Whether the row's sources are real (green label) or bogus (red)."""

    examples: list[GalleryExample]
    """The examples, left to right."""


def select_examples(
    snr: np.ndarray,
    per_class: int,
    rng: np.random.Generator | None = None,
    *,
    priority: np.ndarray | None = None,
    detector: np.ndarray | None = None,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    min_separation: float = 0.0,
) -> np.ndarray:
    """Pick up to ``per_class`` indices, spread over SNR or by priority.

    Parameters
    ----------
    snr : `numpy.ndarray`
        SNR of the candidates (signed; NaN allowed).  Their order must be
        deterministic (e.g. sorted by ``diaSourceId``) for a deterministic
        choice.
    per_class : `int`
        How many to pick.
    rng : `numpy.random.Generator`, optional
        Random generator: the pick within each SNR bin.  Needed unless
        ``priority`` is given.
    priority : `numpy.ndarray`, optional
        If given, take the candidates of highest priority first (ties in
        input order) instead of spreading them over SNR.
    detector, x, y : `numpy.ndarray`, optional
        Detector and pixel position of the candidates; with
        ``min_separation`` they keep near-duplicates out (several detections
        of one bright star, or a hot pixel seen in every visit of a
        detector).
    min_separation : `float`, optional
        Candidates closer than this (pixels, same detector) to one already
        picked are taken only if nothing else is left.

    Returns
    -------
    indices : `numpy.ndarray` of `int`
        Indices into ``snr``: sorted by SNR, or by decreasing priority.

    Notes
    -----
    Without ``priority``, the range of ``log10 |SNR|`` is cut into
    ``per_class`` bins of equal width and one candidate is drawn from each
    non-empty bin, so faint and bright examples both appear; bins left empty
    are made up by random draws from the rest.
    """
    n = len(snr)
    if n == 0 or per_class <= 0:
        return np.zeros(0, dtype=int)
    if priority is None and rng is None:
        raise ValueError("select_examples needs rng to spread examples over SNR.")
    snr = np.asarray(snr, dtype=float)
    picks = _Picks(min(per_class, n), detector, x, y, min_separation)
    if priority is not None:
        ranked = np.argsort(-np.asarray(priority, dtype=float), kind="stable")
        for allow_duplicates in (False, True):
            picks.fill(ranked, allow_duplicates)
        return np.asarray(picks.chosen, dtype=int)
    for members in _snr_bins(snr, per_class):
        picks.take_first(rng.permutation(members), allow_duplicates=False)
    for allow_duplicates in (False, True):
        picks.fill(rng.permutation(n), allow_duplicates)
    picked = np.asarray(picks.chosen, dtype=int)
    key = np.where(np.isfinite(snr[picked]), snr[picked], -np.inf)
    return picked[np.argsort(key, kind="stable")]


class _Picks:
    """The indices picked so far, and which candidates are near-duplicates
    of them (same detector, closer than ``min_separation`` pixels).
    """

    def __init__(self, wanted: int, detector: np.ndarray | None, x: np.ndarray | None,
                 y: np.ndarray | None, min_separation: float):
        self.chosen: list[int] = []
        self.wanted = wanted
        self._positions = (detector, x, y) if min_separation > 0 and not any(
            v is None for v in (detector, x, y)) else None
        self._min_separation = min_separation

    def _is_duplicate(self, i: int) -> bool:
        if self._positions is None:
            return False
        detector, x, y = self._positions
        return any(detector[i] == detector[j] and math.hypot(x[i] - x[j], y[i] - y[j]) < self._min_separation
                   for j in self.chosen)

    def take_first(self, pool: np.ndarray, allow_duplicates: bool) -> bool:
        """Pick the first candidate of ``pool`` not picked yet (and not a
        near-duplicate, unless allowed); return whether there was one.
        """
        for i in pool:
            if i not in self.chosen and (allow_duplicates or not self._is_duplicate(int(i))):
                self.chosen.append(int(i))
                return True
        return False

    def fill(self, pool: np.ndarray, allow_duplicates: bool) -> None:
        """Pick from ``pool`` in order until enough are picked."""
        while len(self.chosen) < self.wanted and self.take_first(pool, allow_duplicates):
            pass


def _snr_bins(snr: np.ndarray, bins: int) -> list[np.ndarray]:
    """Members of each non-empty bin of equal width in ``log10 |SNR|``; none
    if there are no more candidates than bins.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.abs(snr))
    finite = np.isfinite(logs)
    if not finite.any() or len(snr) <= bins:
        return []
    edges = np.linspace(np.min(logs[finite]), np.max(logs[finite]), bins + 1)
    index = np.clip(np.searchsorted(edges, logs, side="right") - 1, 0, bins - 1)
    members = [np.flatnonzero(finite & (index == b)) for b in range(bins)]
    return [m for m in members if len(m)]


def outcome_rows(joined: Table, threshold: float, per_outcome: int, size: int) -> list[GalleryRow]:
    """Pick the most confident true/false positives/negatives.

    Parameters
    ----------
    joined : `astropy.table.Table`
        Scored, labelled sources
        (`~lsst.meas.realbogus.evaluation.join_detector_visits`).
    threshold : `float`
        Sources with ``reliability >= threshold`` are kept.
    per_outcome : `int`
        Most examples per outcome.
    size : `int`
        Stamp size, pixels: examples closer than half of it (same detector)
        count as near-duplicates.

    Returns
    -------
    rows : `list` [`GalleryRow`]
        One row per outcome (`OUTCOMES`): the kept sources of highest
        reliability first, the rejected ones of lowest.
    """
    real = np.asarray(joined["label"]) == 1
    scores = np.asarray(joined["reliability"], dtype=float)
    snr = np.asarray(joined["snr"], dtype=float)
    kept = scores >= threshold
    rows = []
    for name, is_real, is_kept in OUTCOMES:
        members = np.flatnonzero((real == is_real) & (kept == is_kept))
        confidence = scores[members] if is_kept else -scores[members]
        picks = members[select_examples(snr[members], per_outcome, priority=confidence,
                                        **_positions(joined, members), min_separation=size / 2)]
        examples = [_example(joined, i, f"{joined['truthClass'][i]}  r={scores[i]:.2f}  SNR {snr[i]:.1f}")
                    for i in picks]
        kind = f"{'real' if is_real else 'bogus'}, {'kept' if is_kept else 'rejected'}"
        rows.append(GalleryRow(name, f"{kind}: {len(picks)} of {len(members)}", is_real, examples))
    return rows


def truth_class_rows(
    candidates: Table, per_class: int, size: int, rng: np.random.Generator
) -> list[GalleryRow]:
    """Pick examples of each truth class, spread over SNR.

    Parameters
    ----------
    candidates : `astropy.table.Table`
        Labelled sources (`truth_candidates`).
    per_class : `int`
        Most examples per truth class.
    size : `int`
        Stamp size, pixels: examples closer than half of it (same detector)
        count as near-duplicates.
    rng : `numpy.random.Generator`
        Random generator of the picks.

    Returns
    -------
    rows : `list` [`GalleryRow`]
        One row per truth class present: real classes first, then bogus ones
        (simulator order), then any unknown class alphabetically.
    """
    classes = np.asarray(candidates["truthClass"]).astype(str)
    known = [*REAL_CLASSES, *BOGUS_CLASSES]
    present = set(classes.tolist())
    rows = []
    for name in [c for c in known if c in present] + sorted(present - set(known)):
        members = np.flatnonzero(classes == name)
        picks = members[select_examples(np.asarray(candidates["snr"])[members], per_class, rng,
                                        **_positions(candidates, members), min_separation=size / 2)]
        is_real = bool(candidates["isReal"][members[0]])
        examples = [_example(candidates, i, _flux_caption(candidates, i)) for i in picks]
        note = f"{'real' if is_real else 'bogus'}, {len(picks)} of {len(members)}"
        rows.append(GalleryRow(name, note, is_real, examples))
    return rows


def _positions(sources: Table, rows: np.ndarray) -> dict[str, np.ndarray]:
    """``detector``, ``x`` and ``y`` of some rows, for `select_examples`."""
    return {name: np.asarray(sources[name])[rows] for name in ("detector", "x", "y")}


def truth_candidates(handles: DetectorVisitHandles, columns: SourceColumnsConfig | None = None) -> Table:
    """Join the truth and the sources of every detector-visit.

    Parameters
    ----------
    handles : `DetectorVisitHandles`
        Handles of ``truth`` and ``diaSources``.
    columns : `~lsst.meas.realbogus.triplets.SourceColumnsConfig`, optional
        The source column names (default: a real catalog's, which
        ``rb-simulate`` writes; the truth's id column has the sources' id
        column name).

    Returns
    -------
    candidates : `astropy.table.Table`
        Every detected DIA source with truth (``diaSourceId``,
        ``truthClass``, ``isReal``, ``trueFlux``, ``x``, ``y``, ``snr``,
        ``psfFlux``, ``visit``, ``detector``), in (detector, visit,
        diaSourceId) order: the Butler's data ID order, which the examples a
        seed draws depend on.
    """
    columns = columns if columns is not None else SourceColumnsConfig()
    parts = []
    for key in sorted(handles["truth"], key=lambda k: (k[1], k[0])):
        if key not in handles["diaSources"]:
            _LOG.warning("No dia_source_unstandardized for visit=%d detector=%d; skipped.", *key)
            continue
        truth, sources = handles["truth"][key].get(), as_astropy_table(handles["diaSources"][key].get())
        ids = np.asarray(sources[columns.idColumn], dtype=np.int64)
        rows = match_ids(np.asarray(truth[columns.idColumn], dtype=np.int64), ids)
        found = rows >= 0
        if not found.any():
            continue
        rows = rows[found]
        part = Table({"diaSourceId": ids[found],
                      "truthClass": np.asarray(truth["truth_class"]).astype(str)[rows],
                      "isReal": np.asarray(truth["is_real"], dtype=bool)[rows]})
        part["trueFlux"] = (np.asarray(truth["true_flux"], dtype=float)[rows] if "true_flux" in truth.colnames
                            else np.full(len(rows), np.nan))
        x, y = columns.positions(sources)
        measured = {"x": x, "y": y, "snr": columns.snr(sources),
                    "psfFlux": np.asarray(sources[columns.psfFluxColumn], dtype=float)}
        for name, values in measured.items():
            part[name] = values[found]
        part["visit"], part["detector"] = np.full(len(part), key[0]), np.full(len(part), key[1])
        part.sort("diaSourceId")
        parts.append(part)
    return vstack(parts) if parts else Table(names=["truthClass"], dtype=[str])


def _example(sources: Table, i: int, first_line: str) -> GalleryExample:
    """The example of row ``i`` of a table with ``visit``, ``detector``,
    ``x`` and ``y``, captioned with ``first_line`` and where it is.
    """
    visit, detector = int(sources["visit"][i]), int(sources["detector"][i])
    x, y = float(sources["x"][i]), float(sources["y"][i])
    return GalleryExample(key=(visit, detector), x=x, y=y,
                          caption=f"{first_line}\nv{visit} d{detector} ({x:.0f},{y:.0f})")


def _flux_caption(candidates: Table, i: int) -> str:
    text = f"SNR {candidates['snr'][i]:.1f}  flux {candidates['psfFlux'][i]:.3g} nJy"
    true_flux = float(candidates["trueFlux"][i])
    return text + (f" (true {true_flux:.3g})" if np.isfinite(true_flux) else "")
