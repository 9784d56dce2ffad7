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

"""The gallery of example triplets, for ``rb-gallery`` and for
``rb_plot_gallery``.

The figure follows DMTN-272 Fig. 10, laid out as a grid: one row per group
(a truth class for ``rb-gallery``, an outcome such as "false positives" for
``rb_plot_gallery``), one column per example, and each example a
(template, science, difference) triplet with its caption underneath.

One picker, `~lsst.meas.realbogus.evaluation.select_examples` (in
`._galleryExamples`, with the rows of both uses): examples spread over SNR
(``rb-gallery``) or the most confident first (``rb_plot_gallery``).

One cutter: `~lsst.meas.realbogus.triplets.extract_stamps` on the image
pixels of each detector-visit, pixels off the image set to NaN.

One stretch: template and science share one asinh stretch per triplet (so a
flux change between them is visible), softened at twice the science stamp's
robust noise; the difference has its own asinh stretch, symmetric about zero
(zero is mid-grey, positive flux is white, negative black).  Pixels with no
data (off the detector or in a template gap) are drawn in blue.
"""

from __future__ import annotations

__all__ = ["cut_stamps", "draw_gallery", "outcome_gallery", "write_gallery"]

import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure

from ..errors import GalleryError
from ..triplets import extract_stamps
from ._galleryExamples import GalleryExample, GalleryRow, outcome_rows, truth_candidates, truth_class_rows
from ._repository import DetectorVisitHandles, check_collections, open_butler, query_inputs

if TYPE_CHECKING:
    from lsst.daf.butler import DeferredDatasetHandle

_LOG = logging.getLogger(__name__)

PANELS = ("template", "science", "difference")
"""The panels of an example, left to right (also the
`~lsst.meas.realbogus.evaluation.INPUT_DATASETS` keys of their images)."""

DPI = 90
"""Resolution of the figure, dots per inch."""

PANEL_IN = 0.9
"""Side of one stamp panel, inches."""

PANEL_GAP_IN = 0.04
"""Gap between the panels of one example, inches."""

EXAMPLE_GAP_IN = 0.25
"""Gap between two examples of a row, inches."""

CAPTION_HEIGHT_IN = 0.28
"""Height of the caption under an example, inches."""

ROW_GAP_IN = 0.1
"""Gap between two rows, inches."""

LABEL_WIDTH_IN = 1.6
"""Width of the row-label column, inches."""

HEADER_HEIGHT_IN = 0.55
"""Height of the header (title and panel names), inches."""

MARGIN_IN = 0.1
"""Right margin, inches."""

EXAMPLE_WIDTH_IN = 3 * PANEL_IN + 2 * PANEL_GAP_IN + EXAMPLE_GAP_IN
"""Width of one column (an example and the gap after it), inches."""

ROW_HEIGHT_IN = PANEL_IN + CAPTION_HEIGHT_IN + ROW_GAP_IN
"""Height of one row, inches."""

NO_DATA_COLOR = "#3566a8"
"""Colour of pixels without data."""

def _robust_sigma(*arrays: np.ndarray) -> float:
    values = np.concatenate([np.ravel(a) for a in arrays if a is not None])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 1.0
    sigma = 1.4826 * np.median(np.abs(values - np.median(values)))
    if not np.isfinite(sigma) or sigma <= 0:
        sigma = float(np.std(values))
    return float(sigma) if np.isfinite(sigma) and sigma > 0 else 1.0


def _asinh_norm(stamp: np.ndarray, soft: float, lo: float, hi: float) -> np.ndarray:
    """Map ``stamp`` to [0, 1] with ``asinh(value / soft)`` between ``lo``
    and ``hi`` (NaN stays NaN).
    """
    a, b = np.arcsinh(lo / soft), np.arcsinh(hi / soft)
    if not b > a:
        b = a + 1.0
    with np.errstate(invalid="ignore"):
        return np.clip((np.arcsinh(stamp / soft) - a) / (b - a), 0.0, 1.0)


def _stretch_triplet(stamps: Sequence[np.ndarray | None]) -> list[np.ndarray | None]:
    """Apply the gallery stretch to a (template, science, difference)
    triplet.
    """
    template, science, difference = stamps
    out: list[np.ndarray | None] = [None, None, None]
    direct = [s for s in (template, science) if s is not None]
    if direct:
        sigma = _robust_sigma(science if science is not None else direct[0])
        finite = np.concatenate([s[np.isfinite(s)] for s in direct])
        hi = max(float(finite.max()) if finite.size else 0.0, 10.0 * sigma)
        for k, s in ((0, template), (1, science)):
            if s is not None:
                out[k] = _asinh_norm(s, 2.0 * sigma, -3.0 * sigma, hi)
    if difference is not None:
        sigma = _robust_sigma(difference)
        finite = difference[np.isfinite(difference)]
        limit = max(float(np.abs(finite).max()) if finite.size else 0.0, 5.0 * sigma)
        out[2] = _asinh_norm(difference, 2.0 * sigma, -limit, limit)
    return out


def cut_stamps(
    rows: Sequence[GalleryRow],
    images: Sequence[Mapping[tuple[int, int], DeferredDatasetHandle]],
    size: int,
    log: logging.Logger | None = None,
) -> None:
    """Read the images of the detector-visits the examples come from and
    cut their stamps (``example.stamps``).

    Parameters
    ----------
    rows : `~collections.abc.Sequence` [`GalleryRow`]
        The gallery.
    images : `~collections.abc.Sequence` [`~collections.abc.Mapping`]
        Handles of the template, science and difference images, each by
        (visit, detector); a missing image leaves its panels empty.
    size : `int`
        Stamp size, pixels.
    log : `logging.Logger`, optional
        Where to warn of missing images.
    """
    by_key: dict[tuple[int, int], list[GalleryExample]] = defaultdict(list)
    for row in rows:
        for example in row.examples:
            by_key[example.key].append(example)
    for key, group in sorted(by_key.items()):
        x = np.array([e.x for e in group])
        y = np.array([e.y for e in group])
        for panel, (name, handles) in enumerate(zip(PANELS, images)):
            if key not in handles:
                (log or _LOG).warning("No %s image for visit=%d detector=%d; its panels are left empty.",
                                      name, *key)
                continue
            image = handles[key].get(component="image")
            stamps, _ = extract_stamps(image.array, x - image.bbox.x.start, y - image.bbox.y.start, size,
                                       fill=np.nan)
            for example, stamp in zip(group, stamps):
                example.stamps[panel] = np.asarray(stamp, dtype=float)


def draw_gallery(rows: Sequence[GalleryRow], title: str) -> Figure:
    """Draw a gallery: rows of examples, each a (template, science,
    difference) triplet with its caption.

    Parameters
    ----------
    rows : `~collections.abc.Sequence` [`GalleryRow`]
        The rows, top to bottom, with their stamps cut (`cut_stamps`).
    title : `str`
        Title, top left.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        ``LABEL_WIDTH_IN + columns * EXAMPLE_WIDTH_IN + MARGIN_IN`` wide and
        ``HEADER_HEIGHT_IN + rows * ROW_HEIGHT_IN`` high (inches, at `DPI`),
        ``columns`` being the most examples of any row (at least one row
        and one column).
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    columns = max((len(row.examples) for row in rows), default=0) or 1
    width = LABEL_WIDTH_IN + columns * EXAMPLE_WIDTH_IN + MARGIN_IN
    height = HEADER_HEIGHT_IN + max(len(rows), 1) * ROW_HEIGHT_IN
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    cmap = matplotlib.colormaps["gray"].with_extremes(bad=NO_DATA_COLOR)

    def text(x: float, y: float, s: str, **kwargs) -> None:
        """Write at (x, y) inches from the top left."""
        fig.text(x / width, 1 - y / height, s, **kwargs)

    text(0.08, 0.2, title, ha="left", va="center", fontsize=9)
    for column in range(columns):
        for panel, name in enumerate(PANELS):
            left = LABEL_WIDTH_IN + column * EXAMPLE_WIDTH_IN + panel * (PANEL_IN + PANEL_GAP_IN)
            text(left + PANEL_IN / 2, HEADER_HEIGHT_IN - 0.1, name, ha="center", va="bottom", fontsize=7,
                 weight="bold")
    if not rows:
        text(width / 2, HEADER_HEIGHT_IN + ROW_HEIGHT_IN / 2, "no DIA sources", ha="center", va="center")
    for index, row in enumerate(rows):
        top = HEADER_HEIGHT_IN + index * ROW_HEIGHT_IN
        if index:
            y_line = 1 - (top - ROW_GAP_IN / 2) / height
            fig.add_artist(matplotlib.lines.Line2D([0.01, 0.99], [y_line, y_line], color="0.75", lw=0.6))
        color = {True: "tab:green", False: "tab:red"}.get(row.is_real, "black")
        text(0.08, top + PANEL_IN / 2, row.label, color=color, fontsize=9, weight="bold", ha="left",
             va="bottom")
        text(0.08, top + PANEL_IN / 2 + 0.04, row.note, fontsize=7, ha="left", va="top")
        if not row.examples:
            text(LABEL_WIDTH_IN + PANEL_IN / 2, top + PANEL_IN / 2, "none", fontsize=8, va="center")
        for column, example in enumerate(row.examples):
            left = LABEL_WIDTH_IN + column * EXAMPLE_WIDTH_IN
            for panel, stamp in enumerate(_stretch_triplet(example.stamps)):
                x0 = left + panel * (PANEL_IN + PANEL_GAP_IN)
                ax = fig.add_axes((x0 / width, 1 - (top + PANEL_IN) / height, PANEL_IN / width,
                                   PANEL_IN / height))
                ax.set_xticks([])
                ax.set_yticks([])
                if stamp is None:
                    ax.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=7, transform=ax.transAxes)
                    continue
                ax.imshow(np.ma.masked_invalid(stamp), cmap=cmap, vmin=0.0, vmax=1.0, origin="lower",
                          interpolation="nearest")
            text(left + (EXAMPLE_WIDTH_IN - EXAMPLE_GAP_IN) / 2, top + PANEL_IN + 0.03, example.caption,
                 ha="center", va="top", fontsize=6.5, linespacing=1.15)
    return fig


def outcome_gallery(
    joined: Table,
    threshold: float,
    images: Sequence[Mapping[tuple[int, int], DeferredDatasetHandle]],
    per_outcome: int,
    size: int,
    log: logging.Logger | None = None,
) -> Figure:
    """Draw the most confident true/false positives/negatives
    (``rb_plot_gallery``).

    Parameters
    ----------
    joined : `astropy.table.Table`
        Scored, labelled sources
        (`~lsst.meas.realbogus.evaluation.join_detector_visits`).
    threshold : `float`
        Sources with ``reliability >= threshold`` are kept.
    images : `~collections.abc.Sequence` [`~collections.abc.Mapping`]
        Handles of the template, science and difference images, each by
        (visit, detector).
    per_outcome : `int`
        Most examples per outcome: the columns.
    size : `int`
        Stamp size, pixels.
    log : `logging.Logger`, optional
        Where to warn of missing images.

    Returns
    -------
    figure : `matplotlib.figure.Figure`
        One row per outcome (see `outcome_rows`).
    """
    rows = outcome_rows(joined, threshold, per_outcome, size)
    cut_stamps(rows, images, size, log)
    return draw_gallery(rows, f"Most confident examples at reliability >= {threshold:.3g}; {size}x{size} px "
                        "stamps, blue: no data")


def write_gallery(
    repo: str,
    output: str,
    *,
    collections: str | list[str] = "DC2/sim",
    per_class: int = 4,
    size: int = 41,
    where: str | None = None,
    seed: int = 0,
) -> dict[str, int]:
    """Draw example (template, science, difference) triplets of every truth
    class of a simulated repository into a PNG (``rb-gallery``).

    Parameters
    ----------
    repo : `str`
        Butler repository (opened read-only).
    output : `str`
        PNG file to write (its directory is created if needed).
    collections : `str` or `list` [`str`], optional
        Collections to search (first match wins).
    per_class : `int`, optional
        Maximum number of examples per truth class: the columns.
    size : `int`, optional
        Stamp size, pixels.
    where : `str`, optional
        Butler query expression restricting the detector-visits (for example
        ``"visit = 3080000"``; the instrument is bound when the repository
        has only one).
    seed : `int`, optional
        Seed of the choice of examples; the same inputs and seed give the same
        gallery.

    Returns
    -------
    counts : `dict` [`str`, `int`]
        Number of examples drawn per truth class, in row order (real
        classes first, then bogus ones); classes without examples are absent.

    Raises
    ------
    GalleryError
        If the repository, a collection or a dataset type is missing, or the
        query is invalid.
    ValueError
        If ``per_class`` or ``size`` is < 1.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1; got {per_class}.")
    if size < 1:
        raise ValueError(f"size must be >= 1; got {size}.")
    collection_list = [collections] if isinstance(collections, str) else list(collections)
    if not collection_list:
        raise ValueError("at least one collection is needed.")
    handles = _gallery_inputs(repo, collection_list, where)
    candidates = truth_candidates(handles)
    _LOG.info("%d labelled DIA sources in %d detector-visits.", len(candidates), len(handles["truth"]))
    rows = truth_class_rows(candidates, per_class, size, np.random.default_rng(seed))
    cut_stamps(rows, [handles[name] for name in PANELS], size)
    n_examples = sum(len(row.examples) for row in rows)
    fig = draw_gallery(rows, f"{n_examples} examples of {len(rows)} truth classes; {size}x{size} px stamps, "
                       "blue: no data")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    fig.savefig(output, format="png")
    counts = {row.label: len(row.examples) for row in rows}
    # No path: the CLIs write through a temporary file and name the final one themselves.
    _LOG.info("Gallery drawn: %s.", ", ".join(f"{k} {v}" for k, v in counts.items()) or "no examples")
    return counts


def _gallery_inputs(repo: str, collections: list[str], where: str | None) -> DetectorVisitHandles:
    """Truth, sources and images of the detector-visits of a query."""
    butler = open_butler(repo, GalleryError)
    check_collections(butler, collections, GalleryError)
    data_id = {}
    if where:
        instruments = [rec.name for rec in butler.query_dimension_records("instrument", explain=False)]
        if len(instruments) == 1:
            data_id["instrument"] = instruments[0]
    return query_inputs(butler, collections, where or "", ("truth", "diaSources", *PANELS), data_id=data_id,
                        error=GalleryError)
