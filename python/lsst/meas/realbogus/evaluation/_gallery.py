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

"""A gallery of example triplets per truth class (``rb-gallery``).

The figure follows DMTN-272 Fig. 10: one row per example DIA source, three
panels (template, science, difference), the truth class, SNR and flux in the
row label.  It is a look at what the simulator makes, read back from the
Butler exactly as the tasks read it.

Stretch: template and science share one asinh stretch per triplet (so a flux
change between them is visible), softened at twice the science stamp's robust
noise; the difference has its own asinh stretch, symmetric about zero (zero is
mid-grey, positive flux is white, negative black).  Pixels with no data (off
the detector or in a template gap) are drawn in blue.
"""

from __future__ import annotations

__all__ = ["select_examples", "write_gallery"]

import dataclasses
import logging
import math
import os
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import GalleryError, one_line
from ..simulation._scene import BOGUS_CLASSES, REAL_CLASSES
from ..triplets._cutouts import extract_stamps

_LOG = logging.getLogger(__name__)

IMAGE_DATASETS = ("template_detector", "preliminary_visit_image", "difference_image")
"""Dataset types of the three panels, in column order."""

COLUMN_TITLES = ("template", "science", "difference")
"""Column headers of the three panels."""

DPI = 90
"""Resolution of the PNG, dots per inch."""

ROW_HEIGHT_IN = 1.0
"""Height of one example row, inches."""

HEADER_HEIGHT_IN = 0.45
"""Height of the header row, inches."""

LABEL_WIDTH_IN = 1.9
"""Width of the row-label column, inches."""

PANEL_IN = 0.9
"""Side of one stamp panel, inches."""

NO_DATA_COLOR = "#3566a8"
"""Colour of pixels without data."""


@dataclasses.dataclass
class _Example:
    """One DIA source chosen for the gallery."""

    truth_class: str
    is_real: bool
    data_id: Any
    key: tuple
    dia_source_id: int
    x: float
    y: float
    snr: float
    flux: float
    true_flux: float
    stamps: list[np.ndarray | None] = dataclasses.field(default_factory=list)


def _class_order(present: Sequence[str]) -> list[str]:
    """Order truth classes: real, then bogus (simulator order), then any
    unknown class alphabetically.
    """
    known = list(REAL_CLASSES) + list(BOGUS_CLASSES)
    present_set = set(present)
    return [c for c in known if c in present_set] + sorted(present_set - set(known))


def select_examples(
    snr: np.ndarray,
    per_class: int,
    rng: np.random.Generator,
    *,
    detector: np.ndarray | None = None,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    min_separation: float = 0.0,
) -> np.ndarray:
    """Pick up to ``per_class`` indices spread over SNR.

    Parameters
    ----------
    snr : `numpy.ndarray`
        SNR of the candidates (signed; NaN allowed).  Their order must be
        deterministic (e.g. sorted by ``diaSourceId``) for a deterministic
        choice.
    per_class : `int`
        How many to pick.
    rng : `numpy.random.Generator`
        Random generator: the pick within each SNR bin.
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
        Indices into ``snr``, sorted by SNR.

    Notes
    -----
    The range of ``log10 |SNR|`` is cut into ``per_class`` bins of equal
    width and one candidate is drawn from each non-empty bin, so faint and
    bright examples both appear; bins left empty are made up by random draws
    from the rest.
    """
    n = len(snr)
    if n == 0 or per_class <= 0:
        return np.zeros(0, dtype=int)
    snr = np.asarray(snr, dtype=float)
    dedupe = min_separation > 0 and detector is not None and x is not None and y is not None
    chosen: list[int] = []

    def is_duplicate(i: int) -> bool:
        if not dedupe:
            return False
        for j in chosen:
            if detector[i] == detector[j] and math.hypot(x[i] - x[j], y[i] - y[j]) < min_separation:
                return True
        return False

    def take(pool: np.ndarray, allow_duplicates: bool) -> bool:
        for i in pool:
            if i not in chosen and (allow_duplicates or not is_duplicate(int(i))):
                chosen.append(int(i))
                return True
        return False

    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log10(np.abs(snr))
    finite = np.isfinite(logs)
    if finite.any() and n > per_class:
        edges = np.linspace(np.min(logs[finite]), np.max(logs[finite]), per_class + 1)
        bins = np.clip(np.searchsorted(edges, logs, side="right") - 1, 0, per_class - 1)
        for b in range(per_class):
            members = np.flatnonzero(finite & (bins == b))
            if len(members):
                take(rng.permutation(members), allow_duplicates=False)
    for allow_duplicates in (False, True):
        order = rng.permutation(n)
        while len(chosen) < min(per_class, n) and take(order, allow_duplicates):
            pass
    picked = np.asarray(chosen, dtype=int)
    key = np.where(np.isfinite(snr[picked]), snr[picked], -np.inf)
    return picked[np.argsort(key, kind="stable")]


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


def _stretch_triplet(stamps: list[np.ndarray | None]) -> list[np.ndarray | None]:
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


def _open_butler(repo: str):
    from lsst.daf.butler import Butler

    if "://" not in repo and not os.path.isfile(os.path.join(repo, "butler.yaml")) and not (
        os.path.isfile(repo) and repo.endswith((".yaml", ".json"))
    ):
        raise GalleryError(f"no Butler repository at {repo!r}.")
    try:
        return Butler.from_config(repo, writeable=False)
    except Exception as exc:
        raise GalleryError(f"cannot open Butler repository {repo!r}: {one_line(exc)}") from None


def _query(butler, name: str, collections: list[str], where: str | None, data_id: dict) -> dict:
    """Return refs of a dataset type keyed by their required data ID
    values.
    """
    from lsst.daf.butler import ButlerUserError, MissingDatasetTypeError

    try:
        refs = butler.query_datasets(
            name, collections=collections, where=where or "", data_id=data_id or None,
            find_first=True, explain=False,
        )
    except MissingDatasetTypeError:
        raise GalleryError(f"dataset type {name!r} is not registered in the repository.") from None
    except ButlerUserError as exc:
        raise GalleryError(one_line(exc)) from None
    return {tuple(ref.dataId.required.values()): ref for ref in refs}


def _check_collections(butler, collections: list[str]) -> None:
    from lsst.daf.butler import MissingCollectionError

    for name in collections:
        try:
            butler.collections.get_info(name)
        except MissingCollectionError:
            raise GalleryError(f"collection {name!r} does not exist in the repository.") from None


def _gather(butler, collections: list[str], where: str | None) -> tuple[list[_Example], dict, dict]:
    """Join sources and truth of every detector-visit; return all candidate
    examples and the refs of the image datasets.
    """
    data_id: dict = {}
    if where:
        instruments = [rec.name for rec in butler.query_dimension_records("instrument", explain=False)]
        if len(instruments) == 1:
            data_id["instrument"] = instruments[0]
    truth_refs = _query(butler, "dia_source_truth", collections, where, data_id)
    source_refs = _query(butler, "dia_source_unstandardized", collections, where, data_id)
    image_refs = {name: _query(butler, name, collections, where, data_id) for name in IMAGE_DATASETS}
    candidates: list[_Example] = []
    for key in sorted(truth_refs):
        if key not in source_refs:
            _LOG.warning("No dia_source_unstandardized for %s; skipped.", truth_refs[key].dataId)
            continue
        truth = butler.get(truth_refs[key])
        sources = butler.get(source_refs[key])
        if len(truth) == 0 or len(sources) == 0:
            continue
        index = {int(i): k for k, i in enumerate(np.asarray(truth["diaSourceId"]))}
        klass = np.asarray(truth["truth_class"]).astype(str)
        real = np.asarray(truth["is_real"], dtype=bool)
        true_flux = np.asarray(truth["true_flux"], dtype=float) if "true_flux" in truth.colnames else None
        ids = np.asarray(sources["diaSourceId"], dtype=np.int64)
        x = np.asarray(sources["x"], dtype=float)
        y = np.asarray(sources["y"], dtype=float)
        snr = np.asarray(sources["snr"], dtype=float)
        flux = np.asarray(sources["psfFlux"], dtype=float)
        for k, source_id in enumerate(ids):
            j = index.get(int(source_id))
            if j is None:
                continue
            candidates.append(_Example(
                truth_class=str(klass[j]), is_real=bool(real[j]), data_id=truth_refs[key].dataId,
                key=key, dia_source_id=int(source_id), x=float(x[k]), y=float(y[k]), snr=float(snr[k]),
                flux=float(flux[k]), true_flux=float(true_flux[j]) if true_flux is not None else np.nan,
            ))
    return candidates, image_refs, truth_refs


def _cut_stamps(butler, examples: list[_Example], image_refs: dict, size: int) -> None:
    """Read the images of the detector-visits the examples come from and
    cut their stamps.
    """
    by_key: dict[tuple, list[_Example]] = defaultdict(list)
    for example in examples:
        by_key[example.key].append(example)
    for key, group in sorted(by_key.items()):
        x = np.array([e.x for e in group])
        y = np.array([e.y for e in group])
        for e in group:
            e.stamps = [None] * len(IMAGE_DATASETS)
        for column, name in enumerate(IMAGE_DATASETS):
            ref = image_refs[name].get(key)
            if ref is None:
                _LOG.warning("No %s for %s; its panels are left empty.", name, group[0].data_id)
                continue
            image = butler.get(ref.makeComponentRef("image"))
            x0, y0 = image.bbox.x.start, image.bbox.y.start
            stamps, _ = extract_stamps(image.array, x - x0, y - y0, size, fill=np.nan)
            for e, stamp in zip(group, stamps):
                e.stamps[column] = np.asarray(stamp, dtype=float)


def _draw(examples: list[_Example], output: str, size: int, title: str) -> None:
    """Draw the gallery figure and save it as a PNG."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n_rows = max(len(examples), 1)
    gap = (ROW_HEIGHT_IN - PANEL_IN) / 2
    width = LABEL_WIDTH_IN + len(IMAGE_DATASETS) * (PANEL_IN + 2 * gap) + gap
    height = HEADER_HEIGHT_IN + n_rows * ROW_HEIGHT_IN
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    cmap = matplotlib.colormaps["gray"].with_extremes(bad=NO_DATA_COLOR)

    fig.text(0.5 * LABEL_WIDTH_IN / width, 1 - 0.5 * HEADER_HEIGHT_IN / height, title,
             ha="center", va="center", fontsize=7)
    for column, name in enumerate(COLUMN_TITLES):
        cx = LABEL_WIDTH_IN + gap + column * (PANEL_IN + 2 * gap) + PANEL_IN / 2
        fig.text(cx / width, 1 - 0.5 * HEADER_HEIGHT_IN / height, name, ha="center", va="center",
                 fontsize=10, weight="bold")
    if not examples:
        fig.text(0.5, 0.5 * ROW_HEIGHT_IN / height, "no DIA sources", ha="center", va="center")

    previous_class = None
    for row, example in enumerate(examples):
        top = HEADER_HEIGHT_IN + row * ROW_HEIGHT_IN
        bottom_frac = 1 - (top + gap + PANEL_IN) / height
        if example.truth_class != previous_class and row > 0:
            y_line = 1 - top / height
            fig.add_artist(matplotlib.lines.Line2D([0.01, 0.99], [y_line, y_line], color="0.6", lw=0.8))
        previous_class = example.truth_class
        color = "tab:green" if example.is_real else "tab:red"
        kind = "real" if example.is_real else "bogus"
        flux_text = f"flux {example.flux:.3g} nJy"
        if np.isfinite(example.true_flux):
            flux_text += f"\n(true {example.true_flux:.3g})"
        label_y = 1 - (top + ROW_HEIGHT_IN / 2) / height
        fig.text(0.08 / width, label_y, f"{example.truth_class} ({kind})", color=color, fontsize=8,
                 weight="bold", ha="left", va="bottom")
        visit = example.data_id.get("visit")
        detector = example.data_id.get("detector")
        where = f"v{visit} d{detector} ({example.x:.0f},{example.y:.0f})"
        fig.text(0.08 / width, label_y, f"SNR {example.snr:.1f}  {flux_text}\n{where}",
                 fontsize=6.5, ha="left", va="top", linespacing=1.2)
        for column, stamp in enumerate(_stretch_triplet(example.stamps)):
            left = LABEL_WIDTH_IN + gap + column * (PANEL_IN + 2 * gap)
            ax = fig.add_axes((left / width, bottom_frac, PANEL_IN / width, PANEL_IN / height))
            ax.set_xticks([])
            ax.set_yticks([])
            if stamp is None:
                ax.text(0.5, 0.5, "missing", ha="center", va="center", fontsize=7, transform=ax.transAxes)
                continue
            ax.imshow(np.ma.masked_invalid(stamp), cmap=cmap, vmin=0.0, vmax=1.0, origin="lower",
                      interpolation="nearest")
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(output, dpi=DPI, format="png")


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
    class of a simulated repository into a PNG.

    Parameters
    ----------
    repo : `str`
        Butler repository (opened read-only).
    output : `str`
        PNG file to write (its directory is created if needed).
    collections : `str` or `list` [`str`], optional
        Collections to search (first match wins).
    per_class : `int`, optional
        Maximum number of examples per truth class.
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
        Number of examples drawn per truth class, in drawing order (real
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
    butler = _open_butler(repo)
    _check_collections(butler, collection_list)
    candidates, image_refs, truth_refs = _gather(butler, collection_list, where)
    _LOG.info("%d labelled DIA sources in %d detector-visits.", len(candidates), len(truth_refs))

    by_class: dict[str, list[_Example]] = defaultdict(list)
    for example in sorted(candidates, key=lambda e: (e.key, e.dia_source_id)):
        by_class[example.truth_class].append(example)
    rng = np.random.default_rng(seed)
    chosen: list[_Example] = []
    counts: dict[str, int] = {}
    for name in _class_order(list(by_class)):
        members = by_class[name]
        picks = select_examples(
            np.array([e.snr for e in members]), per_class, rng,
            detector=np.array([e.data_id.get("detector", -1) for e in members]),
            x=np.array([e.x for e in members]), y=np.array([e.y for e in members]),
            min_separation=size / 2,
        )
        chosen.extend(members[i] for i in picks)
        counts[name] = len(picks)
    _cut_stamps(butler, chosen, image_refs, size)
    title = f"{sum(counts.values())} examples, {size}x{size} px\nblue: no data"
    _draw(chosen, output, size, title)
    _LOG.info("Wrote %s: %s.", output, ", ".join(f"{k} {v}" for k, v in counts.items()) or "no examples")
    return counts
