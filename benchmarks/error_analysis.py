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

"""Where a model errs on the test world, and whether the labels there are
ambiguous (issue 15, item 6).

Scores every labelled triplet of the test world with a model package, as
``computeReliability`` does, and joins each to its truth row
(``dia_source_truth``: ``true_flux``, the injected change) and its source
row (``dia_source_unstandardized``: the measured PSF flux and its error).
At the threshold that keeps completeness 0.90 (per SNR cut) it reports:

* the false positives and negatives per truth class and SNR bin;
* for the reals, the *change fraction* ``true_flux / psfFlux``: how much of
  the measured difference flux the injected change explains, and the
  change's own signal-to-noise ratio ``|true_flux| / psfFluxErr``. The
  labelling rule calls a detection real when an injected change of its sign
  and at least 2 sigma lies within one FWHM, so a bright star's
  PSF-matching residual with a small variable change beneath it is
  labelled real though most of its flux is the residual's: its label is
  ambiguous. The report compares the change fractions of the missed reals
  with those of all reals;
* an ambiguity check: purity at completeness 0.90 (with bootstrap
  intervals) recomputed without the reals whose change explains less than
  half their flux (``--ambiguous-fraction``). The labels are not changed
  and nothing is tuned on the result: it says how much of the shortfall
  sits in labels that a human vetter could not call either.

Output: one ``error_analysis`` JSON line (value: purity at completeness 0.90
for ``|snr| > 6`` without the ambiguous reals)::

    .venv/bin/python benchmarks/error_analysis.py --test-repo test/repo \\
        --package benchmarks/reference/rbcnn-train64k.zip
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from _benchutil import JsonLineWriter, package_versions, use_checkout

SNR_BINS = ((5.0, 6.0), (6.0, 8.0), (8.0, 12.0), (12.0, 25.0), (25.0, np.inf))
"""Bins of |snr| of the per-class error table."""


def read_joined(root: str, collections_: Sequence[str], size: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Read the test world's labelled triplets and join their truth and
    source rows by id (per detector-visit).
    """
    from lsst.daf.butler import Butler

    butler = Butler.from_config(root)
    refs = sorted(butler.query_datasets("rb_triplets", collections=list(collections_), find_first=True,
                                        explain=False), key=lambda r: (r.dataId["visit"], r.dataId["detector"]))
    cutouts, columns = [], collections.defaultdict(list)
    for ref in refs:
        table = butler.get(ref, parameters={"columns": ["diaSourceId", "cutout", "label", "snr", "truthClass"]})
        keep = np.asarray(table["label"]) >= 0
        if not keep.any():
            continue
        truth = butler.get("dia_source_truth", ref.dataId, collections="DC2/sim")
        sources = butler.get("dia_source_unstandardized", ref.dataId, collections="DC2/sim")
        ids = np.asarray(table["diaSourceId"])[keep]
        t_row = _rows(np.asarray(truth["id"]), ids)
        s_row = _rows(np.asarray(sources["id"]), ids)
        cutouts.append(np.asarray(table["cutout"], dtype=np.float32)[keep].reshape(-1, 3, size, size))
        columns["label"].append(np.asarray(table["label"])[keep] == 1)
        columns["snr"].append(np.abs(np.asarray(table["snr"], dtype=np.float64)[keep]))
        columns["truthClass"].append(np.asarray(table["truthClass"]).astype(str)[keep])
        columns["trueFlux"].append(np.asarray(truth["true_flux"], dtype=np.float64)[t_row])
        columns["psfFlux"].append(np.asarray(sources["base_PsfFlux_instFlux"], dtype=np.float64)[s_row])
        columns["psfFluxErr"].append(np.asarray(sources["base_PsfFlux_instFluxErr"], dtype=np.float64)[s_row])
    return np.concatenate(cutouts), {k: np.concatenate(v) for k, v in columns.items()}


def _rows(table_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Row of each id in a catalog (every id must be there)."""
    from lsst.meas.realbogus.triplets import match_ids

    rows = match_ids(np.asarray(table_ids, dtype=np.int64), np.asarray(ids, dtype=np.int64))
    if (rows < 0).any():
        raise RuntimeError("a triplet's id is missing from its truth or source catalog")
    return rows


def errors_by_class_and_snr(data: dict[str, np.ndarray], kept: np.ndarray, keep: np.ndarray) -> dict[str, Any]:
    """False positives and negatives per truth class and |snr| bin."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for low, high in SNR_BINS:
        in_bin = keep & (data["snr"] > low) & (data["snr"] <= high)
        name = f"{low:g}-{high:g}"
        fp = collections.Counter(data["truthClass"][in_bin & kept & ~data["label"]])
        fn = collections.Counter(data["truthClass"][in_bin & ~kept & data["label"]])
        n = collections.Counter(data["truthClass"][in_bin])
        table[name] = {cls: {"n": n[cls], "falsePositives": fp[cls], "falseNegatives": fn[cls]}
                       for cls in sorted(n)}
    return table


def quantiles(values: np.ndarray) -> dict[str, float] | None:
    """Median and quartiles (None when empty)."""
    values = values[np.isfinite(values)]
    if not values.size:
        return None
    q = np.quantile(values, [0.25, 0.5, 0.75])
    return {"n": int(values.size), "q25": float(q[0]), "median": float(q[1]), "q75": float(q[2])}


def analyse(data: dict[str, np.ndarray], scores: np.ndarray, cut: float, ambiguous_fraction: float,
            resamples: int) -> dict[str, Any]:
    """The figures of one ``|snr| > cut``."""
    from lsst.meas.realbogus.evaluation import bootstrap_requirement, purity_at_completeness

    keep = data["snr"] > cut
    labels = data["label"]
    purity, threshold = purity_at_completeness(labels[keep], scores[keep], 0.90)
    kept = scores >= threshold
    missed = keep & labels & ~kept
    found = keep & labels & kept
    # The share of the measured difference flux that the injected change is
    # (signed alike: the labelling rule matches a change of the detection's sign).
    fraction = data["trueFlux"] / data["psfFlux"]
    change_snr = np.abs(data["trueFlux"]) / data["psfFluxErr"]
    ambiguous = labels & (fraction < ambiguous_fraction)
    clear = keep & ~ambiguous
    clear_purity, _ = purity_at_completeness(labels[clear], scores[clear], 0.90)
    intervals = bootstrap_requirement(labels[clear], scores[clear], resamples=resamples)
    by_class = {}
    for cls in sorted(set(data["truthClass"][keep & labels])):
        of = keep & labels & (data["truthClass"] == cls)
        by_class[cls] = {"n": int(of.sum()), "missed": int((of & missed).sum()),
                         "ambiguous": int((of & ambiguous).sum()),
                         "missedAmbiguous": int((of & missed & ambiguous).sum()),
                         "changeFractionMissed": quantiles(fraction[of & missed]),
                         "changeFractionFound": quantiles(fraction[of & found]),
                         "changeSnrMissed": quantiles(change_snr[of & missed]),
                         "changeSnrFound": quantiles(change_snr[of & found])}
    return {
        "n": int(keep.sum()), "nReal": int((keep & labels).sum()), "threshold": float(threshold),
        "purity_at_completeness_0.90": purity,
        "falsePositives": dict(sorted(collections.Counter(data["truthClass"][keep & kept & ~labels]).items())),
        "falseNegatives": dict(sorted(collections.Counter(data["truthClass"][missed]).items())),
        "realsByClass": by_class,
        "ambiguousReals": int((keep & ambiguous).sum()),
        "missedAmbiguous": int((missed & ambiguous).sum()), "missed": int(missed.sum()),
        "withoutAmbiguousReals": {"n": int(clear.sum()), "nReal": int((clear & labels).sum()),
                                  "purity_at_completeness_0.90": clear_purity, "intervals": intervals},
        "errorsByClassAndSnr": errors_by_class_and_snr(data, kept, keep),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the analysis."""
    parser = argparse.ArgumentParser(description="Where a model errs on the test world; JSON lines.")
    parser.add_argument("--test-repo", required=True, help="The test world (rb-simulate --preset test), cut.")
    parser.add_argument("--collections", nargs="+", default=None,
                        help="rb_triplets collections (default: the learning curve's curve/triplets/*).")
    parser.add_argument("--package", required=True, help="Model package (.zip) to score with.")
    parser.add_argument("--ambiguous-fraction", type=float, default=0.5,
                        help="Reals whose injected change is less than this fraction of their measured flux "
                        "count as ambiguous (default 0.5).")
    parser.add_argument("--device", default="cpu", help="Scoring device (default cpu).")
    parser.add_argument("--resamples", type=int, default=1000, help="Bootstrap resamples (default 1000).")
    args = parser.parse_args(argv)
    use_checkout()

    from lsst.daf.butler import Butler
    from lsst.meas.realbogus.models import ModelPackage, select_device
    from lsst.meas.realbogus.scoring import score_triplets

    root = os.path.abspath(args.test_repo)
    collections_ = args.collections or sorted(Butler.from_config(root).collections.query("curve/triplets/*"))
    if not collections_:
        parser.error(f"{root} has no curve/triplets/* collections; cut it first (benchmarks/learning_curve.py)")
    package = ModelPackage.read(args.package)
    cutouts, data = read_joined(root, collections_, package.metadata.cutout.size)
    device = select_device(args.device)
    scores = np.asarray(score_triplets(package.build_model(device), cutouts, device=device,
                                       temperature=package.temperature, intercept=package.intercept),
                        dtype=np.float64)
    cuts = {f"snr>{cut:g}": analyse(data, scores, cut, args.ambiguous_fraction, args.resamples)
            for cut in (5.0, 6.0)}
    writer = JsonLineWriter("error_analysis", package_versions(["torch"]))
    writer.emit("error_analysis", cuts["snr>6"]["withoutAmbiguousReals"]["purity_at_completeness_0.90"],
                "purity at completeness 0.90 (|snr|>6) without the ambiguous reals",
                package=os.path.basename(args.package), modelVersion=package.version,
                ambiguousFraction=args.ambiguous_fraction, n=len(scores), nReal=int(data["label"].sum()),
                cuts=cuts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
